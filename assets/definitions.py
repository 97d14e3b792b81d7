"""Entry point of the Dagster code location: one asset graph per study folder."""

from __future__ import annotations

from assets.graph import build_definitions, study_definitions
from pipeline import paths

__all__ = ["build_definitions", "defs"]

# The same object a step process forked from the fork server finds built (assets.step_server).
defs = study_definitions(str(paths.raw_data_dir().resolve()))
