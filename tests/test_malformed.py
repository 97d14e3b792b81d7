"""A corpus of malformed visits files: each gives its documented error, refusal or quarantine.

tests/malformed/EXPECTED.csv lists every file with its outcome: ``error`` (one clear message,
nothing written), ``refused`` (the de-identification guard; nothing written, no value printed),
or ``ingested`` with the row accounting. Each file stands in for the visits file of the tiny
study (patients P1-P3, House-Brackmann by one observer).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline.ingest.deidentify import IdentifiersFound
from pipeline.ingest.ingestion import IngestError, ingest_study
from pipeline.spec.study import load_study
from specs import study_toml

CORPUS = Path(__file__).parent / "malformed"
with open(CORPUS / "EXPECTED.csv", newline="", encoding="utf-8") as handle:
    EXPECTED = list(csv.DictReader(handle))


def test_the_corpus_is_complete():
    listed = {row["file"] for row in EXPECTED}
    on_disk = {p.name for p in CORPUS.iterdir() if p.name != "EXPECTED.csv"}
    assert listed == on_disk
    assert len(listed) >= 30


@pytest.mark.parametrize("expected", EXPECTED, ids=[row["file"] for row in EXPECTED])
def test_malformed_input(tmp_path, expected):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "patients.csv").write_text("code,age\nP1,50\nP2,61\nP3,44\n")
    shutil.copy(CORPUS / expected["file"], folder / expected["file"])
    (folder / "study.toml").write_text(study_toml({"visits": {"file": expected["file"]}}))
    con = duckdb.connect()
    outcome = expected["outcome"]
    if outcome in ("error", "refused"):
        with pytest.raises(IdentifiersFound if outcome == "refused" else IngestError) as raised:
            ingest_study(con, load_study(folder))
        assert expected["message"] in str(raised.value)
        assert con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'tiny'"
        ).fetchall() == [(0,)]
        return
    files = {f.file: f for f in ingest_study(con, load_study(folder))}
    v = files[expected["file"]]
    assert (v.rows_read, v.rows_accepted, v.rows_quarantined) == (
        int(expected["rows_read"]),
        int(expected["rows_accepted"]),
        int(expected["rows_quarantined"]),
    )
    assert v.rows_read == v.rows_accepted + v.rows_quarantined  # nothing lost
    values = con.execute("SELECT count(*) FROM tiny.quarantine WHERE scope = 'value'").fetchall()[
        0
    ][0]
    assert values == int(expected["values_quarantined"])
    reasons = [r[0] for r in con.execute("SELECT reason FROM tiny.quarantine").fetchall()]
    if expected["message"]:
        assert any(expected["message"] in r for r in reasons), reasons
    else:
        assert reasons == []
