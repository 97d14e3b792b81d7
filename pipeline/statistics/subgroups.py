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
from pipeline.statistics.small_cells import pool_small_levels, pooled_label

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


def ordered_levels(subgroup, labels: Sequence[str], min_cell: int) -> tuple[list[str], str]:
    """A subgroup's level labels (as :func:`subgroup_levels` names them) in the order the study
    compares them, and its reference level.

    Parameters
    ----------
    subgroup : :class:`pipeline.spec.study.Subgroup`
        ``name``, ``split``, ``levels`` (the column's codes as ``[subjects.levels]`` declares
        them, in that order) and ``reference`` (a code; '' for the default).
    labels : sequence of str
        The subgroup's level labels present in the data (any order).
    min_cell : int
        The small-cell minimum (names the pooled level).

    Returns
    -------
    tuple of (list of str, str)
        The labels in order: a median split at or below the median first, then above; a
        categorical subgroup in the declared order of its codes, codes not declared after them
        (numbers by value, other text in text order), the pooled small levels last. The
        reference: the declared ``reference`` level when present, else the first label ('' when
        there is none). Every estimate between levels is "level minus reference".
    """
    labels = [str(lv) for lv in labels]
    prefix = f"{subgroup.name}: "
    pooled = pooled_label(subgroup.name, min_cell)
    if subgroup.split == "median":
        order = sorted(labels, key=lambda lv: (not lv.startswith(f"{subgroup.name} ≤ "), lv))
        return order, order[0] if order else ""
    position = {str(code).strip().lower(): i for i, code in enumerate(subgroup.levels)}

    def key(label: str) -> tuple:
        code = label.removeprefix(prefix)
        if label == pooled:
            return (2, 0.0, 0.0, "")
        if code.strip().lower() in position:
            return (0, 0.0, float(position[code.strip().lower()]), "")
        number = pd.to_numeric(pd.Series([code]), errors="coerce").iloc[0]
        missing = bool(pd.isna(number))
        return (1, float(missing), 0.0 if missing else float(number), code)

    order = sorted(labels, key=key)
    wanted = prefix + subgroup.reference if subgroup.reference else ""
    # The reference code as the data write it (declared codes match whatever their case).
    found = [
        lv
        for lv in order
        if lv != pooled and lv.removeprefix(prefix).strip().lower() == wanted[len(prefix) :].lower()
    ]
    reference = found[0] if wanted and found else (order[0] if order else "")
    return order, reference


def numeric_covariates(subjects: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The covariate columns as numbers where every value is one (top-coded "90+" counts as 90);
    a column holding anything else is left as text (an ANCOVA then names it in its note)."""
    out = subjects.copy()
    for c in columns:
        text = out[c].astype("string").str.strip().replace("", pd.NA)
        numbers, _ = numbers_from_text(text)
        out[c] = numbers if (numbers.notna() | text.isna()).all() else text
    return out
