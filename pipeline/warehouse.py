"""The embedded DuckDB warehouse: one file, one schema per study.

Tables are always written whole with ``CREATE OR REPLACE TABLE ... AS``,
which is atomic and takes its columns by name, so a reader never sees a
half-written or misaligned table. A step that writes several tables does so
inside :func:`transaction` (or is decorated with :func:`atomic`), so a run
stopped at any point, even by SIGKILL or a power cut, leaves every step's
tables as the last complete run wrote them.

One run at a time: ``outcomes run`` and ``outcomes report`` hold
:func:`run_lock` (an advisory lock on ``<warehouse>.lock``) for the whole run,
and every writer checks it, so a second run stops with one line naming the
lock and the process holding it instead of interleaving its steps.
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
def run_lock(path: Path | None = None) -> Iterator[Path]:
    """Hold the warehouse's run lock for a whole run; raise :class:`WarehouseLocked` when taken.

    A ``flock`` on ``<warehouse>.lock``: the kernel releases it when the holder exits, however
    it exits (SIGKILL included), so a stale lock never needs deleting by hand. The file keeps
    the holder's process id for the message a second run prints. Re-entrant within a process.
    """
    path = Path(path) if path is not None else paths.warehouse_path()
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


def _check_run_lock(path: Path) -> None:
    """Refuse to write while another process holds the run lock (this process's own is fine)."""
    lock = lock_path(path)
    if str(path.resolve()) in _held or not lock.exists():
        return
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
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
    """Open the warehouse, creating its folder if needed.

    The file is attached as the catalog :data:`CATALOG`, the connection's only database
    besides DuckDB's own ``system`` and ``temp``, so a study's schema is never mistaken for
    the warehouse whatever the file's name.

    DuckDB allows one writing process per file; when another run holds it, this
    raises :class:`WarehouseLocked` with what to do instead of DuckDB's message.
    """
    path = Path(path) if path is not None else paths.warehouse_path()
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
