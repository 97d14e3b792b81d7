"""Readers: CSV in the encodings, delimiters and decimal separators coordinators really have, and
XLSX."""

from __future__ import annotations

import codecs
import datetime

import duckdb
import openpyxl
import pytest

from pipeline.ingest.readers import RawTable, ReadError, ReadOptions, number_sql, read_table

ROWS = [("code", "visit", "day", "hb"), ("P1", "pré", "-10", "4"), ("P2", "m3", "95", "3")]


def rows_of(con, table="raw"):
    return con.execute(f"SELECT * FROM {table} ORDER BY _line").fetchall()


def read_export(tmp_path, data: bytes) -> tuple[duckdb.DuckDBPyConnection, RawTable]:
    """``data`` as the export v.csv, read with the defaults into table ``raw`` of a new in-memory
    database."""
    path = tmp_path / "v.csv"
    path.write_bytes(data)
    con = duckdb.connect()
    return con, read_table(con, path, "raw")


EXPECTED = [(2, "P1", "pré", "-10", "4"), (3, "P2", "m3", "95", "3")]


@pytest.mark.parametrize(
    "encoding, bom", [("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("latin-1", b"")]
)
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_encodings_and_delimiters(tmp_path, encoding, bom, delimiter):
    data = bom + "\n".join(delimiter.join(r) for r in ROWS).encode(encoding) + b"\n"
    con, raw = read_export(tmp_path, data)
    assert (raw.encoding, raw.delimiter, raw.columns, raw.rows) == (encoding, delimiter, ROWS[0], 2)
    assert rows_of(con) == EXPECTED


def test_windows_line_endings_and_quoted_fields(tmp_path):
    con, _ = read_export(tmp_path, b'code,note\r\nP1,"a, b"\r\nP2,"say ""hi"""\r\n')
    assert rows_of(con) == [(2, "P1", "a, b"), (3, "P2", 'say "hi"')]


def test_declared_utf8_that_is_not_is_refused_with_the_line(tmp_path):
    path = tmp_path / "v.csv"
    path.write_bytes("code,visit\nP1,ok\nP2,pré\n".encode("latin-1"))
    with pytest.raises(ReadError, match=r"not valid UTF-8 \(line 3.*encoding = \"latin-1\""):
        read_table(duckdb.connect(), path, "raw", ReadOptions(encoding="utf-8"))


@pytest.mark.parametrize(
    "decimal, text, expected",
    [
        (".", "3.5", 3.5),
        (".", "3,5", None),
        (",", "3,5", 3.5),
        (",", "1.234,5", None),
        (".", " 4 ", 4.0),
        (".", "1e400", float("inf")),
        (".", "abc", None),
    ],
)
def test_numbers_follow_the_declared_decimal_separator(decimal, text, expected):
    value = (
        duckdb.connect()
        .execute(f"SELECT {number_sql('v', decimal)} FROM (SELECT ? AS v)", [text])
        .fetchall()[0][0]
    )
    assert value == expected


def test_xlsx_first_or_named_sheet(tmp_path):
    path = tmp_path / "v.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "notes"
    book.active.append(["only", "notes"])
    sheet = book.create_sheet("visits")
    for row in [
        ("code", "visit", "day", "hb"),
        ("P1", "pré", -10, 4),
        (None, None, None, None),
        ("P2", "m3", 95.0, 3),
    ]:
        sheet.append(row)
    book.save(path)
    con = duckdb.connect()
    raw = read_table(con, path, "raw", ReadOptions(sheet="visits"))
    assert (raw.format, raw.rows) == ("xlsx", 2)
    # The empty spreadsheet row 3 is not a record, but P2 keeps its spreadsheet line 4.
    assert rows_of(con) == [(2, "P1", "pré", "-10", "4"), (4, "P2", "m3", "95", "3")]
    first = read_table(con, path, "first")
    assert first.columns == ("only", "notes")
    # The workbook's sheet names are counted, not listed: a sheet may be named after a patient.
    with pytest.raises(
        ReadError, match=r"no sheet named 'Sheet9' among the workbook's 2 sheet\(s\)"
    ) as err:
        read_table(con, path, "raw", ReadOptions(sheet="Sheet9"))
    assert "notes" not in str(err.value) and "visits" not in str(err.value).replace(
        "visits.xlsx", ""
    )


def test_xlsx_dates_stay_visible_to_the_guard(tmp_path):
    path = tmp_path / "v.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["code", "seen"])
    book.active.append(["P1", datetime.date(2019, 3, 4)])
    book.save(path)
    con = duckdb.connect()
    read_table(con, path, "raw")
    assert rows_of(con) == [(2, "P1", "2019-03-04T00:00:00")]


def test_an_xlsx_named_csv_is_read_as_a_workbook(tmp_path):
    path = tmp_path / "v.csv"
    book = openpyxl.Workbook()
    book.active.append(["code", "day"])
    book.active.append(["P1", 3])
    book.save(path)
    assert read_table(duckdb.connect(), path, "raw").format == "xlsx"


def test_the_raw_file_is_never_modified(tmp_path):
    path = tmp_path / "v.csv"
    data = codecs.BOM_UTF8 + b"code;day\r\nP1;3\r\nP2\r\n"
    path.write_bytes(data)
    read_table(duckdb.connect(), path, "raw")
    assert path.read_bytes() == data


def test_reloading_a_name_switches_between_view_and_table(tmp_path):
    """A clean CSV is loaded as a view numbering its lines, one with a rejected row (or an XLSX)
    as a table; loading another file under the same name replaces either kind."""
    clean = tmp_path / "clean.csv"
    clean.write_text("id,x\nA,1\nB,2\n")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,x\nA,1\nB,2,extra\nC,3\n")
    book = tmp_path / "book.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["id", "x"])
    workbook.active.append(["D", 4])
    workbook.save(book)
    con = duckdb.connect()
    expected = {clean: [(2, "A"), (3, "B")], ragged: [(2, "A"), (4, "C")], book: [(2, "D")]}
    for path in (clean, ragged, clean, book, clean):
        raw = read_table(con, path, "raw")
        assert con.execute("SELECT _line, id FROM raw ORDER BY _line").fetchall() == expected[path]
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'raw'"
    ).fetchall()
    assert kind == [("VIEW",)] and raw.rows == 2


# Cells a number column meets in real exports. Expected: where DuckDB's CSV reader stores the
# cell as a DOUBLE, the value is the one number_sql gives for its text (checked here against
# the text read of the same file); any other cell sends the whole file to the text read.
NUMBER_CELLS = [
    "3",
    "3.0",
    " 3",
    "3 ",
    "\t3",
    '" 3 "',
    "-0",
    "+3",
    ".5",
    "5.",
    "1.5e2",
    "1E2",
    "1_000",
    "00012",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e400",
    "1e-400",
    "0.1",
    "123456789012345678901234567890",
    "",
    '""',
    "   ",
    "1 000",
    '"1,5"',
    "0x10",
    "abc",
    "3a",
    "½",
    "٣",
    "1e",
    "--3",
    "1.2.3",
    "TRUE",
    "2019-01-01",
    "12:00",
]


@pytest.mark.parametrize("cell", NUMBER_CELLS)
def test_a_column_read_as_numbers_holds_what_parsing_its_text_gives(tmp_path, cell):
    path = tmp_path / "v.csv"
    path.write_text(f"code,hb\nP1,4\nP2,{cell}\n", encoding="utf-8")
    con = duckdb.connect()
    raw = read_table(con, path, "raw", numbers=["hb"])
    read_table(con, path, "text")
    parsed = con.execute(f"SELECT _line, {number_sql('hb')} FROM text ORDER BY _line").fetchall()
    if raw.numbers:
        assert raw.numbers == ("hb",)
        assert con.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'raw_text' AND column_name = 'hb'"
        ).fetchall() == [("DOUBLE",)]
        got = con.execute("SELECT _line, hb FROM raw ORDER BY _line").fetchall()
        # repr: NaN equals NaN, and -0.0 is told from 0.0.
        assert [(line, repr(v)) for line, v in got] == [(line, repr(v)) for line, v in parsed]
    else:
        assert rows_of(con) == rows_of(con, "text")
    assert raw.rows == 2 and raw.rejected == 0


def test_one_cell_that_is_not_a_number_reads_the_file_as_text(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("code,hb,day\nP1,4,-10\n\nP2,n/a,95\nP3,2\n", encoding="utf-8")
    con = duckdb.connect()
    raw = read_table(con, path, "raw", numbers=["hb", "day"])
    assert raw.numbers == ()
    assert rows_of(con) == [(2, "P1", "4", "-10"), (4, "P2", "n/a", "95")]
    assert con.execute("SELECT * FROM raw_rejects").fetchall() == [
        (5, "row has fewer fields than the header (3); check for a stray or missing delimiter")
    ]


def test_lines_are_right_for_a_file_read_inside_a_transaction(tmp_path):
    # DuckDB numbers the rows of a table created in an open transaction from 2^55.
    path = tmp_path / "v.csv"
    path.write_text("code,hb\nP1,4\nP2,5\n", encoding="utf-8")
    blank = tmp_path / "b.csv"
    blank.write_text("code,hb\nP1,4\n\nP2,5\n", encoding="utf-8")
    con = duckdb.connect()
    con.execute("BEGIN TRANSACTION")
    read_table(con, path, "raw", numbers=["hb"])
    read_table(con, blank, "gap")
    assert rows_of(con) == [(2, "P1", 4.0), (3, "P2", 5.0)]
    assert rows_of(con, "gap") == [(2, "P1", "4"), (4, "P2", "5")]
    con.execute("COMMIT")
    assert rows_of(con) == [(2, "P1", 4.0), (3, "P2", 5.0)]


# (file text, the spreadsheet row of each loaded row's code): the header is row 1, a blank line
# is a row, a cell holding line breaks (blank ones too) is one row.
SPREADSHEET_ROWS = [
    ('code,note\nP1,"a\n\nb"\nP2,x\n', {"P1": 2, "P2": 3}),
    ('code,note\nP1,"a\n\nb"\nP2,x\n\nP3,"n\n"\n\nP4,y\n', {"P1": 2, "P2": 3, "P3": 5, "P4": 7}),
    ('code,note\r\nP1,"a\r\n\r\nb"\r\n\r\nP2,x\r\n', {"P1": 2, "P2": 4}),
    # a rejected row between them: DuckDB numbers it as a spreadsheet does, and so are the rest
    ('code,note\nP1,"a\n\n\nb"\nP2,x,extra\n\nP3,y\n', {"P1": 2, "P3": 5}),
    ("code,note\nP1,x\n\n\nP2,y\n\n", {"P1": 2, "P2": 5}),
]


@pytest.mark.parametrize("text, rows", SPREADSHEET_ROWS)
def test_lines_are_spreadsheet_rows_after_a_cell_holding_a_blank_line(tmp_path, text, rows):
    con, _ = read_export(tmp_path, text.encode())
    assert dict(con.execute("SELECT code, _line FROM raw").fetchall()) == rows
    if "extra" in text:
        assert con.execute("SELECT _line FROM raw_rejects").fetchall() == [(3,)]


@pytest.mark.parametrize(
    "data",
    [
        b"code,visit\r\nP1,pre\nP2,m3\r\nP3,m6\n",  # CRLF, then LF, mixed
        b"code,visit\nP1,pre\r\nP2,m3\nP3,m6\r\n",  # LF, then CRLF
        b"code,visit\nP1,pre\rP2,m3\nP3,m6",  # a lone CR (old Mac) among LF
        b"code,visit\rP1,pre\rP2,m3\rP3,m6\r",  # CR only
    ],
)
def test_mixed_line_endings_are_read_with_their_lines(tmp_path, data):
    con, raw = read_export(tmp_path, data)
    assert raw.rows == 3
    assert rows_of(con) == [(2, "P1", "pre"), (3, "P2", "m3"), (4, "P3", "m6")]
    # Read from a copy in the temporary folder, the file untouched.
    assert (tmp_path / "v.csv").read_bytes() == data


def test_a_mixed_line_end_file_keeps_its_lines_with_a_blank_line_and_a_bad_row(tmp_path):
    con, _ = read_export(tmp_path, b'code,visit\r\nP1,"a\r\nb"\n\r\nP2,m3,extra\nP3,m6\r\n')
    assert rows_of(con) == [(2, "P1", "a\nb"), (5, "P3", "m6")]
    assert con.execute("SELECT _line FROM raw_rejects").fetchall() == [(4,)]


def test_windows_1252_is_detected_and_read(tmp_path):
    # Excel's "CSV (Comma delimited)" on Western European Windows: curly quotes, dashes, the euro
    # sign at bytes 0x80-0x9F, which Latin-1 does not have (DuckDB refused the file as "not
    # latin-1").
    text = "code,visit,note\nP1,pre,patient’s “own” view – €5\nP2,m3,café\n"
    path = tmp_path / "v.csv"
    path.write_bytes(text.encode("cp1252"))
    con = duckdb.connect()
    raw = read_table(con, path, "raw")
    assert raw.encoding == "cp1252"
    assert rows_of(con) == [(2, "P1", "pre", "patient’s “own” view – €5"), (3, "P2", "m3", "café")]
    for declared in ("cp1252", "windows-1252"):
        assert read_table(con, path, "raw", ReadOptions(encoding=declared)).encoding == "cp1252"
        assert rows_of(con)[0][3] == "patient’s “own” view – €5"


def test_latin_1_stays_latin_1_and_bytes_windows_1252_lacks_still_read(tmp_path):
    path = tmp_path / "v.csv"
    path.write_bytes("code,visit\nP1,pré\n".encode("latin-1"))
    con = duckdb.connect()
    assert read_table(con, path, "raw").encoding == "latin-1"  # no byte where the two differ
    # 0x81 is not a Windows-1252 character: Latin-1, the fallback every byte sequence is.
    path.write_bytes(b"code,visit\nP1,pr\xe9\x81\n")
    assert read_table(con, path, "raw").encoding == "latin-1"
    assert rows_of(con) == [(2, "P1", "pré\x81")]
    with pytest.raises(
        ReadError,
        match=r"not valid Windows-1252 \(line 2, byte 17 is not a Windows-1252 "
        r"character\).*encoding = \"latin-1\"",
    ):
        read_table(con, path, "raw", ReadOptions(encoding="windows-1252"))


def test_duckdb_errors_are_refused_with_the_line_number_but_never_the_line(tmp_path):
    from pipeline.ingest.readers import csv_refusal

    # A real error of DuckDB's CSV reader, which quotes the line it stopped on.
    path = tmp_path / "v.csv"
    path.write_text("code,name\nP1,Jane Roe,617-555-0142\n")
    with pytest.raises(duckdb.Error) as raised:
        duckdb.connect().execute(
            "SELECT * FROM read_csv(?, header = true, auto_detect = false, "
            "columns = {'code': 'VARCHAR', 'name': 'VARCHAR'})",
            [str(path)],
        ).fetchall()
    assert "Jane Roe" in str(raised.value)
    message = str(csv_refusal(path, raised.value))
    assert message.startswith(f"{path}: cannot be read as CSV: the reader stopped at line 2")
    assert "Jane" not in message and "617" not in message and "\n" not in message


def test_a_first_line_of_values_repeating_a_cell_is_refused_without_quoting_it(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("FP-001,Jane Roe,1970-04-12,Jane Roe\nFP-002,John Doe,1961-02-03,John Doe\n")
    with pytest.raises(ReadError) as raised:
        read_table(duckdb.connect(), path, "raw")
    message = str(raised.value)
    assert (
        "columns 2 and 4 of the header have the same name" in message
        and "put the header row on line 1" in message
    )
    assert "Jane" not in message and "1970" not in message
