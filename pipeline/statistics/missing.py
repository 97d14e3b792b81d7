"""Missing-data accounting: values present per outcome and visit, and pairs lost."""

from __future__ import annotations

import pandas as pd

__all__ = ["missing_data", "missing_data_counts"]


def missing_data(
    observed: pd.DataFrame,
    visits: pd.DataFrame,
    pairing_summary: pd.DataFrame,
    planned: pd.DataFrame,
) -> pd.DataFrame:
    """Counts of present and missing values per outcome and visit, plus pairs lost.

    Parameters
    ----------
    observed : pandas.DataFrame
        Scores of the planned outcomes: ``outcome, score, subject, visit, day, value``
        (value NaN when the visit happened but the score could not be computed).
    visits : pandas.DataFrame
        Every accepted visit: ``subject, visit, day``.
    pairing_summary : pandas.DataFrame
        ``outcome, score, subjects, with_pre, with_post, paired`` from pairing.
    planned : pandas.DataFrame
        The planned ``outcome, score`` in spec order.

    Returns
    -------
    pandas.DataFrame
        Rows of two kinds, columns ``outcome, score, row, visit, median_day,
        subjects, present, missing, note``:

        - ``row = "visit"``: per visit code, ``subjects`` with that visit, ``present``
          with a value of the outcome, ``missing = subjects - present``.
        - ``row = "pairs"``: ``subjects`` in the cohort, ``present`` = complete
          pre/post pairs, ``missing`` = pairs lost (no pre value, no post value, or
          neither); ``note`` splits the loss.

    Notes
    -----
    Counts only; no imputation. A visit missing entirely from the visits file counts
    for neither column of that visit (it is visible in the pairs row).
    """
    per_visit = visits.groupby("visit").agg(
        median_day=("day", "median"), subjects=("subject", "nunique")
    )
    per_visit = per_visit.sort_values("median_day", kind="stable")
    present = (
        observed.dropna(subset=["value"])
        .groupby(["outcome", "score", "visit"])["subject"]
        .nunique()
    )
    return missing_data_counts(
        present, per_visit, pairing_summary, planned, int(visits["subject"].nunique())
    )


def missing_data_counts(
    present: pd.Series,
    per_visit: pd.DataFrame,
    pairing_summary: pd.DataFrame,
    planned: pd.DataFrame,
    n_subjects: int,
) -> pd.DataFrame:
    """:func:`missing_data` from counts already made (in the warehouse, for a registry).

    ``present``: subjects with a value, indexed by ``(outcome, score, visit)``; ``per_visit``:
    ``median_day`` and ``subjects`` indexed by visit, in median-day order; ``n_subjects``:
    subjects with any accepted visit.
    """
    rows = []
    summary = pairing_summary.set_index(["outcome", "score"])
    for o in planned.itertuples(index=False):
        for visit, v in per_visit.iterrows():
            n = int(present.get((o.outcome, o.score, visit), 0))
            rows.append(
                {
                    "outcome": o.outcome,
                    "score": o.score,
                    "row": "visit",
                    "visit": visit,
                    "median_day": float(v["median_day"]),
                    "subjects": int(v["subjects"]),
                    "present": n,
                    "missing": int(v["subjects"]) - n,
                    "note": "",
                }
            )
        if (o.outcome, o.score) in summary.index:
            s = summary.loc[(o.outcome, o.score)]
            subjects, paired = int(s["subjects"]), int(s["paired"])
            note = (
                f"{subjects - int(s['with_pre'])} without a pre value, "
                f"{subjects - int(s['with_post'])} without a post value"
            )
        else:
            subjects, paired, note = n_subjects, 0, "no values at all"
        rows.append(
            {
                "outcome": o.outcome,
                "score": o.score,
                "row": "pairs",
                "visit": "",
                "median_day": float("nan"),
                "subjects": subjects,
                "present": paired,
                "missing": subjects - paired,
                "note": note,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "outcome",
            "score",
            "row",
            "visit",
            "median_day",
            "subjects",
            "present",
            "missing",
            "note",
        ],
    )
