"""Linear mixed model over all visits: estimated mean per visit with 95% CI.

The complete-case pre/post pairs drop any patient missing either end; the
mixed model uses every observed visit of every patient, so it is reported as
the sensitivity analysis beside the pairs (valid under missing at random).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["visit_means"]

_NAN = float("nan")

# What a fit gives per visit (NaN where it fails).
_ESTIMATES = (
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "var_intercept",
    "var_slope",
    "cov_intercept_slope",
    "var_residual",
)
COLUMNS = [
    "outcome",
    "score",
    "visit",
    "median_day",
    "n_observed",
    *_ESTIMATES,
    "n_subjects",
    "n_observations",
    "random_effects",
    "method",
    "converged",
    "note",
]


# What the ``method`` column says of every fit. lme4's REML criterion, profiled over the fixed
# effects and the residual variance, minimised from per-subject sufficient statistics
# (:func:`_profiled_fit`); lme4's ``vcov`` for the standard errors.
METHOD = "REML (profiled, per-subject sufficient statistics), Wald z intervals (no df)"

# lme4's isSingular() tolerance: a diagonal element of the relative covariance factor below it
# means a variance at zero (or, with a slope, a correlation of +-1): a boundary fit.
SINGULAR_TOL = 1e-4


def _profiled_fit(
    subject: np.ndarray,
    visit: np.ndarray,
    time: np.ndarray,
    y: np.ndarray,
    n_visits: int,
    random_slope: bool,
) -> dict:
    """REML fit of ``y = mu_visit + b_0 [+ b_1 t] + e`` from per-subject sufficient statistics.

    ``subject`` and ``visit`` are integer codes (0..m-1, 0..n_visits-1). The criterion is lme4's
    profiled REML deviance (Bates et al. 2015, eqs. 34-42): with relative covariance factor
    ``Lambda`` (random effects ``~ N(0, sigma^2 Lambda Lambda')``) and, per subject,
    ``M_i = I + Lambda' Z_i' Z_i Lambda``,

        d(theta) = sum_i log|M_i| + log|A| + (N - p) log(r^2),
        A   = X'X - sum_i X_i'Z_i Lambda M_i^-1 Lambda' Z_i'X_i,
        r^2 = y'y - sum_i (Lambda'Z_i'y_i)' M_i^-1 (Lambda'Z_i'y_i) - b'A^-1 b

    (Woodbury's identity for ``(I + Z_i Lambda Lambda' Z_i')^-1``), so one evaluation costs a
    few array operations over subjects, whatever their number. Estimates: ``beta = A^-1 b``,
    ``sigma^2 = r^2 / (N - p)``, ``G = sigma^2 Lambda Lambda'`` and ``vcov(beta) = sigma^2 A^-1``
    (lme4's ``vcov``, the inverse of ``X'V^-1 X``). ``theta`` is found by bounded Brent search
    (random intercept; the boundary ``theta = 0`` is taken when it is as good to within
    rounding) or Nelder-Mead then L-BFGS-B with ``Lambda``'s diagonal bounded below by 0
    (intercept and slope), to tolerances well below what is reported. ``singular``: a diagonal
    element of ``Lambda`` below :data:`SINGULAR_TOL`, lme4's ``isSingular()``.
    """
    from scipy import optimize

    q = 2 if random_slope else 1
    m = int(subject.max()) + 1
    # Centred responses: the sums below then hold residual-sized numbers (no cancellation);
    # the visit means are shifted back at the end.
    centre = float(y.mean())
    yc = y - centre
    n = np.bincount(subject, minlength=m).astype(float)
    zty = np.empty((m, q))
    zty[:, 0] = np.bincount(subject, yc, minlength=m)
    ztz = np.empty((m, q, q))
    ztz[:, 0, 0] = n
    ztx = np.zeros((m, q, n_visits))
    # Z_i'X_i by (subject, visit) cell: bincount on a flat index, far faster than np.add.at and
    # summing in the same (row) order.
    cell = subject * n_visits + visit
    ztx[:, 0, :] = np.bincount(cell, minlength=m * n_visits).reshape(m, n_visits)
    if random_slope:
        st = np.bincount(subject, time, minlength=m)
        ztz[:, 0, 1] = ztz[:, 1, 0] = st
        ztz[:, 1, 1] = np.bincount(subject, time * time, minlength=m)
        zty[:, 1] = np.bincount(subject, time * yc, minlength=m)
        ztx[:, 1, :] = np.bincount(cell, time, minlength=m * n_visits).reshape(m, n_visits)
    xtx = np.diag(np.bincount(visit, minlength=n_visits).astype(float))
    xty = np.bincount(visit, yc, minlength=n_visits)
    yty = float(yc @ yc)
    big_n, p = y.size, n_visits

    x0, y0 = ztx[:, 0, :], zty[:, 0]
    x1, y1 = (ztx[:, 1, :], zty[:, 1]) if random_slope else (None, None)
    if q == 1:
        # With a random intercept only, a subject enters the sums through its visit pattern
        # (which visits it has) and its sums of y: subjects sharing a pattern are summed once,
        # so an evaluation costs O(patterns), not O(subjects).
        counts = x0.astype(np.int64)
        base = int(counts.max(initial=0)) + 1
        if float(base) ** n_visits < 2.0**62:
            # A pattern as one integer (visit counts as digits), far faster to group than rows.
            _, first, which = np.unique(
                counts @ (base ** np.arange(n_visits, dtype=np.int64)),
                return_index=True,
                return_inverse=True,
            )
            patterns = x0[first]
        else:
            patterns, which = np.unique(x0, axis=0, return_inverse=True)
        which = which.ravel()
        per_pattern = np.bincount(which, minlength=len(patterns)).astype(float)
        y_sum = np.bincount(which, y0, minlength=len(patterns))
        y_square = np.bincount(which, y0 * y0, minlength=len(patterns))
        visits_of = patterns.sum(axis=1)

    def parts(theta: np.ndarray):
        # The sums over subjects written out for q = 1 and 2, as matrix products (BLAS).
        if q == 1:
            lam = np.array([[theta[0]]])
            m_k = 1.0 + theta[0] ** 2 * visits_of
            w_k = theta[0] ** 2 / m_k
            a = xtx - (patterns.T * (w_k * per_pattern)) @ patterns
            b = xty - patterns.T @ (w_k * y_sum)
            c = yty - float(np.sum(w_k * y_square))
            logdet = float(np.sum(per_pattern * np.log(m_k)))
        else:
            l00, l10, l11 = theta
            lam = np.array([[l00, 0.0], [l10, l11]])
            n_i, st, stt = ztz[:, 0, 0], ztz[:, 0, 1], ztz[:, 1, 1]
            k00, k01, k10, k11 = n_i * l00 + st * l10, st * l11, st * l00 + stt * l10, stt * l11
            m00, m01, m10, m11 = (
                1.0 + l00 * k00 + l10 * k10,
                l00 * k01 + l10 * k11,
                l11 * k10,
                1.0 + l11 * k11,
            )
            det = m00 * m11 - m01 * m10
            i00, i01, i10, i11 = m11 / det, -m01 / det, -m10 / det, m00 / det
            p0, p1 = l00 * x0 + l10 * x1, l11 * x1
            r0, r1 = l00 * y0 + l10 * y1, l11 * y1
            w0 = i00[:, None] * p0 + i01[:, None] * p1
            w1 = i10[:, None] * p0 + i11[:, None] * p1
            a = xtx - (p0.T @ w0 + p1.T @ w1)
            b = xty - (w0.T @ r0 + w1.T @ r1)
            c = yty - float(np.sum(r0 * (i00 * r0 + i01 * r1) + r1 * (i10 * r0 + i11 * r1)))
            logdet = float(np.log(det).sum())
        beta = np.linalg.solve(a, b)
        rss = c - b @ beta
        return lam, a, beta, rss, logdet

    def deviance(theta: np.ndarray) -> float:
        _, a, _, rss, logdet = parts(theta)
        sign, logdet_a = np.linalg.slogdet(a)
        if sign <= 0 or not rss > 0:
            return np.inf
        return float(logdet + logdet_a + (big_n - p) * np.log(rss))

    if q == 1:
        # The deviance is smooth in lambda >= 0; bracket the optimum on a log grid first.
        grid = np.r_[0.0, np.logspace(-4, 3, 15)]
        values = [deviance(np.array([g])) for g in grid]
        k = int(np.argmin(values))
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
        res = optimize.minimize_scalar(
            lambda t: deviance(np.array([t])),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-12, "maxiter": 500},
        )
        theta, converged = np.array([res.x]), bool(res.success)
        # Brent's bounded search never evaluates its end points: when the optimum is the boundary
        # (no between-subject variance) it stops a little above it, where the deviance, flat in
        # lambda at 0 (it depends on lambda^2), equals the boundary's to within rounding. Take
        # the boundary itself then, as lme4's bounded optimizer lands on it (variance exactly 0):
        # a deviance within 1e-10 (relative) of the minimum is within the rounding of its sums.
        if values[0] <= res.fun + 1e-10 * abs(res.fun):
            theta = np.array([0.0])
    else:
        bounds = [(0.0, None), (None, None), (0.0, None)]
        start = optimize.minimize(
            deviance,
            np.array([1.0, 0.0, 1.0]),
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000, "maxfev": 20000},
        )
        res = optimize.minimize(
            deviance,
            np.clip(start.x, [0, -np.inf, 0], None),
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000},
        )
        best = res if res.fun <= start.fun else start
        theta, converged = best.x, bool(start.success or res.success)
    lam, a, beta, rss, _ = parts(theta)
    scale = rss / (big_n - p)
    # Nelder-Mead may end with a negative diagonal element: Lambda Lambda' is the same either way.
    singular = bool(np.any(np.abs(np.diag(lam)) < SINGULAR_TOL))
    return {
        "fe": beta + centre,
        "cov_fe": scale * np.linalg.inv(a),
        "cov_re": scale * lam @ lam.T,
        "scale": float(scale),
        "converged": converged,
        "singular": singular,
    }


def visit_means(
    frame: pd.DataFrame, *, random_slope: bool = False, conf_level: float = 0.95
) -> pd.DataFrame:
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
        day, equal medians by visit code), columns:

        - ``visit``, ``median_day``, ``n_observed`` (values at that visit).
        - ``estimate``, ``se``: model-estimated mean at the visit and its
          standard error; ``ci_low``, ``ci_high``: Wald interval
          ``estimate -/+ z_{1-alpha/2} se``.
        - ``var_intercept``, ``var_slope``, ``cov_intercept_slope``,
          ``var_residual``: REML variance components (slope terms NaN
          without ``random_slope``).
        - ``n_subjects``, ``n_observations``; ``random_effects`` (``"intercept"``
          or ``"intercept + slope on years"``); ``method`` (:data:`METHOD`);
          ``converged``; ``note``: why the model was not fitted, a boundary
          (singular) fit, or an optimizer that did not report convergence.

    Notes
    -----
    Model: ``value_ij = mu_visit(ij) + b_0i [+ b_1i t_ij] + e_ij`` with
    ``b_i ~ N(0, G)`` and ``e_ij ~ N(0, sigma^2)``, fitted by REML; the fixed
    part is one mean per visit (cell-means coding, no intercept), so the
    estimated means are the coefficients. The REML criterion is lme4's,
    profiled over the fixed effects and ``sigma^2`` and minimised from
    per-subject sufficient statistics (:func:`_profiled_fit`); standard errors
    are lme4's ``vcov``, ``sigma^2 (X'V^-1 X)^-1`` at the estimates.
    Degrees of freedom: none -- intervals use the asymptotic normal (Wald z)
    distribution, as lme4 does; with few subjects they are too narrow
    compared with Satterthwaite or Kenward-Roger (``lmerTest``). Assumes
    normal random effects and residuals, a linear model in the visit means
    and data missing at random.

    Not fitted (note, NaN estimates): fewer than 2 subjects or at most
    ``visits + 1`` observations; and, as ``lme4::lmer`` refuses too, no more
    observations than random effects (``N <= q m``, ``q`` random effects per
    subject, ``m`` subjects), where the random effects cannot be told from
    the residuals. A fit with a variance at zero (or, with a slope, a
    correlation of +-1) is a boundary fit, noted as lme4's ``isSingular()``
    would flag it; it is still the REML estimate.

    Checked against R ``lme4::lmer(value ~ 0 + visit + (1 | subject))`` (and
    ``(1 + t | subject)``), REML: ``fixef``, ``sqrt(diag(vcov))``,
    ``VarCorr`` and ``isSingular`` on sleepstudy, ChickWeight, the demo
    study's outcomes and boundary and small cases
    (``tests/fixtures/r/statistics_families.R``, ``tests/fixtures/r/longitudinal.R``).

    The library call this stands in for is ``statsmodels.regression.
    mixed_linear_model.MixedLM(value, visit dummies, groups=subject).fit(
    reml=True)``. It is not used because its standard errors are not R's:
    they invert the joint information of the fixed effects and the variance
    parameters, which in unbalanced data is not lme4's ``vcov``; and its
    default optimiser stops short of the REML optimum. Its estimates and
    variance components agree with these (BFGS to a tight gradient
    tolerance; ``tests/test_statistics_longitudinal.py``, 1e-6 and 1e-4).

    References
    ----------
    .. [1] Laird, N. M. & Ware, J. H. (1982). Random-effects models for
       longitudinal data. Biometrics 38(4), 963-974.
    .. [2] Bates, D., Maechler, M., Bolker, B. & Walker, S. (2015). Fitting
       linear mixed-effects models using lme4. J. Stat. Softw. 67(1).
    """
    frames = []
    for (outcome, score), g in frame.dropna(subset=["value"]).groupby(
        ["outcome", "score"], sort=False
    ):
        visit, labels = pd.factorize(g["visit"])
        frames.append(
            visit_means_coded(
                outcome,
                score,
                g["subject"].to_numpy(),
                visit,
                list(labels),
                g["day"].to_numpy(float),
                g["value"].to_numpy(float),
                random_slope=random_slope,
                conf_level=conf_level,
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def _fit_rows(subject, visit, time, y, n_visits, random_slope) -> dict:
    try:
        return _profiled_fit(np.asarray(subject, np.int64), visit, time, y, n_visits, random_slope)
    except (np.linalg.LinAlgError, ValueError) as err:
        return {"error": str(err)}


def _visit_rows(
    fit: dict, order: pd.Series, counts, base: dict, random_slope: bool, z: float
) -> list[dict]:
    rows = []
    for i, (v, day) in enumerate(order.items()):
        row = {**base, "visit": v, "median_day": float(day), "n_observed": int(counts[v])}
        if "error" in fit:
            row.update(
                {k: _NAN for k in _ESTIMATES},
                converged=False,
                note=f"model could not be fitted: {fit['error']}",
            )
        else:
            est, se = float(fit["fe"][i]), float(np.sqrt(fit["cov_fe"][i, i]))
            cov_re = fit["cov_re"]
            notes = [] if fit["converged"] else ["optimizer did not report convergence"]
            if fit["singular"]:
                notes.append(
                    "boundary (singular) fit: a random-effect variance is estimated as zero"
                    + (" or the intercept-slope correlation as +-1" if random_slope else "")
                )
            row.update(
                estimate=est,
                se=se,
                ci_low=est - z * se,
                ci_high=est + z * se,
                var_intercept=float(cov_re[0, 0]),
                var_slope=float(cov_re[1, 1]) if random_slope else _NAN,
                cov_intercept_slope=float(cov_re[0, 1]) if random_slope else _NAN,
                var_residual=fit["scale"],
                converged=fit["converged"],
                note="; ".join(notes),
            )
        rows.append(row)
    return rows


def visit_means_coded(
    outcome: str,
    score: str,
    subject: np.ndarray,
    visit: np.ndarray,
    labels,
    day: np.ndarray,
    value: np.ndarray,
    *,
    random_slope: bool = False,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """:func:`visit_means` of one outcome given as arrays.

    ``subject``: codes of any sortable type; ``visit``: integer indices into ``labels`` (the
    visit codes); ``day``, ``value``: one element per observed value (no NaN). The rows are
    those :func:`visit_means` gives for the same values: visits ordered by median day (ties by
    code), the same columns. For the warehouse, which hands over integer codes: a frame of
    strings per value would cost more than the fit at registry size.
    """
    z = float(stats.norm.ppf(1 - (1 - conf_level) / 2))
    labels = list(labels)
    subject, _ = pd.factorize(np.asarray(subject), sort=True)
    # One canonical row order (subject, then visit code), so the sums are the same whatever
    # order the values arrived in.
    label_rank = np.argsort(
        np.argsort(np.array(labels, dtype=object), kind="stable"), kind="stable"
    )
    order = np.lexsort((label_rank[np.asarray(visit)], subject))
    subject, visit = subject[order], np.asarray(visit, np.int64)[order]
    day, value = np.asarray(day, float)[order], np.asarray(value, float)[order]
    seen = np.bincount(visit, minlength=len(labels))
    # As pandas does it: visits sorted by code, then stably by median day.
    present = sorted((k for k in range(len(labels)) if seen[k]), key=lambda k: labels[k])
    medians = {k: float(np.median(day[visit == k])) for k in present}
    present.sort(key=lambda k: medians[k])
    order = pd.Series(
        [medians[k] for k in present], index=[labels[k] for k in present], dtype=float
    )
    counts = pd.Series([int(seen[k]) for k in present], index=order.index)
    n_subjects = int(subject.max()) + 1 if subject.size else 0
    q = 2 if random_slope else 1
    base = {
        "outcome": outcome,
        "score": score,
        "random_effects": "intercept + slope on years" if random_slope else "intercept",
        "method": METHOD,
        "n_subjects": n_subjects,
        "n_observations": int(value.size),
    }
    # lme4::lmer stops in the second case too: it wants more observations than subjects ("number
    # of levels of each grouping factor must be < number of observations") and than random
    # effects ("number of observations <= number of random effects"); below that the
    # random-effect and residual variances cannot be told apart.
    if n_subjects < 2 or value.size <= len(order) + 1:
        note = "too few subjects or observations for a mixed model"
    elif value.size <= q * n_subjects:
        note = (
            f"too few observations for the random effects ({value.size} observations, "
            f"{q * n_subjects} random effects): they cannot be told from the residuals"
        )
    else:
        note = ""
    if note:
        rows = [
            {
                **base,
                **{k: _NAN for k in _ESTIMATES},
                "visit": v,
                "median_day": float(d),
                "n_observed": int(counts[v]),
                "converged": False,
                "note": note,
            }
            for v, d in order.items()
        ]
    else:
        position = np.full(len(labels), -1, np.int64)
        position[present] = np.arange(len(present))
        fit = _fit_rows(subject, position[visit], day / 365.25, value, len(order), random_slope)
        rows = _visit_rows(fit, order, counts, base, random_slope, z)
    return pd.DataFrame(rows, columns=COLUMNS)
