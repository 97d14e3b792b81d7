"""Property-based fuzzing of every reader: random bytes, random CSV shapes and encodings,
extreme and non-finite numbers, unicode and control characters, very long fields.

Every case must end accepted, quarantined or refused with a message (ReadError,
RedcapError, IngestError, IdentifiersFound): never another exception, never a hang.
The examples are derandomized, so every run checks the same cases.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
import tomllib
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from conftest import bounded, fuzz_settings
from pipeline.ingest import redcap
from pipeline.ingest.deidentify import IdentifiersFound, scan
from pipeline.ingest.ingestion import IngestError, ingest_study, scan_sources
from pipeline.ingest.readers import ReadError, ReadOptions, read_table
from pipeline.spec.study import load_study
from specs import study_toml

FUZZ = fuzz_settings(max_examples=50)
REFUSALS = (ReadError, redcap.RedcapError, IngestError, IdentifiersFound)


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory(prefix="fuzz_") as folder:
        yield Path(folder)


# Values as they turn up in exports, and the ones that break naive code.
EXTREMES = [
    "0",
    "-0",
    "1e308",
    "1e309",
    "-1e309",
    "4.9e-324",
    "inf",
    "-inf",
    "Infinity",
    "nan",
    "NaN",
    "9" * 400,
    "0x1F",
    "1_000",
    "3,5",
    "1.234,5",
    " 7 ",
    "\u0661\u0662",
    "\uff13",
    "1e",
    ".",
    "-",
    "NULL",
    "#N/A",
    "=1+1",
    "'",
    '"',
    '""',
    "\x00",
    "\ufeff",
    "\u202e3",
    "5\r",
    "4\n5",
]
cells = st.one_of(
    st.text(max_size=15),
    st.sampled_from(EXTREMES),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.text(min_size=1, max_size=3).map(lambda t: t * 3000),  # a very long field
)
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]


@st.composite
def csv_files(draw) -> bytes:
    """A table written as delimited text: any header, ragged rows, any quoting and line ends."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    width = draw(st.integers(1, 5))
    names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_ ]{0,10}", fullmatch=True)
    header = draw(
        st.one_of(
            st.lists(names, min_size=width, max_size=width, unique_by=str.strip),
            st.lists(st.text(max_size=10), min_size=width, max_size=width),
        )
    )
    rows = draw(st.lists(st.lists(cells, max_size=width + 2), max_size=10))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if draw(st.booleans()):
        buffer = io.StringIO()
        writer = csv.writer(
            buffer,
            delimiter=delimiter,
            lineterminator=end,
            quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        )
        writer.writerow(header)
        writer.writerows(rows)
        text = buffer.getvalue()
    else:  # no quoting at all: stray quotes and delimiters inside values stay as they are
        text = end.join(delimiter.join(row) for row in [header, *rows]) + draw(
            st.sampled_from(["", end])
        )
    return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


read_options = st.builds(
    ReadOptions,
    format=st.sampled_from(["auto", "csv", "redcap"]),
    encoding=st.sampled_from(["auto", "utf-8", "windows-1252", "latin-1"]),
    delimiter=st.sampled_from(["auto", ",", ";", "\t"]),
    decimal=st.sampled_from([".", ","]),
)


def _read(scratch: Path, data: bytes, name: str, options: ReadOptions = ReadOptions()):
    """Read ``data`` as a file; return the RawTable, or None when refused with a message."""
    path = scratch / name
    path.write_bytes(data)
    con = duckdb.connect()
    try:
        with bounded(con):
            raw = read_table(con, path, "raw_fuzz", options)
        event(f"accepted ({'some rows set aside' if raw.rejected else 'every row loaded'})")
        # Accepted: every row read is loaded or set aside, each on its own line after the header.
        loaded = con.execute(
            "SELECT count(*), count(DISTINCT _line), min(_line) FROM raw_fuzz"
        ).fetchall()[0]
        rejected = con.execute("SELECT count(*) FROM raw_fuzz_rejects").fetchall()[0][0]
        assert raw.rows == loaded[0] + rejected and raw.rejected == rejected
        assert loaded[1] == loaded[0] and (loaded[2] is None or loaded[2] >= 2)
        assert len(set(raw.columns)) == len(raw.columns) and all(c.strip() for c in raw.columns)
        # The de-identification guard reads every column of whatever was accepted.
        with bounded(con):
            scan(con, raw)
        return raw
    except REFUSALS as err:
        event(f"refused: {type(err).__name__}")
        assert str(err).startswith(str(path)), f"a refusal must name the file: {err}"
        return None
    finally:
        con.close()


@FUZZ
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".csv", ".txt", ".xlsx", ".xls", ""]))
def test_random_bytes(scratch, data, suffix):
    _read(scratch, data, f"export{suffix}")


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_behind_a_zip_signature(scratch, data):
    _read(scratch, b"PK\x03\x04" + data, "export.xlsx")


@FUZZ
@given(data=csv_files(), options=read_options)
def test_random_csv_shapes(scratch, data, options):
    _read(scratch, data, "export.csv", options)


xlsx_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(min_value=date(1900, 3, 1), max_value=date(9999, 12, 31)),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(9999, 12, 31)),
    # openpyxl refuses the control characters XML cannot hold, so a workbook never has them.
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20),
    st.text(min_size=1, max_size=3, alphabet=st.characters(blacklist_categories=["Cs", "Cc"])).map(
        lambda t: t * 2000
    ),
)


@FUZZ
@given(
    rows=st.lists(st.lists(xlsx_values, max_size=6), max_size=8),
    sheet=st.text(
        alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="[]:*?/\\"),
        min_size=1,
        max_size=20,
    ).filter(lambda s: s.strip("'") == s),
    pick=st.booleans(),
    damage=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_random_workbooks(scratch, rows, sheet, pick, damage):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = sheet
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    data = buffer.getvalue()
    if damage is not None:  # a truncated or bit-flipped download
        cut = damage % len(data)
        data = (
            data[:cut] if damage % 2 else data[:cut] + bytes([data[cut] ^ 0x5A]) + data[cut + 1 :]
        )
    _read(scratch, data, "export.xlsx", ReadOptions(sheet=sheet if pick else ""))


DICTIONARY_HEADERS = [
    *redcap.FIELD,
    redcap.FORM,
    redcap.TYPE,
    redcap.LABEL,
    redcap.CHOICES,
    redcap.VALIDATION,
    redcap.MINIMUM,
    redcap.MAXIMUM,
    redcap.IDENTIFIER,
    "Branching Logic (Show field only if...)",
]
field_names = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True), st.text(max_size=12)
)
field_types = st.sampled_from(
    [
        "text",
        "notes",
        "dropdown",
        "radio",
        "checkbox",
        "yesno",
        "truefalse",
        "calc",
        "slider",
        "descriptive",
        "file",
        "",
        "DROPDOWN",
        "unknown",
    ]
)
choices = st.one_of(
    st.text(max_size=30),
    st.lists(st.tuples(st.text(max_size=4), st.text(max_size=10)), max_size=4).map(
        lambda cs: " | ".join(f"{c}, {label}" for c, label in cs)
    ),
)


@st.composite
def dictionaries(draw) -> bytes:
    header = draw(
        st.lists(
            st.sampled_from(DICTIONARY_HEADERS),
            min_size=1,
            max_size=len(DICTIONARY_HEADERS),
            unique=True,
        )
    )
    if draw(st.booleans()):
        header = [h for h in DICTIONARY_HEADERS if h != redcap.FIELD[1]]
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        value = {
            redcap.FIELD[0]: draw(field_names),
            redcap.FIELD[1]: draw(field_names),
            redcap.FORM: draw(st.text(max_size=10)),
            redcap.TYPE: draw(field_types),
            redcap.CHOICES: draw(choices),
            redcap.VALIDATION: draw(
                st.sampled_from(["", "date_ymd", "integer", "datetime_mdy", "number"])
            ),
            redcap.IDENTIFIER: draw(st.sampled_from(["", "y", "Y", "yes", "n"])),
        }
        rows.append([value.get(h, draw(st.text(max_size=10))) for h in header])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    return buffer.getvalue().encode(
        draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"])), errors="replace"
    )


def _dictionary(scratch: Path, data: bytes):
    path = scratch / "dictionary.csv"
    path.write_bytes(data)
    try:
        with bounded():
            return redcap.read_dictionary(path)
    except redcap.RedcapError as err:
        assert str(err).startswith(str(path)), err
        return None


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_as_a_redcap_dictionary(scratch, data):
    _dictionary(scratch, data)


@FUZZ
@given(data=dictionaries(), name=st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True))
def test_random_redcap_dictionaries_and_the_spec_drafted_from_them(scratch, data, name):
    dictionary = _dictionary(scratch, data)
    if dictionary is None:
        return
    with bounded():
        draft = redcap.draft_spec(dictionary, name=name)
    # `outcomes init` writes this file: whatever the field names, it must be valid TOML.
    tomllib.loads(draft)


@FUZZ
@given(data=dictionaries(), records=csv_files())
def test_random_redcap_records_turned_back_into_codes(scratch, data, records):
    dictionary = _dictionary(scratch, data)
    raw = _read(scratch, records, "records.csv", ReadOptions(format="redcap"))
    if dictionary is None or raw is None:
        return
    path = scratch / "records.csv"
    con = duckdb.connect()
    try:
        with bounded(con):
            raw = read_table(con, path, "raw_fuzz", ReadOptions(format="redcap"))
            redcap.to_codes(con, raw, dictionary)
            assert (
                con.execute("SELECT count(*) FROM raw_fuzz").fetchall()[0][0]
                == raw.rows - raw.rejected
            )
    finally:
        con.close()


# Ingestion of a whole study, wide (one row per subject and visit) or long (one row per item).
# A study not marked synthetic, so that the identifier guard applies every rule.
FUZZ_STUDY = {
    "study": {"name": "fuzz", "synthetic": None},
    "subjects": {"columns": ["age", "etiology"], "levels": {"etiology": ["bells", "hunt"]}},
    "analysis": {"test": None, "post": None},
}
codes = st.one_of(st.sampled_from(["P1", "P2", "P3", "", " P1 ", "p1"]), st.text(max_size=8))
days = st.one_of(st.sampled_from(["-10", "0", "95", "400", "36501", "-0", "1.5", "9" * 30]), cells)
ages = st.one_of(
    st.sampled_from(["50", "89", "90+", "", "NA", " 61 "]), st.text(alphabet="abc ", max_size=4)
)
# Identifiers and spreadsheet formulas where a careless export puts them: in a mapped column of
# categories and in score cells. None may be kept anywhere in the warehouse.
PLANTED = (
    "Jane Roe",
    "617-555-0142",
    "Called John Smith re follow-up",
    '=HYPERLINK("x","y")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "4471203",
)
values = st.one_of(st.sampled_from(["1", "2", "6", "7", "0", "2.0", "2,0", "2.5", *PLANTED]), cells)
etiologies = st.one_of(st.sampled_from(["bells", "hunt", " BELLS ", "", *PLANTED]), cells)


def _table(rows: list[list[str]], delimiter: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8", errors="replace")


@FUZZ
@given(
    layout=st.sampled_from(["wide", "long"]),
    decimal=st.sampled_from([".", ","]),
    delimiter=st.sampled_from([",", ";", "\t"]),
    subjects=st.lists(st.tuples(codes, ages, etiologies), max_size=5),
    visits=st.lists(st.tuples(codes, st.text(max_size=5), days, values), max_size=10),
    items=st.lists(
        st.sampled_from(["hb_observer", "hb_surgeon", "", "HB_OBSERVER"]), min_size=10, max_size=10
    ),
)
def test_random_cells_in_a_whole_study(
    scratch, layout, decimal, delimiter, subjects, visits, items
):
    folder = scratch / "study"
    folder.mkdir(exist_ok=True)
    (folder / "study.toml").write_text(
        study_toml(FUZZ_STUDY, {"visits": {"layout": layout, "decimal": decimal}}), encoding="utf-8"
    )
    (folder / "patients.csv").write_bytes(
        _table([["code", "age", "etiology"], *map(list, subjects)], delimiter)
    )
    if layout == "wide":
        rows = [["code", "visit", "day", "hb_observer"], *map(list, visits)]
    else:
        rows = [
            ["code", "visit", "day", "item", "value"],
            *([c, v, d, item, x] for (c, v, d, x), item in zip(visits, items)),
        ]
    (folder / "visits.csv").write_bytes(_table(rows, delimiter))
    study = load_study(folder)
    con = duckdb.connect()
    try:
        with bounded(con):
            files = ingest_study(con, study)
    except REFUSALS as err:
        event(f"refused: {type(err).__name__}")
        # One line naming the file at fault.
        assert "\n" not in str(err).strip() and any(
            n in str(err) for n in ("patients.csv", "visits.csv", "study.toml")
        ), err
        return
    event(
        "ingested, with rows quarantined" if any(f.rows_quarantined for f in files) else "ingested"
    )
    try:
        # Nothing is lost, and nothing accepted is out of range or not a finite number.
        for f in files:
            assert f.rows_read == f.rows_accepted + f.rows_quarantined, f
        accepted = [v for (v,) in con.execute("SELECT value FROM fuzz.item_responses").fetchall()]
        assert all(math.isfinite(v) and 1 <= v <= 6 and v == int(v) for v in accepted), accepted
        assert (
            con.execute(
                "SELECT count(*) FROM fuzz.quarantine WHERE reason IS NULL OR line IS NULL"
            ).fetchall()[0][0]
            == 0
        )
        # Only declared levels are kept, and the quarantine keeps no text (short numbers only).
        kept = {v for (v,) in con.execute("SELECT DISTINCT etiology FROM fuzz.subjects").fetchall()}
        assert kept <= {"bells", "hunt", None}, kept
        assert (
            con.execute(
                "SELECT count(*) FROM fuzz.quarantine WHERE value IS NOT NULL AND (TRY_CAST("
                "trim(value) AS DOUBLE) IS NULL OR length(regexp_replace(value, '[^0-9]', '', "
                "'g')) > 4)"
            ).fetchall()[0][0]
            == 0
        )
        for schema, table in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema = 'fuzz'"
        ).fetchall():
            text = repr(con.execute(f'SELECT * FROM {schema}."{table}"').fetchall())
            # (Codes are kept as written: a random code that happened to spell one is not a leak.)
            written_codes = repr([v[:2] for v in visits] + [c for c, _, _ in subjects])
            assert not [p for p in PLANTED if p in text and p not in written_codes], (table, text)
        if layout == "wide":
            # Item columns read as numbers where every cell is one: the same tables as from text.
            tables = ("subjects", "visits", "item_values", "quarantine", "source_files")
            text = duckdb.connect()
            try:
                with bounded(text):
                    event(
                        "items read as numbers"
                        if scan_sources(text, study)[0][-1].numbers
                        else "items read as text"
                    )
                    ingest_study(text, study, numbers=False)
                for t in tables:
                    query = f"SELECT * FROM fuzz.{t} ORDER BY ALL"
                    assert repr(con.execute(query).fetchall()) == repr(
                        text.execute(query).fetchall()
                    ), t
            finally:
                text.close()
    finally:
        con.close()
