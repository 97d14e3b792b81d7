"""Mixed models as lme4 users write them against R (tests/fixtures/r/mixed_models.R): lme4::lmer
with lmerTest's Satterthwaite df, VarCorr, logLik, AIC, BIC, the REML criterion and anova(m0, m1).

Data sets: lme4::sleepstudy (random intercept, random slope), nlme::Orthodont (sex x age, age
continuous and as visits, with and without the interaction, random intercept and slope) and the
demo study's primary outcome (visits x facelift + months since onset) and Sunnybrook composite
(months x facelift). Tolerances as the statistics plan: 1e-6 relative for what is exact given
the variance components (fixed effects), 1e-4 for the variance components and everything that
depends on them (SE, df, t, P, CI, logLik, chi-square).
"""

import pandas as pd
import pytest
from r_reference import FIXTURES

from pipeline.statistics.mixed_model import (
    FIT_COLUMNS,
    FIXED_COLUMNS,
    LRT_COLUMNS,
    ModelSpec,
    mixed_model,
)

FIXED = pd.read_csv(FIXTURES / "mixed_models_fixed_expected.csv", dtype={"term": str})
FIT = pd.read_csv(
    FIXTURES / "mixed_models_fit_expected.csv",
    keep_default_na=False,
    na_values=[""],
    dtype={"levels": str, "covariates": str},
)
LRT = pd.read_csv(FIXTURES / "mixed_models_lrt_expected.csv")
PATIENTS = FIXTURES.parents[2] / "data" / "raw" / "demo" / "patients.csv"


def _dataset(name: str) -> pd.DataFrame:
    """Each data set as the pipeline hands it over: subject, visit, day, value, group."""
    if name == "sleepstudy":
        d = pd.read_csv(FIXTURES / "statistics_inputs_sleepstudy.csv", dtype={"subject": str})
        return d.assign(visit=d["day"].astype(str), group="")
    if name == "orthodont":
        d = pd.read_csv(FIXTURES / "mixed_models_inputs_orthodont.csv")
        # Age (years) plays the part of the day: time "days" is then age itself.
        return pd.DataFrame(
            {
                "subject": d["subject"],
                "visit": d["age"].astype(str),
                "day": d["age"],
                "value": d["distance"],
                "group": d["sex"],
            }
        )
    outcome = name.removeprefix("demo_")
    d = pd.read_csv(FIXTURES / "longitudinal_inputs_demo.csv")
    d = d[d["outcome"] == outcome]
    p = pd.read_csv(PATIENTS, usecols=["study_id", "facelift", "months_since_onset"])
    d = d.merge(p, left_on="subject", right_on="study_id")
    return d.assign(group=d["facelift"].astype(str))


def _spec(row) -> ModelSpec:
    levels = tuple(row.levels.split(";")) if isinstance(row.levels, str) else ()
    continuous = "days" if row.dataset in ("sleepstudy", "orthodont") else "months"
    return ModelSpec(
        time="visits" if row.time == "visits" else continuous,
        group="group" if levels else "",
        levels=levels,
        interaction=bool(row.interaction),
        covariates=tuple(row.covariates.split(";")) if isinstance(row.covariates, str) else (),
        random_slope=bool(row.slope),
        method=row.method.lower(),
    )


_CACHE: dict = {}


def _fitted(dataset, model, method):
    key = (dataset, model, method)
    if key not in _CACHE:
        row = FIT[(FIT.dataset == dataset) & (FIT.model == model) & (FIT.method == method)]
        _CACHE[key] = mixed_model(_dataset(dataset), _spec(row.iloc[0]))
    return _CACHE[key]


CASES = [tuple(r) for r in FIT[["dataset", "model", "method"]].itertuples(index=False)]


@pytest.mark.parametrize("dataset,model,method", CASES)
def test_fixed_effects_match_lmertest(dataset, model, method):
    fixed, fit, _ = _fitted(dataset, model, method)
    exp = FIXED[(FIXED.dataset == dataset) & (FIXED.model == model) & (FIXED.method == method)]
    assert list(fixed.columns) == FIXED_COLUMNS and len(fixed) == len(exp)
    for got, (_, e) in zip(fixed.itertuples(), exp.iterrows()):
        assert got.estimate == pytest.approx(e.estimate, rel=1e-6, abs=1e-9), e.term
        assert got.se == pytest.approx(e.se, rel=1e-4), e.term
        assert got.df == pytest.approx(e.df, rel=1e-4), e.term
        assert got.statistic == pytest.approx(e.t, rel=1e-4), e.term
        assert got.p_value == pytest.approx(e.p, rel=1e-4), e.term
        assert got.ci_low == pytest.approx(e.ci_low, rel=1e-4, abs=1e-8), e.term
        assert got.ci_high == pytest.approx(e.ci_high, rel=1e-4, abs=1e-8), e.term


@pytest.mark.parametrize("dataset,model,method", CASES)
def test_fit_matches_lme4(dataset, model, method):
    _, fit, _ = _fitted(dataset, model, method)
    e = FIT[(FIT.dataset == dataset) & (FIT.model == model) & (FIT.method == method)].iloc[0]
    got = fit.iloc[0]
    assert list(fit.columns) == FIT_COLUMNS
    assert got.n_observations == e.n_obs and got.n_subjects == e.n_subjects
    assert bool(got.singular) == bool(e.singular)
    for k in ("sd_intercept", "sigma", "loglik", "aic", "bic", "criterion") + (
        ("sd_slope", "corr_intercept_slope") if e.slope else ()
    ):
        assert got[k] == pytest.approx(e[k], rel=1e-4, abs=1e-6), k


@pytest.mark.parametrize(
    "dataset,comparison", [tuple(r) for r in LRT[["dataset", "comparison"]].itertuples(index=False)]
)
def test_likelihood_ratio_matches_anova(dataset, comparison):
    e = LRT[(LRT.dataset == dataset) & (LRT.comparison == comparison)].iloc[0]
    _, _, lrt = _fitted(dataset, e.m1, "REML")
    assert list(lrt.columns) == LRT_COLUMNS
    name = "random slope" if comparison == "random_slope" else "group x time interaction"
    got = lrt[lrt.comparison == name].iloc[0]
    assert (got.n_par_0, got.n_par_1, got.df) == (e.npar0, e.npar1, e.df)
    for k, r in (
        ("loglik_0", "loglik0"),
        ("loglik_1", "loglik1"),
        ("chisq", "chisq"),
        ("p_value", "p"),
    ):
        assert got[k] == pytest.approx(e[r], rel=1e-4, abs=1e-6), k
