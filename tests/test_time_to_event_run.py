"""Time to event in a study's run: the spec's ``[[analysis.time_to_event]]``, the step's tables,
the eTable, the Kaplan-Meier figure and the Methods; and a study without one, unchanged.

The demo's numbers are checked against tests/fixtures/r/survival.R, which reads the demo's raw
files itself (a revision's day, otherwise the last visit day) and runs survival::survfit and
survdiff on them.
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.spec.schema import SpecError
from pipeline.spec.study import load_study
from small_study import SMALL_STUDY, file_bytes, run_steps, write_small_study
from specs import edit_spec
from tests.r_reference import FIXTURES

REVISION = {"event": "revision", "day": "revision_day", "by": "sex"}
TIME_TO_EVENT_FILES = {
    "time_to_event.csv",
    "time_to_event_at.csv",
    "time_to_event_curves.csv",
    "log_rank.csv",
    *(f"etable_time_to_revision.{ext}" for ext in ("csv", "md", "html", "tex", "docx")),
}


def _with_revision(folder, **entry):
    columns = [*SMALL_STUDY["subjects"]["columns"], "revision", "revision_day"]
    edit_spec(
        folder,
        {
            "subjects": {"columns": columns},
            "analysis": {"time_to_event": [{**REVISION, **entry}]},
        },
    )
    return folder


def _tables_and_figures(folder, reports):
    """The study run up to its tables: every file it wrote under tables/, and the stems of the
    figures it would draw."""
    from pipeline.render import figures

    study = load_study(folder)
    con = duckdb.connect()
    run_steps(con, study, reports)
    stems = [spec.stem for spec in figures.study_figures(con, study)]
    con.close()
    return file_bytes(reports / study.name / "tables"), stems


def test_a_study_without_time_to_event_writes_the_same_files(tmp_path):
    # The small study without a time-to-event plan, and the same study with time to revision
    # declared: the second writes the first's tables, byte for byte but for the numbers of the
    # eTables after its own, and the time-to-event tables in addition, and draws the first's
    # figures and the Kaplan-Meier figure.
    before, drawn = _tables_and_figures(
        write_small_study(tmp_path / "raw" / "small"), tmp_path / "before"
    )
    after, drawn_after = _tables_and_figures(
        _with_revision(write_small_study(tmp_path / "raw" / "revision")), tmp_path / "after"
    )
    assert not [name for name in before if "time_to" in name or "log_rank" in name]
    assert set(after) - set(before) == TIME_TO_EVENT_FILES
    # The one eTable more moves the eTables after it (the item eTables) one number on: their
    # text files differ in that number only (Word's are compressed, not compared).
    moved = {name.split(".")[0] for name in before if before[name] != after[name]}
    assert moved == {"etable_items_sunnybrook"}
    numbered = re.compile(rb"eTable \d+")
    text = [name for name in before if not name.endswith(".docx")]
    assert {name: numbered.sub(b"eTable N", after[name]) for name in text} == {
        name: numbered.sub(b"eTable N", before[name]) for name in text
    }
    assert drawn_after == [*drawn, "time_to_event_revision"]
    # Sex's second level has fewer than 5 patients: one level left, nothing to compare.
    table = after["etable_time_to_revision.md"].decode("utf-8")
    assert "NA: no log-rank test, fewer than two groups to compare." in table
    assert "counted in All patients only" in table


def test_etable_without_by_has_no_log_rank_column(tmp_path):
    # Hand-made: 4 patients, events at days 100 and 400, censored at 200 and 800.
    from pipeline.render.tables import time_to_event_tables
    from pipeline.statistics.survival import time_to_event

    folder = write_small_study(tmp_path)
    edit_spec(
        folder,
        {
            "subjects": {
                "columns": [*SMALL_STUDY["subjects"]["columns"], "revision", "revision_day"]
            },
            "analysis": {"time_to_event": [{"event": "revision", "day": "revision_day"}]},
        },
    )
    study = load_study(folder)
    data = pd.DataFrame({"time": [100, 200, 400, 800], "event": [1, 0, 1, 0], "group": pd.NA})
    result = time_to_event(data, (365, 730))
    results = {
        "time_to_event": result.summary.assign(analysis="revision", left_out=0),
        "time_to_event_at": result.at.assign(analysis="revision"),
        "log_rank": result.log_rank.assign(analysis="revision"),
    }
    [(stem, table)] = time_to_event_tables(study, results)
    assert stem == "etable_time_to_revision" and "Log-rank P" not in table.body.columns
    # S(365) = 3/4, S(730) = 3/4 * 1/2 = 3/8; median: first time S <= 0.5, day 400 = 13.1 mo.
    assert table.body.iloc[0, :2].tolist() == ["All patients", "2/4"]
    assert table.body.iloc[0, 2].startswith("13.1 (")
    assert table.body.iloc[0, 3].startswith("75.0 (") and table.body.iloc[0, 4].startswith("37.5 (")


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"times": [730, 365]}, "time_to_event[0].times' must be days after surgery"),
        ({"times": [0, 365]}, "must be days after surgery"),
        ({"day": "revision"}, "time_to_event[0].day' must name the column of event days"),
        ({"by": "side"}, "time_to_event[0].by' names 'side', which is not in [subjects]"),
        ({"censor_dya": "x"}, "did you mean 'censor_day'"),
    ],
)
def test_spec_refuses_a_time_to_event_it_cannot_run(tmp_path, entry, words):
    folder = _with_revision(write_small_study(tmp_path), **entry)
    with pytest.raises(SpecError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_study(folder)


def test_an_event_without_its_day_stops_the_run_naming_the_column(tmp_path):
    from pipeline.steps import run_study

    folder = _with_revision(write_small_study(tmp_path / "raw" / "small"))
    patients = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    patients.loc[patients["revision"] == "1", "revision_day"] = ""
    patients.to_csv(folder / "patients.csv", index=False)
    with pytest.raises(ValueError, match="patients have revision = 1 and no day in 'revision_day'"):
        run_study(duckdb.connect(), load_study(folder), tmp_path / "reports")


def test_demo_time_to_revision_matches_r(demo_run):
    # survival.R's "demo" case: survfit by facelift on the raw files, censored at the last visit.
    folder, _ = demo_run
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    summary = con.execute("SELECT * FROM demo.time_to_event").df().set_index("group")
    at = con.execute("SELECT * FROM demo.time_to_event_at").df()
    tested = con.execute("SELECT * FROM demo.log_rank").df()
    con.close()
    r = pd.read_csv(FIXTURES / "survival_expected.csv", float_precision="round_trip")
    r = r[r["case"] == "demo"].astype({"group": str})

    def expected(group, key):
        return r[(r["group"] == group) & (r["key"] == key)]["value"].astype(float).to_numpy()

    for group in ("all", "0", "1"):
        for key in ("n", "events", "median", "median_lower", "median_upper"):
            ours = summary.loc[group, key]
            np.testing.assert_allclose(ours, expected(group, key)[0], rtol=1e-6, equal_nan=True)
        mine = at[(at["group"] == group) & at["survival"].notna()]
        for key in ("survival", "lower", "upper", "n_risk"):
            np.testing.assert_allclose(mine[key], expected(group, f"at_{key}"), rtol=1e-6)
    for key in ("chisq", "p"):
        np.testing.assert_allclose(tested[key].iloc[0], expected("by", key)[0], rtol=1e-6)


def test_demo_report_shows_time_to_revision(demo_run):
    folder, _ = demo_run
    reports = folder / "reports" / "demo"
    table = (reports / "tables" / "etable_time_to_revision.md").read_text(encoding="utf-8")
    assert "Time to revision surgery" in table and "Concurrent facelift" in table
    assert "| All patients" in table and "11/63" in table
    # No facelift patient was followed to 2 years (R's summary(fit, times = 730) has no row for
    # the group): the cell says so with a marked footnote, never "NA".
    assert " NA " not in table
    assert "not estimable^" in table or "not estimable<sup>" in table, table
    assert "Not estimable: no patient of the group was followed up to that day." in table
    page = (reports / "report.html").read_text(encoding="utf-8")
    assert "Kaplan-Meier method" in page and "log-rank test" in page
    assert "censored at their last visit" in page and "on the log scale" in page
    assert "time_to_event_revision" in page or "Time to revision surgery" in page
    # The revision's day is no baseline characteristic.
    assert "Day of revision" not in (reports / "tables" / "table_1.md").read_text(encoding="utf-8")
    source = pd.read_csv(reports / "figures" / "double_column" / "time_to_event_revision.csv")
    assert set(source["part"]) == {"curve", "number at risk"}
