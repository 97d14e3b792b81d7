"""Where each pipeline step spends its time, on one of the benchmark's registries.

Runs the steps ``bench/run.py`` times (ingest to figures) on the registry of N patients under
pyinstrument (``pip install pyinstrument``; not a dependency of the project) and writes one
text profile per step to ``reports/bench/profile/<N>/<step>.txt``, with the step's wall time.

Usage: ``python bench/profile_steps.py [--patients 100000] [--steps ingest,...,figures]``.
The registry is written first when it is not there (as ``bench/run.py`` writes it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import run as bench  # noqa: E402

STEPS = ("ingest", "score", "pair", "analyse", "secondary", "tables", "figures")


def main(argv: list[str] | None = None) -> int:
    from pyinstrument import Profiler

    from pipeline import steps as study_steps
    from pipeline import warehouse
    from pipeline.spec.study import load_study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--visits", type=int, default=6)
    parser.add_argument("--seed", type=int, default=63)
    parser.add_argument("--steps", default=",".join(STEPS), help="steps to profile")
    parser.add_argument("--out", type=Path, default=bench.OUT / "profile")
    args = parser.parse_args(argv)
    wanted = set(args.steps.split(","))
    folder = bench.ensure_registry(args.patients, args.visits, args.seed)
    work = bench.DATA / f"profile_n{args.patients}_v{args.visits}_s{args.seed}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = args.out / str(args.patients)
    out.mkdir(parents=True, exist_ok=True)
    study = load_study(folder)
    con = warehouse.connect(work / "warehouse.duckdb")
    reports = work / "reports"
    calls = {
        "ingest": lambda: study_steps.ingest(con, study, reports),
        "score": lambda: study_steps.score(con, study),
        "pair": lambda: study_steps.pair(con, study),
        "analyse": lambda: study_steps.analyse(con, study, reports),
        "secondary": lambda: study_steps.secondary_analyses(con, study, reports),
        "tables": lambda: study_steps.write_tables(con, study, reports),
        "figures": lambda: study_steps.write_figures(con, study, reports),
    }
    try:
        for name in STEPS:
            if name not in wanted:
                # A step left out of the profile still runs: the later ones read its tables.
                start = time.perf_counter()
                calls[name]()
                print(f"{name}: {time.perf_counter() - start:.2f} s (not profiled)")
                continue
            profiler = Profiler(interval=0.005)
            start = time.perf_counter()
            profiler.start()
            calls[name]()
            profiler.stop()
            seconds = time.perf_counter() - start
            (out / f"{name}.txt").write_text(
                f"{name}: {seconds:.2f} s\n\n"
                + profiler.output_text(unicode=False, color=False, show_all=False),
                encoding="utf-8",
            )
            print(f"{name}: {seconds:.2f} s")
    finally:
        con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
