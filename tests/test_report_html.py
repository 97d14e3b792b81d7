"""The study report: one self-contained HTML file that a real browser opens with every
figure loaded, plus its Word version.

The browser test uses the ``browser`` fixture (tests/conftest.py): Debian's chromium.
"""

from __future__ import annotations

import re

import docx
import duckdb
import pytest

from conftest import write_study
from pipeline.spec.study import load_study
from pipeline.steps import run_study


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    study = write_study(
        folder / "tiny",
        patients="""
        code,age
        P1,50
        P2,61
        P3,90+
        P4,47
    """,
        visits="""
        code,visit,day,hb_observer
        P1,pre,-10,4
        P1,m3,95,3
        P2,pre,-5,5
        P2,m6,180,3
        P3,pre,-3,3
        P3,m12,370,2
        P4,pre,-2,4
        P4,m3,92,4
    """,
    )
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    outcome = run_study(con, load_study(study), folder / "reports")
    con.close()
    return folder / "reports" / "tiny", outcome


def test_report_is_self_contained_with_methods_and_provenance(tiny_report):
    folder, outcome = tiny_report
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert folder / "report.html" in outcome["paths"]
    assert "SYNTHETIC DATA" in page
    assert "Wilcoxon signed-rank" in page and "SciPy" in page
    assert "P values are two-sided; P &lt; .05 was considered statistically significant" in page
    # The plan has no subgroup, covariate, responder threshold or second rater: the Methods
    # describe none of those analyses.
    methods = page.split("<h2>Methods")[1].split("<h2>Tables")[0]
    for absent in (
        "subgroup",
        "ANCOVA",
        "Responders",
        "intraclass",
        "Bland-Altman",
        "κ",
        "Each item",
    ):
        assert absent not in methods, absent
    assert "The primary outcome" not in methods and "AMA style" not in methods
    assert "Table 1. Baseline characteristics" in page and "Table 2. Outcomes" in page
    # Every image is embedded: no file or network reference that could break when the file travels.
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "href=" not in page
    spec_hash = load_study(folder.parents[1] / "tiny").spec_sha256
    assert spec_hash in page
    # Never a subject code in the report.
    text = re.sub(r"data:image/png;base64,[^\"]+", "", page)
    assert not re.search(r"\bP[1-4]\b", text)


def test_report_docx_has_the_tables(tiny_report):
    folder, _ = tiny_report
    document = docx.Document(str(folder / "report.docx"))
    headers = [t.rows[0].cells[0].text for t in document.tables]
    assert "Characteristic" in headers and "Outcome" in headers
    assert len(document.inline_shapes) >= 4


def test_report_opens_in_headless_chromium_with_every_image_loaded(tiny_report, browser):
    folder, _ = tiny_report
    browser.get((folder / "report.html").as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt]);"
    )
    tables = browser.execute_script("return document.querySelectorAll('table.publication').length;")
    title = browser.title
    assert len(images) >= 4
    for complete, width, alt in images:
        assert complete and width in (1050, 2100), alt  # 3.5 or 7 in at 300 dpi
    assert tables >= 3
    assert "tiny" in title or title


def test_the_demo_reports_row_labels_take_at_most_two_lines(demo_run, browser):
    # Table 2's values never wrap (white-space: nowrap), so in the report's 60em column its
    # outcome labels were squeezed to four lines ("House- / Brackmann / grade / (observer)").
    folder, _ = demo_run
    browser.set_window_size(1200, 2000)
    browser.get((folder / "reports" / "demo" / "report.html").as_uri())
    lines = browser.execute_script(
        """return Array.from(document.querySelectorAll('table.publication tbody th'))
             .filter(th => th.textContent.trim())
             .map(th => {
               const style = getComputedStyle(th);
               const inner = th.clientHeight - parseFloat(style.paddingTop)
                             - parseFloat(style.paddingBottom);
               return [th.textContent, inner / parseFloat(style.lineHeight)];
             });"""
    )
    assert len(lines) > 50
    assert [text for text, n in lines if n > 2.5] == []
