"""Pairing rules, checked on a hand-built scores table."""

from __future__ import annotations

import duckdb

from pipeline.pairing import pair_study
from pipeline.spec.study import load_study


def scored(subjects: list[str], values: str) -> duckdb.DuckDBPyConnection:
    """A warehouse holding only ``tiny.subjects`` and a ``tiny.scores`` of House-Brackmann grades
    by the observer: ``values`` are SQL rows (subject, visit, day, value)."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA tiny")
    con.execute("CREATE TABLE tiny.subjects AS SELECT unnest(?) AS subject", [subjects])
    con.execute(f"""
        CREATE TABLE tiny.scores AS SELECT * FROM (VALUES {values}) t(subject, visit, day, value)
        CROSS JOIN (SELECT 'house_brackmann' AS instrument, 'observer' AS rater, 'grade' AS score,
                           NULL::VARCHAR AS reason)
    """)
    return con


def test_pre_is_latest_preoperative_and_post_is_last_followup_with_a_value(tiny_study):
    con = scored(
        ["A", "B", "C"],
        """
        ('A', 'pre1', -40, 5.0), ('A', 'pre2', -2, 4.0), ('A', 'm3', 92, 3.0),
        ('A', 'm12', 400, NULL),
        ('B', 'pre', 0, 3.0), ('B', 'm6', 89, 2.0),
        ('C', 'pre', -1, 6.0), ('C', 'm6', 90, 4.0), ('C', 'last', 500, 2.0)""",
    )
    pair_study(con, load_study(tiny_study))
    pairs = con.execute(
        "SELECT subject, pre_visit, pre_value, post_visit, post_value, diff FROM tiny.pairs"
    ).fetchall()
    # A: pre2 is the latest pre-operative visit; m12 has no value, so post falls back to m3.
    # B: day 0 counts as pre-operative; day 89 is short of the 90-day minimum -> no pair.
    # C: day 90 qualifies but the last follow-up (day 500) is taken.
    assert pairs == [("A", "pre2", 4.0, "m3", 3.0, -1.0), ("C", "pre", 6.0, "last", 2.0, -4.0)]
    summary = con.execute(
        "SELECT subjects, with_pre, with_post, paired FROM tiny.pairing_summary"
    ).fetchall()
    assert summary == [(3, 3, 2, 2)]


def test_ties_on_a_day_go_to_the_later_visit_code_and_equal_distances_to_the_later_day(tiny_study):
    from pipeline.spec.study import with_overrides

    con = scored(
        ["A", "B"],
        """
        ('A', 'pre', -3, 5.0), ('A', 'preop', -3, 4.0), ('A', 'Pre', -3, 7.0),
        ('A', 'm3', 100, 3.0),
        ('A', 'm3b', 100, 1.0), ('A', 'm6', 140, 2.0),
        ('B', 'pre', 0, 6.0), ('B', 'a', 110, 2.0), ('B', 'b', 130, 1.0), ('B', 'c', 130, 5.0)""",
    )
    study = load_study(tiny_study)
    query = "SELECT subject, pre_visit, pre_value, post_visit, post_day, post_value FROM tiny.pairs"
    pair_study(con, study)
    # Byte order of visit codes: 'preop' > 'pre' > 'Pre'; 'm6' is the last follow-up.
    assert con.execute(query).fetchall() == [
        ("A", "preop", 4.0, "m6", 140, 2.0),
        ("B", "pre", 6.0, "c", 130, 5.0),
    ]
    pair_study(con, with_overrides(study, {"post_rule": "nearest_day", "post_target_day": 120}))
    # A: day 100 and day 140 are both 20 away -> the later day; B: 'a' (110) and 'b'/'c' (130) are
    # 10 away -> day 130, and of its two visits the later code.
    assert con.execute(query).fetchall() == [
        ("A", "preop", 4.0, "m6", 140, 2.0),
        ("B", "pre", 6.0, "c", 130, 5.0),
    ]
    pair_study(con, with_overrides(study, {"post_rule": "nearest_day", "post_target_day": 100}))
    assert con.execute(query).fetchall() == [
        ("A", "preop", 4.0, "m3b", 100, 1.0),
        ("B", "pre", 6.0, "a", 110, 2.0),
    ]
