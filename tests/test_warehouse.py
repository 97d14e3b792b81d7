"""The warehouse file: one writer at a time, and a clear message when it is taken."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from conftest import run_args
from pipeline import warehouse


def test_a_held_warehouse_gives_one_clear_message(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    warehouse.connect(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', "
                "flush=True); time.sleep(60)"
            ),
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            warehouse.WarehouseLocked, match="in use by another process .* then try again"
        ):
            warehouse.connect(path)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    warehouse.connect(path).close()  # free again once the holder has gone


def test_written_file_opens_read_only(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = warehouse.connect(path)
    con.execute("CREATE TABLE t AS SELECT 42 AS x")
    con.close()
    reader = warehouse.connect(path, read_only=True)
    assert warehouse.scalar(reader, "SELECT x FROM t") == 42
    reader.close()


# A real `outcomes run` that stops inside its scoring step until told to go on.
# A run that stops, holding the lock, as it comes to its score step (which a rerun may reuse:
# the pause is in the step runner, before it decides).
PAUSED_RUN = r"""
import sys
from pipeline import cli, rerun

run = rerun.run


def paused(con, study, reports_dir, step, *args):
    if step == "score":
        print("scoring", flush=True)
        sys.stdin.readline()
    return run(con, study, reports_dir, step, *args)


rerun.run = paused
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_second_run_stops_with_one_line_naming_the_lock_and_the_first_completes(tmp_path):
    import shutil

    from small_study import full_run, study_tables

    # Two runs of the small study over a complete earlier run (whose figures need no redrawing).
    base = full_run()
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(base / "warehouse.duckdb", path)
    shutil.copytree(base / "reports", tmp_path / "reports")
    args = run_args(base / "raw" / "small", tmp_path, path.name)
    first = subprocess.Popen(
        [sys.executable, "-c", PAUSED_RUN, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # (The lines before it report the ingest.)
        lines = iter(first.stdout.readline, "")
        assert "scoring" in (line.strip() for line in lines)
        second = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 3
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert (
            f"holds the lock {path}.lock" in second.stderr
            and f"process {first.pid}" in second.stderr
        )
        assert "Wait for that run to finish, or stop it, then run again" in second.stderr
        out, err = first.communicate("go on\n", timeout=120)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0, err

    # The first run's tables are whole: the same as a run that had the warehouse to itself.
    reader = warehouse.connect(path, read_only=True)
    ours = study_tables(reader, "small")
    finished = warehouse.scalar(reader, "SELECT count(finished_at) FROM meta.runs")
    reader.close()
    alone = warehouse.connect(base / "warehouse.duckdb", read_only=True)
    expected = study_tables(alone, "small")
    alone.close()
    assert set(ours) == set(expected) and finished == 2
    for name in expected:
        assert ours[name].equals(expected[name]), name


HOLD_LOCK = (
    "import sys, time; from pipeline import warehouse\n"
    "with warehouse.run_lock(warehouse.Path(sys.argv[1])):\n"
    "    print('held', flush=True); time.sleep(60)"
)


def test_every_writer_respects_the_run_lock_and_a_killed_holder_frees_it(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        # A Dagster step (a plain writer's connection) and a second run are both refused ...
        with pytest.raises(warehouse.WarehouseLocked, match=f"process {holder.pid} holds the lock"):
            warehouse.connect(path)
        with pytest.raises(warehouse.WarehouseLocked, match="then run again"):
            with warehouse.run_lock(path):
                pass
        # ... while reading the last complete state stays possible.
        warehouse.connect(path, read_only=True).close() if path.exists() else None
    finally:
        holder.kill()  # SIGKILL: no clean-up code runs; the kernel releases the lock
        holder.wait()
    with warehouse.run_lock(path):
        warehouse.connect(path).close()


def test_a_transaction_is_all_or_nothing_and_nests(tmp_path):
    con = warehouse.connect(tmp_path / "warehouse.duckdb")
    con.execute("CREATE TABLE a AS SELECT 1 AS x")
    con.execute("CREATE TABLE b AS SELECT 1 AS x")
    with pytest.raises(KeyboardInterrupt):
        with warehouse.transaction(con):
            con.execute("CREATE OR REPLACE TABLE a AS SELECT 2 AS x")
            with warehouse.transaction(con):  # a step called from a larger one joins it
                con.execute("CREATE OR REPLACE TABLE b AS SELECT 2 AS x")
            raise KeyboardInterrupt
    assert warehouse.scalar(con, "SELECT x FROM a") == warehouse.scalar(con, "SELECT x FROM b") == 1
    step = warehouse.atomic(
        lambda con: (
            con.execute("CREATE OR REPLACE TABLE a AS SELECT 3 AS x"),
            con.execute("CREATE OR REPLACE TABLE b AS SELECT 3 AS x"),
        )
    )
    step(con)
    assert warehouse.scalar(con, "SELECT x FROM a") == warehouse.scalar(con, "SELECT x FROM b") == 3
    con.close()


def test_read_shared_text_is_read_frame():
    """The same frame as read_frame (values, NULLs, dtypes), over several slices of the result,
    each repeated text value one string object; an empty result too."""
    import duckdb
    import pandas as pd

    from pipeline.warehouse import read_frame, read_shared_text

    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT 'outcome_' || (i % 7) AS outcome,
                   CASE WHEN i % 11 = 0 THEN NULL ELSE 'score' END AS score,
                   's' || i AS subject, i AS n, i / 3 AS value FROM range(300000) r(i)""")
    sql = "SELECT * FROM t ORDER BY n"
    shared, plain = read_shared_text(con, sql), read_frame(con, sql)
    pd.testing.assert_frame_equal(shared, plain, check_exact=True)
    assert len({id(v) for v in shared["outcome"]}) == 7
    empty = "SELECT * FROM t WHERE n < 0"
    pd.testing.assert_frame_equal(read_shared_text(con, empty), read_frame(con, empty))
