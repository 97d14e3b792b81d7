"""Mixed models as lme4 users write them against R (tests/fixtures/r/mixed_models.R): lme4::lmer
with lmerTest's Satterthwaite df, VarCorr, logLik, AIC, BIC, the REML criterion and anova(m0, m1).

Data sets: lme4::sleepstudy (random intercept, random slope), nlme::Orthodont (sex x age, age
continuous and as visits, with and without the interaction, random intercept and slope),
nlme::BodyWeight (three diets declared in the order 2, 1, 3: diet 2 the reference) and the
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
    if name == "bodyweight":
        d = pd.read_csv(FIXTURES / "mixed_models_inputs_bodyweight.csv", dtype={"diet": str})
        return pd.DataFrame(
            {
                "subject": d["subject"],
                "visit": d["time"].astype(str),
                "day": d["time"],
                "value": d["weight"],
                "group": d["diet"],
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
    continuous = "months" if row.dataset.startswith("demo_") else "days"
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


# --- the demo, run once per session (tests/conftest.py demo_run) ------------------------------


def test_demo_mixed_model_matches_lmertest(demo_run):
    # The demo's spec: value ~ visit * facelift + months_since_onset + (1 | subject), REML,
    # Satterthwaite; R: mixed_models.R's demo_house_brackmann_observer visits_int.
    folder, _ = demo_run
    tables = folder / "reports" / "demo" / "tables"
    fixed = pd.read_csv(tables / "mixed_model_fixed.csv")
    exp = FIXED[
        (FIXED.dataset == "demo_house_brackmann_observer")
        & (FIXED.model == "visits_int")
        & (FIXED.method == "REML")
    ]
    assert len(fixed) == len(exp) and (fixed["df_method"] == "satterthwaite").all()
    for k, r, rel in (
        ("estimate", "estimate", 1e-6),
        ("se", "se", 1e-4),
        ("df", "df", 1e-4),
        ("p_value", "p", 1e-4),
        ("ci_low", "ci_low", 1e-4),
    ):
        assert fixed[k].tolist() == pytest.approx(exp[r].tolist(), rel=rel), k
    fit = pd.read_csv(tables / "mixed_model_fit.csv").iloc[0]
    e = FIT[
        (FIT.dataset == "demo_house_brackmann_observer")
        & (FIT.model == "visits_int")
        & (FIT.method == "REML")
    ].iloc[0]
    assert fit.formula == "value ~ visit * facelift + months_since_onset + (1 | subject)"
    for k in ("sd_intercept", "sigma", "loglik", "aic", "criterion"):
        assert fit[k] == pytest.approx(e[k], rel=1e-4), k
    lrt = pd.read_csv(tables / "mixed_model_lrt.csv")
    e = LRT[(LRT.dataset == "demo_house_brackmann_observer") & (LRT.comparison == "interaction")]
    assert lrt["comparison"].tolist() == ["group x time interaction"]
    assert lrt["chisq"].iloc[0] == pytest.approx(e["chisq"].iloc[0], rel=1e-4)


def test_demo_report_shows_the_mixed_model_and_names_it_in_methods(demo_run):
    folder, _ = demo_run
    reports = folder / "reports" / "demo"
    html = (reports / "report.html").read_text(encoding="utf-8")
    title = ". Linear mixed model of House-Brackmann grade (observer) over all visits"
    number = html.split(title)[0].rsplit("eTable ", 1)[1]
    assert number.isdigit()
    assert (
        f"Every observed value was also modeled (eTable {number}) with a linear mixed model of "
        "visit and concurrent facelift with their interaction, adjusted for time since onset"
    ) in html
    assert (
        "fitted by restricted maximum likelihood; fixed effects were tested with t tests on "
        "Satterthwaite degrees of freedom" in html
    )
    table = reports / "tables" / "etable_mixed_model_house_brackmann_observer_grade.md"
    # Markdown indents a level with no-break spaces.
    text = table.read_text(encoding="utf-8").replace("\u00a0", " ")
    # Every fixed effect under its heading, each against its reference; the random effects.
    for row in (
        "| Intercept ",
        "| Visit (vs before surgery)",
        "|    12 months ",
        "| Concurrent facelift (vs no)",
        "|    Yes ",
        "| Time since onset, mo ",
        "| Visit × concurrent facelift",
        "|    12 months × Yes ",
        "| Random effects, SD",
        "|    Patient intercept ",
        "|    Residual ",
    ):
        assert row in text, row
    assert "χ²₅ = 2.86, P = .72" in text
    assert (reports / "tables" / "etable_mixed_model_house_brackmann_observer_grade.docx").exists()


# --- the spec ---------------------------------------------------------------------------------

DEMO_LONGITUDINAL = (
    'longitudinal = { random_slope = false, model = true, time = "visits", group = "facelift", '
    'covariates = ["months_since_onset"] }'
)


def _demo_with_longitudinal(tmp_path, setting: str):
    import shutil

    from pipeline import paths

    demo = paths.RAW_DATA_DIR / "demo"
    folder = tmp_path / "demo"
    folder.mkdir(parents=True)
    for name in ("patients.csv", "visits.csv"):
        shutil.copy(demo / name, folder / name)
    spec = (demo / "study.toml").read_text(encoding="utf-8")
    assert DEMO_LONGITUDINAL in spec
    (folder / "study.toml").write_text(
        spec.replace(DEMO_LONGITUDINAL, f"longitudinal = {{ {setting} }}"), encoding="utf-8"
    )
    return folder


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            'model = true, group = "sides"',
            "'analysis.longitudinal.group' names 'sides', which is not a subgroup",
        ),
        ('model = true, group = "branches_transected"', "a median split, which is not a factor"),
        (
            'model = true, covariates = ["etiology"]',
            "a column of categories; covariates of the mixed model are numbers",
        ),
        (
            'time = "months"',
            "'analysis.longitudinal.time' describes the mixed model, which is "
            "fitted with model = true",
        ),
        ("model = true, interaction = false", "needs a group"),
        ('model = true, df = "kenward_roger"', "analysis.longitudinal.df"),
        ('model = true, outcomes = ["nothing"]', "which is not a planned outcome"),
    ],
)
def test_the_spec_refuses_a_model_it_cannot_fit(tmp_path, setting, message):
    from pipeline.spec.study import SpecError, load_study

    with pytest.raises(SpecError) as err:
        load_study(_demo_with_longitudinal(tmp_path, setting))
    assert message in str(err.value)


def test_the_spec_reads_the_model_in_the_studys_words(tmp_path):
    from pipeline.spec.study import load_study

    folder = _demo_with_longitudinal(
        tmp_path,
        'model = true, time = "months", group = "etiology", random_slope = true, method = "ml", '
        'df = "wald_z", outcomes = ["sunnybrook"]',
    )
    plan = load_study(folder).analysis.mixed_model
    assert (plan.outcomes, plan.time, plan.column, plan.method, plan.df) == (
        ("sunnybrook",),
        "months",
        "etiology",
        "ml",
        "wald_z",
    )
    # Levels in their declared order, the first the reference when the subgroup names none.
    assert plan.levels[:2] == ("bells_palsy", "ramsay_hunt") and plan.reference == "bells_palsy"
    assert plan.interaction and plan.random_slope
    # Without model = true there is no model (and no table).
    assert (
        load_study(
            _demo_with_longitudinal(tmp_path / "b", "random_slope = false")
        ).analysis.mixed_model
        is None
    )


@pytest.mark.parametrize("model", ["ri_int", "rs_int"])
def test_same_estimates_as_statsmodels_mixedlm(model):
    """The independent implementation in the design's library: statsmodels ``MixedLM`` (its
    L-BFGS; BFGS to a tight gradient does not converge with the random slope) gives the same
    REML fixed effects and variance components. Its standard errors are not lme4's ``vcov``
    (docs/statistics.md), so they are not compared."""
    import warnings

    import numpy as np
    from statsmodels.regression.mixed_linear_model import MixedLM

    from pipeline.statistics.mixed_model import design, fit_lmm

    row = FIT[(FIT.dataset == "orthodont") & (FIT.model == model) & (FIT.method == "REML")]
    spec = _spec(row.iloc[0])
    data = _dataset("orthodont")
    x, _ = design(data, spec)
    subject, _ = pd.factorize(data["subject"], sort=True)
    slope = data["day"].to_numpy(float) if spec.random_slope else None
    ours = fit_lmm(data["value"].to_numpy(float), x, subject, slope)
    exog_re = np.column_stack([np.ones(len(data)), slope]) if slope is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = MixedLM(data["value"].to_numpy(float), x, groups=subject, exog_re=exog_re).fit(
            reml=True, method="lbfgs", maxiter=5000
        )
    assert res.converged
    assert list(res.fe_params) == pytest.approx(list(ours.beta), rel=1e-5)
    assert np.asarray(res.cov_re).ravel().tolist() == pytest.approx(
        ours.cov_re.ravel().tolist(), rel=1e-4
    )
    assert res.scale == pytest.approx(ours.sigma**2, rel=1e-4)


def test_wald_z_is_confint_wald():
    # df = "wald_z": lme4's confint(method = "Wald"), estimate -/+ qnorm(0.975) SE, and the
    # normal P; SE from lme4 (mixed_models.R, sleepstudy random slope, REML).
    from scipy import stats

    row = FIT[(FIT.dataset == "sleepstudy") & (FIT.model == "rs") & (FIT.method == "REML")]
    spec = _spec(row.iloc[0])
    fixed, _, _ = mixed_model(
        _dataset("sleepstudy"), ModelSpec(**{**spec.__dict__, "df": "wald_z"})
    )
    exp = FIXED[(FIXED.dataset == "sleepstudy") & (FIXED.model == "rs") & (FIXED.method == "REML")]
    z = stats.norm.ppf(0.975)
    assert fixed["df"].isna().all() and (fixed["df_method"] == "wald_z").all()
    assert fixed["ci_low"].tolist() == pytest.approx((exp.estimate - z * exp.se).tolist(), rel=1e-6)
    assert fixed["p_value"].tolist() == pytest.approx(
        (2 * stats.norm.sf((exp.estimate / exp.se).abs())).tolist(), rel=1e-4
    )


def test_etable_of_a_random_slope_on_months(tmp_path):
    # The demo's Sunnybrook composite as months x facelift with a random slope (mixed_models.R's
    # months_int_rs): the eTable names time per month, the slope's SD per month and the
    # correlation, and both likelihood-ratio tests with lme4's chi-square.
    from pipeline.pairing import outcomes_frame
    from pipeline.render.tables import mixed_model_tables
    from pipeline.spec.study import load_study

    study = load_study(
        _demo_with_longitudinal(
            tmp_path,
            'model = true, time = "months", group = "facelift", random_slope = true, '
            'outcomes = ["sunnybrook"]',
        )
    )
    plan = study.analysis.mixed_model
    spec = ModelSpec(
        time="months", group="group", levels=plan.levels, random_slope=True, method="reml"
    )
    fixed, fit, lrt = mixed_model(
        _dataset("demo_sunnybrook"), spec, outcome="sunnybrook", score="composite"
    )
    results = {"mixed_model_fixed": fixed, "mixed_model_fit": fit, "mixed_model_lrt": lrt}
    [(stem, table)] = mixed_model_tables(study, results, outcomes_frame(study))
    assert stem == "etable_mixed_model_sunnybrook_composite"
    terms = table.body["Term"].tolist()
    assert terms == [
        "Intercept",
        "Time, per month",
        "Concurrent facelift (vs no)",
        "Yes",
        "Time × concurrent facelift",
        "Yes",
        "Random effects, SD",
        "Patient intercept",
        "Patient slope, per month",
        "Correlation of intercept and slope",
        "Residual",
    ]
    assert list(table.indent) == [0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1]
    e = LRT[LRT.dataset == "demo_sunnybrook"].set_index("comparison")["chisq"]
    notes = " ".join(table.footnotes)
    # The interaction is tested with the random slope in both models (the fixture tests it
    # without one); the random slope's test is the fixture's.
    assert (
        "the concurrent facelift × time interaction (both models fitted by maximum likelihood): "
        "χ²₁ = " in notes
    )
    assert (
        f"the random slope (both models fitted by maximum likelihood): χ²₂ = "
        f"{e['random_slope']:.2f}" in notes
    )
