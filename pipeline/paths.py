"""The project's folders, defined once so no module hard-codes a path.

The warehouses can be moved with ``OUTCOMES_WAREHOUSE`` and the reports with
``OUTCOMES_REPORTS`` (tests use both to work in a temporary folder).

Each study has a warehouse of its own, ``<folder>/<study>.duckdb``, so studies are written by
separate processes at once (DuckDB allows one writing process per file). ``OUTCOMES_WAREHOUSE``
names that folder; a path ending in ``.duckdb`` names one file holding every study, the layout
before per-study files, which still works but writes one study at a time.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RAW_DATA_DIR = PROJECT_ROOT / "data" / "raw"
PROCESSED_DATA_DIR = PROJECT_ROOT / "data" / "processed"

#: The file name ending of a warehouse; a location ending so is one file for every study.
WAREHOUSE_SUFFIX = ".duckdb"


def warehouse_location() -> Path:
    """Where the warehouses live: ``OUTCOMES_WAREHOUSE``, by default ``data/processed/`` (one
    file per study in it), or one ``.duckdb`` file for every study."""
    return Path(os.environ.get("OUTCOMES_WAREHOUSE", PROCESSED_DATA_DIR))


def single_file(location: Path) -> bool:
    """Whether ``location`` is one warehouse file for every study rather than a folder of them."""
    return Path(location).suffix == WAREHOUSE_SUFFIX


def warehouse_path(study: str, location: Path | None = None) -> Path:
    """The warehouse file of ``study``: ``<location>/<study>.duckdb``, or ``location`` itself
    when it is one file for every study (default location: :func:`warehouse_location`)."""
    location = Path(location) if location is not None else warehouse_location()
    return location if single_file(location) else location / f"{study}{WAREHOUSE_SUFFIX}"


def warehouse_dir(location: Path | None = None) -> Path:
    """The folder the warehouse files (and their locks) are written in."""
    location = Path(location) if location is not None else warehouse_location()
    return location.parent if single_file(location) else location


def reports_dir() -> Path:
    """Folder under which each study's tables and figures are written."""
    return Path(os.environ.get("OUTCOMES_REPORTS", PROJECT_ROOT / "reports"))


def raw_data_dir() -> Path:
    """Folder holding one sub-folder per study (``<dir>/<study>/study.toml``)."""
    return Path(os.environ.get("OUTCOMES_RAW", RAW_DATA_DIR))
