"""Correlations and sign tests within the whole cohort and each subgroup level, in one pass."""

from __future__ import annotations

import pandas as pd

from pipeline.statistics.correlation import GROUP_COLUMNS, group_correlations
from pipeline.statistics.paired import SIGN_TEST_COLUMNS, group_sign_test, pairs_by_level

__all__ = ["within_group_tests"]


def within_group_tests(
    pairs: pd.DataFrame,
    levels: pd.DataFrame,
    level_order: list[str],
    min_cell: int,
    conf_level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pre vs post and pre vs change correlations and the sign test of every outcome, within
    the whole cohort and within each subgroup level.

    Parameters
    ----------
    pairs : pandas.DataFrame
        ``outcome, score, subject, pre_value, post_value``; complete pairs are used.
    levels : pandas.DataFrame
        ``subject, group``: each subject's level in every subgroup.
    level_order : list of str
        The levels in the order wanted (each subgroup's in its declared order).
    min_cell : int
        A level's outcome with fewer complete pairs than this is left out (the whole cohort's
        never is).
    conf_level : float, default 0.95

    Returns
    -------
    tuple of pandas.DataFrame
        :func:`pipeline.statistics.correlation.correlations_by_group`'s table (columns
        :data:`~pipeline.statistics.correlation.GROUP_COLUMNS`) and
        :func:`pipeline.statistics.paired.sign_tests`' (columns
        :data:`~pipeline.statistics.paired.SIGN_TEST_COLUMNS`) of the groups ``"all"`` then
        each level of ``level_order``; within a group the outcomes in order of first
        appearance, a level's rows taken in subject order (stably).

    Notes
    -----
    The same tables, row for row and bit for bit, as calling ``correlations_by_group`` and
    ``sign_tests`` on the complete pairs with ``group = "all"``, then on each level's complete
    pairs sorted by subject (an outcome with fewer than ``min_cell`` of them dropped), and
    concatenating the results (``tests/test_statistics_correlation.py`` checks the two equal).
    That long table would hold the pairs once per subgroup, and a registry's are millions: the
    groups are found here by :func:`pipeline.statistics.paired.pairs_by_level` on arrays
    instead, each group's values in that same order.
    """
    complete = pairs.dropna(subset=["outcome", "score", "pre_value", "post_value"])
    found = []
    # pairs_by_level works on positions: the index is never read.
    for place, (outcome, score, group), pre, post in pairs_by_level(complete, levels, level_order):
        if group != "all" and pre.size < min_cell:
            continue
        found.append((place, {"outcome": outcome, "score": score, "group": group}, pre, post))
    found.sort(key=lambda item: item[0])
    correlations, signs = [], []
    for _, key, pre, post in found:
        correlations += group_correlations(key, pre, post, conf_level)
        signs.append(group_sign_test(key, pre, post))
    return (
        pd.DataFrame(correlations, columns=GROUP_COLUMNS),
        pd.DataFrame(signs, columns=SIGN_TEST_COLUMNS),
    )
