"""`outcomes validate`: nothing written; exit 0 clean, 1 rows would be quarantined, 2 refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.cli import main

REDCAP = Path(__file__).parent / "redcap"


def run(capsys, *args):
    code = main(["validate", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_clean_file_exits_0(tmp_path, capsys):
    path = tmp_path / "v.csv"
    path.write_text("code,day\nP1,3\n")
    code, out, _ = run(capsys, path)
    assert code == 0 and "clean" in out and "v.csv: 1 rows read, 1 accepted, 0 quarantined" in out


def test_study_with_quarantined_rows_exits_1_and_writes_nothing(tiny_study, capsys):
    before = sorted(p.name for p in tiny_study.iterdir())
    code, out, _ = run(capsys, tiny_study)
    assert code == 1
    assert "visits.csv: 10 rows read, 6 accepted, 4 quarantined" in out
    assert "visits.csv line 9, column code: unknown subject" in out
    assert sorted(p.name for p in tiny_study.iterdir()) == before


def test_json_findings(tiny_study, capsys):
    code, out, _ = run(
        capsys, tiny_study / "visits.csv", "--spec", tiny_study / "study.toml", "--json"
    )
    result = json.loads(out)
    assert code == 1 and result["status"] == "quarantine" and result["exit_code"] == 1
    assert {q["reason"] for q in result["quarantine"]} >= {
        "subject and visit appear on more than one row"
    }
    assert [f["rows_read"] for f in result["files"]] == [3, 10]


def test_identifiers_exit_2_without_printing_them(tmp_path, capsys):
    path = tmp_path / "records.csv"
    shutil.copy(REDCAP / "records_identifiers.csv", path)
    code, out, _ = run(capsys, path, "--dictionary", REDCAP / "dictionary_identifiers.csv")
    assert code == 2
    assert (
        "records.csv, column 'mrn': marked 'Identifier? = y' in the REDCap data dictionary" in out
    )
    for value in ("Jane", "A7730021", "1970-04-12", "617-555-0142"):
        assert value not in out
    code, out, _ = run(
        capsys, path, "--dictionary", REDCAP / "dictionary_identifiers.csv", "--json"
    )
    assert code == 2 and {"patient_name", "mrn", "contact", "dob"} <= {
        f["column"] for f in json.loads(out)["identifiers"]
    }
    assert "Jane" not in out


def test_unreadable_file_and_bad_spec_exit_2(tmp_path, tiny_study, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, out, _ = run(capsys, empty)
    assert code == 2 and "the file is empty" in out
    spec = tiny_study / "study.toml"
    spec.write_text(spec.read_text().replace("[visits]", '[visits]\nlayout = "diagonal"'))
    code, out, _ = run(capsys, tiny_study)
    assert code == 2 and "setting 'visits.layout' must be one of wide, long" in out


def test_ragged_file_without_spec_exits_1(tmp_path, capsys):
    path = tmp_path / "v.csv"
    path.write_text("code,day\nP1,3\nP2,4,5\n")
    code, out, _ = run(capsys, path)
    assert (
        code == 1 and "v.csv line 3, column (whole row): row has more fields than the header" in out
    )


def test_init_drafts_a_spec_from_a_redcap_dictionary(tmp_path, capsys):
    out = tmp_path / "study.toml"
    assert (
        main(
            [
                "init",
                "--redcap-dictionary",
                str(REDCAP / "dictionary.csv"),
                "--name",
                "rc",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = out.read_text()
    assert 'dictionary = "dictionary.csv"' in text and 'id = "record_id"' in text
    assert (
        main(["init", "--redcap-dictionary", str(REDCAP / "dictionary.csv"), "--out", str(out)])
        == 2
    )
