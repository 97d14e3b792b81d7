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
  fixed times, so the same table gives the same bytes.

Every cell a writer puts out goes through :func:`pipeline.render.cells.neutralise`, so a text
value from an export that starts like a spreadsheet formula is written as text.
"""

from __future__ import annotations

import functools
import html
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from pipeline.render.cells import SPLITS, neutralise

FORMATS = ("csv", "md", "html", "tex", "docx")


@dataclass(frozen=True)
class Table:
    """A publication table as text, which every writer here writes out: a title, the body (a
    frame of text cells under their headings) and footnotes, lettered a, b, c in every format.

    The builders of :mod:`pipeline.render.tables` make them. ``indent`` gives, per body row,
    how many levels the first cell is indented (a category level under its variable); empty
    means no indentation.
    """

    title: str
    body: pd.DataFrame
    footnotes: tuple[str, ...] = ()
    indent: tuple[int, ...] = ()

    def indent_of(self, row: int) -> int:
        return self.indent[row] if self.indent else 0


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

    Filters: ``cell`` (a cell's text neutralised against spreadsheet formulas) and
    ``letter`` (a footnote's letter, 0 -> a). Block tags take their line with them
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
    return environment


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


def to_latex(table: Table) -> str:
    """A ``table`` float with a booktabs ``tabular``; needs ``\\usepackage{booktabs}``."""
    cols = "l" + "c" * (len(table.body.columns) - 1)
    lines = [
        "% Requires \\usepackage{booktabs} in the preamble.",
        "\\begin{table}[htbp]",
        "\\centering",
        f"\\caption{{{latex_escape(table.title)}}}",
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        " & ".join(_latex_cell(c) for c in table.body.columns) + " \\\\",
        "\\midrule",
    ]
    for i, values in enumerate(table.body.itertuples(index=False)):
        first = "\\quad " * table.indent_of(i) + _latex_cell(values[0])
        lines.append(" & ".join([first] + [_latex_cell(v) for v in values[1:]]) + " \\\\")
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


# A fixed moment for the DOCX core properties and zip entries: Word files carry a
# creation time and every zip member a modification time; fixing both keeps the
# bytes identical across runs.
FIXED_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)


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
    cell_or_table_pr.append(borders)


def fill_docx_cell(
    cell, text: str, font_pt: float, *, bold: bool = False, indent: int = 0, center: bool = False
) -> None:
    """Write ``text`` into a Word table cell through python-docx: ``font_pt`` type, no space
    after, indented 10 pt per ``indent`` level, centred if asked. :func:`add_docx_table` writes
    the same XML itself, far faster, for all text without tabs or line breaks."""
    from docx.shared import Pt

    paragraph = cell.paragraphs[0]
    run = paragraph.add_run(text)
    run.font.size = Pt(font_pt)
    if bold:  # not bold is the style's default: no element needed
        run.bold = True
    paragraph.paragraph_format.space_after = Pt(0)
    if indent:
        paragraph.paragraph_format.left_indent = Pt(10 * indent)
    if center:
        paragraph.alignment = 1


def add_docx_table(document, table: Table, *, font_pt: float = 9) -> None:
    """Append ``table`` to a python-docx Document: title, a real Word table, lettered notes."""
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.shared import Pt

    title = document.add_paragraph()
    title.add_run(table.title).bold = True
    body = table.body
    word = document.add_table(rows=len(body) + 1, cols=len(body.columns))
    word.alignment = WD_TABLE_ALIGNMENT.CENTER
    # Journal style: rules above and below the header and at the bottom, none inside.
    _border(
        word._tbl.tblPr,
        {"top": "12", "bottom": "12", "left": "0", "right": "0", "insideH": "0", "insideV": "0"},
    )

    from docx.oxml.ns import qn
    from lxml.etree import SubElement

    half_points = str(round(font_pt * 2))

    def fill(cell, text: str, *, bold: bool = False, indent: int = 0, center: bool = False) -> None:
        # The cell's paragraph built as the XML fill_docx_cell gets from python-docx (a Word
        # table has thousands of cells, and those calls were most of the time spent on one).
        # Tabs and line breaks become elements of their own, which only python-docx does here.
        if "\t" in text or "\n" in text or "\r" in text:
            return fill_docx_cell(cell, text, font_pt, bold=bold, indent=indent, center=center)
        p = cell._tc.p_lst[0]
        properties = SubElement(p, qn("w:pPr"))
        SubElement(properties, qn("w:spacing")).set(qn("w:after"), "0")
        if indent:
            # 10 pt = 200 twips
            SubElement(properties, qn("w:ind")).set(qn("w:left"), str(200 * indent))
        if center:
            SubElement(properties, qn("w:jc")).set(qn("w:val"), "center")
        run = SubElement(p, qn("w:r"))
        font = SubElement(run, qn("w:rPr"))
        if bold:
            SubElement(font, qn("w:b"))
        SubElement(font, qn("w:sz")).set(qn("w:val"), half_points)
        if text:
            t = SubElement(run, qn("w:t"))
            t.text = text
            if len(text.strip()) < len(text):
                t.set(qn("xml:space"), "preserve")

    # Each row's cells fetched once: python-docx rebuilds the row's cell list on every access.
    rows = [row.cells for row in word.rows]
    # Word evaluates no formula in a text run, but a table pasted from Word into Excel is
    # evaluated cell by cell: every cell neutralised.
    for j, column in enumerate(body.columns):
        cell = rows[0][j]
        fill(cell, neutralise(str(column)), bold=True, center=j > 0)
        _border(cell._tc.get_or_add_tcPr(), {"bottom": "6"})
    for i, values in enumerate(body.itertuples(index=False)):
        for j, value in enumerate(values):
            fill(
                rows[i + 1][j],
                neutralise(str(value)),
                indent=table.indent_of(i) if j == 0 else 0,
                center=j > 0,
            )
    for i, note in enumerate(table.footnotes):
        paragraph = document.add_paragraph()
        mark = paragraph.add_run(_letters(i))
        mark.font.superscript, mark.font.size = True, Pt(font_pt - 1)
        paragraph.add_run(" " + note).font.size = Pt(font_pt - 1)
        paragraph.paragraph_format.space_after = Pt(0)


def new_docx():
    """An empty Word document with fixed core properties (no author, no run time)."""
    import docx

    document = docx.Document()
    props = document.core_properties
    props.author = props.last_modified_by = ""
    props.created = props.modified = props.last_printed = FIXED_TIME
    props.revision = 1
    return document


def save_docx(document, path: Path) -> Path:
    """Save with every zip member dated ``FIXED_TIME``, so equal content gives equal bytes."""
    buffer = io.BytesIO()
    document.save(buffer)
    buffer.seek(0)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(buffer) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(info.filename))
    path.write_bytes(out.getvalue())
    return path


def to_docx(table: Table, path: Path) -> Path:
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
            path.write_text(to_csv(table), encoding="utf-8")
        elif ext == "md":
            path.write_text(to_markdown(table), encoding="utf-8")
        elif ext == "html":
            path.write_text(to_html(table, standalone=True), encoding="utf-8")
        elif ext == "tex":
            path.write_text(to_latex(table), encoding="utf-8")
        elif ext == "docx":
            to_docx(table, path)
        else:
            raise ValueError(f"unknown table format {ext!r}; use one of {', '.join(FORMATS)}")
        written.append(path)
    return written


def write_results(results: pd.DataFrame, folder: Path, stem: str) -> Path:
    """Write a tidy results table as CSV at full double precision (17 significant digits);
    text cells (labels, subgroup levels, notes) neutralised against spreadsheet formulas,
    numeric columns written by pandas as they are (:func:`_csv_text`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.csv"
    # newline="": the line ends as pandas wrote them
    path.write_text(_csv_text(results, float_format="%.17g"), encoding="utf-8", newline="")
    return path
