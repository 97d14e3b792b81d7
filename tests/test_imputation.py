"""Multiple imputation of the pre/post values (pipeline/statistics/imputation.py).

Rubin's rules against R ``mice::pool`` / ``pool.scalar`` on the same imputed data sets
(tests/fixtures/r/imputation.R, pooling tests/fixtures/r/imputation_sets.csv).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.statistics.imputation import (
    _chain,
    imputation_analysis,
    mean_change,
    rubin_pool,
)

R = Path(__file__).parent / "fixtures" / "r"
REL = 1e-6  # the tolerance for closed-form statistics


def _expected() -> pd.DataFrame:
    return pd.read_csv(R / "imputation_expected.csv", dtype={"dfcom": str})


def _pooled(case: str, dfcom_rule: str) -> dict:
    sets = pd.read_csv(R / "imputation_sets.csv")
    one = sets[sets["case"] == case]
    results = [mean_change(g["pre_value"], g["post_value"]) for _, g in one.groupby("imputation")]
    dfcom = math.inf if dfcom_rule == "Inf" else results[0][2]
    return rubin_pool([r[0] for r in results], [r[1] for r in results], dfcom)


@pytest.mark.parametrize("case", ["grades", "scores", "complete"])
@pytest.mark.parametrize("dfcom", ["n - 1", "Inf"])
def test_rubin_pool_matches_mice_pool(case, dfcom):
    """Every quantity mice::pool (dfcom = n - 1) and pool.scalar (n = Inf) report, 1e-6
    relative; 'complete' has b = 0, where mice floors lambda at 1e-4 for the df."""
    expected = _expected()
    expected = expected[(expected["case"] == case) & (expected["dfcom"] == dfcom)]
    ours = _pooled(case, dfcom)
    assert len(expected) >= 10
    for key, value in zip(expected["key"], expected["value"]):
        if value == 0:
            assert ours[key] == pytest.approx(0, abs=1e-15), key
        else:
            assert ours[key] == pytest.approx(value, rel=REL), key


def _values(n: int = 24, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pre = rng.normal(40, 10, n).round()
    post = (pre + 8 + rng.normal(0, 6, n)).round()
    age = rng.normal(50, 10, n).round()
    pre[[0, 4]] = np.nan
    post[[1, 2, 9]] = np.nan
    pre[3] = post[3] = np.nan  # no data at all: left out
    return pd.DataFrame(
        {
            "subject": [f"p{i:02d}" for i in range(n)],
            "pre_value": pre,
            "post_value": post,
            "age": age,
        }
    )


def test_analysis_counts_and_complete_case_row():
    table, imputed = imputation_analysis(
        _values(), outcome="x", score="total", m=4, seed=11, predictors=["age"]
    )
    cc, mi = table.iloc[0], table.iloc[1]
    assert list(table["analysis"]) == ["complete case", "multiple imputation"]
    assert (cc["n_with_data"], cc["n_analysed"]) == (23, 18)
    assert (mi["n_analysed"], mi["n_imputed_pre"], mi["n_imputed_post"]) == (23, 2, 3)
    # The complete-case row is the paired t of the complete pairs (t.test(paired = TRUE)).
    v = _values().dropna(subset=["pre_value", "post_value"])
    d = v["post_value"] - v["pre_value"]
    assert cc["estimate"] == pytest.approx(d.mean(), rel=1e-12)
    assert cc["se"] == pytest.approx(d.std(ddof=1) / math.sqrt(len(d)), rel=1e-12)
    assert cc["df"] == 17
    # Imputed sets: every patient with data, no value missing, observed values untouched.
    assert imputed["imputation"].unique().tolist() == [1, 2, 3, 4]
    assert not imputed[["pre_value", "post_value", "age"]].isna().any().any()
    first = imputed[imputed["imputation"] == 1].set_index("subject")
    given = _values().set_index("subject").loc[first.index]
    seen = given["pre_value"].notna()
    assert (first.loc[seen, "pre_value"] == given.loc[seen, "pre_value"]).all()
    # Predictive mean matching: an imputed value is one some patient had.
    assert set(first["post_value"]) <= set(given["post_value"].dropna())


def test_same_seed_same_values_other_seed_other_values():
    args = dict(outcome="x", score="total", m=3, predictors=["age"])
    a = imputation_analysis(_values(), seed=5, **args)
    b = imputation_analysis(_values(), seed=5, **args)
    c = imputation_analysis(_values(), seed=6, **args)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])
    assert not a[1]["post_value"].equals(c[1]["post_value"])


def test_array_design_is_the_formula_design():
    """The chain built from arrays draws what statsmodels' MICEData with its default formula
    (patsy) draws from the same seed."""
    from statsmodels.imputation.mice import MICEData

    data = _values().drop(columns="subject").dropna(how="all").reset_index(drop=True)
    ours = _chain(data, 5, np.random.default_rng(3))
    theirs = MICEData(data, k_pmm=5, rng=np.random.default_rng(3))
    ours.update_all(2)
    theirs.update_all(2)
    pd.testing.assert_frame_equal(ours.data, theirs.data)


def test_too_few_values_gives_a_note_not_an_error():
    v = _values().iloc[:4]
    table, imputed = imputation_analysis(v, outcome="x", score="total", m=3, seed=1)
    assert table.iloc[1]["note"].startswith("not computed")
    assert math.isnan(table.iloc[1]["estimate"]) and imputed.empty


def _spec(tmp_path, imputation: dict, **analysis):
    from pipeline.spec.study import load_study
    from specs import study_toml

    for name in ("patients.csv", "visits.csv"):
        (tmp_path / name).write_text("", encoding="utf-8")
    (tmp_path / "study.toml").write_text(
        study_toml({"analysis": {"imputation": imputation, **analysis}}), encoding="utf-8"
    )
    return load_study(tmp_path)


def test_spec_imputation_defaults_and_refusals(tmp_path):
    from pipeline.spec.schema import SpecError

    plan = _spec(tmp_path, {"seed": 7, "predictors": ["age"]}).analysis.imputation
    assert (plan.outcome, plan.m, plan.seed, plan.predictors) == (
        "house_brackmann_observer",
        20,
        7,
        ("age",),
    )
    assert (plan.iterations, plan.donors, plan.method) == (10, 5, "mice")
    refusals = {
        "seed": {"m": 5},
        "predictors\\[0\\]": {"seed": 1, "predictors": ["weight"]},
        "imputation.outcome": {"seed": 1, "outcome": "sunnybrook"},
        "imputation.m": {"seed": 1, "m": 1},
        "imputation.method": {"seed": 1, "method": "amelia"},
    }
    for where, imputation in refusals.items():
        with pytest.raises(SpecError, match=where):
            _spec(tmp_path, imputation)


def test_demo_imputes_its_primary_outcome_and_reports_it(demo_run):
    """The demo's [analysis] imputation: imputation.csv, its eTable beside the complete pairs and
    the Methods paragraph; correlations and sign tests within the subgroup levels."""
    folder, outcome = demo_run
    reports = folder / "reports" / "demo"
    table = pd.read_csv(reports / "tables" / "imputation.csv", float_precision="round_trip")
    cc, mi = table.iloc[0], table.iloc[1]
    # 63 patients, 61 pairs, 2 without a post value (missing_data.csv).
    assert (cc["n_with_data"], cc["n_analysed"], mi["n_analysed"]) == (63, 61, 63)
    assert (mi["n_imputed_pre"], mi["n_imputed_post"], mi["m"], mi["seed"]) == (0, 2, 20, 2019)
    paired = outcome["results"].set_index("outcome").loc["house_brackmann_observer"]
    assert cc["estimate"] == paired["mean_diff"] and cc["p"] == paired["p_t"]
    assert mi["ci_low"] < mi["estimate"] < mi["ci_high"] and 0 < mi["fmi"] < 1
    etable = (reports / "tables" / "etable_imputation.md").read_text(encoding="utf-8")
    assert "| Multiple imputation (m = 20) | 63 / 63" in etable.replace("  ", "")
    # A visit with no missing value is not counted in the footnote ("0 missing values before").
    assert "the missing values (2 after surgery) were imputed 20 times" in etable
    assert " 0 " not in etable.split("a. ")[1].split("\n")[0]
    html = (reports / "report.html").read_text(encoding="utf-8")
    number = etable.split("eTable ")[1].split(".")[0]
    assert f"As a sensitivity analysis (eTable {number}), the missing before and after" in html
    assert "m = 20 imputed data sets" in html and "random seed 2019" in html
    assert "Barnard-Rubin degrees of freedom" in html and "mice::pool" in html
    import docx

    document = docx.Document(str(reports / "report.docx"))
    assert any(
        p.text.startswith(f"eTable {number}. House-Brackmann grade (observer): mean change")
        for p in document.paragraphs
    )
    # Within each subgroup level, in the declared order, as the paired tests' subgroup rows.
    by_group = pd.read_csv(reports / "tables" / "correlations_by_group.csv")
    signs = pd.read_csv(reports / "tables" / "sign_tests_by_group.csv")
    levels = [g for g in pd.unique(signs["group"]) if g != "all"]
    assert levels[:2] == ["branches_transected ≤ 6", "branches_transected > 6"]
    assert set(pd.unique(by_group["group"])) == {"all", *levels}
    hb = signs[signs["outcome"] == "house_brackmann_observer"].set_index("group")
    assert hb.loc["all", ["n_pairs", "n_positive", "n_zero", "n_negative"]].tolist() == [
        61,
        2,
        12,
        47,
    ]


def test_statsmodels_combine_has_no_barnard_rubin_df():
    """Why Rubin's rules are written out: statsmodels' MICE.combine, given the same fits, gives
    the pooled estimate and total variance t, but its 'fraction of missing information' is
    mice's lambda (not fmi), it has no degrees of freedom (its inference is normal), and it
    cannot pool a model of one coefficient, such as the mean change (np.diag of a 0-d cov)."""
    import statsmodels.api as sm
    from statsmodels.imputation.mice import MICE

    sets = pd.read_csv(R / "imputation_sets.csv")
    one = sets[sets["case"] == "grades"]
    groups = [g for _, g in one.groupby("imputation")]

    def combined(columns):
        fits = [sm.OLS(g["post_value"].to_numpy(), g[columns].to_numpy()).fit() for g in groups]
        combiner = MICE("y ~ 1", sm.OLS, None)
        combiner.results_list, combiner.exog_names, combiner.endog_names = fits, columns, "y"
        return fits, combiner.combine()

    groups = [g.assign(one=1.0) for g in groups]
    with pytest.raises(ValueError):
        combined(["one"])
    fits, theirs = combined(["one", "pre_value"])
    ours = rubin_pool(
        [f.params[1] for f in fits], [f.cov_params()[1, 1] for f in fits], fits[0].df_resid
    )
    assert theirs.params[1] == pytest.approx(ours["estimate"], rel=1e-12)
    assert theirs.cov_params()[1, 1] == pytest.approx(ours["t"], rel=1e-12)
    assert theirs.frac_miss_info[1] == pytest.approx(ours["lambda"], rel=1e-12)
    assert theirs.frac_miss_info[1] != pytest.approx(ours["fmi"], rel=1e-3)


def test_correlations_and_sign_tests_by_group_only_when_the_plan_asks():
    # The demo asks (within_groups = true, the test above reads its tables); the small study
    # does not, and writes neither table.
    from small_study import full_run

    tables = full_run() / "reports" / "small" / "tables"
    assert (tables / "paired_tests.csv").is_file()
    assert not (tables / "correlations_by_group.csv").exists()
    assert not (tables / "sign_tests_by_group.csv").exists()
