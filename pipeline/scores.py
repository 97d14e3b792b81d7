"""Scores: every mapped instrument scored at every visit, in the warehouse.

Writes ``<study>.scores_<instrument>`` (one table per instrument), the view ``<study>.scores``
and ``<study>.item_findings`` (one row per missing or refused item), from the item values
ingestion stored, with the SQL of :mod:`pipeline.instruments.sql`.
"""

from __future__ import annotations

import duckdb

from pipeline import progress
from pipeline.ingest.ingestion import file_labels
from pipeline.instruments.model import Instrument
from pipeline.instruments.sql import findings_sql, scored_columns_sql, scored_sql, scores_view_sql
from pipeline.spec.study import DERIVED_SCORES, Study, item_columns
from pipeline.sql import literal, quote
from pipeline.warehouse import atomic, relation_kind, replace_relation


def _quarantined_cells(con: duckdb.DuckDBPyConnection, study: Study) -> str:
    """A temp view of item values refused at ingest, keyed like item responses."""
    con.register("scoring_item_columns", item_columns(study))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE scoring_quarantined AS
        SELECT v.subject, v.visit, v.day, m.instrument, m.rater, m.item, q.value AS raw, q.reason AS
        problem
        FROM {study.name}.quarantine q
        JOIN {study.name}.visits v ON v.line = q.line
        JOIN scoring_item_columns m ON m."column" = q."column"
        WHERE q.scope = 'value' AND q.file = {literal(file_labels(study)[1])}
    """)
    con.unregister("scoring_item_columns")
    return "scoring_quarantined"


def _refused_cells(con: duckdb.DuckDBPyConnection, study: Study) -> str:
    """A temp table of the item values refused at ingest: ``line, column, raw, problem``."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE scoring_refused AS
        SELECT line, "column", value AS raw, reason AS problem FROM {study.name}.quarantine
        WHERE scope = 'value' AND file = {literal(file_labels(study)[1])}
    """)
    return "scoring_refused"


@atomic  # scores and item_findings replaced together, or neither
def score_study(con: duckdb.DuckDBPyConnection, study: Study) -> None:
    """Score every instrument the study maps, with the scoring version its spec selects.

    Writes ``<study>.scores_<instrument>`` (one row per subject, visit and rater, one column per
    score and one ``<score>:reason`` per score, in no particular order: order by subject, day,
    visit and rater where order matters) and replaces ``<study>.scores``, the long view of
    them (one row per subject, visit, instrument, rater and score: ``subject, visit, day,
    instrument, rater, score, value, version, reason``; ``reason`` says why ``value`` is
    missing), and ``<study>.item_findings`` (one row per missing or refused item: see
    :func:`findings_sql`). Items come from ``<study>.item_values`` when ingestion wrote one
    column per item, else from ``<study>.item_responses``.
    """
    s = study.name
    by_column = relation_kind(con, f"{s}.item_values") == "TABLE"
    if by_column:
        mapping = item_columns(study)
        refused = _refused_cells(con, study)
    else:
        quarantined = _quarantined_cells(con, study)
    written: list[tuple[Instrument, str, str]] = []
    con.execute("""CREATE OR REPLACE TEMP TABLE scoring_findings (study VARCHAR, subject VARCHAR,
    visit VARCHAR,
                   day INTEGER, instrument VARCHAR, rater VARCHAR, item VARCHAR, value VARCHAR,
                   finding VARCHAR,
                   scores_missing VARCHAR)""")
    for source in study.instruments:
        instrument = study.instrument(source.instrument)
        version = getattr(source, "version", "") or None
        side_column = getattr(source, "side_column", "")
        if instrument.sided and side_column not in study.subject_columns:
            from pipeline.spec.study import SpecError

            raise SpecError(
                f"{study.spec_path}: setting 'instruments.{source.instrument}.side' must name a "
                f"column listed in subjects.columns that holds left/right; got {side_column!r}."
            )
        resolved = instrument.resolve_version(version)
        table = f"{s}.scores_{source.instrument}"
        kept = ", ".join(
            f"{quote(sc.name)}, {quote(sc.name + ':reason')}"
            for sc in instrument.scores_for(resolved)
        )
        replace_relation(con, table, "TABLE")
        # The score table in no particular order: it is read through the scores view, which has
        # none either, and sorting hundreds of thousands of wide rows was a tenth of the step.
        write_scores = (
            f"CREATE OR REPLACE TABLE {table} AS SELECT subject, visit, day, rater, {kept} FROM "
        )
        # scoring_wide holds the wide scoring (every item, problem and score column) of one
        # instrument at a time, for its item findings.
        with progress.step(f"scoring {instrument.label}"):
            if by_column:
                mine = mapping[mapping["instrument"] == source.instrument]
                columns = {(m.rater, m.item): m.column for m in mine.itertuples(index=False)}
                sql, flagged = (
                    scored_columns_sql(
                        instrument,
                        f"{s}.item_values",
                        columns,
                        version,
                        refused=refused,
                        subjects=f"{s}.subjects",
                        side_column=side_column,
                        flagged_only=only,
                    )
                    for only in (False, True)
                )
                # Scored straight into the table, and scored again only for the visits with an item
                # missing or refused (a minority): writing every row's item columns to a temp
                # table, to read the scores back from it, cost more than the second pass. Nothing
                # in either pass depends on row order, so reasons and findings agree.
                con.execute(write_scores + f"({sql})")
                con.execute(f"CREATE OR REPLACE TEMP TABLE scoring_wide AS {flagged}")
            else:
                # From item responses a problem's text aggregates rows in no set order, so the
                # scores and the findings are both taken from one materialised scoring.
                sql = scored_sql(
                    instrument,
                    f"{s}.item_responses",
                    version,
                    quarantined=quarantined,
                    subjects=f"{s}.subjects",
                    side_column=side_column,
                )
                con.execute(f"CREATE OR REPLACE TEMP TABLE scoring_wide AS {sql}")
                con.execute(write_scores + "scoring_wide")
        con.execute(
            f"INSERT INTO scoring_findings {findings_sql(instrument, 'scoring_wide', s, resolved)}"
        )
        written.append((instrument, resolved, table))
    con.execute("DROP TABLE IF EXISTS scoring_wide")
    current = {t.split(".", 1)[1] for _, _, t in written}
    for (stale,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
        "AND table_catalog = current_database() AND table_type = 'BASE TABLE' "
        "AND starts_with(table_name, 'scores_')",
        [s],
    ).fetchall():
        if stale not in current:
            con.execute(f"DROP TABLE {s}.{quote(stale)}")
    replace_relation(con, f"{s}.scores", "VIEW")
    con.execute(f"CREATE VIEW {s}.scores AS {scores_view_sql(s, written)}")
    derive_visits(con, study)
    con.execute(f"""
        CREATE OR REPLACE TABLE {s}.item_findings AS
        SELECT * FROM scoring_findings ORDER BY subject, day, visit, instrument, rater, item
    """)
    con.execute("DROP TABLE scoring_findings")


def derive_visits(con: duckdb.DuckDBPyConnection, study: Study) -> None:
    """``<study>.derived_scores``: every score of every instrument at each derived visit of
    ``[visits.derived]`` (the columns of ``<study>.scores``), computed from the scores at its
    visits; dropped when the spec declares none.

    Per patient, instrument, rater and score that has a row at any of the derived visit's
    visits, ``value`` is ``sum(value)`` (``combine = "sum"``) or ``avg(value)`` (``"mean"``) over
    them when every one has a value (``require = "all"``); otherwise NULL, and ``reason`` names
    the visits without one (a visit the patient did not have, or a score not computable there):
    never a partial sum. ``day`` is the latest (``day = "last"``) or earliest (``"first"``) day
    of its visits the patient had, or the nominal day the spec gives. A patient with none of the
    visits has no row.
    """
    s = study.name
    replace_relation(con, f"{s}.{DERIVED_SCORES}", None)
    if not study.derived_visits:
        return
    from pipeline.spec.study import SpecError

    codes = ", ".join(literal(d.name) for d in study.derived_visits)
    (clash,) = con.execute(f"SELECT count(*) FROM {s}.visits WHERE visit IN ({codes})").fetchone()
    if clash:
        raise SpecError(
            f"{study.spec_path}: setting 'visits.derived' names a visit code the visits file "
            f"{study.visits_file} already has; give the derived visit a code of its own."
        )
    branches = []
    for d in study.derived_visits:
        members = "[" + ", ".join(literal(v) for v in d.visits) + "]"
        combine = {"sum": "sum", "mean": "avg"}[d.combine]
        day = {"last": "max(sc.day)", "first": "min(sc.day)"}.get(str(d.day)) or str(int(d.day))
        lacking = (
            f"{literal('derived visit ' + d.name + ': no value at ')} || "
            "string_agg(m.visit, ', ' ORDER BY m.k) FILTER (WHERE sc.value IS NULL) || "
            f"{literal(' (require = ' + chr(34) + d.require + chr(34) + ')')}"
        )
        branches.append(f"""
            SELECT g.subject, {literal(d.name)} AS visit, CAST({day} AS INTEGER) AS day,
                   g.instrument, g.rater, g.score,
                   CASE WHEN count(sc.value) = {len(d.visits)} THEN {combine}(sc.value) END
                       AS value,
                   g.version,
                   CASE WHEN count(sc.value) < {len(d.visits)} THEN {lacking} END AS reason
            FROM (SELECT DISTINCT subject, instrument, rater, score, version FROM {s}.scores
                  WHERE visit IN (SELECT unnest({members}))) g
            CROSS JOIN (SELECT unnest({members}) AS visit,
                               generate_subscripts({members}, 1) AS k) m
            LEFT JOIN {s}.scores sc ON sc.subject = g.subject AND sc.instrument = g.instrument
                AND sc.rater = g.rater AND sc.score = g.score AND sc.visit = m.visit
            GROUP BY g.subject, g.instrument, g.rater, g.score, g.version""")
    con.execute(f"CREATE TABLE {s}.{DERIVED_SCORES} AS " + " UNION ALL ".join(branches))
