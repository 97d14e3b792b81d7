"""Ordinal and binary change: direction counts, sign test, McNemar, Bowker symmetry.

For graded outcomes such as House-Brackmann (I-VI, lower is better) the
Wilcoxon signed-rank test on the grades is reported in ``paired_tests``; this
module adds the tests that use only the direction of change or the full
pre x post table, each matching R.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as _sm_mcnemar

from pipeline.statistics.grouped import KEYS, by_group
from pipeline.statistics.paired import sign_test

__all__ = ["mcnemar", "bowker", "change_direction"]

_NAN = float("nan")


def mcnemar(b: int, c: int) -> tuple[float, float, str]:
    """McNemar's test on the two discordant counts ``b`` and ``c`` (R ``mcnemar.test``).

    Returns
    -------
    tuple of (float, float, str)
        Chi-square statistic (1 df), p-value and a note.

    Notes
    -----
    ``X^2 = (|b - c| - 1)^2 / (b + c)`` with Yates' continuity correction,
    R's default -- except, as R does, when ``b == c`` the correction is not
    applied, so ``X^2 = 0`` and ``p = 1`` (without that rule the corrected
    statistic would be positive for perfectly balanced counts). ``b + c = 0``
    gives NaN (R too) with a note. Computed by
    ``statsmodels.stats.contingency_tables.mcnemar(table, exact=False,
    correction=(b != c))``, which applies the correction whenever asked.

    References
    ----------
    .. [1] McNemar, Q. (1947). Note on the sampling error of the difference
       between correlated proportions. Psychometrika 12(2), 153-157.
    """
    if b + c == 0:
        return _NAN, _NAN, "no discordant pairs: McNemar undefined (R: NaN)"
    res = _sm_mcnemar([[0, b], [c, 0]], exact=False, correction=b != c)
    return float(res.statistic), float(res.pvalue), ""


def bowker(pre, post) -> dict:
    """Bowker's test of symmetry of the square pre x post table (R ``mcnemar.test``
    on a k x k table, k > 2).

    Returns
    -------
    dict
        ``statistic`` (sum over i < j of ``(n_ij - n_ji)^2 / (n_ij + n_ji)``),
        ``df``, ``p`` (chi-square upper tail), ``categories`` (the table's
        levels: union of observed values, sorted) and ``note``.

    Notes
    -----
    The null hypothesis is that moving from grade i to j is as likely as
    from j to i for every pair. Cell pairs with ``n_ij + n_ji = 0`` carry no
    information: R then returns NaN; here they are left out of the sum and
    of the df (``df = number of informative pairs``), and the note says how
    many. With 2 categories this is McNemar without continuity correction.

    Written out because of that rule: ``statsmodels.stats.contingency_tables.
    SquareTable(table, shift_zeros=False).symmetry()`` counts every cell pair
    in the df, informative or not (and R gives NaN). When every pair is
    informative the two agree, which ``tests/test_statistics_ordinal.py``
    checks.

    References
    ----------
    .. [1] Bowker, A. H. (1948). A test for symmetry in contingency tables.
       J. Am. Statist. Assoc. 43, 572-574.
    """
    pre = np.asarray(pre, float)
    post = np.asarray(post, float)
    ok = ~(np.isnan(pre) | np.isnan(post))
    pre, post = pre[ok], post[ok]
    cats = np.unique(np.concatenate([pre, post]))
    out = {
        "statistic": _NAN,
        "df": _NAN,
        "p": _NAN,
        "categories": " ".join(f"{c:g}" for c in cats),
        "note": "",
    }
    k = cats.size
    if k < 2:
        out["note"] = "fewer than 2 categories: symmetry test undefined"
        return out
    idx = {c: i for i, c in enumerate(cats)}
    table = np.zeros((k, k))
    for a, b in zip(pre, post):
        table[idx[a], idx[b]] += 1
    iu = np.triu_indices(k, 1)
    upper, lower = table[iu], table.T[iu]
    informative = (upper + lower) > 0
    if not informative.any():
        out["note"] = "no off-diagonal pairs: symmetry test undefined"
        return out
    stat = float(
        np.sum((upper[informative] - lower[informative]) ** 2 / (upper + lower)[informative])
    )
    df = int(informative.sum())
    out.update(statistic=stat, df=float(df), p=float(stats.chi2.sf(stat, df)))
    if df < iu[0].size:
        out["note"] = (
            f"{iu[0].size - df} of {iu[0].size} cell pairs empty: left out of the "
            "statistic and the df (R returns NaN)"
        )
    return out


def change_direction(
    pairs: pd.DataFrame, higher_is_better: dict[str, bool], ordinal: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Improved / unchanged / worsened counts with sign, McNemar and Bowker tests.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Columns ``outcome, score, pre_value, post_value`` (optionally
        ``group``).
    higher_is_better : dict
        Outcome name -> True if a higher score is better (decides which
        direction is "improved").
    ordinal : tuple of str
        Outcomes whose values are grades: only these get the Bowker test
        (for continuous scores the pre x post table is meaningless).

    Returns
    -------
    pandas.DataFrame
        One row per outcome, score and group, columns:

        - ``outcome, score, group``; ``n_pairs``.
        - ``n_improved``, ``n_unchanged``, ``n_worsened``: changes in the
          better direction, zero, the worse direction (for grades: by at
          least one grade).
        - ``sign_p``: two-sided exact sign test (R ``binom.test(n_improved,
          n_improved + n_worsened)``), 1 when nobody changed.
        - ``mcnemar_chi2``, ``mcnemar_p``: McNemar on improved versus
          worsened (the discordant cells of the improved-by-at-least-one-grade
          2 x 2 table; :func:`mcnemar`, R's equal-counts convention).
        - ``bowker_chi2``, ``bowker_df``, ``bowker_p``, ``categories``: Bowker
          symmetry test (ordinal outcomes only).
        - ``note``: why a value is NaN.
    """
    rows = []
    for key, g in by_group(pairs):
        outcome = key["outcome"]
        g = g.dropna(subset=["pre_value", "post_value"])
        pre, post = g["pre_value"].to_numpy(float), g["post_value"].to_numpy(float)
        better = higher_is_better.get(outcome, True)
        up, down, p_sign = sign_test(pre, post)
        improved, worsened = (up, down) if better else (down, up)
        x2, p_mc, mc_note = mcnemar(improved, worsened)
        notes = [mc_note] if mc_note else []
        bw = {"statistic": _NAN, "df": _NAN, "p": _NAN, "categories": "", "note": ""}
        if outcome in ordinal:
            bw = bowker(pre, post)
            if bw["note"]:
                notes.append(bw["note"])
        else:
            notes.append("Bowker not computed: not an ordinal outcome in the plan")
        if len(pre) == 0:
            notes.insert(0, "no pairs")
        rows.append(
            {
                **key,
                "n_pairs": len(pre),
                "n_improved": improved,
                "n_unchanged": len(pre) - up - down,
                "n_worsened": worsened,
                "sign_p": p_sign,
                "mcnemar_chi2": x2,
                "mcnemar_p": p_mc,
                "bowker_chi2": bw["statistic"],
                "bowker_df": bw["df"],
                "bowker_p": bw["p"],
                "categories": bw["categories"],
                "note": "; ".join(notes),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            *KEYS,
            "n_pairs",
            "n_improved",
            "n_unchanged",
            "n_worsened",
            "sign_p",
            "mcnemar_chi2",
            "mcnemar_p",
            "bowker_chi2",
            "bowker_df",
            "bowker_p",
            "categories",
            "note",
        ],
    )
