"""Raw files into DuckDB as text, whatever a coordinator's software wrote.

A file is loaded into a temporary relation with every value as text (nothing is
converted by guesswork; ingestion checks each value) and a ``_line`` column:
the row as a spreadsheet shows it, the header being line 1. The one exception is
asked for by name: columns the caller expects to hold numbers (a registry's item
columns) are stored as DOUBLE when every cell of them is a number DuckDB's CSV
reader reads exactly as :func:`number_sql` would; if a single cell is not, the
whole file is read as text. Parsing at the read is what keeps ingestion of a
registry-sized file close to the cost of reading it.

CSV: UTF-8 with or without a byte-order mark, Windows-1252 (Windows Excel's
"CSV" on Western European systems: Latin-1 plus curly quotes, dashes and the
euro sign) or Latin-1; comma, semicolon or tab delimited; line ends LF, CRLF or
CR, mixed or not. Detection: UTF-8 if the bytes are UTF-8, else Windows-1252 if
they decode as it and use one of the characters it adds, else Latin-1 (which
every byte sequence is). DuckDB reads a UTF-8 file with uniform line ends as it
is; any other file is decoded here, its line ends made LF, and DuckDB reads that
text from a temporary UTF-8 copy (readable by its owner only, deleted after the
read; the raw file is never touched), so line numbers are the same. The
decimal separator does not matter here, since values stay text; ingestion
parses numbers with :func:`number_sql`. XLSX: the first sheet or a named one.

Lines are numbered as a spreadsheet numbers its rows: the header is line 1, a
blank line is a row, and a cell holding line breaks is one row.

A row with more or fewer fields than the header is not guessed at: it is set
aside in ``<table>_rejects(_line, reason)`` so that ingestion quarantines it,
and it still counts as read. Its values are not kept anywhere.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
import tempfile
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.spec.schema import FORMATS, ReadOptions
from pipeline.sql import literal, quote

# A top-coded number as Safe Harbor writes ages of 90 and over: "90+" (RE2 and Python syntax).
TOP_CODED = r"^\s*(\d+(?:\.\d+)?)\s*\+\s*$"

# A field longer than this is not a clinical value; DuckDB's default limit is 2 MB per line.
MAX_LINE_BYTES = 8_000_000


class ReadError(ValueError):
    """A file that cannot be read as a table; the message says what and how to fix it."""


@dataclass(frozen=True)
class RawTable:
    """A file loaded into a temporary table ``table`` (text columns plus ``_line``)."""

    path: Path
    table: str
    columns: tuple[str, ...]
    rows: int  # rows read: loaded + rejected
    rejected: int  # rows with the wrong number of fields, in ``<table>_rejects``
    format: str
    encoding: str
    delimiter: str
    decimal: str
    numbers: tuple[str, ...] = ()  # columns held as DOUBLE (read as numbers), the rest text


def number_sql(expr: str, decimal: str = ".") -> str:
    """SQL parsing a text value as a number: spaces ignored, the study's decimal separator.

    With a decimal comma, ``3,5`` is 3.5 and a point is not accepted (``1.234,5``
    is refused rather than read as a thousands separator).
    """
    cleaned = f"replace(trim({expr}), ' ', '')"
    if decimal == ",":
        cleaned = (
            f"CASE WHEN contains({cleaned}, '.') THEN NULL ELSE replace({cleaned}, ',', '.') END"
        )
        return f"TRY_CAST({cleaned} AS DOUBLE)"
    # Most cells are plain numbers, which DuckDB's cast reads as they are (surrounding spaces
    # included) to the same value; only the rest pay for removing spaces. (coalesce evaluates
    # its second argument only where the first is NULL.)
    return f"coalesce(TRY_CAST({expr} AS DOUBLE), TRY_CAST({cleaned} AS DOUBLE))"


def numbers_from_text(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers from the text of stored cells, a top-coded ``"90+"`` (:data:`TOP_CODED`) read as
    its bound: the numbers (NaN where empty or not a number) and whether each was top-coded."""
    text = values.astype("string").str.strip()
    top = text.str.fullmatch(TOP_CODED).fillna(False).astype(bool)
    bound = text.str.extract(TOP_CODED, expand=False)
    numbers = pd.to_numeric(text.where(~top, bound).replace("", pd.NA), errors="coerce").astype(
        float
    )
    return numbers, top


def drop_temp(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop temp relation ``name`` if there is one, view or table (a loaded file is either)."""
    kind = con.execute(
        "SELECT any_value(table_type) FROM information_schema.tables "
        "WHERE table_catalog = 'temp' AND table_name = ?",
        [name],
    ).fetchall()[0][0]
    if kind:
        con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} temp.{quote(name)}")


def sha256(path: Path) -> str:
    """The file's SHA-256 (hex). Remembered for the file as it is (same inode, size and
    modification time), since ingestion, provenance and the run log each ask for it."""
    key = _file_key(path)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def _remember_sha256(key: tuple, data: bytes) -> None:
    """Remember the digest of a file's bytes, read while the file had ``key``."""
    _DIGESTS[key] = hashlib.sha256(data).hexdigest()


def _file_key(path: Path) -> tuple:
    info = Path(path).stat()
    return (str(Path(path).resolve()), info.st_ino, info.st_size, info.st_mtime_ns)


_DIGESTS: dict[tuple, str] = {}


def detect_format(path: Path, options: ReadOptions) -> str:
    if options.format != "auto":
        return "csv" if options.format == "redcap" else options.format
    with open(path, "rb") as handle:
        magic = handle.read(4)
    # XLSX is a zip archive whatever its file name says.
    if magic == b"PK\x03\x04":
        return "xlsx"
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        raise ReadError(
            f"{path}: named as an Excel workbook but is not one (damaged or renamed). "
            "Save it again from Excel as .xlsx, or export CSV."
        )
    if path.suffix.lower() == ".xls":
        raise ReadError(
            f"{path}: old Excel 97-2003 workbooks (.xls) are not read. Save it as .xlsx or CSV "
            "UTF-8."
        )
    return "csv"


def read_table(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    options: ReadOptions = ReadOptions(),
    numbers: Collection[str] = (),
) -> RawTable:
    """Load ``path`` into temp relation ``table`` (a table, or a view numbering the lines of
    one); raise :class:`ReadError` if it is not a table.

    ``numbers`` names columns expected to hold numbers: in a CSV file with a decimal point
    they are stored as DOUBLE (``RawTable.numbers``) if every one of their cells reads as a
    number, and the file is read all as text otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ReadError(f"{path}: file not found. Put the export there or correct the file name.")
    if path.stat().st_size == 0:
        raise ReadError(
            f"{path}: the file is empty. Export it again with a header row and data rows."
        )
    fmt = detect_format(path, options)
    if fmt == "xlsx":
        return _read_xlsx(con, path, table, options)
    if fmt != "csv":
        raise ReadError(f"{path}: format {fmt!r} is not one of {', '.join(FORMATS)}.")
    return _read_csv(con, path, table, options, numbers)


def _not_decodable(
    path: Path,
    data: bytes,
    err: UnicodeDecodeError,
    encoding: str,
    *,
    byte: str = "",
    alternative: str = "",
) -> ReadError:
    """The error for a file not in the encoding the study spec sets: where decoding fails (and
    what the ``byte`` there is), and what to do (``alternative``: another encoding to suggest)."""
    line = data.count(b"\n", 0, err.start) + 1
    return ReadError(
        f"{path}: not valid {encoding} (line {line}, byte {err.start}{byte}), the encoding the "
        "study spec sets. Save it as 'CSV UTF-8', or set encoding = \"latin-1\" for this file in "
        f"the study spec{alternative}."
    )


def _decode(path: Path, data: bytes, requested: str) -> tuple[str, str]:
    """The file's encoding and its text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data[:65536]:
        raise ReadError(
            f"{path}: the file is UTF-16 or binary, not CSV text. In Excel use "
            "Save As > 'CSV UTF-8 (Comma delimited)'."
        )
    if requested == "latin-1":
        return "latin-1", data.decode("latin-1")
    if requested in ("cp1252", "windows-1252"):
        try:
            return "cp1252", data.decode("cp1252")
        except UnicodeDecodeError as err:
            byte = " is not a Windows-1252 character"
            raise _not_decodable(path, data, err, "Windows-1252", byte=byte) from None
    try:
        return "utf-8", data.decode("utf-8")
    except UnicodeDecodeError as err:
        if requested == "utf-8":
            excel = ' ("windows-1252" if Excel on Windows wrote it)'
            raise _not_decodable(path, data, err, "UTF-8", alternative=excel) from None
    # Excel's "CSV (Comma delimited)" on Western European Windows is Windows-1252. It agrees with
    # Latin-1 on every byte except 0x80-0x9F, where it has curly quotes, dashes and the euro sign
    # and Latin-1 has control characters nobody types: a file using those bytes is Windows-1252
    # if it decodes as such. Latin-1 is the fallback that cannot fail (every byte is a character).
    if re.search(rb"[\x80-\x9f]", data):
        try:
            return "cp1252", data.decode("cp1252")
        except UnicodeDecodeError:
            pass
    return "latin-1", data.decode("latin-1")


def _uniform_line_ends(data: bytes) -> bool:
    """Whether every line of the file ends the same way, LF or CRLF (what DuckDB's CSV reader
    requires; it stops on a file that mixes them). One search for a CR settles the usual LF file."""
    if b"\r" not in data:
        return True
    crlf = data.count(b"\r\n")
    return crlf == data.count(b"\r") == data.count(b"\n")


def _header(path: Path, text: str, delimiter: str) -> list[str]:
    try:
        # newline="": a lone carriage return (old Mac line end) is a line end, as for DuckDB.
        first = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error as err:
        raise ReadError(
            f"{path}: the header row cannot be read ({err}). Export it again as delimited text "
            "with one header row."
        ) from None
    names = [name.strip() for name in first]
    if not any(names):
        raise ReadError(
            f"{path}: the first line is blank; it must be the header row naming the columns."
        )
    for i, name in enumerate(names, start=1):
        if not name:
            raise ReadError(
                f"{path}: column {i} of the header has no name. Name it or delete the column."
            )
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in seen:
            # Named by position only: the "header" may be a data line (a file without its header
            # row), whose names are cells, which a message never quotes.
            raise ReadError(
                f"{path}: columns {seen[name]} and {i} of the header have the same name. Rename or "
                "delete one of them; if the first line holds values rather than column names, put "
                "the header row on line 1."
            )
        seen[name] = i
    if "_line" in seen:
        raise ReadError(f"{path}: a column is named '_line', which is reserved. Rename it.")
    return names


def _read_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    options: ReadOptions,
    numbers: Collection[str] = (),
) -> RawTable:
    key = _file_key(path)
    data = path.read_bytes()
    hashing = None
    if _file_key(path) == key:
        # Ingestion records the file's SHA-256: hashed from these bytes while DuckDB reads the
        # file (both release the interpreter lock), rather than read and hashed again after.
        hashing = threading.Thread(target=_remember_sha256, args=(key, data), daemon=True)
        hashing.start()
    try:
        return _read_csv_data(con, path, table, options, data, numbers)
    finally:
        if hashing is not None:
            hashing.join()


def _read_csv_data(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    options: ReadOptions,
    data: bytes,
    numbers: Collection[str] = (),
) -> RawTable:
    encoding, text = _decode(path, data, options.encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    # DuckDB reads the file itself when it can (UTF-8, one kind of line end): the usual export
    # costs no copy. Otherwise it reads the decoded text, line ends made LF, from a temporary
    # UTF-8 copy: a CRLF, a lone CR and an LF each end one line, so every line keeps its number.
    uniform = _uniform_line_ends(data)
    if not uniform:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    head = text[: text.find("\n") if "\n" in text else len(text)]
    delimiter = options.delimiter
    if delimiter == "auto":
        counts = {d: head.count(d) for d in (",", ";", "\t")}
        delimiter = max(counts, key=counts.get) if max(counts.values()) else ","
    # The header is the first record; a prefix is enough (no line is longer than MAX_LINE_BYTES).
    names = _header(path, text[:MAX_LINE_BYTES], delimiter)
    # DuckDB's CSV reader reads a DOUBLE exactly as TRY_CAST does (surrounding spaces and tabs,
    # exponents, nan and inf included) and refuses the rest (spaces inside, decimal commas,
    # blanks of spaces only), which number_sql accepts or refuses in turn: a file whose numbers
    # all read gets the values that parsing its text would give. (tests/test_readers.py)
    wanted = set(numbers) if options.decimal == "." else set()
    typed = [n for n in names if n in wanted]
    copy = None if encoding == "utf-8" and uniform else _utf8_copy(text)
    try:
        source = copy or path
        _load_csv(con, path, source, table, names, typed, delimiter)
        if (
            typed
            and con.execute(
                f"SELECT count(*) FROM {table}_reject_errors WHERE error_type = 'CAST'"
            ).fetchall()[0][0]
        ):
            # A cell of a number column is not a number DuckDB reads: ingestion parses and
            # quarantines such cells from their text, so the file is read as text.
            typed = []
            _load_csv(con, path, source, table, names, typed, delimiter)
    finally:
        if copy is not None:
            copy.unlink(missing_ok=True)
    # Lines DuckDB did not turn into rows: rows with the wrong number of fields (kept for the
    # quarantine) and blank lines (not rows at all, but they still move the spreadsheet line).
    # DuckDB numbers a rejected row as a spreadsheet does (blank lines counted, a cell's line
    # breaks not).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {table}_rejects AS
        SELECT line AS _line,
               CASE WHEN bool_or(error_type = 'MISSING COLUMNS') OR bool_or(error_type =
               'TOO MANY COLUMNS')
                    THEN 'row has ' || CASE WHEN bool_or(error_type = 'MISSING COLUMNS') THEN
                    'fewer' ELSE 'more' END
                         || ' fields than the header ({len(names)}); '
                         || 'check for a stray or missing delimiter'
                    WHEN bool_or(error_type = 'LINE SIZE OVER MAXIMUM') THEN
                    'row is longer than {MAX_LINE_BYTES} bytes'
                    WHEN bool_or(error_type = 'UNQUOTED VALUE')
                    THEN 'a quoted value is not closed properly; check the quotes from this row on'
                    ELSE 'row cannot be read: ' || first(error_type)
               END AS reason
        FROM {table}_reject_errors GROUP BY line
    """)
    loaded = con.execute(f"SELECT count(*) FROM {table}_text").fetchall()[0][0]
    rejected = con.execute(f"SELECT count(*) FROM {table}_rejects").fetchall()[0][0]
    # Every line of the file holds the header, a row (loaded or rejected) or neither (a blank
    # line, or the rest of a cell holding a line break): when the lines and those records are
    # as many, no line is blank. Counting line ends is one fast pass over the bytes; looking
    # for blank lines, as below, takes more.
    if copy is None:
        lines = data.count(b"\n") + (not data.endswith(b"\n"))
    else:
        lines = text.count("\n") + (not text.endswith("\n"))
    blank_lines = [] if lines == loaded + rejected + 1 else _blank_lines(text, delimiter)
    # Loaded rows keep file order (DuckDB preserves insertion order); the k-th loaded row is on
    # the k-th line that is neither the header, a rejected row nor blank.
    if not rejected and not blank_lines:
        # The usual export: row k is on line k + 1. A view numbers the rows as they are read:
        # copying a registry-sized table costs about as much as reading the file, and
        # numbering it in place (UPDATE) leaves DuckDB a vacuum of the whole table to do later.
        # (A table created inside a transaction numbers its rows from 2^55 until it commits:
        # counted from the first row, the lines are right either way.)
        drop_temp(con, table)
        con.execute(
            f"CREATE TEMP VIEW {table} AS SELECT rowid - (SELECT min(rowid) FROM {table}_text) + 2 "
            "AS _line, "
            f"* EXCLUDE (_line) FROM {table}_text"
        )
    else:
        last = loaded + rejected + len(blank_lines) + 1
        drop_temp(con, table)
        con.register("_blank_lines", pd.DataFrame({"_line": pd.Series(blank_lines, dtype="int64")}))
        try:
            con.execute(f"""
                CREATE TEMP TABLE {table} AS
                WITH free AS (
                    SELECT range AS _line, row_number() OVER (ORDER BY range) - 1 AS _k
                    FROM range(2, {last + 1})
                    WHERE range NOT IN (SELECT _line FROM {table}_rejects)
                      AND range NOT IN (SELECT _line FROM _blank_lines)
                )
                SELECT f._line, t.* EXCLUDE (_k, _line)
                FROM (SELECT rowid - (SELECT min(rowid) FROM {table}_text) AS _k, * FROM
                {table}_text) t
                JOIN free f USING (_k)
                ORDER BY f._line
            """)
        finally:
            con.unregister("_blank_lines")
        con.execute(f"DROP TABLE {table}_text")
    return RawTable(
        path,
        table,
        tuple(names),
        loaded + rejected,
        rejected,
        "csv",
        encoding,
        delimiter,
        options.decimal,
        tuple(typed),
    )


def _utf8_copy(text: str) -> Path:
    """``text`` written to a new temporary UTF-8 file (mode 0600, as mkstemp creates it) for
    DuckDB to read; the caller deletes it."""
    handle, name = tempfile.mkstemp(prefix="outcomes-read-", suffix=".csv")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text.encode("utf-8"))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _load_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    source: Path,
    table: str,
    names: list[str],
    typed: list[str],
    delimiter: str,
) -> None:
    """Read ``source`` (``path`` itself or a UTF-8 copy of its text) into temp table
    ``<table>_text``: the ``typed`` columns as DOUBLE, the rest as text; rows DuckDB cannot
    read go to ``<table>_reject_errors``."""
    columns = (
        "{"
        + ", ".join(f"{literal(n)}: '{'DOUBLE' if n in typed else 'VARCHAR'}'" for n in names)
        + "}"
    )
    con.execute("SET VARIABLE _path = ?", [str(source)])
    # DuckDB adds a read's rejected rows to these tables if they exist: a file read earlier
    # under the same name on this connection would lend this one its rejected lines.
    for leftover in (f"{table}_reject_errors", f"{table}_reject_scans"):
        drop_temp(con, leftover)
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {table}_text AS
            SELECT NULL::BIGINT AS _line, * FROM read_csv(getvariable('_path'), header = true,
            auto_detect = false,
                                   columns = {columns}, delim = ?, quote = '"', escape = '"',
                                   encoding = 'utf-8', ignore_errors = true, store_rejects = true,
                                   rejects_table = '{table}_reject_errors', rejects_scan =
                                   '{table}_reject_scans',
                                   max_line_size = {MAX_LINE_BYTES})
        """,
            [delimiter],
        )
    except duckdb.Error as err:
        raise csv_refusal(path, err) from None


def csv_refusal(path: Path, err: duckdb.Error) -> ReadError:
    """The refusal of a file DuckDB's CSV reader gave up on. DuckDB's text quotes the line it
    stopped on ("Original Line: ..."), and a line of an export is never quoted in a message:
    only the line number is kept from it."""
    found = re.search(r"\bline:?\s*(\d+)", str(err), re.IGNORECASE)
    where = f" at line {found.group(1)}" if found else ""
    return ReadError(
        f"{path}: cannot be read as CSV: the reader stopped{where}, where quotes or delimiters do "
        "not form rows. Export it again as delimited text with one header row."
    )


_BLANK_LINE = re.compile(r"\n(?=\r?\n)")  # the line end before a blank line


def _blank_lines(text: str, delimiter: str) -> list[int]:
    """The blank lines of a file's text, numbered as a spreadsheet numbers rows (the header is
    1, a cell holding line breaks is one row, as DuckDB counts a rejected row's line);
    trailing blank lines are left out. ``text`` has one kind of line end (LF or CRLF).

    Cheap when it can be: no blank line at all (a file whose cells hold line breaks) is one
    search; without quotes, rows are lines. Only a file with both quotes and blank lines is
    parsed as CSV (Python's reader, which splits rows as DuckDB's does: quote and escape '"').
    """
    end = len(text)
    while end and text[end - 1] in "\r\n":  # (not rstrip: that would copy the whole text)
        end -= 1
    if text.find("\n\n", 0, end) < 0 and text.find("\n\r\n", 0, end) < 0:
        return []
    starts = [m.end() for m in _BLANK_LINE.finditer(text, 0, end)]
    if not starts:
        return []
    if '"' not in text:
        rows, line, position = [], 1, 0
        for start in starts:
            line += text.count("\n", position, start)
            position = start
            rows.append(line)
        return rows
    # A cell may be as long as a line (csv's default limit is 128 KiB); raising the limit
    # changes nothing for other readers of the module.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    rows, last = [], 0
    for number, row in enumerate(
        csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1
    ):
        if row:
            last = number
        else:
            rows.append(number)
    return [n for n in rows if n < last]


def _cell_text(value: object) -> str | None:
    """An XLSX cell as the text a CSV export would hold."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if hasattr(value, "isoformat"):
        # Dates stay recognisable as dates, so the de-identification guard sees them.
        return value.isoformat()
    return str(value)


def _read_xlsx(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, options: ReadOptions
) -> RawTable:
    import openpyxl

    try:
        # A file object, so a workbook saved with a .csv name is still opened by its content.
        book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises zip, XML and key errors alike
        raise ReadError(
            f"{path}: cannot be opened as an Excel workbook ({type(err).__name__}). "
            "Save it again from Excel as .xlsx, or export CSV."
        ) from None
    try:
        if options.sheet:
            if options.sheet not in book.sheetnames:
                # The workbook's own sheet names are not listed: a sheet may be named after a
                # patient.
                raise ReadError(
                    f"{path}: no sheet named {options.sheet!r} among the workbook's "
                    f"{len(book.sheetnames)} sheet(s). Correct 'sheet' in the study spec to the "
                    "name Excel shows on the sheet's tab."
                )
            sheet = book[options.sheet]
        else:
            sheet = book.worksheets[0]
        # openpyxl yields rows in Python; XLSX has no columnar reader here, so this is the one
        # row loop in ingestion (CSV, the format for large cohorts, is read by DuckDB).
        try:
            rows = [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        except Exception as err:  # read-only mode parses the sheet's XML only now
            number = book.worksheets.index(sheet) + 1
            raise ReadError(
                f"{path}: sheet {number} of the workbook is damaged ({type(err).__name__}). "
                "Save it again from Excel as .xlsx, or export CSV."
            ) from None
    finally:
        book.close()
    if not rows:
        raise ReadError(f"{path}: sheet is empty. Put the header row on line 1.")
    header = rows[0]
    while header and header[-1] is None:
        header = header[:-1]
    names = _header(path, ",".join('"' + (h or "").replace('"', '""') + '"' for h in header), ",")
    width = len(names)
    lines, body, rejects = [], [], []
    for number, row in enumerate(rows[1:], start=2):
        extra = [v for v in row[width:] if v not in (None, "")]
        if all(v in (None, "") for v in row):
            continue  # an empty spreadsheet row is not a record
        if extra:
            rejects.append(
                (
                    number,
                    f"row has more fields than the header ({width}); "
                    "a value sits in a column without a name",
                )
            )
            continue
        lines.append(number)
        body.append((list(row) + [None] * width)[:width])
    frame = (
        pd.DataFrame(body, columns=names, dtype="object") if body else pd.DataFrame(columns=names)
    )
    frame = frame.astype("string")
    frame.insert(0, "_line", pd.Series(lines, dtype="int64"))
    con.register("_xlsx_frame", frame)
    con.register(
        "_xlsx_rejects",
        pd.DataFrame(rejects, columns=["_line", "reason"]).astype(
            {"_line": "int64", "reason": "string"}
        ),
    )
    try:
        cast = ", ".join(f"CAST({quote(n)} AS VARCHAR) AS {quote(n)}" for n in names)
        drop_temp(con, table)
        con.execute(
            f"CREATE TEMP TABLE {table} AS SELECT _line, {cast} FROM _xlsx_frame ORDER BY _line"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table}_rejects AS "
            "SELECT _line::BIGINT AS _line, reason::VARCHAR AS reason FROM _xlsx_rejects"
        )
    finally:
        con.unregister("_xlsx_frame")
        con.unregister("_xlsx_rejects")
    return RawTable(
        path,
        table,
        tuple(names),
        len(body) + len(rejects),
        len(rejects),
        "xlsx",
        "xlsx",
        "",
        options.decimal,
    )
