"""Time to event (pipeline/statistics/survival.py) against R's survival package.

Expected values: tests/fixtures/r/survival.R, survival_expected.csv and
survival_curves_expected.csv (survfit with conf.type = "log", quantile.survfit,
summary.survfit at chosen days, survdiff) on survival::lung, survival::veteran, a hand set with
ties and a curve flat at exactly 0.5, and the demo's time to revision.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.statistics.survival import (
    event_free_at,
    event_times,
    kaplan_meier,
    numbers_at_risk,
    time_to_event,
)
from tests.r_reference import FIXTURES

INPUTS = pd.read_csv(
    FIXTURES / "survival_inputs.csv", float_precision="round_trip", dtype={"group": str}
)
EXPECTED = pd.read_csv(
    FIXTURES / "survival_expected.csv", float_precision="round_trip", dtype={"group": str}
)
CURVES = pd.read_csv(
    FIXTURES / "survival_curves_expected.csv", float_precision="round_trip", dtype={"group": str}
)
CASES = {"lung": (365, 730), "lung_90": (365, 730), "veteran": (365, 730), "hand": (2, 4)}
CASES["demo"] = (365, 730)
# R computes every one of these in closed form (no iteration): 1e-6 relative.
RTOL = 1e-6


def _close(ours, theirs, what):
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    assert ours.shape == theirs.shape, what
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=0, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("case", list(CASES))
def test_against_r(case):
    expected = EXPECTED[EXPECTED["case"] == case]
    dataset = expected["dataset"].iloc[0]
    data = INPUTS[INPUTS["dataset"] == dataset]
    level = float(expected["conf_level"].iloc[0])
    result = time_to_event(data, CASES[case], level, by=True)
    assert result.summary["group"].tolist() == ["all", *data["group"].unique()]
    for group in result.summary["group"]:
        r = expected[expected["group"] == group]

        def key(name, r=r):
            return r[r["key"] == name]

        curve = result.curves[result.curves["group"] == group]
        r_curve = CURVES[(CURVES["case"] == case) & (CURVES["group"] == group)]
        for column in ("time", "n_risk", "n_event", "n_censor"):
            assert curve[column].tolist() == r_curve[column].tolist(), (case, group, column)
        for column in ("survival", "std_err", "lower", "upper"):
            _close(curve[column], r_curve[column], f"{case} {group} {column}")
        row = result.summary[result.summary["group"] == group].iloc[0]
        for column in ("n", "events", "median", "median_lower", "median_upper"):
            _close(row[column], key(column)["value"].iloc[0], f"{case} {group} {column}")
        at = result.at[result.at["group"] == group]
        shown = at[at["survival"].notna()]
        _close(shown["day"], key("at_survival")["time"], f"{case} {group} days")
        for column in ("n_risk", "events", "survival", "lower", "upper"):
            _close(shown[column], key(f"at_{column}")["value"], f"{case} {group} at {column}")
    test = expected[expected["group"] == "by"].set_index("key")["value"]
    row = result.log_rank.iloc[0]
    for column in ("chisq", "df", "p"):
        _close(row[column], test[column], f"{case} log-rank {column}")


def test_median_is_statsmodels_where_the_rules_agree():
    # Where every curve crosses 0.5 (lung, veteran, each group too) the median and its CI are
    # SurvfuncRight.quantile and quantile_ci(method="log"); where a curve is flat at exactly 0.5
    # (the hand set's group b: 5 of 10 events by time 5) R, and median_time, take the midpoint
    # to the next time, statsmodels the next time.
    from statsmodels.duration.survfunc import SurvfuncRight

    from pipeline.statistics.survival import median_time

    for dataset in ("lung", "veteran"):
        data = INPUTS[INPUTS["dataset"] == dataset]
        for _, part in [("all", data), *data.groupby("group")]:
            fit = SurvfuncRight(part["time"].to_numpy(), part["event"].to_numpy())
            with np.errstate(divide="ignore"):  # log(0) where a curve ends at 0
                expected = (fit.quantile(0.5), *fit.quantile_ci(0.5, method="log"))
            ours = median_time(kaplan_meier(part["time"], part["event"]))
            assert ours == pytest.approx(tuple(float(x) for x in expected), rel=1e-12)
    b = INPUTS[(INPUTS["dataset"] == "hand") & (INPUTS["group"] == "b")]
    assert median_time(kaplan_meier(b["time"], b["event"]))[0] == 5.5
    assert SurvfuncRight(b["time"].to_numpy(), b["event"].to_numpy()).quantile(0.5) == 6


def test_day_after_the_last_time_has_no_estimate():
    # Hand-worked: times 1, 2, 3 all events; at day 2 one event-free patient of three remains
    # (2/3 * 1/2 = 1/3), day 5 is after the last time observed.
    curve = kaplan_meier([1, 2, 3], [1, 1, 1])
    at = event_free_at(curve, [2, 5])
    assert at["n_risk"].tolist() == [2, 0] and at["events"].tolist() == [2, 3]
    assert at["survival"].iloc[0] == pytest.approx(1 / 3, rel=1e-12)
    assert np.isnan(at["survival"].iloc[1])
    assert numbers_at_risk([1, 2, 3, 3], [0, 3, 4]).tolist() == [4, 2, 0]


def _subjects(**columns):
    frame = pd.DataFrame(columns, dtype="string")
    frame.insert(0, "subject", [f"S{i}" for i in range(len(frame))])
    return frame


def test_event_times_censor_at_the_last_visit_and_refuse_what_cannot_be_used():
    subjects = _subjects(event=["1", "0", "0", ""], day=["200", "", "", ""], by=["a"] * 4)
    visits = pd.DataFrame({"subject": ["S0", "S1", "S1", "S2", "S3"], "day": [400, -5, 90, -3, 9]})
    data, left_out = event_times(
        subjects, visits.groupby("subject", as_index=False).max(), "event", "day", by="by"
    )
    # S2 has no visit after surgery, S3 no recorded event: both left out.
    assert left_out == 2
    assert data[["time", "event"]].to_numpy().tolist() == [[200, 1], [90, 0]]
    last = visits.groupby("subject", as_index=False).max()
    for change, words in (
        ({"day": ["", "", "", ""]}, "1 patients have event = 1 and no day in 'day'"),
        ({"day": ["-4", "", "", ""]}, "before surgery"),
        ({"event": ["2", "0", "0", ""]}, "must hold 1"),
    ):
        bad = subjects.copy()
        for column, values in change.items():
            bad[column] = pd.array(values, dtype="string")
        with pytest.raises(ValueError, match=words) as err:
            event_times(bad, last, "event", "day")
        assert "-4" not in str(err.value)
