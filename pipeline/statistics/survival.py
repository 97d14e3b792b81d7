"""Time from surgery to an event (a revision, say): Kaplan-Meier, median, event-free proportions
and the log-rank test, with R's ``survival::survfit`` and ``survdiff`` defaults.

Every patient contributes a time and an event flag: the event's day after surgery when the event
happened, otherwise the day the patient is censored (the last follow-up). The Kaplan-Meier
estimate and its Greenwood standard error come from statsmodels
(:class:`statsmodels.duration.survfunc.SurvfuncRight`), the log-rank test from
:func:`statsmodels.duration.survfunc.survdiff`. Two things statsmodels does not give as R does
are computed here, each checked against R in ``tests/test_survival.py``:

* the pointwise confidence interval of ``survfit``'s default ``conf.type = "log"``,
  ``S(t) exp(±z se)`` with ``se`` the standard error of the cumulative hazard (Greenwood's
  sum, Kalbfleisch & Prentice 2002, sec. 1.4), the upper limit capped at 1. statsmodels'
  ``SurvfuncRight.simultaneous_cb`` gives simultaneous bands, not pointwise limits;
* the median and its confidence interval by ``quantile.survfit``'s rule: the first time the
  curve (for the limits: the lower and the upper confidence curve) reaches 0.5, the midpoint to
  the next time when it is exactly 0.5 (Brookmeyer & Crowley 1982 with the log-transformed
  limits). It stands in for ``SurvfuncRight.quantile(0.5)`` and
  ``quantile_ci(0.5, method="log")``, which give the same times where the curve crosses 0.5
  (lung, veteran: ``test_median_is_statsmodels_where_the_rules_agree``) but the next time
  where it is flat at exactly 0.5, and the last time or infinity for a limit R reports as not
  reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from pipeline.ingest.readers import numbers_from_text
from pipeline.statistics.small_cells import pool_small_levels

#: quantile.survfit's tolerance for "exactly 0.5": sqrt(.Machine$double.eps).
R_TOLERANCE = float(np.sqrt(np.finfo(float).eps))

CURVE_COLUMNS = [
    "time",
    "n_risk",
    "n_event",
    "n_censor",
    "survival",
    "std_err",
    "lower",
    "upper",
]
SUMMARY_COLUMNS = [
    "group",
    "n",
    "events",
    "censored",
    "median",
    "median_lower",
    "median_upper",
    "conf_level",
]
AT_COLUMNS = ["group", "day", "n_risk", "events", "survival", "lower", "upper", "conf_level"]
LOG_RANK_COLUMNS = ["groups", "n", "chisq", "df", "p", "note"]


def event_times(
    subjects: pd.DataFrame,
    last_visit: pd.DataFrame,
    event: str,
    day: str,
    censor_day: str = "",
    by: str = "",
    min_cell: int = 1,
) -> tuple[pd.DataFrame, int]:
    """Each patient's time and event flag, from the subjects columns the plan names.

    Parameters
    ----------
    subjects : DataFrame
        ``subject`` and the named columns, as the warehouse stores them (text).
    last_visit : DataFrame
        ``subject`` and ``day``: each patient's last visit day (the censoring day when
        ``censor_day`` is '').
    event, day, censor_day, by : str
        The columns: the event (1 = happened, 0 = not), its day after surgery, the censoring
        day ('' = the last visit), the grouping ('' = none).
    min_cell : int
        Levels of ``by`` with fewer patients are pooled into one
        (:func:`pipeline.statistics.small_cells.pool_small_levels`).

    Returns
    -------
    (DataFrame, int)
        ``subject``, ``time`` (the event's day, or the censoring day), ``event`` (1/0) and
        ``group`` (the level of ``by`` as written, or the pooled levels' label; missing when
        the patient has none, or without ``by``); and the number of patients left out because
        the event is not recorded or, without the event, they have no follow-up after surgery
        (no censoring day after day 0).

    Raises
    ------
    ValueError
        An event value other than 0 or 1, an event without its day, or a day before surgery:
        the message names the column and counts the patients, never quotes a value.
    """
    written = subjects[event].astype("string").str.strip().replace("", pd.NA)
    flag, _ = numbers_from_text(written)
    bad = int((written.notna() & ~flag.isin([0, 1])).sum())
    if bad:
        raise ValueError(
            f"time to event: column '{event}' must hold 1 (the event happened) or 0 (it did "
            f"not); {bad} patients have another value. Correct them in the subjects file."
        )
    happened = flag == 1
    event_day, _ = numbers_from_text(subjects[day].astype("string").str.strip().replace("", pd.NA))
    for count, problem, fix in (
        (
            int((happened & event_day.isna()).sum()),
            f"have {event} = 1 and no day in '{day}'",
            "give the day of the event after surgery, or set the event to 0",
        ),
        (
            int((happened & (event_day < 0)).sum()),
            f"have {event} = 1 on a day before surgery in '{day}' (a negative day)",
            "correct the day (days are counted from surgery, day 0)",
        ),
    ):
        if count:
            raise ValueError(f"time to event: {count} patients {problem}; {fix}.")
    if censor_day:
        text = subjects[censor_day].astype("string").str.strip().replace("", pd.NA)
        censored_at, _ = numbers_from_text(text)
    else:
        last = last_visit.set_index("subject")["day"]
        censored_at = pd.to_numeric(subjects["subject"].map(last), errors="coerce")
    time = event_day.where(happened, censored_at).astype(float)
    kept = flag.notna() & (happened | (time > 0))
    group = pd.Series(pd.NA, index=subjects.index, dtype="string")
    if by:
        raw = subjects[by].astype("string").str.strip().replace("", pd.NA)
        group = pool_small_levels(raw.where(kept), by, min_cell)
    out = pd.DataFrame(
        {
            "subject": subjects["subject"],
            "time": time,
            "event": happened.astype(int),
            "group": group,
        }
    )[kept.to_numpy()]
    return out.reset_index(drop=True), int((~kept).sum())


def kaplan_meier(time, event, conf_level: float = 0.95) -> pd.DataFrame:
    """The Kaplan-Meier curve with R's default (log-transformed) pointwise confidence interval.

    Parameters
    ----------
    time : array-like of float
        Each patient's time (the event's day, or the censoring day), at least 0.
    event : array-like of 0/1
        1 when the patient's time is the event's, 0 when it is censored.
    conf_level : float
        Confidence level of the interval.

    Returns
    -------
    DataFrame
        One row per distinct time (event or censoring), in increasing order, as R's
        ``survfit(Surv(time, event) ~ 1)`` lists them:
        ``time``; ``n_risk`` (patients whose time is at least this one); ``n_event`` (events at
        this time); ``n_censor`` (patients censored at this time); ``survival`` (Kaplan-Meier
        estimate of the event-free proportion just after this time); ``std_err`` (standard
        error of the cumulative hazard, ``sqrt(sum d / (n (n - d)))``, R's ``std.err``);
        ``lower`` and ``upper`` (``survival * exp(∓ z std_err)``, the upper capped at 1; NaN
        where the survival is 0, as R gives NA).
    """
    from statsmodels.duration.survfunc import SurvfuncRight

    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    times, index = np.unique(time, return_inverse=True)
    counts = np.bincount(index, minlength=len(times))
    n_event = np.bincount(index, weights=event, minlength=len(times)).astype(int)
    n_risk = counts[::-1].cumsum()[::-1]
    survival = np.ones(len(times))
    se_survival = np.zeros(len(times))
    if event.any():
        fit = SurvfuncRight(time, event)
        # The curve steps at event times only; a censoring time keeps the value before it.
        at = np.searchsorted(fit.surv_times, times, side="right") - 1
        seen = at >= 0
        survival[seen] = fit.surv_prob[at[seen]]
        se_survival[seen] = fit.surv_prob_se[at[seen]]
    with np.errstate(divide="ignore", invalid="ignore"):
        # Once every patient at risk has had the event the sum d / (n (n - d)) is infinite.
        std_err = np.where(survival > 0, se_survival / survival, np.inf)
        z = norm.ppf(1 - (1 - conf_level) / 2)
        lower = np.where(survival > 0, survival * np.exp(-z * std_err), np.nan)
        upper = np.where(survival > 0, np.minimum(survival * np.exp(z * std_err), 1.0), np.nan)
    return pd.DataFrame(
        {
            "time": times,
            "n_risk": n_risk.astype(int),
            "n_event": n_event,
            "n_censor": (counts - n_event).astype(int),
            "survival": survival,
            "std_err": std_err,
            "lower": lower,
            "upper": upper,
        },
        columns=CURVE_COLUMNS,
    )


def _first_reaching(time: np.ndarray, survival: np.ndarray, p: float, last_time: float) -> float:
    """The time a curve first falls to ``1 - p`` by R's ``survival:::findq`` (survival 3.5):
    on the cumulative proportion ``y = 1 - survival`` (with ``y = 0`` at time 0) the first time
    ``y`` reaches ``p``; the midpoint to the next time where ``y`` equals ``p`` within
    :data:`R_TOLERANCE` (the curve is flat at ``1 - p`` between them), or to ``last_time`` if
    it is flat at ``1 - p`` to the end; NaN when it never reaches ``p``."""
    x = np.concatenate([[0.0], time])
    y = np.concatenate([[0.0], 1.0 - survival])
    if np.nanmax(y) < p:
        return np.nan
    # R keeps the first of equal values (missing values count as equal to one another) and then
    # leaves the missing ones out.
    first = ~pd.Series(y).duplicated().to_numpy()
    x, y = x[first], y[first]
    known = ~np.isnan(y)
    last_y = y[-1]
    x, y = x[known], y[known]

    def first_at_least(values: np.ndarray) -> float:
        hits = np.flatnonzero(values >= p)
        return x[hits[0]] if len(hits) else np.nan

    reach = first_at_least(y + R_TOLERANCE)
    past = first_at_least(y - R_TOLERANCE)
    quantile = (reach + past) / 2
    if not np.isnan(last_y) and abs(p - last_y) < R_TOLERANCE:
        quantile = (reach + last_time) / 2
    return float(quantile)


def median_time(curve: pd.DataFrame) -> tuple[float, float, float]:
    """The median time to the event and its confidence interval, as R's
    ``quantile(survfit(...), 0.5)`` (``print(fit)``'s ``median``, ``0.95LCL``, ``0.95UCL``).

    Parameters
    ----------
    curve : DataFrame
        A :func:`kaplan_meier` curve.

    Returns
    -------
    tuple of float
        (median, lower, upper): the first time the curve, its lower and its upper confidence
        curve reach 0.5 (see :func:`_first_reaching`); NaN when a curve stays above 0.5.
    """
    time = curve["time"].to_numpy(float)
    if not len(time):
        return (np.nan, np.nan, np.nan)
    last = float(time[-1])
    return tuple(
        _first_reaching(time, curve[column].to_numpy(float), 0.5, last)
        for column in ("survival", "lower", "upper")
    )


def event_free_at(curve: pd.DataFrame, days: Sequence[float]) -> pd.DataFrame:
    """The event-free proportion at chosen days, as R's ``summary(fit, times = days)``.

    Parameters
    ----------
    curve : DataFrame
        A :func:`kaplan_meier` curve.
    days : sequence of float
        Days after surgery.

    Returns
    -------
    DataFrame
        One row per day: ``day``; ``n_risk`` (patients still followed and event-free at the
        start of that day: time at least ``day``); ``events`` (events up to and including that
        day); ``survival``, ``lower``, ``upper`` (the curve and its confidence limits at that
        day). A day after the last time observed has ``n_risk`` 0 and NaN estimates (R leaves
        it out of the summary).
    """
    time = curve["time"].to_numpy(float)
    rows = []
    for day in days:
        at = np.searchsorted(time, day, side="right") - 1
        after = np.searchsorted(time, day, side="left")
        n_risk = int(curve["n_risk"].iloc[after]) if after < len(time) else 0
        events = int(curve["n_event"].iloc[: at + 1].sum())
        if not len(time) or day > time[-1]:
            estimate = (np.nan, np.nan, np.nan)
        elif at < 0:
            estimate = (1.0, 1.0, 1.0)
        else:
            estimate = tuple(float(curve[c].iloc[at]) for c in ("survival", "lower", "upper"))
        rows.append((float(day), n_risk, events, *estimate))
    return pd.DataFrame(rows, columns=["day", "n_risk", "events", "survival", "lower", "upper"])


def numbers_at_risk(time, days: Sequence[float]) -> np.ndarray:
    """Patients at risk at each of ``days``: those whose time (event or censoring) is at least
    that day, R's ``summary(fit, times = days, extend = TRUE)$n.risk``."""
    time = np.sort(np.asarray(time, dtype=float))
    return len(time) - np.searchsorted(time, np.asarray(days, dtype=float), side="left")


def log_rank(time, event, group) -> pd.DataFrame:
    """The log-rank test of equal event-free curves across groups, R's
    ``survdiff(Surv(time, event) ~ group)`` (rho = 0).

    Parameters
    ----------
    time, event : array-like
        As :func:`kaplan_meier`.
    group : array-like
        Each patient's group.

    Returns
    -------
    DataFrame
        One row: ``groups`` (number of groups compared), ``n`` (patients), ``chisq`` (the
        log-rank chi-square), ``df`` (groups - 1), ``p`` (upper tail of chi-square on ``df``);
        ``note`` says why there is no test ('' when there is one): fewer than two groups, or no
        event at all.
    """
    from statsmodels.duration.survfunc import survdiff

    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    group = np.asarray(group, dtype=object)
    groups = len(pd.unique(group))
    note = ""
    if groups < 2:
        note = "fewer than two groups to compare"
    elif not event.any():
        note = "no event in any group"
    if note:
        return pd.DataFrame(
            [(groups, len(time), np.nan, np.nan, np.nan, note)], columns=LOG_RANK_COLUMNS
        )
    chisq, p = survdiff(time, event, group)
    return pd.DataFrame(
        [(groups, len(time), float(chisq), groups - 1, float(p), "")], columns=LOG_RANK_COLUMNS
    )


@dataclass(frozen=True)
class TimeToEvent:
    """One time-to-event analysis: every frame with a ``group`` column, ``"all"`` (the whole
    cohort) first, then each level of the grouping column.

    ``summary``: :data:`SUMMARY_COLUMNS` (see :func:`time_to_event`); ``at``: the event-free
    proportions (:func:`event_free_at` with ``group`` and ``conf_level``); ``curves``: the
    Kaplan-Meier curves (:func:`kaplan_meier` with ``group``); ``log_rank``: :func:`log_rank`
    between the levels (no row without a grouping column)."""

    summary: pd.DataFrame
    at: pd.DataFrame
    curves: pd.DataFrame
    log_rank: pd.DataFrame


def time_to_event(
    data: pd.DataFrame,
    days: Sequence[float] = (365, 730),
    conf_level: float = 0.95,
    by: bool = False,
) -> TimeToEvent:
    """Kaplan-Meier, median and event-free proportions for the whole cohort and each group, and
    the log-rank test between the groups.

    Parameters
    ----------
    data : DataFrame
        ``time`` (days from surgery to the event or to censoring), ``event`` (1/0) and, with
        ``by``, ``group`` (each patient's level; a patient without one is in the whole
        cohort's results only). Groups are reported in order of first appearance.
    days : sequence of float
        Days of the event-free proportions (default 1 and 2 years).
    conf_level : float
        Confidence level of every interval.
    by : bool
        Whether to report each group and the log-rank test between them.

    Returns
    -------
    TimeToEvent
        ``summary`` has one row per group: ``group`` (``"all"`` or the level), ``n``
        (patients), ``events``, ``censored``, ``median`` (median time to the event, days; NaN
        when fewer than half had it), ``median_lower`` and ``median_upper`` (its confidence
        interval by R's rule, :func:`median_time`; NaN where unreached), ``conf_level``.
        ``at``: one row per group and day (``group``, then :func:`event_free_at`'s columns,
        ``conf_level``). ``curves``: ``group`` then :func:`kaplan_meier`'s columns.
        ``log_rank``: :func:`log_rank`'s row (no row when ``by`` is false).
    """
    parts = [("all", data)]
    if by:
        grouped = data.dropna(subset=["group"])
        parts += [
            (level, grouped[grouped["group"] == level]) for level in grouped["group"].unique()
        ]
    summary, at, curves = [], [], []
    for group, part in parts:
        curve = kaplan_meier(part["time"], part["event"], conf_level)
        median = median_time(curve)
        events = int(part["event"].sum())
        summary.append((group, len(part), events, len(part) - events, *median, conf_level))
        at.append(event_free_at(curve, days).assign(group=group, conf_level=conf_level))
        curves.append(curve.assign(group=group))
    tested = pd.DataFrame(columns=LOG_RANK_COLUMNS)
    if by:
        grouped = data.dropna(subset=["group"])
        tested = log_rank(grouped["time"], grouped["event"], grouped["group"])
    return TimeToEvent(
        summary=pd.DataFrame(summary, columns=SUMMARY_COLUMNS),
        at=pd.concat(at, ignore_index=True)[AT_COLUMNS],
        curves=pd.concat(curves, ignore_index=True)[["group", *CURVE_COLUMNS]],
        log_rank=tested,
    )
