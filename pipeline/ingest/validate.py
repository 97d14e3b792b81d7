"""``outcomes validate``: what ingestion would do with an export, without writing anything.

Exit code 0: clean; 1: rows or values would be quarantined; 2: refused
(identifiers, an unreadable file, a bad spec). With a study spec the whole
study is ingested into a throw-away in-memory database; without one the file
alone is read and scanned by the de-identification guard.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import duckdb

from pipeline import warehouse
from pipeline.ingest.deidentify import Finding, IdentifiersFound, advice, scan
from pipeline.ingest.ingestion import IngestError, ingest_study
from pipeline.ingest.readers import ReadError, read_table
from pipeline.ingest.redcap import RedcapError, read_dictionary
from pipeline.spec.study import SPEC_FILENAME, SpecError, load_study

CLEAN, QUARANTINE, REFUSED = "clean", "quarantine", "refused"
EXIT = {CLEAN: 0, QUARANTINE: 1, REFUSED: 2}


def _result(path: Path, status: str, **fields: Any) -> dict[str, Any]:
    out = {
        "path": str(path),
        "status": status,
        "exit_code": EXIT[status],
        "error": None,
        "files": [],
        "identifiers": [],
        "quarantine": [],
    }
    out.update(fields)
    return out


def _spec_folder(path: Path, spec: Path | None) -> Path | None:
    if spec is not None:
        return spec.parent if spec.is_file() else spec
    if path.is_dir() and (path / SPEC_FILENAME).is_file():
        return path
    if path.name == SPEC_FILENAME:
        return path.parent
    return None


def validate(
    path: Path, *, dictionary: Path | None = None, spec: Path | None = None
) -> dict[str, Any]:
    """Check ``path`` and return the findings as a plain dict (see :func:`render`)."""
    con = warehouse.in_memory()  # nothing reaches the warehouse
    con.execute("SET enable_progress_bar = false")
    try:
        folder = _spec_folder(path, spec)
        if folder is not None:
            return _validate_study(con, path, folder)
        return _validate_file(con, path, dictionary)
    except IdentifiersFound as err:
        return _result(
            path, REFUSED, error=str(err), identifiers=[dataclasses.asdict(f) for f in err.findings]
        )
    except (SpecError, IngestError, ReadError, RedcapError, FileNotFoundError) as err:
        return _result(path, REFUSED, error=str(err))
    finally:
        con.close()


def _validate_file(
    con: duckdb.DuckDBPyConnection, path: Path, dictionary_path: Path | None
) -> dict[str, Any]:
    from pipeline.spec.schema import ReadOptions

    dictionary = read_dictionary(dictionary_path) if dictionary_path else None
    raw = read_table(con, path, "raw_check", ReadOptions(format="redcap" if dictionary else "auto"))
    findings = scan(
        con,
        raw,
        dictionary_identifiers=dictionary.identifier_columns(raw.columns) if dictionary else None,
        date_columns=dictionary.date_columns(raw.columns) if dictionary else frozenset(),
        free_text=dictionary.free_text_columns(raw.columns) if dictionary else frozenset(),
    )
    if findings:
        raise IdentifiersFound(findings)
    rejects = con.execute("SELECT _line, reason FROM raw_check_rejects ORDER BY _line").fetchall()
    files = [
        {
            "file": path.name,
            "rows_read": raw.rows,
            "rows_accepted": raw.rows - raw.rejected,
            "rows_quarantined": raw.rejected,
            "encoding": raw.encoding,
            "delimiter": raw.delimiter,
            "format": raw.format,
        }
    ]
    quarantine = [
        {
            "file": path.name,
            "line": line,
            "column": "(whole row)",
            "value": None,
            "reason": reason,
            "scope": "row",
        }
        for line, reason in rejects
    ]
    return _result(path, QUARANTINE if quarantine else CLEAN, files=files, quarantine=quarantine)


def _validate_study(con: duckdb.DuckDBPyConnection, path: Path, folder: Path) -> dict[str, Any]:
    study = load_study(folder)
    if (
        path.is_file()
        and path.name != SPEC_FILENAME
        and path.resolve() not in {study.subjects_path.resolve(), study.visits_path.resolve()}
    ):
        # The export being checked stands in for the spec's visits file (the records export
        # for a REDCap project, which holds the subjects too).
        same = study.subjects_file == study.visits_file
        study = dataclasses.replace(
            study,
            visits_file=str(path.resolve()),
            subjects_file=str(path.resolve()) if same else study.subjects_file,
        )
    files = ingest_study(con, study)
    quarantine = (
        con.execute(
            f'SELECT file, line, "column", value, reason, scope FROM {study.name}.quarantine '
            "ORDER BY file, line"
        )
        .df()
        .to_dict("records")
    )
    quarantine = [
        {k: (None if v != v else v) for k, v in row.items()} for row in quarantine
    ]  # NaN -> None
    for row in quarantine:
        row["line"] = int(row["line"])
    return _result(
        path,
        QUARANTINE if quarantine else CLEAN,
        files=[dataclasses.asdict(f) for f in files],
        quarantine=quarantine,
    )


def render(result: dict[str, Any], *, as_json: bool = False, limit: int = 50) -> str:
    """The result as JSON, or as a short readable summary."""
    if as_json:
        return json.dumps(result, indent=2, default=str)
    lines = []
    if result["status"] == REFUSED and result["identifiers"]:
        lines.append(
            "refused: the export carries identifiers (HIPAA Safe Harbor); nothing was written."
        )
        findings = [Finding(**f) for f in result["identifiers"]]
        for f in findings:
            lines.append(f"  {f.file}, {f.describe()}")
        lines.append(advice(findings))
    elif result["status"] == REFUSED:
        lines.append(f"refused: {result['error']}")
    for f in result["files"]:
        lines.append(
            f"{f['file']}: {f['rows_read']} rows read, {f['rows_accepted']} accepted, "
            f"{f['rows_quarantined']} quarantined"
        )
    if result["quarantine"]:
        lines.append(f"would be quarantined ({len(result['quarantine'])}):")
        # Where and why, never the value: a cell is not repeated on a terminal (--json has the
        # quarantine's rows, values included, as the warehouse keeps them).
        for q in result["quarantine"][:limit]:
            lines.append(f"  {q['file']} line {q['line']}, column {q['column']}: {q['reason']}")
        if len(result["quarantine"]) > limit:
            lines.append(f"  ... and {len(result['quarantine']) - limit} more (use --json for all)")
    verdict = {
        CLEAN: "clean: every row would be accepted",
        QUARANTINE: "rows or values would be quarantined; fix them in the export or accept the "
        "quarantine",
        REFUSED: "refused: nothing can be ingested until this is fixed",
    }[result["status"]]
    lines.append(f"{verdict} (exit {result['exit_code']})")
    return "\n".join(lines)
