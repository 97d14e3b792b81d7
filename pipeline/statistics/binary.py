"""Binary and categorical outcomes measured before and after: paired proportions, McNemar,
Bowker and Stuart-Maxwell.

An outcome the plan declares ``kind = "binary"`` (0 = no, 1 = yes) or ``kind = "categorical"``
(whole-number codes, e.g. grades read as categories) is not a score to average: the paired t
test, Shapiro-Wilk, Hodges-Lehmann and the mixed model do not apply. Its before x after table
is the whole data, and these are the tests of that table, each matching R
(``tests/fixtures/r/binary.R``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import SquareTable
from statsmodels.stats.proportion import proportion_confint

from pipeline.statistics.grouped import KEYS, by_group
from pipeline.statistics.ordinal import bowker, mcnemar

__all__ = [
    "BINARY",
    "CATEGORICAL",
    "KINDS",
    "RESULT_COLUMNS",
    "CELL_COLUMNS",
    "TEST_LABELS",
    "mcnemar_tests",
    "paired_proportion_difference",
    "stuart_maxwell",
    "paired_categorical",
]

BINARY, CATEGORICAL = "binary", "categorical"
#: The outcome kinds this module analyses (a plan's other outcomes are scores).
KINDS = (BINARY, CATEGORICAL)
#: ``test_used`` of each kind: the test whose P is ``p_used`` (Table 2's P).
TEST_LABELS = {BINARY: "exact McNemar", CATEGORICAL: "Stuart-Maxwell marginal homogeneity"}

_NAN = float("nan")

#: Columns of :func:`paired_categorical`'s results, in order.
RESULT_COLUMNS = [
    *KEYS,
    "kind",
    "n_pairs",
    "categories",
    "n_pre_yes",
    "n_post_yes",
    "prop_pre",
    "prop_post",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "n_yes_no",
    "n_no_yes",
    "mcnemar_exact_p",
    "mcnemar_chi2",
    "mcnemar_p",
    "mcnemar_chi2_uncorrected",
    "mcnemar_p_uncorrected",
    "bowker_chi2",
    "bowker_df",
    "bowker_p",
    "stuart_maxwell_chi2",
    "stuart_maxwell_df",
    "stuart_maxwell_p",
    "test_used",
    "p_used",
    "note",
]
#: Columns of :func:`paired_categorical`'s before x after cells.
CELL_COLUMNS = [*KEYS, "pre_category", "post_category", "n"]


def mcnemar_tests(b: int, c: int) -> dict:
    """McNemar's test three ways on the discordant counts: ``b`` patients went from yes to no,
    ``c`` from no to yes.

    Returns
    -------
    dict
        - ``mcnemar_exact_p``: the exact test, two-sided binomial test of ``b`` successes in
          ``b + c`` trials at 1/2 (R ``binom.test(b, b + c)$p.value``; scipy
          ``binomtest``); NaN without discordant pairs (R refuses ``n = 0``).
        - ``mcnemar_chi2``, ``mcnemar_p``: ``(|b - c| - 1)^2 / (b + c)`` on 1 df, R's
          ``mcnemar.test(correct = TRUE)``, which drops the correction when ``b == c``
          (:func:`pipeline.statistics.ordinal.mcnemar`).
        - ``mcnemar_chi2_uncorrected``, ``mcnemar_p_uncorrected``: ``(b - c)^2 / (b + c)``,
          ``mcnemar.test(correct = FALSE)``.
        - ``note``: why the values are NaN ("" otherwise).

    References
    ----------
    .. [1] McNemar, Q. (1947). Psychometrika 12(2), 153-157.
    .. [2] Fagerland, M. W., Lydersen, S. & Laake, P. (2013). The McNemar test for binary
       matched-pairs data: mid-p and asymptotic are better than exact conditional. BMC Med
       Res Methodol 13, 91.
    """
    b, c = int(b), int(c)
    if b + c == 0:
        return {
            "mcnemar_exact_p": _NAN,
            "mcnemar_chi2": _NAN,
            "mcnemar_p": _NAN,
            "mcnemar_chi2_uncorrected": _NAN,
            "mcnemar_p_uncorrected": _NAN,
            "note": "no patient changed: McNemar undefined (R: NaN)",
        }
    x2, p, _ = mcnemar(b, c)
    x2u = (b - c) ** 2 / (b + c)
    return {
        "mcnemar_exact_p": float(stats.binomtest(b, b + c, 0.5).pvalue),
        "mcnemar_chi2": x2,
        "mcnemar_p": p,
        "mcnemar_chi2_uncorrected": float(x2u),
        "mcnemar_p_uncorrected": float(stats.chi2.sf(x2u, 1)),
        "note": "",
    }


def paired_proportion_difference(
    a: int, b: int, c: int, d: int, conf_level: float = 0.95
) -> tuple[float, float, float]:
    """The difference of paired proportions, after minus before, with Newcombe's hybrid score
    interval.

    ``a``: yes before and after; ``b``: yes before, no after; ``c``: no before, yes after;
    ``d``: no at both.

    Returns
    -------
    tuple of float
        ``diff = (c - b) / n`` (the proportion after minus the proportion before), and its
        lower and upper confidence limits; NaN without pairs.

    Notes
    -----
    Newcombe (1998) method 10, the "square-and-add" interval: the Wilson score limits ``(l, u)``
    of each proportion (statsmodels ``proportion_confint(method="wilson")``, R
    ``prop.test(correct = FALSE)``) combined with the correlation of the pairs,
    ``phi = (ad - bc - n/2) / sqrt((a+b)(c+d)(a+c)(b+d))`` when ``ad - bc > n/2``, 0 when
    ``0 <= ad - bc <= n/2`` or a margin is empty, ``(ad - bc) / sqrt(...)`` when
    ``ad - bc < 0`` (Newcombe's continuity-corrected phi, as Fagerland, Lydersen & Laake
    2017 implement it)::

        lower = diff - sqrt((p2 - l2)^2 - 2 phi (p2 - l2)(u1 - p1) + (u1 - p1)^2)
        upper = diff + sqrt((u2 - p2)^2 - 2 phi (u2 - p2)(p1 - l1) + (p1 - l1)^2)

    with ``p1`` before and ``p2`` after. It keeps its coverage with few pairs and proportions
    near 0 or 1, where the Wald interval does not (Fagerland, Lydersen & Laake 2014 recommend
    it). No R package in Debian has it: ``tests/fixtures/r/binary.R`` writes the formula out
    on ``prop.test``'s Wilson limits, and the test checks the two equal and the published
    example of Fagerland et al. (2017), Cavo et al. (2012): -0.0621 (-0.1186 to -0.0046).

    References
    ----------
    .. [1] Newcombe, R. G. (1998). Improved confidence intervals for the difference between
       binomial proportions based on paired data. Stat Med 17, 2635-2650.
    .. [2] Fagerland, M. W., Lydersen, S. & Laake, P. (2014). Recommended tests and confidence
       intervals for paired binomial proportions. Stat Med 33, 2850-2875.
    .. [3] Fagerland, M. W., Lydersen, S. & Laake, P. (2017). Statistical Analysis of
       Contingency Tables, chapter 8. Chapman & Hall/CRC.
    """
    a, b, c, d = (int(v) for v in (a, b, c, d))
    n = a + b + c + d
    if n == 0:
        return _NAN, _NAN, _NAN
    p1, p2 = (a + b) / n, (a + c) / n
    alpha = 1 - conf_level
    l1, u1 = proportion_confint(a + b, n, alpha=alpha, method="wilson")
    l2, u2 = proportion_confint(a + c, n, alpha=alpha, method="wilson")
    margins = float(a + b) * (c + d) * (a + c) * (b + d)
    excess = a * d - b * c
    if margins == 0 or 0 <= excess <= n / 2:
        phi = 0.0
    else:  # Newcombe's continuity correction of a positive correlation
        phi = (excess - n / 2 if excess > 0 else excess) / np.sqrt(margins)
    diff = p2 - p1
    delta = np.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    epsilon = np.sqrt((u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2)
    return float(diff), float(diff - delta), float(diff + epsilon)


def stuart_maxwell(table) -> tuple[float, float, float, str]:
    """Stuart-Maxwell test of marginal homogeneity of a square before x after table: is the
    distribution over the categories the same before and after?

    Returns
    -------
    tuple of (float, float, float, str)
        Chi-square statistic, df, P (upper tail) and a note ("" when nothing was left out).

    Notes
    -----
    ``X^2 = d' S^-1 d`` over k - 1 of the categories, ``d`` the row minus the column totals,
    ``S_ii = n_i. + n_.i - 2 n_ii`` and ``S_ij = -(n_ij + n_ji)`` (Stuart 1955, Maxwell
    1970), computed by statsmodels ``SquareTable(table, shift_zeros=False).homogeneity()``.
    A category no patient left or entered adds nothing to ``d`` and makes ``S`` singular; it
    is left out and df is one less, as the generalised inverse of R's ``coin::mh_test`` does
    (df = rank of ``S``). Without any discordant pair the test is undefined (NaN).

    References
    ----------
    .. [1] Stuart, A. (1955). A test for homogeneity of the marginal distributions in a
       two-way classification. Biometrika 42, 412-416.
    .. [2] Maxwell, A. E. (1970). Comparing the classification of subjects by two independent
       judges. Br J Psychiatry 116, 651-655.
    .. [3] Agresti, A. (2002). Categorical Data Analysis, 2nd ed., section 10.3.
    """
    table = np.asarray(table, float)
    off = table - np.diag(np.diag(table))
    moving = (off.sum(axis=0) + off.sum(axis=1)) > 0
    if moving.sum() < 2:
        return _NAN, _NAN, _NAN, "no patient changed category: Stuart-Maxwell undefined"
    kept = table[np.ix_(moving, moving)]
    res = SquareTable(kept, shift_zeros=False).homogeneity(method="stuart_maxwell")
    left_out = int((~moving).sum())
    note = (
        f"{left_out} categor{'y' if left_out == 1 else 'ies'} no patient left or entered left "
        "out of the Stuart-Maxwell test (its df one less each, as coin::mh_test)"
        if left_out
        else ""
    )
    return float(res.statistic), float(res.df), float(res.pvalue), note


def _crosstab(pre: np.ndarray, post: np.ndarray, categories: np.ndarray) -> np.ndarray:
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((categories.size, categories.size))
    for x, y in zip(pre, post):
        table[index[x], index[y]] += 1
    return table


def paired_categorical(
    pairs: pd.DataFrame, kinds: dict[str, str], conf_level: float = 0.95
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every binary and categorical outcome's before x after table and its tests.

    Parameters
    ----------
    pairs : pandas.DataFrame
        ``outcome, score, pre_value, post_value`` (optionally ``group``): one row per patient
        with both values.
    kinds : dict
        Outcome name -> ``"binary"`` or ``"categorical"``; outcomes not named are skipped.
    conf_level : float
        Coverage of the interval of the difference of proportions.

    Returns
    -------
    results : pandas.DataFrame
        One row per outcome, score and group (:data:`RESULT_COLUMNS`), unrounded:

        - ``outcome, score, group``; ``kind``; ``n_pairs``: patients with both values.
        - ``categories``: the codes seen before or after, in order, space-separated.
        - binary only (NaN for categorical): ``n_pre_yes``, ``n_post_yes`` (patients with 1
          before, after), ``prop_pre``, ``prop_post`` (their shares of ``n_pairs``),
          ``diff`` (``prop_post - prop_pre``) with ``diff_ci_low``, ``diff_ci_high``
          (Newcombe's hybrid score interval, :func:`paired_proportion_difference`),
          ``n_yes_no`` (1 before, 0 after) and ``n_no_yes`` (0 before, 1 after), and
          McNemar's test exact, corrected and uncorrected (:func:`mcnemar_tests`).
        - ``bowker_chi2``, ``bowker_df``, ``bowker_p``: Bowker's test of symmetry
          (:func:`pipeline.statistics.ordinal.bowker`, R ``mcnemar.test`` on the k x k
          table; for a binary outcome McNemar uncorrected).
        - ``stuart_maxwell_chi2``, ``stuart_maxwell_df``, ``stuart_maxwell_p``: marginal
          homogeneity (:func:`stuart_maxwell`, R ``coin::mh_test``).
        - ``test_used``, ``p_used``: the exact McNemar test for a binary outcome, the
          Stuart-Maxwell test for a categorical one (:data:`TEST_LABELS`).
        - ``note``: why a value is NaN or what was left out.
    cells : pandas.DataFrame
        The before x after counts (:data:`CELL_COLUMNS`): one row per outcome, score, group
        and pair of categories seen (zeros included), before then after in code order.
    """
    rows, cells = [], []
    chosen = pairs[pairs["outcome"].isin([o for o, k in kinds.items() if k in KINDS])]
    for key, g in by_group(chosen):
        kind = kinds[key["outcome"]]
        g = g.dropna(subset=["pre_value", "post_value"])
        pre, post = g["pre_value"].to_numpy(float), g["post_value"].to_numpy(float)
        categories = np.unique(np.concatenate([pre, post]))
        if kind == BINARY:
            categories = np.union1d(categories, [0.0, 1.0])
        table = _crosstab(pre, post, categories)
        for i, before in enumerate(categories):
            for j, after in enumerate(categories):
                cells.append({**key, "pre_category": before, "post_category": after})
                cells[-1]["n"] = int(table[i, j])
        row = {c: _NAN for c in RESULT_COLUMNS}
        row.update(key)
        row.update(
            kind=kind,
            n_pairs=len(pre),
            categories=" ".join(f"{c:g}" for c in categories),
            test_used=TEST_LABELS[kind],
        )
        notes = []
        if len(pre) == 0:
            notes.append("no pairs")
        if kind == BINARY:
            a = int(table[1, 1])
            b, c, d = int(table[1, 0]), int(table[0, 1]), int(table[0, 0])
            n = len(pre)
            diff, low, high = paired_proportion_difference(a, b, c, d, conf_level)
            mc = mcnemar_tests(b, c)
            if mc.pop("note") and n:
                notes.append("no patient changed: McNemar undefined (R: NaN)")
            row.update(
                n_pre_yes=a + b,
                n_post_yes=a + c,
                prop_pre=(a + b) / n if n else _NAN,
                prop_post=(a + c) / n if n else _NAN,
                diff=diff,
                diff_ci_low=low,
                diff_ci_high=high,
                n_yes_no=b,
                n_no_yes=c,
                **mc,
                p_used=mc["mcnemar_exact_p"],
            )
        bw = bowker(pre, post) if len(pre) else {"statistic": _NAN, "df": _NAN, "p": _NAN}
        if kind == CATEGORICAL and bw.get("note"):
            notes.append(f"Bowker: {bw['note']}")
        x2, df, p, sm_note = stuart_maxwell(table) if len(pre) else (_NAN, _NAN, _NAN, "")
        if kind == CATEGORICAL:
            if sm_note:
                notes.append(sm_note)
            row["p_used"] = p
        row.update(
            bowker_chi2=bw["statistic"],
            bowker_df=bw["df"],
            bowker_p=bw["p"],
            stuart_maxwell_chi2=x2,
            stuart_maxwell_df=df,
            stuart_maxwell_p=p,
            note="; ".join(notes),
        )
        rows.append(row)
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    for column in ("n_pairs",):
        results[column] = results[column].astype(int)
    return results, pd.DataFrame(cells, columns=CELL_COLUMNS).astype({"n": int})
