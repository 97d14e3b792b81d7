"""A between-subject factor with a reference level, and the ANCOVA as a model, against R.

Expected values: tests/fixtures/r/groups.R (R 4.2.2, base R): three arms of 9, 6 and 7 patients
declared in the order control, transfer, botox; t.test, wilcox.test and lm(post ~ pre + months
+ relevel(group, ref)) per contrast, p.adjust (Holm, BH) over each test's contrasts (equal, in
R, to pairwise.t.test(pool.sd = FALSE) and pairwise.wilcox.test for all pairs); the model's
coef, confint, summary. 1e-6 relative, as every R comparison of the project.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from pipeline.spec.schema import SpecError
from pipeline.spec.study import Subgroup, load_study
from pipeline.statistics.between_groups import compare_change
from pipeline.statistics.group_model import ancova_model
from pipeline.statistics.subgroups import ordered_levels
from specs import study_toml

R = Path(__file__).parent / "fixtures" / "r"
DECLARED = ["control", "transfer", "botox"]
INPUTS = pd.read_csv(R / "groups_inputs.csv", float_precision="round_trip")
CONTRASTS = pd.read_csv(R / "groups_contrasts_expected.csv", float_precision="round_trip")
COEFFICIENTS = pd.read_csv(R / "groups_model_expected.csv", float_precision="round_trip")
FITS = pd.read_csv(R / "groups_fit_expected.csv", float_precision="round_trip")
CASES = sorted(set(zip(CONTRASTS["dataset"], CONTRASTS["case"])))


def r6(x):
    return pytest.approx(float(x), rel=1e-6, abs=1e-12)


def _data(dataset: str) -> pd.DataFrame:
    return INPUTS[INPUTS["dataset"] == dataset].rename(
        columns={"pre": "pre_value", "post": "post_value", "group": "group_level"}
    )


def _case(dataset: str, case: str) -> pd.DataFrame:
    return CONTRASTS[(CONTRASTS["dataset"] == dataset) & (CONTRASTS["case"] == case)]


@pytest.mark.parametrize(("dataset", "case"), CASES)
def test_contrasts_match_r(dataset, case):
    exp = _case(dataset, case)
    first = exp.iloc[0]
    # The declared reference case leaves the reference to the default: the first declared level.
    reference = None if case == "declared_reference" else first["reference"]
    out = compare_change(
        _data(dataset),
        ("months",),
        reference=reference,
        levels=DECLARED,
        all_pairs=first["contrasts"] == "all_pairs",
        adjustment={"holm": "holm", "BH": "bh"}[first["adjust"]],
    )
    got = out[out["test"].isin(["Welch t", "Mann-Whitney", "ANCOVA difference"])]
    # The same contrasts, in R's order (each against the reference first), level minus versus.
    assert list(zip(got["test"], got["levels"])) == [
        (r.test, f"{r.level} | {r.versus}")
        for r in exp.sort_values("test", kind="stable", key=_test_order).itertuples()
    ]
    for r in exp.itertuples():
        row = got[(got["test"] == r.test) & (got["levels"] == f"{r.level} | {r.versus}")].iloc[0]
        assert row["n"] == f"{r.n_level} | {r.n_versus}"
        assert row["statistic"] == r6(r.statistic), (r.test, r.level, r.versus)
        assert row["p"] == r6(r.p) and row["p_adj"] == r6(r.p_adj), (r.test, r.level)
        if r.test == "Mann-Whitney":
            assert (row["method"] == "exact") == bool(r.exact)
            continue
        for k in ("estimate", "ci_low", "ci_high"):
            assert row[k] == r6(getattr(r, k)), (r.test, r.level, k)
        assert row["df1"] == r6(r.df)


def _test_order(tests: pd.Series) -> pd.Series:
    return tests.map({"Welch t": 0, "Mann-Whitney": 1, "ANCOVA difference": 2})


@pytest.mark.parametrize(("dataset", "case"), CASES)
def test_ancova_model_matches_r(dataset, case):
    reference = _case(dataset, case)["reference"].iloc[0]
    coefficients, fit = ancova_model(
        _data(dataset), ["months"], levels=DECLARED, reference=reference
    )
    exp = COEFFICIENTS[(COEFFICIENTS["dataset"] == dataset) & (COEFFICIENTS["case"] == case)]
    estimated = coefficients[~coefficients["is_reference"]]
    # R's terms: group[level] for each level but the reference, in the declared order.
    assert list(estimated["term"]) == list(exp["term"])
    for r, row in zip(exp.itertuples(), estimated.itertuples()):
        assert (row.estimate, row.std_error, row.statistic, row.p) == (
            r6(r.estimate),
            r6(r.std_error),
            r6(r.t),
            r6(r.p),
        ), r.term
        assert (row.ci_low, row.ci_high) == (r6(r.ci_low), r6(r.ci_high)), r.term
    (ref_row,) = coefficients[coefficients["is_reference"]].itertuples()
    assert (ref_row.level, ref_row.n_level) == (reference, (INPUTS["group"] == reference).sum() / 2)
    f = FITS[(FITS["dataset"] == dataset) & (FITS["case"] == case)].iloc[0]
    (m,) = fit.itertuples()
    assert (m.n, m.df_residual) == (f["n"], f["df_residual"])
    for ours, theirs in (
        ("r_squared", "r_squared"),
        ("adj_r_squared", "adj_r_squared"),
        ("sigma", "sigma"),
        ("f_statistic", "f"),
        ("f_p", "f_p"),
    ):
        assert getattr(m, ours) == r6(f[theirs]), ours
    assert m.formula == f"post ~ pre + group (reference {reference}) + months"


def test_default_reference_is_the_first_declared_level_not_the_first_in_text_order():
    data = _data("continuous")
    declared = compare_change(data, levels=DECLARED).set_index("test")
    # R: t.test(change[transfer], change[control]) is the first contrast's (fixture).
    exp = _case("continuous", "declared_reference")
    welch = exp[(exp["test"] == "Welch t") & (exp["level"] == "transfer")].iloc[0]
    first = declared[declared.index == "Welch t"].iloc[0]
    assert first["levels"] == "transfer | control"
    assert first["estimate"] == r6(welch["estimate"])
    # Without a declared order the levels sort as text (botox first): the sign follows.
    text = compare_change(data).set_index("test")
    assert text[text.index == "Welch t"]["levels"].tolist() == [
        "control | botox",
        "transfer | botox",
    ]
    # A categorical column carries its order.
    ordered = data.assign(group_level=pd.Categorical(data["group_level"], categories=DECLARED))
    assert compare_change(ordered).equals(compare_change(data, levels=DECLARED))


def test_two_levels_one_contrast_its_adjusted_p_is_its_p():
    data = _data("graded")
    two = data[data["group_level"] != "botox"]
    out = compare_change(two, levels=DECLARED).set_index("test")
    exp = _case("graded", "declared_reference")
    for test in ("Welch t", "Mann-Whitney"):
        row = out.loc[test]
        assert row["levels"] == "transfer | control"
        assert row["p_adj"] == row["p"] and row["p_adj_method"] == "Holm"
    # The two-level W is R's wilcox.test(transfer, control): ranks of the pair alone.
    mw = exp[(exp["test"] == "Mann-Whitney") & (exp["level"] == "transfer")].iloc[0]
    assert out.loc["Mann-Whitney", "statistic"] == r6(mw["statistic"])
    assert out.loc["Mann-Whitney", "p"] == r6(mw["p"])
    # The omnibus tests have no adjusted P.
    assert math.isnan(out.loc["Kruskal-Wallis", "p_adj"])


def test_ordered_levels_declared_order_pooled_last_median_split_at_or_below_first():
    g = Subgroup("arm", "arm", levels=("masseteric", "cross_face", "dual"), reference="dual")
    pooled = "arm: levels of fewer than 5 patients, pooled"
    labels = [pooled, "arm: dual", "arm: masseteric", "arm: cross_face"]
    order, reference = ordered_levels(g, labels, 5)
    assert order == ["arm: masseteric", "arm: cross_face", "arm: dual", pooled]
    assert reference == "arm: dual"
    # The reference pooled away: the first level present.
    order, reference = ordered_levels(g, ["arm: cross_face", pooled], 5)
    assert reference == "arm: cross_face"
    # No declared levels: numbers by value (10 after 9), then text.
    g = Subgroup("year", "year")
    order, reference = ordered_levels(g, ["year: 10", "year: x", "year: 9"], 5)
    assert order == ["year: 9", "year: 10", "year: x"] and reference == "year: 9"
    split = Subgroup("branches", "branches", split="median")
    order, reference = ordered_levels(split, ["branches > 6", "branches ≤ 6"], 5)
    assert order == ["branches ≤ 6", "branches > 6"] and reference == "branches ≤ 6"


ARMS = {
    "subjects": {
        "columns": ["age", "arm"],
        "levels": {"arm": {"a": "Arm A", "b": "Arm B", "c": "Arm C"}},
    }
}


def _spec(tmp_path, subgroup: dict, *changes) -> Path:
    # Only the spec is read: the files it names need only exist.
    for name in ("patients.csv", "visits.csv"):
        (tmp_path / name).write_text("", encoding="utf-8")
    (tmp_path / "study.toml").write_text(
        study_toml(ARMS, *changes, {"analysis": {"subgroups": [subgroup]}}), encoding="utf-8"
    )
    return tmp_path


def test_spec_reference_contrasts_and_adjustment(tmp_path):
    study = load_study(
        _spec(
            tmp_path,
            {"column": "arm", "reference": "b", "contrasts": "all_pairs", "adjust": "bh"},
        )
    )
    (g,) = study.analysis.subgroups
    assert (g.levels, g.reference, g.contrasts, g.adjust) == (
        ("a", "b", "c"),
        "b",
        "all_pairs",
        "bh",
    )
    (g,) = load_study(_spec(tmp_path, {"column": "arm"})).analysis.subgroups
    assert (g.reference, g.contrasts, g.adjust) == ("", "reference", "holm")


@pytest.mark.parametrize(
    ("subgroup", "words"),
    [
        (
            {"column": "arm", "reference": "zz_not_a_level"},
            "must be one of the levels declared for 'arm' under [subjects.levels]: a, b, c.",
        ),
        (
            {"column": "age", "reference": "zz_not_a_level"},
            "needs the levels of column 'age' declared under [subjects.levels]",
        ),
        (
            {"column": "age", "split": "median", "reference": "zz_not_a_level"},
            "applies to a subgroup of categories only",
        ),
        ({"column": "arm", "contrasts": "zz_not_a_level"}, "must be one of reference, all_pairs"),
    ],
)
def test_spec_refuses_a_reference_that_is_not_a_declared_level(tmp_path, subgroup, words):
    with pytest.raises(SpecError) as err:
        load_study(_spec(tmp_path, subgroup))
    text = str(err.value)
    assert str(tmp_path / "study.toml") in text
    assert "analysis.subgroups[0]." in text and words in text
    # The file, the setting and the fix: the value written is not repeated back, except by the
    # schema's own choice errors (which name the choices).
    if "must be one of reference" not in text:
        assert "zz_not_a_level" not in text


# --- The worked examples of docs/adding-a-study.md ------------------------------------------
EXAMPLES = Path(__file__).parents[1] / "docs" / "examples"


def test_three_arm_example_compares_every_pair_against_the_declared_reference(tmp_path):
    import duckdb

    from small_study import run_steps

    study = load_study(EXAMPLES / "three_arm")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    run_steps(con, study, tmp_path, steps=("ingest", "score_study", "pair_study", "analyse"))
    from pipeline.steps import compare_subgroups

    compare_subgroups(con, study, tmp_path)
    between = con.execute("SELECT * FROM three_arm.between_groups").df()
    welch = between[(between["outcome"] == "excursion") & (between["test"] == "Welch t")]
    # Declared order masseteric, cross_face, dual; reference cross_face; every pair, Holm.
    assert welch["levels"].tolist() == [
        "arm: masseteric | arm: cross_face",
        "arm: dual | arm: cross_face",
        "arm: dual | arm: masseteric",
    ]
    assert set(welch["p_adj_method"]) == {"Holm"} and (welch["p_adj"] >= welch["p"]).all()
    model = con.execute("SELECT * FROM three_arm.ancova_coefficients").df()
    assert model.loc[model["is_reference"], "level"].tolist() == ["arm: cross_face"]
    assert model["term"].tolist() == [
        "(Intercept)",
        "pre",
        "group[arm: cross_face]",
        "group[arm: masseteric]",
        "group[arm: dual]",
        "age",
    ]
    con.close()


@pytest.mark.slow
@pytest.mark.parametrize("example", ["two_arm", "three_arm"])
def test_worked_examples_run_end_to_end(example, tmp_path, capsys):
    from conftest import run_args
    from pipeline.cli import main

    assert main(run_args(EXAMPLES / example, tmp_path)) == 0
    tables = tmp_path / "reports" / example / "tables"
    ancova = (tables / "table_3_ancova.md").read_text(encoding="utf-8")
    assert "Reference" in ancova
    assert (tables / "etable_ancova_excursion_value.md").is_file()


def test_table_3_ancova_names_each_pair_and_its_adjusted_p():
    from pipeline.render import tables

    common = {"outcome": "x", "score": "value", "label": "Excursion", "subgroup": "arm", "note": ""}
    nan = float("nan")

    def contrast(levels, n, estimate, p_adj):
        return common | {
            "test": "ANCOVA difference",
            "levels": levels,
            "n": n,
            "n_total": 0,
            "estimate": estimate,
            "ci_low": estimate - 1,
            "ci_high": estimate + 1,
            "p": p_adj / 3,
            "p_adj": p_adj,
            "p_adj_method": "Holm",
        }

    rows = pd.DataFrame(
        [
            common
            | {"test": "ANCOVA", "levels": "m | c | d", "n": "12 | 9 | 8", "n_total": 29}
            | {"estimate": nan, "ci_low": nan, "ci_high": nan, "p": 0.004, "p_adj": nan},
            contrast("m | c", "12 | 9", 2.93, 0.005),
            contrast("d | c", "8 | 9", 3.03, 0.0102),
            contrast("d | m", "8 | 12", 0.1, 0.91),
        ]
    )
    table = tables.table_3_ancova(rows, conf_level=0.95, min_cell=5)
    # Each pair once: a pair without the reference reads "A vs B" (A minus B), not a second
    # row of A; each contrast's Holm-adjusted P on its row.
    assert table.body.to_numpy().tolist()[2:] == [
        ["c", "9", "Reference", ""],
        ["m", "12", "2.9 (1.9 to 3.9)", ".005"],
        ["d", "8", "3.0 (2.0 to 4.0)", ".01"],
        ["d vs m", "8", "0.1 (-0.9 to 1.1)", ".91"],
    ]
    assert any("adjusted over the subgroup's contrasts (Holm)" in n for n in table.footnotes)
    # That footnote marked on the subgroup's first adjusted P (row "m", column P), so a reader
    # does not take it for the F test's P of the subgroup's row.
    (marked,) = [table.footnotes[k] for i, j, k in table.marks if (i, j) == (3, 3)]
    assert marked.startswith("P on a level's row")


def test_ancova_model_table_of_the_three_arm_example_and_of_a_model_not_fitted():
    from pipeline.render import tables

    study = load_study(EXAMPLES / "three_arm")
    data = _data("continuous").assign(
        group_level=lambda d: (
            "arm: "
            + d["group_level"].map(
                {"control": "cross_face", "transfer": "masseteric", "botox": "dual"}
            )
        ),
        age=lambda d: d["months"],
    )
    keys = {"outcome": "excursion", "score": "value", "subgroup": "arm"}
    levels = ["arm: masseteric", "arm: cross_face", "arm: dual"]
    c, m = ancova_model(data, ["age"], levels=levels, reference="arm: cross_face")
    table = tables.ancova_model_table(
        c.assign(**keys), m.assign(**keys), study, outcome_label="Oral commissure excursion"
    )
    body = table.body.to_numpy().tolist()
    # R (groups.R, reference control here cross_face): pre 0.74 ..., each arm against it.
    assert [row[0] for row in body] == [
        "Nerve source",
        "Before value (slope)",
        "Cross-face nerve graft",
        "Masseteric nerve transfer",
        "Dual innervation",
        "Age, y",
        "R²",
        "Residual SE",
    ]
    assert body[0][1] == "22" and body[2][2] == "Reference" and body[6][2] == "0.60"
    assert table.indent == (0, 1, 1, 1, 1, 1, 1, 1)
    # One level among the model's patients: no model, said on its row; no NA cell anywhere.
    one = data[data["group_level"] == "arm: dual"]
    c, m = ancova_model(one, ["age"], levels=levels)
    table = tables.ancova_model_table(
        c.assign(**keys), m.assign(**keys), study, outcome_label="Oral commissure excursion"
    )
    assert table.body.to_numpy().tolist() == [
        ["Nerve source", "7", "not estimable", ""],
        ["Dual innervation", "7", "", ""],
    ]
    (why,) = [table.footnotes[k] for i, j, k in table.marks if (i, j) == (0, 2)]
    assert why.startswith("Nerve source: ") and "fewer than 2 levels" in why
    assert "NA" not in " ".join(table.body.to_numpy().ravel())
