"""Predictors of outcome (pipeline/statistics/regression.py) against R's lm and glm.

Expected values: tests/fixtures/r/regression.R (R 4.2.2): lm with confint.lm and summary.lm;
glm(family = binomial) with confint.default (Wald), summary.glm, deviances, AIC and the AUC as
wilcox.test's W / (n1 n0); categorical predictors releveled to the reference level. The cases
(regression_cases.csv) are mtcars, MASS::birthwt, MASS::anorexia and the demo cohort's
House-Brackmann pairs, each fitted here from the CSV the R script fitted.

Tolerance 1e-6 relative for every number; the fits agree far closer (largest relative
difference 1.4e-12 linear, 5.7e-13 logistic). The linear fits are closed-form (R's QR,
statsmodels' pseudo-inverse). The logistic fits are iterated (IRLS in both), so both are run to
convergence: R with glm.control(epsilon = 1e-14), the pipeline to a deviance change below 1e-12.
With R's default epsilon (1e-8) summary.glm's standard errors come from the weights of the
iterate before the last, 1e-5 relative off on birthwt; the comparison would then test R's
stopping rule, not the model, and would need the 1e-4 allowed for iterated fits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.statistics.regression import (
    COEFFICIENT_COLUMNS,
    MODEL_COLUMNS,
    fit_regression,
    predictors_of_outcome,
)

R = Path(__file__).parent / "fixtures" / "r"
CASES = pd.read_csv(R / "regression_cases.csv", keep_default_na=False)
COEFFICIENTS = pd.read_csv(
    R / "regression_expected_coefficients.csv", float_precision="round_trip", keep_default_na=False
)
MODELS = pd.read_csv(
    R / "regression_expected_models.csv", float_precision="round_trip", keep_default_na=False
)
RELATIVE = 1e-6


def inputs(dataset: str) -> pd.DataFrame:
    """A case's data as R wrote it, every categorical column read as text."""
    return pd.read_csv(
        R / f"regression_inputs_{dataset}.csv",
        float_precision="round_trip",
        dtype={c: str for c in ("cyl", "race", "smoke", "treatment", "facelift", "etiology")}
        | {"cross_facial_nerve_graft": str, "nerve_rerouting": str},
    )


def number(text) -> float:
    return float("nan") if text in ("", "NA") else float(text)


def close(got: float, expected: float) -> bool:
    if np.isnan(expected):
        return bool(np.isnan(got))
    return got == pytest.approx(expected, rel=RELATIVE, abs=1e-12)


def fitted(case) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The case fitted by fit_regression as the R script fitted it: the coefficient rows with
    an estimate (R's coefficients) and the model rows."""
    data = inputs(case.dataset)
    # Levels in the case's declared order (text order where it declares none); the reference
    # levels it names, the others left to the default rule: the first declared level.
    declared = {
        c: levels.split("|")
        for c, levels in (pair.split("=", 1) for pair in case.declared.split(";") if pair)
    }
    categorical = {
        c: declared.get(c) or sorted(data[c].dropna().unique())
        for c in case.categorical.split()
        if c in data
    }
    reference = dict(pair.split("=", 1) for pair in case.reference.split(";") if pair)
    predictors = case.predictors.split()
    sets = [[p] for p in predictors] if case.model == "univariable" else [predictors]
    fits = [
        fit_regression(
            data,
            case.response,
            chosen,
            family=case.family,
            categorical=categorical,
            reference=reference,
            adjust=case.adjust.split(),
            conf_level=float(case.conf_level),
            model=case.model,
        )
        for chosen in sets
    ]
    coefficients, models = [], []
    resolved = dict(pair.split("=", 1) for pair in case.resolved.split(";") if pair)
    for chosen, fit in zip(sets, fits):
        # The reference each categorical predictor got is the one R's case was releveled to.
        levels = fit.coefficients[fit.coefficients["is_reference"]]
        assert dict(zip(levels["predictor"], levels["reference_level"])) == {
            p: resolved[p] for p in chosen if p in resolved
        }
        rows = fit.coefficients[~fit.coefficients["is_reference"]]
        coefficients.append(
            rows.assign(model_predictor=chosen[0] if case.model == "univariable" else "")
        )
        models.append(fit.models.assign(model_predictor=chosen[0] if len(sets) > 1 else ""))
    return pd.concat(coefficients), pd.concat(models)


@pytest.mark.parametrize("case", list(CASES.itertuples()), ids=list(CASES["case"]))
def test_models_match_r(case):
    coefficients, models = fitted(case)
    expected = COEFFICIENTS[COEFFICIENTS["case"] == case.case]
    got = coefficients.set_index(["model_predictor", "term"])
    assert len(got) == len(expected)
    for r in expected.itertuples():
        row = got.loc[(r.model_predictor, r.term)]
        assert row["n"] == r.n
        if np.isnan(row["estimate"]) and number(r.std_error) > 1e3:
            # Separation (every patient at the level responded): R's estimate is the last
            # iterate of a divergent fit, its SE enormous; the pipeline reports none.
            note = models.set_index("model_predictor").loc[r.model_predictor, "note"]
            assert "separation" in note and r.term.split("[")[1].rstrip("]") in note
            continue
        for k in ("estimate", "ci_low", "ci_high", "coefficient", "std_error", "statistic", "p"):
            assert close(row[k], number(getattr(r, k))), (r.model_predictor, r.term, k)
    expected_models = MODELS[MODELS["case"] == case.case].set_index("model_predictor")
    got_models = models.set_index("model_predictor")
    assert sorted(got_models.index) == sorted(expected_models.index)
    for predictor, r in expected_models.iterrows():
        row = got_models.loc[predictor]
        assert (row["n"], row["n_dropped"], row["df_residual"]) == (
            r["n"],
            r["n_dropped"],
            r["df_residual"],
        )
        assert row["note"] == "" or row["note"].startswith("separation")
        for k in MODEL_COLUMNS[9:-2]:
            if k in r:
                assert close(row[k], number(r[k])), (predictor, k)


def test_reference_rows_and_layout():
    """A categorical predictor's reference level is a row of its own without an estimate,
    first among its levels; levels in the order given; every column documented."""
    data = inputs("birthwt")
    res = fit_regression(
        data,
        "low",
        ["age", "race"],
        family="logistic",
        categorical={"race": ["white", "black", "other"]},
    )
    rows = res.coefficients
    assert list(rows.columns) == COEFFICIENT_COLUMNS
    assert list(res.models.columns) == MODEL_COLUMNS
    assert rows["term"].tolist() == [
        "(Intercept)",
        "age",
        "race[white]",
        "race[black]",
        "race[other]",
    ]
    reference = rows[rows["is_reference"]].iloc[0]
    assert reference["level"] == reference["reference_level"] == "white"
    assert np.isnan(reference["estimate"]) and reference["n_level"] == 96  # table(race)
    # birthwt: 59 low birth weights of 189 (R: sum(low)).
    assert res.models.iloc[0]["n_events"] == 59


def test_levels_named_like_code_stay_data():
    """Levels and columns never reach the formula: a level with quotes and brackets is a level."""
    data = pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 6.0, 9.0],
            "group) + np.log(x": ["a'b", "a'b", "c]d", "c]d", "a'b", "c]d", "a'b", "c]d"],
        }
    )
    res = fit_regression(data, "y", ["group) + np.log(x"], categorical={"group) + np.log(x": []})
    levels = res.coefficients.loc[res.coefficients["role"] == "predictor", "level"]
    assert sorted(levels) == ["a'b", "c]d"]
    # Two levels of 4 (a tie: the reference is the first in text order, a'b): the coefficient
    # is the difference in means, (3 + 4 + 7 + 9) / 4 - (1 + 2 + 5 + 6) / 4 = 5.75 - 3.5.
    assert res.coefficients["reference_level"].iloc[-1] == "a'b"
    assert res.coefficients["estimate"].iloc[-1] == pytest.approx(2.25)


def test_models_that_cannot_be_fitted_say_why():
    data = pd.DataFrame({"y": [1.0, 0.0, 1.0], "x": [1.0, 2.0, 3.0], "g": ["a", "a", "a"]})
    one_level = fit_regression(data, "y", ["x", "g"], categorical={"g": ["a"]})
    assert "fewer than 2 levels" in one_level.models.iloc[0]["note"]
    assert one_level.coefficients["estimate"].isna().all()
    same = fit_regression(data.assign(y=1.0), "y", ["x"], family="logistic")
    assert "same response" in same.models.iloc[0]["note"]
    nobody = fit_regression(data.assign(y=float("nan")), "y", ["x"], family="logistic")
    assert nobody.models.iloc[0][["n", "n_dropped"]].tolist() == [0, 3]
    assert "no more patients than coefficients" in nobody.models.iloc[0]["note"]
    saturated = fit_regression(data.iloc[:2], "y", ["x"])
    assert "no more patients than coefficients" in saturated.models.iloc[0]["note"]
    four = pd.DataFrame({"y": [1.0, 0.0, 1.0, 2.0], "x": [1.0, 2.0, 3.0, 5.0]})
    collinear = fit_regression(four.assign(z=four["x"] * 2), "y", ["x", "z"])
    assert "collinear" in collinear.models.iloc[0]["note"]


def test_predictors_of_outcome_builds_the_three_responses():
    """The anorexia cases through the wrapper: change, post adjusted for pre, and responders of
    a 2 lb gain (R: anorexia_change, anorexia_post_adjusted, anorexia_responder(_adjusted))."""
    data = inputs("anorexia")[["pre_value", "post_value", "treatment"]]
    options = dict(categorical={"treatment": ["CBT", "Cont", "FT"]}, responder_threshold=2.0)
    for model, cases in (
        ("change", ("anorexia_change", "anorexia_responder")),
        ("post_adjusted", ("anorexia_post_adjusted", "anorexia_responder_adjusted")),
    ):
        res = predictors_of_outcome(data, ["treatment"], model=model, univariable=True, **options)
        for response, case in zip(("change" if model == "change" else "post", "responder"), cases):
            rows = res.coefficients[
                (res.coefficients["response"] == response)
                & (res.coefficients["model"] == "multivariable")
                & ~res.coefficients["is_reference"]
            ].set_index("term")
            expected = COEFFICIENTS[COEFFICIENTS["case"] == case]
            assert len(rows) == len(expected)
            for r in expected.itertuples():
                assert close(rows.loc[r.term, "estimate"], number(r.estimate)), (case, r.term)
                assert close(rows.loc[r.term, "p"], number(r.p)), (case, r.term)
        # One predictor: its univariable model is the multivariable one.
        uni = res.coefficients[res.coefficients["model"] == "univariable"]
        multi = res.coefficients[
            (res.coefficients["model"] == "multivariable")
            & (res.coefficients["role"] == "predictor")
        ]
        assert uni["estimate"].tolist() == pytest.approx(multi["estimate"].tolist(), nan_ok=True)
    # Lower is better: a responder loses at least the threshold.
    lower = predictors_of_outcome(
        data,
        ["treatment"],
        responder_threshold=2.0,
        higher_is_better=False,
        **{"categorical": options["categorical"]},
    )
    events = lower.models.loc[lower.models["response"] == "responder", "n_events"].iloc[0]
    assert events == int((data["pre_value"] - data["post_value"] >= 2).sum())
