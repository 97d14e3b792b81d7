"""Median of several benchmark runs, from their ``bench.csv`` files (``bench/run.py --out``).

Usage: ``python bench/medians.py RUN1/bench.csv RUN2/bench.csv ...``: prints, per size, each
pipeline step's median wall (and CPU, where recorded) seconds and peak memory, the two
end-to-end sums (ingest to tables, ingest to figures) and each baseline's ratio to the
pipeline's paired analysis (ingest + score + pair + analyse), as a Markdown table.
"""

from __future__ import annotations

import csv
import statistics
import sys
from collections import defaultdict

TO_TABLES = ("ingest", "score", "pair", "analyse", "secondary", "tables")
PAIRED_ANALYSIS = ("ingest", "score", "pair", "analyse")


def medians(paths: list[str]) -> dict:
    """``{(patients, runner, step): {"seconds": [...], "cpu_seconds": [...], "peak": [...]}}``
    over the runs, each run's runner totals under step ``"total"``."""
    values: dict = defaultdict(lambda: defaultdict(list))
    for path in paths:
        totals: dict = defaultdict(float)
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                key = (int(row["patients"]), row["runner"], row["step"])
                values[key]["seconds"].append(float(row["seconds"]))
                if row.get("cpu_seconds"):
                    values[key]["cpu_seconds"].append(float(row["cpu_seconds"]))
                values[key]["peak"].append(float(row["peak_rss_mb"]))
                if row["runner"] != "pipeline":
                    totals[int(row["patients"]), row["runner"]] += float(row["seconds"])
        for (n, runner), seconds in totals.items():
            values[n, runner, "total"]["seconds"].append(seconds)
    return values


def markdown(values: dict, runs: int) -> str:
    def med(n, runner, step, what="seconds"):
        got = values.get((n, runner, step), {}).get(what)
        return statistics.median(got) if got else float("nan")

    sizes = sorted({n for n, _, _ in values})
    steps = [s for s in ("ingest", "score", "pair", "analyse", "secondary", "tables", "figures")]
    lines = [
        f"Median of {runs} runs (wall seconds; CPU seconds in brackets where recorded; "
        "peak RSS in MB).",
        "",
        "| step | " + " | ".join(f"{n:,} patients" for n in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]

    def cell(n, step):
        cpu = med(n, "pipeline", step, "cpu_seconds")
        return f"{med(n, 'pipeline', step):.2f}" + (f" ({cpu:.2f})" if cpu == cpu else "")

    for step in steps:
        lines.append(f"| {step} | " + " | ".join(cell(n, step) for n in sizes) + " |")
    for label, chosen in (("ingest to tables", TO_TABLES), ("ingest to figures", steps)):
        cells = [
            f"**{sum(med(n, 'pipeline', s) for s in chosen):.2f}**, peak "
            f"{max(med(n, 'pipeline', s, 'peak') for s in chosen):,.0f} MB"
            for n in sizes
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    ours = {n: sum(med(n, "pipeline", s) for s in PAIRED_ANALYSIS) for n in sizes}
    lines.append(
        "| paired analysis (ingest..analyse) | "
        + " | ".join(f"{ours[n]:.2f}" for n in sizes)
        + " |"
    )
    for runner, label in (("baseline", "baseline"), ("same_work", "same work")):
        cells = []
        for n in sizes:
            theirs = med(n, runner, "total")
            cells.append(
                ""
                if theirs != theirs
                else f"{theirs:.2f} s; {label} / pipeline {theirs / ours[n]:.2f}"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    print(markdown(medians(argv), len(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
