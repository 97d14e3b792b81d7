"""The planned outcomes at every visit, summarised in the warehouse.

The missing-data table and the mixed model use every observed value of every planned
outcome, not just the pairs: at registry size that is millions of values. They are counted
and coded here in DuckDB, one outcome at a time, so no table of millions of strings is built
in Python; the statistics themselves are those of :mod:`pipeline.statistics.missing` and
:mod:`pipeline.statistics.longitudinal`, with the same results as from the full table.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from pipeline.pairing import outcomes_frame, planned_scores_sql
from pipeline.spec.study import Study
from pipeline.warehouse import read_frame


def missing_values(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """:func:`pipeline.statistics.missing.missing_data` for the study's planned outcomes."""
    from pipeline.statistics.missing import missing_data_counts

    s = study.name
    planned = outcomes_frame(study)
    # A score has one row per subject and visit (a visit is recorded once), so rows count subjects.
    present = read_frame(
        con,
        f"""
        SELECT outcome, score, visit, count(*) AS n
        FROM ({planned_scores_sql(study, missing=False)}) GROUP BY ALL""",
    )
    present = present.set_index(["outcome", "score", "visit"])["n"]
    # Ordered as pandas orders them: by visit code, then stably by median day.
    per_visit = read_frame(
        con,
        f"""
        SELECT visit, median(day) AS median_day, count(DISTINCT subject) AS subjects
        FROM {s}.visits GROUP BY visit{_derived_visit_counts(study)}
        ORDER BY median_day, visit""",
    ).set_index("visit")
    summary = read_frame(con, f"SELECT * FROM {s}.pairing_summary")
    n_subjects = int(
        con.execute(f"SELECT count(DISTINCT subject) FROM {s}.visits").fetchall()[0][0]
    )
    counts = missing_data_counts(
        present, per_visit, summary, planned[["outcome", "score"]], n_subjects
    )
    # A derived visit's row says what it is made of, and why a value is missing there.
    for d in study.derived_visits:
        counts.loc[(counts["row"] == "visit") & (counts["visit"] == d.name), "note"] = (
            f"{d.combine} of {', '.join(d.visits)}; subjects: with any of them; missing unless "
            f'every one has a value (require = "{d.require}")'
        )
    return counts


def _derived_visit_counts(study: Study) -> str:
    """The derived visits' rows of :func:`missing_values`' visit counts: the patients with any
    of a derived visit's visits (those with a row in ``<study>.derived_scores``)."""
    if not study.derived_visits:
        return ""
    from pipeline.spec.study import DERIVED_SCORES

    return (
        " UNION ALL SELECT visit, median(day) AS median_day, count(DISTINCT subject) AS subjects "
        f"FROM {study.name}.{DERIVED_SCORES} GROUP BY visit"
    )


def visit_estimates(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """:func:`pipeline.statistics.longitudinal.visit_means` for every planned outcome, in plan
    order.

    Each outcome's values are read as integer codes (subject, visit) with day and value and
    fitted from sufficient statistics (:func:`~pipeline.statistics.longitudinal.visit_means_coded`),
    one outcome at a time so a registry never holds more than one outcome's values.
    """
    from pipeline.statistics.longitudinal import COLUMNS, visit_means_coded

    s, plan = study.name, study.analysis
    queries = planned_scores_sql(study, missing=False, separate=True)
    # Integer codes for subjects and visits, made once.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE subject_codes AS
                    SELECT subject, row_number() OVER (ORDER BY subject) AS code
                    FROM {s}.subjects""")
    labels = [
        v
        for (v,) in con.execute(f"SELECT DISTINCT visit FROM {s}.visits ORDER BY visit").fetchall()
    ]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE visit_codes AS "
        "SELECT unnest(?::VARCHAR[]) AS visit, generate_subscripts(?::VARCHAR[], 1) - 1 AS code",
        [labels, labels],
    )
    frames = []
    try:
        for o, sql in zip(outcomes_frame(study).itertuples(index=False), queries):
            coded = con.execute(f"""
                SELECT sc.code AS subject, vc.code AS visit, o.day, o.value
                FROM ({sql}) o JOIN subject_codes sc USING (subject)
                JOIN visit_codes vc USING (visit)
            """).fetchnumpy()
            frames.append(
                visit_means_coded(
                    o.outcome,
                    o.score,
                    coded["subject"],
                    coded["visit"],
                    labels,
                    coded["day"],
                    coded["value"],
                    random_slope=plan.random_slope,
                    conf_level=plan.conf_level,
                )
            )
    finally:
        con.execute("DROP TABLE IF EXISTS subject_codes")
        con.execute("DROP TABLE IF EXISTS visit_codes")
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
