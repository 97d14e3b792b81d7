"""The de-identification guard: a source carrying identifiers never enters the warehouse.

HIPAA Safe Harbor (45 CFR 164.514(b)(2)) lists 18 kinds of identifier that a
de-identified data set must not hold. Every column of every source file,
including columns the study spec does not map, is scanned in DuckDB before
anything is written:

* by its name (``full_name``, ``street``, ``phone``, ``email``, ``ssn``, ``mrn``,
  ``insurance_id``, ``url``, ``ip_address``, ...);
* by its values (e-mail addresses, URLs, IP addresses, phone numbers, SSNs,
  record/plan/account numbers, street addresses, titled names, and values that
  look like personal names), which also covers free-text notes;
* dates: any date more specific than a year (Safe Harbor keeps only the year);
* ages of 90 or more not collapsed into "90+", and birth years implying them;
* ZIP codes longer than 3 digits, or in the 17 restricted 3-digit prefixes;
* fields a REDCap data dictionary marks ``Identifier? = y``.

A refusal names each offending column, the rule and how many rows (with the
first line), and never the values themselves. A study spec may allow a named
column with a written justification (``[identifiers.allow]``); the
justification is recorded in the run's provenance.

The patterns deliberately err towards refusing: a false refusal costs the
coordinator one line of justification, a false acceptance puts identifiers in
a research warehouse.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.readers import RawTable, quote

# HHS list of 3-digit ZIP prefixes with 20,000 or fewer people (2000 Census), which Safe
# Harbor requires to be replaced by "000" (domain reference section 5, [S46, S47]).
RESTRICTED_ZIP3 = ("036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831",
                   "878", "879", "884", "890", "893")

# REDCap's own bookkeeping columns are not about the individual.
STRUCTURAL = frozenset({"redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance",
                        "redcap_data_access_group", "redcap_survey_identifier"})


@dataclass(frozen=True)
class Finding:
    """One column of one file that breaks one rule. Holds no value from the file."""

    file: str
    column: str
    rule: str
    rows: int = 0            # rows whose value breaks the rule; 0 when the column's name or dictionary entry does
    first_line: int = 0

    def describe(self) -> str:
        where = f" ({self.rows} row{'s' if self.rows != 1 else ''}, first on line {self.first_line})" if self.rows else ""
        return f"column {self.column!r}: {self.rule}{where}"


class IdentifiersFound(ValueError):
    """A source refused by the guard; ``findings`` says which columns and why."""

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        super().__init__(refusal_message(findings))


class TextNeeded(ValueError):
    """Raised by :func:`scan` for a file holding as numbers (``RawTable.numbers``) a column
    whose text the guard must see: one named like a date, an age, a ZIP code or a birth year,
    or holding NaN, infinity or a number an 8-digit date could be (19000101 or more). Read the
    file as text and scan it again."""


def refusal_message(findings: list[Finding]) -> str:
    by_file: dict[str, list[Finding]] = {}
    for f in findings:
        by_file.setdefault(f.file, []).append(f)
    parts = []
    for file, items in by_file.items():
        parts.append(f"{file}: refused, it carries identifiers (HIPAA Safe Harbor): "
                     + "; ".join(f.describe() for f in items) + ".")
    columns = sorted({f.column for f in findings})
    parts.append("Nothing was written to the warehouse. Remove these columns or values from the export "
                 "(or export them de-identified: dates as years or days relative to surgery, ages 90 and over "
                 "as \"90+\", ZIP codes as 3 digits). If a column is not an identifier, allow it in study.toml "
                 "under [identifiers.allow] with a justification, e.g. "
                 f"{columns[0]} = \"why this column cannot identify anyone\".")
    return " ".join(parts)


def _tokens(column: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column)  # camelCase -> camel_Case
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


# Column-name rules: (rule, tokens any of which flags the column, joined names that flag it).
_NAME_RULES: tuple[tuple[str, frozenset[str], tuple[str, ...]], ...] = (
    ("name of a person (column name)",
     frozenset({"name", "names", "firstname", "lastname", "surname", "fullname", "fname", "lname", "forename",
                "forenames", "givenname", "middlename", "maiden", "initials", "nickname", "signature"}), ()),
    ("geographic subdivision smaller than a State (column name)",
     frozenset({"address", "addr", "street", "city", "town", "county", "precinct", "geocode", "latitude",
                "longitude", "postcode", "neighbourhood", "neighborhood"}), ("home_address",)),
    ("phone or fax number (column name)",
     frozenset({"phone", "telephone", "tel", "mobile", "cellphone", "fax", "pager", "cell"}), ()),
    ("e-mail address (column name)", frozenset({"email", "mail", "emailaddress"}), ()),
    ("social security number (column name)", frozenset({"ssn", "socsec"}), ("social_security",)),
    ("medical record, health plan or account number (column name)",
     frozenset({"mrn", "insurance", "insurer", "beneficiary", "account", "acct", "medicaid", "medicare",
                "nhs"}),
     ("medical_record", "health_plan", "plan_number", "plan_id", "member_id", "member_number", "chart_number",
      "chart_no", "hospital_number", "hospital_id", "patient_number", "policy_number", "record_number")),
    ("certificate, licence, vehicle or device number (column name)",
     frozenset({"license", "licence", "certificate", "vin", "plate", "serial"}), ("device_id",)),
    ("web address (column name)", frozenset({"url", "website", "homepage", "webpage"}), ()),
    ("IP address (column name)", frozenset({"ip", "ipaddress"}), ("ip_address",)),
    ("photograph or biometric identifier (column name)",
     frozenset({"photo", "photograph", "picture", "fingerprint", "voiceprint", "retina", "iris"}), ()),
)
# "name" is about a person unless the word before it says otherwise.
_NOT_A_PERSON = frozenset({"event", "instrument", "form", "study", "drug", "medication", "med", "site",
                           "hospital", "center", "centre", "procedure", "diagnosis", "file", "arm", "field",
                           "variable", "item", "score", "outcome", "rater_role", "brand", "product"})

_DATE_NAMES = frozenset({"date", "dob", "dod", "doa", "birthdate", "birthday", "dt", "datetime", "timestamp",
                         "admitted", "discharged", "died"})
_AGE_NAMES = frozenset({"age"})
_ZIP_NAMES = frozenset({"zip", "zipcode", "zip3", "postal", "zcta"})
_BIRTH_YEAR = ("birth_year", "year_of_birth", "yob", "birthyear", "dob", "birth_date", "date_of_birth")

# Value patterns (RE2 syntax, run by DuckDB's regexp_matches). Each finds the identifier
# anywhere in the value, so free-text notes are covered by the same rules.
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
VALUE_RULES: tuple[tuple[str, str], ...] = (
    ("e-mail address in values", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    ("web address in values", r"(?i)(https?://|ftp://|\bwww\.)[^\s]+"),
    ("IP address in values",
     r"\b(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\b|(?i)\b([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b"),
    ("social security number in values", r"\b\d{3}-\d{2}-\d{4}\b"),
    ("phone or fax number in values",
     r"(\+\d{1,3}[\s.-]?)?(\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b|\+\d{1,3}([\s.-]\d{2,5}){2,4}\b"),
    ("medical record, plan or account number in values",
     r"(?i)\b(mrn|medical\s+record|chart|acct|account|member\s*id|policy|health\s+plan|insurance|ssn)"
     r"\s*(no\.?|number|num|id|#)?\s*[:#=]?\s*[a-z]{0,3}-?\d{3,}"),
    ("street address in values",
     r"(?i)\b\d{1,6}\s+([a-z0-9.'-]+\s+){1,4}(street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|court|"
     r"ct|way|place|pl|terrace|parkway|pkwy|highway|hwy|circle|cir)\b|(?i)\bp\.?\s?o\.?\s+box\s+\d+"),
    ("name of a person in values",
     r"\b(Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+[A-Z][a-z]+|(?i)\b(patient|pt|first|last|full|maiden)?\s*name\s*[:=]\s*\S"),
    ("date more specific than a year in values",
     r"\b\d{4}[-/.](0?[1-9]|1[0-2])([-/.]\d{1,2})?\b|\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b|\b(0?[1-9]|1[0-2])[-/.]\d{4}\b"
     r"|\b\d{4}-\d{3}\b|(?i)\b" + _MONTH + r"[\s,.-]*\d{1,4}\b|(?i)\b\d{1,2}(st|nd|rd|th)?[\s-]*" + _MONTH
     ),
)
# A whole value shaped like "Jane Roe", "Roe, Jane" or "Jane Q. Roe".
_PERSON_NAME = (r"^[A-Z][a-z]+(-[A-Z][a-z]+)?( [A-Z]\.?)? [A-Z][a-z']+(-[A-Z][a-z]+)?$"
                r"|^[A-Z][a-z']+(-[A-Z][a-z]+)?, [A-Z][a-z]+( [A-Z]\.?)?$")
_YEAR = r"^\s*\d{4}\s*$"
_AGE_90 = r"^\s*(90\s*\+|>=?\s*90|≥\s*90|90\s*(or|and)\s*(older|over|above))\s*$"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
            hits = [i for i in hits if not (i > 0 and tokens[i - 1] in ("ip", "mail", "email", "web", "mac"))]
        if rule.startswith("name of a person"):
            hits = [i for i in hits if not (tokens[i] in ("name", "names") and i > 0 and tokens[i - 1] in _NOT_A_PERSON)]
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


def scan(con: duckdb.DuckDBPyConnection, raw: RawTable, *, label: str = "",
         allowed: Mapping[str, str] | None = None,
         dictionary_identifiers: Mapping[str, str] | None = None,
         date_columns: frozenset[str] = frozenset(),
         free_text: frozenset[str] = frozenset(),
         this_year: int | None = None) -> list[Finding]:
    """Every identifier finding in ``raw``'s columns, in column order.

    Parameters
    ----------
    raw : the loaded file (see :func:`pipeline.readers.read_table`).
    label : the file name used in findings (default the file's name).
    allowed : column -> justification; these columns are not scanned.
    dictionary_identifiers : column -> why a data dictionary marks it as an identifier.
    date_columns : columns a data dictionary declares as dates (checked like date-named columns).
    free_text : columns a data dictionary declares as free text (named as such in findings).
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
        condition = f"NOT num AND regexp_matches(v, {_literal(pattern)})"
        if exempt:
            condition += f" AND \"column\" NOT IN ({_in_list(exempt)})"
        probes.append((rule, condition, None))
    probes.append(("date more specific than a year in values", f"num AND regexp_matches(v, {_literal(_COMPACT_DATE)})"
                   + (f" AND \"column\" NOT IN ({_in_list(kinds['date'])})" if kinds["date"] else ""), None))
    probes.append(("date more specific than a year (a date column may hold only a 4-digit year)",
                   f"NOT regexp_matches(v, {_literal(_YEAR)})", kinds["date"]))
    probes.append(('age of 90 or more not collapsed into "90+"',
                   f"(num AND TRY_CAST(replace(v, ',', '.') AS DOUBLE) >= 90) OR (NOT num AND regexp_matches(v, '[0-9]') "
                   f"AND NOT regexp_matches(v, {_literal(_AGE_90)}))", kinds["age"]))
    probes.append(("birth year implying an age of 90 or more", f"TRY_CAST(v AS INTEGER) <= {year - 90}",
                   kinds["birth_year"]))
    probes.append(("ZIP code longer than 3 digits", "NOT regexp_matches(v, '^[0-9]{3}$')", kinds["zip"]))
    probes.append(("restricted 3-digit ZIP prefix (20,000 people or fewer; must be 000)",
                   f"v IN ({restricted})", kinds["zip"]))
    # REDCap's event, instrument and group names are the project's own labels, not the individual's.
    valued = [c for c in scanned if c not in STRUCTURAL or c == "redcap_survey_identifier"]
    findings.extend(_run_probes(con, raw, file, valued, probes, free_text))
    order = {c: i for i, c in enumerate(raw.columns)}
    return sorted(findings, key=lambda f: order.get(f.column, len(order)))


_COMPACT_DATE = r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"


def _in_list(columns: set[str]) -> str:
    return ", ".join(_literal(c) for c in sorted(columns))


# Below this, a number cannot be an 8-digit compact date (_COMPACT_DATE starts at 19000101).
_BELOW_DATES = 19000101


def _needing_values(con: duckdb.DuckDBPyConnection, raw: RawTable, columns: list[str],
                    probes: list[tuple[str, str, set[str] | None]]) -> list[str]:
    """The columns whose values the probes must see: all but those holding only numbers below
    :data:`_BELOW_DATES`, for which no probe can fire.

    For a number (``num``) the text patterns do not run; the only probe left for a column that
    no column-specific rule names is the compact date, which needs 19000101 or more. Item
    columns of a registry are such columns, and one pass over them costs a fraction of
    grouping their values.
    """
    special = set().union(*(only for _, _, only in probes if only))
    plain = [c for c in columns if c not in special]
    clear = set()
    if plain:
        # NULL (empty) cells pass; text, NaN and large numbers do not: every written cell reads as
        # a number (as many numbers as cells) and the largest is below (NaN sorts above every
        # number, so a NaN fails too). Two aggregates over the parsed column cost less than a test
        # per cell.
        checks = ", ".join(f"count({quote(c)}) = count(TRY_CAST({quote(c)} AS DOUBLE)) AND "
                           f"coalesce(max(TRY_CAST({quote(c)} AS DOUBLE)) < {_BELOW_DATES}, TRUE)" for c in plain)
        passed = con.execute(f"SELECT {checks} FROM {raw.table}").fetchall()[0]
        clear = {c for c, ok in zip(plain, passed) if ok}
    needing = [c for c in columns if c not in clear]
    typed = [c for c in needing if c in raw.numbers]
    if typed:  # their text is not in the table
        raise TextNeeded(f"{raw.path}: column(s) {', '.join(typed)} were read as numbers, but the identifier "
                         "guard must see their text; read the file as text.")
    return needing


def _run_probes(con: duckdb.DuckDBPyConnection, raw: RawTable, file: str, columns: list[str],
                probes: list[tuple[str, str, set[str] | None]], free_text: frozenset[str]) -> list[Finding]:
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
        f"SELECT {_literal(c)} AS \"column\", {quote(c)} AS written, count(*) AS n, min(_line) AS first "
        f"FROM {raw.table} GROUP BY ALL" for c in columns)
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
            condition = f"\"column\" IN ({_in_list(only)}) AND ({condition})"
        selects.append(f"sum(n) FILTER (WHERE {condition}) AS n{i}, min(first) FILTER (WHERE {condition}) AS l{i}")
    # Personal names: most of a column's values shaped like a name, and those mostly distinct
    # (a diagnosis such as "Ramsay Hunt" repeats; people's names rarely do).
    person = f"NOT num AND regexp_matches(v, {_literal(_PERSON_NAME)})"
    selects.append(f"sum(n) FILTER (WHERE {person}) AS n_person, count(*) FILTER (WHERE {person}) AS d_person, "
                   f"min(first) FILTER (WHERE {person}) AS l_person, sum(n) AS n_values")
    try:
        rows = con.execute(f'SELECT "column", {", ".join(selects)} FROM _guard_values GROUP BY "column"').fetchall()
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
        n_person, d_person, l_person, n_values = row[-4:]
        if n_person and n_person * 2 >= n_values and d_person * 2 > n_person:
            found.append(Finding(file, column, text + "values look like personal names", int(n_person), int(l_person)))
    return found


def guard(findings: list[Finding]) -> None:
    """Raise :class:`IdentifiersFound` if there is any finding."""
    if findings:
        raise IdentifiersFound(findings)


# The tables ingestion writes from raw files; later tables hold only results computed from them.
INGESTED_TABLES = ("subjects", "visits", "item_responses", "item_values", "quarantine")
# Columns of those tables that the pipeline computes rather than copies from a file: a refused
# value's length and keyed hash (whose hex digits can spell "8dec", which reads as a date).
COMPUTED_COLUMNS = {"quarantine": ("value_length", "value_hash")}


def scan_warehouse(con: duckdb.DuckDBPyConnection, schema: str,
                   allowed: Mapping[str, str] | None = None) -> list[Finding]:
    """The same rules over the tables ingestion wrote to a study's schema: a second line of
    defence behind the guard at ingest (used by the ``no_identifier_columns`` asset check)."""
    findings: list[Finding] = []
    # Base tables only: a view (item_responses of a wide file) shows the values of a table that
    # is scanned itself (item_values), and unpivoting it would cost millions of rows.
    present = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'",
        [schema]).fetchall()}
    for name in (t for t in INGESTED_TABLES if t in present):
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position", [schema, name]).fetchall()]
        columns = [c for c in columns if c not in COMPUTED_COLUMNS.get(name, ())]
        text = ", ".join(f"CAST({quote(c)} AS VARCHAR) AS {quote(c)}" for c in columns if c != "_line")
        con.execute(f"CREATE OR REPLACE TEMP TABLE _warehouse_scan AS "
                    f"SELECT row_number() OVER () AS _line, {text} FROM {schema}.{quote(name)}")
        rows = con.execute("SELECT count(*) FROM _warehouse_scan").fetchall()[0][0]
        raw = RawTable(Path(f"{schema}.{name}"), "_warehouse_scan", tuple(c for c in columns if c != "_line"),
                       rows, 0, "warehouse", "", "", "")
        findings += scan(con, raw, label=f"{schema}.{name}", allowed=allowed)
    con.execute("DROP TABLE IF EXISTS _warehouse_scan")
    return findings
