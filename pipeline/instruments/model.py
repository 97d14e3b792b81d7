"""What an instrument is: its items (allowed values, reverse scoring, face side), its scores
(DuckDB SQL over the items, range, better direction, missing-item rule, published minimal
important change), its citation and its named scoring versions where the literature disagrees.

One module per instrument under :mod:`pipeline.instruments.scales` declares an
:class:`Instrument` with these classes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SIDES = ("left", "right")


@dataclass(frozen=True)
class Item:
    """One item as recorded by the clinician or patient.

    ``reverse``: the answer runs the other way from the score (a negatively
    worded question); the scored value is ``minimum + maximum - answer``.
    ``side``: ``"left"`` or ``"right"`` for a per-side measurement whose name is
    ``<measure>_<side>``; scoring then offers ``affected_<measure>`` and
    ``healthy_<measure>`` from the subject's side of the paralysis.
    """

    name: str
    label: str
    minimum: float
    maximum: float
    integer: bool = True
    reverse: bool = False
    side: str = ""
    unit: str = ""

    @property
    def measure(self) -> str:
        """The measure a per-side item belongs to (its name without ``_left``/``_right``)."""
        return self.name[: -len(self.side) - 1] if self.side else self.name

    @property
    def allowed(self) -> str:
        kind = "whole number" if self.integer else "number"
        unit = f" {self.unit}" if self.unit else ""
        return f"{kind} {self.minimum:g} to {self.maximum:g}{unit}"


@dataclass(frozen=True)
class MinimalChange:
    """Published interpretability thresholds for a score, on that score's own scale."""

    source: str
    mic_improvement: float | None = None
    mic_deterioration: float | None = None
    sdc_individual: float | None = None
    sdc_group: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Score:
    """A sub-score or composite.

    ``formula`` is a DuckDB SQL expression over item names (scored values,
    reverse items already reversed), ``affected_<measure>``/``healthy_<measure>``
    for per-side items, and the names of scores declared before it.

    Missing-item rule: with ``min_answered`` None every item the score needs
    (directly or through the scores it uses) must be usable. With
    ``min_answered = k`` the score is computed when at least k of its own items
    are usable, and the formula must handle the missing ones (e.g. by
    proration or by dividing by the number answered).

    ``uses`` lists what the formula reads; left empty it is read off the
    formula. ``versions``: the scoring versions this definition belongs to
    (empty = every version).
    """

    name: str
    label: str
    formula: str
    minimum: float
    maximum: float
    higher_is_better: bool
    min_answered: int | None = None
    uses: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    unit: str = ""
    minimal_change: MinimalChange | None = None
    undefined: str = "the formula gives no value for these answers"


@dataclass(frozen=True)
class Version:
    """A named way of scoring where published definitions disagree."""

    name: str
    label: str
    description: str


@dataclass(frozen=True)
class Instrument:
    name: str
    label: str
    citation: str
    items: tuple[Item, ...]
    scores: tuple[Score, ...]
    versions: tuple[Version, ...] = ()
    default_version: str = ""
    missing_rule: str = "Every item a score needs must be answered; no proration."
    sources: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    _deps: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = [i.name for i in self.items]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: item names must be unique")
        if self.versions and self.default_version not in self.version_names:
            raise ValueError(f"{self.name}: default_version must be one of {self.version_names}")
        for version in self.version_names or ("",):
            known = set(names) | set(self.derived_names)
            seen: set[str] = set()
            for score in self.scores_for(version or None):
                if score.name in seen:
                    raise ValueError(
                        f"{self.name}: score {score.name!r} declared twice for version {version!r}"
                    )
                uses = score.uses or _identifiers(score.formula, known | seen)
                unknown = set(uses) - known - seen
                if unknown:
                    raise ValueError(f"{self.name}.{score.name}: uses unknown {sorted(unknown)}")
                # DuckDB resolves a name to an input column before an earlier alias,
                # so a score named like an item cannot be used by a later score.
                if set(uses) & seen & set(names):
                    raise ValueError(
                        f"{self.name}.{score.name}: uses a score that shares an item's name"
                    )
                self._deps[(version, score.name)] = tuple(uses)
                seen.add(score.name)

    # --- versions -------------------------------------------------------------------------
    @property
    def version_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.versions)

    def resolve_version(self, version: str | None = None) -> str:
        """The version to score with: ``version``, else the default; '' when the instrument has
        none."""
        if not self.versions:
            if version:
                raise KeyError(f"{self.name} has no scoring versions")
            return ""
        version = version or self.default_version
        if version not in self.version_names:
            raise KeyError(
                f"{self.name} has no scoring version {version!r}; known: "
                f"{', '.join(self.version_names)}"
            )
        return version

    def version(self, name: str | None = None) -> Version | None:
        resolved = self.resolve_version(name)
        return next((v for v in self.versions if v.name == resolved), None)

    def scores_for(self, version: str | None = None) -> tuple[Score, ...]:
        resolved = self.resolve_version(version)
        return tuple(s for s in self.scores if not s.versions or resolved in s.versions)

    # --- lookup ---------------------------------------------------------------------------
    @property
    def score_names(self) -> tuple[str, ...]:
        """Every score name in any version, in declaration order."""
        return tuple(dict.fromkeys(s.name for s in self.scores))

    def score(self, name: str, version: str | None = None) -> Score:
        return next(s for s in self.scores_for(version) if s.name == name)

    def item(self, name: str) -> Item:
        return next(i for i in self.items if i.name == name)

    @property
    def sided(self) -> bool:
        return any(i.side for i in self.items)

    @property
    def derived_names(self) -> tuple[str, ...]:
        """``affected_<measure>`` and ``healthy_<measure>`` for every per-side measure."""
        measures = dict.fromkeys(i.measure for i in self.items if i.side)
        return tuple(f"{role}_{m}" for m in measures for role in ("affected", "healthy"))

    def uses(self, score: str, version: str | None = None) -> tuple[str, ...]:
        """What a score's formula reads directly (items, per-side names, earlier scores)."""
        return self._deps[(self.resolve_version(version), score)]

    def items_needed(self, score: str, version: str | None = None) -> tuple[str, ...]:
        """Every item a score depends on, directly or through earlier scores, in item order."""
        version = self.resolve_version(version)
        scores = {s.name for s in self.scores_for(version)}
        found: set[str] = set()

        def walk(name: str) -> None:
            for used in self._deps[(version, name)]:
                if used in scores and used != name:
                    walk(used)
                elif used in self.derived_names:
                    measure = used.split("_", 1)[1]
                    found.update(f"{measure}_{side}" for side in SIDES)
                else:
                    found.add(used)

        walk(score)
        return tuple(i.name for i in self.items if i.name in found)


def _identifiers(formula: str, known: set[str]) -> tuple[str, ...]:
    # Strip quoted string literals, then keep the words and "quoted" identifiers
    # (items named by number, e.g. "1") that name items or scores.
    words = re.findall(r'"([^"]+)"|([A-Za-z_][A-Za-z0-9_]*)', re.sub(r"'[^']*'", "", formula))
    return tuple(dict.fromkeys(w for pair in words for w in pair if w in known))
