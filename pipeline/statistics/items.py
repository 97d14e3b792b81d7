"""Item-level change: every item of an instrument before and after, as the index study reports
eFACE parameter by parameter (Azizzadeh et al. 2019, Table 1: pre, post and P per parameter).

The pairs are the instrument's own: each patient's item values are taken at the pre and post
visits that :mod:`pipeline.pairing` chose for the instrument's total (the planned outcome of
that instrument and rater whose score needs the most items), so an item table and Table 2 speak
of the same visits of the same patients. The tests are those of Table 2
(:func:`pipeline.statistics.paired.paired_tests`, with the plan's test for that outcome), and
P values are adjusted over the tests of one instrument's item table by the plan's method.

An item's row holds its value as the instrument scores it where the instrument declares an
item score (a score named ``item_<item>``, eFACE's 0-100 item scores); when that score
transforms the recorded value (eFACE's static sliders, 0-200 with 100 = balanced, folded to
``100 - |100 - raw|``), a second row holds the raw value as recorded, so the direction of a
deviation that folding hides stays visible. Other items are shown as answered (a reverse-worded
FaCE item as the patient answered it; its label says which end is worse).

Instruments with a single item (House-Brackmann, a study's own measure: the item is the score,
already in Table 2) and per-side instruments (left and right are not before and after of one
thing; their affected-minus-healthy scores are scores) have no item table.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from pipeline.instruments.model import Instrument
from pipeline.pairing import outcomes_frame, planned_tests
from pipeline.spec.study import Study
from pipeline.sql import literal, quote
from pipeline.statistics.multiplicity import METHODS, adjust_p
from pipeline.statistics.paired import COLUMNS as PAIRED_COLUMNS
from pipeline.statistics.paired import paired_tests
from pipeline.warehouse import read_frame

__all__ = [
    "ITEM_SCORE_PREFIX",
    "PAIR_COLUMNS",
    "COLUMNS",
    "item_rows",
    "item_pairs",
    "item_changes",
]

#: A score named ``item_<item>`` is that item's own score (eFACE's 0-100 item scores).
ITEM_SCORE_PREFIX = "item_"

#: Columns of :func:`item_pairs`.
PAIR_COLUMNS = [
    "instrument",
    "rater",
    "item",
    "value",
    "label",
    "paired_on",
    "paired_score",
    "subject",
    "pre_visit",
    "post_visit",
    "pre_value",
    "post_value",
]

_KEYS = ["instrument", "rater", "item", "value", "label", "paired_on", "paired_score"]
_SUMMARIES = ["pre_median", "pre_q1", "pre_q3", "post_median", "post_q1", "post_q3"]
_TESTS = [
    c for c in PAIRED_COLUMNS if c not in ("outcome", "score", "group", "pre_visit", "post_visit")
]

#: Columns of :func:`item_changes`, in order.
COLUMNS = [
    *_KEYS,
    "position",
    "pre_visit",
    "post_visit",
    "n_pairs",
    "pre_mean",
    "pre_sd",
    "pre_median",
    "pre_q1",
    "pre_q3",
    "post_mean",
    "post_sd",
    "post_median",
    "post_q1",
    "post_q3",
    *[c for c in _TESTS if c not in ("n_pairs", "pre_mean", "pre_sd", "post_mean", "post_sd")],
]


def item_rows(instrument: Instrument, version: str | None = None) -> list[dict]:
    """The rows of an instrument's item table, in item order: ``item``, ``value`` (``"score"``:
    the item's own score; ``"raw"``: the recorded value that score transforms; ``"item"``: the
    value as answered, for an item without a score of its own), ``label``, and ``source``
    (``("score", <score name>)`` or ``("item", <item name>)``: where its values are read).
    Empty for a single-item or per-side instrument (see the module docstring)."""
    if len(instrument.items) < 2 or instrument.sided:
        return []
    scores = {s.name: s for s in instrument.scores_for(version)}
    rows = []
    for item in instrument.items:
        own = scores.get(ITEM_SCORE_PREFIX + item.name)
        if own is None:
            rows.append(
                {
                    "item": item.name,
                    "value": "item",
                    "label": item.label,
                    "source": ("item", item.name),
                }
            )
            continue
        rows.append(
            {"item": item.name, "value": "score", "label": own.label, "source": ("score", own.name)}
        )
        # A score that is the item itself needs no second row.
        if own.formula.strip() not in (item.name, quote(item.name)):
            rows.append(
                {
                    "item": item.name,
                    "value": "raw",
                    "label": _raw_label(item.label),
                    "source": ("item", item.name),
                }
            )
    return rows


def _raw_label(label: str) -> str:
    """``"Oral commissure at rest, raw value (slider 0-200, 100 = balanced)"``: the item's name,
    then what the row is, then the recorded scale its label gives."""
    name, bracket, scale = label.partition(" (")
    return f"{name}, raw value" + (f" ({scale}" if bracket else "")


def _paired_on(planned: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per instrument and rater, the planned outcome whose pairs the items share: the one whose
    score needs the most items, the first in the plan on a tie."""
    chosen = []
    for (instrument, rater), outcomes in planned.groupby(["instrument", "rater"], sort=False):
        inst = study.instrument(instrument)
        needed = [
            len(inst.items_needed(o.score, o.version or None))
            for o in outcomes.itertuples(index=False)
        ]
        chosen.append(outcomes.iloc[int(np.argmax(needed))])
    return pd.DataFrame(chosen).reset_index(drop=True)


def item_pairs(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """Each item's pre and post value per patient, at the visits ``<study>.pairs`` holds for the
    instrument's total (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per item row of :func:`item_rows` and patient paired on the instrument's total:
        ``instrument``, ``rater``, ``item``, ``value`` (``score``, ``raw`` or ``item``),
        ``label``, ``paired_on`` and ``paired_score`` (the outcome and score whose pairs
        these are), ``subject``,
        ``pre_visit``, ``post_visit`` (the visits of that outcome's pair), ``pre_value``,
        ``post_value`` (NaN where the item was not recorded, or recorded more than once, at that
        visit). Instruments in spec order, then items in instrument order, then subjects as in
        ``<study>.pairs``.
    """
    s = study.name
    planned = outcomes_frame(study)
    frames = []
    if planned.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    for o in _paired_on(planned, study).itertuples(index=False):
        instrument = study.instrument(o.instrument)
        rows = item_rows(instrument, o.version or None)
        if not rows:
            continue
        # Each source (an item as recorded, or an item score) feeds one row of the table.
        position = {r["source"]: k for k, r in enumerate(rows)}
        branches = []
        for kind, relation, column in (
            ("item", f"{s}.item_responses", "item"),
            ("score", f"{s}.scores", "score"),
        ):
            mine = {name: k for (source, name), k in position.items() if source == kind}
            if not mine:
                continue
            branches.append(
                f"SELECT subject, visit, CASE {column} "
                + " ".join(f"WHEN {literal(name)} THEN {k}" for name, k in mine.items())
                + f" END AS position, CAST(value AS DOUBLE) AS value FROM {relation} "
                f"WHERE instrument = {literal(o.instrument)} AND rater = {literal(o.rater)} "
                f"AND {column} IN ({', '.join(literal(name) for name in mine)})"
            )
        pairs = read_frame(
            con,
            f"SELECT subject, pre_visit, post_visit FROM {s}.pairs "
            "WHERE outcome = ? AND score = ? ORDER BY subject",
            [o.outcome, o.score],
        )
        # One row per pair and table row that has a value, numbers only: a registry's millions
        # of item values reach pandas as four arrays. A value recorded twice at a visit is not
        # used (as scoring refuses it).
        found = read_frame(
            con,
            f"""
            WITH p AS (SELECT row_number() OVER (ORDER BY subject) - 1 AS pair, subject,
                              pre_visit, post_visit
                       FROM {s}.pairs WHERE outcome = ? AND score = ?),
                 v AS ({" UNION ALL ".join(branches)})
            SELECT v.position, p.pair,
                   CASE WHEN count(*) FILTER (WHERE v.visit = p.pre_visit) = 1
                        THEN max(v.value) FILTER (WHERE v.visit = p.pre_visit) END AS pre_value,
                   CASE WHEN count(*) FILTER (WHERE v.visit = p.post_visit) = 1
                        THEN max(v.value) FILTER (WHERE v.visit = p.post_visit) END AS post_value
            FROM p JOIN v ON v.subject = p.subject
                          AND (v.visit = p.pre_visit OR v.visit = p.post_visit)
            GROUP BY v.position, p.pair""",
            [o.outcome, o.score],
        )
        n = len(pairs)
        values = {side: np.full((len(rows), n), np.nan) for side in ("pre", "post")}
        at = (found["position"].to_numpy(dtype=int), found["pair"].to_numpy(dtype=int))
        for side in values:
            values[side][at] = found[f"{side}_value"].to_numpy(dtype=float)

        def repeated(values) -> np.ndarray:
            return np.repeat(np.asarray(list(values), dtype=object), n)

        frames.append(
            pd.DataFrame(
                {
                    "instrument": repeated([o.instrument] * len(rows)),
                    "rater": repeated([o.rater] * len(rows)),
                    "item": repeated(r["item"] for r in rows),
                    "value": repeated(r["value"] for r in rows),
                    "label": repeated(r["label"] for r in rows),
                    "paired_on": repeated([o.outcome] * len(rows)),
                    "paired_score": repeated([o.score] * len(rows)),
                    "subject": np.tile(pairs["subject"].to_numpy(dtype=object), len(rows)),
                    "pre_visit": np.tile(pairs["pre_visit"].to_numpy(dtype=object), len(rows)),
                    "post_visit": np.tile(pairs["post_visit"].to_numpy(dtype=object), len(rows)),
                    "pre_value": values["pre"].ravel(),
                    "post_value": values["post"].ravel(),
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def _quartiles(x: np.ndarray) -> tuple[float, float, float]:
    # R's quantile(x, c(.25, .5, .75)) default (type 7), numpy's "linear" method.
    if x.size == 0:
        return (np.nan, np.nan, np.nan)
    q1, median, q3 = np.percentile(x, [25, 50, 75], method="linear")
    return float(median), float(q1), float(q3)


def item_changes(
    pairs: pd.DataFrame,
    *,
    test: str | dict[str, str] = "wilcoxon",
    pre_visit: str = "pre",
    post_visit: str = "post",
    conf_level: float = 0.95,
    alpha: float = 0.05,
    multiplicity: str = "holm",
    instrument_labels: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Pre/post change of every item: Table 2's paired tests, one instrument's items at a time.

    Parameters
    ----------
    pairs : pandas.DataFrame
        :func:`item_pairs`: ``instrument, rater, item, value, label, paired_on,
        paired_score, subject, pre_value, post_value`` (other columns ignored). Pairs missing
        a value are dropped per item.
    test : {"wilcoxon", "t", "auto"} or mapping of ``paired_on`` outcome to one of these
        The plan's test of the outcome the items are paired on (as for Table 2,
        :func:`pipeline.statistics.paired.paired_tests`).
    pre_visit, post_visit, conf_level, alpha
        As for :func:`~pipeline.statistics.paired.paired_tests`.
    multiplicity : {"holm", "bh"}
        The plan's adjustment (R ``p.adjust``), applied over the tests of one instrument and
        rater's item table (its items and raw values): the family is that table.
    instrument_labels : mapping of instrument name to its label, optional
        Used in ``p_adj_method``; the name itself where absent.

    Returns
    -------
    pandas.DataFrame
        One row per instrument, rater, item and value, in the order of ``pairs``, with the
        columns of :data:`COLUMNS` (unrounded):

        - ``instrument``, ``rater``, ``item``: the keys; ``value``: ``"score"`` (the item's
          own score), ``"raw"`` (the recorded value that score transforms) or ``"item"`` (the
          value as answered); ``label``: what the row shows; ``paired_on``,
          ``paired_score``: the outcome and score whose pre/post visits were used;
          ``position``: the row's place in its item table, from 1.
        - ``pre_visit``, ``post_visit``: the labels passed in.
        - ``n_pairs``: patients with the item at both visits.
        - ``pre_mean``, ``pre_sd``, ``post_mean``, ``post_sd``: mean and sample SD of the
          paired values; ``pre_median``, ``pre_q1``, ``pre_q3`` and the same for post: median
          and quartiles (R ``quantile`` type 7, linear interpolation).
        - ``mean_diff`` ... ``p_used``: as in
          :func:`~pipeline.statistics.paired.paired_tests` (change = post - pre with its
          t-based CI; t-test; Wilcoxon signed-rank V, P and method; Hodges-Lehmann estimate;
          effect sizes; Shapiro-Wilk; the test used and its P).
        - ``p_adj``: ``p_used`` adjusted over the instrument's item table; NaN where
          ``p_used`` is NaN. ``p_adj_method``: e.g. ``"Holm over the 19 tests of the eFACE
          items"``, or ``"not computed (no p-value)"``.
        - ``note``: why a statistic is NaN, if one is.
    """
    labels = instrument_labels or {}
    out = []
    if pairs.empty:
        return pd.DataFrame(columns=COLUMNS)
    for (instrument, rater), table in pairs.groupby(["instrument", "rater"], sort=False):
        # The table's rows numbered from 1 in order of first appearance; paired_tests keys its
        # groups by outcome and score, and the row's number stands for both.
        codes = table.groupby(_KEYS, sort=False, dropna=False).ngroup().to_numpy() + 1
        positions, first = np.unique(codes, return_index=True)
        keys = table.iloc[first][_KEYS].reset_index(drop=True).assign(position=positions)
        on = table["paired_on"].iloc[0]
        chosen = test.get(on, "wilcoxon") if isinstance(test, dict) else test
        results = paired_tests(
            pd.DataFrame(
                {
                    "outcome": codes,
                    "score": "item",
                    "subject": table["subject"].to_numpy(),
                    "pre_value": table["pre_value"].to_numpy(dtype=float),
                    "post_value": table["post_value"].to_numpy(dtype=float),
                }
            ),
            test=chosen,
            pre_visit=pre_visit,
            post_visit=post_visit,
            conf_level=conf_level,
            alpha=alpha,
            multiplicity=multiplicity,
        )
        results = results.assign(position=results["outcome"].astype(int))
        results = keys.merge(results, on="position", how="left", validate="one_to_one")
        # The family is this table's tests; said in the study's words, not Table 2's.
        p = results["p_used"].to_numpy(dtype=float)
        m = int(np.isfinite(p).sum())
        results["p_adj"] = adjust_p(p, multiplicity)
        name = labels.get(instrument, instrument) + (f" ({rater})" if rater else "")
        results["p_adj_method"] = np.where(
            np.isfinite(p),
            f"{METHODS[multiplicity]} over the {m} test{'s' if m != 1 else ''} of the {name} items",
            "not computed (no p-value)",
        )
        pre_all = table["pre_value"].to_numpy(dtype=float)
        post_all = table["post_value"].to_numpy(dtype=float)
        complete = ~(np.isnan(pre_all) | np.isnan(post_all))
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.append(positions, positions[-1] + 1))
        summaries = []
        for k, position in enumerate(positions):
            at = order[bounds[k] : bounds[k + 1]]
            at = at[complete[at]]
            summaries.append((position, *_quartiles(pre_all[at]), *_quartiles(post_all[at])))
        summaries = pd.DataFrame(summaries, columns=["position", *_SUMMARIES])
        out.append(results.merge(summaries, on="position", how="left", validate="one_to_one"))
    result = pd.concat(out, ignore_index=True)[COLUMNS]
    return result.astype({"n_pairs": int, "position": int})


def study_item_changes(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """:func:`item_changes` of :func:`item_pairs` with the study's plan: its test for each
    instrument's total, its visit labels, confidence level, alpha and multiplicity method.
    No rows (the columns of :data:`COLUMNS`) when the plan sets ``item_changes = false``."""
    if not study.analysis.item_changes:
        return pd.DataFrame(columns=COLUMNS)
    pairs = item_pairs(con, study)
    return item_changes(
        pairs,
        **planned_tests(study),
        instrument_labels={n: study.instrument(n).label for n in pd.unique(pairs["instrument"])},
    )
