"""Complication rates, duration and resolution against base R (tests/fixtures/r/complications.R):
binom.test's exact interval and quantile(type = 7) at 1e-6 relative, counts exactly."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from r_reference import FIXTURES

from pipeline.statistics.complications import complication_rates

EVENTS = (
    SimpleNamespace(column="weakness", duration="weakness_days", resolved="weakness_resolved"),
    SimpleNamespace(column="revision", duration="", resolved=""),
    SimpleNamespace(column="never", duration="", resolved=""),
    SimpleNamespace(column="always", duration="", resolved=""),
)
COUNTS = [
    "n_patients",
    "n_events",
    "n_duration",
    "n_resolved",
    "n_persistent",
    "n_resolution_unknown",
]
ESTIMATES = [
    "proportion",
    "ci_low",
    "ci_high",
    "duration_median",
    "duration_q1",
    "duration_q3",
    "duration_min",
    "duration_max",
]


def _cohort():
    # As the warehouse stores subjects: text, blank for a missing value.
    raw = pd.read_csv(FIXTURES / "complications_inputs.csv", dtype=str, keep_default_na=False)
    subjects = raw.rename(columns={"subject": "subject"})
    levels = pd.DataFrame({"subject": raw["subject"], "group": "arm: " + raw["arm"]})
    return subjects, levels


@pytest.mark.parametrize("conf_level", [0.95, 0.90])
def test_complications_match_r(conf_level):
    subjects, levels = _cohort()
    got = complication_rates(subjects, EVENTS, levels, ["arm: a", "arm: b"], conf_level=conf_level)
    exp = pd.read_csv(FIXTURES / "complications_expected.csv", float_precision="round_trip")
    exp = exp[np.isclose(exp["conf_level"], conf_level)].reset_index(drop=True)
    assert got[["event", "group"]].values.tolist() == exp[["event", "group"]].values.tolist()
    for column in COUNTS:
        assert got[column].to_numpy(float, na_value=np.nan).tolist() == pytest.approx(
            exp[column].to_numpy(float).tolist(), nan_ok=True
        ), column
    for column in ESTIMATES:
        assert got[column].tolist() == pytest.approx(exp[column].tolist(), rel=1e-6, nan_ok=True), (
            column
        )
    # The ends of the exact interval: k = 0 gives 0, k = n gives 1, as binom.test.
    never = got[got["event"] == "never"]
    always = got[got["event"] == "always"]
    assert (never["ci_low"] == 0).all() and (always["ci_high"] == 1).all()


def test_small_levels_are_not_reported():
    subjects, levels = _cohort()
    # Arm b has 17 patients with weakness recorded: under a minimum of 18 it is left out.
    got = complication_rates(subjects, EVENTS[:1], levels, ["arm: a", "arm: b"], min_cell=18)
    assert got["group"].tolist() == ["all", "arm: a"]


def test_no_patient_recorded_gives_a_note_not_a_proportion():
    subjects = pd.DataFrame({"subject": ["A", "B"], "weakness": ["", ""]})
    event = SimpleNamespace(column="weakness", duration="", resolved="")
    row = complication_rates(subjects, [event]).iloc[0]
    assert row["n_patients"] == 0 and np.isnan(row["proportion"]) and row["note"]


@pytest.mark.parametrize("value", ["-3", "about a week"])
def test_a_duration_that_is_no_number_of_days_is_refused_without_quoting_it(value):
    subjects = pd.DataFrame(
        {"subject": ["A", "B", "C"], "weakness": ["1", "1", "0"], "days": ["12", value, ""]}
    )
    event = SimpleNamespace(column="weakness", duration="days", resolved="")
    with pytest.raises(ValueError, match=r"^1 patient\(s\) have a value in 'days'") as err:
        complication_rates(subjects, [event])
    assert value not in str(err.value)
