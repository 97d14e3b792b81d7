"""The patient flow diagram (STROBE 13c) of a study's primary outcome: boxes and arrows.

One flow down the left: the patient records read, the patients included, the patients analysed
(with a before and an after value of the primary outcome); beside each step down, a box of the
patients who left the flow there and why: excluded at ingest, not analysed. Every outcome's
counts are in the patient-flow eTable (:func:`pipeline.render.tables.flow_table`), built from
the same :func:`pipeline.render.tables.flow_counts`; the reasons are those of
:mod:`pipeline.statistics.flow`.

Drawn in inches on the figure itself (no axes), under the figures' theme
(:data:`pipeline.render.figure_theme.THEME`): every text is wrapped to its box by its measured
width, and each box's height and the figure's height follow from the text, so the diagram fits
a single column (3.5 in) and stays well under 9 in whatever the labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.text import Text

from pipeline.render.figure_files import SINGLE_COLUMN_IN
from pipeline.render.figure_list import primary_flow_row
from pipeline.render.figure_theme import THEME
from pipeline.statistics.flow import NOT_ANALYSED

FONT_PT = 7  # the box text, at print size
FOOTER_PT = 6
FOOTER_IN = 0.2  # room at the bottom for the synthetic-data label, as the other figures have
MARGIN_IN = 0.04  # around the drawing: line widths stay inside the canvas
PAD_IN = 0.06  # between a box's edge and its text
GAP_IN = 0.2  # between boxes one above the other, at least
ARROW_GAP_IN = 0.22  # from the main column to the boxes beside it: room for the arrow head
LINE_GAP_IN = 0.03  # between the reasons listed in a box
INDENT_IN = 0.1  # of the reasons under the number that left the flow
INK = "0.2"  # box edges and arrows
SIDE_FILL = "#f2f2f2"  # the boxes of patients who left the flow


@dataclass
class _Box:
    """A box of text lines (each a :class:`~matplotlib.text.Text`, laid out top down)."""

    texts: list[Text]
    heights: list[float]  # inches
    width: float
    fill: str = "white"
    centred: bool = True
    x: float = 0.0  # left edge, inches
    top: float = 0.0  # distance of the top edge from the figure's top, inches

    @property
    def height(self) -> float:
        return sum(self.heights) + LINE_GAP_IN * (len(self.heights) - 1) + 2 * PAD_IN


def _measure(fig: plt.Figure, text: Text) -> tuple[float, float]:
    """Width and height of ``text`` as drawn, in inches."""
    extent = text.get_window_extent(fig.canvas.get_renderer())
    return extent.width / fig.dpi, extent.height / fig.dpi


def _wrapped(fig: plt.Figure, words: str, width: float, **style) -> Text:
    """A text of ``words`` broken into lines no wider than ``width`` inches, by the measured
    width of each line: between words, and a word wider than the line (a long file name) after
    its last ``_``, ``-`` or ``.`` that fits, else after its last character that fits."""
    probe = fig.text(0, 0, "", fontsize=FONT_PT, **style)

    def fits(line: str) -> bool:
        probe.set_text(line)
        return _measure(fig, probe)[0] <= width

    def pieces(word: str) -> list[str]:
        out = []
        while not fits(word) and len(word) > 1:
            cut = max(i for i in range(1, len(word)) if i == 1 or fits(word[:i]))
            marks = [i + 1 for i in range(cut) if word[i] in "_-."]
            cut = marks[-1] if marks else cut
            out.append(word[:cut])
            word = word[cut:]
        return out + [word]

    lines: list[str] = []
    for paragraph in words.split("\n"):
        line = ""
        for word in (piece for w in paragraph.split(" ") if w for piece in pieces(w)):
            candidate = f"{line} {word}" if line else word
            if line and not fits(candidate):
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    probe.set_text("\n".join(lines))
    return probe


def _box(
    fig: plt.Figure, lines: list[tuple[str, str]], width: float, *, centred: bool, fill: str
) -> _Box:
    """A box ``width`` inches wide holding ``lines`` (gid, text), each wrapped to fit."""
    style = {"ha": "center" if centred else "left", "va": "top", "linespacing": 1.25}
    texts, heights = [], []
    for i, (gid, words) in enumerate(lines):
        indent = INDENT_IN if i and not centred else 0.0
        text = _wrapped(fig, words, width - 2 * PAD_IN - indent, **style)
        text.set_gid(gid)
        texts.append(text)
        heights.append(_measure(fig, text)[1])
    return _Box(texts, heights, width, fill, centred)


def _count(n: int) -> str:
    """``(n = 12)``, kept on one line (no-break spaces: :func:`_wrapped` breaks at spaces)."""
    return f"(n\u00a0=\u00a0{int(n)})"


def patient_flow(
    flow: pd.DataFrame,
    *,
    subjects_file: str,
    primary: str = "",
    exclusions: pd.DataFrame | None = None,
    footer: str = "",
    width: float = SINGLE_COLUMN_IN,
) -> plt.Figure:
    """Patient flow diagram (STROBE 13c) of the primary outcome.

    Parameters
    ----------
    flow : DataFrame
        :func:`pipeline.render.tables.flow_counts`: one row per outcome with ``label``,
        ``records``, ``excluded``, ``included``, ``analysed``, ``not_analysed`` and (when known)
        one column per reason of :data:`pipeline.statistics.flow.NOT_ANALYSED`.
    subjects_file : str
        The name of the file the patient records were read from.
    primary : str
        The plan's primary outcome (``analysis.primary``); the first outcome of ``flow`` when
        empty or not in it.
    exclusions : DataFrame, optional
        :func:`pipeline.statistics.flow.ingest_exclusions`: the records excluded at ingest per
        reason; the reasons with a record are listed under the number excluded.
    footer, width
        The synthetic-data label, and the figure's width in inches.

    Each text carries a gid naming what it counts (``flow:records``, ``flow:excluded``,
    ``flow:excluded:<reason>``, ``flow:included``, ``flow:not_analysed``,
    ``flow:not_analysed:<reason>``, ``flow:analysed``), so a test can read the numbers drawn.
    """
    with plt.rc_context(THEME):
        return _draw(flow, subjects_file, primary, exclusions, footer, width)


def _draw(
    flow: pd.DataFrame,
    subjects_file: str,
    primary: str,
    exclusions: pd.DataFrame | None,
    footer: str,
    width: float,
) -> plt.Figure:
    row = primary_flow_row(flow, primary)
    fig = plt.figure(figsize=(width, 4.0))
    fig.set_layout_engine("none")
    # The main column a little narrower than the boxes beside it, which list the reasons; at
    # double-column width both are capped so the lines do not run wider than they need.
    usable = width - 2 * MARGIN_IN - ARROW_GAP_IN
    main_w = min(0.46 * usable, 2.6)
    side_w = min(usable - main_w, 3.2)

    def main(gid: str, words: str) -> _Box:
        return _box(fig, [(gid, words)], main_w, centred=True, fill="white")

    def side(gid: str, heading: str, reasons: list[tuple[str, str, int]]) -> _Box:
        lines = [(gid, heading)] + [
            (f"{gid}:{name}", f"{label} {_count(n)}") for name, label, n in reasons if n
        ]
        return _box(fig, lines, side_w, centred=False, fill=SIDE_FILL)

    excluded_reasons = (
        [(r.reason, r.label, r.records) for r in exclusions.itertuples(index=False)]
        if exclusions is not None
        else []
    )
    not_analysed_reasons = [
        (r.name, r.label, int(row[r.name])) for r in NOT_ANALYSED if r.name in row.index
    ]
    records = main("flow:records", f"Patient records in {subjects_file} {_count(row['records'])}")
    excluded = side(
        "flow:excluded", f"Excluded at ingest {_count(row['excluded'])}", excluded_reasons
    )
    included = main("flow:included", f"Included {_count(row['included'])}")
    not_analysed = side(
        "flow:not_analysed",
        f"Not analysed {_count(row['not_analysed'])}",
        not_analysed_reasons,
    )
    analysed = main(
        "flow:analysed",
        f"Analysed {_count(row['analysed'])}\n{row['label']}, before and after surgery",
    )

    # The boxes beside the flow as wide as the wider one's longest line: at double-column width
    # the column leaves them more room than their reasons take.
    needed = max(
        _measure(fig, text)[0] + 2 * PAD_IN + (INDENT_IN if i else 0.0)
        for box in (excluded, not_analysed)
        for i, text in enumerate(box.texts)
    )
    excluded.width = not_analysed.width = side_w = min(side_w, needed)
    left = MARGIN_IN + (usable - main_w - side_w) / 2  # the drawing centred
    side_x = left + main_w + ARROW_GAP_IN

    # Top down: each box beside the flow sits level with the middle of the gap between the two
    # boxes of the main column it leaves from and to, and that gap is opened to hold it.
    top = MARGIN_IN
    for upper, beside, lower in ((records, excluded, included), (included, not_analysed, analysed)):
        upper.x, upper.top = left, top
        gap = max(2 * GAP_IN, beside.height + GAP_IN)
        beside.x = side_x
        beside.top = top + upper.height + (gap - beside.height) / 2
        top += upper.height + gap
    analysed.x, analysed.top = left, top
    bottom = top + analysed.height + MARGIN_IN
    height = bottom + (FOOTER_IN if footer else 0)
    fig.set_size_inches(width, height)

    inches = fig.dpi_scale_trans
    for box in (records, excluded, included, not_analysed, analysed):
        y = height - box.top  # top edge, from the bottom
        fig.add_artist(
            FancyBboxPatch(
                (box.x, y - box.height),
                box.width,
                box.height,
                boxstyle="round,pad=0,rounding_size=0.04",
                facecolor=box.fill,
                edgecolor=INK,
                linewidth=0.7,
                transform=inches,
            )
        )
        line_top = y - PAD_IN
        for i, (text, h) in enumerate(zip(box.texts, box.heights)):
            x = box.x + PAD_IN + (INDENT_IN if i else 0.0)
            text.set_transform(inches)
            text.set_position((box.x + box.width / 2 if box.centred else x, line_top))
            line_top -= h + LINE_GAP_IN

    def arrow(start: tuple[float, float], end: tuple[float, float]) -> None:
        fig.add_artist(
            FancyArrowPatch(
                start,
                end,
                arrowstyle="-|>",
                mutation_scale=7,
                shrinkA=0,
                shrinkB=0,
                color=INK,
                linewidth=0.7,
                transform=inches,
            )
        )

    trunk = left + main_w / 2
    for upper, beside, lower in ((records, excluded, included), (included, not_analysed, analysed)):
        arrow((trunk, height - upper.top - upper.height), (trunk, height - lower.top))
        level = height - beside.top - beside.height / 2
        arrow((trunk, level), (beside.x, level))
    if footer:
        fig.text(
            MARGIN_IN,
            0.35 * FOOTER_IN,
            footer,
            fontsize=FOOTER_PT,
            color="0.3",
            va="center",
            transform=inches,
        )
    return fig
