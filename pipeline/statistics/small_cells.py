"""Small cells: subgroup levels too small to report.

A level of a subgroup holding fewer patients than the spec's ``[identifiers] min_cell``
(default 5) is not reported on its own in any output: its patients are counted, means and
tests describe them, and a reader who knows one of them could learn the others' values, or
recognise a patient from a rare level. As small-cell rules for health data require (e.g.
the CMS cell-size suppression policy, which sets its threshold at 11; clinical series are
far smaller, hence a smaller default that the spec may raise):

* two or more small levels of a categorical subgroup are pooled into one level, when the
  pooled level reaches the minimum and some level is not small;
* otherwise the small levels' patients are left out of that subgroup's analyses (they stay
  in every whole-cohort analysis), and no output names the level;
* for one outcome, a level with fewer pairs than the minimum (patients without a pre or a
  post value) is not reported for that outcome: its paired-test row is left out and the
  between-group tests of that outcome compare the other levels.

A median split is never pooled (its two halves pooled are the whole cohort): a half below
the minimum is left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def pooled_label(subgroup: str, min_cell: int) -> str:
    """The label of a subgroup's pooled small levels."""
    return f"{subgroup}: levels of fewer than {min_cell} patients, pooled"


def pool_small_levels(
    levels: pd.Series, subgroup: str, min_cell: int, *, pool: bool = True
) -> pd.Series:
    """Each subject's level with the small levels pooled or left out (NA).

    Parameters
    ----------
    levels : Series
        One subject's level label per entry (NA: in no level).
    subgroup : str
        The subgroup's name, for the pooled level's label.
    min_cell : int
        The smallest number of patients a reported level may hold.
    pool : bool
        Pool two or more small levels when together they reach ``min_cell``
        (False for a median split).

    Returns
    -------
    Series
        The same index; a small level's entries replaced by :func:`pooled_label` or NA.
    """
    counts = levels.value_counts()
    small = counts.index[counts < min_cell]
    if not len(small):
        return levels
    out = levels.astype("string").copy()
    members = levels.isin(small)
    # Pooling every level would give one level holding the whole subgroup: nothing to compare.
    if pool and 2 <= len(small) < len(counts) and counts[small].sum() >= min_cell:
        out[members] = pooled_label(subgroup, min_cell)
    else:
        out[members] = pd.NA
    return out


def small_codes_left_out(codes: np.ndarray, counted: np.ndarray, min_cell: int) -> np.ndarray:
    """Level codes with the levels of fewer than ``min_cell`` counted entries set to -1 (no level).

    ``codes`` holds one level code per entry (-1: no level) and ``counted`` whether the entry
    counts (e.g. has both a pre and a post value)."""
    codes = np.asarray(codes)
    inside = counted & (codes >= 0)
    sizes = np.bincount(codes[inside], minlength=codes.max(initial=-1) + 1)
    small = np.flatnonzero((sizes > 0) & (sizes < min_cell))
    if not small.size:
        return codes
    return np.where(np.isin(codes, small), -1, codes)
