"""Mixed model visit means against R lme4::lmer (REML).

sleepstudy and ChickWeight (tests/fixtures/r/statistics_families.R); the demo study's 20 outcomes
with a random intercept and with a random slope (half of those are boundary fits), a variance
estimated as zero, three subjects, and subjects with one value each
(tests/fixtures/r/longitudinal.R). Fixed effects to 1e-6; variance components and standard
errors (functions of them) to 1e-4.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from r_reference import FIXTURES, expected, inputs

from pipeline.statistics.longitudinal import COLUMNS, METHOD, visit_means, visit_means_coded

VARIANCES = ("var_intercept", "var_residual")
SLOPE_VARIANCES = ("var_slope", "cov_intercept_slope")
SLOPE = "intercept + slope on years"


def _frame(name):
    d = inputs(name)
    return pd.DataFrame(
        {
            "outcome": name,
            "score": "value",
            "subject": d["subject"],
            "visit": d["day"].astype(str),
            "day": d["day"],
            "value": d["value"],
        }
    )


@pytest.mark.parametrize(
    "name,case,slope",
    [
        ("sleepstudy", "sleepstudy", False),
        ("sleepstudy", "sleepstudy_slope", True),
        ("chickweight", "chickweight", False),
    ],
)
def test_matches_lme4(name, case, slope):
    out = visit_means(_frame(name), random_slope=slope)
    assert (out["method"] == METHOD).all()
    assert list(out.columns) == COLUMNS and out["converged"].all() and (out["note"] == "").all()
    var = expected(f"{case}/variance")
    for k in VARIANCES + (SLOPE_VARIANCES if slope else ()):
        assert out[k].iloc[0] == pytest.approx(var[k], rel=1e-4), k
    for row in out.itertuples():
        exp = expected(f"{case}/visit_{row.visit}")
        assert row.estimate == pytest.approx(exp["estimate"], rel=1e-6)
        assert row.se == pytest.approx(exp["se"], rel=1e-4)


def _lme4(dataset):
    exp = pd.read_csv(
        FIXTURES / "longitudinal_expected.csv",
        float_precision="round_trip",
        keep_default_na=False,
        na_values=[""],
    )
    return exp[exp["dataset"] == dataset]


def _long(dataset):
    return pd.read_csv(
        FIXTURES / f"longitudinal_inputs_{dataset}.csv", float_precision="round_trip"
    )


@pytest.mark.parametrize("dataset", ["demo", "cases"])
@pytest.mark.parametrize("slope", [False, True])
def test_matches_lme4_on_the_demo_and_edge_cases(dataset, slope):
    """Every outcome, every visit; boundary fits noted where lme4's isSingular() says so, and no
    fit where lmer refuses one."""
    exp = _lme4(dataset)
    exp = exp[exp["random_effects"] == (SLOPE if slope else "intercept")]
    out = visit_means(_long(dataset), random_slope=slope)
    assert list(out.columns) == COLUMNS
    checked = 0
    for (outcome, score), e in exp.groupby(["outcome", "score"], sort=False):
        o = out[(out["outcome"] == outcome) & (out["score"] == score)].set_index("visit")
        if e["error"].notna().all():  # lmer stopped: no estimates, and the note says why
            assert o["estimate"].isna().all() and not o["converged"].any(), outcome
            assert o["note"].str.startswith("too few observations for the random effects").all(), (
                outcome
            )
            continue
        assert o["converged"].all(), outcome
        singular = e["singular"].astype(str).str.upper().eq("TRUE").iloc[0]
        assert o["note"].str.startswith("boundary (singular) fit").all() == singular, outcome
        assert (o["note"] == "").all() != singular, outcome
        assert sorted(o.index) == sorted(e["visit"]), outcome
        for k in VARIANCES + (SLOPE_VARIANCES if slope else ()):
            # A variance lme4 puts exactly on the boundary is exactly zero here too.
            assert o[k].iloc[0] == pytest.approx(e[k].iloc[0], rel=1e-4), (outcome, score, k)
        for row in e.itertuples():
            assert o.loc[row.visit, "estimate"] == pytest.approx(row.estimate, rel=1e-6), (
                outcome,
                row.visit,
            )
            assert o.loc[row.visit, "se"] == pytest.approx(row.se, rel=1e-4), (outcome, row.visit)
            checked += 1
    assert checked >= (100 if dataset == "demo" else 7)


def test_boundary_variance_is_zero():
    out = visit_means(_long("cases").query("outcome == 'boundary'"))
    assert (out["var_intercept"] == 0.0).all() and out["converged"].all()


def test_same_estimates_as_statsmodels_mixedlm():
    """Cross-check with an independent implementation of the same REML fit. statsmodels'
    standard errors invert the joint information of the fixed effects and the variance
    parameters, which in unbalanced data is not lme4's ``vcov`` (``sigma^2 (X'V^-1 X)^-1``), so
    only the estimates and the variance components are compared."""
    mixed = pytest.importorskip("statsmodels.regression.mixed_linear_model")
    frame = _long("demo")
    out = visit_means(frame)
    for (outcome, score), g in frame.groupby(["outcome", "score"], sort=False):
        levels = sorted(g["visit"].unique())
        exog = np.column_stack([(g["visit"] == v).to_numpy(float) for v in levels])
        model = mixed.MixedLM(g["value"].to_numpy(float), exog, groups=g["subject"].to_numpy())
        # BFGS to a tight gradient tolerance (statsmodels' default L-BFGS stops short of the
        # optimum), a looser one where that cannot be met.
        for gtol in (1e-10, 1e-6):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = model.fit(reml=True, method="bfgs", gtol=gtol, maxiter=5000)
            if res.converged:
                break
        assert res.converged, outcome
        o = (
            out[(out["outcome"] == outcome) & (out["score"] == score)]
            .set_index("visit")
            .loc[levels]
        )
        assert o["estimate"].tolist() == pytest.approx(list(res.fe_params), rel=1e-6), outcome
        assert o["var_intercept"].iloc[0] == pytest.approx(
            float(np.asarray(res.cov_re)[0, 0]), rel=1e-4
        )
        assert o["var_residual"].iloc[0] == pytest.approx(res.scale, rel=1e-4), outcome


def test_too_little_data_is_explained():
    f = pd.DataFrame(
        {
            "outcome": "o",
            "score": "s",
            "subject": ["a", "a"],
            "visit": ["pre", "post"],
            "day": [0, 100],
            "value": [1.0, 2.0],
        }
    )
    out = visit_means(f)
    assert len(out) == 2 and (out["note"] != "").all()


def test_coded_values_give_the_fit_of_the_frame():
    frame = _frame("chickweight").sample(frac=1.0, random_state=3)  # arrival order does not matter
    codes, labels = pd.factorize(frame["visit"])
    coded = visit_means_coded(
        "chickweight",
        "value",
        frame["subject"].to_numpy(),
        codes,
        labels,
        frame["day"].to_numpy(),
        frame["value"].to_numpy(),
    )
    pd.testing.assert_frame_equal(coded, visit_means(_frame("chickweight")))
