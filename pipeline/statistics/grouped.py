"""The per-group result tables' shared layout: one row per outcome, score and group of the pairs."""

from __future__ import annotations

from typing import Iterator

import pandas as pd

#: The columns that name a row of a per-group result table, first in every such table.
KEYS = ["outcome", "score", "group"]


def by_group(pairs: pd.DataFrame) -> Iterator[tuple[dict, pd.DataFrame]]:
    """Each outcome, score and group of ``pairs`` (``group`` "all" when the column is absent)
    as its :data:`KEYS` values and its rows, in order of first appearance."""
    if "group" not in pairs.columns:
        pairs = pairs.assign(group="all")
    for key, rows in pairs.groupby(KEYS, sort=False):
        yield dict(zip(KEYS, key)), rows
