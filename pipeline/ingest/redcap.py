"""REDCap projects: the flat records export and its data dictionary.

The records export has one row per record, event, repeating instrument and
instance: the first field (``record_id`` or another), ``redcap_event_name``
(longitudinal projects), ``redcap_repeat_instrument`` and
``redcap_repeat_instance`` (repeating instruments), then one column per field,
and one column per checkbox choice, ``<field>___<code>``.

The data dictionary (Project Setup > Data Dictionary > Download) says what
each field is: its form, type, choices (``code, label | code, label``),
validation (dates), range and whether it is an identifier (``Identifier? = y``).
This module reads the dictionary, tells the de-identification guard which
columns are identifiers, dates or free text, converts a labels export back to
raw codes, and drafts a study spec from a dictionary.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from pipeline.ingest.readers import RawTable, drop_temp
from pipeline.sql import literal, quote

if TYPE_CHECKING:
    from pipeline.instruments.model import Instrument, Item

# Column headers of the dictionary; older REDCap versions write "Variable/Field Name".
FIELD = ("Variable / Field Name", "Variable/Field Name")
FORM, TYPE, LABEL = "Form Name", "Field Type", "Field Label"
CHOICES = "Choices, Calculations, OR Slider Labels"
VALIDATION = "Text Validation Type OR Show Slider Number"
MINIMUM, MAXIMUM, IDENTIFIER = "Text Validation Min", "Text Validation Max", "Identifier?"

EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
)
CHOICE_TYPES = ("dropdown", "radio", "checkbox", "yesno", "truefalse")
# Fields that hold no data in the export.
NO_DATA_TYPES = ("descriptive",)


class RedcapError(ValueError):
    """A REDCap dictionary or export that cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class Field:
    name: str
    form: str
    type: str
    label: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (code, label)
    validation: str = ""
    minimum: str = ""
    maximum: str = ""
    identifier: bool = False

    @property
    def is_date(self) -> bool:
        return self.validation.startswith(("date", "datetime"))

    @property
    def is_free_text(self) -> bool:
        return self.type == "notes" or (self.type == "text" and not self.validation)


def split_checkbox(column: str) -> tuple[str, str] | None:
    """``field___code`` -> (field, code), split on the last ``___``; None for other columns.

    REDCap writes a code's non-alphanumeric characters as ``_``, so code -99 of
    ``pain`` is the column ``pain____99`` (four underscores): field ``pain``, code ``_99``.
    """
    if "___" not in column:
        return None
    field, _, code = column.rpartition("___")
    return (field, code) if field and code else None


@dataclass(frozen=True)
class Dictionary:
    path: Path
    fields: dict[str, Field]

    @property
    def forms(self) -> list[str]:
        return list(dict.fromkeys(f.form for f in self.fields.values()))

    @property
    def first_field(self) -> str:
        return next(iter(self.fields))

    def field_for(self, column: str) -> Field | None:
        """The dictionary field behind an export column (checkbox choices included)."""
        if column in self.fields:
            return self.fields[column]
        split = split_checkbox(column)
        if split and split[0] in self.fields and self.fields[split[0]].type == "checkbox":
            return self.fields[split[0]]
        # pain____99: the last "___" leaves the field with a trailing "_"; REDCap's code was "-99".
        if (
            split
            and split[0].rstrip("_") in self.fields
            and self.fields[split[0].rstrip("_")].type == "checkbox"
        ):
            return self.fields[split[0].rstrip("_")]
        return None

    def identifier_columns(self, columns: tuple[str, ...]) -> dict[str, str]:
        out = {}
        for column in columns:
            field = self.field_for(column)
            if field and field.identifier:
                out[column] = "marked 'Identifier? = y' in the REDCap data dictionary"
        return out

    def date_columns(self, columns: tuple[str, ...]) -> frozenset[str]:
        forms = {f"{form}_timestamp" for form in self.forms}  # survey completion time stamps
        return frozenset(
            c for c in columns if c in forms or ((f := self.field_for(c)) is not None and f.is_date)
        )

    def free_text_columns(self, columns: tuple[str, ...]) -> frozenset[str]:
        return frozenset(
            c for c in columns if (f := self.field_for(c)) is not None and f.is_free_text
        )


def _choices(text: str) -> tuple[tuple[str, str], ...]:
    out = []
    for part in text.split("|"):
        code, sep, label = part.partition(",")
        if sep and code.strip():
            out.append((code.strip(), label.strip()))
    return tuple(out)


def read_dictionary(path: Path) -> Dictionary:
    """Read a REDCap data dictionary CSV; raise :class:`RedcapError` naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise RedcapError(
            f"{path}: data dictionary not found. Download it from REDCap "
            "(Project Setup > Data Dictionary) and put it beside the export."
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    try:
        # A dictionary has one row per field: small. newline="" so a lone carriage return ends a
        # line.
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        header = (
            list(rows[0].keys()) if rows else next(csv.reader(io.StringIO(text, newline="")), [])
        )
    except csv.Error as err:
        raise RedcapError(
            f"{path}: cannot be read as a CSV data dictionary ({err}). Download it again from "
            "Project Setup > Data Dictionary."
        ) from None
    name_column = next((h for h in FIELD if h in header), None)
    missing = [h for h in (FORM, TYPE) if h not in header]
    if name_column is None or missing:
        raise RedcapError(
            f"{path}: not a REDCap data dictionary: the header lacks "
            f"{', '.join(([FIELD[0]] if name_column is None else []) + missing)}. "
            "Download it again from Project Setup > Data Dictionary."
        )
    fields: dict[str, Field] = {}
    for line, row in enumerate(rows, start=2):
        name = (row.get(name_column) or "").strip()
        if not name:
            continue
        if name in fields:
            raise RedcapError(f"{path}: line {line}: field {name!r} is listed twice.")
        ftype = (row.get(TYPE) or "").strip().lower()
        fields[name] = Field(
            name=name,
            form=(row.get(FORM) or "").strip(),
            type=ftype,
            label=(row.get(LABEL) or "").strip(),
            choices=_choices(row.get(CHOICES) or "")
            if ftype in ("dropdown", "radio", "checkbox")
            else (("1", "Yes"), ("0", "No"))
            if ftype == "yesno"
            else (("1", "True"), ("0", "False"))
            if ftype == "truefalse"
            else (),
            validation=(row.get(VALIDATION) or "").strip().lower(),
            minimum=(row.get(MINIMUM) or "").strip(),
            maximum=(row.get(MAXIMUM) or "").strip(),
            identifier=(row.get(IDENTIFIER) or "").strip().lower() in ("y", "yes"),
        )
    if not fields:
        raise RedcapError(f"{path}: the data dictionary lists no fields.")
    return Dictionary(path, fields)


def to_codes(con: duckdb.DuckDBPyConnection, raw: RawTable, dictionary: Dictionary) -> None:
    """Rewrite ``raw.table`` in place so a labels export holds raw codes, as a raw export does.

    A value that is already one of the field's codes is kept; a value equal to one of its
    labels becomes that label's code; a checkbox column's "Checked"/"Unchecked" becomes 1/0.
    Anything else is kept as it is, so ingestion can quarantine it as unparseable.
    """
    selects = []
    changed = False
    for column in raw.columns:
        field = dictionary.field_for(column)
        q = quote(column)
        if field is None or field.type not in CHOICE_TYPES:
            selects.append(q)
            continue
        changed = True
        if field.type == "checkbox" and column != field.name:
            selects.append(
                f"CASE lower(trim({q})) WHEN 'checked' THEN '1' WHEN 'unchecked' THEN '0' "
                f"ELSE {q} END AS {q}"
            )
            continue
        codes = ", ".join(literal(code) for code, _ in field.choices) or "NULL"
        labels = " ".join(
            f"WHEN {literal(label)} THEN {literal(code)}" for code, label in field.choices
        )
        selects.append(
            f"CASE WHEN trim({q}) IN ({codes}) THEN trim({q}) "
            + (
                f"ELSE CASE trim({q}) {labels} ELSE {q} END END AS {q}"
                if labels
                else f"ELSE {q} END AS {q}"
            )
        )
    if changed:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {raw.table}_codes AS SELECT _line, {', '.join(selects)} "
            f"FROM {raw.table} ORDER BY _line"
        )
        drop_temp(con, raw.table)
        con.execute(f"ALTER TABLE {raw.table}_codes RENAME TO {raw.table}")


def _plain(text: str) -> str:
    """A dictionary label as plain text: REDCap labels may hold HTML (``<b>Sex</b>``) and line
    breaks, which a table cell must not show."""
    return " ".join(re.sub(r"<[^>]*>", " ", text).split())


def reader_labels(
    dictionary: Dictionary, columns: tuple[str, ...]
) -> tuple[dict[str, str], dict[str, tuple[tuple[str, str], ...]]]:
    """What the dictionary says a reader should see for these subjects columns.

    Returns ``(labels, levels)``: ``labels`` maps a single-choice field (dropdown, radio, yes/no,
    true/false) to its field label and a checkbox choice column (``prior_treatment___1``) to
    ``<field label>: <choice label>``; ``levels`` maps a single-choice field to its (code,
    choice label) pairs, in the dictionary's order. Fields of other types are left out: their
    labels are often entry instructions ("Age at surgery (years; 90 or older as 90+)"), not
    names. A blank label is left out too, so the column keeps its readable name.
    """
    labels: dict[str, str] = {}
    levels: dict[str, tuple[tuple[str, str], ...]] = {}
    for column in columns:
        field = dictionary.field_for(column)
        if field is None:
            continue
        name = _plain(field.label)
        if field.type == "checkbox" and column != field.name:
            # The column of choice c is <field>___<c>, REDCap writing each character of c that is
            # not a letter or digit as "_" (pain____99 is the choice -99), in lower case.
            choice = next(
                (
                    _plain(label)
                    for c, label in field.choices
                    if f"{field.name}___{re.sub(r'[^0-9A-Za-z]', '_', c)}".lower() == column.lower()
                ),
                "",
            )
            if name and choice:
                labels[column] = f"{name}: {choice}"
        elif field.type in SINGLE_CHOICE_TYPES and field.name == column:
            if name:
                labels[column] = name
            choices = tuple((code, _plain(label) or code) for code, label in field.choices)
            if choices:
                levels[column] = choices
    return labels, levels


def events_in(con: duckdb.DuckDBPyConnection, raw: RawTable) -> list[str]:
    if EVENT not in raw.columns:
        return []
    return [
        r[0]
        for r in con.execute(
            f"SELECT {quote(EVENT)} FROM {raw.table} WHERE {quote(EVENT)} IS NOT NULL "
            f"GROUP BY {quote(EVENT)} ORDER BY min(_line)"
        ).fetchall()
    ]


def _toml(text: str) -> str:
    """``text`` as a TOML basic string, whatever characters a field name holds."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _comment(text: str) -> str:
    """``text`` for a TOML comment: control characters (a line break would end it) escaped."""
    return _toml(text)[1:-1]


def _template(prefix: str) -> str:
    """A column template's fixed part: braces doubled so they stay literal."""
    return prefix.replace("{", "{{").replace("}", "}}")


# Field types whose exported value is one choice code.
SINGLE_CHOICE_TYPES = ("dropdown", "radio", "yesno", "truefalse")
# The day field's name: "days_from_surgery", "postop_day", "day_rel" ...
DAY_NAME = re.compile(r"(^|_)days?(_|$)")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _number_validation(field: Field) -> bool:
    """A text field REDCap accepts numbers only in (integer, number, number_1dp,
    number_comma_decimal, ...)."""
    return field.type == "text" and (
        field.validation == "integer" or field.validation.startswith("number")
    )


def _codes_or_numbers(field: Field) -> bool:
    """Whether every value the export can hold for ``field`` is a choice code or a number."""
    return (
        field.type in SINGLE_CHOICE_TYPES
        or field.type in ("slider", "calc")
        or _number_validation(field)
    )


def _never_drafted(field: Field) -> str:
    """Why no drafted line may read ``field`` ('' when one may): REDCap marks it as an identifier, a
    date
    or free text (notes). The analysis needs none of these (visits are placed by days, not dates)
    and
    each may identify a patient, so a draft must not put one in front of the coordinator as a
    mapping."""
    if field.identifier:
        return "marked as an identifier"
    if field.is_date:
        return "a date"
    if field.type == "notes":
        return "free text (notes)"
    return ""


def _item_evidence(field: Field | None, item: Item) -> tuple[str, str]:
    """What the dictionary says about ``field`` holding ``item``: (why it cannot, what it leaves
    unconfirmed).

    ('', '') when the dictionary confirms it: a number field whose choice codes, validation range or
    slider range span exactly the item's minimum to maximum.
    """
    if field is None:
        return "missing", ""
    never = _never_drafted(field)
    if never:
        return never, ""
    if field.type == "text" and not field.validation:
        return "", "text without validation"
    if field.type == "calc":
        return "", "a calculated field, whose range the dictionary does not declare"
    if field.type in SINGLE_CHOICE_TYPES:
        codes = [_number(code) for code, _ in field.choices]
        if not codes or None in codes:
            return "choice codes that are not numbers", ""
        if item.integer and any(code != int(code) for code in codes):
            return "choice codes that are not whole numbers", ""
        low, high, what = min(codes), max(codes), "choices"
    elif field.type == "slider":
        # REDCap sliders run 0 to 100 unless the dictionary gives another minimum or maximum.
        low, high, what = _number(field.minimum), _number(field.maximum), "slider"
        low, high = 0.0 if low is None else low, 100.0 if high is None else high
    elif _number_validation(field):
        low, high, what = _number(field.minimum), _number(field.maximum), "validation"
        if (low is not None and low < item.minimum) or (high is not None and high > item.maximum):
            return f"validation allowing values outside {item.minimum:g} to {item.maximum:g}", ""
        if low is None or high is None:
            return "", "a number field without a validation minimum and maximum"
    else:
        kind = f"{field.type} field" + (
            f" validated as {field.validation}" if field.validation else ""
        )
        return f"a {kind}, not a number", ""
    if low < item.minimum or high > item.maximum:
        return f"{what} outside {item.minimum:g} to {item.maximum:g}", ""
    if (low, high) != (item.minimum, item.maximum):
        return "", f"{what} spanning {low:g} to {high:g} only"
    return "", ""


@dataclass(frozen=True)
class _Candidate:
    """One column template, ``<prefix>{item}``, whose fields may hold an instrument's items."""

    instrument: str
    prefix: str
    unconfirmed: tuple[
        tuple[str, str, str], ...
    ]  # (field, what is unconfirmed, what the item allows)

    @property
    def confirmed(self) -> bool:
        return not self.unconfirmed


def _candidates(dictionary: Dictionary, instrument: Instrument) -> list[_Candidate]:
    """Every template under which all of ``instrument``'s items are fields that may hold them, by
    prefix.

    A template is ruled out when any item is missing, or its field is an identifier, a date, free
    text (notes), not a number, or allows a value outside the item's range. Items numbered 1..n are
    also ruled out when ``<prefix><n+1>`` is a field too: the fields are a longer questionnaire
    (FaCE's 15 items hold SAQ's nine names and ranges).
    """
    fields = dictionary.fields
    first = instrument.items[0].name
    found = []
    for name in sorted(fields):
        if not name.endswith(first):
            continue
        prefix = name[: len(name) - len(first)]
        unconfirmed = []
        for item in instrument.items:
            column = prefix + item.name
            ruled_out, unsure = _item_evidence(fields.get(column), item)
            if ruled_out:
                break
            if unsure:
                unconfirmed.append((column, unsure, item.allowed))
        else:
            names = [item.name for item in instrument.items]
            if (
                names == [str(k) for k in range(1, len(names) + 1)]
                and prefix + str(len(names) + 1) in fields
            ):
                continue
            found.append(_Candidate(instrument.name, prefix, tuple(unconfirmed)))
    return found


def _unconfirmed_lines(candidate: _Candidate) -> list[str]:
    """The fields the dictionary does not confirm, grouped by what is unconfirmed, as comment
    lines."""
    groups: dict[tuple[str, str], list[str]] = {}
    for column, unsure, allowed in candidate.unconfirmed:
        groups.setdefault((unsure, allowed), []).append(column)
    return [
        f"#   {_comment(', '.join(columns))}: {unsure}; must hold a {allowed}"
        for (unsure, allowed), columns in groups.items()
    ]


def _day_field(dictionary: Dictionary) -> tuple[Field | None, str]:
    """The field drafted as ``[visits] day``: (field, '') when the dictionary confirms it,
    (field, what to check) when it only suggests it, (None, '') when nothing fits.

    Only a field named for days (``days_from_surgery``, ``postop_day``) on a form other than the
    first
    (the first holds the subject's characteristics, such as days from onset to surgery) is
    considered,
    and never one marked as an identifier, a date or free text. It is confirmed when it holds
    numbers
    (number validation or a calculation such as REDCap's ``datediff``) and may be negative, as the
    days
    of visits before surgery are; a text field without validation, or a number field whose minimum
    excludes negative days, is only suggested.
    """
    forms = dictionary.forms
    suggested: tuple[Field | None, str] = (None, "")
    for field in dictionary.fields.values():
        if (
            not DAY_NAME.search(field.name)
            or _never_drafted(field)
            or (len(forms) > 1 and field.form == forms[0])
        ):
            continue
        if field.type == "calc" or _number_validation(field):
            low = _number(field.minimum)
            if low is None or low < 0:
                return field, ""
            unsure = (
                f"its validation minimum is {low:g}, so it cannot hold the day of a visit "
                "before surgery"
            )
        elif field.type == "text" and not field.validation:
            unsure = "it is text without validation"
        else:
            continue
        if suggested[0] is None:
            suggested = (field, unsure)
    return suggested


def draft_spec(dictionary: Dictionary, *, name: str, export_file: str = "records.csv") -> str:
    """A study spec drafted from a dictionary, for the coordinator to complete.

    Nothing drafted reads a field REDCap marks as an identifier, a date or free text (notes).

    Record id: the first field, unless it is marked as an identifier; then the id lines are
    commented
    out with a CHECK (the guard refuses the export while it carries that field).

    Subject columns: the fields of the first form whose values are choice codes or numbers (choices,
    number validation, sliders, calculations), except the record id and checkboxes; a text field
    with
    another validation (e-mail, phone, postal code, time) is left out, and the unvalidated text
    fields
    left out are named in a CHECK comment (an age written ``90+`` is one).

    Day: see :func:`_day_field`; a suggested but unconfirmed field is drafted commented out.

    Instruments: a registered instrument is drafted as ``column = "<prefix>{item}"`` only when the
    dictionary confirms every item (:func:`_candidates`, :func:`_item_evidence`): all items are
    fields,
    none is an identifier, a date or free text, each holds numbers (choice codes, number validation,
    slider, calculation) and its choices or validation range span exactly the item's minimum to
    maximum. When every item is a field that may hold it but some are unconfirmed (text without
    validation, a calculation, a number field without a minimum and maximum, choices covering part
    of
    the range), the template is drafted commented out under a CHECK naming those fields and what
    each
    must hold. Commented out rather than left out because the names are real evidence a coordinator
    should see, and a commented line is read by nothing until a person has checked and uncommented
    it; a wrong guess therefore cannot reach the analysis, and the drafted spec still loads.
    """
    from pipeline.instruments import REGISTRY

    record_id = dictionary.first_field
    record_id_ok = not dictionary.fields[record_id].identifier
    fields = [
        f for f in dictionary.fields.values() if f.type not in NO_DATA_TYPES and f.type != "file"
    ]
    identifiers = [f.name for f in fields if f.identifier]

    confirmed: list[_Candidate] = []
    unconfirmed: list[_Candidate] = []
    for instrument in REGISTRY.values():
        found = _candidates(dictionary, instrument)
        sure = [c for c in found if c.confirmed]
        if sure:
            confirmed.append(sure[0])
        elif found:
            unconfirmed.append(found[0])
    day, day_unsure = _day_field(dictionary)
    # Fields drafted (or offered) for instruments and the day are not baseline characteristics too.
    taken = {
        c.prefix + item.name
        for c in confirmed + unconfirmed
        for item in REGISTRY[c.instrument].items
    }
    taken |= {day.name} if day else set()

    first_form = dictionary.forms[0]
    on_first_form = [
        f
        for f in fields
        if f.form == first_form
        and f.name != record_id
        and f.name not in taken
        and not _never_drafted(f)
    ]
    subject_columns = [f.name for f in on_first_form if _codes_or_numbers(f)]
    unvalidated = [f.name for f in on_first_form if f.type == "text" and not f.validation]

    id_lines = [f"id = {_toml(record_id)}"]
    subject_line = f"subject = {_toml(record_id)}"
    if not record_id_ok:
        id_lines = [
            f"# CHECK: the record id field {_comment(record_id)} is marked as an identifier, and "
            "the guard",
            "# refuses an export carrying it. Export it hashed (REDCap's de-identification "
            "options),",
            "# allow it under [identifiers.allow] saying so, then uncomment these lines.",
            "# " + id_lines[0],
        ]
        subject_line = "# " + subject_line
    if day and not day_unsure:
        day_line = (
            f"day = {_toml(day.name)}          # CHECK: the field holding days relative to surgery"
        )
    elif day:
        day_line = (
            f"# day = {_toml(day.name)}   # CHECK: days relative to surgery? "
            f"{_comment(day_unsure)}; "
            "or give each event its day in [redcap.events]"
        )
    else:
        day_line = (
            '# day = "days_from_surgery"   # CHECK: a field holding days relative to surgery, '
            "or days in [redcap.events]"
        )
    lines = [
        f"# Study spec drafted from the REDCap data dictionary {_comment(dictionary.path.name)}.",
        "# Check every line marked CHECK before the first run; `outcomes validate` tells you what "
        "is left.",
        "",
        "[study]",
        f"name = {_toml(name)}",
        f"title = {_toml(name)}",
        "synthetic = false",
        "",
        "[redcap]",
        f"dictionary = {_toml(dictionary.path.name)}",
        '# subjects_event = "enrolment_arm_1"   # CHECK (longitudinal projects): the event holding '
        "the subject columns",
        '# repeat_instrument = "assessment"     # CHECK (classic projects): the repeating '
        "instrument whose instances are visits",
        "",
        "[redcap.events]   # CHECK: each event that is a visit, with its visit code and nominal "
        "day",
        '# baseline_arm_1 = { visit = "pre", day = -14 }',
        '# month_3_arm_1 = { visit = "m3", day = 90 }',
        "",
        "[subjects]",
        f"file = {_toml(export_file)}          # the records export (raw data, CSV)",
        *id_lines,
        "columns = ["
        + ", ".join(_toml(c) for c in subject_columns)
        + "]   # CHECK: baseline characteristics",
    ]
    if unvalidated:
        lines += [
            "# CHECK: left out as text without validation, which may be free text; add any that "
            "holds a",
            "# code or a number (an age written 90+, say): " + _comment(", ".join(unvalidated)),
        ]
    lines += [
        "",
        "[visits]",
        f"file = {_toml(export_file)}",
        subject_line,
        day_line,
        "",
        "# [visits.labels]   # what a reader sees for each visit code of [redcap.events]",
        '# pre = "Before surgery"',
        '# m3 = "3 months"',
        "",
    ]
    if identifiers:
        lines += [
            "# These fields are marked as identifiers in the dictionary. The guard refuses the "
            "export while",
            "# they are in it: export without them (REDCap's de-identified export) rather than "
            "allowing them.",
            "# " + _comment(", ".join(identifiers)),
            "",
        ]
    for candidate in confirmed:
        lines += [
            f"[instruments.{candidate.instrument}]",
            f"column = {_toml(_template(candidate.prefix) + '{item}')}",
            "",
        ]
    for candidate in unconfirmed:
        lines += [
            f"# CHECK: {candidate.instrument}'s items may be the fields "
            f"{_comment(candidate.prefix)}..., but the "
            "dictionary does not confirm",
            "# these hold them; check each, then uncomment the two lines below:",
            *_unconfirmed_lines(candidate),
            f"# [instruments.{candidate.instrument}]",
            f"# column = {_toml(_template(candidate.prefix) + '{item}')}",
            "",
        ]
    if not confirmed:
        lines += [
            "# CHECK: the dictionary confirms no registered instrument's items (fields of matching "
            "names,",
            "# types and ranges); map one, e.g.",
            "# [instruments.house_brackmann]",
            '# column = "hb_{rater}"',
            '# raters = ["observer"]',
            "",
        ]
    lines += [
        "[analysis]",
        'test = "wilcoxon"',
        'pre = { rule = "latest_preoperative", max_day = 0 }',
        'post = { rule = "last_followup", min_day = 90 }',
        "",
    ]
    for candidate in confirmed[:1]:
        # the last score of the default version: the composite or total of most instruments
        score = REGISTRY[candidate.instrument].scores_for()[-1].name
        lines += [
            "[[analysis.outcomes]]   # CHECK: the planned outcomes",
            f'instrument = "{candidate.instrument}"',
            f'score = "{score}"',
            "",
        ]
    return "\n".join(lines)
