"""Every output traceable to its inputs, spec and code."""

from __future__ import annotations

import hashlib
import json

import duckdb

from pipeline.report import run_study
from pipeline.study import load_study


def test_provenance_names_inputs_spec_commit_and_versions(tiny_study, tmp_path):
    run_study(duckdb.connect(), load_study(tiny_study), tmp_path)
    record = json.loads((tmp_path / "tiny" / "provenance.json").read_text())
    digest = hashlib.sha256((tiny_study / "visits.csv").read_bytes()).hexdigest()
    visits = next(f for f in record["inputs"] if f["file"] == "visits.csv")
    assert visits["sha256"] == digest
    assert (visits["rows_read"], visits["rows_accepted"], visits["rows_quarantined"]) == (10, 6, 4)
    assert record["spec"]["sha256"] == hashlib.sha256((tiny_study / "study.toml").read_bytes()).hexdigest()
    assert len(record["code"]["commit"]) == 40
    assert record["packages"]["duckdb"] and record["packages"]["scipy"]
