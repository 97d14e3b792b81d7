"""Responders: the share of patients whose change reaches a minimal important change."""

from __future__ import annotations

import pandas as pd
from scipy import stats

from pipeline.statistics.grouped import KEYS, by_group

__all__ = ["clopper_pearson", "responder_rates"]

_NAN = float("nan")


def clopper_pearson(k: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for a binomial proportion (R ``binom.test``).

    Returns
    -------
    tuple of (float, float)
        ``(low, high)``: ``low = qbeta(alpha/2, k, n - k + 1)`` (0 if k = 0),
        ``high = qbeta(1 - alpha/2, k + 1, n - k)`` (1 if k = n); NaN, NaN for
        n = 0.

    Notes
    -----
    The limits are scipy's beta quantiles (``scipy.stats.beta.ppf``), R's
    ``qbeta`` formula in ``binom.test``. ``scipy.stats.binomtest(k,
    n).proportion_ci(method="exact")`` computes the same interval by a root
    search (``brentq``, absolute tolerance 2e-12) on the binomial tail, which
    is loose for a small limit: for 1 responder of 90,000 its lower limit is
    4.6e-13 off, 1.7e-6 of the value. The quantiles give R's number to
    rounding. ``tests/test_statistics_ordinal.py`` checks the two agree within
    binomtest's tolerance.

    References
    ----------
    .. [1] Clopper, C. J. & Pearson, E. S. (1934). The use of confidence or
       fiducial limits illustrated in the case of the binomial. Biometrika
       26(4), 404-413.
    """
    if n == 0:
        return _NAN, _NAN
    alpha = 1 - conf_level
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def responder_rates(
    pairs: pd.DataFrame,
    thresholds: dict[str | tuple[str, str], float],
    higher_is_better: dict[str, bool],
    conf_level: float = 0.95,
    sources: dict[str | tuple[str, str], str] | None = None,
) -> pd.DataFrame:
    """Share of patients improving by at least the minimal important change.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Columns ``outcome, score, pre_value, post_value`` (optionally ``group``).
    thresholds : dict
        Outcome name, or (outcome, score), -> minimal important change
        (positive, in score units, in the better direction); an (outcome, score)
        entry wins over the outcome's. Outcomes not listed are skipped.
    higher_is_better : dict
        Outcome name -> direction of improvement.
    sources : dict, optional
        Keyed as ``thresholds``: where each threshold comes from (a citation, or
        "study spec").

    Returns
    -------
    pandas.DataFrame
        One row per outcome, score and group: ``outcome, score, group``,
        ``threshold`` (the minimal important change), ``n_pairs``,
        ``n_responders`` (improvement ``>= threshold``), ``proportion``,
        ``ci_low, ci_high`` (Clopper-Pearson), ``note``, and ``threshold_source``
        (the outcome's entry of ``sources``; '' when not given).

    Notes
    -----
    Improvement is ``post - pre`` when higher is better, ``pre - post``
    otherwise; a patient responds when it reaches the threshold (``>=``).
    Complete pairs only. Assumes independent patients; the exact interval is
    conservative. With no pairs the proportion is NaN with a note.
    """
    rows = []
    for key, g in by_group(pairs):
        outcome = key["outcome"]
        # A threshold for one score of an outcome, else for all of them.
        which = next((k for k in ((outcome, key["score"]), outcome) if k in thresholds), None)
        if which is None:
            continue
        g = g.dropna(subset=["pre_value", "post_value"])
        change = g["post_value"] - g["pre_value"]
        gain = change if higher_is_better.get(outcome, True) else -change
        threshold = float(thresholds[which])
        n, k = len(gain), int((gain >= threshold).sum())
        low, high = clopper_pearson(k, n, conf_level)
        rows.append(
            {
                **key,
                "threshold": threshold,
                "n_pairs": n,
                "n_responders": k,
                "proportion": k / n if n else _NAN,
                "ci_low": low,
                "ci_high": high,
                "note": "" if n else "no pairs",
                "threshold_source": (sources or {}).get(which, ""),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            *KEYS,
            "threshold",
            "n_pairs",
            "n_responders",
            "proportion",
            "ci_low",
            "ci_high",
            "note",
            "threshold_source",
        ],
    )
