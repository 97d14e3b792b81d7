"""Item-level change (pipeline.statistics.items) and its eTables.

Expected values: tests/fixtures/r/item_changes_expected.csv and item_pairs.csv, written by
tests/fixtures/r/item_changes.R (R 4.2.2: t.test, wilcox.test with paired = TRUE, quantile,
p.adjust; pairs chosen and items scored in R from the raw demo export, sharing no code with the
pipeline). The folding of eFACE's static sliders and the choice of visits are checked on a
hand-worked study below.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline import paths
from pipeline.instruments import REGISTRY
from pipeline.pairing import outcomes_frame
from pipeline.render.tables import RAW_VALUE, item_tables
from pipeline.spec.study import load_study
from pipeline.statistics.items import (
    COLUMNS,
    item_changes,
    item_pairs,
    item_rows,
    study_item_changes,
)
from pipeline.steps import analyse, ingest, pair, score, secondary_analyses, write_tables
from specs import study_toml

R = Path(__file__).parent / "fixtures" / "r"
KEYS = ["instrument", "item", "value"]
# What R recomputes: every column item_changes.R writes beside the keys (counts, means, SDs,
# quartiles, the t-test, the Wilcoxon test with Hodges-Lehmann, Holm's P); all are compared.
R_EXPECTED = R / "item_changes_expected.csv"
TOTALS = {"sunnybrook": "composite", "eface": "total", "saq": "total", "face": "total"}


def _r_pairs() -> pd.DataFrame:
    return pd.read_csv(R / "item_pairs.csv", dtype={"item": str, "subject": str})


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo study ingested, scored and paired (no analysis): its warehouse and spec."""
    folder = tmp_path_factory.mktemp("demo_items")
    study = load_study(paths.RAW_DATA_DIR / "demo")
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    ingest(con, study, folder / "reports")
    score(con, study)
    pair(con, study)
    yield con, study
    con.close()


def test_item_changes_match_r_on_the_demo_pairs():
    pairs = _r_pairs().assign(
        rater="",
        label=lambda d: d["item"],
        paired_on=lambda d: d["instrument"],
        paired_score=lambda d: d["instrument"].map(TOTALS),
    )
    ours = item_changes(pairs, test="wilcoxon", multiplicity="holm")
    expected = pd.read_csv(R_EXPECTED, dtype={"item": str})
    assert ours[KEYS].values.tolist() == expected[KEYS].values.tolist()
    assert list(ours.columns) == COLUMNS
    assert (ours["test_used"] == "Wilcoxon signed-rank").all()
    assert ours["p_used"].tolist() == ours["p_wilcoxon"].tolist()
    r_columns = [c for c in expected.columns if c not in KEYS]
    assert len(r_columns) == 24 and set(r_columns) <= set(COLUMNS)
    for column in r_columns:
        assert ours[column].tolist() == pytest.approx(expected[column].tolist(), rel=1e-9), column
    # The family is one instrument's item table: 13 Sunnybrook items, 15 eFACE items and its 4
    # raw sliders, 9 SAQ items, 15 FaCE items.
    families = ours.groupby("instrument", sort=False)["p_adj_method"].first().to_dict()
    assert families == {
        "sunnybrook": "Holm over the 13 tests of the sunnybrook items",
        "eface": "Holm over the 19 tests of the eface items",
        "saq": "Holm over the 9 tests of the saq items",
        "face": "Holm over the 15 tests of the face items",
    }


def test_the_demo_items_are_paired_at_the_visits_r_chose_for_each_total(demo):
    con, study = demo
    ours = item_pairs(con, study)
    expected = _r_pairs()
    columns = [*KEYS, "subject", "pre_visit", "post_visit", "pre_value", "post_value"]
    assert ours[columns].values.tolist() == expected[columns].values.tolist()
    # ... which are the visits of the total's own pairs (pipeline.pairing, not redone here).
    pairs = con.execute(
        "SELECT outcome, score, subject, pre_visit, post_visit FROM demo.pairs"
    ).df()
    merged = ours.merge(
        pairs,
        left_on=["paired_on", "paired_score", "subject"],
        right_on=["outcome", "score", "subject"],
        suffixes=("", "_total"),
        validate="many_to_one",
    )
    assert len(merged) == len(ours)
    assert (merged["pre_visit"] == merged["pre_visit_total"]).all()
    assert (merged["post_visit"] == merged["post_visit_total"]).all()
    assert set(zip(ours["paired_on"], ours["paired_score"])) == set(TOTALS.items())


def test_the_eface_item_scores_are_the_folded_raw_sliders_on_the_demo_pairs():
    # eFACE static sliders (0-200, 100 = balanced) score 100 - |100 - raw| (Auto-eFACE code).
    pairs = _r_pairs()
    eface = pairs[pairs["instrument"] == "eface"]
    for item in ("brow_rest", "pf_rest", "nlf_rest", "oc_rest"):
        scored = eface[(eface["item"] == item) & (eface["value"] == "score")]
        raw = eface[(eface["item"] == item) & (eface["value"] == "raw")]
        for side in ("pre_value", "post_value"):
            assert scored[side].tolist() == (100 - (100 - raw[side]).abs()).tolist()


def test_each_instrument_s_rows():
    eface = item_rows(REGISTRY["eface"], "domain_mean")
    assert len(eface) == 19
    raw = [r for r in eface if r["value"] == "raw"]
    assert [r["item"] for r in raw] == ["brow_rest", "pf_rest", "nlf_rest", "oc_rest"]
    assert raw[3]["label"] == "Oral commissure at rest, raw value (slider 0-200, 100 = balanced)"
    oc = [r for r in eface if r["item"] == "oc_rest"]
    assert [r["value"] for r in oc] == ["score", "raw"]
    assert oc[0]["source"] == ("score", "item_oc_rest") and oc[0]["label"] == (
        "Oral commissure at rest"
    )
    # A dynamic item's score is the item itself: one row.
    assert [r["value"] for r in eface if r["item"] == "oc_smile"] == ["score"]
    assert [r["value"] for r in item_rows(REGISTRY["sunnybrook"])] == ["item"] * 13
    assert len(item_rows(REGISTRY["face"], "item_weighted")) == 15
    # One item that is the score (Table 2 has it), or per-side measures: no item table.
    assert item_rows(REGISTRY["house_brackmann"]) == []
    assert item_rows(REGISTRY["landmarks"]) == []


# A hand-worked eFACE study: four patients, every item 90 except the oral commissure at rest
# slider (and, for P4, a later visit without the total).
EFACE_ITEMS = [i.name for i in REGISTRY["eface"].items]
EFACE_STUDY = {
    "instruments": {
        "house_brackmann": None,
        "eface": {"column": "ef_{item}", "version": "domain_mean"},
    },
    "analysis": {
        "test": "wilcoxon",
        "outcomes": [
            {"instrument": "eface", "score": "static"},
            {"instrument": "eface", "score": "total"},
        ],
    },
}
# (subject, visit, day, oc_rest raw; None: the rest of the visit's items not recorded)
EFACE_VISITS = [
    ("P1", "pre", -5, 120),
    ("P1", "m6", 180, 104),
    ("P2", "pre", -3, 70),
    ("P2", "m6", 200, 95),
    ("P3", "pre", -9, 150),
    ("P3", "m6", 190, 110),
    ("P4", "pre", -2, 100),
    ("P4", "m6", 185, 130),
    # A later visit recording only the slider has no total: P4 stays paired pre -> m6.
    ("P4", "m12", 370, None),
]


def _eface_study(folder: Path, changes: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.toml").write_text(study_toml(EFACE_STUDY, changes or {}), encoding="utf-8")
    (folder / "patients.csv").write_text("code,age\nP1,50\nP2,61\nP3,44\nP4,39\n", encoding="utf-8")
    lines = ["code,visit,day," + ",".join(f"ef_{i}" for i in EFACE_ITEMS)]
    for subject, visit, day, oc in EFACE_VISITS:
        if oc is None:
            values = ["" if i != "oc_rest" else "90" for i in EFACE_ITEMS]
        else:
            values = [str(oc) if i == "oc_rest" else "90" for i in EFACE_ITEMS]
        lines.append(f"{subject},{visit},{day}," + ",".join(values))
    (folder / "visits.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _analysed(folder: Path):
    study = load_study(folder)
    con = duckdb.connect()
    ingest(con, study, folder / "reports")
    score(con, study)
    pair(con, study)
    return con, study


def test_hand_worked_folding_and_visits(tmp_path):
    con, study = _analysed(_eface_study(tmp_path / "eface"))
    pairs = item_pairs(con, study)
    # Paired on the total (all 15 items), not on the static score planned first.
    assert set(pairs["paired_score"]) == {"total"}
    oc = pairs[pairs["item"] == "oc_rest"].set_index(["value", "subject"])
    assert oc.loc["raw", "post_visit"].tolist() == ["m6"] * 4
    assert oc.loc["raw", "pre_value"].tolist() == [120, 70, 150, 100]
    assert oc.loc["raw", "post_value"].tolist() == [104, 95, 110, 130]
    # By hand, 100 - |100 - raw|: 120 -> 80, 70 -> 70, 150 -> 50, 100 -> 100; 104 -> 96,
    # 95 -> 95, 110 -> 90, 130 -> 70.
    assert oc.loc["score", "pre_value"].tolist() == [80, 70, 50, 100]
    assert oc.loc["score", "post_value"].tolist() == [96, 95, 90, 70]
    result = study_item_changes(con, study).set_index(["item", "value"])
    score_row, raw_row = result.loc[("oc_rest", "score")], result.loc[("oc_rest", "raw")]
    # Score: pre mean (80 + 70 + 50 + 100) / 4 = 75, post (96 + 95 + 90 + 70) / 4 = 87.75;
    # changes 16, 25, 40, -30, all ranks positive but the 30: V = 1 + 2 + 4 = 7 of 10.
    assert score_row["pre_mean"] == 75 and score_row["post_mean"] == 87.75
    assert score_row["mean_diff"] == pytest.approx(12.75)
    assert score_row["wilcoxon_v"] == 7
    # Raw: pre mean 110, post 109.75; changes -16, 25, -40, 30 -> V = 2 + 3 = 5.
    assert raw_row["pre_mean"] == 110 and raw_row["post_mean"] == 109.75
    assert raw_row["wilcoxon_v"] == 5
    # Quartiles as R's quantile (type 7) of 70, 80, 100, 120 / 70, 95, 100, 150 by hand:
    # raw pre sorted 70, 100, 120, 150: Q1 = 70 + 0.75 * 30 = 92.5, median 110, Q3 127.5.
    assert (raw_row["pre_q1"], raw_row["pre_median"], raw_row["pre_q3"]) == (92.5, 110, 127.5)
    # Every other item is 90 throughout: no change, no test, no adjusted P.
    flat = result.loc[("brow_elev", "score")]
    assert flat["n_pairs"] == 4 and np.isnan(flat["p_used"]) and np.isnan(flat["p_adj"])
    assert flat["p_adj_method"] == "not computed (no p-value)"
    assert "all differences zero" in flat["note"]
    assert result.loc[("oc_rest", "raw"), "p_adj_method"] == (
        "Holm over the 2 tests of the eFACE items"
    )
    con.close()


def test_the_plan_can_turn_item_changes_off(tmp_path):
    con, study = _analysed(_eface_study(tmp_path / "off", {"analysis": {"item_changes": False}}))
    assert study.analysis.item_changes is False
    off = study_item_changes(con, study)
    assert off.empty and list(off.columns) == COLUMNS
    on = dataclasses.replace(study, analysis=dataclasses.replace(study.analysis, item_changes=True))
    assert len(study_item_changes(con, on)) == 19
    con.close()


def _demo_results() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The R-checked item table of the demo with the labels the pipeline gives it."""
    pairs = _r_pairs()
    rows = {
        (name, r["item"], r["value"]): r["label"]
        for name in TOTALS
        for r in item_rows(REGISTRY[name], None)
    }
    pairs = pairs.assign(
        rater="",
        label=[rows[k] for k in zip(pairs["instrument"], pairs["item"], pairs["value"])],
        paired_on=pairs["instrument"],
        paired_score=pairs["instrument"].map(TOTALS),
    )
    study = load_study(paths.RAW_DATA_DIR / "demo")
    return item_changes(pairs, instrument_labels={n: REGISTRY[n].label for n in TOTALS}), (
        outcomes_frame(study)
    )


def test_the_eface_etable():
    results, planned = _demo_results()
    built = dict(
        item_tables(
            results, {n: REGISTRY[n] for n in TOTALS}, planned, conf_level=0.95, synthetic=True
        )
    )
    assert list(built) == [
        "etable_items_sunnybrook",
        "etable_items_eface",
        "etable_items_saq",
        "etable_items_face",
    ]
    table = built["etable_items_eface"]
    assert table.title == "eTable. eFACE items before and after surgery"
    body = table.body
    assert list(body.columns) == [
        "Item",
        "Before, mean ± SD",
        "After, mean ± SD",
        "Median change (Hodges-Lehmann, 95% CI)",
        "P",
        "Adjusted P",
    ]
    # The raw oral commissure slider under its score, indented, values from R's fixture
    # (112.89 +/- 10.20 -> 107.45 +/- 10.38; Hodges-Lehmann -6.0 (-9.5 to -2.0); P = .0037;
    # Holm .045).
    at = body.index[body["Item"] == "Oral commissure at rest"][0]
    assert body.loc[at + 1, "Item"] == RAW_VALUE and table.indent_of(at + 1) == 1
    assert table.indent_of(at) == 0
    assert body.loc[at + 1].tolist()[1:] == [
        "112.9 ± 10.2",
        "107.4 ± 10.4",
        "-6.0 (-9.5 to -2.0)",
        ".004",
        ".04",
    ]
    assert sum(1 for i in range(len(body)) if table.indent_of(i)) == 4
    notes = " ".join(table.footnotes)
    # Every item has the total's 38 pairs: said once, not in a column.
    assert "n = 38 pairs for every item" in notes
    assert "eFACE total score pair" in notes
    assert "Holm over the 19 tests of the eFACE items" in notes
    assert "slider 0-200, 100 = balanced" in notes and "100 - |100 - raw|" in notes
    assert "Wilcoxon signed-rank" in notes and "SYNTHETIC" in notes
    # A scale every item shares is said once.
    saq = built["etable_items_saq"]
    assert saq.body["Item"].tolist() == [f"SAQ item {k}" for k in range(1, 10)]
    assert "Each item: 1 = seldom or not at all ... 5 = all the time." in saq.footnotes
    assert built["etable_items_face"].body["Item"].iloc[8] == (
        "FaCE item 9 (social function; 1-5, reverse-worded: 5 is worst)"
    )


def test_every_word_of_the_item_etables_fits_its_word_column():
    # Word (and LibreOffice) give each column of a table the same share of the page's text
    # width. With nine columns, then seven, the rendered .docx broke "Palpebral" and then
    # "commissure" inside the word. Each word, measured in DejaVu Serif 9 pt (the serif
    # LibreOffice set the tables in; wider than Word's Calibri), must fit its column less the
    # cells' margins (0.08 in each side, Word's default).
    from matplotlib import get_data_path
    from PIL import ImageFont

    from pipeline.render.writers import new_docx

    section = new_docx().sections[0]  # lengths in EMU, 12700 to the point
    text_width = (section.page_width - section.left_margin - section.right_margin) / 12700
    font = ImageFont.truetype(str(Path(get_data_path()) / "fonts/ttf/DejaVuSerif.ttf"), 900)
    results, planned = _demo_results()
    for stem, table in item_tables(
        results, {n: REGISTRY[n] for n in TOTALS}, planned, conf_level=0.95
    ):
        room = text_width / len(table.body.columns) - 2 * 0.08 * 72
        # A line may break at a space or after a hyphen ("reverse-worded").
        cells = [*table.body.columns, *table.body.to_numpy().ravel()]
        words = [w for cell in cells for w in re.split(r"\s|(?<=-)", str(cell))]
        widest = max(words, key=font.getlength)
        assert font.getlength(widest) / 100 <= room, (stem, widest)


def test_the_secondary_analyses_store_and_write_it_and_the_tables_render_it(demo, tmp_path):
    con, study = demo
    reports = tmp_path / "reports"
    analyse(con, study, reports)
    written = secondary_analyses(con, study, reports)
    folder = reports / "demo" / "tables"
    assert folder / "item_changes.csv" in written
    stored = con.execute("SELECT * FROM demo.item_changes").df()
    assert list(stored.columns) == ["study", *COLUMNS] and len(stored) == 56
    assert (
        pd.read_csv(folder / "item_changes.csv")["n_pairs"].tolist() == stored["n_pairs"].tolist()
    )
    # The R-checked numbers are the step's numbers.
    expected = pd.read_csv(R_EXPECTED, dtype={"item": str})
    assert stored["p_adj"].tolist() == pytest.approx(expected["p_adj"].tolist(), rel=1e-9)
    tables = write_tables(con, study, reports)
    titles = [
        t
        for t in con.execute(
            "SELECT text FROM demo.publication_tables WHERE part = 'title' ORDER BY position"
        ).df()["text"]
    ]
    items = [t for t in titles if "items before and after surgery" in t]
    assert [t.split(". ", 1)[1] for t in items] == [
        "Sunnybrook items before and after surgery",
        "eFACE items before and after surgery",
        "SAQ items before and after surgery",
        "FaCE items before and after surgery",
    ]
    # Numbered after the other eTables, in order.
    numbers = [
        int(t.split(".")[0].removeprefix("eTable ")) for t in titles if t.startswith("eTable")
    ]
    assert numbers == list(range(1, len(numbers) + 1))
    assert titles[-4:] == items
    for stem in ("etable_items_eface", "etable_items_face"):
        for ext in ("csv", "md", "html", "tex", "docx"):
            assert folder / f"{stem}.{ext}" in tables


def test_an_edit_to_the_item_statistics_makes_the_secondary_analyses_and_tables_stale(
    monkeypatch,
):
    # The step runs inside secondary_analyses (no asset of its own): its module's source is in
    # the code version of that asset and of those downstream, not of the analysis upstream.
    from pipeline import sources, steps

    functions = (steps.analyse, steps.secondary_analyses, steps.write_tables)
    before = [sources.code_version(f) for f in functions]
    read = sources.module_source
    monkeypatch.setattr(
        sources,
        "module_source",
        lambda name: (
            read(name) + ("\nEDITED = True\n" if name == "pipeline.statistics.items" else "")
        ),
    )
    after = [sources.code_version(f) for f in functions]
    assert [b != a for b, a in zip(before, after)] == [False, True, True]


def test_the_wide_tables_give_the_item_values_the_long_views_give(demo):
    # A wide visits file's items are read from item_values and the score tables (one row per
    # pair); a long file's from the long views. On the demo (wide) both reads must agree value
    # for value, duplicates and missing values included.
    from pipeline.spec.study import item_columns
    from pipeline.statistics import items

    con, study = demo
    mapping = item_columns(study)
    tables = items._score_tables(study)
    compared = 0
    for o in items._paired_on(outcomes_frame(study), study).itertuples(index=False):
        rows = item_rows(study.instrument(o.instrument), o.version or None)
        if not rows:
            continue
        position = {r["source"]: k for k, r in enumerate(rows)}
        mine = mapping[(mapping["instrument"] == o.instrument) & (mapping["rater"] == o.rater)]
        wide = con.execute(
            items._wide_sql(
                study, o, position, dict(zip(mine["item"], mine["column"])), tables[o.instrument]
            ),
            [o.outcome, o.score],
        ).df()
        long = con.execute(items._long_sql(study, o, position), [o.outcome, o.score]).df()
        for side in ("pre", "post"):
            expected = np.full((len(rows), len(wide)), np.nan)
            expected[long["position"], long["pair"]] = long[f"{side}_value"]
            got = np.array([wide[f"{side}_{k}"].to_numpy(float) for k in range(len(rows))])
            assert np.array_equal(got, expected, equal_nan=True), (o.instrument, side)
        compared += 1
    assert compared == 4
