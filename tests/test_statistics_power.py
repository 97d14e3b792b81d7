"""Pairs needed and detectable effect of the paired t test against R's power.t.test
(tests/fixtures/r/power_paired.R).

Tolerance 1e-6 relative: R finds n (or the effect) with uniroot, here run with tol = 1e-12 so
its root is exact to far below that; statsmodels solves with brentq, whose own stopping rule
leaves about 1e-9 relative on n. Power at a given n is a closed-form noncentral t tail in both,
compared at 1e-9.
"""

import math

import pandas as pd
import pytest
from r_reference import FIXTURES

from pipeline.statistics.power import detectable_dz, paired_power, pairs_needed

R = pd.read_csv(FIXTURES / "power_paired_expected.csv", float_precision="round_trip")


def test_pairs_needed_matches_power_t_test():
    rows = R[R["solve"] == "n"]
    got = [pairs_needed(r.dz, r.sig_level, r.power) for r in rows.itertuples()]
    assert got == pytest.approx(rows["n"].tolist(), rel=1e-6)


def test_detectable_effect_matches_power_t_test():
    rows = R[R["solve"] == "dz"]
    got = [detectable_dz(int(r.n), r.sig_level, r.power) for r in rows.itertuples()]
    assert got == pytest.approx(rows["dz"].tolist(), rel=1e-6)


def test_power_at_n_matches_power_t_test():
    for alpha, rows in R[R["solve"] == "power"].groupby("sig_level"):
        effects = pd.DataFrame(
            {"outcome": "x", "score": "total", "n_pairs": rows["n"].astype(int), "dz": rows["dz"]}
        )
        got = paired_power(effects, alpha)["power_now"]
        assert got.tolist() == pytest.approx(rows["power"].tolist(), rel=1e-9)


def test_table_rows_observed_then_target_and_rounded_up():
    effects = pd.DataFrame(
        {
            "outcome": ["hb", "sb"],
            "score": ["grade", "composite"],
            "n_pairs": [61, 1],
            "dz": [-0.5, float("nan")],
        }
    )
    out = paired_power(effects, 0.05, targets={"hb": 0.35})
    assert out[["outcome", "basis"]].values.tolist() == [
        ["hb", "observed"],
        ["hb", "target"],
        ["sb", "observed"],
    ]
    hb = out.iloc[0]
    # R: power.t.test(delta = 0.5, sd = 1, power = 0.8, type = "paired", strict = TRUE)$n
    r_n = R[(R["solve"] == "n") & (R["dz"] == 0.5) & (R["sig_level"] == 0.05) & (R["power"] == 0.8)]
    assert hb["dz"] == 0.5 and hb["pairs_80"] == pytest.approx(r_n["n"].iloc[0], rel=1e-6)
    assert hb["pairs_80_needed"] == math.ceil(r_n["n"].iloc[0]) == 34
    assert out.iloc[1]["dz"] == 0.35 and out.iloc[1]["pairs_90_needed"] == 88
    sb = out.iloc[2]
    assert math.isnan(sb["pairs_80"]) and pd.isna(sb["pairs_80_needed"]) and sb["note"]
    # An effect that 2 pairs already detect with more than the power asked: R's uniroot extends
    # its search below 2 (power.t.test(delta = 30, power = 0.8, ...)$n = 1.74, a t test on
    # fewer than 1 degree of freedom); a study needs at least 2 pairs, so 2 here.
    assert pairs_needed(30.0, 0.05, 0.8) == 2.0
