"""What produced a study's outputs: input files, spec, code commit, package versions.

Written as ``reports/<study>/provenance.json``. It holds no time stamp (the
run's time is in the Dagster run history), so the same inputs and code give
the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from pipeline import paths
from pipeline.ingest import SourceFile, sha256
from pipeline.study import Study

PACKAGES = ("facial-outcomes", "duckdb", "pandas", "numpy", "scipy", "statsmodels", "matplotlib",
            "seaborn", "dagster")


def git_state(root: Path = paths.PROJECT_ROOT) -> dict[str, object]:
    """The commit the code came from, and whether tracked files had uncommitted changes."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {"commit": commit or "unknown (not a git checkout)",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None}


def provenance(study: Study, files: list[SourceFile]) -> dict[str, object]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "study": study.name,
        "synthetic": study.synthetic,
        "spec": {"file": study.spec_path.name, "sha256": study.spec_sha256},
        "inputs": [{"file": f.file, "sha256": f.sha256, "bytes": f.bytes, "rows_read": f.rows_read,
                    "rows_accepted": f.rows_accepted, "rows_quarantined": f.rows_quarantined}
                   for f in files],
        # Columns the guard let through because the spec allowed them, with the spec's reason.
        "identifiers_allowed": [{"column": column, "justification": why}
                                for column, why in getattr(study, "identifiers_allowed", ())],
        # Analysis choices changed for a run without editing the spec (recorded by the analysis steps).
        "analysis_overrides": {},
        "code": git_state(),
        "python": platform.python_version(),
        "packages": versions,
    }


def write_provenance(study: Study, files: list[SourceFile], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "provenance.json"
    path.write_text(json.dumps(provenance(study, files), indent=2) + "\n", encoding="utf-8")
    return path


def fingerprint(study: Study) -> str:
    """One SHA-256 over the spec and every input file, in order: changes iff an input changes."""
    digest = hashlib.sha256()
    for path in study.input_paths:
        digest.update(path.name.encode() + b"\0" + sha256(path).encode() + b"\0")
    return digest.hexdigest()


def record_overrides(folder: Path, overrides: dict[str, object]) -> None:
    """Note in ``provenance.json`` the analysis choices a run overrode ({} when none)."""
    path = folder / "provenance.json"
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if record.get("analysis_overrides") == overrides:
        return
    record["analysis_overrides"] = dict(sorted(overrides.items()))
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
