"""Spreadsheet formula (CSV) injection: a text value from an export that starts like a formula
is written as text in every output a spreadsheet can open or receive by pasting, while numbers
and formatted statistics are written as they are.

The checks here read each file back as its own format (the csv module, python-docx, the HTML,
Markdown and LaTeX text) and judge every cell by OWASP's list themselves, independently of the
rule in pipeline.render.cells.
"""

from __future__ import annotations

import csv
import html
import io
import re
import textwrap
from pathlib import Path

import docx
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_args, write_study
from pipeline.cli import main
from pipeline.render import writers
from specs import study_toml

HOSTILE = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\t=1", "\r=1"]
# As written: the quote before each, and before the formula after a tab or a line break.
NEUTRALISED = [
    '\'=HYPERLINK("http://x","y")',
    "'+cmd|' /C calc'!A0",
    "'@SUM(1+1)",
    "'-2+3",
    "'\t'=1",
    "'\r'=1",
]
NUMBERS = ["-1.2", "-0.5 (-1.0 to 0.0)", "<.001", "−1.2", "-1.0 [-2.0--0.5]", "-1.2 ± 0.3"]

# OWASP (CSV Injection): a cell starting with = + - @, a tab or a carriage return; also past
# leading whitespace, and in the full-width and small forms.
FORMULA_CHARACTERS = set("=+-@") | set("\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b")
# Numbers and the formatted statistics the tables write, which may start with a sign.
_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf|NA"
STATISTIC = re.compile(
    rf"(?:{_NUM})(?: ± (?:{_NUM})| \((?:{_NUM}) to (?:{_NUM})\)| \[(?:{_NUM})-(?:{_NUM})\]"
    r"| \(CI not estimable\))?"
)


def starts_formula(cell: str) -> bool:
    if cell[:1] in ("\t", "\r"):
        return True
    bare = cell.strip()
    return bare[:1] in FORMULA_CHARACTERS and not STATISTIC.fullmatch(bare)


def _hostile_table() -> writers.Table:
    """A table with each hostile value as a row label (indented or not), as a level in another
    column and in a heading, next to numbers and formatted statistics."""
    body = pd.DataFrame(
        {
            "Characteristic": HOSTILE,
            "Level": HOSTILE[::-1],
            "@SUM(1+1) (n = 2)": NUMBERS,
        }
    )
    return writers.Table("Table 9. Hostile", body, ("Plain note.",), (0, 1, 0, 1, 0, 1))


def csv_cells(text: str) -> list[str]:
    """Every cell a spreadsheet would see in a CSV, split at commas and, as Excel does in many
    European locales, at semicolons."""
    cells = []
    for delimiter in (",", ";"):
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            cells += row
    return cells


# The letters of the footnotes marked on a cell, which the writers put after its (neutralised)
# text: a, b or "b,d", as ^b in Markdown, <sup> in HTML, \textsuperscript in LaTeX and a
# superscript run in Word. They are the writer's, not the data's; the cell is its text.
_MARK = r"[a-z]{1,2}(?:,[a-z]{1,2})*"


def markdown_cells(text: str) -> list[str]:
    cells = []
    for line in text.splitlines():
        if line.startswith("|") and not set(line) <= set("|:- "):
            cells += [c.strip(" ").replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    return [re.sub(rf"\^{_MARK}$", "", c) for c in cells]


def html_cells(text: str) -> list[str]:
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", text, flags=re.S)
    return [html.unescape(re.sub(rf"<sup>{_MARK}</sup>$", "", c)) for c in cells]


def latex_cells(text: str) -> list[str]:
    """The cells as the PDF shows them (escapes undone, indentation dropped)."""
    rows = text.split("\\midrule")[1].split("\\bottomrule")[0].strip().split(" \\\\\n")
    header = text.split("\\toprule\n")[1].split(" \\\\")[0]
    cells = [
        c.replace("\\quad ", "").removesuffix(" \\\\")
        for r in [header, *rows]
        for c in r.split(" & ")
    ]
    cells = [re.sub(rf"\\textsuperscript\{{{_MARK}\}}$", "", c) for c in cells]
    for character, escaped in writers._LATEX.items():
        cells = [c.replace(escaped, character) for c in cells]
    return cells


def docx_cells(path: Path) -> list[str]:
    document = docx.Document(str(path))
    return [
        "\n".join(
            "".join(run.text for run in paragraph.runs if not run.font.superscript)
            for paragraph in cell.paragraphs
        )
        for grid in document.tables
        for row in grid.rows
        for cell in row.cells
    ]


def cells_of(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8") if path.suffix != ".docx" else ""
    return {".csv": csv_cells, ".md": markdown_cells, ".html": html_cells, ".tex": latex_cells}.get(
        path.suffix, lambda _: docx_cells(path)
    )(text)


@pytest.mark.parametrize("fmt", writers.FORMATS)
def test_each_table_format_writes_formula_text_as_text(tmp_path, fmt):
    (path,) = writers.write_table(_hostile_table(), tmp_path, "t", (fmt,))
    cells = cells_of(path)
    assert [c for c in cells if starts_formula(c)] == []
    # The statistics are written as they were given...
    for number in NUMBERS:
        assert number in cells
    # ... and every hostile value is there, behind the quote.
    for value in HOSTILE:
        assert any(c.startswith("'") and value.strip() in c for c in cells), (value, cells)


def test_table_csv_cells_read_back_exactly():
    """The CSV read back with the csv module: each hostile cell is the value behind a quote
    (indentation after it), the numbers unchanged, and the field quoted (OWASP)."""
    text = writers.to_csv(_hostile_table())
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if not r[0].startswith("#")]
    assert rows[0] == ["Characteristic", "Level", "'@SUM(1+1) (n = 2)"]
    assert [r[0] for r in rows[1:]] == [
        "'" + "  " * indent + v[1:] for v, indent in zip(NEUTRALISED, (0, 1, 0, 1, 0, 1))
    ]
    assert [r[1] for r in rows[1:]] == NEUTRALISED[::-1]
    assert [r[2] for r in rows[1:]] == NUMBERS
    assert '"\'@SUM(1+1)"' in text and '"\'-2+3"' in text
    # A neutralised field is quoted; a number beside it is neither quoted nor changed.
    assert '\n"\'  \r\'=1","\'=HYPERLINK(""http://x"",""y"")",-1.2 ± 0.3\n' in text


def test_csv_field_that_a_semicolon_locale_would_split_is_quoted():
    """Excel set to a ';' list separator splits a CSV line there: a formula after the ';' would
    start a cell. That piece gets its quote and the field is quoted; a ';' before ordinary text
    leaves the field as pandas writes it."""
    body = pd.DataFrame(
        {
            "Level": ["Bell palsy;=1+1", "a; fewer than 2", "x\ry", "b;-1.2"],
            "n": ["1", "2", "3", "4"],
        }
    )
    text = writers.to_csv(writers.Table("T", body))
    assert text.splitlines()[1:3] == ['"Bell palsy;\'=1+1",1', "a; fewer than 2,2"]
    assert '"x\ry",3' in text  # a carriage return ends a line for Excel and the csv module
    assert '\n"b;\'-1.2",4\n' in text  # what follows a piece is unknown: no number exception
    assert [c for c in csv_cells(text) if starts_formula(c)] == []
    assert [r[0] for r in csv.reader(io.StringIO(text, newline=""))] == [
        "Level",
        "Bell palsy;'=1+1",
        "a; fewer than 2",
        "x\ry",
        "b;'-1.2",
    ]


def test_csv_footnote_lines_split_into_no_formula_cell():
    """A footnote is a '#' line, read by a spreadsheet as cells split at commas (or ';'): a piece
    that would start a formula is prefixed; the line still starts with '#', so readers that skip
    comments still skip it."""
    note = 'Levels: left, =HYPERLINK("x","y"); -2+3, "@SUM(1)", 12, -0.5 (-1.0 to 0.0)'
    text = writers.to_csv(writers.Table("T", pd.DataFrame({"a": ["1"]}), (note,)))
    line = text.splitlines()[-1]
    assert (
        line
        == '# Levels: left,\' =HYPERLINK("x","y");\' -2+3,\' "@SUM(1)", 12,\' -0.5 (-1.0 to 0.0)'
    )
    assert [c for c in csv_cells(text) if starts_formula(c.lstrip().lstrip('"'))] == []
    assert pd.read_csv(io.StringIO(text), comment="#", dtype=str)["a"].tolist() == ["1"]


def test_results_csv_neutralises_text_and_keeps_numbers_numeric(tmp_path):
    """Full-precision results: a text column (a subgroup level) is neutralised and quoted; the
    numeric columns stay numbers, written by pandas at 17 digits, negative ones unprefixed."""
    frame = pd.DataFrame(
        {
            "study": "tiny",
            "group": HOSTILE,
            "n_pairs": [3, 4, 5, 6, 7, 8],
            "mean_diff": [-1.2, -0.5, -1e-05, float("-inf"), float("nan"), 2.0],
            "note": ["-0.5 (-1.0 to 0.0)", "<.001", "−1.2", "", None, "-1.2"],
        }
    )
    path = writers.write_results(frame, tmp_path, "paired_tests")
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))
    assert rows[0] == ["study", "group", "n_pairs", "mean_diff", "note"]
    assert [r[1] for r in rows[1:]] == NEUTRALISED
    assert [r[3] for r in rows[1:]] == ["-1.2", "-0.5", "-1.0000000000000001e-05", "-inf", "", "2"]
    assert [r[4] for r in rows[1:]] == ["-0.5 (-1.0 to 0.0)", "<.001", "−1.2", "", "", "-1.2"]
    assert [c for c in csv_cells(path.read_bytes().decode("utf-8")) if starts_formula(c)] == []
    back = pd.read_csv(path, float_precision="round_trip")
    assert back["mean_diff"].dtype == float and back["n_pairs"].dtype == "int64"
    pd.testing.assert_series_equal(back["mean_diff"], frame["mean_diff"])


def test_results_without_formula_text_are_the_bytes_pandas_writes(tmp_path):
    frame = pd.DataFrame(
        {
            "group": ["all", "etiology: bells_palsy", "a; fewer than 2", 'say "x", y'],
            "mean_diff": [-1.2, float("nan"), 1 / 3, -0.0],
        }
    )
    path = writers.write_results(frame, tmp_path, "r")
    assert (
        path.read_bytes()
        == frame.to_csv(index=False, lineterminator="\n", float_format="%.17g").encode()
    )


def test_dagster_markdown_previews_neutralise_text():
    from assets.checks import _listing
    from pipeline.render.cells import markdown_frame

    frame = pd.DataFrame(
        {
            "subject": ['=HYPERLINK("x","y")', "P2"],
            "visit": ["@SUM(1+1)", "a|b"],
            "value": [-1.5, 2.0],
        }
    )
    for text in (markdown_frame(frame), _listing(frame).md_str):
        cells = markdown_cells(text)
        assert '\'=HYPERLINK("x","y")' in cells and "'@SUM(1+1)" in cells and "a|b" in cells
        assert "-1.5" in cells
        assert [c for c in cells if starts_formula(c)] == []


@pytest.mark.parametrize(
    "text,expected",
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("-2+3", "'-2+3"),
        ("-2-3", "'-2-3"),
        ("\t=1", "'\t'=1"),
        ("\r=1", "'\r'=1"),
        ("a;=1", "a;'=1"),
        ("a; -2+3", "a;' -2+3"),
        ('a;"=1"', 'a;\'"=1"'),
        ("line\n@x", "line\n'@x"),
        ("a\t+1", "a\t'+1"),
        ("a\t+b", "a\t'+b"),
        ("a; fewer than 2", "a; fewer than 2"),
        ("b;-1.2", "b;'-1.2"),
        ("a,=1", "a,=1"),
        ("\tplain", "'\tplain"),
        ("  =1", "'  =1"),
        ("\u00a0=1", "'\u00a0=1"),
        ("\u200b=1", "'\u200b=1"),
        ("\ufeff@x", "'\ufeff@x"),
        ("\uff1dSUM(1)", "'\uff1dSUM(1)"),
        ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20x", "'\uff20x"),
        ("-", "'-"),
        ("-inf", "'-inf"),
        ("- 1", "'- 1"),
        ("-1.2 ± x", "'-1.2 ± x"),
        ("-0.5 (-1.0 to A1)", "'-0.5 (-1.0 to A1)"),
        ("-1.2", "-1.2"),
        ("+3", "+3"),
        ("-.5", "-.5"),
        ("-1e-05", "-1e-05"),
        (" -1.2 ", " -1.2 "),
        ("-0.5 (-1.0 to 0.0)", "-0.5 (-1.0 to 0.0)"),
        ("-1.0 [-2.0--0.5]", "-1.0 [-2.0--0.5]"),
        ("-1.2 ± 0.3", "-1.2 ± 0.3"),
        ("-1.2 ± NA", "-1.2 ± NA"),
        ("-1.5 (CI not estimable)", "-1.5 (CI not estimable)"),
        ("-1.5 (CI not estimable)+A1", "'-1.5 (CI not estimable)+A1"),
        ("-1.5 (CI estimable)", "'-1.5 (CI estimable)"),
        ("−1.2", "−1.2"),
        ("<.001", "<.001"),
        (">.99", ">.99"),
        ("a=b", "a=b"),
        ("etiology: =x", "etiology: =x"),
        ("", ""),
        ("'=1", "'=1"),
    ],
)
def test_neutralise_rule(text, expected):
    from pipeline.render.cells import neutralise

    assert neutralise(text) == expected


# A subgroup whose levels come from the export, a categorical column shown in Table 1, and a
# visit label; the export's hostile values avoid a web address, which the identifier guard
# refuses before anything is written.
# The levels are declared (an undeclared text column is refused), and the small-cell minimum
# lowered to the three patients of each arm, so that the values reach the outputs.
E2E_SPEC = study_toml(
    {
        "subjects": {
            "columns": ["age", "arm", "handedness"],
            "levels": {
                "arm": ['=HYPERLINK("x","y")', "-2+3"],
                "handedness": ["@SUM(1+1)", "+cmd|' /C calc'!A0", "left", "right"],
            },
        },
        "analysis": {"subgroups": [{"name": "arm", "column": "arm"}]},
        "identifiers": {"min_cell": 3},
        "tables": {"table_1_by": "arm"},
    }
)
E2E_PATIENTS = """
    code,age,arm,handedness
    P1,50,"=HYPERLINK(""x"",""y"")",@SUM(1+1)
    P2,61,"=HYPERLINK(""x"",""y"")",right
    P3,44,-2+3,"+cmd|' /C calc'!A0"
    P4,47,-2+3,left
    P5,58,"=HYPERLINK(""x"",""y"")",left
    P6,39,-2+3,right
"""
E2E_VISITS = "code,visit,day,hb_observer\n" + "".join(
    f"P{i},pre,-{i + 1},{4 + i % 2}\nP{i},@SUM(1+1),{90 + 7 * i},{2 + i % 2}\n" for i in range(1, 7)
)


def test_hostile_export_values_reach_no_output_cell_as_a_formula(tmp_path):
    folder = write_study(
        tmp_path / "tiny", E2E_PATIENTS, textwrap.indent(E2E_VISITS, "    "), E2E_SPEC
    )
    reports = tmp_path / "reports"
    assert main(run_args(folder, tmp_path)) == 0
    files = sorted(
        p for p in reports.rglob("*") if p.suffix in {".csv", ".md", ".html", ".tex", ".docx"}
    )
    assert {p.name for p in files} >= {
        "table_1.csv",
        "table_1.docx",
        "paired_tests.csv",
        "between_groups.csv",
        "table_3_subgroups.md",
        "visit_estimates.csv",
        "etable_visit_estimates.tex",
        "report.html",
        "report.docx",
    }
    found = {p.relative_to(reports): [c for c in cells_of(p) if starts_formula(c)] for p in files}
    assert {k: v for k, v in found.items() if v} == {}
    # The values did reach the outputs (the test would prove nothing otherwise): Table 1's
    # column headings and rows, the visit label in the results, the subgroup level in the tests.
    table_1 = (reports / "tiny" / "tables" / "table_1.csv").read_bytes().decode("utf-8")
    assert '"\'=HYPERLINK(""x"",""y"") (n = 3)"' in table_1 and '"\'-2+3 (n = 3)"' in table_1
    assert '"\'  @SUM(1+1)"' in table_1 and "\"'  +cmd|' /C calc'!A0\"" in table_1
    assert '"\'@SUM(1+1)"' in (
        reports / "tiny" / "tables" / "visit_estimates.csv"
    ).read_bytes().decode("utf-8")
    tests = pd.read_csv(reports / "tiny" / "tables" / "paired_tests.csv")
    assert 'arm: =HYPERLINK("x","y")' in set(tests["group"])
    assert '\'=HYPERLINK("x","y") (n = 3)' in docx_cells(reports / "tiny" / "report.docx")


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    cells=st.lists(
        st.text(alphabet="=+-@\t\r\n ;,.\"'0123456789eE()abc＝＋－＠\u200b", max_size=12),
        min_size=1,
        max_size=6,
    )
)
def test_random_cells_never_start_a_formula_in_csv(cells):
    """Fuzzed: whatever text reaches a table cell, no cell a spreadsheet splits off starts a
    formula.
    (The first column holds row labels, as in every table the pipeline writes: a line whose first
    cell is a bare number is not one it writes, and read whole at ";" it would start with a
    sign.)"""
    table = writers.Table(
        "Table 9. Fuzzed",
        pd.DataFrame(
            {"Characteristic": ["row"] * len(cells), "Value": cells, "Other": cells[::-1]}
        ),
        (),
        tuple(0 for _ in cells),
    )
    assert [c for c in csv_cells(writers.to_csv(table)) if starts_formula(c)] == []
