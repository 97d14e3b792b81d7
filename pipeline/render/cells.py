"""Text cells made safe to open in a spreadsheet: formula (CSV) injection neutralised.

A text value from an export (a category level, a visit label, a subject code) can reach an
output cell. A spreadsheet that opens the CSV, or receives the cell pasted from Word, a web page
or a PDF, reads a cell starting with ``=``, ``+``, ``-`` or ``@`` as a formula: ``=HYPERLINK``
sends data away when clicked, ``+cmd|' /C calc'!A0`` runs a program through DDE. Every writer
of tables and reports passes its cells through :func:`neutralise`, the one place the rule is.

Light on purpose (the standard library only): the Dagster definitions import it for their
Markdown previews, and they must load without pandas' or scipy's heavier modules.
"""

from __future__ import annotations

import re
import unicodedata

# What makes a spreadsheet read a cell as a formula (OWASP, CSV Injection): = + - @ as the
# first character, and the full-width and small forms that Excel's East Asian input turns into
# them (U+FF1D ＝, U+FF0B ＋, U+FF0D －, U+FF20 ＠; U+FE66 ﹦, U+FE62 ﹢, U+FE63 ﹣, U+FE6B ﹫).
FORMULA_START = frozenset("=+-@\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b")
# OWASP also lists a tab or a carriage return as the first character: an importer that trims
# or splits at them leaves what follows at the start of a cell.
CONTROL_START = frozenset("\t\r")

# A plain number (-1.2, +3, -.5, -1e-05) and the formatted statistics tables.py writes that can
# start with a sign: "m ± s", "e (lo to hi)", "md [q1-q3]"; each part a number or NA; and an
# estimate whose CI cannot be had, "e (CI not estimable)" (the journal style's words, fixed
# text: no part of it comes from the data).
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_PART = rf"(?:{_NUMBER}|NA)"
_NUMERIC = re.compile(
    rf"{_NUMBER}(?: ± {_PART}| \({_PART} to {_PART}\)| \[{_PART}-{_PART}\]"
    r"| \(CI not estimable\))?"
)
# Where a cell's text may be cut into cells of its own: a line break (a CSV opener that has
# lost track of the quotes, a plain-text paste from Word or a browser), a tab (a pasted row,
# LibreOffice's import options) and ";" (the list separator at which Excel splits a CSV in
# many European locales).
SPLITS = ";\t\r\n"


def _significant(text: str) -> str:
    """``text`` from its first character that is neither whitespace nor invisible (Unicode
    category Cf: zero-width space, byte-order mark): spreadsheets that trim see that first."""
    for i, ch in enumerate(text):
        if not (ch.isspace() or unicodedata.category(ch) == "Cf"):
            return text[i:]
    return ""


def formula_like(text: str) -> bool:
    """Whether a spreadsheet could read ``text`` as a formula (the rule of :func:`neutralise`)."""
    if not text:
        return False
    if text[0] in CONTROL_START:
        return True
    rest = _significant(text)
    if not rest or rest[0] not in FORMULA_START:
        return False
    # A sign before a number or a formatted statistic: a spreadsheet reads at most a number
    # from it (there is no name, reference or command in it), and the table must not change.
    return not (rest[0] in "+-" and _NUMERIC.fullmatch(rest.rstrip()))


def _piece_like(piece: str) -> bool:
    # After a split, a double quote may open a quoted field whose text is what follows it; and
    # the cell a piece starts runs on into text not known here (the rest of a CSV line read at
    # ";"), so a sign before a number is no exception.
    return piece[:1] in CONTROL_START or _significant(piece).lstrip('"')[:1] in FORMULA_START


def neutralise(text: str, *, splits: str = SPLITS) -> str:
    """``text`` as a cell that no spreadsheet evaluates: ``'`` put before it when it could be
    read as a formula, and before each piece of it that could be, otherwise unchanged.

    The rule follows OWASP's CSV Injection page
    (https://owasp.org/www-community/attacks/CSV_Injection): a cell is prefixed with a single
    quote when

    - its first character is a tab (0x09) or a carriage return (0x0D); or
    - its first character that is not whitespace (``str.isspace``) or invisible (Unicode
      category Cf, e.g. a zero-width space or a byte-order mark) is ``=``, ``+``, ``-`` or
      ``@``, or a full-width or small form of one (``＝ ＋ － ＠ ﹦ ﹢ ﹣ ﹫``): spreadsheets that
      trim spaces on import, or convert full-width forms as Excel's East Asian input does,
      would otherwise see the formula;

    except that a cell whose text, without surrounding whitespace, starts with ``+`` or ``-``
    and is a number (``-1.2``, ``+3``, ``-.5``, ``-1e-05``) or one of the formatted statistics
    the tables write (``-1.2 ± 0.3``, ``-0.5 (-1.0 to 0.0)``, ``-1.0 [-2.0--0.5]``, each part a
    number or ``NA``, and ``-1.5 (CI not estimable)``) is left as it is: it holds no function,
    reference or command, so a spreadsheet reads at most a number from it, and a result must
    never change. Anything else is prefixed, ``-2+3`` and ``-2-3`` included. A real minus sign
    (``−1.2``, U+2212) and ``<.001`` start no formula and are left alone. The quote is put
    before any leading whitespace, so the cell's first character is the quote itself.

    A cell's text can also be cut into cells of its own at a line break, a tab or ``;``
    (``splits``; see :data:`SPLITS`): each piece after one gets its own quote when its first
    character past whitespace (and past a double quote, which may open a quoted field) is one
    of the formula characters above, numbers included, since the cell it would start runs on
    into text not known here: ``a;=1`` becomes ``a;'=1``, ``a; -1`` becomes ``a;' -1``. A writer
    whose text is cut at other characters too passes them (a CSV comment line, cut at commas).

    Where it applies, and why:

    - CSV (publication tables and the full-precision results of ``write_results``): every
      text cell and heading. A neutralised field (and one holding a carriage return, which
      pandas leaves unquoted) is also enclosed in double quotes, as OWASP asks, so an opener
      that splits lines at another character (``;`` in many European locales) still sees one
      cell (see ``pipeline.render.tables``). Numbers written by pandas from numeric columns are
      never
      text there and never touched. Footnotes, written as ``#`` lines that cannot be quoted,
      are neutralised piece by piece, commas included.
    - Word (tables and the report): every table cell. Word does not evaluate a formula in a
      text run, but a table pasted from Word into Excel is evaluated cell by cell.
    - HTML (tables and the report), Markdown and LaTeX: every table cell. A browser evaluates
      nothing, but Excel opens HTML tables and evaluates pasted cells, and Markdown and LaTeX
      tables are converted to or copied from HTML, Word and PDF.
    - Dagster's Markdown previews (:func:`markdown_frame`): every text cell.

    The quote is visible in Word, HTML, Markdown and LaTeX (where it prints as ’): it shows
    that the value was altered, and it is what a spreadsheet would need anyway.
    """
    safe = "'" + text if formula_like(text) else text
    if not any(ch in safe for ch in splits):
        return safe
    # Each split point is judged by all the text after it, further split characters included:
    # the cell it starts may begin with one (a carriage return and then a tab start a new line
    # whose first cell starts with the tab).
    out, start = [], 0
    for match in re.finditer(f"[{re.escape(splits)}]", safe):
        end = match.end()
        out.append(safe[start:end] + ("'" if _piece_like(safe[end:]) else ""))
        start = end
    return "".join(out) + safe[start:]


def markdown_frame(frame, **options) -> str:
    """``frame.to_markdown(index=False)`` with every text cell and heading neutralised and a
    ``|`` in a cell escaped (it would end the cell): for Dagster's metadata previews."""

    def cell(value):
        return neutralise(value).replace("|", "\\|") if isinstance(value, str) else value

    safe = frame.map(cell)
    safe.columns = [cell(c) for c in frame.columns]
    return safe.to_markdown(index=False, **options)
