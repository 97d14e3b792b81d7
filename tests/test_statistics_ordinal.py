"""McNemar, Bowker, sign test counts and Clopper-Pearson against R (statistics_families.R)."""

import math

import numpy as np
import pytest
from r_reference import expected
from scipy import stats

from conftest import pairs_of
from pipeline.statistics.ordinal import bowker, change_direction, mcnemar
from pipeline.statistics.responders import clopper_pearson, responder_rates


def r6(x):
    return pytest.approx(x, rel=1e-6, abs=1e-12)


def test_mcnemar_matches_r():
    # R: mcnemar.test(matrix(c(10, 7, 15, 12), 2)); discordant cells 15 and 7.
    x2, p, _ = mcnemar(15, 7)
    exp = expected("mcnemar_15_7")
    assert (x2, p) == (r6(exp["statistic"]), r6(exp["p"]))
    # Equal discordant counts: R drops the continuity correction -> X2 = 0, p = 1.
    x2, p, _ = mcnemar(6, 6)
    exp = expected("mcnemar_6_6")
    assert (x2, p) == (exp["statistic"], exp["p"]) == (0.0, 1.0)
    assert "no discordant" in mcnemar(0, 0)[2]


def _from_table(tab):
    pre, post = [], []
    for i in range(tab.shape[0]):
        for j in range(tab.shape[1]):
            pre += [i + 1] * int(tab[i, j])
            post += [j + 1] * int(tab[i, j])
    return np.array(pre, float), np.array(post, float)


def test_bowker_matches_r():
    # R: mcnemar.test(matrix(c(20, 10, 4, 8, 15, 6, 2, 9, 11), 3)) (column-major: pre in rows).
    tab = np.array([20, 10, 4, 8, 15, 6, 2, 9, 11], float).reshape(3, 3, order="F")
    res = bowker(*_from_table(tab))
    exp = expected("bowker_3x3")
    assert (
        res["statistic"] == r6(exp["statistic"])
        and res["df"] == exp["df"]
        and res["p"] == r6(exp["p"])
    )
    # An empty pair of cells (R: NaN) is left out of the statistic and the df.
    tab[0, 2] = tab[2, 0] = 0
    res = bowker(*_from_table(tab))
    assert res["df"] == 2 and "empty" in res["note"]


def test_bowker_is_statsmodels_symmetry_when_every_pair_is_informative():
    from statsmodels.stats.contingency_tables import SquareTable

    rng = np.random.default_rng(3)
    for _ in range(50):
        k = int(rng.integers(2, 7))
        tab = rng.integers(1, 30, (k, k)).astype(float)
        res = bowker(*_from_table(tab))
        sym = SquareTable(tab, shift_zeros=False).symmetry()
        # The same sum in the same order; statsmodels adds 1e-20 to denominators of 2 or more.
        assert (res["statistic"], res["df"]) == (sym.statistic, sym.df)
        assert res["p"] == sym.pvalue


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (41, 63)])
def test_clopper_pearson_matches_r(k, n):
    exp = expected(f"binom_{k}_{n}")
    low, high = clopper_pearson(k, n)
    assert (low, high) == (r6(exp["ci_low"]), r6(exp["ci_high"]))


@pytest.mark.parametrize(
    "k,n", [(0, 10), (3, 10), (10, 10), (41, 63), (1, 90000), (45000, 90000), (89999, 90000)]
)
def test_clopper_pearson_is_binomtest_within_its_tolerance(k, n):
    # binomtest(...).proportion_ci("exact") finds the same limits by brentq (xtol 2e-12, rtol
    # 4 eps): equal within that, but not to R's precision for a small limit (see the docstring).
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    low, high = clopper_pearson(k, n)
    brentq = dict(abs=2e-12, rel=4 * np.finfo(float).eps)
    assert low == pytest.approx(ci.low, **brentq) and high == pytest.approx(ci.high, **brentq)


def test_change_direction_and_responders_tables():
    # House-Brackmann: lower is better. Changes: -2, -1, 0, +1, -1.
    pairs = pairs_of("hb", "grade", pre=[4.0, 3, 3, 2, 5], post=[2.0, 2, 3, 3, 4])
    out = change_direction(pairs, {"hb": False}, ordinal=("hb",)).iloc[0]
    assert (out["n_improved"], out["n_unchanged"], out["n_worsened"]) == (3, 1, 1)
    # sign test: binom.test(3, 4)$p.value = 0.625
    assert out["sign_p"] == pytest.approx(0.625)
    assert not math.isnan(out["bowker_p"])
    rr = responder_rates(pairs, {"hb": 1.0}, {"hb": False}).iloc[0]
    assert (rr["n_responders"], rr["n_pairs"]) == (3, 5) and rr["proportion"] == 0.6
    empty = responder_rates(pairs.iloc[:0], {"hb": 1.0}, {"hb": False})
    assert len(empty) == 0
