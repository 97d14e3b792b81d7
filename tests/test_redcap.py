"""REDCap exports: dictionary, classic and longitudinal projects, repeating instruments, labels,
identifiers.

The exports in tests/redcap/ are small synthetic projects written by hand in REDCap's
formats (flat records export and 18-column data dictionary).
"""

from __future__ import annotations

import csv
import shutil
import tomllib
from pathlib import Path

import duckdb
import pytest

from pipeline.ingest.deidentify import IdentifiersFound
from pipeline.ingest.ingestion import IngestError, ingest_study
from pipeline.ingest.redcap import (
    CHOICES,
    IDENTIFIER,
    MAXIMUM,
    MINIMUM,
    VALIDATION,
    RedcapError,
    draft_spec,
    read_dictionary,
    split_checkbox,
)
from pipeline.ingest.redcap import (
    TYPE as FIELD_TYPE,
)
from pipeline.spec.study import load_study
from specs import REDCAP_STUDY, study_toml

HERE = Path(__file__).parent / "redcap"

# The longitudinal project of tests/redcap/: subjects in the enrolment event, two grading events.
LONGITUDINAL = {
    "redcap": {
        "subjects_event": "enrolment_arm_1",
        "events": {
            "baseline_arm_1": {"visit": "pre", "day": -14},
            "month_12_arm_1": {"visit": "m12", "day": 365},
        },
    }
}
CLASSIC = {"redcap": {"subjects_event": None, "events": None, "repeat_instrument": "grading"}}


def project(
    tmp_path: Path, records: str, dictionary: str = "dictionary.csv", *changes: dict
) -> Path:
    """The export ``records`` and its ``dictionary`` in a study folder, with the longitudinal
    project's spec changed by ``changes``."""
    folder = tmp_path / "rc"
    folder.mkdir(parents=True)
    for name in (records, dictionary):
        shutil.copy(HERE / name, folder / name)
    (folder / "study.toml").write_text(
        study_toml(
            REDCAP_STUDY,
            {"study": {"name": "rc"}, "subjects": {"file": records}, "visits": {"file": records}},
            LONGITUDINAL,
            {"redcap": {"dictionary": dictionary}},
            *changes,
        )
    )
    return folder


def test_dictionary_fields_types_choices_and_identifiers():
    d = read_dictionary(HERE / "dictionary_identifiers.csv")
    assert d.first_field == "record_id"
    assert d.fields["etiology"].choices == (
        ("1", "Bell's palsy"),
        ("2", "Ramsay Hunt"),
        ("3", "Acoustic neuroma"),
    )
    assert d.fields["dob"].is_date and d.fields["ae_description"].is_free_text
    assert [f.name for f in d.fields.values() if f.identifier] == ["patient_name", "mrn", "contact"]
    assert d.forms == ["enrolment", "grading", "adverse_event"]


@pytest.mark.parametrize(
    "column, expected",
    [
        ("prior_treatment___1", ("prior_treatment", "1")),
        # code -99 is written "_99", giving four underscores; the last "___" leaves
        # "prior_treatment_",
        # which Dictionary.field_for maps back to the checkbox field.
        ("prior_treatment____99", ("prior_treatment_", "99")),
        ("a___b___2", ("a___b", "2")),
        ("hb_observer", None),
    ],
)
def test_checkbox_columns_split_on_the_last_triple_underscore(column, expected):
    assert split_checkbox(column) == expected


def test_checkbox_choice_columns_map_to_their_field():
    d = read_dictionary(HERE / "dictionary.csv")
    assert d.field_for("prior_treatment___2").name == "prior_treatment"
    assert d.field_for("prior_treatment____99").name == "prior_treatment"
    assert d.field_for("unknown___1") is None


def test_not_a_dictionary_is_one_clear_error(tmp_path):
    bad = tmp_path / "dict.csv"
    bad.write_text("field,form\nrecord_id,enrolment\n")
    with pytest.raises(
        RedcapError, match=r"not a REDCap data dictionary: the header lacks Variable / Field Name"
    ):
        read_dictionary(bad)


def test_longitudinal_export_every_row_accounted(tmp_path):
    con = duckdb.connect()
    files = {f.file: f for f in ingest_study(con, load_study(project(tmp_path, "records.csv")))}
    # 3 enrolment rows are subjects; the other 8 rows are read as visits: 5 accepted, record 1's
    # adverse-event instance, record 3's unmapped month_3 event and record 4 (no enrolment)
    # quarantined.
    s, v = files["records.csv [subjects]"], files["records.csv [visits]"]
    assert (s.rows_read, s.rows_accepted, s.rows_quarantined) == (3, 3, 0)
    assert (v.rows_read, v.rows_accepted, v.rows_quarantined) == (8, 5, 3)
    assert con.execute(
        'SELECT line, "column", reason FROM rc.quarantine ORDER BY line'
    ).fetchall() == [
        (
            5,
            "redcap_repeat_instrument",
            "rows of this repeating instrument are not visits; "
            "name it in [redcap] repeat_instrument",
        ),
        (11, "redcap_event_name", "event is not mapped to a visit in [redcap.events]"),
        (12, "record_id", "unknown subject: not an accepted row of records.csv [subjects]"),
    ]
    # Days come from the day field; record 2's baseline has none, so the event's nominal day is
    # used.
    assert con.execute("SELECT subject, visit, day FROM rc.visits ORDER BY ALL").fetchall() == [
        ("1", "m12", 368),
        ("1", "pre", -12),
        ("2", "m12", 380),
        ("2", "pre", -14),
        ("3", "pre", -20),
    ]
    assert con.execute(
        "SELECT subject, age, sex, prior_treatment___1 FROM rc.subjects ORDER BY subject"
    ).fetchall() == [("1", "54", "1", "1"), ("2", "90+", "2", "0"), ("3", "61", "1", "0")]


def test_labels_export_gives_the_same_tables_as_raw_codes(tmp_path):
    raw, labels = duckdb.connect(), duckdb.connect()
    ingest_study(raw, load_study(project(tmp_path / "a", "records.csv")))
    ingest_study(labels, load_study(project(tmp_path / "b", "records_labels.csv")))
    for table in ("subjects", "visits", "item_responses"):
        query = f"SELECT * FROM rc.{table} ORDER BY ALL"
        assert labels.execute(query).fetchall() == raw.execute(query).fetchall(), table


def test_classic_project_with_a_repeating_visits_instrument(tmp_path):
    con = duckdb.connect()
    files = {
        f.file: f
        for f in ingest_study(
            con, load_study(project(tmp_path, "classic_records.csv", "dictionary.csv", CLASSIC))
        )
    }
    v = files["classic_records.csv [visits]"]
    # 6 repeating rows: 5 grading instances are visits, the adverse event is quarantined; record 2's
    # third grading has House-Brackmann 9, refused as a value (the visit itself is kept).
    assert (v.rows_read, v.rows_accepted, v.rows_quarantined) == (6, 5, 1)
    assert con.execute("SELECT subject, visit, day FROM rc.visits ORDER BY ALL").fetchall() == [
        ("1", "grading_1", -12),
        ("1", "grading_2", 368),
        ("2", "grading_1", -3),
        ("2", "grading_2", 380),
        ("2", "grading_3", 410),
    ]
    assert con.execute("SELECT reason FROM rc.quarantine WHERE scope = 'value'").fetchall() == [
        ("outside the allowed range 1 to 6 for house_brackmann grade",)
    ]


def test_longitudinal_export_without_a_subjects_event_is_refused_with_the_events_listed(tmp_path):
    spec = {"redcap": {"subjects_event": None}}
    with pytest.raises(
        IngestError,
        match=r"longitudinal export \(events: enrolment_arm_1, baseline_arm_1, "
        r"month_12_arm_1, month_3_arm_1\); set \[redcap\] subjects_event",
    ):
        ingest_study(
            duckdb.connect(), load_study(project(tmp_path, "records.csv", "dictionary.csv", spec))
        )


def test_export_carrying_identifier_fields_is_refused_naming_every_column(tmp_path):
    folder = project(tmp_path, "records_identifiers.csv", "dictionary_identifiers.csv")
    con = duckdb.connect()
    with pytest.raises(IdentifiersFound) as refused:
        ingest_study(con, load_study(folder))
    found = {(f.column, f.rule) for f in refused.value.findings}
    marked = "marked 'Identifier? = y' in the REDCap data dictionary"
    assert {("patient_name", marked), ("mrn", marked), ("contact", marked)} <= found
    assert ("patient_name", "name of a person (column name)") in found
    assert (
        "dob",
        "date more specific than a year (a date column may hold only a 4-digit year)",
    ) in found
    assert ("ae_description", "free text: phone or fax number in values") in found
    message = str(refused.value)
    for value in ("Jane", "Roe", "A7730021", "1970-04-12", "617-555-0142", "mother"):
        assert value not in message
    assert con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'rc'"
    ).fetchall() == [(0,)]


def test_allowing_one_column_leaves_the_others_refused(tmp_path):
    folder = project(tmp_path, "records_identifiers.csv", "dictionary_identifiers.csv")
    spec = folder / "study.toml"
    spec.write_text(
        spec.read_text()
        + '\n[identifiers.allow]\ncontact = "relationship of the contact person, no name or '
        'number"\n'
    )
    with pytest.raises(IdentifiersFound) as refused:
        ingest_study(duckdb.connect(), load_study(folder))
    columns = {f.column for f in refused.value.findings}
    assert "contact" not in columns and {"patient_name", "mrn", "dob", "ae_description"} <= columns


def test_init_drafts_a_spec_that_loads(tmp_path):
    d = read_dictionary(HERE / "dictionary_identifiers.csv")
    text = draft_spec(d, name="rc", export_file="records.csv")
    assert 'id = "record_id"' in text and 'day = "days_from_surgery"' in text
    assert "patient_name, mrn, contact" in text  # named as identifiers to leave out
    assert '"patient_name"' not in text.split("[subjects]")[1].split("[visits]")[0]
    assert (
        '[instruments.house_brackmann]\ncolumn = "hb_{item}"' not in text
    )  # hb is mapped per rater by hand


# A longitudinal project whose clinical_parameters form numbers its fields cpq1..cpq10 (cpq1 a date,
# cpq2 a lab value 0-500, ...) beside genuine FDI and Sunnybrook forms and an SAQ form of text
# fields.
LONG_DICTIONARY = HERE / "dictionary_longitudinal.csv"


def drafted(dictionary: Path) -> tuple[str, dict]:
    text = draft_spec(
        read_dictionary(dictionary), name="rc", export_file="records_longitudinal.csv"
    )
    return text, tomllib.loads(text)


def dictionary_with(tmp_path: Path, field: str, **changes: str) -> Path:
    """The longitudinal dictionary with one field's columns changed (``drop=""`` removes the
    field)."""
    with LONG_DICTIONARY.open(newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    keys = {
        "type": FIELD_TYPE,
        "choices": CHOICES,
        "validation": VALIDATION,
        "minimum": MINIMUM,
        "maximum": MAXIMUM,
        "identifier": IDENTIFIER,
    }
    out = []
    for row in rows:
        if row[header[0]] == field:
            if "drop" in changes:
                continue
            row.update({keys[k]: v for k, v in changes.items()})
        out.append(row)
    path = tmp_path / "dictionary_longitudinal.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(out)
    return path


def test_init_does_not_map_an_unrelated_prefix_named_like_an_instruments_items():
    text, spec = drafted(LONG_DICTIONARY)
    # cpq1..cpq10 are named like FDI's and SAQ's items 1..10, but cpq1 is a date and cpq2 a lab
    # value
    # validated 0-500: no template reads them, not even one commented out for checking.
    assert "cpq" not in text
    assert "saq" not in spec["instruments"]


def test_init_maps_the_genuine_instruments_and_the_draft_loads_and_reads_the_export(tmp_path):
    text, spec = drafted(LONG_DICTIONARY)
    assert spec["instruments"] == {
        "fdi": {"column": "fdi_{item}"},
        "sunnybrook": {"column": "sb_{item}"},
    }
    assert spec["analysis"]["outcomes"] == [{"instrument": "fdi", "score": "total"}]
    folder = tmp_path / "rc"
    folder.mkdir()
    for name in ("dictionary_longitudinal.csv", "records_longitudinal.csv"):
        shutil.copy(HERE / name, folder / name)
    (folder / "study.toml").write_text(text)
    assert [s.instrument for s in load_study(folder).instruments] == ["fdi", "sunnybrook"]
    # Completed as its CHECK lines ask, the draft reads the (de-identified) export: every row and
    # value accepted.
    text = text.replace(
        '# subjects_event = "enrolment_arm_1"', 'subjects_event = "enrolment_arm_1"'
    )
    text = text.replace(
        '# baseline_arm_1 = { visit = "pre", day = -14 }',
        'baseline_arm_1 = { visit = "pre", day = -14 }\nmonth_12_arm_1 = { visit = "m12", day = '
        "365 }",
    )
    (folder / "study.toml").write_text(text)
    con = duckdb.connect()
    files = {f.file: f for f in ingest_study(con, load_study(folder))}
    assert [(f.rows_read, f.rows_quarantined) for f in files.values()] == [(3, 0), (6, 0)]
    assert con.execute(
        "SELECT instrument, count(*) FROM rc.item_responses GROUP BY ALL ORDER BY ALL"
    ).fetchall() == [("fdi", 60), ("sunnybrook", 78)]


@pytest.mark.parametrize(
    "changes",
    [
        {"drop": ""},  # an item missing
        {"type": "text", "choices": "", "validation": "date_ymd"},  # a date
        {
            "type": "text",
            "choices": "",
            "validation": "number",
            "minimum": "0",
            "maximum": "500",
        },  # a lab value
        {
            "choices": "5, No difficulty | 4, Little | 3, Some | 2, Much | 1, Health | 0, Other | "
            "-99, Refused"
        },
        {
            "choices": "5, No difficulty | 4, Little | 3, Some | 2, Much | 1, Health | 0, Other | "
            "6, Not asked"
        },
        {"type": "notes", "choices": ""},  # free text
        {"identifier": "y"},  # marked as an identifier
        {"type": "checkbox"},  # one column per choice, not one answer
        {"type": "text", "choices": "", "validation": "phone"},
    ],
    ids=[
        "missing",
        "date",
        "lab_value",
        "code_below",
        "code_above",
        "notes",
        "identifier",
        "checkbox",
        "phone",
    ],
)
def test_init_rules_out_an_instrument_when_one_items_field_cannot_hold_it(tmp_path, changes):
    text, spec = drafted(dictionary_with(tmp_path, "fdi_3", **changes))
    assert "fdi" not in spec["instruments"] and "fdi_{item}" not in text
    assert spec["instruments"] == {"sunnybrook": {"column": "sb_{item}"}}


@pytest.mark.parametrize(
    "changes, unconfirmed",
    [
        (
            {"type": "text", "choices": ""},
            "fdi_3: text without validation; must hold a whole number 0 to 5",
        ),
        (
            {"type": "text", "choices": "", "validation": "integer"},
            "fdi_3: a number field without a validation minimum and maximum; must hold a whole "
            "number 0 to 5",
        ),
        (
            {"type": "calc", "choices": "[fdi_2]"},
            "fdi_3: a calculated field, whose range the dictionary does not declare; must hold a "
            "whole number 0 to 5",
        ),
        (
            {"choices": "5, No difficulty | 4, Little | 3, Some | 2, Much | 1, Health"},
            "fdi_3: choices spanning 1 to 5 only; must hold a whole number 0 to 5",
        ),
    ],
    ids=["unvalidated_text", "integer_without_range", "calc", "part_of_the_range"],
)
def test_init_drafts_an_unconfirmed_instrument_commented_out_naming_what_to_check(
    tmp_path, changes, unconfirmed
):
    text, spec = drafted(dictionary_with(tmp_path, "fdi_3", **changes))
    assert "fdi" not in spec["instruments"]
    block = text[text.index("# CHECK: fdi's items") :]
    block = block[: block.index("\n\n")].splitlines()
    assert block[2:] == ["#   " + unconfirmed, "# [instruments.fdi]", '# column = "fdi_{item}"']


def test_init_drafts_the_unvalidated_saq_form_commented_out():
    text, _ = drafted(LONG_DICTIONARY)
    assert (
        "#   saq_1, saq_2, saq_3, saq_4, saq_5, saq_6, saq_7, saq_8, saq_9: text without "
        "validation; "
        'must hold a whole number 1 to 5\n# [instruments.saq]\n# column = "saq_{item}"\n'
    ) in text


def test_init_does_not_map_the_shorter_questionnaire_inside_a_longer_one(tmp_path):
    # FaCE's items 1-15 answered 1-5: its first nine fields have SAQ's names and range, and its
    # first ten FDI's names; only FaCE is drafted.
    path = dictionary_with(tmp_path, "fdi_1")
    with path.open("a", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        for k in range(1, 16):
            writer.writerow(
                [
                    f"face_{k}",
                    "face",
                    "",
                    "radio",
                    f"FaCE item {k}",
                    "1, Lowest | 2, | 3, | 4, | 5, Highest",
                ]
                + [""] * 12
            )
    _, spec = drafted(path)
    assert spec["instruments"] == {
        "face": {"column": "face_{item}"},
        "fdi": {"column": "fdi_{item}"},
        "sunnybrook": {"column": "sb_{item}"},
    }


def test_init_day_is_a_number_field_of_a_visit_form_never_a_date():
    # day_of_surgery (a date) and days_onset_to_surgery (the first form's, 0 or more) come first
    # in the dictionary; the day of each visit is days_from_surgery on the grading form.
    _, spec = drafted(LONG_DICTIONARY)
    assert spec["visits"]["day"] == "days_from_surgery"


def test_init_day_field_that_cannot_be_negative_is_only_suggested(tmp_path):
    text, spec = drafted(dictionary_with(tmp_path, "days_from_surgery", minimum="0"))
    assert "day" not in spec["visits"]
    assert (
        '# day = "days_from_surgery"   # CHECK: days relative to surgery? its validation minimum '
        "is 0, "
        "so it cannot hold the day of a visit before surgery"
    ) in text


def test_init_subject_columns_hold_codes_or_numbers_only():
    text, spec = drafted(LONG_DICTIONARY)
    # contact_email (e-mail validation), incision_time (time) and day_of_surgery (a date) are not
    # baseline characteristics to read; age, text without validation, is named for checking.
    assert spec["subjects"]["columns"] == [
        "sex",
        "etiology",
        "affected_side",
        "days_onset_to_surgery",
        "surgery_year",
    ]
    assert (
        "contact_email" not in text and "incision_time" not in text and "day_of_surgery" not in text
    )
    assert "# code or a number (an age written 90+, say): age\n" in text


def test_init_does_not_map_a_record_id_marked_as_an_identifier(tmp_path):
    text, spec = drafted(dictionary_with(tmp_path, "record_id", identifier="y"))
    assert "id" not in spec["subjects"] and "subject" not in spec["visits"]
    assert "# CHECK: the record id field record_id is marked as an identifier" in text


def test_a_code_outside_a_fields_choices_is_quarantined_and_not_kept(tmp_path):
    """A dropdown's levels are the dictionary's choices: a code outside them, or a name typed in
    the field, is quarantined like a value outside a spec's [subjects.levels]."""
    folder = project(tmp_path, "records.csv")
    records = folder / "records.csv"
    lines = records.read_text().splitlines()
    lines[1] = lines[1].replace(",54,1,1,", ",54,1,9,")  # etiology code 9: no such choice
    records.write_text("\n".join(lines) + "\n")
    con = duckdb.connect()
    ingest_study(con, load_study(folder))
    assert con.execute(
        'SELECT line, "column", value, reason, scope FROM rc.quarantine WHERE "column" = '
        "'etiology'"
    ).fetchall() == [
        (
            2,
            "etiology",
            "9",
            "not one of the levels declared for etiology (1, 2, 3); correct it in the export or "
            "add the level under [subjects.levels]",
            "value",
        )
    ]
    assert con.execute("SELECT subject, etiology FROM rc.subjects ORDER BY subject").fetchall() == [
        ("1", None),
        ("2", "2"),
        ("3", "3"),
    ]


def test_a_notes_field_is_refused_as_a_subject_column_unless_declared_free_text(tmp_path):
    columns = [*REDCAP_STUDY["subjects"]["columns"], "ae_description"]
    spec = {"subjects": {"columns": columns}}
    with pytest.raises(IngestError, match="column 'ae_description' is a REDCap notes field"):
        ingest_study(
            duckdb.connect(),
            load_study(project(tmp_path / "a", "records.csv", "dictionary.csv", spec)),
        )
    declared = {
        "subjects": {
            "columns": columns,
            "free_text": {"ae_description": "kept for the safety review only"},
        }
    }
    con = duckdb.connect()
    ingest_study(
        con, load_study(project(tmp_path / "b", "records.csv", "dictionary.csv", declared))
    )
    assert "ae_description" in {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'subjects'"
        ).fetchall()
    }


# --- what a reader sees of a REDCap study's subjects columns -----------------------------------


def _tables_of(folder: Path) -> dict:
    """The study of ``folder`` through the real steps, ingest to publication tables; with the
    figures it would draw (specified, not drawn)."""
    from pipeline import steps
    from pipeline.render import figures, tables

    study = load_study(folder)
    con = duckdb.connect()
    out = folder.parent / "reports"
    steps.ingest(con, study, out)
    steps.score(con, study)
    steps.pair(con, study)
    steps.analyse(con, study, out)
    steps.secondary_analyses(con, study, out)
    steps.write_tables(con, study, out)
    built = dict(tables.from_frame(con.execute("SELECT * FROM rc.publication_tables").df()))
    specs = {s.stem: s for s in figures.study_figures(con, steps.reader_study(study))}
    return {"tables": built, "figures": specs}


# Three patients: every level is shown (min_cell 1), the subgroups split by sex and etiology.
SMALL_CELLS = {"identifiers": {"min_cell": 1}}
BY_SEX = {
    "analysis": {
        "subgroups": [{"column": "sex"}, {"column": "etiology"}],
        "outcomes": [{"instrument": "house_brackmann", "rater": "observer", "score": "grade"}],
    }
}


def test_a_redcap_studys_tables_show_the_dictionarys_labels_not_its_codes(tmp_path):
    # tests/redcap/dictionary.csv: sex is a radio field "1, Female | 2, Male", etiology a dropdown
    # labelled "Cause of paralysis", prior_treatment a checkbox (choice 1 "Botulinum toxin").
    shown = _tables_of(project(tmp_path, "records.csv", "dictionary.csv", SMALL_CELLS, BY_SEX))
    rows = [r.strip() for r in shown["tables"]["table_1"].body["Characteristic"]]
    assert rows[:9] == [
        "Age, median [IQR]",
        "Sex, No. (%)",
        "Female",
        "Male",
        "Cause of paralysis, No. (%)",
        "Bell's palsy",
        "Ramsay Hunt",
        "Acoustic neuroma",
        "Prior treatment: Botulinum toxin, No. (%)",
    ]
    # Code 1 of a radio field is its first choice, never the "Yes" of an unlabelled 0/1 column.
    first = {
        stem: {str(cell).strip() for cell in shown["tables"][stem].body.iloc[:, 0]}
        for stem in ("table_3_subgroups", "table_3_ancova")
    }
    assert first["table_3_subgroups"] >= {
        "Sex: Female",
        "Sex: Male",
        "Cause of paralysis: Bell's palsy",
    }
    assert first["table_3_ancova"] >= {"Female", "Male"}
    forest = shown["figures"]["subgroup_forest"].make.args[0]
    assert {"Sex: Female", "Sex: Male"} <= set(forest["label"])


def test_the_spec_labels_win_over_the_redcap_dictionarys(tmp_path):
    own = {
        "subjects": {
            "labels": {"etiology": "Etiology"},
            "levels": {"sex": {"1": "Woman", "2": "Man"}},
        }
    }
    shown = _tables_of(project(tmp_path, "records.csv", "dictionary.csv", SMALL_CELLS, BY_SEX, own))
    rows = {r.strip() for r in shown["tables"]["table_1"].body["Characteristic"]}
    assert {"Woman", "Man", "Etiology, No. (%)", "Bell's palsy"} <= rows
    assert not {"Female", "Male", "Cause of paralysis, No. (%)"} & rows
