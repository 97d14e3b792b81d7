"""Degenerate studies: valid but (nearly) empty, run to the end; unusable input is refused up front.

Each study here passes ``outcomes validate``, so ``outcomes run`` must finish with it: tables
with n = 0 rows and notes, the figures there is data for, and a report that says what could not
be analysed. ``outcomes report`` refuses, in one line, a study folder it cannot run.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from assets.cli import main
from conftest import run_args, set_report_environment, write_study
from pipeline import warehouse
from specs import HB_OBSERVER, HB_SURGEON, REDCAP_STUDY, study_toml

REDCAP = Path(__file__).parent / "redcap"

# House-Brackmann by two raters, with every kind of secondary analysis planned.
PLAN = {
    "subjects": {"columns": ["age", "etiology"], "levels": {"etiology": ["bells_palsy", "trauma"]}},
    "instruments": {"house_brackmann": {"column": "hb_{rater}", "raters": ["observer", "surgeon"]}},
    "analysis": {
        "primary": "house_brackmann_observer",
        "ordinal": ["house_brackmann_observer"],
        "responders": {"house_brackmann_observer": 1},
        "subgroups": [
            {"name": "etiology", "column": "etiology"},
            {"name": "age", "column": "age", "split": "median"},
        ],
        "covariates": ["age"],
        "reliability": [
            {"instrument": "house_brackmann", "score": "grade", "raters": ["observer", "surgeon"]}
        ],
        "outcomes": [HB_OBSERVER, HB_SURGEON],
    },
}

PATIENTS = """
    code,age,etiology
    P1,50,bells_palsy
    P2,61,trauma
"""

# Lets a study with an outcome without pairs through the blocking checks of `outcomes report`.
LENIENT_CHECKS = {"checks": {"min_pairs": 1, "min_paired_share": 0}}


def _spec(name: str, *changes: dict) -> str:
    return study_toml(PLAN, {"study": {"name": name}}, *changes)


def one_subject(base: Path, *changes: dict) -> Path:
    """One patient: the observer's grade before and after, the surgeon's only before."""
    return write_study(
        base / "one",
        "code,age,etiology\nP1,50,bells_palsy\n",
        """
        code,visit,day,hb_observer,hb_surgeon
        P1,pre,-10,4,4
        P1,m12,370,2,
    """,
        _spec("one", *changes),
    )


def all_missing(base: Path) -> Path:
    """Visits on record, every grade missing."""
    return write_study(
        base / "blank",
        PATIENTS,
        """
        code,visit,day,hb_observer,hb_surgeon
        P1,pre,-10,,
        P1,m12,370,,
        P2,pre,-3,,
        P2,m12,380,,
    """,
        _spec("blank"),
    )


def header_only(base: Path) -> Path:
    """A visits file with its header and no row."""
    return write_study(
        base / "headeronly",
        PATIENTS,
        "code,visit,day,hb_observer,hb_surgeon\n",
        _spec("headeronly"),
    )


def reliability_only(base: Path, *changes: dict) -> Path:
    """Both raters grade each patient once, before surgery: agreement to estimate, no pair."""
    spec = _spec("agreement", {"analysis": {"ordinal": None, "responders": None}}, *changes)
    return write_study(
        base / "agreement",
        """
        code,age,etiology
        P1,50,bells_palsy
        P2,61,trauma
        P3,44,bells_palsy
        P4,70,trauma
        P5,39,bells_palsy
    """,
        """
        code,visit,day,hb_observer,hb_surgeon
        P1,pre,-10,4,4
        P2,pre,-3,3,2
        P3,pre,-7,5,5
        P4,pre,-1,2,3
        P5,pre,-4,6,5
    """,
        spec,
    )


# The classic project of tests/redcap/, its grading a repeating instrument.
REDCAP_CLASSIC = study_toml(
    REDCAP_STUDY,
    {
        "study": {"name": "rc"},
        "redcap": {"dictionary": "dictionary.csv", "repeat_instrument": "grading"},
    },
)


def redcap_without_visits(base: Path) -> Path:
    """A classic REDCap project exported before any grading instance was entered."""
    folder = base / "rc"
    folder.mkdir(parents=True)
    shutil.copy(REDCAP / "dictionary.csv", folder / "dictionary.csv")
    lines = (REDCAP / "classic_records.csv").read_text().splitlines()
    records = [lines[0]] + [line for line in lines[1:] if line.split(",")[1] == ""]
    assert len(records) == 3  # the header and the two enrolment rows
    (folder / "records.csv").write_text("\n".join(records) + "\n")
    (folder / "study.toml").write_text(REDCAP_CLASSIC)
    return folder


def _validate(capsys, study: Path) -> int:
    code = main(["validate", str(study)])
    capsys.readouterr()
    return code


def _run(
    capsys, study: Path, tmp_path: Path, warehouse_name: str = "w.duckdb"
) -> tuple[int, str, str]:
    code = main(run_args(study, tmp_path, warehouse_name))
    out = capsys.readouterr()
    return code, out.out, out.err


def _table_2(reports: Path) -> tuple[pd.DataFrame, list[str]]:
    """Table 2's cells and its footnotes, from its CSV."""
    lines = (reports / "tables" / "table_2.csv").read_text(encoding="utf-8").splitlines()
    notes = [line[2:] for line in lines if line.startswith("# ")]
    from io import StringIO

    body = pd.read_csv(
        StringIO("\n".join(line for line in lines if not line.startswith("# "))), dtype=str
    )
    return body, notes


def _report_text(reports: Path) -> str:
    page = (reports / "report.html").read_text(encoding="utf-8")
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", page)))


def _nothing_analysed(capsys, study: Path, tmp_path: Path) -> Path:
    """Validate passes, the run finishes, and its outputs say nothing could be analysed."""
    assert _validate(capsys, study) == 0
    code, out, err = _run(capsys, study, tmp_path)
    assert (code, err) == (0, "")
    reports = tmp_path / "reports" / study.name
    assert "note: nothing to analyse" in out
    body, notes = _table_2(reports)
    assert body["n pairs"].tolist() == ["0"] * len(body) and len(body) >= 1
    assert (body["Median change (Hodges-Lehmann, 95% CI)"] == "not estimable").all() and (
        body["P"] == "—"
    ).all()
    assert any(
        "not estimable (—), no patient has both a before and an after value" in n for n in notes
    )
    assert not any(n.startswith("P values are two-sided") for n in notes)  # no test was run
    paired = pd.read_csv(reports / "tables" / "paired_tests.csv")
    assert (paired.loc[paired["group"] == "all", "n_pairs"] == 0).all()
    text = _report_text(reports)
    assert "Nothing to analyse" in text and "No test was run" in text
    assert "Differences were tested" not in text
    return reports


# --------------------------------------------------------------------------- outcomes run


def test_one_subject_study_runs_to_the_end(tmp_path, capsys):
    study = one_subject(tmp_path / "raw")
    assert _validate(capsys, study) == 0
    code, out, err = _run(capsys, study, tmp_path)
    assert (code, err) == (0, "")
    reports = tmp_path / "reports" / "one"
    body, notes = _table_2(reports)
    assert body["n pairs"].tolist() == ["1", "0"]
    observer, surgeon = body.iloc[0], body.iloc[1]
    assert observer["Median change (Hodges-Lehmann, 95% CI)"] == "-2.0 (CI not estimable)"
    assert (
        surgeon["Before, mean ± SD"],
        surgeon["Median change (Hodges-Lehmann, 95% CI)"],
        surgeon["P"],
    ) == (
        "—",
        "not estimable",
        "—",
    )
    assert (
        "P values are two-sided, from the Wilcoxon signed-rank test on the paired values." in notes
    )
    assert (
        "House-Brackmann grade (surgeon): not estimable (—), no patient has both a before and an "
        "after value (n pairs = 0)." in notes
    )
    # The figures of the outcome with a pair are drawn; the other's absence is noted in the report.
    figures = reports / "figures" / "double_column"
    assert (figures / "slope_house_brackmann_observer_grade.png").is_file()
    assert not (figures / "slope_house_brackmann_surgeon_grade.png").exists()
    text = _report_text(reports)
    assert (
        "House-Brackmann grade (surgeon): not drawn, no patient has both a before and an after "
        "value" in text
    )
    assert "Nothing to analyse" not in text
    assert "note: nothing to analyse" not in out


def test_study_whose_values_are_all_missing_runs_to_the_end(tmp_path, capsys):
    reports = _nothing_analysed(capsys, all_missing(tmp_path / "raw"), tmp_path)
    missing = pd.read_csv(reports / "tables" / "missing_data.csv")
    assert set(missing["outcome"]) == {"house_brackmann_observer", "house_brackmann_surgeon"}
    assert "No figure was drawn" in _report_text(reports)


def test_header_only_visits_file_runs_to_the_end(tmp_path, capsys):
    reports = _nothing_analysed(capsys, header_only(tmp_path / "raw"), tmp_path)
    assert not (reports / "figures").exists() or not list((reports / "figures").glob("*.png"))
    assert "No figure was drawn" in _report_text(reports)
    # Table 1 still describes the patients, with no follow-up and no empty range row.
    table_1 = (reports / "tables" / "table_1.csv").read_text(encoding="utf-8")
    assert "Overall (n = 2)" in table_1 and "Range" not in table_1


def test_subjects_file_without_a_row_runs_to_the_end(tmp_path, capsys):
    # Every visit is then of an unknown subject: validate says they would be quarantined (exit 1),
    # and the run finishes saying so (no median to split the subgroup at, no Table 1 group).
    study = all_missing(tmp_path / "raw")
    (study / "patients.csv").write_text("code,age,etiology\n")
    assert _validate(capsys, study) == 1
    code, out, err = _run(capsys, study, tmp_path)
    assert (code, err) == (0, "")
    assert (
        "note: nothing to analyse: no patient was accepted from patients.csv (4 rows quarantined"
        in out
    )
    assert (
        "Overall (n = 0)" in (tmp_path / "reports" / "blank" / "tables" / "table_1.csv").read_text()
    )


def test_export_figures_of_a_study_with_nothing_to_draw_says_so(tmp_path, capsys, monkeypatch):
    study = header_only(tmp_path / "raw")
    assert _run(capsys, study, tmp_path)[0] == 0
    monkeypatch.setenv("OUTCOMES_RAW", str(study.parent))
    code = main(
        [
            "export-figures",
            "--warehouse",
            str(tmp_path / "w.duckdb"),
            "--reports",
            str(tmp_path / "reports"),
        ]
    )
    out, err = capsys.readouterr()
    assert (code, out) == (0, "")
    assert (
        err.startswith(
            "note: study 'headeronly' has no figure to export: House-Brackmann grade (observer): "
            "not drawn, no patient has both a before and an after value."
        )
        and err.count("\n") == 1
    )


def test_redcap_classic_export_without_visits_runs_to_the_end(tmp_path, capsys):
    _nothing_analysed(capsys, redcap_without_visits(tmp_path / "raw"), tmp_path)


def test_outcome_without_pairs_gets_its_table_2_row_and_reliability_is_estimated(tmp_path, capsys):
    reports = _nothing_analysed(capsys, reliability_only(tmp_path / "raw"), tmp_path)
    body, _ = _table_2(reports)
    assert body["Outcome"].tolist() == [
        "House-Brackmann grade (observer)",
        "House-Brackmann grade (surgeon)",
    ]
    reliability = pd.read_csv(reports / "tables" / "reliability.csv")
    assert (reliability["n_targets"] == 5).all() and reliability["estimate"].notna().all()
    assert (reports / "tables" / "etable_reliability.csv").is_file()


# --------------------------------------------------------------------------- table_2 alone


def test_table_2_of_an_outcome_without_pairs_beside_one_with():
    from pipeline.render import tables

    outcomes = pd.DataFrame(
        {
            "outcome": ["a", "b"],
            "score": ["s", "s"],
            "label": ["A", "B"],
            "higher_is_better": [True, True],
        }
    )
    results = pd.DataFrame(
        {
            "outcome": ["a", "b"],
            "score": ["s", "s"],
            "pre_visit": "pre",
            "post_visit": "post",
            "n_pairs": [3, 0],
            "pre_mean": [1.0, None],
            "pre_sd": [0.5, None],
            "post_mean": [2.0, None],
            "post_sd": [0.5, None],
            "mean_diff": [1.0, None],
            "ci_low": [0.2, None],
            "ci_high": [1.8, None],
            # as read back from the warehouse: a missing text is None
            "test_used": ["paired t", None],
            "p_used": [0.04, None],
            "note": ["", None],
        }
    )
    table = tables.table_2(results, outcomes, conf_level=0.95)
    assert table.body["P"].tolist() == [".04", "—"]
    assert table.body["Mean change (95% CI)"].tolist() == ["1.0 (0.2 to 1.8)", "not estimable"]
    assert "P values are two-sided, from the paired t test on the paired values." in table.footnotes
    empty = tables.table_2(results.iloc[:0], outcomes, conf_level=0.95)
    assert empty.body.empty and list(empty.body.columns) == list(table.body.columns)


# --------------------------------------------------------------------------- the warehouse's name


def test_warehouse_named_after_the_study(tiny_study, tmp_path, capsys):
    # DuckDB names a database after its file: tiny.duckdb is catalog "tiny", as the study's schema.
    code, _, err = _run(capsys, tiny_study, tmp_path, warehouse_name="tiny.duckdb")
    assert (code, err) == (0, "")
    con = warehouse.connect(tmp_path / "tiny.duckdb", read_only=True)
    try:
        assert warehouse.scalar(con, "SELECT count(*) FROM tiny.paired_tests") == 1
    finally:
        con.close()


def test_study_named_like_duckdbs_in_memory_database_validates_and_runs(
    tiny_study, tmp_path, capsys
):
    # An in-memory DuckDB database is catalog "memory": `outcomes validate` works in one.
    spec = tiny_study / "study.toml"
    spec.write_text(spec.read_text().replace('name = "tiny"', 'name = "memory"'))
    assert (
        main(["validate", str(tiny_study)]) == 1
    )  # rows would be quarantined, as for the tiny study
    out = capsys.readouterr()
    assert "visits.csv: 10 rows read, 6 accepted, 4 quarantined" in out.out and out.err == ""
    code, _, err = _run(capsys, tiny_study, tmp_path)
    assert (code, err) == (0, "")


# --------------------------------------------------------------------------- outcomes report


# One patient: one rater's agreement cannot be estimated; no pairs: agreement is all there is.
@pytest.mark.parametrize(
    "study, n_pairs, says, agreement",
    [
        (one_subject, ["1", "0"], "House-Brackmann grade (surgeon): not drawn", False),
        (reliability_only, ["0", "0"], "Nothing to analyse", True),
    ],
    ids=["one_subject", "without_pairs"],
)
def test_degenerate_study_through_dagster(
    tmp_path, monkeypatch, capsys, study, n_pairs, says, agreement
):
    folder = study(tmp_path / "raw", LENIENT_CHECKS)
    set_report_environment(monkeypatch, folder.parent, tmp_path)
    code = main(["report"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert f"reports/{folder.name}/report.html" in out.replace(str(tmp_path) + "/", "")
    reports = tmp_path / "reports" / folder.name
    assert _table_2(reports)[0]["n pairs"].tolist() == n_pairs
    assert says in _report_text(reports)
    assert (
        pd.read_csv(reports / "tables" / "reliability.csv")["estimate"].notna().all() == agreement
    )


def test_study_without_pairs_is_stopped_by_the_default_checks_in_one_line(
    tmp_path, monkeypatch, capsys
):
    # A study with no pairs at all: at the default min_paired_share the check stops the run.
    study = header_only(tmp_path / "raw")
    set_report_environment(monkeypatch, study.parent, tmp_path)
    code = main(["report"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: headeronly/") and "pairing_completeness" in err


def test_folder_without_a_spec_is_refused_naming_it(tiny_study, tmp_path, monkeypatch, capsys):
    raw = tiny_study.parent
    (raw / "new_study").mkdir()
    (raw / "new_study" / "visits.csv").write_text("code,visit\n")
    set_report_environment(monkeypatch, raw, tmp_path)
    code = main(["report"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert (
        err.startswith(f"error: {raw / 'new_study'} holds no study.toml")
        and "data/raw/demo/study.toml" in err
    )
    # Named alone, the same.
    assert main(["report", "--study", "new_study"]) == 2
    assert f"{raw / 'new_study'} holds no study.toml" in capsys.readouterr().err


def test_spec_whose_files_are_missing_is_refused_naming_the_folder(
    tiny_study, tmp_path, monkeypatch, capsys
):
    (tiny_study / "visits.csv").unlink()
    set_report_environment(monkeypatch, tiny_study.parent, tmp_path)
    code = main(["report"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"names visits.csv, which is not in {tiny_study}. Put the export there" in err


def test_dagster_definitions_load_with_no_study(tmp_path, monkeypatch):
    # `make ui` on an empty data/raw/: an empty graph, not a code location that fails to load.
    from assets.definitions import build_definitions

    monkeypatch.setenv("OUTCOMES_RAW", str(tmp_path))
    assert not list(build_definitions().resolve_all_asset_keys())


@pytest.mark.parametrize("content", ["nothing", "hidden folder"])
def test_no_study_at_all_says_so(tmp_path, monkeypatch, capsys, content):
    raw = tmp_path / "raw"
    raw.mkdir()
    if content == "hidden folder":
        (raw / ".cache").mkdir()  # not a study folder: ignored
    set_report_environment(monkeypatch, raw, tmp_path)
    code = main(["report"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(
        f"error: no study under {raw}: add a folder holding a study.toml and its exports"
    )
