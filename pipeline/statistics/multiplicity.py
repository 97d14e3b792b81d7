"""Multiplicity adjustment over a family of p-values (R ``p.adjust``).

The analysis plan names one primary outcome, tested at the plan's alpha
without adjustment, and adjusts every other (secondary) outcome's p-value
within each analysed group by Holm's step-down method or the
Benjamini-Hochberg step-up false discovery rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["METHODS", "adjust_p", "adjust_secondary"]

#: Spec value -> label written to results tables.
METHODS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


def adjust_p(p, method: str = "holm") -> np.ndarray:
    """Adjusted p-values, exactly as R's ``p.adjust(p, method)``.

    Parameters
    ----------
    p : array-like of float
        Raw p-values; NaN entries stay NaN and do not count towards the
        family size (R's default ``n = length(p[!is.na(p)])``).
    method : {"holm", "bh"}
        Holm (1979) step-down family-wise error control, or Benjamini and
        Hochberg (1995) false discovery rate control.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order, each in [0, 1].

    Notes
    -----
    With the ``m`` non-missing p-values sorted ascending ``p_(1..m)``:
    Holm ``p~_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))``; BH
    ``p~_(i) = min(1, min_{j >= i} m / j * p_(j))``. Holm assumes nothing
    about dependence; BH assumes independence or positive dependence.

    Benjamini-Hochberg is ``statsmodels.stats.multitest.multipletests(p,
    method="fdr_bh")`` on the non-missing values. Holm is written out
    (:func:`_holm`): the same operations as R and as ``multipletests(p,
    method="holm")``, which would do, except that its Holm branch runs a full
    garbage collection (``gc.collect()``) on every call, tens of milliseconds
    in a process holding a study's data, and the analysis adjusts one family
    per subgroup level. ``tests/test_paired.py`` checks the two equal, bit for
    bit, on R's fixture and on random families.

    References
    ----------
    .. [1] Holm, S. (1979). A simple sequentially rejective multiple test
       procedure. Scand. J. Statist. 6(2), 65-70.
    .. [2] Benjamini, Y. & Hochberg, Y. (1995). Controlling the false
       discovery rate. J. R. Statist. Soc. B 57(1), 289-300.
    .. [3] R Core Team. ``p.adjust`` (package stats).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return out
    if method == "holm":
        out[ok] = _holm(p[ok])
    else:
        # Imported here: the spec's schema imports this module, and validating a study must
        # not load statsmodels.
        from statsmodels.stats.multitest import multipletests

        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return out


def _holm(q: np.ndarray) -> np.ndarray:
    """Holm-adjusted ``q`` (no NaN): R's ``pmin(1, cummax((m - i + 1) * p[o]))[order(o)]``,
    the same operations as ``multipletests(q, method="holm")[1]`` without its garbage
    collection (see :func:`adjust_p`)."""
    m = q.size
    o = np.argsort(q, kind="stable")
    res = np.empty(m)
    res[o] = np.minimum(1.0, np.maximum.accumulate(q[o] * np.arange(m, 0, -1)))
    return res


def adjust_secondary(
    results: pd.DataFrame, *, primary: str = "", method: str = "holm", p_column: str = "p_used"
) -> pd.DataFrame:
    """Add ``p_adj`` and ``p_adj_method`` to a results table.

    Parameters
    ----------
    results : pandas.DataFrame
        Columns ``outcome``, ``group`` and ``p_column``.
    primary : str
        The primary outcome (not adjusted). Empty: every outcome is secondary.
    method : {"holm", "bh"}
        Passed to :func:`adjust_p`.

    Returns
    -------
    pandas.DataFrame
        A copy with ``p_adj`` (adjusted p-value; the raw p for the primary
        outcome; NaN where the raw p is NaN) and ``p_adj_method`` (``"none
        (primary outcome)"``, ``"Holm over 4 secondary outcomes"``, ...,
        or ``"not computed (no p-value)"``).

    Notes
    -----
    The family is the secondary rows of one ``group`` (the whole cohort, or
    one subgroup level) that have a p-value.
    """
    out = results.copy()
    out["p_adj"] = np.nan
    out["p_adj_method"] = "not computed (no p-value)"
    if out.empty:
        return out
    p = out[p_column].astype(float)
    is_primary = (out["outcome"] == primary) if primary else pd.Series(False, index=out.index)
    out.loc[is_primary & p.notna(), "p_adj"] = p[is_primary & p.notna()]
    out.loc[is_primary & p.notna(), "p_adj_method"] = "none (primary outcome)"
    for _, idx in out[~is_primary].groupby("group", sort=False).groups.items():
        family = p.loc[idx]
        m = int(family.notna().sum())
        if m == 0:
            continue
        out.loc[idx, "p_adj"] = adjust_p(family.to_numpy(), method)
        label = f"{METHODS[method]} over {m} secondary outcome{'s' if m > 1 else ''}"
        out.loc[family[family.notna()].index, "p_adj_method"] = label
    return out
