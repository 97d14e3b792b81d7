"""Ingestion: every row accepted or quarantined with a reason; unmapped columns never read."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.ingest import IngestError, ingest_study
from pipeline.study import load_study


@pytest.fixture
def ingested(tiny_study):
    con = duckdb.connect()
    files = ingest_study(con, load_study(tiny_study))
    return con, {f.file: f for f in files}


def test_every_row_is_accounted_for(ingested):
    _, files = ingested
    # tiny_study's visits.csv: 10 data rows; lines 3 and 11 duplicate P1/m3, line 9 names an
    # unknown subject, line 10 has a non-numeric day -> 6 accepted, 4 quarantined.
    assert (files["visits.csv"].rows_read, files["visits.csv"].rows_accepted,
            files["visits.csv"].rows_quarantined) == (10, 6, 4)
    assert (files["patients.csv"].rows_read, files["patients.csv"].rows_accepted) == (3, 3)


def test_quarantine_names_file_line_column_and_reason(ingested):
    con, _ = ingested
    rows = con.execute('SELECT file, line, "column", value, reason, scope FROM tiny.quarantine').fetchall()
    assert rows == [
        ("visits.csv", 3, "visit", "m3", "subject and visit appear on more than one row", "row"),
        ("visits.csv", 8, "hb_observer", "9", "outside the allowed range 1 to 6 for house_brackmann grade", "value"),
        ("visits.csv", 9, "code", "P9", "unknown subject: not an accepted row of patients.csv", "row"),
        ("visits.csv", 10, "day", "abc", "day is not a whole number of days relative to surgery", "row"),
        ("visits.csv", 11, "visit", "m3", "subject and visit appear on more than one row", "row"),
    ]


def test_out_of_range_value_leaves_the_item_missing_not_the_row(ingested):
    con, _ = ingested
    assert con.execute("SELECT count(*) FROM tiny.visits WHERE subject = 'P3' AND visit = 'm6'").fetchall()[0][0] == 1
    assert con.execute("SELECT count(*) FROM tiny.item_responses WHERE subject = 'P3' AND visit = 'm6'").fetchall()[0][0] == 0


def test_unmapped_columns_never_reach_the_warehouse(ingested):
    con, _ = ingested
    columns = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'tiny'").fetchall()}
    assert "full_name" not in columns
    names = con.execute("SELECT * FROM tiny.subjects").df().to_string()
    assert "Jane" not in names and "Roe" not in names


def test_source_files_record_hash_and_size(ingested, tiny_study):
    import hashlib
    _, files = ingested
    raw = (tiny_study / "visits.csv").read_bytes()
    assert files["visits.csv"].sha256 == hashlib.sha256(raw).hexdigest()
    assert files["visits.csv"].bytes == len(raw)


def test_missing_mapped_column_is_one_clear_error(tiny_study):
    (tiny_study / "visits.csv").write_text("code,visit,day\nP1,pre,-1\n")
    with pytest.raises(IngestError, match=r"visits.csv: column\(s\) hb_observer named in the study spec are missing"):
        ingest_study(duckdb.connect(), load_study(tiny_study))


def test_raw_files_are_not_modified(tiny_study):
    before = {p.name: p.read_bytes() for p in tiny_study.iterdir()}
    ingest_study(duckdb.connect(), load_study(tiny_study))
    assert before == {p.name: p.read_bytes() for p in tiny_study.iterdir()}
