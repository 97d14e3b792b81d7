"""The embedded DuckDB warehouse: one file, one schema per study.

Tables are always written whole with ``CREATE OR REPLACE TABLE ... AS``,
which is atomic and takes its columns by name, so a reader never sees a
half-written or misaligned table.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from pipeline import paths


class WarehouseLocked(RuntimeError):
    """Another process holds the warehouse file."""


def connect(path: Path | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, creating its folder if needed.

    DuckDB allows one writing process per file; when another run holds it, this
    raises :class:`WarehouseLocked` with what to do instead of DuckDB's message.
    """
    path = Path(path) if path is not None else paths.warehouse_path()
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Readable by DuckDB 1.x too (the R package, DBeaver), not only by the 2.x that wrote it.
        config = {} if read_only else {"storage_compatibility_version": "v1.0.0"}
        return duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as err:
        if "lock" in str(err).lower():
            raise WarehouseLocked(
                f"{path} is in use by another process (DuckDB allows one writer). "
                "Wait for the running materialization to finish, or stop it, then try again."
            ) from None
        raise


def write_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Replace ``table`` with ``frame``, column names and types taken from the frame."""
    con.register("_frame", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _frame")
    finally:
        con.unregister("_frame")


def read_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """The single value a query returns.

    ``fetchall`` rather than ``fetchone``: DuckDB 2 keeps a result open until a
    fetch comes back empty, which blocks the next statement on the connection.
    """
    return con.execute(sql, params or []).fetchall()[0][0]
