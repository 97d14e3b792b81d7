"""Predictors of outcome in a study: ``[analysis.predictors]`` in the spec, the step that fits
the models (pipeline.steps.predictor_models), their eTables and the Methods sentence.

The demo's numbers are compared with tests/fixtures/r/regression.R, which pairs the demo's
House-Brackmann (observer) grades from the raw files itself and fits R's lm and glm (see
tests/test_statistics_regression.py for the tolerance).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from test_spec_schema import _refusal

from pipeline import paths
from pipeline.render import tables
from pipeline.spec.study import load_study
from small_study import file_bytes, full_run

DEMO = paths.RAW_DATA_DIR / "demo"
R = Path(__file__).parent / "fixtures" / "r"
PREDICTORS = """[analysis.predictors]
predictors = ["branches_transected", "facelift", "cross_facial_nerve_graft", "nerve_rerouting",
              "etiology", "age", "months_since_onset"]
model = "change"           # or "post_adjusted": the after value on the before value and these
univariable = true
responders = true
"""


def _demo_with(tmp_path: Path, table: str) -> Path:
    """The demo study with its [analysis.predictors] table replaced by ``table``."""
    folder = tmp_path / "demo"
    folder.mkdir(parents=True)
    for name in ("patients.csv", "visits.csv"):
        shutil.copy(DEMO / name, folder / name)
    spec = (DEMO / "study.toml").read_text(encoding="utf-8")
    assert PREDICTORS in spec
    (folder / "study.toml").write_text(spec.replace(PREDICTORS, table), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "table, message",
    [
        (
            '[analysis.predictors]\npredictors = ["shoe_size"]\n',
            "setting 'analysis.predictors.predictors' names 'shoe_size', which is not in "
            "[subjects] columns; add it there or correct the name.",
        ),
        (
            '[analysis.predictors]\npredictors = ["age"]\nmodel = "post"\n',
            "setting 'analysis.predictors.model' must be one of change, post_adjusted; got 'post'.",
        ),
        (
            '[analysis.predictors]\npredictors = ["age"]\nreference = { age = "50" }\n',
            "setting 'analysis.predictors.reference.age' names 'age', which is not a categorical "
            "predictor; give references only for predictors listed in predictors that have "
            "[subjects.levels].",
        ),
        (
            '[analysis.predictors]\npredictors = ["etiology"]\nreference = { etiology = "flu" }\n',
            "setting 'analysis.predictors.reference.etiology' must be one of bells_palsy, "
            "ramsay_hunt, acoustic_neuroma, trauma, iatrogenic, other.",
        ),
        (
            '[analysis.predictors]\noutcomes = ["sunnybrook"]\npredictors = ["age"]\n'
            "responders = true\n",
            "setting 'analysis.predictors.responders' needs a minimal important change for "
            "'sunnybrook', which has no published one; give it under analysis.responders, or set "
            "responders = false.",
        ),
        (
            '[analysis.predictors]\noutcomes = ["sunny"]\npredictors = ["age"]\n',
            "setting 'analysis.predictors.outcomes' names 'sunny', which is not a planned outcome",
        ),
        (
            '[analysis.predictors]\npredictors = ["age", "age"]\n',
            "setting 'analysis.predictors.predictors' lists a predictor twice; list each once.",
        ),
        (
            "[analysis.predictors]\npredictors = []\n",
            "setting 'analysis.predictors.predictors' must list at least one entry.",
        ),
        (
            '[analysis.predictors]\npredictors = ["age"]\nunivariate = true\n',
            "setting 'analysis.predictors.univariate' is not a setting of [analysis.predictors]; "
            "did you mean 'univariable'?",
        ),
    ],
)
def test_predictors_are_checked_against_the_spec(tmp_path, table, message):
    assert _refusal(_demo_with(tmp_path, table)).startswith(message)


def test_defaults_the_primary_outcome_and_the_published_threshold(tmp_path):
    plan = load_study(DEMO).analysis.predictors
    # Outcomes default to the primary; a column with [subjects.levels] is categorical, in the
    # spec's level order; the plan's responders threshold, named as such.
    assert plan.outcomes == ("house_brackmann_observer",)
    assert dict(plan.categorical)["etiology"][:2] == ("bells_palsy", "ramsay_hunt")
    assert "age" not in dict(plan.categorical)
    assert plan.thresholds == (("house_brackmann_observer", "grade", 1.0, "analysis.responders"),)
    # SAQ on a 0-100 scale has a published minimal important change (Bruins et al. 2021, 2.8).
    folder = _demo_with(
        tmp_path,
        '[analysis.predictors]\noutcomes = ["saq"]\npredictors = ["etiology"]\n'
        'reference = { etiology = "trauma" }\nresponders = true\n',
    )
    spec = (folder / "study.toml").read_text(encoding="utf-8")
    (folder / "study.toml").write_text(
        spec.replace('version = "raw_sum"', 'version = "zero_to_hundred"'), encoding="utf-8"
    )
    plan = load_study(folder).analysis.predictors
    ((outcome, score, mic, source),) = plan.thresholds
    assert (outcome, score, mic) == ("saq", "total", 2.8) and source.startswith("Bruins TE")
    assert plan.reference == (("etiology", "trauma"),)


def test_a_predictor_that_is_a_subgroup_takes_its_reference(tmp_path):
    """A categorical predictor is compared with the level Table 3 compares its subgroup with:
    the subgroup's reference; the predictors' own reference wins; else the first declared."""
    folder = _demo_with(tmp_path, '[analysis.predictors]\npredictors = ["etiology", "facelift"]\n')
    spec = (folder / "study.toml").read_text(encoding="utf-8")
    subgroup = '{ name = "etiology", column = "etiology" }'
    assert subgroup in spec
    (folder / "study.toml").write_text(
        spec.replace(subgroup, '{ name = "etiology", column = "etiology", reference = "trauma" }'),
        encoding="utf-8",
    )
    assert load_study(folder).analysis.predictors.reference == (("etiology", "trauma"),)
    spec = (folder / "study.toml").read_text(encoding="utf-8")
    (folder / "study.toml").write_text(
        spec.replace(
            'predictors = ["etiology", "facelift"]\n',
            'predictors = ["etiology"]\nreference = { etiology = "other" }\n',
        ),
        encoding="utf-8",
    )
    assert load_study(folder).analysis.predictors.reference == (("etiology", "other"),)


# The demo's models against R (regression.R cases demo_*): term -> (estimate, CI, P), per model.
COEFFICIENTS = pd.read_csv(
    R / "regression_expected_coefficients.csv", float_precision="round_trip", keep_default_na=False
)
MODELS = pd.read_csv(
    R / "regression_expected_models.csv", float_precision="round_trip", keep_default_na=False
)
DEMO_CASES = {
    "demo_change": ("change", "multivariable"),
    "demo_change_univariable": ("change", "univariable"),
    "demo_responder": ("responder", "multivariable"),
    "demo_responder_univariable": ("responder", "univariable"),
}


def _warehouse(demo_run, table: str) -> pd.DataFrame:
    folder, _ = demo_run
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"SELECT * FROM demo.{table}").df()
    finally:
        con.close()


@pytest.mark.parametrize("case", sorted(DEMO_CASES))
def test_demo_models_match_r(demo_run, case):
    """The demo run's models (pairs, predictors read and small etiology levels left out by the
    pipeline) equal R's fits of the pairs R made from the raw files: 1e-6 relative."""
    response, model = DEMO_CASES[case]
    got = _warehouse(demo_run, "regression")
    got = got[(got["response"] == response) & (got["model"] == model) & ~got["is_reference"]]
    models = _warehouse(demo_run, "regression_models")
    models = models[(models["response"] == response) & (models["model"] == model)]
    # The intercepts are compared in test_statistics_regression.py; here the predictors.
    expected = COEFFICIENTS[
        (COEFFICIENTS["case"] == case) & (COEFFICIENTS["term"] != "(Intercept)")
    ]
    got = got[got["role"] == "predictor"]
    assert sorted(got["term"]) == sorted(expected["term"])
    by_term = got.set_index(["term"])
    for r in expected.itertuples():
        row = by_term.loc[r.term]
        assert row["n"] == r.n
        if float(r.std_error) > 1e3:  # separation: R's last iterate; the pipeline reports none
            assert pd.isna(row["estimate"])
            continue
        for k in ("estimate", "ci_low", "ci_high", "p"):
            assert row[k] == pytest.approx(float(getattr(r, k)), rel=1e-6), (r.term, k)
    expected_models = MODELS[MODELS["case"] == case]
    assert sorted(models["n"]) == sorted(expected_models["n"])
    key = "r_squared" if response == "change" else "auc"
    assert sorted(models[key]) == pytest.approx(sorted(expected_models[key].astype(float)))


def test_demo_report_shows_the_regression_tables(demo_run):
    """Both eTables in the report and every format, names as a reader knows them (labels, not
    column names or level codes), and a Methods paragraph naming their eTables."""
    folder, _ = demo_run
    report = folder / "reports" / "demo"
    stems = [
        "etable_predictors_house_brackmann_observer_grade",
        "etable_predictors_house_brackmann_observer_grade_responders",
    ]
    for stem in stems:
        for ext in ("csv", "md", "html", "tex", "docx"):
            assert (report / "tables" / f"{stem}.{ext}").is_file()
    md = (report / "tables" / f"{stems[0]}.md").read_text(encoding="utf-8")
    assert "Predictors of change in House-Brackmann grade (observer): linear regression" in md
    # Indented under Etiology (spaces in Markdown), the reference level first.
    assert re.search(r"\| Etiology\s+\|(\s+\|)+\n\|\s{3,}Bell palsy\s+\| Reference", md)
    assert "Time since onset, mo" in md
    for raw in ("months_since_onset", "bells_palsy", "cross_facial_nerve_graft", "etiology["):
        assert raw not in md
    assert re.search(r"n = 57; 4 patients with pairs left out: 4 in a level of fewer than 5", md)
    responders = (report / "tables" / f"{stems[1]}.md").read_text(encoding="utf-8")
    assert "Multivariable OR (95% CI)" in responders and "AUC (C statistic) = 0.85" in responders
    assert "not estimable" in responders and "separation" in responders
    html = (report / "report.html").read_text(encoding="utf-8")
    assert html.count("Predictors of") >= 2
    methods = re.search(
        r"Pre-operative characteristics associated with the result \(eTables "
        r"(\d+) and (\d+)\)",
        html,
    )
    assert methods, "Methods paragraph of the predictors"
    number = methods.group(1)
    assert f"eTable {number}. Predictors of change" in html


def test_regression_table_layout():
    """The builder on a hand-made model: the adjustment first, a categorical predictor's
    levels indented under it, the reference written Reference, per-month coefficients with a
    third decimal, and the footnote naming n, R² and the model in words."""
    from pipeline.statistics.regression import predictors_of_outcome

    study = load_study(DEMO)
    data = pd.DataFrame(
        {
            "pre_value": [4, 5, 3, 4, 6, 5, 4, 3, 5, 6, 4, 5.0],
            "post_value": [2, 3, 2, 3, 4, 2, 3, 2, 4, 3, 3, 2.0],
            "etiology": ["bells_palsy"] * 6 + ["trauma"] * 6,
            "months_since_onset": [10, 40, 5, 80, 33, 21, 12, 60, 7, 90, 15, 3.0],
        }
    )
    result = predictors_of_outcome(
        data,
        ["etiology", "months_since_onset"],
        model="post_adjusted",
        categorical={"etiology": ["bells_palsy", "trauma"]},
        higher_is_better=False,
    )
    models = result.models.assign(n_small_levels=0, threshold=float("nan"))
    table = tables.regression_table(
        result.coefficients,
        models,
        study,
        outcome_label="House-Brackmann grade (observer)",
        higher_is_better=False,
    )
    first = table.body.iloc[:, 0].tolist()
    assert first == ["Before value", "Etiology", "Bell palsy", "Trauma", "Time since onset, mo"]
    assert table.indent == (0, 0, 1, 1, 0)
    assert table.body.iloc[2, 1] == "Reference"
    coefficient = result.coefficients.set_index("term").loc["months_since_onset", "estimate"]
    assert abs(coefficient) < 0.1
    assert re.fullmatch(r"-?\d\.\d{3} \(-?\d\.\d{3} to -?\d\.\d{3}\)", table.body.iloc[4, 1])
    assert list(table.body.columns) == ["Characteristic", "β (95% CI)", "P"]
    assert "n = 12" in table.footnotes[0] and "R² = " in table.footnotes[0]
    assert "on the before value and etiology and time since onset" in table.footnotes[0]
    assert table.title.startswith("eTable. Predictors of the after value of House-Brackmann")


def test_a_study_without_predictors_writes_what_it_always_wrote():
    """The small study plans no predictors: no regression table in the warehouse, no file and
    no Methods sentence about them (its other files are those of a study without the feature:
    checked by hand against the main branch, byte for byte)."""
    base = full_run()
    files = file_bytes(base / "reports" / "small")
    assert not [name for name in files if "regression" in name or "predictors" in name]
    assert b"Pre-operative characteristics" not in files["report.html"]
    con = duckdb.connect(str(base / "warehouse.duckdb"), read_only=True)
    try:
        names = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    finally:
        con.close()
    assert not names & {"regression", "regression_models"}
