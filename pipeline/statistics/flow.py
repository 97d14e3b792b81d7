"""Patient flow (STROBE 13a-c): why patients were excluded at ingest, and why included patients
were not analysed for an outcome.

The reasons a patient has no pair for an outcome are counted by :func:`pipeline.pairing.pair_study`
into ``<study>.pairing_summary``, one column per reason of :data:`NOT_ANALYSED`; the patient
records refused at ingest are counted here from the quarantine (:func:`ingest_exclusions`).
Tables and figures take the labels and explanations from here, so they name each reason alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "EXCLUDED",
    "NOT_ANALYSED",
    "Reason",
    "ingest_exclusions",
    "not_analysed",
]


@dataclass(frozen=True)
class Reason:
    """One reason in the flow: its column name, its short label, and what it means."""

    name: str
    label: str
    note: str


#: Why an included patient has no pair for an outcome, in the order they are checked: each
#: patient not analysed is counted under the first that applies, so the counts are mutually
#: exclusive and add up to the patients not analysed. An outcome is *assessed* at a visit when
#: at least one of its instrument's items (by its rater) was recorded or refused there: when the
#: scores have a row for it (:func:`pipeline.instruments.sql.scored_columns_sql`). A visit row
#: refused whole at ingest (its day unreadable, say) is not a visit, but the quarantine keeps
#: whose it was when its patient code is an accepted patient's: that patient, not analysed, is
#: counted under ``refused_at_ingest``, since the row's day may be unknown and it may have been
#: the missing assessment (a long-layout row holds one item: it counts for that item's outcomes).
NOT_ANALYSED = (
    Reason(
        "no_pre_assessment",
        "No pre-operative assessment",
        "the outcome was not assessed in the before window (patients without an accepted "
        "visit included)",
    ),
    Reason(
        "no_postop_assessment",
        "No post-operative assessment",
        "the outcome was not assessed at any visit after the day of surgery",
    ),
    Reason(
        "no_followup_in_window",
        "No assessment in the follow-up window",
        "assessed after surgery, but not in the after window",
    ),
    Reason(
        "refused_at_ingest",
        "Values quarantined at ingest",
        "a value was refused at ingest where one is missing: an item value (out of range or not "
        "a number) in the window lacking a value, or a whole visit row of the patient (its day, "
        "visit code or patient row unusable), which may have held the missing assessment; each "
        "is listed by line and column in the quarantine table",
    ),
    Reason(
        "derived_visit_incomplete",
        "Derived visit incomplete",
        "the value the rule names is the sum or mean of the values at several visits, and one "
        "of them lacks a value: no partial sum or mean is used",
    ),
    Reason(
        "not_computable",
        "Score not computable",
        "assessed in the window lacking a value, but too few items were recorded or usable to "
        "compute the score (the instrument's missing-item rule)",
    ),
)

#: Why a record of the subjects file was not included: each refused record is counted once,
#: under the first rule it broke at ingest (:mod:`pipeline.ingest.ingestion`).
EXCLUDED = (
    Reason(
        "unreadable",
        "Row could not be read",
        "the row has more or fewer fields than the header, or a quoted value is not closed",
    ),
    Reason("no_code", "Patient code missing", "the row has no patient code"),
    Reason(
        "duplicate_code",
        "Patient code on more than one row",
        "every row of a patient code that appears on more than one row",
    ),
    Reason("other", "Other reason", "refused at ingest for another reason (see the quarantine)"),
)


def ingest_exclusions(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Patient records refused at ingest, per reason of :data:`EXCLUDED`.

    Parameters
    ----------
    quarantine : pandas.DataFrame
        The rows of ``<study>.quarantine`` of the subjects file with ``scope = 'row'`` (one per
        refused record): at least ``column`` and ``reason``.

    Returns
    -------
    pandas.DataFrame
        One row per reason of :data:`EXCLUDED`, in that order, zeros included: ``reason``
        (name), ``label``, ``records`` (rows refused for it). ``records`` sums to the subjects
        file's ``rows_quarantined`` in ``<study>.source_files``.

    Notes
    -----
    Ingestion writes a record it could not read with column ``(whole row)``; a readable record
    is refused only for its patient code, missing (reason ``missing subject code``) or on more
    than one row.
    """
    whole_row = (quarantine["column"].astype("string") == "(whole row)").fillna(False)
    reason = quarantine["reason"].astype("string").fillna("")
    kind = np.select(
        [
            whole_row.to_numpy(dtype=bool),
            (reason == "missing subject code").to_numpy(dtype=bool),
            reason.str.startswith("subject code appears on more").to_numpy(dtype=bool),
        ],
        ["unreadable", "no_code", "duplicate_code"],
        "other",
    )
    counts = pd.Series(kind, dtype=object).value_counts()
    return pd.DataFrame(
        {
            "reason": [r.name for r in EXCLUDED],
            "label": [r.label for r in EXCLUDED],
            "records": [int(counts.get(r.name, 0)) for r in EXCLUDED],
        }
    )


def not_analysed(flow: pd.DataFrame) -> list[Reason]:
    """The reasons of :data:`NOT_ANALYSED` that some outcome of ``flow`` (a frame with one
    column per reason, as ``<study>.pairing_summary``) counts at least one patient under."""
    return [r for r in NOT_ANALYSED if r.name in flow and (flow[r.name] > 0).any()]
