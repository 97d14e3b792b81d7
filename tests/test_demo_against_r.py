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
from pipeline.spec.study import load_study
from pipeline.statistics.paired import COLUMNS as RESULT_COLUMNS
from pipeline.steps import run_study

FIXTURE = Path(__file__).parent / "fixtures" / "r" / "demo_expected.csv"
# The columns R recomputes: counts, means and SDs, the t-test and the Wilcoxon test.
COLUMNS = RESULT_COLUMNS[RESULT_COLUMNS.index("n_pairs") : RESULT_COLUMNS.index("p_wilcoxon") + 1]


# demo_run (tests/conftest.py): the demo study run once per test session, shared with the
# Word layout tests.


def test_paired_tests_match_r(demo_run):
    _, outcome = demo_run
    ours = outcome["results"].set_index(["outcome", "score"])
    expected = pd.read_csv(FIXTURE).set_index(["outcome", "score"])
    assert list(ours.index) == list(expected.index)
    for column in COLUMNS:
        assert ours[column].tolist() == pytest.approx(expected[column].tolist(), rel=1e-9), column


def test_hodges_lehmann_interval_matches_r(demo_run):
    # demo_expected.R: wilcox.test(post, pre, paired = TRUE, conf.int = TRUE) on R's own scoring
    # of the raw CSVs: Table 2's median change and its interval, with the level R reports. The
    # root searches are R's step for step (R's qnorm included), so the numbers agree to the bit
    # (0 seen); 1e-12 leaves room for scores summed in another order.
    _, outcome = demo_run
    ours = outcome["results"].set_index(["outcome", "score"])
    expected = pd.read_csv(FIXTURE, float_precision="round_trip").set_index(["outcome", "score"])
    for column in ("hodges_lehmann", "hl_ci_low", "hl_ci_high", "hl_conf_level"):
        assert ours[column].tolist() == pytest.approx(
            expected[column].tolist(), rel=1e-12, abs=1e-12
        ), column


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
        return {
            str(p.relative_to(reports)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(reports.rglob("*"))
            if p.is_file()
        }

    ours, again = hashes(first_dir / "reports" / "demo"), hashes(tmp_path / "reports" / "demo")
    assert ours == again
    for kind in (
        "tables/table_1.docx",
        "tables/table_2.tex",
        "figures/patient_flow.png",
        "figures/double_column/prepost_box.png",
        "figures/double_column/slope_sunnybrook_composite.csv",
        "report.html",
        "report.docx",
    ):
        assert kind in ours, kind
    # ... and the comparison covers every figure: the PNG the report shows, at its width (the
    # spec's [figures] asks for no other format), with its source data; each publication table
    # in CSV, Markdown, HTML, LaTeX and Word.
    figures = {
        (str(Path(name).parent), Path(name).stem)
        for name in ours
        if name.startswith("figures/") and not Path(name).name.startswith(".")
    }
    assert len({stem for _, stem in figures}) >= 8
    assert {name for name in ours if name.startswith("figures/")} == {
        f"{width}/{stem}.{ext}"
        for width, stem in figures
        for ext in ("png", "csv")
        if (stem, ext) != ("patient_flow", "csv")
    } | {"figures/.rendered.json"}
    tables = {
        Path(name).stem
        for name in ours
        if name.startswith("tables/table_") or name.startswith("tables/etable")
    }
    assert {"table_1", "table_2"} <= tables
    for stem in tables:
        for ext in ("csv", "md", "html", "tex", "docx"):
            assert f"tables/{stem}.{ext}" in ours, f"tables/{stem}.{ext}"

    # The warehouse tables are the same too (the run record in meta.runs aside).
    def warehouse_tables(path: Path) -> dict[str, pd.DataFrame]:
        con = duckdb.connect(str(path), read_only=True)
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'demo' ORDER BY 1"
            ).fetchall()
        ]
        frames = {name: con.execute(f'SELECT * FROM demo."{name}"').df() for name in names}
        con.close()
        return frames

    before, after = (
        warehouse_tables(first_dir / "warehouse.duckdb"),
        warehouse_tables(tmp_path / "warehouse.duckdb"),
    )
    assert before.keys() == after.keys() and len(before) >= 15
    for name in before:
        assert before[name].equals(after[name]), name
