"""Entry point of the Dagster code location: one asset graph per study folder."""

from __future__ import annotations

import dagster as dg

from pipeline import paths
from pipeline.study import discover_studies, load_study

from assets.resources import Reports, Warehouse
from assets.study_assets import build_study_assets


def build_definitions() -> dg.Definitions:
    all_assets, all_checks = [], []
    for folder in discover_studies(paths.raw_data_dir()):
        assets, checks = build_study_assets(load_study(folder))
        all_assets += assets
        all_checks += checks
    return dg.Definitions(
        assets=all_assets,
        asset_checks=all_checks,
        resources={"warehouse": Warehouse(), "reports": Reports()},
        # One process: a study's steps are short, and a subprocess per step would
        # cost seconds of start-up each and contend for the single DuckDB writer.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
