"""The analysis plan in the spec: primary outcome, multiplicity, subgroups, visit rules, and the
whole plan run from it."""

from __future__ import annotations

import tomllib

import duckdb
import pandas as pd
import pytest

from conftest import write_study
from pipeline.ingest.ingestion import ingest_study
from pipeline.pairing import pair_study
from pipeline.scores import score_study
from pipeline.spec.study import SpecError, load_study
from pipeline.steps import analyse, secondary_analyses
from specs import study_toml

PATIENTS = """
    code,age,branches
    P1,50,3
    P2,61,8
    P3,44,6
    P4,70,2
"""
VISITS = """
    code,visit,day,hb_observer
    P1,old,-400,6
    P1,pre,-10,4
    P1,m3,95,3
    P1,m12,370,2
    P2,pre,-5,5
    P2,m3,100,4
    P2,m12,330,3
    P3,pre,-3,3
    P3,m6,180,2
    P4,pre,-500,5
    P4,m12,360,5
"""


def _spec(
    analysis_extra: str = "",
    post: str = 'post = { rule = "last_followup", min_day = 90 }',
    pre: str = "",
    **tables: dict,
) -> str:
    """The tests' study with a ``branches`` column; ``post``, ``pre`` and ``analysis_extra`` are
    lines of its [analysis] table, ``tables`` other tables to add."""
    analysis = tomllib.loads("\n".join((post, pre, analysis_extra)))
    return study_toml(
        {"subjects": {"columns": ["age", "branches"]}, "analysis": analysis, **tables}
    )


def _run(tmp_path, spec):
    folder = write_study(tmp_path / "tiny", PATIENTS, VISITS, spec)
    study = load_study(folder)
    con = duckdb.connect()
    ingest_study(con, study)
    score_study(con, study)
    pair_study(con, study)
    return con, study


def _pairs(con):
    return con.execute(
        "SELECT subject, pre_visit, post_visit FROM tiny.pairs ORDER BY subject"
    ).df()


def test_visit_rules(tmp_path):
    con, _ = _run(tmp_path, _spec())
    assert _pairs(con)["post_visit"].tolist() == ["m12", "m12", "m6", "m12"]
    con, _ = _run(
        tmp_path, _spec(post='post = { rule = "named_visit", visit = "m3", min_day = 1 }')
    )
    assert _pairs(con)["subject"].tolist() == ["P1", "P2"]
    con, study = _run(
        tmp_path,
        _spec(
            post='post = { rule = "nearest_day", target_day = 120, min_day = 60, max_day = 200 }'
        ),
    )
    # P1: m3 (95, 25 away); P2: m3 (100, 20 away); P3: m6 (180, 60 away); P4: nothing in window.
    assert _pairs(con)["post_visit"].tolist() == ["m3", "m3", "m6"]
    assert study.analysis.post_label == "nearest to day 120 (60 ≤ day ≤ 200)"
    # A pre window drops P4 (only assessed 500 days before surgery).
    con, study = _run(
        tmp_path, _spec(pre='pre = { rule = "latest_preoperative", max_day = 0, min_day = -365 }')
    )
    assert _pairs(con)["subject"].tolist() == ["P1", "P2", "P3"]
    assert study.analysis.pre_label == "latest pre-operative (-365 ≤ day ≤ 0)"


def test_whole_plan_runs(tmp_path):
    extra = """primary = "house_brackmann_observer"
multiplicity = "bh"
test = "auto"
ordinal = ["house_brackmann_observer"]
responders = { house_brackmann_observer = 1 }
subgroups = [{ name = "branches", column = "branches", split = "median" }]
covariates = ["age"]
"""
    # Two patients on each side of the median: levels this small are reported only because the
    # spec lowers the small-cell minimum (tests/test_subject_columns.py has the default).
    spec = _spec(extra, identifiers={"min_cell": 2})
    con, study = _run(tmp_path, spec)
    results = analyse(con, study, tmp_path / "reports")
    assert results.iloc[0]["p_adj_method"] == "none (primary outcome)"
    written = secondary_analyses(con, study, tmp_path / "reports")
    names = {p.stem for p in written}
    assert names >= {
        "between_groups",
        "change_direction",
        "responders",
        "reliability",
        "correlation",
        "missing_data",
        "visit_estimates",
    }
    every_group = pd.read_csv(tmp_path / "reports" / "tiny" / "tables" / "paired_tests.csv")
    # one file, one row per (outcome, score, group): the whole cohort first, then the subgroup
    # levels, a median split's at or below the median (its reference) first;
    # median of 3, 8, 6, 2 is 4.5
    assert every_group["group"].tolist() == ["all", "branches ≤ 4.5", "branches > 4.5"]
    view = con.execute(
        'SELECT DISTINCT "group" FROM tiny.paired_tests_subgroups ORDER BY 1'
    ).fetchall()
    assert view == [("branches > 4.5",), ("branches ≤ 4.5",)]
    between = pd.read_csv(tmp_path / "reports" / "tiny" / "tables" / "between_groups.csv")
    # Tiny groups: every NaN p-value is explained.
    assert (between["p"].notna() | between["note"].notna()).all()


@pytest.mark.parametrize(
    "extra,message",
    [
        ('primary = "nope"', "analysis.primary' names 'nope', which is not a planned outcome"),
        ('multiplicity = "bonferroni"', "analysis.multiplicity' must be one of holm, bh"),
        ('subgroups = [{ column = "shoe_size" }]', "not in [subjects] columns"),
        ('covariates = ["shoe_size"]', "analysis.covariates' names 'shoe_size'"),
        (
            "responders = { house_brackmann_observer = -1 }",
            "must be a positive minimal important change",
        ),
        (
            'reliability = [{ instrument = "house_brackmann", score = "grade", raters = '
            '["observer"] }]',
            "must list at least two",
        ),
        (
            'reliability = [{ instrument = "house_brackmann", score = "grade", visits = '
            '["pre", "pre"] }]',
            "reliability[0].visits' must list visit codes, each once",
        ),
        (
            'reliability = [{ instrument = "house_brackmann", score = "grade", targets = '
            '"visits" }]',
            "per_visit",
        ),
    ],
)
def test_plan_errors_name_the_setting(tmp_path, extra, message):
    folder = write_study(tmp_path / "tiny", PATIENTS, VISITS, _spec(extra))
    with pytest.raises(SpecError, match="study.toml") as err:
        load_study(folder)
    assert message in str(err.value)


def test_post_rule_keys_checked(tmp_path):
    folder = write_study(
        tmp_path / "tiny", PATIENTS, VISITS, _spec(post='post = { rule = "named_visit" }')
    )
    with pytest.raises(SpecError, match="analysis.post.visit' is missing"):
        load_study(folder)
    folder = write_study(
        tmp_path / "tiny",
        PATIENTS,
        VISITS,
        _spec(post='post = { rule = "last_followup", min_day = 0 }'),
    )
    with pytest.raises(SpecError, match="must be after pre.max_day"):
        load_study(folder)
