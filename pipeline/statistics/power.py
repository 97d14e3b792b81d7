"""Power and sample size for the next study: the paired t test of the change.

The effect is the standardised mean change ``dz = mean(change) / SD(change)`` (Cohen's dz), the
effect the paired t test sees; a paired t test with n pairs is a one-sample t test of the n
changes, so statsmodels' :class:`~statsmodels.stats.power.TTestPower` (one-sample t, ``nobs`` =
pairs, ``df = n - 1``) gives R's ``power.t.test(type = "paired", strict = TRUE)``.
"""

from __future__ import annotations

import math

import pandas as pd
from statsmodels.stats.power import TTestPower

__all__ = ["POWERS", "RESULT_COLUMNS", "paired_power", "pairs_needed"]

#: The power levels the table gives the number of pairs for.
POWERS = (0.8, 0.9)
#: The effect sources, in table order.
BASES = ("observed", "target")
RESULT_COLUMNS = [
    "outcome",
    "score",
    "basis",
    "dz",
    "n_pairs",
    "alpha",
    "power_now",
    "pairs_80",
    "pairs_80_needed",
    "pairs_90",
    "pairs_90_needed",
    "detectable_dz_80",
    "note",
]
_NAN = float("nan")
# A paired t test needs 2 pairs (1 degree of freedom); R's power.t.test starts its search there.
_MIN_PAIRS = 2.0


# statsmodels' root search (brentq_expanding) stops at xtol = 1e-5 absolute by default: 2.5e-5
# of a dz of 0.4. Its per-instance settings take a tighter one, so n and dz are R's (uniroot
# at tol = 1e-12) to 1e-9.
_XTOL = 1e-12


def _solver() -> TTestPower:
    solver = TTestPower()
    solver.start_bqexp["nobs"] = {**solver.start_bqexp["nobs"], "xtol": _XTOL}
    solver.start_bqexp["effect_size"] = {**solver.start_bqexp["effect_size"], "xtol": _XTOL}
    return solver


def _power(dz: float, n: float, alpha: float) -> float:
    """``TTestPower().power(dz, n, alpha, "two-sided")``: both tails of the noncentral t."""
    power = float(TTestPower().power(effect_size=dz, nobs=n, alpha=alpha, alternative="two-sided"))
    if math.isnan(power):
        # scipy's nctdtr gives NaN for the far tail once it falls below about 1e-20
        # (noncentrality of 8 or more with 62 df); the near tail alone is then the power to
        # well below R's own precision (R: power.t.test(n = 63, delta = 1, sig.level = 0.01)).
        power = float(
            TTestPower().power(effect_size=dz, nobs=n, alpha=alpha / 2, alternative="larger")
        )
    return power


def pairs_needed(dz: float, alpha: float, power: float) -> float:
    """The number of pairs (continuous, not rounded up) giving ``power`` to detect ``dz``.

    ``TTestPower().solve_power(effect_size=|dz|, alpha, power, alternative="two-sided")`` (root
    found to 1e-12), R's
    ``power.t.test(delta = dz, sd = 1, sig.level = alpha, power = power, type = "paired",
    strict = TRUE)$n``. NaN when ``dz`` is 0 or not a number; 2 when even 2 pairs give more
    than ``power`` (R extends its search below 2, to a t test of less than one degree of
    freedom; a study needs at least 2 pairs).
    """
    dz = abs(float(dz))
    if not math.isfinite(dz) or dz == 0:
        return _NAN
    if _power(dz, _MIN_PAIRS, alpha) >= power:
        return _MIN_PAIRS
    return float(
        _solver().solve_power(
            effect_size=dz, nobs=None, alpha=alpha, power=power, alternative="two-sided"
        )
    )


def detectable_dz(n: int, alpha: float, power: float) -> float:
    """The smallest dz detected with ``power`` by ``n`` pairs: ``TTestPower().solve_power(nobs=n,
    ...)``, R's ``power.t.test(n = n, sd = 1, power = power, ..., strict = TRUE)$delta``; NaN
    below 2 pairs."""
    if n < _MIN_PAIRS:
        return _NAN
    return float(
        _solver().solve_power(
            effect_size=None, nobs=float(n), alpha=alpha, power=power, alternative="two-sided"
        )
    )


def paired_power(
    effects: pd.DataFrame,
    alpha: float,
    targets: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Pairs needed for 80% and 90% power, and the effect detectable now, per outcome.

    Parameters
    ----------
    effects : pandas.DataFrame
        One row per outcome to plan for: ``outcome, score, n_pairs, dz`` (the whole-cohort rows
        of :func:`pipeline.statistics.paired.paired_tests`).
    alpha : float
        Two-sided significance level (the plan's ``alpha``).
    targets : dict, optional
        Outcome name -> a target effect dz for the next study (the spec's
        ``analysis.power.target_dz``): a second row for that outcome.

    Returns
    -------
    pandas.DataFrame
        One row per outcome and basis, in the order of ``effects`` (observed, then target):

        ``outcome, score``
            The outcome.
        ``basis``
            ``"observed"`` (this study's dz) or ``"target"`` (the spec's dz).
        ``dz``
            The effect planned for, ``|mean change| / SD of the changes`` (sign dropped: the
            test is two-sided).
        ``n_pairs``
            Pairs in this study.
        ``alpha``
            The two-sided significance level.
        ``power_now``
            Power of a paired t test with ``n_pairs`` pairs to detect ``dz`` (R
            ``power.t.test(n, delta = dz)$power``).
        ``pairs_80``, ``pairs_90``
            Pairs giving 80% and 90% power, continuous (R's ``$n`` before rounding up).
        ``pairs_80_needed``, ``pairs_90_needed``
            The same rounded up: the pairs to recruit (complete pairs; allow for loss to
            follow-up on top).
        ``detectable_dz_80``
            The smallest dz that ``n_pairs`` pairs detect with 80% power.
        ``note``
            Why a number is missing ('' when none).

    Notes
    -----
    Power of the two-sided one-sample t test with noncentrality ``dz * sqrt(n)`` and ``n - 1``
    degrees of freedom, both tails counted (R ``strict = TRUE``; R's default omits the far
    tail, which raises n by about 2e-6 of itself for dz 0.2 to 1: nothing once rounded up).
    A Wilcoxon signed-rank test needs about ``pi / 3`` (1.05) times these pairs under normal
    changes (the inverse of its asymptotic relative efficiency, 3 / pi): the numbers are a
    paired t plan, as is usual.

    References
    ----------
    .. [1] Cohen J. Statistical Power Analysis for the Behavioral Sciences. 2nd ed. 1988,
       ch. 2 (dz for paired samples).
    """
    targets = dict(targets or {})
    rows = []
    for effect in effects.itertuples(index=False):
        n = int(effect.n_pairs) if pd.notna(effect.n_pairs) else 0
        sources = [("observed", effect.dz)]
        if effect.outcome in targets:
            sources.append(("target", targets[effect.outcome]))
        for basis, dz in sources:
            dz = abs(float(dz)) if pd.notna(dz) else _NAN
            usable = math.isfinite(dz) and dz > 0
            note = "" if usable else "no effect to plan for (dz is 0 or not estimable)"
            needed = {p: pairs_needed(dz, alpha, p) if usable else _NAN for p in POWERS}
            rows.append(
                {
                    "outcome": effect.outcome,
                    "score": effect.score,
                    "basis": basis,
                    "dz": dz,
                    "n_pairs": n,
                    "alpha": float(alpha),
                    "power_now": _power(dz, n, alpha) if usable and n >= _MIN_PAIRS else _NAN,
                    "pairs_80": needed[0.8],
                    "pairs_80_needed": _ceil(needed[0.8]),
                    "pairs_90": needed[0.9],
                    "pairs_90_needed": _ceil(needed[0.9]),
                    "detectable_dz_80": detectable_dz(n, alpha, 0.8),
                    "note": note
                    or ("fewer than 2 pairs: no power at this size" if n < _MIN_PAIRS else ""),
                }
            )
    out = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    for column in ("pairs_80_needed", "pairs_90_needed"):
        out[column] = out[column].astype("Int64")
    return out


def _ceil(n: float):
    # A root a hair above a whole number (1e-9) is that number: the root search's own error.
    return pd.NA if not math.isfinite(n) else int(math.ceil(n - 1e-9))
