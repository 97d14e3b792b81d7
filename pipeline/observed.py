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
from pipeline.study import Study
from pipeline.warehouse import read_frame


def missing_values(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """:func:`pipeline.statistics.missing.missing_data` for the study's planned outcomes."""
    from pipeline.statistics.missing import missing_data_counts

    s = study.name
    planned = outcomes_frame(study)
    present = read_frame(con, f"""
        SELECT outcome, score, visit, count(DISTINCT subject) AS n
        FROM ({planned_scores_sql(study, missing=False)}) GROUP BY ALL""")
    present = present.set_index(["outcome", "score", "visit"])["n"]
    # Ordered as pandas orders them: by visit code, then stably by median day.
    per_visit = read_frame(con, f"""
        SELECT visit, median(day) AS median_day, count(DISTINCT subject) AS subjects
        FROM {s}.visits GROUP BY visit ORDER BY median_day, visit""").set_index("visit")
    summary = read_frame(con, f"SELECT * FROM {s}.pairing_summary")
    n_subjects = int(con.execute(f"SELECT count(DISTINCT subject) FROM {s}.visits").fetchall()[0][0])
    return missing_data_counts(present, per_visit, summary, planned[["outcome", "score"]], n_subjects)


def visit_estimates(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """:func:`pipeline.statistics.longitudinal.visit_means` for every planned outcome, in plan order.

    An outcome with up to ``STATSMODELS_MAX_SUBJECTS`` subjects is read as a frame and fitted as
    before; a larger one is read as integer codes and fitted from sufficient statistics.
    """
    from pipeline.statistics.longitudinal import COLUMNS, STATSMODELS_MAX_SUBJECTS, visit_means, visit_means_coded

    plan = study.analysis
    frames = []
    for o, sql in zip(outcomes_frame(study).itertuples(index=False), planned_scores_sql(study, missing=False,
                                                                                      separate=True)):
        n_subjects = con.execute(f"SELECT count(DISTINCT subject) FROM ({sql})").fetchall()[0][0]
        if n_subjects <= STATSMODELS_MAX_SUBJECTS:
            frame = read_frame(con, f"SELECT outcome, score, subject, visit, day, value FROM ({sql}) "
                                    "ORDER BY subject, day, visit")
            frames.append(visit_means(frame, random_slope=plan.random_slope, conf_level=plan.conf_level))
            continue
        labels = [v for (v,) in con.execute(f"SELECT DISTINCT visit FROM ({sql}) ORDER BY visit").fetchall()]
        coded = con.execute(f"""
            SELECT dense_rank() OVER (ORDER BY subject) - 1 AS subject,
                   list_position(?, visit) - 1 AS visit, day, value
            FROM ({sql})""", [labels]).fetchnumpy()
        frames.append(visit_means_coded(o.outcome, o.score, coded["subject"], coded["visit"], labels,
                                        coded["day"], coded["value"], random_slope=plan.random_slope,
                                        conf_level=plan.conf_level))
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
