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
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.readers import RawTable, drop_temp, quote

# Column headers of the dictionary; older REDCap versions write "Variable/Field Name".
FIELD = ("Variable / Field Name", "Variable/Field Name")
FORM, TYPE, LABEL = "Form Name", "Field Type", "Field Label"
CHOICES = "Choices, Calculations, OR Slider Labels"
VALIDATION = "Text Validation Type OR Show Slider Number"
MINIMUM, MAXIMUM, IDENTIFIER = "Text Validation Min", "Text Validation Max", "Identifier?"

EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE = "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance"
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
    choices: tuple[tuple[str, str], ...] = ()   # (code, label)
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
        if split and split[0].rstrip("_") in self.fields and self.fields[split[0].rstrip("_")].type == "checkbox":
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
        return frozenset(c for c in columns
                         if c in forms or ((f := self.field_for(c)) is not None and f.is_date))

    def free_text_columns(self, columns: tuple[str, ...]) -> frozenset[str]:
        return frozenset(c for c in columns if (f := self.field_for(c)) is not None and f.is_free_text)


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
        raise RedcapError(f"{path}: data dictionary not found. Download it from REDCap "
                          "(Project Setup > Data Dictionary) and put it beside the export.")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    try:
        # A dictionary has one row per field: small. newline="" so a lone carriage return ends a line.
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        header = list(rows[0].keys()) if rows else next(csv.reader(io.StringIO(text, newline="")), [])
    except csv.Error as err:
        raise RedcapError(f"{path}: cannot be read as a CSV data dictionary ({err}). Download it again from "
                          "Project Setup > Data Dictionary.") from None
    name_column = next((h for h in FIELD if h in header), None)
    missing = [h for h in (FORM, TYPE) if h not in header]
    if name_column is None or missing:
        raise RedcapError(f"{path}: not a REDCap data dictionary: the header lacks "
                          f"{', '.join(([FIELD[0]] if name_column is None else []) + missing)}. "
                          "Download it again from Project Setup > Data Dictionary.")
    fields: dict[str, Field] = {}
    for line, row in enumerate(rows, start=2):
        name = (row.get(name_column) or "").strip()
        if not name:
            continue
        if name in fields:
            raise RedcapError(f"{path}: line {line}: field {name!r} is listed twice.")
        ftype = (row.get(TYPE) or "").strip().lower()
        fields[name] = Field(
            name=name, form=(row.get(FORM) or "").strip(), type=ftype,
            label=(row.get(LABEL) or "").strip(),
            choices=_choices(row.get(CHOICES) or "") if ftype in ("dropdown", "radio", "checkbox") else
            (("1", "Yes"), ("0", "No")) if ftype == "yesno" else
            (("1", "True"), ("0", "False")) if ftype == "truefalse" else (),
            validation=(row.get(VALIDATION) or "").strip().lower(),
            minimum=(row.get(MINIMUM) or "").strip(), maximum=(row.get(MAXIMUM) or "").strip(),
            identifier=(row.get(IDENTIFIER) or "").strip().lower() in ("y", "yes"),
        )
    if not fields:
        raise RedcapError(f"{path}: the data dictionary lists no fields.")
    return Dictionary(path, fields)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
            selects.append(f"CASE lower(trim({q})) WHEN 'checked' THEN '1' WHEN 'unchecked' THEN '0' "
                           f"ELSE {q} END AS {q}")
            continue
        codes = ", ".join(_literal(code) for code, _ in field.choices) or "NULL"
        labels = " ".join(f"WHEN {_literal(label)} THEN {_literal(code)}" for code, label in field.choices)
        selects.append(f"CASE WHEN trim({q}) IN ({codes}) THEN trim({q}) "
                       + (f"ELSE CASE trim({q}) {labels} ELSE {q} END END AS {q}" if labels else f"ELSE {q} END AS {q}"))
    if changed:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {raw.table}_codes AS SELECT _line, {', '.join(selects)} "
                    f"FROM {raw.table} ORDER BY _line")
        drop_temp(con, raw.table)
        con.execute(f"ALTER TABLE {raw.table}_codes RENAME TO {raw.table}")


def events_in(con: duckdb.DuckDBPyConnection, raw: RawTable) -> list[str]:
    if EVENT not in raw.columns:
        return []
    return [r[0] for r in con.execute(
        f"SELECT {quote(EVENT)} FROM {raw.table} WHERE {quote(EVENT)} IS NOT NULL "
        f"GROUP BY {quote(EVENT)} ORDER BY min(_line)").fetchall()]


def _toml(text: str) -> str:
    """``text`` as a TOML basic string, whatever characters a field name holds."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _comment(text: str) -> str:
    """``text`` for a TOML comment: control characters (a line break would end it) escaped."""
    return _toml(text)[1:-1]


def _template(prefix: str) -> str:
    """A column template's fixed part: braces doubled so they stay literal."""
    return prefix.replace("{", "{{").replace("}", "}}")


def draft_spec(dictionary: Dictionary, *, name: str, export_file: str = "records.csv") -> str:
    """A study spec drafted from a dictionary, for the coordinator to complete.

    Subject columns: the non-identifier data fields of the first form. Instruments: every
    registered instrument whose items all appear as ``<prefix><item>`` fields.
    """
    from pipeline.instruments import REGISTRY

    record_id = dictionary.first_field
    fields = [f for f in dictionary.fields.values() if f.type not in NO_DATA_TYPES and f.type != "file"]
    identifiers = [f.name for f in fields if f.identifier]
    first_form = dictionary.forms[0]
    subject_columns = [f.name for f in fields
                       if f.form == first_form and f.name != record_id and not f.identifier
                       and not f.is_free_text and not f.is_date and f.type != "checkbox"]
    names = {f.name for f in fields}
    mapped = []
    for instrument in REGISTRY.values():
        items = [item.name for item in instrument.items]
        for field in sorted(names):
            if field.endswith(items[0]):
                prefix = field[: len(field) - len(items[0])]
                if all(prefix + item in names for item in items):
                    mapped.append((instrument.name, prefix))
                    break
    day_fields = [f.name for f in fields if re.search(r"(^|_)days?(_|$)", f.name)]
    lines = [
        f"# Study spec drafted from the REDCap data dictionary {_comment(dictionary.path.name)}.",
        "# Check every line marked CHECK before the first run; `outcomes validate` tells you what is left.",
        "",
        "[study]",
        f'name = {_toml(name)}',
        f'title = {_toml(name)}',
        "synthetic = false",
        "",
        "[redcap]",
        f'dictionary = {_toml(dictionary.path.name)}',
        '# subjects_event = "enrolment_arm_1"   # CHECK (longitudinal projects): the event holding the subject columns',
        '# repeat_instrument = "assessment"     # CHECK (classic projects): the repeating instrument whose instances are visits',
        "",
        "[redcap.events]   # CHECK: each event that is a visit, with its visit code and nominal day",
        '# baseline_arm_1 = { visit = "pre", day = -14 }',
        '# month_3_arm_1 = { visit = "m3", day = 90 }',
        "",
        "[subjects]",
        f'file = {_toml(export_file)}          # the records export (raw data, CSV)',
        f'id = {_toml(record_id)}',
        "columns = [" + ", ".join(_toml(c) for c in subject_columns) + "]   # CHECK: baseline characteristics",
        "",
        "[visits]",
        f'file = {_toml(export_file)}',
        f'subject = {_toml(record_id)}',
        (f'day = {_toml(day_fields[0])}          # CHECK: the field holding days relative to surgery' if day_fields else
         '# day = "days_from_surgery"   # CHECK: a field holding days relative to surgery, or days in [redcap.events]'),
        "",
    ]
    if identifiers:
        lines += ["# These fields are marked as identifiers in the dictionary. The guard refuses the export while",
                  "# they are in it: export without them (REDCap's de-identified export) rather than allowing them.",
                  "# " + _comment(", ".join(identifiers)), ""]
    for instrument, prefix in mapped:
        lines += [f"[instruments.{instrument}]", f'column = {_toml(_template(prefix) + "{item}")}', ""]
    if not mapped:
        lines += ["# CHECK: no registered instrument's items were found as fields; map one, e.g.",
                  "# [instruments.house_brackmann]", '# column = "hb_{rater}"', '# raters = ["observer"]', ""]
    lines += ["[analysis]", 'test = "wilcoxon"', 'pre = { rule = "latest_preoperative", max_day = 0 }',
              'post = { rule = "last_followup", min_day = 90 }', ""]
    for instrument, _ in mapped[:1]:
        # the last score of the default version: the composite or total of most instruments
        score = REGISTRY[instrument].scores_for()[-1].name
        lines += ["[[analysis.outcomes]]   # CHECK: the planned outcomes", f'instrument = "{instrument}"',
                  f'score = "{score}"', ""]
    return "\n".join(lines)
