"""The Dagster UI in a real headless browser: the demo's assets are listed, and a
materialization launched through the webserver succeeds.

The browser is the ``browser`` fixture (tests/conftest.py): Debian's chromium, which
``.ci/run`` installs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import STUDY_ASSETS
from pipeline import paths

LOCATION = "facial_outcomes"  # [tool.dagster] code_location_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(paths.PROJECT_ROOT / ".dagster" / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "OUTCOMES_WAREHOUSE": str(home / "warehouse.duckdb"),
        "OUTCOMES_REPORTS": str(home / "reports"),
    }
    # Ingest once in this instance first, so the export sensor (on by default) finds the demo
    # (and the pooled example, data/raw/demo_pooled) up to date and does not queue a run of its
    # own ahead of the test's.
    subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import dagster as dg; from assets.definitions import defs; "
                "job = defs.resolve_implicit_global_asset_job_def(); "
                "instance = dg.DagsterInstance.get(); "
                "assert job.execute_in_process(instance=instance, "
                "asset_selection=[dg.AssetKey(['demo', 'ingested']), "
                "dg.AssetKey(['demo_pooled', 'ingested'])]).success"
            ),
        ],
        cwd=paths.PROJECT_ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    dagster = Path(sys.executable).parent / "dagster"
    log = open(home / "dagster-dev.log", "w")
    process = subprocess.Popen(
        [str(dagster), "dev", "--host", "127.0.0.1", "--port", str(port)],
        cwd=paths.PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=5)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        "dagster dev did not start: "
                        f"{(home / 'dagster-dev.log').read_text()[-2000:]}"
                    )
                time.sleep(1)
        yield base, home
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_asset_graph_lists_the_demo_study(webserver, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    base, home = webserver
    browser.get(f"{base}/assets/demo")
    WebDriverWait(browser, 60).until(lambda d: "secondary_analyses" in d.page_source)
    browser.save_screenshot(str(home / "assets.png"))
    for name in STUDY_ASSETS:
        assert name in browser.page_source


def test_materialization_launched_through_the_webserver_succeeds(webserver):
    base, home = webserver
    # Ingest to the paired tests: the part of the graph a run through the webserver must show
    # working.
    keys = [{"path": ["demo", name]} for name in ("ingested", "scores", "pairs", "paired_tests")]
    launched = _graphql(
        base,
        """
        mutation Launch($params: ExecutionParams!) {
          launchRun(executionParams: $params) {
            __typename
            ... on LaunchRunSuccess { run { runId } }
            ... on PythonError { message }
            ... on InvalidStepError { invalidStepKey }
            ... on RunConfigValidationInvalid { errors { message } }
          }
        }""",
        {
            "params": {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": "__repository__",
                    "jobName": "__ASSET_JOB",
                    "assetSelection": keys,
                },
                "runConfigData": {},
            }
        },
    )
    result = launched["data"]["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    run_id = result["run"]["runId"]

    deadline, status = time.monotonic() + 300, None
    while time.monotonic() < deadline:
        status = _graphql(
            base,
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
            {"id": run_id},
        )["data"]["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    assert status == "SUCCESS"
    assert (home / "reports" / "demo" / "tables" / "paired_tests.csv").is_file()
    sensor_runs = _graphql(
        base,
        '{ runsOrError(filter: {tags: [{key: "dagster/sensor_name", value: '
        '"raw_export_changed"}]}) '
        "{ ... on Runs { results { runId } } } }",
    )
    assert sensor_runs["data"]["runsOrError"]["results"] == []  # nothing changed since the ingest
