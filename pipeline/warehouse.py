"""The embedded DuckDB warehouses: one file per study (``<folder>/<study>.duckdb``), holding the
study's schema and its ``meta.runs``; :func:`all_studies` attaches them read-only for questions
across studies.

Tables are always written whole with ``CREATE OR REPLACE TABLE ... AS``,
which is atomic and takes its columns by name, so a reader never sees a
half-written or misaligned table. A step that writes several tables does so
inside :func:`transaction` (or is decorated with :func:`atomic`), so a run
stopped at any point, even by SIGKILL or a power cut, leaves every step's
tables as the last complete run wrote them.

One run at a time per study: ``outcomes run`` and ``outcomes report`` hold
:func:`run_lock` (an advisory lock on ``<study>.duckdb.lock``) of every study they run for the
whole run, and every writer checks it, so a second run of a study stops with one line naming the
lock and the process holding it instead of interleaving its steps, while other studies' runs go
on. The steps of a run may write from processes of their own (Dagster's multiprocess executor):
they are the lock holder's descendants, and write under its lock.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import os
import re
import stat
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import duckdb
import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.sql import literal, quote


class WarehouseLocked(RuntimeError):
    """Another process holds the warehouse file."""


def lock_path(path: Path) -> Path:
    """The lock file of a warehouse: ``warehouse.duckdb.lock`` beside ``warehouse.duckdb``."""
    return path.with_name(path.name + ".lock")


# Warehouses whose run lock this process holds (resolved path -> open lock file).
_held: dict[str, int] = {}


def _holder(lock: Path) -> str:
    try:
        pid = lock.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


def _locked_message(path: Path, lock: Path) -> str:
    return (
        f"{path} is in use by another run ({_holder(lock)} holds the lock {lock}). Wait for that "
        "run to "
        "finish, or stop it, then run again; the warehouse keeps its last complete state."
    )


@contextmanager
def run_lock(path: Path) -> Iterator[Path]:
    """Hold the run lock of the warehouse file ``path`` for a whole run; raise
    :class:`WarehouseLocked` when taken.

    A ``flock`` on ``<warehouse>.lock``: the kernel releases it when the holder exits, however
    it exits (SIGKILL included), so a stale lock never needs deleting by hand. The file keeps
    the holder's process id for the message a second run prints, and for the processes the
    holder starts (:func:`_check_run_lock`). Re-entrant within a process.
    """
    path = Path(path)
    key = str(path.resolve())
    if key in _held:
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_path(path)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise WarehouseLocked(_locked_message(path, lock)) from None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    _held[key] = fd
    try:
        yield path
    finally:
        del _held[key]
        os.close(fd)  # releases the lock; the file stays, so no waiting process loses its inode


def _ancestors() -> set[int]:
    """The process ids of this process's parent, its parent's parent and so on (read from Linux's
    ``/proc``; where there is none, the parent alone)."""
    found, pid = set(), os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            status = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
            # "pid (command) state ppid ...": the command may hold spaces and parentheses.
            pid = int(status.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return found


def _check_run_lock(path: Path) -> None:
    """Refuse to write while another run holds the run lock. This process's own lock is fine, and
    so is one an ancestor holds: a step that Dagster's multiprocess executor started in a process
    of its own belongs to the run of the process that took the lock (``outcomes report``)."""
    lock = lock_path(path)
    if str(path.resolve()) in _held or not lock.exists():
        return
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            holder = lock.read_text(encoding="ascii", errors="replace").strip()
            if holder.isdigit() and int(holder) in _ancestors():
                return
            raise WarehouseLocked(_locked_message(path, lock)) from None
        raise
    finally:
        os.close(fd)  # a probe only: the writer's safety from here on is DuckDB's own file lock


# The name the warehouse is attached under. DuckDB would name it after its file, and a file
# named like a study (cd4.duckdb for study cd4) makes every "cd4.table" ambiguous between that
# catalog and the study's schema. A study's name is lower-case letters, digits and '_', so a
# name with a hyphen is never one.
CATALOG = "outcomes-warehouse"


def connect(path: Path | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a warehouse file, creating its folder if needed.

    The file is attached as the catalog :data:`CATALOG`, the connection's only database
    besides DuckDB's own ``system`` and ``temp``, so a study's schema is never mistaken for
    the warehouse whatever the file's name.

    ``path`` is a study's file (``paths.warehouse_path(study)``). A folder of them (the default,
    ``paths.warehouse_location()``, unless that is one file) opens read-only as
    :func:`all_studies`: every study's tables, as in one warehouse.

    DuckDB allows one writing process per file; when another run holds it, this
    raises :class:`WarehouseLocked` with what to do instead of DuckDB's message.
    """
    path = Path(path) if path is not None else paths.warehouse_location()
    if not paths.single_file(path) and not path.is_file():
        if not read_only:
            raise ValueError(
                f"{path} is a folder of warehouses, one per study: open a study's file "
                "(pipeline.paths.warehouse_path) to write."
            )
        return all_studies(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
        _check_run_lock(path)
    # No vacuum at checkpoints: every step replaces its tables whole (nothing is deleted
    # from them), and merging the partly filled row groups a parallel insert leaves (their
    # number varies from run to run) rewrites them, a large and erratic share of a
    # registry's ingestion (make bench). A table may keep a row group more.
    # A new file is readable by DuckDB 1.x too (the R package, DBeaver), not only by the 2.x
    # that wrote it; an existing one keeps its version. What does not fit in memory spills
    # beside the file, as DuckDB does for a file it opens itself (not into the working folder).
    config = {"temp_directory": f"{path}.tmp"}
    if not read_only:
        config |= {"storage_compatibility_version": "v1.0.0", "max_vacuum_tasks": 0}
    # A named in-memory database is shared by every connection of this process to it, as
    # DuckDB shares a file's: a second connection to the warehouse finds the file attached.
    shared = hashlib.sha256(str(path.resolve()).encode("utf-8")).hexdigest()[:16]
    con = duckdb.connect(f":memory:{CATALOG}-{shared}", config=config)
    try:
        databases = {
            name
            for (name,) in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
        }
        if CATALOG not in databases:
            con.execute(
                f"ATTACH {literal(path)} AS {quote(CATALOG)}"
                + (" (READ_ONLY)" if read_only else "")
            )
        con.execute(f"USE {quote(CATALOG)}")
        if "memory" in databases:
            con.execute(
                "DETACH memory"
            )  # the in-memory database, which a study named "memory" would meet
        return con
    except BaseException as err:
        con.close()
        if not isinstance(err, duckdb.IOException):
            raise
        if "lock" in str(err).lower():
            pid = re.search(r"\(PID (\d+)\)", str(err))
            raise WarehouseLocked(
                f"{path} is in use by another process{f' (process {pid.group(1)})' if pid else ''} "
                "(DuckDB allows one writer). Wait for the running materialization to finish, or "
                "stop it, "
                "then try again."
            ) from None
        raise


def in_memory() -> duckdb.DuckDBPyConnection:
    """A private in-memory database as the catalog :data:`CATALOG`, for work that writes no file
    (``outcomes validate``): DuckDB's own name for it, ``memory``, would be ambiguous with a
    study of that name as a file's name is with a study named after it."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH ':memory:' AS {quote(CATALOG)}")
        con.execute(f"USE {quote(CATALOG)}")
        con.execute("DETACH memory")
    except BaseException:
        con.close()
        raise
    return con


def study_files(location: Path | None = None) -> dict[str, Path]:
    """The warehouse file of each study found at ``location`` (default
    ``paths.warehouse_location()``), by study name: ``<study>.duckdb`` in a folder; in a single
    file for every study, that file under each study schema it holds."""
    location = Path(location) if location is not None else paths.warehouse_location()
    if paths.single_file(location) or location.is_file():
        if not location.is_file():
            return {}
        con = duckdb.connect(str(location), read_only=True)
        try:
            schemas = [name for (name,) in con.execute(_STUDY_SCHEMAS).fetchall()]
        finally:
            con.close()
        return {name: location for name in schemas}
    return {
        file.name.removesuffix(paths.WAREHOUSE_SUFFIX): file
        for file in sorted(location.glob(f"*{paths.WAREHOUSE_SUFFIX}"))
        if file.is_file()
    }


# The schemas of a warehouse that are studies: not DuckDB's own nor the run log's.
_STUDY_SCHEMAS = (
    "SELECT DISTINCT schema_name FROM information_schema.schemata "
    "WHERE catalog_name = current_database() "
    "AND schema_name NOT IN ('main', 'meta', 'information_schema', 'pg_catalog') ORDER BY 1"
)


def all_studies(location: Path | None = None) -> duckdb.DuckDBPyConnection:
    """Every study's warehouse at ``location`` (default ``paths.warehouse_location()``), attached
    read-only to one in-memory database, for questions across studies.

    Each study's tables and views read as in its own file, ``<study>.<table>``; ``meta.runs`` holds
    every study's runs; and each table name that studies share is also a view in ``main`` of
    every study's rows with a ``study`` column first (``SELECT * FROM paired_tests`` compares
    the studies; ``main`` can be no study's name). Studies whose tables have columns of
    incompatible types under one name are left out of that combined view only.

    Nothing can be written through it (every file is ``READ_ONLY``), and it takes no lock: a
    study being written meanwhile cannot be attached (DuckDB refuses a second process while
    one writes), which raises :class:`WarehouseLocked` naming the file. A file that is not a
    study's (the single warehouse of the layout before per-study files, left in the folder)
    adds none of its schemas but the one named like it.
    """
    con = in_memory()
    try:
        tables: dict[str, list[str]] = {}  # table name -> the catalogs of studies holding it
        runs = []
        catalogs: dict[Path, str] = {}  # each file attached once (one file may hold every study)
        for study, file in study_files(location).items():
            if file not in catalogs:
                catalogs[file] = f"study-{study}"  # hyphenated: never a study's name (see CATALOG)
                try:
                    con.execute(f"ATTACH {literal(file)} AS {quote(catalogs[file])} (READ_ONLY)")
                except duckdb.IOException as err:
                    if "lock" in str(err).lower():
                        raise WarehouseLocked(
                            f"{file} is being written by a run of study '{study}'; read the "
                            "studies again when it has finished."
                        ) from None
                    raise
            attached = catalogs[file]
            names = con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_catalog = ? AND table_schema IN (?, 'meta') ORDER BY ALL",
                [attached, study],
            ).fetchall()
            if not any(schema == study for schema, _ in names):
                continue
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(study)}")
            for schema, table in names:
                source = f"{quote(attached)}.{quote(schema)}.{quote(table)}"
                if schema == "meta":
                    if table == "runs":
                        runs.append(f"SELECT * FROM {source} WHERE study = {literal(study)}")
                    continue
                con.execute(f"CREATE VIEW {quote(study)}.{quote(table)} AS SELECT * FROM {source}")
                tables.setdefault(table, []).append(study)
        if runs:
            con.execute("CREATE SCHEMA meta")
            con.execute("CREATE VIEW meta.runs AS " + " UNION ALL BY NAME ".join(runs))
        for table, studies in sorted(tables.items()):
            _combined_view(con, table, studies)
        return con
    except BaseException:
        con.close()
        raise


def _combined_view(con: duckdb.DuckDBPyConnection, table: str, studies: list[str]) -> None:
    """``main.<table>``: the rows of ``<study>.<table>`` of every study, ``study`` first."""
    parts = []
    for study in studies:
        columns = {
            name
            for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
                [study, table],
            ).fetchall()
        }
        own = "" if "study" in columns else f"{literal(study)} AS study, "
        parts.append(f"SELECT {own}* FROM {quote(study)}.{quote(table)}")
    try:
        con.execute(f"CREATE VIEW main.{quote(table)} AS " + " UNION ALL BY NAME ".join(parts))
    except duckdb.Error:
        pass  # columns of one name that no type holds all of: read the studies one by one


# Connections inside a transaction opened by transaction().
_in_transaction: "weakref.WeakSet[duckdb.DuckDBPyConnection]" = weakref.WeakSet()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Everything written inside becomes visible at once, or not at all.

    COMMIT on success; ROLLBACK on any exception, Ctrl-C and a failed COMMIT (a full disk)
    included. A process killed inside leaves nothing of it: DuckDB makes a transaction durable
    only at COMMIT. Nested use joins the transaction already open, so a step may be called on
    its own or from a larger one.
    """
    if con in _in_transaction:
        yield con  # already inside one: its owner commits or rolls back
        return
    # Tracked here rather than probed: a BEGIN inside an open transaction aborts it in DuckDB.
    con.execute("BEGIN TRANSACTION")
    _in_transaction.add(con)
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # nothing left to roll back: the transaction ended with the failed COMMIT
        raise
    finally:
        _in_transaction.discard(con)


Step = TypeVar("Step", bound=Callable)


def atomic(step: Step) -> Step:
    """A step whose warehouse writes (its first argument is the connection) form one transaction."""

    @functools.wraps(step)
    def run(con, *args, **kwargs):
        with transaction(con):
            return step(con, *args, **kwargs)

    return run  # type: ignore[return-value]


@contextmanager
def private_files(enabled: bool = True) -> Iterator[None]:
    """Files created inside are readable by their owner only (umask 077), when ``enabled``.

    Used around a run of a study whose spec says ``restricted = true``; pair it with
    :func:`make_private` for files that existed before.
    """
    if not enabled:
        yield
        return
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def make_private(*targets: Path) -> None:
    """Owner-only modes on existing files (0600) and folders (0700, with everything in them)."""
    for target in targets:
        target = Path(target)
        if not target.exists() or target.is_symlink():
            continue
        if target.is_dir():
            for folder, dirs, files in os.walk(target):
                os.chmod(folder, 0o700)
                for name in files:
                    file = Path(folder) / name
                    if not file.is_symlink():
                        os.chmod(file, 0o600)
        elif stat.S_ISREG(target.stat().st_mode):
            os.chmod(target, 0o600)


def warehouse_files(path: Path) -> tuple[Path, ...]:
    """The warehouse file and the files DuckDB and the run lock keep beside it."""
    return (path, path.with_name(path.name + ".wal"), lock_path(path))


def write_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Replace ``table`` with ``frame``, column names and types taken from the frame."""
    con.register("_frame", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _frame")
    finally:
        con.unregister("_frame")


def read_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None
) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def read_shared_text(
    con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None
) -> pd.DataFrame:
    """:func:`read_frame`, each often repeated text value held once.

    DuckDB gives every cell of a text column its own Python string: a registry's pairs (2.5
    million rows; the comparison, outcome and score, a few dozen distinct values; and 100,000
    subject codes) take about 930 MB that way, 490 MB with the few distinct values shared.
    The result is read in slices of about 130,000 rows, each slice's repeated text replaced by
    the first equal string met, so no more than a slice's strings are ever held twice. The
    same frame as :func:`read_frame` (equal values, ``None`` where the column is NULL, the
    same dtypes).
    """
    result = con.execute(sql, params or [])
    shared: dict = {}
    parts = []
    while True:
        part = result.fetch_df_chunk(64)
        for column in part.columns:
            if part[column].dtype == object:
                values = part[column].to_numpy()
                codes, uniques = pd.factorize(values)
                # Only text of few distinct values (outcome names, not subject codes) repeats
                # enough for sharing it to be worth a lookup per distinct value.
                if 0 < len(uniques) <= len(values) // 16:
                    first = np.array([shared.setdefault(u, u) for u in uniques], dtype=object)
                    found = codes >= 0
                    values[found] = first[codes[found]]
                    part[column] = values
        parts.append(part)
        if len(part) == 0:
            break
    frames = [p for p in parts if len(p)] or parts[:1]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """The single value a query returns.

    ``fetchall`` rather than ``fetchone``: DuckDB 2 keeps a result open until a
    fetch comes back empty, which blocks the next statement on the connection.
    """
    return con.execute(sql, params or []).fetchall()[0][0]


def relation_kind(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """``"TABLE"``, ``"VIEW"`` or None for ``schema.name`` in the warehouse."""
    schema, table = name.split(".")
    found = scalar(
        con,
        "SELECT any_value(table_type) FROM information_schema.tables "
        "WHERE table_schema = ? AND table_name = ? AND table_catalog = current_database()",
        [schema, table],
    )
    return None if found is None else ("VIEW" if found == "VIEW" else "TABLE")


def replace_relation(con: duckdb.DuckDBPyConnection, name: str, kind: str | None) -> None:
    """Make way for a new ``kind`` (``"TABLE"``/``"VIEW"``) named ``schema.name``: drop what is
    there unless it is a table that ``CREATE OR REPLACE TABLE`` replaces; ``kind`` None drops it
    whatever it is. (A warehouse written before a table became a view still opens.)"""
    found = relation_kind(con, name)
    if found and (found != kind or kind == "VIEW"):
        con.execute(f"DROP {found} {name}")
