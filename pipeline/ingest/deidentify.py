"""The de-identification guard: a source carrying identifiers never enters the warehouse.

HIPAA Safe Harbor (45 CFR 164.514(b)(2)) lists 18 kinds of identifier that a
de-identified data set must not hold. Every column of every source file,
including columns the study spec does not map, is scanned in DuckDB before
anything is written:

* by its name (``full_name``, ``street``, ``phone``, ``email``, ``ssn``, ``mrn``,
  ``insurance_id``, ``url``, ``ip_address``, ...);
* by its values (e-mail addresses, URLs, IP addresses, phone numbers, SSNs,
  record/plan/account numbers, street addresses, titled names, ZIP+4 codes, and
  values that look like personal names), which also covers free-text notes;
* dates: any date more specific than a year (Safe Harbor keeps only the year);
* ages of 90 or more not collapsed into "90+", and birth years implying them;
* ZIP codes longer than 3 digits, or in the 17 restricted 3-digit prefixes, in a
  column named as one, and 5-digit codes under any name (below);
* fields a REDCap data dictionary marks ``Identifier? = y``.

**5-digit codes under any name.** A column of ZIP codes called ``region`` or
``area`` passes every name rule. A column is refused as holding ZIP codes when
most of its distinct values are 5-digit codes (``02114``, or ZIP+4 ``02114-1234``)
and either one of them keeps a leading zero (no measurement is written ``02114``)
or most of them are not multiples of 10 (doses, counts and costs of five digits are
round: 10000, 12500). A dense run of codes is taken for study codes or line numbers
and let through: codes filling at least 90% of the range they span, when there are
10 or more of them or the column is named as a code (``study_id``, ``record``,
``code``). Days (at most 36500), scores, counts and years have fewer digits and are
never most of a column's values as 5-digit codes. The trade-off: a column of random
5-digit study codes is refused (allow it by name, with a justification), and ZIP
codes of one dense neighbourhood, 10 or more filling 90% of their range, pass; so
do ZIP codes Excel has stripped of their leading zero (``2114``), since 4-digit
values are as often years or measurements. For speed, a column whose cells are all
numbers below 501 skips the value probes, as no probe can fire on it: ``02114``
reads as the number 2114, and 00501 is the smallest ZIP code. A column read as
numbers (``RawTable.numbers``) holding 501 or more may be a ZIP code that lost
its leading zero in the read, so :func:`scan` asks for its text
(:class:`TextNeeded`); no instrument's item goes above 200, so a valid item
column never does.

A refusal names each offending column, the rule and how many rows (with the
first line), and never the values themselves. When the first line of a file
looks like a row of values rather than column names (a number, a date, a phone
number where a name belongs: a file without its header row, or a spec naming the
wrong file), its "names" are cells, so every column of it is named by position
("column 3 of the header") and the refusal says the first line is not a header;
a single name shaped like a person's ("Jane Roe") is named by position alone.

A study spec may allow a named column with a written justification
(``[identifiers.allow]``); the justification is recorded in the run's
provenance. The refusal offers that only for a column flagged by its name alone,
whose values broke no rule, and whose name does not itself say it holds an
identifier (``cell_count`` flagged as a phone column, ``iris_score`` as a
biometric): real identifiers are to be removed from the export, never allowed.

The patterns deliberately err towards refusing: a false refusal costs the
coordinator one line of justification, a false acceptance puts identifiers in
a research warehouse.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.ingest.readers import RawTable
from pipeline.sql import literal, quote

# HHS list of 3-digit ZIP prefixes with 20,000 or fewer people (2000 Census), which Safe
# Harbor requires to be replaced by "000" (domain reference section 5, [S46, S47]).
RESTRICTED_ZIP3 = (
    "036",
    "059",
    "063",
    "102",
    "203",
    "556",
    "692",
    "790",
    "821",
    "823",
    "830",
    "831",
    "878",
    "879",
    "884",
    "890",
    "893",
)

# REDCap's own bookkeeping columns are not about the individual.
STRUCTURAL = frozenset(
    {
        "redcap_event_name",
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
        "redcap_data_access_group",
        "redcap_survey_identifier",
    }
)


@dataclass(frozen=True)
class Finding:
    """One column of one file that breaks one rule. Holds no value from the file."""

    file: str
    column: str  # the column's name, or its position ("column 3 of the header") when not named
    rule: str
    rows: int = (
        0  # rows whose value breaks the rule; 0 when the column's name or dictionary entry does
    )
    first_line: int = 0
    named: bool = True  # False when the file's first line looks like values: its names are cells

    @property
    def label(self) -> str:
        return f"column {self.column!r}" if self.named else self.column

    def describe(self) -> str:
        where = (
            f" ({self.rows} row{'s' if self.rows != 1 else ''}, first on line {self.first_line})"
            if self.rows
            else ""
        )
        return f"{self.label}: {self.rule}{where}"


class IdentifiersFound(ValueError):
    """A source refused by the guard; ``findings`` says which columns and why."""

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        super().__init__(refusal_message(findings))


class TextNeeded(ValueError):
    """Raised by :func:`scan` for a file holding as numbers (``RawTable.numbers``) a column
    whose text the guard must see: one named like a date, an age, a ZIP code or a birth year,
    or holding NaN, infinity or a number of 501 or more (a ZIP code read without its leading
    zero, 02114 as 2114, or an 8-digit date). Read the file as text and scan it again."""


def refusal_message(findings: Sequence[Finding]) -> str:
    by_file: dict[str, list[Finding]] = {}
    for f in findings:
        by_file.setdefault(f.file, []).append(f)
    parts = []
    for file, items in by_file.items():
        parts.append(
            f"{file}: refused, it carries identifiers (HIPAA Safe Harbor): "
            + "; ".join(f.describe() for f in items)
            + "."
        )
    return " ".join(parts + [advice(findings)])


def advice(findings: Sequence[Finding]) -> str:
    """What to do about ``findings``: remove the identifiers; allow by name only a column that
    may well be innocent (see :func:`allowable`)."""
    parts = []
    headless = sorted({f.file for f in findings if not f.named})
    if headless:
        parts.append(
            f"The first line of {', '.join(headless)} does not look like a header row (it holds "
            "values where "
            "column names belong), so its columns are named by position: put the header row (the "
            "column "
            "names) on line 1, and check that the study spec names the right file."
        )
    parts.append(
        "Nothing was written to the warehouse. Real identifiers must be removed from the export, "
        "never "
        "allowed: export it without these columns or values, or with them de-identified (dates as "
        "years or "
        'days relative to surgery, ages 90 and over as "90+", ZIP codes as 3 digits).'
    )
    innocent = allowable(findings)
    if innocent:
        parts.append(
            "A column flagged by its name alone whose values cannot identify anyone "
            f"({', '.join(innocent)}) "
            "may instead be allowed in study.toml under [identifiers.allow] with a justification, "
            "e.g. "
            f'{_toml_key(innocent[0])} = "why this column cannot identify anyone".'
        )
    return " ".join(parts)


def allowable(findings: Sequence[Finding]) -> list[str]:
    """The columns of ``findings`` that the refusal may offer to allow: flagged only by column-name
    rules (no value broke a rule, no data dictionary marks them), named in a real header, and
    not named as an identifier outright (``patient_name``, ``address``, ``phone``, ``mrn``)."""
    by_column: dict[str, list[Finding]] = {}
    for f in findings:
        by_column.setdefault(f.column, []).append(f)
    return [
        column
        for column, items in by_column.items()
        if all(f.named and not f.rows and f.rule.endswith("(column name)") for f in items)
        and not _identifying_name(column)
    ]


# Column-name tokens for a person's name and for a place smaller than a State: the name rules
# flag them, and a column named with one is a real identifier whatever its values.
_PERSON_NAME_TOKENS = frozenset(
    {
        "firstname",
        "lastname",
        "surname",
        "fullname",
        "fname",
        "lname",
        "forename",
        "forenames",
        "givenname",
        "middlename",
        "maiden",
    }
)
_PLACE_TOKENS = frozenset(
    {
        "address",
        "addr",
        "street",
        "city",
        "town",
        "county",
        "precinct",
        "geocode",
        "latitude",
        "longitude",
        "postcode",
        "neighbourhood",
        "neighborhood",
    }
)
# Column names that say the column holds an identifier, whatever its values: a real identifier.
_IDENTIFYING_TOKENS = (
    _PERSON_NAME_TOKENS
    | _PLACE_TOKENS
    | {"phone", "telephone", "fax", "email", "emailaddress", "ssn", "socsec", "mrn"}
)
_IDENTIFYING_PHRASES = (
    "home_address",
    "social_security",
    "medical_record",
    "health_plan",
    "member_id",
    "member_number",
    "policy_number",
    "chart_number",
    "chart_no",
    "hospital_number",
    "patient_number",
    "record_number",
    "ip_address",
)
# "name" is a person's name when nothing precedes it or one of these does.
_PERSON_WORDS = frozenset(
    {
        "patient",
        "pt",
        "first",
        "last",
        "full",
        "given",
        "family",
        "middle",
        "maiden",
        "mother",
        "father",
        "parent",
        "guardian",
        "contact",
        "subject",
        "participant",
        "spouse",
        "relative",
        "person",
        "child",
        "kin",
    }
)


def _identifying_name(column: str) -> bool:
    tokens = _tokens(column)
    joined = "_".join(tokens)
    if set(tokens) & _IDENTIFYING_TOKENS or any(
        re.search(rf"(^|_){p}(_|$)", joined) for p in _IDENTIFYING_PHRASES
    ):
        return True
    return any(
        t in ("name", "names") and (i == 0 or tokens[i - 1] in _PERSON_WORDS)
        for i, t in enumerate(tokens)
    )


def _toml_key(column: str) -> str:
    """``column`` as a key in study.toml: bare when TOML allows it, quoted otherwise."""
    return (
        column
        if re.fullmatch(r"[A-Za-z0-9_-]+", column)
        else json.dumps(column, ensure_ascii=False)
    )


def _tokens(column: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column)  # camelCase -> camel_Case
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


# Column-name rules: (rule, tokens any of which flags the column, joined names that flag it).
_NAME_RULES: tuple[tuple[str, frozenset[str], tuple[str, ...]], ...] = (
    (
        "name of a person (column name)",
        _PERSON_NAME_TOKENS | {"name", "names", "initials", "nickname", "signature"},
        (),
    ),
    (
        "geographic subdivision smaller than a State (column name)",
        _PLACE_TOKENS,
        ("home_address",),
    ),
    (
        "phone or fax number (column name)",
        frozenset({"phone", "telephone", "tel", "mobile", "cellphone", "fax", "pager", "cell"}),
        (),
    ),
    ("e-mail address (column name)", frozenset({"email", "mail", "emailaddress"}), ()),
    ("social security number (column name)", frozenset({"ssn", "socsec"}), ("social_security",)),
    (
        "medical record, health plan or account number (column name)",
        frozenset(
            {
                "mrn",
                "insurance",
                "insurer",
                "beneficiary",
                "account",
                "acct",
                "medicaid",
                "medicare",
                "nhs",
            }
        ),
        (
            "medical_record",
            "health_plan",
            "plan_number",
            "plan_id",
            "member_id",
            "member_number",
            "chart_number",
            "chart_no",
            "hospital_number",
            "hospital_id",
            "patient_number",
            "policy_number",
            "record_number",
        ),
    ),
    (
        "certificate, licence, vehicle or device number (column name)",
        frozenset({"license", "licence", "certificate", "vin", "plate", "serial"}),
        ("device_id",),
    ),
    ("web address (column name)", frozenset({"url", "website", "homepage", "webpage"}), ()),
    ("IP address (column name)", frozenset({"ip", "ipaddress"}), ("ip_address",)),
    (
        "photograph or biometric identifier (column name)",
        frozenset(
            {"photo", "photograph", "picture", "fingerprint", "voiceprint", "retina", "iris"}
        ),
        (),
    ),
)
# "name" is about a person unless the word before it says otherwise.
_NOT_A_PERSON = frozenset(
    {
        "event",
        "instrument",
        "form",
        "study",
        "drug",
        "medication",
        "med",
        "site",
        "hospital",
        "center",
        "centre",
        "procedure",
        "diagnosis",
        "file",
        "arm",
        "field",
        "variable",
        "item",
        "score",
        "outcome",
        "rater_role",
        "brand",
        "product",
    }
)

_DATE_NAMES = frozenset(
    {
        "date",
        "dob",
        "dod",
        "doa",
        "birthdate",
        "birthday",
        "dt",
        "datetime",
        "timestamp",
        "admitted",
        "discharged",
        "died",
    }
)
_AGE_NAMES = frozenset({"age"})
_ZIP_NAMES = frozenset({"zip", "zipcode", "zip3", "postal", "zcta"})
_BIRTH_YEAR = (
    "birth_year",
    "year_of_birth",
    "yob",
    "birthyear",
    "dob",
    "birth_date",
    "date_of_birth",
)

# Value patterns (RE2 syntax, run by DuckDB's regexp_matches). Each finds the identifier
# anywhere in the value, so free-text notes are covered by the same rules.
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
VALUE_RULES: tuple[tuple[str, str], ...] = (
    (
        "e-mail address in values",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    ),
    ("web address in values", r"(?i)(https?://|ftp://|\bwww\.)[^\s]+"),
    (
        "IP address in values",
        r"\b(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\b|(?i)\b([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b",
    ),
    ("social security number in values", r"\b\d{3}-\d{2}-\d{4}\b"),
    (
        "phone or fax number in values",
        r"(\+\d{1,3}[\s.-]?)?(\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b|\+\d{1,3}([\s.-]\d{2,5}){2,4}\b",
    ),
    (
        "medical record, plan or account number in values",
        r"(?i)\b(mrn|medical\s+record|chart|acct|account|member\s*id|policy|health\s+plan|insurance|ssn)"
        r"\s*(no\.?|number|num|id|#)?\s*[:#=]?\s*[a-z]{0,3}-?\d{3,}",
    ),
    (
        "street address in values",
        r"(?i)\b\d{1,6}\s+([a-z0-9.'-]+\s+){1,4}(street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|court|"
        r"ct|way|place|pl|terrace|parkway|pkwy|highway|hwy|circle|cir)\b|(?i)\bp\.?\s?o\.?\s+box\s+\d+",
    ),
    (
        "name of a person in values",
        r"\b(Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+[A-Z][a-z]+|(?i)\b(patient|pt|first|last|full|maiden)?\s*name\s*[:=]\s*\S",
    ),
    ("ZIP+4 code in values", r"\b\d{5}-\d{4}\b"),
    (
        "date more specific than a year in values",
        r"\b\d{4}[-/.](0?[1-9]|1[0-2])([-/.]\d{1,2})?\b|\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b|\b(0?[1-9]|1[0-2])[-/.]\d{4}\b"
        r"|\b\d{4}-\d{3}\b|(?i)\b"
        + _MONTH
        + r"[\s,.-]*\d{1,4}\b|(?i)\b\d{1,2}(st|nd|rd|th)?[\s-]*"
        + _MONTH,
    ),
)
# A whole value shaped like "Jane Roe", "Roe, Jane" or "Jane Q. Roe".
_PERSON_NAME = (
    r"^[A-Z][a-z]+(-[A-Z][a-z]+)?( [A-Z]\.?)? [A-Z][a-z']+(-[A-Z][a-z]+)?$"
    r"|^[A-Z][a-z']+(-[A-Z][a-z]+)?, [A-Z][a-z]+( [A-Z]\.?)?$"
)
_YEAR = r"^\s*\d{4}\s*$"
# Three words or more: a phrase, not a code ("Called John Smith", not "m12" or "month 12").
_PHRASE = r"\S+\s+\S+\s+\S+"
# A 5-digit code or ZIP+4, as written (the value probes see trimmed text).
_FIVE_DIGITS = r"^[0-9]{5}(-[0-9]{4})?$"
_ZIP_RULE = "5-digit codes in values, like ZIP codes"
# A column named like one of these may hold a dense run of 5-digit study codes (see the module
# docstring).
_CODE_NAMES = frozenset(
    {
        "id",
        "ids",
        "code",
        "codes",
        "record",
        "subject",
        "participant",
        "study",
        "case",
        "key",
        "pid",
        "sid",
        "uid",
    }
)
_AGE_90 = r"^\s*(90\s*\+|>=?\s*90|≥\s*90|90\s*(or|and)\s*(older|over|above))\s*$"


PERSON_SHAPE = "personal name"


def header_values(
    names: Sequence[str], con: duckdb.DuckDBPyConnection | None = None
) -> dict[int, str]:
    """The header names that look like values, by position (1-based): what each looks like (a
    value rule's kind such as "phone or fax number", "number", or :data:`PERSON_SHAPE`).

    A name made only of letters, digits and underscores, starting with a letter or underscore
    (``hb_observer``, ``sb_1``), is a column name whatever a pattern says. The patterns are the
    guard's own, run by DuckDB (``con``, or a connection of its own for the few names).
    """
    candidates = [
        (i, n)
        for i, n in enumerate(names, start=1)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)
    ]
    if not candidates:
        return {}
    checks = [
        (rule.removesuffix(" in values"), f"regexp_matches(name, {literal(pattern)})")
        for rule, pattern in VALUE_RULES
    ]
    checks += [
        (
            "number",
            "TRY_CAST(trim(name) AS DOUBLE) IS NOT NULL "
            "OR regexp_matches(trim(name), '^[-+]?[0-9]+([.,][0-9]+)?$')",
        ),
        (PERSON_SHAPE, f"regexp_matches(trim(name), {literal(_PERSON_NAME)})"),
    ]
    rows = ", ".join(f"({i}, {literal(n)})" for i, n in candidates)
    own = con is None
    con = duckdb.connect() if own else con
    try:
        found = con.execute(
            f"SELECT i, {', '.join(c for _, c in checks)} FROM (VALUES {rows}) t(i, name) "
            "ORDER BY i"
        ).fetchall()
    finally:
        if own:
            con.close()
    return {
        row[0]: next(kind for (kind, _), hit in zip(checks, row[1:]) if hit)
        for row in found
        if any(row[1:])
    }


def header_is_data(kinds: Mapping[int, str]) -> bool:
    """Whether a first line whose names look like ``kinds`` (see :func:`header_values`) is a
    row of values: a name shaped like a person's alone ("Visit Date" has that shape) is not
    enough, a number, a date or any other value is."""
    return any(kind != PERSON_SHAPE for kind in kinds.values())


def name_rules(column: str) -> list[str]:
    """The column-name rules a column breaks (empty for most columns)."""
    if column in STRUCTURAL:
        return []
    tokens = _tokens(column)
    joined = "_".join(tokens)
    broken = []
    for rule, words, phrases in _NAME_RULES:
        hits = [i for i, t in enumerate(tokens) if t in words]
        if rule.startswith("geographic"):
            hits = [
                i
                for i in hits
                if not (i > 0 and tokens[i - 1] in ("ip", "mail", "email", "web", "mac"))
            ]
        if rule.startswith("name of a person"):
            hits = [
                i
                for i in hits
                if not (tokens[i] in ("name", "names") and i > 0 and tokens[i - 1] in _NOT_A_PERSON)
            ]
        if hits or any(re.search(rf"(^|_){p}(_|$)", joined) for p in phrases):
            broken.append(rule)
    return broken


def _kind(column: str, date_columns: frozenset[str]) -> set[str]:
    tokens = set(_tokens(column))
    joined = "_".join(_tokens(column))
    kinds = set()
    if column in date_columns or tokens & _DATE_NAMES or re.search(r"(^|_)(date|dob)(_|$)", joined):
        kinds.add("date")
    if tokens & _AGE_NAMES:
        kinds.add("age")
    if tokens & _ZIP_NAMES:
        kinds.add("zip")
    if any(re.search(rf"(^|_){p}(_|$)", joined) for p in _BIRTH_YEAR):
        kinds.add("birth_year")
    return kinds


def scan(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    *,
    label: str = "",
    allowed: Mapping[str, str] | None = None,
    dictionary_identifiers: Mapping[str, str] | None = None,
    date_columns: frozenset[str] = frozenset(),
    free_text: frozenset[str] = frozenset(),
    codes: frozenset[str] = frozenset(),
    this_year: int | None = None,
) -> list[Finding]:
    """Every identifier finding in ``raw``'s columns, in column order.

    Parameters
    ----------
    raw : the loaded file (see :func:`pipeline.ingest.readers.read_table`).
    label : the file name used in findings (default the file's name).
    allowed : column -> justification; these columns are not scanned.
    dictionary_identifiers : column -> why a data dictionary marks it as an identifier.
    date_columns : columns a data dictionary declares as dates (checked like date-named columns).
    free_text : columns a data dictionary declares as free text (named as such in findings).
    codes : columns the spec reads as codes (subject, visit): kept as written and shown in
        results, so a single value shaped like a person's name, or a phrase of free text, is a
        finding there, where elsewhere it takes most of a column.
    this_year : the year ages are computed against for birth years (default: today's).

    Raises :class:`TextNeeded` when a column ``raw`` holds as numbers must be seen as text.
    """
    allowed = allowed or {}
    dictionary_identifiers = dictionary_identifiers or {}
    file = label or raw.path.name
    year = this_year or datetime.date.today().year
    scanned = [c for c in raw.columns if c not in allowed]
    findings: list[Finding] = []
    kinds: dict[str, set[str]] = {"date": set(), "age": set(), "zip": set(), "birth_year": set()}
    for column in scanned:
        if column in dictionary_identifiers:
            findings.append(Finding(file, column, dictionary_identifiers[column]))
        findings.extend(Finding(file, column, rule) for rule in name_rules(column))
        for kind in _kind(column, date_columns):
            kinds[kind].add(column)

    # (rule, SQL condition on the trimmed value v; ``num`` says v reads as a number, columns it
    # applies to or None for all). Numbers skip the text patterns, which keeps the scan cheap.
    restricted = ", ".join(f"'{z}'" for z in RESTRICTED_ZIP3)
    probes: list[tuple[str, str, set[str] | None]] = []
    for rule, pattern in VALUE_RULES:
        exempt = kinds["date"] if rule.startswith("date") else set()
        condition = f"NOT num AND regexp_matches(v, {literal(pattern)})"
        if exempt:
            condition += f' AND "column" NOT IN ({_in_list(exempt)})'
        probes.append((rule, condition, None))
    probes.append(
        (
            "date more specific than a year in values",
            f"num AND regexp_matches(v, {literal(_COMPACT_DATE)})"
            + (f' AND "column" NOT IN ({_in_list(kinds["date"])})' if kinds["date"] else ""),
            None,
        )
    )
    probes.append(
        (
            "date more specific than a year (a date column may hold only a 4-digit year)",
            f"NOT regexp_matches(v, {literal(_YEAR)})",
            kinds["date"],
        )
    )
    probes.append(
        (
            'age of 90 or more not collapsed into "90+"',
            "(num AND TRY_CAST(replace(v, ',', '.') AS DOUBLE) >= 90) OR (NOT num AND "
            "regexp_matches(v, '[0-9]') "
            f"AND NOT regexp_matches(v, {literal(_AGE_90)}))",
            kinds["age"],
        )
    )
    probes.append(
        (
            "birth year implying an age of 90 or more",
            f"TRY_CAST(v AS INTEGER) <= {year - 90}",
            kinds["birth_year"],
        )
    )
    probes.append(
        ("ZIP code longer than 3 digits", "NOT regexp_matches(v, '^[0-9]{3}$')", kinds["zip"])
    )
    probes.append(
        (
            "restricted 3-digit ZIP prefix (20,000 people or fewer; must be 000)",
            f"v IN ({restricted})",
            kinds["zip"],
        )
    )
    code_columns = {c for c in codes if c in scanned}
    probes.append(
        (
            "value shaped like a person's name in a column of codes",
            f"NOT num AND regexp_matches(v, {literal(_PERSON_NAME)})",
            code_columns,
        )
    )
    probes.append(
        (
            "free text (three words or more) in a column of codes",
            f"NOT num AND regexp_matches(v, {literal(_PHRASE)})",
            code_columns,
        )
    )
    # REDCap's event, instrument and group names are the project's own labels, not the individual's.
    valued = [c for c in scanned if c not in STRUCTURAL or c == "redcap_survey_identifier"]
    findings.extend(_run_probes(con, raw, file, valued, probes, free_text))
    order = {c: i for i, c in enumerate(raw.columns)}
    findings.sort(key=lambda f: order.get(f.column, len(order)))
    looks = header_values(raw.columns, con)
    return _by_position(findings, raw.columns, looks, file) if looks else findings


def _by_position(
    findings: list[Finding], columns: Sequence[str], looks: Mapping[int, str], file: str
) -> list[Finding]:
    """``findings`` with columns named by position where their names may be cells: every column
    when the first line is a row of values (whose own identifiers are findings too, on line 1),
    else the names shaped like a person's."""
    position = {c: i for i, c in enumerate(columns, start=1)}
    data_line = header_is_data(looks)
    hidden = set(columns) if data_line else {columns[i - 1] for i in looks}

    def label(i: int) -> str:
        return f"column {i} of the header"

    out = [
        dataclasses.replace(f, column=label(position[f.column]), named=False)
        if f.column in hidden
        else f
        for f in findings
    ]
    if data_line:
        for i, kind in sorted(looks.items()):
            if kind == "number":
                continue
            rule = (
                "values look like personal names" if kind == PERSON_SHAPE else f"{kind} in values"
            )
            same = next(
                (k for k, f in enumerate(out) if f.column == label(i) and f.rule.endswith(rule)),
                None,
            )
            if same is None:
                out.append(Finding(file, label(i), rule, 1, 1, named=False))
            else:
                out[same] = dataclasses.replace(out[same], rows=out[same].rows + 1, first_line=1)
        out.sort(key=lambda f: int(f.column.split()[1]) if not f.named else len(columns) + 1)
    return out


_COMPACT_DATE = r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"


def _in_list(columns: set[str]) -> str:
    return ", ".join(literal(c) for c in sorted(columns))


# The smallest ZIP code is 00501: a number from here up may be a compact date (19000101 or more)
# or a ZIP code written, or read, without its leading zeros (02114 reads as 2114). Below it, no
# value probe can fire on a number.
_ZIP_LOW = 501


def _needing_values(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    columns: list[str],
    probes: list[tuple[str, str, set[str] | None]],
) -> list[str]:
    """The columns whose values the probes must see: all but those holding only numbers below
    :data:`_ZIP_LOW`, for which no probe can fire.

    For a number (``num``) the text patterns do not run; the probes left for a column that no
    column-specific rule names are the compact date (19000101 or more) and the 5-digit codes,
    which need their text. Item columns of a registry are such columns (no instrument's item
    goes above 200), and one pass over them costs a fraction of grouping their values. (Testing
    each cell for a whole number from 501 to 99999 instead would spare the probes a column of
    larger measurements, at three times the cost of this pass for every column.)
    """
    special = set().union(*(only for _, _, only in probes if only))
    plain = [c for c in columns if c not in special]
    clear = set()
    if plain:
        # NULL (empty) cells pass; text, NaN and larger numbers do not: every written cell reads
        # as a number (as many numbers as cells) and the largest is below (NaN sorts above every
        # number, so a NaN fails too). Two aggregates over the parsed column cost less than a
        # test per cell.
        checks = ", ".join(
            f"count({quote(c)}) = count(TRY_CAST({quote(c)} AS DOUBLE)) AND "
            f"coalesce(max(TRY_CAST({quote(c)} AS DOUBLE)) < {_ZIP_LOW}, TRUE)"
            for c in plain
        )
        passed = con.execute(f"SELECT {checks} FROM {raw.table}").fetchall()[0]
        clear = {c for c, ok in zip(plain, passed) if ok}
    needing = [c for c in columns if c not in clear]
    typed = [c for c in needing if c in raw.numbers]
    if typed:  # their text is not in the table
        raise TextNeeded(
            f"{raw.path}: column(s) {', '.join(typed)} were read as numbers, but the identifier "
            "guard must see their text; read the file as text."
        )
    return needing


def _run_probes(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    file: str,
    columns: list[str],
    probes: list[tuple[str, str, set[str] | None]],
    free_text: frozenset[str],
) -> list[Finding]:
    """All value probes of a file, run on its distinct (column, value) pairs.

    Cohort exports repeat the same few values (codes, scores, days) down every column, so the
    patterns run on thousands of distinct values rather than millions of cells; ``n`` carries
    how many rows hold each value and ``first`` the first of them.
    """
    if not columns or raw.rows == raw.rejected:
        return []
    columns = _needing_values(con, raw, columns, probes)
    if not columns:
        return []
    # One GROUP BY per column on the value as written (faster in DuckDB than unpivoting every
    # cell first), then trimmed and merged: trimming the few distinct values, not every cell.
    per_column = " UNION ALL ".join(
        f'SELECT {literal(c)} AS "column", {quote(c)} AS written, count(*) AS n, min(_line) AS '
        "first "
        f"FROM {raw.table} GROUP BY ALL"
        for c in columns
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _guard_values AS
        SELECT *, TRY_CAST(v AS DOUBLE) IS NOT NULL AS num
        FROM (SELECT "column", trim(written) AS v, sum(n) AS n, min(first) AS first
              FROM ({per_column}) WHERE trim(written) <> '' GROUP BY ALL)
    """)
    selects = []
    for i, (_, condition, only) in enumerate(probes):
        if only is not None:
            if not only:
                selects.append(f"0 AS n{i}, NULL AS l{i}")
                continue
            condition = f'"column" IN ({_in_list(only)}) AND ({condition})'
        selects.append(
            f"sum(n) FILTER (WHERE {condition}) AS n{i}, min(first) FILTER (WHERE {condition}) AS "
            f"l{i}"
        )
    # Personal names: most of a column's values shaped like a name, and those mostly distinct
    # (a diagnosis such as "Ramsay Hunt" repeats; people's names rarely do).
    person = f"NOT num AND regexp_matches(v, {literal(_PERSON_NAME)})"
    selects.append(
        f"sum(n) FILTER (WHERE {person}) AS n_person, count(*) FILTER (WHERE {person}) AS "
        "d_person, "
        f"min(first) FILTER (WHERE {person}) AS l_person, sum(n) AS n_values"
    )
    # 5-digit codes (see the module docstring): how many distinct values are codes, keep a
    # leading zero, end in 0, and the range the codes span.
    five = f"regexp_matches(v, {literal(_FIVE_DIGITS)})"
    code = "TRY_CAST(v[1:5] AS INTEGER)"
    selects.append(
        f"count(*) AS d_values, count(*) FILTER (WHERE {five}) AS d_five, "
        f"count(*) FILTER (WHERE {five} AND v[1] = '0') AS d_lead, "
        f"count(*) FILTER (WHERE {five} AND v[5] = '0') AS d_round, "
        f"min({code}) FILTER (WHERE {five}) AS low, max({code}) FILTER (WHERE {five}) AS high, "
        f"sum(n) FILTER (WHERE {five}) AS n_five, min(first) FILTER (WHERE {five}) AS l_five"
    )
    try:
        rows = con.execute(
            f'SELECT "column", {", ".join(selects)} FROM _guard_values GROUP BY "column"'
        ).fetchall()
    finally:
        con.execute("DROP TABLE IF EXISTS _guard_values")
    found = []
    for row in rows:
        column = row[0]
        text = "free text: " if column in free_text else ""
        for i, (rule, _, _) in enumerate(probes):
            n, first = row[1 + 2 * i], row[2 + 2 * i]
            if n:
                found.append(Finding(file, column, text + rule, int(n), int(first)))
        base = 1 + 2 * len(probes)
        n_person, d_person, l_person, n_values = row[base : base + 4]
        if n_person and n_person * 2 >= n_values and d_person * 2 > n_person:
            found.append(
                Finding(
                    file,
                    column,
                    text + "values look like personal names",
                    int(n_person),
                    int(l_person),
                )
            )
        if _five_digit_codes(column, *row[base + 4 : base + 10]) and not any(
            f.column == column and f.rule.endswith("ZIP+4 code in values") for f in found
        ):
            found.append(
                Finding(file, column, text + _ZIP_RULE, int(row[base + 10]), int(row[base + 11]))
            )
    return found


def _five_digit_codes(
    column: str, values: int, five: int, lead: int, round_: int, low: int | None, high: int | None
) -> bool:
    """Whether a column whose distinct values are ``values``, ``five`` of them 5-digit codes
    (``lead`` keeping a leading zero, ``round_`` ending in 0, spanning ``low`` to ``high``)
    holds ZIP codes by the rule of the module docstring."""
    if not five or five * 2 <= values:
        return False  # most values are not 5-digit codes
    if not lead and (five - round_) * 2 <= five:
        return False  # round numbers: doses, counts, costs
    dense = five * 10 >= (high - low + 1) * 9
    named_as_code = bool(set(_tokens(column)) & _CODE_NAMES)
    return not (dense and (five >= 10 or named_as_code))


def guard(findings: list[Finding]) -> None:
    """Raise :class:`IdentifiersFound` if there is any finding."""
    if findings:
        raise IdentifiersFound(findings)


# The tables ingestion writes from raw files; later tables hold only results computed from them.
INGESTED_TABLES = ("subjects", "visits", "item_responses", "item_values", "quarantine")
# Columns of those tables that the pipeline computes rather than copies from a file: a refused
# value's length and keyed hash (whose hex digits can spell "8dec", which reads as a date).
COMPUTED_COLUMNS = {"quarantine": ("value_length", "value_hash")}


def scan_warehouse(
    con: duckdb.DuckDBPyConnection, schema: str, allowed: Mapping[str, str] | None = None
) -> list[Finding]:
    """The same rules over the tables ingestion wrote to a study's schema: a second line of
    defence behind the guard at ingest (used by the ``no_identifier_columns`` asset check)."""
    findings: list[Finding] = []
    # Base tables only: a view (item_responses of a wide file) shows the values of a table that
    # is scanned itself (item_values), and unpivoting it would cost millions of rows.
    present = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND "
            "table_type = 'BASE TABLE'",
            [schema],
        ).fetchall()
    }
    for name in (t for t in INGESTED_TABLES if t in present):
        columns = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND "
                "table_name = ? "
                "ORDER BY ordinal_position",
                [schema, name],
            ).fetchall()
        ]
        # ``line`` of the tables that have one is ingestion's own line number, not a value from a
        # file (and a run of 5-digit numbers in a large file); subjects' columns are all the file's.
        own = ("_line",) if name == "subjects" else ("_line", "line")
        columns = [c for c in columns if c not in own and c not in COMPUTED_COLUMNS.get(name, ())]
        text = ", ".join(f"CAST({quote(c)} AS VARCHAR) AS {quote(c)}" for c in columns)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _warehouse_scan AS "
            f"SELECT row_number() OVER () AS _line, {text} FROM {schema}.{quote(name)}"
        )
        rows = con.execute("SELECT count(*) FROM _warehouse_scan").fetchall()[0][0]
        raw = RawTable(
            Path(f"{schema}.{name}"),
            "_warehouse_scan",
            tuple(columns),
            rows,
            0,
            "warehouse",
            "",
            "",
            "",
        )
        findings += scan(con, raw, label=f"{schema}.{name}", allowed=allowed)
    con.execute("DROP TABLE IF EXISTS _warehouse_scan")
    return findings
