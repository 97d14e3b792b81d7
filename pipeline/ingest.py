"""Raw exports in: every row read is accepted or quarantined with a reason.

Reads the subjects file and the visits file that a study spec names, keeps only
the columns the spec maps, and writes to the study's schema in the warehouse:

``source_files``    each file's SHA-256, size and row accounting
``subjects``        one row per accepted subject (opaque code + baseline columns)
``visits``          one row per accepted subject visit (day relative to surgery)
``item_responses``  one row per answered item: subject, visit, day, instrument, rater, item, value
``quarantine``      every refused row or value: file, line, column, value, reason

``line`` is the line in the file as a spreadsheet shows it (the header is line 1).
A refused row is counted once, under the first rule it breaks; a refused item
value leaves the rest of its row accepted and that item missing.
All tables are replaced in one transaction, so a failed ingest leaves the previous ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.instruments import REGISTRY
from pipeline.study import Study
from pipeline.warehouse import scalar


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


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def item_columns(study: Study) -> pd.DataFrame:
    """The spec's mapping from visits-file columns to instrument items, with allowed ranges."""
    rows = []
    for source in study.instruments:
        for rater in source.raters:
            for item in REGISTRY[source.instrument].items:
                rows.append({
                    "column": source.column_for(item.name, rater),
                    "instrument": source.instrument,
                    "rater": rater,
                    "item": item.name,
                    "minimum": float(item.minimum),
                    "maximum": float(item.maximum),
                    "integer": item.integer,
                })
    mapping = pd.DataFrame(rows)
    clash = mapping[mapping["column"].duplicated(keep=False)]
    if not clash.empty:
        raise IngestError(f"{study.spec_path}: column {clash['column'].iloc[0]!r} is mapped to more than one item. "
                          "Give each instrument its own column template.")
    return mapping


def _read_raw(con: duckdb.DuckDBPyConnection, path: Path, table: str, needed: list[str]) -> int:
    """Load a CSV as text into a temp table with its line numbers; return the number of rows."""
    try:
        # all_varchar: nothing is converted by guesswork; every value is checked below.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS "
            "SELECT * FROM read_csv(?, all_varchar = true, header = true)",
            [str(path)],
        )
    except duckdb.Error as err:
        first = str(err).strip().splitlines()[0]
        raise IngestError(f"{path}: cannot be read as CSV ({first}). "
                          "Export it again as comma-separated text with a header row.") from None
    present = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
    missing = [c for c in needed if c not in present]
    if missing:
        raise IngestError(f"{path}: column(s) {', '.join(missing)} named in the study spec are missing "
                          f"(the file has: {', '.join(present)}). Rename the columns or correct the spec.")
    # A table's rowid is its insertion order, which DuckDB keeps equal to file order.
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT rowid + 2 AS _line, * FROM {table}")
    return scalar(con, f"SELECT count(*) FROM {table}")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ingest_study(con: duckdb.DuckDBPyConnection, study: Study) -> list[SourceFile]:
    """Ingest one study's raw files into schema ``study.name``; return the per-file accounting."""
    mapping = item_columns(study)
    s = study.name
    subjects_file, visits_file = study.subjects_path.name, study.visits_path.name
    sid = _q(study.subject_id)
    n_subjects = _read_raw(con, study.subjects_path, "raw_subjects",
                           [study.subject_id, *study.subject_columns])
    n_visits = _read_raw(con, study.visits_path, "raw_visits",
                         [study.visit_subject, study.visit_column, study.day_column, *mapping["column"]])
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
        baseline = "".join(f", {_q(c)}" for c in study.subject_columns)
        con.execute(f"""
            CREATE OR REPLACE TABLE {s}.subjects AS
            SELECT trim(r.{sid}) AS subject{baseline}
            FROM raw_subjects r JOIN subject_findings f USING (_line)
            WHERE f.reason IS NULL ORDER BY subject
        """)
        vs, vv, vd = _q(study.visit_subject), _q(study.visit_column), _q(study.day_column)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE visit_rows AS
            SELECT _line, trim({vs}) AS subject, trim({vv}) AS visit, {vd} AS raw_day,
                   TRY_CAST(trim({vd}) AS INTEGER) AS day,
                   CASE WHEN trim(coalesce({vs}, '')) = '' THEN ['{study.visit_subject}', 'missing subject code']
                        WHEN trim({vs}) NOT IN (SELECT subject FROM {s}.subjects)
                        THEN ['{study.visit_subject}', 'unknown subject: not an accepted row of {subjects_file}']
                        WHEN trim(coalesce({vv}, '')) = '' THEN ['{study.visit_column}', 'missing visit code']
                        WHEN TRY_CAST(trim({vd}) AS INTEGER) IS NULL
                        THEN ['{study.day_column}', 'day is not a whole number of days relative to surgery']
                        WHEN count(*) OVER (PARTITION BY trim({vs}), trim({vv})) > 1
                        THEN ['{study.visit_column}', 'subject and visit appear on more than one row']
                   END AS finding
            FROM raw_visits
        """)
        con.execute(f"""
            CREATE OR REPLACE TABLE {s}.visits AS
            SELECT subject, visit, day, _line AS line FROM visit_rows
            WHERE finding IS NULL ORDER BY subject, day, visit
        """)
        cells = ", ".join(_q(c) for c in mapping["column"])
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE item_cells AS
            SELECT v._line AS line, v.subject, v.visit, v.day, m.*, u.raw,
                   TRY_CAST(replace(trim(u.raw), ' ', '') AS DOUBLE) AS value
            FROM (SELECT * FROM raw_visits UNPIVOT (raw FOR "column" IN ({cells}))) u
            JOIN visit_rows v USING (_line)
            JOIN item_columns m USING ("column")
            WHERE v.finding IS NULL AND trim(u.raw) <> ''
        """)
        con.execute("""
            CREATE OR REPLACE TEMP TABLE item_findings AS
            SELECT *, CASE
                WHEN value IS NULL THEN 'not a number'
                WHEN NOT isfinite(value) THEN 'not a finite number'
                WHEN value < minimum OR value > maximum
                THEN printf('outside the allowed range %g to %g for %s %s', minimum, maximum, instrument, item)
                WHEN integer AND value <> round(value) THEN printf('%s %s must be a whole number', instrument, item)
            END AS reason
            FROM item_cells
        """)
        con.execute(f"""
            CREATE OR REPLACE TABLE {s}.item_responses AS
            SELECT subject, visit, day, instrument, rater, item, value, line
            FROM item_findings WHERE reason IS NULL
            ORDER BY subject, day, visit, instrument, rater, item
        """)
        con.execute(f"""
            CREATE OR REPLACE TABLE {s}.quarantine AS
            SELECT * FROM (
                SELECT '{subjects_file}' AS file, _line AS line, '{study.subject_id}' AS "column",
                       value, reason, 'row' AS scope
                FROM subject_findings WHERE reason IS NOT NULL
                UNION ALL
                SELECT '{visits_file}', _line, finding[1],
                       CASE finding[1] WHEN '{study.day_column}' THEN raw_day
                                       WHEN '{study.visit_column}' THEN visit ELSE subject END,
                       finding[2], 'row'
                FROM visit_rows WHERE finding IS NOT NULL
                UNION ALL
                SELECT '{visits_file}', line, "column", raw, reason, 'value'
                FROM item_findings WHERE reason IS NOT NULL
            ) ORDER BY file, line, "column"
        """)
        counts = dict(con.execute(f"""
            SELECT file, count(*) FROM {s}.quarantine WHERE scope = 'row' GROUP BY file
        """).fetchall())
        # Accepted rows are counted from the written tables, independently of the
        # quarantine, so that read = accepted + quarantined is a real check.
        files = []
        for path, n_read, table in ((study.subjects_path, n_subjects, "subjects"),
                                    (study.visits_path, n_visits, "visits")):
            accepted = scalar(con, f"SELECT count(*) FROM {s}.{table}")
            files.append(SourceFile(path.name, sha256(path), path.stat().st_size,
                                    n_read, accepted, counts.get(path.name, 0)))
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
