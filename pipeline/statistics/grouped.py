"""The per-group result tables' shared layout: one row per outcome, score and group of the pairs."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

#: The columns that name a row of a per-group result table, first in every such table.
KEYS = ["outcome", "score", "group"]


def group_rows(frame: pd.DataFrame, keys: list[str]) -> list[np.ndarray]:
    """The row positions of each group of ``keys`` in ``frame``, groups in order of first
    appearance and rows in frame order; rows with a missing key are in no group.

    The groups of ``frame.groupby(keys, sort=False)`` (``dropna=True``), from one hash pass per
    key column (``pandas.factorize``) and one stable sort of the group numbers: iterating over
    the groupby instead sorts and splits every column of the frame, several times the work on a
    registry's millions of pairs.
    """
    codes = np.zeros(len(frame), dtype=np.int64)
    missing = np.zeros(len(frame), dtype=bool)
    size = 1
    for key in keys:
        own, uniques = pd.factorize(frame[key])
        missing |= own < 0
        codes = codes * max(len(uniques), 1) + own
        size *= max(len(uniques), 1)
        if size > 2**40:  # renumbered before the products could overflow
            codes, size = pd.factorize(codes)[0], len(frame)
    kept = np.flatnonzero(~missing)
    # Renumbered in order of first appearance among the rows kept.
    codes, uniques = pd.factorize(codes[kept])
    if not codes.size:
        return []
    # A stable sort of small integers is a radix sort.
    small = codes.astype(np.int16) if len(uniques) < 2**15 else codes
    return np.split(kept[np.argsort(small, kind="stable")], np.cumsum(np.bincount(codes))[:-1])


def by_group(pairs: pd.DataFrame) -> Iterator[tuple[dict, pd.DataFrame]]:
    """Each outcome, score and group of ``pairs`` (``group`` "all" when the column is absent)
    as its :data:`KEYS` values and its rows, in order of first appearance.

    The same groups and frames as ``pairs.groupby(KEYS, sort=False)`` yields (each group's rows
    in table order, with their index; a row with a missing key in none), found by
    :func:`group_rows` and taken one group at a time (``tests/test_statistics_grouped.py``
    checks the two equal)."""
    whole = "group" not in pairs.columns
    keys = KEYS[:2] if whole else KEYS
    columns = [pairs[k] for k in keys]
    for rows in group_rows(pairs, keys):
        key = {k: c.iat[rows[0]] for k, c in zip(keys, columns)}
        if whole:
            yield key | {"group": "all"}, pairs.take(rows).assign(group="all")
        else:
            yield key, pairs.take(rows)
