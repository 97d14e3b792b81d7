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
    "binary_subgroups",
    "fisher_levels",
    "SUBGROUP_COLUMNS",
    "BETWEEN_LEVELS",
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


#: Above this many partial tables to enumerate (levels of thousands of patients), an r x 2 table
#: is tested with Pearson's chi-square instead (:func:`fisher_levels`): about a second's work.
FISHER_MAX_TABLES = 5_000_000


def fisher_levels(table) -> tuple[float, str]:
    """Fisher's exact test of an r x 2 table of counts (levels x outcome 0 / 1), two-sided, as
    R's ``fisher.test``: the probability, with every margin fixed, of the tables no more
    probable than the observed one (``<= p_obs (1 + 1e-7)``, R's relative tolerance).

    Returns
    -------
    tuple
        ``(p, note)``: ``note`` is '' for the exact test; above :data:`FISHER_MAX_TABLES`
        partial tables to enumerate (thousands of patients per level), Pearson's chi-square test
        (``scipy.stats.chi2_contingency``, no continuity correction) and a note saying so.

    Notes
    -----
    Written out: ``scipy.stats.fisher_exact`` is exact for 2 x 2 tables only (larger tables take
    a Monte Carlo or permutation P). The tables with the observed margins are enumerated: with
    row totals ``n_i`` and ``C`` ones in all, a table is ``x_i`` ones per row, of probability
    ``prod choose(n_i, x_i) / choose(N, C)`` (the multivariate hypergeometric; Freeman & Halton
    1951). For 2 x 2 tables it equals ``scipy.stats.fisher_exact``'s P (a test checks).
    """
    from scipy.special import gammaln

    table = np.asarray(table, dtype=int)
    n = table.sum(axis=1)
    ones, total = int(table[:, 1].sum()), int(n.sum())

    def log_choose(a, b):
        return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)

    sums, weights = np.zeros(1, dtype=np.int64), np.zeros(1)
    capacity = np.concatenate([np.cumsum(n[::-1])[::-1][1:], [0]])  # rows still to fill
    for row, rest in zip(n, capacity):
        x = np.arange(row + 1)
        if sums.size * x.size > FISHER_MAX_TABLES:
            chi2 = stats.chi2_contingency(table, correction=False)
            return float(chi2.pvalue), "large table: Pearson chi-square test in place of Fisher's"
        sums = (sums[:, None] + x[None, :]).ravel()
        weights = (weights[:, None] + log_choose(row, x)[None, :]).ravel()
        feasible = (sums <= ones) & (sums + rest >= ones)
        sums, weights = sums[feasible], weights[feasible]
    log_p = weights - log_choose(total, ones)
    observed = float(log_choose(n, table[:, 1]).sum() - log_choose(total, ones))
    p = np.exp(log_p)
    return float(min(1.0, p[p <= np.exp(observed) * (1 + 1e-7)].sum())), ""


#: Columns of :func:`binary_subgroups`, in order.
SUBGROUP_COLUMNS = [
    "outcome",
    "score",
    "subgroup",
    "group",
    "n_pairs",
    "n_pre_yes",
    "prop_pre",
    "n_post_yes",
    "prop_post",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "mcnemar_exact_p",
    "test",
    "p_between",
    "note",
]
#: The test of :func:`binary_subgroups` between a subgroup's levels.
BETWEEN_LEVELS = "Fisher exact, after values by level"


def binary_subgroups(
    pairs: pd.DataFrame,
    levels: pd.DataFrame,
    order: dict[str, list[str]],
    conf_level: float = 0.95,
    min_cell: int = 1,
) -> pd.DataFrame:
    """A binary outcome within each level of each subgroup, and compared between the levels.

    Parameters
    ----------
    pairs : pandas.DataFrame
        ``outcome, score, subject, pre_value, post_value`` of the binary outcomes (0 / 1).
    levels : pandas.DataFrame
        ``subject, subgroup, group``: each patient's level of each subgroup
        (:func:`pipeline.statistics.subgroups.subgroup_levels`).
    order : dict
        Subgroup -> its level labels in the study's order (the reference first).
    conf_level : float
        Coverage of each level's interval of the difference of proportions.
    min_cell : int
        A level with fewer pairs of the outcome is left out (rows and test), as Table 3's.

    Returns
    -------
    pandas.DataFrame
        :data:`SUBGROUP_COLUMNS`, one row per outcome, subgroup and level (levels in ``order``):

        - ``n_pairs``; ``n_pre_yes``, ``prop_pre``, ``n_post_yes``, ``prop_post``: patients with
          1 before and after and their shares; ``diff`` (after minus before) with
          ``diff_ci_low``, ``diff_ci_high`` (Newcombe's interval) and ``mcnemar_exact_p``, as
          :func:`paired_categorical` within the level.
        - ``test``, ``p_between``: Fisher's exact test of the levels x after value table
          (:data:`BETWEEN_LEVELS`; R ``fisher.test``), the same on every row of the subgroup;
          NaN when fewer than two levels remain or every patient had the same after value.
        - ``note``: levels left out, or why ``p_between`` is NaN.

    Notes
    -----
    The levels are compared on the after values, not on the change: with a 0 / 1 outcome a
    patient's change is fixed by the before value (only those without it can gain it), so the
    question a reader asks of a subgroup is whether more of its patients had the outcome after
    surgery; the before proportions are given beside, so an imbalance at baseline is seen.
    Fisher's test: for a 2 x 2 table the conditional test with R's two-sided P (tables no more
    probable than the observed); for more levels the r x 2 generalisation
    (Freeman-Halton), P the probability of the tables no more probable than the observed, as
    R's ``fisher.test`` gives it (:func:`fisher_levels`).
    """
    rows = []
    keyed = pairs.merge(levels, on="subject")
    for (outcome, score), of_outcome in pairs.groupby(["outcome", "score"], sort=False):
        for subgroup, labels in order.items():
            within = keyed[
                (keyed["outcome"] == outcome)
                & (keyed["score"] == score)
                & (keyed["subgroup"] == subgroup)
            ].dropna(subset=["pre_value", "post_value"])
            counts = within["group"].value_counts()
            kept = [lv for lv in labels if counts.get(lv, 0) >= min_cell]
            left_out = [lv for lv in labels if 0 < counts.get(lv, 0) < min_cell]
            if not kept:
                continue
            within = within[within["group"].isin(kept)]
            tested, _ = paired_categorical(within, {outcome: BINARY}, conf_level)
            tested = tested.set_index("group").reindex(kept)
            table = np.array(
                [
                    [
                        int((within.loc[within["group"] == lv, "post_value"] == 0).sum()),
                        int((within.loc[within["group"] == lv, "post_value"] == 1).sum()),
                    ]
                    for lv in kept
                ]
            )
            notes = []
            if left_out:
                notes.append(f"{len(left_out)} level(s) with fewer than {min_cell} pairs left out")
            if len(kept) < 2:
                p = _NAN
                notes.append("fewer than 2 levels: no test between them")
            elif (table.sum(axis=0) == 0).any():
                p = _NAN
                notes.append("every patient had the same value after: no test between levels")
            else:
                p, why = fisher_levels(table)
                if why:
                    notes.append(why)
            for lv in kept:
                r = tested.loc[lv]
                rows.append(
                    {
                        "outcome": outcome,
                        "score": score,
                        "subgroup": subgroup,
                        "group": lv,
                        "n_pairs": int(r["n_pairs"]),
                        **{
                            c: r[c]
                            for c in SUBGROUP_COLUMNS[5:13]
                            if c not in ("n_pre_yes", "n_post_yes")
                        },
                        "n_pre_yes": int(r["n_pre_yes"]),
                        "n_post_yes": int(r["n_post_yes"]),
                        "test": BETWEEN_LEVELS,
                        "p_between": p,
                        "note": "; ".join(notes),
                    }
                )
    return pd.DataFrame(rows, columns=SUBGROUP_COLUMNS)
