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
from scipy import optimize, special, stats

from pipeline.spec.schema import TESTS
from pipeline.statistics.grouped import by_group

__all__ = [
    "PairedTResult",
    "WilcoxonResult",
    "EffectSizes",
    "paired_t",
    "wilcoxon_signed_rank",
    "hodges_lehmann",
    "HodgesLehmannResult",
    "sign_test",
    "sign_tests",
    "group_sign_test",
    "shapiro_wilk",
    "effect_sizes",
    "choose_test",
    "paired_tests",
    "pairs_by_level",
    "test_estimates",
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
    "outcome",
    "score",
    "group",
    "pre_visit",
    "post_visit",
    "n_pairs",
    "pre_mean",
    "pre_sd",
    "post_mean",
    "post_sd",
    "mean_diff",
    "sd_diff",
    "ci_low",
    "ci_high",
    "t",
    "df",
    "p_t",
    "wilcoxon_v",
    "p_wilcoxon",
    "wilcoxon_method",
    "hodges_lehmann",
    "hl_ci_low",
    "hl_ci_high",
    "hl_conf_level",
    "dz",
    "dz_ci_low",
    "dz_ci_high",
    "hedges_g",
    "rank_biserial",
    "shapiro_w",
    "shapiro_p",
    "test_used",
    "p_used",
    "p_adj",
    "p_adj_method",
    "note",
]

#: The text columns of :data:`COLUMNS`; the others are numbers (``n_pairs`` an integer).
TEXT_COLUMNS = (
    "outcome",
    "score",
    "group",
    "pre_visit",
    "post_visit",
    "wilcoxon_method",
    "test_used",
    "p_adj_method",
    "note",
)

_TEST_LABELS = {"wilcoxon": "Wilcoxon signed-rank", "t": "paired t"}
#: Test choices a plan may name; "auto" is decided per outcome by :func:`choose_test`.
TEST_CHOICES = TESTS  # the spec's choices (pipeline.spec.schema.Test)


def _paired_values(pre, post) -> tuple[np.ndarray, np.ndarray]:
    """``pre`` and ``post`` over complete pairs (R: ``complete.cases(x, y)``)."""
    pre = np.asarray(pre, dtype=float).ravel()
    post = np.asarray(post, dtype=float).ravel()
    if pre.shape != post.shape:
        raise ValueError(f"pre and post differ in length ({pre.size} vs {post.size})")
    ok = ~(np.isnan(pre) | np.isnan(post))
    return pre[ok], post[ok]


def _differences(pre, post) -> np.ndarray:
    """``post - pre`` over complete pairs (R: ``complete.cases(x, y)``)."""
    pre, post = _paired_values(pre, post)
    return post - pre


def _distinct_nonzero(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct non-zero differences and how often each occurs (what the rank-based
    statistics need; :func:`paired_tests` finds them once per group for all of them)."""
    return np.unique(d[d != 0], return_counts=True)


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


def _t_undefined(
    note: str, n: int, mean: float = _NAN, sd: float = _NAN, df: float = _NAN
) -> PairedTResult:
    """A paired t-test R gives no t for: the pairs' count, mean, SD and df where known, and NaN
    for the interval, t and p."""
    return PairedTResult(n, mean, sd, _NAN, _NAN, _NAN, df, _NAN, note)


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
    ``scipy.stats.ttest_rel(post, pre)`` and its ``confidence_interval``:
    with ``se = sqrt(var(d) / n)``, ``t = mean(d) / se``, ``df = n - 1``,
    ``p = 2 * P(T_df <= -|t|)`` and the interval ``mean(d) -/+ q * se`` with
    ``q`` the ``1 - (1 - conf_level) / 2`` quantile of ``T_df``. R's
    ``t.test(post, pre, paired = TRUE)`` computes the same quantities
    (its interval as ``(t -/+ q) * se``); they agree to rounding error
    (``tests/test_paired.py``: 1e-9 on R's fixtures, 4e-15 seen).
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
    pre, post = _paired_values(pre, post)
    d = post - pre
    n = int(d.size)
    if n == 0:
        return _t_undefined("no complete pairs: t-test undefined", n)
    mean = float(np.mean(d))
    if n < 2:
        return _t_undefined(
            "fewer than 2 pairs: SD and t-test undefined (R: not enough 'x' observations)", n, mean
        )
    var = float(np.var(d, ddof=1))
    sd = math.sqrt(var)
    df = float(n - 1)
    se = math.sqrt(var / n)  # R's formula, for R's test of constant data below
    if np.all(d == 0):
        return _t_undefined(
            "all differences zero: t-test undefined (0/0; R returns t = NaN, p = NaN)",
            n,
            mean,
            sd,
            df,
        )
    if se < 10 * np.finfo(float).eps * abs(mean):
        return _t_undefined(
            "differences constant: t-test undefined (R: data are essentially constant)",
            n,
            mean,
            sd,
            df,
        )
    # The cases above are where scipy would warn or divide by zero; R stops or returns NaN.
    res = stats.ttest_rel(post, pre)
    ci = res.confidence_interval(conf_level)
    return PairedTResult(
        n, mean, sd, float(ci.low), float(ci.high), float(res.statistic), df, float(res.pvalue)
    )


@dataclass(frozen=True)
class WilcoxonResult:
    """Result of :func:`wilcoxon_signed_rank` (fields explained there)."""

    v: float
    p: float
    method: str
    n_used: int
    note: str = ""


def wilcoxon_signed_rank(pre, post, *, distinct=None) -> WilcoxonResult:
    """Wilcoxon signed-rank test of ``post - pre``, exactly as R's defaults.

    Parameters
    ----------
    pre, post : array-like of float
        Values of the same subjects before and after, aligned by position.
        Pairs with a missing value on either side are dropped.
    distinct : tuple of (ndarray, ndarray), optional
        The distinct non-zero differences and their counts, if already known
        (``np.unique(d[d != 0], return_counts=True)``); found here otherwise.

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
       ``p = min(1, 2 * min(P(V' <= V), P(V' >= V)))``.
    4. Otherwise the normal approximation with tie-corrected variance and
       continuity correction::

           z = (V - n(n+1)/4 - sign(V - n(n+1)/4) * 0.5)
               / sqrt(n(n+1)(2n+1)/24 - sum(t^3 - t)/48)
           p = 2 * min(Phi(z), 1 - Phi(z))

       where ``t`` runs over the sizes of groups of tied ``|d|``.

    R's choice between 3 and 4 is made here and passed on: scipy's own
    ``method="auto"`` switches elsewhere (and to a permutation test with
    ties). The exact p-value is ``scipy.stats.wilcoxon(d, zero_method=
    "wilcox", method="exact")``. The normal approximation is
    ``scipy.stats.wilcoxon(d, zero_method="wilcox", correction=True,
    method="asymptotic")``, written out here because that call ranks all
    ``n`` differences, where this function works on the distinct ones
    (:func:`_signed_ranks`): a graded score has a few dozen distinct
    differences among a registry's tens of thousands of pairs, and the
    analysis tests hundreds of groups. ``tests/test_paired.py`` checks the two
    equal to rounding (1e-12) on R's fixtures and on random samples. V is
    computed here in both cases: scipy's two-sided statistic is
    ``min(V, n(n+1)/2 - V)``, not R's V.

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
        return WilcoxonResult(_NAN, _NAN, NOT_COMPUTED, 0, "no complete pairs: Wilcoxon undefined")
    zeros = bool(np.any(d == 0))
    d = d[d != 0]
    n = int(d.size)
    if n == 0:
        return WilcoxonResult(
            0.0, _NAN, NORMAL_CC, 0, "all differences zero: Wilcoxon undefined (R: V = 0, p = NaN)"
        )
    # Average ranks of |d| as R's rank(), from the distinct differences (_signed_ranks).
    _, v, tie_sizes = _signed_ranks(*(distinct or _distinct_nonzero(d)), 0.0)
    ties = bool(np.any(tie_sizes > 1))

    if n < _EXACT_MAX_N and not ties and not zeros:
        p = stats.wilcoxon(d, zero_method="wilcox", method="exact").pvalue
        return WilcoxonResult(v, float(p), EXACT, n)

    # scipy.stats.wilcoxon(d, zero_method="wilcox", correction=True, method="asymptotic") from
    # the distinct differences (see Notes).
    z = v - n * (n + 1) / 4
    sigma = math.sqrt(
        n * (n + 1) * (2 * n + 1) / 24
        - float(np.sum(tie_sizes.astype(float) ** 3 - tie_sizes)) / 48
    )
    z = (z - np.sign(z) * 0.5) / sigma
    p = float(2 * min(stats.norm.cdf(z), stats.norm.sf(z)))
    return WilcoxonResult(v, p, NORMAL_CC, n)


def _zeroin(
    f, ax: float, bx: float, fa: float, fb: float, tol: float = 1e-4, maxit: int = 1000
) -> float:
    """Brent's root finder, step for step as R's ``uniroot`` (C ``R_zeroin2``).

    R's Hodges-Lehmann estimate in the normal-approximation case is the root
    this search returns on a step function, so the iteration itself (not just
    the root's neighbourhood) must be reproduced to agree with R to full
    precision. Port of ``src/library/stats/src/zeroin.c`` (R 4.2).
    """
    eps = np.finfo(float).eps
    a, b = ax, bx
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxit + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * eps * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


def _signrank_z(x: np.ndarray, shift: float) -> float:
    """R's signed-rank z of ``x - shift`` (``W`` inside ``wilcox.test.default``)
    without continuity correction -- R sets ``correct <- FALSE`` just before it
    solves for the estimate; NaN when nothing is left to rank."""
    values, counts = np.unique(x, return_counts=True)
    return _signrank_z_counts(values, counts, shift)


def _signed_ranks(
    values: np.ndarray, counts: np.ndarray, shift: float
) -> tuple[int, float, np.ndarray]:
    """Signed ranks of ``x - shift`` for the sample holding ``counts[k]`` copies of ``values[k]``
    (zeros dropped, average ranks for ties, as R's ``rank()``): the number ranked, the sum of
    the ranks of the positive ones, and the sizes of the tie groups of ``|x - shift|``.

    Works on the distinct values (O(k log k) for k distinct, not O(n log n)); a tie group's
    average rank is ``before + (size + 1) / 2``, and every sum is of integers or half-integers
    below 2**53, so exact in any order: the same numbers as from ranking every value.
    """
    xd = values - shift
    keep = xd != 0
    xd, counts = xd[keep], counts[keep]
    nx = int(counts.sum())
    if nx == 0:
        return 0, 0.0, np.zeros(0)
    absd = np.abs(xd)
    order = np.argsort(absd, kind="stable")
    absd, xd, counts = absd[order], xd[order], counts[order]
    # Tie groups: equal |x - shift| (a value below and one above the shift can tie).
    starts = np.flatnonzero(np.concatenate(([True], absd[1:] != absd[:-1])))
    sizes = np.add.reduceat(counts, starts).astype(float)
    before = np.cumsum(sizes) - sizes
    average = np.repeat(before + (sizes + 1) / 2, np.diff(np.append(starts, absd.size)))
    return nx, float(np.sum(counts[xd > 0] * average[xd > 0])), sizes


#: Up to this many distinct differences, :func:`_signrank_z_counts` ranks them in plain Python:
#: a graded score's few dozen cost less so than numpy's per-call overhead, and the root search
#: of :func:`hodges_lehmann` evaluates the statistic some 60 times per group.
_FEW_DISTINCT = 64


def _signed_ranks_few(
    values: list[float], counts: list[int], shift: float
) -> tuple[int, float, list[int]]:
    """:func:`_signed_ranks` of a few distinct values, as Python lists: the same numbers (every
    sum is of integers or half-integers below 2**53, exact in any order; each ``value - shift``
    and its absolute value are the same double operations)."""
    ranked = sorted(
        ((abs(v - shift), v - shift, c) for v, c in zip(values, counts) if v - shift != 0),
        key=lambda item: item[0],
    )
    nx = sum(c for _, _, c in ranked)
    v_plus, sizes, before, i = 0.0, [], 0, 0
    while i < len(ranked):
        j, size = i, 0
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            size += ranked[j][2]
            j += 1
        average = float(before) + (float(size) + 1) / 2
        for _, xd, c in ranked[i:j]:
            if xd > 0:
                v_plus += c * average
        sizes.append(size)
        before += size
        i = j
    return nx, v_plus, sizes


def _signrank_z_counts(
    values: np.ndarray, counts: np.ndarray, shift: float, correct: bool = False
) -> float:
    """:func:`_signrank_z` of the sample holding ``counts[k]`` copies of ``values[k]``; with
    ``correct`` the two-sided continuity correction ``sign(z) * 0.5`` is taken off first, as R's
    ``W`` does for the confidence interval (``correct = TRUE``).

    Works on the distinct values, so the root search below costs O(k log k) per step for k
    distinct differences instead of ranking all n (scores are graded: k is tens where n is
    a registry's hundred thousand). The result is the same number bit for bit: each
    ``x_i - shift`` equals its distinct value's ``value - shift``, a tie group's average rank is
    ``before + (size + 1) / 2`` as ``rank()`` gives it, and every sum involved is of integers
    or half-integers below 2**53, so it is exact in any order.
    """
    if isinstance(values, list):  # a few distinct values (_FEW_DISTINCT), as lists
        nx, v_plus, few = _signed_ranks_few(values, counts, shift)
        ties = float(sum(t**3 - t for t in few))
    else:
        nx, v_plus, sizes = _signed_ranks(values, counts, shift)
        ties = float(np.sum(sizes**3 - sizes))
    if nx == 0:
        return _NAN
    zd = v_plus - nx * (nx + 1) / 4
    sigma = math.sqrt(nx * (nx + 1) * (2 * nx + 1) / 24 - ties / 48)
    if sigma == 0:
        return _NAN
    if correct:
        zd = zd - float(np.sign(zd)) * 0.5
    return zd / sigma


@dataclass(frozen=True)
class HodgesLehmannResult:
    """Result of :func:`hodges_lehmann` (fields explained there)."""

    estimate: float
    ci_low: float
    ci_high: float
    conf_level: float
    note: str = ""


def _signrank_counts(n: int) -> list[int]:
    """How many of the ``2**n`` sign patterns give each signed-rank sum ``V = 0 .. n(n+1)/2``
    (no ties): the distribution R's ``csignrank`` tabulates, here in exact integers."""
    counts = [1] + [0] * (n * (n + 1) // 2)
    for j in range(1, n + 1):
        for v in range(j * (j + 1) // 2, j - 1, -1):
            counts[v] += counts[v - j]
    return counts


def _qsignrank(p: float, n: int) -> int:
    """R's ``qsignrank(p, n)`` for ``p <= 0.5``: the smallest ``q`` with ``P(V <= q) >= p``.

    Reproduces R's loop (``src/nmath/signrank.c``): the probabilities are summed one value at
    a time as ``count * exp(-n log 2)`` and compared with ``p - 10 DBL_EPSILON``. Neither scipy
    nor statsmodels exposes the signed-rank distribution; ``tests/test_paired.py`` checks this
    equal to R's ``qsignrank`` for n = 1..60 (``tests/fixtures/r/qsignrank_expected.csv``).
    """
    counts = _signrank_counts(n)
    f = math.exp(-n * math.log(2))
    target = p - 10 * np.finfo(float).eps
    total, q = 0.0, 0
    while True:
        total += counts[q] * f
        if total >= target or q == len(counts) - 1:
            return q
        q += 1


def _qnorm(p: float, lower_tail: bool = True) -> float:
    """R's ``qnorm(p, lower.tail = lower_tail)`` (R 4.2: Wichura's algorithm AS 241, PPND16),
    operation for operation, for ``0 < p < 1``.

    ``scipy.stats.norm.ppf`` / ``isf`` (Cephes ``ndtri``) differ from it by a few units in the
    last place (``isf(0.025)``: 1.9599639845400545, R 1.9599639845400536). That is invisible in
    a quantile but not in R's Hodges-Lehmann interval: its root search runs on a step function,
    and the quantile's last bits move the secant steps, so the search can stop elsewhere within
    its 1e-4 tolerance (3e-5 apart on the demo's FaCE scores). ``tests/test_paired.py`` checks
    this equal to R's ``qnorm`` bit for bit (``tests/fixtures/r/qnorm_expected.csv``) and to
    scipy's within 1e-15.

    References
    ----------
    .. [1] Wichura, M. J. (1988). Algorithm AS 241: the percentage points of the normal
       distribution. Appl. Statist. 37(3), 477-484.
    .. [2] R Core Team. ``src/nmath/qnorm.c`` (R 4.2).
    """
    # R_DT_qIv: the lower-tail probability; R_DT_CIv: the upper-tail one, each as R forms it.
    # The coefficients are qnorm.c's; its 5226.495278852854561 differs from the published
    # 5226.495278852545925 of AS 241 in the last digits, and R's bits are the ones wanted.
    p_ = p if lower_tail else 0.5 - p + 0.5
    q = p_ - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return (
            q
            * (
                (
                    (
                        (
                            (
                                (
                                    (r * 2509.0809287301226727 + 33430.575583588128105) * r
                                    + 67265.770927008700853
                                )
                                * r
                                + 45921.953931549871457
                            )
                            * r
                            + 13731.693765509461125
                        )
                        * r
                        + 1971.5909503065514427
                    )
                    * r
                    + 133.14166789178437745
                )
                * r
                + 3.387132872796366608
            )
            / (
                (
                    (
                        (
                            (
                                (
                                    (r * 5226.495278852854561 + 28729.085735721942674) * r
                                    + 39307.89580009271061
                                )
                                * r
                                + 21213.794301586595867
                            )
                            * r
                            + 5394.1960214247511077
                        )
                        * r
                        + 687.1870074920579083
                    )
                    * r
                    + 42.313330701600911252
                )
                * r
                + 1.0
            )
        )
    # r = min(p, 1 - p) < 0.075
    if q > 0:
        r = (0.5 - p + 0.5) if lower_tail else p
    else:
        r = p_
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r += -1.6
        val = (
            (
                (
                    (
                        (
                            (
                                (r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r
                                + 0.24178072517745061177
                            )
                            * r
                            + 1.27045825245236838258
                        )
                        * r
                        + 3.64784832476320460504
                    )
                    * r
                    + 5.7694972214606914055
                )
                * r
                + 4.6303378461565452959
            )
            * r
            + 1.42343711074968357734
        ) / (
            (
                (
                    (
                        (
                            (
                                (r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r
                                + 0.0151986665636164571966
                            )
                            * r
                            + 0.14810397642748007459
                        )
                        * r
                        + 0.68976733498510000455
                    )
                    * r
                    + 1.6763848301838038494
                )
                * r
                + 2.05319162663775882187
            )
            * r
            + 1.0
        )
    else:
        r += -5.0
        val = (
            (
                (
                    (
                        (
                            (
                                (r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r
                                + 0.0012426609473880784386
                            )
                            * r
                            + 0.026532189526576123093
                        )
                        * r
                        + 0.29656057182850489123
                    )
                    * r
                    + 1.7848265399172913358
                )
                * r
                + 5.4637849111641143699
            )
            * r
            + 6.6579046435011037772
        ) / (
            (
                (
                    (
                        (
                            (
                                (r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r
                                + 1.8463183175100546818e-5
                            )
                            * r
                            + 7.868691311456132591e-4
                        )
                        * r
                        + 0.0148753612908506148525
                    )
                    * r
                    + 0.13692988092273580531
                )
                * r
                + 0.59983220655588793769
            )
            * r
            + 1.0
        )
    return -val if q < 0 else val


def _significant(x: float, digits: int) -> float:
    """R's ``signif(x, digits)`` for the positive probabilities used here."""
    return float(f"{x:.{digits}g}")


def _hl_exact_interval(x: np.ndarray, conf_level: float) -> tuple[float, float, float, float]:
    """R's exact Hodges-Lehmann estimate and interval (no ties, no zeros, ``n < 50``): the
    median of the Walsh averages and the two order statistics of them given by
    ``qsignrank(alpha / 2, n)``; also the confidence level R reports (lowered when the requested
    one is not achievable: ``1 - signif(achieved alpha, 2)``)."""
    n = x.size
    i, j = np.triu_indices(n)
    walsh = np.sort(x[i] + x[j]) / 2
    alpha = 1 - conf_level
    qu = max(_qsignrank(alpha / 2, n), 1)
    ql = n * (n + 1) // 2 - qu
    # achieved.alpha = 2 * psignrank(qu - 1, n), from exact counts.
    achieved = 2 * sum(_signrank_counts(n)[:qu]) / 2.0**n
    level = conf_level
    if achieved - alpha > alpha / 2:
        level = 1 - _significant(achieved, 2)
    return float(np.median(walsh)), float(walsh[qu - 1]), float(walsh[ql]), level


def hodges_lehmann(pre, post, conf_level: float = 0.95, *, distinct=None) -> HodgesLehmannResult:
    """Hodges-Lehmann estimate of the median difference ``post - pre`` and its confidence
    interval, as R.

    Parameters
    ----------
    pre, post : array-like of float
        Paired values; pairs with a missing value are dropped.
    conf_level : float, default 0.95
        Requested coverage of the two-sided interval, in (0, 1).
    distinct : tuple of (ndarray, ndarray), optional
        The distinct non-zero differences and their counts, if already known
        (as for :func:`wilcoxon_signed_rank`).

    Returns
    -------
    HodgesLehmannResult
        Frozen dataclass with fields

        - ``estimate``: R's ``wilcox.test(post, pre, paired = TRUE, conf.int =
          TRUE)$estimate``, the "(pseudo)median" (the midrange when all
          non-zero differences are equal, as R).
        - ``ci_low``, ``ci_high``: R's ``$conf.int`` (NaN where R gives NaN:
          no pairs, all differences zero, all non-zero differences equal).
        - ``conf_level``: the level R attaches to that interval,
          ``attr($conf.int, "conf.level")``: ``conf_level`` unless R found it not
          achievable with so few differences and lowered it (0 when the
          interval is a single point or NaN).
        - ``note``: "" or why a value is NaN, a midrange, or the interval's
          level lower than requested.

    Notes
    -----
    Zero differences are dropped first, as in the test, leaving ``n``.

    *Exact case* (``n < 50``, no tied ``|d|``, no zeros: R's exact p-value):
    the estimate is the median of the ``n(n+1)/2`` Walsh averages ``(d_i +
    d_j) / 2, i <= j``; with ``q = max(1, qsignrank(alpha / 2, n))`` the
    interval runs from the ``q``-th smallest Walsh average to the ``q``-th
    largest [1, section 3.3]. Its coverage ``1 - 2 psignrank(q - 1, n)`` is at
    least the requested one unless ``n < 6``; R lowers the reported level to
    ``1 - signif(2 psignrank(q - 1, n), 2)`` only when that exceeds
    ``1.5 alpha`` (so with 5 differences it still reports 95% for a 93.75%
    interval).

    *Normal approximation* (ties, zeros, or ``n >= 50``): R inverts the
    asymptotic signed-rank statistic of ``d - mu`` (tie-corrected variance;
    with the continuity correction ``sign(z) / 2`` for the interval, without
    it for the estimate): the limits are the roots of ``z(mu) = +/- q`` with
    ``q`` the normal ``1 - alpha / 2`` quantile, found by ``uniroot(tol =
    1e-4)`` between ``min(d)`` and ``max(d)``; the estimate is the root of
    ``z(mu) = 0``. When the sample limits do not bracket ``q`` (few
    differences) R doubles ``alpha`` until they do and reports ``1 - alpha``;
    if ``alpha`` reaches 1 the interval is the median of the differences
    twice, level 0. Each search is reproduced step for step
    (:func:`_zeroin`, a port of R's ``R_zeroin2``), so the limits agree with
    R's to rounding (``tests/test_paired.py``); they lie within about
    ``1e-4`` of where the step function ``z(mu)`` crosses ``q``.

    Neither scipy nor statsmodels has this estimator or interval, and no root
    finder of theirs would do: ``z(mu)`` is a step function, so where the
    search stops depends on every step (``scipy.optimize.brentq`` takes
    others). For the same reason the normal quantile is R's own
    (:func:`_qnorm`), not scipy's, which differs in the last bits. Checked
    against R's
    ``wilcox.test(post, pre, paired = TRUE, conf.int = TRUE, conf.level =
    ...)`` in ``tests/fixtures/r/hodges_lehmann_ci.R`` (exact, ties/zeros,
    n up to 3000, levels 0.90/0.95/0.99, R's lowered levels).

    References
    ----------
    .. [1] Hollander, M., Wolfe, D. A. & Chicken, E. (2014). Nonparametric
       Statistical Methods, 3rd ed., Wiley. Sections 3.2-3.3.
    .. [2] Hodges, J. L. & Lehmann, E. L. (1963). Estimates of location based
       on rank tests. Ann. Math. Statist. 34(2), 598-611.
    .. [3] R Core Team. ``wilcox.test`` (package stats), ``uniroot``,
       ``qsignrank``; source of ``stats:::wilcox.test.default`` (R 4.2).
    """
    if not 0 < conf_level < 1:
        raise ValueError("conf_level must be between 0 and 1")
    d = _differences(pre, post)
    if d.size == 0:
        return HodgesLehmannResult(
            _NAN, _NAN, _NAN, _NAN, "no complete pairs: Hodges-Lehmann estimate undefined"
        )
    zeros = bool(np.any(d == 0))
    x = d[d != 0]
    n = x.size
    if n == 0:
        return HodgesLehmannResult(
            _NAN,
            _NAN,
            _NAN,
            _NAN,
            "all differences zero: Hodges-Lehmann estimate undefined (R: NaN)",
        )
    values, counts = distinct or _distinct_nonzero(x)
    # Tied |x|: a value twice, or a value and its negative.
    ties = bool(counts.max() > 1) or np.unique(np.abs(values)).size < values.size
    if n < _EXACT_MAX_N and not ties and not zeros:
        est, low, high, level = _hl_exact_interval(x, conf_level)
        return HodgesLehmannResult(est, low, high, level, _level_note(level, conf_level, n))
    lo, hi = float(x.min()), float(x.max())
    if values.size <= _FEW_DISTINCT:
        values, counts = values.tolist(), counts.tolist()

    def z(mu: float, correct: bool) -> float:
        return _signrank_z_counts(values, counts, mu, correct)

    f_lo = z(lo, False)
    if not math.isfinite(f_lo):
        return HodgesLehmannResult(
            (lo + hi) / 2,
            _NAN,
            _NAN,
            0.0,
            "Hodges-Lehmann estimate is the midrange of the non-zero differences and has no "
            "confidence interval (all equal; as R)",
        )
    est = _zeroin(lambda mu: z(mu, False), lo, hi, f_lo, z(hi, False))
    # R's two-sided interval (wilcox.test.default, correct = TRUE).
    w_lo, w_hi = z(lo, True), z(hi, True)
    alpha = 1 - conf_level
    while w_lo - _qnorm(alpha / 2, False) < 0 or w_hi - _qnorm(alpha / 2) > 0:
        alpha *= 2
    level = conf_level
    if alpha >= 1 or 1 - conf_level < alpha * 0.75:
        level = 1 - min(1.0, alpha)
    if alpha < 1:

        def root(q: float) -> float:
            return _zeroin(lambda mu: z(mu, True) - q, lo, hi, w_lo - q, w_hi - q)

        low, high = root(_qnorm(alpha / 2, False)), root(_qnorm(alpha / 2))
    else:
        low = high = float(np.median(x))
    return HodgesLehmannResult(
        float(est), float(low), float(high), level, _level_note(level, conf_level, n)
    )


def _level_note(level: float, conf_level: float, n: int) -> str:
    """Why the interval's level is below the requested one ("" when it is not)."""
    if level >= conf_level:
        return ""
    few = f"Hodges-Lehmann {conf_level:.0%} CI not achievable with {n} non-zero " + (
        "differences" if n != 1 else "difference"
    )
    if level == 0:
        return few + " (R gives both limits at the estimate, level 0)"
    return few + f" (R gives a {level:.0%} interval)"


def sign_test(pre, post) -> tuple[int, int, float]:
    """Two-sided sign test of ``post - pre``, as R's ``binom.test``.

    Parameters
    ----------
    pre, post : array-like of float
        Paired values; pairs with a missing value are dropped.

    Returns
    -------
    tuple of (int, int, float)
        ``n_positive`` (differences > 0), ``n_negative`` (differences < 0) and
        the two-sided exact binomial p-value of ``n_positive`` out of
        ``n_positive + n_negative`` against 1/2 (R: ``binom.test(n_positive,
        n_positive + n_negative)$p.value``); p is 1.0 when every difference
        is zero (no evidence either way; R refuses ``n = 0``).

    Notes
    -----
    Zero differences (ties) are dropped, the usual convention [1]. Assumes
    only independent subjects; no symmetry or scale assumption.

    References
    ----------
    .. [1] Conover, W. J. (1999). Practical Nonparametric Statistics, 3rd ed.,
       Wiley. Section 3.4.
    """
    d = _differences(pre, post)
    pos, neg = int(np.sum(d > 0)), int(np.sum(d < 0))
    if pos + neg == 0:
        return pos, neg, 1.0
    return pos, neg, float(stats.binomtest(pos, pos + neg, 0.5).pvalue)


#: The columns of :func:`sign_tests`' table, in order.
SIGN_TEST_COLUMNS = [
    "outcome",
    "score",
    "group",
    "n_pairs",
    "n_positive",
    "n_zero",
    "n_negative",
    "p",
    "note",
]


def sign_tests(pairs: pd.DataFrame) -> pd.DataFrame:
    """:func:`sign_test` of every outcome, score and group (the whole cohort and each subgroup
    level).

    Parameters
    ----------
    pairs : pandas.DataFrame
        Columns ``outcome, score, group, pre_value, post_value``, groups in the order wanted;
        complete pairs are used.

    Returns
    -------
    pandas.DataFrame
        One row per outcome, score and group, in order of first appearance: ``n_pairs``
        (complete pairs), ``n_positive`` (post > pre), ``n_zero``, ``n_negative`` (post < pre),
        ``p`` (two-sided exact, R ``binom.test(n_positive, n_positive + n_negative)``; 1 when
        every difference is zero, NaN without pairs) and ``note``.
    """
    rows = []
    for key, g in by_group(pairs):
        g = g.dropna(subset=["pre_value", "post_value"])
        rows.append(group_sign_test(key, g["pre_value"], g["post_value"]))
    return pd.DataFrame(rows, columns=SIGN_TEST_COLUMNS)


def group_sign_test(key: dict, pre, post) -> dict:
    """:func:`sign_tests`' row of one group (``key``: its outcome, score and group) from its
    complete pairs' ``pre`` and ``post`` values."""
    n = len(pre)
    pos, neg, p = sign_test(pre, post)
    note = ""
    if n == 0:
        p, note = _NAN, "no pairs"
    elif pos + neg == 0:
        note = "every difference is zero: no sign to test"
    return {
        **key,
        "n_pairs": n,
        "n_positive": pos,
        "n_zero": n - pos - neg,
        "n_negative": neg,
        "p": p,
        "note": note,
    }


def shapiro_wilk(x) -> tuple[float, float, str]:
    """Shapiro-Wilk test of normality (R ``shapiro.test``; Royston's AS R94).

    Parameters
    ----------
    x : array-like of float
        Values to test (here the paired differences); NaN are dropped.

    Returns
    -------
    tuple of (float, float, str)
        ``W``, its p-value, and a note that explains NaN results: fewer than
        3 values, more than 5000, or all values identical (R stops with an
        error in each case).

    References
    ----------
    .. [1] Shapiro, S. S. & Wilk, M. B. (1965). Biometrika 52(3/4), 591-611.
    .. [2] Royston, P. (1995). Algorithm AS R94. Appl. Statist. 44(4), 547-551.
    """
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if x.size < 3:
        return _NAN, _NAN, "fewer than 3 differences: Shapiro-Wilk undefined"
    if x.size > 5000:
        return _NAN, _NAN, "more than 5000 differences: Shapiro-Wilk undefined (as R)"
    if np.ptp(x) == 0:
        return _NAN, _NAN, "all differences identical: Shapiro-Wilk undefined"
    res = stats.shapiro(x)
    return float(res.statistic), float(res.pvalue), ""


@dataclass(frozen=True)
class EffectSizes:
    """Result of :func:`effect_sizes` (fields explained there)."""

    dz: float
    dz_ci_low: float
    dz_ci_high: float
    hedges_g: float
    rank_biserial: float
    note: str = ""


def _nct_ncp(t: float, df: float, prob: float) -> float:
    """The noncentrality ``ncp`` with ``P(T_df,ncp <= t) = prob`` (increasing
    ncp lowers the probability, so the root is unique)."""

    # special.nctdtr is the function stats.nct.cdf evaluates, without the per-call argument
    # handling that made this root search the slowest part of the paired tests.
    def f(ncp: float) -> float:
        return float(special.nctdtr(df, ncp, t)) - prob

    # Unit steps from t: the root lies a few units away, and scipy's noncentral t
    # returns NaN far out in the tails, so never bracket wider than needed.
    lo, hi = t - 1.0, t + 1.0
    while f(lo) < 0:
        lo -= 1.0
    while f(hi) > 0:
        hi += 1.0
    return float(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500))


def effect_sizes(pre, post, conf_level: float = 0.95, *, distinct=None) -> EffectSizes:
    """Standardised effect sizes of the paired change ``d = post - pre``.

    Parameters
    ----------
    pre, post, distinct
        As for :func:`hodges_lehmann`.
    conf_level : float, default 0.95
        Coverage of the confidence interval of ``dz``.

    Returns
    -------
    EffectSizes
        Frozen dataclass with fields

        - ``dz``: Cohen's d_z = mean(d) / sd(d) (SD with denominator n - 1).
        - ``dz_ci_low``, ``dz_ci_high``: exact confidence interval of d_z by
          inverting the noncentral t distribution: with ``t = dz * sqrt(n)``
          and ``df = n - 1``, the limits are ``ncp / sqrt(n)`` for the
          ``ncp`` with ``P(T_df,ncp <= t) = 1 - alpha/2`` (low) and
          ``alpha/2`` (high).
        - ``hedges_g``: small-sample corrected d_z, ``g = J(n - 1) * dz`` with
          the exact ``J(m) = Gamma(m/2) / (sqrt(m/2) * Gamma((m - 1)/2))``.
        - ``rank_biserial``: matched-pairs rank-biserial correlation
          ``(T+ - T-) / (T+ + T-)``, the signed-rank sums of positive and
          negative non-zero differences (zeros dropped, average ranks), in
          [-1, 1].
        - ``note``: "" or why a value is NaN.

    Notes
    -----
    d_z standardises by the SD of the differences, so it is the effect size
    of the paired t-test (not d_av). The noncentral-t interval assumes
    normally distributed differences [2]. Degenerate input: fewer than 2 pairs
    or SD = 0 make d_z, its interval and g NaN (with a note); g also needs
    ``n >= 3`` (``J(1)`` involves Gamma(0)). rank_biserial is NaN when every
    difference is zero.
    Checked against R: d_z and g by their formulas, the interval by
    ``uniroot`` on ``pt(t, df, ncp)`` (``tests/fixtures/r/paired_tests.R``),
    which is the method of ``MBESS::conf.limits.nct``. Neither scipy nor
    statsmodels has these effect sizes; the interval is a root search
    (``scipy.optimize.brentq``) on scipy's noncentral t distribution
    (``scipy.special.nctdtr``), the rank-biserial the signed ranks of
    :func:`wilcoxon_signed_rank`.

    References
    ----------
    .. [1] Lakens, D. (2013). Calculating and reporting effect sizes to
       facilitate cumulative science. Front. Psychol. 4, 863.
    .. [2] Steiger, J. H. & Fouladi, R. T. (1997). Noncentrality interval
       estimation. In What If There Were No Significance Tests?, 221-257.
    .. [3] Hedges, L. V. (1981). Distribution theory for Glass's estimator of
       effect size. J. Educ. Stat. 6(2), 107-128.
    .. [4] Kerby, D. S. (2014). The simple difference formula. Compr.
       Psychol. 3, 11.IT.3.1.
    """
    d = _differences(pre, post)
    n = d.size
    notes = []
    nz = d[d != 0]
    if nz.size:
        n_ranked, t_plus, _ = _signed_ranks(*(distinct or _distinct_nonzero(nz)), 0.0)
        total = n_ranked * (n_ranked + 1) / 2  # the sum of all ranks, ties or not
        rb = float((t_plus - (total - t_plus)) / total)
    else:
        rb = _NAN
        notes.append("no non-zero differences: rank-biserial undefined")
    if n < 2:
        notes.append("fewer than 2 pairs: d_z and g undefined")
        return EffectSizes(_NAN, _NAN, _NAN, _NAN, rb, "; ".join(notes))
    sd = float(np.std(d, ddof=1))
    if sd == 0 or sd < 10 * np.finfo(float).eps * abs(float(np.mean(d))):
        notes.append("differences constant (SD 0): d_z and g undefined")
        return EffectSizes(_NAN, _NAN, _NAN, _NAN, rb, "; ".join(notes))
    dz = float(np.mean(d)) / sd
    df = n - 1.0
    t = dz * math.sqrt(n)
    alpha = 1 - conf_level
    low = _nct_ncp(t, df, 1 - alpha / 2) / math.sqrt(n)
    high = _nct_ncp(t, df, alpha / 2) / math.sqrt(n)
    if n >= 3:
        j = math.exp(math.lgamma(df / 2) - math.lgamma((df - 1) / 2)) / math.sqrt(df / 2)
        g = j * dz
    else:
        g = _NAN
        notes.append("2 pairs: Hedges correction undefined (Gamma(0))")
    return EffectSizes(dz, low, high, g, rb, "; ".join(notes))


def choose_test(name: str, shapiro_p: float, n_pairs: int, alpha: float = 0.05) -> str:
    """Resolve a plan's test choice for one outcome: ``"t"`` or ``"wilcoxon"``.

    ``"auto"`` follows one documented rule: the paired t-test when there are
    at least 3 pairs and the Shapiro-Wilk test does not reject normality of
    the differences at ``alpha`` (``shapiro_p >= alpha``); the Wilcoxon
    signed-rank test otherwise (including when Shapiro-Wilk is undefined).
    Pre-testing normality is a convention, not a guarantee: with few pairs
    the test has little power, with many pairs it rejects trivial departures.
    """
    if name == "auto":
        ok = n_pairs >= 3 and not math.isnan(shapiro_p) and shapiro_p >= alpha
        return "t" if ok else "wilcoxon"
    if name not in _TEST_LABELS:
        raise ValueError(f"test must be one of {', '.join(TEST_CHOICES)}, got {name!r}")
    return name


def test_label_without_pairs(name: str) -> str:
    """``test_used`` of a group with no pairs under the plan's choice ``name``, as
    :func:`paired_tests` reports it (``"auto"`` decides Wilcoxon: no Shapiro-Wilk without pairs)."""
    return _TEST_LABELS[choose_test(name, _NAN, 0)]


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size >= 2 else _NAN


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else _NAN


def _group_codes(frame: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """Group numbers in order of first appearance, missing keys a group of their own (as
    ``groupby(keys, sort=False, dropna=False).ngroup()``, from one hash pass per column)."""
    codes = np.zeros(len(frame), dtype=np.int64)
    for key in keys:
        own, uniques = pd.factorize(frame[key], use_na_sentinel=False)
        codes = codes * max(len(uniques), 1) + own
        codes, _ = pd.factorize(codes)
    return codes


def _group_rows(codes: np.ndarray):
    """Per group number, the row positions in row order."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(codes.max() + 2 if codes.size else 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(bounds.size - 1)]


def _complete_pairs(pairs: pd.DataFrame, keys: list[str]):
    """``(key, pre, post)`` per group of ``keys`` in order of first appearance (as
    ``groupby(sort=False, dropna=False)``), each with its complete pairs in row order.

    Slices two arrays instead of building a frame per group: a registry's subgroup table has
    millions of rows.
    """
    pre_all = pairs["pre_value"].to_numpy(dtype=float)
    post_all = pairs["post_value"].to_numpy(dtype=float)
    complete = ~(np.isnan(pre_all) | np.isnan(post_all))
    key_values = pairs[keys].to_numpy(dtype=object)
    for n, rows in enumerate(_group_rows(_group_codes(pairs, keys))):
        key = tuple(key_values[rows[0]])
        rows = rows[complete[rows]]
        yield (n,), key, pre_all[rows], post_all[rows]


def pairs_by_level(pairs: pd.DataFrame, levels: pd.DataFrame, level_order: list[str]):
    """:func:`_complete_pairs` of the whole cohort (group ``"all"``) and of every level, per
    outcome, each with the place where the long table (see :func:`paired_tests`) would first
    show that group: the "all" rows in pair order, then each level's rows sorted by subject."""
    pre_all = pairs["pre_value"].to_numpy(dtype=float)
    post_all = pairs["post_value"].to_numpy(dtype=float)
    complete = ~(np.isnan(pre_all) | np.isnan(post_all))
    # Codes in sorted subject order, so sorting codes sorts subjects.
    subject, subjects = pd.factorize(pairs["subject"], sort=True)
    # Each level's members as a mask over the subject codes; the levels' labels are matched
    # once (a registry has hundreds of thousands of subject-level rows), not once per level.
    known = levels[levels["subject"].isin(subjects)]
    level = pd.Index(level_order).get_indexer(known["group"])
    positions = subjects.get_indexer(known["subject"])
    members = {}
    for i, group in enumerate(level_order):
        mask = np.zeros(len(subjects), dtype=bool)
        mask[positions[level == i]] = True
        members[group] = mask
    key_values = pairs[["outcome", "score"]].to_numpy(dtype=object)
    for rows in _group_rows(_group_codes(pairs, ["outcome", "score"])):
        outcome, score = key_values[rows[0]]
        kept = rows[complete[rows]]
        yield (0, 0, 0, int(rows[0])), (outcome, score, "all"), pre_all[kept], post_all[kept]
        # Within a level the long table is sorted by subject (stably).
        rows = rows[np.argsort(subject[rows], kind="stable")]
        for rank, group in enumerate(level_order):
            chosen = rows[members[group][subject[rows]]]
            if chosen.size == 0:
                continue  # no row of this level: no group, as in the long table
            first = (1, rank, int(subject[chosen[0]]), int(chosen[0]))
            chosen = chosen[complete[chosen]]
            yield first, (outcome, score, group), pre_all[chosen], post_all[chosen]


def _group_tests(
    key: tuple,
    pre: np.ndarray,
    post: np.ndarray,
    planned: str,
    *,
    pre_visit: str,
    post_visit: str,
    conf_level: float,
    alpha: float,
) -> dict:
    """One row of :func:`paired_tests` (without ``p_adj`` and ``p_adj_method``) for one group's
    complete pairs: ``key`` is its (outcome, score, group), ``planned`` the plan's test."""
    row = _group_statistics(
        key, pre, post, pre_visit=pre_visit, post_visit=post_visit, conf_level=conf_level
    )
    name = choose_test(planned, row["shapiro_p"], row["n_pairs"], alpha)
    return row | {
        "test_used": _TEST_LABELS[name],
        "p_used": row["p_t" if name == "t" else "p_wilcoxon"],
    }


def _group_statistics(
    key: tuple,
    pre: np.ndarray,
    post: np.ndarray,
    *,
    pre_visit: str,
    post_visit: str,
    conf_level: float,
) -> dict:
    """One row of :func:`paired_statistics` for one group's complete pairs: ``key`` is its
    (outcome, score, group)."""
    outcome, score, group = key
    tt = paired_t(pre, post, conf_level=conf_level)
    # The rank-based statistics share one sort of the differences (pre and post are complete).
    distinct = _distinct_nonzero(post - pre)
    wt = wilcoxon_signed_rank(pre, post, distinct=distinct)
    hl = hodges_lehmann(pre, post, conf_level, distinct=distinct)
    es = effect_sizes(pre, post, conf_level=conf_level, distinct=distinct)
    sw, sp, sw_note = shapiro_wilk(post - pre)
    notes = []
    for x in (tt.note, wt.note, hl.note, es.note, sw_note):
        for part in x.split("; "):
            if part and part not in notes:
                notes.append(part)
    return {
        "outcome": outcome,
        "score": score,
        "group": group,
        "pre_visit": pre_visit,
        "post_visit": post_visit,
        "n_pairs": tt.n,
        "pre_mean": _mean(pre),
        "pre_sd": _sd(pre),
        "post_mean": _mean(post),
        "post_sd": _sd(post),
        "mean_diff": tt.mean_diff,
        "sd_diff": tt.sd_diff,
        "ci_low": tt.ci_low,
        "ci_high": tt.ci_high,
        "t": tt.t,
        "df": tt.df,
        "p_t": tt.p,
        "wilcoxon_v": wt.v,
        "p_wilcoxon": wt.p,
        "wilcoxon_method": wt.method,
        "hodges_lehmann": hl.estimate,
        "hl_ci_low": hl.ci_low,
        "hl_ci_high": hl.ci_high,
        "hl_conf_level": hl.conf_level,
        "dz": es.dz,
        "dz_ci_low": es.dz_ci_low,
        "dz_ci_high": es.dz_ci_high,
        "hedges_g": es.hedges_g,
        "rank_biserial": es.rank_biserial,
        "shapiro_w": sw,
        "shapiro_p": sp,
        "note": "; ".join(notes),
    }


def paired_tests(
    pairs: pd.DataFrame,
    *,
    test: Union[str, Mapping[str, str]] = "wilcoxon",
    pre_visit: str = "pre",
    post_visit: str = "post",
    conf_level: float = 0.95,
    alpha: float = 0.05,
    primary: str = "",
    multiplicity: str = "holm",
    levels: pd.DataFrame | None = None,
    level_order: list[str] | None = None,
) -> pd.DataFrame:
    """Pre/post paired tests for every (outcome, score, group) in a long table.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Long table with columns ``outcome, score, subject, pre_value,
        post_value`` and optionally ``group`` (subgroup label; ``"all"`` if
        absent): one row per subject per outcome/score/group. Rows with a
        missing ``pre_value`` or ``post_value`` are dropped.
    test : {"wilcoxon", "t", "auto"} or mapping of outcome to one of these
        Which test's p-value becomes ``p_used``. A mapping chooses per
        outcome; outcomes absent from it use ``"wilcoxon"``. ``"auto"`` is
        resolved per row by :func:`choose_test`. Both tests are always
        computed and reported.
    pre_visit, post_visit : str
        Labels describing the visit rules that produced the pre and post
        values; copied into the output.
    conf_level : float, default 0.95
        Coverage of the confidence intervals (mean difference, Hodges-Lehmann
        estimate, d_z).
    alpha : float, default 0.05
        Significance level; used only by the ``"auto"`` test rule.
    primary : str, default ""
        Name of the primary outcome. Its p-value is not adjusted; every other
        outcome forms the secondary family, adjusted within each group. With
        no primary outcome every outcome is in the family.
    multiplicity : {"holm", "bh"}, default "holm"
        Adjustment over the secondary family (:func:`pipeline.statistics.
        multiplicity.adjust_p`, R ``p.adjust``).
    levels : pandas.DataFrame, optional
        ``subject, group``: each subject's subgroup levels (one row per subject and
        subgroup). The pairs (without a ``group`` column) are then tested for the whole
        cohort (group ``"all"``) and within every level, in ``level_order`` (default: order
        of first appearance): the same table as passing the pairs with ``group = "all"``
        followed by the pairs of each level sorted by level and subject, without building
        that table (a registry's has tens of millions of rows).
    level_order : list of str, optional

    Returns
    -------
    pandas.DataFrame
        One row per (outcome, score, group), in order of first appearance of
        outcome, then score, then group. Columns, in this order (unrounded):

        - ``outcome``, ``score``, ``group``: the keys.
        - ``pre_visit``, ``post_visit``: the labels passed in.
        - ``n_pairs``: number of complete pairs.
        - ``pre_mean``, ``pre_sd``, ``post_mean``, ``post_sd``: mean and
          sample SD (denominator n - 1) of the paired pre and post values.
        - ``mean_diff``, ``sd_diff``: mean and SD of ``d = post - pre``.
        - ``ci_low``, ``ci_high``: t-based confidence interval of the mean
          difference (R ``t.test(post, pre, paired = TRUE)$conf.int``).
        - ``t``, ``df``, ``p_t``: paired t statistic, degrees of freedom,
          two-sided p-value (:func:`paired_t`).
        - ``wilcoxon_v``, ``p_wilcoxon``, ``wilcoxon_method``: Wilcoxon
          signed-rank V (sum of ranks of positive differences), two-sided
          p-value, ``"exact"`` or ``"normal approximation with continuity
          correction"`` (:func:`wilcoxon_signed_rank`).
        - ``hodges_lehmann``: Hodges-Lehmann estimate of the median
          difference (:func:`hodges_lehmann`; R ``wilcox.test(...,
          conf.int = TRUE)$estimate``).
        - ``hl_ci_low``, ``hl_ci_high``: its confidence interval (R
          ``wilcox.test(post, pre, paired = TRUE, conf.int = TRUE,
          conf.level = conf_level)$conf.int``: exact from the Walsh averages
          without ties or zeros and below 50 differences, otherwise by
          inverting the normal approximation with continuity correction).
        - ``hl_conf_level``: the level R reports for that interval:
          ``conf_level``, or lower when so few differences cannot achieve it
          (then ``note`` says so); NaN when there is no interval.
        - ``dz``, ``dz_ci_low``, ``dz_ci_high``: Cohen's d_z with its
          noncentral-t confidence interval; ``hedges_g``: d_z with Hedges'
          exact small-sample correction; ``rank_biserial``: matched-pairs
          rank-biserial correlation (:func:`effect_sizes`).
        - ``shapiro_w``, ``shapiro_p``: Shapiro-Wilk test of the differences
          (:func:`shapiro_wilk`; R ``shapiro.test``).
        - ``test_used``: ``"Wilcoxon signed-rank"`` or ``"paired t"``.
        - ``p_used``: the p-value of ``test_used``.
        - ``p_adj``: ``p_used`` adjusted for multiplicity over the secondary
          family of the same group; equal to ``p_used`` for the primary
          outcome; NaN only where ``p_used`` is NaN.
        - ``p_adj_method``: ``"none (primary outcome)"``, ``"Holm"`` or
          ``"Benjamini-Hochberg"`` (with the family size), or ``"not
          computed"`` when ``p_used`` is NaN.
        - ``note``: "" normally; otherwise why some statistics are NaN,
          several reasons joined by "; ".

    Notes
    -----
    Differences are ``post - pre``. Formulas, assumptions, the zero and tie
    rules, and the R functions matched are described in :func:`paired_t`,
    :func:`wilcoxon_signed_rank`, :func:`hodges_lehmann`,
    :func:`effect_sizes` and :func:`shapiro_wilk`. Degenerate groups (0, 1
    or 2 pairs, all-zero or constant differences) give NaN statistics and a
    note rather than an error. A group whose rows all lack a value still
    appears, with ``n_pairs = 0``.

    References
    ----------
    .. [1] Wilcoxon, F. (1945). Individual comparisons by ranking methods.
       Biometrics Bulletin 1(6), 80-83.
    .. [2] Hollander, M., Wolfe, D. A. & Chicken, E. (2014). Nonparametric
       Statistical Methods, 3rd ed., Wiley.
    .. [3] R Core Team. ``t.test``, ``wilcox.test``, ``shapiro.test`` and
       ``p.adjust`` (package stats), R documentation.
    """
    return chosen_tests(
        paired_statistics(
            pairs,
            pre_visit=pre_visit,
            post_visit=post_visit,
            conf_level=conf_level,
            levels=levels,
            level_order=level_order,
        ),
        test=test,
        alpha=alpha,
        primary=primary,
        multiplicity=multiplicity,
    )


#: The columns of :func:`paired_statistics`: those of :func:`paired_tests` that no test choice
#: changes.
STATISTICS_COLUMNS = [
    c for c in COLUMNS if c not in ("test_used", "p_used", "p_adj", "p_adj_method")
]


def paired_statistics(
    pairs: pd.DataFrame,
    *,
    pre_visit: str = "pre",
    post_visit: str = "post",
    conf_level: float = 0.95,
    levels: pd.DataFrame | None = None,
    level_order: list[str] | None = None,
) -> pd.DataFrame:
    """Every statistic of :func:`paired_tests` that the choice of test does not change, for
    every (outcome, score, group): both tests, the Hodges-Lehmann estimate, the effect sizes
    and the Shapiro-Wilk test are computed whatever the plan's test, ``alpha``, primary outcome
    or multiplicity method, which :func:`chosen_tests` applies. A rerun with another of those
    options reuses this table (the analysis step keeps it, :mod:`pipeline.kept_results`) and
    computes nothing again.

    Parameters
    ----------
    pairs, pre_visit, post_visit, conf_level, levels, level_order
        As :func:`paired_tests`.

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`paired_tests`, in its order, with its columns but ``test_used``,
        ``p_used``, ``p_adj`` and ``p_adj_method`` (:data:`STATISTICS_COLUMNS`), each as
        :func:`paired_tests` describes it; unrounded.
    """
    required = ["outcome", "score", "subject", "pre_value", "post_value"]
    missing = [c for c in required if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs is missing columns: {missing}")
    if levels is not None:
        if "group" in pairs.columns:
            raise ValueError("pairs with a group column cannot be split by levels as well")
        level_order = list(level_order if level_order is not None else pd.unique(levels["group"]))
    elif "group" not in pairs.columns:
        pairs = pairs.assign(group="all")
    # Keep groups before dropping incomplete rows, so an all-missing group
    # still reports n_pairs = 0 instead of silently disappearing.
    rows = []
    groups = (
        _complete_pairs(pairs, ["outcome", "score", "group"])
        if levels is None
        else pairs_by_level(pairs, levels, level_order)
    )
    for place, key, pre, post in groups:
        rows.append(
            _group_statistics(
                key,
                pre,
                post,
                pre_visit=pre_visit,
                post_visit=post_visit,
                conf_level=conf_level,
            )
            | {"_place": place}
        )
    # Groups in order of first appearance in the (long) table, as groupby(sort=False) gives them.
    rows.sort(key=lambda row: row.pop("_place"))
    out = _in_outcome_order(
        pd.DataFrame(rows, columns=STATISTICS_COLUMNS), pd.unique(pairs["outcome"])
    )
    return _typed(out, STATISTICS_COLUMNS)


def chosen_tests(
    statistics: pd.DataFrame,
    *,
    test: Union[str, Mapping[str, str]] = "wilcoxon",
    alpha: float = 0.05,
    primary: str = "",
    multiplicity: str = "holm",
) -> pd.DataFrame:
    """:func:`paired_tests`' table from :func:`paired_statistics`' one: each row's test by the
    plan's choice (:func:`choose_test`), its P value, and the P values adjusted for
    multiplicity over the secondary family of each group.

    Parameters
    ----------
    statistics : pandas.DataFrame
        A table of :func:`paired_statistics`.
    test, alpha, primary, multiplicity
        As :func:`paired_tests`.

    Returns
    -------
    pandas.DataFrame
        The table :func:`paired_tests` returns (every column described there): ``statistics``
        with ``test_used``, ``p_used``, ``p_adj`` and ``p_adj_method``.
    """
    from pipeline.statistics.multiplicity import adjust_secondary

    def planned_test(outcome) -> str:
        name = test.get(outcome, "wilcoxon") if isinstance(test, Mapping) else test
        if name not in TEST_CHOICES:
            raise ValueError(
                f"test must be one of {', '.join(TEST_CHOICES)}, got {name!r} for {outcome!r}"
            )
        return name

    names = [
        choose_test(planned_test(outcome), float(shapiro_p), int(n), alpha)
        for outcome, shapiro_p, n in zip(
            statistics["outcome"], statistics["shapiro_p"], statistics["n_pairs"]
        )
    ]
    t = np.array([name == "t" for name in names], dtype=bool)
    out = statistics.assign(
        test_used=pd.Series(
            [_TEST_LABELS[name] for name in names], index=statistics.index, dtype=object
        ),
        p_used=np.where(
            t, statistics["p_t"].to_numpy(float), statistics["p_wilcoxon"].to_numpy(float)
        ),
    )
    out = adjust_secondary(out.reset_index(drop=True), primary=primary, method=multiplicity)
    return _typed(out, COLUMNS)


def _typed(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame``'s ``columns``, typed even when there is no row (no pairs at all): numbers stay
    numbers in the warehouse."""
    return (
        frame[columns]
        .astype({c: object if c in TEXT_COLUMNS else float for c in columns})
        .astype({"n_pairs": int})
    )


def _results_frame(rows: list[dict], outcomes, primary: str, multiplicity: str) -> pd.DataFrame:
    """:func:`paired_tests`' table from its rows (:func:`_group_tests`, in the order of their
    groups): outcomes in the order of ``outcomes``, P values adjusted, columns typed."""
    from pipeline.statistics.multiplicity import adjust_secondary

    out = _in_outcome_order(
        pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("p_adj", "p_adj_method")]),
        outcomes,
    )
    out = adjust_secondary(out, primary=primary, method=multiplicity)
    return _typed(out, COLUMNS)


def _in_outcome_order(out: pd.DataFrame, outcomes) -> pd.DataFrame:
    """``out``'s rows with the outcomes in the order of ``outcomes`` and each outcome's groups
    as they came (a stable sort), indexed from 0."""
    if len(out):
        rank = {o: i for i, o in enumerate(outcomes)}
        out = out.iloc[np.argsort(out["outcome"].map(rank).to_numpy(), kind="stable")]
    return out.reset_index(drop=True)


def test_estimates(results: pd.DataFrame, conf_level: float) -> pd.DataFrame:
    """The change estimate that goes with each row's test, so an estimate is never shown beside
    the P of another test.

    A Wilcoxon signed-rank row gets the Hodges-Lehmann median change with the CI that inverts
    the signed-rank test (R ``wilcox.test(..., conf.int = TRUE)``); where R had to lower the
    interval's level below ``conf_level`` (too few non-zero differences, ``hl_conf_level``) the
    limits are NaN. Every other row (paired t, or results without the Hodges-Lehmann columns)
    gets the mean change with its t-based CI.

    Parameters
    ----------
    results : DataFrame
        Rows of :func:`paired_tests` (any subset: whole cohort or subgroups).
    conf_level : float
        The plan's confidence level.

    Returns
    -------
    DataFrame
        Indexed as ``results``:

        - ``estimate``: the Hodges-Lehmann or the mean change (after - before).
        - ``estimate_low``, ``estimate_high``: its confidence limits (NaN where not achievable).
        - ``estimate_kind``: ``"median"`` (Hodges-Lehmann) or ``"mean"``.
    """
    median = (results["test_used"] == _TEST_LABELS["wilcoxon"]) & ("hodges_lehmann" in results)
    if "hodges_lehmann" not in results:
        return pd.DataFrame(
            {
                "estimate": results["mean_diff"],
                "estimate_low": results["ci_low"],
                "estimate_high": results["ci_high"],
                "estimate_kind": "mean",
            },
            index=results.index,
        )
    achieved = results.get("hl_conf_level", pd.Series(conf_level, index=results.index))
    reached = achieved.astype(float) >= conf_level - 1e-12
    return pd.DataFrame(
        {
            "estimate": results["hodges_lehmann"].where(median, results["mean_diff"]),
            "estimate_low": results["hl_ci_low"]
            .where(reached, np.nan)
            .where(median, results["ci_low"]),
            "estimate_high": results["hl_ci_high"]
            .where(reached, np.nan)
            .where(median, results["ci_high"]),
            "estimate_kind": np.where(median, "median", "mean"),
        },
        index=results.index,
    )
