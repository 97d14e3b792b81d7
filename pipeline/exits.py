"""How a run ends: the ``outcomes`` command's exit codes, and which error gives which.

One place for the classification, because two things need it: the exit code the command
returns (:mod:`pipeline.cli`, for ``outcomes run`` and for a failed Dagster step alike) and
the ``status`` a run leaves in ``meta.runs`` (:mod:`pipeline.provenance`). Errors are told
apart by their class name (a failed Dagster step reports its error by name only) and, for
the two that need it, by their message, which is read here and never stored.
"""

from __future__ import annotations

import errno

OK, FAILED, REFUSED, BUSY, NO_SPACE, INTERRUPTED = 0, 1, 2, 3, 4, 130

# Errors a user causes and can fix: the input, the spec or the files named on the command line.
REFUSED_ERRORS = (
    "SpecError",
    "IngestError",
    "IdentifiersFound",
    "ReadError",
    "RedcapError",
    "ValueError",
    "FileNotFoundError",
    "FileExistsError",
    "PermissionError",
    "IsADirectoryError",
    "NotADirectoryError",
)

# What DuckDB's Python client raises (a plain RuntimeError, the KeyboardInterrupt dropped) when
# Ctrl-C lands while it runs a query on the calling thread. Under Dagster, whose signal handler
# raises DagsterExecutionInterruptedError instead, the query ends the same way.
DUCKDB_INTERRUPTED = "Query interrupted"


def exit_code(name: str, message: str, err: BaseException | None = None) -> int:
    """The exit code for an error named ``name`` (its class) with ``message``."""
    if name == "WarehouseLocked":
        return BUSY
    if name in ("KeyboardInterrupt", "DagsterExecutionInterruptedError"):
        return INTERRUPTED
    # A failed Dagster step's message starts with the class name: "RuntimeError: Query interrupted".
    if (
        name == "RuntimeError"
        and message.strip().removeprefix(f"{name}: ").strip() == DUCKDB_INTERRUPTED
    ):
        return INTERRUPTED
    if (
        (isinstance(err, OSError) and err.errno == errno.ENOSPC)
        or "No space left on device" in message
        or f"[Errno {errno.ENOSPC}]" in message
    ):
        return NO_SPACE
    if name in REFUSED_ERRORS or (err is not None and isinstance(err, ValueError)):
        return REFUSED
    return FAILED


def status(code: int) -> str:
    """How ``meta.runs`` names a run that ended with exit code ``code``."""
    return {OK: "finished", REFUSED: "refused", INTERRUPTED: "interrupted"}.get(code, "failed")
