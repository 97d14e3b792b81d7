"""Complications and adverse events: how often each declared event occurred, how long it lasted
and whether it resolved, for the whole cohort and each subgroup level."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.ingest.readers import numbers_from_text
from pipeline.statistics.responders import clopper_pearson

__all__ = ["RESULT_COLUMNS", "complication_rates"]

RESULT_COLUMNS = [
    "event",
    "group",
    "n_patients",
    "n_events",
    "proportion",
    "ci_low",
    "ci_high",
    "n_duration",
    "duration_median",
    "duration_q1",
    "duration_q3",
    "duration_min",
    "duration_max",
    "n_resolved",
    "n_persistent",
    "n_resolution_unknown",
    "note",
]
_NAN = float("nan")


def _flags(values: pd.Series) -> pd.Series:
    """A 0/1 column as stored (text) -> 1.0 / 0.0, NaN when blank."""
    numbers, _ = numbers_from_text(values.astype("string").str.strip().replace("", pd.NA))
    return numbers.astype(float)


def _describe(
    event: str,
    group: str,
    occurred: pd.Series,
    duration: pd.Series | None,
    resolved: pd.Series | None,
    conf_level: float,
) -> dict:
    recorded = occurred.notna()
    n, k = int(recorded.sum()), int((occurred == 1).sum())
    low, high = clopper_pearson(k, n, conf_level)
    had = occurred == 1
    days = duration[had].dropna().to_numpy(float) if duration is not None else np.array([])
    if len(days):
        # numpy's default ("linear") quantile is R's quantile(type = 7).
        q1, median, q3 = np.quantile(days, [0.25, 0.5, 0.75])
        shortest, longest = days.min(), days.max()
    else:
        q1 = median = q3 = shortest = longest = _NAN
    if resolved is not None:
        outcome = resolved[had]
        n_resolved, n_persistent = int((outcome == 1).sum()), int((outcome == 0).sum())
        unknown = k - n_resolved - n_persistent
    else:
        n_resolved = n_persistent = unknown = pd.NA
    return {
        "event": event,
        "group": group,
        "n_patients": n,
        "n_events": k,
        "proportion": k / n if n else _NAN,
        "ci_low": low,
        "ci_high": high,
        "n_duration": len(days) if duration is not None else pd.NA,
        "duration_median": float(median),
        "duration_q1": float(q1),
        "duration_q3": float(q3),
        "duration_min": float(shortest),
        "duration_max": float(longest),
        "n_resolved": n_resolved,
        "n_persistent": n_persistent,
        "n_resolution_unknown": unknown,
        "note": "" if n else "no patient has the event recorded",
    }


def complication_rates(
    subjects: pd.DataFrame,
    events: Sequence,
    levels: pd.DataFrame | None = None,
    level_order: Sequence[str] = (),
    *,
    conf_level: float = 0.95,
    min_cell: int = 1,
) -> pd.DataFrame:
    """Each declared event: patients with it, n (%) with an exact CI, its duration and whether
    it resolved, for the whole cohort and each subgroup level.

    Parameters
    ----------
    subjects : pandas.DataFrame
        ``subject`` and the events' columns as the warehouse stores them (text): the event
        column 0 / 1 (blank: not recorded), the duration column in days, the resolved column
        0 / 1.
    events : sequence of :class:`pipeline.spec.study.Complication`
        ``column`` (the event), ``duration`` and ``resolved`` (column names, '' when not
        declared), in the spec's order.
    levels : pandas.DataFrame, optional
        ``subject, group``: each patient's level in every planned subgroup
        (:func:`pipeline.statistics.subgroups.subgroup_levels`, small levels already pooled
        or left out).
    level_order : sequence of str
        The levels in the order the rows take (absent levels are skipped).
    conf_level : float
        Level of the Clopper-Pearson interval.
    min_cell : int
        A level with fewer patients with the event recorded is not reported for that event
        (``[identifiers] min_cell``; :mod:`pipeline.statistics.small_cells`).

    Returns
    -------
    pandas.DataFrame
        One row per event and group (``all`` first, then each level), unrounded:

        ``event``
            The event's subjects column.
        ``group``
            ``"all"`` or the subgroup level (``"etiology: bells_palsy"``, ``"branches > 6"``).
        ``n_patients``
            Patients with the event recorded (0 or 1): the denominator.
        ``n_events``
            Patients with the event (1).
        ``proportion``
            ``n_events / n_patients`` (NaN with no patient).
        ``ci_low``, ``ci_high``
            Exact (Clopper-Pearson) interval, R ``binom.test(n_events, n_patients)$conf.int``.
        ``n_duration``
            Patients with the event and a recorded duration (NA when no duration column is
            declared).
        ``duration_median``, ``duration_q1``, ``duration_q3``
            Median and quartiles of the duration in days over those patients, R
            ``quantile(type = 7)``; NaN without one.
        ``duration_min``, ``duration_max``
            Shortest and longest duration.
        ``n_resolved``, ``n_persistent``
            Patients with the event whose resolved column is 1 (resolved) or 0 (persisting at
            last follow-up); NA when no resolved column is declared.
        ``n_resolution_unknown``
            Patients with the event and a blank resolved column.
        ``note``
            Why a row has no proportion ('' when it has one).

    Notes
    -----
    A patient with the event column blank is left out of that event's denominator, not counted
    as without the event. The duration summarises the patients with a duration recorded
    (usually the resolved events: a persisting event has no duration yet).
    """
    frames = {"all": subjects}
    if levels is not None and len(levels):
        present = set(levels["group"])
        for group in (g for g in level_order if g in present):
            members = levels.loc[levels["group"] == group, "subject"]
            frames[group] = subjects[subjects["subject"].isin(members)]
    rows = []
    for event in events:
        for group, frame in frames.items():
            occurred = _flags(frame[event.column])
            if group != "all" and int(occurred.notna().sum()) < min_cell:
                continue
            duration = None
            if event.duration:
                given = frame[event.duration].astype("string").str.strip().replace("", pd.NA)
                duration, _ = numbers_from_text(given)
                duration = duration.astype(float)
                # A value that is no number of days would otherwise drop out of the summary
                # unseen: refused, counted, never quoted.
                bad = int((given.notna() & ~(duration >= 0)).sum())
                if group == "all" and bad:
                    raise ValueError(
                        f"{bad} patient(s) have a value in {event.duration!r} that is not a "
                        "number of days of 0 or more; correct the export (leave the cell blank "
                        "when the duration was not recorded)."
                    )
            resolved = _flags(frame[event.resolved]) if event.resolved else None
            rows.append(_describe(event.column, group, occurred, duration, resolved, conf_level))
    out = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    for column in ("n_duration", "n_resolved", "n_persistent", "n_resolution_unknown"):
        out[column] = out[column].astype("Int64")
    return out
