"""Binary and categorical outcomes: paired proportions, McNemar, Bowker, Stuart-Maxwell.

Expected values: ``tests/fixtures/r/binary.R`` (R 4.2 ``mcnemar.test`` with and without
``correct``, ``binom.test`` on the discordant pairs, ``coin::mh_test``, Newcombe's interval and
the Stuart-Maxwell formula written out in R), on the pairs it wrote to ``binary_inputs.csv``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.statistics import binary

R = Path(__file__).parent / "fixtures" / "r"
INPUTS = pd.read_csv(R / "binary_inputs.csv")
EXPECTED = pd.read_csv(R / "binary_expected.csv")
BINARY_CASES = [
    "typical",
    "one_way",
    "balanced",
    "concordant",
    "bentur",
    "cavo",
    "large",
    "all_yes",
]
CATEGORICAL_CASES = ["coffee", "grades4", "kept3", "two"]


def expected(case: str, statistic: str) -> float:
    value = EXPECTED[(EXPECTED["case"] == case) & (EXPECTED["statistic"] == statistic)]["value"]
    assert len(value) == 1, (case, statistic)
    return float(value.iloc[0])


def close(got: float, want: float, rel: float = 1e-6) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return got == pytest.approx(want, rel=rel, abs=1e-12)


def analysed(cases: list[str], kind: str, conf_level: float = 0.95):
    pairs = INPUTS[INPUTS["case"].isin(cases)].rename(
        columns={"case": "outcome", "pre": "pre_value", "post": "post_value"}
    )
    return binary.paired_categorical(
        pairs.assign(score="value"), dict.fromkeys(cases, kind), conf_level
    )


@pytest.mark.parametrize("conf_level", [0.95, 0.90])
def test_binary_outcomes_match_r(conf_level):
    results, cells = analysed(BINARY_CASES, binary.BINARY, conf_level)
    assert results["outcome"].tolist() == BINARY_CASES
    for row in results.itertuples():
        for column in (
            "mcnemar_chi2",
            "mcnemar_p",
            "mcnemar_chi2_uncorrected",
            "mcnemar_p_uncorrected",
            "mcnemar_exact_p",
        ):
            assert close(getattr(row, column), expected(row.outcome, column)), (row.outcome, column)
        level = f"{conf_level:g}"
        for column in ("diff", "diff_ci_low", "diff_ci_high"):
            want = expected(row.outcome, f"{column}_{level}")
            assert close(getattr(row, column), want), (row.outcome, column)
        assert row.p_used == row.mcnemar_exact_p or math.isnan(row.mcnemar_exact_p)
        assert row.test_used == "exact McNemar"
    # The counts, checked by hand from the script's table of a, b, c, d: typical = 5, 3, 12, 20.
    typical = results.iloc[0]
    assert (typical.n_pairs, typical.n_pre_yes, typical.n_post_yes) == (40, 8, 17)
    assert (typical.n_yes_no, typical.n_no_yes) == (3, 12)
    assert typical.prop_pre == 8 / 40 and typical.prop_post == 17 / 40
    table = cells[cells["outcome"] == "typical"].set_index(["pre_category", "post_category"])["n"]
    assert table.to_dict() == {(0, 0): 20, (0, 1): 12, (1, 0): 3, (1, 1): 5}
    # Fagerland, Lydersen & Laake (2017), section 8: Cavo et al. (2012), before - after
    # -0.0621 (95% CI -0.1186 to -0.0046), so after - before 0.0621 (0.0046 to 0.1186).
    if conf_level == 0.95:
        cavo = results.set_index("outcome").loc["cavo"]
        got = [round(cavo[c], 4) for c in ("diff", "diff_ci_low", "diff_ci_high")]
        assert got == [0.0621, 0.0046, 0.1186]
    # Every patient yes at both visits: the table still has its 0 row and column.
    assert results.iloc[-1]["categories"] == "0 1"
    assert "no patient changed" in results.set_index("outcome").loc["concordant", "note"]


def test_categorical_outcomes_match_r():
    results, cells = analysed(CATEGORICAL_CASES, binary.CATEGORICAL)
    for row in results.itertuples():
        for column in ("chi2", "df", "p"):
            got = getattr(row, f"stuart_maxwell_{column}")
            # coin::mh_test and the formula written out in R agree with each other ...
            assert close(got, expected(row.outcome, f"stuart_maxwell_{column}")), row.outcome
            assert close(got, expected(row.outcome, f"stuart_maxwell_{column}_hand"))
            # ... and Bowker with R's mcnemar.test wherever R defines it (every cell pair
            # informative; the others are left out here, with a note: test_statistics_ordinal).
            want = expected(row.outcome, f"bowker_{column}")
            if not math.isnan(expected(row.outcome, "bowker_p")):
                assert close(getattr(row, f"bowker_{column}"), want), row.outcome
        assert row.p_used == row.stuart_maxwell_p
        assert row.test_used == "Stuart-Maxwell marginal homogeneity"
        assert math.isnan(row.n_pre_yes) and math.isnan(row.mcnemar_exact_p)
    # Agresti (2002) section 10.3.1 reports 12.29, df 4 for the coffee table.
    coffee = results.set_index("outcome").loc["coffee"]
    assert round(coffee["stuart_maxwell_chi2"], 2) == 12.29 and coffee["stuart_maxwell_df"] == 4
    assert "1 category" in results.set_index("outcome").loc["kept3", "note"]
    assert cells[cells["outcome"] == "coffee"]["n"].sum() == coffee["n_pairs"] == 541
    # Two categories: Stuart-Maxwell is McNemar without the correction (R: 5.4 for b=3, c=12).
    two = results.set_index("outcome").loc["two"]
    assert two["stuart_maxwell_chi2"] == pytest.approx((3 - 12) ** 2 / 15, rel=1e-12)


def test_outcome_without_pairs_and_without_changes():
    pairs = pd.DataFrame(
        {
            "outcome": ["none", "same", "same"],
            "score": "value",
            "pre_value": [np.nan, 2.0, 3.0],
            "post_value": [1.0, 2.0, 3.0],
        }
    )
    results, _ = binary.paired_categorical(
        pairs, {"none": binary.BINARY, "same": binary.CATEGORICAL}
    )
    none, same = results.iloc[0], results.iloc[1]
    assert none["n_pairs"] == 0 and math.isnan(none["p_used"]) and none["note"].startswith("no")
    assert same["n_pairs"] == 2 and math.isnan(same["stuart_maxwell_p"])
    assert "no patient changed category" in same["note"]


# --------------------------------------------------------------------------- a study

EXAMPLES = Path(__file__).parent.parent / "docs" / "examples"


def _tables_of(example: str, tmp_path: Path) -> Path:
    """The example study's steps up to the publication tables (no figures, no report)."""
    import duckdb

    from pipeline.spec.study import load_study
    from small_study import DATA_STEPS, run_steps

    study = load_study(EXAMPLES / example)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        run_steps(con, study, tmp_path / "reports", DATA_STEPS)
    return tmp_path / "reports" / study.name / "tables"


def test_binary_example_gets_mcnemar_and_no_score_statistics(tmp_path):
    tables = _tables_of("binary_outcome", tmp_path)
    paired = pd.read_csv(tables / "paired_tests.csv")
    paired = paired[paired["group"] == "all"].set_index("outcome")  # not the subgroup levels
    tested = pd.read_csv(tables / "paired_categorical.csv").set_index("outcome")
    eye = tested.loc["eye_closure"]
    # docs/examples/binary_outcome/visits.csv: 7 of 23 patients closed the eye before, 18
    # after; none lost closure, 11 gained it (S24 has no value at 12 months).
    assert (eye.n_pairs, eye.n_pre_yes, eye.n_post_yes, eye.n_yes_no, eye.n_no_yes) == (
        23,
        7,
        18,
        0,
        11,
    )
    assert eye.mcnemar_exact_p == pytest.approx(2 * 0.5**11, rel=1e-12)  # binom.test(0, 11)
    assert paired.loc["eye_closure", "p_used"] == eye.mcnemar_exact_p
    assert paired.loc["smile", "p_used"] == tested.loc["smile", "stuart_maxwell_p"]
    assert paired.loc["eye_closure", "test_used"] == "exact McNemar"
    score_only = ["t", "p_t", "p_wilcoxon", "hodges_lehmann", "shapiro_p", "dz", "pre_mean"]
    assert paired.loc[["eye_closure", "smile"], score_only].isna().all().all()
    assert paired.loc["house_brackmann_observer", score_only].notna().all()
    # Holm over the two secondary outcomes, eye closure the primary outcome.
    secondary = paired.loc[["smile", "house_brackmann_observer"], "p_used"].sort_values()
    assert paired.loc[secondary.index[0], "p_adj"] == pytest.approx(2 * secondary.iloc[0])
    # Neither the mixed model, the change analyses nor the items see them.
    for name in ("visit_estimates", "correlation", "change_direction", "between_groups"):
        frame = pd.read_csv(tables / f"{name}.csv")
        assert not frame["outcome"].isin(["eye_closure", "smile"]).any(), name
    # Table 2: No. (%) before and after, the difference with its CI, the McNemar P.
    body = pd.read_csv(tables / "table_2.csv", dtype=str, keep_default_na=False)
    row = body[body["Outcome"].str.startswith("Complete eye closure")].iloc[0]
    assert row["Before, mean ± SD"] == "7 (30)" and row["After, mean ± SD"] == "18 (78)"
    assert row["Difference, % points (95% CI)"].startswith("48 (")
    assert row["P"] == "<.001" and row["Median change (Hodges-Lehmann, 95% CI)"] == ""
    table_2 = (tables / "table_2.md").read_text(encoding="utf-8")
    assert "Newcombe's hybrid score 95% CI; P from the exact McNemar test" in table_2
    etable = (tables / "etable_before_after_smile_value.md").read_text(encoding="utf-8")
    assert "Stuart-Maxwell test of marginal homogeneity: χ2 = " in etable
    # Categories by the labels the spec gives them: Absent (1) to Symmetric (3).
    assert "| After: Symmetric" in etable and "| Absent " in etable
    cells = pd.read_csv(tables / "paired_categorical_cells.csv")
    assert cells[cells["outcome"] == "smile"]["n"].sum() == 24


def test_a_binary_outcome_must_be_a_measure_of_0_and_1(tmp_path):
    from pipeline.spec.study import SpecError, load_study

    spec = (EXAMPLES / "binary_outcome" / "study.toml").read_text(encoding="utf-8")
    for wrong, says in (
        (
            '"smile", score = "value", kind = "categorical"',
            '"smile", score = "value", kind = "binary"',
        ),
        (
            '{ instrument = "eye_closure", score = "value", kind = "binary" }',
            '{ instrument = "eye_closure", score = "value", kind = "binary", test = "t" }',
        ),
        ('kind = "categorical", categories = { 1 =', 'kind = "categorical", categories = { 0 ='),
        ('kind = "categorical", categories = { 1 =', "categories = { 1 ="),
    ):
        folder = tmp_path / str(len(says))
        folder.mkdir()
        for name in ("patients.csv", "visits.csv"):
            (folder / name).write_bytes((EXAMPLES / "binary_outcome" / name).read_bytes())
        assert wrong in spec
        (folder / "study.toml").write_text(spec.replace(wrong, says), encoding="utf-8")
        with pytest.raises(SpecError) as err:
            load_study(folder)
        message = str(err.value)
        assert "analysis.outcomes[" in message
        assert any(key in message for key in (".kind'", ".test'", ".categories'")), message


@pytest.mark.slow
@pytest.mark.parametrize("example", ["binary_outcome", "reliability_only"])
def test_worked_examples_run_with_outcomes_run(example, tmp_path, capsys):
    """docs/adding-a-study.md's worked examples, each as the page runs it."""
    from assets.cli import main
    from conftest import run_args

    assert main(run_args(EXAMPLES / example, tmp_path)) == 0
    out = capsys.readouterr().out
    name = {"binary_outcome": "binary_example", "reliability_only": "reliability_example"}
    reports = tmp_path / "reports" / name[example]
    assert (reports / "report.html").is_file() and (reports / "tables" / "table_2.csv").is_file()
    if example == "binary_outcome":
        # By sex: eye closure's levels in Table 3's continuation, Fisher's P on the first row
        # (R: fisher.test(matrix(c(5, 0, 8, 10), 2)) = 0.0457).
        table = pd.read_csv(reports / "tables" / "table_3_binary.csv", dtype=str).fillna("")
        assert table.iloc[1:3, 0].str.strip().tolist() == ["Sex: Female", "Sex: Male"]
        assert table["P between levels"].tolist()[1:3] == [".05", ""]
        text = (reports / "report.html").read_text(encoding="utf-8")
        assert "Fisher&#x27;s exact test" in text or "Fisher's exact test" in text
        assert "Newcombe&#x27;s hybrid score 95% CI for paired data" in text
        # The flow is the primary outcome's, binary or not; a change is plotted for scores only.
        # A run draws the spec's formats (PNG); the flow's words are read from its SVG export.
        from pipeline.cli import main as outcomes

        svg = ["--formats", "svg", "--widths", "double", "--reports", str(tmp_path / "reports")]
        warehouse = ["--warehouse", str(tmp_path / "w.duckdb")]
        assert (
            outcomes(["export-figures", "--study", str(EXAMPLES / example), *svg, *warehouse]) == 0
        )
        export = reports / "figures" / "export" / "double_column"
        flow = (export / "patient_flow.svg").read_text(encoding="utf-8")
        assert "Complete eye closure," in flow and "nan" not in flow
        drawn = {p.stem for p in (reports / "figures").rglob("*.png")}
        assert "slope_house_brackmann_observer_grade" in drawn
        assert not any("eye_closure" in stem or "smile" in stem for stem in drawn)
    if example == "reliability_only":
        assert "the agreement between raters is estimated in its eTable" in out
        reliability = pd.read_csv(reports / "tables" / "reliability.csv")
        assert (reliability["n_targets"] == 20).all() and reliability["estimate"].notna().all()
        body = pd.read_csv(reports / "tables" / "table_2.csv", dtype=str, keep_default_na=False)
        assert body["n pairs"].tolist()[:3] == ["0", "0", ""]  # then the footnotes


# --------------------------------------------------------------------------- visits without days

NAMED_VISITS = (
    'pre = { rule = "named_visit", visit = "pre" }',
    'post = { rule = "named_visit", visit = "m12" }',
)


def _without_days(folder: Path, *, pre: str = NAMED_VISITS[0], post: str = NAMED_VISITS[1]):
    """The binary example with its visits known by their codes alone: no day column in the
    visits file or the spec, before and after by visit code."""
    folder.mkdir(parents=True)
    source = EXAMPLES / "binary_outcome"
    (folder / "patients.csv").write_bytes((source / "patients.csv").read_bytes())
    lines = (source / "visits.csv").read_text(encoding="utf-8").splitlines()
    rows = [line.split(",") for line in lines]
    (folder / "visits.csv").write_text(
        "\n".join(",".join(r[:2] + r[3:]) for r in rows) + "\n", encoding="utf-8"
    )
    spec = []
    for line in (source / "study.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith('day = "day"'):
            continue
        spec.append(pre if line.startswith("pre = ") else post if line.startswith("post") else line)
    (folder / "study.toml").write_text("\n".join(spec) + "\n", encoding="utf-8")
    return folder


def test_nominal_visits_without_days_pair_by_visit_code(tmp_path):
    import duckdb

    from pipeline.spec.study import load_study
    from small_study import DATA_STEPS, run_steps

    study = load_study(_without_days(tmp_path / "nodays"))
    assert study.day_column == "" and not study.analysis.days
    assert study.analysis.pre_label == "visit pre" and study.analysis.post_label == "visit m12"
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        run_steps(con, study, tmp_path / "reports", DATA_STEPS)
        assert con.execute("SELECT count(*) FROM binary_example.quarantine").fetchone() == (0,)
        pairs = con.execute(
            "SELECT DISTINCT pre_visit, post_visit, pre_day FROM binary_example.pairs"
        ).fetchall()
    assert pairs == [("pre", "m12", None)]
    tables = tmp_path / "reports" / "binary_example" / "tables"
    # The same pairs as with days: the same tests (the example's own days only ordered them).
    tested = pd.read_csv(tables / "paired_categorical.csv").set_index("outcome")
    assert tested.loc["eye_closure", "n_no_yes"] == 11 and tested.loc["smile", "n_pairs"] == 24
    # No day to show: no follow-up time in Table 1, no median day of a visit, visits in the
    # plan's order.
    assert "Follow-up" not in (tables / "table_1.md").read_text(encoding="utf-8")
    estimates = pd.read_csv(tables / "visit_estimates.csv")
    assert estimates["visit"].tolist() == ["pre", "m12"] and estimates["median_day"].isna().all()
    assert "Median day" not in (tables / "etable_visit_estimates.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "pre, post, named",
    [
        ('pre = { rule = "latest_preoperative", max_day = 0 }', NAMED_VISITS[1], "analysis.pre"),
        (NAMED_VISITS[0], 'post = { rule = "last_followup" }', 'analysis.post.rule = "last'),
        (
            NAMED_VISITS[0],
            'post = { rule = "named_visit", visit = "m12", min_day = 300 }',
            "analysis.post.min_day",
        ),
    ],
)
def test_a_rule_that_needs_days_is_named_when_there_are_none(tmp_path, pre, post, named):
    from pipeline.spec.study import SpecError, load_study

    with pytest.raises(SpecError) as err:
        load_study(_without_days(tmp_path / "nodays", pre=pre, post=post))
    message = str(err.value)
    assert "setting 'visits.day' is missing, and " + named in message
    assert "needs days relative to surgery" in message and 'rule = "named_visit"' in message


def test_a_run_override_that_needs_days_is_refused_when_there_are_none(tmp_path):
    from pipeline.spec.study import SpecError, load_study, with_overrides

    study = load_study(_without_days(tmp_path / "nodays"))
    with pytest.raises(SpecError, match='analysis.post.rule = "last_followup" needs days'):
        with_overrides(study, {"post_rule": "last_followup"})


def test_named_pre_visit_with_days_and_the_same_visit_twice(tmp_path):
    from pipeline.spec.study import SpecError, load_study

    folder = _without_days(tmp_path / "same", post='post = { rule = "named_visit", visit = "pre" }')
    with pytest.raises(SpecError, match="'analysis.post.visit' must differ from pre.visit"):
        load_study(folder)
    # With days, a named pre visit is read inside the pre window as well.
    spec = (EXAMPLES / "binary_outcome" / "study.toml").read_text(encoding="utf-8")
    folder = tmp_path / "days"
    folder.mkdir()
    for name in ("patients.csv", "visits.csv"):
        (folder / name).write_bytes((EXAMPLES / "binary_outcome" / name).read_bytes())
    (folder / "study.toml").write_text(
        spec.replace(
            'pre = { rule = "latest_preoperative", max_day = 0 }',
            'pre = { rule = "named_visit", visit = "pre", max_day = -10 }',
        ),
        encoding="utf-8",
    )
    plan = load_study(folder).analysis
    assert (plan.pre_rule, plan.pre_visit, plan.pre_max_day) == ("named_visit", "pre", -10)
    assert plan.pre_label == "visit pre (day ≤ -10)"


def test_table_2_rows_of_a_binary_outcome_with_and_without_pairs():
    from pipeline.render import tables

    outcomes = pd.DataFrame(
        {
            "outcome": ["eye", "lip"],
            "score": "value",
            "label": ["Eye closure", "Lip seal"],
            "higher_is_better": True,
            "kind": "binary",
        }
    )
    tested, _ = binary.paired_categorical(
        pd.DataFrame(
            {
                "outcome": ["eye"] * 4 + ["lip"],
                "score": "value",
                "pre_value": [0.0, 0.0, 1.0, 0.0, np.nan],
                "post_value": [1.0, 1.0, 1.0, 0.0, 1.0],
            }
        ),
        {"eye": "binary", "lip": "binary"},
    )
    results = pd.DataFrame(
        {
            "outcome": ["eye", "lip"],
            "score": "value",
            "pre_visit": "pre",
            "post_visit": "post",
            "n_pairs": [4, 0],
            "pre_mean": np.nan,
            "pre_sd": np.nan,
            "post_mean": np.nan,
            "post_sd": np.nan,
            "mean_diff": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "test_used": "exact McNemar",
            "p_used": [tested["p_used"].iloc[0], np.nan],
            "note": ["binary outcome: tested on its before x after table", None],
        }
    )
    table = tables.table_2(results, outcomes, conf_level=0.95, tabled=tested)
    body = table.body
    # 1 of 4 patients closed the eye before, 3 after: +50 points; binom.test(0, 2) gives P = .5.
    assert body["Before, mean ± SD"].tolist() == ["1 (25)", "—"]
    assert body["After, mean ± SD"].tolist() == ["3 (75)", "—"]
    assert body["Difference, % points (95% CI)"].iloc[0].startswith("50 (")
    assert body["P"].tolist() == [".50", "—"]
    assert not any("change (" in heading for heading in body.columns)  # no score: no change
    assert any("Lip seal: not estimable" in note for note in table.footnotes)
    assert not any("tested on its before x after table" in note for note in table.footnotes)
    assert tested.set_index("outcome").loc["lip", "n_pairs"] == 0


@pytest.mark.parametrize(
    "added, setting",
    [
        ("responders = { eye_closure = 1 }", "analysis.responders.eye_closure"),
        ('power = { outcomes = ["smile"] }', "analysis.power.outcomes[0]"),
        ('[analysis.predictors]\npredictors = ["age"]', "analysis.predictors.outcomes"),
    ],
)
def test_analyses_of_a_change_score_refuse_a_binary_outcome(tmp_path, added, setting):
    from pipeline.spec.study import SpecError, load_study

    source = EXAMPLES / "binary_outcome"
    for name in ("patients.csv", "visits.csv"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    spec = (source / "study.toml").read_text(encoding="utf-8")
    (tmp_path / "study.toml").write_text(spec + added + "\n", encoding="utf-8")
    with pytest.raises(SpecError, match=f"setting '{re.escape(setting)}' .*(binary|categorical)"):
        load_study(tmp_path)


def test_binary_outcome_by_subgroup_matches_r():
    """binary_subgroups against tests/fixtures/r/binary_subgroups.R: fisher.test on each
    subgroup's levels x after value table (3 x 2 and 2 x 2), and each level's counts and exact
    McNemar P."""
    from pipeline.statistics.binary import BETWEEN_LEVELS, binary_subgroups

    data = pd.read_csv(R / "binary_subgroups_inputs.csv")
    expected = pd.read_csv(
        R / "binary_subgroups_expected.csv",
        float_precision="round_trip",
        keep_default_na=False,
        dtype={"level": str},
    ).astype({"value": float})
    pairs = data.assign(outcome="eye_closure", score="value").rename(
        columns={"pre": "pre_value", "post": "post_value"}
    )
    subgroups = ["arm", "sex", "transfer"]
    levels = pd.concat(
        [data[["subject"]].assign(subgroup=s, group=data[s]) for s in subgroups],
        ignore_index=True,
    )
    # Declared orders that are not text order: the first the reference, as the study's.
    order = {
        "arm": ["neurectomy", "nerve_transfer", "neurectomy_botox"],
        "sex": ["M", "F"],
        "transfer": ["yes", "no"],
    }
    out = binary_subgroups(
        pairs[["outcome", "score", "subject", "pre_value", "post_value"]], levels, order
    )
    assert out["group"].tolist() == [lv for s in subgroups for lv in order[s]]
    assert (out["test"] == BETWEEN_LEVELS).all()
    for row in out.itertuples():
        ref = expected[expected["subgroup"] == row.subgroup].set_index(["level", "key"])["value"]
        assert row.p_between == pytest.approx(ref[("", "fisher_p")], rel=1e-6)
        for key in ("n_pairs", "n_pre_yes", "n_post_yes", "mcnemar_exact_p"):
            assert getattr(row, key) == pytest.approx(ref[(row.group, key)], rel=1e-6), key
        assert row.diff == pytest.approx((row.n_post_yes - row.n_pre_yes) / row.n_pairs)
    # A level with fewer pairs than the small-cell minimum is left out of the rows and the test.
    small = binary_subgroups(pairs, levels, {"arm": order["arm"]}, min_cell=10)
    assert small["group"].tolist() == ["neurectomy", "nerve_transfer"]
    assert small["note"].iloc[0] == "1 level(s) with fewer than 10 pairs left out"


def test_fisher_levels_is_scipy_on_two_by_two_tables():
    from scipy import stats

    from pipeline.statistics.binary import fisher_levels

    for table in ([[8, 2], [1, 5]], [[3, 9], [7, 6]], [[0, 4], [5, 0]], [[10, 10], [10, 10]]):
        assert fisher_levels(table) == (pytest.approx(stats.fisher_exact(table).pvalue), "")
