"""Materialize every asset (or one study's) in this process, with the project's instance.

Used by ``outcomes report`` / ``make report``: runs are recorded in
``DAGSTER_HOME`` (default ``.dagster/``), so they show in the UI's history.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from assets.keys import BUNDLE_PREFIX, RAW_FILES
from pipeline import paths


def materialize_all(study: str | None = None) -> tuple[bool, list[Path]]:
    """Run the graph; return success and the files the assets wrote."""
    os.environ.setdefault("DAGSTER_HOME", str(paths.PROJECT_ROOT / ".dagster"))
    from assets.definitions import build_definitions

    defs = build_definitions()
    job = defs.resolve_implicit_global_asset_job_def()
    selection = None
    if study:
        keys = [
            key
            for key in defs.resolve_all_asset_keys()
            if key.path[0] == study
            and key.path[-1] != RAW_FILES
            and not key.path[-1].startswith(BUNDLE_PREFIX)
        ]
        if not keys:
            raise ValueError(f"no study named {study!r} under {paths.raw_data_dir()}.")
        selection = keys
    with dg.DagsterInstance.get() as instance:
        # Step-by-step DEBUG logs stay in the run's history (the UI); the terminal shows
        # only warnings and the files written.
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        result = job.execute_in_process(
            run_config=quiet, instance=instance, asset_selection=selection, raise_on_error=False
        )
    written = []
    for event in result.get_asset_materialization_events():
        for value in event.materialization.metadata.values():
            if isinstance(value, dg.PathMetadataValue):
                written.append(Path(value.path))
    return result.success, written
