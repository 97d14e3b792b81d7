"""SQL text for DuckDB: names and values quoted once, here, for every module that writes SQL."""

from __future__ import annotations


def quote(name: str) -> str:
    """A column, table or schema name as a DuckDB identifier: ``"name"``, inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A value as a DuckDB string literal: ``'text'``, inner quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"
