"""Rendering rules for publication tables (AMA Manual of Style, 11th ed., P values)."""

import math

import pytest

from pipeline.tables import estimate_ci, format_p, mean_sd


@pytest.mark.parametrize("p, text", [
    (0.00001, "<.001"), (0.0009999, "<.001"), (0.001, ".001"), (0.0042, ".004"),
    (0.00951, ".01"), (0.00949, ".009"), (0.03, ".03"), (0.049, ".05"), (0.3, ".30"), (0.994, ".99"),
    (0.996, ">.99"), (1.0, ">.99"), (math.nan, "NA"),
])
def test_format_p(p, text):
    assert format_p(p) == text


def test_numbers_round_only_when_rendered():
    assert mean_sd(3.86, 0.849) == "3.9 ± 0.8"
    assert estimate_ci(-1.04, -1.31, -0.77) == "-1.0 (-1.3 to -0.8)"
    # a change that rounds to zero is not shown as "-0.0"
    assert estimate_ci(-0.04, -0.5, 0.4) == "0.0 (-0.5 to 0.4)"
