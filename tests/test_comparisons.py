"""Several named comparisons in one study ([[analysis.comparisons]]): pairing by each
comparison's rules, worked by hand; the tests of each comparison the same as a study of that
comparison alone; Table 2 keeping the comparisons apart; the spec's messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from test_pairing import scored

from pipeline.pairing import pair_study
from pipeline.spec.study import SpecError, load_study
from specs import edit_spec

EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "two_window"
M6 = {"rule": "named_visit", "visit": "m6", "min_day": 150, "max_day": 240}
M12 = {"rule": "named_visit", "visit": "m12", "min_day": 300, "max_day": 430}


def test_each_comparison_pairs_by_its_own_rules_as_worked_by_hand(tiny_study):
    edit_spec(
        tiny_study,
        {
            "analysis": {
                "post": None,
                "comparisons": [
                    {"name": "m6", "label": "6 months", "post": M6},
                    {"name": "m12", "label": "12 months", "post": M12},
                    # Its own pre rule: the screening visit, against the last follow-up.
                    {
                        "name": "from_screening",
                        "pre": {"rule": "named_visit", "visit": "screen"},
                        "post": {"rule": "last_followup"},
                    },
                ],
            }
        },
    )
    con = scored(
        ["A", "B", "C", "D"],
        """
        ('A', 'pre', -5, 4.0), ('A', 'm6', 180, 3.0), ('A', 'm12', 370, 2.0),
        ('B', 'pre', -3, 5.0), ('B', 'm6', 260, 4.0), ('B', 'm12', 365, 3.0),
        ('C', 'pre', -2, 3.0), ('C', 'm6', 200, 2.0), ('C', 'm12', 380, NULL),
        ('D', 'screen', -40, 6.0), ('D', 'pre', -1, 5.0), ('D', 'm6', 150, 4.0),
        ('D', 'm12', 300, 3.0)""",
    )
    study = load_study(tiny_study)
    assert [c.name for c in study.analysis.compared] == ["m6", "m12", "from_screening"]
    pair_study(con, study)
    pairs = con.execute(
        "SELECT comparison, subject, pre_visit, post_visit, diff FROM tiny.pairs"
    ).fetchall()
    assert pairs == [
        # 6 months (day 150 to 240): B came on day 260, outside the window: no pair. D's pre
        # is the latest before surgery (day -1), not the screening visit; day 150 is in.
        ("m6", "A", "pre", "m6", -1.0),
        ("m6", "C", "pre", "m6", -1.0),
        ("m6", "D", "pre", "m6", -1.0),
        # 12 months (day 300 to 430): C's m12 has no grade, and a named visit takes no other
        # visit instead: no pair. D's day 300 is in.
        ("m12", "A", "pre", "m12", -2.0),
        ("m12", "B", "pre", "m12", -2.0),
        ("m12", "D", "pre", "m12", -2.0),
        # The screening visit alone is pre here: D only, to the last follow-up with a value.
        ("from_screening", "D", "screen", "m12", -3.0),
    ]
    # The patient flow is the primary comparison's (the first, unless the spec names one).
    summary = con.execute("SELECT subjects, with_pre, with_post, paired FROM tiny.pairing_summary")
    assert summary.fetchall() == [(4, 4, 3, 3)]


def _run(folder: Path, tmp: Path, steps=("ingest", "score_study", "pair_study", "analyse")):
    from small_study import run_steps

    study = load_study(folder)
    con = duckdb.connect(str(tmp / f"w_{folder.name}.duckdb"))
    run_steps(con, study, tmp / "reports", steps)
    return study, con


def _one_window(tmp_path: Path, post: dict, primary: str) -> Path:
    folder = tmp_path / f"one_{post['visit']}"
    shutil.copytree(EXAMPLE, folder)
    edit_spec(
        folder,
        {
            "analysis": {
                "comparisons": None,
                "primary_comparison": None,
                "multiplicity_scope": None,
                "post": post,
                "primary": primary,
            }
        },
    )
    return folder


def test_each_comparison_gives_the_numbers_of_a_study_of_that_window_alone(tmp_path):
    _, con = _run(EXAMPLE, tmp_path)
    both = con.execute("SELECT * FROM two_window.paired_tests").df()
    # 12 months is the primary comparison: the primary outcome untested for multiplicity there,
    # as in a study of 12 months alone; at 6 months every outcome is secondary, as in a study of
    # 6 months without a primary outcome.
    for name, post, primary in (("m6", M6, ""), ("m12", M12, "excursion")):
        _, alone = _run(_one_window(tmp_path, post, primary), tmp_path)
        expected = alone.execute("SELECT * FROM two_window.paired_tests").df()
        got = both[both["comparison"] == name].drop(columns="comparison").reset_index(drop=True)
        assert expected["comparison"].eq(name).all()
        pd.testing.assert_frame_equal(got, expected.drop(columns="comparison"), check_exact=True)
        alone.close()
    # The windows' pairs as worked from visits.csv: P003 missed 6 months, P005 came on day 265
    # (after the 6-month window), P007 missed 12 months; 14 patients.
    n = both.set_index("comparison").loc[:, ["outcome", "n_pairs"]]
    assert n.loc["m6", "n_pairs"].tolist() == [12, 12]
    assert n.loc["m12", "n_pairs"].tolist() == [13, 13]
    left_out = con.execute("""
        SELECT comparison, list(DISTINCT subject ORDER BY subject) FROM (
            SELECT c.comparison, s.subject FROM (VALUES ('m6'), ('m12')) c(comparison),
                two_window.subjects s
            EXCEPT SELECT comparison, subject FROM two_window.pairs)
        GROUP BY comparison ORDER BY comparison""").fetchall()
    assert left_out == [("m12", ["P007"]), ("m6", ["P003", "P005"])]
    con.close()


def test_study_scope_adjusts_every_secondary_test_of_every_comparison_together(tmp_path):
    from pipeline.statistics.multiplicity import adjust_p

    folder = tmp_path / "study_scope"
    shutil.copytree(EXAMPLE, folder)
    edit_spec(folder, {"analysis": {"multiplicity_scope": "study"}})
    _, con = _run(folder, tmp_path)
    tests = con.execute(
        "SELECT comparison, outcome, p_used, p_adj, p_adj_method FROM two_window.paired_tests"
    ).df()
    confirmatory = (tests["comparison"] == "m12") & (tests["outcome"] == "excursion")
    assert tests.loc[confirmatory, "p_adj"].tolist() == tests.loc[confirmatory, "p_used"].tolist()
    family = tests[~confirmatory]
    # Holm over the three secondary tests (adjust_p is R's p.adjust, tests/test_paired.py).
    assert family["p_adj"].tolist() == adjust_p(family["p_used"].to_numpy(), "holm").tolist()
    assert set(family["p_adj_method"]) == {"Holm over 3 secondary tests of 2 comparisons"}
    con.close()


def test_table_2_keeps_the_comparisons_apart(tmp_path):
    from pipeline.pairing import outcomes_frame
    from pipeline.render import tables

    study, con = _run(EXAMPLE, tmp_path)
    results = con.execute("SELECT * FROM two_window.paired_tests WHERE \"group\" = 'all'").df()
    con.close()
    planned = outcomes_frame(study)
    options = {"conf_level": 0.95, "synthetic": True}
    built = tables.table_2_by_comparison(
        results, planned, [("m6", "6 months"), ("m12", "12 months")], **options
    )
    body = built.body
    # A row naming each comparison, its outcomes under it with that comparison's pairs.
    assert body["Outcome"].tolist() == [
        "6 months",
        "Oral commissure excursion, mm",
        "House-Brackmann grade (observer)",
        "12 months",
        "Oral commissure excursion, mm",
        "House-Brackmann grade (observer)",
    ]
    assert built.indent == (0, 1, 1, 0, 1, 1)
    assert body["n pairs"].tolist() == ["", "12", "12", "", "13", "13"]
    # Each comparison's visits in a footnote marked on its own row, naming it.
    notes = {built.footnotes[k] for row, _, k in built.marks if row == 0}
    assert any(n.startswith("6 months. Before: ") and "(150 ≤ day ≤ 240)" in n for n in notes)
    notes = {built.footnotes[k] for row, _, k in built.marks if row == 3}
    assert any(n.startswith("12 months. Before: ") and "(300 ≤ day ≤ 430)" in n for n in notes)
    # One Table 2 of both comparisons' rows would merge them: refused, never drawn.
    with pytest.raises(pd.errors.MergeError):
        tables.table_2(results, planned, **options)


@pytest.mark.parametrize(
    "change, named",
    [
        ({"primary_comparison": "m24"}, "'analysis.primary_comparison' names 'm24', which is"),
        (
            {"comparisons": [{"name": "m6", "post": M6}, {"name": "m6", "post": M12}]},
            "'analysis.comparisons[1].name' names a comparison twice",
        ),
        (
            {"comparisons": [{"name": "M6", "post": M6}]},
            "'analysis.comparisons[0].name' must be lower-case",
        ),
        (
            {"post": {"rule": "last_followup"}},
            "'analysis.post' is used only without [[analysis.comparisons]]",
        ),
        (
            {"comparisons": [{"name": "m6", "post": {**M6, "min_day": -5}}]},
            "'analysis.comparisons[0].post.min_day' must be after pre.max_day",
        ),
    ],
)
def test_a_wrong_comparison_is_named_in_one_message(tmp_path, change, named):
    folder = tmp_path / "wrong"
    shutil.copytree(EXAMPLE, folder)
    edit_spec(folder, {"analysis": change})
    with pytest.raises(SpecError) as err:
        load_study(folder)
    message = str(err.value)
    assert named in message and message.count("\n") == 0
    assert "P00" not in message  # no data quoted


def test_a_comparison_that_needs_days_is_named_when_the_visits_have_none(tmp_path):
    folder = tmp_path / "nodays"
    shutil.copytree(EXAMPLE, folder)
    rows = [line.split(",") for line in (folder / "visits.csv").read_text().splitlines()]
    (folder / "visits.csv").write_text("\n".join(",".join(r[:2] + r[3:]) for r in rows) + "\n")
    named = {"rule": "named_visit", "visit": "pre"}
    edit_spec(folder, {"visits": {"day": None}, "analysis": {"pre": named}})
    with pytest.raises(SpecError) as err:
        load_study(folder)
    message = str(err.value)
    assert "setting 'visits.day' is missing, and analysis.comparisons[0].post.min_day" in message
    # By visit code alone, both comparisons pair.
    edit_spec(
        folder,
        {
            "analysis": {
                "comparisons": [
                    {"name": "m6", "post": {"rule": "named_visit", "visit": "m6"}},
                    {"name": "m12", "post": {"rule": "named_visit", "visit": "m12"}},
                ]
            }
        },
    )
    study = load_study(folder)
    assert [c.label for c in study.analysis.compared] == ["6 months", "12 months"]


def test_a_run_override_of_the_post_rule_is_refused_and_one_of_pre_reaches_every_comparison():
    from pipeline.spec.study import with_overrides

    study = load_study(EXAMPLE)
    with pytest.raises(SpecError, match="'post_min_day' cannot be overridden in a study with"):
        with_overrides(study, {"post_min_day": 100})
    changed = with_overrides(study, {"pre_max_day": -2})
    assert [c.fields["pre_max_day"] for c in changed.analysis.compared] == [-2, -2]
    assert changed.analysis.primary_comparison_name == "m12"


@pytest.mark.slow
def test_two_window_example_runs_with_outcomes_run(tmp_path):
    """docs/adding-a-study.md's two-window example, as the page runs it."""
    from assets.cli import main
    from conftest import run_args

    assert main(run_args(EXAMPLE, tmp_path)) == 0
    reports = tmp_path / "reports" / "two_window"
    table_2 = (reports / "tables" / "table_2.md").read_text(encoding="utf-8")
    assert "| 6 months" in table_2 and "| 12 months" in table_2
    # The page shows this Table 2 as it comes out.
    page = (Path(__file__).parents[1] / "docs" / "adding-a-study.md").read_text(encoding="utf-8")
    assert table_2[table_2.index("| Outcome") :].strip() in page
    assert (reports / "report.html").is_file() and (reports / "report.docx").is_file()
    responders = pd.read_csv(reports / "tables" / "responders.csv")
    assert responders["comparison"].tolist() == ["m6", "m12"]
