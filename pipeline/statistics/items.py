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
from pipeline.pairing import outcomes_frame, planned_tests, primary_pairs
from pipeline.spec.study import Study, item_columns
from pipeline.sql import literal, quote
from pipeline.statistics.multiplicity import METHODS, adjust_p
from pipeline.statistics.paired import COLUMNS as PAIRED_COLUMNS
from pipeline.statistics.paired import TEST_CHOICES, _group_tests, _results_frame
from pipeline.warehouse import read_frame, relation_kind

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


def _score_tables(study: Study) -> dict[str, str]:
    """Each mapped instrument's wide score table (:func:`pipeline.scores.score_study`)."""
    return {
        source.instrument: f"{study.name}.scores_{source.instrument}"
        for source in study.instruments
    }


def _wide_sql(
    study: Study, o, position: dict, columns: dict[str, str], score_table: str
) -> str | None:
    """The pre and post value of every row of an item table, one row per pair, read from the
    wide tables (``<study>.item_values`` and the instrument's score table) instead of their long
    views: the same values as :func:`_long_sql` (a value counts only when it is the one of its
    visit), without unpivoting a registry's tens of millions of cells. None when an item has no
    column of its own (then the long views are read)."""
    s = study.name
    mine = {name: k for (source, name), k in position.items() if source == "item"}
    scores = {name: k for (source, name), k in position.items() if source == "score"}
    if any(name not in columns for name in mine):
        return None

    def picked(count: str, value: str, side: str, k: int) -> str:
        at = f"v.visit = p.{side}_visit"
        return (
            f"CASE WHEN {count} FILTER (WHERE {at}) = 1 "
            f"THEN max({value}) FILTER (WHERE {at}) END AS {side}_{k}"
        )

    parts, selected = [], []
    joined = (
        "JOIN {table} v ON v.subject = p.subject "
        "AND (v.visit = p.pre_visit OR v.visit = p.post_visit)"
    )
    if mine:
        # The long view holds an item's non-missing values only: a visit counts where it has one.
        aggregates = [
            picked(
                f"count({quote(columns[name])})", f"CAST({quote(columns[name])} AS DOUBLE)", side, k
            )
            for name, k in mine.items()
            for side in ("pre", "post")
        ]
        parts.append(
            f"i AS (SELECT p.pair, {', '.join(aggregates)} FROM p "
            + joined.format(table=f"{s}.item_values")
            + " GROUP BY p.pair)"
        )
        selected += [f"i.{side}_{k}" for k in mine.values() for side in ("pre", "post")]
    if scores:
        # The scores view holds a row per scored visit, with or without a value.
        aggregates = [
            picked("count(*)", f"CAST({quote(name)} AS DOUBLE)", side, k)
            for name, k in scores.items()
            for side in ("pre", "post")
        ]
        parts.append(
            f"c AS (SELECT p.pair, {', '.join(aggregates)} FROM p "
            + joined.format(table=score_table)
            + f" AND v.rater = {literal(o.rater)} GROUP BY p.pair)"
        )
        selected += [f"c.{side}_{k}" for k in scores.values() for side in ("pre", "post")]
    return (
        f"""WITH p AS (SELECT row_number() OVER (ORDER BY subject) - 1 AS pair, subject,
                              pre_visit, post_visit
                       FROM {s}.pairs WHERE outcome = ? AND score = ?{primary_pairs(study)}), """
        + ", ".join(parts)
        + f" SELECT p.pair, {', '.join(selected)} FROM p"
        + (" LEFT JOIN i ON i.pair = p.pair" if mine else "")
        + (" LEFT JOIN c ON c.pair = p.pair" if scores else "")
        + " ORDER BY p.pair"
    )


def _long_sql(study: Study, o, position: dict) -> str:
    """The values of an item table's rows at each pair's visits from the long views
    (``<study>.item_responses`` and ``<study>.scores``): ``position, pair, pre_value,
    post_value``, one row per pair and table row that has a value there."""
    s = study.name
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
    # A value recorded twice at a visit is not used (as scoring refuses it).
    return f"""
            WITH p AS (SELECT row_number() OVER (ORDER BY subject) - 1 AS pair, subject,
                              pre_visit, post_visit
                       FROM {s}.pairs WHERE outcome = ? AND score = ?{primary_pairs(study)}),
                 v AS ({" UNION ALL ".join(branches)})
            SELECT v.position, p.pair,
                   CASE WHEN count(*) FILTER (WHERE v.visit = p.pre_visit) = 1
                        THEN max(v.value) FILTER (WHERE v.visit = p.pre_visit) END AS pre_value,
                   CASE WHEN count(*) FILTER (WHERE v.visit = p.post_visit) = 1
                        THEN max(v.value) FILTER (WHERE v.visit = p.post_visit) END AS post_value
            FROM p JOIN v ON v.subject = p.subject
                          AND (v.visit = p.pre_visit OR v.visit = p.post_visit)
            GROUP BY v.position, p.pair"""


def _item_tables(con: duckdb.DuckDBPyConnection, study: Study):
    """Per instrument (and rater) with an item table, in spec order: the outcome its items are
    paired on (a row of :func:`_paired_on`), the table's rows (:func:`item_rows`), the pairs
    (``subject, pre_visit, post_visit``, by subject) and the pre and post values as two arrays
    of rows x pairs (NaN where the item was not recorded, or recorded more than once, at that
    visit)."""
    s = study.name
    planned = outcomes_frame(study)
    if planned.empty:
        return
    wide = relation_kind(con, f"{s}.item_values") == "TABLE"
    mapping = item_columns(study) if wide else None
    tables = _score_tables(study)
    for o in _paired_on(planned, study).itertuples(index=False):
        instrument = study.instrument(o.instrument)
        rows = item_rows(instrument, o.version or None)
        if not rows:
            continue
        # Each source (an item as recorded, or an item score) feeds one row of the table.
        position = {r["source"]: k for k, r in enumerate(rows)}
        pairs = read_frame(
            con,
            f"SELECT subject, pre_visit, post_visit FROM {s}.pairs "
            f"WHERE outcome = ? AND score = ?{primary_pairs(study)} ORDER BY subject",
            [o.outcome, o.score],
        )
        n = len(pairs)
        values = {side: np.full((len(rows), n), np.nan) for side in ("pre", "post")}
        sql = None
        if wide and o.instrument in tables:
            mine = mapping[(mapping["instrument"] == o.instrument) & (mapping["rater"] == o.rater)]
            if not mine["item"].duplicated().any():
                columns = dict(zip(mine["item"], mine["column"]))
                sql = _wide_sql(study, o, position, columns, tables[o.instrument])
        if sql is not None:
            # One row per pair, numbers only: a registry's item values reach pandas as one
            # array per row of the table and visit.
            found = read_frame(con, sql, [o.outcome, o.score])
            for k in range(len(rows)):
                for side in values:
                    values[side][k] = found[f"{side}_{k}"].to_numpy(dtype=float)
        else:
            # One row per pair and table row that has a value, numbers only.
            found = read_frame(con, _long_sql(study, o, position), [o.outcome, o.score])
            at = (found["position"].to_numpy(dtype=int), found["pair"].to_numpy(dtype=int))
            for side in values:
                values[side][at] = found[f"{side}_value"].to_numpy(dtype=float)
        yield o, rows, pairs, values["pre"], values["post"]


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
    frames = []
    for o, rows, pairs, pre, post in _item_tables(con, study):
        n = len(pairs)

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
                    "pre_value": pre.ravel(),
                    "post_value": post.ravel(),
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
    options = {
        "pre_visit": pre_visit,
        "post_visit": post_visit,
        "conf_level": conf_level,
        "alpha": alpha,
        "multiplicity": multiplicity,
    }
    for (instrument, rater), table in pairs.groupby(["instrument", "rater"], sort=False):
        # The table's rows numbered from 1 in order of first appearance.
        codes = table.groupby(_KEYS, sort=False, dropna=False).ngroup().to_numpy() + 1
        positions, first = np.unique(codes, return_index=True)
        keys = table.iloc[first][_KEYS].reset_index(drop=True).assign(position=positions)
        on = table["paired_on"].iloc[0]
        chosen = test.get(on, "wilcoxon") if isinstance(test, dict) else test
        pre_all = table["pre_value"].to_numpy(dtype=float)
        post_all = table["post_value"].to_numpy(dtype=float)
        complete = ~(np.isnan(pre_all) | np.isnan(post_all))
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.append(positions, positions[-1] + 1))
        at = [order[bounds[k] : bounds[k + 1]] for k in range(len(positions))]
        at = [rows[complete[rows]] for rows in at]
        out.append(
            _table_changes(
                keys,
                [pre_all[rows] for rows in at],
                [post_all[rows] for rows in at],
                chosen,
                labels.get(instrument, instrument) + (f" ({rater})" if rater else ""),
                **options,
            )
        )
    result = pd.concat(out, ignore_index=True)[COLUMNS]
    return result.astype({"n_pairs": int, "position": int})


def _table_changes(
    keys: pd.DataFrame,
    pre: list[np.ndarray],
    post: list[np.ndarray],
    test: str,
    name: str,
    *,
    pre_visit: str,
    post_visit: str,
    conf_level: float,
    alpha: float,
    multiplicity: str,
) -> pd.DataFrame:
    """One instrument's item table (:func:`item_changes`): ``keys`` holds its rows (``_KEYS``
    and ``position``, from 1, in order), ``pre[k]`` and ``post[k]`` the complete pairs of row
    ``k`` in pair order, ``test`` the plan's test and ``name`` the instrument as the P values'
    family is named."""
    if test not in TEST_CHOICES:
        raise ValueError(f"test must be one of {', '.join(TEST_CHOICES)}, got {test!r}")
    positions = keys["position"].to_numpy()
    # Table 2's tests, one group per row of the table; the row's number stands for the outcome
    # and score paired_tests keys its groups by.
    rows = [
        _group_tests(
            (int(position), "item", "all"),
            pre[k],
            post[k],
            test,
            pre_visit=pre_visit,
            post_visit=post_visit,
            conf_level=conf_level,
            alpha=alpha,
        )
        for k, position in enumerate(positions)
    ]
    results = _results_frame(rows, [int(p) for p in positions], "", multiplicity)
    results = results.assign(position=results["outcome"].astype(int))
    results = keys.merge(results, on="position", how="left", validate="one_to_one")
    # The family is this table's tests; said in the study's words, not Table 2's.
    p = results["p_used"].to_numpy(dtype=float)
    m = int(np.isfinite(p).sum())
    results["p_adj"] = adjust_p(p, multiplicity)
    results["p_adj_method"] = np.where(
        np.isfinite(p),
        f"{METHODS[multiplicity]} over the {m} test{'s' if m != 1 else ''} of the {name} items",
        "not computed (no p-value)",
    )
    summaries = pd.DataFrame(
        [
            (position, *_quartiles(pre[k]), *_quartiles(post[k]))
            for k, position in enumerate(positions)
        ],
        columns=["position", *_SUMMARIES],
    )
    return results.merge(summaries, on="position", how="left", validate="one_to_one")


def study_item_changes(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """:func:`item_changes` of :func:`item_pairs` with the study's plan: its test for each
    instrument's total, its visit labels, confidence level, alpha and multiplicity method.
    No rows (the columns of :data:`COLUMNS`) when the plan sets ``item_changes = false``."""
    if not study.analysis.item_changes:
        return pd.DataFrame(columns=COLUMNS)
    # item_changes(item_pairs(con, study), ...) without the long table of pairs: a registry's
    # has tens of millions of rows, and each instrument's values come as rows x pairs arrays.
    options = planned_tests(study)
    tests = options.pop("test")
    out = []
    for o, rows, pairs, pre, post in _item_tables(con, study):
        if len(pairs) == 0:
            continue  # no pairs: no rows in the long table, so no item table
        keys = pd.DataFrame(
            {
                "instrument": o.instrument,
                "rater": o.rater,
                "item": [r["item"] for r in rows],
                "value": [r["value"] for r in rows],
                "label": [r["label"] for r in rows],
                "paired_on": o.outcome,
                "paired_score": o.score,
                "position": np.arange(1, len(rows) + 1),
            }
        )
        complete = ~(np.isnan(pre) | np.isnan(post))
        name = study.instrument(o.instrument).label + (f" ({o.rater})" if o.rater else "")
        out.append(
            _table_changes(
                keys,
                [pre[k][complete[k]] for k in range(len(rows))],
                [post[k][complete[k]] for k in range(len(rows))],
                tests.get(o.outcome, "wilcoxon"),
                name,
                **options,
            )
        )
    if not out:
        return pd.DataFrame(columns=COLUMNS)
    result = pd.concat(out, ignore_index=True)[COLUMNS]
    return result.astype({"n_pairs": int, "position": int})
