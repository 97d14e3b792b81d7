"""An instrument's scores as DuckDB SQL over its items.

Scoring runs in DuckDB (:func:`scored_sql`, :func:`score_sql`), so it scales to millions of
item rows. Every item value is checked again at scoring time (allowed range, whole numbers,
answered once); a missing or refused item makes every score that needs it missing, and each
missing score carries a ``reason`` naming the items and values behind it: never a silently
smaller number.
"""

from __future__ import annotations

from pipeline.instruments.model import Instrument
from pipeline.sql import literal, quote


def _problem(name: str) -> str:
    return quote(f"{name}:problem")


def scored_sql(
    instrument: Instrument,
    responses: str,
    version: str | None = None,
    *,
    quarantined: str | None = None,
    subjects: str | None = None,
    side_column: str = "",
) -> str:
    """SQL for one row per subject, visit, day and rater with every item, score and reason as
    columns.

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
    name = literal(instrument.name)
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
        f"WHEN {literal(i.name)} THEN value < {i.minimum!r} OR value > {i.maximum!r}"
        + (" OR value <> round(value)" if i.integer else "")
        for i in instrument.items
    )
    allowed = " ".join(
        f"WHEN {literal(i.name)} THEN {literal(i.allowed)}" for i in instrument.items
    )
    shown = (
        "coalesce(raw, CASE WHEN value = round(value) AND abs(value) < 1e15 "
        "THEN CAST(CAST(value AS BIGINT) AS VARCHAR) ELSE CAST(value AS VARCHAR) END)"
    )
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
                    THEN item || ' = ' || {shown} || ' is not allowed (' || CASE item {allowed} END
                    || ')'
               END AS problem
        FROM ({cells})"""
    wide_items = ",\n".join(
        f"max(value) FILTER (WHERE item = {literal(i.name)} AND problem IS NULL) AS "
        f"{quote(i.name)},\n"
        f"string_agg(DISTINCT problem, '; ') FILTER (WHERE item = {literal(i.name)}) AS "
        f"{_problem(i.name)},\n"
        f"string_agg(DISTINCT recorded, '; ') FILTER (WHERE item = {literal(i.name)} AND problem "
        "IS NOT NULL)"
        f" AS {quote(i.name + ':value')}"
        for i in instrument.items
    )
    items = f"""
        SELECT subject, visit, day, rater, {wide_items}
        FROM ({checked})
        GROUP BY subject, visit, day, rater"""
    return _scored_items_sql(instrument, items, version, subjects=subjects, side_column=side_column)


def _shown(value: str) -> str:
    """A value as the text a reason quotes: whole numbers without ".0"."""
    return (
        f"CASE WHEN {value} = round({value}) AND abs({value}) < 1e15 "
        f"THEN CAST(CAST({value} AS BIGINT) AS VARCHAR) ELSE CAST({value} AS VARCHAR) END"
    )


def scored_columns_sql(
    instrument: Instrument,
    table: str,
    columns: dict[tuple[str, str], str],
    version: str | None = None,
    *,
    refused: str | None = None,
    subjects: str | None = None,
    side_column: str = "",
    flagged_only: bool = False,
) -> str:
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
                selects.append(
                    f"CAST(NULL AS DOUBLE) AS {quote(i.name)}, CAST(NULL AS VARCHAR) AS "
                    f"{_problem(i.name)}, CAST(NULL AS VARCHAR) AS {quote(i.name + ':value')}"
                )
                flags.append("TRUE")  # never recorded: "not recorded" on every row
                continue
            v = f"iv.{quote(column)}"
            bad = f"{v} < {i.minimum!r} OR {v} > {i.maximum!r}" + (
                f" OR {v} <> round({v})" if i.integer else ""
            )
            invalid = f"(NOT isfinite({v}) OR {bad})"
            if refused:
                raw, problem = (f"q.{quote('raw:' + column)}", f"q.{quote('problem:' + column)}")
                # The value as written only where the quarantine keeps it (a short number).
                refused_text = (
                    f"WHEN {problem} IS NOT NULL THEN {literal(i.name)} || coalesce(' = ' || "
                    f"{raw}, '') "
                    f"|| ' refused at ingest: ' || {problem}"
                )
                refused_value = f"WHEN {problem} IS NOT NULL THEN {raw}"
                present.append(f"{problem} IS NOT NULL")
                flags.append(f"{problem} IS NOT NULL")
            else:
                refused_text = refused_value = ""
            # The same words as for item responses (scored_sql), the checks in the same order.
            selects.append(
                f"CASE WHEN NOT {invalid} THEN {v} END AS {quote(i.name)}, "
                f"CASE {refused_text} WHEN NOT isfinite({v}) THEN {literal(i.name + ' = ')} || "
                f"{_shown(v)} "
                f"|| ' is not a number' WHEN {bad} THEN {literal(i.name + ' = ')} || {_shown(v)} "
                f"|| ' is not allowed (' || {literal(i.allowed)} || ')' END AS {_problem(i.name)}, "
                f"CASE {refused_value} WHEN {invalid} THEN {_shown(v)} END AS "
                f"{quote(i.name + ':value')}"
            )
            present.append(f"{v} IS NOT NULL")
            # The item gets an <item>:problem downstream when refused, not recorded or not
            # allowed: tested on the number, as cheaper than building the words to test them.
            flags.append(f"{v} IS NULL OR {invalid}")
        if not present:
            continue
        source = f"{table} iv" + (
            f" LEFT JOIN ({_refused_by_line(refused, columns, rater)}) q USING (line)"
            if refused
            else ""
        )
        where = " OR ".join(present)
        if flagged_only:
            where = f"({where}) AND ({' OR '.join(flags)})"
        branches.append(
            f"SELECT iv.subject, iv.visit, iv.day, {literal(rater)} AS rater, {', '.join(selects)} "
            f"FROM {source} WHERE {where}"
        )
    if not branches:
        raise ValueError(f"{instrument.name}: no column holds any of its items")
    return _scored_items_sql(
        instrument,
        " UNION ALL ".join(branches),
        version,
        subjects=subjects,
        side_column=side_column,
    )


def _refused_by_line(refused: str, columns: dict[tuple[str, str], str], rater: str) -> str:
    """One row per line with a refused cell of this rater: ``raw:<column>``,
    ``problem:<column>``."""
    mine = [c for (r, _), c in columns.items() if r == rater]
    pivot = ", ".join(
        f'max(raw) FILTER (WHERE "column" = {literal(c)}) AS {quote("raw:" + c)}, '
        f'max(problem) FILTER (WHERE "column" = {literal(c)}) AS {quote("problem:" + c)}'
        for c in mine
    )
    wanted = ", ".join(literal(c) for c in mine)
    return f'SELECT line, {pivot} FROM {refused} WHERE "column" IN ({wanted}) GROUP BY line'


def _scored_items_sql(
    instrument: Instrument, items: str, version: str, *, subjects: str | None, side_column: str
) -> str:
    """The scoring shared by both layouts: ``items`` has ``subject, visit, day, rater`` and per
    item ``<item>`` (usable value as answered), ``<item>:problem`` and ``<item>:value``."""
    item_values = ",\n".join(
        (
            f"{i.minimum!r} + {i.maximum!r} - {quote(i.name)} AS {quote(i.name)}"
            if i.reverse
            else quote(i.name)
        )
        + f", coalesce({_problem(i.name)}, CASE WHEN {quote(i.name)} IS NULL THEN "
        f"{literal(i.name + ' not recorded')} END)"
        f" AS {_problem(i.name)}, {quote(i.name + ':value')}"
        for i in instrument.items
    )
    if instrument.sided:
        if not (subjects and side_column):
            raise ValueError(
                f"{instrument.name} has per-side items: scoring needs the subjects' side column"
            )
        side = (
            f"(SELECT lower(trim(CAST({quote(side_column)} AS VARCHAR))) "
            f"FROM {subjects} s WHERE s.subject = w.subject)"
        )
        side_problem = (
            f"CASE WHEN _side IS NULL OR _side NOT IN ('left', 'right') THEN "
            f"'side of the paralysis unknown (subjects {side_column} = ' || coalesce(_side, "
            "'empty') || ')' END"
        )
    else:
        side, side_problem = "CAST(NULL AS VARCHAR)", "NULL"
    derived = []
    for derived_name in instrument.derived_names:
        role, measure = derived_name.split(
            "_", 1
        )  # "affected_smile_angle" -> affected, smile_angle
        first, second = ("left", "right") if role == "affected" else ("right", "left")
        derived.append(
            f"CASE _side WHEN 'left' THEN {quote(measure + '_' + first)} "
            f"WHEN 'right' THEN {quote(measure + '_' + second)} END AS {quote(derived_name)}"
        )

    # Scores are computed in layers, each over the columns of the layer below: a score's
    # layer is one above the highest of the scores it uses. Referring to a sub-score by its
    # column, rather than by a select-list alias (which DuckDB expands into the whole aliased
    # expression, again at each use), keeps the SQL of a composite small to plan.
    base = [
        "subject",
        "visit",
        "day",
        "rater",
        *(n for i in instrument.items for n in (i.name, f"{i.name}:problem", f"{i.name}:value")),
        "_side",
        *instrument.derived_names,
    ]
    taken = set(base)
    item_names = {i.name for i in instrument.items}
    layers: list[list[str]] = []
    level: dict[str, int] = {}
    output = []
    for score in instrument.scores_for(version):
        uses = instrument.uses(score.name, version)
        own_items = [u for u in uses if u not in instrument.derived_names and u in item_names]
        prior = [u for u in uses if u not in own_items and u not in instrument.derived_names]
        guards = [f"{quote(p)} IS NOT NULL" for p in prior]
        guards += [f"{quote(d)} IS NOT NULL" for d in uses if d in instrument.derived_names]
        answered = " + ".join(f"CAST({quote(i)} IS NOT NULL AS INTEGER)" for i in own_items) or "0"
        if score.min_answered is None:
            guards += [f"{quote(i)} IS NOT NULL" for i in own_items]
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
        layers[level[score.name] - 1].append(f"{value} AS {quote(column)}")
        needed = instrument.items_needed(score.name, version)
        problems = [f"{_problem(i)}" for i in needed]
        if any(u in instrument.derived_names for u in _all_uses(instrument, score.name, version)):
            problems.append(side_problem)
        listed = f"nullif(concat_ws('; ', {', '.join(problems)}), '')" if problems else "NULL"
        if score.min_answered is not None:
            listed = (
                f"printf('%d of {len(own_items)} items usable, {int(score.min_answered)} needed', "
                f"{answered})"
                f" || coalesce(': ' || {listed}, '')"
            )
        reason = (
            f"CASE WHEN {quote(score.name)} IS NULL "
            f"THEN coalesce({listed}, {literal(score.undefined)}) END"
        )
        output.append(
            f"{quote(column)} AS {quote(score.name)}, {reason} AS {quote(score.name + ':reason')}"
        )
    extra = "".join(f",\n{d}" for d in derived)
    scored = f"""
            SELECT *{extra} FROM (
                SELECT subject, visit, day, rater, {item_values}, {side} AS _side
                FROM ({items}) w
            )"""
    for layer in layers:
        scored = f"SELECT *, {', '.join(layer)} FROM ({scored})"
    return f"""
        SELECT {", ".join(quote(b) for b in base)}, {", ".join(output)}
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
        f"struct_pack(score := {literal(s.name)}, value := {quote(s.name)}, reason := "
        f"{quote(s.name + ':reason')})"
        for s in instrument.scores_for(version)
    )
    return f"""
        SELECT subject, visit, day, {literal(instrument.name)} AS instrument, rater, score, value,
               {literal(version)} AS version, reason
        FROM (SELECT subject, visit, day, rater, unnest([{entries}], recursive := true) FROM
        {scored})
    """


def findings_sql(
    instrument: Instrument, scored: str, study: str, version: str | None = None
) -> str:
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
        missing = ", ".join(f"CASE WHEN {quote(s)} IS NULL THEN {literal(s)} END" for s in affected)
        parts.append(f"""
            SELECT {literal(study)} AS study, subject, visit, day, {literal(instrument.name)} AS
            instrument, rater,
                   {literal(item.name)} AS item,
                   {quote(item.name + ":value")} AS value,
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


def scores_view_sql(schema: str, tables: list[tuple[Instrument, str, str]]) -> str:
    """``<study>.scores``, the long view of the per-instrument score tables: one branch per score,
    so a query naming an instrument and score reads one column of one table. Rows come in no
    particular order (sorting every read would cost more than most reads): order by subject,
    day, visit, instrument, rater and score where order matters.

    ``tables``: (instrument, scoring version, table) in spec order.
    """
    branches = [
        f"SELECT subject, visit, day, {literal(instrument.name)} AS instrument, rater, "
        f"{literal(score.name)} AS score, "
        f"{quote(score.name)} AS value, {literal(version)} AS version, "
        f"{quote(score.name + ':reason')} AS reason "
        f"FROM {table}"
        for instrument, version, table in tables
        for score in instrument.scores_for(version)
    ]
    return " UNION ALL ".join(branches)
