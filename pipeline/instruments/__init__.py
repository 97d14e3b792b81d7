"""Facial grading instruments: what each one's items are and how it is scored.

Each instrument is one module in this package that defines ``INSTRUMENT``, an
:class:`Instrument` declaring its items (with allowed ranges) and its scores
(as DuckDB SQL over the items). The registry finds the modules by itself, so
adding an instrument means adding one module and its tests.

Scoring runs in DuckDB (:func:`score_sql`), so it scales to millions of item
rows; a missing item makes every score that uses it missing (SQL NULL
arithmetic), never a silently smaller number.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """One item as recorded by the clinician or patient."""

    name: str
    label: str
    minimum: float
    maximum: float
    integer: bool = True


@dataclass(frozen=True)
class Score:
    """A sub-score or composite.

    ``formula`` is a DuckDB SQL expression over item names and the names of
    scores declared before it.
    """

    name: str
    label: str
    formula: str
    minimum: float
    maximum: float
    higher_is_better: bool


@dataclass(frozen=True)
class Instrument:
    name: str
    label: str
    citation: str
    items: tuple[Item, ...]
    scores: tuple[Score, ...]

    @property
    def score_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scores)

    def score(self, name: str) -> Score:
        return next(s for s in self.scores if s.name == name)


def _discover() -> dict[str, Instrument]:
    registry = {}
    for module in pkgutil.iter_modules(__path__):
        instrument = getattr(importlib.import_module(f"{__name__}.{module.name}"), "INSTRUMENT", None)
        if isinstance(instrument, Instrument):
            registry[instrument.name] = instrument
    return dict(sorted(registry.items()))


REGISTRY: dict[str, Instrument] = _discover()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def score_sql(instrument: Instrument, responses: str) -> str:
    """SQL that scores one instrument from a long item-response relation.

    ``responses`` must have columns ``subject, visit, day, instrument, rater,
    item, value``. The result has one row per subject, visit, rater and score:
    ``subject, visit, day, instrument, rater, score, value`` (value NULL when
    an item the score needs is missing).
    """
    items = ",\n".join(
        f"max(value) FILTER (WHERE item = '{i.name}') AS {_ident(i.name)}" for i in instrument.items
    )
    # DuckDB lets a select-list expression use an alias defined earlier in the
    # same list, so a composite can be written in terms of its sub-scores.
    scores = ",\n".join(f"CAST(({s.formula}) AS DOUBLE) AS {_ident(s.name)}" for s in instrument.scores)
    names = ", ".join(_ident(s.name) for s in instrument.scores)
    return f"""
        SELECT subject, visit, day, '{instrument.name}' AS instrument, rater, score, value
        FROM (
            SELECT subject, visit, day, rater, {scores}
            FROM (
                SELECT subject, visit, day, rater, {items}
                FROM {responses}
                WHERE instrument = '{instrument.name}'
                GROUP BY subject, visit, day, rater
            )
        ) UNPIVOT INCLUDE NULLS (value FOR score IN ({names}))
    """


def score_study(con, study) -> None:
    """Score every instrument the study maps; replaces ``<study>.scores``.

    One row per subject, visit, instrument, rater and score; ``value`` is NULL
    when an item the score needs is missing or was quarantined.
    """
    parts = [score_sql(REGISTRY[source.instrument], f"{study.name}.item_responses")
             for source in study.instruments]
    con.execute(f"""
        CREATE OR REPLACE TABLE {study.name}.scores AS
        SELECT * FROM ({' UNION ALL '.join(parts)})
        ORDER BY subject, day, visit, instrument, rater, score
    """)
