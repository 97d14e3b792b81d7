"""Patient flow: why patients were not analysed (counted by pairing), the flow eTable and the
flow diagram of the primary outcome.

The reasons are checked on a study built so that each patient has one known reason, on the demo
cohort against counts made here from its raw visits file with pandas, and the diagram is read
back: its texts do not overlap, stay inside the canvas and their boxes, and print the eTable's
numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.patches import FancyBboxPatch
from matplotlib.text import Text

from conftest import write_study
from pipeline.ingest.ingestion import ingest_study
from pipeline.pairing import outcomes_frame, pair_study
from pipeline.render import figures, tables
from pipeline.render.figure_list import read_exclusions, study_flow
from pipeline.render.flow_diagram import patient_flow
from pipeline.scores import score_study
from pipeline.spec.study import load_study
from pipeline.statistics.flow import NOT_ANALYSED, ingest_exclusions
from pipeline.warehouse import read_frame
from specs import study_toml

DEMO = Path(__file__).parents[1] / "data" / "raw" / "demo"
REASONS = [r.name for r in NOT_ANALYSED]
# The reasons a study without derived visits ([visits.derived]) can have.
OCCURRING = [r for r in NOT_ANALYSED if r.name != "derived_visit_incomplete"]

# FNGS 2.0, whose regional sum needs its four region items (1-6): a visit with one of them
# blank, or refused at ingest, is assessed but has no score.
FNGS_SPEC = study_toml(
    {
        "instruments": {"house_brackmann": None, "fngs": {"column": "fngs_{item}"}},
        "analysis": {"outcomes": [{"instrument": "fngs", "score": "regional_sum"}]},
    }
)
# Each patient's reason by construction, in the order NOT_ANALYSED checks them; the records
# refused at ingest: A08 twice (a code on two rows), a row without a code, a row with a field
# too many.
PATIENTS = """
    code,age
    A01,50
    A02,51
    A03,52
    A04,53
    A05,54
    A06,55
    A07,56
    A08,57
    A08,58
    ,59
    A09,60,extra
    A10,61
    A11,62
    A12,63
"""
VISITS = """
    code,visit,day,fngs_brow,fngs_eye,fngs_nlf,fngs_oral,fngs_secondary
    A01,pre,-5,3,3,3,3,1
    A01,m6,180,2,2,2,2,0
    A02,m6,180,2,2,2,2,0
    A03,pre,-5,3,3,3,3,1
    A04,pre,-5,3,3,3,3,1
    A04,m1,30,2,2,2,2,0
    A05,pre,-5,3,3,3,3,1
    A05,m6,180,9,2,2,2,0
    A06,pre,-5,3,3,3,3,1
    A06,m6,180,,2,2,2,0
    A10,pre,-5,0,3,3,3,1
    A11,pre,-5,3,,3,3,1
    A11,m6,180,2,2,2,2,0
    A12,m6,180,9,2,2,2,0
"""
EXPECTED = {
    # A01 analysed.
    "paired": 1,
    # A02 (only after surgery), A07 (no visit at all), A12 (no pre visit; its post value refused:
    # the missing assessment comes first).
    "no_pre_assessment": 3,
    # A03 (only before), A10 (its pre value refused, and never seen after surgery).
    "no_postop_assessment": 2,
    # A04: seen on day 30 only, the window opens on day 90.
    "no_followup_in_window": 1,
    # A05: brow 9 at day 180 is out of range (1-6), refused at ingest.
    "refused_at_ingest": 1,
    # A06 (brow blank at day 180), A11 (eye blank before surgery).
    "not_computable": 2,
}


def _run(folder: Path, con: duckdb.DuckDBPyConnection):
    study = load_study(folder)
    ingest_study(con, study)
    score_study(con, study)
    pair_study(con, study)
    return study


@pytest.fixture(scope="module")
def constructed(tmp_path_factory):
    folder = write_study(tmp_path_factory.mktemp("flow") / "tiny", PATIENTS, VISITS, FNGS_SPEC)
    con = duckdb.connect()
    study = _run(folder, con)
    yield con, study
    con.close()


@pytest.fixture(scope="module")
def demo():
    con = duckdb.connect()
    study = _run(DEMO, con)
    yield con, study
    con.close()


def _summary(con, study) -> pd.DataFrame:
    return read_frame(con, f"SELECT * FROM {study.name}.pairing_summary")


def _flow(con, study) -> pd.DataFrame:
    source = read_frame(
        con, f"SELECT * FROM {study.name}.source_files WHERE file = ?", [study.subjects_path.name]
    )
    return tables.flow_counts(source, _summary(con, study), outcomes_frame(study))


def _adds_up(summary: pd.DataFrame) -> None:
    assert (summary["subjects"] == summary["paired"] + summary[REASONS].sum(axis=1)).all()


def test_each_patient_counted_under_the_reason_built_into_the_study(constructed):
    con, study = constructed
    [row] = _summary(con, study).to_dict("records")
    assert row["subjects"] == 10  # 14 records, 4 refused at ingest
    assert {k: row[k] for k in EXPECTED} == EXPECTED
    _adds_up(_summary(con, study))


def test_records_excluded_at_ingest_by_reason(constructed):
    con, study = constructed
    quarantine = read_frame(
        con,
        f"SELECT * FROM {study.name}.quarantine WHERE file = 'patients.csv' AND scope = 'row'",
    )
    counts = ingest_exclusions(quarantine).set_index("reason")["records"].to_dict()
    assert counts == {"unreadable": 1, "no_code": 1, "duplicate_code": 2, "other": 0}
    source = read_frame(con, f"SELECT * FROM {study.name}.source_files")
    assert source["rows_read"].iloc[0] == 14 and source["rows_quarantined"].iloc[0] == 4


def _demo_reference(study, instrument_columns: list[str], needed: list[str]) -> dict[str, int]:
    """The reasons counted from the demo's raw visits file with pandas: an outcome is assessed at
    a visit with any of ``instrument_columns`` written, has a value there when every column of
    ``needed`` is (the demo's files have no refused value: its quarantine is empty)."""
    visits = pd.read_csv(DEMO / "visits.csv")
    patients = pd.read_csv(DEMO / "patients.csv")["study_id"]
    visits["assessed"] = visits[instrument_columns].notna().any(axis=1)
    visits["valued"] = visits[needed].notna().all(axis=1)
    plan = study.analysis
    pre_window = visits["day"] <= plan.pre_max_day
    post_window = visits["day"] >= plan.post_min_day
    counts = dict.fromkeys(["paired", *REASONS], 0)
    for patient in patients:
        mine = visits["study_id"] == patient

        def some(flag, where):
            return bool((mine & flag & where).any())

        pre = some(visits["valued"], pre_window)
        post = some(visits["valued"], post_window)
        if pre and post:
            reason = "paired"
        elif not pre and not some(visits["assessed"], pre_window):
            reason = "no_pre_assessment"
        elif not post and not some(visits["assessed"], visits["day"] > 0):
            reason = "no_postop_assessment"
        elif not post and not some(visits["assessed"], post_window):
            reason = "no_followup_in_window"
        else:
            reason = "not_computable"
        counts[reason] += 1
    return counts


def test_demo_reasons_add_up_and_match_counts_from_the_raw_file(demo):
    con, study = demo
    summary = _summary(con, study)
    assert len(summary) == 20
    _adds_up(summary)
    assert read_frame(con, "SELECT count(*) AS n FROM demo.quarantine")["n"].iloc[0] == 0
    by_outcome = summary.set_index(["outcome", "score"])
    hb = by_outcome.loc[("house_brackmann_observer", "grade")]
    assert {k: int(hb[k]) for k in ["paired", *REASONS]} == _demo_reference(
        study, ["hb_observer"], ["hb_observer"]
    )
    # Sunnybrook's composite needs every one of its 13 items.
    columns = [c for c in pd.read_csv(DEMO / "visits.csv", nrows=0).columns if c.startswith("sb_")]
    assert len(columns) == 13
    sb = by_outcome.loc[("sunnybrook", "composite")]
    reference = _demo_reference(study, columns, columns)
    assert {k: int(sb[k]) for k in ["paired", *REASONS]} == reference
    assert reference["not_computable"] > 0 and reference["no_followup_in_window"] > 0


def _flow_table(con, study, **exclusions):
    return tables.flow_table(
        _flow(con, study),
        pre_label="before",
        post_label="after",
        subjects_file="patients.csv",
        **exclusions,
    )


def test_flow_table_has_a_column_per_reason_that_occurs_with_its_footnote(constructed, demo):
    con, study = constructed
    table = _flow_table(con, study)
    assert list(table.body.columns) == [
        "Outcome",
        "Analysed, No. (%)",
        *(f"{r.label}, No." for r in OCCURRING),
    ]
    assert table.body.iloc[0, 1:].tolist() == ["1 (10)", "3", "2", "1", "1", "2"]
    for reason in OCCURRING:
        assert sum(note.startswith(f"{reason.label}: ") for note in table.footnotes) == 1
        # ... marked on its column's heading, and nowhere else.
        column = list(table.body.columns).index(f"{reason.label}, No.")
        [(row, where, k)] = [m for m in table.marks if m[1] == column]
        assert row is None and table.footnotes[k].startswith(f"{reason.label}: ")
    # Every footnote marked on a cell: the patients counted and their percentages on Analysed.
    assert {k for _, _, k in table.marks} == set(range(len(table.footnotes)))
    assert {k for _, column, k in table.marks if column == 1} == {0, 1, 2}
    assert table.footnotes[0] == (
        "14 patient record(s) in patients.csv; 4 excluded at ingest (quarantined with a reason); "
        "10 included."
    )
    # As the tables step reads them from the warehouse.
    table = _flow_table(con, study, exclusions=read_exclusions(con, study))
    assert table.footnotes[0] == (
        "14 patient record(s) in patients.csv; 4 excluded at ingest (row could not be read, 1; "
        "patient code missing, 1; patient code on more than one row, 2); 10 included."
    )
    # The demo has two of the five reasons: only their columns.
    con, study = demo
    table = _flow_table(con, study)
    assert list(table.body.columns) == [
        "Outcome",
        "Analysed, No. (%)",
        "No pre-operative assessment, No.",
        "No assessment in the follow-up window, No.",
        "Score not computable, No.",
    ]


# --------------------------------------------------------------------------- the diagram


def _drawn_texts(fig: plt.Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _assert_laid_out(fig: plt.Figure, width: float) -> None:
    """Fits the width and 9 in; no two texts overlap; every text inside the canvas, and every
    text but the footer inside one box."""
    assert fig.get_size_inches()[0] == pytest.approx(width)
    assert fig.get_size_inches()[1] <= 9
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = _drawn_texts(fig)
    extents = [t.get_window_extent(renderer) for t in texts]
    boxes = [p.get_window_extent(renderer) for p in fig.findobj(FancyBboxPatch)]
    canvas = fig.bbox
    for i, (text, extent) in enumerate(zip(texts, extents)):
        assert canvas.x0 <= extent.x0 and extent.x1 <= canvas.x1, text.get_text()
        assert canvas.y0 <= extent.y0 and extent.y1 <= canvas.y1, text.get_text()
        for other, other_extent in zip(texts[i + 1 :], extents[i + 1 :]):
            assert not extent.overlaps(other_extent), (text.get_text(), other.get_text())
        if text.get_gid():
            inside = [
                b
                for b in boxes
                if b.x0 <= extent.x0
                and extent.x1 <= b.x1
                and b.y0 <= extent.y0
                and extent.y1 <= b.y1
            ]
            assert len(inside) == 1, text.get_text()


def _numbers(fig: plt.Figure) -> dict[str, int]:
    """The count each text with a ``flow:`` gid prints, as ``(n = 12)`` (no-break spaces)."""
    out = {}
    for text in _drawn_texts(fig):
        gid = text.get_gid() or ""
        if gid.startswith("flow:"):
            # A count broken over two lines ("(n =" / "375)") is not read: the test fails.
            [n] = re.findall(r"\(n = (\d+)\)", text.get_text().replace("\u00a0", " "))
            out[gid.removeprefix("flow:")] = int(n)
    return out


@pytest.mark.parametrize("width", figures.WIDTHS.values())
def test_diagram_of_one_outcome_fits_and_nothing_overlaps(constructed, width):
    con, study = constructed
    spec = study_flow(con, study, footer=tables.SYNTHETIC_NOTE)
    fig = spec.make(width)
    _assert_laid_out(fig, width)
    numbers = _numbers(fig)
    plt.close(fig)
    assert numbers == {
        "records": 14,
        "excluded": 4,
        "excluded:unreadable": 1,
        "excluded:no_code": 1,
        "excluded:duplicate_code": 2,
        "included": 10,
        "not_analysed": 9,
        **{f"not_analysed:{k}": v for k, v in EXPECTED.items() if k != "paired"},
        "analysed": 1,
    }


@pytest.mark.parametrize("width", figures.WIDTHS.values())
def test_diagram_of_twenty_outcomes_fits_and_nothing_overlaps(demo, width):
    con, study = demo
    assert len(study.analysis.outcomes) == 20
    fig = study_flow(con, study, footer=tables.SYNTHETIC_NOTE).make(width)
    _assert_laid_out(fig, width)
    plt.close(fig)


def test_long_labels_wrap_inside_their_boxes():
    # A primary outcome with a long label, every reason and every exclusion.
    flow = pd.DataFrame(
        {
            "outcome": ["x"],
            "label": ["Synkinesis Assessment Questionnaire total score (version raw_sum, surgeon)"],
            "records": [12000],
            "excluded": [1500],
            "included": [10500],
            "analysed": [5500],
            "not_analysed": [5000],
            **{r.name: [1000] for r in NOT_ANALYSED},
        }
    )
    exclusions = pd.DataFrame(
        {"reason": ["a", "b", "c", "d"], "label": ["Row could not be read"] * 4, "records": 375}
    )
    for width in figures.WIDTHS.values():
        fig = patient_flow(
            flow,
            subjects_file="a_rather_long_export_name_from_the_registry_2024.csv",
            exclusions=exclusions,
            footer=tables.SYNTHETIC_NOTE,
            width=width,
        )
        _assert_laid_out(fig, width)
        numbers = _numbers(fig)  # every count on one line
        plt.close(fig)
        assert numbers["records"] == 12000 and numbers["analysed"] == 5500
        assert [numbers[f"excluded:{r}"] for r in "abcd"] == [375] * 4
        assert [numbers[f"not_analysed:{r.name}"] for r in NOT_ANALYSED] == [1000] * 6


def test_diagram_prints_the_flow_etable_numbers_of_the_primary_outcome():
    # The small study's whole run: its flow eTable as written, its diagram as drawn.
    from small_study import full_run

    base = full_run()
    study = load_study(base / "raw" / "small")
    written = base / "reports" / "small" / "tables" / "etable_flow.csv"
    lines = written.read_text(encoding="utf-8").splitlines()
    table = pd.read_csv(written, dtype=str, comment="#")
    notes = " ".join(line for line in lines if line.startswith("# "))
    con = duckdb.connect(str(base / "warehouse.duckdb"), read_only=True)
    try:
        fig = study_flow(con, study).make(figures.SINGLE_COLUMN_IN)
    finally:
        con.close()
    numbers = _numbers(fig)
    plt.close(fig)
    primary = outcomes_frame(study).set_index("outcome").loc[study.analysis.primary, "label"]
    row = table.set_index(table.columns[0]).loc[primary]
    assert int(row["Analysed, No. (%)"].split(" ")[0]) == numbers["analysed"]
    shown = {r.label: r.name for r in NOT_ANALYSED}
    reasons = {c: v for c, v in row.items() if c.removesuffix(", No.") in shown}
    assert reasons, "the small study has patients not analysed"
    for column, value in reasons.items():
        assert numbers.get(f"not_analysed:{shown[column.removesuffix(', No.')]}", 0) == int(value)
    assert numbers["not_analysed"] == sum(int(v) for v in reasons.values())
    # The footnote's records, exclusions and inclusions.
    match = re.search(
        r"(\d+) patient record\(s\) in \S+; (\d+) excluded at ingest.*?(\d+) included", notes
    )
    assert match, "footnote a of the flow eTable"
    assert [int(g) for g in match.groups()] == [
        numbers["records"],
        numbers["excluded"],
        numbers["included"],
    ]
    assert numbers["included"] == numbers["analysed"] + numbers["not_analysed"]


def test_the_plans_primary_outcome_is_drawn_and_named_in_the_caption(constructed):
    flow = pd.DataFrame(
        {
            "outcome": ["first", "second"],
            "label": ["First outcome", "Second outcome"],
            "records": 10,
            "excluded": 0,
            "included": 10,
            "analysed": [9, 4],
            "not_analysed": [1, 6],
            **{r.name: [1, 6] if i == 0 else [0, 0] for i, r in enumerate(NOT_ANALYSED)},
        }
    )
    fig = patient_flow(flow, subjects_file="patients.csv", primary="second")
    analysed = [t.get_text() for t in _drawn_texts(fig) if t.get_gid() == "flow:analysed"]
    numbers = _numbers(fig)
    plt.close(fig)
    assert "Second outcome" in analysed[0].replace("\n", " ")
    assert numbers["analysed"] == 4 and numbers["not_analysed"] == 6
    assert numbers["not_analysed:no_pre_assessment"] == 6
    # No primary in the plan: the first outcome, named as such.
    con, study = constructed
    caption = study_flow(con, study).caption
    assert caption.startswith(
        "Patient flow for FNGS 2.0 sum of regional scores, the first planned outcome with a value:"
    )


# ------------------------------------------------------------- visit rows refused at ingest

# Each patient's reason by construction: B02's follow-up row and B03's only row are refused
# whole (a day that is no number, no visit code); B05 is on two rows of the patients file, so
# not included; Z99 is no patient of the file.
REFUSED_PATIENTS = """
    code,age
    B01,50
    B02,51
    B03,52
    B04,53
    B05,54
    B05,55
    B06,56
"""
REFUSED_VISITS = """
    code,visit,day,hb_observer
    B01,pre,-5,4
    B01,m6,180,2
    B02,pre,-5,4
    B02,m6,soon,2
    B03,,180,3
    B04,pre,-5,4
    B05,pre,-5,4
    Z99,m6,180,3
"""


def test_a_visit_row_refused_whole_counts_its_patient_under_values_quarantined(tmp_path):
    folder = write_study(tmp_path / "tiny", REFUSED_PATIENTS, REFUSED_VISITS)
    con = duckdb.connect()
    study = _run(folder, con)
    # The patient code is kept for the accepted patients only: not for B05 (refused) or Z99.
    kept = con.execute(
        "SELECT file, line, subject FROM tiny.quarantine ORDER BY file, line"
    ).fetchall()
    assert kept == [
        ("patients.csv", 6, None),
        ("patients.csv", 7, None),
        ("visits.csv", 5, "B02"),
        ("visits.csv", 6, "B03"),
        ("visits.csv", 8, None),
        ("visits.csv", 9, None),
    ]
    [row] = _summary(con, study).to_dict("records")
    _adds_up(_summary(con, study))
    assert {k: row[k] for k in ["subjects", "paired", *REASONS]} == {
        "subjects": 5,
        "paired": 1,  # B01
        "no_pre_assessment": 1,  # B06, never seen
        "no_postop_assessment": 1,  # B04, seen before surgery only
        "no_followup_in_window": 0,
        "refused_at_ingest": 2,  # B02 (its day-180 row), B03 (its only row)
        "derived_visit_incomplete": 0,
        "not_computable": 0,
    }
    table = _flow_table(con, study)
    assert "Values quarantined at ingest, No." in table.body.columns
    numbers = _numbers(study_flow(con, study).make(figures.SINGLE_COLUMN_IN))
    plt.close("all")
    assert numbers["not_analysed:refused_at_ingest"] == 2
    con.close()


def test_a_redcap_study_gets_the_same_flow(tmp_path):
    # The longitudinal project of tests/redcap/: record 3's month-3 event is mapped to no visit
    # (its row quarantined, with its code); record 4 has no enrolment row, so it is no patient.
    from test_redcap import project

    from pipeline import steps

    folder = project(tmp_path, "records.csv")
    con = duckdb.connect()
    study = _run(folder, con)
    quarantined = con.execute(
        "SELECT DISTINCT subject FROM rc.quarantine WHERE file = 'records.csv [visits]' "
        "ORDER BY subject NULLS LAST"
    ).fetchall()
    assert quarantined == [("1",), ("3",), (None,)]  # 1: its adverse-event row, not a visit
    [row] = _summary(con, study).to_dict("records")
    assert {k: row[k] for k in ["subjects", "paired", *REASONS]} == {
        "subjects": 3,
        "paired": 2,
        "no_pre_assessment": 0,
        "no_postop_assessment": 0,
        "no_followup_in_window": 0,
        "refused_at_ingest": 1,  # record 3
        "derived_visit_incomplete": 0,
        "not_computable": 0,
    }
    spec = study_flow(con, study)
    assert spec is not None
    numbers = _numbers(spec.make(figures.SINGLE_COLUMN_IN))
    plt.close("all")
    assert numbers["records"] == 3 and numbers["included"] == 3 and numbers["analysed"] == 2
    # The flow eTable among the publication tables.
    steps.analyse(con, study, tmp_path / "reports")
    steps.write_tables(con, study, tmp_path / "reports")
    written = tmp_path / "reports" / "rc" / "tables" / "etable_flow.csv"
    assert "Values quarantined at ingest, No." in written.read_text(encoding="utf-8")
    con.close()
