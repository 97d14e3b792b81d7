"""Every study's asset graph as one set of Dagster definitions, and the executor that runs it.

Built on demand, never on import: a step that Dagster runs in a process of its own rebuilds the
definitions there (:func:`study_job`), for the folder of studies its run was started with.
``assets.definitions`` builds them once for the UI's code location.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster._core.code_pointer import CustomPointer, ModuleCodePointer
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository

from assets.keys import STUDY_TAG
from assets.pooled_assets import build_pooled_assets
from assets.resources import AnalysisOptions, FigureWorkers, Reports, Warehouse
from assets.sensors import build_export_sensor
from assets.study_assets import build_study_assets
from pipeline import paths
from pipeline.pooled_study import is_pooled, load_pooled_study
from pipeline.spec.study import discover_studies, load_study

# What a step's process needs before it starts, imported once in Dagster's fork server and
# inherited by every step forked from it instead of imported by each (about 2 s a step): the
# asset graph's modules, and the libraries the steps import as they run (pandas, DuckDB, scipy,
# statsmodels, matplotlib, python-docx). None of them reads a setting when imported, so a
# server started for one run serves the next one too.
PRELOADED = (
    "assets.step_server",
    "pipeline.steps",
    "pipeline.ingest.deidentify",
    "pipeline.statistics.paired",
    "pipeline.statistics.subgroups",
    "pipeline.statistics.between_groups",
    "pipeline.statistics.longitudinal",
    "pipeline.statistics.mixed_model",
    "pipeline.statistics.regression",
    "pipeline.statistics.survival",
    "pipeline.render.tables",
    "pipeline.render.figures",
    "pipeline.render.report",
    # Imported by the steps as they run, not by the modules above.
    "statsmodels.api",
    "docx",
    "jinja2",
)


#: The setting that sends every step to Celery workers: the broker's URL (``redis://host:port/0``),
#: also the results backend (docs/scaling.md).
CELERY_BROKER = "OUTCOMES_CELERY_BROKER"


def on_workers() -> bool:
    """Whether the steps run on Celery workers (:data:`CELERY_BROKER` is set), which may be on
    other machines than the process that starts the run."""
    return bool(os.environ.get(CELERY_BROKER))


def executor_for(studies: int, location: Path | None = None) -> dg.ExecutorDefinition:
    """How a run's steps are executed: one process for a single study, whose steps depend on each
    other (tables and figures apart) and would only pay a process start each; for several
    studies, Dagster's multiprocess executor, running different studies' steps at once, one
    step of a study at a time (:data:`~assets.keys.STUDY_TAG`): a study's warehouse file takes
    one writing process. A ``location`` that is one file for every study (``x.duckdb``) keeps
    every step in one process, since that file takes one writer for all of them.

    ``DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT`` sets how many steps run at once (default:
    one per core). With :data:`CELERY_BROKER` set, every step is a Celery task, taken by the
    workers listening on its study's queue (``study-<name>``)."""
    if on_workers():
        from dagster_celery import celery_executor  # the optional extra: pip install '.[celery]'

        broker = os.environ[CELERY_BROKER]
        return celery_executor.configured(
            {"broker": broker, "backend": broker, "include": ["assets.step_server"]},
            name="celery_executor",
        )
    location = location if location is not None else paths.warehouse_location()
    if studies <= 1 or paths.single_file(location):
        return dg.in_process_executor
    return dg.multiprocess_executor.configured(
        {
            "tag_concurrency_limits": [
                {"key": STUDY_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
            ],
            "start_method": {"forkserver": {"preload_modules": list(PRELOADED)}},
        },
        name="multiprocess_executor",
    )


def build_definitions(raw: Path | None = None) -> dg.Definitions:
    """The definitions of every study under ``raw`` (default ``paths.raw_data_dir()``)."""
    folders = discover_studies(raw or paths.raw_data_dir())
    studies = [load_study(folder) for folder in folders if not is_pooled(folder)]
    # Multi-centre studies pooled from site bundles (docs/multi-centre.md): a graph of their own.
    pooled = [load_pooled_study(folder) for folder in folders if is_pooled(folder)]
    assets = [a for study in studies for a in build_study_assets(study)]
    assets += [a for study in pooled for a in build_pooled_assets(study)]
    materializable = [key for a in assets if isinstance(a, dg.AssetsDefinition) for key in a.keys]
    return dg.Definitions(
        assets=assets,
        # No study, no sensor: it would select no asset, which Dagster refuses, and the UI would
        # not load at all.
        sensors=[build_export_sensor([*studies, *pooled], materializable)]
        if materializable
        else [],
        resources={
            "warehouse": Warehouse(),
            "reports": Reports(),
            "analysis_options": AnalysisOptions(),
            "figure_workers": FigureWorkers(),
        },
        # A pooled study's few steps read bundles, not patients: it takes no process of its own
        # (measured: the demo and its pooled example took 49 s in processes, 24 s in one).
        executor=executor_for(len(studies)),
    )


# The definitions study_definitions built in this process, by what they were built from.
_built: dict[tuple, dg.Definitions] = {}


def _built_from(raw: str) -> tuple:
    """What a folder's definitions are built from: its path and each study spec's identity."""
    specs = sorted(Path(raw).glob("*/study.toml"))
    return (raw, *((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in specs))


def study_definitions(raw: str) -> dg.Definitions:
    """:func:`build_definitions` for ``raw`` (resolved), as a step's own process rebuilds them
    (the arguments of a reconstructable job must be JSON). Kept while no spec under ``raw``
    changes, so that steps forked from Dagster's fork server find the definitions its
    :mod:`assets.step_server` built, instead of each building them (1 to 3 s a step: every
    asset's code version reads the source it hashes)."""
    key = _built_from(raw)
    if key not in _built:
        _built.clear()
        _built[key] = build_definitions(Path(raw))
    return _built[key]


def reconstructable_job(raw: Path, job: dg.JobDefinition) -> ReconstructableJob:
    """``job`` of :func:`study_definitions` for ``raw``, as an executor that starts processes
    needs it. (``dagster.build_reconstructable_job`` wraps a job alone in a repository, which the
    implicit asset job's reserved name is refused from.)"""
    pointer = CustomPointer(
        ModuleCodePointer("assets.graph", "study_definitions", working_directory=os.getcwd()),
        [str(Path(raw).resolve())],
        [],
    )
    return ReconstructableRepository(pointer).get_reconstructable_job(job.name)
