"""The demo study end to end, against R recomputing it from the raw CSVs.

Expected values: tests/fixtures/r/demo_expected.csv, written by
tests/fixtures/r/demo_expected.R (R 4.2.2: t.test and wilcox.test with paired = TRUE,
Sunnybrook scored by hand in R). Regenerate it whenever the demo cohort is regenerated.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline import paths
from pipeline.report import run_study
from pipeline.study import load_study

FIXTURE = Path(__file__).parent / "fixtures" / "r" / "demo_expected.csv"
COLUMNS = ["n_pairs", "pre_mean", "pre_sd", "post_mean", "post_sd", "mean_diff", "sd_diff",
           "ci_low", "ci_high", "t", "df", "p_t", "wilcoxon_v", "p_wilcoxon"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    outcome = run_study(con, load_study(paths.RAW_DATA_DIR / "demo"), folder / "reports")
    con.close()
    return folder, outcome


def test_paired_tests_match_r(demo_run):
    _, outcome = demo_run
    ours = outcome["results"].set_index(["outcome", "score"])
    expected = pd.read_csv(FIXTURE).set_index(["outcome", "score"])
    assert list(ours.index) == list(expected.index)
    for column in COLUMNS:
        assert ours[column].tolist() == pytest.approx(expected[column].tolist(), rel=1e-9), column


def test_same_inputs_same_bytes(demo_run, tmp_path):
    first_dir, first = demo_run
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    second = run_study(con, load_study(paths.RAW_DATA_DIR / "demo"), tmp_path / "reports")
    con.close()
    assert len(first["paths"]) == len(second["paths"]) >= 8
    for a, b in zip(first["paths"], second["paths"]):
        assert a.name == b.name
        assert a.read_bytes() == b.read_bytes(), a.name
    # Every table, figure and report file, by hash: two runs from an empty warehouse.
    def hashes(reports: Path) -> dict[str, str]:
        return {str(p.relative_to(reports)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(reports.rglob("*")) if p.is_file()}

    ours, again = hashes(first_dir / "reports" / "demo"), hashes(tmp_path / "reports" / "demo")
    assert ours == again
    for kind in ("tables/table_1.docx", "tables/table_2.tex", "figures/patient_flow.tiff",
                 "figures/double_column/prepost_box.svg", "figures/slope_sunnybrook_composite.pdf",
                 "report.html", "report.docx"):
        assert kind in ours, kind
