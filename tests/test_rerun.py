"""The statistician's loop: a rerun with one analysis option changed runs only the steps that
read it and rewrites only the files whose bytes change, and gives what a cold run with that
option in the spec gives."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline import cli, files, kept_results
from pipeline.spec.schema import OVERRIDABLE
from pipeline.spec.study import SpecError, load_study, with_overrides
from pipeline.steps import analyse, run_study, secondary_analyses
from small_study import file_bytes, full_run, study_tables, write_small_study
from specs import edit_spec


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: its bytes and modification time (ns)."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _copy_of_full_run(tmp_path: Path) -> tuple[Path, Path]:
    """The small study's shared run copied (modification times kept): warehouse (and the
    results kept beside it), reports."""
    base = full_run()
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy2(base / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    shutil.copytree(base / "warehouse.kept", tmp_path / "warehouse.kept")
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


def _kept_labels(con, study) -> dict[str, int]:
    """How many results of each analysis are kept for ``study``."""
    kept = kept_results.folder(con, study.name)
    return Counter(p.name.split(".")[0] for p in kept.glob("*.pickle"))


def _analyses(con, study, reports: Path) -> tuple[dict, dict]:
    """The paired tests and secondary analyses of ``study``: every table of its schema, and
    every result CSV."""
    analyse(con, study, reports)
    secondary_analyses(con, study, reports)
    return study_tables(con, study.name), file_bytes(reports / study.name / "tables")


@pytest.mark.parametrize(
    "option, reused, computed",
    [
        # The test is read by the choice of the paired tests alone (chosen_tests, never kept):
        # their statistics, both tests computed, are reused with every other analysis.
        (
            {"test": "t"},
            ["paired_statistics", "change_direction", "correlation", "responders", "ancova_model"],
            [],
        ),
        # Every analysis with a confidence interval reads the level; the directions of change
        # (counts, sign test, McNemar) do not.
        (
            {"conf_level": 0.9},
            ["change_direction"],
            ["paired_statistics", "correlation", "responders", "ancova_model"],
        ),
    ],
)
def test_a_kept_analysis_is_reused_only_when_what_it_reads_is_unchanged(
    tmp_path, option, reused, computed
):
    warehouse, reports = _copy_of_full_run(tmp_path)
    study = with_overrides(load_study(full_run() / "raw" / "small"), option)
    con = duckdb.connect(str(warehouse))
    try:
        before = _kept_labels(con, study)
        kept = _analyses(con, study, reports)
        after = _kept_labels(con, study)
        # Reused: no new entry for that analysis; computed: one more, for the new option.
        assert {label: after[label] - before[label] for label in reused + computed} == {
            **dict.fromkeys(reused, 0),
            **dict.fromkeys(computed, 1),
        }
        # The same analyses with nothing kept: the same tables and files, to the byte.
        shutil.rmtree(kept_results.folder(con, study.name))
        cold = _analyses(con, study, reports)
    finally:
        con.close()
    assert kept[1] == cold[1]
    assert kept[0].keys() == cold[0].keys()
    for name in kept[0]:
        pd.testing.assert_frame_equal(kept[0][name], cold[0][name], check_exact=True, obj=name)


def _one_key(*args, **kwargs) -> str:
    return kept_results.call_key("t", np.sum, args, kwargs)


def test_a_kept_result_is_keyed_by_every_value_type_and_name_of_its_arguments():
    frame = pd.DataFrame({"subject": ["a", "b"], "value": [1.0, 2.0]})
    key = _one_key(frame, 0.95)
    assert _one_key(frame.copy(), 0.95) == key  # content, not identity
    variants = [
        frame.assign(value=[1.0, np.nextafter(2.0, 3.0)]),  # the last bit of one value
        frame.assign(value=[1, 2]),  # integers, not floats
        frame.assign(subject=["a", "c"]),
        frame.assign(subject=["ab", ""]),  # the same text cut elsewhere
        # Text holding the separator the joined text uses, and the same characters cut there.
        frame.assign(subject=["a\0b", "c"]),
        frame.assign(subject=["a", "b\0c"]),
        frame.assign(subject=["a\0", "b"]),
        frame.rename(columns={"value": "score"}),
        frame.iloc[::-1],  # the rows' order
        frame.iloc[::-1].reset_index(drop=True),
        frame.assign(subject=pd.Series(["a", "b"], dtype="category")),
        frame.assign(subject=pd.array(["a", None], dtype=object)),
        frame.assign(subject=pd.array(["a", "None"], dtype=object)),
        frame.assign(subject=[1, "b"]),
        frame.assign(subject=["1", "b"]),
    ]
    keys = [_one_key(f, 0.95) for f in variants] + [
        _one_key(frame, 0.9),
        _one_key(frame, np.float32(0.95)),
        _one_key(frame, conf_level=0.95),
        _one_key(frame, 0.95, {"a": 1, "b": 2}),
        _one_key(frame, 0.95, {"b": 2, "a": 1}),
        kept_results.call_key("other label", np.sum, (frame, 0.95), {}),
        kept_results.call_key("t", np.mean, (frame, 0.95), {}),
    ]
    assert len(set(keys + [key])) == len(keys) + 1
    with pytest.raises(kept_results.Uncacheable):
        _one_key(object())
    with pytest.raises(kept_results.Uncacheable):
        kept_results.call_key("t", lambda x: x, (1,), {})


def test_a_kept_result_is_never_served_across_code_or_a_damaged_entry(tmp_path, monkeypatch):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    calls = []

    def counted(x):
        calls.append(x)
        return pd.DataFrame({"x": [x]})

    # A module-level name, as computed requires of what it keys.
    monkeypatch.setattr(counted, "__qualname__", "counted")
    assert kept_results.computed(con, "s", "t", counted, 1.5)["x"].tolist() == [1.5]
    assert kept_results.computed(con, "s", "t", counted, 1.5)["x"].tolist() == [1.5]
    assert calls == [1.5]
    (kept,) = (tmp_path / "w.kept" / "s").glob("*.pickle")
    # Another version of the code: computed again.
    monkeypatch.setattr(kept_results, "_versions", lambda: "another version of the code")
    kept_results.computed(con, "s", "t", counted, 1.5)
    assert calls == [1.5, 1.5]
    monkeypatch.undo()
    monkeypatch.setattr(counted, "__qualname__", "counted")
    # A damaged entry, a missing one: computed again, and kept anew.
    kept.write_bytes(b"not a pickle")
    assert kept_results.computed(con, "s", "t", counted, 1.5)["x"].tolist() == [1.5]
    kept_results.computed(con, "s", "t", counted, 1.5)
    kept.unlink()
    kept_results.computed(con, "s", "t", counted, 1.5)
    kept_results.computed(con, "s", "t", counted, 1.5)
    assert calls == [1.5] * 4

    # A function that changes its argument is not reused: its change is part of its effect.
    def appends(items):
        items.append(1)
        return len(items)

    monkeypatch.setattr(appends, "__qualname__", "appends")
    given = []
    assert kept_results.computed(con, "s", "t", appends, given) == 1
    assert kept_results.computed(con, "s", "t", appends, []) == 1
    assert given == [1]
    con.close()
    # A warehouse in memory keeps nothing.
    memory = duckdb.connect()
    assert kept_results.folder(memory, "s") is None
    assert kept_results.computed(memory, "s", "t", counted, 2.5)["x"].tolist() == [2.5]
    memory.close()


def test_a_restricted_studys_kept_results_are_its_owners_alone(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    con.close()
    warehouse.chmod(0o600)  # a restricted study's warehouse (pipeline.warehouse.make_private)
    con = duckdb.connect(str(warehouse))
    kept_results.computed(con, "s", "t", np.add, 1, 2)
    con.close()
    for made in (tmp_path / "w.kept", tmp_path / "w.kept" / "s"):
        assert made.stat().st_mode & 0o777 == 0o700
    (kept,) = (tmp_path / "w.kept" / "s").glob("*.pickle")
    assert kept.stat().st_mode & 0o777 == 0o600
