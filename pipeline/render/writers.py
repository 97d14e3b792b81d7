"""The format writers: a :class:`Table` as CSV, Markdown, HTML, LaTeX and Word, and a tidy
results frame as a full-precision CSV.

The writers only write text out; what the text says (rounding, P values, CIs) was decided by
the table builders (:mod:`pipeline.render.tables`) with the journal style
(:mod:`pipeline.render.style`).

- CSV (:func:`to_csv`): cells, indented levels with two spaces, then the footnotes as ``#``
  lines; results at 17 significant digits (:func:`write_results`).
- Markdown (:func:`to_markdown`): a pipe table under the bold title, lettered notes under it.
- HTML (:func:`to_html`): through the Jinja2 templates in ``templates/`` (which the study
  report uses too), every value escaped.
- LaTeX (:func:`to_latex`): a booktabs ``table`` float.
- Word (:func:`to_docx`, :func:`add_docx_table`): a real Word table, rules above and below the
  header and at the bottom, footnotes as lettered paragraphs under it, as journals print them;
  set in Arial, its columns as wide as their text asks (:func:`grid_layout`: no word broken, a
  value on one line), on landscape pages when it is wider than the portrait text width, its
  heading row repeated on every page and no row split; fixed times, so the same table gives
  the same bytes.

A footnote can be marked on the cells it explains (``Table.marks``): its letter follows the
cell's text, superscript in Word, HTML and LaTeX, as ``^b`` in Markdown; CSV cells are left as
they are.

Every cell a writer puts out goes through :func:`pipeline.render.cells.neutralise`, so a text
value from an export that starts like a spreadsheet formula is written as text.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import html
import io
import json
import re
import threading
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from pipeline import files
from pipeline.render.cells import SPLITS, neutralise

FORMATS = ("csv", "md", "html", "tex", "docx")


#: A footnote mark on one cell: (body row, or None for the heading row; column; footnote
#: index), all from 0.
Mark = tuple[int | None, int, int]


@dataclass(frozen=True)
class Table:
    """A publication table as text, which every writer here writes out: a title, the body (a
    frame of text cells under their headings) and footnotes, lettered a, b, c in every format.

    The builders of :mod:`pipeline.render.tables` make them. ``indent`` gives, per body row,
    how many levels the first cell is indented (a category level under its variable); empty
    means no indentation. ``marks`` attach footnotes to the cells they explain (:data:`Mark`):
    the footnote's letter follows the cell's text, superscript in Word, HTML and LaTeX, as
    ``^b`` in Markdown; CSV cells stay as they are (a program reads them), its footnotes
    follow the table as ``#`` lines.
    """

    title: str
    body: pd.DataFrame
    footnotes: tuple[str, ...] = ()
    indent: tuple[int, ...] = ()
    marks: tuple[Mark, ...] = ()

    def __post_init__(self) -> None:
        rows, columns = self.body.shape
        for row, column, note in self.marks:
            if not (
                (row is None or 0 <= row < rows)
                and 0 <= column < columns
                and 0 <= note < len(self.footnotes)
            ):
                raise ValueError(
                    f"{self.title}: a footnote mark (row {row}, column {column}, footnote "
                    f"{note}) points outside the table of {rows} rows, {columns} columns and "
                    f"{len(self.footnotes)} footnotes; mark an existing cell with an existing "
                    "footnote"
                )

    def indent_of(self, row: int) -> int:
        return self.indent[row] if self.indent else 0

    @functools.cached_property
    def _letters_by_cell(self) -> dict[tuple[int | None, int], str]:
        notes: dict[tuple[int | None, int], set[int]] = {}
        for row, column, note in self.marks:
            notes.setdefault((row, column), set()).add(note)
        return {cell: ",".join(_letters(n) for n in sorted(ns)) for cell, ns in notes.items()}

    def mark_of(self, row: int | None, column: int) -> str:
        """The letters of the footnotes marked on a cell (``row`` None: the heading), in
        footnote order and joined by commas ("b" or "b,d"); empty when none is."""
        return self._letters_by_cell.get((row, column), "") if self.marks else ""


def _letters(i: int) -> str:
    return chr(97 + i) if i < 26 else f"{chr(97 + i // 26 - 1)}{chr(97 + i % 26)}"


def _quoted(text: str, safe: str) -> bool:
    """Whether a CSV field must be enclosed in double quotes: it was neutralised (OWASP: prefix
    and quote, so an opener splitting at ";" keeps it one cell), or it holds a carriage return
    (a line break to Excel and to Python's csv module, which pandas leaves unquoted)."""
    return safe != text or "\r" in text


def _csv_text(frame: pd.DataFrame, **options) -> str:
    """``frame.to_csv(index=False, lineterminator="\\n", **options)`` with every text cell and
    heading neutralised (:func:`pipeline.render.cells.neutralise`) and quoted where :func:`_quoted`
    says. pandas still formats every value (numeric columns are never text here, so a float is
    never prefixed); a field to be quoted is marked with a character absent from the frame's
    text, and the marks become the quotes pandas would not write."""
    safe = frame.copy()
    quote = []  # (text, quoted) of every text cell and heading
    headings = [neutralise(c) if isinstance(c, str) else c for c in frame.columns]
    quote += [(c, _quoted(c, s)) for c, s in zip(frame.columns, headings) if isinstance(c, str)]
    text_columns = []
    for j in range(frame.shape[1]):
        values = frame.iloc[:, j]
        categorical = isinstance(values.dtype, pd.CategoricalDtype)
        if values.dtype == object or pd.api.types.is_string_dtype(values) or categorical:
            cells = [(v, neutralise(v)) if isinstance(v, str) else (v, v) for v in values]
            quote += [(v, _quoted(v, s)) for v, s in cells if isinstance(v, str)]
            # A neutralised label is no category of the old ones: categories are written as text.
            text_columns.append((j, object if categorical else values.dtype, cells))
    if not any(q for _, q in quote):
        # Nothing to quote: the common case, and pandas' bytes exactly.
        for j, dtype, cells in text_columns:
            safe.isetitem(j, pd.Series([s for _, s in cells], index=frame.index, dtype=dtype))
        safe.columns = headings
        return safe.to_csv(index=False, lineterminator="\n", **options)
    seen = set("".join(v for v, _ in quote))
    mark = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in seen)  # private use

    def marked(value, text):
        return f"{mark}{text}{mark}" if _quoted(value, text) else text

    for j, dtype, cells in text_columns:
        safe.isetitem(
            j,
            pd.Series(
                [marked(v, s) if isinstance(v, str) else s for v, s in cells],
                index=frame.index,
                dtype=dtype,
            ),
        )
    safe.columns = [
        marked(c, s) if isinstance(c, str) else s for c, s in zip(frame.columns, headings)
    ]
    written = safe.to_csv(index=False, lineterminator="\n", **options)
    # pandas quoted a marked field that holds a comma or a quote (doubling its quotes); one
    # without them has no quote inside, so enclosing it is enough.
    return re.sub(f'"?{mark}(.*?){mark}"?', r'"\1"', written, flags=re.S)


def _csv_comment(note: str) -> str:
    """A footnote as a ``#`` line. A spreadsheet reads the line as cells cut at its commas too,
    and it cannot be quoted (readers skip it as a comment only when it starts with ``#``): each
    piece that would start a formula in a cell of its own gets its quote."""
    return neutralise(f"# {note}", splits="," + SPLITS)


def to_csv(table: Table) -> str:
    """Cells (indented levels with two spaces), then footnotes as ``#`` lines; cells and
    footnotes neutralised against spreadsheet formulas (:func:`_csv_text`, :func:`_csv_comment`)."""
    body = table.body.copy()
    first = body.columns[0]
    body[first] = ["  " * table.indent_of(i) + str(v) for i, v in enumerate(body[first])]
    return _csv_text(body) + "".join(f"{_csv_comment(n)}\n" for n in table.footnotes)


def _caret(letters: str) -> str:
    return f"^{letters}" if letters else ""


def to_markdown(table: Table) -> str:
    body = table.body.copy()
    first = body.columns[0]
    # Markdown drops leading spaces; non-breaking spaces keep the level indentation.
    body[first] = [
        "\u00a0\u00a0\u00a0" * table.indent_of(i) + str(v) for i, v in enumerate(body[first])
    ]
    # Cells as written, indentation included, neutralised against spreadsheet formulas; a bar
    # inside a cell would end the cell.
    body = body.map(lambda v: neutralise(str(v)).replace("|", "\\|"))
    body.columns = [neutralise(str(c)).replace("|", "\\|") for c in body.columns]
    if table.marks:
        # A footnote's letter after the cell it explains, as plain text: ^b.
        body.columns = [c + _caret(table.mark_of(None, j)) for j, c in enumerate(body.columns)]
        for i, j in {(i, j) for i, j, _ in table.marks if i is not None}:
            body.iat[i, j] += _caret(table.mark_of(i, j))
    # tabulate strips leading whitespace, non-breaking spaces included, unless told not to.
    grid = body.to_markdown(index=False, disable_numparse=True, preserve_whitespace=True)
    lines = [f"**{table.title}**", "", grid, ""]
    lines += [f"{_letters(i)}. {note}" for i, note in enumerate(table.footnotes)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- HTML (templates)


def _escaped(value):
    """Jinja2's ``finalize``: every value a template writes, escaped by the standard library's
    :func:`html.escape` (markup the caller built, such as the CSS, is left as it is).

    Autoescape is on as well, but this runs first: markupsafe, Jinja2's escape, writes quotes
    as ``&#34;`` and ``&#39;`` where :func:`html.escape` writes ``&quot;`` and ``&#x27;``, and
    published pages must keep their bytes for the same text whichever library escapes it."""
    from markupsafe import Markup

    return value if hasattr(value, "__html__") else Markup(html.escape(str(value)))


@functools.cache
def templates():
    """The Jinja2 environment of ``pipeline/render/templates/`` (package data).

    Filters: ``cell`` (a cell's text neutralised against spreadsheet formulas),
    ``letter`` (a footnote's letter, 0 -> a) and ``mark`` (the footnote letters marked on a
    cell, superscript). Block tags take their line with them
    (``trim_blocks``, ``lstrip_blocks``), so a template reads like the page it writes."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.render", "templates"),
        autoescape=True,
        finalize=_escaped,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["cell"] = lambda value: neutralise(str(value))
    environment.filters["letter"] = _letters
    environment.filters["mark"] = _html_mark
    return environment


def _html_mark(table: Table, row: int | None, column: int):
    """The ``mark`` filter: a cell's footnote letters as ``<sup>b</sup>``, or nothing."""
    from markupsafe import Markup

    letters = table.mark_of(row, column)
    return Markup(f"<sup>{html.escape(letters)}</sup>") if letters else ""


@functools.cache
def stylesheet(name: str):
    """A stylesheet of ``templates/`` as one line, for a ``<style>`` element: the file keeps a
    rule (or part of one) per line, and the lines are joined without their indentation."""
    from markupsafe import Markup

    source, _, _ = templates().loader.get_source(templates(), name)
    return Markup("".join(line.strip() for line in source.splitlines()))


def to_html(table: Table, *, standalone: bool = False) -> str:
    """An HTML ``<table>`` with caption and footnotes (``publication_table.html.j2``); a whole
    page when ``standalone`` (``publication_table_page.html.j2``)."""
    if not standalone:
        return templates().get_template("publication_table.html.j2").render(table=table)
    return (
        templates()
        .get_template("publication_table_page.html.j2")
        .render(table=table, css=stylesheet("publication.css"))
    )


_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "±": r"$\pm$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "χ": r"$\chi$",
    "κ": r"$\kappa$",
    "\u00a0": "~",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in str(text))


def _latex_cell(value) -> str:
    # Neutralised before escaping: a table copied out of the PDF into a spreadsheet is evaluated.
    return latex_escape(neutralise(str(value)))


def _latex_mark(table: Table, row: int | None, column: int) -> str:
    letters = table.mark_of(row, column)
    return f"\\textsuperscript{{{letters}}}" if letters else ""


def to_latex(table: Table) -> str:
    """A ``table`` float with a booktabs ``tabular``; needs ``\\usepackage{booktabs}``."""
    cols = "l" + "c" * (len(table.body.columns) - 1)
    headings = [
        _latex_cell(c) + _latex_mark(table, None, j) for j, c in enumerate(table.body.columns)
    ]
    lines = [
        "% Requires \\usepackage{booktabs} in the preamble.",
        "\\begin{table}[htbp]",
        "\\centering",
        f"\\caption{{{latex_escape(table.title)}}}",
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        " & ".join(headings) + " \\\\",
        "\\midrule",
    ]
    for i, values in enumerate(table.body.itertuples(index=False)):
        cells = [_latex_cell(v) + _latex_mark(table, i, j) for j, v in enumerate(values)]
        cells[0] = "\\quad " * table.indent_of(i) + cells[0]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if table.footnotes:
        lines += ["\\par\\smallskip", "\\begin{minipage}{\\linewidth}\\footnotesize"]
        lines += [
            f"\\textsuperscript{{{_letters(i)}}}~{latex_escape(n)}\\par"
            for i, n in enumerate(table.footnotes)
        ]
        lines += ["\\end{minipage}"]
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- Word

# A fixed moment for the DOCX core properties and zip entries: Word files carry a
# creation time and every zip member a modification time; fixing both keeps the
# bytes identical across runs.
FIXED_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)

#: The Word files' type: Arial, which office suites either have or replace by a font of the
#: same character widths (Liberation Sans in LibreOffice), so columns sized with Arial's widths
#: (:func:`text_width_pt`) fit their text wherever the file is opened.
DOCX_FONT = "Arial"
#: Page margins on every side, in inches, as journals ask of a manuscript: on US Letter a
#: text width of 6.5 in in portrait and 9 in in landscape.
DOCX_MARGIN_IN = 1.0
#: Type size of the table cells (the notes under a table are 1 pt smaller), and the smaller
#: sizes tried in turn for a table too wide for a landscape page at that size.
TABLE_FONT_PT = 9
SMALLER_FONTS_PT = (8.5, 8, 7.5, 7)
#: Word's own left and right cell margins (0.075 in, in twips), the "Normal Table" style's.
CELL_MARGIN_TWIPS = 108
#: The label column gets at least this much room (or its longest label's, if less) before
#: wrapped headings of the other columns get any.
LABEL_COLUMN_MIN_PT = 1.6 * 72
#: A measured width is multiplied by this: kerning, hinting and rounding differ a little
#: between office suites, and a cell sized to the point would wrap in some.
WIDTH_SLACK = 1.05
#: A table of at most this many body rows is kept on one page with its title and notes (each
#: row kept with the next, as Word's "Keep with next"); a longer one runs over pages with its
#: heading row repeated.
KEEP_TOGETHER_ROWS = 25

_TWIPS_PER_PT = 20
# Characters measured as another of the same width; any other one missing from the font
# metrics (≥, χ, κ ...) as a wide glyph (0.65 em), so a column is never too narrow for it.
_SAME_WIDTH = {"\u00a0": " ", "\u2011": "-", "\u2212": "+"}
_UNKNOWN_WIDTH = 650


@functools.cache
def _advances(bold: bool) -> dict[str, int]:
    """Arial's advance widths (1/1000 em) by character. Arial has Helvetica's widths by
    design; Helvetica's come from the Adobe font metrics that matplotlib ships
    (``mpl-data/fonts/afm/phvr8a.afm``, bold ``phvb8a.afm``), names read with fontTools' Adobe
    Glyph List."""
    from importlib.util import find_spec

    from fontTools.agl import toUnicode

    name = "phvb8a.afm" if bold else "phvr8a.afm"
    # matplotlib's data folder (matplotlib.get_data_path()), found without importing matplotlib,
    # which costs the tables and the report most of a second.
    data = Path(find_spec("matplotlib").origin).with_name("mpl-data")
    path = data / "fonts" / "afm" / name
    widths = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("C "):
            fields = dict(f.strip().split(" ", 1) for f in line.split(";") if f.strip())
            character = toUnicode(fields["N"])
            if len(character) == 1:
                widths[character] = int(fields["WX"])
    return widths


def text_width_pt(text: str, font_pt: float, *, bold: bool = False) -> float:
    """The width of ``text`` set in :data:`DOCX_FONT` at ``font_pt``, in points, with
    :data:`WIDTH_SLACK`."""
    widths = _advances(bold)
    em = sum(widths.get(_SAME_WIDTH.get(c, c), _UNKNOWN_WIDTH) for c in text)
    return em * font_pt / 1000 * WIDTH_SLACK


@dataclass(frozen=True)
class DocxLayout:
    """How a table is set in Word: type size (pt), column widths (twips), and whether it
    needs landscape pages."""

    font_pt: float
    widths: tuple[int, ...]
    landscape: bool


def _units(text: str) -> list[str]:
    """``text`` cut at its spaces, except those inside brackets: "Bell palsy (n = 34)" is
    "Bell", "palsy", "(n = 34)". A cell that may wrap keeps each piece on one line
    (:func:`_unbreakable_pieces`)."""
    units, depth, current = [], 0, []
    for character in text:
        if character in "([":
            depth += 1
        elif character in ")]" and depth:
            depth -= 1
        if character == " " and not depth:
            units.append("".join(current))
            current = []
        else:
            current.append(character)
    units.append("".join(current))
    return units


def _unbreakable_pieces(text: str) -> list[str]:
    """``text`` as Word should set it where it may wrap, as pieces to be joined by Word's
    non-breaking hyphen: cut at each hyphen that joins it to more text ("House-Brackmann",
    "(-1.4"), with the spaces inside brackets non-breaking ("(n = 34)"). Both print as
    themselves; python-docx reads the hyphen back as "-"."""
    units = _units(text)
    joined = " ".join(u.replace(" ", "\u00a0") for u in units)
    return re.split(r"-(?=\S)", joined)


def _is_value(text: str) -> bool:
    """Whether a cell holds a value (a number, a count and percentage, an estimate and its
    CI, a P value) rather than words: no run of four letters or more."""
    return re.search(r"[^\W\d_]{4}", text) is None


# Kept: a table is measured at up to six type sizes, and the report measures every table again.
@functools.lru_cache(maxsize=1 << 16)
def _cell_width_pt(text: str, font_pt: float, bold: bool, mark: str, indent_pt: float):
    """(widest unit, whole text) of a cell in points: the footnote mark with the unit it
    follows, the indentation on every line."""
    units = _units(text)
    widths = [text_width_pt(u, font_pt, bold=bold) for u in units]
    widths[-1] += text_width_pt(mark, font_pt * 0.65)  # superscript: smaller, raised
    whole = sum(widths) + text_width_pt(" ", font_pt, bold=bold) * (len(units) - 1)
    return max(widths) + indent_pt, whole + indent_pt


def _column_needs(
    headings: list[str] | None,
    rows: list[list[str]],
    font_pt: float,
    *,
    indent: tuple[int, ...],
    marks: dict[tuple[int | None, int], str],
    unbroken_values: bool,
) -> tuple[list[float], list[float], list[float]]:
    """Per column, in points with the cell margins: the least width that breaks no word, the
    width that wraps no body cell, and the width that wraps nothing.

    Text breaks only at spaces outside brackets (:func:`_units`): the least width holds a
    column's longest such piece (a footnote mark counts with the piece it follows, an indented
    label with its indentation). With ``unbroken_values`` every body cell right of the first
    column that holds a value (:func:`_is_value`) has it on one line: "-1.2 (-1.4 to -0.9)" is
    never broken. The first column, the labels, gets at least :data:`LABEL_COLUMN_MIN_PT` (or what
    its longest label needs, if less)."""
    n = len(headings) if headings is not None else len(rows[0]) if rows else 0
    least, body, whole = [0.0] * n, [0.0] * n, [0.0] * n
    for j, text in enumerate(headings or ()):
        unit, full = _cell_width_pt(text, font_pt, True, marks.get((None, j), ""), 0)
        least[j], whole[j] = max(least[j], unit), max(whole[j], full)
    for i, values in enumerate(rows):
        for j, text in enumerate(values):
            indent_pt = 10 * indent[i] if j == 0 and indent else 0  # 10 pt a level
            unit, full = _cell_width_pt(text, font_pt, False, marks.get((i, j), ""), indent_pt)
            one_line = unbroken_values and j > 0 and _is_value(text)
            least[j] = max(least[j], full if one_line else unit)
            body[j], whole[j] = max(body[j], full), max(whole[j], full)
    if n:
        least[0] = max(least[0], min(whole[0], LABEL_COLUMN_MIN_PT))
    padding = 2 * CELL_MARGIN_TWIPS / _TWIPS_PER_PT
    body = [max(b, m) for b, m in zip(body, least)]
    return [[w + padding for w in ws] for ws in (least, body, whole)]


def _spread(least: list[float], body: list[float], whole: list[float], width: float):
    """Column widths that fill ``width``: when every column's whole text fits, those widths
    stretched in proportion (a journal table spans the text width). Otherwise the room left
    over the least widths goes first to the body cells that would wrap (the labels: a wrapped
    label makes its whole row taller), then to the headings, each time in proportion to what
    each column lacks (as CSS's automatic table layout shares it)."""
    if sum(whole) <= width:
        return [w * width / sum(whole) for w in whole] if sum(whole) else whole
    start, goal = (body, whole) if sum(body) <= width else (least, body)
    room = width - sum(start)
    lacking = [g - s for g, s in zip(goal, start)]
    return [s + room * lack / sum(lacking) for s, lack in zip(start, lacking)]


def grid_layout(
    headings: list[str] | None,
    rows: list[list[str]],
    *,
    portrait_pt: float,
    landscape_pt: float,
    font_pt: float = TABLE_FONT_PT,
    indent: tuple[int, ...] = (),
    marks: dict[tuple[int | None, int], str] | None = None,
    unbroken_values: bool = True,
) -> DocxLayout:
    """Type size, column widths and orientation of a grid of text in Word.

    The first that holds every column's least width (:func:`_column_needs`): portrait at
    ``font_pt``, landscape at ``font_pt``, landscape at each of :data:`SMALLER_FONTS_PT`. A grid
    too wide for all of these is set at the smallest size in landscape with values allowed to
    wrap at their spaces, shrunk to the page if even that is too wide."""
    marks = marks or {}
    sizes = [font_pt] + [s for s in SMALLER_FONTS_PT if s < font_pt]
    tries = [(font_pt, portrait_pt, False)] + [(s, landscape_pt, True) for s in sizes]
    options = dict(indent=indent, marks=marks)
    for size, width, landscape in tries:
        needs = _column_needs(headings, rows, size, unbroken_values=unbroken_values, **options)
        if sum(needs[0]) <= width:
            break
    else:
        needs = _column_needs(headings, rows, size, unbroken_values=False, **options)
        if sum(needs[0]) > width:
            needs = [[w * width / sum(needs[0]) for w in needs[0]]] * 3
    spread = _spread(*needs, width)
    # Whole twips, rounded down: no more than the page, and at most 1 twip (0.05 pt) less than
    # a column asked for (WIDTH_SLACK gives every text far more room than that).
    widths = tuple(int(w * _TWIPS_PER_PT) for w in spread)
    return DocxLayout(size, widths, landscape)


def docx_text_widths_pt(document) -> tuple[float, float]:
    """The text width of the document's last section in portrait and in landscape, in points
    (left and right margins as set; :func:`new_docx` sets equal margins on every side)."""
    section = document.sections[-1]
    short, long = sorted((section.page_width, section.page_height))
    margins = section.left_margin + section.right_margin
    return (short - margins) / 12700, (long - margins) / 12700  # EMU per point


def docx_layout(document, table: Table, *, font_pt: float = TABLE_FONT_PT) -> DocxLayout:
    """How :func:`add_docx_table` sets ``table`` in ``document`` (:func:`grid_layout`)."""
    portrait, landscape = docx_text_widths_pt(document)
    return grid_layout(
        [str(c) for c in table.body.columns],
        [[str(v) for v in values] for values in table.body.itertuples(index=False)],
        portrait_pt=portrait,
        landscape_pt=landscape,
        font_pt=font_pt,
        indent=table.indent,
        marks=table._letters_by_cell if table.marks else {},
    )


def set_orientation(document, landscape: bool) -> None:
    """Make what is added next portrait or landscape: a new section, on a new page, when the
    orientation changes (page width and height swapped, margins kept); the document's only
    section itself while nothing is written in it."""
    from docx.enum.section import WD_ORIENT, WD_SECTION

    section = document.sections[-1]
    if (section.orientation == WD_ORIENT.LANDSCAPE) == landscape:
        return
    if len(document.element.body) > 1:  # more than the final w:sectPr: something is written
        section = document.add_section(WD_SECTION.NEW_PAGE)
    width, height = section.page_width, section.page_height
    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = height, width


def _border(cell_or_table_pr, edges: dict[str, str]) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    table_level = cell_or_table_pr.tag.endswith("tblPr")
    borders = OxmlElement("w:tblBorders" if table_level else "w:tcBorders")
    for edge, size in edges.items():
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "single" if size != "0" else "nil")
        element.set(qn("w:sz"), size)
        element.set(qn("w:space"), "0")
        element.set(qn("w:color"), "000000")
        borders.append(element)
    # The schema's order: table borders before the layout, cell margins and look.
    later = cell_or_table_pr.find(qn("w:tblLayout")) if table_level else None
    later = later if later is not None else cell_or_table_pr.find(qn("w:tblLook"))
    if table_level and later is not None:
        later.addprevious(borders)
    else:
        cell_or_table_pr.append(borders)


def fill_docx_cell(
    cell,
    text: str,
    font_pt: float,
    *,
    bold: bool = False,
    indent: int = 0,
    center: bool = False,
    mark: str = "",
    keep_with_next: bool = False,
    wraps: bool = False,
) -> None:
    """Write ``text`` into a Word table cell through python-docx: ``font_pt`` type, no space
    after, indented 10 pt per ``indent`` level, centred if asked, the footnote letters
    ``mark`` superscript after the text, kept on the page of the next row if asked. Text
    that ``wraps`` in its column is set so that it wraps only between words
    (:func:`_unbreakable_pieces`), unless it has a tab or a line break. :func:`add_docx_grid`
    writes the same XML itself, far faster, for all text without tabs or line breaks."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Pt

    paragraph = cell.paragraphs[0]
    plain = "\t" in text or "\n" in text or "\r" in text or not wraps
    run = paragraph.add_run(text if plain else None)
    if not plain:
        for k, piece in enumerate(_unbreakable_pieces(text)):
            if k:
                run._r.append(OxmlElement("w:noBreakHyphen"))
            if piece:
                run.add_text(piece)
    run.font.size = Pt(font_pt)
    if bold:  # not bold is the style's default: no element needed
        run.bold = True
    if mark:
        letters = paragraph.add_run(mark)
        letters.font.size = Pt(font_pt)
        letters.font.superscript = True
    if keep_with_next:
        paragraph.paragraph_format.keep_with_next = True
    paragraph.paragraph_format.space_after = Pt(0)
    if indent:
        paragraph.paragraph_format.left_indent = Pt(10 * indent)
    if center:
        paragraph.alignment = 1
    if not text:
        # The paragraph mark sets an empty cell's line height: the table's type size.
        size = OxmlElement("w:sz")
        size.set(qn("w:val"), str(round(font_pt * 2)))
        marker = OxmlElement("w:rPr")
        marker.append(size)
        paragraph._p.get_or_add_pPr().append(marker)


def add_docx_grid(
    document,
    headings: list[str] | None,
    rows: list[list[str]],
    layout: DocxLayout,
    *,
    indent: tuple[int, ...] = (),
    marks: dict[tuple[int | None, int], str] | None = None,
    center_values: bool = True,
    keep_together: bool = False,
):
    """A Word table of ``rows`` under a bold heading row (none if ``headings`` is None), set
    as ``layout`` says: fixed column widths, no row split across pages, the heading row
    repeated on every page and kept with the first row; with ``keep_together`` every row kept
    with the next. Every cell neutralised against spreadsheet formulas: Word evaluates no
    formula in a text run, but a table pasted from Word into Excel is evaluated cell by cell.
    Returns the python-docx table."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.table import _Cell
    from lxml.etree import SubElement

    marks = marks or {}
    tag = functools.cache(qn)  # the few tags of thousands of cells, each spelled out once
    font_pt = layout.font_pt
    half_points = str(round(font_pt * 2))
    grid = [headings] if headings is not None else []
    grid += rows
    word = document.add_table(rows=len(grid), cols=len(layout.widths))
    word.autofit = False  # w:tblLayout fixed: the widths below, whatever the text

    # Where a cell's text is wider than its column it wraps, and is set to wrap between words
    # only (a value never does where grid_layout could help it).
    padding = 2 * CELL_MARGIN_TWIPS / _TWIPS_PER_PT
    room = [twips / _TWIPS_PER_PT - padding for twips in layout.widths]

    def wraps(text: str, j: int, bold: bool, mark: str, indent: int) -> bool:
        # 1 twip (0.05 pt) of tolerance: the layout's widths were cut to whole twips.
        return _cell_width_pt(text, font_pt, bold, mark, 10 * indent)[1] > room[j] + 0.05

    def fill(
        cell, text: str, *, bold=False, indent=0, center=False, mark="", keep=False, wrap=False
    ) -> None:
        # The cell's paragraph built as the XML fill_docx_cell gets from python-docx (a Word
        # table has thousands of cells, and those calls were most of the time spent on one).
        # Tabs and line breaks become elements of their own, which only python-docx does here.
        if "\t" in text or "\n" in text or "\r" in text:
            return fill_docx_cell(
                cell,
                text,
                font_pt,
                bold=bold,
                indent=indent,
                center=center,
                mark=mark,
                keep_with_next=keep,
            )
        p = cell._tc.find(tag("w:p"))  # a new cell's one paragraph
        properties = SubElement(p, tag("w:pPr"))
        if keep:
            SubElement(properties, tag("w:keepNext"))
        SubElement(properties, tag("w:spacing")).set(tag("w:after"), "0")
        if indent:
            # 10 pt = 200 twips
            SubElement(properties, tag("w:ind")).set(tag("w:left"), str(200 * indent))
        if center:
            SubElement(properties, tag("w:jc")).set(tag("w:val"), "center")
        if not text:
            # An empty cell's line is as high as its paragraph mark's type: the table's, not the
            # document's larger default, or a row with an empty cell is taller than the others.
            SubElement(SubElement(properties, tag("w:rPr")), tag("w:sz")).set(
                tag("w:val"), half_points
            )
        run = SubElement(p, tag("w:r"))
        font = SubElement(run, tag("w:rPr"))
        if bold:
            SubElement(font, tag("w:b"))
        SubElement(font, tag("w:sz")).set(tag("w:val"), half_points)
        for k, piece in enumerate(_unbreakable_pieces(text) if wrap else [text]):
            if k:
                SubElement(run, tag("w:noBreakHyphen"))
            if piece:
                t = SubElement(run, tag("w:t"))
                t.text = piece
                if len(piece.strip()) < len(piece):
                    t.set(tag("xml:space"), "preserve")
        if mark:
            run = SubElement(p, tag("w:r"))
            font = SubElement(run, tag("w:rPr"))
            SubElement(font, tag("w:sz")).set(tag("w:val"), half_points)
            SubElement(font, tag("w:vertAlign")).set(tag("w:val"), "superscript")
            SubElement(run, tag("w:t")).text = mark

    table_pr = word._tbl.tblPr
    width = table_pr.find(qn("w:tblW"))
    width.set(qn("w:type"), "dxa")
    width.set(qn("w:w"), str(sum(layout.widths)))
    for column, twips in zip(word._tbl.tblGrid.gridCol_lst, layout.widths):
        column.set(qn("w:w"), str(twips))
    for k, tr in enumerate(word._tbl.tr_lst):
        properties = tr.trPr
        if properties is None:  # first, before the cells, as tr.get_or_add_trPr() puts it
            properties = OxmlElement("w:trPr")
            tr.insert(0, properties)
        properties.append(OxmlElement("w:cantSplit"))
        if k == 0 and headings is not None:
            properties.append(OxmlElement("w:tblHeader"))
        for tc, twips in zip(tr.tc_lst, layout.widths):
            tc.tcPr.find(qn("w:tcW")).set(qn("w:w"), str(twips))

    # The cells made from the rows' w:tc elements directly: python-docx's row.cells walks the
    # whole table's grid for every row (the table has no merged cell, so they are the same).
    cells = [[_Cell(tc, word) for tc in tr.tc_lst] for tr in word._tbl.tr_lst]
    if headings is not None:
        header, cells = cells[0], cells[1:]
        for j, column in enumerate(headings):
            text, mark = neutralise(column), marks.get((None, j), "")
            fill(
                header[j],
                text,
                bold=True,
                center=j > 0,
                mark=mark,
                keep=True,
                wrap=wraps(text, j, True, mark, 0),
            )
    for i, values in enumerate(rows):
        # A row the next rows are indented under (an outcome above its subgroups) is kept on the
        # page of the first of them, never left alone at the foot of a page.
        heads = bool(indent) and i + 1 < len(rows) and indent[i + 1] > indent[i]
        for j, value in enumerate(values):
            text, mark = neutralise(value), marks.get((i, j), "")
            level = indent[i] if indent and j == 0 else 0
            fill(
                cells[i][j],
                text,
                indent=level,
                center=center_values and j > 0,
                mark=mark,
                keep=keep_together or heads,
                wrap=wraps(text, j, False, mark, level),
            )
    return word


def add_docx_table(document, table: Table, *, font_pt: float = TABLE_FONT_PT) -> DocxLayout:
    """Append ``table`` to a python-docx Document: title, a real Word table, lettered notes.

    The columns as wide as their content asks (:func:`docx_layout`); a table wider than the
    portrait text width on landscape pages, in a section of its own (:func:`set_orientation`:
    what is added next stays landscape until the caller sets portrait again). The heading row
    repeats on every page the table runs over; no row is split across pages; a table of up to
    :data:`KEEP_TOGETHER_ROWS` rows is kept on one page with its title and notes. Footnote
    marks superscript after their cells' text. Returns the layout used."""
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.oxml.ns import qn
    from docx.shared import Pt

    made_from = _word_made_from(table, font_pt, docx_text_widths_pt(document))
    known = _set_tables.get(made_from)
    layout = known[0] if known else docx_layout(document, table, font_pt=font_pt)
    set_orientation(document, layout.landscape)
    body = document.element.body
    end = body[-1] if len(body) and body[-1].tag == qn("w:sectPr") else None
    if known and end is not None:
        for element in known[1]:
            end.addprevious(copy.deepcopy(element))
        return layout
    start = len(body)
    title = document.add_paragraph()
    title.add_run(table.title).bold = True
    title.paragraph_format.keep_with_next = True
    keep = len(table.body) <= KEEP_TOGETHER_ROWS
    word = add_docx_grid(
        document,
        [str(c) for c in table.body.columns],
        [[str(v) for v in values] for values in table.body.itertuples(index=False)],
        layout,
        indent=table.indent,
        marks=table._letters_by_cell if table.marks else {},
        keep_together=keep,
    )
    word.alignment = WD_TABLE_ALIGNMENT.CENTER
    # Journal style: rules above and below the header and at the bottom, none inside.
    _border(
        word._tbl.tblPr,
        {"top": "12", "bottom": "12", "left": "0", "right": "0", "insideH": "0", "insideV": "0"},
    )
    if len(word.rows):
        for cell in word.rows[0].cells:
            _border(cell._tc.get_or_add_tcPr(), {"bottom": "6"})
    for i, note in enumerate(table.footnotes):
        paragraph = document.add_paragraph()
        mark = paragraph.add_run(_letters(i))
        mark.font.superscript, mark.font.size = True, Pt(font_pt - 1)
        paragraph.add_run(" " + note).font.size = Pt(font_pt - 1)
        paragraph.paragraph_format.space_after = Pt(0)
        if keep and i < len(table.footnotes) - 1:
            paragraph.paragraph_format.keep_with_next = True
    if end is not None:  # what was added: everything before the final w:sectPr from start - 1
        _set_tables[made_from] = (layout, [copy.deepcopy(e) for e in body[start - 1 : -1]])
        while len(_set_tables) > _SET_TABLES_KEPT:
            _set_tables.pop(next(iter(_set_tables)), None)  # the oldest
    return layout


# The Word XML of the tables set in this process, by what each was made from (its text, type
# size and the document's text widths, which are all its XML depends on): the report sets again
# every table the tables step set, and a copy of the XML costs a fraction of setting it.
_set_tables: dict[str, tuple[DocxLayout, list]] = {}
_SET_TABLES_KEPT = 100


def _word_made_from(table: Table, font_pt: float, text_widths: tuple[float, float]) -> str:
    """What :func:`add_docx_table` sets a table from, as it reads it: the cells as text, the
    indentation of every row, the footnote letters by cell; so a table and the same table read
    back from ``publication_tables`` (every cell text, every row's indentation) are one."""
    rows = len(table.body)
    return json.dumps(
        [
            table.title,
            [str(c) for c in table.body.columns],
            [[str(v) for v in values] for values in table.body.itertuples(index=False, name=None)],
            [table.indent_of(i) for i in range(rows)],
            sorted((-1 if r is None else r, c, m) for (r, c), m in table._letters_by_cell.items())
            if table.marks
            else [],
            list(table.footnotes),
            font_pt,
            list(text_widths),
        ]
    )


def new_docx():
    """An empty Word document with fixed core properties (no author, no run time), type
    :data:`DOCX_FONT` throughout and margins of :data:`DOCX_MARGIN_IN` on every side."""
    import docx
    from docx.oxml.ns import qn
    from docx.shared import Inches

    document = docx.Document()
    props = document.core_properties
    props.author = props.last_modified_by = ""
    props.created = props.modified = props.last_printed = FIXED_TIME
    props.revision = 1
    # The template's theme fonts (Calibri, Cambria) win over any named font: each rFonts
    # of the styles, the document defaults' included, names the font instead.
    for fonts in document.styles.element.iter(qn("w:rFonts")):
        for theme in ("w:asciiTheme", "w:hAnsiTheme", "w:cstheme"):
            fonts.attrib.pop(qn(theme), None)
        for slot in ("w:ascii", "w:hAnsi", "w:cs"):
            fonts.set(qn(slot), DOCX_FONT)
    for section in document.sections:
        section.left_margin = section.right_margin = Inches(DOCX_MARGIN_IN)
        section.top_margin = section.bottom_margin = Inches(DOCX_MARGIN_IN)
    return document


def save_docx(document, path: Path) -> Path:
    """Save with every zip member dated ``FIXED_TIME``, so equal content gives equal bytes.

    The members are python-docx's own, in its order (:func:`_docx_members`), compressed once
    here with their fixed dates (:func:`_docx_zip`); saving with python-docx and rewriting its
    zip would compress every member twice (the bytes are the same either way)."""
    files.write_bytes(path, _docx_zip(_docx_members(document)))  # unchanged: left alone
    return path


def _zip_entry(name: str, blob: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    """One member as :func:`_docx_zip` writes it: its information (for the central directory)
    and its local header and compressed data, which do not depend on where it is in the zip."""
    fixed = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    fixed.compress_type = zipfile.ZIP_DEFLATED
    fixed.external_attr = 0o644 << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as scratch:
        scratch.writestr(fixed, blob)
        end = scratch.start_dir
    return fixed, buffer.getvalue()[:end]


# The template's members as last compressed, by name: (blob, entry). Every Word file carries
# python-docx's styles (some 800 kB of XML), and compressing them was a third of the time spent
# on a table's file.
_entries: dict[str, tuple[bytes, tuple[zipfile.ZipInfo, bytes]]] = {}
_TEMPLATE_MEMBERS = frozenset(
    [
        "word/styles.xml",
        "word/stylesWithEffects.xml",
        "word/theme/theme1.xml",
        "word/numbering.xml",
        "word/fontTable.xml",
        "word/settings.xml",
        "word/webSettings.xml",
        "docProps/thumbnail.jpeg",
        "docProps/app.xml",
        "docProps/core.xml",
    ]
)


def _docx_zip(members: list[tuple[str, bytes]]) -> bytes:
    """The zip of ``members`` exactly as :class:`zipfile.ZipFile` writes them one by one with
    ``writestr`` (:func:`_zip_entry`), a member of python-docx's template compressed only when
    its bytes differ from the last time. A finished entry is placed as ``writestr`` places it
    (``ZipFile.filelist``, ``NameToInfo`` and ``start_dir``, which ``close`` reads to write the
    central directory)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name, blob in members:
            known = _entries.get(name) if name in _TEMPLATE_MEMBERS else None
            if known is not None and known[0] == blob:
                info, entry = known[1]
            else:
                info, entry = _zip_entry(name, blob)
                if name in _TEMPLATE_MEMBERS:
                    _entries[name] = (blob, (info, entry))
            placed = copy.copy(info)
            placed.header_offset = out.tell()
            out.write(entry)
            target.start_dir = out.tell()
            target.filelist.append(placed)
            target.NameToInfo[name] = placed
            target._didModify = True
    return out.getvalue()


def _docx_members(document) -> list[tuple[str, bytes]]:
    """The zip members python-docx's ``Document.save`` writes, in its order: what its
    ``OpcPackage.save`` hands its zip writer (``docx.opc.pkgwriter.PackageWriter.write``). A
    python-docx without those steps is saved and read back."""
    from docx.opc import pkgwriter

    writer = pkgwriter.PackageWriter
    steps = ("_write_content_types_stream", "_write_pkg_rels", "_write_parts")
    package = document.part.package
    if not all(hasattr(writer, step) for step in steps):
        buffer = io.BytesIO()
        document.save(buffer)
        with zipfile.ZipFile(buffer) as source:
            return [(info.filename, source.read(info.filename)) for info in source.infolist()]

    class _Members(list):
        def write(self, pack_uri, blob):
            self.append((pack_uri.membername, blob))

    members = _Members()
    for part in package.parts:
        part.before_marshal()
    writer._write_content_types_stream(members, package.parts)
    writer._write_pkg_rels(members, package.rels)
    writer._write_parts(members, package.parts)
    return list(members)


@functools.cache
def _table_document():
    """One :func:`new_docx` per process for :func:`to_docx`, its body as new (to put back before
    each table) and its zip members: opening python-docx's template for every table cost more
    than setting the table."""
    document = new_docx()
    parts = _parts_and_relationships(document)
    return document, copy.deepcopy(list(document.element.body)), _docx_members(document), parts


def _parts_and_relationships(document) -> tuple[int, int]:
    return len(list(document.part.package.iter_parts())), len(document.part.rels)


_table_document_lock = threading.Lock()


def to_docx(table: Table, path: Path) -> Path:
    """``table`` alone in a Word file (:func:`add_docx_table` in a :func:`new_docx`).

    The document is the process's one (:func:`_table_document`) with its body put back as new:
    a table changes only the body (``word/document.xml``), so every other member is the one
    the template gave; a table that added a part (a picture, say) is set again in a document
    of its own."""
    with _table_document_lock:
        document, body, members, parts = _table_document()
        element = document.element.body
        for child in list(element):
            element.remove(child)
        element.extend(copy.deepcopy(body))
        add_docx_table(document, table)
        main = document.part.partname.membername
        if _parts_and_relationships(document) == parts:
            blob = document.part.blob
            data = _docx_zip([(name, blob if name == main else b) for name, b in members])
            files.write_bytes(path, data)  # unchanged bytes: the file is left alone
            return path
    document = new_docx()
    add_docx_table(document, table)
    return save_docx(document, path)


def write_table(
    table: Table, folder: Path, stem: str, formats: tuple[str, ...] = FORMATS
) -> list[Path]:
    """Write ``<stem>.csv`` (cells, then footnotes as ``#`` lines), ``.md``, ``.html``,
    ``.tex`` and ``.docx``; return the paths in that order."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for ext in formats:
        path = folder / f"{stem}.{ext}"
        if ext == "csv":
            files.write_text(path, to_csv(table))
        elif ext == "md":
            files.write_text(path, to_markdown(table))
        elif ext == "html":
            files.write_text(path, to_html(table, standalone=True))
        elif ext == "tex":
            files.write_text(path, to_latex(table))
        elif ext == "docx":
            to_docx(table, path)
        else:
            raise ValueError(f"unknown table format {ext!r}; use one of {', '.join(FORMATS)}")
        written.append(path)
    return written


#: What :func:`write_table` writes with besides its own code: the packages that set the
#: files' bytes.
RENDER_PACKAGES = ("python-docx", "lxml", "pandas", "numpy", "tabulate", "jinja2", "markupsafe")
#: The project modules :func:`write_table` runs (this one and what it imports; a test checks the
#: list is whole).
RENDER_MODULES = ("pipeline/render/writers.py", "pipeline/render/cells.py", "pipeline/files.py")


@functools.cache
def _render_code() -> str:
    """SHA-256 of what turns a :class:`Table` into files: :data:`RENDER_MODULES`, the templates
    and stylesheets, the Python, zlib and :data:`RENDER_PACKAGES` versions and the font metrics
    the Word columns are measured with."""
    import platform
    from importlib import metadata

    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[2]
    templates = sorted((Path(__file__).parent / "templates").iterdir())
    for path in [*(root / name for name in RENDER_MODULES), *templates]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for name in RENDER_PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "not installed"
        digest.update(f"{name} {version}\0".encode())
    digest.update(f"{platform.python_version()} {zlib.ZLIB_RUNTIME_VERSION}\0".encode())
    for bold in (False, True):
        digest.update(json.dumps(sorted(_advances(bold).items())).encode())
    return digest.hexdigest()


def _made_from(table: Table) -> dict:
    """Everything a table's files show: title, headings, cells (with their types), footnotes,
    indentation and marks."""
    body = table.body
    return {
        "title": table.title,
        "footnotes": list(table.footnotes),
        "indent": list(table.indent),
        "marks": [list(mark) for mark in table.marks],
        "columns": [repr(c) for c in body.columns],
        "index": [repr(i) for i in body.index],
        "types": [str(t) for t in body.dtypes],
        # repr tells 1 from 1.0 and "1", and gives every float exactly.
        "cells": [[repr(v) for v in row] for row in body.itertuples(index=False, name=None)],
    }


def render_key(table: Table, stem: str, formats: tuple[str, ...] = FORMATS) -> str:
    """SHA-256 of everything :func:`write_table` makes ``<stem>.<format>`` from: the table (its
    title, headings, cells with their types, footnotes, indentation and marks), the stem and
    formats, and the code and packages that write them (:func:`_render_code`). Equal keys give
    equal files."""
    made_from = {"code": _render_code(), "stem": stem, "formats": list(formats)}
    made_from.update(_made_from(table))
    return hashlib.sha256(json.dumps(made_from).encode()).hexdigest()


def write_results(results: pd.DataFrame, folder: Path, stem: str) -> Path:
    """Write a tidy results table as CSV at full double precision (17 significant digits);
    text cells (labels, subgroup levels, notes) neutralised against spreadsheet formulas,
    numeric columns written by pandas as they are (:func:`_csv_text`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.csv"
    # newline="": the line ends as pandas wrote them
    files.write_text(path, _csv_text(results, float_format="%.17g"), newline="")
    return path
