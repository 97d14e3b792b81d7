"""Pearson and Spearman against R cor.test (tests/fixtures/r/statistics_families.R)."""

import math

import pandas as pd
import pytest

from pipeline.statistics.correlation import baseline_change_correlation, pearson, spearman
from r_reference import expected, inputs


def r6(x):
    return pytest.approx(x, rel=1e-6, abs=1e-12)


def _cases():
    an = inputs("anorexia")
    women, cars = inputs("women"), inputs("cars")
    return {
        "anorexia_pre_change": (an["pre"], an["post"] - an["pre"]),
        "women": (women["x"], women["y"]),
        "women_n8": (women["x"][:8], women["y"].iloc[[0, 2, 1, 3, 5, 4, 7, 6]].to_numpy()),
        "cars": (cars["x"], cars["y"]),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_matches_r(case):
    x, y = _cases()[case]
    res = pearson(x, y)
    for k, v in expected(f"{case}/pearson").items():
        assert res[k] == r6(v), k
    res = spearman(x, y)
    for k, v in expected(f"{case}/spearman").items():
        assert res[k] == r6(v), k


def test_degenerate():
    assert "fewer than 3" in pearson([1, 2], [3, 4])["note"]
    assert "constant" in spearman([1, 1, 1, 1], [1, 2, 3, 4])["note"]
    assert math.isnan(pearson([1, 2, 3], [1, 2, 4])["ci_low"])


def test_baseline_change_table():
    pairs = pd.DataFrame({"outcome": "o", "score": "s", "pre_value": [1.0, 2, 3, 4, 5],
                          "post_value": [3.0, 3, 4, 4, 5]})
    out = baseline_change_correlation(pairs)
    assert list(out["method"]) == ["Pearson", "Spearman"] and (out["estimate"] < 0).all()
