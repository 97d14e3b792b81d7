"""Pooled statistics from site summaries (pipeline/statistics/pooled.py).

Expected values: tests/fixtures/r/pooled.R (R's t.test on the stacked patients; metafor::rma with
method "EE", "DL", "REML", test "z" and "knha"; predict() for the prediction interval), on the
patients of tests/fixtures/r/pooled_inputs.csv that the script generated.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from r_reference import FIXTURES
from scipy import optimize

from pipeline.statistics.pooled import (
    MOMENTS,
    meta_analysis,
    moments,
    pooled_paired,
    random_effects,
    reml_tau2,
    site_effects,
)

INPUTS = pd.read_csv(FIXTURES / "pooled_inputs.csv", float_precision="round_trip")
EXPECTED = pd.read_csv(FIXTURES / "pooled_expected.csv", float_precision="round_trip")
CASES = list(INPUTS["case"].unique())


def expected(case: str, analysis: str) -> dict[str, float]:
    rows = EXPECTED[(EXPECTED["case"] == case) & (EXPECTED["analysis"] == analysis)]
    assert len(rows), f"no R reference for {case} {analysis}"
    return dict(zip(rows["key"], rows["value"].astype(float)))


def site_sums(case: str) -> pd.DataFrame:
    """What each site's bundle holds for the case: its sums, one row per site."""
    rows = [
        {"site": site, "outcome": "sb", "score": "composite", **moments(d["pre"], d["post"])}
        for site, d in INPUTS[INPUTS["case"] == case].groupby("site", sort=True)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("case", CASES)
def test_pooled_paired_t_is_the_t_test_of_the_stacked_patients(case):
    r = expected(case, "stacked")
    got = pooled_paired(site_sums(case)).iloc[0]
    assert got["n_pairs"] == r["n"]
    assert got["df"] == r["df"]
    for ours, theirs in [
        ("mean_change", "mean_change"),
        ("sd_change", "sd_change"),
        ("t", "t"),
        ("p", "p"),
        ("ci_low", "ci_low"),
        ("ci_high", "ci_high"),
    ]:
        assert got[ours] == pytest.approx(r[theirs], rel=1e-9), ours


def test_pooled_means_sds_and_correlation_equal_the_stacked_data():
    # numpy on the stacked patients is the reference for the descriptive columns.
    data = INPUTS[INPUTS["case"] == "heterogeneous"]
    got = pooled_paired(site_sums("heterogeneous")).iloc[0]
    assert got["n_sites"] == data["site"].nunique()
    assert got["mean_pre"] == pytest.approx(data["pre"].mean(), rel=1e-12)
    assert got["sd_pre"] == pytest.approx(data["pre"].std(ddof=1), rel=1e-10)
    assert got["mean_post"] == pytest.approx(data["post"].mean(), rel=1e-12)
    assert got["sd_post"] == pytest.approx(data["post"].std(ddof=1), rel=1e-10)
    assert got["r_pre_post"] == pytest.approx(data["pre"].corr(data["post"]), rel=1e-10)


def test_sums_do_not_depend_on_the_order_of_the_patients():
    data = INPUTS[INPUTS["case"] == "heterogeneous"]
    shuffled = data.sample(frac=1, random_state=3)
    assert moments(data["pre"], data["post"]) == moments(shuffled["pre"], shuffled["post"])
    assert list(moments([1], [2])) == list(MOMENTS)


META_CASES = [
    (case, method, test)
    for case in CASES
    for method, test in [("EE", "z"), ("DL", "z"), ("DL", "knha"), ("REML", "z"), ("REML", "knha")]
]


@pytest.mark.parametrize(("case", "method", "test"), META_CASES)
def test_meta_analysis_matches_metafor(case, method, test):
    r = expected(case, f"{method}_{test}")
    effects = site_effects(site_sums(case))
    knha = test == "knha"
    got = random_effects(
        effects["mean_change"], effects["variance"], tau2_method=method, hartung_knapp=knha
    )
    # 1e-6 relative (the tolerance); REML too, since the fixture's Fisher scoring ran
    # to a 1e-12 threshold rather than metafor's default 1e-5.
    keys = ["k", "estimate", "se", "ci_low", "ci_high", "statistic", "p", "tau2", "I2", "H2"]
    keys += ["Q", "Q_p"] + (["pi_low", "pi_high"] if method != "EE" else [])
    for key in keys:
        ours = got[key.lower() if key in ("I2", "H2", "Q") else key.replace("Q_p", "q_p")]
        if r[key] == 0:
            assert ours == pytest.approx(0, abs=1e-10), key
        else:
            assert ours == pytest.approx(r[key], rel=1e-6), key
    assert got["distribution"] == ("t" if test == "knha" else "z")


def test_reml_is_the_maximum_of_the_restricted_likelihood():
    # The restricted log-likelihood of y_i ~ N(mu, v_i + tau²) (Viechtbauer 2005, eq. 7),
    # maximised directly by scipy, stands in for metafor's Fisher scoring.
    effects = site_effects(site_sums("heterogeneous"))
    y, v = effects["mean_change"].to_numpy(), effects["variance"].to_numpy()

    def minus_restricted_loglik(tau2):
        w = 1 / (v + tau2)
        mu = (w * y).sum() / w.sum()
        return 0.5 * (np.log(v + tau2).sum() + math.log(w.sum()) + (w * (y - mu) ** 2).sum())

    direct = optimize.minimize_scalar(
        minus_restricted_loglik, bounds=(0, 1000), method="bounded", options={"xatol": 1e-10}
    )
    assert reml_tau2(y, v) == pytest.approx(direct.x, rel=1e-7)


def test_site_effects_are_each_sites_paired_t():
    from scipy import stats

    effects = site_effects(site_sums("two_sites"))
    for (site, data), (_, row) in zip(
        INPUTS[INPUTS["case"] == "two_sites"].groupby("site", sort=True), effects.iterrows()
    ):
        change = data["post"] - data["pre"]
        tested = stats.ttest_1samp(change, 0)
        low, high = tested.confidence_interval(0.95)
        assert row["site"] == site
        assert row["mean_change"] == pytest.approx(change.mean(), rel=1e-12)
        assert row["variance"] == pytest.approx(change.var(ddof=1) / len(change), rel=1e-10)
        assert (row["t"], row["p"]) == pytest.approx((tested.statistic, tested.pvalue), rel=1e-9)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-9)


def test_meta_analysis_table_leaves_out_sites_without_variance_and_says_so():
    sums = site_sums("heterogeneous")
    # A site of five patients who all changed by 3: no sampling variance to weight by.
    constant = {"site": "site_9", "outcome": "sb", "score": "composite"}
    sums = pd.concat(
        [sums, pd.DataFrame([{**constant, **moments([10, 20, 30, 40, 50], [13, 23, 33, 43, 53])}])]
    )
    table = meta_analysis(site_effects(sums), tau2_method="DL", hartung_knapp=True)
    assert list(table["model"]) == ["common", "random"]
    assert set(table["k"]) == {5}
    assert all("1 site without variation in the change left out" in n for n in table["note"])
    r = expected("heterogeneous", "DL_knha")
    assert table.iloc[1]["estimate"] == pytest.approx(r["estimate"], rel=1e-9)
    one = meta_analysis(site_effects(sums.iloc[:1]))
    assert one["estimate"].isna().all()
    assert one["note"].str.startswith("fewer than two sites").all()
