"""Between-group tests of change against R (tests/fixtures/r/statistics_families.R: t.test,
wilcox.test, oneway.test, kruskal.test, anova(lm) on ToothGrowth, InsectSprays, PlantGrowth and
MASS::anorexia)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from r_reference import expected, inputs

from pipeline.statistics.between_groups import (
    RESULT_COLUMNS,
    _full_rank,
    ancova,
    compare_change,
    compare_groupings,
    kruskal_wallis,
    mann_whitney,
    oneway_anova,
    welch_anova,
    welch_t,
)


def r6(x):
    return pytest.approx(x, rel=1e-6, abs=1e-12)


def _two(frame, col, a, b):
    return frame.loc[frame[col] == a, "value"].to_numpy(), frame.loc[
        frame[col] == b, "value"
    ].to_numpy()


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
    for key, fn in (
        ("anova", oneway_anova),
        ("welch_anova", welch_anova),
        ("kruskal", kruskal_wallis),
    ):
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
    an = inputs("anorexia").rename(
        columns={"pre": "pre_value", "post": "post_value", "group": "group_level"}
    )
    res = ancova(an)
    for k, v in expected("anorexia_ancova").items():
        assert res[k] == r6(v), k
    # Two levels: the difference FT minus Cont (Cont, the larger, is the reference) is R's
    # -(Cont minus FT).
    res = ancova(an[an["group_level"] != "CBT"])
    exp = expected("anorexia_ancova_cont_ft")
    for k in ("statistic", "df2", "p"):
        assert res[k] == r6(exp[k]), k
    (ft,) = res["differences"]
    assert (res["reference"], ft["level"]) == ("Cont", "FT")
    assert (ft["estimate"], ft["ci_low"], ft["ci_high"]) == (
        r6(-exp["estimate"]),
        r6(-exp["ci_high"]),
        r6(-exp["ci_low"]),
    )


# tests/fixtures/r/ancova_levels.R (R 4.2.2): lm(post ~ pre [+ months] + relevel(group, ref)),
# confint, summary and anova(reduced, full) = drop1(full, test = "F"). 1e-9: least squares by
# another factorisation (R's QR, lstsq's SVD) agrees to ~1e-12 on these well-conditioned designs.
ANCOVA_INPUTS = pd.read_csv(
    Path(__file__).parent / "fixtures" / "r" / "ancova_levels_inputs.csv",
    float_precision="round_trip",
)
ANCOVA_EXPECTED = pd.read_csv(
    Path(__file__).parent / "fixtures" / "r" / "ancova_levels_expected.csv",
    float_precision="round_trip",
    keep_default_na=False,
)


@pytest.mark.parametrize("case", sorted(set(ANCOVA_EXPECTED["case"])))
def test_ancova_levels_match_r(case):
    exp = ANCOVA_EXPECTED[ANCOVA_EXPECTED["case"] == case]
    first = exp.iloc[0]
    data = ANCOVA_INPUTS[ANCOVA_INPUTS["dataset"] == first["dataset"]].rename(
        columns={"pre": "pre_value", "post": "post_value", "group": "group_level"}
    )
    covariates = tuple(first["covariates"].split())
    # The fixture's references: the largest level and a small one, given (the default, the
    # first level, is tested in test_groups_contrasts.py).
    res = ancova(data, covariates, float(first["conf_level"]), first["reference"])
    assert res["reference"] == first["reference"]
    assert (res["statistic"], res["df1"], res["df2"], res["p"]) == (
        lib(float(first["f"])),
        first["df1"],
        first["df2"],
        lib(float(first["f_p"])),
    )
    got = {d["level"]: d for d in res["differences"]}
    assert sorted(got) == sorted(exp["term"])
    for r in exp.itertuples():
        d = got[r.term]
        assert d["n"] == r.n
        for k in ("estimate", "ci_low", "ci_high", "t", "p"):
            assert d[k] == lib(float(getattr(r, k))), (r.term, k)


def test_compare_change_table_and_degenerate_groups():
    an = inputs("anorexia").rename(
        columns={"pre": "pre_value", "post": "post_value", "group": "group_level"}
    )
    out = compare_change(an[an["group_level"] != "CBT"])
    assert list(out.columns) == RESULT_COLUMNS
    assert list(out["test"]) == [
        "Welch t",
        "Mann-Whitney",
        "one-way ANOVA",
        "Welch ANOVA",
        "Kruskal-Wallis",
        "ANCOVA",
        "ANCOVA difference",
    ]
    # Levels in text order, the first (Cont) the reference: FT minus Cont.
    assert out.iloc[0]["levels"] == "FT | Cont" and out.iloc[0]["n"] == "17 | 26"
    assert out.iloc[-1]["levels"] == "FT | Cont" and out.iloc[-1]["n"] == "17 | 26"
    assert math.isnan(out.iloc[-2]["estimate"])  # the F test's row holds no estimate
    # A group of one: every test either gives a number or says why not.
    tiny = pd.DataFrame(
        {
            "pre_value": [1.0, 2, 3, 4],
            "post_value": [2.0, 2, 5, 4],
            "group_level": ["a", "a", "a", "b"],
        }
    )
    out = compare_change(tiny)
    for r in out.itertuples():
        assert not math.isnan(r.p) or r.note, r.test
    # All identical changes: no crash, explained NaN.
    same = pd.DataFrame(
        {"pre_value": [1.0] * 6, "post_value": [2.0] * 6, "group_level": list("aabbcc")}
    )
    out = compare_change(same)
    assert all((not math.isnan(r.p)) or r.note for r in out.itertuples())
    # One level only.
    out = compare_change(same.assign(group_level="a"))
    assert (out["note"] != "").all()


def test_mann_whitney_hand_worked():
    # x = 1, 2; y = 3, 4, 5: W = 0, all 10 arrangements equally likely, P(W <= 0) = 1/10,
    # p = 2/10 (R: wilcox.test(1:2, 3:5)$p.value = 0.2).
    assert mann_whitney([1, 2], [3, 4, 5]) == {
        "statistic": 0.0,
        "p": pytest.approx(0.2),
        "method": "exact",
        "note": "",
    }
    assert np.isnan(welch_t([1.0], [2.0, 3.0])["p"])


def _cohort(seed=7, n=300):
    """Subjects with tied scores, missing values, three groupings (one level absent from some
    subjects, one single-level) and a numeric and a text covariate."""
    rng = np.random.default_rng(seed)
    pre = rng.integers(0, 8, n).astype(float)
    post = pre + rng.integers(-2, 5, n)
    pre[rng.random(n) < 0.05] = np.nan
    post[rng.random(n) < 0.05] = np.nan
    side = np.where(rng.random(n) < 0.5, "left", "right").astype(object)
    side[rng.random(n) < 0.1] = None
    stage = rng.choice(np.array(["b", "a", "c"], dtype=object), n)
    stage[rng.random(n) < 0.1] = None
    only = np.full(n, "x", dtype=object)
    age = rng.normal(50, 12, n).round()
    age[rng.random(n) < 0.05] = np.nan
    # Numbers, and text only where side is missing: numeric for the side grouping's subjects,
    # dummies (1, 2, 3, north) for the others.
    clinic = rng.integers(1, 4, n).astype(str).astype(object)
    clinic[pd.isna(side) & (rng.random(n) < 0.5)] = "north"
    return pd.DataFrame(
        {
            "pre_value": pre,
            "post_value": post,
            "side": side,
            "stage": stage,
            "only": only,
            "age": age,
            "clinic": clinic,
        }
    )


def _codes(labels):
    """Codes of ``labels`` with the levels in text order (compare_change's order without
    declared levels)."""
    codes, uniques = pd.factorize(pd.Series(labels), sort=True)
    return codes, list(uniques)


def test_compare_groupings_same_numbers_as_each_test_alone():
    d = _cohort()
    covariates = ("age", "clinic")
    out = compare_groupings(
        d["pre_value"],
        d["post_value"],
        {g: _codes(d[g]) for g in ("side", "stage", "only")},
        d[list(covariates)],
    )
    assert list(out.columns) == ["subgroup", *RESULT_COLUMNS]
    for g in ("side", "stage", "only"):
        sub = out[out["subgroup"] == g].reset_index(drop=True)
        # One grouping at a time gives the same table, exactly.
        alone = compare_change(d.rename(columns={g: "group_level"}), covariates)
        pd.testing.assert_frame_equal(sub[RESULT_COLUMNS], alone, check_exact=True)
        # And every number is the separate test's on the subjects with a level and both values.
        s = d.dropna(subset=[g, "pre_value", "post_value"])
        change, groups = s["post_value"] - s["pre_value"], s[g]
        levels = sorted(groups.unique())
        got = sub.set_index("test")
        if len(levels) == 2:
            # The second level minus the first, the reference.
            y, x = (change[groups == lv].to_numpy() for lv in levels)
            wt, mw = welch_t(x, y), mann_whitney(x, y)
            assert [got.loc["Welch t", k] for k in ("estimate", "ci_low", "statistic", "p")] == [
                wt[k] for k in ("estimate", "ci_low", "statistic", "p")
            ]
            assert (got.loc["Mann-Whitney", "statistic"], got.loc["Mann-Whitney", "p"]) == (
                mw["statistic"],
                mw["p"],
            )
        for test, fn in (
            ("one-way ANOVA", oneway_anova),
            ("Welch ANOVA", welch_anova),
            ("Kruskal-Wallis", kruskal_wallis),
        ):
            res = fn(change, groups)
            assert got.loc[test, "statistic"] == res["statistic"] or len(levels) < 2, test
            assert got.loc[test, "p"] == res["p"] or len(levels) < 2, test
        an = ancova(s.rename(columns={g: "group_level"}), covariates)
        assert got.loc["ANCOVA", "statistic"] == an["statistic"] or len(levels) < 2
        # One difference row per level but the reference, the same numbers as ancova's.
        rows = sub[sub["test"] == "ANCOVA difference"]
        assert len(rows) == len(an["differences"]) == max(len(an["n"]) - 1, 0)
        for row, diff in zip(rows.itertuples(), an["differences"]):
            assert row.levels == f"{diff['level']} | {an['reference']}"
            assert row.n == f"{diff['n']} | {an['n'][an['reference']]}"
            assert (row.estimate, row.ci_low, row.ci_high, row.p) == (
                diff["estimate"],
                diff["ci_low"],
                diff["ci_high"],
                diff["p"],
            )
    only = out[out["subgroup"] == "only"]
    assert (only["note"] != "").all() and only["p"].isna().all()
    assert (
        out.loc[out["subgroup"] == "side", "method"].iloc[1]
        == "normal approximation with continuity correction"
    )


def test_compare_groupings_small_groups_exact_mann_whitney_and_empty_grouping():
    pre = np.array([1.0, 2, 3, 4, 5, 6, 7])
    post = pre + np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5])
    codes = np.array([0, 0, 1, 1, 1, -1, 1])
    out = compare_groupings(pre, post, {"g": (codes, ["b", "a"]), "none": (np.full(7, -1), [])})
    g = out[out["subgroup"] == "g"].set_index("test")
    # Levels in the order given, b the reference: a (changes 2.5, 3.5, 4.5, 6.5) against b
    # (0.5, 1.5): W = 8, exact p = 2/15.
    assert g.loc["Mann-Whitney", "method"] == "exact" and g.loc["Mann-Whitney", "statistic"] == 8.0
    assert g.loc["Mann-Whitney", "p"] == pytest.approx(2 / 15)
    assert g.loc["Welch t", "levels"] == "a | b" and g.loc["Welch t", "n"] == "4 | 2"
    none = out[out["subgroup"] == "none"]
    assert list(none["test"]) == ["one-way ANOVA", "Welch ANOVA", "Kruskal-Wallis", "ANCOVA"]
    assert (none["n_total"] == 0).all() and (none["note"] != "").all()


def test_collinear_covariate_and_rank_shortcut():
    d = _cohort(seed=3)
    d["side_again"] = (d["side"] == "right").astype(float).where(d["side"].notna())
    out = compare_change(d.rename(columns={"side": "group_level"}), ("side_again",))
    assert "collinear" in out.set_index("test").loc["ANCOVA", "note"]
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(500), rng.normal(50, 10, 500), rng.normal(0, 1, 500)])
    for scale in (0.0, 1e-15, 1e-12, 1e-9, 1e-6, 1e-3, 1.0):
        # The third column a multiple of the first two, plus noise of the given size.
        x[:, 2] = x[:, 0] * 3 - x[:, 1] * 0.5 + scale * rng.normal(0, 1, 500)
        assert _full_rank(x, x.T @ x) == (np.linalg.matrix_rank(x) == x.shape[1]), scale


# --- The library calls the hand-written tests stand in for -----------------------------------
# compare_groupings computes every test of several groupings from one sort of the changes and
# each group's size, mean and variance (see the module's docstrings for why). Each must give the
# numbers of the scipy or statsmodels call it replaces: on R's data sets and on random samples
# (ties or none, 2 to 4 groups, exact and normal Mann-Whitney). 1e-9: the sums are taken in
# another order, and F and H subtract nearly equal sums (relative error up to ~1e-10 seen where
# F is near 0; ~1e-12 otherwise).


def lib(x):
    return pytest.approx(x, rel=1e-9, abs=1e-12)


def _samples():
    for case, col in (
        ("toothgrowth", "dose"),
        ("toothgrowth", "supp"),
        ("insectsprays", "group"),
        ("plantgrowth", "group"),
    ):
        d = inputs(case)
        yield d["value"].to_numpy(float), d[col].astype(str).to_numpy(), None
    an = inputs("anorexia")
    yield (an["post"] - an["pre"]).to_numpy(float), an["group"].to_numpy(), an
    rng = np.random.default_rng(7)
    for i in range(120):
        k, n = 2 + i % 3, int(rng.choice([6, 10, 30, 49, 60, 500, 3000]))
        codes = rng.integers(0, k, n)
        v = rng.normal(0, 5, n) if i % 2 else rng.integers(-5, 6, n).astype(float)
        v = v + codes * rng.normal(0, 1)
        if np.bincount(codes, minlength=k).min() < 2:
            continue  # a group of one: every test NaN with a note (R stops)
        pre = rng.normal(50, 10, n)
        frame = pd.DataFrame({"pre": pre, "post": pre * 0.5 + v + 25, "group": codes.astype(str)})
        yield v, codes.astype(str), frame


def test_two_group_tests_are_scipys():
    from scipy import stats

    checked = {"exact": 0, "normal approximation with continuity correction": 0}
    for v, g, _ in _samples():
        levels = sorted(set(g))
        if len(levels) != 2:
            continue
        x, y = v[g == levels[0]], v[g == levels[1]]
        ours = welch_t(x, y)
        res = stats.ttest_ind(x, y, equal_var=False)
        ci = res.confidence_interval(0.95)
        assert (ours["statistic"], ours["p"], ours["df1"]) == (
            lib(res.statistic),
            lib(res.pvalue),
            lib(res.df),
        )
        assert (ours["ci_low"], ours["ci_high"]) == (lib(ci.low), lib(ci.high))
        # R's exact / normal switch is ours; scipy is told which.
        mw = mann_whitney(x, y)
        res = stats.mannwhitneyu(
            x, y, use_continuity=True, method="exact" if mw["method"] == "exact" else "asymptotic"
        )
        assert (mw["statistic"], mw["p"]) == (res.statistic, lib(res.pvalue))
        checked[mw["method"]] += 1
    assert min(checked.values()) >= 10


def test_several_group_tests_are_scipys_and_statsmodels():
    from scipy import stats
    from statsmodels.stats.oneway import anova_oneway

    for v, g, _ in _samples():
        xs = [v[g == level] for level in sorted(set(g))]
        res = stats.f_oneway(*xs)
        ours = oneway_anova(v, g)
        assert (ours["statistic"], ours["p"]) == (lib(res.statistic), lib(res.pvalue))
        res = anova_oneway(xs, use_var="unequal", welch_correction=True)
        ours = welch_anova(v, g)
        assert (ours["statistic"], ours["p"], ours["df2"]) == (
            lib(res.statistic),
            lib(res.pvalue),
            lib(res.df[1]),
        )
        res = stats.kruskal(*xs)
        ours = kruskal_wallis(v, g)
        assert (ours["statistic"], ours["p"]) == (lib(res.statistic), lib(res.pvalue))


def test_ancova_is_statsmodels_ols():
    import statsmodels.formula.api as smf
    from statsmodels.regression.linear_model import OLS

    for _, _, frame in _samples():
        if frame is None:
            continue
        levels = sorted(frame["group"].unique())
        ours = ancova(
            frame.rename(columns={"pre": "pre_value", "post": "post_value", "group": "group_level"})
        )
        x0 = np.column_stack([np.ones(len(frame)), frame["pre"]])
        x1 = np.column_stack([x0, *[(frame["group"] == lv).astype(float) for lv in levels[1:]]])
        full = OLS(frame["post"].to_numpy(), x1).fit()
        f, p, df1 = full.compare_f_test(OLS(frame["post"].to_numpy(), x0).fit())
        assert (ours["statistic"], ours["p"], ours["df1"], ours["df2"]) == (
            lib(f),
            lib(p),
            df1,
            full.df_resid,
        )
        # The differences are the coefficients of the formula interface's treatment coding
        # against the reference ancova chose (the largest level).
        ref = ours["reference"]
        fit = smf.ols(f"post ~ pre + C(group, Treatment(reference='{ref}'))", frame).fit()
        ci = fit.conf_int(alpha=0.05)
        for d in ours["differences"]:
            term = f"C(group, Treatment(reference='{ref}'))[T.{d['level']}]"
            assert (d["estimate"], d["ci_low"], d["ci_high"], d["t"], d["p"]) == (
                lib(fit.params[term]),
                lib(ci.loc[term, 0]),
                lib(ci.loc[term, 1]),
                lib(fit.tvalues[term]),
                lib(fit.pvalues[term]),
            )


def test_groupings_share_sorts_and_fits_without_changing_a_number():
    """compare_groupings ranks each Mann-Whitney contrast of three or more levels from the one
    sort of every change, and fits the ANCOVA without the group once for groupings covering the
    same subjects: each contrast is mann_whitney(level, versus) on their values exactly (and
    scipy.stats.mannwhitneyu's P to rounding), a grouping repeated gives its rows again."""
    from scipy import stats

    d = _cohort(seed=11, n=240)
    stage = _codes(d["stage"])
    rank = _codes(d["stage"].map({"a": "low", "b": "mid", "c": "high"}))
    out = compare_groupings(
        d["pre_value"],
        d["post_value"],
        {"stage": stage, "again": stage, "rank": rank},
        d[["age"]],
        all_pairs=["stage", "again"],
    )
    first, again = (out[out["subgroup"] == g].drop(columns="subgroup") for g in ("stage", "again"))
    pd.testing.assert_frame_equal(
        first.reset_index(drop=True), again.reset_index(drop=True), check_exact=True
    )
    change = (d["post_value"] - d["pre_value"]).to_numpy()
    mann = out[(out["subgroup"] == "stage") & (out["test"] == "Mann-Whitney")]
    assert len(mann) == 3
    for levels, w, p in zip(mann["levels"], mann["statistic"], mann["p"]):
        level, versus = levels.split(" | ")
        x, y = (change[(d["stage"] == lv).to_numpy() & ~np.isnan(change)] for lv in (level, versus))
        alone = mann_whitney(x, y)
        assert (w, p) == (alone["statistic"], alone["p"])
        lib = stats.mannwhitneyu(x, y, use_continuity=True, method="asymptotic")
        assert p == pytest.approx(lib.pvalue, rel=1e-12)
