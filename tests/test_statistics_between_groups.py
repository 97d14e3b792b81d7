"""Between-group tests of change against R (tests/fixtures/r/statistics_families.R: t.test,
wilcox.test, oneway.test, kruskal.test, anova(lm) on ToothGrowth, InsectSprays, PlantGrowth and
MASS::anorexia)."""

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.statistics.between_groups import (
    RESULT_COLUMNS, ancova, compare_change, kruskal_wallis, mann_whitney, oneway_anova, welch_anova, welch_t)
from r_reference import expected, inputs


def r6(x):
    return pytest.approx(x, rel=1e-6, abs=1e-12)


def _two(frame, col, a, b):
    return frame.loc[frame[col] == a, "value"].to_numpy(), frame.loc[frame[col] == b, "value"].to_numpy()


def _check_two(case, x, y):
    exp = expected(f"{case}/welch")
    res = welch_t(x, y)
    for k in ("estimate", "ci_low", "ci_high", "statistic", "p"):
        assert res[k] == r6(exp[k]), k
    assert res["df1"] == r6(exp["df"])
    exp = expected(f"{case}/mann_whitney")
    mw = mann_whitney(x, y)
    assert mw["statistic"] == r6(exp["statistic"]) and mw["p"] == r6(exp["p"])
    assert (mw["method"] == "exact") == bool(exp["exact"])


def _check_several(case, v, g):
    for key, fn in (("anova", oneway_anova), ("welch_anova", welch_anova), ("kruskal", kruskal_wallis)):
        exp = expected(f"{case}/{key}")
        res = fn(v, g)
        for k in exp:
            assert res[k] == r6(exp[k]), (key, k)


def test_two_groups_match_r():
    tg = inputs("toothgrowth")
    _check_two("toothgrowth_supp", *_two(tg, "supp", "OJ", "VC"))
    pg = inputs("plantgrowth")
    _check_two("plantgrowth_ctrl_trt2", *_two(pg, "group", "ctrl", "trt2"))
    an = inputs("anorexia").assign(value=lambda d: d["post"] - d["pre"])
    _check_two("anorexia_change_cont_ft", *_two(an, "group", "Cont", "FT"))


def test_several_groups_match_r():
    tg = inputs("toothgrowth")
    _check_several("toothgrowth_dose", tg["value"], tg["dose"])
    for name in ("insectsprays", "plantgrowth"):
        d = inputs(name)
        _check_several(name, d["value"], d["group"])
    an = inputs("anorexia")
    _check_several("anorexia_change", an["post"] - an["pre"], an["group"])


def test_ancova_matches_r():
    an = inputs("anorexia").rename(columns={"pre": "pre_value", "post": "post_value", "group": "group_level"})
    res = ancova(an)
    for k, v in expected("anorexia_ancova").items():
        assert res[k] == r6(v), k
    res = ancova(an[an["group_level"] != "CBT"])
    for k, v in expected("anorexia_ancova_cont_ft").items():
        assert res[k] == r6(v), k


def test_compare_change_table_and_degenerate_groups():
    an = inputs("anorexia").rename(columns={"pre": "pre_value", "post": "post_value", "group": "group_level"})
    out = compare_change(an[an["group_level"] != "CBT"])
    assert list(out.columns) == RESULT_COLUMNS
    assert list(out["test"]) == ["Welch t", "Mann-Whitney", "one-way ANOVA", "Welch ANOVA",
                                 "Kruskal-Wallis", "ANCOVA"]
    assert out.iloc[0]["levels"] == "Cont | FT" and out.iloc[0]["n"] == "26 | 17"
    # A group of one: every test either gives a number or says why not.
    tiny = pd.DataFrame({"pre_value": [1.0, 2, 3, 4], "post_value": [2.0, 2, 5, 4],
                         "group_level": ["a", "a", "a", "b"]})
    out = compare_change(tiny)
    for r in out.itertuples():
        assert not math.isnan(r.p) or r.note, r.test
    # All identical changes: no crash, explained NaN.
    same = pd.DataFrame({"pre_value": [1.0] * 6, "post_value": [2.0] * 6, "group_level": list("aabbcc")})
    out = compare_change(same)
    assert all((not math.isnan(r.p)) or r.note for r in out.itertuples())
    # One level only.
    out = compare_change(same.assign(group_level="a"))
    assert (out["note"] != "").all()


def test_mann_whitney_hand_worked():
    # x = 1, 2; y = 3, 4, 5: W = 0, all 10 arrangements equally likely, P(W <= 0) = 1/10,
    # p = 2/10 (R: wilcox.test(1:2, 3:5)$p.value = 0.2).
    assert mann_whitney([1, 2], [3, 4, 5]) == {"statistic": 0.0, "p": pytest.approx(0.2), "method": "exact",
                                                "note": ""}
    assert np.isnan(welch_t([1.0], [2.0, 3.0])["p"])
