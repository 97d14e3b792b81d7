"""Loader for tests/fixtures/r/statistics_expected.csv (written by statistics_families.R)."""

from pathlib import Path

import pandas as pd

FIXTURES = Path(__file__).parent / "fixtures" / "r"
_EXPECTED = pd.read_csv(FIXTURES / "statistics_expected.csv", float_precision="round_trip")


def expected(case: str) -> dict[str, float]:
    rows = _EXPECTED[_EXPECTED["case"] == case]
    assert len(rows), f"no R reference for {case}"
    return dict(zip(rows["key"], rows["value"].astype(float)))


def inputs(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / f"statistics_inputs_{name}.csv", float_precision="round_trip")
