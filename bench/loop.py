"""The statistician's loop on the demo: a rerun after changing one analysis option.

From a complete run of the demo (its own warehouse and reports under
``data/processed/bench/loop/``), for each option asked (default: nothing changed,
``test=t``, ``alpha=0.01``, ``conf_level=0.9``, ``post_min_day=180``) and each round:

1. the results the analyses kept (:mod:`pipeline.kept_results`) are removed and the demo is run
   as its spec says (not timed), so every round starts from the same state: a complete run whose
   kept results are those of the spec's own options. Without that removal a round would find the
   results the round before kept for the same option, and time a rerun the statistician makes
   only when going back to an option already tried;
2. ``outcomes run --study data/raw/demo --set <option>`` (or ``outcomes report --study demo
   --set <option>`` with ``--runner report``, through Dagster) runs in a fresh process, timed:
   wall seconds, and the CPU seconds (user + system) of that process and every process it
   started, with the load average beside it (other people's work shares the machine);
3. the files under ``reports/demo/`` whose bytes changed, and the steps reused, are counted.

Writes ``reports/bench/loop.csv`` (one row per option and round) and ``loop.md`` (medians).
A benchmark, not a test: nothing here asserts a time.

Usage: ``python bench/loop.py [--rounds 3] [--runner run|report] [--set conf_level=0.9 ...]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.kept_results import SUFFIX as KEPT_SUFFIX  # noqa: E402

OUT = ROOT / "reports" / "bench"
WORK = ROOT / "data" / "processed" / "bench" / "loop"
DEMO = ROOT / "data" / "raw" / "demo"
OPTIONS = ("", "test=t", "alpha=0.01", "conf_level=0.9", "post_min_day=180")
FIELDS = [
    "runner",
    "option",
    "round",
    "seconds",
    "cpu_seconds",
    "load_1min",
    "files",
    "files_changed",
    "steps_reused",
]


def _outcomes() -> str:
    return str(Path(sys.executable).parent / "outcomes")


def _environment() -> dict[str, str]:
    return {
        **os.environ,
        "OUTCOMES_RAW": str(WORK / "raw"),
        "OUTCOMES_WAREHOUSE": str(WORK / "warehouses"),
        "OUTCOMES_REPORTS": str(WORK / "reports"),
        "DAGSTER_HOME": str(WORK / "dagster"),
    }


def _command(runner: str, option: str) -> list[str]:
    chosen = ["--set", option] if option else []
    if runner == "report":
        return [_outcomes(), "report", "--study", "demo", *chosen]
    return [
        _outcomes(),
        "run",
        "--study",
        str(WORK / "raw" / "demo"),
        "--warehouse",
        str(WORK / "warehouses"),
        "--reports",
        str(WORK / "reports"),
        *chosen,
    ]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _state(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _timed(command: list[str]) -> tuple[float, float, str]:
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(
        command, env=_environment(), cwd=ROOT, capture_output=True, text=True, check=False
    )
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return seconds, cpu, done.stdout


def _reused(stdout: str) -> str:
    for line in stdout.splitlines():
        if line.startswith("note: unchanged since the last run"):
            return line.split(": ", 2)[-1]
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runner", choices=("run", "report"), default="run")
    parser.add_argument(
        "--set",
        dest="options",
        action="append",
        help="an option to change (OPTION=VALUE; repeatable); '' for a rerun changing nothing",
    )
    args = parser.parse_args(argv)
    options = args.options if args.options is not None else list(OPTIONS)
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "raw").mkdir(parents=True)
    (WORK / "dagster").mkdir()
    shutil.copytree(DEMO, WORK / "raw" / "demo")
    reports = WORK / "reports" / "demo"
    print(f"cold run ({args.runner}) ...", flush=True)
    cold, cold_cpu, _ = _timed(_command(args.runner, ""))
    print(f"  {cold:.1f} s, {cold_cpu:.1f} s CPU", flush=True)
    rows = []
    for option in options:
        for round_ in range(1, args.rounds + 1):
            for kept in (WORK / "warehouses").glob(f"*{KEPT_SUFFIX}"):
                shutil.rmtree(kept)
            _timed(_command(args.runner, ""))  # back to the spec's options: the same start
            before = _state(reports)
            load = os.getloadavg()[0]
            seconds, cpu, stdout = _timed(_command(args.runner, option))
            after = _state(reports)
            changed = sum(1 for name in after if before.get(name) != after[name])
            rows.append(
                {
                    "runner": args.runner,
                    "option": option or "(none)",
                    "round": round_,
                    "seconds": round(seconds, 3),
                    "cpu_seconds": round(cpu, 3),
                    "load_1min": round(load, 2),
                    "files": len(after),
                    "files_changed": changed,
                    "steps_reused": _reused(stdout),
                }
            )
            print(
                f"{option or '(none)'} round {round_}: {seconds:.2f} s, {cpu:.2f} s CPU, "
                f"load {load:.1f}, {changed} of {len(after)} files changed",
                flush=True,
            )
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"loop_{args.runner}.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"Rerun of the demo after changing one option (`outcomes {args.runner}`), median of "
        f"{args.rounds} rounds; cold run {cold:.1f} s ({cold_cpu:.1f} s CPU).",
        "",
        "| option | wall s | CPU s | load (1 min) | files changed | steps reused |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for option in options:
        mine = [r for r in rows if r["option"] == (option or "(none)")]
        med = {k: statistics.median(r[k] for r in mine) for k in ("seconds", "cpu_seconds")}
        loads = ", ".join(f"{r['load_1min']:.1f}" for r in mine)
        lines.append(
            f"| {option or '(none)'} | {med['seconds']:.2f} | {med['cpu_seconds']:.2f} | {loads} | "
            f"{mine[-1]['files_changed']} of {mine[-1]['files']} | {mine[-1]['steps_reused']} |"
        )
    text = "\n".join(lines) + "\n"
    (OUT / f"loop_{args.runner}.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
