"""Between-group comparisons of change (post - pre), each matching an R function.

Welch t (``t.test(change ~ group)``), Mann-Whitney (``wilcox.test(change ~
group)``), one-way ANOVA and Welch ANOVA (``oneway.test(change ~ group,
var.equal = TRUE | FALSE)``), Kruskal-Wallis (``kruskal.test``) and ANCOVA
``post ~ pre [+ covariates] + group`` (F test of group: ``anova(reduced,
full)`` on ``lm``; each level's adjusted difference from a reference level:
its treatment-coding coefficient with ``confint``). Undefined cases (a group of one,
constant data, fewer than two groups) return NaN with a note, never an error.

:func:`compare_groupings` runs every test for one outcome under several
groupings at once (a registry: ~27 outcomes x 5 subgroups of ~90,000
subjects), sorting the changes once and splitting by plain arrays rather than
a data frame per test; :func:`compare_change` is the same for one grouping.

Each test stands in for a library call and is checked equal to it (to 1e-9,
``tests/test_statistics_between_groups.py``): ``scipy.stats.ttest_ind(x, y,
equal_var=False)``, ``scipy.stats.mannwhitneyu(x, y, use_continuity=True,
method=...)`` with R's exact/normal choice, ``scipy.stats.f_oneway``,
``statsmodels.stats.oneway.anova_oneway(use_var="unequal",
welch_correction=True)``, ``scipy.stats.kruskal`` and
``statsmodels.regression.linear_model.OLS(...).fit().compare_f_test``. They
are written out because every library call re-sorts or re-summarises the
subjects for each test and grouping (and ``OLS.fit`` forms the design's
pseudo-inverse), where :func:`compare_groupings` shares one sort and one set
of group summaries among them: about five times the work per outcome at a
registry's size, on the analysis's slowest step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.statistics.multiplicity import METHODS, adjust_p

__all__ = [
    "welch_t",
    "mann_whitney",
    "oneway_anova",
    "welch_anova",
    "kruskal_wallis",
    "ancova",
    "compare_change",
    "compare_groupings",
    "largest_level",
    "RESULT_COLUMNS",
]

_NAN = float("nan")
_EXACT_MAX_N = 50  # R: exact Mann-Whitney p only when both groups have fewer than 50

#: Columns of every result row (and of :func:`compare_change`'s table after its keys).
RESULT_COLUMNS = [
    "test",
    "levels",
    "n",
    "n_total",
    "estimate",
    "ci_low",
    "ci_high",
    "statistic_name",
    "statistic",
    "df1",
    "df2",
    "p",
    "p_adj",
    "p_adj_method",
    "method",
    "note",
]


def _row(test, levels, ns, **kw) -> dict:
    row = {
        "test": test,
        "levels": " | ".join(map(str, levels)),
        "n": " | ".join(str(int(n)) for n in ns),
        "n_total": int(sum(ns)),
        "estimate": _NAN,
        "ci_low": _NAN,
        "ci_high": _NAN,
        "statistic_name": "",
        "statistic": _NAN,
        "df1": _NAN,
        "df2": _NAN,
        "p": _NAN,
        "p_adj": _NAN,
        "p_adj_method": "",
        "method": "",
        "note": "",
    }
    row.update(kw)
    return row


def _undefined(*fields: str) -> dict:
    """A test's result before it is computed: ``fields`` NaN, no note."""
    return {**dict.fromkeys(fields, _NAN), "note": ""}


def _summaries(xs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Size, mean and variance (n - 1 denominator) of each group; NaN where undefined
    (computed only where defined, so an empty or single-value group raises no warning)."""
    n = np.array([x.size for x in xs], float)
    m = np.array([x.mean() if x.size else _NAN for x in xs])
    v = np.array([x.var(ddof=1) if x.size > 1 else _NAN for x in xs])
    return n, m, v


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
    ``se`` below R's ``10 eps max(|mean|)``, gives NaN with a note. Stands in
    for ``scipy.stats.ttest_ind(x, y, equal_var=False)`` and its
    ``confidence_interval`` (see the module docstring).
    """
    n, m, v = _summaries([np.asarray(x, float), np.asarray(y, float)])
    return _welch_t(n, m, v, conf_level)


def _welch_t(n: np.ndarray, m: np.ndarray, v: np.ndarray, conf_level: float) -> dict:
    """:func:`welch_t` from the two groups' sizes, means and variances."""
    nx, ny = int(n[0]), int(n[1])
    out = _undefined("estimate", "ci_low", "ci_high", "statistic", "df1", "p")
    if nx < 2 or ny < 2:
        out["note"] = "a group has fewer than 2 values: Welch t undefined"
        if nx and ny:
            out["estimate"] = float(m[0] - m[1])
        return out
    mx, my, vx, vy = m[0], m[1], v[0], v[1]
    sx, sy = vx / nx, vy / ny
    se = math.sqrt(sx + sy)
    out["estimate"] = float(mx - my)
    if se < 10 * np.finfo(float).eps * max(abs(mx), abs(my)) or se == 0:
        out["note"] = "data essentially constant: Welch t undefined"
        return out
    df = (sx + sy) ** 2 / (sx**2 / (nx - 1) + sy**2 / (ny - 1))
    t = (mx - my) / se
    q = float(stats.t.ppf(1 - (1 - conf_level) / 2, df))
    out.update(
        ci_low=float(mx - my - q * se),
        ci_high=float(mx - my + q * se),
        statistic=float(t),
        df1=float(df),
        p=float(2 * stats.t.sf(abs(t), df)),
    )
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
    return cnt[m, base : base + m * n + 1]


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
    assumes independent observations. Stands in for
    ``scipy.stats.mannwhitneyu(x, y, use_continuity=True, method="exact" |
    "asymptotic")`` with R's choice made here (scipy's ``"auto"`` switches
    elsewhere); see the module docstring.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    nx, ny = x.size, y.size
    if nx == 0 or ny == 0:
        return {
            "statistic": _NAN,
            "p": _NAN,
            "method": "not computed",
            "note": "a group is empty: Mann-Whitney undefined",
        }
    # ``ranks``: the average ranks of x then y, when the caller has them already.
    r = stats.rankdata(np.concatenate([x, y])) if ranks is None else ranks
    _, ties = np.unique(r, return_counts=True)
    return _mann_whitney(nx, ny, float(r[:nx].sum()), ties)


def _mann_whitney(nx: int, ny: int, rank_sum_x: float, ties: np.ndarray) -> dict:
    """:func:`mann_whitney` from the rank sum of x and the sizes of the runs of tied values."""
    w = float(rank_sum_x - nx * (nx + 1) / 2)
    if nx < _EXACT_MAX_N and ny < _EXACT_MAX_N and not np.any(ties > 1):
        counts = _rank_sum_counts(nx, ny)
        k = int(round(w))
        total = counts.sum()
        lower, upper = counts[: k + 1].sum() / total, counts[k:].sum() / total
        p = min(1.0, 2 * (upper if w > nx * ny / 2 else lower))
        return {"statistic": w, "p": float(p), "method": "exact", "note": ""}
    z = w - nx * ny / 2
    N = nx + ny
    sigma = math.sqrt(
        nx * ny / 12 * ((N + 1) - float(np.sum(ties.astype(float) ** 3 - ties)) / (N * (N - 1)))
    )
    if sigma == 0:
        return {
            "statistic": w,
            "p": _NAN,
            "method": "normal approximation with continuity correction",
            "note": "all values tied: Mann-Whitney undefined (R: p = NaN)",
        }
    z = (z - np.sign(z) * 0.5) / sigma
    return {
        "statistic": w,
        "p": float(2 * min(stats.norm.cdf(z), stats.norm.sf(z))),
        "method": "normal approximation with continuity correction",
        "note": "",
    }


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
    group needs at least 2 values and there must be 2 or more groups. Stands
    in for ``scipy.stats.f_oneway`` (see the module docstring).
    """
    return _oneway_anova(*_summaries(_groups(values, groups)[1]))


def _oneway_anova(n: np.ndarray, m: np.ndarray, v: np.ndarray) -> dict:
    """:func:`oneway_anova` from the groups' sizes, means and variances."""
    k = n.size
    out = _undefined("statistic", "df1", "df2", "p")
    if k < 2 or np.any(n < 2):
        out["note"] = "fewer than 2 groups or a group with fewer than 2 values: ANOVA undefined"
        return out
    N = n.sum()
    grand = (n * m).sum() / N
    within = ((n - 1) * v).sum() / (N - k)
    if within == 0:
        out["note"] = "no variation within groups: ANOVA undefined"
        return out
    F = ((n * (m - grand) ** 2).sum() / (k - 1)) / within
    out.update(
        statistic=float(F), df1=float(k - 1), df2=float(N - k), p=float(stats.f.sf(F, k - 1, N - k))
    )
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
    weight infinite: NaN with a note. Stands in for
    ``statsmodels.stats.oneway.anova_oneway(data, use_var="unequal",
    welch_correction=True)`` (see the module docstring).

    References
    ----------
    .. [1] Welch, B. L. (1951). On the comparison of several mean values.
       Biometrika 38, 330-336.
    """
    return _welch_anova(*_summaries(_groups(values, groups)[1]))


def _welch_anova(n: np.ndarray, m: np.ndarray, v: np.ndarray) -> dict:
    """:func:`welch_anova` from the groups' sizes, means and variances."""
    k = n.size
    out = _undefined("statistic", "df1", "df2", "p")
    if k < 2 or np.any(n < 2):
        out["note"] = (
            "fewer than 2 groups or a group with fewer than 2 values: Welch ANOVA undefined"
        )
        return out
    if np.any(v == 0):
        out["note"] = "a group has no variation: Welch ANOVA undefined"
        return out
    w = n / v
    sw = w.sum()
    mw = (w * m).sum() / sw
    tmp = ((1 - w / sw) ** 2 / (n - 1)).sum() / (k * k - 1)
    F = (w * (m - mw) ** 2).sum() / ((k - 1) * (1 + 2 * (k - 2) * tmp))
    df2 = 1 / (3 * tmp)
    out.update(
        statistic=float(F), df1=float(k - 1), df2=float(df2), p=float(stats.f.sf(F, k - 1, df2))
    )
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
    Stands in for ``scipy.stats.kruskal`` (see the module docstring).
    """
    xs = _groups(values, groups)[1]
    if len(xs) < 2:
        return _kruskal_wallis([x.size for x in xs], [], np.array([], int))
    allv = np.concatenate(xs)
    r = stats.rankdata(allv)
    _, ties = np.unique(allv, return_counts=True)
    bounds = np.cumsum([0] + [x.size for x in xs])
    return _kruskal_wallis(
        [x.size for x in xs], [r[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])], ties
    )


def _kruskal_wallis(ns: list[int], rank_sums: list[float], ties: np.ndarray) -> dict:
    """:func:`kruskal_wallis` from the group sizes, their rank sums and the sizes of the runs
    of tied values."""
    k = len(ns)
    out = _undefined("statistic", "df1", "p")
    if k < 2:
        out["note"] = "fewer than 2 groups: Kruskal-Wallis undefined"
        return out
    N = int(sum(ns))
    denom = 1 - float(np.sum(ties.astype(float) ** 3 - ties)) / (N**3 - N)
    if denom == 0:
        out["note"] = "all values tied: Kruskal-Wallis undefined (R: NaN)"
        return out
    s = sum(r**2 / n for r, n in zip(rank_sums, ns))
    H = (12 * s / (N * (N + 1)) - 3 * (N + 1)) / denom
    out.update(statistic=float(H), df1=float(k - 1), p=float(stats.chi2.sf(H, k - 1)))
    return out


class _Covariates:
    """Covariate columns prepared once for the ANCOVA designs of many subsets of the rows.

    A column all of whose values in the subset are numbers enters as it is; otherwise as
    treatment dummies of its text (first sorted level the reference), decided per subset as
    R's ``lm`` would see that subset's data frame.
    """

    def __init__(self, frame: pd.DataFrame | None, rows: int):
        self.names = [] if frame is None else list(frame.columns)
        self._frame = frame
        # Complete cases: rows with every covariate (``lm``'s na.omit).
        self.complete = frame.notna().all(axis=1).to_numpy() if self.names else np.ones(rows, bool)
        self._numbers = [
            pd.to_numeric(frame[c], errors="coerce").to_numpy(float, na_value=np.nan)
            for c in self.names
        ]
        self._text: dict[int, tuple[np.ndarray, int]] = {}

    def _text_codes(self, i: int) -> tuple[np.ndarray, int]:
        # Text labels only when a subset needs dummies (converting numbers to text is slow).
        if i not in self._text:
            codes, uniques = pd.factorize(self._frame.iloc[:, i].astype(str))
            rank = np.empty(len(uniques), int)
            rank[sorted(range(len(uniques)), key=lambda j: uniques[j])] = np.arange(len(uniques))
            self._text[i] = (rank[codes], len(uniques))
        return self._text[i]

    def columns(self, rows: np.ndarray) -> list[np.ndarray]:
        """The design columns for ``rows`` (complete cases), each ``(len(rows), 1)``."""
        parts = []
        for i in range(len(self.names)):
            values = self._numbers[i][rows]
            if not np.isnan(values).any():
                parts.append(values[:, None])
                continue
            codes, n_labels = self._text_codes(i)
            codes = codes[rows]
            present = np.flatnonzero(np.bincount(codes, minlength=n_labels))
            parts += [(codes == lv).astype(float)[:, None] for lv in present[1:]]
        return parts


def _level_codes(labels) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 = missing) and the labels as text; labels equal as text are one level."""
    labels = pd.Series(np.asarray(labels, dtype=object))
    ok = labels.notna().to_numpy()
    codes = np.full(len(labels), -1)
    text_codes, uniques = pd.factorize(labels[ok].astype(str))
    codes[ok] = text_codes
    return codes, list(uniques)


def ancova(
    frame: pd.DataFrame,
    covariates: tuple[str, ...] = (),
    conf_level: float = 0.95,
    reference: str | None = None,
    *,
    levels: Sequence[str] | None = None,
    all_pairs: bool = False,
) -> dict:
    """ANCOVA of post on pre (and covariates) plus group (R ``lm`` and ``anova``).

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``pre_value, post_value, group_level`` and each covariate;
        rows with any missing value are dropped (complete cases).
    covariates : tuple of str
        Further columns of the model.
    conf_level : float
        Coverage of the differences' intervals.
    reference : str, optional
        The level the others are compared with; default (or a level without a
        complete case): the first level with a complete case, in the order of
        ``levels``.
    levels : sequence of str, optional
        The group levels in the order wanted (as the spec declares them);
        labels not listed follow in text order. Default: ``group_level``'s
        categories if it is categorical, else text order.
    all_pairs : bool
        Every pair of levels, not only each level against the reference.

    Returns
    -------
    dict
        - ``statistic`` (F of group, from comparing ``post ~ pre + covariates``
          with ``post ~ pre + covariates + group``), ``df1`` (k - 1), ``df2``
          (residual df of the full model), ``p``; ``note`` (why a value is NaN).
        - ``reference``: the reference level's label ("" with fewer than 2 levels).
        - ``differences``: one dict per contrast (:func:`_contrast_pairs`: each
          other level against the reference in the levels' order, then with
          ``all_pairs`` the other pairs): ``level`` (label), ``versus`` (the
          level it is compared with), ``n`` (complete cases of ``level``),
          ``estimate`` (adjusted difference, level minus versus: against the
          reference the level's treatment-coding coefficient), ``ci_low``,
          ``ci_high`` (t-based, ``df2``), ``t`` and ``p`` (two-sided, unadjusted).
        - ``n``: complete cases per level label.
        - ``estimate``, ``ci_low``, ``ci_high``: NaN (the estimates are the
          ``differences``).

    Notes
    -----
    Assumes a common linear slope on pre in every group, normal residuals
    with equal variance. Text covariates are treatment-coded. The adjusted
    difference in post equals the adjusted difference in change (post - pre
    = post with the pre slope reduced by 1). Checked against R ``lm(post ~ pre
    + covariates + relevel(group, ref))`` (``coef``, ``confint``,
    ``summary``) and its ``anova(reduced, full)`` / ``drop1(full, test =
    "F")`` F test (``tests/fixtures/r/ancova_levels.R``; the pairs not
    involving the reference in ``tests/fixtures/r/groups.R``, refitted with
    the other level as reference).

    The fits stand in for ``statsmodels.formula.api.ols("post ~ pre + ... +
    C(group, Treatment(reference))").fit()``: the F is the full fit's
    ``compare_f_test`` of the reduced one, the intervals its ``conf_int``,
    the P its ``pvalues``. They are written out (``numpy.linalg.lstsq``, the
    covariance from ``inv(X'X)``) because ``OLS.fit`` forms the pseudo-inverse
    of the whole design, about four times the work of the two least-squares
    solves, once per outcome and grouping; ``tests/test_statistics_between_
    groups.py`` checks them equal (1e-9).
    """
    codes, labels = _level_codes(frame["group_level"])
    pre, post = frame["pre_value"].to_numpy(float), frame["post_value"].to_numpy(float)
    cov = _Covariates(frame[list(covariates)] if covariates else None, len(frame))
    codes, labels = _ordered_codes(codes, labels, _wanted_order(frame["group_level"], levels))
    ref = labels.index(reference) if reference in labels else -1
    res = _ancova_of(pre, post, codes, len(labels), cov, conf_level, ref, all_pairs)
    sizes = res.pop("sizes")
    res["reference"] = labels[res["reference"]] if res["reference"] >= 0 else ""
    res["n"] = {labels[i]: int(sizes[i]) for i in np.flatnonzero(sizes)}
    res["differences"] = [
        {
            **d,
            "level": labels[d["level"]],
            "versus": labels[d["versus"]],
            "n": int(sizes[d["level"]]),
        }
        for d in res["differences"]
    ]
    return res


def _wanted_order(group_level, levels: Sequence[str] | None) -> Sequence[str] | None:
    """``levels`` if given, else the categories of a categorical ``group_level`` (None: text
    order)."""
    if levels is not None:
        return [str(lv) for lv in levels]
    if isinstance(getattr(group_level, "dtype", None), pd.CategoricalDtype):
        return [str(c) for c in group_level.cat.categories]
    return None


def _ordered_codes(
    codes: np.ndarray, labels: list, levels: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Codes renumbered so that level i is the i-th label in the order of ``levels`` (labels
    not among them after those, in text order); without ``levels``, in text order."""
    position = {str(lv): i for i, lv in enumerate(levels or ())}
    order = sorted(
        range(len(labels)),
        key=lambda j: (position.get(str(labels[j]), len(position)), str(labels[j])),
    )
    renumber = np.empty(len(labels) + 1, int)
    renumber[order] = np.arange(len(labels))
    renumber[-1] = -1  # code -1 (no level) stays -1
    return renumber[codes], [str(labels[j]) for j in order]


def _sorted_codes(codes: np.ndarray, labels: list) -> tuple[np.ndarray, list[str]]:
    """Codes renumbered so that level i is the i-th label in text order (R's factor levels)."""
    return _ordered_codes(codes, labels)


def _full_rank(x: np.ndarray, xtx: np.ndarray) -> bool:
    """``matrix_rank(x) == columns``, decided from the eigenvalues of ``x'x`` when they settle it.

    The SVD behind ``matrix_rank`` costs as much as a least-squares fit of the whole design.
    Forming ``x'x`` and its eigenvalues moves each by at most about ``n p^2 eps lambda_max``
    (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., sections 3.5 and 3.1), so
    ``lambda_min > 8 n p^2 eps lambda_max`` proves ``sigma_min / sigma_max`` of ``x`` far above
    ``matrix_rank``'s tolerance ``max(n, p) eps``: the same answer. Otherwise ``matrix_rank``
    decides, as always.
    """
    n, p = x.shape
    eps = np.finfo(float).eps
    if n * eps < 1e-6 and np.isfinite(xtx).all():
        lam = np.linalg.eigvalsh(xtx)
        if lam[0] > 8 * n * p * p * eps * lam[-1]:
            return True
    return np.linalg.matrix_rank(x) == p


def _largest(sizes: np.ndarray, candidates: np.ndarray) -> int:
    """The candidate level with the most subjects; ties go to the first in text order."""
    return int(candidates[np.argmax(sizes[candidates])])


def _contrast_pairs(present, reference: int, all_pairs: bool = False) -> list[tuple[int, int]]:
    """The contrasts among the levels ``present`` (codes in the levels' order): ``(level,
    compared with)`` pairs, each estimated as the first minus the second.

    Each level other than the reference against the reference, in the levels' order; with
    ``all_pairs`` also every other pair, the later level minus the earlier one (the reference
    counted first). The pairs come as R's ``pairwise.t.test`` / ``pairwise.wilcox.test`` lay
    out their lower triangle, column by column: row level minus column level.
    """
    order = [reference] + [int(lv) for lv in present if lv != reference]
    if not all_pairs:
        return [(lv, reference) for lv in order[1:]]
    return [(order[j], order[i]) for i in range(len(order)) for j in range(i + 1, len(order))]


def _ancova_of(
    pre: np.ndarray,
    post: np.ndarray,
    codes: np.ndarray,
    n_levels: int,
    cov: _Covariates,
    conf_level: float,
    reference: int = -1,
    all_pairs: bool = False,
    reduced: dict | None = None,
) -> dict:
    """:func:`ancova` from arrays: ``codes`` in the levels' order, -1 for none; ``reference``
    the code of the reference level (-1, or a level without a complete case: the first level
    present); ``all_pairs``: every pair of levels, not only each against the reference
    (:func:`_contrast_pairs`); ``reduced``: the residual sums of squares of the model without
    the group already fitted, by the rows they were fitted to (the groupings of one outcome
    whose levels cover the same subjects share that fit), added to here."""
    out = _undefined("estimate", "ci_low", "ci_high", "statistic", "df1", "df2", "p")
    out.update(differences=[], reference=-1, sizes=np.zeros(n_levels, int))
    rows = np.flatnonzero(~np.isnan(pre) & ~np.isnan(post) & (codes >= 0) & cov.complete)
    codes = codes[rows]
    # Levels without a complete case drop out, as in R.
    sizes = np.bincount(codes, minlength=n_levels)
    present = np.flatnonzero(sizes)
    k = present.size
    out["sizes"] = sizes
    if k < 2:
        out["note"] = "fewer than 2 groups: ANCOVA undefined"
        return out
    ref = reference if reference in present else int(present[0])
    others = present[present != ref]
    pairs = _contrast_pairs(present, ref, all_pairs)
    out["reference"] = int(ref)
    # Treatment coding against the reference: one indicator per other level, in the levels'
    # order (R: relevel(group, ref); patsy: C(group, Treatment(reference))).
    y = post[rows]
    x0 = np.hstack([np.ones((rows.size, 1)), pre[rows][:, None], *cov.columns(rows)])
    dummies = np.column_stack([(codes == lv).astype(float) for lv in others])
    x1 = np.hstack([x0, dummies])
    n, p1 = x1.shape
    xtx = x1.T @ x1

    def undefined(note: str) -> dict:
        out["note"] = note
        out["differences"] = [
            {
                "level": int(a),
                "versus": int(b),
                **dict.fromkeys(("estimate", "ci_low", "ci_high", "t", "p"), _NAN),
            }
            for a, b in pairs
        ]
        return out

    if n - p1 < 1 or not _full_rank(x1, xtx):
        return undefined("too few subjects for the model (or collinear terms): ANCOVA undefined")
    beta1, *_ = np.linalg.lstsq(x1, y, rcond=None)
    rss1 = float(np.sum((y - x1 @ beta1) ** 2))
    key = rows.tobytes() if reduced is not None else b""
    if reduced is not None and key in reduced:
        rss0 = reduced[key]
    else:
        beta0, *_ = np.linalg.lstsq(x0, y, rcond=None)
        rss0 = float(np.sum((y - x0 @ beta0) ** 2))
        if reduced is not None:
            reduced[key] = rss0
    df2 = n - p1
    if rss1 == 0:
        return undefined("the model fits exactly: ANCOVA F undefined")
    F = ((rss0 - rss1) / (k - 1)) / (rss1 / df2)
    out.update(
        statistic=float(F), df1=float(k - 1), df2=float(df2), p=float(stats.f.sf(F, k - 1, df2))
    )
    # Each contrast's adjusted difference: c'beta with c = +1 at the level's indicator and -1
    # at the other level's (none for the reference), its SE sqrt(c'Vc); against the reference
    # that is the level's coefficient, with the t-based interval and test of R's confint /
    # summary(lm); between two other levels, the coefficient R gives after relevel() to the
    # second.
    covariance = rss1 / df2 * np.linalg.inv(xtx)
    q = float(stats.t.ppf(1 - (1 - conf_level) / 2, df2))
    column = {int(lv): x0.shape[1] + j for j, lv in enumerate(others)}
    for a, b in pairs:
        c = np.zeros(p1)
        c[column[a]] = 1.0
        if b != ref:
            c[column[b]] = -1.0
        est = float(c @ beta1)
        se = math.sqrt(float(c @ covariance @ c))
        t = est / se
        out["differences"].append(
            {
                "level": int(a),
                "versus": int(b),
                "estimate": est,
                "ci_low": est - q * se,
                "ci_high": est + q * se,
                "t": t,
                "p": float(2 * stats.t.sf(abs(t), df2)),
            }
        )
    return out


def _average_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties share the mean of their positions, as R's ``rank``) of
    values already in ascending order, and the sizes of the runs of tied values."""
    starts = (
        np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if values.size else np.array([], int)
    )
    ties = np.diff(np.r_[starts, values.size])
    return np.repeat(starts + (ties + 1) / 2, ties), ties


def largest_level(codes, labels: list) -> str:
    """The label of the level with the most entries (``codes`` into ``labels``, -1 none); ties
    go to the first in text order; "" when no entry has a level. The ANCOVA's reference level
    when :func:`compare_groupings` is given the cohort's (so every outcome of a subgroup is
    compared with the same level)."""
    codes, labels = _sorted_codes(np.asarray(codes), labels)
    sizes = np.bincount(codes[codes >= 0], minlength=len(labels))
    present = np.flatnonzero(sizes)
    return labels[_largest(sizes, present)] if present.size else ""


def compare_groupings(
    pre,
    post,
    groupings: dict[str, tuple[np.ndarray, list]],
    covariates: pd.DataFrame | None = None,
    conf_level: float = 0.95,
    references: dict[str, str] | None = None,
    *,
    all_pairs: Sequence[str] = (),
    adjustments: dict[str, str] | None = None,
) -> pd.DataFrame:
    """All between-group tests of change for one outcome under each of several groupings.

    Parameters
    ----------
    pre, post : array-like of float
        One value per subject; a subject missing either is left out.
    groupings : dict
        Name -> ``(codes, labels)``: for each subject an integer code into
        ``labels`` (``-1`` = in no level of this grouping). Levels are
        compared in the order of ``labels`` (the spec's declared order).
    covariates : pandas.DataFrame, optional
        The ANCOVA covariates, one column each, rows aligned with ``pre``.
    references : dict of str to str, optional
        Grouping name -> the label of its reference level. Default (or a
        level without a value of this outcome): the first level of ``labels``
        with one.
    all_pairs : sequence of str
        The groupings whose contrasts are every pair of levels; the others'
        are each level against the reference (:func:`_contrast_pairs`).
    adjustments : dict of str to str, optional
        Grouping name -> how its contrasts' P values are adjusted
        (:data:`pipeline.statistics.multiplicity.METHODS`; default ``"holm"``).

    Returns
    -------
    pandas.DataFrame
        One row per grouping and test (and contrast), the groupings in the
        order given:

        - ``subgroup``: the grouping's name (a key of ``groupings``).
        - ``test``: ``Welch t`` and ``Mann-Whitney``, one row per contrast
          each (one contrast with 2 levels); ``one-way ANOVA``, ``Welch
          ANOVA``, ``Kruskal-Wallis``, ``ANCOVA`` (the F test of the
          subgroup), then ``ANCOVA difference``: one row per contrast
          (:func:`ancova`).
        - ``levels``, ``n``: the levels with a subject (in order) and their
          sizes, ``" | "``-separated; for a contrast the level then the level
          it is compared with (the reference, or the earlier level) and their
          sizes (complete cases for an ANCOVA difference); ``n_total``.
        - ``estimate``, ``ci_low``, ``ci_high``: for a contrast the difference,
          level minus the level compared with: in mean change (Welch t), in
          post adjusted for pre and covariates (equivalently in change;
          ANCOVA difference); NaN otherwise.
        - ``statistic_name`` (t, W, F, H), ``statistic`` (for Mann-Whitney R's
          W of the contrast's first level: ``wilcox.test(level, versus)``),
          ``df1`` (for an ``ANCOVA difference`` the residual df of its t),
          ``df2``, ``p`` (two-sided, unadjusted).
        - ``p_adj``: a contrast's P adjusted over the grouping's contrasts of
          the same test (R ``p.adjust``; with one contrast, ``p``); NaN on the
          other rows. ``p_adj_method``: ``Holm`` or ``Benjamini-Hochberg``.
        - ``method`` (exact / normal approximation for Mann-Whitney; the
          model for ANCOVA), ``note`` (why a value is NaN).

    Notes
    -----
    The same numbers as calling :func:`compare_change` once per grouping:
    each group's mean and variance from its values in subject order, the
    ANCOVA from the same design matrix. The changes are sorted once for all
    groupings; the average ranks of a grouping's subjects are then their
    positions among themselves in that order (rank sums are sums of
    half-integers, exact in floating point whatever the order of summation).
    With more than two levels, each Mann-Whitney contrast ranks its two
    levels' values alone, as ``wilcox.test`` on them (and
    ``pairwise.wilcox.test``) does.
    """
    pre, post = np.asarray(pre, float), np.asarray(post, float)
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, left out below
        change = post - pre
    paired = ~np.isnan(pre) & ~np.isnan(post)
    tested = paired & ~np.isnan(change)
    cov = _Covariates(covariates, pre.size)
    method = "post ~ pre" + "".join(f" + {c}" for c in cov.names) + " + group"
    by_change = None
    reduced: dict = {}
    rows = []
    for name, (codes, labels) in groupings.items():
        codes, labels = np.asarray(codes), [str(lv) for lv in labels]
        adjustment = (adjustments or {}).get(name, "holm")
        grouped = tested & (codes >= 0)
        present = np.flatnonzero(np.bincount(codes[grouped], minlength=len(labels)))
        levels = [labels[lv] for lv in present]
        # Each group's values in subject order: its mean and variance as compare_change gives them.
        xs = [change[grouped & (codes == lv)] for lv in present]
        ns = [x.size for x in xs]
        n, m, v = _summaries(xs)
        rank_sums, ties = [], np.array([], int)
        if len(levels) >= 2:
            if by_change is None:
                by_change = np.argsort(change)
            in_order = by_change[grouped[by_change]]
            ranks, ties = _average_ranks(change[in_order])
            rank_sums = list(
                np.bincount(codes[in_order], weights=ranks, minlength=len(labels))[present]
            )
        wanted = (references or {}).get(name)
        wanted = labels.index(wanted) if wanted in labels else -1
        ancova = _ancova_of(
            pre, post, codes, len(labels), cov, conf_level, wanted, name in all_pairs, reduced
        )
        sizes = ancova.pop("sizes")
        ancova.pop("reference")
        differences = ancova.pop("differences")
        # The contrasts of the change tests, as positions in ``present``.
        at = {int(lv): i for i, lv in enumerate(present)}
        ref = wanted if wanted in at else (int(present[0]) if present.size else -1)
        contrasts = (
            [(at[a], at[b]) for a, b in _contrast_pairs(present, ref, name in all_pairs)]
            if len(levels) >= 2
            else []
        )
        welch, mann = [], []
        for i, j in contrasts:
            welch.append(_welch_t(n[[i, j]], m[[i, j]], v[[i, j]], conf_level))
            if len(levels) == 2:
                mann.append(_mann_whitney(ns[i], ns[j], rank_sums[i], ties))
            elif ns[i] == 0 or ns[j] == 0:
                mann.append(mann_whitney(xs[i], xs[j]))
            else:
                # The two levels' values ranked among themselves: their subjects in the sorted
                # order of every change (as mann_whitney(xs[i], xs[j]) ranks their concatenation).
                a, b = present[i], present[j]
                pair = in_order[np.isin(codes[in_order], (a, b))]
                pair_ranks, pair_ties = _average_ranks(change[pair])
                x_sum = float(np.sum(pair_ranks[codes[pair] == a]))
                mann.append(_mann_whitney(ns[i], ns[j], x_sum, pair_ties))
        out = [
            _row(test, [levels[i], levels[j]], [ns[i], ns[j]], statistic_name=stat, **res)
            for test, stat, results in (("Welch t", "t", welch), ("Mann-Whitney", "W", mann))
            for (i, j), res in zip(contrasts, results)
        ]
        tests = [
            ("one-way ANOVA", "F", _oneway_anova(n, m, v)),
            ("Welch ANOVA", "F", _welch_anova(n, m, v)),
            ("Kruskal-Wallis", "H", _kruskal_wallis(ns, rank_sums, ties)),
            ("ANCOVA", "F", {**ancova, "method": method}),
        ]
        out += [_row(test, levels, ns, statistic_name=stat, **res) for test, stat, res in tests]
        out += [
            _row(
                "ANCOVA difference",
                [labels[d["level"]], labels[d["versus"]]],
                [sizes[d["level"]], sizes[d["versus"]]],
                statistic_name="t",
                estimate=d["estimate"],
                ci_low=d["ci_low"],
                ci_high=d["ci_high"],
                statistic=d["t"],
                df1=ancova["df2"],
                p=d["p"],
                method=method,
                note=ancova["note"],
            )
            for d in differences
        ]
        # Each test's contrasts are one family (R: pairwise.*.test's p.adjust.method).
        for test in ("Welch t", "Mann-Whitney", "ANCOVA difference"):
            family = [r for r in out if r["test"] == test]
            for r, p_adj in zip(family, adjust_p([r["p"] for r in family], adjustment)):
                r.update(p_adj=float(p_adj), p_adj_method=METHODS[adjustment])
        if len(levels) < 2:
            for r in out:
                r["note"] = r["note"] or "only one group level present"
        rows += [{"subgroup": name, **r} for r in out]
    return pd.DataFrame(rows, columns=["subgroup", *RESULT_COLUMNS])


def compare_change(
    frame: pd.DataFrame,
    covariates: tuple[str, ...] = (),
    conf_level: float = 0.95,
    reference: str | None = None,
    *,
    levels: Sequence[str] | None = None,
    all_pairs: bool = False,
    adjustment: str = "holm",
) -> pd.DataFrame:
    """All between-group tests of change for one outcome and one grouping.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per subject: ``pre_value, post_value, group_level`` and the
        covariates. Rows missing the group level are dropped.
    covariates : tuple of str
        The ANCOVA's further columns.
    conf_level : float
    reference : str, optional
        The level every other is compared with; default the first level.
    levels : sequence of str, optional
        The levels in the order wanted; default ``group_level``'s categories if
        it is categorical, else text order (:func:`ancova`).
    all_pairs : bool
        Contrasts between every pair of levels, not only against the reference.
    adjustment : {"holm", "bh"}
        How the contrasts' P values are adjusted.

    Returns
    -------
    pandas.DataFrame
        One row per test and contrast, columns :data:`RESULT_COLUMNS`, as
        :func:`compare_groupings` describes them: ``Welch t`` and
        ``Mann-Whitney`` per contrast (level minus the level it is compared
        with), ``one-way ANOVA``, ``Welch ANOVA``, ``Kruskal-Wallis``,
        ``ANCOVA``, then one ``ANCOVA difference`` per contrast.

    Notes
    -----
    Change = post - pre. Tests and assumptions: see each function. The
    ANCOVA models post, not change (equivalent for the group effect) [1].

    References
    ----------
    .. [1] Vickers, A. J. & Altman, D. G. (2001). Analysing controlled trials
       with baseline and follow up measurements. BMJ 323, 1123-1124.
    """
    codes, labels = _level_codes(frame["group_level"])
    codes, labels = _ordered_codes(codes, labels, _wanted_order(frame["group_level"], levels))
    out = compare_groupings(
        frame["pre_value"],
        frame["post_value"],
        {"": (codes, labels)},
        frame[list(covariates)] if covariates else None,
        conf_level,
        {"": reference} if reference is not None else None,
        all_pairs=("",) if all_pairs else (),
        adjustments={"": adjustment},
    )
    return out[RESULT_COLUMNS]
