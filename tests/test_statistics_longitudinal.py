"""Mixed model visit means against R lme4::lmer (REML) on sleepstudy and ChickWeight.

Fixed effects to 1e-6; variance components and standard errors (functions of them) to 1e-4.
"""

import pandas as pd
import pytest

from pipeline.statistics.longitudinal import COLUMNS, visit_means, visit_means_coded
from r_reference import expected, inputs


def _frame(name):
    d = inputs(name)
    return pd.DataFrame({"outcome": name, "score": "value", "subject": d["subject"],
                         "visit": d["day"].astype(str), "day": d["day"], "value": d["value"]})


@pytest.mark.parametrize("method", ["auto", "profiled"])
@pytest.mark.parametrize("name,case,slope", [("sleepstudy", "sleepstudy", False),
                                             ("sleepstudy", "sleepstudy_slope", True),
                                             ("chickweight", "chickweight", False)])
def test_matches_lme4(name, case, slope, method):
    out = visit_means(_frame(name), random_slope=slope, method=method)
    assert out["method"].str.startswith("REML (profiled").all() == (method == "profiled")
    assert list(out.columns) == COLUMNS and out["converged"].all()
    var = expected(f"{case}/variance")
    for k in ("var_intercept", "var_residual") + (("var_slope", "cov_intercept_slope") if slope else ()):
        assert out[k].iloc[0] == pytest.approx(var[k], rel=1e-4), k
    for row in out.itertuples():
        exp = expected(f"{case}/visit_{row.visit}")
        assert row.estimate == pytest.approx(exp["estimate"], rel=1e-6)
        assert row.se == pytest.approx(exp["se"], rel=1e-4)


def test_too_little_data_is_explained():
    f = pd.DataFrame({"outcome": "o", "score": "s", "subject": ["a", "a"], "visit": ["pre", "post"],
                      "day": [0, 100], "value": [1.0, 2.0]})
    out = visit_means(f)
    assert len(out) == 2 and (out["note"] != "").all()


def test_coded_values_give_the_profiled_fit_of_the_frame():
    frame = _frame("chickweight").sample(frac=1.0, random_state=3)  # arrival order does not matter
    codes, labels = pd.factorize(frame["visit"])
    coded = visit_means_coded("chickweight", "value", frame["subject"].to_numpy(), codes, labels,
                              frame["day"].to_numpy(), frame["value"].to_numpy())
    pd.testing.assert_frame_equal(coded, visit_means(_frame("chickweight"), method="profiled"))
