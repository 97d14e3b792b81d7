"""Pre/post pairs: for each planned outcome, one pre and one post value per subject.

The visit rules come from the study spec's analysis plan:

* pre: the latest assessment on or before ``pre.max_day`` (default day 0, the
  day of surgery), and on or after ``pre.min_day`` if the spec sets a window,
  that has a value for this outcome;
* post, by ``post.rule``, among assessments with a value inside the window
  ``post.min_day`` to ``post.max_day`` (either bound optional):

  - ``last_followup`` (default): the last one (``min_day`` defaults to 90);
  - ``named_visit``: the one coded ``post.visit`` (e.g. ``"m12"``);
  - ``nearest_day``: the one nearest ``post.target_day``; at equal distance the
    later one.

Rules apply per outcome: a patient whose last visit lacks one score is paired
on that score with their latest visit that has it. Ties on the same day are
broken by visit code, so the choice is deterministic.

Each included patient without a pair for an outcome is counted under one reason of
:data:`pipeline.statistics.flow.NOT_ANALYSED`, the first that applies, so that per outcome
the included patients are the paired ones plus the sum of the reasons.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from pipeline.ingest.ingestion import file_labels
from pipeline.ingest.redcap import REPEAT_INSTRUMENT
from pipeline.spec.study import Study, item_columns
from pipeline.sql import literal
from pipeline.statistics.flow import NOT_ANALYSED
from pipeline.warehouse import atomic


def outcomes_frame(study: Study) -> pd.DataFrame:
    """The analysis plan's outcomes in spec order, with scoring version, labels and better
    direction."""
    versions = {s.instrument: s.version for s in study.instruments}
    rows = []
    for position, outcome in enumerate(study.analysis.outcomes, start=1):
        instrument = study.instrument(outcome.instrument)
        version = versions.get(outcome.instrument, "")
        score = instrument.score(outcome.score, version or None)
        # A custom measure's one score is the measure itself: no "value" suffix.
        label = (
            instrument.label
            if score.name == "value" and len(instrument.scores) == 1
            else f"{instrument.label} {score.label.lower()}"
        )
        # Where published definitions of this score disagree, the version that produced the
        # number is said in a footnote (version_note), not in the label a reader sees in every
        # table and figure; a score defined the same way in every version needs no note.
        versioned = bool(version and score.versions)
        qualifiers = [q for q in (outcome.rater,) if q]
        rows.append(
            {
                "position": position,
                "outcome": outcome.name,
                "instrument": outcome.instrument,
                "rater": outcome.rater,
                "score": outcome.score,
                "version": version,
                "version_note": (
                    f"{instrument.label}, {instrument.version(version).label}" if versioned else ""
                ),
                "label": f"{label} ({', '.join(qualifiers)})" if qualifiers else label,
                "higher_is_better": score.higher_is_better,
                "test": study.analysis.test_for(outcome),
                # The unit of a measure in its own units (a dose), for the tables' row labels.
                "unit": score.unit,
                # score, binary or categorical (pipeline.statistics.binary): how it is tested.
                "kind": outcome.kind,
            }
        )
    return pd.DataFrame(rows)


#: The source a threshold the spec gives is recorded under.
SPEC_SOURCE = "study spec"


def responder_thresholds(study: Study) -> pd.DataFrame:
    """The minimal important change each responder analysis uses, and where it comes from.

    Every planned outcome whose score declares a published minimal important change for
    improvement (:class:`pipeline.instruments.model.MinimalChange`, ``mic_improvement``) uses
    it, cited by its ``source``; ``[analysis] responders`` overrides it or adds outcomes
    (source :data:`SPEC_SOURCE`). Columns ``outcome, score, threshold, source``, in the plan's
    order of outcomes; an outcome with neither has no row."""
    given = dict(study.analysis.responders)
    versions = {s.instrument: s.version for s in study.instruments}
    rows = []
    for outcome in study.analysis.outcomes:
        if outcome.name in given:
            rows.append((outcome.name, outcome.score, float(given[outcome.name]), SPEC_SOURCE))
            continue
        score = study.instrument(outcome.instrument).score(
            outcome.score, versions.get(outcome.instrument) or None
        )
        mic = score.minimal_change
        if mic is not None and mic.mic_improvement is not None and mic.mic_improvement > 0:
            rows.append((outcome.name, outcome.score, float(mic.mic_improvement), mic.source))
    return pd.DataFrame(rows, columns=["outcome", "score", "threshold", "source"])


def planned_tests(study: Study) -> dict:
    """The plan's choices every paired analysis takes, as keyword arguments of
    :func:`~pipeline.statistics.paired.paired_tests` and
    :func:`~pipeline.statistics.items.item_changes`: each outcome's test, the descriptions of
    the pre and post visits, the confidence level, alpha and the multiplicity adjustment."""
    plan = study.analysis
    planned = outcomes_frame(study)
    return {
        "test": dict(zip(planned["outcome"], planned["test"])),
        "pre_visit": plan.pre_label,
        "post_visit": plan.post_label,
        "conf_level": plan.conf_level,
        "alpha": plan.alpha,
        "multiplicity": plan.multiplicity,
    }


def planned_scores_sql(
    study: Study, *, missing: bool = True, separate: bool = False, reason: bool = False
) -> str | list[str]:
    """SQL for the planned outcomes' scores at every visit:
    ``position, outcome, score, subject, visit, day, value`` (unordered).

    One branch per outcome naming its instrument, rater and score as constants, so each reads
    one column of one score table behind the ``scores`` view (a join on the plan would read
    every score of every instrument). ``missing``: keep visits where the score has no value;
    ``separate``: the list of per-outcome queries instead of their union; ``reason``: add the
    ``reason`` column (why the value is missing).
    """
    branches = [
        f"SELECT {o.position} AS position, {literal(o.outcome)} AS outcome, {literal(o.score)} AS "
        "score, "
        f"subject, visit, day, value{', reason' if reason else ''} "
        f"FROM {study.name}.scores WHERE instrument = "
        f"{literal(o.instrument)} "
        f"AND rater = {literal(o.rater)} AND score = {literal(o.score)}"
        + ("" if missing else " AND value IS NOT NULL")
        for o in outcomes_frame(study).itertuples(index=False)
    ]
    if not branches:
        branches = [
            "SELECT NULL::BIGINT AS position, NULL::VARCHAR AS outcome, NULL::VARCHAR AS score, "
            "NULL::VARCHAR AS subject, NULL::VARCHAR AS visit, NULL::INTEGER AS day, "
            "NULL::DOUBLE AS value"
            + (", NULL::VARCHAR AS reason" if reason else "")
            + " WHERE FALSE"
        ]
    return branches if separate else " UNION ALL ".join(branches)


@atomic  # pairs and pairing_summary replaced together, or neither
def pair_study(con: duckdb.DuckDBPyConnection, study: Study) -> None:
    """Build ``<study>.pairs`` (one row per outcome and subject with both values) and
    ``<study>.pairing_summary``.

    ``pairing_summary`` has one row per outcome with at least one pre or post value, in plan
    order: ``outcome, score``; ``subjects`` (included patients); ``with_pre``, ``with_post``
    (patients with a pre / post value); ``paired`` (both: analysed); then one column per reason
    of :data:`pipeline.statistics.flow.NOT_ANALYSED` (named as the reason), the included
    patients not analysed for it. ``subjects = paired + sum of the reason columns``.
    """
    s, plan = study.name, study.analysis
    pre_window = f"day <= {int(plan.pre_max_day)}"
    if plan.pre_min_day is not None:
        pre_window += f" AND day >= {int(plan.pre_min_day)}"
    post_window = f"day >= {int(plan.post_min_day)}"
    if plan.post_max_day is not None:
        post_window += f" AND day <= {int(plan.post_max_day)}"
    # Each rule picks, per outcome and subject, the visit with the largest key: (day, visit) for
    # the latest (ties on a day broken by visit code), (-|day - target|, day, visit) for the
    # nearest (at equal distance the later). One grouped pass per outcome instead of sorting
    # every observed value twice. (subject, visit) is unique, so the key is, and the largest
    # struct that starts with the key and ends with the value is the picked visit's: max() of
    # one struct costs less than arg_max() of a struct by another.
    latest = "struct_pack(day := day, visit := visit, value := value)"
    key = latest
    if plan.pre_rule == "named_visit":
        pre_window += f" AND visit = {literal(plan.pre_visit)}"
    if not plan.days:
        # Visits known by their codes alone: both rules are named visits (spec.study), no window.
        pre_window = f"visit = {literal(plan.pre_visit)}"
        post_window = "TRUE"
    if plan.post_rule == "named_visit":
        post_window += f" AND visit = {literal(plan.post_visit)}"
    elif plan.post_rule == "nearest_day":
        key = (
            f"struct_pack(nearest := -abs(day - {int(plan.post_target_day)}), "
            "day := day, visit := visit, value := value)"
        )
    # The outcome's position stands for its name and score until the tables are written:
    # shorter hash keys and a narrower temp table of picks. Every assessment is read, with or
    # without a value: where the outcome was assessed, and why a value is missing there, give the
    # reason a patient is not analysed (statistics.flow.NOT_ANALYSED) in the same grouped pass.
    # A score missing for an item refused at ingest says so in its reason (instruments/sql.py).
    has_value = "value IS NOT NULL"
    # After surgery: a positive day, or without days any visit but the one before.
    postop = "day > 0" if plan.days else f"visit <> {literal(plan.pre_visit)}"
    refused = "value IS NULL AND contains(reason, ' refused at ingest: ')"
    # A visit row refused whole at ingest (its day unreadable, its visit code twice, ...) of an
    # accepted patient: the quarantine keeps the patient's code. Its day may be unknown, so it
    # may have been the missing assessment in any window. A refused row of the long layout
    # names its item, so counts for that item's outcomes only; one naming an item no instrument
    # maps counts for none.
    _refused_rows(con, study)
    outcomes = outcomes_frame(study)
    branches = planned_scores_sql(study, missing=True, separate=True, reason=True)
    refused_rows = [
        f" UNION ALL SELECT {o.position}, NULL, NULL, subject, NULL, NULL, NULL, NULL, TRUE "
        "FROM pair_refused_rows WHERE instrument IS NULL "
        f"OR (instrument = {literal(o.instrument)} AND rater = {literal(o.rater)})"
        for o in outcomes.itertuples(index=False)
    ]
    picks = " UNION ALL ".join(
        f"SELECT position, subject, "
        f"max({latest}) FILTER (WHERE {has_value} AND {pre_window}) AS pre, "
        f"max({key}) FILTER (WHERE {has_value} AND {post_window}) AS post, "
        f"coalesce(bool_or({pre_window}), FALSE) AS pre_assessed, "
        f"coalesce(bool_or({postop} OR ({post_window})), FALSE) AS postop_assessed, "
        f"coalesce(bool_or({post_window}), FALSE) AS post_assessed, "
        f"coalesce(bool_or({refused}) FILTER (WHERE {pre_window}), FALSE) AS pre_refused, "
        f"coalesce(bool_or({refused}) FILTER (WHERE {post_window}), FALSE) AS post_refused, "
        "bool_or(row_refused) AS row_refused "
        f"FROM (SELECT *, FALSE AS row_refused FROM ({branch}){rows}) "
        "GROUP BY position, subject"
        # (No outcome planned: one empty branch, and no refused rows to add.)
        for branch, rows in zip(branches, refused_rows or [""])
    )
    # The first reason that applies, as its place in NOT_ANALYSED (from 1); NULL when paired.
    first_reason = {
        "no_pre_assessment": "pre IS NULL AND NOT pre_assessed AND NOT row_refused",
        "no_postop_assessment": "post IS NULL AND NOT postop_assessed AND NOT row_refused",
        "no_followup_in_window": "post IS NULL AND NOT post_assessed AND NOT row_refused",
        "refused_at_ingest": "(pre IS NULL AND pre_refused) OR (post IS NULL AND post_refused) "
        "OR row_refused",
        "not_computable": "TRUE",
    }
    reason_case = (
        "CASE WHEN pre IS NOT NULL AND post IS NOT NULL THEN NULL "
        + " ".join(
            f"WHEN {first_reason[r.name]} THEN {i}" for i, r in enumerate(NOT_ANALYSED, start=1)
        )
        + " END"
    )
    names = {
        column: "CAST(["
        + ", ".join(literal(v) for v in outcomes.get(column, []))
        + "] AS VARCHAR[])"
        for column in ("outcome", "score")
    }
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pair_picks AS
        SELECT position, subject, pre, post, {reason_case} AS reason FROM ({picks})
    """)
    con.execute(f"""
        CREATE OR REPLACE TABLE {s}.pairs AS
        SELECT {names["outcome"]}[position] AS outcome, {names["score"]}[position] AS score,
        subject,
               pre.visit AS pre_visit, pre.day AS pre_day, pre.value AS pre_value,
               post.visit AS post_visit, post.day AS post_day, post.value AS post_value,
               post.value - pre.value AS diff
        FROM pair_picks WHERE pre IS NOT NULL AND post IS NOT NULL
        ORDER BY position, subject
    """)
    # Included patients with no assessment of an outcome at all have no pick: they are counted
    # as having no pre-operative assessment. An outcome without a single pre or post value has
    # no row, as before these counts were added.
    counts = ", ".join(
        f"count(*) FILTER (WHERE reason = {i})"
        + (" + (SELECT count(*) FROM subjects) - count(*)" if i == 1 else "")
        + f" AS {r.name}"
        for i, r in enumerate(NOT_ANALYSED, start=1)
    )
    con.execute(f"""
        CREATE OR REPLACE TABLE {s}.pairing_summary AS
        WITH subjects AS (SELECT subject FROM {s}.subjects)
        SELECT {names["outcome"]}[position] AS outcome, {names["score"]}[position] AS score,
               (SELECT count(*) FROM subjects) AS subjects,
               count(pre) AS with_pre,
               count(post) AS with_post,
               count(*) FILTER (WHERE pre IS NOT NULL AND post IS NOT NULL) AS paired,
               {counts}
        FROM pair_picks WHERE subject IN (SELECT subject FROM subjects)
        GROUP BY outcome, score HAVING count(pre) + count(post) > 0 ORDER BY min(position)
    """)
    _imputed_values(con, study, outcomes)
    con.execute("DROP TABLE pair_picks")
    con.execute("DROP TABLE pair_refused_rows")


def _imputed_values(con: duckdb.DuckDBPyConnection, study: Study, outcomes: pd.DataFrame) -> None:
    """``<study>.imputation_values``: the pre and post values (either may be missing) of every
    included patient with one of them, for the outcome the plan imputes, picked by the same
    rules as the pairs; dropped when the plan imputes none."""
    s, plan = study.name, study.analysis.imputation
    if plan is None:
        con.execute(f"DROP TABLE IF EXISTS {s}.imputation_values")
        return
    position = int(outcomes.loc[outcomes["outcome"] == plan.outcome, "position"].iloc[0])
    con.execute(f"""
        CREATE OR REPLACE TABLE {s}.imputation_values AS
        SELECT subject, pre.value AS pre_value, post.value AS post_value
        FROM pair_picks WHERE position = {position}
          AND subject IN (SELECT subject FROM {s}.subjects)
          AND (pre IS NOT NULL OR post IS NOT NULL)
        ORDER BY subject
    """)


def _refused_rows(con: duckdb.DuckDBPyConnection, study: Study) -> None:
    """Temp table ``pair_refused_rows`` (``subject, instrument, rater``): the accepted patients
    with a row of the visits file refused at ingest, with the instrument and rater of the item
    the row holds (long layout), or NULL when the row may hold any (a visit row)."""
    kept = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? "
        "AND table_name = 'quarantine' AND column_name = 'subject'",
        [study.name],
    ).fetchall()[0][0]
    if not kept:  # pairs of scores with no ingest behind them, or one from before the code
        con.execute(
            "CREATE OR REPLACE TEMP TABLE pair_refused_rows (subject VARCHAR, instrument "
            "VARCHAR, rater VARCHAR)"
        )
        return
    mapping = item_columns(study)[["column", "instrument", "rater"]]
    con.register("pair_item_columns", mapping)
    # Rows that were never an assessment: a long-layout row of an item no instrument maps, a
    # REDCap row of a repeating instrument that is not the grading one (an adverse event, say).
    not_visits = [study.visit_item] if study.visits_layout == "long" else []
    if study.redcap:
        not_visits.append(REPEAT_INSTRUMENT)
    excluded = ", ".join(literal(c) for c in not_visits) or "''"
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE pair_refused_rows AS
            SELECT DISTINCT q.subject, m.instrument, m.rater
            FROM {study.name}.quarantine q LEFT JOIN pair_item_columns m USING ("column")
            WHERE q.file = {literal(file_labels(study)[1])} AND q.scope = 'row'
              AND q.subject IS NOT NULL AND coalesce(q."column", '') NOT IN ({excluded})
        """)
    finally:
        con.unregister("pair_item_columns")
