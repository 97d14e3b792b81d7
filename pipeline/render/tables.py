"""Publication tables, rendered from the tidy statistics results.

Numbers are kept at full precision everywhere else; rounding happens only
here. P values follow the AMA Manual of Style (JAMA, FPSAM, PRS-adjacent
journals): no leading zero, two decimals from .01 up, three below, ``<.001``
below .001, never ``.000``; percentages without decimals when N < 100, one
decimal from 100 up (domain reference section 4.2).

Each table is computed once as a tidy frame (unrounded), then formatted into a
:class:`Table` (cells as text, title, lettered footnotes), which every renderer
only writes out: CSV, Markdown, HTML, LaTeX (booktabs) and DOCX (a real Word
table, footnotes as lettered paragraphs under it, as journals print them).

Every cell a writer puts out (publication tables in every format, and the full-precision
results CSVs of :func:`write_results`) goes through :func:`pipeline.render.cells.neutralise`, so a
text value from an export that starts like a spreadsheet formula is written as text.
"""

from __future__ import annotations

import html
import io
import math
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.render.cells import SPLITS, neutralise

SYNTHETIC_NOTE = "SYNTHETIC DATA: demonstration cohort, not real patients."
FORMATS = ("csv", "md", "html", "tex", "docx")

# Top-coded ages (HIPAA Safe Harbor collapses 90 and over into "90+").
TOP_CODED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*\+\s*$")
DAYS_PER_MONTH = 365.25 / 12  # follow-up in months = days / 30.4375
# Absolute sample skewness above 1 marks a distribution as highly skewed
# (Bulmer MG. Principles of Statistics. Dover; 1979:63): such variables are
# summarised as median [IQR], the others as mean ± SD.
SKEWNESS_LIMIT = 1.0
MONTE_CARLO_RESAMPLES = 9999
MONTE_CARLO_SEED = 20190501  # fixed, so the same data give the same Monte Carlo P


@dataclass(frozen=True)
class Table:
    """A rendered table: formatted cells, a title and footnotes.

    ``indent`` gives, per body row, how many levels the first cell is indented
    (a category level under its variable); empty means no indentation.
    """

    title: str
    body: pd.DataFrame
    footnotes: tuple[str, ...] = ()
    indent: tuple[int, ...] = ()

    def indent_of(self, row: int) -> int:
        return self.indent[row] if self.indent else 0


# --------------------------------------------------------------------------- numbers


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


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def _number(x: float, digits: int) -> str:
    if _missing(x):
        return "NA"
    # Half away from zero on the shortest decimal form (82.5 -> 83, 2.675 -> 2.68), as
    # readers round by hand; Python's own formatting rounds exact halves to even.
    rounded = Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    text = f"{rounded:.{digits}f}"
    # "-0.0" reads as a signed result; a change that rounds to zero is shown as 0.0.
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def mean_sd(mean: float, sd: float, digits: int = 1) -> str:
    return f"{_number(mean, digits)} ± {_number(sd, digits)}"


def median_iqr(median: float, q1: float, q3: float, digits: int = 1) -> str:
    return f"{_number(median, digits)} [{_number(q1, digits)}-{_number(q3, digits)}]"


def estimate_ci(estimate: float, low: float, high: float, digits: int = 1) -> str:
    # "to" rather than a dash, so negative limits stay readable (AMA style).
    return f"{_number(estimate, digits)} ({_number(low, digits)} to {_number(high, digits)})"


def percent_digits(n: int) -> int:
    """AMA: whole percentages when N < 100, one decimal from 100 up."""
    return 0 if n < 100 else 1


def count_percent(count: int, denominator: int, digits: int) -> str:
    count, denominator = int(count), int(denominator)
    if denominator == 0:
        return f"{count} (NA)"
    return f"{count} ({_number(100 * count / denominator, digits)})"


# --------------------------------------------------------------------------- Table 1


@dataclass(frozen=True)
class Variable:
    """One Table 1 row group.

    ``kind``: ``continuous`` (a number per patient), ``categorical`` (one row
    per level) or ``binary`` (0/1, one row: patients with 1). ``levels`` maps raw
    values to labels in display order; ``statistic`` forces ``mean_sd`` or
    ``median_iqr`` (empty: the skewness rule).
    """

    name: str
    label: str
    kind: str
    levels: tuple[tuple[str, str], ...] = ()
    statistic: str = ""
    digits: int = 1


# Baseline characteristics reported by the selective neurectomy series
# (domain reference section 4.1), in their usual order. A subject column not
# listed here is still shown, after these, with its kind inferred from the values.
BASELINE_VARIABLES = (
    Variable("age", "Age, y", "continuous", digits=0),
    Variable("sex", "Sex", "categorical", (("F", "Female"), ("M", "Male"))),
    Variable("side", "Side of paralysis", "categorical", (("left", "Left"), ("right", "Right"))),
    Variable("etiology", "Etiology", "categorical", (
        ("bells_palsy", "Bell palsy"), ("ramsay_hunt", "Ramsay Hunt syndrome"),
        ("acoustic_neuroma", "Acoustic neuroma"), ("trauma", "Trauma"),
        ("iatrogenic", "Iatrogenic"), ("other", "Other"))),
    Variable("months_since_onset", "Time since onset, mo", "continuous"),
    Variable("prior_botox", "Prior botulinum toxin", "binary"),
    Variable("facelift", "Concurrent facelift", "binary"),
    Variable("cross_facial_nerve_graft", "Concurrent cross-facial nerve graft", "binary"),
    Variable("nerve_rerouting", "Concurrent nerve rerouting", "binary"),
    Variable("end_to_side", "Concurrent end-to-side nerve transfer", "binary"),
    Variable("branches_transected", "Branches transected, No.", "continuous"),
)
FOLLOW_UP = Variable("follow_up_months", "Follow-up, mo", "continuous")
# Not baseline: the year is a recruitment date (reported in Methods), and these
# are postoperative events, reported with the outcomes.
NOT_BASELINE = frozenset({"surgery_year", "oral_incompetence", "revision"})

OVERALL = "Overall"


def parse_numbers(values: pd.Series, column: str) -> tuple[pd.Series, pd.Series]:
    """Numbers from text cells; ``"90+"`` counts as 90 and is flagged as top-coded.

    Returns the numbers (NaN where empty) and a boolean Series of top-coded cells.
    Raises ``ValueError`` naming the column and the first value that is not a number.
    """
    text = values.astype("string").str.strip()
    top = text.str.match(TOP_CODED.pattern).fillna(False).astype(bool)
    cleaned = text.where(~top, text.str.replace("+", "", regex=False))
    numbers = pd.to_numeric(cleaned.replace("", pd.NA), errors="coerce").astype(float)
    bad = numbers.isna() & cleaned.replace("", pd.NA).notna()
    if bad.any():
        first = values[bad].iloc[0]
        raise ValueError(f"subjects column '{column}': {first!r} is not a number "
                         f"({int(bad.sum())} such value(s)); correct it in the subjects file "
                         "or leave the cell empty when unknown.")
    return numbers, top


def infer_variable(name: str, values: pd.Series) -> Variable:
    """A variable the catalogue does not know: 0/1 -> binary, numbers -> continuous, else categorical."""
    text = values.astype("string").str.strip().replace("", pd.NA).dropna()
    as_number = pd.to_numeric(text.str.replace(TOP_CODED.pattern, r"\1", regex=True), errors="coerce")
    label = name.replace("_", " ").capitalize()
    if len(text) and as_number.notna().all():
        if set(as_number.unique()) <= {0.0, 1.0}:
            return Variable(name, label, "binary")
        return Variable(name, label, "continuous")
    levels = tuple((v, v) for v in sorted(text.unique()))
    return Variable(name, label, "categorical", levels)


def table_1_variables(subjects: pd.DataFrame) -> list[Variable]:
    """The Table 1 variables for these subject columns: catalogue first, then the others."""
    known = {v.name: v for v in BASELINE_VARIABLES}
    chosen = [v for v in BASELINE_VARIABLES if v.name in subjects.columns]
    for column in subjects.columns:
        if column not in known and column not in NOT_BASELINE and column != "subject":
            chosen.append(infer_variable(column, subjects[column]))
    return chosen


def follow_up_months(visits: pd.DataFrame) -> pd.Series:
    """Months from surgery to each subject's last visit after surgery (day > 0).

    A subject with no postoperative visit has no follow-up (NaN), not zero.
    """
    after = visits[visits["day"].astype(float) > 0]
    return after.groupby("subject")["day"].max().astype(float) / DAYS_PER_MONTH


def _skewness(values: np.ndarray) -> float:
    if len(values) < 3 or np.all(values == values[0]):
        return 0.0
    return float(stats.skew(values, bias=False))


def _group_p(kind: str, statistic: str, samples: list[np.ndarray] | None,
             table: np.ndarray | None) -> tuple[float, str]:
    """Group comparison P and the test's name (NaN with an empty name when not computable)."""
    if kind == "continuous":
        groups = [s for s in samples if len(s)]
        if len(groups) < 2 or sum(len(s) for s in groups) <= len(groups):
            return math.nan, ""
        if statistic == "mean_sd":
            # R: oneway.test(x ~ g, var.equal = TRUE), i.e. one-way ANOVA F test.
            return float(stats.f_oneway(*groups).pvalue), "one-way analysis of variance"
        # R: kruskal.test(x ~ g) (tie-corrected).
        if np.all(np.concatenate(groups) == groups[0][0]):
            return math.nan, ""
        return float(stats.kruskal(*groups).pvalue), "Kruskal-Wallis test"
    if table.ndim != 2:  # no group at all (no patient)
        return math.nan, ""
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return math.nan, ""
    expected = stats.contingency.expected_freq(table)
    if (expected >= 5).all():
        # R: chisq.test(table, correct = FALSE)
        return float(stats.chi2_contingency(table, correction=False).pvalue), "Pearson χ2 test"
    if table.shape == (2, 2):
        # R: fisher.test(table)
        return float(stats.fisher_exact(table).pvalue), "Fisher exact test"
    # Small expected counts in a larger table: the χ2 statistic's P by Monte Carlo over
    # tables with the same margins, as R's chisq.test(simulate.p.value = TRUE, B = 9999).
    method = stats.MonteCarloMethod(n_resamples=MONTE_CARLO_RESAMPLES,
                                    rng=np.random.default_rng(MONTE_CARLO_SEED))
    p = stats.chi2_contingency(table, correction=False, method=method).pvalue
    return float(p), f"Pearson χ2 test with Monte Carlo P ({MONTE_CARLO_RESAMPLES} tables)"


def baseline_characteristics(subjects: pd.DataFrame, follow_up: pd.Series | None = None, *,
                             by: str | None = None, variables: list[Variable] | None = None,
                             compare: bool = True) -> pd.DataFrame:
    """Tidy Table 1: one row per variable, level and column group, unrounded.

    Parameters
    ----------
    subjects : DataFrame
        ``<study>.subjects``: ``subject`` plus baseline columns stored as text.
    follow_up : Series, optional
        Follow-up in months indexed by subject (:func:`follow_up_months`).
    by : str, optional
        A categorical subject column giving the column groups (e.g. ``etiology``).
    variables : list of Variable, optional
        Default: :func:`table_1_variables` of the subject columns (``by`` excluded).
    compare : bool
        Add a group-comparison P per variable when ``by`` is given.

    Returns
    -------
    DataFrame
        ``variable``, ``label``, ``kind``; ``statistic`` (``mean_sd``/``median_iqr``
        for continuous, ``n_percent`` otherwise); ``level`` and ``level_label`` (the
        category; empty for continuous and for binary); ``group`` (``Overall`` or a
        value of ``by``); ``n`` (patients in the group with a value); ``missing``
        (patients in the group without one); ``count`` and ``percent`` (of ``n``)
        for categories; ``mean``, ``sd`` (n - 1 denominator), ``median``, ``q1``,
        ``q3`` (quartiles by linear interpolation, R type 7), ``minimum``,
        ``maximum``; ``top_coded`` (values given as e.g. "90+", counted as 90);
        ``p_value`` and ``test`` (same on every row of a variable; NaN / empty
        without ``by``).

    Notes
    -----
    Continuous variables are summarised as mean ± SD when the absolute sample
    skewness over all patients is at most 1, otherwise as median [IQR]; a
    variable with top-coded values ("90+") is always summarised as median [IQR],
    because counting those values as 90 biases the mean downward while leaving
    the median unchanged as long as fewer than half are top-coded.
    """
    frame = subjects.set_index("subject")
    columns = dict(frame.items())
    if variables is None:
        variables = [v for v in table_1_variables(subjects.drop(columns=[by] if by else []))]
    if follow_up is not None:
        columns[FOLLOW_UP.name] = follow_up.reindex(frame.index)
        variables = [*variables, FOLLOW_UP]
    groups = [(OVERALL, pd.Series(True, index=frame.index))]
    if by:
        by_values = frame[by].astype("string").str.strip().replace("", pd.NA)
        known = {v.name: v for v in BASELINE_VARIABLES}
        order = [raw for raw, _ in known[by].levels] if by in known else []
        present = [g for g in order if (by_values == g).any()]
        present += sorted(set(by_values.dropna()) - set(present))
        groups += [(g, (by_values == g).fillna(False)) for g in present]
    rows = []
    for var in variables:
        raw = columns[var.name]
        if var.kind == "continuous":
            if raw.dtype == object or pd.api.types.is_string_dtype(raw):
                numbers, top = parse_numbers(raw, var.name)
            else:
                numbers, top = raw.astype(float), pd.Series(False, index=raw.index)
            statistic = var.statistic or (
                "median_iqr" if top.any() or abs(_skewness(numbers.dropna().to_numpy())) > SKEWNESS_LIMIT
                else "mean_sd")
            samples = []
            for group, members in groups:
                values = numbers[members].dropna().to_numpy()
                if group != OVERALL:
                    samples.append(values)
                q1, median, q3 = (np.quantile(values, [0.25, 0.5, 0.75]) if len(values)
                                  else (math.nan,) * 3)
                rows.append({
                    "variable": var.name, "label": var.label, "kind": var.kind, "statistic": statistic,
                    "level": "", "level_label": "", "group": group,
                    "n": len(values), "missing": int(members.sum()) - len(values),
                    "count": math.nan, "percent": math.nan,
                    "mean": float(np.mean(values)) if len(values) else math.nan,
                    "sd": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
                    "median": median, "q1": q1, "q3": q3,
                    "minimum": float(values.min()) if len(values) else math.nan,
                    "maximum": float(values.max()) if len(values) else math.nan,
                    "top_coded": int(top[members].sum()),
                })
            p, test = _group_p("continuous", statistic, samples, None) if by and compare else (math.nan, "")
        else:
            text = raw.astype("string").str.strip().replace("", pd.NA)
            if var.kind == "binary":
                bad = text.dropna()[~text.dropna().isin(["0", "1"])]
                if len(bad):
                    raise ValueError(f"subjects column '{var.name}': {bad.iloc[0]!r} is not 0 or 1; "
                                     "record 1 for yes, 0 for no, or leave the cell empty when unknown.")
                levels = [("0", "No"), ("1", "Yes")]
            else:
                listed = [lv for lv in var.levels if (text == lv[0]).any()]
                levels = listed + [(v, v) for v in sorted(set(text.dropna()) - {raw for raw, _ in listed})]
            shown = [("1", "")] if var.kind == "binary" else levels
            counts = np.array([[int(((text == lv) & members).sum()) for lv, _ in levels]
                               for group, members in groups[1:]]) if by else None
            for group, members in groups:
                n = int((text.notna() & members).sum())
                for level, level_label in shown:
                    count = int(((text == level) & members).sum())
                    rows.append({
                        "variable": var.name, "label": var.label, "kind": var.kind,
                        "statistic": "n_percent", "level": level, "level_label": level_label,
                        "group": group, "n": n, "missing": int(members.sum()) - n,
                        "count": count, "percent": 100 * count / n if n else math.nan,
                        "mean": math.nan, "sd": math.nan, "median": math.nan, "q1": math.nan,
                        "q3": math.nan, "minimum": math.nan, "maximum": math.nan, "top_coded": 0,
                    })
            p, test = _group_p("categorical", "", None, counts) if by and compare else (math.nan, "")
        for row in rows:
            if row["variable"] == var.name:
                row["p_value"], row["test"] = p, test
    return pd.DataFrame(rows)


def table_1(tidy: pd.DataFrame, group_sizes: dict[str, int], *, by_label: str = "",
            group_labels: dict[str, str] | None = None, synthetic: bool = False,
            notes: tuple[str, ...] = ()) -> Table:
    """Table 1 from :func:`baseline_characteristics`; ``group_sizes`` maps each group to its N;
    ``notes`` are further footnotes."""
    group_labels = group_labels or {}
    groups = list(dict.fromkeys(tidy["group"]))
    headers = {g: f"{group_labels.get(g, g)} (n = {group_sizes[g]})" for g in groups}
    with_p = tidy["p_value"].notna().any()
    cells, indent = [], []

    def add(first: str, level: int, values: dict[str, str], p: str = "") -> None:
        row = {"Characteristic": first, **{headers[g]: values.get(g, "") for g in groups}}
        if with_p:
            row["P"] = p
        cells.append(row)
        indent.append(level)

    for variable, rows in tidy.groupby("variable", sort=False):
        first = rows.iloc[0]
        p = format_p(first["p_value"]) if with_p and not _missing(first["p_value"]) else ""
        if first["kind"] == "continuous":
            stat = first["statistic"]
            suffix = ", mean ± SD" if stat == "mean_sd" else ", median [IQR]"
            digits = 0 if variable == "age" else 1
            values = {}
            for r in rows.itertuples():
                if r.n == 0:
                    values[r.group] = "NA"
                elif stat == "mean_sd":
                    values[r.group] = mean_sd(r.mean, r.sd, digits)
                else:
                    values[r.group] = median_iqr(r.median, r.q1, r.q3, digits)
            add(first["label"] + suffix, 0, values, p)
            if variable == FOLLOW_UP.name and (rows["n"] > 0).any():  # no range of no follow-up
                add("Range", 1, {r.group: f"{_number(r.minimum, 1)}-{_number(r.maximum, 1)}"
                                 for r in rows.itertuples() if r.n})
        elif first["kind"] == "binary":
            values = {r.group: count_percent(r.count, r.n, percent_digits(group_sizes[r.group]))
                      for r in rows.itertuples()}
            add(first["label"] + ", No. (%)", 0, values, p)
        else:
            add(first["label"] + ", No. (%)", 0, {}, p)
            for level, level_rows in rows.groupby("level", sort=False):
                values = {r.group: count_percent(r.count, r.n, percent_digits(group_sizes[r.group]))
                          for r in level_rows.itertuples()}
                add(level_rows.iloc[0]["level_label"], 1, values)
        missing = rows.drop_duplicates("group").set_index("group")["missing"]
        if missing.sum() > 0:
            add("Missing, No.", 1, {g: str(int(m)) for g, m in missing.items()})
    body = pd.DataFrame(cells)
    footnotes = [
        "Continuous characteristics are summarised as mean ± SD when their absolute sample skewness "
        "is at most 1, otherwise as median [IQR] (quartiles by linear interpolation). "
        "Percentages are of the patients with a recorded value; missing values are counted separately.",
    ]
    top = tidy.drop_duplicates(["variable", "group"])
    top = top[(top["group"] == OVERALL) & (top["top_coded"] > 0)]
    for r in top.itertuples():
        footnotes.append(f"{r.label.split(',')[0]}: {r.top_coded} value(s) recorded as top-coded "
                         "(e.g. \"90+\", HIPAA Safe Harbor) were counted as the bound (90); "
                         "hence the median [IQR].")
    if FOLLOW_UP.name in set(tidy["variable"]):
        footnotes.append("Follow-up: days from surgery to the last postoperative visit, "
                         f"divided by {DAYS_PER_MONTH} days per month.")
    if with_p:
        tested = tidy.drop_duplicates("variable")
        tested = tested[tested["test"] != ""]
        by_test = [f"{test} for {', '.join(label.split(',')[0] for label in rows['label'])}"
                   for test, rows in tested.groupby("test", sort=False)]
        footnotes.append(f"Two-sided P values comparing the {by_label or 'group'} groups, over the "
                         "patients with a recorded value: " + "; ".join(by_test) + ".")
    footnotes += notes
    if synthetic:
        footnotes.append(SYNTHETIC_NOTE)
    title = "Table 1. Baseline characteristics" + (f" overall and by {by_label}" if by_label else "")
    return Table(title, body, tuple(footnotes), tuple(indent))


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


def _with_ci(frame: pd.DataFrame, column: str, digits: int) -> list[str]:
    low, high = f"{column}_ci_low", f"{column}_ci_high"
    if low in frame and high in frame:
        return [estimate_ci(v, lo, hi, digits) for v, lo, hi in zip(frame[column], frame[low], frame[high])]
    return [_number(v, digits) for v in frame[column]]


NOT_ESTIMABLE = "not estimable"
NO_VALUE = "—"  # a cell with nothing to show: the outcome has no pairs


def table_2(results: pd.DataFrame, outcomes: pd.DataFrame, *, conf_level: float,
            synthetic: bool = False) -> Table:
    """Table 2: each outcome before and after surgery.

    ``results`` is the tidy paired-tests table; ``outcomes`` the planned
    outcomes with ``outcome, label, higher_is_better`` (see
    :func:`pipeline.pairing.outcomes_frame`). Adjusted P (``p_adj``) and effect
    sizes (``dz``, ``hedges_g``, ``rank_biserial``, each with ``<name>_ci_low``
    / ``<name>_ci_high`` when present) get a column when the results have them.

    An outcome with no pairs (``n_pairs = 0``) keeps its row: "—" for the values,
    "not estimable" for the change, and a footnote naming it. No results give the
    header alone.
    """
    versions = [n for n in dict.fromkeys(outcomes.get("version_note", pd.Series(dtype=str))) if n]
    merged = results.merge(outcomes[["outcome", "score", "label", "higher_is_better"]],
                           on=["outcome", "score"], how="left", validate="one_to_one")
    level = f"{conf_level:.0%}"
    n_pairs = merged["n_pairs"].astype(int)
    paired = (n_pairs > 0).tolist()

    def cells(values, absent: str = NO_VALUE) -> list[str]:
        return [value if has_pairs else absent for value, has_pairs in zip(values, paired)]

    body = pd.DataFrame({
        "Outcome": merged["label"],
        "n pairs": n_pairs.astype(str),
        "Before, mean ± SD": cells([mean_sd(m, s) for m, s in zip(merged["pre_mean"], merged["pre_sd"])]),
        "After, mean ± SD": cells([mean_sd(m, s) for m, s in zip(merged["post_mean"], merged["post_sd"])]),
        f"Change ({level} CI)": cells([estimate_ci(d, lo, hi) for d, lo, hi in
                                       zip(merged["mean_diff"], merged["ci_low"], merged["ci_high"])],
                                      NOT_ESTIMABLE),
        "P": cells([format_p(p) for p in merged["p_used"]]),
    })
    if "p_adj" in merged:
        body["Adjusted P"] = cells([format_p(p) for p in merged["p_adj"]])
    shown_effects = [c for c in EFFECT_SIZES if c in merged and merged[c].notna().any()]
    # One standardised effect per test family keeps the table printable: d_z (paired t) and
    # the rank-biserial r (Wilcoxon); Hedges g only where there is no d_z.
    if "dz" in shown_effects and "hedges_g" in shown_effects:
        shown_effects.remove("hedges_g")
    for column in shown_effects:
        body[EFFECT_SIZES[column]] = cells(_with_ci(merged, column, 2))
    with_pairs = merged[n_pairs > 0]
    # The tests that gave a P: an outcome without pairs was tested by none.
    tests = sorted(set(with_pairs["test_used"].dropna()))
    better_low = merged.loc[~merged["higher_is_better"].astype(bool), "label"].tolist()
    footnotes = []
    if len(results):
        first = results.iloc[0]
        footnotes.append(f"Before: {first['pre_visit']}; after: {first['post_visit']} assessment. "
                         f"Change = after - before, with its t-based {level} confidence interval.")
    if tests:
        footnotes.append(f"P values are two-sided, from the {' and '.join(tests)} test"
                         f"{'s' if len(tests) > 1 else ''} on the paired values.")
    if "p_adj" in with_pairs and "p_adj_method" in with_pairs:
        # p_adj_method says, per row, how that P was adjusted (e.g. "Holm over 19 secondary
        # outcomes", or "none (primary outcome)"): list each description once.
        methods = list(dict.fromkeys(with_pairs["p_adj_method"].dropna()))
        if methods:
            footnotes.append("Adjusted P: " + "; ".join(methods) + ".")
    if versions:
        footnotes.append("Scoring versions (docs/instruments.md): " + "; ".join(versions) + ".")
    if shown_effects:
        footnotes.append("Effect sizes: " + "; ".join(EFFECT_SIZE_NOTES[c] for c in shown_effects)
                         + (f"; with {level} CI." if any(f"{c}_ci_low" in merged for c in shown_effects)
                            else "."))
    if better_low:
        footnotes.append(f"Lower is better for {', '.join(better_low)}; higher is better otherwise.")
    unpaired = merged.loc[n_pairs == 0, "label"].tolist()
    if unpaired:
        footnotes.append(f"{_listed(unpaired)}: {NOT_ESTIMABLE} ({NO_VALUE}), no patient has both a before "
                         "and an after value (n pairs = 0).")
    # Why a statistic of an outcome with pairs is NaN (the outcomes without are named above).
    footnotes.extend(f"{label}: {note}" for label, note in zip(with_pairs["label"], with_pairs["note"]) if note)
    if synthetic:
        footnotes.append(SYNTHETIC_NOTE)
    return Table("Table 2. Outcomes before and after surgery", body, tuple(footnotes))


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# --------------------------------------------------------------------------- tidy tables of other analyses

# Column formatting for tidy results tables whose exact columns this module does not
# fix (subgroups, ANCOVA, model estimates, responders, reliability): known names get
# the house format, estimates with ci_low/ci_high become "x (low to high)".
HEADINGS = {
    "outcome": "Outcome", "score": "Score", "label": "Outcome", "subgroup": "Subgroup",
    "variable": "Variable", "level": "Level", "term": "Term", "visit": "Visit", "day": "Day",
    "rater": "Rater", "n": "n", "n_pairs": "n pairs", "n_subjects": "n patients",
    "responders": "Responders, No.", "threshold": "Threshold", "estimate": "Estimate",
    "mean_diff": "Mean change", "mean": "Mean", "icc": "ICC", "kappa": "κ",
    "p": "P", "p_value": "P", "p_interaction": "P for interaction", "p_adj": "Adjusted P",
    "percent": "%", "method": "Method", "model": "Model", "group": "Subgroup", "p_used": "P",
    "median_day": "Median day", "n_observed": "n observed", "n_responders": "Responders, No.",
    "proportion": "Proportion", "raters": "Raters", "description": "Statistic", "n_targets": "n rated",
}
ESTIMATE_COLUMNS = ("estimate", "mean_diff", "mean", "icc", "kappa", "difference", "bias", "proportion")
HIDDEN = {"study", "pre_visit", "post_visit", "note", "test_used", "wilcoxon_method"}


def tidy_table(frame: pd.DataFrame, title: str, *, footnotes: tuple[str, ...] = (),
               synthetic: bool = False, digits: int = 2) -> Table:
    """A generic publication table from a tidy results frame.

    P columns (``p``, ``p_value``, ``p_*``) in AMA style; counts as integers; an
    estimate column followed by ``ci_low``/``ci_high`` (or ``<name>_ci_low``/
    ``<name>_ci_high``) as "estimate (low to high)"; other numbers at ``digits``.
    """
    out = {}
    used = set()
    for column in frame.columns:
        if column in used or column in HIDDEN or column.endswith(("_ci_low", "_ci_high")) \
                or column in ("ci_low", "ci_high"):
            continue
        values = frame[column]
        heading = HEADINGS.get(column, column.replace("_", " ").capitalize())
        if column == "p" or column.startswith("p_"):
            out[heading] = [format_p(v) for v in values]
        elif column in ESTIMATE_COLUMNS or f"{column}_ci_low" in frame:
            low, high = ((f"{column}_ci_low", f"{column}_ci_high") if f"{column}_ci_low" in frame
                         else ("ci_low", "ci_high"))
            if low in frame and high in frame and low not in used:
                out[f"{heading} (95% CI)"] = [estimate_ci(v, lo, hi, digits) for v, lo, hi
                                              in zip(values, frame[low], frame[high])]
                used |= {low, high}
            else:
                out[heading] = [_number(v, digits) for v in values]
        elif pd.api.types.is_numeric_dtype(values) and (
                pd.api.types.is_integer_dtype(values) or column.startswith("n_") or column in ("n", "responders")):
            out[heading] = ["NA" if _missing(v) else str(int(v)) for v in values]
        elif pd.api.types.is_float_dtype(values):
            out[heading] = [_number(v, digits) for v in values]
        else:
            out[heading] = ["" if _missing(v) else str(v) for v in values]
    notes = list(footnotes) + ([SYNTHETIC_NOTE] if synthetic else [])
    return Table(title, pd.DataFrame(out), tuple(notes))


def flow_counts(source_files: pd.DataFrame, pairing_summary: pd.DataFrame,
                outcomes: pd.DataFrame) -> pd.DataFrame:
    """Patient flow per outcome (STROBE 13a), tidy and unrounded.

    Returns
    -------
    DataFrame
        One row per outcome: ``outcome``, ``score``, ``label``; ``records`` (rows
        read from the subjects file), ``excluded`` (rows quarantined),
        ``included`` (accepted patients); ``with_pre``, ``with_post`` (patients with
        a pre / post value for the outcome); ``analysed`` (both: paired);
        ``not_analysed`` (included - analysed).
    """
    subjects = source_files.iloc[0]
    merged = pairing_summary.merge(outcomes[["outcome", "score", "label"]], on=["outcome", "score"],
                                   how="left")
    return pd.DataFrame({
        "outcome": merged["outcome"], "score": merged["score"], "label": merged["label"],
        "records": int(subjects["rows_read"]), "excluded": int(subjects["rows_quarantined"]),
        "included": merged["subjects"].astype(int), "with_pre": merged["with_pre"].astype(int),
        "with_post": merged["with_post"].astype(int), "analysed": merged["paired"].astype(int),
        "not_analysed": (merged["subjects"] - merged["paired"]).astype(int),
    })


def flow_table(flow: pd.DataFrame, *, pre_label: str, post_label: str, subjects_file: str,
               synthetic: bool = False) -> Table:
    """eTable: patient flow and missing outcome data (STROBE 13a and 14b)."""
    digits = percent_digits(int(flow["included"].iloc[0]))
    body = pd.DataFrame({
        "Outcome": flow["label"],
        "Included": flow["included"].astype(str),
        "With a before value, No. (%)": [count_percent(a, n, digits) for a, n in zip(flow["with_pre"], flow["included"])],
        "With an after value, No. (%)": [count_percent(a, n, digits) for a, n in zip(flow["with_post"], flow["included"])],
        "Analysed (paired), No. (%)": [count_percent(a, n, digits) for a, n in zip(flow["analysed"], flow["included"])],
        "Not analysed, No.": flow["not_analysed"].astype(str),
    })
    first = flow.iloc[0]
    notes = [f"{first['records']} patient record(s) in {subjects_file}; {first['excluded']} excluded at "
             f"ingest (quarantined with a reason); {first['included']} included.",
             f"Before: {pre_label}; after: {post_label}. A patient is analysed for an outcome when "
             "both values exist; the others are the missing outcome data (complete-case analysis).",
             "Percentages are of the included patients."]
    if synthetic:
        notes.append(SYNTHETIC_NOTE)
    return Table("eTable. Patient flow and missing outcome data", body, tuple(notes))


def missing_table(tidy_table_1: pd.DataFrame, n_subjects: int, *, synthetic: bool = False) -> Table:
    """eTable: missing baseline data per characteristic (STROBE 14b)."""
    overall = tidy_table_1[tidy_table_1["group"] == OVERALL].drop_duplicates("variable")
    digits = percent_digits(n_subjects)
    body = pd.DataFrame({
        "Characteristic": [label.split(",")[0] for label in overall["label"]],
        "Recorded, No.": overall["n"].astype(int).astype(str).tolist(),
        "Missing, No. (%)": [count_percent(int(m), n_subjects, digits) for m in overall["missing"]],
    })
    notes = [f"Of {n_subjects} included patients."] + ([SYNTHETIC_NOTE] if synthetic else [])
    return Table("eTable. Missing baseline data", body, tuple(notes))


# --------------------------------------------------------------------------- renderers


def _letters(i: int) -> str:
    return chr(97 + i) if i < 26 else f"{chr(97 + i // 26 - 1)}{chr(97 + i % 26)}"


def _quoted(text: str, safe: str) -> bool:
    """Whether a CSV field must be enclosed in double quotes: it was neutralised (OWASP: prefix
    and quote, so an opener splitting at ";" keeps it one cell), or it holds a carriage return
    (a line break to Excel and to Python's csv module, which pandas leaves unquoted)."""
    return safe != text or "\r" in text


def _csv_text(frame: pd.DataFrame, **options) -> str:
    """``frame.to_csv(index=False, lineterminator="\\n", **options)`` with every text cell and
    heading neutralised (:func:`pipeline.render.cells.neutralise`) and quoted where :func:`_quoted`
    says. pandas still formats every value (numeric columns are never text here, so a float is
    never prefixed); a field to be quoted is marked with a character absent from the frame's
    text, and the marks become the quotes pandas would not write."""
    safe = frame.copy()
    quote = []  # (text, quoted) of every text cell and heading
    headings = [neutralise(c) if isinstance(c, str) else c for c in frame.columns]
    quote += [(c, _quoted(c, s)) for c, s in zip(frame.columns, headings) if isinstance(c, str)]
    text_columns = []
    for j in range(frame.shape[1]):
        values = frame.iloc[:, j]
        categorical = isinstance(values.dtype, pd.CategoricalDtype)
        if values.dtype == object or pd.api.types.is_string_dtype(values) or categorical:
            cells = [(v, neutralise(v)) if isinstance(v, str) else (v, v) for v in values]
            quote += [(v, _quoted(v, s)) for v, s in cells if isinstance(v, str)]
            # A neutralised label is no category of the old ones: categories are written as text.
            text_columns.append((j, object if categorical else values.dtype, cells))
    if not any(q for _, q in quote):
        # Nothing to quote: the common case, and pandas' bytes exactly.
        for j, dtype, cells in text_columns:
            safe.isetitem(j, pd.Series([s for _, s in cells], index=frame.index, dtype=dtype))
        safe.columns = headings
        return safe.to_csv(index=False, lineterminator="\n", **options)
    seen = set("".join(v for v, _ in quote))
    mark = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in seen)  # private use

    def marked(value, text):
        return f"{mark}{text}{mark}" if _quoted(value, text) else text

    for j, dtype, cells in text_columns:
        safe.isetitem(j, pd.Series([marked(v, s) if isinstance(v, str) else s for v, s in cells],
                                   index=frame.index, dtype=dtype))
    safe.columns = [marked(c, s) if isinstance(c, str) else s for c, s in zip(frame.columns, headings)]
    written = safe.to_csv(index=False, lineterminator="\n", **options)
    # pandas quoted a marked field that holds a comma or a quote (doubling its quotes); one
    # without them has no quote inside, so enclosing it is enough.
    return re.sub(f'"?{mark}(.*?){mark}"?', r'"\1"', written, flags=re.S)


def _csv_comment(note: str) -> str:
    """A footnote as a ``#`` line. A spreadsheet reads the line as cells cut at its commas too,
    and it cannot be quoted (readers skip it as a comment only when it starts with ``#``): each
    piece that would start a formula in a cell of its own gets its quote."""
    return neutralise(f"# {note}", splits="," + SPLITS)


def to_csv(table: Table) -> str:
    """Cells (indented levels with two spaces), then footnotes as ``#`` lines; cells and
    footnotes neutralised against spreadsheet formulas (:func:`_csv_text`, :func:`_csv_comment`)."""
    body = table.body.copy()
    first = body.columns[0]
    body[first] = ["  " * table.indent_of(i) + str(v) for i, v in enumerate(body[first])]
    return _csv_text(body) + "".join(f"{_csv_comment(n)}\n" for n in table.footnotes)


def to_markdown(table: Table) -> str:
    body = table.body.copy()
    first = body.columns[0]
    # Markdown drops leading spaces; non-breaking spaces keep the level indentation.
    body[first] = ["\u00a0\u00a0\u00a0" * table.indent_of(i) + str(v) for i, v in enumerate(body[first])]
    # Cells as written, indentation included, neutralised against spreadsheet formulas; a bar
    # inside a cell would end the cell.
    body = body.map(lambda v: neutralise(str(v)).replace("|", "\\|"))
    body.columns = [neutralise(str(c)).replace("|", "\\|") for c in body.columns]
    # tabulate strips leading whitespace, non-breaking spaces included, unless told not to.
    grid = body.to_markdown(index=False, disable_numparse=True, preserve_whitespace=True)
    lines = [f"**{table.title}**", "", grid, ""]
    lines += [f"{_letters(i)}. {note}" for i, note in enumerate(table.footnotes)]
    return "\n".join(lines) + "\n"


def to_html(table: Table, *, standalone: bool = False) -> str:
    """An HTML ``<table>`` with caption and footnotes; a whole page when ``standalone``."""
    e = html.escape

    def cell(value) -> str:
        # Excel opens HTML tables, and a cell copied from the page into it is evaluated.
        return e(neutralise(str(value)))

    head = "".join(f'<th scope="col">{cell(c)}</th>' for c in table.body.columns)
    rows = []
    for i, values in enumerate(table.body.itertuples(index=False)):
        pad = f' style="padding-left:{1.2 * table.indent_of(i):.1f}em"' if table.indent_of(i) else ""
        cells = [f'<th scope="row"{pad}>{cell(values[0])}</th>']
        cells += [f"<td>{cell(v)}</td>" for v in values[1:]]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f"<li><sup>{_letters(i)}</sup> {e(n)}</li>" for i, n in enumerate(table.footnotes))
    fragment = (f'<table class="publication">\n<caption>{e(table.title)}</caption>\n'
                f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"
                + (f'<ol class="footnotes">{notes}</ol>\n' if notes else ""))
    if not standalone:
        return fragment
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(table.title)}</title><style>{TABLE_CSS}</style></head>\n<body>\n"
            + fragment + "</body></html>\n")


TABLE_CSS = (
    "table.publication{border-collapse:collapse;font:10pt/1.35 'DejaVu Sans',Arial,sans-serif;margin:1em 0}"
    "table.publication caption{text-align:left;font-weight:bold;padding-bottom:.4em}"
    "table.publication thead th{border-top:1.5px solid #000;border-bottom:1px solid #000;text-align:center}"
    "table.publication th,table.publication td{padding:.15em .6em;vertical-align:top}"
    "table.publication tbody th{text-align:left;font-weight:normal}"
    "table.publication td{text-align:center}"
    "table.publication tbody tr:last-child>*{border-bottom:1.5px solid #000}"
    "ol.footnotes{list-style:none;padding:0;font-size:9pt;max-width:60em}"
)

_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
          "<": r"\textless{}", ">": r"\textgreater{}", "±": r"$\pm$", "≥": r"$\geq$", "≤": r"$\leq$",
          "χ": r"$\chi$", "κ": r"$\kappa$", "\u00a0": "~"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in str(text))


def _latex_cell(value) -> str:
    # Neutralised before escaping: a table copied out of the PDF into a spreadsheet is evaluated.
    return latex_escape(neutralise(str(value)))


def to_latex(table: Table) -> str:
    """A ``table`` float with a booktabs ``tabular``; needs ``\\usepackage{booktabs}``."""
    cols = "l" + "c" * (len(table.body.columns) - 1)
    lines = ["% Requires \\usepackage{booktabs} in the preamble.", "\\begin{table}[htbp]", "\\centering",
             f"\\caption{{{latex_escape(table.title)}}}", f"\\begin{{tabular}}{{{cols}}}", "\\toprule",
             " & ".join(_latex_cell(c) for c in table.body.columns) + " \\\\", "\\midrule"]
    for i, values in enumerate(table.body.itertuples(index=False)):
        first = "\\quad " * table.indent_of(i) + _latex_cell(values[0])
        lines.append(" & ".join([first] + [_latex_cell(v) for v in values[1:]]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if table.footnotes:
        lines += ["\\par\\smallskip", "\\begin{minipage}{\\linewidth}\\footnotesize"]
        lines += [f"\\textsuperscript{{{_letters(i)}}}~{latex_escape(n)}\\par" for i, n in enumerate(table.footnotes)]
        lines += ["\\end{minipage}"]
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


# A fixed moment for the DOCX core properties and zip entries: Word files carry a
# creation time and every zip member a modification time; fixing both keeps the
# bytes identical across runs.
FIXED_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _border(cell_or_table_pr, edges: dict[str, str]) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    borders = OxmlElement("w:tblBorders" if cell_or_table_pr.tag.endswith("tblPr") else "w:tcBorders")
    for edge, size in edges.items():
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "single" if size != "0" else "nil")
        element.set(qn("w:sz"), size)
        element.set(qn("w:space"), "0")
        element.set(qn("w:color"), "000000")
        borders.append(element)
    cell_or_table_pr.append(borders)


def fill_docx_cell(cell, text: str, font_pt: float, *, bold: bool = False, indent: int = 0,
                   center: bool = False) -> None:
    """Write ``text`` into a Word table cell through python-docx: ``font_pt`` type, no space
    after, indented 10 pt per ``indent`` level, centred if asked. :func:`add_docx_table` writes
    the same XML itself, far faster, for all text without tabs or line breaks."""
    from docx.shared import Pt

    paragraph = cell.paragraphs[0]
    run = paragraph.add_run(text)
    run.font.size = Pt(font_pt)
    if bold:  # not bold is the style's default: no element needed
        run.bold = True
    paragraph.paragraph_format.space_after = Pt(0)
    if indent:
        paragraph.paragraph_format.left_indent = Pt(10 * indent)
    if center:
        paragraph.alignment = 1


def add_docx_table(document, table: Table, *, font_pt: float = 9) -> None:
    """Append ``table`` to a python-docx Document: title, a real Word table, lettered notes."""
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.shared import Pt

    title = document.add_paragraph()
    title.add_run(table.title).bold = True
    body = table.body
    word = document.add_table(rows=len(body) + 1, cols=len(body.columns))
    word.alignment = WD_TABLE_ALIGNMENT.CENTER
    # Journal style: rules above and below the header and at the bottom, none inside.
    _border(word._tbl.tblPr, {"top": "12", "bottom": "12", "left": "0", "right": "0",
                              "insideH": "0", "insideV": "0"})

    from docx.oxml.ns import qn
    from lxml.etree import SubElement

    half_points = str(round(font_pt * 2))

    def fill(cell, text: str, *, bold: bool = False, indent: int = 0, center: bool = False) -> None:
        # The cell's paragraph built as the XML fill_docx_cell gets from python-docx (a Word
        # table has thousands of cells, and those calls were most of the time spent on one).
        # Tabs and line breaks become elements of their own, which only python-docx does here.
        if "\t" in text or "\n" in text or "\r" in text:
            return fill_docx_cell(cell, text, font_pt, bold=bold, indent=indent, center=center)
        p = cell._tc.p_lst[0]
        properties = SubElement(p, qn("w:pPr"))
        SubElement(properties, qn("w:spacing")).set(qn("w:after"), "0")
        if indent:
            SubElement(properties, qn("w:ind")).set(qn("w:left"), str(200 * indent))  # 10 pt = 200 twips
        if center:
            SubElement(properties, qn("w:jc")).set(qn("w:val"), "center")
        run = SubElement(p, qn("w:r"))
        font = SubElement(run, qn("w:rPr"))
        if bold:
            SubElement(font, qn("w:b"))
        SubElement(font, qn("w:sz")).set(qn("w:val"), half_points)
        if text:
            t = SubElement(run, qn("w:t"))
            t.text = text
            if len(text.strip()) < len(text):
                t.set(qn("xml:space"), "preserve")

    # Each row's cells fetched once: python-docx rebuilds the row's cell list on every access.
    rows = [row.cells for row in word.rows]
    # Word evaluates no formula in a text run, but a table pasted from Word into Excel is
    # evaluated cell by cell: every cell neutralised.
    for j, column in enumerate(body.columns):
        cell = rows[0][j]
        fill(cell, neutralise(str(column)), bold=True, center=j > 0)
        _border(cell._tc.get_or_add_tcPr(), {"bottom": "6"})
    for i, values in enumerate(body.itertuples(index=False)):
        for j, value in enumerate(values):
            fill(rows[i + 1][j], neutralise(str(value)), indent=table.indent_of(i) if j == 0 else 0,
                 center=j > 0)
    for i, note in enumerate(table.footnotes):
        paragraph = document.add_paragraph()
        mark = paragraph.add_run(_letters(i))
        mark.font.superscript, mark.font.size = True, Pt(font_pt - 1)
        paragraph.add_run(" " + note).font.size = Pt(font_pt - 1)
        paragraph.paragraph_format.space_after = Pt(0)


def new_docx():
    """An empty Word document with fixed core properties (no author, no run time)."""
    import docx

    document = docx.Document()
    props = document.core_properties
    props.author = props.last_modified_by = ""
    props.created = props.modified = props.last_printed = FIXED_TIME
    props.revision = 1
    return document


def save_docx(document, path: Path) -> Path:
    """Save with every zip member dated ``FIXED_TIME``, so equal content gives equal bytes."""
    buffer = io.BytesIO()
    document.save(buffer)
    buffer.seek(0)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(info.filename))
    path.write_bytes(out.getvalue())
    return path


def to_docx(table: Table, path: Path) -> Path:
    document = new_docx()
    add_docx_table(document, table)
    return save_docx(document, path)


def write_table(table: Table, folder: Path, stem: str, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write ``<stem>.csv`` (cells, then footnotes as ``#`` lines), ``.md``, ``.html``,
    ``.tex`` and ``.docx``; return the paths in that order."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for ext in formats:
        path = folder / f"{stem}.{ext}"
        if ext == "csv":
            path.write_text(to_csv(table), encoding="utf-8")
        elif ext == "md":
            path.write_text(to_markdown(table), encoding="utf-8")
        elif ext == "html":
            path.write_text(to_html(table, standalone=True), encoding="utf-8")
        elif ext == "tex":
            path.write_text(to_latex(table), encoding="utf-8")
        elif ext == "docx":
            to_docx(table, path)
        else:
            raise ValueError(f"unknown table format {ext!r}; use one of {', '.join(FORMATS)}")
        written.append(path)
    return written


def write_results(results: pd.DataFrame, folder: Path, stem: str) -> Path:
    """Write a tidy results table as CSV at full double precision (17 significant digits);
    text cells (labels, subgroup levels, notes) neutralised against spreadsheet formulas,
    numeric columns written by pandas as they are (:func:`_csv_text`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.csv"
    path.write_text(_csv_text(results, float_format="%.17g"), encoding="utf-8", newline="")  # as pandas wrote it
    return path


# --------------------------------------------------------------------------- a study's tables

# Tidy tables of the secondary analyses that, when the warehouse has them, become Table 3
# and eTables: (warehouse table, file stem, title, columns shown in order, row filter).
# Rows are limited to each instrument's headline outcome where a table has one row per
# outcome and level, so the tables stay printable; the CSVs in tables/ hold every row.
OPTIONAL_TABLES = (
    ("paired_tests_subgroups", "table_3_subgroups", "Table 3. Change by subgroup (exploratory)",
     ("label", "group", "n_pairs", "mean_diff", "ci_low", "ci_high", "p_used", "p_adj"), "headline"),
    ("between_groups", "table_3_ancova",
     "Table 3 (continued). Difference in change between subgroups, ANCOVA adjusted for the baseline value",
     ("label", "subgroup", "n", "estimate", "ci_low", "ci_high", "p", "method"), "ancova"),
    ("visit_estimates", "etable_visit_estimates", "eTable. Model-estimated means per visit",
     ("label", "visit", "median_day", "n_observed", "estimate", "ci_low", "ci_high"), "headline"),
    ("responders", "etable_responders",
     "eTable. Responders: improvement of at least the minimal important change",
     ("label", "threshold", "n_pairs", "n_responders", "proportion", "ci_low", "ci_high"), ""),
    ("reliability", "etable_reliability", "eTable. Agreement between raters",
     ("instrument", "score", "raters", "description", "estimate", "ci_low", "ci_high", "n_targets"), ""),
)


def _warehouse_table(con, schema: str, table: str) -> pd.DataFrame | None:
    from pipeline.warehouse import read_frame, scalar

    if not scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                  [schema, table]):
        return None
    frame = read_frame(con, f"SELECT * FROM {schema}.{table}")
    return None if frame.empty else frame


def table_1_grouping(study, subjects: pd.DataFrame) -> str:
    """The Table 1 column grouping: the plan's first categorical subgroup, else etiology, else none."""
    for subgroup in getattr(study.analysis, "subgroups", ()):
        if not getattr(subgroup, "split", "") and subgroup.column in subjects:
            return subgroup.column
    return "etiology" if "etiology" in subjects else ""


def publication_tables(con, study) -> list[tuple[str, Table]]:
    """Every table the warehouse has data for, as (file stem, Table), Table 2 first.

    Table 2 and Table 1 (overall, and by :func:`table_1_grouping` when there is one)
    always; the patient-flow and missing-data eTables; Table 3 and the other eTables
    only when their tidy tables (:data:`OPTIONAL_TABLES`) exist.
    """
    from pipeline.pairing import outcomes_frame
    from pipeline.warehouse import read_frame

    s, synthetic = study.name, study.synthetic
    planned = outcomes_frame(study)
    results = read_frame(con, f"SELECT * FROM {s}.paired_tests WHERE \"group\" = 'all'")
    out = [("table_2", table_2(results, planned, conf_level=study.analysis.conf_level, synthetic=synthetic))]

    # Free text is kept in the warehouse for the study team, never reported.
    subjects = read_frame(con, f"SELECT * FROM {s}.subjects").drop(columns=[c for c, _ in study.free_text])
    visits = read_frame(con, f"SELECT subject, day FROM {s}.visits")
    follow_up = follow_up_months(visits)
    by = table_1_grouping(study, subjects)
    grouped = subjects
    if by:
        # The column groups are subgroup levels: too small ones pooled or left out.
        from pipeline.statistics.small_cells import pool_small_levels

        grouped = subjects.assign(**{by: pool_small_levels(
            subjects[by].astype("string").str.strip().replace("", pd.NA), by, study.min_cell)})
    tidy = baseline_characteristics(grouped, follow_up, by=by or None)
    known = {v.name: v for v in BASELINE_VARIABLES}
    sizes = {OVERALL: len(subjects)}
    if by:
        sizes.update(grouped[by].value_counts().to_dict())
    by_label = known[by].label.lower() if by in known else by.replace("_", " ")
    left_out = int((grouped[by].isna() & subjects[by].astype("string").str.strip().replace("", pd.NA).notna()
                    ).sum()) if by else 0
    notes = (f"{left_out} patient{'s' if left_out != 1 else ''} in {by_label} groups of fewer than "
             f"{study.min_cell} patients {'are' if left_out != 1 else 'is'} counted in the Overall column only "
             "(small cells are not reported).",) if left_out else ()
    out.append(("table_1", table_1(tidy, sizes, by_label=by_label,
                                   group_labels=dict(known[by].levels) if by in known else None,
                                   synthetic=synthetic, notes=notes)))

    def optional(entries):
        headline = planned.drop_duplicates(["instrument", "rater"])[["outcome", "score"]]
        for table, stem, title, columns, rows in entries:
            frame = _warehouse_table(con, s, table)
            if frame is None:
                continue
            if {"outcome", "score"} <= set(frame.columns):
                frame = frame.merge(planned[["outcome", "score", "label"]], on=["outcome", "score"], how="left")
                if rows in ("headline", "ancova"):
                    frame = frame.merge(headline, on=["outcome", "score"])
            if rows == "ancova" and "test" in frame:
                frame = frame[frame["test"] == "ANCOVA"]
            frame = frame[[c for c in columns if c in frame]]
            if len(frame):
                out.append((stem, tidy_table(frame.reset_index(drop=True), title, synthetic=synthetic)))

    optional(OPTIONAL_TABLES[:2])
    summary = read_frame(con, f"SELECT * FROM {s}.pairing_summary")
    source = read_frame(con, f"SELECT * FROM {s}.source_files WHERE file = ?", [study.subjects_path.name])
    if len(summary) and len(source):
        flow = flow_counts(source, summary, planned)
        out.append(("etable_flow", flow_table(flow, pre_label=study.analysis.pre_label,
                                              post_label=study.analysis.post_label,
                                              subjects_file=study.subjects_path.name, synthetic=synthetic)))
    overall = tidy if not by else baseline_characteristics(subjects, follow_up)
    out.append(("etable_missing", missing_table(overall, len(subjects), synthetic=synthetic)))
    optional(OPTIONAL_TABLES[2:])
    # Number the eTables in the order they appear.
    numbered, e = [], 0
    for stem, t in out:
        if t.title.startswith("eTable."):
            e += 1
            t = Table(t.title.replace("eTable.", f"eTable {e}.", 1), t.body, t.footnotes, t.indent)
        numbered.append((stem, t))
    return numbered
