"""Entry point of the Dagster code location: one asset graph per study folder."""

from __future__ import annotations

import dagster as dg

from assets.checks import build_study_checks
from assets.pooled_assets import build_pooled_assets
from assets.resources import AnalysisOptions, Reports, Warehouse
from assets.sensors import build_export_sensor
from assets.study_assets import build_study_assets
from pipeline import paths
from pipeline.pooled_study import is_pooled, load_pooled_study
from pipeline.spec.study import discover_studies, load_study


def build_definitions() -> dg.Definitions:
    folders = discover_studies(paths.raw_data_dir())
    studies = [load_study(folder) for folder in folders if not is_pooled(folder)]
    # Multi-centre studies pooled from site bundles (docs/multi-centre.md): a graph of their own.
    pooled = [load_pooled_study(folder) for folder in folders if is_pooled(folder)]
    assets = [a for study in studies for a in build_study_assets(study)]
    assets += [a for study in pooled for a in build_pooled_assets(study)]
    checks = [c for study in studies for c in build_study_checks(study)]
    materializable = [key for a in assets if isinstance(a, dg.AssetsDefinition) for key in a.keys]
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        # No study, no sensor: it would select no asset, which Dagster refuses, and the UI would
        # not load at all.
        sensors=[build_export_sensor([*studies, *pooled], materializable)]
        if materializable
        else [],
        resources={
            "warehouse": Warehouse(),
            "reports": Reports(),
            "analysis_options": AnalysisOptions(),
        },
        # One process: a study's steps are short, and a subprocess per step would
        # cost seconds of start-up each and contend for the single DuckDB writer.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
