"""Studies in parallel against one after another: four copies of the demo, ``outcomes report``.

Four copies of ``data/raw/demo`` under four names (``demo_a`` ... ``demo_d``, in
``data/processed/bench/parallel/raw``), then in each round, each from empty warehouses and an
empty Dagster home:

- ``parallel``: the default, a folder of warehouses (one file per study), so Dagster's
  multiprocess executor runs the studies at once (``assets.graph.executor_for``);
- ``sequential``: ``OUTCOMES_WAREHOUSE=<dir>/all.duckdb``, one file for every study, so every step
  runs in one process, one after another;
- ``demo`` (asked with ``--modes``): the demo alone, ``outcomes report --study demo`` cold;
- ``report`` (asked with ``--modes``): ``outcomes report`` cold on every study of the checkout's
  ``data/raw`` (the demo and its pooled example), what ``make report`` runs.

Each run is timed: wall seconds, and the CPU seconds (user + system) of the command and of every
process it started, the fork server of the multiprocess executor and the steps forked from it
included (this process is made their subreaper, so that processes orphaned when the command
exits are waited for here and counted), with the load average before it (other work on the machine
makes wall times noisy; CPU seconds compare across loads). The number of steps each run executed
and the sum of their durations are read from the run's Dagster event log.

Prints one line per run and, at the end, the medians as a Markdown table (the ratio is parallel
wall / sequential wall, per round and the median); writes ``reports/bench/parallel.csv`` and
``parallel.md``. A benchmark, not a test: nothing here asserts a time.

Usage: ``python bench/parallel.py [--rounds 3] [--copies 4] [--modes parallel sequential demo]
[--code DIR]`` (``--code``: another checkout of this project to time, e.g. the main branch
exported with ``git archive``; its modules are run with this environment's Python).
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "bench"
WORK = ROOT / "data" / "processed" / "bench" / "parallel"
MODES = ("parallel", "sequential", "demo", "report")
FIELDS = [
    "mode",
    "round",
    "seconds",
    "cpu_seconds",
    "load_1min",
    "steps",
    "step_seconds",
    "success",
]
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def _become_subreaper() -> None:
    """Orphaned descendants (the executor's fork server outlives the command by a moment) are
    reparented to this process, so their CPU time reaches ``RUSAGE_CHILDREN`` once reaped."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reap_orphans() -> None:
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _copies(n: int) -> list[str]:
    """``n`` copies of the demo under ``WORK/raw``, each spec renamed after its folder."""
    raw = WORK / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    names = [f"demo_{chr(ord('a') + i)}" for i in range(n)]
    for name in names:
        shutil.copytree(ROOT / "data" / "raw" / "demo", raw / name)
        spec = raw / name / "study.toml"
        text = spec.read_text(encoding="utf-8")
        spec.write_text(text.replace('name = "demo"', f'name = "{name}"', 1), encoding="utf-8")
    return names


def _environment(mode: str, run: Path, code: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        "OUTCOMES_REPORTS": str(run / "reports"),
        "DAGSTER_HOME": str(run / "dagster"),
        "OUTCOMES_WAREHOUSE": str(
            run / "warehouses" / "all.duckdb" if mode == "sequential" else run / "warehouses"
        ),
        "OUTCOMES_RAW": str(code / "data" / "raw" if mode in ("demo", "report") else WORK / "raw"),
    }
    env.pop("OUTCOMES_CELERY_BROKER", None)
    return env


def _steps(dagster_home: Path) -> tuple[int, float]:
    """The steps the runs in ``dagster_home`` executed and the sum of their durations (s)."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        count, seconds = 0, 0.0
        records = [r for run in instance.get_runs() for r in instance.all_logs(run.run_id)]
        for record in records:
            event = record.dagster_event
            if event is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                count += 1
            elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                seconds += event.event_specific_data.duration_ms / 1000
        return count, seconds


def _run(mode: str, round_: int, code: Path) -> dict:
    run = WORK / "runs" / mode
    shutil.rmtree(run, ignore_errors=True)
    (run / "warehouses").mkdir(parents=True)
    (run / "dagster").mkdir()
    # The project's instance settings, as make report uses them (telemetry off).
    if (code / ".dagster" / "dagster.yaml").is_file():
        shutil.copy(code / ".dagster" / "dagster.yaml", run / "dagster" / "dagster.yaml")
    command = [sys.executable, "-m", "assets.cli", "report"]
    if mode == "demo":
        command += ["--study", "demo"]
    load = os.getloadavg()[0]
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(
        command,
        env=_environment(mode, run, code),
        cwd=code,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    _reap_orphans()
    cpu = _children_cpu() - cpu
    steps, step_seconds = _steps(run / "dagster")
    if done.returncode != 0:
        print(f"  {mode} failed ({done.returncode}): {done.stderr.strip()[-500:]}", flush=True)
    return {
        "mode": mode,
        "round": round_,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "load_1min": round(load, 2),
        "steps": steps,
        "step_seconds": round(step_seconds, 2),
        "success": done.returncode == 0,
    }


def _markdown(rows: list[dict], modes: list[str], copies: int, code: Path) -> str:
    what = (
        f"{copies} copies of the demo"
        if set(modes) - {"demo", "report"}
        else "The bundled studies (demo: the demo alone; report: as make report runs them)"
    )
    lines = [
        f"{what} (`{code}`), median of "
        f"{max(r['round'] for r in rows)} rounds; wall and CPU seconds (CPU: the command and "
        "every process it started), load average (1 min) before each run.",
        "",
        "| mode | wall s | CPU s | steps | sum of step durations s | load per round |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        med = {
            k: statistics.median(r[k] for r in mine)
            for k in ("seconds", "cpu_seconds", "steps", "step_seconds")
        }
        loads = ", ".join(f"{r['load_1min']:.1f}" for r in mine)
        lines.append(
            f"| {mode} | {med['seconds']:.1f} | {med['cpu_seconds']:.1f} | {med['steps']:.0f} | "
            f"{med['step_seconds']:.1f} | {loads} |"
        )
    if {"parallel", "sequential"} <= set(modes):
        ratios = []
        for round_ in sorted({r["round"] for r in rows}):
            wall = {r["mode"]: r["seconds"] for r in rows if r["round"] == round_}
            ratios.append(wall["parallel"] / wall["sequential"])
        lines += [
            "",
            "Parallel / sequential wall, per round: "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f"; median **{statistics.median(ratios):.2f}** (target: at most 0.70).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["parallel", "sequential"])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to time")
    args = parser.parse_args(argv)
    code = args.code.resolve()
    _become_subreaper()
    WORK.mkdir(parents=True, exist_ok=True)
    _copies(args.copies)
    rows = []
    for round_ in range(1, args.rounds + 1):
        # Alternate the order, so that neither mode always meets the load the other left.
        modes = args.modes if round_ % 2 else list(reversed(args.modes))
        for mode in modes:
            row = _run(mode, round_, code)
            rows.append(row)
            print(
                f"round {round_} {mode}: {row['seconds']:.1f} s wall, {row['cpu_seconds']:.1f} s "
                f"CPU, load {row['load_1min']:.1f}, {row['steps']} steps "
                f"({row['step_seconds']:.1f} s)" + ("" if row["success"] else " FAILED"),
                flush=True,
            )
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "parallel.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    text = _markdown(rows, args.modes, args.copies, code)
    (OUT / "parallel.md").write_text(text, encoding="utf-8")
    print(text)
    return 0 if all(r["success"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
