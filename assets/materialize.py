"""Materialize every asset (or one study's) with the project's instance.

Used by ``outcomes report`` / ``make report``: runs are recorded in
``DAGSTER_HOME`` (default ``.dagster/``), so they show in the UI's history.

One study runs in this process. Several run under Dagster's multiprocess executor
(:func:`assets.graph.executor_for`), each study's steps in processes of their own, so studies
are computed at once; every step's process gets the folders of this run in its run config
rather than from its environment (a fork server started by an earlier run keeps that run's).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from assets.keys import BUNDLE_PREFIX, RAW_FILES
from pipeline import paths


def materialize_all(
    study: str | None = None, overrides: dict[str, object] | None = None
) -> tuple[bool, list[Path], str]:
    """Run the graph; return success, the files the assets wrote and the run's id. ``overrides``
    are analysis options for this run (the ``analysis_options`` resource, as the launchpad sets
    them)."""
    os.environ.setdefault("DAGSTER_HOME", str(paths.PROJECT_ROOT / ".dagster"))
    from assets.graph import build_definitions, on_workers, reconstructable_job

    raw = paths.raw_data_dir()
    defs = build_definitions(raw)
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
            raise ValueError(f"no study named {study!r} under {raw}.")
        selection = keys
    studies = {key.path[0] for key in selection or defs.resolve_all_asset_keys()}
    # Step-by-step DEBUG logs stay in the run's history (the UI); the terminal shows
    # only warnings and the files written.
    run_config = {
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        "resources": {
            "warehouse": {"config": {"path": str(paths.warehouse_location())}},
            "reports": {"config": {"path": str(paths.reports_dir())}},
            **({"analysis_options": {"config": dict(overrides)}} if overrides else {}),
        },
    }
    with dg.DagsterInstance.get() as instance:
        # One study selected of several: in this process, as for a single study.
        if job.executor_def is not dg.in_process_executor and (len(studies) > 1 or on_workers()):
            result = dg.execute_job(
                reconstructable_job(raw, job),
                instance=instance,
                run_config=run_config,
                asset_selection=selection,
                raise_on_error=False,
            )
        else:
            result = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                asset_selection=selection,
                raise_on_error=False,
            )
        written = []
        for event in result.get_asset_materialization_events():
            for value in event.materialization.metadata.values():
                if isinstance(value, dg.PathMetadataValue):
                    written.append(Path(value.path))
        return result.success, written, result.run_id
