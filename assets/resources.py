"""Resources: where the warehouse and the reports live."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
import duckdb

from pipeline import paths, warehouse


class Warehouse(dg.ConfigurableResource):
    """The DuckDB warehouse file; empty ``path`` means ``OUTCOMES_WAREHOUSE`` or
    ``data/processed/warehouse.duckdb``."""

    path: str = ""

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = warehouse.connect(Path(self.path) if self.path else None)
        try:
            yield con
        finally:
            con.close()


class Reports(dg.ConfigurableResource):
    """Folder for tables and figures; empty ``path`` means ``OUTCOMES_REPORTS`` or ``reports/``."""

    path: str = ""

    @property
    def folder(self) -> Path:
        return Path(self.path) if self.path else paths.reports_dir()
