"""One whole materialization (``outcomes report``, through Dagster, in its own process) of a
restricted study whose raw folder is read-only, watched by an audit hook in every Python
process of the run (figure workers included). Three promises are checked on it:

* raw files are never written, renamed, removed or touched, and their folder gains nothing;
* a restricted study's warehouse and reports are readable by their owner only;
* no free text from the raw files reaches a report or figure, and no figure names a subject.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import STUDY_ASSETS
from pipeline import paths
from small_study import write_small_study

# Written into every Python process of the run through PYTHONPATH: records each attempt to
# write, create, rename, remove or change anything under the watched folder.
SITECUSTOMIZE = r"""
import json, os, sys

_RAW = os.path.realpath(os.environ["WATCH_RAW"])
_LOG = os.path.join(os.environ["WATCH_LOG"], f"{os.getpid()}.jsonl")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_CHANGES = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.utime",
            "os.truncate", "os.link", "os.symlink", "os.setxattr", "os.removexattr",
            "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree",
            "shutil.move", "shutil.rmtree"}


def _under_raw(arg):
    if isinstance(arg, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(arg))
        full = os.path.abspath(path)
        return full == _RAW or full.startswith(_RAW + os.sep)
    return False


def _watch(event, args):
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, 0))[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
            (flags or 0) & _WRITE_FLAGS
        )
        hit = writes and _under_raw(path)
    elif event in _CHANGES:
        hit = any(_under_raw(a) for a in args)
    else:
        return
    if hit:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps({"event": event, "args": [repr(a) for a in args]}) + "\n")


sys.addaudithook(_watch)
open(os.path.join(os.environ["WATCH_LOG"], f"{os.getpid()}.started"), "w").close()
"""

TOKEN = "quokkafennel"  # free text that must never leave the raw files


def _snapshot(folder: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted([folder, *folder.rglob("*")]):
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        out[str(p.relative_to(folder))] = (
            st.st_size if p.is_file() else 0,
            digest,
            st.st_mtime_ns,
            stat.S_IMODE(st.st_mode),
        )
    return out


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    base = tmp_path_factory.mktemp("watched")
    raw = base / "raw"
    folder = write_small_study(raw / "guarded", name="guarded", study={"restricted": True})
    # SVG figures too: their text is searched for subject codes below.
    with open(folder / "study.toml", "a", encoding="utf-8") as spec:
        spec.write('\n[figures]\nformats = ["png", "svg"]\n')
    # Free text in a column the spec does not map, and in a mapped item cell (quarantined).
    patients = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    patients["comment"] = f"healed well, {TOKEN} noted at review"
    patients.to_csv(folder / "patients.csv", index=False, lineterminator="\n")
    visits = pd.read_csv(folder / "visits.csv", dtype=str, keep_default_na=False)
    visits.loc[3, "sb_rest_eye"] = f"see {TOKEN}"
    visits.to_csv(folder / "visits.csv", index=False, lineterminator="\n")
    for p in sorted(raw.rglob("*"), reverse=True) + [raw]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    before = _snapshot(raw)

    hook, log = base / "hook", base / "log"
    hook.mkdir()
    log.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    (base / "dagster").mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        "WATCH_RAW": str(raw),
        "WATCH_LOG": str(log),
        "OUTCOMES_RAW": str(raw),
        "OUTCOMES_WAREHOUSE": str(base / "warehouse.duckdb"),
        "OUTCOMES_REPORTS": str(base / "reports"),
        "DAGSTER_HOME": str(base / "dagster"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "assets.cli", "report"],
        cwd=paths.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    writes = [
        json.loads(line) for f in sorted(log.glob("*.jsonl")) for line in f.read_text().splitlines()
    ]
    watched_processes = len(list(log.glob("*.started")))
    yield {
        "base": base,
        "raw": raw,
        "before": before,
        "after": _snapshot(raw),
        "done": done,
        "writes": writes,
        "processes": watched_processes,
        "codes": pd.read_csv(folder / "patients.csv")["study_id"],
    }
    for p in [raw, *raw.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)  # so the temporary folder can be removed


def test_the_whole_run_succeeds_on_read_only_raw_files(watched):
    done = watched["done"]
    assert done.returncode == 0, done.stderr
    assert (watched["base"] / "reports" / "guarded" / "report.html").is_file()


def test_raw_files_are_never_written(watched):
    # The hook ran in the run's processes (the command and its figure workers) ...
    assert watched["processes"] >= 2
    assert watched["writes"] == []
    # ... and does see a write: a process opening a file under the raw folder for writing.
    probe = watched["base"] / "probe"
    probe.mkdir()
    subprocess.run(
        [sys.executable, "-c", f"open({str(watched['raw'] / 'missing' / 'x.csv')!r}, 'w')"],
        env={
            **os.environ,
            "PYTHONPATH": str(watched["base"] / "hook"),
            "WATCH_RAW": str(watched["raw"]),
            "WATCH_LOG": str(probe),
        },
        capture_output=True,
    )
    assert len(list(probe.glob("*.jsonl"))) == 1
    # Names, sizes, content hashes, modification times and modes: all unchanged, nothing added.
    assert watched["after"] == watched["before"]


def test_a_restricted_study_is_readable_by_its_owner_only(watched):
    base = watched["base"]
    warehouse = base / "warehouse.duckdb"
    for path in (warehouse, warehouse.with_name(warehouse.name + ".lock")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    reports = base / "reports" / "guarded"
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [reports, *reports.rglob("*")]}
    assert len(modes) > 30
    for path, mode in modes.items():
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def _text(path: Path) -> str:
    if path.suffix in (".docx", ".xlsx"):
        with zipfile.ZipFile(path) as z:
            return "\n".join(z.read(name).decode("utf-8", "replace") for name in z.namelist())
    return path.read_bytes().decode("latin-1")


def test_reports_and_figures_carry_no_raw_free_text_and_no_subject_labels(watched):
    reports = watched["base"] / "reports" / "guarded"
    files = [p for p in reports.rglob("*") if p.is_file()]
    assert any(p.suffix == ".svg" for p in files) and any(p.suffix == ".docx" for p in files)
    codes = re.compile("|".join(re.escape(c) for c in watched["codes"]))
    for path in files:
        text = _text(path)
        assert TOKEN not in text.lower(), f"raw free text in {path}"
        if path.suffix == ".svg":
            # Figures show groups and distributions; none labels an individual subject.
            assert not codes.search(text), f"a subject code is drawn in {path}"


def test_the_dagster_run_is_kept_step_by_step_in_meta_runs(watched):
    import duckdb

    con = duckdb.connect(str(watched["base"] / "warehouse.duckdb"), read_only=True)
    runs = con.execute(
        "SELECT run_id, study, step, finished_at, input_fingerprint FROM meta.runs"
    ).df()
    con.close()
    assert runs["run_id"].nunique() == 1 and (runs["study"] == "guarded").all()
    assert set(runs["step"]) == set(STUDY_ASSETS)
    assert runs["finished_at"].notna().all() and runs["input_fingerprint"].nunique() == 1
    record = json.loads((watched["base"] / "reports" / "guarded" / "provenance.json").read_text())
    assert runs["input_fingerprint"].iloc[0] == record["input_fingerprint"]


def test_a_restricted_study_stays_owner_only_in_a_run_from_the_ui(
    tiny_study, tmp_path, monkeypatch
):
    """The same through Dagster alone (as `make ui` runs it), with files a run before the study
    was restricted had left readable by everyone."""
    import dagster as dg

    from assets.definitions import build_definitions

    spec = tiny_study / "study.toml"
    spec.write_text(
        spec.read_text().replace("synthetic = true", "synthetic = true\nrestricted = true")
    )
    warehouse, reports = tmp_path / "warehouse.duckdb", tmp_path / "reports"
    (reports / "tiny").mkdir(parents=True)
    (reports / "tiny" / "provenance.json").write_text("{}")
    for name, value in (
        ("OUTCOMES_RAW", tiny_study.parent),
        ("OUTCOMES_WAREHOUSE", warehouse),
        ("OUTCOMES_REPORTS", reports),
    ):
        monkeypatch.setenv(name, str(value))
    job = build_definitions().resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(["tiny", "ingested"]), dg.AssetKey(["tiny", "scores"])],
        )
    assert result.success
    for path in (warehouse, reports / "tiny" / "provenance.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((reports / "tiny").stat().st_mode) == 0o700


def test_figures_exported_for_a_restricted_study_are_owner_only(tmp_path, capsys, monkeypatch):
    import shutil

    from pipeline.cli import main
    from small_study import full_run

    base = full_run()
    shutil.copytree(base / "raw", tmp_path / "raw")
    spec = tmp_path / "raw" / "small" / "study.toml"
    spec.write_text(
        spec.read_text().replace("synthetic = true", "synthetic = true\nrestricted = true")
    )
    shutil.copy(base / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("OUTCOMES_RAW", str(tmp_path / "raw"))
    code = main(
        [
            "export-figures",
            "--format",
            "svg",
            "--width",
            "single",
            "--warehouse",
            str(tmp_path / "warehouse.duckdb"),
            "--reports",
            str(tmp_path / "reports"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    exported = [tmp_path / "reports", *(tmp_path / "reports").rglob("*")][1:]
    assert any(p.suffix == ".svg" for p in exported)
    for path in exported:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
