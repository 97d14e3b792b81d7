"""Pre/post pairs: for each planned outcome, one pre and one post value per subject.

The visit rules come from the study spec's analysis plan:

* pre: the latest assessment on or before ``pre.max_day`` (default day 0, the
  day of surgery) that has a value for this outcome;
* post: the last follow-up on or after ``post.min_day`` (default day 90) that
  has a value for this outcome.

Rules apply per outcome: a patient whose last visit lacks one score is paired
on that score with their latest visit that has it. Ties on the same day are
broken by visit code, so the choice is deterministic.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from pipeline.instruments import REGISTRY
from pipeline.study import Study


def outcomes_frame(study: Study) -> pd.DataFrame:
    """The analysis plan's outcomes in spec order, with labels and better direction."""
    rows = []
    for position, outcome in enumerate(study.analysis.outcomes, start=1):
        instrument = REGISTRY[outcome.instrument]
        score = instrument.score(outcome.score)
        label = f"{instrument.label} {score.label.lower()}"
        rows.append({
            "position": position,
            "outcome": outcome.name,
            "instrument": outcome.instrument,
            "rater": outcome.rater,
            "score": outcome.score,
            "label": f"{label} ({outcome.rater})" if outcome.rater else label,
            "higher_is_better": score.higher_is_better,
            "test": study.analysis.test_for(outcome),
        })
    return pd.DataFrame(rows)


def pair_study(con: duckdb.DuckDBPyConnection, study: Study) -> None:
    """Build ``<study>.pairs`` (one row per outcome and subject with both values) and
    ``<study>.pairing_summary`` (per outcome: subjects with a pre value, a post value, both)."""
    s, plan = study.name, study.analysis
    con.register("planned_outcomes", outcomes_frame(study))
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE observed AS
            SELECT o.position, o.outcome, o.score, sc.subject, sc.visit, sc.day, sc.value
            FROM {s}.scores sc JOIN planned_outcomes o USING (instrument, rater, score)
            WHERE sc.value IS NOT NULL
        """)
    finally:
        con.unregister("planned_outcomes")
    latest = "QUALIFY row_number() OVER (PARTITION BY outcome, subject ORDER BY day DESC, visit DESC) = 1"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pre AS
        SELECT * FROM observed WHERE day <= {int(plan.pre_max_day)} {latest}
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE post AS
        SELECT * FROM observed WHERE day >= {int(plan.post_min_day)} {latest}
    """)
    con.execute(f"""
        CREATE OR REPLACE TABLE {s}.pairs AS
        SELECT pre.outcome, pre.score, pre.subject,
               pre.visit AS pre_visit, pre.day AS pre_day, pre.value AS pre_value,
               post.visit AS post_visit, post.day AS post_day, post.value AS post_value,
               post.value - pre.value AS diff
        FROM pre JOIN post USING (outcome, score, subject)
        ORDER BY pre.position, pre.subject
    """)
    con.execute(f"""
        CREATE OR REPLACE TABLE {s}.pairing_summary AS
        SELECT outcome, score,
               (SELECT count(*) FROM {s}.subjects) AS subjects,
               count(pre.subject) AS with_pre,
               count(post.subject) AS with_post,
               count(pre.subject) FILTER (WHERE post.subject IS NOT NULL) AS paired
        FROM pre FULL JOIN post USING (outcome, score, subject)
        GROUP BY outcome, score ORDER BY min(coalesce(pre.position, post.position))
    """)
