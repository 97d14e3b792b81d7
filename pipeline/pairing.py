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
"""

from __future__ import annotations

import duckdb
import pandas as pd

from pipeline.instruments import instrument_for
from pipeline.study import Study
from pipeline.warehouse import atomic


def outcomes_frame(study: Study) -> pd.DataFrame:
    """The analysis plan's outcomes in spec order, with scoring version, labels and better direction."""
    versions = {s.instrument: s.version for s in study.instruments}
    rows = []
    for position, outcome in enumerate(study.analysis.outcomes, start=1):
        instrument = instrument_for(study, outcome.instrument)
        version = versions.get(outcome.instrument, "")
        score = instrument.score(outcome.score, version or None)
        # A custom measure's one score is the measure itself: no "value" suffix.
        label = instrument.label if score.name == "value" and len(instrument.scores) == 1 \
            else f"{instrument.label} {score.label.lower()}"
        # Where published definitions of this score disagree, its label names the version that produced
        # the number (a score defined the same way in every version needs no qualifier); tables
        # explain each version named in a footnote.
        versioned = bool(version and score.versions)
        qualifiers = [q for q in (outcome.rater, versioned and f"version {version}") if q]
        rows.append({
            "position": position,
            "outcome": outcome.name,
            "instrument": outcome.instrument,
            "rater": outcome.rater,
            "score": outcome.score,
            "version": version,
            "version_note": (f"{instrument.label} version {version}: {instrument.version(version).label}"
                             if versioned else ""),
            "label": f"{label} ({', '.join(qualifiers)})" if qualifiers else label,
            "higher_is_better": score.higher_is_better,
            "test": study.analysis.test_for(outcome),
        })
    return pd.DataFrame(rows)


@atomic  # pairs and pairing_summary replaced together, or neither
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
    def first(order: str) -> str:
        return f"QUALIFY row_number() OVER (PARTITION BY outcome, score, subject ORDER BY {order}) = 1"

    latest = first("day DESC, visit DESC")
    pre_window = f"day <= {int(plan.pre_max_day)}"
    if plan.pre_min_day is not None:
        pre_window += f" AND day >= {int(plan.pre_min_day)}"
    post_window = f"day >= {int(plan.post_min_day)}"
    if plan.post_max_day is not None:
        post_window += f" AND day <= {int(plan.post_max_day)}"
    if plan.post_rule == "named_visit":
        con.execute("CREATE OR REPLACE TEMP TABLE post_rule AS SELECT ?::VARCHAR AS visit", [plan.post_visit])
        post_select = f"WHERE {post_window} AND visit = (SELECT visit FROM post_rule) {latest}"
    elif plan.post_rule == "nearest_day":
        post_select = (f"WHERE {post_window} "
                       + first(f"abs(day - {int(plan.post_target_day)}), day DESC, visit DESC"))
    else:
        post_select = f"WHERE {post_window} {latest}"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pre AS
        SELECT * FROM observed WHERE {pre_window} {latest}
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE post AS
        SELECT * FROM observed {post_select}
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
