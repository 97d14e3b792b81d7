"""One warehouse file per study: studies materialized at once by Dagster's multiprocess executor,
each writing its own file under its own run lock, and read together through one read-only view."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.cli import main
from assets.graph import executor_for
from conftest import run_args, set_report_environment, warehouse_file, write_study
from pipeline import paths, warehouse
from specs import study_toml

# Five patients graded before surgery and a year after: enough pairs for the default checks.
PATIENTS = """
    code,age
    P1,50
    P2,61
    P3,44
    P4,38
    P5,70
"""
VISITS = """
    code,visit,day,hb_observer
    P1,pre,-10,4
    P1,m12,370,2
    P2,pre,-5,5
    P2,m12,365,3
    P3,pre,-3,3
    P3,m12,380,2
    P4,pre,-7,4
    P4,m12,360,4
    P5,pre,-2,5
    P5,m12,400,3
"""
STUDIES = ("north", "south")


def _study(raw: Path, name: str) -> Path:
    return write_study(raw / name, PATIENTS, VISITS, study_toml({"study": {"name": name}}))


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory):
    """``outcomes report`` of two studies in one Dagster run: (workdir, the run's event log)."""
    workdir = tmp_path_factory.mktemp("studies")
    for name in STUDIES:
        _study(workdir / "raw", name)
    with pytest.MonkeyPatch.context() as monkeypatch:
        set_report_environment(monkeypatch, workdir / "raw", workdir)
        assert main(["report"]) == 0
        with dg.DagsterInstance.get() as instance:
            (run,) = instance.get_runs()
            events = [
                (record.dagster_event.event_type_value, record.dagster_event.step_key, record)
                for record in instance.all_logs(run.run_id)
                if record.dagster_event is not None and record.dagster_event.step_key
            ]
    return workdir, events


# Two studies' whole runs in processes of their own: minutes on a busy 2-core machine.
@pytest.mark.slow
def test_two_studies_materialize_at_once_each_into_its_own_warehouse(two_studies):
    workdir, events = two_studies
    assert sorted(p.name for p in (workdir / "warehouses").glob("*.duckdb")) == [
        "north.duckdb",
        "south.duckdb",
    ]
    for name in STUDIES:
        con = warehouse.connect(warehouse_file(workdir, name), read_only=True)
        try:
            schemas = {
                s
                for (s,) in con.execute(
                    "SELECT schema_name FROM information_schema.schemata "
                    "WHERE catalog_name = current_database()"
                ).fetchall()
            }
            assert name in schemas and not (set(STUDIES) - {name}) & schemas
            # Five pairs of House-Brackmann grades, tested once for the whole cohort.
            assert con.execute(
                f"SELECT n_pairs FROM {name}.paired_tests WHERE \"group\" = 'all'"
            ).fetchall() == [(5,)]
            # Every step of this study's run is recorded here, and only this study's.
            steps = con.execute("SELECT DISTINCT study, step, status FROM meta.runs").fetchall()
            assert {(study, status) for study, _, status in steps} == {(name, "finished")}
            assert len(steps) == 8
        finally:
            con.close()
        assert (workdir / "reports" / name / "report.html").is_file()

    # Every step ran in a process of its own (the multiprocess executor), none in this one.
    started = [r for kind, _, r in events if kind == "STEP_WORKER_STARTED"]
    assert len(started) == len({key for _, key, _ in events})
    # The second study's first step was started before the first study's first step ended: the
    # studies were computed at once (the log is in the order the events were stored).
    order = [(kind, key) for kind, key, _ in events]
    first = {name: f"{name}__raw_files" for name in STUDIES}
    launched = {n: order.index(("STEP_WORKER_STARTING", first[n])) for n in STUDIES}
    ended = {n: order.index(("STEP_SUCCESS", first[n])) for n in STUDIES}
    assert max(launched.values()) < min(ended.values())
    # Never two steps of one study at once: its warehouse file takes one writer.
    for name in STUDIES:
        running = 0
        for kind, key, _ in events:
            if key.startswith(f"{name}__"):
                running += {"STEP_START": 1, "STEP_SUCCESS": -1}.get(kind, 0)
                assert running <= 1, key


# Two studies' whole runs in processes of their own: minutes on a busy 2-core machine.
@pytest.mark.slow
def test_all_studies_reads_every_study_file_together_and_writes_none(two_studies):
    workdir, _ = two_studies
    con = warehouse.connect(workdir / "warehouses", read_only=True)  # a folder: every study
    try:
        assert con.execute(
            "SELECT study, n_pairs FROM paired_tests WHERE \"group\" = 'all' ORDER BY study"
        ).fetchall() == [("north", 5), ("south", 5)]
        assert con.execute("SELECT count(*) FROM south.pairs").fetchall() == [(5,)]
        assert con.execute("SELECT DISTINCT study FROM meta.runs ORDER BY 1").fetchall() == [
            ("north",),
            ("south",),
        ]
        with pytest.raises(duckdb.Error):
            con.execute('CREATE TABLE "study-north".north.x AS SELECT 1')
    finally:
        con.close()
    with pytest.raises(ValueError, match="folder of warehouses, one per study"):
        warehouse.connect(workdir / "warehouses")


def test_a_study_s_run_lock_leaves_the_other_studies_free(tmp_path, capsys):
    raw, folder = tmp_path / "raw", tmp_path / "warehouses"
    north = _study(raw, "north")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pipeline import warehouse\n"
            "with warehouse.run_lock(warehouse.Path(sys.argv[1])):\n"
            "    print('held', flush=True); time.sleep(60)",
            str(folder / "north.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        # The other study's file takes a writer; this study's run is refused, before it starts.
        warehouse.connect(folder / "south.duckdb").close()
        assert main([*run_args(north, tmp_path), "--warehouse", str(folder)]) == 3
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert f"process {holder.pid} holds the lock {folder / 'north.duckdb.lock'}" in (
        capsys.readouterr().err
    )


def test_the_warehouse_location_is_a_folder_of_study_files_or_one_file(tmp_path):
    assert paths.warehouse_path("north", tmp_path) == tmp_path / "north.duckdb"
    assert paths.warehouse_dir(tmp_path) == tmp_path
    # A .duckdb path is one file for every study, as before there was a file per study.
    single = tmp_path / "all.duckdb"
    assert paths.warehouse_path("north", single) == paths.warehouse_path("south", single) == single
    assert paths.warehouse_dir(single) == tmp_path


def test_several_studies_run_in_processes_of_their_own_unless_they_share_a_file(tmp_path):
    assert executor_for(1, tmp_path) is dg.in_process_executor
    assert executor_for(2, tmp_path).name == "multiprocess_executor"
    assert executor_for(2, tmp_path / "all.duckdb") is dg.in_process_executor
