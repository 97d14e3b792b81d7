"""Every output traceable to its inputs, spec and code."""

from __future__ import annotations

import hashlib
import json

import duckdb

from pipeline.spec.study import load_study
from pipeline.steps import run_study


def test_provenance_names_inputs_spec_commit_and_versions(tiny_study, tmp_path):
    run_study(duckdb.connect(), load_study(tiny_study), tmp_path)
    record = json.loads((tmp_path / "tiny" / "provenance.json").read_text())
    digest = hashlib.sha256((tiny_study / "visits.csv").read_bytes()).hexdigest()
    visits = next(f for f in record["inputs"] if f["file"] == "visits.csv")
    assert visits["sha256"] == digest
    assert (visits["rows_read"], visits["rows_accepted"], visits["rows_quarantined"]) == (10, 6, 4)
    assert (
        record["spec"]["sha256"]
        == hashlib.sha256((tiny_study / "study.toml").read_bytes()).hexdigest()
    )
    assert len(record["code"]["commit"]) == 40
    assert record["packages"]["duckdb"] and record["packages"]["scipy"]


def test_every_run_is_kept_in_the_warehouse_while_the_outputs_stay_byte_identical(tmp_path):
    import re
    import shutil

    from pipeline import warehouse
    from small_study import file_bytes, full_run

    # A second run of the small study on a copy of the first's warehouse and reports.
    base = full_run()
    shutil.copy(base / "warehouse.duckdb", tmp_path / "w.duckdb")
    shutil.copytree(base / "reports", tmp_path / "reports")
    folder = base / "raw" / "small"
    study = load_study(folder)
    con = warehouse.connect(tmp_path / "w.duckdb")
    run_study(con, study, tmp_path / "reports")
    runs = con.execute("SELECT * FROM meta.runs ORDER BY started_at").df()
    con.close()
    assert file_bytes(tmp_path / "reports") == file_bytes(
        base / "reports"
    )  # the runs table is in the warehouse only

    record = json.loads((tmp_path / "reports" / "small" / "provenance.json").read_text())
    assert len(runs) == 2 and runs["run_id"].nunique() == 2
    assert runs["finished_at"].notna().all() and (runs["step"] == "all").all()
    assert (runs["study"] == "small").all()
    # The fingerprint in provenance.json leads to these rows, and each row names its inputs.
    assert (runs["input_fingerprint"] == record["input_fingerprint"]).all()
    assert (runs["spec_sha256"] == record["spec"]["sha256"]).all()
    assert (runs["code_commit"] == record["code"]["commit"]).all()
    inputs = json.loads(runs["inputs"].iloc[-1])
    digest = hashlib.sha256((folder / "visits.csv").read_bytes()).hexdigest()
    assert {
        "file": "visits.csv",
        "sha256": digest,
        "bytes": (folder / "visits.csv").stat().st_size,
    } in inputs
    assert json.loads(runs["analysis_overrides"].iloc[-1]) == {}
    assert json.loads(runs["packages"].iloc[-1])["duckdb"]
    # provenance.json itself holds no time: the same inputs give the same bytes.
    text = json.dumps(record)
    assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}|\b\d{2}:\d{2}:\d{2}\b", text)


def test_a_run_records_its_overrides_and_allowed_identifiers(tiny_study):
    from pipeline.provenance import finish_run, start_run
    from pipeline.spec.study import with_overrides

    spec = tiny_study / "study.toml"
    spec.write_text(
        spec.read_text()
        + '\n[identifiers.allow]\nage = "ages of adults under 90, in whole years"\n'
    )
    study = with_overrides(load_study(tiny_study), {"alpha": 0.01, "post_min_day": 180})
    con = duckdb.connect()
    run_id = start_run(con, study, step="paired_tests")
    row = con.execute(
        "SELECT analysis_overrides, identifiers_allowed, finished_at FROM meta.runs "
        "WHERE run_id = ?",
        [run_id],
    ).fetchall()[0]
    assert json.loads(row[0]) == {"alpha": 0.01, "post_min_day": 180}
    assert json.loads(row[1]) == [
        {"column": "age", "justification": "ages of adults under 90, in whole years"}
    ]
    assert row[2] is None  # not finished yet: a run that stops here stays marked so
    finish_run(con, run_id, "paired_tests")
    assert con.execute("SELECT count(finished_at) FROM meta.runs").fetchall()[0][0] == 1


def test_a_runs_table_from_before_run_statuses_gains_them(tiny_study):
    from pipeline.provenance import recorded_run

    con = duckdb.connect()
    con.execute("CREATE SCHEMA meta")
    con.execute("""CREATE TABLE meta.runs (run_id VARCHAR, study VARCHAR, step VARCHAR,
        started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, code_commit VARCHAR, code_dirty BOOLEAN,
        spec_sha256 VARCHAR, input_fingerprint VARCHAR, inputs JSON, analysis_overrides JSON,
        identifiers_allowed JSON, python VARCHAR, packages JSON)""")
    con.execute(
        "INSERT INTO meta.runs (run_id, step, started_at, finished_at) VALUES "
        "('old', 'all', now(), now()), ('stopped', 'all', now(), NULL)"
    )
    with recorded_run(con, load_study(tiny_study)) as run_id:
        pass
    rows = con.execute(
        "SELECT run_id, status, exit_code, error, finished_at IS NOT NULL FROM meta.runs "
        "ORDER BY run_id = ?, run_id",
        [run_id],
    ).fetchall()
    # A finish time meant a finished run; a row without one cannot say how it ended.
    assert rows == [
        ("old", "finished", 0, None, True),
        ("stopped", None, None, None, False),
        (run_id, "finished", 0, None, True),
    ]
