"""Tests for pipeline.statistics.paired against R reference values.

Fixtures come from ``Rscript tests/fixtures/r/paired_tests.R`` (R 4.2.2); R is
not needed to run these tests.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.statistics.paired import (
    COLUMNS,
    paired_t,
    paired_tests,
    wilcoxon_signed_rank,
)

FIXTURES = Path(__file__).parent / "fixtures" / "r"


def approx(x):
    return pytest.approx(x, rel=1e-9, abs=1e-12)


def _load():
    # round_trip: pandas' default float parser is not correctly rounded, and the tie
    # structure of the differences depends on the last bit.
    inputs = pd.read_csv(FIXTURES / "paired_inputs.csv", float_precision="round_trip")
    expected = pd.read_csv(
        FIXTURES / "paired_expected.csv", float_precision="round_trip"
    ).set_index("dataset")
    return inputs, expected


INPUTS, EXPECTED = _load()
DATASETS = list(EXPECTED.index)


def _data(name):
    d = INPUTS[INPUTS["dataset"] == name]
    return d["pre"].to_numpy(), d["post"].to_numpy()


@pytest.fixture(params=DATASETS)
def dataset(request):
    """Each R reference dataset in turn: its pre and post values, and R's results for it."""
    pre, post = _data(request.param)
    return pre, post, EXPECTED.loc[request.param]


def test_fixtures_cover_the_planned_cases():
    assert set(DATASETS) >= {
        "sleep",
        "small_exact_n10",
        "zeros_n12",
        "continuous_n60",
        "house_brackmann_n40",
        "boundary_n49",
        "boundary_n50",
    }
    # The exact/approximate switch sits between n = 49 and n = 50.
    assert bool(EXPECTED.loc["boundary_n49", "wilcoxon_exact"])
    assert not bool(EXPECTED.loc["boundary_n50", "wilcoxon_exact"])
    assert not bool(EXPECTED.loc["sleep", "wilcoxon_exact"])  # a tie and a zero


def test_paired_t_matches_r(dataset):
    # Expected: R t.test(post, pre, paired = TRUE); sd_diff is sd(post - pre).
    pre, post, exp = dataset
    res = paired_t(pre, post)
    assert res.n == exp["n"]
    assert res.note == ""
    for field, col in [
        ("mean_diff", "mean_diff"),
        ("sd_diff", "sd_diff"),
        ("ci_low", "ci_low"),
        ("ci_high", "ci_high"),
        ("t", "t"),
        ("df", "df"),
        ("p", "p_t"),
    ]:
        assert getattr(res, field) == approx(exp[col]), field


def test_wilcoxon_matches_r(dataset):
    # Expected: R wilcox.test(post, pre, paired = TRUE) with all defaults
    # (exact = NULL, correct = TRUE); wilcoxon_exact = "exact" in $method.
    pre, post, exp = dataset
    res = wilcoxon_signed_rank(pre, post)
    assert res.v == approx(exp["wilcoxon_v"])
    assert res.p == approx(exp["p_wilcoxon"])
    assert (res.method == "exact") == bool(exp["wilcoxon_exact"])
    assert res.n_used == int(np.sum(post - pre != 0))


def test_hand_worked_exact():
    # d = 1, 2, -3, 4: |d| ranks 1, 2, 3, 4; V = 1 + 2 + 4 = 7.
    # Subsets of {1,2,3,4} by sum 0..10: 1,1,1,2,2,2,2,2,1,1,1 (16 in all).
    # P(V >= 7) = (2+1+1+1)/16 = 5/16, so p = 2 * 5/16 = 0.625 (R agrees).
    res = wilcoxon_signed_rank([0, 0, 0, 0], [1, 2, -3, 4])
    assert (res.v, res.p, res.method, res.n_used) == (7.0, 0.625, "exact", 4)
    # t: mean 1, var = (0 + 1 + 16 + 9)/3 = 26/3, se = sqrt(26/12),
    # t = 1/sqrt(26/12) = 0.6793662..., df = 3.
    t = paired_t([0, 0, 0, 0], [1, 2, -3, 4])
    assert t.t == approx(1 / math.sqrt(26 / 12))
    assert t.df == 3


def test_hand_worked_ties_normal_approx():
    # d = 1, 1, -2, 3: ranks 1.5, 1.5, 3, 4; V = 1.5 + 1.5 + 4 = 7; ties -> normal.
    # E(V) = 4*5/4 = 5; Var = 4*5*9/24 - (2^3 - 2)/48 = 7.5 - 0.125 = 7.375.
    # z = (7 - 5 - 0.5)/sqrt(7.375); p = 2 * (1 - Phi(z)) = erfc(z / sqrt(2)).
    res = wilcoxon_signed_rank([0, 0, 0, 0], [1, 1, -2, 3])
    z = 1.5 / math.sqrt(7.375)
    assert res.v == 7.0
    assert res.method == "normal approximation with continuity correction"
    assert res.p == approx(math.erfc(z / math.sqrt(2)))
    assert res.p == approx(0.58071216218902522)  # R, same call


def test_zero_pairs():
    t = paired_t([], [])
    w = wilcoxon_signed_rank([], [])
    assert t.n == 0 and math.isnan(t.p) and "no complete pairs" in t.note
    assert math.isnan(w.v) and math.isnan(w.p) and w.n_used == 0
    assert "no complete pairs" in w.note


def test_missing_values_are_dropped():
    res = paired_t([1, np.nan, 2, 4], [3, 5, np.nan, 5])
    assert res.n == 2


def test_one_pair():
    # R: t.test errors "not enough 'x' observations"; wilcox.test gives V = 1,
    # exact p = 1 (one non-zero difference).
    t = paired_t([1], [3])
    assert t.n == 1 and t.mean_diff == 2 and math.isnan(t.sd_diff)
    assert math.isnan(t.t) and math.isnan(t.p) and "fewer than 2 pairs" in t.note
    w = wilcoxon_signed_rank([1], [3])
    assert (w.v, w.p, w.method, w.note) == (1.0, 1.0, "exact", "")


def test_two_pairs():
    # R: t.test(c(3, 3), c(1, 2), paired = TRUE) -> t = 3, df = 1,
    # p = 0.20483276469913345, CI -4.8531023680873471, 7.8531023680873471;
    # wilcox.test(...) -> V = 3, exact p = 0.5.
    t = paired_t([1, 2], [3, 3])
    assert (t.t, t.df) == (3.0, 1.0)
    assert t.p == approx(0.20483276469913345)
    assert (t.ci_low, t.ci_high) == (approx(-4.8531023680873471), approx(7.8531023680873471))
    w = wilcoxon_signed_rank([1, 2], [3, 3])
    assert (w.v, w.p, w.method) == (3.0, 0.5, "exact")


def test_all_differences_zero():
    # R: wilcox.test gives V = 0, p = NaN (n = 0 after dropping zeros, normal
    # branch, 0/0); t.test gives t = NaN, p = NaN, CI NaN, df = 2.
    w = wilcoxon_signed_rank([1, 2, 3], [1, 2, 3])
    assert w.v == 0.0 and math.isnan(w.p) and w.n_used == 0
    assert "all differences zero" in w.note
    t = paired_t([1, 2, 3], [1, 2, 3])
    assert t.mean_diff == 0 and t.sd_diff == 0 and t.df == 2
    assert math.isnan(t.t) and math.isnan(t.p) and math.isnan(t.ci_low)
    assert "all differences zero" in t.note


def test_constant_nonzero_differences():
    # R: t.test errors "data are essentially constant"; wilcox.test: all |d|
    # tied -> normal approx, V = 6, p = 0.14891467317876567.
    t = paired_t([1, 2, 3], [2, 3, 4])
    assert t.mean_diff == 1 and math.isnan(t.t) and math.isnan(t.p)
    assert "differences constant" in t.note
    w = wilcoxon_signed_rank([1, 2, 3], [2, 3, 4])
    assert w.v == 6.0 and w.p == approx(0.14891467317876567) and w.note == ""


def test_zero_with_one_nonzero_difference():
    # R: d = 0, 1 -> zero dropped, n = 1, zeros force normal approx:
    # z = (1 - 0.5 - 0.5)/0.5 = 0, p = 1.
    w = wilcoxon_signed_rank([1, 2], [1, 3])
    assert (w.v, w.p, w.n_used) == (1.0, 1.0, 1)
    assert w.method == "normal approximation with continuity correction"


def _long(name, outcome, score):
    pre, post = _data(name)
    return pd.DataFrame(
        {
            "outcome": outcome,
            "score": score,
            "subject": range(len(pre)),
            "pre_value": pre,
            "post_value": post,
        }
    )


def test_paired_tests_table():
    pairs = pd.concat(
        [
            _long("house_brackmann_n40", "facial_grade", "house_brackmann"),
            _long("sleep", "smile", "excursion_mm"),
            _long("small_exact_n10", "facial_grade", "sunnybrook"),
            pd.DataFrame(
                {
                    "outcome": "smile",
                    "score": "one_pair",
                    "subject": [1, 2],
                    "pre_value": [1.0, np.nan],
                    "post_value": [2.0, 3.0],
                }
            ),
            pd.DataFrame(
                {
                    "outcome": "smile",
                    "score": "empty",
                    "subject": [1],
                    "pre_value": [np.nan],
                    "post_value": [2.0],
                }
            ),
        ],
        ignore_index=True,
    )
    out = paired_tests(pairs, pre_visit="pre-op", post_visit="12 months")
    assert list(out.columns) == COLUMNS
    assert list(zip(out["outcome"], out["score"])) == [
        ("facial_grade", "house_brackmann"),
        ("facial_grade", "sunnybrook"),
        ("smile", "excursion_mm"),
        ("smile", "one_pair"),
        ("smile", "empty"),
    ]
    assert (out["group"] == "all").all()
    assert (out["pre_visit"] == "pre-op").all() and (out["post_visit"] == "12 months").all()
    assert list(out["n_pairs"]) == [40, 10, 10, 1, 0]
    assert (out["test_used"] == "Wilcoxon signed-rank").all()

    row = out.iloc[2]
    exp = EXPECTED.loc["sleep"]
    pre, post = _data("sleep")
    assert row["pre_mean"] == approx(pre.mean()) and row["post_sd"] == approx(post.std(ddof=1))
    assert row["p_used"] == row["p_wilcoxon"] == approx(exp["p_wilcoxon"])
    assert row["p_t"] == approx(exp["p_t"]) and row["ci_low"] == approx(exp["ci_low"])
    assert row["wilcoxon_method"] == "normal approximation with continuity correction"
    assert row["note"] == ""
    # The Hodges-Lehmann interval beside the Wilcoxon P (hodges_lehmann_ci.R: sleep at 0.95).
    hl = HL_EXPECTED[(HL_EXPECTED["dataset"] == "sleep") & (HL_EXPECTED["conf_level"] == 0.95)]
    assert row["hl_ci_low"] == hl_approx(hl["ci_low"].item())
    assert row["hl_ci_high"] == hl_approx(hl["ci_high"].item())
    assert row["hl_conf_level"] == 0.95
    assert out.iloc[1]["wilcoxon_method"] == "exact"
    assert "fewer than 2 pairs" in out.iloc[3]["note"]
    assert "no complete pairs" in out.iloc[4]["note"] and math.isnan(out.iloc[4]["p_used"])


def test_paired_tests_test_selection():
    pairs = pd.concat([_long("sleep", "a", "s1"), _long("zeros_n12", "b", "s2")], ignore_index=True)
    out = paired_tests(pairs, test="t")
    assert (out["test_used"] == "paired t").all()
    assert (out["p_used"] == out["p_t"]).all()

    out = paired_tests(pairs, test={"b": "t"})  # "a" falls back to Wilcoxon
    assert list(out["test_used"]) == ["Wilcoxon signed-rank", "paired t"]
    assert out.iloc[0]["p_used"] == out.iloc[0]["p_wilcoxon"]
    assert out.iloc[1]["p_used"] == approx(EXPECTED.loc["zeros_n12", "p_t"])

    with pytest.raises(ValueError):
        paired_tests(pairs, test="anova")


def test_paired_tests_empty_input():
    empty = pd.DataFrame(columns=["outcome", "score", "subject", "pre_value", "post_value"])
    out = paired_tests(empty)
    assert list(out.columns) == COLUMNS and len(out) == 0


# --- Effect sizes, Hodges-Lehmann, sign test, Shapiro-Wilk, multiplicity -------------------
# Expected values: paired_expected.csv from tests/fixtures/r/paired_tests.R (R 4.2.2), which
# also covers MASS::anorexia (FT, CBT) and MASS::immer.

from pipeline.statistics.multiplicity import adjust_p  # noqa: E402
from pipeline.statistics.paired import (  # noqa: E402
    choose_test,
    effect_sizes,
    hodges_lehmann,
    shapiro_wilk,
    sign_test,
)


def r6(x):
    return pytest.approx(x, rel=1e-6, abs=1e-12)


def test_hodges_lehmann_matches_r(dataset):
    # R: wilcox.test(post, pre, paired = TRUE, conf.int = TRUE)$estimate; in the normal
    # branch this is uniroot's answer, reproduced step for step.
    pre, post, exp = dataset
    assert hodges_lehmann(pre, post).estimate == approx(exp["hodges_lehmann"])


# The interval: tests/fixtures/r/hodges_lehmann_ci.R (R 4.2.2) on the datasets above and its
# own (tiny exact samples, ties and zeros, graded scores of 3000 pairs, 400 continuous pairs,
# levels 0.90 / 0.95 / 0.99).
HL_INPUTS = pd.concat(
    [
        INPUTS,
        pd.read_csv(FIXTURES / "hodges_lehmann_ci_inputs.csv", float_precision="round_trip"),
    ],
    ignore_index=True,
)
HL_EXPECTED = pd.read_csv(FIXTURES / "hodges_lehmann_ci_expected.csv", float_precision="round_trip")


def hl_approx(x):
    # The limits are R's exact order statistics or R's uniroot(tol = 1e-4) answer; the search is
    # repeated step for step with R's own qnorm, so the two agree to the last bit (0 difference
    # seen; the margin allows libm's log and sqrt elsewhere). A search taking another path would
    # stop elsewhere within the 1e-4 tolerance and fail this.
    return pytest.approx(x, rel=1e-12, abs=1e-11, nan_ok=True)


@pytest.mark.parametrize(
    "case", list(HL_EXPECTED.itertuples(index=False)), ids=lambda c: f"{c.dataset}-{c.conf_level}"
)
def test_hodges_lehmann_interval_matches_r(case):
    d = HL_INPUTS[HL_INPUTS["dataset"] == case.dataset]
    pre, post = d["pre"].to_numpy(), d["post"].to_numpy()
    assert ((post - pre) != 0).sum() == case.n_nonzero
    res = hodges_lehmann(pre, post, case.conf_level)
    assert res.estimate == hl_approx(case.estimate)
    assert res.ci_low == hl_approx(case.ci_low) and res.ci_high == hl_approx(case.ci_high)
    # The level R attaches to the interval, lowered when the requested one is not achievable.
    assert res.conf_level == pytest.approx(case.achieved_conf_level, abs=1e-15)
    # A lowered level (or no interval) is explained in the note.
    assert bool(res.note) == (case.achieved_conf_level < case.conf_level)


def test_hodges_lehmann_fixtures_cover_the_cases():
    cases = HL_EXPECTED.set_index(["dataset", "conf_level"])
    exact = cases[cases["exact"]]
    normal = cases[~cases["exact"]]
    # Exact with and without a lowered level; normal approximation with ties/zeros, with n >= 50
    # and no ties, and registry-sized.
    assert (exact["achieved_conf_level"] < 0.9).any() and (exact["n_nonzero"] >= 25).any()
    assert (normal["n_nonzero"] < 50).any() and (normal["n_nonzero"] >= 400).any()
    assert (normal["achieved_conf_level"] == 0).any()  # alpha doubled to 1: a single point
    assert set(HL_EXPECTED["conf_level"].round(2)) == {0.9, 0.95, 0.99}


def test_qsignrank_matches_r():
    from pipeline.statistics.paired import _qsignrank, _signrank_counts

    # R: qsignrank(p, n) and psignrank(max(q, 1) - 1, n), tests/fixtures/r/hodges_lehmann_ci.R.
    exp = pd.read_csv(FIXTURES / "qsignrank_expected.csv", float_precision="round_trip")
    for r in exp.itertuples():
        assert _qsignrank(r.p, r.n) == r.q
        below = sum(_signrank_counts(r.n)[: max(r.q, 1)]) / 2.0**r.n
        assert below == pytest.approx(r.cdf_below, rel=1e-14)


def test_qnorm_is_rs_bit_for_bit():
    from scipy import stats

    from pipeline.statistics.paired import _qnorm

    # R 4.2.2 qnorm(p, lower.tail = ...) at 17 digits (hodges_lehmann_ci.R): the interval's
    # root search depends on the quantile's last bits, so equality, not approx.
    exp = pd.read_csv(FIXTURES / "qnorm_expected.csv", float_precision="round_trip")
    assert len(exp) > 300
    for r in exp.itertuples():
        assert _qnorm(r.p, r.lower_tail) == r.q, (r.p, r.lower_tail)
        scipy = stats.norm.ppf(r.p) if r.lower_tail else stats.norm.isf(r.p)
        assert _qnorm(r.p, r.lower_tail) == pytest.approx(scipy, rel=1e-14, abs=1e-15)


def test_hodges_lehmann_hand_worked():
    # Exact case, differences 1, 2, 4, 8, 16, 32 (n = 6, no ties): the 21 Walsh averages sorted
    # are 1, 1.5, 2, 2.5, 3, 4, 4.5, 5, 6, 8, 8.5, 9, 10, 12, 16, 16.5, 17, 18, 20, 24, 32; the
    # median is the 11th, 8.5. P(V <= 0) = 1/64 < 0.025 <= P(V <= 1) = 2/64, so qsignrank(0.025,
    # 6) = 1 and the interval runs from the 1st to the 21st: the smallest and largest average, a
    # 1 - 2/64 = 96.9% interval (Hollander et al. 2014, section 3.3), level 0.95 kept.
    d = np.array([1.0, 2, 4, 8, 16, 32])
    res = hodges_lehmann(np.zeros(6), d)
    assert (res.estimate, res.ci_low, res.ci_high, res.conf_level) == (8.5, 1.0, 32.0, 0.95)
    # 90%: P(V <= 2) = 3/64 < 0.05 <= P(V <= 3) = 5/64, q = 3: the 3rd and 19th averages.
    res = hodges_lehmann(np.zeros(6), d, 0.90)
    assert (res.ci_low, res.ci_high) == (2.0, 20.0)


def test_effect_sizes_match_r(dataset):
    pre, post, exp = dataset
    es = effect_sizes(pre, post)
    assert es.dz == approx(exp["dz"])
    assert es.dz_ci_low == r6(exp["dz_ci_low"]) and es.dz_ci_high == r6(exp["dz_ci_high"])
    assert es.hedges_g == approx(exp["hedges_g"])
    assert es.rank_biserial == approx(exp["rank_biserial"])


def test_shapiro_and_sign_test_match_r(dataset):
    pre, post, exp = dataset
    w, p, note = shapiro_wilk(post - pre)
    assert w == r6(exp["shapiro_w"]) and p == r6(exp["shapiro_p"]) and note == ""
    pos, neg, sp = sign_test(pre, post)
    assert (pos, neg) == (exp["sign_positive"], exp["sign_negative"])
    assert sp == approx(exp["sign_p"])


def test_p_adjust_matches_r():
    exp = pd.read_csv(FIXTURES / "p_adjust_expected.csv")
    assert adjust_p(exp["p"], "holm") == pytest.approx(exp["holm"].tolist(), rel=1e-12)
    assert adjust_p(exp["p"], "bh") == pytest.approx(exp["bh"].tolist(), rel=1e-12)
    # NaN stays NaN and is not counted in the family (R: p.adjust(c(.01, NA, .04), "holm")
    # = 0.02, NA, 0.04).
    out = adjust_p([0.01, np.nan, 0.04], "holm")
    assert out[0] == approx(0.02) and math.isnan(out[1]) and out[2] == approx(0.04)


def test_degenerate_effect_sizes_are_explained():
    one = effect_sizes([1], [3])
    assert math.isnan(one.dz) and "fewer than 2 pairs" in one.note and one.rank_biserial == 1
    const = effect_sizes([1, 2, 3], [2, 3, 4])
    assert math.isnan(const.dz) and "constant" in const.note
    zero = effect_sizes([1, 2], [1, 2])
    assert math.isnan(zero.rank_biserial) and "rank-biserial undefined" in zero.note
    # Two pairs: d_z and its interval exist, Hedges' J(1) does not.
    two = effect_sizes([1, 2], [3, 3])
    assert math.isfinite(two.dz_ci_low) and math.isnan(two.hedges_g) and "Hedges" in two.note
    # Hodges-Lehmann: all zero -> NaN with a note; equal non-zero differences with a zero
    # -> R's midrange (wilcox.test(c(1, 2, 3), c(0, 1, 3), paired = TRUE, conf.int = TRUE)
    # gives midrange 1).
    zero = hodges_lehmann([1, 2], [1, 2])
    assert (
        math.isnan(zero.estimate)
        and math.isnan(zero.ci_low)
        and "all differences zero" in zero.note
    )
    mid = hodges_lehmann([0, 1, 3], [1, 2, 3])
    assert mid.estimate == 1.0 and "midrange" in mid.note
    assert math.isnan(mid.ci_low) and math.isnan(mid.ci_high) and mid.conf_level == 0
    assert shapiro_wilk([1, 2])[2].startswith("fewer than 3")
    assert shapiro_wilk([1, 1, 1, 1])[2].startswith("all differences identical")
    assert sign_test([1, 2], [1, 2]) == (0, 0, 1.0)


def test_auto_rule():
    assert choose_test("auto", 0.5, 10) == "t"
    assert choose_test("auto", 0.01, 10) == "wilcoxon"
    assert choose_test("auto", float("nan"), 2) == "wilcoxon"
    assert choose_test("wilcoxon", 0.9, 10) == "wilcoxon"


def test_paired_tests_groups_and_multiplicity():
    pairs = pd.concat(
        [
            _long("sleep", "a", "s").assign(group="all"),
            _long("zeros_n12", "b", "s").assign(group="all"),
            _long("small_exact_n10", "c", "s").assign(group="all"),
            _long("sleep", "b", "s").assign(group="sex: F"),
        ],
        ignore_index=True,
    )
    out = paired_tests(pairs, test="t", primary="a", multiplicity="holm")
    assert list(out.columns) == COLUMNS
    assert list(zip(out["outcome"], out["group"])) == [
        ("a", "all"),
        ("b", "all"),
        ("b", "sex: F"),
        ("c", "all"),
    ]
    a, b, bf, c = (out.iloc[i] for i in range(4))
    assert a["p_adj"] == a["p_used"] and a["p_adj_method"] == "none (primary outcome)"
    expected = adjust_p([b["p_used"], c["p_used"]], "holm")
    assert [b["p_adj"], c["p_adj"]] == list(expected)
    assert b["p_adj_method"] == "Holm over 2 secondary outcomes"
    assert bf["p_adj"] == bf["p_used"]  # alone in its group's family


# --- Library calls the hand-written code stands in for -------------------------------------
# Where a routine is written out for speed (see its docstring for the measurements), it must give
# the library call's numbers: on R's fixtures and on seeded random data.

from scipy import stats  # noqa: E402
from statsmodels.stats.multitest import multipletests  # noqa: E402


def _random_families(seed=11, count=60):
    """Families of 1 to 40 p-values, with ties, ones, tiny values and NaN."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        m = int(rng.integers(1, 41))
        p = rng.random(m) ** rng.choice([1.0, 4.0, 12.0])
        p[rng.random(m) < 0.1] = 1.0
        if m > 2:
            p[1] = p[0]  # a tie
        p[rng.random(m) < 0.1] = np.nan
        yield p


def test_holm_is_multipletests_bit_for_bit(monkeypatch):
    # Holm is written out (statsmodels' Holm branch runs gc.collect() on every call); the
    # numbers must be multipletests(method="holm")'s exactly, NaN left out of the family.
    # The reference's collections are skipped here: in a test process' large heap they took
    # 0.4 s a call, and they change no number.
    import gc

    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    families = [
        pd.read_csv(FIXTURES / "p_adjust_expected.csv")["p"].to_numpy(),
        *_random_families(),
    ]
    for p in families:
        ok = ~np.isnan(p)
        if not ok.any():
            continue
        ours = adjust_p(p, "holm")
        assert np.isnan(ours[~ok]).all()
        assert ours[ok].tolist() == multipletests(p[ok], method="holm")[1].tolist()


def _scipy_wilcoxon_p(pre, post):
    d = np.asarray(post, float) - np.asarray(pre, float)
    d = d[~np.isnan(d)]
    return stats.wilcoxon(d, zero_method="wilcox", correction=True, method="asymptotic").pvalue


def _random_pairs(seed=5, count=400):
    """Paired samples of 2 to 3,000 on graded (ties, zeros) and continuous scales."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        n = int(rng.choice([2, 5, 20, 49, 50, 60, 300, 3000]))
        pre = rng.integers(0, 100, n).astype(float)
        if i % 3 == 0:
            post = pre + rng.normal(rng.normal(0, 3), 10, n)  # continuous: no ties, no zeros
        else:
            post = pre + rng.integers(-8, 9 + i % 7, n)  # graded: ties and zeros
        yield pre, post


def test_wilcoxon_normal_approximation_is_scipy():
    # The normal branch is written out on the distinct differences (speed); scipy.stats.wilcoxon
    # with R's corrections must give the same P to rounding: the z of both agree to a few ulps,
    # and a tail probability's relative error grows like z^2 times z's.
    cases = [_data(name) for name in DATASETS] + list(_random_pairs())
    checked = 0
    for pre, post in cases:
        res = wilcoxon_signed_rank(pre, post)
        if res.method != "normal approximation with continuity correction" or res.n_used == 0:
            continue
        if math.isnan(res.p):
            continue
        assert res.p == pytest.approx(_scipy_wilcoxon_p(pre, post), rel=1e-12, abs=1e-300)
        checked += 1
    assert checked >= 250


def _psignrank_two_sided(v: int, n: int) -> float:
    """R's exact two-sided signed-rank p-value from exact integer counts of the 2**n sign
    patterns (subset sums of 1..n): ``min(1, 2 * min(P(V' <= v), P(V' >= v)))``."""
    counts = [1] + [0] * (n * (n + 1) // 2)
    top = 0
    for k in range(1, n + 1):
        top += k
        for s in range(top, k - 1, -1):
            counts[s] += counts[s - k]
    return min(1.0, 2 * min(sum(counts[: v + 1]), sum(counts[v:])) / 2**n)


def test_wilcoxon_exact_is_the_exact_distribution():
    # The exact branch is scipy's exact null distribution. Below 50 differences its pmf values
    # and their partial sums are multiples of 2**-n under 1, so exact in doubles: the same
    # number as the ratio of exact integer counts (R's psignrank), bit for bit.
    checked = 0
    for pre, post in [_data(name) for name in DATASETS] + list(_random_pairs(seed=9, count=200)):
        res = wilcoxon_signed_rank(pre, post)
        if res.method == "exact":
            assert res.p == _psignrank_two_sided(int(res.v), res.n_used)
            checked += 1
    assert checked >= 50


def test_few_distinct_differences_are_ranked_in_python_to_the_same_numbers():
    # The signed-rank z the Hodges-Lehmann search evaluates, from Python lists (a few distinct
    # differences) and from numpy arrays: the same double at every shift, including shifts on a
    # value (a zero dropped), halfway between two (ties across zero) and outside the range.
    from pipeline.statistics.paired import _signrank_z_counts

    rng = np.random.default_rng(21)
    for _ in range(200):
        values, counts = np.unique(rng.integers(-6, 7, rng.integers(1, 400)) / 2, True)
        for shift in [*values, *(values[:-1] + np.diff(values) / 2), -9.0, 9.0, 0.3]:
            for correct in (False, True):
                expected = _signrank_z_counts(values, counts, float(shift), correct)
                got = _signrank_z_counts(values.tolist(), counts.tolist(), float(shift), correct)
                assert got == expected or (math.isnan(got) and math.isnan(expected))
