"""The de-identification guard: each Safe Harbor rule refuses what it should and lets the rest
through."""

from __future__ import annotations

import csv

import duckdb
import pytest

from pipeline.ingest.deidentify import IdentifiersFound, guard, name_rules, refusal_message, scan
from pipeline.ingest.readers import read_table


def findings_for(tmp_path, column: str, values: list[str], **kwargs) -> set[str]:
    path = tmp_path / "export.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study_id", column])
        writer.writerows([f"S{i}", v] for i, v in enumerate(values))
    con = duckdb.connect()
    raw = read_table(con, path, "raw")
    return {f.rule for f in scan(con, raw, this_year=2026, **kwargs) if f.column == column}


def findings_in(path, text: str) -> list:
    """What the guard finds in ``text`` written as the file ``path``."""
    path.write_text(text)
    con = duckdb.connect()
    return scan(con, read_table(con, path, "raw"))


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
    (
        "medical record, plan or account number in values",
        "note",
        ["account # 88812"],
        ["account of event"],
    ),
    ("street address in values", "note", ["lives at 12 Elm Street"], ["12 weeks"]),
    ("name of a person in values", "note", ["seen by Dr. Smith"], ["seen by dr"]),
    (
        "values look like personal names",
        "surgeon",
        ["Jane Roe", "John Doe", "Ann Poe"],
        ["Ramsay Hunt", "Ramsay Hunt", "bells_palsy", "Ramsay Hunt"],
    ),
    ("date more specific than a year in values", "note", ["2019-03-04"], ["2019"]),
    ("date more specific than a year in values", "note", ["03/04/2019"], ["3/4"]),
    ("date more specific than a year in values", "note", ["4 March 2019"], ["March"]),
    ("date more specific than a year in values", "note", ["Mar 3, 2019"], ["4 mm"]),
    ("date more specific than a year in values", "note", ["12/2019"], ["12"]),
    ("date more specific than a year in values", "note", ["20190304"], ["20191304"]),
    ("date more specific than a year (a date column", "surgery_date", ["2019-03"], ["2019"]),
    (
        "birth year implying an age of 90 or more",
        "dob",
        ["1930"],
        ["1970"],
    ),  # a date-of-birth column holding years
    ('age of 90 or more not collapsed into "90+"', "age", ["90"], ["89", "90+", ">=90", "≥90"]),
    ('age of 90 or more not collapsed into "90+"', "age_at_surgery", ["93.5"], ["45.5"]),
    ("birth year implying an age of 90 or more", "birth_year", ["1930"], ["1950"]),
    ("ZIP code longer than 3 digits", "zip", ["02139"], ["021", "000"]),
    ("restricted 3-digit ZIP prefix", "zip3", ["036"], ["021"]),
]


@pytest.mark.parametrize(
    "rule, column, bad, good", RULES, ids=[f"{r[1]}-{r[0][:30]}" for r in RULES]
)
def test_each_rule_refuses_its_pattern_and_passes_its_look_alikes(
    tmp_path, rule, column, bad, good
):
    assert any(r.startswith(rule) for r in findings_for(tmp_path, column, bad)), rule
    if good is not None:
        assert not findings_for(tmp_path, column, good)


def test_dob_holding_only_years_is_still_a_date_column_but_years_pass(tmp_path):
    assert (
        findings_for(tmp_path, "dob", ["1970"]) == set()
    )  # a year is allowed; 1970 implies no age >= 90


@pytest.mark.parametrize("odd", ["jane.roe@example.org", "20190304", "nan", "inf"])
def test_one_cell_that_is_not_a_small_number_sends_a_numeric_column_to_the_probes(tmp_path, odd):
    # Columns holding only numbers below 501 (empty cells aside) skip the value probes: one
    # text cell, compact date, NaN or infinity among them must not let the column skip them.
    from pipeline.ingest.deidentify import _needing_values

    path = tmp_path / "export.csv"
    path.write_text("study_id,score\nS1,3\nS2,\nS3,4.5\nS4,-20190304\n", encoding="utf-8")
    con = duckdb.connect()
    raw = read_table(con, path, "raw")
    assert _needing_values(con, raw, ["score"], []) == []
    path.write_text(f"study_id,score\nS1,3\nS2,\nS3,{odd}\nS4,4.5\n", encoding="utf-8")
    raw = read_table(con, path, "raw")
    assert _needing_values(con, raw, ["score"], []) == ["score"]
    if odd == "20190304":
        assert findings_for(tmp_path, "score", ["3", "", odd]) == {
            "date more specific than a year in values"
        }


@pytest.mark.parametrize(
    "column",
    [
        "study_id",
        "record_id",
        "redcap_event_name",
        "event_name",
        "drug_name",
        "surgery_year",
        "day",
        "months_since_onset",
        "face_social",
        "social_function",
        "sb_syn_pucker",
        "hb_observer",
        "side",
        "state",
    ],
)
def test_ordinary_study_columns_are_not_identifiers_by_name(column):
    assert name_rules(column) == []


def test_dictionary_identifier_flag_refuses_whatever_the_name(tmp_path):
    rules = findings_for(
        tmp_path,
        "contact",
        ["mother"],
        dictionary_identifiers={
            "contact": "marked 'Identifier? = y' in the REDCap data dictionary"
        },
    )
    assert rules == {"marked 'Identifier? = y' in the REDCap data dictionary"}


def test_dictionary_date_and_free_text_columns(tmp_path):
    assert findings_for(tmp_path, "onset", ["2019-04"], date_columns=frozenset({"onset"})) == {
        "date more specific than a year (a date column may hold only a 4-digit year)"
    }
    assert findings_for(
        tmp_path, "comments", ["call 617-555-0142"], free_text=frozenset({"comments"})
    ) == {"free text: phone or fax number in values"}
    assert (
        findings_for(
            tmp_path,
            "comments",
            ["eyelid swelling, resolved by week 2"],
            free_text=frozenset({"comments"}),
        )
        == set()
    )


def test_allowed_column_is_not_scanned(tmp_path):
    assert (
        findings_for(
            tmp_path, "surgeon_name", ["Jane Roe"], allowed={"surgeon_name": "staff, not patients"}
        )
        == set()
    )


def test_refusal_names_column_rule_and_line_but_never_the_value(tmp_path):
    findings = findings_in(
        tmp_path / "export.csv",
        "study_id,notes,full_name\nS1,ok,Jane Roe\nS2,write to jane.roe@example.org,John Doe\n",
    )
    with pytest.raises(IdentifiersFound) as refused:
        guard(findings)
    message = str(refused.value)
    assert message == refusal_message(findings)
    assert "column 'notes': e-mail address in values (1 row, first on line 3)" in message
    assert "column 'full_name': name of a person (column name)" in message
    for value in ("jane", "Jane", "Roe", "example.org", "John"):
        assert value not in message
    # A column of e-mail addresses and one named as a person's name are real identifiers: removed,
    # never allowed.
    assert "Real identifiers must be removed from the export, never allowed" in message
    assert "[identifiers.allow]" not in message


def test_demo_cohort_passes_the_guard():
    from pipeline import paths

    con = duckdb.connect()
    for name in ("patients.csv", "visits.csv"):
        raw = read_table(con, paths.RAW_DATA_DIR / "demo" / name, "raw")
        assert scan(con, raw) == [], name


ZIP = "5-digit codes in values, like ZIP codes"


@pytest.mark.parametrize(
    "column, values",
    [
        ("region", ["02114", "10027", "02139", "02114"]),  # leading zeros kept
        ("area", ["10027", "94110", "60614", "30301", "10027"]),  # no leading zero, not round
        ("region", ["02114-1234", "02139-4307", "10027-6601"]),  # ZIP+4
        ("region", ["02114", "10027", "unknown", "NA", "02139"]),  # most values, not all
        ("site", ["02114", "02115", "02116"]),  # a dense run, but three and not named as codes
    ],
)
def test_five_digit_codes_under_any_name_are_refused(tmp_path, column, values):
    rules = findings_for(tmp_path, column, values)
    assert ZIP in rules or "ZIP+4 code in values" in rules, rules


@pytest.mark.parametrize(
    "column, values",
    [
        ("day", ["-14", "31", "95", "180", "365", "730", "36500"]),
        ("score", ["0", "55", "100", "72.5"]),
        ("surgery_year", ["2016", "2017", "2019"]),
        ("dose_units", ["10000", "12500", "20000", "15000"]),  # round: doses, counts, costs
        ("dose_units", ["100", "10000", "250"]),  # 5 digits, but not most of the values
        ("subject_code", [str(10000 + i) for i in range(1, 64)]),  # study codes in sequence
        ("record_id", ["00001", "00002", "00003", "00005"]),  # zero-padded codes, named as codes
        ("visit_no", [str(20000 + i) for i in range(40)]),  # a long dense run, whatever the name
        ("hb", ["3", "4", "03", "0042"]),  # leading zeros, but no 5-digit code
    ],
)
def test_ordinary_clinical_columns_are_not_taken_for_zip_codes(tmp_path, column, values):
    assert findings_for(tmp_path, column, values) == set()


def test_zip_codes_read_as_numbers_are_looked_at_as_text(tmp_path):
    # A number column holding 02114 reads as 2114: below every threshold of the fast path that
    # lets small numbers skip the probes, unless whole numbers from 501 to 99999 need their text.
    from pipeline.ingest.deidentify import TextNeeded, _needing_values

    path = tmp_path / "export.csv"
    path.write_text("study_id,region\nS1,02114\nS2,02139\nS3,00601\n", encoding="utf-8")
    con = duckdb.connect()
    assert _needing_values(con, read_table(con, path, "raw"), ["region"], []) == ["region"]
    typed = read_table(con, path, "raw", numbers=["region"])
    assert typed.numbers == ("region",)
    assert con.execute("SELECT region FROM raw ORDER BY _line").fetchall() == [
        (2114.0,),
        (2139.0,),
        (601.0,),
    ]
    with pytest.raises(TextNeeded):
        scan(con, typed)
    assert {f.rule for f in scan(con, read_table(con, path, "raw"))} == {ZIP}


def test_a_registry_sized_number_column_of_small_values_still_skips_the_probes(tmp_path):
    from pipeline.ingest.deidentify import _needing_values

    path = tmp_path / "export.csv"
    path.write_text("study_id,eface,landmark\nS1,200,12.5\nS2,0,180.0\nS3,,-3\n", encoding="utf-8")
    con = duckdb.connect()
    raw = read_table(con, path, "raw", numbers=["eface", "landmark"])
    assert raw.numbers == ("eface", "landmark")
    assert _needing_values(con, raw, ["eface", "landmark"], []) == []


def test_refusal_offers_allowing_only_a_column_flagged_by_an_ambiguous_name_alone(tmp_path):
    path = tmp_path / "export.csv"
    findings = findings_in(
        path,
        "study_id,address,home_town,cell_count,iris_score\n"
        "S1,12 Elm Street,ok,4,2\nS2,9 Oak Avenue,ok,5,3\n",
    )
    message = refusal_message(findings)
    assert "Real identifiers must be removed from the export, never allowed" in message
    # address holds street addresses; home_town is a place by its name; neither may be allowed.
    assert (
        "(cell_count, iris_score) may instead be allowed in study.toml under [identifiers.allow]"
        in message
    )
    assert 'e.g. cell_count = "why this column cannot identify anyone"' in message
    assert 'address = "' not in message and "home_town =" not in message
    # A column of the same name whose values break no rule is still an address by its name.
    message = refusal_message(findings_in(path, "study_id,address\nS1,x\n"))
    assert "column 'address'" in message and "[identifiers.allow]" not in message


def test_a_first_line_of_values_is_named_by_position_and_scanned_itself(tmp_path):
    findings = findings_in(
        tmp_path / "visits.csv",
        "FP-001,Jane Roe,617-555-0142,1970-04-12,jroe@example.com,12 Elm Street\n"
        "FP-002,John Doe,617-555-0199,1961-02-03,jdoe@example.com,9 Oak Avenue\n",
    )
    assert all(not f.named and f.column.endswith("of the header") for f in findings)
    described = {f.describe() for f in findings}
    assert (
        "column 3 of the header: phone or fax number in values (2 rows, first on line 1)"
        in described
    )
    assert "column 5 of the header: e-mail address in values (2 rows, first on line 1)" in described
    message = refusal_message(findings)
    assert "The first line of visits.csv does not look like a header row" in message
    for value in (
        "FP-00",
        "Jane",
        "Roe",
        "617",
        "555",
        "1970",
        "jroe",
        "example.com",
        "Elm",
        "Street",
    ):
        assert value not in message


def test_one_name_shaped_like_a_persons_in_a_real_header_is_named_by_position_alone(tmp_path):
    path = tmp_path / "export.csv"
    findings = findings_in(path, "study_id,Jane Roe,contact\nS1,x,jane@example.org\n")
    assert [f.describe() for f in findings] == [
        "column 'contact': e-mail address in values (1 row, first on line 2)"
    ]
    findings = findings_in(path, "study_id,Jane Roe\nS1,a@example.org\n")
    assert [f.describe() for f in findings] == [
        "column 2 of the header: e-mail address in values (1 row, first on line 2)"
    ]
