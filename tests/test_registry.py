"""The SYNTHETIC registry generator, the benchmark at a tiny size, and lean imports.

The benchmark is run end to end at 20 patients only to show that it works and writes its
tables; nothing here asserts a time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.ingest.ingestion import ingest_study
from pipeline.instruments import REGISTRY
from pipeline.spec.study import load_study
from pipeline.synthetic import registry

ROOT = Path(__file__).resolve().parent.parent


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = registry.write(tmp_path / "a", seed=5, n_patients=30, visits=4)
    registry.write(tmp_path / "b", seed=5, n_patients=30, visits=4)
    registry.write(tmp_path / "c", seed=6, n_patients=30, visits=4)
    assert [p.name for p in a] == ["patients.csv", "visits.csv", "study.toml"]
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["visits.csv"] != _digest(tmp_path / "c")["visits.csv"]


def test_every_patient_has_every_visit_and_every_instrument():
    frames = registry.generate(seed=1, n_patients=40, visits=6)
    visits = frames["visits"]
    assert len(frames["patients"]) == 40 and len(visits) == 40 * 6
    assert (visits.groupby("study_id")["visit"].apply(tuple) == registry.visit_codes(6)).all()
    prefixes = {c.split("_")[0] for c in registry.ITEM_COLUMNS}
    assert prefixes == {"hb", "sb", "eface", "saq", "face", "fdi", "fngs", "lm"}
    # About 1% of item values missing, none out of its range.
    assert 0.002 < visits[registry.ITEM_COLUMNS].isna().to_numpy().mean() < 0.03


def test_ingest_accepts_every_row_and_scores_every_instrument(tmp_path):
    registry.write(tmp_path / "r", seed=2, n_patients=25, visits=6, name="registry_test")
    study = load_study(tmp_path / "r")
    assert {s.instrument for s in study.instruments} == set(REGISTRY)
    con = duckdb.connect()
    files = ingest_study(con, study)
    assert [(f.rows_read, f.rows_accepted, f.rows_quarantined) for f in files] == [
        (25, 25, 0),
        (150, 150, 0),
    ]
    assert con.execute("SELECT count(*) FROM registry_test.quarantine").fetchall() == [(0,)]
    answered = sum(pd.read_csv(tmp_path / "r" / "visits.csv")[registry.ITEM_COLUMNS].notna().sum())
    assert con.execute("SELECT count(*) FROM registry_test.item_responses").fetchall() == [
        (answered,)
    ]
    from pipeline.scores import score_study

    score_study(con, study)
    scored = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT instrument FROM registry_test.scores WHERE value IS NOT NULL"
        ).fetchall()
    }
    assert scored == set(REGISTRY)


def test_the_registry_spec_labels_its_columns_and_levels_as_the_demo_does(tmp_path):
    # Its Table 1 and Table 3 showed "bells_palsy" and "Prior botox" before it had labels.
    registry.write(tmp_path / "r", seed=2, n_patients=5, visits=2)
    study = load_study(tmp_path / "r")
    demo = load_study(Path(__file__).parents[1] / "data" / "raw" / "demo")
    for column in study.subject_columns:
        assert study.column_label(column) == demo.column_label(column), column
    assert dict(study.subject_levels) == {
        c: levels for c, levels in demo.subject_levels if c in study.subject_columns
    }


def test_bench_runs_end_to_end_at_a_tiny_size(tmp_path):
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--sizes", "20", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""  # not a terminal: no progress lines
    with open(out / "bench.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    steps = [r["step"] for r in rows if r["runner"] == "pipeline"]
    assert steps == [
        "read_csv",
        "ingest",
        "score",
        "pair",
        "analyse",
        "secondary",
        "tables",
        "figures",
    ]
    assert {r["step"] for r in rows if r["runner"] == "baseline"} == {
        "read",
        "score",
        "pair",
        "tests",
    }
    # The same-work baseline: reading with the identifier guard and the quarantine, every
    # score, pairs, tests with Hodges-Lehmann.
    assert [r["step"] for r in rows if r["runner"] == "same_work"] == [
        "read, guard, quarantine",
        "score",
        "pair",
        "tests",
    ]
    assert all(float(r["seconds"]) > 0 and float(r["peak_rss_mb"]) > 0 for r in rows)
    assert all(float(r["cpu_seconds"]) > 0 for r in rows if r["runner"] == "pipeline")
    text = (out / "bench.md").read_text(encoding="utf-8")
    assert "ingest / read_csv" in text and "baseline / pipeline" in text
    assert "same work / pipeline" in text
    assert "(ingest to tables)" in text and "(ingest to figures)" in text


@pytest.mark.parametrize(
    "code",
    [
        "import pipeline.ingest.validate",
        "from pipeline.cli import main; main(['validate', 'data/raw/demo'])",
    ],
)
def test_validating_does_not_import_the_plotting_or_modelling_libraries(code):
    probe = (
        f"import sys\n{code}\n"
        "print([m for m in ('statsmodels', 'matplotlib', 'seaborn') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_shown_on_a_terminal_only(monkeypatch):
    from pipeline import progress

    for stream, expected in ((io.StringIO(), ""), (_Terminal(), "ingest")):
        monkeypatch.setattr(sys, "stderr", stream)
        with progress.step("ingest"):
            with progress.step("reading visits.csv"):
                pass
        text = stream.getvalue()
        assert (expected in text) if expected else text == ""
    assert "  reading visits.csv: " in text and text.rstrip().endswith("s")
