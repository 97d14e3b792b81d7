"""The per-visit eTable marks the last follow-up note on that visit's rows, found by the visit
code: a label that begins another, or that holds ": ", or that two codes share, cannot move the
mark to another visit's row."""

from __future__ import annotations

import pandas as pd

from conftest import write_study
from pipeline.render.labels import readable_results
from pipeline.render.tables import (
    LAST_FOLLOW_UP_NOTE,
    tidy_table,
    visit_estimate_rows,
    visit_marks,
    visit_notes,
)
from pipeline.spec.study import load_study
from specs import study_toml

# Labels built to collide: "Follow-up" is the beginning of the last follow-up's label (up to
# its ": "), "Visit 1" of "Visit 10", and "m24" shares its label with the last follow-up.
LABELS = {
    "last": "Follow-up: last visit",
    "m12": "Follow-up",
    "v1": "Visit 1",
    "v10": "Visit 10",
    "m24": "Follow-up: last visit",
}


def _marked(table, heading="Visit"):
    column = list(table.body.columns).index(heading)
    return {row: table.footnotes[k] for row, c, k in table.marks if c == column}


def test_the_last_follow_up_note_is_marked_by_visit_code(tmp_path):
    folder = write_study(
        tmp_path / "tiny",
        "code,age\nA1,50\n",
        "code,visit,day,hb_observer\nA1,pre,-5,4\n",
        study_toml({"visits": {"labels": LABELS}}),
    )
    study = load_study(folder)
    visits = ["v1", "v10", "last", "m12", "m24"]
    frame = pd.DataFrame(
        {
            "outcome": "house_brackmann_observer",
            "score": "grade",
            "label": "House-Brackmann grade",
            "visit": visits,
            "median_day": [30.0, 300.0, 200.0, 365.0, 730.0],
            "n_observed": 10,
            "estimate": [3.0, 2.5, 2.4, 2.2, 2.1],
            "ci_low": [2.0, 1.5, 1.4, 1.2, 1.1],
            "ci_high": [4.0, 3.5, 3.4, 3.2, 3.1],
        }
    )
    # As the tables step builds it (pipeline.render.tables.publication_tables).
    rows, notes = visit_estimate_rows(study, frame)
    codes = rows["visit"].tolist()
    assert codes == ["v1", "v10", "m12", "m24", "last"]  # the last follow-up after the others
    table = tidy_table(readable_results(study, "visit_estimates", rows), "eTable.", footnotes=notes)
    assert table.body["Visit"].tolist() == [LABELS[v] for v in codes]
    marked = visit_marks(table, visit_notes(study, codes), codes)
    note = f"Follow-up: last visit: {LAST_FOLLOW_UP_NOTE}"
    assert notes == (note,)
    # Only the last follow-up's row: not m12 ("Follow-up"), nor m24 (its label, another code).
    assert _marked(marked) == {4: note}
