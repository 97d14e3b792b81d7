"""Word files as a reader sees them.

The demo's report.docx and its Table 1, Table 2 and Table 3 files are converted to PDF once by
LibreOffice Writer (headless, with a profile of its own) and read back with poppler's
pdftotext and pdfinfo: no word of a table cell is broken across lines, no value is wrapped,
wide tables are on landscape pages, a table running over pages repeats its heading row, and
the report keeps to a page count. The Word XML behind it (heading row, row splitting, column
widths, section orientation, superscript footnote marks) is checked without LibreOffice.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import docx
import pandas as pd
import pytest
from docx.oxml.ns import qn

from pipeline.render import tables, writers
from specs import HB_OBSERVER, study_toml

# The standalone table files converted with the report: Table 1 and Table 2 (landscape),
# Table 3 by subgroup (portrait, over several pages), the missing-data eTable (portrait).
TABLE_FILES = ("table_1", "table_2", "table_3_subgroups", "etable_missing")
# The report took 31 pages in LibreOffice when every column was 0.67 in wide and every figure
# 6.5 in; laid out, it took 19. The content has grown since, to 28 pages, of which Table 3 and
# its ANCOVA part took 7 with the outcome and subgroup repeated on every row. With each outcome
# a row of its own and its subgroups and levels indented under it, the demo's report takes 26
# (Methods 2, Tables 1-3 7 of which Table 3 and its ANCOVA part 5, eTables with the item tables
# 7, figures 9, provenance 1). The surgical outcomes (complications, power, the predictor
# models, time to revision and its Kaplan-Meier figure) bring it to 31. A couple of pages of
# slack for content added later. The mixed model's eTable (analysis.longitudinal model = true)
# adds one.
REPORT_PAGES = 34
PORTRAIT, LANDSCAPE = (612, 792), (792, 612)  # US Letter in points


# --------------------------------------------------------------------------- LibreOffice


@pytest.fixture(scope="module")
def demo_tables(demo_run) -> dict[str, writers.Table]:
    """The demo's publication tables as the report shows them, by file stem."""
    import duckdb

    from pipeline.warehouse import read_frame

    folder, _ = demo_run
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    built = tables.from_frame(read_frame(con, "SELECT * FROM demo.publication_tables"))
    con.close()
    return dict(built)


def _convert(sources: list[Path], tmp_path_factory) -> dict[Path, Path]:
    """Each of ``sources`` (.docx) converted to PDF by one LibreOffice run: PDF by source."""
    missing = [
        tool for tool in ("soffice", "pdftotext", "pdfinfo", "pdfimages") if not shutil.which(tool)
    ]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: the Word layout tests need LibreOffice Writer and "
            "poppler (apt-get install libreoffice-writer-nogui poppler-utils fonts-liberation2, "
            "as .ci/run does)",
            pytrace=False,
        )
    out = tmp_path_factory.mktemp("pdf")
    # A profile of its own: two LibreOffice runs sharing one would wait on each other's lock.
    profile = tmp_path_factory.mktemp("libreoffice_profile")
    # Numbered copies: two studies' table_2.docx would be converted to one table_2.pdf.
    (out / "in").mkdir()
    named = {source: out / "in" / f"{k}_{source.name}" for k, source in enumerate(sources)}
    for source, copy in named.items():
        shutil.copy(source, copy)
    done = subprocess.run(
        [
            shutil.which("soffice"),
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            *map(str, named.values()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    converted = {p: out / f"{copy.stem}.pdf" for p, copy in named.items()}
    absent = [p.name for p, pdf in converted.items() if not pdf.is_file()]
    assert not absent, f"LibreOffice wrote no PDF of {absent}: {done.stderr[-2000:]}"
    return converted


@pytest.fixture(scope="module")
def pdfs(demo_run, tmp_path_factory) -> dict[str, Path]:
    """report.pdf and the table PDFs, converted by one LibreOffice run."""
    folder, _ = demo_run
    reports = folder / "reports" / "demo"
    sources = [reports / "report.docx"] + [reports / "tables" / f"{s}.docx" for s in TABLE_FILES]
    return {p.stem: pdf for p, pdf in _convert(sources, tmp_path_factory).items()}


def _pages(pdf: Path) -> list[str]:
    """The text of each page, as pdftotext -layout places it; Word's non-breaking hyphens and
    spaces read as plain ones, runs of spaces as one."""
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    text = text.replace("\u2011", "-").replace("\u00a0", " ")
    return [re.sub(r" +", " ", page) for page in text.split("\f")[:-1]]


def _page_sizes(pdf: Path) -> list[tuple[int, int]]:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    n = int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))
    info = subprocess.run(
        ["pdfinfo", "-f", "1", "-l", str(n), str(pdf)], capture_output=True, text=True, check=True
    )
    sizes = re.findall(r"^Page\s+\d+ size:\s+([\d.]+) x ([\d.]+)", info.stdout, re.M)
    return [(round(float(w)), round(float(h))) for w, h in sizes]


def _cells(table: writers.Table) -> list[tuple[int | None, int, str]]:
    """Every cell's text as Word shows it, with the letters of its footnote marks."""
    cells = [(None, j, str(c) + table.mark_of(None, j)) for j, c in enumerate(table.body.columns)]
    for i, values in enumerate(table.body.itertuples(index=False)):
        cells += [(i, j, str(v) + table.mark_of(i, j)) for j, v in enumerate(values)]
    return cells


def _region(text: str, table: writers.Table) -> str:
    """The text from a table's title to its first footnote (its headings and cells, over
    every page it takes)."""
    start = text.index(table.title[:40])
    end = text.index(table.footnotes[0][:25], start) if table.footnotes else len(text)
    return text[start + len(table.title[:40]) : end]


def _broken_cells(text: str, table: writers.Table) -> list[str]:
    """The cells of ``table`` that ``text`` does not show whole: a word (a run of text
    between spaces) not on one line, or a value (a body cell right of the first column that
    holds a number, see writers._is_value) not on one line. Counted: each must appear at least
    as often as the table holds it."""
    region = _region(text, table)
    cells = _cells(table)
    joined = "\n".join(t for _, _, t in cells)
    broken = []
    for i, j, cell in cells:
        words = [w for w in cell.split(" ") if len(w) > 1]
        if i is not None and j > 0 and writers._is_value(cell):
            words.append(cell)
        broken += [f"{cell!r}: {w!r}" for w in words if region.count(w) < joined.count(w)]
    return broken


@pytest.mark.parametrize("stem", ["table_1", "table_2"])
def test_no_word_or_value_of_a_table_is_broken(pdfs, demo_tables, stem):
    text = "\n".join(_pages(pdfs[stem]))
    assert _broken_cells(text, demo_tables[stem]) == []


def test_no_word_or_value_of_a_report_table_is_broken(pdfs, demo_tables):
    text = "\n".join(_pages(pdfs["report"]))
    broken = {
        stem: _broken_cells(text, table)
        for stem, table in demo_tables.items()
        if _broken_cells(text, table)
    }
    assert broken == {}


def test_the_check_finds_a_broken_word(demo_tables):
    """_broken_cells sees a label wrapped inside a word, as the fixed 0.67 in columns did,
    and a value wrapped at a space."""
    table = demo_tables["table_2"]
    whole = "\n".join([table.title] + [t for _, _, t in _cells(table)] + list(table.footnotes))
    assert _broken_cells(whole, table) == []
    label, value = str(table.body.iloc[0, 0]), str(table.body.iloc[0, 4])
    assert "House-Brackmann" in label and " (" in value
    assert _broken_cells(whole.replace("House-", "House-\n", 1), table) != []
    assert _broken_cells(whole.replace(value, value.replace(" (", "\n(", 1), 1), table) != []


@pytest.mark.parametrize(
    # The demo's Table 1 is single-arm (one column): it fits portrait; Table 2 does not.
    "stem, size",
    [("table_1", PORTRAIT), ("table_2", LANDSCAPE), ("etable_missing", PORTRAIT)],
)
def test_wide_tables_are_on_landscape_pages(pdfs, stem, size):
    assert set(_page_sizes(pdfs[stem])) == {size}


def test_report_tables_are_on_pages_of_their_orientation(pdfs, demo_tables):
    pages, sizes = _pages(pdfs["report"]), _page_sizes(pdfs["report"])
    assert len(pages) == len(sizes)

    def size_of(text: str) -> tuple[int, int]:
        return sizes[next(k for k, page in enumerate(pages) if text in page)]

    assert size_of("Methods: statistical analysis") == PORTRAIT
    assert size_of(demo_tables["table_1"].title) == PORTRAIT
    assert size_of(demo_tables["table_2"].title) == LANDSCAPE
    assert size_of(demo_tables["etable_missing"].title[:40]) == PORTRAIT
    assert size_of("Provenance") == PORTRAIT
    # "Tables" starts the page of the first table, not the foot of the page before it.
    first = next(k for k, page in enumerate(pages) if demo_tables["table_1"].title in page)
    assert re.search(r"^\s*Tables\s*$", pages[first], re.M)


def test_a_table_over_pages_repeats_its_heading_row(pdfs, demo_tables):
    table = demo_tables["table_3_subgroups"]
    pages = _pages(pdfs["table_3_subgroups"])
    assert len(pages) >= 2, "the test needs a table that runs over pages"
    words = {w for heading in table.body.columns for w in str(heading).split(" ") if len(w) > 1}
    for number, page in enumerate(pages, start=1):
        assert {w for w in words if w not in page} == set(), f"page {number}"
    # ... and every row is there: none lost at a page break (a level by its count and change, an
    # outcome by its name).
    text = "\n".join(pages)
    for values in table.body.itertuples(index=False):
        shown = " ".join(str(v) for v in values[1:3]) if values[1] else str(values[0])
        assert text.count(shown) >= 1


def test_report_page_count(pdfs):
    assert len(_page_sizes(pdfs["report"])) <= REPORT_PAGES


def _print_widths(demo_run) -> list[float]:
    """Each figure of the report, in order, at the width its PNG was drawn for: pixels over
    dots per inch (3.5 or 7.0 in at 300 dpi, pipeline.render.figure_files.WIDTHS)."""
    import duckdb
    from PIL import Image

    folder, _ = demo_run
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    pngs = [
        p for (p,) in con.execute("SELECT png FROM demo.figure_list ORDER BY position").fetchall()
    ]
    con.close()
    widths = []
    for png in pngs:
        with Image.open(folder / "reports" / "demo" / png) as image:
            widths.append(round(image.width / image.info["dpi"][0], 2))
    return widths


def test_report_figures_are_printed_at_their_own_width(demo_run, pdfs):
    # A double-column figure is 7 in wide: on pages of 1 in margins (6.5 in of text) Word
    # prints it at 93%; the figure pages' margins leave it the 7 in it was drawn for.
    widths = _print_widths(demo_run)
    assert {3.5, 7.0} <= set(widths)
    folder, _ = demo_run
    document = docx.Document(str(folder / "reports" / "demo" / "report.docx"))
    assert [shape.width for shape in document.inline_shapes] == [
        docx.shared.Inches(w) for w in widths
    ]
    # ... and LibreOffice prints every picture at the 300 dpi it was drawn at: its print width.
    listed = subprocess.run(
        ["pdfimages", "-list", str(pdfs["report"])], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    pixels_per_inch = [line.split()[12:14] for line in listed]
    assert len(pixels_per_inch) == len(widths)
    assert {tuple(p) for p in pixels_per_inch} == {("300", "300")}


# ------------------------------------------------- a study with one outcome, a registry

# The Word tables of two other studies, converted and read as the demo's are: the small study
# with one outcome (Table 2 of a row, Table 3 of one outcome), and a SYNTHETIC registry
# (pipeline/synthetic/registry.py: every instrument, 25 outcomes, five subgroups, counts of
# hundreds). The default run writes their tables only; the slow run writes the registry at
# 2000 patients and both reports, figures included.
ONE_OUTCOME = {
    "study": {"name": "one"},
    "analysis": {"outcomes": [HB_OBSERVER], "reliability": None},
}
REGISTRY_PATIENTS, REGISTRY_VISITS = 400, 3
# A table page holds at least this many rows: one whose cells wrap into tall rows (the fixed
# 0.67 in columns) takes more pages.
ROWS_PER_PAGE = 20
# The registry's report at 2000 patients took 33 pages in LibreOffice (Methods 2, Tables 1-3 9,
# eTables 13, figures 8, provenance 1); the study with one outcome's far fewer.
REPORT_PAGES_OF = {"one": 16, "registry": 38}


def _other_study(base: Path, name: str, *, patients: int = REGISTRY_PATIENTS) -> Path:
    from pipeline.synthetic import registry
    from small_study import SMALL_STUDY, write_small_study

    if name == "one":
        folder = write_small_study(base / "raw" / "one", name="one")
        (folder / "study.toml").write_text(study_toml(SMALL_STUDY, ONE_OUTCOME), encoding="utf-8")
        return folder
    folder = base / "raw" / "registry"
    registry.write(folder, seed=7, n_patients=patients, visits=REGISTRY_VISITS)
    return folder


def _built_tables(con, study) -> dict[str, writers.Table]:
    from pipeline.warehouse import read_frame

    built = read_frame(con, f"SELECT * FROM {study.name}.publication_tables")
    return dict(tables.from_frame(built))


def _tables_and_pdfs(name: str, tmp_path_factory) -> tuple[dict, dict]:
    """A study's tables by stem, and the PDF of each table's .docx by stem."""
    import duckdb

    from pipeline.spec.study import load_study
    from small_study import run_steps

    base = tmp_path_factory.mktemp(f"tables_{name}")
    study = load_study(_other_study(base, name))
    con = duckdb.connect()
    try:
        run_steps(con, study, base / "reports")
        built = _built_tables(con, study)
    finally:
        con.close()
    folder = base / "reports" / study.name / "tables"
    sources = {stem: folder / f"{stem}.docx" for stem in built}
    pdfs = _convert(list(sources.values()), tmp_path_factory)
    return built, {stem: pdfs[path] for stem, path in sources.items()}


@pytest.fixture(scope="module")
def one_tables(tmp_path_factory):
    return _tables_and_pdfs("one", tmp_path_factory)


@pytest.fixture(scope="module")
def registry_tables(tmp_path_factory):
    return _tables_and_pdfs("registry", tmp_path_factory)


# The registry's tables take half a minute to compute: in the slow run only (the study with
# one outcome, in the default run, checks the same on a study of another shape).
STUDIES = ["one", pytest.param("registry", marks=pytest.mark.slow)]


@pytest.mark.parametrize("name", STUDIES)
def test_no_word_or_value_of_another_studys_tables_is_broken(request, name):
    built, pdfs = request.getfixturevalue(f"{name}_tables")
    assert {"table_1", "table_2", "table_3_subgroups", "etable_flow"} <= set(built)
    broken = {}
    for stem, table in built.items():
        found = _broken_cells("\n".join(_pages(pdfs[stem])), table)
        if found:
            broken[stem] = found
    assert broken == {}


@pytest.mark.parametrize("name", STUDIES)
def test_another_studys_tables_keep_to_a_page_count(request, name):
    built, pdfs = request.getfixturevalue(f"{name}_tables")
    pages = {stem: len(_page_sizes(pdf)) for stem, pdf in pdfs.items()}
    too_many = {
        stem: (pages[stem], len(table.body))
        for stem, table in built.items()
        if pages[stem] > 1 + len(table.body) // ROWS_PER_PAGE
    }
    assert too_many == {}
    assert pages["table_1"] == 1 and pages["table_2"] <= (1 if name == "one" else 2)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["one", "registry"])
def test_another_studys_report_is_laid_out(tmp_path_factory, name):
    """The whole report of the study with one outcome and of the registry at 2000 patients
    (figures sampled as every registry's are): no cell broken, pages within reason."""
    import duckdb

    from pipeline.spec.study import load_study
    from pipeline.steps import run_study

    base = tmp_path_factory.mktemp(f"report_{name}")
    study = load_study(_other_study(base, name, patients=2000))
    con = duckdb.connect(str(base / "w.duckdb"))
    try:
        run_study(con, study, base / "reports")
        built = _built_tables(con, study)
    finally:
        con.close()
    report = base / "reports" / study.name / "report.docx"
    pdf = _convert([report], tmp_path_factory)[report]
    text = "\n".join(_pages(pdf))
    assert {stem: b for stem, t in built.items() if (b := _broken_cells(text, t))} == {}
    assert len(_page_sizes(pdf)) <= REPORT_PAGES_OF[name]


# --------------------------------------------------------------------------- Word XML


def _table(columns: int = 3, rows: int = 3, *, marks=()) -> writers.Table:
    body = pd.DataFrame(
        {
            "Outcome" if j == 0 else f"Value {j} (95% CI)": [
                "House-Brackmann grade (observer)" if j == 0 else "-1.20 (-1.53 to -0.87)"
                for _ in range(rows)
            ]
            for j in range(columns)
        }
    )
    return writers.Table("Table 9. Test", body, ("a note", "b note"), (), marks)


def _document(*tables_in_order: writers.Table):
    document = writers.new_docx()
    for table in tables_in_order:
        writers.add_docx_table(document, table)
    return document


def test_heading_row_repeats_and_no_row_splits():
    word = _document(_table(rows=40)).tables[0]._tbl
    rows = word.tr_lst
    assert rows[0].trPr.find(qn("w:tblHeader")) is not None
    assert all(r.trPr.find(qn("w:tblHeader")) is None for r in rows[1:])
    assert all(r.trPr.find(qn("w:cantSplit")) is not None for r in rows)
    # Long: only the heading row is kept with the next; short: every row.
    keep = [r.find(".//" + qn("w:keepNext")) is not None for r in rows]
    assert keep == [True] + [False] * 40
    short = _document(_table(rows=3)).tables[0]._tbl
    assert all(r.find(".//" + qn("w:keepNext")) is not None for r in short.tr_lst)


def test_a_row_with_rows_indented_under_it_is_kept_with_them():
    """An outcome's row stays on the page of its first subgroup (an outcome name alone at the
    foot of a page, its rows on the next, was what Table 3 showed); an empty cell's line is as
    high as the table's type, not the document's."""
    body = pd.DataFrame(
        {"Outcome and subgroup": ["SAQ total", "Etiology: Trauma", "Etiology: Bell palsy"] * 20}
        | {"n pairs": ["", "7", "29"] * 20}
    )
    table = writers.Table("Table 9. Test", body, (), (0, 1, 1) * 20)
    rows = _document(table).tables[0]._tbl.tr_lst
    keep = [r.find(".//" + qn("w:keepNext")) is not None for r in rows]
    assert keep == [True] + [True, False, False] * 20
    empty = rows[1].tc_lst[1].p_lst[0]
    assert empty.find(f"{qn('w:pPr')}/{qn('w:rPr')}/{qn('w:sz')}").get(qn("w:val")) == "18"


def test_column_widths_follow_the_content():
    document = _document(_table(columns=3))
    word = document.tables[0]._tbl
    assert word.tblPr.find(qn("w:tblLayout")).get(qn("w:type")) == "fixed"
    grid = [int(c.get(qn("w:w"))) for c in word.tblGrid.gridCol_lst]
    cells = [int(tc.tcPr.find(qn("w:tcW")).get(qn("w:w"))) for tc in word.tr_lst[1].tc_lst]
    assert grid == cells
    assert int(word.tblPr.find(qn("w:tblW")).get(qn("w:w"))) == sum(grid)
    assert sum(grid) <= 6.5 * 1440  # the portrait text width, 1 in margins
    # A value column holds its value on one line: its width at 9 pt Arial (Helvetica's
    # widths, 82.5 pt for "-1.20 (-1.53 to -0.87)") and Word's cell margins (2 x 5.4 pt).
    value = writers.text_width_pt("-1.20 (-1.53 to -0.87)", 9)
    assert value == pytest.approx(82.5 * writers.WIDTH_SLACK, abs=0.1)
    assert grid[1] / 20 >= value + 10.8
    assert grid[0] > grid[1]  # the label column is the widest


def test_wide_table_gets_a_landscape_section_of_its_own():
    from docx.enum.section import WD_ORIENT

    narrow, wide = _table(columns=2), _table(columns=6)
    document = _document(narrow, wide)
    writers.set_orientation(document, landscape=False)
    document.add_paragraph("after")
    orientations = [s.orientation for s in document.sections]
    assert orientations == [WD_ORIENT.PORTRAIT, WD_ORIENT.LANDSCAPE, WD_ORIENT.PORTRAIT]
    landscape = document.sections[1]
    assert landscape.page_width > landscape.page_height
    assert landscape.left_margin == landscape.top_margin == docx.shared.Inches(1)
    # Two wide tables in a row share one landscape section.
    assert len(_document(wide, wide).sections) == 1
    # A file of one wide table is landscape itself, with no blank portrait page before it.
    alone = _document(wide)
    assert [s.orientation for s in alone.sections] == [WD_ORIENT.LANDSCAPE]


def test_a_table_too_wide_for_landscape_at_9_pt_gets_smaller_type():
    # 6 values of 1.35 in and the label's 1.75 in: 9.85 in at 9 pt, 8.67 in at 7.5 pt.
    layout = writers.docx_layout(writers.new_docx(), _table(columns=7))
    assert layout.landscape and layout.font_pt == 7.5
    assert sum(layout.widths) <= 9 * 1440
    value = writers.text_width_pt("-1.20 (-1.53 to -0.87)", 7.5)
    assert all(w / 20 >= value + 10.8 for w in layout.widths[1:])


def test_footnote_marks_are_superscript_after_the_cell_text(tmp_path):
    table = _table(marks=((None, 1, 0), (1, 0, 1), (1, 0, 0)))
    path = writers.to_docx(table, tmp_path / "t.docx")
    word = docx.Document(str(path)).tables[0]
    heading, label = word.cell(0, 1), word.cell(2, 0)
    assert heading.text == "Value 1 (95% CI)a" and label.text.endswith("a,b")
    runs = label.paragraphs[0].runs
    assert runs[-1].text == "a,b" and runs[-1].font.superscript and not runs[0].font.superscript
    assert word.cell(1, 0).text == "House-Brackmann grade (observer)"  # unmarked


def test_footnote_marks_in_every_format():
    table = _table(marks=((None, 1, 0), (0, 2, 1)))
    assert '<th scope="col">Value 1 (95% CI)<sup>a</sup></th>' in writers.to_html(table)
    assert "-1.20 (-1.53 to -0.87)<sup>b</sup></td>" in writers.to_html(table)
    assert "Value 1 (95\\% CI)\\textsuperscript{a}" in writers.to_latex(table)
    assert "-1.20 (-1.53 to -0.87)\\textsuperscript{b} \\\\" in writers.to_latex(table)
    markdown = writers.to_markdown(table)
    assert "Value 1 (95% CI)^a" in markdown and "-1.20 (-1.53 to -0.87)^b" in markdown
    # CSV cells are data: left as they are.
    assert writers.to_csv(table) == writers.to_csv(_table())


def test_a_mark_outside_the_table_is_refused():
    with pytest.raises(ValueError, match="footnote mark"):
        _table(marks=((3, 0, 0),))
    with pytest.raises(ValueError, match="footnote mark"):
        _table(marks=((None, 0, 2),))


def test_marks_come_back_from_the_warehouse():
    marked = _table(marks=((None, 1, 0), (2, 0, 1)))
    back = tables.from_frame(tables.as_frame([("t", marked), ("u", _table())]))
    assert [t.marks for _, t in back] == [((None, 1, 0), (2, 0, 1)), ()]


def _notes_on(table: writers.Table, row: int | None, heading: str) -> list[str]:
    column = list(table.body.columns).index(heading)
    return [table.footnotes[k] for i, j, k in table.marks if (i, j) == (row, column)]


def test_table_2_names_the_unit_of_a_measure_in_units_of_its_own(demo_tables):
    # The spec's unit = "units" of the toxin dose reached the figures' axes, not Table 2's row.
    labels = list(demo_tables["table_2"].body["Outcome"])
    assert "Botulinum toxin dose, units" in labels
    assert "House-Brackmann grade (observer)" in labels  # a grade has no unit to add


def test_builders_mark_the_cells_their_footnotes_explain(demo_tables):
    table_2 = demo_tables["table_2"]
    assert [n[:22] for n in _notes_on(table_2, None, "P")] == ["P values are two-sided"]
    assert [n[:11] for n in _notes_on(table_2, None, "Adjusted P")] == ["Adjusted P:"]
    change = "Median change (Hodges-Lehmann, 95% CI)"
    assert [n[:13] for n in _notes_on(table_2, None, change)] == ["Before: lates", "Median change"]
    labels = list(table_2.body["Outcome"])
    versioned = {
        labels[i]
        for i in range(len(labels))
        if any(n.startswith("Scoring versions") for n in _notes_on(table_2, i, "Outcome"))
    }
    # The demo's scores with a named scoring version (docs/instruments.md).
    assert versioned == {"eFACE total score", "eFACE periocular score", "SAQ total", "FaCE total"}
    table_1 = demo_tables["table_1"]
    follow_up = next(i for i, label in enumerate(table_1.body.iloc[:, 0]) if "Follow-up" in label)
    assert [n[:10] for n in _notes_on(table_1, follow_up, "Characteristic")] == ["Follow-up:"]
