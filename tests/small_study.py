"""A small synthetic study for the robustness tests: the demo cohort's generator, fewer
patients and a short analysis plan, so a whole run (figures included) takes seconds.

``full_run()`` is one clean run of it, made once per test session and shared.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import duckdb

from pipeline.synthetic import demo
from specs import HB_OBSERVER, study_toml

# The demo's files with a short plan: House-Brackmann by two raters, and Sunnybrook.
SMALL_STUDY = {
    "study": {"title": "Small synthetic cohort"},
    "subjects": {
        "id": "study_id",
        "columns": ["age", "sex", "etiology", "months_since_onset"],
        "levels": {"sex": ["F", "M"], "etiology": list(demo.ETIOLOGIES)},
    },
    "visits": {"subject": "study_id"},
    "instruments": {
        "sunnybrook": {"column": "sb_{item}"},
        "house_brackmann": {"column": "hb_{rater}", "raters": ["observer", "surgeon"]},
    },
    "analysis": {
        "pre": {"rule": "latest_preoperative", "max_day": 0},
        "primary": "house_brackmann_observer",
        "ordinal": ["house_brackmann_observer"],
        "responders": {"house_brackmann_observer": 1},
        "covariates": ["months_since_onset"],
        "subgroups": [{"name": "etiology", "column": "etiology"}],
        "reliability": [
            {"instrument": "house_brackmann", "score": "grade", "raters": ["observer", "surgeon"]}
        ],
        "outcomes": [HB_OBSERVER, {"instrument": "sunnybrook", "score": "composite"}],
    },
}


def write_small_study(
    folder: Path,
    *,
    name: str = "small",
    seed: int = 63,
    n_patients: int = 20,
    study: dict | None = None,
) -> Path:
    """The demo generator's ``patients.csv`` and ``visits.csv`` plus a short spec, in ``folder``."""
    folder = Path(folder)
    demo.write(folder, seed=seed, n_patients=n_patients)
    (folder / "study.toml").write_text(
        study_toml(SMALL_STUDY, {"study": {"name": name, **(study or {})}}), encoding="utf-8"
    )
    return folder


# A run's steps up to the figures, in run_study's order (functions of pipeline.steps).
DATA_STEPS = (
    "ingest",
    "score_study",
    "pair_study",
    "analyse",
    "secondary_analyses",
    "write_tables",
)


def run_steps(con, study, reports: Path, steps=DATA_STEPS) -> None:
    """Run some of a study's steps on ``con`` (looked up in pipeline.steps at call time)."""
    from pipeline import steps as study_steps

    for step in steps:
        function = getattr(study_steps, step)
        if step in ("score_study", "pair_study"):
            function(con, study)
        else:
            function(con, study, reports)


def study_tables(con, schema: str) -> dict[str, object]:
    """Every table and view of a study's schema as a DataFrame, by name."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY "
            "table_name",
            [schema],
        ).fetchall()
    ]
    return {name: con.execute(f'SELECT * FROM {schema}."{name}"').df() for name in names}


def file_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


_session = None


def _session_dir() -> Path:
    global _session
    if _session is None:
        _session = Path(tempfile.mkdtemp(prefix="small_study_"))
        atexit.register(shutil.rmtree, _session, True)
    return _session


@functools.lru_cache(maxsize=None)
def full_run() -> Path:
    """One clean, complete run of the small study (figures and report included), shared by the
    tests of a session: ``<dir>/raw/small``, ``<dir>/warehouse.duckdb``, ``<dir>/reports/small``."""
    from pipeline.spec.study import load_study
    from pipeline.steps import run_study

    base = _session_dir() / "full_run"
    study = load_study(write_small_study(base / "raw" / "small"))
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    try:
        run_study(con, study, base / "reports")
    finally:
        con.close()
    return base
