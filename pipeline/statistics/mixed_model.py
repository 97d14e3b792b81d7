"""Linear mixed models as lme4 users write them: ``value ~ time * group + covariates + (1 [+ t] |
subject)``, REML or ML, fixed effects with Satterthwaite degrees of freedom (lmerTest), variance
components and likelihood-ratio tests between nested models (``anova(m0, m1)``).

The fit is lme4's profiled deviance computed from per-subject sufficient statistics (as
:mod:`pipeline.statistics.longitudinal` does for the visit means, here with any fixed-effects
design): one evaluation costs a few array operations over subjects, whatever the number of
visits, so a registry of 10,000 patients fits in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = [
    "FIT_COLUMNS",
    "FIXED_COLUMNS",
    "LRT_COLUMNS",
    "MixedModelFit",
    "fit_lmm",
    "fixed_effects",
    "likelihood_ratio",
    "mixed_model",
    "satterthwaite_df",
]

# lme4's isSingular() tolerance on the diagonal of the relative covariance factor.
SINGULAR_TOL = 1e-4
# Eigenvalues of the deviance's Hessian at or below this are left out of its (generalised)
# inverse, as lmerTest does (its `tol = 1e-8` in `lmerTest:::get_vcov_varpar`).
_HESSIAN_TOL = 1e-8
_LOG_2PI = float(np.log(2 * np.pi))


@dataclass
class MixedModelFit:
    """One fitted model: lme4's estimates and what Satterthwaite's df need.

    ``beta`` fixed effects (in the columns' order), ``vcov`` lme4's ``vcov`` (``sigma^2
    (X'V^-1 X)^-1``), ``theta`` lme4's relative covariance factor (lower triangle, column-wise:
    ``[l00]`` or ``[l00, l10, l11]``, on the slope variable's own scale), ``sigma`` residual SD,
    ``cov_re`` random-effects covariance matrix, ``loglik`` (REML or ML, with lme4's constants),
    ``criterion`` the REML criterion (REML) or the deviance (ML), ``n_par`` parameters counted
    by ``AIC`` (fixed effects, covariance parameters, sigma).
    """

    beta: np.ndarray
    vcov: np.ndarray
    theta: np.ndarray
    sigma: float
    cov_re: np.ndarray
    loglik: float
    criterion: float
    reml: bool
    n_obs: int
    n_subjects: int
    n_par: int
    converged: bool
    singular: bool
    # The sums the model is fitted from (_Sums) and the slope's internal scale.
    sums: object = field(repr=False, default=None)
    scale: float = 1.0

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_par

    @property
    def bic(self) -> float:
        return -2 * self.loglik + self.n_par * np.log(self.n_obs)


class _Sums:
    """Per-subject sufficient statistics of ``y = X beta + Z b + e`` (Z: intercept [, slope])."""

    def __init__(self, y, x, subject, slope):
        subject = np.asarray(subject, np.int64)
        m = int(subject.max()) + 1
        self.n, self.p = x.shape
        self.m = m
        self.q = 1 if slope is None else 2
        z = np.ones((self.n, self.q))
        if slope is not None:
            z[:, 1] = slope
        # Centred y (the intercept is shifted back): residual-sized sums, no cancellation.
        self.centre = float(y.mean())
        yc = y - self.centre
        q, p = self.q, self.p
        self.ztz = np.empty((m, q, q))
        self.ztx = np.empty((m, q, p))
        self.zty = np.empty((m, q))
        for j in range(q):
            self.zty[:, j] = np.bincount(subject, z[:, j] * yc, minlength=m)
            for k in range(q):
                self.ztz[:, j, k] = np.bincount(subject, z[:, j] * z[:, k], minlength=m)
            for k in range(p):
                self.ztx[:, j, k] = np.bincount(subject, z[:, j] * x[:, k], minlength=m)
        self.xtx = x.T @ x
        self.xty = x.T @ yc
        self.yty = float(yc @ yc)

    def lam(self, theta) -> np.ndarray:
        if self.q == 1:
            return np.array([[theta[0]]])
        return np.array([[theta[0], 0.0], [theta[1], theta[2]]])

    def parts(self, theta):
        """``A = X'V*^-1 X``, ``beta(theta)``, the penalised RSS ``r^2(theta)``, ``log|L|^2``
        (Bates et al. 2015, eqs. 34-42, with Woodbury per subject)."""
        # The per-subject q x q algebra written out (q = 1, 2), so that the sums over subjects
        # are matrix products (BLAS): an evaluation for 10,000 patients takes milliseconds.
        x0, y0, n = self.ztx[:, 0, :], self.zty[:, 0], self.ztz[:, 0, 0]
        if self.q == 1:
            t = theta[0]
            det = 1.0 + t * t * n
            lx0, ly0 = t * x0, t * y0
            w = 1.0 / det
            a = self.xtx - lx0.T @ (lx0 * w[:, None])
            b = self.xty - lx0.T @ (ly0 * w)
            c = self.yty - float(np.sum(ly0 * ly0 * w))
        else:
            l00, l10, l11 = theta
            x1, y1 = self.ztx[:, 1, :], self.zty[:, 1]
            st, stt = self.ztz[:, 0, 1], self.ztz[:, 1, 1]
            k00, k01, k10, k11 = n * l00 + st * l10, st * l11, st * l00 + stt * l10, stt * l11
            m00 = 1.0 + l00 * k00 + l10 * k10
            m01 = l00 * k01 + l10 * k11
            m11 = 1.0 + l11 * k11
            det = m00 * m11 - m01 * m01
            i00, i01, i11 = m11 / det, -m01 / det, m00 / det
            lx0, lx1 = l00 * x0 + l10 * x1, l11 * x1
            ly0, ly1 = l00 * y0 + l10 * y1, l11 * y1
            wx0 = i00[:, None] * lx0 + i01[:, None] * lx1
            wx1 = i01[:, None] * lx0 + i11[:, None] * lx1
            a = self.xtx - (lx0.T @ wx0 + lx1.T @ wx1)
            b = self.xty - (wx0.T @ ly0 + wx1.T @ ly1)
            c = self.yty - float(
                np.sum(ly0 * (i00 * ly0 + i01 * ly1) + ly1 * (i01 * ly0 + i11 * ly1))
            )
        if not np.all(det > 0):
            raise np.linalg.LinAlgError("random-effects system not positive definite")
        logdet = np.log(det)
        beta = np.linalg.solve(a, b)
        rss = c - b @ beta
        return a, beta, rss, float(logdet.sum())

    def profiled(self, theta, reml: bool) -> float:
        """lme4's profiled deviance (ML) or REML criterion at ``theta``."""
        try:
            a, _, rss, ldl2 = self.parts(theta)
        except np.linalg.LinAlgError:
            return np.inf
        sign, lda = np.linalg.slogdet(a)
        if sign <= 0 or not rss > 0:
            return np.inf
        if reml:
            k = self.n - self.p
            return ldl2 + lda + k * (1 + _LOG_2PI + np.log(rss / k))
        return ldl2 + self.n * (1 + _LOG_2PI + np.log(rss / self.n))

    def deviance_vp(self, varpar, reml: bool) -> float:
        """The deviance at ``(theta, sigma)`` without profiling sigma out: lmerTest's
        ``devfun_vp`` (``ldL2 + r^2/sigma^2 + n log(2 pi sigma^2)``, REML adding
        ``log|RX|^2 - p log(2 pi sigma^2)``)."""
        theta, sigma2 = varpar[:-1], varpar[-1] ** 2
        a, _, rss, ldl2 = self.parts(theta)
        dev = ldl2 + rss / sigma2 + self.n * (_LOG_2PI + np.log(sigma2))
        if reml:
            dev += np.linalg.slogdet(a)[1] - self.p * (_LOG_2PI + np.log(sigma2))
        return float(dev)

    def covbeta(self, varpar) -> np.ndarray:
        """``sigma^2 (X'V*^-1 X)^-1`` at ``(theta, sigma)``: lmerTest's ``get_covbeta``."""
        a, _, _, _ = self.parts(varpar[:-1])
        return varpar[-1] ** 2 * np.linalg.inv(a)


def _minimise(sums: _Sums, reml: bool) -> tuple[np.ndarray, bool]:
    """``theta`` minimising the profiled criterion, ``Lambda``'s diagonal bounded below by 0."""

    def f(theta):
        return sums.profiled(np.asarray(theta, float), reml)

    if sums.q == 1:
        grid = np.r_[0.0, np.logspace(-4, 3, 15)]
        values = [f([g]) for g in grid]
        k = int(np.argmin(values))
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
        res = optimize.minimize_scalar(
            lambda t: f([t]),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-12, "maxiter": 500},
        )
        theta = np.array([res.x])
        # The boundary (no between-subject variance) when it is as good to within rounding:
        # Brent's bounded search never evaluates its end points.
        if values[0] <= res.fun + 1e-10 * abs(res.fun):
            theta = np.array([0.0])
        return theta, bool(res.success)
    # Nelder-Mead stops when the simplex is small in both theta and the criterion: 1e-10 in
    # the criterion (a few hundred units) is near its rounding, and a tighter one is never met.
    start = optimize.minimize(
        f,
        np.array([1.0, 0.0, 1.0]),
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 20000, "maxfev": 20000},
    )
    res = optimize.minimize(
        f,
        np.clip(start.x, [0, -np.inf, 0], None),
        method="L-BFGS-B",
        bounds=[(0.0, None), (None, None), (0.0, None)],
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000},
    )
    best = res if res.fun <= start.fun else start
    theta = best.x.copy()
    # Lambda Lambda' is the same with a column's sign flipped: keep the diagonal non-negative.
    if theta[0] < 0:
        theta[:2] = -theta[:2]
    theta[2] = abs(theta[2])
    return theta, bool(start.success or res.success)


def fit_lmm(
    y: np.ndarray,
    x: np.ndarray,
    subject: np.ndarray,
    slope: np.ndarray | None = None,
    *,
    reml: bool = True,
) -> MixedModelFit:
    """Fit ``y = X beta + b_0i [+ b_1i slope] + e`` as ``lme4::lmer`` does.

    Parameters
    ----------
    y : numpy.ndarray
        Responses, one per observation (no NaN).
    x : numpy.ndarray
        Fixed-effects design (``model.matrix``), its first column the intercept (all ones).
    subject : numpy.ndarray
        Integer subject codes 0..m-1.
    slope : numpy.ndarray, optional
        The variable of a random slope, correlated with the random intercept
        (``(1 + slope | subject)``); None: random intercept only (``(1 | subject)``).
    reml : bool, default True
        REML (``REML = TRUE``) or maximum likelihood.

    Returns
    -------
    MixedModelFit

    Notes
    -----
    The criterion is lme4's profiled deviance (Bates et al. 2015, eqs. 34-42), computed from
    per-subject sufficient statistics (Woodbury's identity for ``(I + Z_i Lambda Lambda'
    Z_i')^-1``), minimised over ``theta`` by bounded Brent search (one parameter) or
    Nelder-Mead then L-BFGS-B (three). ``vcov`` is lme4's, ``sigma^2 (X'V*^-1 X)^-1``. The
    slope variable is divided by its largest absolute value inside the fit (the optimiser then
    works on numbers near 1 whatever the unit) and ``theta``, ``cov_re`` are returned on its
    own scale.
    """
    y = np.asarray(y, float)
    x = np.asarray(x, float)
    scale = 1.0
    if slope is not None:
        slope = np.asarray(slope, float)
        scale = float(np.max(np.abs(slope))) or 1.0
        slope = slope / scale
    sums = _Sums(y, x, subject, slope)
    theta, converged = _minimise(sums, reml)
    a, beta, rss, _ = sums.parts(theta)
    k = sums.n - sums.p if reml else sums.n
    sigma2 = rss / k
    lam = sums.lam(theta)
    unscale = np.diag([1.0, 1.0 / scale][: sums.q])
    cov_re = sigma2 * unscale @ lam @ lam.T @ unscale
    criterion = sums.profiled(theta, reml)
    beta = beta.copy()
    beta[0] += sums.centre
    theta_out = theta.copy()
    if sums.q == 2:
        theta_out[1:] /= scale
    return MixedModelFit(
        beta=beta,
        vcov=sigma2 * np.linalg.inv(a),
        theta=theta_out,
        sigma=float(np.sqrt(sigma2)),
        cov_re=cov_re,
        loglik=-criterion / 2,
        criterion=float(criterion),
        reml=reml,
        n_obs=sums.n,
        n_subjects=sums.m,
        n_par=sums.p + (1 if sums.q == 1 else 3) + 1,
        converged=converged,
        singular=bool(np.any(np.abs(np.diag(lam)) < SINGULAR_TOL)),
        sums=sums,
        scale=scale,
    )


# Relative step of the numerical derivatives (times max(|x|, 0.1)), halved twice for
# Richardson's extrapolation. Smaller steps drown in the rounding of the deviance (about
# 1e-14 relative): on Orthodont's random-slope ML model (df 27.000 in lmerTest) one
# extrapolation from steps of 0.1% gives df of 27.002, this 27.00000-27.00002.
_STEP = 2e-2


def _richardson(difference, x: np.ndarray) -> np.ndarray:
    """Central differences at steps h, h/2, h/4 extrapolated twice (error O(h^6)), as
    numDeriv extrapolates its differences (``method = "Richardson"``)."""
    h = _STEP * np.maximum(np.abs(x), 0.1)
    d = [difference(h / 2**k) for k in range(3)]
    d1 = [(4 * d[k + 1] - d[k]) / 3 for k in range(2)]
    return (16 * d1[1] - d1[0]) / 15


def _hessian(f, x: np.ndarray) -> np.ndarray:
    """Hessian of ``f`` at ``x`` by central differences with Richardson's extrapolation."""
    k = x.size
    f0 = f(x)

    def at(h):
        out = np.empty((k, k))
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            out[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                out[i, j] = out[j, i] = (
                    f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
                ) / (4 * h[i] * h[j])
        return out

    return _richardson(at, x)


def _jacobian(f, x: np.ndarray) -> np.ndarray:
    """Jacobian of an array-valued ``f`` (d f / d x_i stacked on axis 0), as :func:`_hessian`."""
    eye = np.eye(x.size)

    def at(h):
        return np.stack(
            [(f(x + h[i] * eye[i]) - f(x - h[i] * eye[i])) / (2 * h[i]) for i in range(x.size)]
        )

    return _richardson(at, x)


def satterthwaite_df(fit: MixedModelFit, contrasts: np.ndarray | None = None) -> np.ndarray:
    """Satterthwaite degrees of freedom of each fixed effect (or contrast), as lmerTest.

    Parameters
    ----------
    fit : MixedModelFit
    contrasts : numpy.ndarray, optional
        Rows ``c`` of contrasts ``c' beta``; default the identity (each coefficient).

    Returns
    -------
    numpy.ndarray
        ``df = 2 (c'Vc)^2 / (g' A g)`` per contrast, where ``V = vcov(beta)`` as a function of
        the variance parameters ``(theta, sigma)``, ``g`` its gradient (of ``c'V c``) over them
        and ``A = 2 H^-1`` with ``H`` the Hessian of the deviance (REML or ML, as fitted) over
        them, the inverse taken over its positive eigenvalues.

    Notes
    -----
    Stands in for ``summary(lmerTest::lmer(...), ddf = "Satterthwaite")`` (Kuznetsova et al.
    2017; lmerTest's ``contest1D``), which no Python library gives. lmerTest differentiates
    with numDeriv (Richardson extrapolation); these are central differences with one
    Richardson step on the same parameters (``theta`` on the slope's internal scale: the df
    are invariant to a rescaling of the parameters). Checked against lmerTest in
    ``tests/test_mixed_model.py`` (``tests/fixtures/r/mixed_models.R``).

    References
    ----------
    .. [1] Kuznetsova, A., Brockhoff, P. B. & Christensen, R. H. B. (2017). lmerTest package:
       tests in linear mixed effects models. J. Stat. Softw. 82(13).
    .. [2] Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance
       components. Biometrics Bulletin 2(6), 110-114.
    """
    sums = fit.sums
    theta = fit.theta.copy()
    if sums.q == 2:
        theta[1:] *= fit.scale
    varpar = np.r_[theta, fit.sigma]
    h = _hessian(lambda v: sums.deviance_vp(v, fit.reml), varpar)
    values, vectors = np.linalg.eigh(h)
    keep = values > _HESSIAN_TOL
    a = 2 * (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
    jac = _jacobian(lambda v: sums.covbeta(v), varpar)
    c = np.eye(sums.p) if contrasts is None else np.atleast_2d(contrasts)
    var = np.einsum("ci,ij,cj->c", c, fit.vcov, c)
    grad = np.einsum("ci,kij,cj->ck", c, jac, c)
    return 2 * var**2 / np.einsum("ck,kl,cl->c", grad, a, grad)


# One row per fixed effect.
FIXED_COLUMNS = [
    "outcome",
    "score",
    "term",
    "time",
    "group_level",
    "covariate",
    "estimate",
    "se",
    "df",
    "statistic",
    "p_value",
    "ci_low",
    "ci_high",
    "df_method",
]


def fixed_effects(
    fit: MixedModelFit, terms: pd.DataFrame, *, df: str = "satterthwaite", conf_level=0.95
) -> pd.DataFrame:
    """The fixed-effects table of ``summary(lmerTest::lmer(...))`` with intervals.

    Parameters
    ----------
    fit : MixedModelFit
    terms : pandas.DataFrame
        One row per column of the design: ``term``, ``time``, ``group_level``, ``covariate``.
    df : {"satterthwaite", "wald_z"}
        Satterthwaite's df with t statistics (lmerTest's default); or none, a Wald z test and
        interval (lme4's ``confint(method = "Wald")``).
    conf_level : float

    Returns
    -------
    pandas.DataFrame
        ``terms``' columns and ``estimate``, ``se`` (``sqrt(diag(vcov))``), ``df``
        (Satterthwaite, NaN for ``wald_z``), ``statistic`` (``estimate / se``, t or z),
        ``p_value`` (two-sided, on t with ``df`` or on the normal), ``ci_low``, ``ci_high``:
        ``estimate -/+ qt(1 - alpha/2, df) se`` -- ``confint(..., method = "Wald")`` but with
        t on the Satterthwaite df instead of the normal quantile (``wald_z``: the normal
        quantile, exactly Wald's) -- and ``df_method``.
    """
    se = np.sqrt(np.diag(fit.vcov))
    stat = fit.beta / se
    alpha = 1 - conf_level
    if df == "satterthwaite":
        dfs = satterthwaite_df(fit)
        p = 2 * stats.t.sf(np.abs(stat), dfs)
        q = stats.t.ppf(1 - alpha / 2, dfs)
    else:
        dfs = np.full(se.size, np.nan)
        p = 2 * stats.norm.sf(np.abs(stat))
        q = np.full(se.size, stats.norm.ppf(1 - alpha / 2))
    out = terms.reset_index(drop=True).copy()
    out["estimate"] = fit.beta
    out["se"] = se
    out["df"] = dfs
    out["statistic"] = stat
    out["p_value"] = p
    out["ci_low"] = fit.beta - q * se
    out["ci_high"] = fit.beta + q * se
    out["df_method"] = df
    return out


def likelihood_ratio(
    y, x0, x1, subject, slope0, slope1
) -> tuple[MixedModelFit, MixedModelFit, float, int, float]:
    """``anova(m0, m1)``: both models fitted by ML (anova refits REML fits), ``Chisq = 2
    (logLik1 - logLik0)`` on ``Df`` = the difference in parameters, ``Pr(>Chisq)``.

    Returns ``(m0, m1, chisq, df, p)``; ``m1`` must contain ``m0``. A test of a variance
    component on its boundary (random slope) is conservative on the chi-square reference, as
    in lme4.
    """
    m0 = fit_lmm(y, x0, subject, slope0, reml=False)
    m1 = fit_lmm(y, x1, subject, slope1, reml=False)
    chisq = max(2 * (m1.loglik - m0.loglik), 0.0)
    k = m1.n_par - m0.n_par
    return m0, m1, chisq, k, float(stats.chi2.sf(chisq, k))


# One row per fitted model (the one the spec asks for).
FIT_COLUMNS = [
    "outcome",
    "score",
    "formula",
    "method",
    "n_subjects",
    "n_observations",
    "sd_intercept",
    "sd_slope",
    "corr_intercept_slope",
    "sigma",
    "loglik",
    "aic",
    "bic",
    "criterion",
    "converged",
    "singular",
    "note",
]
# One row per likelihood-ratio test.
LRT_COLUMNS = [
    "outcome",
    "score",
    "comparison",
    "formula_0",
    "formula_1",
    "n_par_0",
    "n_par_1",
    "loglik_0",
    "loglik_1",
    "chisq",
    "df",
    "p_value",
]

# Days per month, as the time unit "months" counts them (a Julian year / 12).
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class ModelSpec:
    """What the spec asks of the model (``[analysis.longitudinal]``).

    ``time``: "visits" (a factor of visit codes, the earliest visit the reference) or "days",
    "months" (continuous, from the day of the visit). ``group``: the subjects column of a
    between-subject factor ('' none), its ``levels`` in the declared order and ``reference``
    (default the first); ``interaction``: group x time. ``covariates``: numeric subjects
    columns. ``random_slope``: a random slope on time (years since surgery when time is
    visits) correlated with the intercept. ``method``: "reml" or "ml"; ``df``:
    "satterthwaite" or "wald_z".
    """

    time: str = "visits"
    group: str = ""
    levels: tuple[str, ...] = ()
    reference: str = ""
    interaction: bool = True
    covariates: tuple[str, ...] = ()
    random_slope: bool = False
    method: str = "reml"
    df: str = "satterthwaite"
    conf_level: float = 0.95


def _time_name(spec: ModelSpec) -> str:
    return "visit" if spec.time == "visits" else spec.time


def formula(spec: ModelSpec, *, interaction=None, random_slope=None) -> str:
    """The model as lme4 users write it, e.g. ``value ~ visit * facelift + age + (1 |
    subject)``."""
    interaction = spec.interaction if interaction is None else interaction
    random_slope = spec.random_slope if random_slope is None else random_slope
    time = _time_name(spec)
    fixed = time
    if spec.group:
        fixed += (" * " if interaction else " + ") + spec.group
    fixed += "".join(f" + {c}" for c in spec.covariates)
    slope = "years" if spec.time == "visits" else time
    random = f"(1 + {slope} | subject)" if random_slope else "(1 | subject)"
    return f"value ~ {fixed} + {random}"


def _visit_order(frame: pd.DataFrame) -> list[str]:
    """Visit codes ordered by median day, equal medians by code (as the visit means)."""
    med = frame.groupby("visit")["day"].median()
    return sorted(med.index, key=lambda v: (med[v], v))


def design(
    frame: pd.DataFrame, spec: ModelSpec, *, interaction=None, visits=None
) -> tuple[np.ndarray, pd.DataFrame]:
    """``model.matrix`` of the fixed part, columns in R's order: intercept, time, group
    levels (treatment coding against the reference), covariates, time x group (time varying
    fastest). Returns the matrix and one row per column: ``term`` (R's name, levels in
    brackets), ``time`` (visit code, or the time unit), ``group_level``, ``covariate``; the
    intercept's row names the reference visit and the reference level."""
    interaction = spec.interaction if interaction is None else interaction
    n = len(frame)
    cols: list[np.ndarray] = [np.ones(n)]
    tname = _time_name(spec)
    time_cols: list[tuple[np.ndarray, str, str]] = []
    if spec.time == "visits":
        present = set(frame["visit"])
        visits = [v for v in visits if v in present] if visits else _visit_order(frame)
        for v in visits[1:]:
            time_cols.append(((frame["visit"] == v).to_numpy(float), f"visit[{v}]", v))
    else:
        unit = 1.0 if spec.time == "days" else DAYS_PER_MONTH
        time_cols.append((frame["day"].to_numpy(float) / unit, tname, spec.time))
    reference = (spec.reference or spec.levels[0]) if spec.group else ""
    # The intercept's row names the reference visit and level (what the intercept estimates).
    rows = [("(Intercept)", visits[0] if spec.time == "visits" else "", reference, "")]
    for col, term, t in time_cols:
        cols.append(col)
        rows.append((term, t, "", ""))
    group_cols: list[tuple[np.ndarray, str, str]] = []
    if spec.group:
        g = frame[spec.group].astype(str)
        for level in spec.levels:
            if level != reference:
                group_cols.append(((g == level).to_numpy(float), f"{spec.group}[{level}]", level))
    for col, term, level in group_cols:
        cols.append(col)
        rows.append((term, "", level, ""))
    for c in spec.covariates:
        cols.append(frame[c].to_numpy(float))
        rows.append((c, "", "", c))
    if interaction:
        for gcol, gterm, level in group_cols:
            for tcol, tterm, t in time_cols:
                cols.append(tcol * gcol)
                rows.append((f"{tterm}:{gterm}", t, level, ""))
    terms = pd.DataFrame(rows, columns=["term", "time", "group_level", "covariate"])
    return np.column_stack(cols), terms


def _slope(frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    day = frame["day"].to_numpy(float)
    if spec.time == "visits":
        return day / 365.25
    return day if spec.time == "days" else day / DAYS_PER_MONTH


def mixed_model(
    frame: pd.DataFrame, spec: ModelSpec, *, outcome: str = "", score: str = "", visits=None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fit one outcome's mixed model as the spec asks, with its likelihood-ratio tests.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per observed value: ``subject, visit, day, value`` and the subjects columns the
        spec names (group, covariates). A row missing any of them is left out (complete cases,
        as ``lmer``'s ``na.action = na.omit``).
    spec : ModelSpec
    outcome, score : str
        Written in every row.
    visits : list of str, optional
        The visit codes in order (the first is the reference); default by median day.

    Returns
    -------
    fixed : pandas.DataFrame
        :func:`fixed_effects` of the model (:data:`FIXED_COLUMNS`).
    fit : pandas.DataFrame
        One row (:data:`FIT_COLUMNS`): ``formula`` (lme4's), ``method`` (REML / ML),
        ``n_subjects``, ``n_observations``; the variance components as lme4's ``VarCorr``
        prints them: ``sd_intercept``, ``sd_slope`` (per unit of the slope's time: years with
        visits), ``corr_intercept_slope``, ``sigma`` (residual SD); ``loglik``, ``aic``,
        ``bic`` (of the fit's REML or ML likelihood, as ``logLik``, ``AIC``, ``BIC``);
        ``criterion``: the REML criterion at convergence (REML) or the deviance (ML);
        ``converged``, ``singular`` (lme4's ``isSingular``), ``note``: why it was not fitted.
    lrt : pandas.DataFrame
        One row per nested comparison (:data:`LRT_COLUMNS`): "group x time interaction"
        (with a group and an interaction) and "random slope" (with one): the two formulas,
        their parameter counts and ML log-likelihoods, ``chisq``, ``df``, ``p_value`` -- as
        ``anova(m0, m1)``, which refits REML fits by ML.
    """
    # Days are needed for continuous time, a slope, or to order the visits.
    days = spec.time != "visits" or spec.random_slope or visits is None
    needed = ["subject", "visit", "value"] + (["day"] if days else [])
    needed += [spec.group] if spec.group else []
    needed += list(spec.covariates)
    data = frame.dropna(subset=needed).reset_index(drop=True)
    if spec.group:
        data = data[data[spec.group].astype(str).isin(spec.levels)].reset_index(drop=True)
    key = {"outcome": outcome, "score": score}
    method = "REML" if spec.method == "reml" else "ML"
    subject, _ = pd.factorize(data["subject"], sort=True)
    q = 2 if spec.random_slope else 1
    n, m = len(data), (int(subject.max()) + 1 if len(data) else 0)
    note = ""
    two_levels = not spec.group or data[spec.group].astype(str).nunique() >= 2
    two_visits = spec.time != "visits" or data["visit"].nunique() >= 2
    x, terms = (
        design(data, spec, visits=visits) if n and two_levels and two_visits else (None, None)
    )
    if x is None:
        note = "fewer than two visits or levels of the group with values"
    elif m < 2 or n <= x.shape[1] + 1:
        note = "too few subjects or observations for a mixed model"
    elif n <= q * m:
        note = "too few observations for the random effects: they cannot be told from the residuals"
    elif np.linalg.matrix_rank(x) < x.shape[1]:
        note = "the fixed effects cannot all be estimated (a level or visit without values)"
    base = {**key, "formula": formula(spec), "method": method, "n_subjects": m, "n_observations": n}
    if note:
        fit_row = {**base, "converged": False, "singular": False, "note": note}
        return (
            pd.DataFrame(columns=FIXED_COLUMNS),
            pd.DataFrame([fit_row]).reindex(columns=FIT_COLUMNS),
            pd.DataFrame(columns=LRT_COLUMNS),
        )
    y = data["value"].to_numpy(float)
    slope = _slope(data, spec) if spec.random_slope else None
    fit = fit_lmm(y, x, subject, slope, reml=spec.method == "reml")
    fixed = fixed_effects(fit, terms, df=spec.df, conf_level=spec.conf_level)
    for k, v in reversed(key.items()):
        fixed.insert(0, k, v)
    sd = np.sqrt(np.diag(fit.cov_re))
    fit_row = {
        **base,
        "sd_intercept": sd[0],
        "sd_slope": sd[1] if q == 2 else np.nan,
        "corr_intercept_slope": (
            fit.cov_re[0, 1] / (sd[0] * sd[1]) if q == 2 and sd[0] * sd[1] > 0 else np.nan
        ),
        "sigma": fit.sigma,
        "loglik": fit.loglik,
        "aic": fit.aic,
        "bic": fit.bic,
        "criterion": fit.criterion,
        "converged": fit.converged,
        "singular": fit.singular,
        "note": "" if fit.converged else "optimizer did not report convergence",
    }
    lrts = []
    if spec.group and spec.interaction and len(spec.levels) > 1:
        x0, _ = design(data, spec, interaction=False, visits=visits)
        lrts.append(("group x time interaction", x0, x, slope, slope, {"interaction": False}))
    if spec.random_slope:
        lrts.append(("random slope", x, x, None, slope, {"random_slope": False}))
    lrt_rows = []
    for name, x0, x1, s0, s1, reduced in lrts:
        m0, m1, chisq, k, p = likelihood_ratio(y, x0, x1, subject, s0, s1)
        lrt_rows.append(
            {
                **key,
                "comparison": name,
                "formula_0": formula(spec, **reduced),
                "formula_1": formula(spec),
                "n_par_0": m0.n_par,
                "n_par_1": m1.n_par,
                "loglik_0": m0.loglik,
                "loglik_1": m1.loglik,
                "chisq": chisq,
                "df": k,
                "p_value": p,
            }
        )
    return (
        fixed.reindex(columns=FIXED_COLUMNS),
        pd.DataFrame([fit_row], columns=FIT_COLUMNS),
        pd.DataFrame(lrt_rows, columns=LRT_COLUMNS),
    )
