"""Visits derived from others ([visits.derived]): seizures counted over four two-week periods,
summed into one post value, as in the epilepsy trial data of Thall & Vail (1990) re-expressed as
a study. The expected values are worked by hand below."""

from __future__ import annotations

import duckdb
import pytest

from conftest import write_study
from pipeline.ingest.ingestion import ingest_study
from pipeline.pairing import pair_study
from pipeline.scores import score_study
from pipeline.spec.study import SpecError, load_study
from pipeline.statistics.observed import missing_values

PATIENTS = """
    code,age
    A,30
    B,41
    C,25
    D,57
"""
# Baseline count at day -1, then four periods. C has no count for period 3 (value blank); D
# never came to period 4 (no row).
VISITS = """
    code,visit,day,seizures
    A,base,-1,11
    A,v1,14,5
    A,v2,28,3
    A,v3,42,3
    A,v4,56,3
    B,base,-2,8
    B,v1,14,0
    B,v2,28,1
    B,v3,43,0
    B,v4,57,1
    C,base,-1,40
    C,v1,15,18
    C,v2,29,24
    C,v3,42,
    C,v4,56,21
    D,base,-3,6
    D,v1,14,2
    D,v2,28,4
    D,v3,42,0
"""
SPEC = """
[study]
name = "epilepsy"
synthetic = true

[subjects]
file = "patients.csv"
id = "code"
columns = ["age"]

[visits]
file = "visits.csv"
subject = "code"
visit = "visit"
day = "day"

[visits.derived]
post_total = {{ visits = ["v1", "v2", "v3", "v4"], combine = "{combine}", require = "all" }}

[instruments.seizures]
column = "seizures"
label = "Seizures"
unit = "seizures"
minimum = 0
maximum = 1000
better = "lower"

[analysis]
test = "wilcoxon"
pre = {{ rule = "named_visit", visit = "base" }}
post = {{ rule = "named_visit", visit = "post_total", min_day = 1 }}

[[analysis.outcomes]]
instrument = "seizures"
score = "value"
"""


def _run(tmp_path, combine="sum", visits=VISITS):
    study = load_study(
        write_study(tmp_path / "epilepsy", PATIENTS, visits, SPEC.format(combine=combine))
    )
    con = duckdb.connect()
    ingest_study(con, study)
    score_study(con, study)
    pair_study(con, study)
    return con, study


@pytest.mark.parametrize("combine", ["sum", "mean"])
def test_derived_post_value_is_the_sum_or_mean_of_every_period(tmp_path, combine):
    con, study = _run(tmp_path, combine)
    pairs = con.execute(
        "SELECT subject, pre_visit, pre_value, post_visit, post_day, post_value FROM "
        "epilepsy.pairs ORDER BY subject"
    ).fetchall()
    # By hand: A 5 + 3 + 3 + 3 = 14 (mean 3.5), B 0 + 1 + 0 + 1 = 2 (mean 0.5); the day is the
    # last period's (A 56, B 57). C lacks period 3's count and D period 4: no pair, not 45 or 6.
    post = {"sum": (14.0, 2.0), "mean": (3.5, 0.5)}[combine]
    assert pairs == [
        ("A", "base", 11.0, "post_total", 56, post[0]),
        ("B", "base", 8.0, "post_total", 57, post[1]),
    ]
    summary = con.execute("SELECT * FROM epilepsy.pairing_summary").df().iloc[0]
    assert (summary["subjects"], summary["paired"]) == (4, 2)
    # C and D are counted under their own reason, not as a score not computable.
    assert summary["derived_visit_incomplete"] == 2 and summary["not_computable"] == 0
    reasons = dict(
        con.execute(
            "SELECT subject, reason FROM epilepsy.derived_scores WHERE value IS NULL"
        ).fetchall()
    )
    assert reasons == {
        "C": 'derived visit post_total: no value at v3 (require = "all")',
        "D": 'derived visit post_total: no value at v4 (require = "all")',
    }
    # The missing-data table has the derived visit: 4 patients with its visits, 2 with a value.
    missing = missing_values(con, study)
    row = missing[(missing["row"] == "visit") & (missing["visit"] == "post_total")].iloc[0]
    assert (row["subjects"], row["present"], row["missing"]) == (4, 2, 2)
    assert "v1, v2, v3, v4" in row["note"] and "every one" in row["note"]


def test_a_rule_not_naming_the_derived_visit_never_picks_it(tmp_path):
    # The last follow-up among real visits: period 4 (A 3, B 1), or C's period 4, D's period 3.
    spec = SPEC.replace(
        'post = {{ rule = "named_visit", visit = "post_total", min_day = 1 }}',
        'post = {{ rule = "last_followup", min_day = 1 }}',
    )
    study = load_study(
        write_study(tmp_path / "epilepsy", PATIENTS, VISITS, spec.format(combine="sum"))
    )
    con = duckdb.connect()
    ingest_study(con, study)
    score_study(con, study)
    pair_study(con, study)
    pairs = con.execute(
        "SELECT subject, post_visit, post_value FROM epilepsy.pairs ORDER BY subject"
    ).fetchall()
    assert pairs == [("A", "v4", 3.0), ("B", "v4", 1.0), ("C", "v4", 21.0), ("D", "v3", 0.0)]


def test_derived_visit_spec_errors(tmp_path):
    clash = VISITS + "    A,post_total,70,1\n"
    with pytest.raises(SpecError, match="'visits.derived' names a visit code the visits file"):
        _run(tmp_path, visits=clash)
    for bad, message in (
        ('visits = ["v1"]', "must list two or more visit codes"),
        ('visits = ["v1", "v2"], combine = "median"', "combine"),
    ):
        spec = SPEC.replace('visits = ["v1", "v2", "v3", "v4"], combine = "{combine}"', bad)
        folder = write_study(tmp_path / "bad", PATIENTS, VISITS, spec.format(combine="sum"))
        with pytest.raises(SpecError, match=message):
            load_study(folder)


@pytest.mark.parametrize(("day", "expected"), [('"first"', [14, 14]), ("60", [60, 60])])
def test_derived_visit_day_as_stated(tmp_path, day, expected):
    spec = SPEC.replace('require = "all" }}', f'require = "all", day = {day} }}}}')
    study = load_study(
        write_study(tmp_path / "epilepsy", PATIENTS, VISITS, spec.format(combine="sum"))
    )
    con = duckdb.connect()
    ingest_study(con, study)
    score_study(con, study)
    pair_study(con, study)
    # A's and B's first period is day 14; a nominal day is every patient's.
    days = con.execute("SELECT post_day FROM epilepsy.pairs ORDER BY subject").fetchall()
    assert [d for (d,) in days] == expected
