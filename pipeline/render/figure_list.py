"""What a study's figures are drawn from and which of them are missing, without drawing.

Read by the steps that draw nothing: the tables (the patient flow eTable counts the same
exclusions as the flow diagram) and the report (its notes on missing figures). Importing it costs
no matplotlib or seaborn, which :mod:`pipeline.render.figures` and
:mod:`pipeline.render.flow_diagram` load to draw (about a second and a half of imports in a
fresh process).
"""

from __future__ import annotations

import pandas as pd

from pipeline.spec.study import Study


def read_exclusions(con, study: Study) -> pd.DataFrame:
    """The subjects file's records excluded at ingest, counted by reason
    (:func:`pipeline.statistics.flow.ingest_exclusions`), from the study's quarantine."""
    from pipeline.ingest.ingestion import file_labels
    from pipeline.statistics.flow import ingest_exclusions
    from pipeline.warehouse import read_frame

    return ingest_exclusions(
        read_frame(
            con,
            f'SELECT "column", reason FROM {study.name}.quarantine '
            "WHERE file = ? AND scope = 'row'",
            [file_labels(study)[0]],
        )
    )


def not_drawn(con, study: Study) -> list[str]:
    """Why figures :func:`pipeline.render.figures.study_figures` draws for a complete study are
    missing, one line each: a headline outcome without pairs has no slope plot and no panel in
    the box, change and grade-shift figures; with no value of any outcome there is no patient
    flow."""
    from pipeline.pairing import outcomes_frame
    from pipeline.warehouse import read_frame

    s = study.name
    planned = outcomes_frame(study)
    paired = read_frame(con, f"SELECT DISTINCT outcome, score FROM {s}.pairs")
    paired = set(zip(paired["outcome"], paired["score"]))
    notes = [
        f"{row.label}: not drawn, no patient has both a before and an after value."
        for row in planned.drop_duplicates(["instrument", "rater"]).itertuples()
        if (row.outcome, row.score) not in paired
    ]
    if not len(read_frame(con, f"SELECT 1 FROM {s}.pairing_summary LIMIT 1")):
        notes.append("Patient flow: not drawn, no planned outcome has a value.")
    return notes
