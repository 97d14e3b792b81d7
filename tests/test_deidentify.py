"""The de-identification guard: each Safe Harbor rule refuses what it should and lets the rest through."""

from __future__ import annotations

import csv

import duckdb
import pytest

from pipeline.deidentify import IdentifiersFound, guard, name_rules, refusal_message, scan
from pipeline.readers import read_table


def findings_for(tmp_path, column: str, values: list[str], **kwargs) -> set[str]:
    path = tmp_path / "export.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study_id", column])
        writer.writerows([f"S{i}", v] for i, v in enumerate(values))
    con = duckdb.connect()
    raw = read_table(con, path, "raw")
    return {f.rule for f in scan(con, raw, this_year=2026, **kwargs) if f.column == column}


# (rule fragment, column, values that break it, values of the same column that do not)
RULES = [
    ("name of a person (column name)", "patient_name", ["x"], None),
    ("name of a person (column name)", "lastName", ["x"], None),
    ("geographic subdivision", "street", ["x"], None),
    ("geographic subdivision", "city", ["x"], None),
    ("phone or fax number (column name)", "fax", ["x"], None),
    ("e-mail address (column name)", "e_mail", ["x"], None),
    ("social security number (column name)", "ssn", ["x"], None),
    ("medical record, health plan or account number (column name)", "mrn", ["x"], None),
    ("medical record, health plan or account number (column name)", "health_plan_id", ["x"], None),
    ("medical record, health plan or account number (column name)", "account_no", ["x"], None),
    ("web address (column name)", "url", ["x"], None),
    ("IP address (column name)", "ip_address", ["x"], None),
    ("e-mail address in values", "contact", ["jane.roe@example.org"], ["by letter"]),
    ("web address in values", "note", ["see https://example.org/p/1"], ["see chart"]),
    ("web address in values", "note", ["www.example.org"], ["www"]),
    ("IP address in values", "note", ["from 192.168.10.4"], ["grade 1.2.3"]),
    ("social security number in values", "note", ["123-45-6789"], ["12-345"]),
    ("phone or fax number in values", "note", ["(617) 555-0142"], ["HB 3 to 2"]),
    ("phone or fax number in values", "note", ["617.555.0142"], ["5 550 142"]),
    # Spaces only: without its spaces the value reads as a number, but it is still a phone number.
    ("phone or fax number in values", "note", ["617 555 0142"], ["5 550 142", "12", "3.5"]),
    ("medical record, plan or account number in values", "note", ["MRN: 00412233"], ["MRI normal"]),
    ("medical record, plan or account number in values", "note", ["account # 88812"], ["account of event"]),
    ("street address in values", "note", ["lives at 12 Elm Street"], ["12 weeks"]),
    ("name of a person in values", "note", ["seen by Dr. Smith"], ["seen by dr"]),
    ("values look like personal names", "surgeon", ["Jane Roe", "John Doe", "Ann Poe"],
     ["Ramsay Hunt", "Ramsay Hunt", "bells_palsy", "Ramsay Hunt"]),
    ("date more specific than a year in values", "note", ["2019-03-04"], ["2019"]),
    ("date more specific than a year in values", "note", ["03/04/2019"], ["3/4"]),
    ("date more specific than a year in values", "note", ["4 March 2019"], ["March"]),
    ("date more specific than a year in values", "note", ["Mar 3, 2019"], ["4 mm"]),
    ("date more specific than a year in values", "note", ["12/2019"], ["12"]),
    ("date more specific than a year in values", "note", ["20190304"], ["20191304"]),
    ("date more specific than a year (a date column", "surgery_date", ["2019-03"], ["2019"]),
    ("birth year implying an age of 90 or more", "dob", ["1930"], ["1970"]),   # a date-of-birth column holding years
    ('age of 90 or more not collapsed into "90+"', "age", ["90"], ["89", "90+", ">=90", "≥90"]),
    ('age of 90 or more not collapsed into "90+"', "age_at_surgery", ["93.5"], ["45.5"]),
    ("birth year implying an age of 90 or more", "birth_year", ["1930"], ["1950"]),
    ("ZIP code longer than 3 digits", "zip", ["02139"], ["021", "000"]),
    ("restricted 3-digit ZIP prefix", "zip3", ["036"], ["021"]),
]


@pytest.mark.parametrize("rule, column, bad, good", RULES, ids=[f"{r[1]}-{r[0][:30]}" for r in RULES])
def test_each_rule_refuses_its_pattern_and_passes_its_look_alikes(tmp_path, rule, column, bad, good):
    assert any(r.startswith(rule) for r in findings_for(tmp_path, column, bad)), rule
    if good is not None:
        assert not findings_for(tmp_path, column, good)


def test_dob_holding_only_years_is_still_a_date_column_but_years_pass(tmp_path):
    assert findings_for(tmp_path, "dob", ["1970"]) == set()  # a year is allowed; 1970 implies no age >= 90


@pytest.mark.parametrize("odd", ["jane.roe@example.org", "20190304", "nan", "inf"])
def test_one_cell_that_is_not_a_small_number_sends_a_numeric_column_to_the_probes(tmp_path, odd):
    # Columns holding only numbers below 19000101 (empty cells aside) skip the value probes: one
    # text cell, compact date, NaN or infinity among them must not let the column skip them.
    from pipeline.deidentify import _needing_values

    path = tmp_path / "export.csv"
    path.write_text("study_id,score\nS1,3\nS2,\nS3,4.5\nS4,-20190304\n", encoding="utf-8")
    con = duckdb.connect()
    raw = read_table(con, path, "raw")
    assert _needing_values(con, raw, ["score"], []) == []
    path.write_text(f"study_id,score\nS1,3\nS2,\nS3,{odd}\nS4,4.5\n", encoding="utf-8")
    raw = read_table(con, path, "raw")
    assert _needing_values(con, raw, ["score"], []) == ["score"]
    if odd == "20190304":
        assert findings_for(tmp_path, "score", ["3", "", odd]) == {"date more specific than a year in values"}


@pytest.mark.parametrize("column", [
    "study_id", "record_id", "redcap_event_name", "event_name", "drug_name", "surgery_year", "day",
    "months_since_onset", "face_social", "social_function", "sb_syn_pucker", "hb_observer", "side", "state",
])
def test_ordinary_study_columns_are_not_identifiers_by_name(column):
    assert name_rules(column) == []


def test_dictionary_identifier_flag_refuses_whatever_the_name(tmp_path):
    rules = findings_for(tmp_path, "contact", ["mother"],
                         dictionary_identifiers={"contact": "marked 'Identifier? = y' in the REDCap data dictionary"})
    assert rules == {"marked 'Identifier? = y' in the REDCap data dictionary"}


def test_dictionary_date_and_free_text_columns(tmp_path):
    assert findings_for(tmp_path, "onset", ["2019-04"], date_columns=frozenset({"onset"})) == {
        "date more specific than a year (a date column may hold only a 4-digit year)"}
    assert findings_for(tmp_path, "comments", ["call 617-555-0142"], free_text=frozenset({"comments"})) == {
        "free text: phone or fax number in values"}
    assert findings_for(tmp_path, "comments", ["eyelid swelling, resolved by week 2"],
                        free_text=frozenset({"comments"})) == set()


def test_allowed_column_is_not_scanned(tmp_path):
    assert findings_for(tmp_path, "surgeon_name", ["Jane Roe"], allowed={"surgeon_name": "staff, not patients"}) == set()


def test_refusal_names_column_rule_and_line_but_never_the_value(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("study_id,notes,full_name\nS1,ok,Jane Roe\nS2,write to jane.roe@example.org,John Doe\n")
    con = duckdb.connect()
    findings = scan(con, read_table(con, path, "raw"))
    with pytest.raises(IdentifiersFound) as refused:
        guard(findings)
    message = str(refused.value)
    assert message == refusal_message(findings)
    assert "column 'notes': e-mail address in values (1 row, first on line 3)" in message
    assert "column 'full_name': name of a person (column name)" in message
    for value in ("jane", "Jane", "Roe", "example.org", "John"):
        assert value not in message
    # A column of e-mail addresses and one named as a person's name are real identifiers: removed, never allowed.
    assert "Real identifiers must be removed from the export, never allowed" in message
    assert "[identifiers.allow]" not in message


def test_demo_cohort_passes_the_guard():
    from pipeline import paths

    con = duckdb.connect()
    for name in ("patients.csv", "visits.csv"):
        raw = read_table(con, paths.RAW_DATA_DIR / "demo" / name, "raw")
        assert scan(con, raw) == [], name
