"""Linear mixed model over all visits: estimated mean per visit with 95% CI.

The complete-case pre/post pairs drop any patient missing either end; the
mixed model uses every observed visit of every patient, so it is reported as
the sensitivity analysis beside the pairs (valid under missing at random).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["visit_means"]

_NAN = float("nan")

COLUMNS = ["outcome", "score", "visit", "median_day", "n_observed", "estimate", "se", "ci_low",
           "ci_high", "var_intercept", "var_slope", "cov_intercept_slope", "var_residual",
           "n_subjects", "n_observations", "random_effects", "method", "converged", "note"]


def _fit(y, visits, subjects, time, random_slope):
    from statsmodels.regression.mixed_linear_model import MixedLM

    levels = list(dict.fromkeys(visits))
    exog = np.column_stack([(visits == v).astype(float) for v in levels])
    exog_re = np.column_stack([np.ones_like(y), time]) if random_slope else np.ones((y.size, 1))
    model = MixedLM(y, exog, groups=subjects, exog_re=exog_re)
    # BFGS with a tight gradient tolerance first: statsmodels' default (L-BFGS) stops about
    # 3e-5 (relative) short of the REML optimum on lme4's sleepstudy, this reaches it to ~1e-9.
    # Where that tolerance cannot be met, a looser one, then the default optimizer.
    attempts = (("bfgs", {"gtol": 1e-10}), ("bfgs", {"gtol": 1e-6}), ("lbfgs", {}))
    for method, options in attempts:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = model.fit(reml=True, method=method, maxiter=5000, **options)
        if result.converged:
            caught = []
            break
    return levels, result, [str(w.message) for w in caught]


def visit_means(frame: pd.DataFrame, *, random_slope: bool = False,
                conf_level: float = 0.95) -> pd.DataFrame:
    """Mean of one outcome at each visit from a linear mixed model.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long table, one row per observed value: ``outcome, score, subject,
        visit, day, value``; NaN values are dropped. Several outcomes are
        modelled separately.
    random_slope : bool, default False
        Add a random slope on time (``day / 365.25``, years) correlated with
        the random intercept.
    conf_level : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        One row per outcome, score and visit (visits ordered by their median
        day), columns:

        - ``visit``, ``median_day``, ``n_observed`` (values at that visit).
        - ``estimate``, ``se``: model-estimated mean at the visit and its
          standard error; ``ci_low``, ``ci_high``: Wald interval
          ``estimate -/+ z_{1-alpha/2} se``.
        - ``var_intercept``, ``var_slope``, ``cov_intercept_slope``,
          ``var_residual``: REML variance components (slope terms NaN
          without ``random_slope``).
        - ``n_subjects``, ``n_observations``; ``random_effects`` (``"intercept"``
          or ``"intercept + slope on years"``); ``method``; ``converged``;
          ``note`` (optimizer warnings, or why the model was not fitted).

    Notes
    -----
    Model: ``value_ij = mu_visit(ij) + b_0i [+ b_1i t_ij] + e_ij`` with
    ``b_i ~ N(0, G)`` and ``e_ij ~ N(0, sigma^2)``, fitted by REML with
    statsmodels ``MixedLM``; the fixed part is one mean per visit (cell-means
    coding, no intercept), so the estimated means are the coefficients.
    Degrees of freedom: none -- intervals and any test use the asymptotic
    normal (Wald z) distribution, as statsmodels reports; with few subjects
    they are too narrow compared with Satterthwaite or Kenward-Roger
    (``lmerTest``). Assumes normal random effects and residuals, a linear
    model in the visit means and data missing at random.

    Checked against R ``lme4::lmer(value ~ 0 + visit + (1 | subject))`` (and
    ``(1 + t | subject)``), REML: ``fixef``, ``sqrt(diag(vcov))`` and
    ``VarCorr`` (``tests/fixtures/r/longitudinal.R``).

    References
    ----------
    .. [1] Laird, N. M. & Ware, J. H. (1982). Random-effects models for
       longitudinal data. Biometrics 38(4), 963-974.
    .. [2] Bates, D., Maechler, M., Bolker, B. & Walker, S. (2015). Fitting
       linear mixed-effects models using lme4. J. Stat. Softw. 67(1).
    """
    rows = []
    z = float(stats.norm.ppf(1 - (1 - conf_level) / 2))
    re_label = "intercept + slope on years" if random_slope else "intercept"
    for (outcome, score), g in frame.dropna(subset=["value"]).groupby(["outcome", "score"], sort=False):
        order = g.groupby("visit")["day"].median().sort_values(kind="stable")
        g = g.assign(_order=g["visit"].map({v: i for i, v in enumerate(order.index)}))
        g = g.sort_values(["_order", "subject"], kind="stable")
        base = {"outcome": outcome, "score": score, "random_effects": re_label,
                "method": "REML, Wald z intervals (no df)", "n_subjects": g["subject"].nunique(),
                "n_observations": len(g)}
        counts = g.groupby("visit")["value"].size()
        blank = {k: _NAN for k in ("estimate", "se", "ci_low", "ci_high", "var_intercept", "var_slope",
                                   "cov_intercept_slope", "var_residual")}
        if base["n_subjects"] < 2 or len(g) <= len(order) + 1:
            for v, day in order.items():
                rows.append({**base, **blank, "visit": v, "median_day": float(day),
                             "n_observed": int(counts[v]), "converged": False,
                             "note": "too few subjects or observations for a mixed model"})
            continue
        try:
            levels, res, msgs = _fit(g["value"].to_numpy(float), g["visit"].to_numpy(object),
                                     g["subject"].to_numpy(object), g["day"].to_numpy(float) / 365.25,
                                     random_slope)
        except (np.linalg.LinAlgError, ValueError) as err:
            for v, day in order.items():
                rows.append({**base, **blank, "visit": v, "median_day": float(day),
                             "n_observed": int(counts[v]), "converged": False,
                             "note": f"model could not be fitted: {err}"})
            continue
        cov_re = np.asarray(res.cov_re)
        fe = np.asarray(res.fe_params)
        se = np.sqrt(np.diag(np.asarray(res.cov_params()))[: fe.size])
        note = "; ".join(dict.fromkeys(m.split("\n")[0] for m in msgs))
        for i, v in enumerate(levels):
            rows.append({**base, "visit": v, "median_day": float(order[v]), "n_observed": int(counts[v]),
                         "estimate": float(fe[i]), "se": float(se[i]),
                         "ci_low": float(fe[i] - z * se[i]), "ci_high": float(fe[i] + z * se[i]),
                         "var_intercept": float(cov_re[0, 0]),
                         "var_slope": float(cov_re[1, 1]) if random_slope else _NAN,
                         "cov_intercept_slope": float(cov_re[0, 1]) if random_slope else _NAN,
                         "var_residual": float(res.scale), "converged": bool(res.converged),
                         "note": note})
    return pd.DataFrame(rows, columns=COLUMNS)
