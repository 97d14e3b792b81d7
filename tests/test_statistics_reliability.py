"""ICC and weighted kappa against R psych::ICC(lmer = FALSE) and psych::cohen.kappa."""

import math

import numpy as np
import pytest
from r_reference import expected, inputs

from pipeline.statistics.reliability import icc, weighted_kappa


def r6(x):
    return pytest.approx(x, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("case", ["shrout_fleiss", "usjudgeratings"])
def test_icc_matches_r(case):
    out = icc(inputs(case).to_numpy(float)).set_index("type")
    for form in ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"):
        exp = expected(f"{case}/{form}")
        for k, v in exp.items():
            assert out.loc[form, k] == r6(v), (form, k)


def test_weighted_kappa_matches_r():
    g = inputs("grades")
    assert weighted_kappa(g["a"], g["b"])["kappa"] == r6(expected("kappa_grades")["quadratic"])
    assert weighted_kappa(g["a"], g["b"], "linear")["kappa"] == r6(
        expected("kappa_grades_linear")["linear"]
    )


def test_degenerate():
    assert "fewer than 2" in icc([[1, 2]])["note"].iloc[0]
    assert "no variation" in icc([[1, 1], [1, 1], [1, 1]])["note"].iloc[0]
    assert math.isnan(weighted_kappa([2, 2], [2, 2])["kappa"])


def test_weighted_kappa_is_statsmodels_formula():
    # The kappa is statsmodels' cohens_kappa; check it against the textbook formula
    # 1 - sum(w O) / sum(w E) on the grades (to rounding: the sums are taken in another order).
    g = inputs("grades")
    a, b = g["a"].to_numpy(float), g["b"].to_numpy(float)
    cats = np.unique(np.concatenate([a, b]))
    c = cats.size
    obs = np.zeros((c, c))
    np.add.at(obs, (np.searchsorted(cats, a), np.searchsorted(cats, b)), 1)
    obs /= obs.sum()
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0))
    i, j = np.indices((c, c))
    for weights, w in (
        ("quadratic", ((i - j) / (c - 1)) ** 2),
        ("linear", np.abs(i - j) / (c - 1)),
    ):
        kappa = 1 - (w * obs).sum() / (w * exp).sum()
        assert weighted_kappa(a, b, weights)["kappa"] == pytest.approx(kappa, rel=1e-14)
