"""The plan's confidence level reaches every heading, footnote, caption, axis and sentence that
names an interval: a study planned at 90% prints "90% CI" everywhere, and "95%" only where a 95%
is meant whatever the plan (the Bland-Altman limits of agreement, bias ± 1.96 SD).

The default run checks the tables as written, the figures' captions and the Methods text; the
slow one draws the figures and writes the report too."""

from __future__ import annotations

import json
import re

import duckdb
import pytest
from docx import Document

from pipeline.render import figures, tables
from pipeline.render.report import methods_text
from pipeline.spec.study import load_study
from pipeline.steps import run_study
from pipeline.warehouse import read_frame
from small_study import run_steps, write_small_study

# "95%" with or without a space or a LaTeX escape before the sign.
NINETY_FIVE = re.compile(r"95\s?\\?%")
LIMITS = re.compile(r"95\s?\\?%\s+limits of agreement")
# The tables of intervals the small study writes.
WITH_INTERVALS = ("table_2", "etable_responders", "etable_reliability", "etable_visit_estimates")


def _at_ninety(base):
    """The small study (16 patients) with its plan at a 90% level."""
    study = load_study(write_small_study(base / "raw" / "small", n_patients=16))
    spec = study.spec_path.read_text(encoding="utf-8")
    study.spec_path.write_text(
        spec.replace("[analysis]\n", "[analysis]\nconf_level = 0.9\n", 1), encoding="utf-8"
    )
    study = load_study(study.spec_path.parent)
    assert study.analysis.conf_level == 0.9
    return study


def _texts(folder):
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".csv", ".md", ".html", ".tex", ".svg", ".txt"):
            yield path, path.read_text(encoding="utf-8")
        elif path.suffix == ".docx":
            document = Document(str(path))
            cells = [c.text for t in document.tables for r in t.rows for c in r.cells]
            yield path, "\n".join([p.text for p in document.paragraphs] + cells)


def _assert_no_stray_95(name: str, text: str) -> None:
    assert not NINETY_FIVE.search(LIMITS.sub("", text)), f"{name} names a 95% interval"


def test_tables_captions_and_methods_name_the_plans_level(tmp_path):
    study = _at_ninety(tmp_path)
    con = duckdb.connect()
    try:
        run_steps(con, study, tmp_path / "reports")
        specs = figures.study_figures(con, study)  # captions only: nothing drawn
        built = tables.from_frame(read_frame(con, "SELECT * FROM small.publication_tables"))
        results = read_frame(con, "SELECT * FROM small.paired_tests WHERE \"group\" = 'all'")
    finally:
        con.close()
    folder = tmp_path / "reports" / "small"
    named = set()
    for path, text in _texts(folder / "tables"):
        _assert_no_stray_95(path.name, text)
        if "90% CI" in text:
            named.add(path.stem)
    assert set(WITH_INTERVALS) <= named
    for spec in specs:
        _assert_no_stray_95(spec.stem, spec.caption)
    assert any("90% CI" in spec.caption for spec in specs)
    provenance = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
    methods = " ".join(
        methods_text(study, results, provenance, built, [spec.stem for spec in specs])
    )
    _assert_no_stray_95("Methods", methods)
    assert "90% CI" in methods


@pytest.mark.slow
def test_every_output_names_the_plans_level(tmp_path):
    """Figures drawn (their axis and legend texts are in the SVGs) and the report written."""
    study = _at_ninety(tmp_path)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        run_study(con, study, tmp_path / "reports")
    finally:
        con.close()
    folder = tmp_path / "reports" / "small"
    texts = dict(_texts(folder))
    for path, text in texts.items():
        _assert_no_stray_95(path.relative_to(folder).as_posix(), text)
    named = {p.relative_to(folder).as_posix() for p, t in texts.items() if "90% CI" in t}
    assert {f"tables/{stem}.csv" for stem in WITH_INTERVALS} <= named
    assert {"report.html", "report.docx"} <= named
    assert any(name.startswith("figures/") and name.endswith(".svg") for name in named)
