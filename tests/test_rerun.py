"""The statistician's loop: a rerun with one analysis option changed runs only the steps that
read it and rewrites only the files whose bytes change, and gives what a cold run with that
option in the spec gives."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import duckdb
import pytest

from pipeline import cli, files
from pipeline.spec.schema import OVERRIDABLE
from pipeline.spec.study import SpecError, load_study
from pipeline.steps import run_study
from small_study import full_run, write_small_study
from specs import edit_spec


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: its bytes and modification time (ns)."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _copy_of_full_run(tmp_path: Path) -> tuple[Path, Path]:
    """The small study's shared run copied (modification times kept): warehouse, reports."""
    base = full_run()
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy2(base / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    shutil.copytree(base / "reports", tmp_path / "reports")
    return tmp_path / "warehouse.duckdb", tmp_path / "reports"


def _rerun(warehouse: Path, reports: Path, overrides: dict) -> dict:
    study = load_study(full_run() / "raw" / "small")
    con = duckdb.connect(str(warehouse))
    try:
        return run_study(con, study, reports, overrides)
    finally:
        con.close()


def test_a_rerun_with_one_option_changed_keeps_every_unchanged_file(tmp_path):
    warehouse, reports = _copy_of_full_run(tmp_path)
    before = _state(reports / "small")

    # Nothing changed: every step reused, no file touched.
    assert _rerun(warehouse, reports, {})["reused"] == [
        "ingest",
        "score",
        "pair",
        "analyse",
        "secondary",
        "tables",
        "figures",
        "report",
    ]
    assert _state(reports / "small") == before

    # The paired test changed: the visits are paired as before, so the steps up to pairing are
    # reused; the test's results, the tables showing them and the report are rewritten.
    outcome = _rerun(warehouse, reports, {"test": "t"})
    assert outcome["reused"] == ["ingest", "score", "pair"]
    after = _state(reports / "small")
    assert set(after) == set(before)
    changed = {name for name in after if after[name][0] != before[name][0]}
    assert {
        "provenance.json",
        "tables/paired_tests.csv",
        "tables/table_2.csv",
        "tables/table_2.docx",
        "report.html",
        "report.docx",
    } <= changed
    # Table 1 and the pictures show no test: same bytes, not written again.
    kept = set(after) - changed
    assert {"tables/table_1.csv", "tables/table_1.docx"} <= kept
    assert any(name.endswith(".png") for name in kept)
    for name in kept:
        assert after[name][1] == before[name][1], f"{name} was written again with the same bytes"
    record = json.loads((reports / "small" / "provenance.json").read_text(encoding="utf-8"))
    assert record["analysis_overrides"] == {"test": "t"}


def _report_text(folder: Path, spec_sha: str) -> tuple[str, str]:
    """report.html and the Word report's document text, the spec's hash blanked."""
    with zipfile.ZipFile(folder / "report.docx") as docx:
        document = docx.read("word/document.xml").decode("utf-8")
    html = (folder / "report.html").read_text(encoding="utf-8")
    return html.replace(spec_sha, "<spec>"), document.replace(spec_sha, "<spec>")


@pytest.mark.slow  # two runs of the small study, figures included (about 10 s)
def test_a_rerun_with_an_option_equals_a_cold_run_with_it_in_the_spec(tmp_path):
    warehouse, reports = _copy_of_full_run(tmp_path / "rerun")
    assert _rerun(warehouse, reports, {"conf_level": 0.9})["reused"] == [
        "ingest",
        "score",
        "pair",
    ]
    folder = write_small_study(tmp_path / "cold" / "raw" / "small")
    edit_spec(folder, {"analysis": {"conf_level": 0.9}})
    spec_set = load_study(folder)
    con = duckdb.connect(str(tmp_path / "cold" / "warehouse.duckdb"))
    try:
        run_study(con, spec_set, tmp_path / "cold" / "reports")
    finally:
        con.close()
    rerun, cold = reports / "small", tmp_path / "cold" / "reports" / "small"
    outputs = {
        name: data
        for name, (data, _) in _state(rerun).items()
        if name not in ("provenance.json", "report.html", "report.docx")
    }
    assert outputs == {
        name: data
        for name, (data, _) in _state(cold).items()
        if name not in ("provenance.json", "report.html", "report.docx")
    }
    # The reports differ only in the spec's hash, which the provenance table shows.
    overridden = load_study(full_run() / "raw" / "small")
    assert _report_text(rerun, overridden.spec_sha256) == _report_text(cold, spec_set.spec_sha256)


def test_set_reads_options_as_the_spec_names_them():
    assert cli.analysis_overrides(
        ["conf_level=0.9", "analysis.test=t", "analysis.post.min_day=180", "post_visit=m12"]
    ) == {"conf_level": 0.9, "test": "t", "post_min_day": 180, "post_visit": "m12"}
    with pytest.raises(SpecError, match="OPTION=VALUE"):
        cli.analysis_overrides(["conf_level"])


def test_an_unknown_or_invalid_option_is_refused_before_anything_runs(tmp_path, capsys):
    study = write_small_study(tmp_path / "raw" / "small")
    args = ["--warehouse", str(tmp_path / "w.duckdb"), "--reports", str(tmp_path / "reports")]
    assert cli.main(["run", "--study", str(study), "--set", "conf_levl=0.9", *args]) == 2
    assert "'conf_levl' cannot be overridden; did you mean 'conf_level'" in capsys.readouterr().err
    assert cli.main(["run", "--study", str(study), "--set", "conf_level=2", *args]) == 2
    assert "'conf_level' must lie strictly between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "w.duckdb").exists() and not (tmp_path / "reports").exists()


def test_the_help_names_every_option_that_can_be_set(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in OVERRIDABLE:
        assert option in text


def test_equal_bytes_are_not_written_again(tmp_path):
    path = tmp_path / "a.txt"
    assert files.write_text(path, "one\n")
    stamp = path.stat().st_mtime_ns
    with files.recording() as written:
        assert not files.write_text(path, "one\n")
    assert path.stat().st_mtime_ns == stamp and written == [path]
    assert files.write_text(path, "two\n") and path.read_text() == "two\n"
