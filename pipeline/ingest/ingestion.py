"""Raw exports in: identifiers kept out, every row read accepted or quarantined with a reason.

Reads the subjects file and the visits file that a study spec names (CSV, XLSX
or a REDCap export, see :mod:`pipeline.ingest.readers` and :mod:`pipeline.ingest.redcap`),
runs the de-identification guard (:mod:`pipeline.ingest.deidentify`) on every column
of every file before anything is written, keeps only the columns the spec
maps, and writes to the study's schema in the warehouse:

``source_files``    each file's SHA-256, size and row accounting
``subjects``        one row per accepted subject (opaque code + baseline columns)
``visits``          one row per accepted subject visit (day relative to surgery)
``item_values``     (wide visits file) one row per accepted visit: line, subject, visit, day and one
                    DOUBLE column per mapped item column, NULL where empty or refused
``item_responses``  one row per answered item: subject, visit, day, instrument, rater, item, value,
                    line; a view of ``item_values`` for a wide file (one branch per column, no
                    order of its own), a table for a long file
``quarantine``      every refused row or value: file, line, column, value, value_length, value_hash,
                    reason, scope, subject. ``value`` is the cell as written only when it reads as a
                    number; text (which may be a name typed in the wrong column) is never kept, only
                    its length and a keyed hash (:func:`quarantine_key`), so a refused value is
                    found in the export by its line and column without reaching the warehouse.
                    ``subject`` is the row's patient code only when it is the code of an accepted
                    patient (a code ``subjects`` already holds, past the identifier guard), so the
                    patient flow counts a patient whose visit was refused; else NULL

``line`` is the line in the file as a spreadsheet shows it (the header is line 1).
A refused row is counted once, under the first rule it breaks; a refused item
value leaves the rest of its row accepted and that item missing (in the long
layout a row is one item value, so the row is refused). A row with the wrong
number of fields is quarantined whole, without its values.

Subjects columns: a column with levels (``[subjects.levels]`` in the spec, or a REDCap
field's choices) keeps a value that is one of them (matched without regard to case or
surrounding spaces, stored as declared); any other value is quarantined. A column declared
as free text (``[subjects.free_text]``) is kept as written and never reported. Every other
column must hold numbers (or top-coded ages such as "90+"): a cell that is not one is
quarantined, and a column with no number at all (categories or free text not declared) is
refused with the fix, as is a REDCap notes field not declared as free text.
All tables are replaced in one transaction, so a failed ingest leaves the previous ones.

When the subjects and the visits come from one file (a REDCap export), each
role is accounted separately, as ``<file> [subjects]`` and ``<file> [visits]``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from pipeline import progress
from pipeline.ingest import redcap
from pipeline.ingest.deidentify import Finding, IdentifiersFound, TextNeeded, scan
from pipeline.ingest.readers import (
    TOP_CODED,
    RawTable,
    ReadError,
    drop_temp,
    number_sql,
    read_table,
    sha256,
)
from pipeline.spec.study import Study, item_columns
from pipeline.sql import literal, quote
from pipeline.warehouse import replace_relation, scalar


class IngestError(ValueError):
    """A raw file that cannot be read as the spec describes; the message says how to fix it."""


@dataclass(frozen=True)
class SourceFile:
    file: str
    sha256: str
    bytes: int
    rows_read: int
    rows_accepted: int
    rows_quarantined: int


@dataclass
class Sources:
    """The study's files loaded as text, checked by the guard, split into the two roles."""

    subjects: RawTable  # rows of temp table raw_subjects
    visits: RawTable  # rows of temp table raw_visits
    subjects_label: str
    visits_label: str
    dictionary: redcap.Dictionary | None = None
    files: list[RawTable] = field(default_factory=list)
    visit_exprs: dict[str, str] = field(
        default_factory=dict
    )  # SQL for subject, visit, day, pre-finding
    visit_labels: dict[str, str] = field(
        default_factory=dict
    )  # column named in the quarantine for each


def _fail_read(err: Exception) -> IngestError:
    return IngestError(str(err))


def scan_sources(
    con: duckdb.DuckDBPyConnection, study: Study, *, numbers: bool = True
) -> tuple[list[RawTable], list[Finding], redcap.Dictionary | None]:
    """Load every file of the study and run the de-identification guard on all of its columns.

    With ``numbers`` (the default), the item columns of a wide visits file that is not a REDCap
    export are read as numbers when they all are (see :func:`pipeline.ingest.readers.read_table`);
    ``numbers=False`` reads every file as text, with the same results."""
    dictionary = None
    # Item columns only: the guard has nothing to look for in small numbers, and ingestion
    # would parse them anyway. REDCap codes are rewritten from labels as text first.
    items = (
        tuple(item_columns(study)["column"])
        if numbers and study.visits_layout == "wide" and study.visits_options.format != "redcap"
        else ()
    )
    try:
        if study.redcap:
            dictionary = redcap.read_dictionary(study.dictionary_path)
        with progress.step(f"reading {study.subjects_path.name}"):
            files = [read_table(con, study.subjects_path, "raw_file_1", study.subjects_options)]
        if study.visits_path != study.subjects_path:
            with progress.step(f"reading {study.visits_path.name}"):
                files.append(
                    read_table(con, study.visits_path, "raw_file_2", study.visits_options, items)
                )
    except (ReadError, redcap.RedcapError) as err:
        raise _fail_read(err) from None
    allowed = dict(study.identifiers_allowed)
    findings: list[Finding] = []
    for i, (raw, options) in enumerate(zip(files, (study.subjects_options, study.visits_options))):
        is_redcap = options.format == "redcap" and dictionary is not None
        if is_redcap:
            redcap.to_codes(con, raw, dictionary)
        rules = {
            "allowed": allowed,
            "dictionary_identifiers": dictionary.identifier_columns(raw.columns)
            if is_redcap
            else None,
            "date_columns": dictionary.date_columns(raw.columns) if is_redcap else frozenset(),
            "free_text": dictionary.free_text_columns(raw.columns) if is_redcap else frozenset(),
            "codes": frozenset(
                c for c in (study.subject_id, study.visit_subject, study.visit_column) if c
            ),
        }
        with progress.step(f"checking {raw.path.name} for identifiers"):
            try:
                findings += scan(con, raw, **rules)
            except TextNeeded:  # numbers the guard must see as written: the file is read as text
                raw = files[i] = read_table(con, raw.path, raw.table, options)
                findings += scan(con, raw, **rules)
    return files, findings, dictionary


def _require(raw: RawTable, needed: list[str]) -> None:
    """Refuse a file lacking a column the spec names. The message names the spec's columns and
    never lists the file's header, which may be a data line (a file without its header row, or
    the wrong file): at most a header name close to a missing column's, in a header that looks
    like one."""
    import difflib

    from pipeline.ingest.deidentify import PERSON_SHAPE, header_is_data, header_values

    missing = [c for c in dict.fromkeys(needed) if c and c not in raw.columns]
    if not missing:
        return
    looks = header_values(raw.columns)
    what = f"column(s) {', '.join(missing)} named in the study spec are missing"
    if header_is_data(looks):
        first = min(i for i, kind in looks.items() if kind != PERSON_SHAPE)
        kind = looks[first]
        raise IngestError(
            f"{raw.path}: {what}, and the first line does not look like a header row (column "
            f"{first} "
            f"of it holds {'an' if kind[0] in 'aeiouAEIOU' else 'a'} {kind} where a column name "
            "belongs). Put the header row (the column names) on line 1, or correct the file the "
            "study spec names."
        )
    names = [c for i, c in enumerate(raw.columns, start=1) if i not in looks]
    close = [
        f"{found[0]!r}, close to {c}"
        for c in missing
        if (found := difflib.get_close_matches(c, names, n=1, cutoff=0.8))
    ]
    among = f", among them {'; '.join(close)}" if close else ""
    raise IngestError(
        f"{raw.path}: {what} (the header has {len(raw.columns)} columns{among}). "
        "Rename the columns or correct the spec."
    )


def _role(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    table: str,
    where: str = "TRUE",
    rejects: bool = True,
) -> RawTable:
    """A role's rows of a loaded file as temp relation ``table`` (and its rejected rows, if it owns
    them)."""
    drop_temp(con, table)
    if where == "TRUE":
        # The whole file in its line order: a view, since copying a registry-sized file costs
        # about as much as reading it.
        con.execute(f"CREATE TEMP VIEW {table} AS SELECT * FROM {raw.table}")
    else:
        con.execute(
            f"CREATE TEMP TABLE {table} AS SELECT * FROM {raw.table} WHERE {where} ORDER BY _line"
        )
    if rejects:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table}_rejects AS SELECT * FROM {raw.table}_rejects"
        )
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table}_rejects AS SELECT * FROM {raw.table}_rejects "
            "LIMIT 0"
        )
    n = scalar(con, f"SELECT count(*) FROM {table}") + scalar(
        con, f"SELECT count(*) FROM {table}_rejects"
    )
    return RawTable(
        raw.path,
        table,
        raw.columns,
        n,
        scalar(con, f"SELECT count(*) FROM {table}_rejects"),
        raw.format,
        raw.encoding,
        raw.delimiter,
        raw.decimal,
        raw.numbers,
    )


def file_labels(study: Study) -> tuple[str, str]:
    """The names ``source_files`` and ``quarantine`` give the subjects file and the visits file:
    the files' names, or ``<file> [subjects]`` and ``<file> [visits]`` when both roles come from
    one file (a REDCap export)."""
    name_s, name_v = study.subjects_path.name, study.visits_path.name
    if study.visits_path == study.subjects_path:
        return f"{name_s} [subjects]", f"{name_v} [visits]"
    return name_s, name_v


def load_sources(con: duckdb.DuckDBPyConnection, study: Study, *, numbers: bool = True) -> Sources:
    """Load, guard and split the study's files; raise :class:`IdentifiersFound` or
    :class:`IngestError`."""
    files, findings, dictionary = scan_sources(con, study, numbers=numbers)
    if findings:
        raise IdentifiersFound(findings)
    labels = file_labels(study)
    same = len(files) == 1
    raw_s, raw_v = files[0], files[-1]
    vs, vv, vd = (
        quote(study.visit_subject),
        quote(study.visit_column),
        quote(study.day_column) if study.day_column else "NULL",
    )
    exprs = {"subject": f"trim({vs})", "visit": f"trim({vv})", "day": vd, "pre": "NULL::VARCHAR[]"}
    visit_labels = {
        "subject": study.visit_subject,
        "visit": study.visit_column,
        "day": study.day_column,
    }
    if study.redcap and study.visits_options.format == "redcap":
        subjects_where, visits_where, exprs, visit_labels = _redcap_roles(con, study, raw_v)
        subjects = _role(con, raw_s, "raw_subjects", subjects_where, rejects=not same)
        visits = _role(con, raw_v, "raw_visits", visits_where)
    else:
        subjects = _role(con, raw_s, "raw_subjects", rejects=not same)
        visits = _role(con, raw_v, "raw_visits")
    return Sources(subjects, visits, labels[0], labels[1], dictionary, files, exprs, visit_labels)


def _redcap_roles(con: duckdb.DuckDBPyConnection, study: Study, raw: RawTable):
    """Which rows of a REDCap export are subjects and which are visits, and how to read a visit."""
    rc = study.redcap
    cols = raw.columns
    event, instrument, instance = (
        quote(redcap.EVENT),
        quote(redcap.REPEAT_INSTRUMENT),
        quote(redcap.REPEAT_INSTANCE),
    )
    has_event, has_repeat = redcap.EVENT in cols, redcap.REPEAT_INSTRUMENT in cols
    repeating = f"coalesce(trim({instrument}), '') <> ''" if has_repeat else "FALSE"
    if has_event and not rc.subjects_event:
        events = redcap.events_in(con, raw)
        raise IngestError(
            f"{study.spec_path}: {raw.path.name} is a longitudinal export (events: "
            f"{', '.join(events)}); "
            "set [redcap] subjects_event to the event whose row holds the subject columns."
        )
    if not has_event and rc.events:
        raise IngestError(
            f"{study.spec_path}: [redcap.events] maps events, but {raw.path.name} has no "
            f"{redcap.EVENT} column (a classic project). Remove [redcap.events], or export the "
            "longitudinal project with its events."
        )
    mapped = ", ".join(literal(e.event) for e in rc.events) or "NULL"
    in_subjects_event = f"{event} = {literal(rc.subjects_event)}" if has_event else "TRUE"
    subject_row = f"(NOT ({repeating}) AND {in_subjects_event})"
    if has_event:
        visits_where = f"NOT ({subject_row} AND coalesce({event}, '') NOT IN ({mapped}))"
    elif rc.repeat_instrument:
        visits_where = f"NOT {subject_row}"
    else:
        visits_where = "TRUE"
    pre = []
    if has_event:
        pre.append(
            f"WHEN coalesce({event}, '') NOT IN ({mapped}) "
            f"THEN ['{redcap.EVENT}', 'event is not mapped to a visit in [redcap.events]']"
        )
    if has_repeat:
        wanted = (
            f"coalesce(trim({instrument}), '') <> {literal(rc.repeat_instrument)}"
            if rc.repeat_instrument
            else "TRUE"
        )
        pre.append(
            f"WHEN {repeating} AND {wanted} THEN ['{redcap.REPEAT_INSTRUMENT}', "
            "'rows of this repeating instrument are not visits; name it in [redcap] "
            "repeat_instrument']"
        )
    pre_expr = f"CASE {' '.join(pre)} END" if pre else "NULL::VARCHAR[]"
    suffix = (
        f" || CASE WHEN coalesce(trim({instance}), '') <> '' THEN '_' || trim({instance}) ELSE '' "
        "END"
        if redcap.REPEAT_INSTANCE in cols
        else ""
    )
    if study.visit_column and study.visit_column != redcap.EVENT and study.visit_column in cols:
        visit, visit_label = f"trim({quote(study.visit_column)})", study.visit_column
    elif has_event:
        cases = " ".join(f"WHEN {literal(e.event)} THEN {literal(e.visit)}" for e in rc.events)
        visit = f"(CASE {event} {cases} END){suffix}" if cases else "NULL"
        visit_label = redcap.EVENT
    else:
        visit = f"trim({instrument}){suffix}" if has_repeat else "NULL"
        visit_label = redcap.REPEAT_INSTRUMENT
    event_days = " ".join(
        f"WHEN {literal(e.event)} THEN '{e.day}'" for e in rc.events if e.day is not None
    )
    event_day = f"(CASE {event} {event_days} END)" if has_event and event_days else "NULL"
    if study.day_column:
        day, day_label = (
            f"coalesce(nullif(trim({quote(study.day_column)}), ''), {event_day})",
            study.day_column,
        )
    else:
        day, day_label = event_day, redcap.EVENT
    return (
        subject_row,
        visits_where,
        {
            "subject": f"trim({quote(study.visit_subject)})",
            "visit": visit,
            "day": day,
            "pre": pre_expr,
        },
        {"subject": study.visit_subject, "visit": visit_label, "day": day_label},
    )


def _subject_columns(
    con: duckdb.DuckDBPyConnection, study: Study, src: Sources
) -> tuple[list[str], list[tuple[str, str]]]:
    """How each subjects column is kept: SQL expressions over ``raw_subjects r`` for the
    ``subjects`` table, and (column, SQL reason a cell is refused, NULL when kept) for the
    quarantine. See the module docstring for the rules; raises :class:`IngestError` for a
    column of text that the spec does not declare."""
    levels = dict(study.subject_levels)
    free = dict(study.free_text)
    # The side of the paralysis, read by sided instruments as left or right.
    for source in study.instruments:
        if source.side_column and source.side_column not in levels:
            levels[source.side_column] = (("left", "left"), ("right", "right"))
    dictionary = src.dictionary if study.subjects_options.format == "redcap" else None
    for column in study.subject_columns:
        field_ = dictionary.field_for(column) if dictionary else None
        if field_ is None or column in levels or column in free:
            continue
        if field_.type == "notes":
            raise IngestError(
                f"{study.subjects_path.name}: column '{column}' is a REDCap notes field (free "
                "text), "
                "which is never analysed. Remove it from [subjects] columns, or, if it must be "
                "kept in "
                "the warehouse, declare it under [subjects.free_text] with the reason."
            )
        if field_.name == column and field_.choices:
            levels[column] = field_.choices
    numeric = [c for c in study.subject_columns if c not in levels and c not in free]
    decimal = study.subjects_options.decimal
    is_number = {
        c: f"({number_sql(f'r.{quote(c)}', decimal)} IS NOT NULL OR regexp_matches(r.{quote(c)}, "
        f"{literal(TOP_CODED)}))"
        for c in numeric
    }
    if numeric:
        counts = con.execute(
            "SELECT "
            + ", ".join(
                f"count(*) FILTER (WHERE trim(r.{quote(c)}) <> ''), count(*) FILTER (WHERE "
                f"{is_number[c]})"
                for c in numeric
            )
            + " FROM raw_subjects r"
        ).fetchall()[0]
        for i, column in enumerate(numeric):
            written, numbers = counts[2 * i], counts[2 * i + 1]
            if written and not numbers:
                raise IngestError(
                    f"{study.subjects_path.name}: column '{column}' holds text, not numbers "
                    f"({written} "
                    f"row{'s' if written != 1 else ''}). If it holds categories, list them in "
                    "study.toml under "
                    f'[subjects.levels], e.g. {column} = ["first", "second"] (or value = "label"); '
                    "if it is "
                    "free text that must be kept, declare it under [subjects.free_text] with the "
                    "reason; "
                    "otherwise remove it from [subjects] columns."
                )
    kept, checks = [], []
    for column in study.subject_columns:
        q = f"r.{quote(column)}"
        written = f"trim(coalesce({q}, '')) <> ''"
        if column in levels:
            codes = levels[column]
            whens = " ".join(f"WHEN {literal(str(c).lower())} THEN {literal(c)}" for c, _ in codes)
            mapped = f"CASE lower(trim({q})) {whens} END"
            shown = ", ".join(c for c, _ in codes[:6]) + (", ..." if len(codes) > 6 else "")
            kept.append(f"{mapped} AS {quote(column)}")
            reason = (
                f"not one of the levels declared for {column} ({shown}); correct it in the export "
                "or add the level under [subjects.levels]"
            )
            checks.append(
                (column, f"CASE WHEN {written} AND {mapped} IS NULL THEN {literal(reason)} END")
            )
        elif column in free:
            kept.append(f"{q} AS {quote(column)}")
        else:
            kept.append(f"CASE WHEN {is_number[column]} THEN trim({q}) END AS {quote(column)}")
            reason = "not a number; a column of categories needs its levels under [subjects.levels]"
            checks.append(
                (
                    column,
                    f"CASE WHEN {written} AND NOT {is_number[column]} THEN {literal(reason)} END",
                )
            )
    return kept, checks


# A refused value is kept in the quarantine only when it is a number of at most this many digits:
# the out-of-range scores and days a coordinator needs to see. The identifiers Safe Harbor lists
# that are written as numbers (phone and fax numbers, SSNs, record and account numbers, 5-digit
# ZIP codes, 8-digit dates) are all longer, and text may be a name typed in the wrong column.
KEPT_DIGITS = 4


def quarantine_key(path: Path) -> str:
    """The key of the quarantine's ``value_hash`` for values refused from the file at ``path``:
    SHA-256 of the bytes ``facial-outcomes quarantine`` + NUL + the file's bytes, in hex.

    ``value_hash`` is the first 16 hex digits of SHA-256(key + value as written). Whoever holds
    the export can recompute it to confirm which cell was refused; whoever holds only the
    warehouse cannot test guesses against it (an unkeyed hash of a name is found by hashing a
    list of names), since the key is derived from the export, which the warehouse does not hold.
    """
    return hashlib.sha256(b"facial-outcomes quarantine\0" + Path(path).read_bytes()).hexdigest()


def _write_quarantine(con: duckdb.DuckDBPyConnection, study: Study, src: Sources) -> None:
    """``<study>.quarantine`` from temp table ``quarantine_found`` (file, line, column, value as
    written, reason, scope, subject code as written): text and long numbers withheld, with their
    length and keyed hash; the subject code kept only when it is an accepted patient's."""
    digits = "length(regexp_replace(trim(value), '[^0-9]', '', 'g'))"
    keep = f"(TRY_CAST(trim(value) AS DOUBLE) IS NOT NULL AND {digits} <= {KEPT_DIGITS})"
    withheld = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT file FROM quarantine_found WHERE value IS NOT NULL AND NOT {keep}"
        ).fetchall()
    ]
    paths = {src.subjects_label: study.subjects_path, src.visits_label: study.visits_path}
    keys = pd.DataFrame(
        {"file": withheld, "key": [quarantine_key(paths[f]) for f in withheld]}, dtype="string"
    )
    con.register("quarantine_keys", keys)
    try:
        con.execute(f"""
            CREATE OR REPLACE TABLE {study.name}.quarantine AS
            SELECT file, line, "column", CASE WHEN keep THEN value END AS value,
                   length(value) AS value_length,
                   CASE WHEN NOT keep THEN left(sha256(k.key || value), 16) END AS value_hash,
                   reason, scope,
                   -- Only a code already stored as an accepted patient's: never a value that
                   -- failed the guard, a code of a refused row, or text typed in its place.
                   CASE WHEN q.subject IN (SELECT subject FROM {study.name}.subjects)
                        THEN q.subject END AS subject
            FROM (SELECT *, {keep} AS keep FROM quarantine_found) q
            LEFT JOIN quarantine_keys k USING (file)
            ORDER BY file, line, "column"
        """)
    finally:
        con.unregister("quarantine_keys")


def _double(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else f"'{value}'::DOUBLE"


def item_responses_sql(schema: str, mapping: pd.DataFrame) -> str:
    """The long view of ``<schema>.item_values``: one row per recorded item, with the columns of
    the ``item_responses`` table of a long-layout study, in no particular order. One branch per
    column, so a query that names an instrument and item reads only that column."""
    branches = " UNION ALL ".join(
        f"SELECT subject, visit, day, {literal(m.instrument)} AS instrument, {literal(m.rater)} AS "
        "rater, "
        f"{literal(m.item)} AS item, {quote(m.column)} AS value, line FROM {schema}.item_values "
        f"WHERE {quote(m.column)} IS NOT NULL"
        for m in mapping.itertuples(index=False)
    )
    return branches


def _wide_items(
    con: duckdb.DuckDBPyConnection,
    study: Study,
    visits: RawTable,
    mapping: pd.DataFrame,
    value_reason: str,
) -> None:
    """Item values of a wide visits file: ``<study>.item_values`` and the refused cells.

    One row per accepted visit and one DOUBLE column per mapped item column (named as in the
    file): the value, or NULL when the cell is empty or refused. The rows are in no particular
    order (sorting a registry's tens of millions of cells costs as much as writing them; readers
    group or sort as they need). Each cell is parsed and checked in one columnar pass; only
    the cells of columns holding a refused cell, on rows holding one, are unpivoted, into temp
    table ``item_findings`` (one row per refused cell with its reason) for the quarantine.
    Columns read as numbers (``visits.numbers``) are checked as they are; the quarantine shows
    a refused cell as written, so for those the file is read again as text, only when one of
    their cells is refused.
    """
    s, decimal = study.name, study.visits_options.decimal
    reserved = sorted(set(mapping["column"]) & {"line", "subject", "visit", "day"})
    if reserved:
        raise IngestError(
            f"{study.spec_path}: item column {reserved[0]!r} has the name of a key column of "
            f"{s}.item_values (line, subject, visit, day). Rename it in the file and the spec."
        )
    parsed, checked = [], []
    for m in mapping.itertuples(index=False):
        c = quote(m.column)
        parsed.append(
            f"r.{c}" if m.column in visits.numbers else f"{number_sql(f'r.{c}', decimal)} AS {c}"
        )
        # The exact complement of the value reasons: a finite number in range (and whole).
        valid = f"isfinite({c}) AND {c} >= {_double(m.minimum)} AND {c} <= {_double(m.maximum)}"
        if m.integer:
            valid += f" AND {c} = round({c})"
        checked.append(f"CASE WHEN {valid} THEN {c} END AS {c}")
    replace_relation(con, f"{s}.item_values", "TABLE")
    con.execute(f"""
        CREATE OR REPLACE TABLE {s}.item_values AS
        SELECT line, subject, visit, day, {", ".join(checked)}
        FROM (SELECT v._line AS line, v.subject, v.visit, v.day, {", ".join(parsed)}
              FROM visit_rows v JOIN raw_visits r USING (_line) WHERE v.finding IS NULL)
    """)
    # A refused cell (or one of spaces only) is written in the file but not kept. Counting a
    # column's cells needs no parsing: the columns whose accepted rows have fewer values kept
    # than cells written are found in one cheap pass, and only their cells are looked at.
    names = list(mapping["column"])
    counts = ", ".join(f"count({quote(c)})" for c in names)
    found = con.execute(f"""
        SELECT * FROM (SELECT {counts} FROM raw_visits),
                      (SELECT {counts} FROM raw_visits
                       WHERE _line IN (SELECT _line FROM visit_rows WHERE finding IS NOT NULL)),
                      (SELECT {counts} FROM {s}.item_values)
    """).fetchall()[0]
    k = len(names)
    suspect = [c for i, c in enumerate(names) if found[i] - found[k + i] > found[2 * k + i]]
    refused_lines = (
        f"""
        SELECT iv.line FROM {s}.item_values iv JOIN raw_visits r ON r._line = iv.line
        WHERE
        {" OR ".join(f"(iv.{quote(c)} IS NULL AND r.{quote(c)} IS NOT NULL)" for c in suspect)}"""
        if suspect
        else "SELECT NULL::BIGINT WHERE FALSE"
    )
    columns = ", ".join(quote(c) for c in suspect or names[:1])
    # (Text, for the query's types when no column is suspect: then it finds no row.)
    as_text = ", ".join(f"CAST({quote(c)} AS VARCHAR) AS {quote(c)}" for c in suspect or names[:1])
    number = number_sql("u.raw", decimal)
    text = visits.table
    if set(suspect) & set(visits.numbers):
        with progress.step(f"reading {visits.path.name} as text for its refused values"):
            text = read_table(con, visits.path, "raw_visits_text", study.visits_options).table
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE item_findings AS
        SELECT * FROM (
            SELECT *, {value_reason} AS reason
            FROM (SELECT v.line, v.subject, v.visit, v.day, m.*, u.raw, {number} AS value
                  FROM (SELECT _line, {as_text} FROM {text} WHERE _line IN ({refused_lines}))
                       UNPIVOT (raw FOR "column" IN ({columns})) u
                  JOIN {s}.item_values v ON v.line = u._line
                  JOIN item_columns m USING ("column")
                  WHERE trim(u.raw) <> ''))
        WHERE reason IS NOT NULL
    """)


def ingest_study(
    con: duckdb.DuckDBPyConnection, study: Study, *, numbers: bool = True
) -> list[SourceFile]:
    """Ingest one study's raw files into schema ``study.name``; return the per-file accounting.

    ``numbers=False`` reads every file as text (see :func:`scan_sources`); the tables written
    are the same. Raises :class:`~pipeline.ingest.deidentify.IdentifiersFound` (nothing written)
    when a file carries
    identifiers, and :class:`IngestError` when a file cannot be read as the spec describes.
    """
    mapping = item_columns(study)
    src = load_sources(con, study, numbers=numbers)
    long = study.visits_layout == "long"
    _require(src.subjects, [study.subject_id, *study.subject_columns])
    needed = [study.visit_subject]
    if not (study.redcap and study.visits_options.format == "redcap"):
        needed += [study.visit_column, study.day_column]
    elif study.day_column:
        needed.append(study.day_column)
    _require(
        src.visits,
        needed + ([study.visit_item, study.visit_value] if long else list(mapping["column"])),
    )

    s = study.name
    sid = quote(study.subject_id)
    lab = src.visit_labels
    con.register("item_columns", mapping)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE subject_findings AS
            SELECT _line, {sid} AS value,
                   CASE WHEN trim(coalesce({sid}, '')) = '' THEN 'missing subject code'
                        WHEN count(*) OVER (PARTITION BY trim({sid})) > 1
                        THEN 'subject code appears on more than one row; keep one row per subject'
                   END AS reason
            FROM raw_subjects
        """)
        kept, checks = _subject_columns(con, study, src)
        con.execute(f"""
            CREATE OR REPLACE TABLE {s}.subjects AS
            SELECT trim(r.{sid}) AS subject{"".join(f", {k}" for k in kept)}
            FROM raw_subjects r JOIN subject_findings f USING (_line)
            WHERE f.reason IS NULL ORDER BY subject
        """)
        subject_values = (
            " UNION ALL ".join(
                f'SELECT r._line, {literal(column)} AS "column", r.{quote(column)} AS raw, '
                f"{reason} AS reason "
                f"FROM raw_subjects r JOIN subject_findings f USING (_line) WHERE f.reason IS NULL"
                for column, reason in checks
            )
            or "SELECT NULL::BIGINT, NULL, NULL, NULL WHERE FALSE"
        )
        e = src.visit_exprs
        windows = " OR ".join(f"(day BETWEEN {lo} AND {hi})" for _, lo, hi in study.visit_windows)
        window_rule = (
            (
                f"WHEN NOT ({windows}) THEN [{literal(lab['day'])}, 'day is outside every visit "
                "window in "
                "[visits.windows]']"
            )
            if windows
            else ""
        )
        extra = (
            f", trim({quote(study.visit_item)}) AS __item, {quote(study.visit_value)} AS __value"
            if long
            else ""
        )
        long_rules = (
            f"""
                        WHEN coalesce(__item, '') = '' THEN [{literal(study.visit_item)},
                        'missing item name']
                        WHEN __item NOT IN (SELECT "column" FROM item_columns)
                        THEN [{literal(study.visit_item)},
                        'item is not mapped to an instrument by the study spec']
                        WHEN count(*) OVER (PARTITION BY subject, visit, __item) > 1
                        THEN [{literal(study.visit_item)},
                        'subject, visit and item appear on more than one row']
                        WHEN min(day) OVER (PARTITION BY subject, visit) <> max(day) OVER (PARTITION
                        BY subject, visit)
                        THEN [{literal(lab["day"])},
                        'rows of the same subject and visit give different days']"""
            if long
            else f"""
                        WHEN count(*) OVER (PARTITION BY subject, visit) > 1
                        THEN [{literal(lab["visit"])},
                        'subject and visit appear on more than one row']"""
        )
        # Visits known by their codes alone (no day column, pipeline.spec.study) have no day.
        day_rules = (
            f"""
                        WHEN coalesce(NOT isfinite(__day), TRUE)
                        THEN [{literal(lab["day"])},
                        'day is not a whole number of days relative to surgery']
                        WHEN abs(__day) > 36500 THEN [{literal(lab["day"])},
                        'day is more than 100 years from surgery']
                        WHEN day IS NULL THEN [{literal(lab["day"])},
                        'day must be a whole number of days']"""
            if study.analysis.days
            else ""
        )
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE visit_rows AS
            SELECT *, CASE
                        WHEN pre IS NOT NULL THEN pre
                        WHEN coalesce(subject, '') = '' THEN [{literal(lab["subject"])},
                        'missing subject code']
                        WHEN subject NOT IN (SELECT subject FROM {s}.subjects)
                        THEN [{literal(lab["subject"])},
                        {literal("unknown subject: not an accepted row of " + src.subjects_label)}]
                        WHEN coalesce(visit, '') = '' THEN [{literal(lab["visit"])},
                        'missing visit code']
                        {day_rules}
                        {window_rule}
                        {long_rules}
                   END AS finding
            FROM (SELECT _line, {e["subject"]} AS subject, {e["visit"]} AS visit, {e["day"]} AS
            raw_day,
                         __day, CASE WHEN __day = round(__day) AND abs(__day) <= 36500
                                     THEN CAST(__day AS INTEGER) END AS day, {e["pre"]} AS pre
                                     {extra}
                  -- Parsed as a number, not cast to an integer: that cast rounds 3.5 to 4
                  -- and fails on 99999999999, and each is quarantined for what it is.
                  FROM (SELECT *, TRY_CAST(trim({e["day"]}) AS DOUBLE) AS __day FROM raw_visits))
        """)
        not_a_number = (
            'not a number; if the file uses decimal commas set decimal = "," in the spec'
            if study.visits_options.decimal == "."
            else "not a number"
        )
        value_reason = f"""CASE
                WHEN value IS NULL THEN {literal(not_a_number)}
                WHEN NOT isfinite(value) THEN 'not a finite number'
                WHEN value < minimum OR value > maximum
                THEN printf('outside the allowed range %g to %g for %s %s', minimum, maximum,
                instrument, item)
                WHEN integer AND value <> round(value) THEN printf('%s %s must be a whole number',
                instrument, item)
            END"""
        if long:
            number = number_sql("v.__value", study.visits_options.decimal)
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE item_findings AS
                SELECT *, CASE WHEN trim(coalesce(raw, '')) = '' THEN 'missing value' ELSE
                {value_reason} END AS reason
                FROM (SELECT v._line AS line, v.subject, v.visit, v.day, m.*, v.__value AS raw,
                {number} AS value
                      FROM visit_rows v JOIN item_columns m ON m."column" = v.__item
                      WHERE v.finding IS NULL)
            """)
            con.execute(f"""
                CREATE OR REPLACE TABLE {s}.visits AS
                SELECT subject, visit, any_value(day) AS day, min(line) AS line
                FROM item_findings WHERE reason IS NULL
                GROUP BY subject, visit ORDER BY subject, day, visit
            """)
        else:
            con.execute(f"""
                CREATE OR REPLACE TABLE {s}.visits AS
                SELECT subject, visit, day, _line AS line FROM visit_rows
                WHERE finding IS NULL ORDER BY subject, day, visit
            """)
            with progress.step(f"checking and storing {len(mapping)} item columns"):
                _wide_items(con, study, src.visits, mapping, value_reason)
        if long:
            replace_relation(con, f"{s}.item_values", None)
            replace_relation(con, f"{s}.item_responses", "TABLE")
            con.execute(f"""
                CREATE TABLE {s}.item_responses AS
                SELECT subject, visit, day, instrument, rater, item, value, line
                FROM item_findings WHERE reason IS NULL
                ORDER BY subject, day, visit, instrument, rater, item
            """)
        else:
            replace_relation(con, f"{s}.item_responses", "VIEW")
            con.execute(f"CREATE VIEW {s}.item_responses AS {item_responses_sql(s, mapping)}")
        value_scope = "'row'" if long else "'value'"
        item_finding = f"WHEN {literal(study.visit_item)} THEN __item" if long else ""
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE quarantine_found AS
            SELECT * FROM (
                SELECT {literal(src.subjects_label)} AS file, _line AS line,
                {literal(study.subject_id)} AS "column",
                       value, reason, 'row' AS scope, NULL::VARCHAR AS subject
                FROM subject_findings WHERE reason IS NOT NULL
                UNION ALL
                SELECT {literal(src.subjects_label)}, _line, '(whole row)', NULL, reason, 'row',
                       NULL
                FROM raw_subjects_rejects
                UNION ALL
                SELECT {literal(src.subjects_label)}, v._line, v."column", v.raw, v.reason,
                       'value', trim(s.{sid})
                FROM ({subject_values}) v JOIN raw_subjects s ON s._line = v._line
                WHERE v.reason IS NOT NULL
                UNION ALL
                SELECT {literal(src.visits_label)}, _line, finding[1],
                       CASE finding[1] WHEN {literal(lab["day"])} THEN raw_day
                                       WHEN {literal(lab["visit"])} THEN visit
                                       {item_finding}
                                       ELSE subject END,
                       finding[2], 'row', subject
                FROM visit_rows WHERE finding IS NOT NULL
                UNION ALL
                SELECT {literal(src.visits_label)}, _line, '(whole row)', NULL, reason, 'row', NULL
                FROM raw_visits_rejects
                UNION ALL
                SELECT {literal(src.visits_label)}, line, "column", raw, reason, {value_scope},
                       subject
                FROM item_findings WHERE reason IS NOT NULL
            )
        """)
        _write_quarantine(con, study, src)
        counts = dict(
            con.execute(f"""
            SELECT file, count(*) FROM {s}.quarantine WHERE scope = 'row' GROUP BY file
        """).fetchall()
        )
        # Accepted rows are counted from the written tables, independently of the
        # quarantine, so that read = accepted + quarantined is a real check.
        files = []
        accepted_visits = (
            f"SELECT count(*) FROM {s}.item_responses"
            if long
            else f"SELECT count(*) FROM {s}.visits"
        )
        for raw, label, accepted_sql in (
            (src.subjects, src.subjects_label, f"SELECT count(*) FROM {s}.subjects"),
            (src.visits, src.visits_label, accepted_visits),
        ):
            files.append(
                SourceFile(
                    label,
                    sha256(raw.path),
                    raw.path.stat().st_size,
                    raw.rows,
                    scalar(con, accepted_sql),
                    counts.get(label, 0),
                )
            )
        con.register("source_files_frame", pd.DataFrame([f.__dict__ for f in files]))
        con.execute(f"CREATE OR REPLACE TABLE {s}.source_files AS SELECT * FROM source_files_frame")
        con.unregister("source_files_frame")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("item_columns")
    return files
