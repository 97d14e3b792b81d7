"""The Dagster layer, with real materializations into a temporary warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assets.definitions import build_definitions
from conftest import STUDY_ASSETS
from pipeline import paths, warehouse

DEMO_KEYS = {"raw_files", *STUDY_ASSETS}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("OUTCOMES_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("OUTCOMES_REPORTS", str(tmp_path / "reports"))
    return tmp_path


def test_every_study_folder_becomes_a_prefixed_graph():
    defs = build_definitions()
    keys = {tuple(k.path) for k in defs.resolve_all_asset_keys()}
    assert {("demo", name) for name in DEMO_KEYS} <= keys
    # The UI lists each check under the asset it checks, and the check runs in that asset's step:
    # a step is a process of its own under the multiprocess executor (docs/scaling.md).
    checks = {
        (key.asset_key.path[-1], key.name)
        for key in defs.resolve_asset_graph().asset_check_keys
        if key.asset_key.path[0] == "demo"
    }
    assert checks == {
        ("ingested", "rows_accounted"),
        ("ingested", "no_identifier_columns"),
        ("ingested", "item_values_in_range"),
        ("pairs", "pairing_completeness"),
        ("paired_tests", "minimum_pairs"),
        ("paired_tests", "statistics_sanity"),
    }
    ops = [
        node.name
        for node in defs.resolve_implicit_global_asset_job_def().graph.nodes
        if node.name.startswith("demo__")
    ]
    assert len(ops) == len(STUDY_ASSETS) + 1  # the raw files' observation, one op per asset


def test_materialize_everything_on_the_demo(workspace):
    job = build_definitions().resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.check_name: c.passed for c in checks} == {
        "rows_accounted": True,
        "no_identifier_columns": True,
        "item_values_in_range": True,
        "pairing_completeness": True,
        "minimum_pairs": True,
        "statistics_sanity": True,
    }

    reports = workspace / "reports" / "demo"
    assert (reports / "tables" / "table_2.csv").is_file()
    assert (reports / "tables" / "table_2.md").read_text().count("SYNTHETIC") == 1
    assert (reports / "report.html").stat().st_size > 10_000
    for stem in ("slope_house_brackmann_observer_grade", "slope_sunnybrook_composite"):
        for ext in ("png", "csv"):
            assert (reports / "figures" / "double_column" / f"{stem}.{ext}").stat().st_size > 1000

    results = pd.read_csv(reports / "tables" / "paired_tests.csv")
    con = warehouse.connect(workspace / "warehouse.duckdb", read_only=True)
    stored = con.execute("SELECT * FROM demo.paired_tests").df()
    con.close()
    assert list(results["outcome"]) == list(stored["outcome"])
    # subgroup levels too small for a test carry NaN with a note saying why
    assert results["p_used"].tolist() == pytest.approx(
        stored["p_used"].tolist(), rel=1e-15, nan_ok=True
    )
    assert results.loc[results["p_used"].isna(), "note"].str.len().gt(0).all()


def test_dagster_definitions_validate():
    dagster = Path(sys.executable).parent / "dagster"
    env = {**os.environ, "DAGSTER_HOME": str(paths.PROJECT_ROOT / ".dagster")}
    done = subprocess.run(
        [str(dagster), "definitions", "validate"],
        cwd=paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_new_study_folder_adds_its_own_graph(tmp_path, monkeypatch, tiny_study):
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(paths.RAW_DATA_DIR / "demo", raw / "demo")
    shutil.copytree(tiny_study, raw / "tiny")
    monkeypatch.setenv("OUTCOMES_RAW", str(raw))
    prefixes = {k.path[0] for k in build_definitions().resolve_all_asset_keys()}
    assert prefixes == {"demo", "tiny"}


# What a step process imports to open the run's instance, once the fork server has preloaded
# assets.step_server: nothing of the storages (about 500 modules, 1 s of CPU, before it did).
STEP_OPENS_INSTANCE = """
import sys
import assets.step_server
import dagster as dg
from dagster._core.instance.ref import InstanceRef

before = set(sys.modules)
with dg.DagsterInstance.from_ref(InstanceRef.from_dir(sys.argv[1])):
    pass
print(len(set(sys.modules) - before))
"""


def test_the_fork_server_imports_what_a_step_needs_to_open_the_instance(tmp_path):
    home = tmp_path / "dagster"
    home.mkdir()
    (tmp_path / "raw").mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "OUTCOMES_RAW": str(tmp_path / "raw")}
    done = subprocess.run(
        [sys.executable, "-c", STEP_OPENS_INSTANCE, str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert int(done.stdout.split()[-1]) < 20, done.stdout
