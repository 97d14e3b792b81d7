"""Registry benchmark: the whole pipeline on synthetic registries of growing size.

For each size N (default 63, 1,000, 10,000 and 100,000 patients, 6 visits each, every
instrument at item level; :mod:`pipeline.synthetic.registry`) this

1. writes the registry (raw CSV files and study spec) under ``data/processed/bench/``, once
   per seed, size and number of visits (the same arguments give the same bytes);
2. in a fresh process, times DuckDB's own ``read_csv`` of the two files (the reference for
   ingestion), then runs the study's steps as ``outcomes run`` does -- ingest, score, pair,
   paired tests, secondary analyses, tables, figures -- recording per step the wall time, the
   rows it handled and the peak resident memory;
3. in another fresh process, runs the plain pandas + scipy version of the same paired
   analysis (``bench/baseline.py``) on the same files, and compares its numbers with the
   pipeline's; and in a third, the same analysis doing the pipeline's work as well
   (``bench/same_work.py``: identifier guard, quarantine, every score, Hodges-Lehmann);

and writes ``reports/bench/bench.csv`` (one row per size and step) and ``bench.md`` (the
tables, growth between sizes, ingestion against ``read_csv``, the two baselines' ratios).

Usage: ``python bench/run.py [--sizes 63,1000,10000,100000] [--visits 6] [--seed 63]
[--runs 3]``; with ``--runs`` every size is run that many times and each step's median kept.
A benchmark, not a test: nothing here asserts a time. Progress is shown on a terminal only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline import progress  # noqa: E402

SIZES = (63, 1000, 10000, 100000)
DATA = ROOT / "data" / "processed" / "bench"
OUT = ROOT / "reports" / "bench"
PIPELINE_STEPS = ("ingest", "score", "pair", "analyse", "secondary", "tables", "figures")
# The steps the baseline also does (its read, score, pair and tests), for the ratio.
PAIRED_ANALYSIS = ("ingest", "score", "pair", "analyse")
FIELDS = [
    "patients",
    "runner",
    "step",
    "seconds",
    "cpu_seconds",
    "rows",
    "rows_per_s",
    "peak_rss_mb",
]


# --- peak memory ------------------------------------------------------------------------------


class PeakMemory:
    """Peak resident set size of this process per step.

    Linux keeps the high-water mark (``VmHWM``) and lets a process reset it to the current
    size (``/proc/self/clear_refs``, value 5), so each step's own peak is measured. Where that
    is not allowed, the peak since the process started (``ru_maxrss``) is reported instead.
    """

    def __init__(self) -> None:
        self.resettable = self._reset()

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            return True
        except OSError:
            return False

    def start(self) -> None:
        if self.resettable:
            self._reset()

    def peak_mb(self) -> float:
        if self.resettable:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(memory: PeakMemory, name: str, fn, rows_of) -> dict:
    memory.start()
    start, cpu = time.perf_counter(), time.process_time()
    with progress.step(f"  {name}"):
        result = fn()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rows = int(rows_of(result))
    return {
        "step": name,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": rows,
        "peak_rss_mb": memory.peak_mb(),
    }


# --- one size, in its own process -------------------------------------------------------------


def run_pipeline(folder: Path, work: Path) -> dict:
    """The reference read and every pipeline step on one registry; timings as a dict."""
    import duckdb

    from pipeline import steps as study_steps
    from pipeline import warehouse
    from pipeline.pairing import pair_study
    from pipeline.scores import score_study
    from pipeline.spec.study import load_study

    memory = PeakMemory()
    files = [folder / "patients.csv", folder / "visits.csv"]
    for path in files:  # the same warm file cache for the reference and the pipeline
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    steps = []

    def read_csv() -> int:
        # DuckDB's own CSV reader with its type detection, into tables: what loading costs at least.
        con = duckdb.connect()
        try:
            for i, path in enumerate(files):
                con.execute(f"CREATE TABLE file_{i} AS SELECT * FROM read_csv(?)", [str(path)])
            return sum(
                con.execute(f"SELECT count(*) FROM file_{i}").fetchall()[0][0]
                for i in range(len(files))
            )
        finally:
            con.close()

    steps.append(_timed(memory, "read_csv", read_csv, lambda n: n))
    study = load_study(folder)
    con = warehouse.connect(work / "warehouse.duckdb")  # as the product opens it
    reports = work / "reports"
    s = study.name

    def count(sql: str) -> int:
        return con.execute(sql).fetchall()[0][0]

    def score_values() -> int:
        tables = [
            t
            for (t,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND "
                "starts_with(table_name, 'scores_')",
                [s],
            ).fetchall()
        ]
        total = 0
        for t in tables:
            n_scores = (
                count(
                    f"SELECT count(*) FROM information_schema.columns WHERE table_schema = '{s}' "
                    f"AND table_name = '{t}'"
                )
                - 4
            ) // 2
            total += count(f"SELECT count(*) FROM {s}.{t}") * n_scores
        return total

    try:
        pairs = lambda _: count(f"SELECT count(*) FROM {s}.pairs")  # noqa: E731
        steps.append(
            _timed(
                memory,
                "ingest",
                lambda: study_steps.ingest(con, study, reports),
                lambda files_: sum(f.rows_read for f in files_),
            )
        )
        steps.append(
            _timed(memory, "score", lambda: score_study(con, study), lambda _: score_values())
        )
        steps.append(_timed(memory, "pair", lambda: pair_study(con, study), pairs))
        steps.append(
            _timed(memory, "analyse", lambda: study_steps.analyse(con, study, reports), pairs)
        )
        steps.append(
            _timed(
                memory,
                "secondary",
                lambda: study_steps.secondary_analyses(con, study, reports),
                pairs,
            )
        )
        steps.append(
            _timed(memory, "tables", lambda: study_steps.write_tables(con, study, reports), pairs)
        )
        steps.append(
            _timed(memory, "figures", lambda: study_steps.write_figures(con, study, reports), pairs)
        )
        results = con.execute(f"""SELECT outcome, score, "group", n_pairs, mean_diff, t, p_t,
        p_wilcoxon
                                  FROM {s}.paired_tests""").df()
    finally:
        con.close()
    results.to_csv(work / "paired_tests.csv", index=False)
    return {"steps": steps, "resettable_peak": memory.resettable}


def run_baseline(folder: Path, work: Path) -> dict:
    """The pandas + scipy baseline on one registry; timings as a dict."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import baseline

    memory = PeakMemory()
    memory.start()
    with progress.step("  pandas + scipy baseline"):
        timings, results = baseline.run(folder)
    results.to_csv(work / "baseline_tests.csv", index=False)
    peak = memory.peak_mb()
    return {
        "steps": [
            {"step": name, "seconds": sec, "rows": rows, "peak_rss_mb": peak}
            for name, sec, rows in timings
        ]
    }


def run_same_work(folder: Path, work: Path) -> dict:
    """The same-work baseline (``bench/same_work.py``) on one registry; timings as a dict."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import same_work

    memory = PeakMemory()
    memory.start()
    with progress.step("  same-work pandas + scipy baseline"):
        timings, results = same_work.run(folder)
    results.to_csv(work / "same_work_tests.csv", index=False)
    peak = memory.peak_mb()
    return {
        "steps": [
            {"step": name, "seconds": sec, "rows": rows, "peak_rss_mb": peak}
            for name, sec, rows in timings
        ]
    }


# --- driver -----------------------------------------------------------------------------------


def ensure_registry(n: int, visits: int, seed: int) -> Path:
    """The registry's folder, written unless an identical one is there: one written by the same
    generator code (its source's hash is the stamp)."""
    import hashlib

    from pipeline.synthetic import demo, registry

    folder = DATA / f"registry_n{n}_v{visits}_s{seed}"
    stamp = folder / ".complete"
    code = hashlib.sha256(
        b"".join(Path(m.__file__).read_bytes() for m in (registry, demo))
    ).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != code:
        with progress.step(f"  writing the registry ({n:,} patients)"):
            shutil.rmtree(folder, ignore_errors=True)
            registry.write(folder, seed=seed, n_patients=n, visits=visits, name=f"registry_{n}")
            stamp.write_text(code + "\n")
    return folder


def _child(mode: str, folder: Path, work: Path) -> dict:
    """Run one mode in a fresh interpreter, so each size's memory and imports start clean."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(folder), str(work)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"bench: the {mode} run on {folder.name} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median_run(runs: list[dict]) -> dict:
    """One run's timings from several of the same runner: per step the median seconds and peak
    memory (the steps and their rows are the same in every run)."""
    import statistics

    steps = [
        {
            **same[0],
            "seconds": statistics.median(s["seconds"] for s in same),
            **(
                {"cpu_seconds": statistics.median(s["cpu_seconds"] for s in same)}
                if "cpu_seconds" in same[0]
                else {}
            ),
            "peak_rss_mb": statistics.median(s["peak_rss_mb"] for s in same),
        }
        for same in zip(*(r["steps"] for r in runs))
    ]
    return {**runs[0], "steps": steps, "runs": len(runs)}


def compare(work: Path) -> dict:
    """Largest differences between the pipeline's and the baseline's paired-test numbers."""
    import pandas as pd

    ours = pd.read_csv(work / "paired_tests.csv", keep_default_na=False, na_values=[""])
    theirs = pd.read_csv(work / "baseline_tests.csv", keep_default_na=False, na_values=[""])
    both = ours.merge(theirs, on=["outcome", "score", "group"], suffixes=("", "_b"))
    out = {
        "groups_compared": int(len(both)),
        "groups_pipeline": int(len(ours)),
        "n_pairs_equal": bool((both["n_pairs"] == both["n_pairs_b"]).all()),
    }
    for column in ("mean_diff", "t", "p_t", "p_wilcoxon"):
        a, b = both[column].astype(float), both[column + "_b"].astype(float)
        ok = a.notna() & b.notna() & (both["n_pairs"] >= 50)
        scale = b[ok].abs().where(b[ok].abs() > 1e-300, 1.0)
        out[f"{column}_max_rel_diff"] = (
            float(((a[ok] - b[ok]).abs() / scale).max()) if ok.any() else float("nan")
        )
    return out


def _row(n: int, runner: str, step: dict) -> dict:
    return {
        "patients": n,
        "runner": runner,
        "step": step["step"],
        "seconds": round(step["seconds"], 3),
        "cpu_seconds": round(step["cpu_seconds"], 3) if "cpu_seconds" in step else "",
        "rows": step["rows"],
        "rows_per_s": round(step["rows"] / step["seconds"]) if step["seconds"] > 0 else "",
        "peak_rss_mb": round(step["peak_rss_mb"], 1),
    }


def write_outputs(results: dict, visits: int, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        _row(n, runner, step)
        for n, r in results.items()
        for runner in ("pipeline", "baseline", "same_work")
        for step in r.get(runner, {"steps": []})["steps"]
    ]
    csv_path = out / "bench.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    md_path = out / "bench.md"
    md_path.write_text(markdown(results, visits), encoding="utf-8")
    return csv_path, md_path


def _seconds(r: dict, runner: str, steps=None) -> float:
    return sum(s["seconds"] for s in r[runner]["steps"] if steps is None or s["step"] in steps)


def markdown(results: dict, visits: int) -> str:
    sizes = sorted(results)
    lines = [
        "# Registry benchmark",
        "",
        f"Synthetic registries (`pipeline/synthetic/registry.py`): N patients x {visits} visits, "
        "every instrument at item "
        "level (Sunnybrook, House-Brackmann by two raters, eFACE, SAQ, FaCE, FDI, FNGS 2.0, facial "
        "landmarks). "
        "Written by `bench/run.py` (`make bench`); each size ran in its own process"
        + (
            f", {results[sizes[0]]['pipeline'].get('runs', 1)} times (each step's median "
            "seconds and peak memory)."
            if results[sizes[0]]["pipeline"].get("runs", 1) > 1
            else "."
        ),
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "Rows per step: `read_csv` and `ingest`, rows in the two files; `score`, score values "
        "computed; the "
        "later steps, pre/post pairs (the analysis input). CPU seconds: the process's, all its "
        "threads (DuckDB's too); on a machine shared with other work, wall seconds above CPU "
        "seconds are time spent waiting for a core or the disk. Peak RSS: the step's own peak "
        "resident "
        "memory "
        + (
            "(high-water mark reset before each step)."
            if all(results[n]["pipeline"].get("resettable_peak") for n in sizes)
            else "(peak of the process so far: this kernel does not allow resetting it)."
        ),
        "",
        "## Pipeline, per step",
        "",
        "| patients | step | seconds | CPU seconds | rows | rows/s | peak RSS (MB) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        for s in results[n]["pipeline"]["steps"]:
            r = _row(n, "pipeline", s)
            lines.append(
                f"| {n:,} | {r['step']} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
                f"{r['rows']:,} | "
                f"{r['rows_per_s']:,} | {r['peak_rss_mb']:,.0f} |"
            )
        steps = results[n]["pipeline"]["steps"][1:]  # ingest onwards (not read_csv)
        for last, label in (("tables", "ingest to tables"), ("figures", "ingest to figures")):
            upto = steps[: [s["step"] for s in steps].index(last) + 1]
            seconds = sum(s["seconds"] for s in upto)
            cpu = sum(s["cpu_seconds"] for s in upto)
            peak = max(s["peak_rss_mb"] for s in upto)
            lines.append(
                f"| {n:,} | **end to end** ({label}) | **{seconds:.2f}** | **{cpu:.2f}** | | | "
                f"**{peak:,.0f}** |"
            )
    lines += [
        "",
        "## Growth between sizes (time ratio; rows grow by the size ratio)",
        "",
        "| step | "
        + " | ".join(f"{a:,} -> {b:,} (x{b / a:.3g})" for a, b in zip(sizes, sizes[1:]))
        + " |",
        "|---|" + "---:|" * (len(sizes) - 1),
    ]
    for step in ("read_csv", *PIPELINE_STEPS, "end to end"):
        cells = []
        for a, b in zip(sizes, sizes[1:]):
            if step == "end to end":
                ta = _seconds(results[a], "pipeline", PIPELINE_STEPS)
                tb = _seconds(results[b], "pipeline", PIPELINE_STEPS)
            else:
                ta = _seconds(results[a], "pipeline", (step,))
                tb = _seconds(results[b], "pipeline", (step,))
            cells.append(f"{tb / ta:.2f}" if ta > 0 else "")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Ingestion against DuckDB's read_csv of the same files",
        "",
        "| patients | read_csv (s) | ingest (s) | ingest / read_csv |",
        "|---:|---:|---:|---:|",
    ]
    for n in sizes:
        rc, ing = (
            _seconds(results[n], "pipeline", ("read_csv",)),
            _seconds(results[n], "pipeline", ("ingest",)),
        )
        lines.append(f"| {n:,} | {rc:.2f} | {ing:.2f} | {ing / rc:.2f} |")
    lines += [
        "",
        "## The same paired analysis in plain pandas + scipy (`bench/baseline.py`, "
        "`bench/same_work.py`)",
        "",
        "Pipeline: ingest + score + pair + paired tests (whole cohort and every subgroup level), "
        "each step's own peak memory (the largest of the four). Baseline: pandas `read_csv`, the "
        "planned outcomes' scores from items, pre/post picks, `scipy.stats` paired t and Wilcoxon "
        "per outcome and group (no quarantine, identifier guard, provenance or Hodges-Lehmann). "
        "Same work: the baseline plus what the pipeline also does in those steps: the identifier "
        "guard, the quarantine of refused rows and cells, every score of every instrument, the "
        "Hodges-Lehmann estimate with its CI and Holm's adjustment. Ratios are the baseline's "
        "seconds over the pipeline's: above 1, the pipeline is faster.",
        "",
        "| patients | pipeline (s) | pipeline peak RSS (MB) | baseline (s) | baseline / pipeline | "
        "baseline peak RSS (MB) | same work (s) | same work / pipeline | same work peak RSS (MB) | "
        "groups compared | n pairs equal | max rel. diff: mean change, t, P (t), P (Wilcoxon) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for n in sizes:
        r = results[n]
        ours, theirs = _seconds(r, "pipeline", PAIRED_ANALYSIS), _seconds(r, "baseline")
        our_peak = max(
            s["peak_rss_mb"] for s in r["pipeline"]["steps"] if s["step"] in PAIRED_ANALYSIS
        )
        c = r["check"]
        diffs = ", ".join(
            "n/a" if c[k] != c[k] else f"{c[k]:.1e}"
            for k in (
                "mean_diff_max_rel_diff",
                "t_max_rel_diff",
                "p_t_max_rel_diff",
                "p_wilcoxon_max_rel_diff",
            )
        )
        if r.get("same_work"):
            same = _seconds(r, "same_work")
            same_cells = (
                f"{same:.2f} | {same / ours:.2f} | "
                f"{r['same_work']['steps'][-1]['peak_rss_mb']:,.0f}"
            )
        else:
            same_cells = " | | "
        lines.append(
            f"| {n:,} | {ours:.2f} | {our_peak:,.0f} | {theirs:.2f} | {theirs / ours:.2f} | "
            f"{r['baseline']['steps'][-1]['peak_rss_mb']:,.0f} | {same_cells} | "
            f"{c['groups_compared']} of "
            f"{c['groups_pipeline']} | {'yes' if c['n_pairs_equal'] else 'NO'} | {diffs} |"
        )
    lines += [
        "",
        "Differences are over groups with at least 50 pairs (where both use the normal "
        "approximation "
        "for the Wilcoxon P value).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="comma-separated numbers of patients (default %(default)s)",
    )
    parser.add_argument("--visits", type=int, default=6)
    parser.add_argument("--seed", type=int, default=63)
    parser.add_argument(
        "--runs", type=int, default=1, help="runs of every size; each step's median is reported"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="folder for bench.csv and bench.md")
    parser.add_argument(
        "--child", nargs=3, metavar=("MODE", "FOLDER", "WORK"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        mode, folder, work = args.child[0], Path(args.child[1]), Path(args.child[2])
        runner = {"pipeline": run_pipeline, "baseline": run_baseline, "same_work": run_same_work}
        result = runner[mode](folder, work)
        print(json.dumps(result))
        return 0
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    runs: dict[int, dict[str, list[dict]]] = {n: {} for n in sizes}
    checks = {}
    # Every size once per round, rounds one after another: a slow spell of the machine then
    # touches one round of every size rather than every round of one size.
    for round_ in range(1, args.runs + 1):
        for n in sizes:
            progress.note(f"{n:,} patients x {args.visits} visits (run {round_} of {args.runs})")
            folder = ensure_registry(n, args.visits, args.seed)
            work = DATA / f"run_n{n}_v{args.visits}_s{args.seed}"
            for mode in ("pipeline", "baseline", "same_work"):
                runs[n].setdefault(mode, []).append(_child(mode, folder, work))
            checks[n] = compare(work)
    results = {
        n: {**{mode: _median_run(r) for mode, r in runs[n].items()}, "check": checks[n]}
        for n in sizes
    }
    csv_path, md_path = write_outputs(results, args.visits, args.out)
    for path in (csv_path, md_path):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
