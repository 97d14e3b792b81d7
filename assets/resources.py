"""Resources: where the warehouse and the reports live, the analysis options of a run, and the
processes that draw its figures."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal, Optional

import dagster as dg
import duckdb
import pandas as pd

from pipeline import paths, warehouse
from pipeline.render import figure_processes
from pipeline.spec.schema import MULTIPLICITY, POST_RULES, TESTS
from pipeline.spec.study import Study, with_overrides

# The launchpad's value for "as the spec says" in a choice.
SPEC = "spec"


class Warehouse(dg.ConfigurableResource):
    """Where the DuckDB warehouses live: a folder holding one file per study,
    ``<path>/<study>.duckdb`` (or a path ending in ``.duckdb``: one file for every study, whose
    studies then run one at a time). Empty ``path`` means ``OUTCOMES_WAREHOUSE`` or
    ``data/processed/``."""

    path: str = ""

    @property
    def location(self) -> Path:
        return Path(self.path) if self.path else paths.warehouse_location()

    def file(self, study: str) -> Path:
        """The warehouse file of ``study``."""
        return paths.warehouse_path(study, self.location)

    @contextmanager
    def connect(self, study: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to ``study``'s warehouse, closed on leaving."""
        con = warehouse.connect(self.file(study))
        try:
            yield con
        finally:
            con.close()

    def frame(self, study: str, sql: str) -> pd.DataFrame:
        """What one query of ``study``'s warehouse returns, on a connection of its own."""
        with self.connect(study) as con:
            return warehouse.read_frame(con, sql)


class Reports(dg.ConfigurableResource):
    """Folder for tables and figures; empty ``path`` means ``OUTCOMES_REPORTS`` or ``reports/``."""

    path: str = ""

    @property
    def folder(self) -> Path:
        return Path(self.path) if self.path else paths.reports_dir()


class AnalysisOptions(dg.ConfigurableResource):
    """Analysis choices for one run, overriding the study spec without editing it. Set them in the
    launchpad under ``resources: analysis_options: config:``; every analysis asset of that run
    uses them, and ``reports/<study>/provenance.json`` records them. Unset means the spec's.
    The fields are those of ``pipeline.spec.schema.AnalysisOverrides`` (tested), which
    checks them as the spec settings they replace. Choices are offered as the spec's choices
    plus ``spec``, the spec's own choice (Dagster's launchpad takes a choice without a None)."""

    alpha: Optional[float] = None
    conf_level: Optional[float] = None
    test: Literal[(SPEC, *TESTS)] = SPEC
    multiplicity: Literal[(SPEC, *MULTIPLICITY)] = SPEC
    pre_max_day: Optional[int] = None
    post_rule: Literal[(SPEC, *POST_RULES)] = SPEC
    post_min_day: Optional[int] = None
    post_max_day: Optional[int] = None
    post_visit: Optional[str] = None
    post_target_day: Optional[int] = None

    @property
    def overrides(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump().items() if v is not None and v != SPEC}

    def apply(self, study: Study) -> Study:
        return with_overrides(study, self.overrides)


class FigureWorkers(dg.ConfigurableResource):
    """Processes that draw figures beside the step's own (:mod:`pipeline.render.figure_processes`).

    Dagster sets a resource up when the run (in one process) or the step (in a process of its
    own) starts, for the steps that ask for it: the figure steps. Run in one process, the
    workers import what they draw with on an idle core while the study is ingested and
    analysed, and are ready when its figures come; they are let go when the run ends."""

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["FigureWorkers"]:
        # Workers already warm in this process are left to whoever started them.
        with figure_processes.warm():
            yield self
