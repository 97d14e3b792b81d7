"""Pearson and Spearman against R cor.test (tests/fixtures/r/statistics_families.R)."""

import math

import numpy as np
import pytest
from r_reference import expected, inputs
from scipy import stats

from conftest import pairs_of
from pipeline.statistics.correlation import baseline_change_correlation, pearson, spearman


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
    pairs = pairs_of("o", "s", pre=[1.0, 2, 3, 4, 5], post=[3.0, 3, 4, 4, 5])
    out = baseline_change_correlation(pairs)
    assert list(out["method"]) == ["Pearson", "Spearman"] and (out["estimate"] < 0).all()


def test_spearman_is_scipys_where_r_uses_the_t_approximation():
    # rho is spearmanr's always; the p-value where R takes the t approximation (ties, n > 1290).
    # R computes that t from S rather than from rho, so P agrees to rounding only (3e-13 seen).
    rng = np.random.default_rng(2)
    for i in range(60):
        n = int(rng.choice([5, 20, 300, 1300, 5000]))
        x = rng.integers(0, 10, n).astype(float) if i % 2 else rng.normal(0, 1, n)
        y = x * rng.normal(0, 1) + rng.normal(0, 3, n)
        ours, lib = spearman(x, y), stats.spearmanr(x, y)
        assert ours["estimate"] == pytest.approx(lib.statistic, rel=1e-12)
        if ours["p_method"] == "t approximation":
            assert ours["p"] == pytest.approx(lib.pvalue, rel=1e-12)


def _grouped_pairs():
    """tests/fixtures/r/correlation_groups_inputs.csv as the pipeline's grouped pairs: the whole
    cohort ("all"), then each level in the declared order (toxin, selective, transfer)."""
    import pandas as pd
    from r_reference import FIXTURES

    raw = pd.read_csv(FIXTURES / "correlation_groups_inputs.csv", float_precision="round_trip")
    frame = raw.rename(columns={"pre": "pre_value", "post": "post_value"})
    return pd.concat([frame.assign(group="all"), frame], ignore_index=True).assign(
        outcome="sunnybrook", score="composite"
    )


def _r_groups():
    import pandas as pd
    from r_reference import FIXTURES

    return pd.read_csv(FIXTURES / "correlation_groups_expected.csv", float_precision="round_trip")


def test_correlations_by_group_match_cor_test():
    """Pre vs post and pre vs change within each group: R cor.test (Pearson with its Fisher-z
    interval, Spearman with AS 89 or the t approximation), tests/fixtures/r/correlation_groups.R."""
    from pipeline.statistics.correlation import correlations_by_group

    res = correlations_by_group(_grouped_pairs())
    assert list(res["group"].unique()) == ["all", "toxin", "selective", "transfer"]
    assert list(res["variables"][:4]) == ["pre vs post"] * 2 + ["pre vs change"] * 2
    r = _r_groups()
    r = r[r["method"] != "sign test"]
    checked = 0
    for (group, variables, method), rows in r.groupby(["group", "variables", "method"]):
        ours = res[
            (res["group"] == group) & (res["variables"] == variables) & (res["method"] == method)
        ].iloc[0]
        for key, value in zip(rows["key"], rows["value"]):
            if math.isnan(value):
                assert math.isnan(ours[key]), (group, variables, method, key)
            else:
                assert ours[key] == r6(value), (group, variables, method, key)
            checked += 1
    assert checked == 88
    exact = res[(res["group"] == "selective") & (res["method"] == "Spearman")]
    assert set(exact["p_method"]) == {"AS 89"}


def test_sign_tests_by_group_match_binom_test():
    """binom.test on the positive and negative differences, zeros dropped, per group
    (tests/fixtures/r/correlation_groups.R)."""
    from pipeline.statistics.paired import sign_tests

    res = sign_tests(_grouped_pairs()).set_index("group")
    r = _r_groups()
    r = r[r["method"] == "sign test"]
    for (group,), rows in r.groupby(["group"]):
        for key, value in zip(rows["key"], rows["value"]):
            assert res.loc[group, key] == r6(value), (group, key)
    assert res.loc["toxin", "n_zero"] == 3  # two set equal by the R script, one by rounding
    assert list(res.index) == ["all", "toxin", "selective", "transfer"]


def _long_table_within_groups(pairs, levels, level_order, min_cell):
    """The within-group tables as they were first computed: the complete pairs as group "all",
    then each level's complete pairs sorted by subject (an outcome with fewer than min_cell of
    them dropped), through correlations_by_group and sign_tests, concatenated."""
    import pandas as pd

    from pipeline.statistics.correlation import correlations_by_group
    from pipeline.statistics.paired import sign_tests

    complete = pairs.dropna(subset=["pre_value", "post_value"])
    correlations, signs = [], []
    for level in ["all", *level_order]:
        rows = complete
        if level != "all":
            members = levels.loc[levels["group"] == level, "subject"]
            rows = complete[complete["subject"].isin(members)].sort_values("subject", kind="stable")
            n = rows.groupby(["outcome", "score"], sort=False)["subject"].transform("size")
            rows = rows[n >= min_cell]
        rows = rows.assign(group=level)
        correlations.append(correlations_by_group(rows))
        signs.append(sign_tests(rows))
    return [
        pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
        for frames in (correlations, signs)
    ]


def test_within_group_tests_are_the_long_tables():
    """One pass over the pairs (pipeline.statistics.within_groups) gives the long-table
    version's rows, in its order, bit for bit: subjects out of order, missing values, a level
    without an outcome, an outcome below the small-cell minimum in a level, ties (AS 89 and t)."""
    import pandas as pd

    from pipeline.statistics.within_groups import within_group_tests

    rng = np.random.default_rng(21)
    subjects = [f"s{i:03d}" for i in rng.permutation(60)]
    frames = []
    for outcome, n, graded in (("hb", 60, True), ("sb", 45, False), ("face", 12, False)):
        chosen = subjects[:n] if outcome != "face" else subjects[-n:]
        pre = rng.integers(1, 7, n).astype(float) if graded else rng.normal(50, 10, n)
        post = pre + (rng.integers(-2, 3, n) if graded else rng.normal(5, 8, n))
        post[rng.random(n) < 0.1] = np.nan
        frames.append(
            pd.DataFrame(
                {"outcome": outcome, "score": "total", "subject": chosen, "pre_value": pre}
            ).assign(post_value=post)
        )
    pairs = pd.concat(frames, ignore_index=True).sample(frac=1, random_state=3)
    side = pd.DataFrame({"subject": subjects, "group": "side: " + rng.choice(["L", "R"], 60)})
    # A level of the first 40 subjects alone (face's 12 are the last: not in it).
    early = pd.DataFrame({"subject": subjects[:40], "group": "early: yes"})
    levels = pd.concat([side, early], ignore_index=True)
    order = ["side: R", "side: L", "early: yes"]
    for min_cell in (5, 25):
        ours = within_group_tests(pairs, levels, order, min_cell)
        theirs = _long_table_within_groups(pairs, levels, order, min_cell)
        for a, b in zip(ours, theirs):
            pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert {"AS 89", "t approximation"} <= set(ours[0]["p_method"])


def test_as89_exact_counts_are_the_enumeration():
    """_prho's exact branch (n <= 9) counts in the permutations' statistics enumerated once per
    n and sorted: the same count of S' >= s as comparing with every permutation (R's prho.c)."""
    import itertools

    from pipeline.statistics.correlation import _permutation_statistics

    for n in range(2, 10):
        perms = np.array(list(itertools.permutations(range(1, n + 1))), dtype=np.int64)
        every = ((np.arange(1, n + 1) - perms) ** 2).sum(axis=1)
        ise = _permutation_statistics(n)
        top = n * (n * n - 1) // 3
        for s in [*range(-1, top + 3, 1 if n < 7 else 7), 0.5, top - 0.5]:
            assert ise.size - np.searchsorted(ise, s, side="left") == np.sum(s <= every)
