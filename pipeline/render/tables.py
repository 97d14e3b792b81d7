"""The publication tables: each built from tidy, unrounded results as a :class:`Table` of text.

Table 1 (baseline characteristics, computed by :mod:`pipeline.statistics.baseline`), Table 2
(outcomes before and after), Table 3 and the eTables (subgroups, ANCOVA, patient flow, missing
data, visit estimates, responders, reliability). :func:`publication_tables` builds a
study's whole set from frames that :func:`pipeline.steps.write_tables` reads from the
warehouse; this module never reads the warehouse itself.

Every number goes through the journal style (:mod:`pipeline.render.style`, AMA by default):
the builders decide what a table shows, the style how each number is written, and the
writers (:mod:`pipeline.render.writers`: CSV, Markdown, HTML, LaTeX, Word) only write the
text out. :func:`as_frame` and :func:`from_frame` turn the built tables into one tidy frame
of their text and back, so the study report shows them without building them again.
"""

from __future__ import annotations

import re

import pandas as pd

from pipeline.render.labels import (
    agreement_notes,
    in_sentence,
    labelled_variables,
    readable_results,
)
from pipeline.render.style import AMA, JournalStyle, is_missing

# Table is defined with the writers that write it out.
from pipeline.render.writers import Table
from pipeline.spec.study import Study, is_last_follow_up
from pipeline.statistics.baseline import (
    DAYS_PER_MONTH,
    FOLLOW_UP,
    OVERALL,
    baseline_characteristics,
    follow_up_months,
)
from pipeline.statistics.items import ITEM_SCORE_PREFIX
from pipeline.statistics.paired import test_estimates

SYNTHETIC_NOTE = "SYNTHETIC DATA: demonstration cohort, not real patients."


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class _Footnotes:
    """A table's footnotes in their order, each marked, where the builder adds it, on the cells
    it explains: a heading (row None) or a body row's cell, the column named by its heading. A
    mark is tied to its footnote's place, not to its words, so rewording a footnote cannot
    lose it."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._cells: list[tuple[int | None, str, int]] = []

    def add(self, text: str, *cells: tuple[int | None, str]) -> int:
        """Append ``text``, marked on ``cells`` ((row, heading) pairs); its index."""
        self.texts.append(text)
        self._cells += [(row, heading, len(self.texts) - 1) for row, heading in cells]
        return len(self.texts) - 1

    def extend(self, texts) -> None:
        """Append ``texts``, marked on no cell."""
        self.texts += list(texts)

    def marks(self, body: pd.DataFrame) -> tuple[tuple[int | None, int, int], ...]:
        """The marks as :class:`Table` takes them. A heading the body does not have is an error
        of the builder, not a mark to leave out."""
        columns = list(body.columns)
        missing = sorted({h for _, h, _ in self._cells if h not in columns})
        if missing:
            raise ValueError(f"footnote marked on headings the table does not have: {missing}")
        return _in_order([(row, columns.index(h), k) for row, h, k in self._cells])


def _cells_reading(body: pd.DataFrame, *texts: str) -> list[tuple[int, str]]:
    """The body cells (row, heading) whose text is one of ``texts`` (or ends in one, after
    its estimate): where a footnote on those words is marked."""
    return [
        (i, heading)
        for heading in body.columns
        for i, cell in enumerate(body[heading].astype(str))
        if any(cell == t or cell.endswith(f" {t}") for t in texts)
    ]


# --------------------------------------------------------------------------- Table 1


def table_1(
    tidy: pd.DataFrame,
    group_sizes: dict[str, int],
    *,
    by_label: str = "",
    group_labels: dict[str, str] | None = None,
    synthetic: bool = False,
    notes: tuple[str, ...] = (),
    overall_notes: tuple[str, ...] = (),
    style: JournalStyle = AMA,
) -> Table:
    """Table 1 from :func:`pipeline.statistics.baseline.baseline_characteristics`;
    ``group_sizes`` maps each group to its N; ``notes`` are further footnotes, ``overall_notes``
    footnotes on the Overall column (marked on its heading)."""
    group_labels = group_labels or {}
    groups = list(dict.fromkeys(tidy["group"]))
    headers = {g: f"{group_labels.get(g, g)} (n = {group_sizes[g]})" for g in groups}
    with_p = tidy["p_value"].notna().any()
    cells, indent = [], []
    count_percent = f", {style.count_percent_label}"

    def add(first: str, level: int, values: dict[str, str], p: str = "") -> None:
        row = {"Characteristic": first, **{headers[g]: values.get(g, "") for g in groups}}
        if with_p:
            row["P"] = p
        cells.append(row)
        indent.append(level)

    def percent(r) -> str:
        return style.count_percent(r.count, r.n, style.percent_digits(group_sizes[r.group]))

    top_row = {}  # each variable's first row, where a footnote on it is marked
    for variable, rows in tidy.groupby("variable", sort=False):
        top_row[variable] = len(cells)
        first = rows.iloc[0]
        p = style.p(first["p_value"]) if with_p and not is_missing(first["p_value"]) else ""
        if first["kind"] == "continuous":
            stat = first["statistic"]
            suffix = f", {style.mean_sd_label if stat == 'mean_sd' else style.median_iqr_label}"
            # The data's precision: medians, quartiles and ranges at the recorded decimals,
            # means and SDs at one more (baseline.recorded_decimals).
            digits = _recorded_digits(first, variable)
            values = {}
            for r in rows.itertuples():
                if r.n == 0:
                    values[r.group] = style.missing
                elif stat == "mean_sd":
                    values[r.group] = style.mean_sd(r.mean, r.sd, digits + 1)
                else:
                    values[r.group] = style.median_iqr(r.median, r.q1, r.q3, digits)
            add(first["label"] + suffix, 0, values, p)
            if variable == FOLLOW_UP.name and (rows["n"] > 0).any():  # no range of no follow-up
                # As the index study reports follow-up: mean (range), beside the median [IQR].
                add(
                    "Mean (range)",
                    1,
                    {
                        r.group: f"{style.number(r.mean, digits)} "
                        f"({style.value_range(r.minimum, r.maximum, digits)})"
                        for r in rows.itertuples()
                        if r.n
                    },
                )
        elif first["kind"] == "binary":
            add(
                first["label"] + count_percent,
                0,
                {r.group: percent(r) for r in rows.itertuples()},
                p,
            )
        else:
            add(first["label"] + count_percent, 0, {}, p)
            for level, level_rows in rows.groupby("level", sort=False):
                add(
                    level_rows.iloc[0]["level_label"],
                    1,
                    {r.group: percent(r) for r in level_rows.itertuples()},
                )
        missing = rows.drop_duplicates("group").set_index("group")["missing"]
        if missing.sum() > 0:
            add(f"Missing, {style.count_label}", 1, {g: str(int(m)) for g, m in missing.items()})
    body = pd.DataFrame(cells)
    first_column = "Characteristic"
    footnotes = _Footnotes()
    # How each characteristic is summarised, and to what decimals: on the column naming them.
    footnotes.add(
        f"Continuous characteristics are summarised as {style.mean_sd_label} when their "
        f"absolute sample skewness is at most 1, otherwise as {style.median_iqr_label} "
        "(quartiles by linear interpolation). Percentages are of the patients with a "
        "recorded value; missing values are counted separately.",
        (None, first_column),
    )
    footnotes.add(
        "Decimals follow the data's precision: medians, quartiles and ranges are given to "
        "the decimals the values are recorded with, means and SDs to one more.",
        (None, first_column),
    )
    top = tidy.drop_duplicates(["variable", "group"])
    top = top[(top["group"] == OVERALL) & (top["top_coded"] > 0)]
    for r in top.itertuples():
        footnotes.add(
            f"{r.label.split(',')[0]}: {r.top_coded} value(s) recorded as top-coded "
            '(e.g. "90+", HIPAA Safe Harbor) were counted as the bound (90); '
            f"hence the {style.median_iqr_label}.",
            (top_row[r.variable], first_column),
        )
    if FOLLOW_UP.name in set(tidy["variable"]):
        footnotes.add(
            "Follow-up: days from surgery to the last postoperative visit, "
            f"divided by {DAYS_PER_MONTH} days per month, to one decimal; given as "
            f"{style.median_iqr_label} and as mean (range).",
            (top_row[FOLLOW_UP.name], first_column),
        )
    if with_p:
        tested = tidy.drop_duplicates("variable")
        tested = tested[tested["test"] != ""]
        by_test = [
            f"{test} for {', '.join(label.split(',')[0] for label in rows['label'])}"
            for test, rows in tested.groupby("test", sort=False)
        ]
        footnotes.add(
            f"Two-sided P values comparing the {by_label or 'group'} groups, over "
            "the patients with a recorded value: " + "; ".join(by_test) + ".",
            (None, "P"),
        )
    footnotes.extend(notes)
    for note in overall_notes:
        footnotes.add(note, *[(None, headers[g]) for g in groups if g == OVERALL])
    if synthetic:
        footnotes.add(SYNTHETIC_NOTE)
    title = "Table 1. Baseline characteristics" + (
        f" overall and by {by_label}" if by_label else ""
    )
    return Table(title, body, tuple(footnotes.texts), tuple(indent), marks=footnotes.marks(body))


def _recorded_digits(first, variable: str) -> int:
    """The recorded decimals of a continuous Table 1 variable (the tidy ``decimals`` column;
    results without it: age whole, others one decimal, as before)."""
    decimals = first.get("decimals") if hasattr(first, "get") else None
    if decimals is None or is_missing(decimals):
        return 0 if variable == "age" else 1
    return int(decimals)


# --------------------------------------------------------------------------- Table 2

EFFECT_SIZES = {  # results column -> heading
    "dz": "Cohen dz",
    "hedges_g": "Hedges g",
    "rank_biserial": "Rank-biserial r",
}
EFFECT_SIZE_NOTES = {
    "dz": "Cohen dz = mean change / SD of the changes",
    "hedges_g": "Hedges g, the standardised mean change corrected for small-sample bias",
    "rank_biserial": "matched-pairs rank-biserial correlation r (Kerby 2014)",
}
NOT_ESTIMABLE = "not estimable"
#: Decimals of a change score and its CI, the same in Table 2 and Table 3.
CHANGE_DIGITS = 1
WILCOXON = "Wilcoxon signed-rank"


def _p_notes(
    rows: pd.DataFrame,
    *,
    values: str = "the paired values",
    adjusted: str = "Adjusted P",
    marked: bool = False,
) -> list:
    """The footnotes on P and adjusted P of these tested rows: the tests that gave a P, each
    named once, and how each P was adjusted (``p_adj_method`` says it per row, e.g. "Holm over
    19 secondary outcomes" or "none (primary outcome)"), each description once. With
    ``marked``, each as (footnote, the heading it explains: "P" or "Adjusted P")."""
    notes = []
    tests = sorted(set(rows["test_used"].dropna()))
    if tests:
        notes.append(
            (
                f"P values are two-sided, from the {_listed(tests)} test"
                f"{'s' if len(tests) > 1 else ''} on {values}.",
                "P",
            )
        )
    if "p_adj" in rows and "p_adj_method" in rows:
        methods = [m for m in dict.fromkeys(rows["p_adj_method"].dropna()) if m]
        if methods:
            notes.append((f"{adjusted}: " + "; ".join(methods) + ".", "Adjusted P"))
    return notes if marked else [note for note, _ in notes]


def change_columns(
    merged: pd.DataFrame, conf_level: float, style: JournalStyle = AMA, shown=None
) -> tuple[dict[str, list[str]], list[str], list[tuple[int, str]]]:
    """Table 2's change: each outcome's estimate and CI that go with its test.

    A Wilcoxon row shows the Hodges-Lehmann median change with the CI that inverts the
    signed-rank test (``hodges_lehmann``, ``hl_ci_low``, ``hl_ci_high``; R ``wilcox.test(...,
    conf.int = TRUE)``), a paired t row the mean change with its t-based CI (``mean_diff``,
    ``ci_low``, ``ci_high``): an estimate always beside the P of its own test. When both kinds
    of row occur there are two columns, each row filled in the one of its test. A Hodges-Lehmann
    interval whose level R had to lower (``hl_conf_level`` below ``conf_level``: too few
    differences) is shown as the estimate with "CI not estimable" (:attr:`JournalStyle.no_ci`),
    the last footnote saying why. Rows without pairs are left to the caller, as are the rows
    ``shown`` (one bool per row; default all) leaves out: the caller writes other words there.

    Returns the columns (heading -> cells), the footnotes that say what they show, and the shown
    cells (row position in ``merged``, heading) whose CI is not estimable, for the caller to
    mark with the last footnote, which is there exactly when there are such cells.
    """
    ci = style.ci_label(conf_level)
    level = f"{conf_level:.0%}"
    tests = merged["test_used"].astype(object).where(merged["test_used"].notna(), "")
    estimates = test_estimates(merged, conf_level)
    median = (estimates["estimate_kind"] == "median").tolist()
    kinds = {"median" if m else "mean" for m, t in zip(median, tests) if t}
    kinds = kinds or {"mean"}
    rows = list(zip(estimates["estimate"], estimates["estimate_low"], estimates["estimate_high"]))
    columns, notes = {}, []
    if "mean" in kinds:
        columns[f"Mean change ({ci})"] = [
            style.estimate_ci(e, lo, hi, CHANGE_DIGITS) if not m else ""
            for (e, lo, hi), m in zip(rows, median)
        ]
        notes.append(f"Mean change with its t-based {level} CI")
    if "median" in kinds:
        columns[f"Median change (Hodges-Lehmann, {ci})"] = [
            style.estimate_ci(e, lo, hi, CHANGE_DIGITS) if m else ""
            for (e, lo, hi), m in zip(rows, median)
        ]
        achieved = merged["hl_conf_level"] if "hl_conf_level" in merged else conf_level
        reached = pd.Series(achieved, index=merged.index).astype(float) >= conf_level - 1e-12
        lowered = [m and not ok for m, ok in zip(median, reached)]
        notes.append(
            "median change: the Hodges-Lehmann estimate (the median of the averages of every "
            f"pair of patients' changes) with the {level} CI that inverts the Wilcoxon "
            "signed-rank test (exact without tied or zero changes and below 50 pairs, otherwise "
            "from its normal approximation with continuity correction)"
        )
    if len(kinds) == 2:
        text = (
            "Each outcome's change is given with the estimate of its test: the mean change "
            f"(t-based {level} CI) where P is from the paired t test, the median change where P "
            "is from the Wilcoxon signed-rank test; " + notes[1] + "."
        )
    else:
        text = notes[0][0].upper() + notes[0][1:] + ", the estimate that goes with the test of P."
    texts, not_estimable = [text], []
    no_ci = f"({style.no_ci})"
    shown = [True] * len(merged) if shown is None else list(shown)
    if "median" in kinds:
        heading = f"Median change (Hodges-Lehmann, {ci})"
        not_estimable = [
            (i, heading)
            for i, (cell, low, show) in enumerate(zip(columns[heading], lowered, shown))
            if low and show and cell.endswith(no_ci)
        ]
    if not_estimable:
        texts.append(
            f"{style.no_ci[:1].upper()}{style.no_ci[1:]}: with so few non-zero changes the {level} "
            "Hodges-Lehmann CI of a median change cannot be achieved (R's wilcox.test would give "
            "one at a lower level)."
        )
    return columns, texts, not_estimable


def _with_ci(frame: pd.DataFrame, column: str, digits: int, style: JournalStyle) -> list[str]:
    low, high = f"{column}_ci_low", f"{column}_ci_high"
    if low in frame and high in frame:
        return [
            style.estimate_ci(v, lo, hi, digits)
            for v, lo, hi in zip(frame[column], frame[low], frame[high])
        ]
    return [style.number(v, digits) for v in frame[column]]


def table_2(
    results: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    conf_level: float,
    synthetic: bool = False,
    style: JournalStyle = AMA,
    tabled: pd.DataFrame | None = None,
) -> Table:
    """Table 2: each outcome before and after surgery.

    ``results`` is the tidy paired-tests table; ``outcomes`` the planned
    outcomes with ``outcome, label, higher_is_better`` (see
    :func:`pipeline.pairing.outcomes_frame`). Adjusted P (``p_adj``) and effect
    sizes (``dz``, ``hedges_g``, ``rank_biserial``, each with ``<name>_ci_low``
    / ``<name>_ci_high`` when present) get a column when the results have them.

    An outcome with no pairs (``n_pairs = 0``) keeps its row: "—" for the values,
    "not estimable" for the change, and a footnote naming it. No results give the
    header alone. A binary or categorical outcome (``kind`` in ``outcomes``) is shown from
    ``tabled``, its rows of :func:`pipeline.statistics.binary.paired_categorical`
    (:func:`_tabled_rows`).
    """
    versions = [n for n in dict.fromkeys(outcomes.get("version_note", pd.Series(dtype=str))) if n]
    merged = results.merge(
        outcomes[["outcome", "score", "label", "higher_is_better"]],
        on=["outcome", "score"],
        how="left",
        validate="one_to_one",
    )
    n_pairs = merged["n_pairs"].astype(int)
    paired = (n_pairs > 0).tolist()
    kinds = outcomes.set_index(["outcome", "score"]).get("kind")
    kind_of = (
        [kinds.get(key, "score") for key in zip(merged["outcome"], merged["score"])]
        if kinds is not None
        else ["score"] * len(merged)
    )
    # A binary or categorical outcome has no mean or median change: its own cells (_tabled_rows).
    scored = [k == "score" for k in kind_of]
    change_cells, change_notes, no_ci = change_columns(
        merged.assign(test_used=merged["test_used"].where(scored, None)),
        conf_level,
        style,
        [p and s for p, s in zip(paired, scored)],
    )
    if len(merged) and not any(scored):  # binary and categorical outcomes alone: no change column
        change_cells, change_notes, no_ci = {}, [], []

    def cells(values, absent: str = style.no_value) -> list[str]:
        return [value if has_pairs else absent for value, has_pairs in zip(values, paired)]

    def mean_sd(mean: str, sd: str) -> list[str]:
        return cells([style.mean_sd(m, s) for m, s in zip(merged[mean], merged[sd])])

    # A measure in units of its own says them, as Table 1 does ("Botulinum toxin dose, units").
    units = (
        dict(zip(zip(outcomes["outcome"], outcomes["score"]), outcomes["unit"]))
        if "unit" in outcomes
        else {}
    )
    body = pd.DataFrame(
        {
            "Outcome": [
                f"{label}, {unit}" if isinstance(unit := units.get(key), str) and unit else label
                for label, key in zip(merged["label"], zip(merged["outcome"], merged["score"]))
            ],
            "n pairs": n_pairs.astype(str),
            f"Before, {style.mean_sd_label}": mean_sd("pre_mean", "pre_sd"),
            f"After, {style.mean_sd_label}": mean_sd("post_mean", "post_sd"),
            **{heading: cells(values, NOT_ESTIMABLE) for heading, values in change_cells.items()},
            "P": cells([style.p(p) for p in merged["p_used"]]),
        }
    )
    if "p_adj" in merged:
        body["Adjusted P"] = cells([style.p(p) for p in merged["p_adj"]])
    shown_effects = [c for c in EFFECT_SIZES if c in merged and merged[c].notna().any()]
    # One standardised effect per test family keeps the table printable: d_z (paired t) and
    # the rank-biserial r (Wilcoxon); Hedges g only where there is no d_z.
    if "dz" in shown_effects and "hedges_g" in shown_effects:
        shown_effects.remove("hedges_g")
    for column in shown_effects:
        body[EFFECT_SIZES[column]] = cells(_with_ci(merged, column, 2, style))
    with_pairs = merged[n_pairs > 0]
    lower_better = ~merged["higher_is_better"].astype(bool)
    better_low = merged.loc[lower_better, "label"].tolist()
    level = f"{conf_level:.0%}"
    first_column = "Outcome"
    footnotes = _Footnotes()
    if len(results):
        first = results.iloc[0]
        before_after = [h for h in body.columns if h.startswith(("Before, ", "After, "))]
        footnotes.add(
            f"Before: {first['pre_visit']}; after: {first['post_visit']} assessment. "
            "Change = after - before.",
            *[(None, h) for h in [*before_after, *change_cells]],
        )
        # What the change column(s) show, then (if any) why some cells have no CI.
        if change_notes:
            footnotes.add(change_notes[0], *[(None, h) for h in change_cells])
        if no_ci:
            footnotes.add(change_notes[1], *no_ci)
    # An outcome without pairs was tested by none.
    for note, heading in _p_notes(with_pairs, marked=True):
        footnotes.add(note, (None, heading))
    if versions:
        scored = outcomes.get("version_note", pd.Series("", index=outcomes.index)).fillna("")
        keys = set(zip(outcomes.loc[scored != "", "outcome"], outcomes.loc[scored != "", "score"]))
        footnotes.add(
            "Scoring versions: " + "; ".join(versions) + ".",
            *[
                (i, first_column)
                for i, key in enumerate(zip(merged["outcome"], merged["score"]))
                if key in keys
            ],
        )
    if shown_effects:
        with_cis = any(f"{c}_ci_low" in merged for c in shown_effects)
        footnotes.add(
            "Effect sizes: "
            + "; ".join(EFFECT_SIZE_NOTES[c] for c in shown_effects)
            + (f"; with {level} CI." if with_cis else "."),
            *[(None, EFFECT_SIZES[c]) for c in shown_effects],
        )
    if better_low:
        footnotes.add(
            f"Lower is better for {', '.join(better_low)}; higher is better otherwise.",
            *[(i, first_column) for i, low in enumerate(lower_better) if low],
        )
    unpaired = merged.loc[n_pairs == 0, "label"].tolist()
    if unpaired:
        footnotes.add(
            f"{_listed(unpaired)}: {NOT_ESTIMABLE} ({style.no_value}), no patient "
            "has both a before and an after value (n pairs = 0).",
            *[(i, first_column) for i, has_pairs in enumerate(paired) if not has_pairs],
        )
    # Why a statistic of an outcome with pairs is NaN (the outcomes without are named above).
    # A Hodges-Lehmann note only where the table shows that estimate (the Wilcoxon rows).
    shows_median = (with_pairs["test_used"] == WILCOXON) & ("hodges_lehmann" in with_pairs)
    if not all(scored):
        _tabled_rows(body, merged, kind_of, tabled, footnotes, conf_level, style)
    for i, label, note, median in zip(
        with_pairs.index, with_pairs["label"], with_pairs["note"], shows_median
    ):
        if kind_of[merged.index.get_loc(i)] != "score":
            continue  # said by the footnotes of _tabled_rows
        parts = [
            part
            for part in ("" if is_missing(note) else str(note)).split("; ")
            if part and (median or not part.startswith("Hodges-Lehmann"))
        ]
        if parts:
            footnotes.add(f"{label}: {'; '.join(parts)}", (merged.index.get_loc(i), first_column))
    if synthetic:
        footnotes.add(SYNTHETIC_NOTE)
    return Table(
        "Table 2. Outcomes before and after surgery",
        body,
        tuple(footnotes.texts),
        marks=footnotes.marks(body),
    )


def table_2_by_comparison(
    results: pd.DataFrame, outcomes: pd.DataFrame, comparisons: list[tuple[str, str]], **options
) -> Table:
    """Table 2 of a plan with several comparisons: each comparison's :func:`table_2` (its rows
    of ``results``, by the ``comparison`` column) under a row naming it, its outcomes indented,
    in the order of ``comparisons`` (``(name, label)`` pairs, the plan's order). ``options`` are
    :func:`table_2`'s.

    A footnote every comparison's table has is given once. One that only some have and that
    marks column headings (the visits a comparison pairs: "Before: ...; after: 12 months ...",
    its multiplicity family) starts with its comparison's label and is marked on its
    comparison's row instead, so each says which comparison it is about. Footnotes are
    lettered in reading order (headings, then rows), a footnote marked nowhere (synthetic
    data) last. Columns are the union of the comparisons', in order of first appearance; a
    comparison without one of them (an effect size its test does not give) leaves its cells
    empty.
    """
    built = [
        (label, table_2(results[results["comparison"] == name], outcomes, **options))
        for name, label in comparisons
    ]
    columns = list(dict.fromkeys(h for _, t in built for h in t.body.columns))
    shared = {
        text
        for text in {text for _, t in built for text in t.footnotes}
        if all(text in t.footnotes for _, t in built)
    }
    parts, indent, cells, texts = [], [], [], []
    for label, t in built:
        heading = len(indent)
        parts.append(pd.DataFrame([[label] + [""] * (len(columns) - 1)], columns=columns))
        parts.append(t.body.reindex(columns=columns, fill_value=""))
        indent += [0] + [1] * len(t.body)
        for row, column, note in t.marks:
            text = t.footnotes[note]
            if row is None and text not in shared:
                cells.append((heading, 0, f"{label}. {text}"))
            else:
                where = None if row is None else heading + 1 + row
                cells.append((where, columns.index(t.body.columns[column]), text))
        texts += [text for text in t.footnotes if text not in texts]
    # Reading order: the headings' notes, then the rows'; a note marked nowhere last.
    cells.sort(key=lambda m: (m[0] is not None, m[0] or 0, m[1]))
    ordered = list(dict.fromkeys(text for _, _, text in cells))
    ordered += [text for text in texts if text not in ordered and text in shared]
    marks = [(row, column, ordered.index(text)) for row, column, text in cells]
    title = built[0][1].title if built else "Table 2. Outcomes before and after surgery"
    return Table(
        title, pd.concat(parts, ignore_index=True), tuple(ordered), tuple(indent), _in_order(marks)
    )


def with_comparison_labels(study: Study, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s outcome ``label`` followed by its comparison's label ("Sunnybrook composite,
    12 months") when the plan has several comparisons and ``frame`` a ``comparison`` column: a
    table whose rows are grouped by outcome label keeps the comparisons apart."""
    compared = study.analysis.compared
    if len(compared) < 2 or "comparison" not in frame or "label" not in frame:
        return frame
    labels = {c.name: c.label for c in compared}
    return frame.assign(label=frame["label"] + ", " + frame["comparison"].map(labels))


def _tabled_rows(
    body: pd.DataFrame,
    merged: pd.DataFrame,
    kinds: list[str],
    tabled: pd.DataFrame | None,
    footnotes: _Footnotes,
    conf_level: float,
    style: JournalStyle,
) -> None:
    """Table 2's rows of binary and categorical outcomes, in place: a binary outcome's No. (%)
    of patients with a yes before and after, the difference of the percentages (percentage
    points) with Newcombe's interval in the change column, and the exact McNemar P (already in
    P); a categorical outcome's P (Stuart-Maxwell) with its distribution in its eTable. No mean,
    SD or effect size: they do not apply."""
    found = (
        tabled.set_index(["outcome", "score"])
        if tabled is not None and len(tabled)
        else pd.DataFrame()
    )
    before = next(h for h in body.columns if h.startswith("Before, "))
    after = next(h for h in body.columns if h.startswith("After, "))
    change = [h for h in body.columns if h.endswith(" CI)") and "change" in h]
    effects = [h for h in EFFECT_SIZES.values() if h in body.columns]
    for heading in change:  # no mean or median change of a binary or categorical outcome
        for position, kind in enumerate(kinds):
            if kind != "score" and int(merged["n_pairs"].iloc[position]) > 0:
                body.iloc[position, body.columns.get_loc(heading)] = ""
    difference = f"Difference, % points ({style.ci_label(conf_level)})"
    binary_rows, categorical_rows = [], []
    for position, kind in enumerate(kinds):
        if kind == "score" or int(merged["n_pairs"].iloc[position]) == 0:
            continue
        key = (merged["outcome"].iloc[position], merged["score"].iloc[position])
        row = found.loc[key] if key in found.index else None
        if isinstance(row, pd.DataFrame):  # one row per group: the whole cohort's
            row = row[row["group"] == "all"].iloc[0]
        if row is None:
            continue
        for heading in effects:
            body.iloc[position, body.columns.get_loc(heading)] = style.no_value
        if kind == "binary":
            n = int(row["n_pairs"])
            digits = style.percent_digits(n)
            body.iloc[position, body.columns.get_loc(before)] = style.count_percent(
                row["n_pre_yes"], n, digits
            )
            body.iloc[position, body.columns.get_loc(after)] = style.count_percent(
                row["n_post_yes"], n, digits
            )
            if difference not in body:
                at = body.columns.get_loc(change[-1]) + 1 if change else body.columns.get_loc("P")
                body.insert(at, difference, "")
            body.iloc[position, body.columns.get_loc(difference)] = style.estimate_ci(
                100 * row["diff"], 100 * row["diff_ci_low"], 100 * row["diff_ci_high"], digits
            )
            binary_rows.append(position)
        else:
            for heading in (before, after):
                body.iloc[position, body.columns.get_loc(heading)] = style.no_value
            categorical_rows.append(position)
    level = f"{conf_level:.0%}"
    if binary_rows:
        labels = _listed([merged["label"].iloc[i] for i in binary_rows])
        footnotes.add(
            f"{labels}: {style.count_percent_label} of patients with a yes (1) before and after; "
            "difference: of the percentages, after - before, in percentage points, with "
            f"Newcombe's hybrid score {level} CI; P from the exact McNemar test on the patients "
            "who changed.",
            *[(i, h) for i in binary_rows for h in (before, after)],
            (None, difference),
        )
    if categorical_rows:
        labels = _listed([merged["label"].iloc[i] for i in categorical_rows])
        footnotes.add(
            f"{labels}: categories, whose numbers before and after are given in their eTable; "
            "P from the Stuart-Maxwell test of marginal homogeneity (is the distribution over "
            "the categories the same after as before?).",
            *[(i, h) for i in categorical_rows for h in (before, after)],
        )


#: The tidy results of binary and categorical outcomes and their before x after counts
#: (``pipeline.steps.TABLED_TABLES``).
PAIRED_CATEGORICAL, PAIRED_CATEGORICAL_CELLS = "paired_categorical", "paired_categorical_cells"


def before_after_tables(
    study: Study,
    tested: pd.DataFrame,
    cells: pd.DataFrame,
    planned: pd.DataFrame,
    *,
    style: JournalStyle = AMA,
) -> list[tuple[str, Table]]:
    """One eTable per categorical outcome (whole cohort): No. of patients in each category
    before (rows) and after (columns), with totals, and the Stuart-Maxwell and Bowker tests in
    its footnotes. Stem ``etable_before_after_<outcome>_<score>``."""
    out = []
    labels = planned.set_index(["outcome", "score"])["label"]
    planned_outcomes = {o.name: o for o in study.analysis.outcomes}
    whole = tested[(tested["group"] == "all") & (tested["kind"] == "categorical")]
    for row in whole.itertuples():
        if int(row.n_pairs) == 0:
            continue
        mine = cells[
            (cells["outcome"] == row.outcome)
            & (cells["score"] == row.score)
            & (cells["group"] == "all")
        ]
        counts = mine.pivot(index="pre_category", columns="post_category", values="n")
        outcome = planned_outcomes.get(row.outcome)
        named = outcome.category_label if outcome is not None else (lambda c: f"{c:g}")
        names = [named(c) for c in counts.columns]
        body = pd.DataFrame({"Before": [named(c) for c in counts.index]})
        for name, column in zip(names, counts.columns):
            body[f"After: {name}"] = [str(int(v)) for v in counts[column]]
        body["Total"] = [str(int(v)) for v in counts.sum(axis=1)]
        total = {"Before": "Total"}
        total.update({f"After: {n}": str(int(v)) for n, v in zip(names, counts.sum(axis=0))})
        total["Total"] = str(int(counts.to_numpy().sum()))
        body = pd.concat([body, pd.DataFrame([total])], ignore_index=True)
        label = labels.get((row.outcome, row.score), row.outcome)
        notes = [
            "No. of patients by category before (rows) and after (columns); those on the "
            "diagonal kept their category.",
            "Stuart-Maxwell test of marginal homogeneity: "
            + (
                f"χ2 = {style.number(row.stuart_maxwell_chi2, 2)}, df = "
                f"{int(row.stuart_maxwell_df)}, P {p_equals(row.stuart_maxwell_p, style)}"
                if not is_missing(row.stuart_maxwell_p)
                else "not estimable"
            )
            + "; Bowker test of symmetry: "
            + (
                f"χ2 = {style.number(row.bowker_chi2, 2)}, df = {int(row.bowker_df)}, "
                f"P {p_equals(row.bowker_p, style)}"
                if not is_missing(row.bowker_p)
                else "not estimable"
            )
            + ".",
        ]
        if not is_missing(row.note) and row.note:
            notes.append(f"{str(row.note)[:1].upper()}{str(row.note)[1:]}.")
        if study.synthetic:
            notes.append(SYNTHETIC_NOTE)
        out.append(
            (
                f"etable_before_after_{row.outcome}_{row.score}",
                Table(f"eTable. {label} before and after surgery", body, tuple(notes)),
            )
        )
    return out


# --------------------------------------------------------------------------- Table 3

TOO_FEW = "too few to estimate"


def _too_few_note(min_cell: int) -> str:
    return (
        f"{TOO_FEW.capitalize()}: fewer than {min_cell} patients with both values in the level "
        "(the study's small-cell minimum); the count is not shown."
    )


#: The first column of Table 3 and of its ANCOVA part: outcome rows with their subgroups (and
#: the subgroups' levels) indented under them.
SUBGROUP_LEVEL_HEADING = "Outcome and subgroup"
ANCOVA_LEVEL_HEADING = "Outcome, subgroup and level"


def _under_outcomes(rows: pd.DataFrame, outcomes) -> tuple[pd.DataFrame, tuple[int, ...], list]:
    """``rows`` (each of one outcome of ``outcomes``, an outcome's rows together) with a row
    naming each outcome above its rows, the other cells of that row empty, and its rows
    indented one level; the indentation of each row, and where each of ``rows`` went (its new
    position, by its position in ``rows``)."""
    out, indent, moved = [], [], {}
    by = pd.Series(list(outcomes), index=range(len(rows)))
    for label, block in rows.reset_index(drop=True).groupby(by, sort=False, dropna=False):
        out.append(pd.DataFrame([[label] + [""] * (rows.shape[1] - 1)], columns=rows.columns))
        moved |= {i: len(indent) + 1 + k for k, i in enumerate(block.index)}
        out.append(block)
        indent += [0] + [1] * len(block)
    if not out:
        return rows, (), []
    return pd.concat(out, ignore_index=True), tuple(indent), [moved[i] for i in range(len(rows))]


def table_3_subgroups(
    frame: pd.DataFrame,
    *,
    conf_level: float,
    min_cell: int,
    synthetic: bool = False,
    style: JournalStyle = AMA,
) -> Table:
    """Table 3: each outcome's change within each subgroup level.

    ``frame`` holds the subgroup rows of the paired-tests table (``label``, ``group``,
    ``n_pairs``, the change estimates, ``test_used``, ``p_used``, ``p_adj``...). The change is
    the estimate of each row's test as in Table 2 (:func:`change_columns`), at Table 2's
    decimals; a level with fewer than ``min_cell`` pairs is "too few to estimate", its count
    not shown. As journals lay it out (and Table 1 its levels): a row naming each outcome, its
    cells empty, and the outcome's subgroup levels indented under it.
    """
    frame = frame.reset_index(drop=True)
    n = frame["n_pairs"].astype(int)
    small = (n < min_cell).tolist()
    change, change_notes, no_ci = change_columns(frame, conf_level, style, [not x for x in small])

    def shown(values, hidden: str = "") -> list[str]:
        return [hidden if is_small else v for v, is_small in zip(values, small)]

    levels = {
        SUBGROUP_LEVEL_HEADING: frame["group"].tolist(),
        "n pairs": shown(n.astype(str), f"<{min_cell}"),
        **{heading: shown(cells, TOO_FEW) for heading, cells in change.items()},
        "P": shown([style.p(p) for p in frame["p_used"]]),
    }
    if "p_adj" in frame:
        levels["Adjusted P"] = shown([style.p(p) for p in frame["p_adj"]])
    body, indent, moved = _under_outcomes(pd.DataFrame(levels), frame["label"])
    footnotes = _Footnotes()
    # What the change column shows, then (if any) why some of its cells have no CI.
    footnotes.add(change_notes[0], *[(None, h) for h in change])
    if no_ci:
        footnotes.add(change_notes[1], *[(moved[i], heading) for i, heading in no_ci])
    for note, heading in _p_notes(
        frame[[not x for x in small]],
        values="the paired values of each subgroup level",
        adjusted="Adjusted P, within each level",
        marked=True,
    ):
        footnotes.add(note, (None, heading))
    if any(small):
        footnotes.add(_too_few_note(min_cell), *_cells_reading(body, TOO_FEW, f"<{min_cell}"))
    if synthetic:
        footnotes.add(SYNTHETIC_NOTE)
    return Table(
        "Table 3. Change by subgroup (exploratory)",
        body,
        tuple(footnotes.texts),
        indent,
        marks=footnotes.marks(body),
    )


#: The binary outcomes by subgroup level (pipeline.steps.BINARY_SUBGROUPS), Table 3's rows of them.
BINARY_SUBGROUPS = "binary_subgroups"


def table_3_binary(
    frame: pd.DataFrame,
    *,
    conf_level: float,
    synthetic: bool = False,
    style: JournalStyle = AMA,
) -> Table:
    """Table 3's rows of the binary outcomes: in each subgroup level the No. (%) of patients with
    a yes (1) before and after, the difference in percentage points with Newcombe's interval and
    the exact McNemar P, and on each subgroup's first level the P of Fisher's exact test of the
    after values between its levels (:func:`pipeline.statistics.binary.binary_subgroups`).

    ``frame``: its rows with ``label`` and the levels' labels in ``group`` (as Table 3's)."""
    frame = frame.reset_index(drop=True)
    difference = f"Difference, % points ({style.ci_label(conf_level)})"
    before, after = "Before, No. (%)", "After, No. (%)"
    first = ~frame.duplicated(["outcome", "score", "subgroup"])
    cells: dict[str, list[str]] = {SUBGROUP_LEVEL_HEADING: frame["group"].tolist()}
    cells["n pairs"] = [str(int(n)) for n in frame["n_pairs"]]
    for heading, column in ((before, "n_pre_yes"), (after, "n_post_yes")):
        cells[heading] = [
            style.count_percent(k, n, style.percent_digits(int(n)))
            for k, n in zip(frame[column], frame["n_pairs"])
        ]
    cells[difference] = [
        style.estimate_ci(
            100 * r.diff, 100 * r.diff_ci_low, 100 * r.diff_ci_high, style.percent_digits(r.n_pairs)
        )
        for r in frame.itertuples()
    ]
    cells["P"] = [style.p(p) for p in frame["mcnemar_exact_p"]]
    cells["P between levels"] = [
        style.p(p) if is_first else "" for p, is_first in zip(frame["p_between"], first)
    ]
    body, indent, _ = _under_outcomes(pd.DataFrame(cells), frame["label"])
    footnotes = _Footnotes()
    footnotes.add(
        f"{style.count_percent_label} of patients with a yes (1) before and after, in each "
        "level; difference: of the percentages, after - before, in percentage points, with "
        f"Newcombe's hybrid score {conf_level:.0%} CI.",
        (None, before),
        (None, after),
        (None, difference),
    )
    footnotes.add("Exact McNemar test on the patients of the level who changed.", (None, "P"))
    footnotes.add(
        "Fisher exact test of the after values between the levels of the subgroup (the row of "
        "its first level); the before values are given beside, since a patient with a yes "
        "before has no yes to gain.",
        (None, "P between levels"),
    )
    notes = [str(n) for n in pd.unique(frame["note"].fillna("")) if n]
    for note in notes:
        footnotes.add(f"{note[:1].upper()}{note[1:]}.")
    if synthetic:
        footnotes.add(SYNTHETIC_NOTE)
    return Table(
        "Table 3 (continued). Binary outcomes by subgroup (exploratory)",
        body,
        tuple(footnotes.texts),
        indent,
        marks=footnotes.marks(body),
    )


def table_3_ancova(
    frame: pd.DataFrame,
    *,
    conf_level: float,
    min_cell: int,
    covariates=(),
    synthetic: bool = False,
    style: JournalStyle = AMA,
) -> Table:
    """Table 3 (continued): each subgroup level's difference from the reference level in the
    after value, adjusted for the before value and the plan's covariates (ANCOVA).

    ``frame`` holds the ``ANCOVA`` (F test of the subgroup) and ``ANCOVA difference`` (one per
    level other than the reference) rows of the between-groups table, with ``label``. Per
    outcome a row naming it; under it each subgroup's row, indented, with the F test's P; under
    that, indented twice, the reference level first ("Reference"), then each other level's
    difference with its CI at Table 2's decimals; a level with fewer than ``min_cell`` patients
    is "too few to estimate", its count not shown. A subgroup the ANCOVA could not compare is
    "not estimable" on its row, its levels with their counts under it, and a footnote marked
    there says why. ``covariates`` are the plan's covariates as a sentence names them (their
    labels: "time since onset").
    """
    ci = style.ci_label(conf_level)
    heading = f"Adjusted difference ({ci})"
    cells, indent, notes = [], [], []
    any_small = False
    # How the P values of several contrasts were adjusted -> the first row showing one.
    methods: dict[str, int] = {}

    def count(value: int) -> str:
        nonlocal any_small
        if value < min_cell:
            any_small = True
            return f"<{min_cell}"
        return str(value)

    def add(level: int, first: str, n_text: str = "", text: str = "", p: str = "") -> None:
        cells.append([first, n_text, text, p])
        indent.append(level)

    for label, by_outcome in frame.groupby("label", sort=False, dropna=False):
        add(0, label)
        for subgroup, rows in by_outcome.groupby("subgroup", sort=False, dropna=False):
            test = rows[rows["test"] == "ANCOVA"]
            p = style.p(test["p"].iloc[0]) if len(test) else ""
            differences = rows[rows["test"] == "ANCOVA difference"]
            note = next((n for n in rows["note"] if not is_missing(n) and n), "")

            def level_of(levels: str, i: int, subgroup=subgroup) -> str:
                # "Etiology: Bell palsy" under the subgroup "Etiology" is "Bell palsy".
                return str(levels).split(" | ")[i].removeprefix(f"{subgroup}: ")

            if differences.empty:
                p = "" if p == style.missing else p
                # The note says why: marked on the "not estimable" it explains.
                why = note or "fewer than 2 levels to compare"
                notes.append((f"{label}, {subgroup}: {why}.", (len(cells), heading)))
                add(1, subgroup, text=NOT_ESTIMABLE, p=p)
                if len(test):
                    names = str(test["levels"].iloc[0]).split(" | ")
                    counts = str(test["n"].iloc[0]).split(" | ")
                    if len(names) == len(counts) and all(c.isdigit() for c in counts):
                        for i, n_level in enumerate(counts):
                            add(2, level_of(test["levels"].iloc[0], i), count(int(n_level)))
                    else:
                        cells[-1][1] = count(int(test["n_total"].iloc[0]))
                continue
            if note:
                notes.append((f"{label}, {subgroup}: {note}.", (len(cells), ANCOVA_LEVEL_HEADING)))
            add(1, subgroup, p=p)
            reference = level_of(differences["levels"].iloc[0], 1)
            n_reference = int(str(differences["n"].iloc[0]).split(" | ")[1])
            add(2, reference, count(n_reference), "Reference")
            # With more than one contrast each has its own P, adjusted over the subgroup's.
            several = len(differences) > 1 and "p_adj" in differences
            for r in differences.itertuples():
                n_level, n_versus = (int(v) for v in str(r.n).split(" | "))
                if n_level < min_cell or n_versus < min_cell:
                    text = TOO_FEW
                elif is_missing(r.estimate):
                    text = NOT_ESTIMABLE
                else:
                    text = style.estimate_ci(r.estimate, r.ci_low, r.ci_high, CHANGE_DIGITS)
                versus = level_of(r.levels, 1)
                # A pair without the reference: "Dual vs Masseteric", its count the first's.
                first = level_of(r.levels, 0) + ("" if versus == reference else f" vs {versus}")
                adjusted = ""
                if several and text not in (TOO_FEW, NOT_ESTIMABLE):
                    adjusted = style.p(r.p_adj)
                    methods.setdefault(str(r.p_adj_method), len(cells))
                add(2, first, count(n_level), text, adjusted)
    body = pd.DataFrame(cells, columns=[ANCOVA_LEVEL_HEADING, "n", heading, "P"])
    words = list(covariates)
    adjusted = "the before value" + (f" and {_listed(words)}" if words else "")
    footnotes = _Footnotes()
    footnotes.add(
        "Adjusted difference = level minus reference level in the after value, adjusted for "
        f"{adjusted} (analysis of covariance: a linear model of the after value on {adjusted} "
        "and the subgroup, with a common slope in every level); with a common before value, "
        "the difference in the after value is the difference in change. "
        f"t-based {conf_level:.0%} CI. Reference: the level the analysis plan names, else "
        "the first level declared in the spec (for a split at the median, at or below it); "
        "a row reading 'A vs B' is A minus B.",
        (None, heading),
    )
    footnotes.add(
        "P: F test that the subgroup's levels do not differ after adjustment (the model with "
        "the subgroup against the model without it).",
        (None, "P"),
    )
    if methods:
        footnotes.add(
            "P on a level's row: the t test of that difference, adjusted over the subgroup's "
            f"contrasts ({_listed(sorted(methods))}).",
            *[(row, "P") for row in sorted(set(methods.values()))],
        )
    if any_small:
        footnotes.add(_too_few_note(min_cell), *_cells_reading(body, TOO_FEW, f"<{min_cell}"))
    for note, cell in notes:
        footnotes.add(note, cell)
    if synthetic:
        footnotes.add(SYNTHETIC_NOTE)
    return Table(
        "Table 3 (continued). Difference in change between subgroup levels, adjusted for the "
        "baseline value (analysis of covariance)",
        body,
        tuple(footnotes.texts),
        tuple(indent),
        marks=footnotes.marks(body),
    )


#: The ANCOVA models' tidy tables (:func:`pipeline.steps.compare_subgroups`): one model of the
#: primary outcome per subgroup, its coefficients and its fit.
ANCOVA_COEFFICIENTS, ANCOVA_MODELS = "ancova_coefficients", "ancova_models"
ANCOVA_MODEL_HEADING = "Subgroup and term"


def ancova_model_table(
    coefficients: pd.DataFrame,
    models: pd.DataFrame,
    study: Study,
    *,
    outcome_label: str,
    style: JournalStyle = AMA,
) -> Table:
    """eTable: the ANCOVA of one outcome as a model, one block per subgroup.

    ``coefficients`` and ``models`` are one outcome's rows of ``<study>.ancova_coefficients``
    and ``<study>.ancova_models`` (:func:`pipeline.statistics.group_model.ancova_model`). Per
    subgroup a row naming it with the patients of its model; indented under it the slope on
    the before value, the reference level ("Reference") and each other level's adjusted
    difference from it (level minus reference), each covariate, then R² and the residual SE.
    Coefficients with their t-based CI and P (R ``summary.lm``), unadjusted; the intercept is
    in the CSV only.
    """
    ci = style.ci_label(float(models["conf_level"].iloc[0])) if len(models) else "95% CI"
    heading = f"Coefficient ({ci})"
    cells, indent, notes = [], [], []

    def add(level: int, first: str, n_text: str = "", text: str = "", p: str = "") -> None:
        cells.append([first, n_text, text, p])
        indent.append(level)

    def estimate(r) -> tuple[str, str]:
        """A coefficient's cell and its P's."""
        if is_missing(r.estimate):
            return NOT_ESTIMABLE, ""
        digits = REGRESSION_DIGITS + int(max(abs(r.estimate), abs(r.ci_low), abs(r.ci_high)) < 0.1)
        return style.estimate_ci(r.estimate, r.ci_low, r.ci_high, digits), style.p(r.p)

    for fit in models.itertuples():
        subgroup = str(fit.subgroup)
        name = study.subgroup_label(subgroup)
        rows = coefficients[coefficients["subgroup"] == subgroup]
        fitted = not is_missing(fit.r_squared)
        # A model not fitted: "not estimable" on its row, the footnote there saying why, and
        # only its levels' counts under it.
        add(0, name, str(int(fit.n)), "" if fitted else NOT_ESTIMABLE)
        if not is_missing(fit.note) and fit.note:
            column = ANCOVA_MODEL_HEADING if fitted else heading
            notes.append((f"{name}: {fit.note}.", (len(cells) - 1, column)))
        for r in rows.itertuples():
            if r.role == "intercept" or (not fitted and r.predictor != "group"):
                continue
            if r.predictor == "pre":
                add(1, "Before value (slope)", "", *estimate(r))
            elif r.predictor == "group":
                level = study.group_label(str(r.level)).removeprefix(f"{name}: ")
                n_level = "" if is_missing(r.n_level) else str(int(r.n_level))
                if not fitted:
                    add(1, level, n_level)
                elif r.is_reference:
                    add(1, level, n_level, "Reference")
                else:
                    add(1, level, n_level, *estimate(r))
            elif r.level:
                column = str(r.predictor)
                shown = f"{study.column_label(column)}: {study.level_label(column, str(r.level))}"
                add(1, shown, "", *(("Reference", "") if r.is_reference else estimate(r)))
            else:
                add(1, study.column_label_with_unit(str(r.predictor)), "", *estimate(r))
        if fitted:
            add(1, "R²", "", style.number(fit.r_squared, 2))
            add(1, "Residual SE", "", style.number(fit.sigma, REGRESSION_DIGITS))
    body = pd.DataFrame(cells, columns=[ANCOVA_MODEL_HEADING, "n", heading, "P"])
    footnotes = _Footnotes()
    footnotes.add(
        f"A linear model of the after value of {in_sentence(outcome_label)} on the before value, "
        "the subgroup and the plan's covariates (analysis of covariance), one per subgroup, with "
        "a common slope on the before value in every level. A level's coefficient is its "
        "difference from the reference level in the after value at the same before value and "
        "covariates (level minus reference); a number's, the difference per unit. "
        f"t-based {ci}; P of each coefficient's t test, not adjusted. n: patients of the model "
        "(both values and every covariate). Residual SE: the SD of the residuals.",
        (None, heading),
        (None, "P"),
        (None, "n"),
    )
    for note, cell in notes:
        footnotes.add(note, cell)
    if study.synthetic:
        footnotes.add(SYNTHETIC_NOTE)
    return Table(
        f"eTable. Analysis of covariance of {in_sentence(outcome_label)}: the model of each "
        "subgroup",
        body,
        tuple(footnotes.texts),
        tuple(indent),
        marks=footnotes.marks(body),
    )


def ancova_model_tables(
    study: Study, results: dict[str, pd.DataFrame], planned: pd.DataFrame, style: JournalStyle
) -> list[tuple[str, Table]]:
    """:func:`ancova_model_table` of each modelled outcome, as (file stem, Table); none when the
    warehouse has no ANCOVA models (a plan without subgroups)."""
    coefficients, models = results.get(ANCOVA_COEFFICIENTS), results.get(ANCOVA_MODELS)
    if coefficients is None or models is None or models.empty:
        return []
    labels = planned.set_index(["outcome", "score"])["label"]
    out = []
    for (outcome, score), fits in models.groupby(["outcome", "score"], sort=False):
        rows = coefficients[(coefficients["outcome"] == outcome) & (coefficients["score"] == score)]
        table = ancova_model_table(
            rows, fits, study, outcome_label=str(labels.loc[(outcome, score)]), style=style
        )
        out.append((f"etable_ancova_{outcome}_{score}", table))
    return out


# --------------------------------------------------------------------------- tidy tables of other
# analyses

# Column formatting for tidy results tables whose exact columns this module does not
# fix (subgroups, ANCOVA, model estimates, responders, reliability): known names get
# the house format, estimates with ci_low/ci_high become "x (low to high)".
HEADINGS = {
    "outcome": "Outcome",
    "score": "Score",
    "label": "Outcome",
    "subgroup": "Subgroup",
    "variable": "Variable",
    "level": "Level",
    "term": "Term",
    "visit": "Visit",
    "day": "Day",
    "rater": "Rater",
    "n": "n",
    "n_pairs": "n pairs",
    "n_subjects": "n patients",
    "responders": "Responders, No.",
    "threshold": "Threshold",
    "estimate": "Estimate",
    "mean_diff": "Mean change",
    "mean": "Mean",
    "icc": "ICC",
    "kappa": "κ",
    "p": "P",
    "p_value": "P",
    "p_interaction": "P for interaction",
    "p_adj": "Adjusted P",
    "percent": "%",
    "method": "Method",
    "model": "Model",
    "group": "Subgroup",
    "p_used": "P",
    "median_day": "Median day",
    "n_observed": "n observed",
    "n_responders": "Responders, No.",
    "proportion": "Proportion",
    "raters": "Raters",
    "description": "Statistic",
    "n_targets": "n rated",
}
ESTIMATE_COLUMNS = (
    "estimate",
    "mean_diff",
    "mean",
    "icc",
    "kappa",
    "difference",
    "bias",
    "proportion",
)
HIDDEN = {"study", "pre_visit", "post_visit", "note", "test_used", "wilcoxon_method"}


def tidy_table(
    frame: pd.DataFrame,
    title: str,
    *,
    footnotes: tuple[str, ...] = (),
    synthetic: bool = False,
    digits: int = 2,
    conf_level: float = 0.95,
    style: JournalStyle = AMA,
) -> Table:
    """A generic publication table from a tidy results frame.

    P columns (``p``, ``p_value``, ``p_*``) as P values; counts as integers; an
    estimate column followed by ``ci_low``/``ci_high`` (or ``<name>_ci_low``/
    ``<name>_ci_high``) as "estimate (low to high)", headed with the intervals' level
    ``conf_level`` (the plan's, at which the analysis computed them); other numbers at
    ``digits``.
    """
    out = {}
    used = set()
    no_interval: list[tuple[int, int]] = []
    for column in frame.columns:
        if (
            column in used
            or column in HIDDEN
            or column.endswith(("_ci_low", "_ci_high"))
            or column in ("ci_low", "ci_high")
        ):
            continue
        values = frame[column]
        heading = HEADINGS.get(column, column.replace("_", " ").capitalize())
        if column == "p" or column.startswith("p_"):
            out[heading] = [style.p(v) for v in values]
        elif column in ESTIMATE_COLUMNS or f"{column}_ci_low" in frame:
            low, high = (
                (f"{column}_ci_low", f"{column}_ci_high")
                if f"{column}_ci_low" in frame
                else ("ci_low", "ci_high")
            )
            if low in frame and high in frame and low not in used:
                # A statistic whose analysis computes no interval (weighted kappa) is shown
                # alone, its cell marked with the footnote that says so: "CI not estimable"
                # would claim it was tried.
                cells = []
                for row, (v, lo, hi) in enumerate(zip(values, frame[low], frame[high])):
                    if not is_missing(v) and is_missing(lo) and is_missing(hi):
                        cells.append(style.number(v, digits))
                        no_interval.append((row, len(out)))
                    else:
                        cells.append(style.estimate_ci(v, lo, hi, digits))
                out[f"{heading} ({style.ci_label(conf_level)})"] = cells
                used |= {low, high}
            else:
                out[heading] = [style.number(v, digits) for v in values]
        elif pd.api.types.is_numeric_dtype(values) and (
            pd.api.types.is_integer_dtype(values)
            or column.startswith("n_")
            or column in ("n", "responders")
        ):
            out[heading] = [style.missing if is_missing(v) else str(int(v)) for v in values]
        elif pd.api.types.is_float_dtype(values):
            out[heading] = [style.number(v, digits) for v in values]
        else:
            out[heading] = ["" if is_missing(v) else str(v) for v in values]
    notes = list(footnotes)
    marks = []
    if no_interval:
        marks = [(row, column, len(notes)) for row, column in no_interval]
        notes.append("Estimate without an interval: no CI is computed for this statistic.")
    notes += [SYNTHETIC_NOTE] if synthetic else []
    return Table(title, pd.DataFrame(out), tuple(notes), marks=tuple(marks))


def flow_counts(
    source_files: pd.DataFrame, pairing_summary: pd.DataFrame, outcomes: pd.DataFrame
) -> pd.DataFrame:
    """Patient flow per outcome (STROBE 13a), tidy and unrounded.

    Returns
    -------
    DataFrame
        One row per outcome: ``outcome``, ``score``, ``label``; ``records`` (rows
        read from the subjects file), ``excluded`` (rows quarantined),
        ``included`` (accepted patients); ``with_pre``, ``with_post`` (patients with
        a pre / post value for the outcome); ``analysed`` (both: paired);
        ``not_analysed`` (included - analysed); then one column per reason of
        :data:`pipeline.statistics.flow.NOT_ANALYSED` (named as the reason): the included
        patients not analysed for it, which sum to ``not_analysed``.
    """
    from pipeline.statistics.flow import NOT_ANALYSED

    subjects = source_files.iloc[0]
    merged = pairing_summary.merge(
        outcomes[["outcome", "score", "label"]], on=["outcome", "score"], how="left"
    )
    return pd.DataFrame(
        {
            "outcome": merged["outcome"],
            "score": merged["score"],
            "label": merged["label"],
            "records": int(subjects["rows_read"]),
            "excluded": int(subjects["rows_quarantined"]),
            "included": merged["subjects"].astype(int),
            "with_pre": merged["with_pre"].astype(int),
            "with_post": merged["with_post"].astype(int),
            "analysed": merged["paired"].astype(int),
            "not_analysed": (merged["subjects"] - merged["paired"]).astype(int),
            **{r.name: merged[r.name].astype(int) for r in NOT_ANALYSED},
        }
    )


def flow_table(
    flow: pd.DataFrame,
    *,
    pre_label: str,
    post_label: str,
    subjects_file: str,
    exclusions: pd.DataFrame | None = None,
    synthetic: bool = False,
    style: JournalStyle = AMA,
) -> Table:
    """eTable: patient flow and missing outcome data (STROBE 13a and 14b): per outcome the
    patients analysed, and those not analysed under each reason that occurs (one column each,
    explained in a footnote). ``exclusions``
    (:func:`pipeline.statistics.flow.ingest_exclusions`), when given, puts the reasons for the
    records excluded at ingest in the first footnote."""
    from pipeline.statistics.flow import not_analysed

    digits = style.percent_digits(int(flow["included"].iloc[0]))
    reasons = not_analysed(flow)
    body = pd.DataFrame(
        {
            "Outcome": flow["label"],
            f"Analysed, {style.count_percent_label}": [
                style.count_percent(a, n, digits)
                for a, n in zip(flow["analysed"], flow["included"])
            ],
            **{f"{r.label}, {style.count_label}": flow[r.name].astype(str) for r in reasons},
        }
    )
    first = flow.iloc[0]
    why = "quarantined with a reason"
    if exclusions is not None and first["excluded"]:
        why = "; ".join(
            f"{r.label.lower()}, {r.records}"
            for r in exclusions.itertuples(index=False)
            if r.records
        )
    analysed = f"Analysed, {style.count_percent_label}"
    footnotes = _Footnotes()
    # Each note on the heading it explains: the patients counted on the Analysed column, whose
    # percentages are of them, and each reason on its own column.
    footnotes.add(
        f"{first['records']} patient record(s) in {subjects_file}; {first['excluded']} "
        f"excluded at ingest ({why}); {first['included']} included.",
        (None, analysed),
    )
    footnotes.add(
        f"Before: {pre_label}; after: {post_label}. A patient is analysed for an outcome "
        "when both values exist (complete-case analysis). An outcome is assessed at a visit "
        "where any of its items was recorded. A patient not analysed is counted once, under the "
        "first reason that applies in the order of the columns: the analysed and the reasons "
        "add up to the included patients.",
        (None, analysed),
    )
    footnotes.add("Percentages are of the included patients.", (None, analysed))
    for r in reasons:
        footnotes.add(f"{r.label}: {r.note}.", (None, f"{r.label}, {style.count_label}"))
    if synthetic:
        footnotes.add(SYNTHETIC_NOTE)
    return Table(
        "eTable. Patient flow and missing outcome data",
        body,
        tuple(footnotes.texts),
        marks=footnotes.marks(body),
    )


def missing_table(
    tidy_table_1: pd.DataFrame,
    n_subjects: int,
    *,
    synthetic: bool = False,
    style: JournalStyle = AMA,
) -> Table:
    """eTable: missing baseline data per characteristic (STROBE 14b)."""
    overall = tidy_table_1[tidy_table_1["group"] == OVERALL].drop_duplicates("variable")
    digits = style.percent_digits(n_subjects)
    body = pd.DataFrame(
        {
            "Characteristic": [label.split(",")[0] for label in overall["label"]],
            f"Recorded, {style.count_label}": overall["n"].astype(int).astype(str).tolist(),
            f"Missing, {style.count_percent_label}": [
                style.count_percent(int(m), n_subjects, digits) for m in overall["missing"]
            ],
        }
    )
    footnotes = _Footnotes()
    missing = f"Missing, {style.count_percent_label}"
    footnotes.add(f"Of {n_subjects} included patients.", (None, missing))
    if synthetic:
        footnotes.add(SYNTHETIC_NOTE)
    return Table(
        "eTable. Missing baseline data",
        body,
        tuple(footnotes.texts),
        marks=footnotes.marks(body),
    )


# --------------------------------------------------------------------------- item-level eTables

RAW_VALUE = "Raw value"
#: The tidy result the item eTables are built from (``<study>.item_changes``).
ITEM_CHANGES = "item_changes"


def item_tables(
    item_changes: pd.DataFrame,
    instruments: dict,
    outcomes: pd.DataFrame,
    *,
    conf_level: float,
    synthetic: bool = False,
    style: JournalStyle = AMA,
) -> list[tuple[str, Table]]:
    """eTables of item-level change, one per instrument and rater, as (file stem, Table).

    ``item_changes`` is the tidy result of :func:`pipeline.statistics.items.item_changes`;
    ``instruments`` maps each instrument's name to its
    :class:`~pipeline.instruments.model.Instrument` (labels, item scores); ``outcomes`` the
    planned outcomes (:func:`pipeline.pairing.outcomes_frame`) naming the outcome whose pairs the
    items share. A raw value that an item score transforms is indented under that score's row.
    The columns are Table 2's (mean ± SD before and after, the change its test estimates with
    its CI, P, adjusted P), so a Word page holds them without breaking a word; medians and
    quartiles stay in the tidy table.
    """
    out = []
    if item_changes is None or item_changes.empty:
        return out
    labels = dict(zip(zip(outcomes["outcome"], outcomes["score"]), outcomes["label"]))
    for (name, rater), rows in item_changes.groupby(["instrument", "rater"], sort=False):
        rows = rows.sort_values("position", kind="stable").reset_index(drop=True)
        # Table 2's change: the estimate of each item's test, with its CI.
        instrument = instruments[name]
        n_pairs = rows["n_pairs"].astype(int)
        paired = (n_pairs > 0).tolist()
        change, change_notes, no_ci = change_columns(rows, conf_level, style, paired)

        def cells(values, absent: str = style.no_value, paired=paired) -> list[str]:
            return [value if has else absent for value, has in zip(values, paired)]

        raw = (rows["value"] == "raw").tolist()
        # A scale every item shares (SAQ's "1 = seldom or not at all ... 5 = all the time") is
        # said once, in a footnote, rather than on every row.
        shown = rows["label"].tolist()
        scales = {label.partition(" (")[2] for label in shown}
        shared = len(shown) > 1 and len(scales) == 1 and next(iter(scales)).endswith(")")
        if shared:
            shown = [label.partition(" (")[0] for label in shown]
        # A raw value sits under its item's score row: "Raw value" says what it is, and a
        # footnote gives its scale (the tidy table keeps the whole label).
        body = pd.DataFrame(
            {
                "Item": [RAW_VALUE if r else label for r, label in zip(raw, shown)],
                "n pairs": n_pairs.astype(str).tolist(),
                f"Before, {style.mean_sd_label}": cells(
                    [style.mean_sd(m, sd) for m, sd in zip(rows["pre_mean"], rows["pre_sd"])]
                ),
                f"After, {style.mean_sd_label}": cells(
                    [style.mean_sd(m, sd) for m, sd in zip(rows["post_mean"], rows["post_sd"])]
                ),
                **{heading: cells(values, NOT_ESTIMABLE) for heading, values in change.items()},
                "P": cells([style.p(p) for p in rows["p_used"]]),
                "Adjusted P": cells([style.p(p) for p in rows["p_adj"]]),
            }
        )
        # One count for every item is said once, in a footnote: a column less keeps the
        # item names whole in Word, whose columns share the page equally.
        same_n = n_pairs.nunique() == 1 and n_pairs.iloc[0] > 0
        if same_n:
            body = body.drop(columns="n pairs")
        first = rows.iloc[0]
        on = labels.get((first["paired_on"], first["paired_score"]), first["paired_on"])
        with_pairs = rows[n_pairs > 0]
        footnotes = _Footnotes()
        # Each note marked on the cells it explains, as in Table 2: a note on every row on its
        # column's heading, a note on some rows on their Item cells.
        before_after = [h for h in body.columns if h.startswith(("Before, ", "After, "))]
        footnotes.add(
            f"Before: {first['pre_visit']}; after: {first['post_visit']} assessment: for each "
            f"patient the two visits of the {on} pair (Table 2). "
            + (
                f"n = {n_pairs.iloc[0]} pairs for every item. "
                if same_n
                else "n pairs: patients with the item recorded at both. "
            )
            + "Change = after - before.",
            *[(None, h) for h in [*before_after, *change]],
        )
        # What the change column(s) show, then (if any) why some cells have no CI.
        footnotes.add(change_notes[0], *[(None, h) for h in change])
        if no_ci:
            footnotes.add(change_notes[1], *no_ci)
        for note, heading in _p_notes(with_pairs, marked=True):
            footnotes.add(note, (None, heading))
        if shared:
            footnotes.add(f"Each item: {next(iter(scales))[:-1]}.", (None, "Item"))
        scored = rows[rows["value"] == "score"]
        if len(scored):
            own = [instrument.score(ITEM_SCORE_PREFIX + item) for item in scored["item"]]
            ranges = sorted({(s.minimum, s.maximum, s.higher_is_better) for s in own})
            footnotes.add(
                "Item scores: "
                + "; ".join(
                    f"{lo:g}-{hi:g}, {'higher' if better else 'lower'} is better"
                    for lo, hi, better in ranges
                )
                + ".",
                # On the heading when every item row is a score (a raw value row has its note).
                *(
                    [(None, "Item")]
                    if len(scored) + sum(raw) == len(rows)
                    else [(i, "Item") for i in scored.index]
                ),
            )
        if any(raw):
            raw_items = rows.loc[raw, "item"]
            formulas = list(
                dict.fromkeys(
                    # "100 - abs(100 - oc_rest)" written as "100 - |100 - raw|"
                    re.sub(
                        r"abs\(([^()]*)\)",
                        r"|\1|",
                        instrument.score(ITEM_SCORE_PREFIX + item).formula.replace(item, "raw"),
                    )
                    for item in raw_items
                )
            )
            scales = list(
                dict.fromkeys(
                    instrument.item(item).label.partition(" (")[2].rstrip(")") for item in raw_items
                )
            )
            recorded = f" ({'; '.join(s for s in scales if s)})" if any(scales) else ""
            footnotes.add(
                f"{RAW_VALUE} (indented): the value as recorded{recorded}, from which the item "
                f"score above it is computed as {'; '.join(formulas)}. The "
                "score folds a deviation either way into one number; the raw value keeps its "
                "direction.",
                *[(i, "Item") for i, r in enumerate(raw) if r],
            )
        for i, label, note in zip(with_pairs.index, with_pairs["label"], with_pairs["note"]):
            if not is_missing(note) and note:
                footnotes.add(f"{label}: {note}", (i, "Item"))
        unpaired = rows.loc[n_pairs == 0, "label"].tolist()
        if unpaired:
            footnotes.add(
                f"{_listed(unpaired)}: {NOT_ESTIMABLE} ({style.no_value}), no patient has the "
                "item at both visits.",
                *[(i, "Item") for i, has in enumerate(paired) if not has],
            )
        if synthetic:
            footnotes.add(SYNTHETIC_NOTE)
        who = f" ({rater})" if rater else ""
        out.append(
            (
                f"etable_items_{name}" + (f"_{rater}" if rater else ""),
                Table(
                    f"eTable. {instrument.label}{who} items before and after surgery",
                    body,
                    tuple(footnotes.texts),
                    tuple(1 if r else 0 for r in raw) if any(raw) else (),
                    marks=footnotes.marks(body),
                ),
            )
        )
    return out


# --------------------------------------------------------------------------- a study's tables

# Tidy tables of the secondary analyses that, when the warehouse has them, become Table 3
# and eTables: (warehouse table, file stem, title, columns shown in order, row filter).
# Rows are limited to each instrument's headline outcome where a table has one row per
# outcome and level, so the tables stay printable; the CSVs in tables/ hold every row.
OPTIONAL_TABLES = (
    (
        "paired_tests_subgroups",
        "table_3_subgroups",
        "Table 3. Change by subgroup (exploratory)",
        ("label", "group", "n_pairs", "mean_diff", "ci_low", "ci_high", "p_used", "p_adj"),
        "headline",
    ),
    (
        "between_groups",
        "table_3_ancova",
        "Table 3 (continued). Difference in change between subgroups, ANCOVA adjusted for the "
        "baseline value",
        ("label", "subgroup", "n", "estimate", "ci_low", "ci_high", "p", "method"),
        "ancova",
    ),
    (
        "visit_estimates",
        "etable_visit_estimates",
        "eTable. Model-estimated means per visit",
        ("label", "visit", "median_day", "n_observed", "estimate", "ci_low", "ci_high"),
        "headline",
    ),
    (
        "responders",
        "etable_responders",
        "eTable. Responders: improvement of at least the minimal important change",
        ("label", "threshold", "n_pairs", "n_responders", "proportion", "ci_low", "ci_high"),
        "",
    ),
    (
        "reliability",
        "etable_reliability",
        "eTable. Agreement between raters",
        (
            "label",
            "visit",
            "description",
            "estimate",
            "ci_low",
            "ci_high",
            "n_targets",
        ),
        "",
    ),
)
# The first two (Table 3 and its continuation) are built by table_3_subgroups and
# table_3_ancova; their entries name the warehouse tables and files.
#: The warehouse tables :func:`publication_tables` takes as ``results`` when they exist.
RESULT_TABLES = tuple(entry[0] for entry in OPTIONAL_TABLES) + (ITEM_CHANGES,)
#: The tidy results of the complications and power eTables (only when the plan declares them).
COMPLICATIONS, POWER = "complications", "power"
RESULT_TABLES += (COMPLICATIONS, POWER)
#: The tidy result of the multiple-imputation eTable (only when the plan declares it).
IMPUTATION = "imputation"
RESULT_TABLES += (IMPUTATION, BINARY_SUBGROUPS)


def _under_first_column(table: Table) -> Table:
    """``table`` with its first column's values as rows of their own, each above its rows,
    which are indented under it (the agreement eTable: each score and raters, then its visits
    and statistics), its marks moved with their cells: a row per visit and statistic no longer
    repeats the score's long label, so its rows stay one line high."""
    first = table.body.columns[0]
    rest = table.body.drop(columns=[first])
    body, indent, moved = _under_outcomes(rest, table.body[first])
    body = body.rename(columns={body.columns[0]: f"{first} and {body.columns[0].lower()}"})
    marks = tuple(
        (None if row is None else moved[row], column - 1, note)
        for row, column, note in table.marks
        if column > 0
    )
    return Table(table.title, body, table.footnotes, indent, marks=marks)


def responder_notes(frame: pd.DataFrame, *, style: JournalStyle = AMA) -> tuple[str, ...]:
    """The responder eTable's footnote naming where each threshold comes from: the published
    minimal important change with its citation, or the study spec."""
    from pipeline.pairing import SPEC_SOURCE

    if "threshold_source" not in frame or not len(frame):
        return ()
    by_source: dict[str, list[str]] = {}
    for label, threshold, source in (
        frame[["label", "threshold", "threshold_source"]].drop_duplicates().itertuples(index=False)
    ):
        by_source.setdefault(str(source or SPEC_SOURCE), []).append(f"{label}, {threshold:g}")
    parts = [
        f"{'; '.join(entries)} ("
        + ("set in the study spec" if source == SPEC_SOURCE else f"published, {source}")
        + ")"
        for source, entries in by_source.items()
    ]
    return (
        "Threshold: the minimal important change in the outcome's better direction, in its own "
        "units. " + ". ".join(parts) + ".",
    )


def _marked_on_headings(table: Table, headings: dict[int, list[str]]) -> Table:
    """``table`` with each footnote of ``headings`` (by its index) marked on those of its
    headings the table has (a built tidy table's notes, which it takes unmarked)."""
    columns = list(table.body.columns)
    marks = [(None, columns.index(h), k) for k, hs in headings.items() for h in hs if h in columns]
    return Table(
        table.title,
        table.body,
        table.footnotes,
        table.indent,
        _in_order(list(table.marks) + marks),
    )


def complications_table(
    frame: pd.DataFrame,
    study: Study,
    *,
    style: JournalStyle = AMA,
) -> Table:
    """eTable: each declared complication, No. (%) of the patients with it recorded with its
    exact CI, duration as median [IQR] and range in days, resolved and persistent, overall and
    by subgroup level (indented under the event), from
    :func:`pipeline.statistics.complications.complication_rates`."""
    level = study.analysis.conf_level
    durations = frame["n_duration"].notna().any()
    resolutions = frame["n_resolved"].notna().any()
    rows = []
    for r in frame.itertuples(index=False):
        n = int(r.n_patients)
        digits = style.percent_digits(n)
        row = {
            "Event": study.column_label(r.event)
            if r.group == "all"
            else study.group_label(r.group),
            f"Patients, {style.count_label}": str(n),
            f"With the event, {style.count_percent_label}": style.count_percent(
                r.n_events, n, digits
            ),
            f"{style.ci_label(level)}, %": style.missing
            if not n
            else f"{style.number(100 * r.ci_low, 1)}{style.ci_separator}"
            f"{style.number(100 * r.ci_high, 1)}",
        }
        if durations:
            timed = not is_missing(r.n_duration) and int(r.n_duration) > 0
            row[f"Duration, {style.median_iqr_label}, d"] = (
                style.median_iqr(r.duration_median, r.duration_q1, r.duration_q3, 0)
                if timed
                else style.no_value
            )
            row["Duration range, d"] = (
                style.value_range(r.duration_min, r.duration_max, 0) if timed else style.no_value
            )
        if resolutions:
            for heading, value in (
                (f"Resolved, {style.count_label}", r.n_resolved),
                (f"Persistent, {style.count_label}", r.n_persistent),
            ):
                row[heading] = style.no_value if is_missing(value) else str(int(value))
        rows.append(row)
    body = pd.DataFrame(rows)
    footnotes = _Footnotes()
    footnotes.add(
        "Percentages are of the patients with the event recorded (a blank is not counted as no "
        f"event); {style.ci_label(level)}: exact (Clopper-Pearson).",
        (None, f"With the event, {style.count_percent_label}"),
        (None, f"{style.ci_label(level)}, %"),
    )
    if durations:
        footnotes.add(
            "Duration in days, over the patients with the event and a duration recorded; "
            f"{style.no_value}: no duration declared or recorded.",
            (None, f"Duration, {style.median_iqr_label}, d"),
            (None, "Duration range, d"),
        )
    if resolutions:
        unknown = frame.loc[frame["group"] == "all", "n_resolution_unknown"]
        footnotes.add(
            "Resolved by the last follow-up, or persistent at it"
            + (
                "; patients whose resolution was not recorded are in neither column"
                if unknown.fillna(0).astype(int).sum()
                else ""
            )
            + ".",
            (None, f"Resolved, {style.count_label}"),
            (None, f"Persistent, {style.count_label}"),
        )
    if (frame["group"] != "all").any() or study.analysis.subgroups:
        footnotes.add(
            f"Indented: subgroup levels. A level of fewer than {study.min_cell} patients is "
            "pooled with the other small levels of its subgroup or not reported.",
            (None, "Event"),
        )
    if study.synthetic:
        footnotes.add(SYNTHETIC_NOTE)
    indent = tuple(0 if g == "all" else 1 for g in frame["group"])
    return Table(
        "eTable. Complications and adverse events",
        body,
        tuple(footnotes.texts),
        indent,
        marks=footnotes.marks(body),
    )


def _percent(share: float, style: JournalStyle) -> str:
    """A share as a whole percentage; ``>99`` and ``<1`` rather than a rounded 100 or 0,
    which a power never reaches."""
    if is_missing(share):
        return style.missing
    if share >= 0.995:
        return ">99"
    return "<1" if share < 0.005 else style.number(100 * share, 0)


def power_table(frame: pd.DataFrame, study: Study, *, style: JournalStyle = AMA) -> Table:
    """eTable: pairs a future study needs for 80% and 90% power with the paired t test, from
    the observed and the target effect, and the effect this study's pairs detect, from
    :func:`pipeline.statistics.power.paired_power`."""
    from pipeline.pairing import outcomes_frame

    planned, alpha = outcomes_frame(study), study.analysis.alpha
    labels = dict(zip(zip(planned["outcome"], planned["score"]), planned["label"]))

    def count(value) -> str:
        return style.missing if is_missing(value) else str(int(value))

    body = pd.DataFrame(
        {
            "Outcome": [labels.get((o, s), o) for o, s in zip(frame["outcome"], frame["score"])],
            "Effect": ["Observed" if b == "observed" else "Target" for b in frame["basis"]],
            "dz": [style.number(v, 2) for v in frame["dz"]],
            "n pairs": [str(int(n)) for n in frame["n_pairs"]],
            "Power now, %": [_percent(v, style) for v in frame["power_now"]],
            "Pairs for 80% power": [count(v) for v in frame["pairs_80_needed"]],
            "Pairs for 90% power": [count(v) for v in frame["pairs_90_needed"]],
            "Detectable dz, 80% power": [style.number(v, 2) for v in frame["detectable_dz_80"]],
        }
    )
    targets = (frame["basis"] == "target").any()
    footnotes = _Footnotes()
    footnotes.add(
        "dz: the standardised mean change, mean change / SD of the changes ("
        + (
            "observed: this study's; target: the effect the study spec names for a future study"
            if targets
            else "this study's"
        )
        + f"). Two-sided paired t test at α = {alpha:g}; pairs rounded up to whole patients "
        "with both values (add the expected loss to follow-up).",
        (None, "dz"),
        (None, "Pairs for 80% power"),
        (None, "Pairs for 90% power"),
    )
    footnotes.add(
        "Power now: of this study's pairs to detect the effect. Detectable dz: the smallest "
        "effect this study's pairs detect with 80% power.",
        (None, "Power now, %"),
        (None, "Detectable dz, 80% power"),
    )
    # A row's own note on its Outcome cell.
    for note in [n for n in dict.fromkeys(frame["note"]) if n]:
        footnotes.add(note, *[(i, "Outcome") for i, n in enumerate(frame["note"]) if n == note])
    if study.synthetic:
        footnotes.add(SYNTHETIC_NOTE)
    return Table(
        "eTable. Power and sample size for a future study",
        body,
        tuple(footnotes.texts),
        marks=footnotes.marks(body),
    )


def imputation_table(frame: pd.DataFrame, study: Study, *, style: JournalStyle = AMA) -> Table:
    """eTable: the imputed outcome's mean change from the complete pairs and after multiple
    imputation, side by side, from
    :func:`pipeline.statistics.imputation.imputation_analysis`."""
    from pipeline.pairing import outcomes_frame

    plan, conf_level = study.analysis.imputation, study.analysis.conf_level
    planned = outcomes_frame(study)
    labels = dict(zip(zip(planned["outcome"], planned["score"]), planned["label"]))
    first = frame.iloc[0]
    label = labels.get((first["outcome"], first["score"]), first["outcome"])
    change = f"Mean change ({style.ci_label(conf_level)})"
    names = {"complete case": "Complete pairs (paired t)"}
    names["multiple imputation"] = f"Multiple imputation (m = {plan.m})"
    body = pd.DataFrame(
        {
            "Analysis": [names.get(a, a) for a in frame["analysis"]],
            "Patients analysed / with a value": [
                f"{int(a)} / {int(n)}" for a, n in zip(frame["n_analysed"], frame["n_with_data"])
            ],
            "Values imputed": [
                str(int(pre) + int(post))
                for pre, post in zip(frame["n_imputed_pre"], frame["n_imputed_post"])
            ],
            change: [
                style.estimate_ci(v, lo, hi, 2)
                for v, lo, hi in zip(frame["estimate"], frame["ci_low"], frame["ci_high"])
            ],
            "df": [
                str(int(v)) if not is_missing(v) and float(v).is_integer() else style.number(v, 1)
                for v in frame["df"]
            ],
            "P value": [style.p(v) for v in frame["p"]],
            "FMI": [style.number(v, 2) for v in frame["fmi"]],
        }
    )
    imputed = frame[frame["analysis"] == "multiple imputation"]
    pre = int(imputed["n_imputed_pre"].iloc[0]) if len(imputed) else 0
    post = int(imputed["n_imputed_post"].iloc[0]) if len(imputed) else 0
    predictors = [in_sentence(study.column_label(c)) for c in plan.predictors]
    footnotes = _Footnotes()
    missing = [f"{k} {when} surgery" for k, when in ((pre, "before"), (post, "after")) if k]
    footnotes.add(
        "Patients with a value before or after surgery; the missing values ("
        + (_joined(missing) if missing else "none")
        + f") were imputed {plan.m} times by chained equations (linear models with predictive "
        f"mean matching, {plan.donors} donors, {plan.iterations} iterations, seed {plan.seed}) "
        "from "
        + _joined(["the other visit's value", *predictors])
        + ", assuming they are missing at random given these.",
        (None, "Values imputed"),
    )
    footnotes.add(
        "Estimates pooled by Rubin's rules; df by Barnard and Rubin (1999) for multiple "
        "imputation, n - 1 for the complete pairs. FMI: fraction of missing information.",
        (None, "df"),
        (None, "FMI"),
    )
    for note in [n for n in dict.fromkeys(frame["note"]) if isinstance(n, str) and n]:
        footnotes.add(note, *[(i, "Analysis") for i, n in enumerate(frame["note"]) if n == note])
    if study.synthetic:
        footnotes.add(SYNTHETIC_NOTE)
    return Table(
        f"eTable. {label}: mean change with missing values imputed (sensitivity analysis)",
        body,
        tuple(footnotes.texts),
        marks=footnotes.marks(body),
    )


def _joined(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


#: The visit-means eTable's footnote on a last follow-up visit, after its label.
LAST_FOLLOW_UP_NOTE = (
    "the visit recorded as a patient's last follow-up, at a day that differs from patient to "
    "patient (its median is shown) rather than at a fixed time after surgery. The model "
    "estimates its mean as it does every visit's; it is listed after the scheduled visits "
    "whatever its median day."
)


def visit_estimate_rows(study: Study, frame: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The rows of the visit-means eTable and its footnotes.

    ``frame``: :func:`pipeline.statistics.longitudinal.visit_means` rows, each outcome's visits
    by median day. A last follow-up visit (:func:`pipeline.spec.study.is_last_follow_up`) is
    moved after its outcome's scheduled visits, since its median day (between the scheduled
    visits' in the demo) is no time after surgery; the other rows keep their order, and a
    footnote, under the visit's label (``study.visit_label``), says what that visit is when the
    table has one.
    """
    if "visit" not in frame or not len(frame):
        return frame, ()
    last = frame["visit"].map(is_last_follow_up).to_numpy(bool)
    outcome = pd.factorize(
        frame["outcome"].astype(str) + "\x00" + frame["score"].astype(str)
        if {"outcome", "score"} <= set(frame.columns)
        else pd.Series("", index=frame.index)
    )[0]
    order = sorted(range(len(frame)), key=lambda i: (outcome[i], bool(last[i]), i))
    notes = tuple(dict.fromkeys(visit_notes(study, frame.loc[last, "visit"]).values()))
    return frame.iloc[order].reset_index(drop=True), notes


def visit_notes(study: Study, visits) -> dict[str, str]:
    """The footnote of each visit code of ``visits`` that needs one (a last follow-up visit),
    by code: ``<visit label>: ...``. Visits that share a label share the note."""
    return {
        v: f"{study.visit_label(v)}: {LAST_FOLLOW_UP_NOTE}"
        for v in dict.fromkeys(visits)
        if isinstance(v, str) and is_last_follow_up(v)
    }


def visit_marks(table: Table, notes: dict[str, str], visits) -> Table:
    """The visit-means eTable with each visit's footnote (``notes``, :func:`visit_notes`, by
    visit code) marked on the Visit cells of that visit's rows; ``visits`` the code of each row
    of the table, in order. Matched by code, not by the label a cell shows: a label may begin
    another ("Visit 1", "Visit 10") or hold ": ", and two codes may share a label."""
    if "Visit" not in table.body:
        return table
    column = list(table.body.columns).index("Visit")
    marks = tuple(
        (i, column, table.footnotes.index(notes[v])) for i, v in enumerate(visits) if v in notes
    )
    return Table(table.title, table.body, table.footnotes, table.indent, table.marks + marks)


# --------------------------------------------------------------------------- predictors of outcome

#: The tidy tables of the predictors of outcome (:func:`pipeline.steps.predictor_models`).
REGRESSION, REGRESSION_MODELS = "regression", "regression_models"
RESULT_TABLES += (REGRESSION, REGRESSION_MODELS)
RESULT_TABLES += (ANCOVA_COEFFICIENTS, ANCOVA_MODELS)
#: Decimals of a regression coefficient or odds ratio (per unit of a predictor: an effect per
#: year of age is a hundredth of a grade).
REGRESSION_DIGITS = 2
#: How each response is named in a table's title and footnotes (``{}``: the outcome's label).
RESPONSE_WORDS = {
    "change": "change in {}",
    "post": "the after value of {}, adjusted for the before value",
    "responder": "response in {}",
}


def regression_stem(outcome: str, score: str, response: str) -> str:
    """The file stem of one outcome's regression table: ``etable_predictors_<outcome>_<score>``,
    ``_responders`` for the logistic model."""
    return f"etable_predictors_{outcome}_{score}" + (
        "_responders" if response == "responder" else ""
    )


def regression_table(
    coefficients: pd.DataFrame,
    models: pd.DataFrame,
    study: Study,
    *,
    outcome_label: str,
    higher_is_better: bool,
    synthetic: bool = False,
    style: JournalStyle = AMA,
) -> Table:
    """One outcome's regression on the plan's predictors, laid out as gtsummary's
    ``tbl_regression`` (``tbl_merge`` with ``tbl_uvregression`` when univariable models were
    fitted): a row per predictor, a categorical predictor's levels indented under it with its
    reference level written "Reference"; the coefficient (linear) or odds ratio (logistic) with
    its CI, and P, from the multivariable model and, beside it, each predictor's own model.

    ``coefficients`` and ``models`` are the rows of one outcome, score and response of
    ``<study>.regression`` and ``<study>.regression_models``
    (:func:`pipeline.steps.predictor_models`); every name is shown by its label
    (:meth:`Study.column_label`, :meth:`Study.level_label`). The footnotes give the model in
    words, the patients used and left out, R² (linear) or the AUC (logistic) and the threshold
    of a response with its source.
    """
    from pipeline.render.labels import in_sentence, listed
    from pipeline.statistics.small_cells import pooled_label

    multi = models[models["model"] == "multivariable"].iloc[0]
    logistic = multi["family"] == "logistic"
    response = str(multi["response"])
    conf_level = float(multi["conf_level"])
    ci = style.ci_label(conf_level)
    what = "OR" if logistic else "β"
    univariable = bool((models["model"] == "univariable").any())
    fits = ["univariable", "multivariable"] if univariable else ["multivariable"]
    heading = {
        fit: (
            (f"{fit.capitalize()} {what} ({ci})", f"{fit.capitalize()} P")
            if univariable
            else (f"{what} ({ci})", "P")
        )
        for fit in fits
    }
    predictors = list(
        dict.fromkeys(coefficients.loc[coefficients["role"] == "predictor", "predictor"])
    )
    adjusted = coefficients[coefficients["role"] == "adjustment"]

    def label(column: str) -> str:
        return study.column_label_with_unit(column)

    def level_label(column: str, level: str) -> str:
        if level == pooled_label(column, study.min_cell):
            return f"Other ({level.partition(': ')[2]})"
        return study.level_label(column, level)

    def cells(row) -> list[str]:
        if row is None:
            return ["", ""]
        if bool(row["is_reference"]):
            return ["Reference", ""]
        if is_missing(row["estimate"]):
            return [NOT_ESTIMABLE, ""]
        values = (row["estimate"], row["ci_low"], row["ci_high"])
        # A coefficient per unit of a long scale (per month since onset) is a few thousandths:
        # one more decimal, so that it does not read 0.00 (-0.01 to 0.00).
        digits = REGRESSION_DIGITS + int(not logistic and max(abs(float(v)) for v in values) < 0.1)
        return [style.estimate_ci(*values, digits), style.p(row["p"])]

    def found(fit: str, predictor: str, level: str):
        rows = coefficients[
            (coefficients["model"] == fit)
            & (coefficients["predictor"] == predictor)
            & (coefficients["level"].fillna("").astype(str) == level)
        ]
        return rows.iloc[0] if len(rows) else None

    body, indent = [], []
    if len(adjusted):
        row = adjusted.iloc[0]
        body.append(
            ["Before value"]
            + (["", ""] if univariable else [])
            + cells(found("multivariable", row["predictor"], ""))
        )
        indent.append(0)
    for predictor in predictors:
        rows = coefficients[
            (coefficients["predictor"] == predictor) & (coefficients["model"] == "multivariable")
        ]
        levels = [str(v) for v in rows["level"].fillna("") if str(v)]
        if not levels:
            body.append(
                [label(predictor)] + sum((cells(found(f, predictor, "")) for f in fits), [])
            )
            indent.append(0)
            continue
        body.append([label(predictor)] + ["", ""] * len(fits))
        indent.append(0)
        for level in levels:
            body.append(
                [level_label(predictor, level)]
                + sum((cells(found(f, predictor, level)) for f in fits), [])
            )
            indent.append(1)
    columns = ["Characteristic"] + [h for fit in fits for h in heading[fit]]
    frame = pd.DataFrame(body, columns=columns)

    words = [in_sentence(study.column_label(p)) for p in predictors]
    explained = RESPONSE_WORDS[response].format(outcome_label)
    n, dropped = int(multi["n"]), int(multi["n_dropped"])
    small = min(int(multi.get("n_small_levels", 0) or 0), dropped)
    reasons = [
        f"{count} for a missing characteristic"
        if i == 0
        else f"{count} in a level of fewer than {study.min_cell} patients"
        for i, count in enumerate((dropped - small, small))
        if count
    ]
    left_out = (
        f"; {dropped} patient{'s' if dropped != 1 else ''} with pairs left out: {listed(reasons)}"
        if dropped
        else ""
    )
    footnotes = []
    # Where each note is marked: the model's estimates and P on their headings, the words a
    # note explains on the cells that read them.
    estimates = [(None, heading[fit][0]) for fit in fits]
    tests = [(None, heading[fit][1]) for fit in fits]
    marked_on = [estimates, estimates + tests]
    if logistic:
        threshold = float(multi["threshold"])
        source = str(multi.get("threshold_source", "") or "")
        direction = "higher" if higher_is_better else "lower"
        cited = "" if source in ("", "analysis.responders") else f" (published: {source})"
        events = int(multi["n_events"])
        footnotes.append(
            f"OR = odds ratio of response, per unit of a characteristic or for a level against "
            f"the reference level. Response: an improvement in {outcome_label} of at least "
            f"{threshold:g}{cited}, {direction} values being better. Logistic regression of "
            f"response on {listed(words)} (n = {n}, {events} responders{left_out}); "
            f"AUC (C statistic) = {style.number(multi['auc'], 2)}."
        )
        footnotes.append(f"Wald {ci} (R confint.default) and Wald z test P for each odds ratio.")
    else:
        on = listed(words)
        if response == "post":
            on = "the before value and " + on
        better, sign = ("higher", "positive") if higher_is_better else ("lower", "negative")
        footnotes.append(
            f"β = difference in {explained}, per unit of a characteristic or for a level against "
            "the reference level"
            + (" (change = after minus before)" if response == "change" else "")
            + f"; {better} values are better, so a {sign} β goes with a better result. "
            f"Linear regression of {explained} on {on} (n = {n}{left_out}); "
            f"R² = {style.number(multi['r_squared'], 2)}, adjusted R² = "
            f"{style.number(multi['adj_r_squared'], 2)}."
        )
        footnotes.append(f"t-based {ci} and t test P for each coefficient.")
    if univariable:
        uni = models[models["model"] == "univariable"]
        low, high = int(uni["n"].min()), int(uni["n"].max())
        patients = f"{low}" if low == high else f"{low} to {high}"
        footnotes.append(
            "Univariable: each characteristic alone"
            + (", with the before value" if response == "post" else "")
            + f" ({patients} patients); multivariable: all together."
        )
        marked_on.append(estimates)
    footnotes.append(
        "Reference: the level each other level is compared with (the characteristic's first "
        "declared level unless the study plan names another)."
    )
    marked_on.append(_cells_reading(frame, "Reference") or [(None, "Characteristic")])
    not_estimable = _cells_reading(frame.iloc[:, 1:], NOT_ESTIMABLE)
    if not_estimable:
        footnotes.append(
            f"{NOT_ESTIMABLE.capitalize()}: every patient at the level had the same response "
            "(separation), or the model could not be fitted, so there is no finite estimate."
        )
        marked_on.append(not_estimable)
    for model, note in zip(models["model"], models["note"].fillna("")):
        if note and not str(note).startswith("separation"):
            text = str(note)
            for column in sorted(predictors, key=len, reverse=True):
                text = text.replace(column, in_sentence(study.column_label(column)))
            footnotes.append(f"Model not estimated: {text}.")
            # On the estimates of the model it is about (both when the model is not named).
            marked_on.append([(None, heading[model][0])] if model in heading else estimates)
            break
    marks = [
        (row, list(frame.columns).index(h), k)
        for k, cells in enumerate(marked_on)
        for row, h in cells
    ]
    if synthetic:
        footnotes.append(SYNTHETIC_NOTE)
    title = f"eTable. Predictors of {explained}: " + (
        "logistic regression" if logistic else "linear regression"
    )
    return Table(title, frame, tuple(footnotes), tuple(indent), _in_order(marks))


def regression_tables(
    study: Study,
    results: dict[str, pd.DataFrame],
    planned: pd.DataFrame,
    *,
    style: JournalStyle = AMA,
) -> list[tuple[str, Table]]:
    """Every regression table of the study (:func:`regression_table`), as (file stem, Table):
    per modelled outcome and score, the linear model, then the logistic model of responders.
    None when the warehouse has no regression results (a plan without predictors)."""
    coefficients, models = results.get(REGRESSION), results.get(REGRESSION_MODELS)
    if coefficients is None or models is None or models.empty:
        return []
    labels = planned.set_index(["outcome", "score"])
    out = []
    keys = models[["outcome", "score", "response"]].drop_duplicates()
    for outcome, score, response in keys.itertuples(index=False):

        def of(frame):
            return frame[
                (frame["outcome"] == outcome)
                & (frame["score"] == score)
                & (frame["response"] == response)
            ]

        planned_row = labels.loc[(outcome, score)]
        table = regression_table(
            of(coefficients),
            of(models),
            study,
            outcome_label=str(planned_row["label"]),
            higher_is_better=bool(planned_row["higher_is_better"]),
            synthetic=study.synthetic,
            style=style,
        )
        out.append((regression_stem(outcome, score, response), table))
    return out


# --------------------------------------------------------------------------- time to event

#: The time-to-event analyses' tidy tables (:func:`pipeline.steps.time_to_event`), in
#: ``results`` when the plan declares one.
TIME_TO_EVENT_RESULTS = ("time_to_event", "time_to_event_at", "log_rank")
RESULT_TABLES += TIME_TO_EVENT_RESULTS
#: A median or confidence limit the curve does not reach (fewer than half had the event).
NOT_REACHED = "NR"


def time_to_event_columns(study: Study) -> list[str]:
    """The subjects columns the time-to-event analyses read as events, event days and censoring
    days."""
    return [c for t in study.analysis.time_to_event for c in (t.event, t.day, t.censor_day) if c]


def p_equals(p: float, style: JournalStyle = AMA) -> str:
    """A P value as a sentence or a figure writes it after "P": ``= .06``, ``< .001``."""
    text = style.p(p)
    return f"{text[0]} {text[1:]}" if text[0] in "<>" else f"= {text}"


def time_to_event_level(study: Study, plan, group: str) -> str:
    """A group of a time-to-event analysis as a reader sees it: "All patients", a level of its
    ``by`` column by its label, or the pooled small levels."""
    from pipeline.statistics.small_cells import pooled_label

    if group == "all":
        return "All patients"
    if group == pooled_label(plan.by, study.min_cell):
        return f"Other ({group.partition(': ')[2]})"
    return study.level_label(plan.by, group)


def _day_heading(day: float) -> str:
    """A day after surgery as a heading: whole years as "1 y", other days as "day 180"."""
    return f"{day / 365:g} y" if day % 365 == 0 else f"day {day:g}"


def time_to_event_tables(
    study: Study, results: dict[str, pd.DataFrame], style: JournalStyle = AMA
) -> list[tuple[str, Table]]:
    """An eTable per time-to-event analysis of the plan, as (file stem, Table): per group
    (all patients, then each level of its ``by`` column) events/n, the median time to the event
    in months with its CI, the event-free percentage with its CI at each planned day, and the
    log-rank P on the ``by`` column's row. None when the results are absent."""
    summary = results.get("time_to_event")
    if summary is None or summary.empty:
        return []
    at = results.get("time_to_event_at", pd.DataFrame(columns=["analysis"]))
    tested = results.get("log_rank", pd.DataFrame(columns=["analysis"]))
    conf_level = study.analysis.conf_level
    ci = style.ci_label(conf_level)
    out = []
    for plan in study.analysis.time_to_event:
        rows = summary[summary["analysis"] == plan.name].reset_index(drop=True)
        if rows.empty:
            continue
        event = in_sentence(study.column_label(plan.event))

        def months(value) -> str:
            return NOT_REACHED if is_missing(value) else style.number(value / DAYS_PER_MONTH, 1)

        def percent(value) -> str:
            return style.missing if is_missing(value) else style.number(100 * value, 1)

        body: dict[str, list[str]] = {"Patients": [], "Events/No.": []}
        body[f"Median ({ci}), mo"] = []
        days = list(plan.times)
        for day in days:
            body[f"Free of {event} at {_day_heading(day)}, % ({ci})"] = []
        if plan.by:
            body["Log-rank P"] = []
        indent = []

        def add(cells: list[str], level: int) -> None:
            for heading, cell in zip(body, cells):
                body[heading].append(cell)
            indent.append(level)

        test = tested[tested["analysis"] == plan.name] if len(tested) else tested
        unfollowed: list[tuple[int, str]] = []  # (row, heading start) of estimates not made
        by_row = None  # the by column's row, which carries the log-rank P
        for r in rows.itertuples():
            if r.group != "all" and r.Index == 1:
                # The by column's row, its levels under it, the log-rank P comparing them.
                p = test["p"].iloc[0] if len(test) else float("nan")
                by_row = len(indent)
                add([study.column_label(plan.by)] + [""] * (len(body) - 2) + [style.p(p)], 0)
            cells = [
                time_to_event_level(study, plan, r.group),
                f"{int(r.events)}/{int(r.n)}",
                f"{months(r.median)} ({months(r.median_lower)}{style.ci_separator}"
                f"{months(r.median_upper)})",
            ]
            for day in days:
                a = at[
                    (at["analysis"] == plan.name) & (at["group"] == r.group) & (at["day"] == day)
                ]
                if a.empty or is_missing(a["survival"].iloc[0]):
                    # Every patient of the group censored or with the event before that day:
                    # Kaplan-Meier gives no estimate there (R: summary(fit, times) has no row).
                    unfollowed.append((len(indent), f"Free of {event} at {_day_heading(day)}"))
                    cells.append(NOT_ESTIMABLE)
                else:
                    a = a.iloc[0]
                    cells.append(
                        f"{percent(a['survival'])} ({percent(a['lower'])}{style.ci_separator}"
                        f"{percent(a['upper'])})"
                    )
            add([*cells, ""] if plan.by else cells, 0 if r.group == "all" else 1)
        censoring = (
            f"at the day in {in_sentence(study.column_label(plan.censor_day))}"
            if plan.censor_day
            else "at their last visit (last follow-up)"
        )
        table = pd.DataFrame(body)
        median = f"Median ({ci}), mo"
        footnotes = _Footnotes()
        footnotes.add(
            f"Kaplan-Meier estimates with {ci}s from the log-transformed survival (Greenwood "
            f"variance); patients without {event} are censored {censoring}.",
            *[(None, h) for h in body if h == median or h.startswith("Free of ")],
        )
        # NR on the cells that read it; none reaching it, on the column it would be in.
        reached = [
            (i, h)
            for h in body
            for i, cell in enumerate(body[h])
            if NOT_REACHED in cell.replace("(", " ").replace(")", " ").split()
        ]
        footnotes.add(
            f"{NOT_REACHED}, not reached: fewer than half of the patients had {event} (for a "
            "limit: the confidence curve does not fall to 50%).",
            *(reached or [(None, median)]),
        )
        if unfollowed:
            footnotes.add(
                "Not estimable: no patient of the group was followed up to that day.",
                *[(i, next(h for h in body if h.startswith(start))) for i, start in unfollowed],
            )
        if plan.by:
            note = str(test["note"].iloc[0]) if len(test) and "note" in test else ""
            if note and note != "nan":
                # On the missing P of the by column's row; without levels, on the heading.
                footnotes.add(f"{style.missing}: no log-rank test, {note}.", (by_row, "Log-rank P"))
            grouped = int(rows.loc[rows["group"] != "all", "n"].sum())
            outside = int(rows.loc[rows["group"] == "all", "n"].iloc[0]) - grouped
            if outside:
                footnotes.add(
                    f"{outside} patient{'s' if outside != 1 else ''} without a value of "
                    f"{in_sentence(study.column_label(plan.by))} or in its levels of fewer than "
                    f"{study.min_cell} patients {'are' if outside != 1 else 'is'} counted in All "
                    "patients only.",
                    (0, "Patients"),
                )
        left_out = int(rows["left_out"].iloc[0]) if "left_out" in rows else 0
        if left_out:
            footnotes.add(
                f"{left_out} patient{'s' if left_out != 1 else ''} without a recorded event or "
                "without follow-up after surgery are not included.",
                (None, "Events/No."),
            )
        if study.synthetic:
            footnotes.add(SYNTHETIC_NOTE)
        out.append(
            (
                f"etable_time_to_{plan.name}",
                Table(
                    f"eTable. Time to {event}",
                    table,
                    tuple(footnotes.texts),
                    tuple(indent),
                    marks=footnotes.marks(table),
                ),
            )
        )
    return out


def table_1_group_label(study: Study, column: str, group: str) -> str:
    """A Table 1 column group's heading: the level's label, or the pooled small levels'."""
    from pipeline.statistics.small_cells import pooled_label

    if group == pooled_label(column, study.min_cell):
        return f"Other ({group.partition(': ')[2]})"
    return study.level_label(column, group)


def small_levels_label(min_cell: int) -> str:
    """Table 1's row for a subgroup's levels of fewer than ``min_cell`` patients, together."""
    return f"Levels of fewer than {min_cell} patients each"


def small_subgroup_levels_together(subjects: pd.DataFrame, study: Study, exclude: str = ""):
    """The subjects with the small levels of every planned categorical subgroup's column shown
    as one level (:func:`small_levels_label`), so Table 1's rows name no level of fewer than
    ``min_cell`` patients (:mod:`pipeline.statistics.small_cells`); the patients stay counted.
    Columns of 0/1 values and ``exclude`` (Table 1's column grouping) are left as they are."""
    out = subjects
    for g in study.analysis.subgroups:
        column = g.column
        if g.split or column == exclude or column not in subjects:
            continue
        values = subjects[column].astype("string").str.strip().replace("", pd.NA)
        counts = values.value_counts()
        if set(counts.index) <= {"0", "1"}:
            continue
        small = counts.index[counts < study.min_cell]
        if len(small):
            together = values.where(~values.isin(small), small_levels_label(study.min_cell))
            out = out.assign(**{column: together})
    return out


def table_1_grouping(study: Study, subjects: pd.DataFrame) -> str:
    """The Table 1 column grouping: the spec's ``[tables] table_1_by`` when the subjects have
    that column, else none (a single-arm cohort: the Overall column alone, no P values)."""
    by = study.table_1_by
    return by if by and by in subjects else ""


def _headline_results(study, table: str, frame: pd.DataFrame, planned: pd.DataFrame):
    """The rows of ``frame`` (of the results table ``table``) about each instrument and rater's
    headline outcome, its first planned one, which Table 3 shows; with the outcome's ``label``
    and every name a reader sees in the study's words (:func:`readable_results`)."""
    headline = planned.drop_duplicates(["instrument", "rater"])[["outcome", "score"]]
    labelled = frame.merge(
        planned[["outcome", "score", "label"]], on=["outcome", "score"], how="left"
    ).merge(headline, on=["outcome", "score"])
    return readable_results(study, table, with_comparison_labels(study, labelled))


def publication_tables(
    study: Study,
    *,
    paired_tests: pd.DataFrame,
    subjects: pd.DataFrame,
    visits: pd.DataFrame,
    pairing_summary: pd.DataFrame,
    subjects_file: pd.DataFrame,
    results: dict[str, pd.DataFrame],
    exclusions: pd.DataFrame | None = None,
    style: JournalStyle = AMA,
) -> list[tuple[str, Table]]:
    """Every table there are results for, as (file stem, Table), Table 2 first.

    Table 2 and Table 1 (overall, and by :func:`table_1_grouping` when there is one)
    always; the patient-flow and missing-data eTables; Table 3 and the other eTables
    only when their tidy tables (:data:`OPTIONAL_TABLES`) are in ``results``. eTables are
    numbered in the order they come.

    Parameters
    ----------
    study : Study
        The spec: its plan, labels, small-cell minimum, free-text columns, synthetic flag.
    paired_tests : DataFrame
        ``<study>.paired_tests``, the whole-cohort rows (``group = 'all'``).
    subjects : DataFrame
        ``<study>.subjects``; free-text columns are dropped here, never reported.
    visits : DataFrame
        ``subject`` and ``day`` of ``<study>.visits``.
    pairing_summary : DataFrame
        ``<study>.pairing_summary``.
    subjects_file : DataFrame
        The ``<study>.source_files`` row of the subjects file.
    results : dict of str to DataFrame
        The tidy tables of :data:`RESULT_TABLES` the warehouse has, by name; one absent or
        empty is left out.
    exclusions : DataFrame, optional
        The subjects file's records excluded at ingest by reason
        (:func:`pipeline.statistics.flow.ingest_exclusions`), for the flow eTable's footnote.
    style : JournalStyle
        How numbers are written (:data:`pipeline.render.style.AMA`).
    """
    from pipeline.pairing import outcomes_frame
    from pipeline.statistics.small_cells import pool_small_levels

    synthetic = study.synthetic
    planned = outcomes_frame(study)
    table_2_options = {
        "conf_level": study.analysis.conf_level,
        "synthetic": synthetic,
        "style": style,
        "tabled": results.get(PAIRED_CATEGORICAL),
    }
    compared = [(c.name, c.label) for c in study.analysis.compared]
    out = [
        (
            "table_2",
            table_2_by_comparison(paired_tests, planned, compared, **table_2_options)
            if len(compared) > 1
            else table_2(paired_tests, planned, **table_2_options),
        )
    ]

    # Free text is kept in the warehouse for the study team, never reported.
    subjects = subjects.drop(columns=[c for c, _ in study.free_text])
    # Complications happen after surgery: their columns are in their own eTable, not Table 1.
    subjects = subjects.drop(
        columns=[
            c
            for e in study.analysis.complications
            for c in (e.column, e.duration, e.resolved)
            if c in subjects
        ]
    )
    # What happened after surgery (an event, its day, the censoring day) is no baseline
    # characteristic: it is reported in its time-to-event eTable.
    subjects = subjects.drop(columns=time_to_event_columns(study), errors="ignore")
    # Visits known by their codes alone have no days: no follow-up time to give.
    follow_up = follow_up_months(visits) if study.analysis.days else None
    by = table_1_grouping(study, subjects)
    grouped = subjects
    if by:
        # The column groups are subgroup levels: too small ones pooled or left out.
        grouped = subjects.assign(
            **{
                by: pool_small_levels(
                    subjects[by].astype("string").str.strip().replace("", pd.NA), by, study.min_cell
                )
            }
        )
    variables = labelled_variables(study, subjects.drop(columns=[by] if by else []))
    tidy = baseline_characteristics(
        small_subgroup_levels_together(grouped, study, exclude=by),
        follow_up,
        by=by or None,
        variables=variables,
    )
    sizes = {OVERALL: len(subjects)}
    if by:
        sizes.update(grouped[by].value_counts().to_dict())
    by_label = in_sentence(study.column_label(by)) if by else ""
    given = subjects[by].astype("string").str.strip().replace("", pd.NA).notna() if by else None
    left_out = int((grouped[by].isna() & given).sum()) if by else 0
    plural = left_out != 1
    notes = (
        (
            f"{left_out} patient{'s' if plural else ''} in {by_label} groups of fewer than "
            f"{study.min_cell} patients {'are' if plural else 'is'} counted in the Overall "
            "column only (small cells are not reported).",
        )
        if left_out
        else ()
    )
    out.append(
        (
            "table_1",
            table_1(
                tidy,
                sizes,
                by_label=by_label,
                group_labels={g: table_1_group_label(study, by, g) for g in sizes if g != OVERALL},
                synthetic=synthetic,
                overall_notes=notes,
                style=style,
            ),
        )
    )

    def optional(entries):
        headline = planned.drop_duplicates(["instrument", "rater"])[["outcome", "score"]]
        for table, stem, title, columns, rows in entries:
            frame = results.get(table)
            if frame is None or frame.empty:
                continue
            if {"outcome", "score"} <= set(frame.columns):
                frame = frame.merge(
                    planned[["outcome", "score", "label"]], on=["outcome", "score"], how="left"
                )
                if rows in ("headline", "ancova"):
                    frame = frame.merge(headline, on=["outcome", "score"])
                frame = with_comparison_labels(study, frame)
            if rows == "ancova" and "test" in frame:
                frame = frame[frame["test"] == "ANCOVA"]
            notes: tuple[str, ...] = ()
            if table == "visit_estimates":
                frame, notes = visit_estimate_rows(study, frame)
                codes = frame["visit"].tolist() if "visit" in frame else []
                if not study.analysis.days:  # visits by code alone: no day to give
                    frame = frame.drop(columns=["median_day"], errors="ignore")
                if "median_day" in frame:
                    # Days are whole: a median is one, or halfway between two (one decimal then).
                    days = frame["median_day"].astype(float)
                    digits = 0 if bool((days.dropna() % 1 == 0).all()) else 1
                    frame = frame.assign(median_day=[style.number(d, digits) for d in days])
            if table == "reliability":
                notes = agreement_notes(frame, study)
            frame = readable_results(study, table, frame)
            if table == "responders":
                notes = responder_notes(frame, style=style)
            frame = frame[[c for c in columns if c in frame]]
            if len(frame):
                built = tidy_table(
                    frame.reset_index(drop=True),
                    title,
                    footnotes=notes,
                    synthetic=synthetic,
                    conf_level=study.analysis.conf_level,
                    style=style,
                )
                visits = table == "visit_estimates" and notes
                if visits:
                    built = visit_marks(built, visit_notes(study, codes), codes)
                if table == "responders" and notes:
                    built = _marked_on_headings(built, {0: [HEADINGS["threshold"]]})
                if table == "reliability":
                    built = _under_first_column(built)
                out.append((stem, built))

    # Table 3 and its ANCOVA part, of the headline outcomes' rows, built with the same options.
    table_3 = {
        "conf_level": study.analysis.conf_level,
        "min_cell": study.min_cell,
        "synthetic": synthetic,
        "style": style,
    }
    subgroup_rows = results.get("paired_tests_subgroups")
    if subgroup_rows is not None and len(subgroup_rows):
        frame = _headline_results(study, "paired_tests_subgroups", subgroup_rows, planned)
        if len(frame):
            out.append(("table_3_subgroups", table_3_subgroups(frame, **table_3)))
    between = results.get("between_groups")
    if between is not None and len(between) and "test" in between:
        ancova = between[between["test"].isin(["ANCOVA", "ANCOVA difference"])]
        frame = _headline_results(study, "between_groups", ancova, planned)
        if len(frame):
            covariates = [in_sentence(study.column_label(c)) for c in study.analysis.covariates]
            out.append(("table_3_ancova", table_3_ancova(frame, covariates=covariates, **table_3)))
    binary = results.get(BINARY_SUBGROUPS)
    if binary is not None and len(binary):
        frame = _headline_results(study, "paired_tests_subgroups", binary, planned)
        if len(frame):
            binary_table = table_3_binary(
                frame, conf_level=study.analysis.conf_level, synthetic=synthetic, style=style
            )
            out.append(("table_3_binary", binary_table))
    if len(pairing_summary) and len(subjects_file):
        flow = flow_counts(subjects_file, pairing_summary, planned)
        out.append(
            (
                "etable_flow",
                flow_table(
                    flow,
                    pre_label=study.analysis.pre_label,
                    post_label=study.analysis.post_label,
                    subjects_file=study.subjects_path.name,
                    exclusions=exclusions,
                    synthetic=synthetic,
                    style=style,
                ),
            )
        )
    overall = (
        tidy
        if not by
        else baseline_characteristics(
            subjects, follow_up, variables=labelled_variables(study, subjects)
        )
    )
    out.append(
        ("etable_missing", missing_table(overall, len(subjects), synthetic=synthetic, style=style))
    )
    optional(OPTIONAL_TABLES[2:])
    # The ANCOVA models (a plan with subgroups) before the eTables a plan may add or drop.
    out += ancova_model_tables(study, results, planned, style)
    tested, cells = results.get(PAIRED_CATEGORICAL), results.get(PAIRED_CATEGORICAL_CELLS)
    if tested is not None and cells is not None and len(tested):
        out += before_after_tables(study, tested, cells, planned, style=style)
    # Complications and power before the item eTables, which close the list.
    events = results.get(COMPLICATIONS)
    if events is not None and len(events):
        out.append(("etable_complications", complications_table(events, study, style=style)))
    power = results.get(POWER)
    if power is not None and len(power):
        out.append(("etable_power", power_table(power, study, style=style)))
    imputed = results.get(IMPUTATION)
    if imputed is not None and len(imputed) and study.analysis.imputation is not None:
        out.append(("etable_imputation", imputation_table(imputed, study, style=style)))
    # The predictors of outcome before the item eTables, which come last.
    out += regression_tables(study, results, planned, style=style)
    out += time_to_event_tables(study, results, style)
    # The mixed model before the item eTables, which close the list.
    out += mixed_model_tables(study, results, planned, style)
    items = results.get(ITEM_CHANGES)
    if items is not None and len(items):
        out += item_tables(
            items,
            {name: study.instrument(name) for name in pd.unique(items["instrument"])},
            planned,
            conf_level=study.analysis.conf_level,
            synthetic=synthetic,
            style=style,
        )
    # Number the eTables in the order they appear.
    numbered, e = [], 0
    for stem, t in out:
        if t.title.startswith("eTable."):
            e += 1
            t = Table(
                t.title.replace("eTable.", f"eTable {e}.", 1),
                t.body,
                t.footnotes,
                t.indent,
                t.marks,
            )
        numbered.append((stem, t))
    return numbered


# --------------------------------------------------------------------------- kept for the report

#: The columns of :func:`as_frame`, the warehouse's ``<study>.publication_tables``.
FRAME_COLUMNS = ("position", "stem", "part", "row_index", "column_index", "indent", "text")


def as_frame(built: list[tuple[str, Table]]) -> pd.DataFrame:
    """Built tables as one tidy frame of their text, the form the warehouse keeps them in.

    One row per piece of text: ``position`` (the table's place in ``built``, from 1),
    ``stem``; ``part`` ``title``, ``heading`` (``column_index`` from 0), ``cell``
    (``row_index`` and ``column_index`` from 0, ``indent`` its row's indentation),
    ``footnote`` (``row_index`` its order) or ``mark`` (a footnote marked on a cell: its
    ``row_index``, empty for the heading, and ``column_index``; ``text`` the footnote's order);
    ``text`` exactly as the writers write it.
    :func:`from_frame` gives the tables back.
    """
    rows = []
    for position, (stem, table) in enumerate(built, start=1):
        rows.append((position, stem, "title", None, None, 0, table.title))
        rows += [
            (position, stem, "heading", None, j, 0, str(heading))
            for j, heading in enumerate(table.body.columns)
        ]
        for i, values in enumerate(table.body.itertuples(index=False)):
            indent = table.indent_of(i)
            rows += [
                (position, stem, "cell", i, j, indent, str(value)) for j, value in enumerate(values)
            ]
        rows += [
            (position, stem, "footnote", i, None, 0, note) for i, note in enumerate(table.footnotes)
        ]
        rows += [(position, stem, "mark", i, j, 0, str(k)) for i, j, k in table.marks]
    frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    for column in ("row_index", "column_index"):
        frame[column] = frame[column].astype("Int64")
    return frame.astype(
        {"position": "int64", "indent": "int64", "stem": object, "part": object, "text": object}
    )


def from_frame(frame: pd.DataFrame) -> list[tuple[str, Table]]:
    """The tables :func:`as_frame` kept, as (stem, Table) in their order."""
    built = []
    for _, table in frame.sort_values("position", kind="stable").groupby("position", sort=False):
        part = table.groupby("part")
        pieces = {name: rows for name, rows in part}
        empty = table.iloc[:0]
        headings = pieces.get("heading", empty).sort_values("column_index")["text"].tolist()
        cells = pieces.get("cell", empty).sort_values(["row_index", "column_index"])
        n_rows = int(cells["row_index"].max()) + 1 if len(cells) else 0
        grid = cells["text"].to_numpy(dtype=object).reshape(n_rows, len(headings))
        indent = cells.drop_duplicates("row_index")["indent"].astype(int).tolist()
        footnotes = pieces.get("footnote", empty).sort_values("row_index")["text"].tolist()
        title = pieces["title"]["text"].iloc[0]
        body = pd.DataFrame(grid, columns=headings)
        marks = tuple(
            (None if pd.isna(i) else int(i), int(j), int(k))
            for i, j, k in pieces.get("mark", empty)[
                ["row_index", "column_index", "text"]
            ].itertuples(index=False)
        )
        built.append(
            (
                table["stem"].iloc[0],
                Table(title, body, tuple(footnotes), tuple(indent) if any(indent) else (), marks),
            )
        )
    return built


# --------------------------------------------------------------------------- footnote marks


def _in_order(marks: list[tuple[int | None, int, int]]) -> tuple[tuple[int | None, int, int], ...]:
    """Marks without repeats, headings first, then by row, column and footnote."""
    return tuple(sorted(set(marks), key=lambda m: (m[0] is not None, m[0] or 0, m[1], m[2])))


# --------------------------------------------------------------------------- mixed model

#: The mixed model's tidy tables (:func:`pipeline.steps.mixed_models`), in ``results`` when the
#: plan fits the model ([analysis.longitudinal] model = true).
MIXED_MODEL_RESULTS = ("mixed_model_fixed", "mixed_model_fit", "mixed_model_lrt")
RESULT_TABLES += MIXED_MODEL_RESULTS
#: Decimals of the mixed model's estimates (one more for one below 0.1 in absolute value).
MIXED_MODEL_DIGITS = 2


def mixed_model_stem(outcome: str, score: str) -> str:
    """The file stem of an outcome's mixed-model eTable."""
    return f"etable_mixed_model_{outcome}_{score}"


def mixed_model_tables(
    study: Study,
    results: dict[str, pd.DataFrame],
    planned: pd.DataFrame,
    style: JournalStyle = AMA,
) -> list[tuple[str, Table]]:
    """An eTable per modelled outcome, as (file stem, Table), laid out as
    ``summary(lmerTest::lmer(...))`` reads: each fixed effect with its estimate (CI), SE,
    Satterthwaite df, t and P, grouped as time, group, covariates and group x time (levels
    indented under their heading, each against its reference); then the random effects as SDs
    (and the correlation); the likelihood-ratio tests, the REML criterion or deviance,
    log-likelihood and AIC in footnotes. None when the results are absent."""
    from pipeline.statistics.small_cells import pooled_label

    fixed, fits = results.get("mixed_model_fixed"), results.get("mixed_model_fit")
    lrt = results.get("mixed_model_lrt", pd.DataFrame(columns=["outcome", "score"]))
    plan = study.analysis.mixed_model
    if fixed is None or fits is None or fits.empty or plan is None:
        return []
    labels = planned.set_index(["outcome", "score"])
    ci = style.ci_label(study.analysis.conf_level)
    wald = plan.df == "wald_z"
    stat = "z" if wald else "t"
    headings = ["Term", f"Estimate ({ci})", "SE"] + ([] if wald else ["df"]) + [stat, "P"]
    time_unit = {"days": "day", "months": "month"}.get(plan.time, "")
    group_label = study.column_label(plan.column) if plan.group else ""

    def level(code: str) -> str:
        if code == pooled_label(plan.group, study.min_cell).partition(": ")[2]:
            return f"Other ({code})"
        return study.level_label(plan.column, code)

    def visit(code: str) -> str:
        return study.visit_label(code) if plan.time == "visits" else f"Time, per {time_unit}"

    def digits(*values) -> int:
        return MIXED_MODEL_DIGITS + int(max(abs(float(v)) for v in values) < 0.1)

    out = []
    for fit in fits.itertuples(index=False):
        rows = fixed[(fixed["outcome"] == fit.outcome) & (fixed["score"] == fit.score)]
        body: list[list[str]] = []
        indent: list[int] = []

        def add(cells: list[str], depth: int) -> None:
            body.append(cells + [""] * (len(headings) - len(cells)))
            indent.append(depth)

        def effect(r, name: str, depth: int) -> None:
            d = digits(r.estimate, r.ci_low, r.ci_high)
            cells = [name, style.estimate_ci(r.estimate, r.ci_low, r.ci_high, d)]
            cells.append(style.number(r.se, d))
            if not wald:
                cells.append(style.number(r.df, 1))
            cells += [style.number(r.statistic, 2), style.p(r.p_value)]
            add(cells, depth)

        intercept = rows[rows["term"] == "(Intercept)"]
        rows = rows[rows["term"] != "(Intercept)"]
        time_rows = rows[(rows["time"].fillna("") != "") & (rows["group_level"].fillna("") == "")]
        group_rows = rows[(rows["time"].fillna("") == "") & (rows["group_level"].fillna("") != "")]
        cross = rows[(rows["time"].fillna("") != "") & (rows["group_level"].fillna("") != "")]
        covariates = rows[rows["covariate"].fillna("") != ""]
        for r in intercept.itertuples():
            effect(r, "Intercept", 0)
        if plan.time == "visits" and len(time_rows):
            # The intercept's row names the reference visit (the model's earliest).
            reference_visit = str(intercept["time"].iloc[0]) if len(intercept) else ""
            add([f"Visit (vs {in_sentence(study.visit_label(reference_visit))})"], 0)
            for r in time_rows.itertuples():
                effect(r, visit(str(r.time)), 1)
        else:
            for r in time_rows.itertuples():
                effect(r, visit(str(r.time)), 0)
        if len(group_rows):
            add([f"{group_label} (vs {in_sentence(level(plan.reference))})"], 0)
            for r in group_rows.itertuples():
                effect(r, level(str(r.group_level)), 1)
        for r in covariates.itertuples():
            effect(r, study.column_label_with_unit(str(r.covariate)), 0)
        if len(cross):
            what = "Visit" if plan.time == "visits" else "Time"
            add([f"{what} × {in_sentence(group_label)}"], 0)
            for r in cross.itertuples():
                add_name = f"{visit(str(r.time))} × {level(str(r.group_level))}"
                effect(r, add_name if plan.time == "visits" else level(str(r.group_level)), 1)
        add(["Random effects, SD"], 0)
        components = [("Patient intercept", fit.sd_intercept)]
        if plan.random_slope:
            unit = "year" if plan.time == "visits" else time_unit
            components += [
                (f"Patient slope, per {unit}", fit.sd_slope),
                ("Correlation of intercept and slope", fit.corr_intercept_slope),
            ]
        components.append(("Residual", fit.sigma))
        for name, value in components:
            add([name, style.number(value, MIXED_MODEL_DIGITS)], 1)
        frame = pd.DataFrame(body, columns=headings)

        footnotes = _Footnotes()
        method = "restricted maximum likelihood" if fit.method == "REML" else "maximum likelihood"
        criterion = "REML criterion" if fit.method == "REML" else "deviance"
        what = "visit" if plan.time == "visits" else f"time in {plan.time}"
        effects = [what]
        if plan.group:
            effects.append(in_sentence(group_label))
            if plan.interaction:
                effects.append("their interaction")
        effects += [in_sentence(study.column_label(c)) for c in plan.covariates]
        random = "a random intercept" + (" and slope" if plan.random_slope else "")
        footnotes.add(
            f"Linear mixed model: fixed effects for {_listed(effects)}; {random} per "
            f"patient; fitted by {method} to {int(fit.n_observations)} values of "
            f"{int(fit.n_subjects)} patients; {criterion} {style.number(fit.criterion, 1)}, "
            f"log-likelihood {style.number(fit.loglik, 1)}, AIC {style.number(fit.aic, 1)}.",
            (None, "Term"),
        )
        if wald:
            footnotes.add(
                f"Wald z tests and {ci}s (normal distribution, no degrees of freedom).",
                (None, f"Estimate ({ci})"),
                (None, stat),
            )
        else:
            footnotes.add(
                f"t tests on Satterthwaite degrees of freedom (as lmerTest); {ci}s are the "
                "estimate ± the t quantile on those degrees of freedom × SE.",
                (None, "df"),
            )
        tests = lrt[(lrt["outcome"] == fit.outcome) & (lrt["score"] == fit.score)]
        cross_row = next((i for i, b in enumerate(body) if " × " in b[0] and not b[1]), None)
        slope_row = next((i for i, b in enumerate(body) if b[0].startswith("Patient slope")), None)
        for t in tests.itertuples():
            interaction = t.comparison == "group x time interaction"
            row = cross_row if interaction else slope_row
            what = (
                f"the {in_sentence(group_label)} × {'visit' if plan.time == 'visits' else 'time'} "
                "interaction"
                if t.comparison == "group x time interaction"
                else "the random slope"
            )
            footnotes.add(
                f"Likelihood-ratio test of {what} (both models fitted by maximum likelihood): "
                f"χ²{_subscript(int(t.df))} = {style.number(t.chisq, 2)}, P "
                f"{p_equals(t.p_value, style)}.",
                *([(row, "Term")] if row is not None else [(None, "Term")]),
            )
        if bool(fit.singular):
            footnotes.add(
                "Boundary (singular) fit: a random-effect variance is estimated as zero or the "
                "correlation as ±1.",
                (None, "Term"),
            )
        if isinstance(fit.note, str) and fit.note:
            footnotes.add(f"Not fitted: {fit.note}.", (None, "Term"))
        if study.synthetic:
            footnotes.add(SYNTHETIC_NOTE)
        label = str(labels.loc[(fit.outcome, fit.score), "label"])
        out.append(
            (
                mixed_model_stem(fit.outcome, fit.score),
                Table(
                    f"eTable. Linear mixed model of {label} over all visits",
                    frame,
                    tuple(footnotes.texts),
                    tuple(indent),
                    marks=footnotes.marks(frame),
                ),
            )
        )
    return out


def _subscript(n: int) -> str:
    """A whole number as Unicode subscript digits (the χ² df: χ²₅)."""
    return str(n).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))
