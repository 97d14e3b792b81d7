"""Publication tables, rendered from the tidy statistics results.

Numbers are kept at full precision everywhere else; rounding happens only
here. P values follow the AMA Manual of Style (JAMA, FPSAM, PRS-adjacent
journals): no leading zero, two decimals from .01 up, three below, ``<.001``
below .001, never ``.000`` (domain reference section 4.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SYNTHETIC_NOTE = "SYNTHETIC DATA: demonstration cohort, not real patients."


@dataclass(frozen=True)
class Table:
    """A rendered table: formatted cells, a title and footnotes."""

    title: str
    body: pd.DataFrame
    footnotes: tuple[str, ...] = ()


def format_p(p: float) -> str:
    """AMA style: ``<.001``, ``.004``, ``.03``, ``.30``, ``>.99``."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "NA"
    if p < 0.001:
        return "<.001"
    # Round first, then decide the number of digits, so .0095 -> .010 -> shown as ".01".
    if round(p, 3) < 0.01:
        text = f"{p:.3f}"
    elif round(p, 2) >= 1:
        return ">.99"
    else:
        text = f"{p:.2f}"
    return text.lstrip("0")


def _number(x: float, digits: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    text = f"{x:.{digits}f}"
    # "-0.0" reads as a signed result; a change that rounds to zero is shown as 0.0.
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def mean_sd(mean: float, sd: float, digits: int = 1) -> str:
    return f"{_number(mean, digits)} ± {_number(sd, digits)}"


def estimate_ci(estimate: float, low: float, high: float, digits: int = 1) -> str:
    # "to" rather than a dash, so negative limits stay readable (AMA style).
    return f"{_number(estimate, digits)} ({_number(low, digits)} to {_number(high, digits)})"


def table_2(results: pd.DataFrame, outcomes: pd.DataFrame, *, conf_level: float,
            synthetic: bool = False) -> Table:
    """Table 2: each outcome before and after surgery.

    ``results`` is the tidy paired-tests table; ``outcomes`` the planned
    outcomes with ``outcome, label, higher_is_better`` (see
    :func:`pipeline.pairing.outcomes_frame`).
    """
    merged = results.merge(outcomes[["outcome", "score", "label", "higher_is_better"]],
                           on=["outcome", "score"], how="left", validate="one_to_one")
    level = f"{conf_level:.0%}"
    body = pd.DataFrame({
        "Outcome": merged["label"],
        "n pairs": merged["n_pairs"].astype(int).astype(str),
        "Before, mean ± SD": [mean_sd(m, s) for m, s in zip(merged["pre_mean"], merged["pre_sd"])],
        "After, mean ± SD": [mean_sd(m, s) for m, s in zip(merged["post_mean"], merged["post_sd"])],
        f"Change ({level} CI)": [estimate_ci(d, lo, hi) for d, lo, hi in
                                 zip(merged["mean_diff"], merged["ci_low"], merged["ci_high"])],
        "P": [format_p(p) for p in merged["p_used"]],
    })
    first = results.iloc[0]
    tests = sorted(set(results["test_used"]))
    better_low = merged.loc[~merged["higher_is_better"].astype(bool), "label"].tolist()
    footnotes = [
        f"Before: {first['pre_visit']}; after: {first['post_visit']} assessment. "
        f"Change = after - before, with its t-based {level} confidence interval.",
        f"P values are two-sided, from the {' and '.join(tests)} test"
        f"{'s' if len(tests) > 1 else ''} on the paired values.",
    ]
    if better_low:
        footnotes.append(f"Lower is better for {', '.join(better_low)}; higher is better otherwise.")
    notes = [f"{label}: {note}" for label, note in zip(merged["label"], merged["note"]) if note]
    footnotes.extend(notes)
    if synthetic:
        footnotes.append(SYNTHETIC_NOTE)
    return Table("Table 2. Outcomes before and after surgery", body, tuple(footnotes))


def write_table(table: Table, folder: Path, stem: str) -> list[Path]:
    """Write ``<stem>.csv`` (cells, then footnotes as ``#`` lines) and ``<stem>.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / f"{stem}.csv", folder / f"{stem}.md"
    csv = table.body.to_csv(index=False, lineterminator="\n")
    csv_path.write_text(csv + "".join(f"# {note}\n" for note in table.footnotes), encoding="utf-8")
    markdown = [f"**{table.title}**", "", table.body.to_markdown(index=False), ""]
    markdown += [f"{chr(97 + i)}. {note}" for i, note in enumerate(table.footnotes)]
    md_path.write_text("\n".join(markdown) + "\n", encoding="utf-8")
    return [csv_path, md_path]


def write_results(results: pd.DataFrame, folder: Path, stem: str) -> Path:
    """Write a tidy results table as CSV at full double precision (17 significant digits)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.csv"
    results.to_csv(path, index=False, lineterminator="\n", float_format="%.17g")
    return path
