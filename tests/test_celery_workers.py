"""The same definitions on Celery workers (docs/scaling.md): a local Redis as broker, a worker
taking the study's queue, and ``outcomes report`` handing it every step."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from test_warehouses import PATIENTS, VISITS

from assets.cli import main
from assets.graph import CELERY_BROKER
from conftest import set_report_environment, warehouse_file, write_study
from pipeline import warehouse
from specs import study_toml

STARTUP_LIMIT = 120  # seconds for Redis and the worker to be ready: far above a normal start


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _until(ready, what: str, process: subprocess.Popen) -> None:
    """Wait for ``ready()``; fail if ``process`` ends first or nothing is ready in time."""
    deadline = time.monotonic() + STARTUP_LIMIT
    while not ready():
        assert process.poll() is None, f"{what} stopped (exit code {process.returncode})"
        assert time.monotonic() < deadline, f"{what} not ready after {STARTUP_LIMIT} s"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_study_materializes_on_a_celery_worker_through_a_local_redis(tmp_path, monkeypatch):
    pytest.importorskip("dagster_celery", reason="pip install -e '.[celery]'")
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    import redis

    write_study(
        tmp_path / "raw" / "north", PATIENTS, VISITS, study_toml({"study": {"name": "north"}})
    )
    set_report_environment(monkeypatch, tmp_path / "raw", tmp_path)
    port = _free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setenv(CELERY_BROKER, broker)
    config = tmp_path / "celery.yaml"
    config.write_text(f"execution:\n  config:\n    broker: {broker}\n    backend: {broker}\n")

    server = subprocess.Popen(
        [
            redis_server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    worker = None
    try:
        client = redis.Redis(host="127.0.0.1", port=port)

        def answers() -> bool:
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        _until(answers, "redis-server", server)
        worker_log = open(tmp_path / "worker.log", "w")
        worker = subprocess.Popen(
            [
                Path(sys.executable).parent / "dagster-celery",
                "worker",
                "start",
                "-A",
                "dagster_celery.app",
                "-y",
                str(config),
                # the study's queue, and Celery's default one for the raw files' observations,
                # which write no warehouse (one -q: dagster-celery passes each as a -Q of
                # celery's, of which the last would count alone)
                "-q",
                "study-north,dagster",
                "--name",
                "north",
                "--",
                # Tasks in the worker itself, one at a time: a pool process is daemonic and may not
                # start the processes the figures step draws in.
                "--pool",
                "solo",
            ],
            # dagster-celery starts the `celery` command beside it
            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            # dagster-celery starts `celery` as a process of its own: stopped with its group
            start_new_session=True,
        )
        # Ready when it has said so to the broker: Celery workers answer a ping over it.
        from celery import Celery

        app = Celery(broker=broker, backend=broker)
        _until(lambda: bool(app.control.ping(timeout=0.5)), "the Celery worker", worker)

        assert main(["report"]) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
        server.terminate()
        server.wait(timeout=60)

    con = warehouse.connect(warehouse_file(tmp_path, "north"), read_only=True)
    try:
        assert con.execute(
            "SELECT n_pairs FROM north.paired_tests WHERE \"group\" = 'all'"
        ).fetchall() == [(5,)]
    finally:
        con.close()
    assert (tmp_path / "reports" / "north" / "report.html").is_file()
    # Every step was a task of the worker, none ran in this process.
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        on_worker = {
            record.dagster_event.step_key
            for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
            if "in celery worker" in (record.dagster_event.message or "")
        }
    # The raw files' observation and the 8 assets; the 6 checks run in their assets' steps.
    assert len(on_worker) == 9
