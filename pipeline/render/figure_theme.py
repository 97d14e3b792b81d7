"""The theme of every figure: the matplotlib settings figures are drawn and saved under, and the
colours of its categories.

seaborn's "ticks" style and "paper" context, at the print sizes of a journal column (fonts 7-8 pt),
with the settings the files need (constrained layout, text kept as text, fixed SVG ids). In
force while a figure is drawn (:func:`pipeline.render.figures._themed`) and again while it is
laid out and saved (:func:`pipeline.render.figure_files.save`): matplotlib reads some settings
only when it draws, e.g. the tick label size from which it chooses how many ticks fit.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are drawn for files only; never open a window

import seaborn as sns  # noqa: E402

THEME = {
    **sns.axes_style("ticks"),
    **sns.plotting_context("paper"),
    # One font on every machine: seaborn's list starts with Arial, installed on some only.
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 3.5,
    "ytick.major.size": 3.5,
    "lines.linewidth": 1.0,
    # Journals print text and axes in black; seaborn's style greys them (.15) and rounds line
    # ends, which matplotlib (and the figures before seaborn) draw square.
    "text.color": "black",
    "axes.labelcolor": "black",
    "axes.edgecolor": "black",
    "xtick.color": "black",
    "ytick.color": "black",
    "lines.solid_capstyle": "projecting",
    # No tight bounding box: the saved figure keeps exactly the column width asked for;
    # constrained layout fits the labels inside it instead.
    "savefig.bbox": None,
    "figure.constrained_layout.use": True,
    "svg.fonttype": "none",  # text stays text in SVG, editable by the journal
    "pdf.fonttype": 42,  # TrueType fonts embedded in PDF
    "svg.hashsalt": "facial-outcomes",  # fixed ids: same figure, same SVG bytes
}

# Okabe-Ito palette: distinguishable with every common colour-vision deficiency.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

# The directions of change, told apart in greyscale too (a journal may print in black and white):
# their greyscale luminances (ITU-R 601 luma, what PIL's convert("L") computes) are 87 (blue),
# 162 (orange) and 224 (light grey), at least GREY_STEP apart, and the light grey bars carry a
# dark edge so that they stand out from the white page. Vermilion (#D55E00, luma 119) with a
# mid grey (0.65, luma 166) read as one shade in greyscale.
IMPROVED, WORSENED, UNCHANGED = OKABE_ITO[0], OKABE_ITO[4], "#E0E0E0"
DIRECTION_COLOURS = {"Improved": IMPROVED, "Unchanged": UNCHANGED, "Worsened": WORSENED}
GREY_STEP = 50  # the least difference in luma (0-255) between two categories of one figure

# Curves of one figure (Kaplan-Meier by a subgroup's levels), told apart in greyscale by their
# luma (black 0, blue 87, orange 162: at least GREY_STEP apart) and, from a fourth level on, by
# their line style too.
CURVE_COLOURS = ("#000000", OKABE_ITO[0], OKABE_ITO[4])
CURVE_STYLES = ("-", "--", ":", "-.")
