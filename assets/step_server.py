"""Imported once by the fork server of Dagster's multiprocess executor, before any step is forked
from it (``assets.graph.PRELOADED``): the definitions of the studies under ``OUTCOMES_RAW`` are
built here, so that every step process finds them built (``assets.graph.study_definitions``) and
so does ``assets.definitions``, which a step of a run launched from the UI imports.

The modules of the Dagster instance a step opens (its SQLite storages, SQLAlchemy and Alembic,
the compute log manager: about 500 modules, 1.1 s of CPU on an idle machine) are imported here
too: a step process opens the run's instance first thing, and would otherwise import them for
every step. Imported only; no instance is opened here, so no connection or thread is shared with
the forked steps.

A server started for another folder (a second run in the same process, with other settings)
holds definitions no step asks for: such a step builds its own. Nothing here may stop the server:
Python's fork server survives only an ImportError in what it preloads, so any error is left for
the step that meets it to report.
"""

from __future__ import annotations

import importlib
import os

from assets import graph
from pipeline import paths


def import_instance_modules(home: str | None) -> None:
    """Import the classes the Dagster instance in ``home`` (``DAGSTER_HOME``) is configured with,
    as :meth:`dagster.DagsterInstance.from_ref` would, without opening any of them."""
    import dagster._core.instance.factory  # noqa: F401  (what from_ref builds the instance with)
    from dagster._core.instance.ref import InstanceRef

    if not home:
        return
    ref = InstanceRef.from_dir(home)
    configured = (
        ref.storage_data,
        ref.run_storage_data,
        ref.event_storage_data,
        ref.schedule_storage_data,
        ref.local_artifact_storage_data,
        ref.compute_logs_data,
        ref.scheduler_data,
        ref.run_coordinator_data,
        ref.run_launcher_data,
        ref.secrets_loader_data,
    )
    for data in configured:
        if data is not None:
            importlib.import_module(data.module_name)
    # The secrets loader a step uses when the instance names none, the storages' schema check,
    # and the paths the compute log manager opens (imported as the instance starts).
    import dagster._core.secrets.env_file  # noqa: F401
    import dagster._core.storage.migration.utils  # noqa: F401
    from upath import UPath  # noqa: F401


try:
    graph.study_definitions(str(paths.raw_data_dir().resolve()))
except Exception:  # reported by the steps, which build the definitions again and meet it
    pass
try:
    import_instance_modules(os.environ.get("DAGSTER_HOME"))
except Exception:  # the step opening the instance meets it, and reports it
    pass
