"""Resources: where the warehouse and the reports live."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import dagster as dg
import duckdb

from pipeline import paths, warehouse
from pipeline.study import Study, with_overrides


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


class AnalysisOptions(dg.ConfigurableResource):
    """Analysis choices for one run, overriding the study spec without editing it. Set them in the
    launchpad under ``resources: analysis_options: config:``; every analysis asset of that run
    uses them, and ``reports/<study>/provenance.json`` records them. Unset means the spec's."""

    alpha: Optional[float] = None
    test: Optional[str] = None              # wilcoxon | t | auto
    multiplicity: Optional[str] = None      # holm | bh
    pre_max_day: Optional[int] = None
    post_rule: Optional[str] = None         # last_followup | named_visit | nearest_day
    post_min_day: Optional[int] = None
    post_max_day: Optional[int] = None
    post_visit: Optional[str] = None
    post_target_day: Optional[int] = None

    @property
    def overrides(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump().items() if v is not None}

    def apply(self, study: Study) -> Study:
        return with_overrides(study, self.overrides)
