"""REDCap exports: dictionary, classic and longitudinal projects, repeating instruments, labels, identifiers.

The exports in tests/redcap/ are small synthetic projects written by hand in REDCap's
formats (flat records export and 18-column data dictionary).
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import duckdb
import pytest

from pipeline.deidentify import IdentifiersFound
from pipeline.ingest import IngestError, ingest_study
from pipeline.redcap import RedcapError, draft_spec, read_dictionary, split_checkbox
from pipeline.study import load_study

HERE = Path(__file__).parent / "redcap"

LONGITUDINAL = """
[study]
name = "rc"
synthetic = true

[redcap]
dictionary = "{dictionary}"
subjects_event = "enrolment_arm_1"

[redcap.events]
baseline_arm_1 = {{ visit = "pre", day = -14 }}
month_12_arm_1 = {{ visit = "m12", day = 365 }}

[subjects]
file = "{records}"
id = "record_id"
columns = ["age", "sex", "etiology", "prior_treatment___1", "surgery_year"]

[visits]
file = "{records}"
subject = "record_id"
day = "days_from_surgery"

[instruments.house_brackmann]
column = "hb_{{rater}}"
raters = ["observer"]

[analysis]
test = "wilcoxon"

[[analysis.outcomes]]
instrument = "house_brackmann"
rater = "observer"
score = "grade"
"""


def project(tmp_path: Path, records: str, dictionary: str = "dictionary.csv", spec: str = LONGITUDINAL) -> Path:
    folder = tmp_path / "rc"
    folder.mkdir(parents=True)
    for name in (records, dictionary):
        shutil.copy(HERE / name, folder / name)
    (folder / "study.toml").write_text(textwrap.dedent(spec.format(records=records, dictionary=dictionary)))
    return folder


def test_dictionary_fields_types_choices_and_identifiers():
    d = read_dictionary(HERE / "dictionary_identifiers.csv")
    assert d.first_field == "record_id"
    assert d.fields["etiology"].choices == (("1", "Bell's palsy"), ("2", "Ramsay Hunt"), ("3", "Acoustic neuroma"))
    assert d.fields["dob"].is_date and d.fields["ae_description"].is_free_text
    assert [f.name for f in d.fields.values() if f.identifier] == ["patient_name", "mrn", "contact"]
    assert d.forms == ["enrolment", "grading", "adverse_event"]


@pytest.mark.parametrize("column, expected", [
    ("prior_treatment___1", ("prior_treatment", "1")),
    # code -99 is written "_99", giving four underscores; the last "___" leaves "prior_treatment_",
    # which Dictionary.field_for maps back to the checkbox field.
    ("prior_treatment____99", ("prior_treatment_", "99")),
    ("a___b___2", ("a___b", "2")),
    ("hb_observer", None),
])
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
    with pytest.raises(RedcapError, match=r"not a REDCap data dictionary: the header lacks Variable / Field Name"):
        read_dictionary(bad)


def test_longitudinal_export_every_row_accounted(tmp_path):
    con = duckdb.connect()
    files = {f.file: f for f in ingest_study(con, load_study(project(tmp_path, "records.csv")))}
    # 3 enrolment rows are subjects; the other 8 rows are read as visits: 5 accepted, record 1's
    # adverse-event instance, record 3's unmapped month_3 event and record 4 (no enrolment) quarantined.
    s, v = files["records.csv [subjects]"], files["records.csv [visits]"]
    assert (s.rows_read, s.rows_accepted, s.rows_quarantined) == (3, 3, 0)
    assert (v.rows_read, v.rows_accepted, v.rows_quarantined) == (8, 5, 3)
    assert con.execute('SELECT line, "column", reason FROM rc.quarantine ORDER BY line').fetchall() == [
        (5, "redcap_repeat_instrument", "rows of this repeating instrument are not visits; "
                                        "name it in [redcap] repeat_instrument"),
        (11, "redcap_event_name", "event is not mapped to a visit in [redcap.events]"),
        (12, "record_id", "unknown subject: not an accepted row of records.csv [subjects]"),
    ]
    # Days come from the day field; record 2's baseline has none, so the event's nominal day is used.
    assert con.execute("SELECT subject, visit, day FROM rc.visits ORDER BY ALL").fetchall() == [
        ("1", "m12", 368), ("1", "pre", -12), ("2", "m12", 380), ("2", "pre", -14), ("3", "pre", -20)]
    assert con.execute("SELECT subject, age, sex, prior_treatment___1 FROM rc.subjects ORDER BY subject").fetchall() == [
        ("1", "54", "1", "1"), ("2", "90+", "2", "0"), ("3", "61", "1", "0")]


def test_labels_export_gives_the_same_tables_as_raw_codes(tmp_path):
    raw, labels = duckdb.connect(), duckdb.connect()
    ingest_study(raw, load_study(project(tmp_path / "a", "records.csv")))
    ingest_study(labels, load_study(project(tmp_path / "b", "records_labels.csv")))
    for table in ("subjects", "visits", "item_responses"):
        query = f"SELECT * FROM rc.{table} ORDER BY ALL"
        assert labels.execute(query).fetchall() == raw.execute(query).fetchall(), table


def test_classic_project_with_a_repeating_visits_instrument(tmp_path):
    spec = LONGITUDINAL.replace('subjects_event = "enrolment_arm_1"', 'repeat_instrument = "grading"')
    spec = spec[: spec.index("[redcap.events]")] + spec[spec.index("[subjects]"):]
    con = duckdb.connect()
    files = {f.file: f for f in ingest_study(con, load_study(project(tmp_path, "classic_records.csv", spec=spec)))}
    v = files["classic_records.csv [visits]"]
    # 6 repeating rows: 5 grading instances are visits, the adverse event is quarantined; record 2's
    # third grading has House-Brackmann 9, refused as a value (the visit itself is kept).
    assert (v.rows_read, v.rows_accepted, v.rows_quarantined) == (6, 5, 1)
    assert con.execute("SELECT subject, visit, day FROM rc.visits ORDER BY ALL").fetchall() == [
        ("1", "grading_1", -12), ("1", "grading_2", 368),
        ("2", "grading_1", -3), ("2", "grading_2", 380), ("2", "grading_3", 410)]
    assert con.execute("SELECT reason FROM rc.quarantine WHERE scope = 'value'").fetchall() == [
        ("outside the allowed range 1 to 6 for house_brackmann grade",)]


def test_longitudinal_export_without_a_subjects_event_is_refused_with_the_events_listed(tmp_path):
    spec = LONGITUDINAL.replace('subjects_event = "enrolment_arm_1"\n', "")
    with pytest.raises(IngestError, match=r"longitudinal export \(events: enrolment_arm_1, baseline_arm_1, "
                                          r"month_12_arm_1, month_3_arm_1\); set \[redcap\] subjects_event"):
        ingest_study(duckdb.connect(), load_study(project(tmp_path, "records.csv", spec=spec)))


def test_export_carrying_identifier_fields_is_refused_naming_every_column(tmp_path):
    folder = project(tmp_path, "records_identifiers.csv", "dictionary_identifiers.csv")
    con = duckdb.connect()
    with pytest.raises(IdentifiersFound) as refused:
        ingest_study(con, load_study(folder))
    found = {(f.column, f.rule) for f in refused.value.findings}
    marked = "marked 'Identifier? = y' in the REDCap data dictionary"
    assert {("patient_name", marked), ("mrn", marked), ("contact", marked)} <= found
    assert ("patient_name", "name of a person (column name)") in found
    assert ("dob", "date more specific than a year (a date column may hold only a 4-digit year)") in found
    assert ("ae_description", "free text: phone or fax number in values") in found
    message = str(refused.value)
    for value in ("Jane", "Roe", "A7730021", "1970-04-12", "617-555-0142", "mother"):
        assert value not in message
    assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'rc'").fetchall() == [(0,)]


def test_allowing_one_column_leaves_the_others_refused(tmp_path):
    folder = project(tmp_path, "records_identifiers.csv", "dictionary_identifiers.csv")
    spec = folder / "study.toml"
    spec.write_text(spec.read_text() + '\n[identifiers.allow]\ncontact = "relationship of the contact person, no name or number"\n')
    with pytest.raises(IdentifiersFound) as refused:
        ingest_study(duckdb.connect(), load_study(folder))
    columns = {f.column for f in refused.value.findings}
    assert "contact" not in columns and {"patient_name", "mrn", "dob", "ae_description"} <= columns


def test_init_drafts_a_spec_that_loads(tmp_path):
    d = read_dictionary(HERE / "dictionary_identifiers.csv")
    text = draft_spec(d, name="rc", export_file="records.csv")
    assert 'id = "record_id"' in text and 'day = "days_from_surgery"' in text
    assert "patient_name, mrn, contact" in text            # named as identifiers to leave out
    assert '"patient_name"' not in text.split("[subjects]")[1].split("[visits]")[0]
    assert '[instruments.house_brackmann]\ncolumn = "hb_{item}"' not in text  # hb is mapped per rater by hand
