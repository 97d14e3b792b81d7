"""Every failure a user can cause ends in one line saying what happened and how to fix it,
with a documented exit code; ``--debug`` shows the traceback instead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from assets.cli import main
from conftest import report_environment, run_args, set_report_environment, warehouse_file
from pipeline import warehouse


def _run(capsys, study, tmp_path, *extra):
    code = main([*extra, *run_args(study, tmp_path)])
    err = capsys.readouterr().err
    return code, err


def _report(monkeypatch, capsys, study, tmp_path) -> tuple[int, str]:
    """`outcomes report` (a Dagster run) of the study's folder, with a warehouse, reports and
    Dagster home of its own."""
    set_report_environment(monkeypatch, study.parent, tmp_path)
    code = main(["report"])
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith(("error: ", "interrupted: ")), err
    assert "Traceback" not in err
    return err


def _warehouse(tmp_path):
    """The warehouse the test's runs write: `outcomes run` a file of its own (``run_args``),
    `outcomes report` the study's file in its folder of warehouses."""
    path = tmp_path / "w.duckdb"
    return path if path.exists() else warehouse_file(tmp_path, "tiny")


def _runs(tmp_path):
    """meta.runs of the warehouse the test's runs write, oldest first."""
    con = warehouse.connect(_warehouse(tmp_path), read_only=True)
    try:
        return con.execute("SELECT * FROM meta.runs ORDER BY started_at").df()
    finally:
        con.close()


def _add_identifiers(study) -> None:
    """An e-mail column in the subjects export: the identifier guard refuses the file."""
    patients = study / "patients.csv"
    lines = patients.read_text().splitlines()
    patients.write_text(
        "\n".join(
            [lines[0] + ",contact"]
            + [f"{line},p{i}@example.org" for i, line in enumerate(lines[1:])]
        )
        + "\n"
    )


def test_missing_file(tiny_study, tmp_path, capsys):
    (tiny_study / "visits.csv").unlink()
    code, err = _run(capsys, tiny_study, tmp_path)
    assert code == 2
    assert "setting 'visits.file' names visits.csv, which is not in" in _one_line(err)
    assert "Put the export there or correct the file name" in err


@pytest.mark.parametrize(
    "added, message",
    [
        ('restricted = "yes"', "setting 'study.restricted' must be true or false, got 'yes'"),
        (
            "restrictd = true",
            "setting 'study.restrictd' is not a setting of [study]; did you mean 'restricted'?",
        ),
    ],
    ids=["restricted_not_a_boolean", "misspelt"],
)
def test_bad_study_setting_is_refused(tiny_study, tmp_path, capsys, added, message):
    spec = tiny_study / "study.toml"
    spec.write_text(spec.read_text().replace("synthetic = true", f"synthetic = true\n{added}"))
    code, err = _run(capsys, tiny_study, tmp_path)
    assert code == 2
    assert message in _one_line(err)


def test_identifier_found(tiny_study, tmp_path, capsys):
    _add_identifiers(tiny_study)
    code, err = _run(capsys, tiny_study, tmp_path)
    assert code == 2
    assert "refused, it carries identifiers" in _one_line(err) and "column 'contact'" in err
    assert "example.org" not in err  # the message names the column and rule, never the value


def test_a_refused_run_is_on_record_as_refused_and_ended(tiny_study, tmp_path, capsys):
    assert _run(capsys, tiny_study, tmp_path)[0] == 0
    _add_identifiers(tiny_study)
    assert _run(capsys, tiny_study, tmp_path)[0] == 2
    runs = _runs(tmp_path)
    assert runs[["status", "exit_code", "error"]].values.tolist() == [
        ["finished", 0, None],
        ["refused", 2, "IdentifiersFound"],
    ]
    # Ended, so not taken for an interrupted run (whose finish time stays empty).
    assert runs["finished_at"].notna().all() and (runs["finished_at"] >= runs["started_at"]).all()
    # The record names the error's class, never its message or a value of the export.
    assert (
        "example.org" not in runs.to_csv() and "contact" not in runs.drop(columns="inputs").to_csv()
    )


def test_lock_held(tiny_study, tmp_path, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pipeline import warehouse\n"
                "with warehouse.run_lock(warehouse.Path(sys.argv[1])):\n"
                "    print('held', flush=True); time.sleep(60)"
            ),
            str(tmp_path / "w.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, err = _run(capsys, tiny_study, tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert code == 3
    assert f"process {holder.pid} holds the lock {tmp_path / 'w.duckdb.lock'}" in _one_line(err)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", ["run", "report"])
def test_out_of_disk_space(tiny_study, tmp_path, capsys, monkeypatch, command):
    # /dev/full accepts the open and refuses every write with ENOSPC, as a full disk does.
    folder = tmp_path / "reports" / "tiny"
    folder.mkdir(parents=True)
    (folder / "provenance.json").symlink_to("/dev/full")
    if command == "run":
        code, err = _run(capsys, tiny_study, tmp_path)
    else:
        code, err = _report(monkeypatch, capsys, tiny_study, tmp_path)
    assert code == 4
    assert "error: out of disk space ([Errno 28] No space left on device)" in _one_line(err)
    assert "then run again; the warehouse keeps its last complete state" in err
    step = (
        "all" if command == "run" else "ingested"
    )  # writing provenance.json fails in the ingest step
    runs = _runs(tmp_path)
    assert runs.loc[runs["step"] == step, ["status", "exit_code", "error"]].values.tolist() == [
        ["failed", 4, "OSError"]
    ]
    assert runs["finished_at"].notna().all()


def test_a_refused_input_in_a_dagster_run_is_one_line_too(
    tiny_study, tmp_path, monkeypatch, capsys
):
    _add_identifiers(tiny_study)
    code, err = _report(monkeypatch, capsys, tiny_study, tmp_path)
    assert code == 2
    assert err.startswith("error: tiny/ingested: patients.csv: refused, it carries identifiers"), (
        err
    )
    _one_line(err)
    # The refused step is on record as refused and ended; no step after it ran.
    runs = _runs(tmp_path)
    assert runs[["step", "status", "exit_code", "error"]].values.tolist() == [
        ["ingested", "refused", 2, "IdentifiersFound"]
    ]
    assert runs["finished_at"].notna().all() and "example.org" not in runs.to_csv()


def test_a_failed_data_check_in_a_dagster_run_is_one_line_saying_where_to_look(
    tiny_study, tmp_path, monkeypatch, capsys
):
    # One subject of three has a pre and a post value: below the default min_paired_share (0.5).
    code, err = _report(monkeypatch, capsys, tiny_study, tmp_path)
    assert code == 1
    assert (
        "pairing_completeness" in _one_line(err)
        and "Open the UI (make ui) for the check's findings" in err
    )


def test_debug_shows_the_traceback(tiny_study, tmp_path, capsys):
    from pipeline.spec.study import SpecError

    (tiny_study / "visits.csv").unlink()
    with pytest.raises(SpecError, match="visits.csv"):
        _run(capsys, tiny_study, tmp_path, "--debug")


# `outcomes run` (or `outcomes report`) held inside its secondary analyses, after the step wrote
# its first table: either in Python code (waiting on its stdin, which the test never writes or
# closes) or inside a DuckDB query that would run for hours. It says so on stdout only once it is
# there, so the run has not finished when the test sends SIGINT, and cannot finish without it: a
# run that does not stop has lost the Ctrl-C, never received it too late.
PAUSED_RUN = r"""
import functools, os, signal, sys
from assets import cli
from pipeline import steps

# Ctrl-C as a terminal's foreground job receives it. A test runner started in the background by a
# non-interactive shell (`pytest &` in a script) hands SIGINT down ignored, and Python then keeps
# it ignored: the run would never see the signal this test sends.
signal.signal(signal.SIGINT, signal.default_int_handler)
where = sys.argv[1]
save = steps._save
calls = []


def paused(con, *args, **kwargs):
    written = save(con, *args, **kwargs)
    if not calls:
        calls.append(1)
        if where == "duckdb":
            # The line comes from inside the running query, written by a C function (no Python
            # frame in which the signal could land instead). One thread: DuckDB's client looks for
            # a signal between the tasks it runs on this thread; with more threads it waits for
            # the workers' task to end, here hours of scanning, before it looks.
            con.execute("SET threads = 1")
            announce = functools.partial(os.write, 1, b"interrupt me\n")
            con.create_function("announce", announce, [], "BIGINT", side_effects=True)
            con.execute("WITH a AS MATERIALIZED (SELECT announce() AS v) "
                        "SELECT count(*) FROM range(10000000000000) t(i), a WHERE i % 7 = a.v")
        else:
            print("interrupt me", flush=True)
            sys.stdin.readline()
    return written


steps._save = paused
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("where", ["python", "duckdb"])
@pytest.mark.parametrize("command", ["run", "report"])
def test_ctrl_c_exits_130_and_the_warehouse_keeps_its_last_complete_state(
    tiny_study, tmp_path, command, where
):
    if command == "run":
        args = run_args(tiny_study, tmp_path)
    else:  # the same run through Dagster, as `make report` starts it
        args = ["report"]
        # The tiny study has one pair: let the blocking checks pass so the run reaches the analyses.
        spec = tiny_study / "study.toml"
        spec.write_text(spec.read_text() + "\n[checks]\nmin_pairs = 1\nmin_paired_share = 0\n")
    (tmp_path / "dagster").mkdir()
    env = {**os.environ, **report_environment(tiny_study.parent, tmp_path)}
    # stderr to a file: a pipe nobody reads could fill and hold the run.
    with open(tmp_path / "stderr", "w+") as stderr:
        run = subprocess.Popen(
            [sys.executable, "-c", PAUSED_RUN, where, *args],
            stdin=subprocess.PIPE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            line = run.stdout.readline().strip()
            assert line == "interrupt me", (
                f"the run never reached the point to interrupt: {line!r}, "
                f"{(tmp_path / 'stderr').read_text()}"
            )
            assert run.poll() is None  # held where it printed the line: not finished
            run.send_signal(signal.SIGINT)
            try:
                # stdin stays open: the run can only end through the signal.
                run.wait(timeout=300)
            except subprocess.TimeoutExpired:
                pytest.fail(f"SIGINT did not stop the run held in {where} code")
        finally:
            run.kill()
            run.wait()
            run.stdin.close()
            run.stdout.close()
    err = (tmp_path / "stderr").read_text()
    assert run.returncode == 130, err
    assert "the warehouse keeps its last complete state" in _one_line(err)

    con = warehouse.connect(_warehouse(tmp_path), read_only=True)
    tables = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'tiny'"
        ).fetchall()
    }
    unfinished = con.execute(
        "SELECT status, exit_code FROM meta.runs WHERE finished_at IS NULL"
    ).fetchall()
    con.close()
    # The paired tests were complete; the interrupted step's first table was rolled back.
    assert "paired_tests" in tables and "between_groups" not in tables
    assert unfinished == [("interrupted", 130)]  # the interrupted run is on record, as not finished


# A visits file without its header row: its first line, a data line full of identifiers, is
# read as the header. No message may repeat any of it.
IDENTIFYING_LINE = "FP-001,Jane Roe,617-555-0142,1970-04-12,jroe@example.com,12 Elm Street"
IDENTIFYING_CELLS = (
    "FP-001",
    "Jane",
    "Roe",
    "617-555-0142",
    "1970-04-12",
    "jroe@example.com",
    "example.com",
    "12 Elm Street",
    "Elm",
)


def _headless_visits(study) -> None:
    (study / "visits.csv").write_text(
        IDENTIFYING_LINE + "\nFP-002,John Doe,617-555-0199,1961-02-03,"
        "jdoe@example.com,9 Oak Avenue\n"
    )


def test_a_visits_file_without_its_header_row_is_never_quoted_by_run_or_validate(
    tiny_study, tmp_path, capsys
):
    _headless_visits(tiny_study)
    code, err = _run(capsys, tiny_study, tmp_path)
    assert code == 2
    assert "visits.csv: refused, it carries identifiers" in _one_line(err)
    assert "column 3 of the header: phone or fax number in values" in err
    assert "The first line of visits.csv does not look like a header row" in err
    outputs = [err]
    for args in (
        [tiny_study],
        [tiny_study, "--json"],
        [tiny_study / "visits.csv"],
        [tiny_study / "visits.csv", "--json"],
    ):
        assert main(["validate", *map(str, args)]) == 2
        captured = capsys.readouterr()
        outputs += [captured.out, captured.err]
    assert "column 3 of the header" in outputs[-2]
    for output in outputs:
        for cell in IDENTIFYING_CELLS:
            assert cell not in output, (cell, output)


def test_a_visits_file_without_its_header_row_is_never_quoted_in_dagsters_run_history(
    tiny_study, tmp_path, monkeypatch, capsys
):
    _headless_visits(tiny_study)
    code, err = _report(monkeypatch, capsys, tiny_study, tmp_path)
    assert code == 2 and "does not look like a header row" in _one_line(err)
    # Everything Dagster stored about the run: its event log, run records and captured logs.
    stored = [p for p in (tmp_path / "dagster").rglob("*") if p.is_file()]
    assert any(
        b"column 3 of the header" in p.read_bytes() for p in stored
    )  # the refusal is on record
    for path in stored:
        data = path.read_bytes()
        for cell in IDENTIFYING_CELLS:
            assert cell.encode() not in data, (cell, path)


def test_a_first_line_of_values_without_identifiers_is_said_not_to_be_a_header(
    tiny_study, tmp_path, capsys
):
    # The header row deleted: the first data line is read as the header.
    visits = tiny_study / "visits.csv"
    visits.write_text("".join(visits.read_text().splitlines(keepends=True)[1:]))
    code, err = _run(capsys, tiny_study, tmp_path)
    assert code == 2
    assert (
        "visits.csv: column(s) code, visit, day, hb_observer named in the study spec are missing, "
        "and the first "
        "line does not look like a header row (column 3 of it holds a number where a column name "
        "belongs). "
        "Put the header row (the column names) on line 1"
    ) in _one_line(err)
    # The cells of the line read as a header are not quoted; the file's own path (pytest's
    # temporary folder, e.g. ``pytest-10``) may contain the same characters, so it is left out.
    message = err.replace(str(tiny_study), "")
    assert "P1" not in message and "-10" not in message


def test_a_missing_column_is_reported_with_its_near_miss_and_never_the_whole_header(
    tiny_study, tmp_path, capsys
):
    visits = tiny_study / "visits.csv"
    lines = visits.read_text().splitlines(keepends=True)
    visits.write_text(
        "code,visit,day,hb_obsrver,Ann Lee\n"
        + "".join(line.rstrip("\n") + ",\n" for line in lines[1:])
    )
    code, err = _run(capsys, tiny_study, tmp_path)
    assert code == 2
    assert (
        "visits.csv: column(s) hb_observer named in the study spec are missing (the header has 5 "
        "columns, among "
        "them 'hb_obsrver', close to hb_observer). Rename the columns or correct the spec."
    ) in _one_line(err)
    assert "Ann Lee" not in err
