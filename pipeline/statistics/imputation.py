"""Missing pre or post values of an outcome by multiple imputation: the sensitivity analysis
beside the complete-case paired analysis.

Every patient with a value at either visit enters. The missing pre and post values (and any
missing predictor) are imputed by chained equations (``statsmodels.imputation.mice.MICEData``:
a linear model of each variable on all the others, its coefficients drawn from their
approximate posterior, then predictive mean matching, so an imputed value is one a patient
actually had), ``m`` times; each completed data set is analysed as the complete pairs are (the
mean change, paired t), and the ``m`` results are pooled with Rubin's rules and the
Barnard-Rubin degrees of freedom (:func:`rubin_pool`, as R ``mice::pool``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "COLUMNS",
    "rubin_pool",
    "impute_pre_post",
    "mean_change",
    "imputation_analysis",
]

_NAN = float("nan")

#: The columns of :func:`imputation_analysis`'s table, in order.
COLUMNS = [
    "outcome",
    "score",
    "analysis",
    "n_with_data",
    "n_analysed",
    "n_imputed_pre",
    "n_imputed_post",
    "m",
    "seed",
    "predictors",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "df",
    "p",
    "dfcom",
    "ubar",
    "b",
    "t",
    "riv",
    "lambda",
    "fmi",
    "note",
]


def rubin_pool(estimates, variances, dfcom: float, conf_level: float = 0.95) -> dict:
    """Pool one scalar estimate over ``m`` imputed data sets by Rubin's rules.

    Parameters
    ----------
    estimates, variances : array-like of float
        Each imputed data set's estimate ``Q_l`` and its squared standard error ``U_l``.
    dfcom : float
        The degrees of freedom of the analysis had no value been missing (n - 1 for a mean
        change); ``inf`` for a large-sample analysis.
    conf_level : float, default 0.95

    Returns
    -------
    dict
        ``m``; ``estimate`` (qbar, the mean of the estimates); ``ubar`` (mean within-imputation
        variance); ``b`` (between-imputation variance, denominator m - 1); ``t`` (total
        variance ``ubar + (1 + 1/m) b``); ``se`` (sqrt t); ``riv`` (relative increase in
        variance ``(1 + 1/m) b / ubar``); ``lambda`` (proportion of the variance due to the
        missing values, ``(1 + 1/m) b / t``); ``df`` (Barnard-Rubin degrees of freedom);
        ``fmi`` (fraction of missing information ``(riv + 2 / (df + 3)) / (1 + riv)``);
        ``dfcom``; ``ci_low``, ``ci_high`` (``qbar -/+ t_{df, 1-alpha/2} sqrt(t)``); ``p``
        (two-sided, ``qbar / sqrt(t)`` on a t distribution with ``df``).

    Notes
    -----
    Rubin (1987) for the variances; Barnard and Rubin (1999) for the degrees of freedom:
    ``df_old = (m - 1) / lambda^2``, ``df_obs = (dfcom + 1) / (dfcom + 3) dfcom (1 - lambda)``,
    ``df = df_old df_obs / (df_old + df_obs)`` (``df_old`` when ``dfcom`` is infinite), with
    ``lambda`` raised to 1e-4 when smaller, as R does. This is R ``mice::pool`` (and
    ``mice::pool.scalar``, rule "rubin1987"), written out because statsmodels'
    ``MICE.combine`` pools with a normal reference (no degrees of freedom) and reports
    ``lambda`` as its fraction of missing information; ``tests/test_imputation.py`` checks
    this function against ``mice::pool`` on the same imputed data sets.

    References
    ----------
    .. [1] Rubin, D. B. (1987). Multiple Imputation for Nonresponse in Surveys. Wiley.
    .. [2] Barnard, J. & Rubin, D. B. (1999). Small-sample degrees of freedom with multiple
       imputation. Biometrika 86(4), 948-955.
    .. [3] van Buuren, S. (2018). Flexible Imputation of Missing Data, 2nd ed., CRC Press,
       section 2.3.
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    m = q.size
    if m < 2:
        raise ValueError("Rubin's rules need at least 2 imputed data sets")
    qbar = float(q.mean())
    ubar = float(u.mean())
    b = float(q.var(ddof=1))
    t = ubar + (1 + 1 / m) * b
    riv = (1 + 1 / m) * b / ubar if ubar > 0 else math.inf
    lam = (1 + 1 / m) * b / t if t > 0 else _NAN
    # mice's barnard.rubin: lambda floored at 1e-4 for the degrees of freedom only.
    lam_df = max(lam, 1e-4) if not math.isnan(lam) else _NAN
    df_old = (m - 1) / lam_df**2
    if math.isinf(dfcom):
        df = df_old
    else:
        df_obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam_df)
        df = df_old * df_obs / (df_old + df_obs)
    fmi = (riv + 2 / (df + 3)) / (1 + riv)
    se = math.sqrt(t)
    half = float(stats.t.ppf(0.5 + conf_level / 2, df)) * se
    p = float(2 * stats.t.sf(abs(qbar) / se, df)) if se > 0 else _NAN
    return {
        "m": m,
        "estimate": qbar,
        "ubar": ubar,
        "b": b,
        "t": t,
        "se": se,
        "riv": riv,
        "lambda": lam,
        "df": float(df),
        "fmi": float(fmi),
        "dfcom": float(dfcom),
        "ci_low": qbar - half,
        "ci_high": qbar + half,
        "p": p,
    }


def mean_change(pre, post) -> tuple[float, float, float]:
    """The paired analysis of one completed data set: mean change ``post - pre``, its squared
    standard error ``var(d) / n`` and the complete-data degrees of freedom ``n - 1`` (R
    ``lm(I(post - pre) ~ 1)``: its coefficient, ``vcov`` and ``df.residual``; the paired t)."""
    d = np.asarray(post, dtype=float) - np.asarray(pre, dtype=float)
    n = d.size
    return float(d.mean()), float(d.var(ddof=1) / n), float(n - 1)


def _chain(data: pd.DataFrame, donors: int, rng: np.random.Generator):
    """A ``statsmodels.imputation.mice.MICEData`` chain whose imputation models are read as
    arrays rather than through patsy: each variable on an intercept and every other column,
    in column order (the design of MICEData's default formula ``v ~ a + b + ...``, built by
    patsy at every step, which took 50 ms of each update)."""
    from statsmodels.imputation.mice import MICEData

    class Chain(MICEData):
        def _design(self, vname: str) -> tuple[np.ndarray, np.ndarray]:
            others = [c for c in self.data.columns if c != vname]
            x = self.data[others].to_numpy(dtype=float)
            return self.data[vname].to_numpy(dtype=float), np.column_stack([np.ones(len(x)), x])

        def get_split_data(self, vname):
            y, x = self._design(vname)
            obs, miss = self.ix_obs[vname], self.ix_miss[vname]
            return y[obs], x[obs], x[miss], {}, {}

        def get_fitting_data(self, vname):
            y, x = self._design(vname)
            obs = self.ix_obs[vname]
            return y[obs], x[obs], {}, {}

    return Chain(data, k_pmm=donors, rng=rng)


def impute_pre_post(
    data: pd.DataFrame, m: int, seed: int, *, iterations: int = 10, donors: int = 5
) -> list[pd.DataFrame]:
    """``m`` completed copies of ``data`` by chained equations, reproducibly.

    Parameters
    ----------
    data : DataFrame
        Numeric columns ``pre_value``, ``post_value`` and the predictors, one row per patient;
        NaN where missing. Every column is imputed from all the others.
    m : int
        Number of imputed data sets.
    seed : int
        Seeds the chains: chain ``l`` draws from ``numpy.random.SeedSequence(seed)``'s
        ``l``-th spawned child, so the same data and seed give the same values.
    iterations : int, default 10
        Cycles of the chained equations per chain (R ``mice``'s ``maxit``); the chain's last
        state is the imputed data set.
    donors : int, default 5
        Predictive mean matching draws the value of one of the ``donors`` patients whose
        predicted values are nearest (R ``mice``'s default ``donors = 5``).

    Returns
    -------
    list of DataFrame
        ``m`` frames like ``data`` (same index and columns), without a missing value.

    Notes
    -----
    Each chain is ``statsmodels.imputation.mice.MICEData`` (Gaussian perturbation of the
    linear imputation model's coefficients, predictive mean matching), started afresh, as R
    ``mice`` runs ``m`` independent chains. Assumes the values are missing at random given the
    other visit's value and the predictors.
    """
    children = np.random.SeedSequence(seed).spawn(m)
    out = []
    for child in children:
        chain = _chain(data.reset_index(drop=True), donors, np.random.default_rng(child))
        chain.update_all(iterations)
        out.append(chain.data.set_axis(data.index).astype(float))
    return out


def imputation_analysis(
    values: pd.DataFrame,
    *,
    outcome: str,
    score: str,
    m: int,
    seed: int,
    predictors: Sequence[str] = (),
    iterations: int = 10,
    donors: int = 5,
    conf_level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The mean change of one outcome, complete pairs and multiply imputed, side by side.

    Parameters
    ----------
    values : DataFrame
        ``subject``, ``pre_value``, ``post_value`` (NaN where missing) and the ``predictors``
        as numbers: one row per patient with a value at either visit (a patient with neither
        is left out).
    outcome, score : str
        Name the rows.
    m, seed, iterations, donors
        As :func:`impute_pre_post`.
    predictors : sequence of str
        The columns of ``values`` that predict the missing values besides the other visit's.
    conf_level : float, default 0.95

    Returns
    -------
    (DataFrame, DataFrame)
        The result table, columns :data:`COLUMNS`, two rows:

        - ``analysis = "complete case"``: the paired t of the complete pairs (``estimate`` the
          mean change, ``se``, its CI, ``df = n - 1``, ``p``); the pooling columns NaN.
        - ``analysis = "multiple imputation"``: :func:`rubin_pool` of the ``m`` completed data
          sets' mean changes: ``estimate`` (qbar), ``se`` (sqrt t), CI and ``p`` on the
          Barnard-Rubin ``df``; ``dfcom`` (n - 1), ``ubar``, ``b``, ``t``, ``riv``,
          ``lambda``, ``fmi`` as ``mice::pool`` names them.

        Both: ``n_with_data`` (patients with a value at either visit), ``n_analysed`` (complete
        pairs; every patient with data when imputed), ``n_imputed_pre``, ``n_imputed_post``
        (values imputed), ``m``, ``seed``, ``predictors`` (joined by ", "), ``note``.

        And the imputed data sets, long: ``imputation`` (1..m), ``subject``, ``pre_value``,
        ``post_value`` and the predictors.
    """
    from pipeline.statistics.paired import paired_t

    predictors = list(predictors)
    data = values[["pre_value", "post_value", *predictors]].astype(float)
    has_data = data[["pre_value", "post_value"]].notna().any(axis=1).to_numpy()
    data = data[has_data]
    subjects = values["subject"].to_numpy()[has_data]
    n = len(data)
    miss_pre = int(data["pre_value"].isna().sum())
    miss_post = int(data["post_value"].isna().sum())
    complete = data.dropna(subset=["pre_value", "post_value"])
    common = {
        "outcome": outcome,
        "score": score,
        "n_with_data": n,
        "m": m,
        "seed": seed,
        "predictors": ", ".join(predictors),
    }
    tt = paired_t(complete["pre_value"], complete["post_value"], conf_level=conf_level)
    cc = {
        **common,
        "analysis": "complete case",
        "n_analysed": tt.n,
        "n_imputed_pre": 0,
        "n_imputed_post": 0,
        "estimate": tt.mean_diff,
        "se": tt.sd_diff / math.sqrt(tt.n) if tt.n else _NAN,
        "ci_low": tt.ci_low,
        "ci_high": tt.ci_high,
        "df": tt.df,
        "p": tt.p,
        "note": tt.note,
    }
    mi = {
        **common,
        "analysis": "multiple imputation",
        "n_analysed": n,
        "n_imputed_pre": miss_pre,
        "n_imputed_post": miss_post,
        "note": "",
    }
    sets = []
    observed = data.notna()
    if n < 3 or len(complete) < 2 or (~observed).all(axis=0).any():
        mi["note"] = (
            "not computed: fewer than 2 complete pairs, fewer than 3 patients with a value, or "
            "a predictor without any value"
        )
    else:
        sets = impute_pre_post(data, m, seed, iterations=iterations, donors=donors)
        results = [mean_change(s["pre_value"], s["post_value"]) for s in sets]
        pooled = rubin_pool(
            [r[0] for r in results], [r[1] for r in results], results[0][2], conf_level
        )
        mi.update({k: v for k, v in pooled.items() if k != "m"})
        if miss_pre + miss_post == 0:
            mi["note"] = "no value missing: the imputed data sets are the complete pairs"
    table = pd.DataFrame([cc, mi]).reindex(columns=COLUMNS)
    imputed = (
        pd.concat(
            [s.assign(imputation=i, subject=subjects) for i, s in enumerate(sets, start=1)],
            ignore_index=True,
        )
        if sets
        else pd.DataFrame(columns=["imputation", "subject", "pre_value", "post_value"])
    )
    imputed = imputed[["imputation", "subject", "pre_value", "post_value", *predictors]]
    return table, imputed
