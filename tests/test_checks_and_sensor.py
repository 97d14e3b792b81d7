"""Asset checks that block, and the sensor that notices changed exports, on real Dagster runs."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from assets.definitions import build_definitions
from pipeline import paths


@pytest.fixture
def raw_dir(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    monkeypatch.setenv("OUTCOMES_RAW", str(raw))
    monkeypatch.setenv("OUTCOMES_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("OUTCOMES_REPORTS", str(tmp_path / "reports"))
    return raw


def _run(
    defs: dg.Definitions, instance: dg.DagsterInstance, selection=None
) -> dg.ExecuteInProcessResult:
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=selection, raise_on_error=False
    )


def test_failed_check_blocks_everything_downstream(raw_dir, tiny_study):
    # tiny_study pairs 1 of its 3 subjects, short of the 50% pairing-completeness threshold.
    shutil.copytree(tiny_study, raw_dir / "tiny")
    with dg.DagsterInstance.ephemeral() as instance:
        result = _run(build_definitions(), instance)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["pairing_completeness"].passed
    assert (
        "house_brackmann_observer"
        in checks["pairing_completeness"].metadata["below threshold"].value
    )
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert {"ingested", "scores", "pairs"} <= materialized
    assert not materialized & {"paired_tests", "secondary_analyses", "tables", "figures", "report"}


def test_sensor_requests_a_run_only_for_a_new_or_changed_export(raw_dir):
    shutil.copytree(paths.RAW_DATA_DIR / "demo", raw_dir / "demo")
    with dg.DagsterInstance.ephemeral() as instance:
        defs = build_definitions()
        sensor = defs.resolve_sensor_def("raw_export_changed")

        def evaluate():
            return sensor.evaluate_tick(
                dg.build_sensor_context(instance=instance, definitions=defs)
            )

        first = evaluate().run_requests  # never ingested: new
        assert [r.tags["study"] for r in first] == ["demo"]
        assert all(
            k.path[0] == "demo" and k.path[-1] != "raw_files" for k in first[0].asset_selection
        )

        # The sensor compares with the last ingest, so ingesting is enough to bring it up to date.
        assert _run(defs, instance, [dg.AssetKey(["demo", "ingested"])]).success
        assert evaluate().run_requests == []  # unchanged since ingested: nothing to do

        visits = raw_dir / "demo" / "visits.csv"
        visits.write_text(visits.read_text().replace("FP-001,pre,-14,4,4", "FP-001,pre,-14,5,4", 1))
        changed = evaluate().run_requests
        assert len(changed) == 1 and changed[0].run_key != first[0].run_key
