"""Facial grading instruments: what each one's items are and how it is scored.

Each instrument is one module in this package that defines ``INSTRUMENT``, an
:class:`Instrument` declaring its items (allowed values, reverse scoring, face
side), its scores (DuckDB SQL over the items, range, better direction, missing-
item rule, published minimal important change), its citation, and named
scoring versions where the literature disagrees. The registry finds the modules
by itself, so adding an instrument means adding one module and its tests.

Scoring runs in DuckDB (:func:`scored_sql`, :func:`score_sql`), so it scales to
millions of item rows. Every item value is checked again at scoring time
(allowed range, whole numbers, answered once); a missing or refused item makes
every score that needs it missing, and each missing score carries a ``reason``
naming the items and values behind it: never a silently smaller number.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field

from pipeline import progress
from pipeline.warehouse import atomic

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
                    raise ValueError(f"{self.name}: score {score.name!r} declared twice for version {version!r}")
                uses = score.uses or _identifiers(score.formula, known | seen)
                unknown = set(uses) - known - seen
                if unknown:
                    raise ValueError(f"{self.name}.{score.name}: uses unknown {sorted(unknown)}")
                # DuckDB resolves a name to an input column before an earlier alias,
                # so a score named like an item cannot be used by a later score.
                if set(uses) & seen & set(names):
                    raise ValueError(f"{self.name}.{score.name}: uses a score that shares an item's name")
                self._deps[(version, score.name)] = tuple(uses)
                seen.add(score.name)

    # --- versions -------------------------------------------------------------------------
    @property
    def version_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.versions)

    def resolve_version(self, version: str | None = None) -> str:
        """The version to score with: ``version``, else the default; '' when the instrument has none."""
        if not self.versions:
            if version:
                raise KeyError(f"{self.name} has no scoring versions")
            return ""
        version = version or self.default_version
        if version not in self.version_names:
            raise KeyError(f"{self.name} has no scoring version {version!r}; known: {', '.join(self.version_names)}")
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


def _discover() -> dict[str, Instrument]:
    registry = {}
    for module in pkgutil.iter_modules(__path__):
        instrument = getattr(importlib.import_module(f"{__name__}.{module.name}"), "INSTRUMENT", None)
        if isinstance(instrument, Instrument):
            registry[instrument.name] = instrument
    return dict(sorted(registry.items()))


REGISTRY: dict[str, Instrument] = _discover()


def custom_measure(name: str, label: str, minimum: float, maximum: float, *, integer: bool = False,
                   higher_is_better: bool = True, unit: str = "") -> Instrument:
    """A measure a study declares in its spec (e.g. a toxin dose): one item, scored as recorded."""
    return Instrument(
        name=name,
        label=label,
        citation="Declared in the study spec.",
        items=(Item("value", label, minimum, maximum, integer=integer, unit=unit),),
        scores=(Score("value", label, "value", minimum, maximum, higher_is_better, unit=unit),),
        missing_rule="The value itself; missing when not recorded.",
    )


def instrument_for(study, name: str) -> Instrument:
    """The instrument a study maps under ``name``: a registry instrument or a custom measure from its spec."""
    for source in getattr(study, "instruments", ()):
        if source.instrument == name and getattr(source, "measure", None) is not None:
            return source.measure
    return REGISTRY[name]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _problem(name: str) -> str:
    return _ident(f"{name}:problem")


def scored_sql(instrument: Instrument, responses: str, version: str | None = None, *,
               quarantined: str | None = None, subjects: str | None = None, side_column: str = "") -> str:
    """SQL for one row per subject, visit, day and rater with every item, score and reason as columns.

    ``responses`` has columns ``subject, visit, day, instrument, rater, item, value``.
    ``quarantined`` (optional) has ``subject, visit, day, instrument, rater, item, raw, problem``:
    item values refused before scoring, so a score's reason can say why its item is missing.
    ``subjects`` and ``side_column`` name the relation and column holding each subject's side of
    the paralysis (``left``/``right``); needed only by instruments with per-side items.

    Columns: ``subject, visit, day, rater``, then per item ``<item>`` (scored value) and
    ``<item>:problem`` (what was wrong with it, NULL when usable) and ``<item>:value`` (the
    refused value as recorded), ``_side``, then per score
    ``<score>`` and ``<score>:reason`` (NULL when the score has a value).
    """
    version = instrument.resolve_version(version)
    name = _text(instrument.name)
    cells = f"""
        SELECT subject, visit, day, rater, item, CAST(value AS DOUBLE) AS value,
               CAST(NULL AS VARCHAR) AS raw, CAST(NULL AS VARCHAR) AS problem
        FROM {responses} WHERE instrument = {name}"""
    if quarantined:
        cells += f"""
        UNION ALL
        SELECT subject, visit, day, rater, item, NULL, raw, problem
        FROM {quarantined} WHERE instrument = {name}"""
    invalid = " ".join(
        f"WHEN {_text(i.name)} THEN value < {i.minimum!r} OR value > {i.maximum!r}"
        + (" OR value <> round(value)" if i.integer else "")
        for i in instrument.items)
    allowed = " ".join(f"WHEN {_text(i.name)} THEN {_text(i.allowed)}" for i in instrument.items)
    shown = ("coalesce(raw, CASE WHEN value = round(value) AND abs(value) < 1e15 "
             "THEN CAST(CAST(value AS BIGINT) AS VARCHAR) ELSE CAST(value AS VARCHAR) END)")
    # Each refused cell is described once, in words that name the item and the value.
    checked = f"""
        SELECT subject, visit, day, rater, item, value, {shown} AS recorded,
               CASE WHEN problem IS NOT NULL
                    THEN item || coalesce(' = ' || raw, '') || ' refused at ingest: ' || problem
                    WHEN count(*) OVER (PARTITION BY subject, visit, rater, item) > 1
                    THEN item || ' recorded more than once'
                    WHEN value IS NULL OR NOT isfinite(value)
                    THEN item || ' = ' || {shown} || ' is not a number'
                    WHEN CASE item {invalid} ELSE FALSE END
                    THEN item || ' = ' || {shown} || ' is not allowed (' || CASE item {allowed} END || ')'
               END AS problem
        FROM ({cells})"""
    wide_items = ",\n".join(
        f"max(value) FILTER (WHERE item = {_text(i.name)} AND problem IS NULL) AS {_ident(i.name)},\n"
        f"string_agg(DISTINCT problem, '; ') FILTER (WHERE item = {_text(i.name)}) AS {_problem(i.name)},\n"
        f"string_agg(DISTINCT recorded, '; ') FILTER (WHERE item = {_text(i.name)} AND problem IS NOT NULL)"
        f" AS {_ident(i.name + ':value')}"
        for i in instrument.items)
    items = f"""
        SELECT subject, visit, day, rater, {wide_items}
        FROM ({checked})
        GROUP BY subject, visit, day, rater"""
    return _scored_items_sql(instrument, items, version, subjects=subjects, side_column=side_column)


def _shown(value: str) -> str:
    """A value as the text a reason quotes: whole numbers without ".0"."""
    return (f"CASE WHEN {value} = round({value}) AND abs({value}) < 1e15 "
            f"THEN CAST(CAST({value} AS BIGINT) AS VARCHAR) ELSE CAST({value} AS VARCHAR) END")


def scored_columns_sql(instrument: Instrument, table: str, columns: dict[tuple[str, str], str],
                       version: str | None = None, *, refused: str | None = None,
                       subjects: str | None = None, side_column: str = "", flagged_only: bool = False) -> str:
    """:func:`scored_sql` for items held one column per item: the same columns, rows and reasons.

    ``table`` has one row per visit: ``line, subject, visit, day`` and the item columns
    (``<study>.item_values``, NULL = not recorded or refused); ``columns`` maps
    ``(rater, item)`` to the column holding it. ``refused`` (optional) has one row per refused
    cell: ``line, column, raw, problem``. A row is produced for each visit and rater with at
    least one of the rater's items recorded or refused, as from item responses; every value is
    checked against its item's allowed range again. Reading the columns directly is what lets
    a registry of millions of item values be scored in one pass.

    ``flagged_only``: only the rows with at least one ``<item>:problem`` (an item missing or
    refused), the rows :func:`findings_sql` reads; each is the same as without the option.
    """
    version = instrument.resolve_version(version)
    raters = list(dict.fromkeys(rater for rater, _ in columns))
    branches = []
    for rater in raters:
        selects, present, flags = [], [], []
        for i in instrument.items:
            column = columns.get((rater, i.name))
            if column is None:
                selects.append(f"CAST(NULL AS DOUBLE) AS {_ident(i.name)}, CAST(NULL AS VARCHAR) AS "
                               f"{_problem(i.name)}, CAST(NULL AS VARCHAR) AS {_ident(i.name + ':value')}")
                flags.append("TRUE")  # never recorded: "not recorded" on every row
                continue
            v = f"iv.{_ident(column)}"
            bad = f"{v} < {i.minimum!r} OR {v} > {i.maximum!r}" + (f" OR {v} <> round({v})" if i.integer else "")
            invalid = f"(NOT isfinite({v}) OR {bad})"
            if refused:
                raw, problem = (f"q.{_ident('raw:' + column)}", f"q.{_ident('problem:' + column)}")
                # The value as written only where the quarantine keeps it (a short number).
                refused_text = (f"WHEN {problem} IS NOT NULL THEN {_text(i.name)} || coalesce(' = ' || {raw}, '') "
                                f"|| ' refused at ingest: ' || {problem}")
                refused_value = f"WHEN {problem} IS NOT NULL THEN {raw}"
                present.append(f"{problem} IS NOT NULL")
                flags.append(f"{problem} IS NOT NULL")
            else:
                refused_text = refused_value = ""
            # The same words as for item responses (scored_sql), the checks in the same order.
            selects.append(
                f"CASE WHEN NOT {invalid} THEN {v} END AS {_ident(i.name)}, "
                f"CASE {refused_text} WHEN NOT isfinite({v}) THEN {_text(i.name + ' = ')} || {_shown(v)} "
                f"|| ' is not a number' WHEN {bad} THEN {_text(i.name + ' = ')} || {_shown(v)} "
                f"|| ' is not allowed (' || {_text(i.allowed)} || ')' END AS {_problem(i.name)}, "
                f"CASE {refused_value} WHEN {invalid} THEN {_shown(v)} END AS {_ident(i.name + ':value')}")
            present.append(f"{v} IS NOT NULL")
            # The item gets an <item>:problem downstream when refused, not recorded or not
            # allowed: tested on the number, as cheaper than building the words to test them.
            flags.append(f"{v} IS NULL OR {invalid}")
        if not present:
            continue
        source = f"{table} iv" + (f" LEFT JOIN ({_refused_by_line(refused, columns, rater)}) q USING (line)"
                                  if refused else "")
        where = " OR ".join(present)
        if flagged_only:
            where = f"({where}) AND ({' OR '.join(flags)})"
        branches.append(f"SELECT iv.subject, iv.visit, iv.day, {_text(rater)} AS rater, {', '.join(selects)} "
                        f"FROM {source} WHERE {where}")
    if not branches:
        raise ValueError(f"{instrument.name}: no column holds any of its items")
    return _scored_items_sql(instrument, " UNION ALL ".join(branches), version, subjects=subjects,
                             side_column=side_column)


def _refused_by_line(refused: str, columns: dict[tuple[str, str], str], rater: str) -> str:
    """One row per line with a refused cell of this rater: ``raw:<column>``, ``problem:<column>``."""
    mine = [c for (r, _), c in columns.items() if r == rater]
    pivot = ", ".join(
        f"max(raw) FILTER (WHERE \"column\" = {_text(c)}) AS {_ident('raw:' + c)}, "
        f"max(problem) FILTER (WHERE \"column\" = {_text(c)}) AS {_ident('problem:' + c)}" for c in mine)
    wanted = ", ".join(_text(c) for c in mine)
    return f'SELECT line, {pivot} FROM {refused} WHERE "column" IN ({wanted}) GROUP BY line'


def _scored_items_sql(instrument: Instrument, items: str, version: str, *, subjects: str | None,
                      side_column: str) -> str:
    """The scoring shared by both layouts: ``items`` has ``subject, visit, day, rater`` and per
    item ``<item>`` (usable value as answered), ``<item>:problem`` and ``<item>:value``."""
    item_values = ",\n".join(
        (f"{i.minimum!r} + {i.maximum!r} - {_ident(i.name)} AS {_ident(i.name)}" if i.reverse else _ident(i.name))
        + f", coalesce({_problem(i.name)}, CASE WHEN {_ident(i.name)} IS NULL THEN {_text(i.name + ' not recorded')} END)"
        f" AS {_problem(i.name)}, {_ident(i.name + ':value')}"
        for i in instrument.items)
    if instrument.sided:
        if not (subjects and side_column):
            raise ValueError(f"{instrument.name} has per-side items: scoring needs the subjects' side column")
        side = f"(SELECT lower(trim(CAST({_ident(side_column)} AS VARCHAR))) FROM {subjects} s WHERE s.subject = w.subject)"
        side_problem = (f"CASE WHEN _side IS NULL OR _side NOT IN ('left', 'right') THEN "
                        f"'side of the paralysis unknown (subjects {side_column} = ' || coalesce(_side, 'empty') || ')' END")
    else:
        side, side_problem = "CAST(NULL AS VARCHAR)", "NULL"
    derived = []
    for derived_name in instrument.derived_names:
        role, measure = derived_name.split("_", 1)  # "affected_smile_angle" -> affected, smile_angle
        first, second = (("left", "right") if role == "affected" else ("right", "left"))
        derived.append(f"CASE _side WHEN 'left' THEN {_ident(measure + '_' + first)} "
                       f"WHEN 'right' THEN {_ident(measure + '_' + second)} END AS {_ident(derived_name)}")

    # Scores are computed in layers, each over the columns of the layer below: a score's
    # layer is one above the highest of the scores it uses. Referring to a sub-score by its
    # column, rather than by a select-list alias (which DuckDB expands into the whole aliased
    # expression, again at each use), keeps the SQL of a composite small to plan.
    base = ["subject", "visit", "day", "rater",
            *(n for i in instrument.items for n in (i.name, f"{i.name}:problem", f"{i.name}:value")),
            "_side", *instrument.derived_names]
    taken = set(base)
    item_names = {i.name for i in instrument.items}
    layers: list[list[str]] = []
    level: dict[str, int] = {}
    output = []
    for score in instrument.scores_for(version):
        uses = instrument.uses(score.name, version)
        own_items = [u for u in uses if u not in instrument.derived_names and u in item_names]
        prior = [u for u in uses if u not in own_items and u not in instrument.derived_names]
        guards = [f"{_ident(p)} IS NOT NULL" for p in prior]
        guards += [f"{_ident(d)} IS NOT NULL" for d in uses if d in instrument.derived_names]
        answered = " + ".join(f"CAST({_ident(i)} IS NOT NULL AS INTEGER)" for i in own_items) or "0"
        if score.min_answered is None:
            guards += [f"{_ident(i)} IS NOT NULL" for i in own_items]
        else:
            guards.append(f"({answered}) >= {int(score.min_answered)}")
        guard = " AND ".join(guards) or "TRUE"
        value = f"CASE WHEN {guard} THEN CAST(({score.formula}) AS DOUBLE) END"
        # Division by zero gives +/-inf in DuckDB, never a score.
        value = f"CASE WHEN isfinite({value}) THEN {value} END"
        # A name is an input column before it is a score (as for a select-list alias), so a score
        # named like an input column is computed under a name of its own; nothing can use it.
        column = score.name
        while column in taken:
            column = f"_score:{column}"
        taken.add(column)
        level[score.name] = 1 + max((level[p] for p in prior if p in level), default=0)
        if level[score.name] > len(layers):
            layers.append([])
        layers[level[score.name] - 1].append(f"{value} AS {_ident(column)}")
        needed = instrument.items_needed(score.name, version)
        problems = [f"{_problem(i)}" for i in needed]
        if any(u in instrument.derived_names for u in _all_uses(instrument, score.name, version)):
            problems.append(side_problem)
        listed = f"nullif(concat_ws('; ', {', '.join(problems)}), '')" if problems else "NULL"
        if score.min_answered is not None:
            listed = (f"printf('%d of {len(own_items)} items usable, {int(score.min_answered)} needed', {answered})"
                      f" || coalesce(': ' || {listed}, '')")
        reason = f"CASE WHEN {_ident(score.name)} IS NULL THEN coalesce({listed}, {_text(score.undefined)}) END"
        output.append(f"{_ident(column)} AS {_ident(score.name)}, {reason} AS {_ident(score.name + ':reason')}")
    extra = "".join(f",\n{d}" for d in derived)
    scored = f"""
            SELECT *{extra} FROM (
                SELECT subject, visit, day, rater, {item_values}, {side} AS _side
                FROM ({items}) w
            )"""
    for layer in layers:
        scored = f"SELECT *, {', '.join(layer)} FROM ({scored})"
    return f"""
        SELECT {', '.join(_ident(b) for b in base)}, {', '.join(output)}
        FROM ({scored})
    """


def _all_uses(instrument: Instrument, score: str, version: str) -> set[str]:
    names = {s.name for s in instrument.scores_for(version)}
    found: set[str] = set()
    for used in instrument.uses(score, version):
        found.add(used)
        if used in names and used != score:
            found |= _all_uses(instrument, used, version)
    return found


def long_sql(instrument: Instrument, scored: str, version: str | None = None) -> str:
    """One row per subject, visit, rater and score from :func:`scored_sql`'s wide relation:
    ``subject, visit, day, instrument, rater, score, value, version, reason``."""
    version = instrument.resolve_version(version)
    entries = ", ".join(
        f"struct_pack(score := {_text(s.name)}, value := {_ident(s.name)}, reason := {_ident(s.name + ':reason')})"
        for s in instrument.scores_for(version))
    return f"""
        SELECT subject, visit, day, {_text(instrument.name)} AS instrument, rater, score, value,
               {_text(version)} AS version, reason
        FROM (SELECT subject, visit, day, rater, unnest([{entries}], recursive := true) FROM {scored})
    """


def findings_sql(instrument: Instrument, scored: str, study: str, version: str | None = None) -> str:
    """One row per item that is missing or refused where the instrument was (partly) recorded:
    ``study, subject, visit, day, instrument, rater, item, value, finding, scores_missing``.

    ``value`` is the recorded value (NULL when nothing was recorded); ``scores_missing``
    lists the scores that have no value because of it (empty when a missing-item rule
    let every score be computed from the remaining items).
    """
    version = instrument.resolve_version(version)
    scores = instrument.scores_for(version)
    parts = []
    for item in instrument.items:
        affected = [s.name for s in scores if item.name in instrument.items_needed(s.name, version)]
        missing = ", ".join(f"CASE WHEN {_ident(s)} IS NULL THEN {_text(s)} END" for s in affected)
        parts.append(f"""
            SELECT {_text(study)} AS study, subject, visit, day, {_text(instrument.name)} AS instrument, rater,
                   {_text(item.name)} AS item,
                   {_ident(item.name + ':value')} AS value,
                   {_problem(item.name)} AS finding,
                   {f"concat_ws(', ', {missing})" if affected else "''"} AS scores_missing
            FROM {scored} WHERE {_problem(item.name)} IS NOT NULL""")
    return " UNION ALL ".join(parts)


def score_sql(instrument: Instrument, responses: str, version: str | None = None, **kwargs) -> str:
    """SQL that scores one instrument from a long item-response relation.

    ``responses`` must have columns ``subject, visit, day, instrument, rater,
    item, value``. The result has one row per subject, visit, rater and score:
    ``subject, visit, day, instrument, rater, score, value, version, reason``
    (value NULL, with the reason, when an item the score needs is missing or
    not allowed). Keyword arguments are passed to :func:`scored_sql`.
    """
    wide = scored_sql(instrument, responses, version, **kwargs)
    return long_sql(instrument, f"({wide})", version)


def _quarantined_cells(con, study) -> str:
    """A temp view of item values refused at ingest, keyed like item responses."""
    from pipeline.ingest import item_columns

    con.register("scoring_item_columns", item_columns(study))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE scoring_quarantined AS
        SELECT v.subject, v.visit, v.day, m.instrument, m.rater, m.item, q.value AS raw, q.reason AS problem
        FROM {study.name}.quarantine q
        JOIN {study.name}.visits v ON v.line = q.line
        JOIN scoring_item_columns m ON m."column" = q."column"
        WHERE q.scope = 'value' AND q.file = {_text(study.visits_path.name)}
    """)
    con.unregister("scoring_item_columns")
    return "scoring_quarantined"


def _refused_cells(con, study) -> str:
    """A temp table of the item values refused at ingest: ``line, column, raw, problem``."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE scoring_refused AS
        SELECT line, "column", value AS raw, reason AS problem FROM {study.name}.quarantine
        WHERE scope = 'value' AND file = {_text(study.visits_path.name)}
    """)
    return "scoring_refused"


def scores_view_sql(schema: str, tables: list[tuple[Instrument, str, str]]) -> str:
    """``<study>.scores``, the long view of the per-instrument score tables: one branch per score,
    so a query naming an instrument and score reads one column of one table. Rows come in no
    particular order (sorting every read would cost more than most reads): order by subject,
    day, visit, instrument, rater and score where order matters.

    ``tables``: (instrument, scoring version, table) in spec order.
    """
    branches = [
        f"SELECT subject, visit, day, {_text(instrument.name)} AS instrument, rater, {_text(score.name)} AS score, "
        f"{_ident(score.name)} AS value, {_text(version)} AS version, {_ident(score.name + ':reason')} AS reason "
        f"FROM {table}"
        for instrument, version, table in tables for score in instrument.scores_for(version)]
    return " UNION ALL ".join(branches)


@atomic  # scores and item_findings replaced together, or neither
def score_study(con, study) -> None:
    """Score every instrument the study maps, with the scoring version its spec selects.

    Writes ``<study>.scores_<instrument>`` (one row per subject, visit and rater, one column per
    score and one ``<score>:reason`` per score, in no particular order: order by subject, day,
    visit and rater where order matters) and replaces ``<study>.scores``, the long view of
    them (one row per subject, visit, instrument, rater and score: ``subject, visit, day,
    instrument, rater, score, value, version, reason``; ``reason`` says why ``value`` is
    missing), and ``<study>.item_findings`` (one row per missing or refused item: see
    :func:`findings_sql`). Items come from ``<study>.item_values`` when ingestion wrote one
    column per item, else from ``<study>.item_responses``.
    """
    from pipeline.ingest import item_columns, relation_kind, replace_relation

    s = study.name
    by_column = relation_kind(con, f"{s}.item_values") == "TABLE"
    if by_column:
        mapping = item_columns(study)
        refused = _refused_cells(con, study)
    else:
        quarantined = _quarantined_cells(con, study)
    written: list[tuple[Instrument, str, str]] = []
    con.execute("""CREATE OR REPLACE TEMP TABLE scoring_findings (study VARCHAR, subject VARCHAR, visit VARCHAR,
                   day INTEGER, instrument VARCHAR, rater VARCHAR, item VARCHAR, value VARCHAR, finding VARCHAR,
                   scores_missing VARCHAR)""")
    for source in study.instruments:
        instrument = instrument_for(study, source.instrument)
        version = getattr(source, "version", "") or None
        side_column = getattr(source, "side_column", "")
        if instrument.sided and side_column not in study.subject_columns:
            from pipeline.study import SpecError

            raise SpecError(f"{study.spec_path}: setting 'instruments.{source.instrument}.side' must name a "
                            f"column listed in subjects.columns that holds left/right; got {side_column!r}.")
        resolved = instrument.resolve_version(version)
        table = f"{s}.scores_{source.instrument}"
        kept = ", ".join(f"{_ident(sc.name)}, {_ident(sc.name + ':reason')}" for sc in instrument.scores_for(resolved))
        replace_relation(con, table, "TABLE")
        # The score table in no particular order: it is read through the scores view, which has
        # none either, and sorting hundreds of thousands of wide rows was a tenth of the step.
        write_scores = f"CREATE OR REPLACE TABLE {table} AS SELECT subject, visit, day, rater, {kept} FROM "
        # scoring_wide holds the wide scoring (every item, problem and score column) of one
        # instrument at a time, for its item findings.
        with progress.step(f"scoring {instrument.label}"):
            if by_column:
                mine = mapping[mapping["instrument"] == source.instrument]
                columns = {(m.rater, m.item): m.column for m in mine.itertuples(index=False)}
                sql, flagged = (scored_columns_sql(instrument, f"{s}.item_values", columns, version, refused=refused,
                                                   subjects=f"{s}.subjects", side_column=side_column,
                                                   flagged_only=only) for only in (False, True))
                # Scored straight into the table, and scored again only for the visits with an item
                # missing or refused (a minority): writing every row's item columns to a temp
                # table, to read the scores back from it, cost more than the second pass. Nothing
                # in either pass depends on row order, so reasons and findings agree.
                con.execute(write_scores + f"({sql})")
                con.execute(f"CREATE OR REPLACE TEMP TABLE scoring_wide AS {flagged}")
            else:
                # From item responses a problem's text aggregates rows in no set order, so the
                # scores and the findings are both taken from one materialised scoring.
                sql = scored_sql(instrument, f"{s}.item_responses", version, quarantined=quarantined,
                                 subjects=f"{s}.subjects", side_column=side_column)
                con.execute(f"CREATE OR REPLACE TEMP TABLE scoring_wide AS {sql}")
                con.execute(write_scores + "scoring_wide")
        con.execute(f"INSERT INTO scoring_findings {findings_sql(instrument, 'scoring_wide', s, resolved)}")
        written.append((instrument, resolved, table))
    con.execute("DROP TABLE IF EXISTS scoring_wide")
    current = {t.split(".", 1)[1] for _, _, t in written}
    for (stale,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                                "AND table_catalog = current_database() AND table_type = 'BASE TABLE' "
                                "AND starts_with(table_name, 'scores_')", [s]).fetchall():
        if stale not in current:
            con.execute(f"DROP TABLE {s}.{_ident(stale)}")
    replace_relation(con, f"{s}.scores", "VIEW")
    con.execute(f"CREATE VIEW {s}.scores AS {scores_view_sql(s, written)}")
    con.execute(f"""
        CREATE OR REPLACE TABLE {s}.item_findings AS
        SELECT * FROM scoring_findings ORDER BY subject, day, visit, instrument, rater, item
    """)
    con.execute("DROP TABLE scoring_findings")
