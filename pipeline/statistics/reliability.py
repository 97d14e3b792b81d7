"""Inter-rater reliability: the six Shrout-Fleiss ICCs and weighted kappa."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.inter_rater import cohens_kappa

__all__ = ["icc", "rater_agreement", "weighted_kappa"]

_NAN = float("nan")

ICC_FORMS = [
    ("ICC1", "single raters, absolute agreement, one-way random"),
    ("ICC2", "single random raters, absolute agreement, two-way random"),
    ("ICC3", "single fixed raters, consistency, two-way mixed"),
    ("ICC1k", "average of raters, one-way random"),
    ("ICC2k", "average of random raters, two-way random"),
    ("ICC3k", "average of fixed raters, two-way mixed"),
]


def icc(ratings, conf_level: float = 0.95) -> pd.DataFrame:
    """Shrout-Fleiss intraclass correlations with F tests and intervals (R ``psych::ICC``).

    Parameters
    ----------
    ratings : array-like, shape (n_targets, n_raters)
        One row per rated target (here a patient visit), one column per
        rater. Rows with any missing rating are dropped (complete cases).

    Returns
    -------
    pandas.DataFrame
        Six rows (ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k) with columns
        ``type``, ``description``, ``icc``, ``f`` (F statistic), ``df1``,
        ``df2``, ``p`` (upper tail of F: the ICC is 0), ``ci_low``,
        ``ci_high``, ``n_targets``, ``n_raters``, ``note``.

    Notes
    -----
    From the two-way ANOVA mean squares for targets (MSB), raters (MSJ),
    residual (MSE) and the one-way within-target mean square (MSW), with n
    targets and k raters [1]:

    - ICC1 = (MSB - MSW) / (MSB + (k - 1) MSW); F = MSB / MSW on (n - 1,
      n(k - 1)) df.
    - ICC2 = (MSB - MSE) / (MSB + (k - 1) MSE + k (MSJ - MSE) / n); F = MSB /
      MSE on (n - 1, (n - 1)(k - 1)) df.
    - ICC3 = (MSB - MSE) / (MSB + (k - 1) MSE); F = MSB / MSE.
    - ICC1k = (MSB - MSW) / MSB, ICC2k = (MSB - MSE) / (MSB + (MSJ - MSE) / n),
      ICC3k = (MSB - MSE) / MSB, with the F tests of their single forms.

    Written out: neither scipy nor statsmodels has the Shrout-Fleiss ICCs or
    their intervals (``pingouin.intraclass_corr`` has, and is not a
    dependency); R's ``psych::ICC`` is the check.

    Intervals: exact F-based for ICC1/ICC3 and their averages; ICC2 by
    Satterthwaite's approximate df [1, 2], exactly as ``psych::ICC``
    (``lmer = FALSE``). Assumes normally distributed ratings and, for ICC2
    and ICC3, no target x rater interaction. Needs 2 or more targets and
    raters with some variation; otherwise NaN and a note.

    References
    ----------
    .. [1] Shrout, P. E. & Fleiss, J. L. (1979). Intraclass correlations:
       uses in assessing rater reliability. Psychol. Bull. 86(2), 420-428.
    .. [2] McGraw, K. O. & Wong, S. P. (1996). Forming inferences about some
       intraclass correlation coefficients. Psychol. Methods 1(1), 30-46.
    """
    x = np.asarray(ratings, dtype=float)
    x = x[~np.isnan(x).any(axis=1)]
    n, k = x.shape if x.ndim == 2 else (0, 0)
    base = pd.DataFrame(
        {"type": [t for t, _ in ICC_FORMS], "description": [d for _, d in ICC_FORMS]}
    )
    for c in ("icc", "f", "df1", "df2", "p", "ci_low", "ci_high"):
        base[c] = _NAN
    base["n_targets"], base["n_raters"], base["note"] = n, k, ""
    if n < 2 or k < 2:
        base["note"] = "fewer than 2 complete targets or raters: ICC undefined"
        return base
    grand = x.mean()
    ss_total = float(((x - grand) ** 2).sum())
    ss_rows = float(k * ((x.mean(axis=1) - grand) ** 2).sum())
    ss_cols = float(n * ((x.mean(axis=0) - grand) ** 2).sum())
    ss_err = ss_total - ss_rows - ss_cols
    msb = ss_rows / (n - 1)
    msw = (ss_total - ss_rows) / (n * (k - 1))
    msj = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    if msw == 0 or mse <= 0 or msb == 0:
        base["note"] = "no variation between or within targets: ICC undefined"
        return base
    alpha = 1 - conf_level
    icc1 = (msb - msw) / (msb + (k - 1) * msw)
    icc2 = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
    icc3 = (msb - mse) / (msb + (k - 1) * mse)
    icc1k = (msb - msw) / msb
    icc2k = (msb - mse) / (msb + (msj - mse) / n)
    icc3k = (msb - mse) / msb
    f1, df1n, df1d = msb / msw, n - 1, n * (k - 1)
    f3, df3n, df3d = msb / mse, n - 1, (n - 1) * (k - 1)
    p1, p3 = float(stats.f.sf(f1, df1n, df1d)), float(stats.f.sf(f3, df3n, df3d))
    q = 1 - alpha / 2
    f1l, f1u = f1 / stats.f.ppf(q, df1n, df1d), f1 * stats.f.ppf(q, df1d, df1n)
    f3l, f3u = f3 / stats.f.ppf(q, df3n, df3d), f3 * stats.f.ppf(q, df3d, df3n)
    l1, u1 = (f1l - 1) / (f1l + (k - 1)), (f1u - 1) / (f1u + (k - 1))
    l3, u3 = (f3l - 1) / (f3l + (k - 1)), (f3u - 1) / (f3u + (k - 1))
    # Satterthwaite df for ICC2 (Shrout & Fleiss 1979, eq. for case 2), as psych::ICC.
    fj = msj / mse
    vn = (k - 1) * (n - 1) * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    vd = (n - 1) * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    v = vn / vd
    f2u, f2l = stats.f.ppf(q, n - 1, v), stats.f.ppf(q, v, n - 1)
    l2 = n * (msb - f2u * mse) / (f2u * (k * msj + (k * n - k - n) * mse) + n * msb)
    u2 = n * (f2l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2l * msb)
    base["icc"] = [icc1, icc2, icc3, icc1k, icc2k, icc3k]
    base["f"] = [f1, f3, f3, f1, f3, f3]
    base["df1"] = [float(df1n), float(df3n), float(df3n)] * 2
    base["df2"] = [float(df1d), float(df3d), float(df3d)] * 2
    base["p"] = [p1, p3, p3] * 2
    base["ci_low"] = [l1, l2, l3, 1 - 1 / f1l, l2 * k / (1 + l2 * (k - 1)), 1 - 1 / f3l]
    base["ci_high"] = [u1, u2, u3, 1 - 1 / f1u, u2 * k / (1 + u2 * (k - 1)), 1 - 1 / f3u]
    return base


def weighted_kappa(a, b, weights: str = "quadratic") -> dict:
    """Cohen's weighted kappa for two raters' ordinal grades (R ``psych::cohen.kappa``).

    Parameters
    ----------
    a, b : array-like
        The two raters' grades of the same targets; pairs with a missing
        grade are dropped.
    weights : {"quadratic", "linear"}
        Disagreement weights ``((i - j) / (c - 1))^2`` or ``|i - j| / (c - 1)``
        over the category indices ``i, j`` of the ``c`` categories observed
        from either rater (sorted).

    Returns
    -------
    dict
        ``kappa`` = ``1 - sum(w O) / sum(w E)`` with O the observed and E the
        chance-expected proportions (product of the margins), ``n``,
        ``categories`` and ``note``.

    Notes
    -----
    ``statsmodels.stats.inter_rater.cohens_kappa(table, wt=weights)`` on the
    ``c x c`` table of counts (its default category scores ``0..c-1``).
    Categories not used by either rater do not enter the weights (as
    ``psych::cohen.kappa``). One category only, or complete chance agreement
    structure (``sum(w E) = 0``), gives NaN with a note.

    References
    ----------
    .. [1] Cohen, J. (1968). Weighted kappa. Psychol. Bull. 70(4), 213-220.
    .. [2] Fleiss, J. L. & Cohen, J. (1973). The equivalence of weighted
       kappa and the intraclass correlation coefficient as measures of
       reliability. Educ. Psychol. Meas. 33, 613-619.
    """
    if weights not in ("quadratic", "linear"):
        raise ValueError(f"weights must be 'quadratic' or 'linear', got {weights!r}")
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    cats = np.unique(np.concatenate([a, b]))
    out = {
        "kappa": _NAN,
        "n": int(a.size),
        "categories": " ".join(f"{c:g}" for c in cats),
        "note": "",
    }
    c = cats.size
    if a.size == 0 or c < 2:
        out["note"] = "fewer than 2 categories used: weighted kappa undefined"
        return out
    ia, ib = np.searchsorted(cats, a), np.searchsorted(cats, b)
    table = np.zeros((c, c))
    np.add.at(table, (ia, ib), 1)
    # statsmodels divides by the expected disagreement without a check.
    exp = np.outer(table.sum(axis=1), table.sum(axis=0))
    if not (exp * ~np.eye(c, dtype=bool)).any():
        out["note"] = "no expected disagreement: weighted kappa undefined"
        return out
    out["kappa"] = float(cohens_kappa(table, wt=weights, return_results=False))
    return out


AGREEMENT_COLUMNS = [
    "instrument",
    "score",
    "raters",
    "visit",
    "statistic",
    "description",
    "estimate",
    "f",
    "df1",
    "df2",
    "p",
    "ci_low",
    "ci_high",
    "n_targets",
    "n_raters",
    "note",
]


#: How the visits of one patient enter: each visit analysed on its own (every patient once per
#: visit), or every patient visit pooled as one target (visits treated as independent).
TARGETS = ("per_visit", "subject_visit")


def _visit_order(scores: pd.DataFrame) -> list[str]:
    """The visits of ``scores`` in time order: by median day where days are known, then code."""
    if "day" in scores and scores["day"].notna().any():
        days = scores.groupby("visit")["day"].median()
        return sorted(days.index, key=lambda v: (np.isnan(days[v]), days[v], str(v)))
    return sorted(pd.unique(scores["visit"]), key=str)


def rater_agreement(
    scores: pd.DataFrame,
    raters: Sequence[str],
    weights: str = "quadratic",
    conf_level: float = 0.95,
    visits: Sequence[str] | None = None,
    targets: str = "per_visit",
) -> pd.DataFrame:
    """Agreement between raters who scored the same visits: the ICCs (:func:`icc`) over every
    listed rater, and the weighted kappa (:func:`weighted_kappa`) of each pair, per visit.

    Parameters
    ----------
    scores : DataFrame
        ``subject``, ``visit``, ``rater``, ``value`` (and ``day``, which orders the visits):
        one score per rater and visit.
    raters : sequence of str
        The raters compared, in order. A patient visit enters when every one of them scored it.
    weights : {"quadratic", "linear"}
        The kappa weights.
    visits : sequence of str, optional
        The visits that enter, in the order given; default every visit of ``scores``, in time
        order (median day, else code).
    targets : {"per_visit", "subject_visit"}
        ``"per_visit"`` (default): the statistics at each visit separately, each patient one
        target, so no patient counts twice in one estimate. ``"subject_visit"``: one set of
        statistics over every listed visit, each patient visit a target, which treats the visits
        of one patient as independent (they are not: the intervals are then too narrow).

    Returns
    -------
    DataFrame
        :data:`AGREEMENT_COLUMNS` without ``instrument`` and ``score``: ``raters`` (``"a | b"``),
        ``visit`` (the visit code; with ``"subject_visit"`` the pooled visits, ``"pre | m12"``),
        ``statistic`` (the ICC type or ``"weighted kappa (quadratic)"``), ``description``,
        ``estimate``, the ICC's ``f``, ``df1``, ``df2``, ``p``, ``ci_low``, ``ci_high``,
        ``n_targets`` (patient visits rated by all), ``n_raters`` and ``note`` (why a value is
        NaN).
    """
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {TARGETS}, got {targets!r}")
    chosen = list(visits) if visits else _visit_order(scores)
    if not chosen:  # nothing graded: the statistics' rows, NaN with the note saying why
        return _agreement(scores, raters, weights, conf_level).assign(visit="")
    if targets == "subject_visit":
        within = scores[scores["visit"].isin(chosen)]
        return _agreement(within, raters, weights, conf_level).assign(visit=" | ".join(chosen))
    return pd.concat(
        [
            _agreement(scores[scores["visit"] == v], raters, weights, conf_level).assign(visit=v)
            for v in chosen
        ],
        ignore_index=True,
    )


def _agreement(
    scores: pd.DataFrame, raters: Sequence[str], weights: str, conf_level: float
) -> pd.DataFrame:
    """:func:`rater_agreement` over every patient visit of ``scores`` as one target each."""
    wide = (
        scores.pivot_table(
            index=["subject", "visit"], columns="rater", values="value", aggfunc="first"
        )
        if len(scores)
        else pd.DataFrame(columns=list(raters), dtype=float)
    )
    wide = wide.reindex(columns=list(raters)).dropna()
    rows = [
        icc(wide.to_numpy(float), conf_level)
        .rename(columns={"type": "statistic", "icc": "estimate"})
        .assign(raters=" | ".join(raters))
    ]
    for i, a in enumerate(raters):
        for b in raters[i + 1 :]:
            k = weighted_kappa(wide[a], wide[b], weights)
            rows.append(
                pd.DataFrame(
                    [
                        {
                            "statistic": f"weighted kappa ({weights})",
                            "description": f"{a} vs {b}",
                            "estimate": k["kappa"],
                            "n_targets": k["n"],
                            "n_raters": 2,
                            "note": k["note"],
                            "raters": f"{a} | {b}",
                        }
                    ]
                )
            )
    return pd.concat(rows, ignore_index=True)
