"""Ingestion: every row accepted or quarantined with a reason; unmapped columns never read."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.ingest.deidentify import IdentifiersFound
from pipeline.ingest.ingestion import IngestError, ingest_study, scan_sources
from pipeline.spec.study import load_study
from specs import edit_spec

TWO_RATERS = {
    "instruments": {"house_brackmann": {"column": "hb_{rater}", "raters": ["observer", "surgeon"]}}
}


def ingest(folder):
    """The study in ``folder`` ingested into an in-memory warehouse, and what each file gave."""
    con = duckdb.connect()
    return con, {f.file: f for f in ingest_study(con, load_study(folder))}


def row_counts(file) -> tuple[int, int, int]:
    """A file's rows read, accepted and quarantined."""
    return file.rows_read, file.rows_accepted, file.rows_quarantined


@pytest.fixture
def ingested(tiny_study):
    return ingest(tiny_study)


def test_every_row_is_accounted_for(ingested):
    _, files = ingested
    # tiny_study's visits.csv: 10 data rows; lines 3 and 11 duplicate P1/m3, line 9 names an
    # unknown subject, line 10 has a non-numeric day -> 6 accepted, 4 quarantined.
    assert row_counts(files["visits.csv"]) == (10, 6, 4)
    assert (files["patients.csv"].rows_read, files["patients.csv"].rows_accepted) == (3, 3)


def test_quarantine_names_file_line_column_and_reason(ingested):
    con, _ = ingested
    rows = con.execute(
        'SELECT file, line, "column", value, value_length, reason, scope FROM tiny.quarantine'
    ).fetchall()
    # Text is withheld (it could be a name typed in the wrong column): its length is kept.
    assert rows == [
        ("visits.csv", 3, "visit", None, 2, "subject and visit appear on more than one row", "row"),
        (
            "visits.csv",
            8,
            "hb_observer",
            "9",
            1,
            "outside the allowed range 1 to 6 for house_brackmann grade",
            "value",
        ),
        (
            "visits.csv",
            9,
            "code",
            None,
            2,
            "unknown subject: not an accepted row of patients.csv",
            "row",
        ),
        (
            "visits.csv",
            10,
            "day",
            None,
            3,
            "day is not a whole number of days relative to surgery",
            "row",
        ),
        (
            "visits.csv",
            11,
            "visit",
            None,
            2,
            "subject and visit appear on more than one row",
            "row",
        ),
    ]


def test_a_withheld_value_is_found_in_the_export_by_its_keyed_hash(ingested, tiny_study):
    """Whoever holds the export recomputes the hash (the key comes from the file's bytes, which
    the warehouse does not hold); a short number is kept as written and has no hash."""
    import hashlib

    from pipeline.ingest.ingestion import quarantine_key

    con, _ = ingested
    hashes = dict(con.execute("SELECT line, value_hash FROM tiny.quarantine").fetchall())
    key = quarantine_key(tiny_study / "visits.csv")
    assert (
        key
        == hashlib.sha256(
            b"facial-outcomes quarantine\0" + (tiny_study / "visits.csv").read_bytes()
        ).hexdigest()
    )
    # Line 10's day cell, as written in the export: "abc".
    assert hashes[10] == hashlib.sha256((key + "abc").encode()).hexdigest()[:16]
    assert hashes[3] == hashes[11]  # the same visit code on both lines
    assert hashes[8] is None


def test_out_of_range_value_leaves_the_item_missing_not_the_row(ingested):
    con, _ = ingested
    assert (
        con.execute(
            "SELECT count(*) FROM tiny.visits WHERE subject = 'P3' AND visit = 'm6'"
        ).fetchall()[0][0]
        == 1
    )
    assert (
        con.execute(
            "SELECT count(*) FROM tiny.item_responses WHERE subject = 'P3' AND visit = 'm6'"
        ).fetchall()[0][0]
        == 0
    )


def test_unmapped_columns_never_reach_the_warehouse(ingested):
    con, _ = ingested
    columns = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'tiny'"
        ).fetchall()
    }
    assert "handedness" not in columns


def test_a_file_carrying_names_is_refused_and_nothing_is_written(tiny_study):
    (tiny_study / "patients.csv").write_text(
        "code,age,full_name\nP1,50,Jane Roe\nP2,61,John Doe\nP3,44,Ann Poe\n"
    )
    con = duckdb.connect()
    with pytest.raises(IdentifiersFound) as refused:
        ingest_study(con, load_study(tiny_study))
    message = str(refused.value)
    assert "patients.csv: refused" in message and "column 'full_name': name of a person" in message
    # The refusal never repeats the identifying values.
    assert "Jane" not in message and "Roe" not in message
    assert con.execute(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'tiny'"
    ).fetchall() == [(0,)]


def test_an_allowed_column_passes_the_guard_with_its_justification(tiny_study):
    (tiny_study / "patients.csv").write_text(
        "code,age,surgeon_name\nP1,50,Ann Lee\nP2,61,Bo Kim\nP3,44,Cy Ray\n"
    )
    spec = tiny_study / "study.toml"
    spec.write_text(
        spec.read_text()
        + '\n[identifiers.allow]\nsurgeon_name = "the operating surgeon, staff not patients"\n'
    )
    study = load_study(tiny_study)
    assert study.identifiers_allowed == (
        ("surgeon_name", "the operating surgeon, staff not patients"),
    )
    ingest_study(duckdb.connect(), study)


def test_long_layout_gives_the_same_tables_as_wide(tiny_study):
    wide, _ = ingest(tiny_study)
    # Same cohort, one row per subject, visit and item; P2/m12 has no day, P9 is unknown.
    (tiny_study / "visits.csv").write_text(
        "code,visit,day,item,value\n"
        "P1,pre,-10,hb_observer,4\nP1,m3,95,hb_observer,3\nP1,m12,370,hb_observer,2\nP2,pre,-5,hb_observer,5\n"
        "P2,m1,30,hb_observer,4\nP3,pre,-3,hb_observer,3\nP3,m6,180,hb_observer,9\nP9,pre,-1,hb_observer,4\n"
        "P2,m12,abc,hb_observer,2\nP1,m3,95,hb_observer,3\nP1,m3,95,sb_rest_eye,1\n"
    )
    edit_spec(tiny_study, {"visits": {"layout": "long"}})
    long, files = ingest(tiny_study)
    assert row_counts(files["visits.csv"]) == (11, 5, 6)
    reasons = [
        r[0] for r in long.execute("SELECT reason FROM tiny.quarantine ORDER BY line").fetchall()
    ]
    assert reasons == [
        "subject, visit and item appear on more than one row",
        "outside the allowed range 1 to 6 for house_brackmann grade",
        "unknown subject: not an accepted row of patients.csv",
        "day is not a whole number of days relative to surgery",
        "subject, visit and item appear on more than one row",
        "item is not mapped to an instrument by the study spec",
    ]
    # P3/m6's only item is out of range, so the long layout has no P3/m6 visit and no row for it;
    # every other accepted response matches the wide layout's.
    query = "SELECT subject, visit, day, item, value FROM tiny.item_responses ORDER BY ALL"
    assert long.execute(query).fetchall() == wide.execute(query).fetchall()


def test_rows_with_the_wrong_number_of_fields_are_quarantined_whole(tiny_study):
    (tiny_study / "visits.csv").write_text(
        "code,visit,day,hb_observer\nP1,pre,-10,4\nP1,m3,95\nP1,m12,370,2,7\n\nP2,pre,-5,5\n"
    )
    con, files = ingest(tiny_study)
    assert row_counts(files["visits.csv"]) == (4, 2, 2)
    assert con.execute(
        'SELECT line, "column", value FROM tiny.quarantine ORDER BY line'
    ).fetchall() == [(3, "(whole row)", None), (4, "(whole row)", None)]
    # The blank line 5 is not a row, but the rows after it keep their spreadsheet line.
    assert con.execute("SELECT line FROM tiny.visits WHERE subject = 'P2'").fetchall() == [(6,)]


def test_only_refused_cells_of_accepted_rows_are_quarantined_as_values(tiny_study):
    # Two raters, so two item columns: a refused cell and a cell of spaces in hb_observer, a
    # cell that would be refused in hb_surgeon but on a row refused whole (unknown subject),
    # and hb_surgeon otherwise clean. Only the accepted row's refused cell is a value finding.
    edit_spec(tiny_study, TWO_RATERS)
    (tiny_study / "visits.csv").write_text(
        "code,visit,day,hb_observer,hb_surgeon\nP1,pre,-10,4,4\nP1,m12,370,x,2\nP2,pre,-5,  ,5\n"
        "P9,pre,-1,3,99\nP2,m12,400,2,3\n"
    )
    con, files = ingest(tiny_study)
    assert (files["visits.csv"].rows_read, files["visits.csv"].rows_accepted) == (5, 4)
    assert con.execute(
        'SELECT line, "column", value_length, scope FROM tiny.quarantine ORDER BY line'
    ).fetchall() == [(3, "hb_observer", 1, "value"), (5, "code", 2, "row")]
    assert con.execute(
        "SELECT line, hb_observer, hb_surgeon FROM tiny.item_values ORDER BY line"
    ).fetchall() == [(2, 4.0, 4.0), (3, None, 2.0), (4, None, 5.0), (6, 2.0, 3.0)]


def test_a_visit_outside_every_window_is_quarantined(tiny_study):
    edit_spec(tiny_study, {"visits": {"windows": {"pre": [-30, 0], "late": [90, 400]}}})
    con = duckdb.connect()
    ingest_study(con, load_study(tiny_study))
    rows = con.execute(
        "SELECT line, value FROM tiny.quarantine WHERE reason LIKE '%outside every visit window%'"
    ).fetchall()
    assert rows == [(6, "30")]  # P2/m1 on day 30 lies in no window


def test_source_files_record_hash_and_size(ingested, tiny_study):
    import hashlib

    _, files = ingested
    raw = (tiny_study / "visits.csv").read_bytes()
    assert files["visits.csv"].sha256 == hashlib.sha256(raw).hexdigest()
    assert files["visits.csv"].bytes == len(raw)


def test_missing_mapped_column_is_one_clear_error(tiny_study):
    (tiny_study / "visits.csv").write_text("code,visit,day\nP1,pre,-1\n")
    with pytest.raises(
        IngestError,
        match=r"visits.csv: column\(s\) hb_observer named in the study spec are missing",
    ):
        ingest_study(duckdb.connect(), load_study(tiny_study))


def test_raw_files_are_not_modified(tiny_study):
    before = {p.name: p.read_bytes() for p in tiny_study.iterdir()}
    ingest_study(duckdb.connect(), load_study(tiny_study))
    assert before == {p.name: p.read_bytes() for p in tiny_study.iterdir()}


INGESTED = ("subjects", "visits", "item_values", "quarantine", "source_files")


def _tables(folder, numbers):
    """Every table ingestion writes, sorted, or the guard's findings; and whether the visits
    file's item columns were read as numbers."""
    con = duckdb.connect()
    study = load_study(folder)
    files, _, _ = scan_sources(con, study, numbers=numbers)
    try:
        ingest_study(con, study, numbers=numbers)
    except IdentifiersFound as refused:
        return refused.findings, bool(files[-1].numbers)
    return {
        t: con.execute(f"SELECT * FROM tiny.{t} ORDER BY ALL").fetchall() for t in INGESTED
    }, bool(files[-1].numbers)


@pytest.mark.parametrize(
    "visits, as_numbers",
    [
        ("P1,pre,-10,4,4\nP1,m12,370,2,3\nP2,pre,-5,5,6\n", True),  # clean
        # refused values (range, whole number) on accepted rows, one on a row refused whole:
        ("P1,pre,-10,9,4\nP1,m12,370,2,3.5\nP9,pre,-1,3,99\nP2,pre,-5,,6\n", True),
        # the same with a blank line and a short row: lines counted the long way
        ("P1,pre,-10,9,4\n\nP1,m12,370,2\nP2,pre,-5,0,6\nP2,m12,400, 5 ,1e0\n", True),
        ("P1,pre,-10,4,n/a\nP1,m12,370,2,3\n", False),  # a cell that is not a number
        ("P1,pre,-10,nan,4\nP1,m12,370,inf,3\n", False),  # the guard must see the text
        ("P1,pre,-10,4,20190305\nP1,m12,370,2,3\n", False),  # a compact date: refused
    ],
)
def test_reading_item_columns_as_numbers_changes_no_table(tiny_study, visits, as_numbers):
    edit_spec(tiny_study, TWO_RATERS)
    (tiny_study / "visits.csv").write_text("code,visit,day,hb_observer,hb_surgeon\n" + visits)
    typed, took_numbers = _tables(tiny_study, numbers=True)
    text, took_text = _tables(tiny_study, numbers=False)
    assert (took_numbers, took_text) == (as_numbers, False)
    assert typed == text
