"""Paired pre/post comparisons: paired t-test and Wilcoxon signed-rank test.

Both tests work on the within-subject differences ``d = post - pre`` and are
written to reproduce R's ``t.test(post, pre, paired = TRUE)`` and
``wilcox.test(post, pre, paired = TRUE)`` (default arguments, R >= 4.0) to
full double precision; ``tests/fixtures/r/paired_tests.R`` generates the
reference values. Where R stops with an error (too few pairs, constant
differences) these functions return NaN plus a ``note`` in words instead, so
one degenerate outcome never stops a whole results table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Union

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "PairedTResult",
    "WilcoxonResult",
    "paired_t",
    "wilcoxon_signed_rank",
    "paired_tests",
    "COLUMNS",
]

EXACT = "exact"
NORMAL_CC = "normal approximation with continuity correction"
NOT_COMPUTED = "not computed"

# R's default switch: exact p-values only below this many non-zero differences.
_EXACT_MAX_N = 50

_NAN = float("nan")

#: Output columns of :func:`paired_tests`, in order.
COLUMNS = [
    "outcome", "score", "group", "pre_visit", "post_visit", "n_pairs",
    "pre_mean", "pre_sd", "post_mean", "post_sd", "mean_diff", "sd_diff",
    "ci_low", "ci_high", "t", "df", "p_t", "wilcoxon_v", "p_wilcoxon",
    "wilcoxon_method", "test_used", "p_used", "note",
]

_TEST_LABELS = {"wilcoxon": "Wilcoxon signed-rank", "t": "paired t"}


@dataclass(frozen=True)
class PairedTResult:
    """Result of :func:`paired_t` (see there for the meaning of each field)."""

    n: int
    mean_diff: float
    sd_diff: float
    ci_low: float
    ci_high: float
    t: float
    df: float
    p: float
    note: str = ""


@dataclass(frozen=True)
class WilcoxonResult:
    """Result of :func:`wilcoxon_signed_rank` (fields explained there)."""

    v: float
    p: float
    method: str
    n_used: int
    note: str = ""


def _differences(pre, post) -> np.ndarray:
    """``post - pre`` over complete pairs (R: ``complete.cases(x, y)``)."""
    pre = np.asarray(pre, dtype=float).ravel()
    post = np.asarray(post, dtype=float).ravel()
    if pre.shape != post.shape:
        raise ValueError(f"pre and post differ in length ({pre.size} vs {post.size})")
    ok = ~(np.isnan(pre) | np.isnan(post))
    return post[ok] - pre[ok]


def paired_t(pre, post, conf_level: float = 0.95) -> PairedTResult:
    """Paired t-test of the mean difference ``post - pre`` against zero.

    Parameters
    ----------
    pre, post : array-like of float
        Values of the same subjects before and after, aligned by position.
        Pairs with a missing value on either side are dropped.
    conf_level : float, default 0.95
        Coverage of the two-sided confidence interval, in (0, 1).

    Returns
    -------
    PairedTResult
        Frozen dataclass with fields

        - ``n``: number of complete pairs.
        - ``mean_diff``: mean of ``d = post - pre`` (NaN if ``n == 0``).
        - ``sd_diff``: sample standard deviation of ``d`` (denominator
          ``n - 1``; NaN if ``n < 2``).
        - ``ci_low``, ``ci_high``: t-based confidence interval of the mean
          difference.
        - ``t``: t statistic; ``df``: degrees of freedom ``n - 1``.
        - ``p``: two-sided p-value.
        - ``note``: "" or, when a statistic is NaN, the reason in words.

    Notes
    -----
    With ``se = sqrt(var(d) / n)``: ``t = mean(d) / se``, ``df = n - 1``,
    ``p = 2 * P(T_df <= -|t|)`` and the interval is
    ``(t -/+ q) * se`` with ``q`` the ``1 - (1 - conf_level) / 2`` quantile of
    ``T_df`` -- the same arithmetic as R's ``t.test.default``, so results
    agree with ``t.test(post, pre, paired = TRUE)`` to rounding error.
    Assumes independent subjects and approximately normal differences (or
    enough pairs for the central limit theorem).

    Undefined cases return NaN and a note instead of raising:

    - fewer than 2 pairs (R: error "not enough 'x' observations");
    - all differences zero: ``t = 0 / 0`` (R returns t, p and the interval as
      NaN, with ``df = n - 1``);
    - constant non-zero differences, detected with R's rule
      ``se < 10 * machine_eps * |mean(d)|`` (R: error "data are essentially
      constant"); ``df`` is still reported.

    References
    ----------
    .. [1] Student (1908). The probable error of a mean. Biometrika 6(1), 1-25.
    .. [2] R Core Team. ``t.test`` (package stats), R documentation.
    """
    if not 0 < conf_level < 1:
        raise ValueError("conf_level must be between 0 and 1")
    d = _differences(pre, post)
    n = int(d.size)
    if n == 0:
        return PairedTResult(0, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN,
                             "no complete pairs: t-test undefined")
    mean = float(np.mean(d))
    if n < 2:
        return PairedTResult(n, mean, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN,
                             "fewer than 2 pairs: SD and t-test undefined "
                             "(R: not enough 'x' observations)")
    var = float(np.var(d, ddof=1))
    sd = math.sqrt(var)
    df = float(n - 1)
    se = math.sqrt(var / n)  # R's formula (not sd / sqrt(n)) to share rounding
    if np.all(d == 0):
        return PairedTResult(n, mean, sd, _NAN, _NAN, _NAN, df, _NAN,
                             "all differences zero: t-test undefined "
                             "(0/0; R returns t = NaN, p = NaN)")
    if se < 10 * np.finfo(float).eps * abs(mean):
        return PairedTResult(n, mean, sd, _NAN, _NAN, _NAN, df, _NAN,
                             "differences constant: t-test undefined "
                             "(R: data are essentially constant)")
    t = mean / se
    p = float(2 * stats.t.sf(abs(t), df))
    q = float(stats.t.ppf(1 - (1 - conf_level) / 2, df))
    return PairedTResult(n, mean, sd, (t - q) * se, (t + q) * se, t, df, p)


def _signrank_counts(n: int) -> list[int]:
    """Exact null distribution of V for n untied, non-zero differences.

    ``counts[s]`` is the number of the ``2**n`` sign patterns whose positive
    ranks sum to ``s``, i.e. the number of subsets of {1, ..., n} with sum
    ``s`` (a subset-sum dynamic programme in exact Python integers).
    """
    counts = [1] + [0] * (n * (n + 1) // 2)
    top = 0
    for k in range(1, n + 1):
        top += k
        for s in range(top, k - 1, -1):  # descending: each rank used once
            counts[s] += counts[s - k]
    return counts


def wilcoxon_signed_rank(pre, post) -> WilcoxonResult:
    """Wilcoxon signed-rank test of ``post - pre``, exactly as R's defaults.

    Parameters
    ----------
    pre, post : array-like of float
        Values of the same subjects before and after, aligned by position.
        Pairs with a missing value on either side are dropped.

    Returns
    -------
    WilcoxonResult
        Frozen dataclass with fields

        - ``v``: R's V statistic, the sum of the ranks of ``|d|`` belonging to
          positive differences (0.0 if all differences are zero, NaN if there
          are no pairs).
        - ``p``: two-sided p-value.
        - ``method``: ``"exact"``, ``"normal approximation with continuity
          correction"`` or ``"not computed"`` (no pairs).
        - ``n_used``: number of non-zero differences that were ranked.
        - ``note``: "" or, when ``p`` is NaN, the reason in words.

    Notes
    -----
    Matches ``wilcox.test(post, pre, paired = TRUE)`` with its defaults
    (``exact = NULL, correct = TRUE, digits.rank = Inf``; R >= 4.0):

    1. ``d = post - pre``; zero differences are dropped (Wilcoxon's original
       zero rule, as in R), leaving ``n`` differences.
    2. ``|d|`` is ranked with average ranks for ties (exact floating-point
       equality, no rounding), and ``V = sum(rank[d > 0])``.
    3. If ``n < 50`` and there are no ties and no zeros, ``p`` is exact from
       the signed-rank distribution (R's ``psignrank``):
       ``p = min(1, 2 * min(P(V' <= V), P(V' >= V)))``, computed here from
       exact integer counts.
    4. Otherwise the normal approximation with tie-corrected variance and
       continuity correction::

           z = (V - n(n+1)/4 - sign(V - n(n+1)/4) * 0.5)
               / sqrt(n(n+1)(2n+1)/24 - sum(t^3 - t)/48)
           p = 2 * min(Phi(z), 1 - Phi(z))

       where ``t`` runs over the sizes of groups of tied ``|d|``.

    This deliberately does not use ``scipy.stats.wilcoxon`` defaults, which
    differ (no continuity correction, different exact/approximate switch).
    The test assumes independent subjects and differences symmetric about
    their median; it tests whether that median is zero.

    Degenerate cases (never raise): no pairs -> V and p NaN (R: error "not
    enough (non-missing) 'x' observations"); all differences zero -> ``n = 0``,
    R takes the normal branch and returns ``V = 0`` with ``p = NaN`` (0/0),
    reproduced here; a single non-zero difference -> exact ``p = 1``.

    References
    ----------
    .. [1] Wilcoxon, F. (1945). Individual comparisons by ranking methods.
       Biometrics Bulletin 1(6), 80-83.
    .. [2] Hollander, M., Wolfe, D. A. & Chicken, E. (2014). Nonparametric
       Statistical Methods, 3rd ed., Wiley. Section 3.1.
    .. [3] R Core Team. ``wilcox.test`` (package stats), R documentation;
       source of ``stats:::wilcox.test.default``.
    """
    d = _differences(pre, post)
    if d.size == 0:
        return WilcoxonResult(_NAN, _NAN, NOT_COMPUTED, 0,
                              "no complete pairs: Wilcoxon undefined")
    zeros = bool(np.any(d == 0))
    d = d[d != 0]
    n = int(d.size)
    if n == 0:
        return WilcoxonResult(0.0, _NAN, NORMAL_CC, 0,
                              "all differences zero: Wilcoxon undefined "
                              "(R: V = 0, p = NaN)")
    absd = np.abs(d)
    ranks = stats.rankdata(absd)  # average ranks, as R's rank()
    v = float(ranks[d > 0].sum())
    _, tie_sizes = np.unique(absd, return_counts=True)
    ties = bool(np.any(tie_sizes > 1))

    if n < _EXACT_MAX_N and not ties and not zeros:
        counts = _signrank_counts(n)
        k = int(v)  # no ties, so V is an integer
        tail = min(sum(counts[: k + 1]), sum(counts[k:]))
        # Exact integer ratio; Python rounds int / int correctly.
        return WilcoxonResult(v, min(1.0, 2 * tail / 2**n), EXACT, n)

    z = v - n * (n + 1) / 4
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24
                      - float(np.sum(tie_sizes.astype(float) ** 3 - tie_sizes)) / 48)
    z = (z - np.sign(z) * 0.5) / sigma
    p = float(2 * min(stats.norm.cdf(z), stats.norm.sf(z)))
    return WilcoxonResult(v, p, NORMAL_CC, n)


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size >= 2 else _NAN


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else _NAN


def paired_tests(
    pairs: pd.DataFrame,
    *,
    test: Union[str, Mapping[str, str]] = "wilcoxon",
    pre_visit: str = "pre",
    post_visit: str = "post",
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Pre/post paired tests for every (outcome, score) in a long table.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Long table with columns ``outcome, score, subject, pre_value,
        post_value``: one row per subject per outcome/score. Rows with a
        missing ``pre_value`` or ``post_value`` are dropped (defensively;
        upstream should already have excluded them).
    test : {"wilcoxon", "t"} or mapping of outcome to one of these
        Which test's p-value becomes ``p_used``. A mapping chooses per
        outcome; outcomes absent from it use ``"wilcoxon"``. Both tests are
        always computed and reported.
    pre_visit, post_visit : str
        Labels describing the visit rules that produced the pre and post
        values; copied into the output.
    conf_level : float, default 0.95
        Coverage of the t-based confidence interval of the mean difference.

    Returns
    -------
    pandas.DataFrame
        One row per (outcome, score); outcomes in order of first appearance,
        scores within an outcome in order of first appearance. Columns, in
        this order (values unrounded):

        - ``outcome``, ``score``: the group keys.
        - ``group``: subgroup label, always ``"all"``.
        - ``pre_visit``, ``post_visit``: the labels passed in.
        - ``n_pairs``: number of complete pairs.
        - ``pre_mean``, ``pre_sd``, ``post_mean``, ``post_sd``: mean and
          sample SD (denominator n - 1) of the paired pre and post values.
        - ``mean_diff``, ``sd_diff``: mean and SD of ``post - pre``.
        - ``ci_low``, ``ci_high``: t-based confidence interval of the mean
          difference at ``conf_level``.
        - ``t``, ``df``, ``p_t``: paired t statistic, degrees of freedom and
          two-sided p-value (:func:`paired_t`).
        - ``wilcoxon_v``, ``p_wilcoxon``: Wilcoxon signed-rank V and
          two-sided p-value; ``wilcoxon_method``: ``"exact"`` or ``"normal
          approximation with continuity correction"``
          (:func:`wilcoxon_signed_rank`).
        - ``test_used``: ``"Wilcoxon signed-rank"`` or ``"paired t"``.
        - ``p_used``: the p-value of ``test_used``.
        - ``note``: "" normally; otherwise why some statistics are NaN
          (e.g. "fewer than 2 pairs: SD and t-test undefined ...", "all
          differences zero: Wilcoxon undefined (R: V = 0, p = NaN)",
          "differences constant: t-test undefined (R: data are essentially
          constant)"), several reasons joined by "; ".

    Notes
    -----
    Differences are ``post - pre``. Formulas, assumptions, the zero and tie
    rules, and the R functions matched are described in :func:`paired_t`
    (R ``t.test(post, pre, paired = TRUE)``) and
    :func:`wilcoxon_signed_rank` (R ``wilcox.test(post, pre, paired =
    TRUE)``). No multiplicity adjustment is applied here. Degenerate groups
    (0 or 1 pairs, all-zero or constant differences) give NaN statistics and
    a note rather than an error. A group whose rows all lack a value still
    appears, with ``n_pairs = 0``.

    References
    ----------
    .. [1] Wilcoxon, F. (1945). Individual comparisons by ranking methods.
       Biometrics Bulletin 1(6), 80-83.
    .. [2] Hollander, M., Wolfe, D. A. & Chicken, E. (2014). Nonparametric
       Statistical Methods, 3rd ed., Wiley.
    .. [3] R Core Team. ``t.test`` and ``wilcox.test`` (package stats),
       R documentation.
    """
    required = ["outcome", "score", "subject", "pre_value", "post_value"]
    missing = [c for c in required if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs is missing columns: {missing}")

    def chosen_test(outcome) -> str:
        name = test.get(outcome, "wilcoxon") if isinstance(test, Mapping) else test
        if name not in _TEST_LABELS:
            raise ValueError(f"test must be 'wilcoxon' or 't', got {name!r} for {outcome!r}")
        return name

    # Keep groups before dropping incomplete rows, so an all-missing group
    # still reports n_pairs = 0 instead of silently disappearing.
    outcome_rank = {o: i for i, o in enumerate(pd.unique(pairs["outcome"]))}
    rows = []
    for (outcome, score), g in pairs.groupby(["outcome", "score"], sort=False, dropna=False):
        g = g.dropna(subset=["pre_value", "post_value"])
        pre = g["pre_value"].to_numpy(dtype=float)
        post = g["post_value"].to_numpy(dtype=float)
        tt = paired_t(pre, post, conf_level=conf_level)
        wt = wilcoxon_signed_rank(pre, post)
        name = chosen_test(outcome)
        notes = [x for x in (tt.note, wt.note) if x]
        rows.append({
            "outcome": outcome, "score": score, "group": "all",
            "pre_visit": pre_visit, "post_visit": post_visit,
            "n_pairs": tt.n,
            "pre_mean": _mean(pre), "pre_sd": _sd(pre),
            "post_mean": _mean(post), "post_sd": _sd(post),
            "mean_diff": tt.mean_diff, "sd_diff": tt.sd_diff,
            "ci_low": tt.ci_low, "ci_high": tt.ci_high,
            "t": tt.t, "df": tt.df, "p_t": tt.p,
            "wilcoxon_v": wt.v, "p_wilcoxon": wt.p, "wilcoxon_method": wt.method,
            "test_used": _TEST_LABELS[name],
            "p_used": tt.p if name == "t" else wt.p,
            "note": "; ".join(notes),
        })
    # Stable sort: outcomes by first appearance, scores keep first-appearance order.
    rows.sort(key=lambda r: outcome_rank.get(r["outcome"], len(outcome_rank)))
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.astype({"n_pairs": int})
