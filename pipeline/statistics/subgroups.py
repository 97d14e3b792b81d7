"""Subgroups: the level of each planned subgroup that every patient is in.

A categorical subgroup's levels are its column's values (``"etiology: bells_palsy"``); a median
split cuts a numeric column at its median over every patient with a value (``"branches > 6"``,
``"branches ≤ 6"``). Levels of fewer patients than the small-cell minimum are pooled or left out
(:mod:`pipeline.statistics.small_cells`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from pipeline.ingest.readers import numbers_from_text
from pipeline.statistics.small_cells import pool_small_levels

COLUMNS = ["subject", "subgroup", "group"]


def subgroup_levels(subjects: pd.DataFrame, subgroups: Sequence, min_cell: int) -> pd.DataFrame:
    """Each patient's level in every planned subgroup.

    Parameters
    ----------
    subjects : DataFrame
        ``subject`` and the subgroups' columns, as the warehouse stores them (text).
    subgroups : sequence of :class:`pipeline.spec.study.Subgroup`
        ``name``, ``column`` and ``split`` (``"median"`` or ``""``) of each planned subgroup.
    min_cell : int
        The small-cell minimum (``[identifiers] min_cell``).

    Returns
    -------
    DataFrame
        ``subject``; ``subgroup`` (the subgroup's name); ``group`` (the level's label). A patient
        without a value, or in a level left out as a small cell, has no row for that subgroup.

    Raises
    ------
    ValueError
        A median split of a column holding something other than numbers (or top-coded
        numbers such as "90+"); the message counts them and never quotes one.
    """
    frames = []
    for g in subgroups:
        raw = subjects[g.column].astype("string").str.strip()
        raw = raw.where(raw != "")
        if g.split == "median":
            values, _ = numbers_from_text(raw)
            bad = int((raw.notna() & values.isna()).sum())
            if bad:
                raise ValueError(
                    f"subgroup '{g.name}' splits column '{g.column}' at its median, but {bad} of "
                    'its values are not numbers. Use split = "" for a categorical column or '
                    "correct the values."
                )
            level = pd.Series(pd.NA, index=values.index, dtype="string")
            if values.notna().any():  # no value, no median: every patient is in no level
                median = float(values.median())
                level[values > median] = f"{g.name} > {median:g}"
                level[values <= median] = f"{g.name} ≤ {median:g}"
        else:
            level = g.name + ": " + raw
        level = pool_small_levels(level, g.name, min_cell, pool=g.split != "median")
        frames.append(
            pd.DataFrame(
                {"subject": subjects["subject"], "subgroup": g.name, "group": level}
            ).dropna(subset=["group"])
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def numeric_covariates(subjects: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The covariate columns as numbers where every value is one (top-coded "90+" counts as 90);
    a column holding anything else is left as text (an ANCOVA then names it in its note)."""
    out = subjects.copy()
    for c in columns:
        text = out[c].astype("string").str.strip().replace("", pd.NA)
        numbers, _ = numbers_from_text(text)
        out[c] = numbers if (numbers.notna() | text.isna()).all() else text
    return out
