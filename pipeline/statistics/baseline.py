"""Baseline characteristics (Table 1): what each variable is, and its summaries by group.

Plain functions on the subjects and visits frames that return tidy, unrounded results;
:func:`pipeline.render.tables.table_1` formats them. Which variables Table 1 shows and how
each is summarised (:data:`BASELINE_VARIABLES`, :func:`table_1_variables`), follow-up
(:func:`follow_up_months`), values top-coded as ``"90+"`` (:func:`parse_numbers`), and the
group comparison P of each variable (:func:`group_p`, checked against R).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "BASELINE_VARIABLES",
    "FOLLOW_UP",
    "NOT_BASELINE",
    "OVERALL",
    "Variable",
    "baseline_characteristics",
    "follow_up_months",
    "group_p",
    "infer_variable",
    "parse_numbers",
    "recorded_decimals",
    "table_1_variables",
]

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
class Variable:
    """One Table 1 row group.

    ``kind``: ``continuous`` (a number per patient), ``categorical`` (one row
    per level) or ``binary`` (0/1, one row: patients with 1). ``levels`` maps raw
    values to labels in display order; ``statistic`` forces ``mean_sd`` or
    ``median_iqr`` (empty: the skewness rule). ``digits``: the decimals of a
    variable not recorded as text (derived, such as follow-up); a recorded one's
    are read from its values (:func:`recorded_decimals`).
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
    Variable(
        "etiology",
        "Etiology",
        "categorical",
        (
            ("bells_palsy", "Bell palsy"),
            ("ramsay_hunt", "Ramsay Hunt syndrome"),
            ("acoustic_neuroma", "Acoustic neuroma"),
            ("trauma", "Trauma"),
            ("iatrogenic", "Iatrogenic"),
            ("other", "Other"),
        ),
    ),
    Variable("months_since_onset", "Time since onset, mo", "continuous"),
    Variable("prior_botox", "Prior botulinum toxin", "binary"),
    Variable("facelift", "Concurrent facelift", "binary"),
    Variable("cross_facial_nerve_graft", "Concurrent cross-facial nerve graft", "binary"),
    Variable("nerve_rerouting", "Concurrent nerve rerouting", "binary"),
    Variable("end_to_side", "Concurrent end-to-side nerve transfer", "binary"),
    Variable("branches_transected", "Branches transected, No.", "continuous"),
)
# Follow-up as the index study reports it: median [IQR], and mean (range) beside it; months
# from whole days, to one decimal (0.1 month is 3 days).
FOLLOW_UP = Variable("follow_up_months", "Follow-up, mo", "continuous", statistic="median_iqr")
# Not baseline: the year is a recruitment date (reported in Methods), and these
# are postoperative events, reported with the outcomes.
NOT_BASELINE = frozenset({"surgery_year", "oral_incompetence", "revision"})

OVERALL = "Overall"


def parse_numbers(values: pd.Series, column: str) -> tuple[pd.Series, pd.Series]:
    """Numbers from text cells; ``"90+"`` counts as 90 and is flagged as top-coded.

    Parameters
    ----------
    values : Series
        The cells as text (empty: unknown).
    column : str
        The subjects column, named in the error.

    Returns
    -------
    tuple of (Series, Series)
        The numbers (NaN where empty) and a boolean Series of top-coded cells.

    Raises
    ------
    ValueError
        Naming the column and the first value that is not a number.
    """
    text = values.astype("string").str.strip()
    top = text.str.match(TOP_CODED.pattern).fillna(False).astype(bool)
    cleaned = text.where(~top, text.str.replace("+", "", regex=False))
    numbers = pd.to_numeric(cleaned.replace("", pd.NA), errors="coerce").astype(float)
    bad = numbers.isna() & cleaned.replace("", pd.NA).notna()
    if bad.any():
        first = values[bad].iloc[0]
        raise ValueError(
            f"subjects column '{column}': {first!r} is not a number "
            f"({int(bad.sum())} such value(s)); correct it in the subjects file "
            "or leave the cell empty when unknown."
        )
    return numbers, top


#: The most decimals :func:`recorded_decimals` reports (beyond, a value is measured finer than a
#: table needs).
MAX_DECIMALS = 3


def recorded_decimals(values: pd.Series) -> int:
    """The decimals a continuous variable is recorded with: the most digits after the decimal
    point among its text values ("55" -> 0, "38.5" -> 1, "90+" -> 0), at most
    :data:`MAX_DECIMALS`; 0 when there is no value.

    Table 1 writes medians, quartiles and ranges at these decimals and means and SDs at one
    more, so a summary claims no more precision than the data have (integer ages: median [IQR]
    without decimals, mean ± SD to one decimal).
    """
    text = values.astype("string").str.strip().replace("", pd.NA).dropna()
    text = text.str.replace(TOP_CODED.pattern, r"\1", regex=True)
    after = text.str.extract(r"\.(\d*)$", expand=False).fillna("")
    return min(int(after.str.len().max()) if len(after) else 0, MAX_DECIMALS)


def infer_variable(name: str, values: pd.Series) -> Variable:
    """A variable the catalogue does not know, its kind taken from its values.

    Parameters
    ----------
    name : str
        The subjects column.
    values : Series
        Its cells as text.

    Returns
    -------
    Variable
        ``binary`` when every value is 0 or 1, ``continuous`` when every value is a number
        (``"90+"`` included), otherwise ``categorical`` with the values as levels, sorted.
    """
    text = values.astype("string").str.strip().replace("", pd.NA).dropna()
    as_number = pd.to_numeric(
        text.str.replace(TOP_CODED.pattern, r"\1", regex=True), errors="coerce"
    )
    label = name.replace("_", " ").capitalize()
    if len(text) and as_number.notna().all():
        if set(as_number.unique()) <= {0.0, 1.0}:
            return Variable(name, label, "binary")
        return Variable(name, label, "continuous")
    levels = tuple((v, v) for v in sorted(text.unique()))
    return Variable(name, label, "categorical", levels)


def table_1_variables(subjects: pd.DataFrame) -> list[Variable]:
    """The Table 1 variables for these subject columns.

    Parameters
    ----------
    subjects : DataFrame
        ``subject`` and the baseline columns.

    Returns
    -------
    list of Variable
        The catalogue's (:data:`BASELINE_VARIABLES`) in its order, then every other column
        except :data:`NOT_BASELINE` ones, inferred by :func:`infer_variable`.
    """
    known = {v.name: v for v in BASELINE_VARIABLES}
    chosen = [v for v in BASELINE_VARIABLES if v.name in subjects.columns]
    for column in subjects.columns:
        if column not in known and column not in NOT_BASELINE and column != "subject":
            chosen.append(infer_variable(column, subjects[column]))
    return chosen


def follow_up_months(visits: pd.DataFrame) -> pd.Series:
    """Months from surgery to each subject's last visit after surgery (day > 0).

    Parameters
    ----------
    visits : DataFrame
        ``subject`` and ``day`` (relative to surgery) of every visit.

    Returns
    -------
    Series
        Indexed by subject: the last postoperative day divided by :data:`DAYS_PER_MONTH`.
        A subject with no postoperative visit is absent (no follow-up, not zero).
    """
    after = visits[visits["day"].astype(float) > 0]
    return after.groupby("subject")["day"].max().astype(float) / DAYS_PER_MONTH


def _skewness(values: np.ndarray) -> float:
    if len(values) < 3 or np.all(values == values[0]):
        return 0.0
    return float(stats.skew(values, bias=False))


def _skewed(values: np.ndarray) -> bool:
    return abs(_skewness(values)) > SKEWNESS_LIMIT


def group_p(
    kind: str, statistic: str, samples: list[np.ndarray] | None, table: np.ndarray | None
) -> tuple[float, str]:
    """The P value comparing the groups on one variable, and the test's name.

    Parameters
    ----------
    kind : str
        ``continuous``, or anything else for counts.
    statistic : str
        For a continuous variable: ``mean_sd`` (one-way ANOVA, R ``oneway.test(var.equal =
        TRUE)``) or ``median_iqr`` (Kruskal-Wallis, R ``kruskal.test``).
    samples : list of ndarray, optional
        A continuous variable's values, one array per group.
    table : ndarray, optional
        Counts, one row per group and one column per level.

    Returns
    -------
    tuple of (float, str)
        P and the test's name; NaN and an empty name when there is nothing to compare.

    Notes
    -----
    Counts are compared with the Pearson χ2 test without continuity correction when every
    expected count is at least 5, otherwise with the Fisher exact test for a 2 × 2 table and
    by a Monte Carlo P over 9999 tables with the same margins (seeded) for larger ones, as R's
    ``chisq.test(simulate.p.value = TRUE, B = 9999)``.
    """
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
        p = stats.chi2_contingency(table, correction=False).pvalue
        return float(p), "Pearson χ2 test"
    if table.shape == (2, 2):
        # R: fisher.test(table)
        return float(stats.fisher_exact(table).pvalue), "Fisher exact test"
    # Small expected counts in a larger table: the χ2 statistic's P by Monte Carlo over
    # tables with the same margins, as R's chisq.test(simulate.p.value = TRUE, B = 9999).
    method = stats.MonteCarloMethod(
        n_resamples=MONTE_CARLO_RESAMPLES, rng=np.random.default_rng(MONTE_CARLO_SEED)
    )
    p = stats.chi2_contingency(table, correction=False, method=method).pvalue
    return float(p), f"Pearson χ2 test with Monte Carlo P ({MONTE_CARLO_RESAMPLES} tables)"


def baseline_characteristics(
    subjects: pd.DataFrame,
    follow_up: pd.Series | None = None,
    *,
    by: str | None = None,
    variables: list[Variable] | None = None,
    compare: bool = True,
) -> pd.DataFrame:
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
        ``decimals`` (a continuous variable's recorded decimals,
        :func:`recorded_decimals`, or its ``digits`` when derived; 0 otherwise);
        ``p_value`` and ``test`` (same on every row of a variable; NaN / empty
        without ``by``; :func:`group_p`).

    Raises
    ------
    ValueError
        A continuous column holding text, or a binary one holding a value other than 0 or 1.

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
                decimals = recorded_decimals(raw)
            else:
                numbers, top = raw.astype(float), pd.Series(False, index=raw.index)
                decimals = var.digits
            statistic = var.statistic or (
                "median_iqr" if top.any() or _skewed(numbers.dropna().to_numpy()) else "mean_sd"
            )
            samples = []
            for group, members in groups:
                values = numbers[members].dropna().to_numpy()
                if group != OVERALL:
                    samples.append(values)
                q1, median, q3 = (
                    np.quantile(values, [0.25, 0.5, 0.75]) if len(values) else (math.nan,) * 3
                )
                rows.append(
                    {
                        "variable": var.name,
                        "label": var.label,
                        "kind": var.kind,
                        "statistic": statistic,
                        "level": "",
                        "level_label": "",
                        "group": group,
                        "n": len(values),
                        "missing": int(members.sum()) - len(values),
                        "count": math.nan,
                        "percent": math.nan,
                        "mean": float(np.mean(values)) if len(values) else math.nan,
                        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
                        "median": median,
                        "q1": q1,
                        "q3": q3,
                        "minimum": float(values.min()) if len(values) else math.nan,
                        "maximum": float(values.max()) if len(values) else math.nan,
                        "top_coded": int(top[members].sum()),
                        "decimals": decimals,
                    }
                )
            p, test = (
                group_p("continuous", statistic, samples, None)
                if by and compare
                else (math.nan, "")
            )
        else:
            text = raw.astype("string").str.strip().replace("", pd.NA)
            if var.kind == "binary":
                bad = text.dropna()[~text.dropna().isin(["0", "1"])]
                if len(bad):
                    raise ValueError(
                        f"subjects column '{var.name}': {bad.iloc[0]!r} is not 0 or "
                        "1; record 1 for yes, 0 for no, or leave the cell empty when "
                        "unknown."
                    )
                levels = [("0", "No"), ("1", "Yes")]
            else:
                listed = [lv for lv in var.levels if (text == lv[0]).any()]
                others = sorted(set(text.dropna()) - {raw for raw, _ in listed})
                levels = listed + [(v, v) for v in others]
            shown = [("1", "")] if var.kind == "binary" else levels
            counts = (
                np.array(
                    [
                        [int(((text == lv) & members).sum()) for lv, _ in levels]
                        for group, members in groups[1:]
                    ]
                )
                if by
                else None
            )
            for group, members in groups:
                n = int((text.notna() & members).sum())
                for level, level_label in shown:
                    count = int(((text == level) & members).sum())
                    rows.append(
                        {
                            "variable": var.name,
                            "label": var.label,
                            "kind": var.kind,
                            "statistic": "n_percent",
                            "level": level,
                            "level_label": level_label,
                            "group": group,
                            "n": n,
                            "missing": int(members.sum()) - n,
                            "count": count,
                            "percent": 100 * count / n if n else math.nan,
                            "mean": math.nan,
                            "sd": math.nan,
                            "median": math.nan,
                            "q1": math.nan,
                            "q3": math.nan,
                            "minimum": math.nan,
                            "maximum": math.nan,
                            "top_coded": 0,
                            "decimals": 0,
                        }
                    )
            p, test = group_p("categorical", "", None, counts) if by and compare else (math.nan, "")
        for row in rows:
            if row["variable"] == var.name:
                row["p_value"], row["test"] = p, test
    return pd.DataFrame(rows)
