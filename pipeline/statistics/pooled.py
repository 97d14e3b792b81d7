"""Multi-centre pooling from site summaries: no patient-level value leaves a site.

Each site sends, per outcome, the number of pairs and the sums, sums of squares and
cross-products of its pre, post and change values (:func:`moments`; the site summary bundle of
:mod:`pipeline.site_summary`). From them the coordinating centre computes

* the **exact pooled paired t test** of all patients (:func:`pooled_paired`): the sums add up
  over sites, and the paired t test needs nothing else (the mean change is the summed change
  over the summed n; its standard deviation comes from the summed squares), so the result is
  the one R's ``t.test(post, pre, paired = TRUE)`` gives on the stacked patient data;
* **each site's mean change** with its t confidence interval (:func:`site_effects`), the
  effect the meta-analysis combines (its sampling variance ``var(change) / n``, as metafor's
  ``escalc(measure = "MC")``);
* the **meta-analysis of the mean change across sites** (:func:`meta_analysis`): the common
  (inverse-variance) effect and random effects with DerSimonian-Laird or REML tau², the
  Hartung-Knapp(-Sidik-Jonkman) option, Cochran's Q, I², H² and the prediction interval, as
  ``metafor::rma(yi, vi, method = "EE" | "DL" | "REML", test = "z" | "knha")`` and
  ``predict()`` give them;
* the **meta-regression** of the sites' mean changes on declared site characteristics
  (:func:`meta_regression`): how much of the between-site variance the characteristics
  explain, as ``metafor::rma(yi, vi, mods = ~ ..., method = "REML" | "DL",
  test = "z" | "knha")`` gives it.

A rank test (the Wilcoxon signed-rank test, a Hodges-Lehmann estimate) needs the patients'
values and cannot be pooled from sums; the pooled analyses are those of the mean change.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

__all__ = [
    "MOMENTS",
    "META_COLUMNS",
    "META_REGRESSION_COLUMNS",
    "POOLED_COLUMNS",
    "SITE_COLUMNS",
    "meta_analysis",
    "meta_regression",
    "moments",
    "pooled_paired",
    "random_effects",
    "reml_tau2",
    "site_effects",
]

#: The sufficient statistics of one outcome at one site, in the bundle's order: the pairs, then
#: the sums, sums of squares and the cross-product of the values before and after, and of the
#: change (after minus before).
MOMENTS = (
    "n",
    "sum_pre",
    "sum_post",
    "sum_change",
    "sumsq_pre",
    "sumsq_post",
    "sumsq_change",
    "sum_pre_post",
)

POOLED_COLUMNS = [
    "outcome",
    "score",
    "n_sites",
    "n_pairs",
    "mean_pre",
    "sd_pre",
    "mean_post",
    "sd_post",
    "mean_change",
    "sd_change",
    "se_change",
    "ci_low",
    "ci_high",
    "t",
    "df",
    "p",
    "r_pre_post",
    "conf_level",
]

SITE_COLUMNS = [
    "site",
    "outcome",
    "score",
    "n_pairs",
    "mean_pre",
    "sd_pre",
    "mean_post",
    "sd_post",
    "mean_change",
    "sd_change",
    "se_change",
    "variance",
    "ci_low",
    "ci_high",
    "t",
    "df",
    "p",
    "conf_level",
]

META_COLUMNS = [
    "outcome",
    "score",
    "model",
    "tau2_method",
    "hartung_knapp",
    "k",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "statistic",
    "distribution",
    "df",
    "p",
    "tau2",
    "tau",
    "i2",
    "h2",
    "q",
    "q_df",
    "q_p",
    "pi_low",
    "pi_high",
    "conf_level",
    "note",
]

_NAN = float("nan")


def moments(pre, post) -> dict[str, float]:
    """The sufficient statistics of the paired values ``pre`` and ``post`` (:data:`MOMENTS`).

    Each sum is :func:`math.fsum`, the correctly rounded sum of its terms, so it does not depend
    on the order of the patients: two cohorts holding the same values in another order give the
    same bytes. The change of each patient is ``post - pre``.

    Returns
    -------
    dict
        ``n`` (pairs), ``sum_pre``, ``sum_post``, ``sum_change``, ``sumsq_pre``,
        ``sumsq_post``, ``sumsq_change`` (sums of squares, not about the mean) and
        ``sum_pre_post`` (sum of the products of each patient's two values).
    """
    pre = np.asarray(pre, dtype=float)
    post = np.asarray(post, dtype=float)
    change = post - pre
    return {
        "n": int(len(pre)),
        "sum_pre": math.fsum(pre),
        "sum_post": math.fsum(post),
        "sum_change": math.fsum(change),
        "sumsq_pre": math.fsum(pre * pre),
        "sumsq_post": math.fsum(post * post),
        "sumsq_change": math.fsum(change * change),
        "sum_pre_post": math.fsum(pre * post),
    }


def _spread(n, total, squares):
    """Sum of squared deviations about the mean, from the raw sums (clipped at 0 against
    rounding when every value is the same)."""
    return np.maximum(squares - total * total / n, 0.0)


def _sd(n, total, squares) -> np.ndarray:
    """Sample standard deviation (n - 1) from the raw sums."""
    total = np.asarray(total, dtype=float)
    return np.sqrt(_spread(n, total, np.asarray(squares, dtype=float)) / (n - 1))


def _paired_t(n, mean, sd, conf_level: float) -> dict[str, np.ndarray]:
    """The paired t test of ``n`` changes of mean ``mean`` and SD ``sd``: R's
    ``t.test(post, pre, paired = TRUE)`` (``statistic``, ``parameter``, ``p.value``,
    ``conf.int``), from its summary."""
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = sd / np.sqrt(n)
        df = n - 1
        t = mean / se
        crit = stats.t.ppf(0.5 + conf_level / 2, df)
        return {
            "se_change": se,
            "ci_low": mean - crit * se,
            "ci_high": mean + crit * se,
            "t": t,
            "df": df,
            "p": 2 * stats.t.sf(np.abs(t), df),
        }


def pooled_paired(sites: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
    """The paired t test of every patient of every site, from the sites' sums.

    Parameters
    ----------
    sites : DataFrame
        One row per site, outcome and score: ``outcome``, ``score`` and the columns of
        :data:`MOMENTS`.
    conf_level : float
        Level of the confidence interval of the mean change.

    Returns
    -------
    DataFrame
        One row per outcome and score (:data:`POOLED_COLUMNS`), in first-seen order:
        ``n_sites`` (sites contributing), ``n_pairs`` (all patients), ``mean_pre``, ``sd_pre``,
        ``mean_post``, ``sd_post`` (means and SDs of the values before and after),
        ``mean_change`` (after minus before), ``sd_change``, ``se_change``, ``ci_low`` /
        ``ci_high`` (t interval of the mean change), ``t``, ``df`` (pairs - 1), ``p``
        (two-sided), ``r_pre_post`` (Pearson correlation of before and after), ``conf_level``.
        The same numbers as R's ``t.test(post, pre, paired = TRUE)`` on the stacked patients
        (tests/fixtures/r/pooled.R): ``mean_change`` is ``S / n`` and ``sd_change`` is
        ``sqrt((SS - S^2 / n) / (n - 1))`` of the summed change ``S`` and squares ``SS``.
    """
    keys = ["outcome", "score"]
    summed = sites.groupby(keys, sort=False)[list(MOMENTS)].sum()
    counted = sites.groupby(keys, sort=False).size().rename("n_sites")
    s = summed.join(counted).reset_index()
    n = s["n"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ss_pre = _spread(n, s["sum_pre"], s["sumsq_pre"])
        ss_post = _spread(n, s["sum_post"], s["sumsq_post"])
        ss_change = _spread(n, s["sum_change"], s["sumsq_change"])
        sp = s["sum_pre_post"] - s["sum_pre"] * s["sum_post"] / n
        mean_change = s["sum_change"] / n
        sd_change = np.sqrt(ss_change / (n - 1))
        out = pd.DataFrame(
            {
                "outcome": s["outcome"],
                "score": s["score"],
                "n_sites": s["n_sites"].astype(int),
                "n_pairs": s["n"].astype(int),
                "mean_pre": s["sum_pre"] / n,
                "sd_pre": np.sqrt(ss_pre / (n - 1)),
                "mean_post": s["sum_post"] / n,
                "sd_post": np.sqrt(ss_post / (n - 1)),
                "mean_change": mean_change,
                "sd_change": sd_change,
                **_paired_t(n, mean_change.to_numpy(), sd_change.to_numpy(), conf_level),
                "r_pre_post": sp / np.sqrt(ss_pre * ss_post),
                "conf_level": conf_level,
            }
        )
    return out[POOLED_COLUMNS]


def site_effects(sites: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
    """Each site's mean change, its sampling variance and its paired t test.

    Parameters
    ----------
    sites : DataFrame
        ``site``, ``outcome``, ``score`` and the columns of :data:`MOMENTS`.
    conf_level : float
        Level of each site's confidence interval.

    Returns
    -------
    DataFrame
        One row per site, outcome and score (:data:`SITE_COLUMNS`), in the input's order:
        ``n_pairs``, ``mean_pre``, ``sd_pre``, ``mean_post``, ``sd_post`` (the values before
        and after), ``mean_change``, ``sd_change``,
        ``se_change`` (``sd_change / sqrt(n)``), ``variance`` (``se_change²``, the ``vi`` of
        ``metafor::escalc(measure = "MC")``, which the meta-analysis weights by), ``ci_low`` /
        ``ci_high`` (the site's t interval, as its own study reports it), ``t``, ``df``, ``p``
        (the site's paired t test), ``conf_level``.
    """
    n = sites["n"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_change = sites["sum_change"].to_numpy(float) / n
        sd_change = np.sqrt(
            _spread(n, sites["sum_change"].to_numpy(float), sites["sumsq_change"].to_numpy(float))
            / (n - 1)
        )
        tested = _paired_t(n, mean_change, sd_change, conf_level)
        out = pd.DataFrame(
            {
                "site": sites["site"].to_numpy(),
                "outcome": sites["outcome"].to_numpy(),
                "score": sites["score"].to_numpy(),
                "n_pairs": sites["n"].astype(int).to_numpy(),
                "mean_pre": sites["sum_pre"].to_numpy(float) / n,
                "sd_pre": _sd(n, sites["sum_pre"], sites["sumsq_pre"]),
                "mean_post": sites["sum_post"].to_numpy(float) / n,
                "sd_post": _sd(n, sites["sum_post"], sites["sumsq_post"]),
                "mean_change": mean_change,
                "sd_change": sd_change,
                **tested,
                "variance": tested["se_change"] ** 2,
                "conf_level": conf_level,
            }
        )
    return out[SITE_COLUMNS]


def reml_tau2(effect, variance, *, tol: float = 1e-12, max_iter: int = 10_000) -> float:
    """The restricted maximum likelihood (REML) estimate of the between-site variance tau².

    Stands in for ``metafor::rma(yi, vi, method = "REML")$tau2``: statsmodels'
    ``combine_effects`` offers DerSimonian-Laird (``method_re="chi2"``) and Paule-Mandel
    (``"iterated"``) but no REML. Fisher scoring as metafor's ``rma.uni`` does it (Viechtbauer
    2005, Stat Med 30:261), for a model with an intercept only: with weights
    ``w = 1 / (v + tau²)``, the weighted mean ``mu`` and ``P = W - w w' / sum(w)``,

        tau² <- tau² + (y' P P y - tr P) / tr(P P),

    kept at or above 0 (the REML estimate on the boundary when the restricted likelihood
    falls from tau² = 0), started from the Hedges estimate as metafor starts it, and stopped
    when a step changes tau² by less than ``tol * (1 + tau²)`` (metafor's default threshold is
    1e-5; tests/fixtures/r/pooled.R runs it at 1e-12 to compare). A test also checks it against
    a direct maximisation of the restricted likelihood.
    """
    y = np.asarray(effect, dtype=float)
    v = np.asarray(variance, dtype=float)
    k = len(y)
    # Hedges (1983): the unweighted moment estimate, truncated at 0.
    tau2 = max(0.0, float(np.var(y, ddof=1) - v.mean())) if k > 1 else 0.0
    for _ in range(max_iter):
        w = 1 / (v + tau2)
        sw = w.sum()
        mu = (w * y).sum() / sw
        trace_p = sw - (w * w).sum() / sw
        trace_pp = (w * w).sum() - 2 * (w**3).sum() / sw + ((w * w).sum() / sw) ** 2
        step = ((w * w * (y - mu) ** 2).sum() - trace_p) / trace_pp
        updated = max(0.0, tau2 + step)
        if abs(updated - tau2) <= tol * (1 + tau2):
            return updated
        tau2 = updated
    raise ArithmeticError(
        f"the REML estimate of tau² did not converge in {max_iter} Fisher scoring steps; "
        "use the DerSimonian-Laird estimate (tau2_method = 'DL') for these sites."
    )


def random_effects(
    effect,
    variance,
    *,
    tau2_method: str = "REML",
    hartung_knapp: bool = False,
    conf_level: float = 0.95,
) -> dict[str, float]:
    """Meta-analysis of one effect over sites: ``metafor::rma(yi, vi, method, test)``.

    Parameters
    ----------
    effect, variance : array-like
        Each site's estimate (``yi``) and its sampling variance (``vi``, > 0).
    tau2_method : {"REML", "DL", "EE"}
        Between-site variance by restricted maximum likelihood (:func:`reml_tau2`) or
        DerSimonian-Laird (statsmodels ``combine_effects(method_re="chi2")``, truncated at 0
        as metafor truncates it), or ``"EE"``: the common-effect (inverse-variance) model,
        tau² = 0 (metafor's ``method = "EE"``, formerly ``"FE"``).
    hartung_knapp : bool
        The Hartung-Knapp(-Sidik-Jonkman) interval and test (metafor ``test = "knha"``): the
        variance of the estimate scaled by the weighted residual variance, and t with k - 1
        degrees of freedom instead of z.
    conf_level : float
        Level of the confidence and prediction intervals.

    Returns
    -------
    dict
        ``k``, ``estimate`` (weighted mean, weights ``1 / (vi + tau²)``), ``se``, ``ci_low``,
        ``ci_high``, ``statistic`` (z, or t with Hartung-Knapp), ``distribution`` ("z" or
        "t"), ``df`` (k - 1 for t, else NaN), ``p`` (two-sided), ``tau2``, ``tau``, ``i2``
        (percent of the total variance that is between sites: metafor's
        ``100 tau² / (tau² + s²)`` with the typical within-site variance
        ``s² = (k - 1) / (sum(w) - sum(w²) / sum(w))``, ``w = 1 / vi``, Higgins and Thompson
        2002; for the common-effect model ``100 (Q - df) / Q``, at least 0), ``h2``
        (``(tau² + s²) / s²``; common effect ``Q / df``), ``q`` (Cochran's Q, inverse-variance
        weights), ``q_df`` (k - 1), ``q_p`` (chi-squared), ``pi_low`` / ``pi_high``
        (prediction interval of a new site's effect, ``estimate ± crit sqrt(se² + tau²)``
        with crit the z or t quantile as metafor's ``predict()``; NaN for the common-effect
        model).
    """
    y = np.asarray(effect, dtype=float)
    v = np.asarray(variance, dtype=float)
    k = len(y)
    alpha = 1 - conf_level
    # Its own random-effects part uses the untruncated DL estimate, which can be negative (a
    # square root of a negative variance there, never read here).
    with np.errstate(invalid="ignore"):
        fixed = combine_effects(y, v, method_re="chi2", alpha=alpha)
    q = float(fixed.q)
    if tau2_method == "EE":
        tau2 = 0.0
    elif tau2_method == "DL":
        tau2 = max(0.0, float(fixed.tau2))
    elif tau2_method == "REML":
        tau2 = reml_tau2(y, v)
    else:
        raise ValueError(f"tau2_method is 'REML', 'DL' or 'EE', not {tau2_method!r}")
    # Given tau², the random-effects model is the inverse-variance model of the variances
    # vi + tau²: statsmodels' common-effect results of those are its estimate, its variance and
    # the Hartung-Knapp variance (var_hksj_fe: sum(w_rel (y - mu)²) / (k - 1)).
    with np.errstate(invalid="ignore"):
        given = combine_effects(y, v + tau2, method_re="chi2", alpha=alpha)
    estimate = float(given.mean_effect_fe)
    if hartung_knapp:
        se = math.sqrt(float(given.var_hksj_fe))
        df = float(k - 1)
        crit = float(stats.t.ppf(1 - alpha / 2, df))
    else:
        se = float(given.sd_eff_w_fe)
        df = _NAN
        crit = float(stats.norm.ppf(1 - alpha / 2))
    statistic = estimate / se
    p = float(
        2 * (stats.t.sf(abs(statistic), df) if hartung_knapp else stats.norm.sf(abs(statistic)))
    )
    w = 1 / v
    typical = (k - 1) / (w.sum() - (w * w).sum() / w.sum())
    if tau2_method == "EE":
        i2 = max(0.0, 100 * (q - (k - 1)) / q) if q > 0 else 0.0
        h2 = q / (k - 1)
        pi_low = pi_high = _NAN
    else:
        i2 = 100 * tau2 / (typical + tau2)
        h2 = (typical + tau2) / typical
        half = crit * math.sqrt(se * se + tau2)
        pi_low, pi_high = estimate - half, estimate + half
    return {
        "k": k,
        "estimate": estimate,
        "se": se,
        "ci_low": estimate - crit * se,
        "ci_high": estimate + crit * se,
        "statistic": statistic,
        "distribution": "t" if hartung_knapp else "z",
        "df": df,
        "p": p,
        "tau2": tau2,
        "tau": math.sqrt(tau2),
        "i2": i2,
        "h2": h2,
        "q": q,
        "q_df": k - 1,
        "q_p": float(stats.chi2.sf(q, k - 1)),
        "pi_low": pi_low,
        "pi_high": pi_high,
    }


def meta_analysis(
    effects: pd.DataFrame,
    *,
    tau2_method: str = "REML",
    hartung_knapp: bool = False,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """The common-effect and the random-effects meta-analysis of every outcome's mean change.

    Parameters
    ----------
    effects : DataFrame
        :func:`site_effects`' table (``site``, ``outcome``, ``score``, ``mean_change``,
        ``variance``).
    tau2_method : {"REML", "DL"}
        The random-effects model's estimator of tau² (:func:`random_effects`).
    hartung_knapp : bool
        Hartung-Knapp interval and t test for the random-effects model.
    conf_level : float
        Level of the confidence and prediction intervals.

    Returns
    -------
    DataFrame
        Two rows per outcome and score (:data:`META_COLUMNS`), in first-seen order: ``model``
        "common" (inverse-variance, ``tau2_method`` "EE", z) then "random" (the given method
        and test); the columns of :func:`random_effects`, ``conf_level``, and ``note``
        saying why a row has no estimate (fewer than two sites with a variance of the change
        above 0: a site whose patients all changed by the same amount has no sampling
        variance to weight by, and is left out of the meta-analysis, not of the exact pooled
        analysis).
    """
    rows = []
    for (outcome, score), sites in effects.groupby(["outcome", "score"], sort=False):
        usable = sites[(sites["variance"] > 0) & np.isfinite(sites["variance"])]
        left_out = len(sites) - len(usable)
        note = (
            f"{left_out} site{'s' if left_out != 1 else ''} without variation in the change "
            "left out"
            if left_out
            else ""
        )
        models = (("common", "EE", False), ("random", tau2_method, hartung_knapp))
        for model, method, knha in models:
            row = {
                "outcome": outcome,
                "score": score,
                "model": model,
                "tau2_method": method,
                "hartung_knapp": knha,
            }
            if len(usable) < 2:
                row.update(
                    k=len(usable),
                    note="fewer than two sites to combine" + (f"; {note}" if note else ""),
                )
            else:
                row.update(
                    random_effects(
                        usable["mean_change"],
                        usable["variance"],
                        tau2_method=method,
                        hartung_knapp=knha,
                        conf_level=conf_level,
                    ),
                    note=note,
                )
            row["conf_level"] = conf_level
            rows.append(row)
    return pd.DataFrame(rows, columns=META_COLUMNS)


#: The tidy meta-regression table (:func:`meta_regression_table`): one row per outcome and
#: coefficient, the model-level results repeated on each row of the model.
META_REGRESSION_COLUMNS = [
    "outcome",
    "score",
    "moderators",
    "term",
    "level",
    "reference",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "statistic",
    "distribution",
    "df",
    "p",
    "k",
    "n_coefficients",
    "tau2_method",
    "hartung_knapp",
    "tau2",
    "tau",
    "i2",
    "h2",
    "r2",
    "tau2_intercept_only",
    "qm",
    "qm_distribution",
    "qm_df1",
    "qm_df2",
    "qm_p",
    "qe",
    "qe_df",
    "qe_p",
    "conf_level",
    "note",
]


def _residual_projection(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``P = W - W X (X' W X)^-1 X' W``, ``W = diag(w)``: metafor's ``P`` of ``rma.uni``."""
    wx = x * w[:, None]
    return np.diag(w) - wx @ np.linalg.solve(x.T @ wx, wx.T)


def _reml_log_likelihood(y, v, x, tau2: float) -> float:
    """The restricted log-likelihood of the meta-regression at ``tau2`` (metafor's
    ``ll.REML``, without its constant in ``X'X``)."""
    w = 1 / (v + tau2)
    wx = x * w[:, None]
    xwx = x.T @ wx
    beta = np.linalg.solve(xwx, wx.T @ y)
    rss = float((w * (y - x @ beta) ** 2).sum())
    k, p = x.shape
    return float(
        -0.5 * (k - p) * math.log(2 * math.pi)
        - 0.5 * np.log(v + tau2).sum()
        - 0.5 * np.linalg.slogdet(xwx)[1]
        - 0.5 * rss
    )


def regression_tau2(
    effect,
    variance,
    design,
    *,
    method: str = "REML",
    tol: float = 1e-12,
    max_iter: int = 10_000,
) -> float:
    """The residual between-site variance tau² of a meta-regression.

    Stands in for ``metafor::rma(yi, vi, mods = ~ ..., method = "REML" | "DL")$tau2``: no
    Python library estimates it with moderators (statsmodels' ``combine_effects`` has an
    intercept only).

    * ``"DL"``: DerSimonian-Laird generalised to moderators (Raudenbush 2009, as metafor
      computes it): ``tau² = max(0, (QE - (k - p)) / tr P)`` with ``QE = y' P y`` and
      ``P = W - W X (X'WX)^-1 X'W``, ``W = diag(1 / vi)``.
    * ``"REML"``: Fisher scoring as metafor's ``rma.uni`` runs it (Viechtbauer 2005): from the
      Hedges estimate ``max(0, (y' P0 y - tr(P0 V)) / (k - p))`` (``P0`` the OLS residual
      projection), ``tau² <- tau² + (y' P P y - tr P) / tr(P P)`` with the weights
      ``1 / (vi + tau²)``, the step halved while it would take tau² below 0, until a step
      changes tau² by at most ``tol * (1 + tau²)`` (metafor's default threshold is 1e-5;
      tests/fixtures/r/meta_regression.R runs R at 1e-12 to compare). As metafor, an estimate
      whose restricted likelihood is below that at tau² = 0 is replaced by 0.

    Parameters
    ----------
    effect, variance : array-like
        Each site's estimate (``yi``) and sampling variance (``vi`` > 0).
    design : array-like
        The k x p model matrix, intercept included.

    Returns
    -------
    float
        tau², at least 0.
    """
    y = np.asarray(effect, dtype=float)
    v = np.asarray(variance, dtype=float)
    x = np.asarray(design, dtype=float)
    k, p = x.shape
    if method == "DL":
        projection = _residual_projection(x, 1 / v)
        qe = float(y @ projection @ y)
        return max(0.0, (qe - (k - p)) / float(np.trace(projection)))
    if method != "REML":
        raise ValueError(f"method is 'REML' or 'DL', not {method!r}")
    ols = np.eye(k) - x @ np.linalg.solve(x.T @ x, x.T)
    tau2 = max(0.0, float((y @ ols @ y - np.trace(ols * v[None, :])) / (k - p)))
    for _ in range(max_iter):
        projection = _residual_projection(x, 1 / (v + tau2))
        py = projection @ y
        pp_trace = float((projection * projection).sum())  # tr(P P), P symmetric
        step = (float(py @ py) - float(np.trace(projection))) / pp_trace
        while tau2 + step < 0:  # metafor halves the step rather than cutting it at 0
            step /= 2
        updated = tau2 + step
        if abs(updated - tau2) <= tol * (1 + tau2):
            tau2 = updated
            break
        tau2 = updated
    else:
        raise ArithmeticError(
            f"the REML estimate of tau² did not converge in {max_iter} Fisher scoring steps; "
            "use the DerSimonian-Laird estimate (tau2_method = 'DL') for these sites."
        )
    # metafor's ll0check: its tolerance control$tol, .Machine$double.eps^0.25.
    at_zero = _reml_log_likelihood(y, v, x, 0.0)
    if at_zero - _reml_log_likelihood(y, v, x, tau2) > np.finfo(float).eps ** 0.25 and tau2 > tol:
        tau2 = 0.0
    return tau2


def meta_regression(
    effect,
    variance,
    design: pd.DataFrame,
    *,
    tau2_method: str = "REML",
    hartung_knapp: bool = False,
    conf_level: float = 0.95,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Mixed-effects meta-regression of the sites' effects on site characteristics:
    ``metafor::rma(yi, vi, mods = ~ ..., method, test)``.

    Given the residual tau² (:func:`regression_tau2`), the coefficients are the weighted least
    squares fit with weights ``1 / (vi + tau²)`` (statsmodels ``WLS``): with z tests their
    covariance is ``(X' W X)^-1`` (``cov_type = "fixed scale"``, scale 1); with Hartung-Knapp
    (Knapp and Hartung 2003; metafor ``test = "knha"``) it is scaled by the weighted residual
    variance ``sum(w e²) / (k - p)``, which is statsmodels' own WLS scale, and the tests are t
    with k - p degrees of freedom.

    Parameters
    ----------
    effect, variance : array-like
        Each site's estimate (``yi``) and sampling variance (``vi`` > 0).
    design : DataFrame
        The model matrix, one row per site and one column per coefficient, the intercept
        first; its column names name the coefficients.
    tau2_method : {"REML", "DL"}
        Estimator of the residual tau².
    hartung_knapp : bool
        Knapp-Hartung covariance, t tests and the F omnibus test instead of z and chi-squared.
    conf_level : float
        Level of the coefficients' confidence intervals.

    Returns
    -------
    coefficients : DataFrame
        One row per column of ``design``: ``term`` (its name), ``estimate``, ``se``,
        ``ci_low``, ``ci_high``, ``statistic`` (z or t), ``df`` (k - p for t, else NaN), ``p``
        (two-sided).
    model : dict
        ``k`` (sites), ``n_coefficients`` (p), ``tau2`` (residual between-site variance),
        ``tau``, ``i2`` (residual I², percent: ``100 tau² / (tau² + s²)`` with
        ``s² = (k - p) / tr P``, ``P`` with weights ``1 / vi``, as metafor), ``h2``
        (``tau² / s² + 1``), ``r2`` (percent of tau² explained: ``max(0, 100 (tau²₀ - tau²) /
        tau²₀)`` with tau²₀ the intercept-only model's estimate by the same method, 0 when
        that is 0: metafor's ``R2``), ``tau2_intercept_only`` (tau²₀), ``qm`` (omnibus test
        of every coefficient but the intercept: Wald chi-squared with p - 1 df, or with
        Hartung-Knapp that divided by p - 1 and referred to F(p - 1, k - p)),
        ``qm_distribution`` ("chisq" or "F"), ``qm_df1``, ``qm_df2`` (k - p for F, else
        NaN), ``qm_p``, ``qe`` (residual heterogeneity: the weighted residual sum of squares
        with weights ``1 / vi``), ``qe_df`` (k - p), ``qe_p`` (chi-squared), ``distribution``
        of the coefficients' tests ("z" or "t").

    Raises
    ------
    ValueError
        Fewer sites than coefficients + 1 (no residual degree of freedom), or a model matrix
        whose columns are not independent (a characteristic the same at every site, or a
        level no site has).
    """
    import statsmodels.api as sm

    y = np.asarray(effect, dtype=float)
    v = np.asarray(variance, dtype=float)
    x = design.to_numpy(dtype=float)
    k, p = x.shape
    if k < p + 1:
        raise ValueError(
            f"a meta-regression with {p} coefficients needs at least {p + 1} sites, not {k}"
        )
    if np.linalg.matrix_rank(x) < p:
        raise ValueError(
            "the site characteristics do not tell the sites apart (one is the same at every "
            "site, or a level is at no site)"
        )
    tau2 = regression_tau2(y, v, x, method=tau2_method)
    alpha = 1 - conf_level
    model = sm.WLS(y, x, weights=1 / (v + tau2))
    if hartung_knapp:
        fit = model.fit()  # covariance scaled by sum(w e²) / (k - p); t with k - p df
        df = float(k - p)
    else:
        fit = model.fit(cov_type="fixed scale", cov_kwds={"scale": 1.0})
        df = _NAN
    ci = fit.conf_int(alpha=alpha)
    coefficients = pd.DataFrame(
        {
            "term": list(design.columns),
            "estimate": fit.params,
            "se": fit.bse,
            "ci_low": ci[:, 0],
            "ci_high": ci[:, 1],
            "statistic": fit.tvalues,
            "df": df,
            "p": fit.pvalues,
        }
    )
    moderators = np.eye(p)[1:]
    if p > 1:
        wald = fit.wald_test(moderators, use_f=hartung_knapp, scalar=True)
        qm, qm_p = float(wald.statistic), float(wald.pvalue)
    else:
        qm, qm_p = _NAN, _NAN
    w = 1 / v
    qe = float(sm.WLS(y, x, weights=w).fit().ssr)
    typical = (k - p) / float(np.trace(_residual_projection(x, w)))
    intercept = np.ones((k, 1))
    tau2_0 = regression_tau2(y, v, intercept, method=tau2_method)
    r2 = 0.0 if tau2_0 == 0 else max(0.0, 100 * (tau2_0 - tau2) / tau2_0)
    return coefficients, {
        "k": k,
        "n_coefficients": p,
        "distribution": "t" if hartung_knapp else "z",
        "tau2": tau2,
        "tau": math.sqrt(tau2),
        "i2": 100 * tau2 / (typical + tau2),
        "h2": tau2 / typical + 1,
        "r2": r2,
        "tau2_intercept_only": tau2_0,
        "qm": qm,
        "qm_distribution": "F" if hartung_knapp else "chisq",
        "qm_df1": p - 1,
        "qm_df2": float(k - p) if hartung_knapp else _NAN,
        "qm_p": qm_p,
        "qe": qe,
        "qe_df": k - p,
        "qe_p": float(stats.chi2.sf(qe, k - p)),
    }


def meta_regression_table(
    effects: pd.DataFrame,
    design: pd.DataFrame,
    terms: dict[str, tuple[str, str, str]],
    *,
    tau2_method: str = "REML",
    hartung_knapp: bool = False,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """The meta-regression (:func:`meta_regression`) of every outcome's mean change on the
    sites' characteristics.

    Parameters
    ----------
    effects : DataFrame
        :func:`site_effects`' table (``site``, ``outcome``, ``score``, ``mean_change``,
        ``variance``).
    design : DataFrame
        The model matrix indexed by site, the intercept first
        (:func:`pipeline.pooled_study.moderator_design`).
    terms : dict
        Column of ``design`` -> (``term``, ``level``, ``reference``) as the table names it:
        the characteristic ("intercept" for the intercept), the level a categorical
        characteristic's coefficient contrasts, and the reference level it contrasts with
        ("" for numeric ones).
    tau2_method, hartung_knapp, conf_level
        As :func:`meta_regression`.

    Returns
    -------
    DataFrame
        :data:`META_REGRESSION_COLUMNS`, one row per outcome and coefficient, in first-seen
        outcome order and the design's column order: ``moderators`` (the characteristics, comma
        separated), ``term``, ``level``, ``reference``, the coefficient's ``estimate``, ``se``,
        ``ci_low``, ``ci_high``, ``statistic``, ``distribution``, ``df``, ``p``; then the
        model's results repeated on each of its rows (:func:`meta_regression`'s ``model``),
        ``tau2_method``, ``hartung_knapp``, ``conf_level`` and ``note`` saying why an outcome
        has no estimate (fewer sites with a variance of the change above 0 than coefficients
        + 1, or characteristics that do not tell those sites apart). A site whose patients all
        changed by the same amount has no sampling variance and is left out, as in
        :func:`meta_analysis`.
    """
    names = ", ".join(dict.fromkeys(t[0] for t in terms.values() if t[0] != "intercept"))
    rows = []
    for (outcome, score), sites in effects.groupby(["outcome", "score"], sort=False):
        usable = sites[(sites["variance"] > 0) & np.isfinite(sites["variance"])]
        x = design.loc[usable["site"]]
        common = {
            "outcome": outcome,
            "score": score,
            "moderators": names,
            "tau2_method": tau2_method,
            "hartung_knapp": hartung_knapp,
            "conf_level": conf_level,
        }
        try:
            coefficients, model = meta_regression(
                usable["mean_change"],
                usable["variance"],
                x,
                tau2_method=tau2_method,
                hartung_knapp=hartung_knapp,
                conf_level=conf_level,
            )
        except ValueError as reason:
            left_out = len(sites) - len(usable)
            note = f"not estimable: {reason}" + (
                f"; {left_out} site{'s' if left_out != 1 else ''} without variation in the "
                "change left out"
                if left_out
                else ""
            )
            for column in design.columns:
                term, level, reference = terms[column]
                rows.append(
                    {
                        **common,
                        "term": term,
                        "level": level,
                        "reference": reference,
                        "k": len(usable),
                        "n_coefficients": design.shape[1],
                        "note": note,
                    }
                )
            continue
        for coefficient in coefficients.to_dict("records"):
            term, level, reference = terms[coefficient.pop("term")]
            rows.append(
                {
                    **common,
                    **model,
                    **coefficient,
                    "term": term,
                    "level": level,
                    "reference": reference,
                    "note": "",
                }
            )
    out = pd.DataFrame(rows, columns=META_REGRESSION_COLUMNS)
    # Empty (every outcome's model not estimable) columns stay numeric in the warehouse.
    text = {"outcome", "score", "moderators", "term", "level", "reference", "distribution"}
    text |= {"tau2_method", "qm_distribution", "note", "hartung_knapp"}
    for column in out.columns.difference(list(text)):
        out[column] = pd.to_numeric(out[column])
    return out
