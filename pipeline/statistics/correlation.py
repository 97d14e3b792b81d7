"""Correlation of baseline severity with change: Pearson and Spearman, as R's ``cor.test``."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.statistics.grouped import KEYS, by_group

# A correlation's result columns, after the keys (and the variables correlated).
_RESULT_COLUMNS = [
    "method",
    "n",
    "estimate",
    "statistic",
    "df",
    "p",
    "ci_low",
    "ci_high",
    "p_method",
    "note",
]

__all__ = [
    "pearson",
    "spearman",
    "baseline_change_correlation",
    "correlations_by_group",
    "group_correlations",
]

_NAN = float("nan")
# R's cor.test switches Spearman's p from AS 89 to the t approximation above this n.
_PRHO_MAX_N = 1290


def _complete(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    ok = ~(np.isnan(x) | np.isnan(y))
    return x[ok], y[ok]


def _start(x, y, method: str, **fields) -> tuple[np.ndarray, np.ndarray, dict]:
    """The complete pairs and the result with every value NaN; its ``note`` says why the test is
    undefined (fewer than 3 pairs, a constant variable), if it is."""
    x, y = _complete(x, y)
    out = {
        "n": x.size,
        "estimate": _NAN,
        "statistic": _NAN,
        "df": _NAN,
        "p": _NAN,
        "ci_low": _NAN,
        "ci_high": _NAN,
        **fields,
        "note": "",
    }
    if x.size < 3:
        out["note"] = f"fewer than 3 pairs: {method} correlation test undefined"
    elif np.ptp(x) == 0 or np.ptp(y) == 0:
        out["note"] = "a variable is constant: correlation undefined"
    return x, y, out


def pearson(x, y, conf_level: float = 0.95) -> dict:
    """Pearson correlation with t test and Fisher-z interval (R ``cor.test``).

    Returns
    -------
    dict
        ``n``, ``estimate`` (r), ``statistic`` (t = r sqrt(n-2) / sqrt(1-r^2)),
        ``df`` (n - 2), ``p`` (two-sided), ``ci_low``, ``ci_high``
        (``tanh(atanh(r) -/+ z_{1-alpha/2} / sqrt(n - 3))``, only for n > 3, as
        R) and ``note`` (why a value is NaN: fewer than 3 pairs, a constant
        variable).

    Notes
    -----
    Assumes a linear relation and bivariate normality for the test and the
    interval; complete pairs only. ``r``, ``p`` and the interval are
    ``scipy.stats.pearsonr(x, y)`` and its ``confidence_interval`` (Fisher's
    z, as R); ``t`` is R's formula on that ``r`` (scipy takes its p from the
    same t distribution, written as a beta distribution of ``r``).
    """
    x, y, out = _start(x, y, "Pearson")
    if out["note"]:
        return out
    n = x.size
    res = stats.pearsonr(x, y)
    r = float(res.statistic)
    df = n - 2
    t = math.sqrt(df) * r / math.sqrt(1 - r * r) if abs(r) < 1 else math.copysign(math.inf, r)
    out.update(estimate=r, statistic=t, df=float(df), p=float(res.pvalue))
    if n > 3:
        if abs(r) < 1:
            ci = res.confidence_interval(conf_level)
            out.update(ci_low=float(ci.low), ci_high=float(ci.high))
        else:  # atanh(+-1) is infinite: the interval is the point (scipy would divide by zero)
            out.update(ci_low=r, ci_high=r)
    else:
        out["note"] = "3 pairs: no Fisher-z interval (R gives none below 4)"
    return out


@functools.lru_cache(maxsize=None)
def _permutation_statistics(n: int) -> np.ndarray:
    """Spearman's S = sum (i - p_i)^2 of every permutation p of 1..n, sorted (n <= 9: at most
    362,880): the exact null distribution :func:`_prho` counts in, enumerated once per n (a
    study's small subgroup levels ask for it again and again). Read-only."""
    perms = np.array(list(itertools.permutations(range(1, n + 1))), dtype=np.int64)
    ise = np.sort(((np.arange(1, n + 1) - perms) ** 2).sum(axis=1))
    ise.setflags(write=False)
    return ise


def _prho(n: int, s: float, lower_tail: bool) -> float:
    """R's ``prho`` (AS 89): P(S >= s), or P(S < s) if ``lower_tail``, for
    Spearman's S = sum (rank differences)^2; exact for n <= 9, Edgeworth
    series above. Port of ``src/library/stats/src/prho.c``."""
    pv = 0.0 if lower_tail else 1.0
    if n <= 1 or s <= 0:
        return pv
    n3 = float(n) * (float(n) * n - 1.0) / 3.0
    if s > n3:
        return 1 - pv
    if n <= 9:
        nfac = math.factorial(n)
        if s == n3:
            ifr = 1
        else:
            ise = _permutation_statistics(n)
            ifr = int(ise.size - np.searchsorted(ise, s, side="left"))
        return (nfac - ifr if lower_tail else ifr) / nfac
    c = (
        0.2274,
        0.2531,
        0.1745,
        0.0758,
        0.1033,
        0.3932,
        0.0879,
        0.0151,
        0.0072,
        0.0831,
        0.0131,
        4.6e-4,
    )
    y = float(n)
    b = 1 / y
    x = (6.0 * (s - 1) * b / (y * y - 1) - 1) * math.sqrt(y - 1)
    y = x * x
    u = (
        x
        * b
        * (
            c[0]
            + b * (c[1] + c[2] * b)
            + y
            * (
                -c[3]
                + b * (c[4] + c[5] * b)
                - y * b * (c[6] + c[7] * b - y * (c[8] - c[9] * b + y * b * (c[10] - c[11] * y)))
            )
        )
    )
    y = u / math.exp(y / 2)
    pv = (-y if lower_tail else y) + float(stats.norm.cdf(x) if lower_tail else stats.norm.sf(x))
    return min(1.0, max(0.0, pv))


def spearman(x, y) -> dict:
    """Spearman rank correlation and its p-value exactly as R's ``cor.test``.

    Returns
    -------
    dict
        ``n``, ``estimate`` (rho, Pearson correlation of average ranks),
        ``statistic`` (S = (n^3 - n)(1 - rho) / 6), ``df`` (NaN: none),
        ``p`` (two-sided), ``ci_low``/``ci_high`` (NaN: R gives no interval),
        ``p_method`` and ``note``.

    Notes
    -----
    R's rule: without ties and n <= 1290 the p-value comes from AS 89
    (exact enumeration for n <= 9, an Edgeworth series above), evaluated at
    ``round(S)``; with ties (or larger n) from the t approximation
    ``t = rho sqrt((n - 2) / (1 - rho^2))`` on n - 2 df.
    Assumes only a monotone relation; complete pairs only.

    Written out because scipy has no AS 89: ``scipy.stats.spearmanr``, the
    library call this stands in for, always takes its p-value from the t
    approximation. Where R does too (ties, or more than 1290 pairs) the two
    agree, and rho always does; ``tests/test_statistics_correlation.py``
    checks both. R's AS 89 port is :func:`_prho`.
    """
    return _spearman(x, y)


def _spearman(x, y, x_ranks: np.ndarray | None = None) -> dict:
    """:func:`spearman`, with the average ranks of ``x`` (its complete pairs) when the caller
    has them already (one variable correlated with two others is ranked once)."""
    x_all = x
    x, y, out = _start(x, y, "Spearman", p_method="not computed")
    if out["note"]:
        return out
    n = x.size
    if x_ranks is None or x.size != np.asarray(x_all).size:
        x_ranks = stats.rankdata(x)
    rho = float(np.corrcoef(x_ranks, stats.rankdata(y))[0, 1])
    q = (n**3 - n) * (1 - rho) / 6
    # Ties matter only where R would take AS 89 (their search is two sorts of the values).
    exact = n <= _PRHO_MAX_N and not (min(np.unique(x).size, np.unique(y).size) < n)

    def pspearman(qq: float, lower_tail: bool) -> float:
        if exact:
            return _prho(n, round(qq) + 2 * lower_tail, lower_tail)
        den = n * (n * n - 1) / 6
        r = 1 - qq / den
        t = r / math.sqrt((1 - r * r) / (n - 2)) if abs(r) < 1 else math.copysign(math.inf, r)
        return float(stats.t.sf(t, n - 2) if lower_tail else stats.t.cdf(t, n - 2))

    p = pspearman(q, False) if q > (n**3 - n) / 6 else pspearman(q, True)
    out.update(
        estimate=rho,
        statistic=q,
        p=min(2 * p, 1.0),
        p_method="AS 89" if exact else "t approximation",
    )
    return out


def baseline_change_correlation(pairs: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
    """Correlation of the baseline (pre) value with the change (post - pre).

    Parameters
    ----------
    pairs : pandas.DataFrame
        Columns ``outcome, score, pre_value, post_value`` (and optionally
        ``group``); complete pairs are used.

    Returns
    -------
    pandas.DataFrame
        Two rows (Pearson, Spearman) per outcome, score and group, columns:
        ``outcome, score, group, method, n, estimate`` (r or rho),
        ``statistic`` (t for Pearson, S for Spearman), ``df``, ``p``,
        ``ci_low, ci_high`` (Fisher-z interval, Pearson only), ``p_method``
        (``"t"``, ``"AS 89"`` or ``"t approximation"``), ``note``.

    Notes
    -----
    Change is regressed on a quantity it contains (pre), so a negative
    correlation is expected from regression to the mean and measurement
    error alone [1]; read it as description, not as evidence that worse
    patients gain more. Checked against R ``cor.test(pre, post - pre,
    method = "pearson" | "spearman")``.

    References
    ----------
    .. [1] Oldham, P. D. (1962). A note on the analysis of repeated
       measurements of the same subjects. J. Chronic Dis. 15, 969-977.
    """
    rows = []
    for key, g in by_group(pairs):
        pre = g["pre_value"].to_numpy(dtype=float)
        change = g["post_value"].to_numpy(dtype=float) - pre
        pearson_result = {**pearson(pre, change, conf_level), "p_method": "t"}
        for method, result in (("Pearson", pearson_result), ("Spearman", spearman(pre, change))):
            rows.append({**key, "method": method, **result})
    return pd.DataFrame(rows, columns=[*KEYS, *_RESULT_COLUMNS])


#: The columns of :func:`correlations_by_group`'s table, in order.
GROUP_COLUMNS = [*KEYS, "variables", *_RESULT_COLUMNS]


def correlations_by_group(pairs: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
    """Pre against post, and pre against change, Pearson and Spearman, within each group.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Columns ``outcome, score, group, pre_value, post_value``: the whole cohort (group
        ``"all"``) and each subgroup level's pairs, groups in the order wanted (a subgroup's
        levels in their declared order); complete pairs are used.
    conf_level : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        Four rows per outcome, score and group, in order of first appearance: ``variables``
        ``"pre vs post"`` then ``"pre vs change"``, each ``method`` ``"Pearson"`` then
        ``"Spearman"``. Columns :data:`GROUP_COLUMNS`: ``n`` (complete pairs), ``estimate``
        (r or rho), ``statistic`` (t for Pearson, S for Spearman), ``df`` (n - 2, Pearson),
        ``p`` (two-sided), ``ci_low``, ``ci_high`` (Fisher-z interval, Pearson with n > 3),
        ``p_method`` (``"t"``, ``"AS 89"`` or ``"t approximation"``), ``note``.

    Notes
    -----
    :func:`pearson` and :func:`spearman`, as R ``cor.test(pre, post)`` and ``cor.test(pre,
    post, method = "spearman")`` (and ``post - pre`` for the change) within each group. The
    pre-post correlation is the test-retest side of a paired design: it is what makes the
    paired analysis more precise than comparing two independent means, and is not evidence of
    an effect of treatment. Pre against change: see :func:`baseline_change_correlation`.
    """
    rows = []
    for key, g in by_group(pairs):
        pre = g["pre_value"].to_numpy(dtype=float)
        post = g["post_value"].to_numpy(dtype=float)
        rows += group_correlations(key, pre, post, conf_level)
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def group_correlations(key: dict, pre: np.ndarray, post: np.ndarray, conf_level: float) -> list:
    """:func:`correlations_by_group`'s four rows of one group (``key``: its outcome, score and
    group) from its ``pre`` and ``post`` values, as dicts."""
    rows = []
    # pre is ranked once for both Spearman tests when every pair is complete (NaN-free).
    complete = not (np.isnan(pre).any() or np.isnan(post).any())
    pre_ranks = stats.rankdata(pre) if complete and pre.size >= 3 else None
    for variables, other in (("pre vs post", post), ("pre vs change", post - pre)):
        rows.append(
            {
                **key,
                "variables": variables,
                "method": "Pearson",
                **pearson(pre, other, conf_level),
                "p_method": "t",
            }
        )
        rows.append(
            {
                **key,
                "variables": variables,
                "method": "Spearman",
                **_spearman(pre, other, pre_ranks),
            }
        )
    return rows
