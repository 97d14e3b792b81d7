"""Shared fixtures: small study folders written into a temporary directory."""

from __future__ import annotations

import signal
import textwrap
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from specs import study_toml

SPEC = study_toml()

# A study's assets in the Dagster graph, in the order a run materializes them. Each study's graph
# also has ``raw_files``, the source asset its export folder is.
STUDY_ASSETS = (
    "ingested",
    "scores",
    "pairs",
    "paired_tests",
    "secondary_analyses",
    "tables",
    "figures",
    "report",
)


def write_study(folder: Path, patients: str, visits: str, spec: str = SPEC) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.toml").write_text(textwrap.dedent(spec))
    (folder / "patients.csv").write_text(textwrap.dedent(patients).lstrip())
    (folder / "visits.csv").write_text(textwrap.dedent(visits).lstrip())
    return folder


def run_args(study: Path, workdir: Path, warehouse: str = "w.duckdb") -> list[str]:
    """The arguments of `outcomes run` for one study, writing its warehouse and reports folder in
    ``workdir``."""
    return [
        "run",
        "--study",
        str(study),
        "--warehouse",
        str(workdir / warehouse),
        "--reports",
        str(workdir / "reports"),
    ]


def report_environment(raw: Path, workdir: Path) -> dict[str, str]:
    """What `outcomes report` (a Dagster run) reads from the environment: the studies in ``raw``,
    and a folder of warehouses (:func:`warehouse_file`), reports folder and Dagster home of its
    own in ``workdir``."""
    return {
        "OUTCOMES_RAW": str(raw),
        "OUTCOMES_WAREHOUSE": str(workdir / "warehouses"),
        "OUTCOMES_REPORTS": str(workdir / "reports"),
        "DAGSTER_HOME": str(workdir / "dagster"),
    }


def warehouse_file(workdir: Path, study: str) -> Path:
    """The warehouse file of ``study`` that `outcomes report` writes in the environment of
    :func:`report_environment`."""
    return workdir / "warehouses" / f"{study}.duckdb"


def set_report_environment(monkeypatch: pytest.MonkeyPatch, raw: Path, workdir: Path) -> None:
    """:func:`report_environment` for this test, its Dagster home created."""
    (workdir / "dagster").mkdir(exist_ok=True)
    for name, value in report_environment(raw, workdir).items():
        monkeypatch.setenv(name, value)


def pairs_of(outcome: str, score: str, pre: list[float], post: list[float]):
    """Rows of a study's ``pairs`` table for one outcome and score: each subject's value before
    and after surgery."""
    import pandas as pd

    return pd.DataFrame({"outcome": outcome, "score": score, "pre_value": pre, "post_value": post})


@pytest.fixture
def tiny_study(tmp_path: Path) -> Path:
    """Three patients, House-Brackmann by one rater, with one problem of each kind."""
    return write_study(
        tmp_path / "tiny",
        patients="""
            code,age,handedness
            P1,50,right
            P2,61,left
            P3,44,right
        """,
        visits="""
            code,visit,day,hb_observer
            P1,pre,-10,4
            P1,m3,95,3
            P1,m12,370,2
            P2,pre,-5,5
            P2,m1,30,4
            P3,pre,-3,3
            P3,m6,180,9
            P9,pre,-1,4
            P2,m12,abc,2
            P1,m3,96,3
        """,
    )


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The demo study (data/raw/demo) run once for the whole session from an empty warehouse:
    (folder, the outcome of ``run_study``); the warehouse is ``folder/warehouse.duckdb``, the
    reports are under ``folder/reports/demo``. Tests only read it."""
    import duckdb

    from pipeline import paths
    from pipeline.spec.study import load_study
    from pipeline.steps import run_study

    folder = tmp_path_factory.mktemp("demo")
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    outcome = run_study(con, load_study(paths.RAW_DATA_DIR / "demo"), folder / "reports")
    con.close()
    return folder, outcome


def fuzz_settings(max_examples: int):
    """Hypothesis settings of the fuzz tests: derandomized and without an example database, so
    every run checks the same cases; no deadline, since :func:`bounded` catches a hang."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


FUZZ_TIME_LIMIT = 20  # seconds per case: far above any real one, so only a hang reaches it


class Hang(AssertionError):
    pass


@contextmanager
def bounded(con=None, seconds: float = FUZZ_TIME_LIMIT):
    """Fail the case if it runs longer than ``seconds``: an alarm for Python code, and, given a
    DuckDB connection, an interrupt for DuckDB (whose error a reader could otherwise report as a
    refusal)."""
    fired = threading.Event()

    def expire(signum, frame):
        raise Hang(f"no result after {seconds} s")

    def interrupt():
        fired.set()
        con.interrupt()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds + 1)
    timer = threading.Timer(seconds, interrupt) if con is not None else None
    if timer:
        timer.start()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if timer:
            timer.cancel()
    if fired.is_set():
        raise Hang(f"DuckDB still working after {seconds} s")


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Selenium. Skipped where chromium or its driver is
    missing, except under CI (``.ci/run`` installs them), where that is a failure."""
    import os
    import shutil

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        if os.environ.get("CI"):
            pytest.fail(
                "chromium and chromedriver are required in CI (apt-get install chromium "
                "chromium-driver)",
                pytrace=False,
            )
        pytest.skip(
            "chromium/chromedriver not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # No sandbox as root; no background traffic on a machine without network.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield driver
    driver.quit()
