"""The Dagster layer: it only wires ``pipeline/`` into an asset graph.

``definitions.py`` is the entry point (``[tool.dagster] module_name``); each
study folder under ``data/raw/`` becomes a set of assets prefixed with the
study's name (``study_assets.py``).
"""
