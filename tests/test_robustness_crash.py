"""Crash safety: a run killed with SIGKILL at any step leaves the warehouse readable, every
step's tables as one complete run wrote them, and the next run gives the clean run's results.

Each killed run is a real run in its own process, on a copy of a complete warehouse made
from other inputs (the small study, seed 63), now reading new inputs (seed 64). A hook
kills the process right after the chosen step's first statement that writes a study table
(or, for the report, after report.html and before report.docx), which is the worst moment:
the step has started replacing its tables and finished none of them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline.spec.study import load_study
from small_study import DATA_STEPS, file_bytes, full_run, run_steps, study_tables, write_small_study

TESTS = Path(__file__).parent

# One process imports the pipeline once, then forks one child per kill point (before any
# warehouse is opened, so no DuckDB thread is forked); each child is a whole run on its own copy.
KILLER = r"""
import json, os, re, signal, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path

from pipeline import steps as study_steps, warehouse
from pipeline.render import report as report_html
from pipeline.spec.study import load_study
from small_study import run_steps


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


class DyingConnection:
    # A real warehouse connection that, once armed, kills its process right after the first
    # statement writing a table or view of the study's schema.
    def __init__(self, con, schema):
        self._con, self.armed = con, False
        self._write = re.compile(
            rf"\s*(CREATE\s+(OR\s+REPLACE\s+)?(TABLE|VIEW)|INSERT\s+INTO|DROP\s+(TABLE|VIEW))"
            rf"\s+{schema}\.",
            re.I,
        )

    def execute(self, sql, *args, **kwargs):
        result = self._con.execute(sql, *args, **kwargs)
        if self.armed and self._write.match(sql):
            die()
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)


def killed_run(folder, db, reports, kill_in, steps):
    study = load_study(Path(folder))
    con = DyingConnection(warehouse.connect(Path(db)), study.name)
    original = getattr(study_steps, kill_in)

    def armed(*args, **kwargs):
        con.armed = True
        return original(*args, **kwargs)

    setattr(study_steps, kill_in, armed)
    if kill_in == "write_report":
        report_html.report_docx = die   # report.html is written, report.docx not yet
    run_steps(con, study, Path(reports), steps.split(","))


children = {}
for job in json.loads(sys.argv[2]):
    pid = os.fork()
    if pid == 0:
        try:
            killed_run(*job)
        finally:
            os._exit(0)   # reached only if the hook never fired
    children[pid] = job[3]
status = {}
for _ in children:
    pid, code = os.wait()
    status[children[pid]] = -os.WTERMSIG(code) if os.WIFSIGNALED(code) else os.WEXITSTATUS(code)
print(json.dumps(status))
"""

# Where the run is killed: ingest, scoring, pairing, analysis (paired tests, then the
# secondary analyses' several tables) and the report.
KILL_POINTS = (
    "ingest",
    "score_study",
    "pair_study",
    "analyse",
    "secondary_analyses",
    "write_report",
)


@pytest.fixture(scope="module")
def crash(tmp_path_factory):
    """The complete old state, the clean new results, and one killed run per kill point
    (started together: each is a separate process on its own copy)."""
    base = tmp_path_factory.mktemp("crash")
    old = full_run()
    new_folder = write_small_study(base / "new" / "small", seed=64)
    new_study = load_study(new_folder)

    # Clean new results, and which step creates which table (each step on a fresh warehouse).
    con = duckdb.connect(str(base / "new" / "warehouse.duckdb"))
    owner: dict[str, str] = {}
    for step in DATA_STEPS:
        run_steps(con, new_study, base / "new" / "reports", [step])
        for name in study_tables(con, "small"):
            owner.setdefault(name, step)
    new_tables = study_tables(con, "small")
    con.close()
    con = duckdb.connect(str(old / "warehouse.duckdb"), read_only=True)
    old_tables = study_tables(con, "small")
    con.close()
    # The figure list is written when the figures are drawn, after every data step.
    for name in old_tables:
        owner.setdefault(name, "write_figures")

    runs, jobs = {}, []
    for point in KILL_POINTS:
        work = base / point
        shutil.copytree(old, work, ignore=shutil.ignore_patterns("raw"))
        steps = ["write_tables", "write_report"] if point == "write_report" else list(DATA_STEPS)
        # The report is killed on the old inputs (its figures are in the copied reports).
        folder = old / "raw" / "small" if point == "write_report" else new_folder
        runs[point] = (work, steps, folder)
        jobs.append(
            [
                str(folder),
                str(work / "warehouse.duckdb"),
                str(work / "reports"),
                point,
                ",".join(steps),
            ]
        )
    done = subprocess.run(
        [sys.executable, "-c", KILLER, str(TESTS), json.dumps(jobs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "old": old,
        "old_tables": old_tables,
        "new": base / "new",
        "new_tables": new_tables,
        "owner": owner,
        "runs": runs,
        "status": status,
    }


def _same(a, b) -> bool:
    return list(a.columns) == list(b.columns) and a.equals(b)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_run_leaves_each_step_complete_and_the_rerun_matches_a_clean_run(crash, point):
    work, steps, folder = crash["runs"][point]
    assert crash["status"][point] == -9, f"the run was not killed in {point}"

    # Readable, and every table is wholly the old run's or wholly the new run's: the steps
    # before the killed one (committed) new, the killed one and those after it old.
    con = duckdb.connect(str(work / "warehouse.duckdb"), read_only=True)
    tables = study_tables(con, "small")
    con.close()
    old, new, owner = crash["old_tables"], crash["new_tables"], crash["owner"]
    assert set(tables) == set(old)
    killed_at = DATA_STEPS.index(point) if point in DATA_STEPS else 0
    for name, frame in tables.items():
        assert _same(frame, old[name]) or _same(frame, new[name]), (
            f"{name} is neither the old nor the new complete table after a kill in {point}"
        )
        # The report run reads the old inputs, so there every table must stay the old one.
        done = (
            point != "write_report"
            and owner[name] in DATA_STEPS
            and DATA_STEPS.index(owner[name]) < killed_at
        )
        assert _same(frame, new[name] if done else old[name]), (
            f"{name} ({owner[name]}) is the {'old' if done else 'new'} table after a kill in "
            f"{point}"
        )

    # The next run completes and gives exactly the clean run's results.
    con = duckdb.connect(str(work / "warehouse.duckdb"))
    run_steps(con, load_study(folder), work / "reports", steps)
    again = study_tables(con, "small")
    con.close()
    # The data steps leave the figure list alone: it stays the old run's until figures are drawn.
    expected = (
        old
        if point == "write_report"
        else {**{name: old[name] for name in old if owner[name] not in DATA_STEPS}, **new}
    )
    assert set(again) == set(expected)
    for name in expected:
        assert _same(again[name], expected[name]), name
    clean = file_bytes(
        (crash["old"] if point == "write_report" else crash["new"]) / "reports" / "small"
    )
    rerun = file_bytes(work / "reports" / "small")
    for name, data in clean.items():
        if point != "write_report" and name.startswith(("figures", "report.")):
            continue  # the data steps do not draw figures
        assert rerun[name] == data, name
