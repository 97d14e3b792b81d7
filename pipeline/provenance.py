"""What produced a study's outputs: input files, spec, code commit, package versions.

Written as ``reports/<study>/provenance.json``. It holds no time stamp (the
run's time is in the Dagster run history and the warehouse's ``meta.runs``),
so the same inputs and code give the same bytes.

The warehouse keeps every run in ``meta.runs`` (:func:`recorded_run`): run id,
study, step, start and finish time, how it ended (``status``, ``exit_code``,
``error``), commit and dirty flag, spec hash, the inputs' fingerprint and
hashes, analysis overrides, allowed identifiers and package versions.
``input_fingerprint`` is also in ``provenance.json``, so a table or figure
under ``reports/<study>/`` leads to the runs that made it::

    SELECT * FROM meta.runs WHERE study = 'demo' AND input_fingerprint = '<from provenance.json>'
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
import uuid
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Iterator

import duckdb

from pipeline import exits, paths
from pipeline import files as output_files
from pipeline.ingest.ingestion import SourceFile
from pipeline.ingest.readers import sha256
from pipeline.spec.study import OVERRIDABLE, Study, load_study
from pipeline.warehouse import transaction

PACKAGES = (
    "facial-outcomes",
    "duckdb",
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "matplotlib",
    "seaborn",
    "dagster",
)


def git_state(root: Path = paths.PROJECT_ROOT) -> dict[str, object]:
    """The commit the code came from, and whether tracked files had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {
        "commit": commit or "unknown (not a git checkout)",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None,
    }


@functools.cache
def _installed_versions() -> tuple[tuple[str, str], ...]:
    # Read once per process: importlib.metadata scans every installed distribution (some 80 ms
    # a call), and every step of a run records the versions.
    versions = []
    for name in PACKAGES:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, "not installed"))
    return tuple(versions)


def package_versions() -> dict[str, str]:
    return dict(_installed_versions())


def provenance(study: Study, files: list[SourceFile]) -> dict[str, object]:
    versions = package_versions()
    return {
        "study": study.name,
        "synthetic": study.synthetic,
        "spec": {"file": study.spec_path.name, "sha256": study.spec_sha256},
        # The same fingerprint as meta.runs.input_fingerprint in the warehouse.
        "input_fingerprint": fingerprint(study),
        "inputs": [
            {
                "file": f.file,
                "sha256": f.sha256,
                "bytes": f.bytes,
                "rows_read": f.rows_read,
                "rows_accepted": f.rows_accepted,
                "rows_quarantined": f.rows_quarantined,
            }
            for f in files
        ],
        # Columns the guard let through because the spec allowed them, with the spec's reason.
        "identifiers_allowed": [
            {"column": column, "justification": why} for column, why in study.identifiers_allowed
        ],
        # Analysis choices changed for a run without editing the spec (recorded by the analysis
        # steps).
        "analysis_overrides": {},
        "code": git_state(),
        "python": platform.python_version(),
        "packages": versions,
    }


def write_provenance(study: Study, files: list[SourceFile], folder: Path) -> Path:
    """Write ``provenance.json``; the analysis overrides already recorded there stay (they are
    the analysis steps' to record, :func:`record_overrides`), so a file whose content is the
    same keeps its bytes and modification time."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "provenance.json"
    record = provenance(study, files)
    # Only a regular file is read: a device in its place (/dev/full, a full disk's stand-in)
    # would be read without end.
    try:
        if path.is_file():
            record["analysis_overrides"] = json.loads(path.read_text(encoding="utf-8"))[
                "analysis_overrides"
            ]
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or not ours: none recorded
        pass
    output_files.write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def fingerprint(study: Study) -> str:
    """One SHA-256 over the spec and every input file, in order: changes iff an input changes."""
    digest = hashlib.sha256()
    for path in study.input_paths:
        digest.update(path.name.encode() + b"\0" + sha256(path).encode() + b"\0")
    return digest.hexdigest()


def record_overrides(folder: Path, overrides: dict[str, object]) -> None:
    """Note in ``provenance.json`` the analysis choices a run overrode ({} when none)."""
    path = folder / "provenance.json"
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if record.get("analysis_overrides") == overrides:
        return
    record["analysis_overrides"] = dict(sorted(overrides.items()))
    folder.mkdir(parents=True, exist_ok=True)
    output_files.write_text(path, json.dumps(record, indent=2) + "\n")


RUNS = "meta.runs"
_RUNS_COLUMNS = """
    run_id VARCHAR, study VARCHAR, step VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    code_commit VARCHAR, code_dirty BOOLEAN, spec_sha256 VARCHAR, input_fingerprint VARCHAR,
    inputs JSON, analysis_overrides JSON, identifiers_allowed JSON, python VARCHAR, packages JSON,
    status VARCHAR, exit_code INTEGER, error VARCHAR
"""
# Added after the first warehouses were written: a table without them gains them at the next run.
_ADDED_COLUMNS = (("status", "VARCHAR"), ("exit_code", "INTEGER"), ("error", "VARCHAR"))


def overrides_of(study: Study) -> dict[str, object]:
    """The analysis choices in which ``study`` differs from its spec file (a run's overrides)."""
    try:
        spec = load_study(study.folder).analysis
    except Exception:  # the spec changed or vanished since: nothing to compare with
        return {}
    return {
        key: getattr(study.analysis, key)
        for key in OVERRIDABLE
        if getattr(study.analysis, key) != getattr(spec, key)
    }


def _runs_table(con: duckdb.DuckDBPyConnection) -> None:
    """``meta.runs`` with every column, an older table's finished rows marked finished."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"CREATE TABLE IF NOT EXISTS {RUNS} ({_RUNS_COLUMNS})")
    present = {
        name
        for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'meta' AND "
            "table_name = 'runs'"
        ).fetchall()
    }
    missing = [(name, kind) for name, kind in _ADDED_COLUMNS if name not in present]
    if missing:
        with transaction(con):
            for name, kind in missing:
                con.execute(f"ALTER TABLE {RUNS} ADD COLUMN {name} {kind}")
            if "status" not in present:
                # Written before runs said how they ended: a finish time meant a finished run. A
                # row without one stays without a status (interrupted, killed or refused: unknown).
                con.execute(
                    f"UPDATE {RUNS} SET status = 'finished', exit_code = {exits.OK} "
                    "WHERE finished_at IS NOT NULL"
                )


def start_run(
    con: duckdb.DuckDBPyConnection, study: Study, *, run_id: str | None = None, step: str = "all"
) -> str:
    """Append a row to ``meta.runs`` for a run (or one step of it) of ``study``; return its id.

    Written before the run's tables, so every table a run writes has its row, even when the
    run is stopped: ``finished_at`` and ``status`` stay empty until :func:`finish_run` or
    :func:`end_run`. The table lives only in the warehouse; nothing in ``reports/`` depends on
    it, so outputs stay byte-identical.
    """
    run_id = run_id or uuid.uuid4().hex
    code = git_state()
    inputs = [
        {"file": p.name, "sha256": sha256(p), "bytes": p.stat().st_size} for p in study.input_paths
    ]
    _runs_table(con)
    con.execute(
        f"""INSERT INTO {RUNS} (run_id, study, step, started_at, code_commit, code_dirty,
                        spec_sha256, input_fingerprint, inputs, analysis_overrides,
                        identifiers_allowed, python, packages)
                    VALUES (?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            run_id,
            study.name,
            step,
            code["commit"],
            code["dirty"],
            study.spec_sha256,
            fingerprint(study),
            json.dumps(inputs),
            json.dumps(dict(sorted(overrides_of(study).items()))),
            json.dumps(
                [{"column": c, "justification": why} for c, why in study.identifiers_allowed]
            ),
            platform.python_version(),
            json.dumps(package_versions()),
        ],
    )
    return run_id


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, step: str = "all") -> None:
    """Mark a run (or one of its steps) complete in ``meta.runs``."""
    con.execute(
        f"UPDATE {RUNS} SET finished_at = now(), status = 'finished', exit_code = ? "
        "WHERE run_id = ? AND step = ?",
        [exits.OK, run_id, step],
    )


def end_run(con: duckdb.DuckDBPyConnection, run_id: str, step: str, error: BaseException) -> None:
    """Record in ``meta.runs`` that a run (or step) ended with ``error``.

    ``status`` is ``refused`` (exit code 2: the input or spec), ``failed`` (1, 3 or 4) or
    ``interrupted`` (130: Ctrl-C); ``exit_code`` is what ``outcomes`` returns for it, ``error``
    the error's class. A refused or failed run has ended, so it gets its ``finished_at``; an
    interrupted one keeps it empty, as a killed one does.

    The error's message is not stored: messages quote what they are about (a cell that is not
    a number, a line of a file DuckDB cannot read), and the warehouse keeps no value of an
    export outside the tables the spec maps. The class and the exit code hold none.

    Never raises an error of its own (a full disk, a connection DuckDB has closed): the
    caller re-raises the run's error, which says more. A second Ctrl-C still goes through.
    """
    code = exits.exit_code(type(error).__name__, str(error), error)
    try:
        con.execute(
            f"""UPDATE {RUNS} SET status = ?, exit_code = ?, error = ?,
                            finished_at = CASE WHEN ? THEN now() END
                        WHERE run_id = ? AND step = ?""",
            [
                exits.status(code),
                code,
                type(error).__name__,
                code != exits.INTERRUPTED,
                run_id,
                step,
            ],
        )
    except Exception as failed:
        if exits.exit_code(type(failed).__name__, str(failed)) == exits.INTERRUPTED:
            raise KeyboardInterrupt from None  # a second Ctrl-C, which DuckDB reports as an error


@contextmanager
def recorded_run(
    con: duckdb.DuckDBPyConnection, study: Study, *, run_id: str | None = None, step: str = "all"
) -> Iterator[str]:
    """A run (or one step of it) on record in ``meta.runs`` from start to end; yields its id.

    The row is written on entry (:func:`start_run`), marked finished if the block completes
    (:func:`finish_run`) and otherwise with how it ended (:func:`end_run`), the error then
    raised as it was. A process killed outright leaves the row as it was on entry.
    """
    run_id = start_run(con, study, run_id=run_id, step=step)
    try:
        yield run_id
    except BaseException as error:
        end_run(con, run_id, step, error)
        raise
    finish_run(con, run_id, step)
