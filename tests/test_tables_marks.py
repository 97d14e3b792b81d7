"""The item-level and missing-data eTables mark each footnote on the cells it explains, as
Table 2 does: a note on every row on its column's heading, a note on some rows (a raw value under
its score, why an item has no estimate) on those rows' Item cells, and every footnote but the
synthetic-data notice on at least one cell. (The flow eTable's: tests/test_patient_flow.py.)"""

from __future__ import annotations

import pandas as pd
from test_item_changes import TOTALS, _demo_results

from pipeline.instruments import REGISTRY
from pipeline.render.tables import OVERALL, RAW_VALUE, SYNTHETIC_NOTE, item_tables, missing_table


def _notes_on(table, row, heading):
    column = list(table.body.columns).index(heading)
    return [table.footnotes[k] for r, c, k in table.marks if (r, c) == (row, column)]


def test_every_item_etable_footnote_is_marked_on_the_cells_it_explains():
    results, planned = _demo_results()
    built = dict(
        item_tables(
            results, {n: REGISTRY[n] for n in TOTALS}, planned, conf_level=0.95, synthetic=True
        )
    )
    for stem, table in built.items():
        marked = {k for _, _, k in table.marks}
        unmarked = [n for k, n in enumerate(table.footnotes) if k not in marked]
        assert unmarked == [SYNTHETIC_NOTE], stem
    eface = built["etable_items_eface"]
    items = eface.body["Item"].tolist()
    # The raw oral commissure slider: the note on raw values, on each raw row's Item cell.
    raw_rows = [i for i, item in enumerate(items) if item == RAW_VALUE]
    assert raw_rows
    for i in raw_rows:
        [note] = _notes_on(eface, i, "Item")
        assert note.startswith(f"{RAW_VALUE} (indented): the value as recorded")
    # The item scores' range: every eFACE item is a score (or its raw value), so on the Item
    # heading rather than on every row.
    assert [n[:12] for n in _notes_on(eface, None, "Item")] == ["Item scores:"]
    # The visits and the change on the headings of the columns they explain.
    assert any(n.startswith("Before: ") for n in _notes_on(eface, None, "After, mean ± SD"))
    assert any(n.startswith("P values are two-sided") for n in _notes_on(eface, None, "P"))
    assert _notes_on(eface, None, "Adjusted P")
    # A scale every item shares, on the Item heading.
    saq = built["etable_items_saq"]
    assert _notes_on(saq, None, "Item") == [
        "Each item: 1 = seldom or not at all ... 5 = all the time."
    ]


def test_the_missing_data_etable_marks_its_denominator_on_the_missing_column():
    tidy = pd.DataFrame(
        {
            "group": OVERALL,
            "variable": ["age", "sex"],
            "label": ["Age, y", "Sex"],
            "n": [9, 10],
            "missing": [1, 0],
        }
    )
    table = missing_table(tidy, 10, synthetic=True)
    assert _notes_on(table, None, "Missing, No. (%)") == ["Of 10 included patients."]
    assert table.footnotes[-1] == SYNTHETIC_NOTE


def test_every_demo_table_marks_each_footnote_on_a_cell(demo_run):
    """Every publication table of the demo, as the report reads them from the warehouse: each
    lettered footnote but the synthetic-data notice is marked on at least one cell of its table,
    so no letter a reader sees under a table is one they cannot find in it."""
    import duckdb

    from pipeline.render.tables import from_frame

    folder, _ = demo_run
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    try:
        built = from_frame(con.execute("SELECT * FROM demo.publication_tables").df())
    finally:
        con.close()
    assert len(built) > 10
    unmarked = {
        stem: [
            n[:40]
            for k, n in enumerate(table.footnotes)
            if n != SYNTHETIC_NOTE and k not in {mark[2] for mark in table.marks}
        ]
        for stem, table in built
    }
    assert {stem: notes for stem, notes in unmarked.items() if notes} == {}
