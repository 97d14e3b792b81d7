"""Between-group comparisons of change (post - pre), each matching an R function.

Welch t (``t.test(change ~ group)``), Mann-Whitney (``wilcox.test(change ~
group)``), one-way ANOVA and Welch ANOVA (``oneway.test(change ~ group,
var.equal = TRUE | FALSE)``), Kruskal-Wallis (``kruskal.test``) and ANCOVA
``post ~ pre [+ covariates] + group`` (F test of group: ``anova(reduced,
full)`` on ``lm``). Undefined cases (a group of one, constant data, fewer than
two groups) return NaN with a note, never an error.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["welch_t", "mann_whitney", "oneway_anova", "welch_anova", "kruskal_wallis",
           "ancova", "compare_change", "RESULT_COLUMNS"]

_NAN = float("nan")
_EXACT_MAX_N = 50  # R: exact Mann-Whitney p only when both groups have fewer than 50

#: Columns of every result row (and of :func:`compare_change`'s table after its keys).
RESULT_COLUMNS = ["test", "levels", "n", "n_total", "estimate", "ci_low", "ci_high",
                  "statistic_name", "statistic", "df1", "df2", "p", "method", "note"]


def _row(test, levels, ns, **kw) -> dict:
    row = {"test": test, "levels": " | ".join(map(str, levels)),
           "n": " | ".join(str(int(n)) for n in ns), "n_total": int(sum(ns)),
           "estimate": _NAN, "ci_low": _NAN, "ci_high": _NAN, "statistic_name": "",
           "statistic": _NAN, "df1": _NAN, "df2": _NAN, "p": _NAN, "method": "", "note": ""}
    row.update(kw)
    return row


def welch_t(x, y, conf_level: float = 0.95) -> dict:
    """Welch two-sample t-test of ``mean(x) - mean(y)`` (R ``t.test(x, y)``).

    Returns
    -------
    dict
        ``estimate`` (difference in means), ``ci_low``, ``ci_high``, ``statistic``
        (t), ``df1`` (Welch-Satterthwaite df), ``p`` (two-sided), ``note``.

    Notes
    -----
    ``se = sqrt(v_x/n_x + v_y/n_y)``; ``df = se^4 / ((v_x/n_x)^2/(n_x-1) +
    (v_y/n_y)^2/(n_y-1))``. Assumes independent groups and roughly normal
    means; unequal variances allowed. A group with fewer than 2 values, or
    ``se`` below R's ``10 eps max(|mean|)``, gives NaN with a note.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    nx, ny = x.size, y.size
    out = {"estimate": _NAN, "ci_low": _NAN, "ci_high": _NAN, "statistic": _NAN,
           "df1": _NAN, "p": _NAN, "note": ""}
    if nx < 2 or ny < 2:
        out["note"] = "a group has fewer than 2 values: Welch t undefined"
        if nx and ny:
            out["estimate"] = float(x.mean() - y.mean())
        return out
    mx, my, vx, vy = x.mean(), y.mean(), x.var(ddof=1), y.var(ddof=1)
    sx, sy = vx / nx, vy / ny
    se = math.sqrt(sx + sy)
    out["estimate"] = float(mx - my)
    if se < 10 * np.finfo(float).eps * max(abs(mx), abs(my)) or se == 0:
        out["note"] = "data essentially constant: Welch t undefined"
        return out
    df = (sx + sy) ** 2 / (sx ** 2 / (nx - 1) + sy ** 2 / (ny - 1))
    t = (mx - my) / se
    q = float(stats.t.ppf(1 - (1 - conf_level) / 2, df))
    out.update(ci_low=float(mx - my - q * se), ci_high=float(mx - my + q * se), statistic=float(t),
               df1=float(df), p=float(2 * stats.t.sf(abs(t), df)))
    return out


def _rank_sum_counts(m: int, n: int) -> np.ndarray:
    """Number of size-m subsets of ranks 1..m+n by W = rank sum - m(m+1)/2 (floats;
    exact integers up to 2**53 and correctly relative beyond)."""
    total = m + n
    top = sum(range(total - m + 1, total + 1))
    cnt = np.zeros((m + 1, top + 1))
    cnt[0, 0] = 1.0
    for r in range(1, total + 1):
        cnt[1:, r:] = cnt[1:, r:] + cnt[:-1, :-r]
    base = m * (m + 1) // 2
    return cnt[m, base: base + m * n + 1]


def mann_whitney(x, y, *, ranks: np.ndarray | None = None) -> dict:
    """Wilcoxon rank-sum (Mann-Whitney) test, as R's ``wilcox.test(x, y)``.

    Returns
    -------
    dict
        ``statistic`` (R's W = rank sum of x - n_x(n_x + 1)/2), ``p``
        (two-sided), ``method`` (``"exact"`` or ``"normal approximation with
        continuity correction"``), ``note``.

    Notes
    -----
    Exact p (``2 min(P(W' <= W), P(W' >= W))``, capped at 1) when both groups
    have fewer than 50 values and there are no ties; otherwise the normal
    approximation with tie-corrected variance
    ``n_x n_y / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1)))`` and continuity
    correction. Tests whether one distribution tends to give larger values;
    assumes independent observations.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    nx, ny = x.size, y.size
    if nx == 0 or ny == 0:
        return {"statistic": _NAN, "p": _NAN, "method": "not computed",
                "note": "a group is empty: Mann-Whitney undefined"}
    # ``ranks``: the average ranks of x then y, when the caller has them already.
    r = stats.rankdata(np.concatenate([x, y])) if ranks is None else ranks
    w = float(r[:nx].sum() - nx * (nx + 1) / 2)
    _, ties = np.unique(r, return_counts=True)
    if nx < _EXACT_MAX_N and ny < _EXACT_MAX_N and not np.any(ties > 1):
        counts = _rank_sum_counts(nx, ny)
        k = int(round(w))
        total = counts.sum()
        lower, upper = counts[: k + 1].sum() / total, counts[k:].sum() / total
        p = min(1.0, 2 * (upper if w > nx * ny / 2 else lower))
        return {"statistic": w, "p": float(p), "method": "exact", "note": ""}
    z = w - nx * ny / 2
    N = nx + ny
    sigma = math.sqrt(nx * ny / 12 * ((N + 1) - float(np.sum(ties.astype(float) ** 3 - ties)) / (N * (N - 1))))
    if sigma == 0:
        return {"statistic": w, "p": _NAN, "method": "normal approximation with continuity correction",
                "note": "all values tied: Mann-Whitney undefined (R: p = NaN)"}
    z = (z - np.sign(z) * 0.5) / sigma
    return {"statistic": w, "p": float(2 * min(stats.norm.cdf(z), stats.norm.sf(z))),
            "method": "normal approximation with continuity correction", "note": ""}


def _groups(values, groups) -> tuple[list, list[np.ndarray]]:
    values = np.asarray(values, float)
    groups = np.asarray(groups, dtype=object)
    ok = ~np.isnan(values) & pd.notna(groups)
    values, groups = values[ok], groups[ok]
    # Codes once (one hash pass), not one comparison of every value per level.
    codes, uniques = pd.factorize(groups)
    order = sorted(range(len(uniques)), key=lambda k: str(uniques[k]))
    return [uniques[k] for k in order], [values[codes == k] for k in order]


def oneway_anova(values, groups) -> dict:
    """Classical one-way ANOVA F test (R ``oneway.test(var.equal = TRUE)``).

    Returns
    -------
    dict
        ``statistic`` (F), ``df1`` (k - 1), ``df2`` (N - k), ``p``, ``note``.

    Notes
    -----
    Assumes independent, normal groups with equal variances. R's rule: every
    group needs at least 2 values and there must be 2 or more groups.
    """
    return _oneway_anova(*_groups(values, groups))


def _oneway_anova(levels: list, xs: list[np.ndarray]) -> dict:
    k = len(xs)
    out = {"statistic": _NAN, "df1": _NAN, "df2": _NAN, "p": _NAN, "note": ""}
    if k < 2 or any(x.size < 2 for x in xs):
        out["note"] = "fewer than 2 groups or a group with fewer than 2 values: ANOVA undefined"
        return out
    n = np.array([x.size for x in xs], float)
    m = np.array([x.mean() for x in xs])
    v = np.array([x.var(ddof=1) for x in xs])
    N = n.sum()
    grand = (n * m).sum() / N
    within = ((n - 1) * v).sum() / (N - k)
    if within == 0:
        out["note"] = "no variation within groups: ANOVA undefined"
        return out
    F = ((n * (m - grand) ** 2).sum() / (k - 1)) / within
    out.update(statistic=float(F), df1=float(k - 1), df2=float(N - k),
               p=float(stats.f.sf(F, k - 1, N - k)))
    return out


def welch_anova(values, groups) -> dict:
    """Welch's heteroscedastic one-way ANOVA (R ``oneway.test(var.equal = FALSE)``).

    Returns
    -------
    dict
        ``statistic`` (F), ``df1`` (k - 1), ``df2`` (``1 / (3 * tmp)``), ``p``,
        ``note``.

    Notes
    -----
    With weights ``w_i = n_i / s_i^2`` and weighted mean ``m``:
    ``tmp = sum((1 - w_i / sum w)^2 / (n_i - 1)) / (k^2 - 1)``,
    ``F = sum(w_i (m_i - m)^2) / ((k - 1)(1 + 2 (k - 2) tmp))`` [1]. Assumes
    normal groups; variances may differ. A group with variance 0 makes its
    weight infinite: NaN with a note.

    References
    ----------
    .. [1] Welch, B. L. (1951). On the comparison of several mean values.
       Biometrika 38, 330-336.
    """
    return _welch_anova(*_groups(values, groups))


def _welch_anova(levels: list, xs: list[np.ndarray]) -> dict:
    k = len(xs)
    out = {"statistic": _NAN, "df1": _NAN, "df2": _NAN, "p": _NAN, "note": ""}
    if k < 2 or any(x.size < 2 for x in xs):
        out["note"] = "fewer than 2 groups or a group with fewer than 2 values: Welch ANOVA undefined"
        return out
    n = np.array([x.size for x in xs], float)
    m = np.array([x.mean() for x in xs])
    v = np.array([x.var(ddof=1) for x in xs])
    if np.any(v == 0):
        out["note"] = "a group has no variation: Welch ANOVA undefined"
        return out
    w = n / v
    sw = w.sum()
    mw = (w * m).sum() / sw
    tmp = ((1 - w / sw) ** 2 / (n - 1)).sum() / (k * k - 1)
    F = (w * (m - mw) ** 2).sum() / ((k - 1) * (1 + 2 * (k - 2) * tmp))
    df2 = 1 / (3 * tmp)
    out.update(statistic=float(F), df1=float(k - 1), df2=float(df2), p=float(stats.f.sf(F, k - 1, df2)))
    return out


def kruskal_wallis(values, groups) -> dict:
    """Kruskal-Wallis rank-sum test with tie correction (R ``kruskal.test``).

    Returns
    -------
    dict
        ``statistic`` (H), ``df1`` (k - 1), ``p`` (chi-square upper tail),
        ``note``.

    Notes
    -----
    ``H = (12 / (N (N + 1)) sum R_i^2 / n_i - 3 (N + 1)) / (1 - sum(t^3 - t) /
    (N^3 - N))``. Needs 2 or more groups; all values tied gives NaN (R too).
    """
    return _kruskal_wallis(*_groups(values, groups))


def _kruskal_wallis(levels: list, xs: list[np.ndarray], ranks: np.ndarray | None = None) -> dict:
    k = len(xs)
    out = {"statistic": _NAN, "df1": _NAN, "p": _NAN, "note": ""}
    if k < 2:
        out["note"] = "fewer than 2 groups: Kruskal-Wallis undefined"
        return out
    allv = np.concatenate(xs)
    N = allv.size
    r = stats.rankdata(allv) if ranks is None else ranks
    _, ties = np.unique(allv, return_counts=True)
    denom = 1 - float(np.sum(ties.astype(float) ** 3 - ties)) / (N ** 3 - N)
    if denom == 0:
        out["note"] = "all values tied: Kruskal-Wallis undefined (R: NaN)"
        return out
    bounds = np.cumsum([0] + [x.size for x in xs])
    s = sum(r[a:b].sum() ** 2 / (b - a) for a, b in zip(bounds[:-1], bounds[1:]))
    H = (12 * s / (N * (N + 1)) - 3 * (N + 1)) / denom
    out.update(statistic=float(H), df1=float(k - 1), p=float(stats.chi2.sf(H, k - 1)))
    return out


def _design(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Numeric columns as they are; text columns as treatment dummies (first sorted level)."""
    parts = [np.ones((len(frame), 1))]
    for c in columns:
        col = frame[c]
        num = pd.to_numeric(col, errors="coerce")
        if num.notna().all():
            parts.append(num.to_numpy(float)[:, None])
        else:
            levels = sorted(col.astype(str).unique())
            for lv in levels[1:]:
                parts.append((col.astype(str) == lv).to_numpy(float)[:, None])
    return np.hstack(parts)


def ancova(frame: pd.DataFrame, covariates: tuple[str, ...] = (), conf_level: float = 0.95) -> dict:
    """ANCOVA of post on pre (and covariates) plus group (R ``lm`` and ``anova``).

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``pre_value, post_value, group_level`` and each covariate;
        rows with any missing value are dropped (complete cases).

    Returns
    -------
    dict
        ``statistic`` (F of group, from comparing ``post ~ pre + covariates``
        with ``post ~ pre + covariates + group``), ``df1`` (k - 1), ``df2``
        (residual df of the full model), ``p``; with exactly 2 groups also
        ``estimate`` (adjusted mean post of the first level minus the second)
        and its t-based ``ci_low``, ``ci_high``; ``note``.

    Notes
    -----
    Assumes a common linear slope on pre in every group, normal residuals
    with equal variance. Text covariates are treatment-coded. Checked against
    R ``anova(lm(post ~ pre + group0), lm(post ~ pre + group))`` and
    ``coef``/``confint`` of the full model.
    """
    cols = ["pre_value", "post_value", "group_level", *covariates]
    d = frame[cols].dropna()
    out = {"estimate": _NAN, "ci_low": _NAN, "ci_high": _NAN, "statistic": _NAN,
           "df1": _NAN, "df2": _NAN, "p": _NAN, "note": ""}
    codes, uniques = pd.factorize(d["group_level"].astype(str))
    levels = sorted(uniques)
    k = len(levels)
    if k < 2:
        out["note"] = "fewer than 2 groups: ANCOVA undefined"
        return out
    y = d["post_value"].to_numpy(float)
    x0 = _design(d, ["pre_value", *covariates])
    code_of = {lv: i for i, lv in enumerate(uniques)}
    dummies = np.column_stack([(codes == code_of[lv]).astype(float) for lv in levels[1:]])
    x1 = np.hstack([x0, dummies])
    n, p1 = x1.shape
    if np.linalg.matrix_rank(x1) < p1 or n - p1 < 1:
        out["note"] = "too few subjects for the model (or collinear terms): ANCOVA undefined"
        return out
    beta1, *_ = np.linalg.lstsq(x1, y, rcond=None)
    beta0, *_ = np.linalg.lstsq(x0, y, rcond=None)
    rss1 = float(np.sum((y - x1 @ beta1) ** 2))
    rss0 = float(np.sum((y - x0 @ beta0) ** 2))
    df2 = n - p1
    if rss1 == 0:
        out["note"] = "the model fits exactly: ANCOVA F undefined"
        return out
    F = ((rss0 - rss1) / (k - 1)) / (rss1 / df2)
    out.update(statistic=float(F), df1=float(k - 1), df2=float(df2), p=float(stats.f.sf(F, k - 1, df2)))
    if k == 2:
        cov = rss1 / df2 * np.linalg.inv(x1.T @ x1)
        est, se = -float(beta1[-1]), math.sqrt(float(cov[-1, -1]))
        q = float(stats.t.ppf(1 - (1 - conf_level) / 2, df2))
        out.update(estimate=est, ci_low=est - q * se, ci_high=est + q * se)
    return out


def compare_change(frame: pd.DataFrame, covariates: tuple[str, ...] = (),
                   conf_level: float = 0.95) -> pd.DataFrame:
    """All between-group tests of change for one outcome and one grouping.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per subject: ``pre_value, post_value, group_level`` and the
        covariates. Rows missing the group level are dropped.

    Returns
    -------
    pandas.DataFrame
        One row per test, columns :data:`RESULT_COLUMNS`:

        - ``test``: ``Welch t``, ``Mann-Whitney`` (2 groups only), ``one-way
          ANOVA``, ``Welch ANOVA``, ``Kruskal-Wallis``, ``ANCOVA``.
        - ``levels``, ``n``: the group levels (sorted) and their sizes,
          ``" | "``-separated; ``n_total``.
        - ``estimate``, ``ci_low``, ``ci_high``: for 2 groups, difference in
          mean change (first level minus second; Welch t) or adjusted
          difference in post (ANCOVA); NaN otherwise.
        - ``statistic_name`` (t, W, F, H), ``statistic``, ``df1``, ``df2``,
          ``p`` (two-sided), ``method`` (exact / normal approximation for
          Mann-Whitney), ``note`` (why a value is NaN).

    Notes
    -----
    Change = post - pre. Tests and assumptions: see each function. The
    ANCOVA models post, not change (equivalent for the group effect) [1].

    References
    ----------
    .. [1] Vickers, A. J. & Altman, D. G. (2001). Analysing controlled trials
       with baseline and follow up measurements. BMJ 323, 1123-1124.
    """
    d = frame.dropna(subset=["group_level", "pre_value", "post_value"]).copy()
    d["group_level"] = d["group_level"].astype(str)
    d["change"] = d["post_value"] - d["pre_value"]
    levels, xs = _groups(d["change"], d["group_level"])
    ns = [x.size for x in xs]
    # The values of all levels in level order, ranked once for Mann-Whitney and Kruskal-Wallis.
    ranks = stats.rankdata(np.concatenate(xs)) if len(levels) >= 2 else None
    rows = []
    if len(levels) == 2:
        wt = welch_t(xs[0], xs[1], conf_level)
        rows.append(_row("Welch t", levels, ns, statistic_name="t", estimate=wt["estimate"],
                         ci_low=wt["ci_low"], ci_high=wt["ci_high"], statistic=wt["statistic"],
                         df1=wt["df1"], p=wt["p"], note=wt["note"]))
        mw = mann_whitney(xs[0], xs[1], ranks=ranks)
        rows.append(_row("Mann-Whitney", levels, ns, statistic_name="W", statistic=mw["statistic"],
                         p=mw["p"], method=mw["method"], note=mw["note"]))
    # The values split by level once, for the three tests.
    for name, fn, stat in (("one-way ANOVA", _oneway_anova, "F"), ("Welch ANOVA", _welch_anova, "F"),
                           ("Kruskal-Wallis", lambda lv, x: _kruskal_wallis(lv, x, ranks), "H")):
        res = fn(levels, xs)
        rows.append(_row(name, levels, ns, statistic_name=stat, statistic=res["statistic"],
                         df1=res["df1"], df2=res.get("df2", _NAN), p=res["p"], note=res["note"]))
    an = ancova(d, covariates, conf_level)
    rows.append(_row("ANCOVA", levels, ns, statistic_name="F",
                     method="post ~ pre" + "".join(f" + {c}" for c in covariates) + " + group",
                     **{k: an[k] for k in ("estimate", "ci_low", "ci_high", "statistic", "df1", "df2",
                                           "p", "note")}))
    if len(levels) < 2:
        for r in rows:
            r["note"] = r["note"] or "only one group level present"
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
