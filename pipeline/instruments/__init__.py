"""Facial grading instruments: what each one's items are and how it is scored.

Each instrument is one module in :mod:`pipeline.instruments.scales` that defines
``INSTRUMENT``, an :class:`~pipeline.instruments.model.Instrument` (see
:mod:`pipeline.instruments.model`). The registry finds the modules by itself, so adding an
instrument means adding one module and its tests. How its scores are computed in DuckDB is
:mod:`pipeline.instruments.sql`; the warehouse step that scores a study is
:mod:`pipeline.scores`.
"""

from __future__ import annotations

import importlib
import pkgutil

from pipeline.instruments import scales
from pipeline.instruments.model import SIDES, Instrument, Item, MinimalChange, Score, Version

# The model is re-exported: a new scale module may import it from here.
__all__ = [
    "REGISTRY",
    "custom_measure",
    "SIDES",
    "Instrument",
    "Item",
    "MinimalChange",
    "Score",
    "Version",
]


def _discover() -> dict[str, Instrument]:
    registry = {}
    for module in pkgutil.iter_modules(scales.__path__):
        instrument = getattr(
            importlib.import_module(f"{scales.__name__}.{module.name}"), "INSTRUMENT", None
        )
        if isinstance(instrument, Instrument):
            registry[instrument.name] = instrument
    return dict(sorted(registry.items()))


REGISTRY: dict[str, Instrument] = _discover()


def custom_measure(
    name: str,
    label: str,
    minimum: float,
    maximum: float,
    *,
    integer: bool = False,
    higher_is_better: bool = True,
    unit: str = "",
) -> Instrument:
    """A measure a study declares in its spec (e.g. a toxin dose): one item, scored as recorded."""
    return Instrument(
        name=name,
        label=label,
        citation="Declared in the study spec.",
        items=(Item("value", label, minimum, maximum, integer=integer, unit=unit),),
        scores=(Score("value", label, "value", minimum, maximum, higher_is_better, unit=unit),),
        missing_rule="The value itself; missing when not recorded.",
    )
