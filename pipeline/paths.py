"""The project's folders, defined once so no module hard-codes a path.

The warehouse location can be moved with ``OUTCOMES_WAREHOUSE`` and the
reports with ``OUTCOMES_REPORTS`` (tests use both to work in a temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RAW_DATA_DIR = PROJECT_ROOT / "data" / "raw"
PROCESSED_DATA_DIR = PROJECT_ROOT / "data" / "processed"


def warehouse_path() -> Path:
    """Path of the embedded DuckDB warehouse."""
    return Path(os.environ.get("OUTCOMES_WAREHOUSE", PROCESSED_DATA_DIR / "warehouse.duckdb"))


def reports_dir() -> Path:
    """Folder under which each study's tables and figures are written."""
    return Path(os.environ.get("OUTCOMES_REPORTS", PROJECT_ROOT / "reports"))


def raw_data_dir() -> Path:
    """Folder holding one sub-folder per study (``<dir>/<study>/study.toml``)."""
    return Path(os.environ.get("OUTCOMES_RAW", RAW_DATA_DIR))
