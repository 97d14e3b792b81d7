"""Imported once by the fork server of Dagster's multiprocess executor, before any step is forked
from it (``assets.graph.PRELOADED``): the definitions of the studies under ``OUTCOMES_RAW`` are
built here, so that every step process finds them built (``assets.graph.study_definitions``) and
so does ``assets.definitions``, which a step of a run launched from the UI imports.

A server started for another folder (a second run in the same process, with other settings)
holds definitions no step asks for: such a step builds its own. Nothing here may stop the server:
Python's fork server survives only an ImportError in what it preloads, so any error is left for
the step that meets it to report.
"""

from __future__ import annotations

from assets import graph
from pipeline import paths

try:
    graph.study_definitions(str(paths.raw_data_dir().resolve()))
except Exception:  # reported by the steps, which build the definitions again and meet it
    pass
