"""Publication figures: what each figure shows, drawn with seaborn under one theme.

Every figure is drawn at a journal column width (single 3.5 in, double 7 in), at most
:data:`PAGE_HEIGHT_IN` tall, with text at print size (6-8 pt), colour-blind-safe colours that
stay apart in greyscale and one theme (:mod:`pipeline.render.figure_theme`, put in force by
:func:`_themed` around every figure function). A figure of several panels draws them through
:func:`_panel_grid`, which letters them A, B, C ...; a grid of more than
:data:`MAX_SINGLE_COLUMN_ROWS` rows at single-column width is exported at double width only
(:func:`grid_widths`). Value axes name the score, its range or unit and which way is better.
Figures show groups and distributions only: no subject is ever labelled, and each figure's source
data (:func:`attach_source`: the numbers every mark is drawn from, individual marks numbered by
value) are written beside it as CSV. Writing the files (PNG, TIFF, PDF, SVG with the same bytes
for the same inputs, and the CSV), the render cache and the parallel drawing are in
:mod:`pipeline.render.figure_files`; :func:`pipeline.render.figure_list.study_figures` lists a
study's figures as :class:`FigureSpec`, naming the functions here that draw them, for it to
export.

seaborn draws the marks it draws the same way from the values given: strip plots
(:func:`prepost_box`), point estimates (:func:`slope_plot`), lines (:func:`trajectory`),
histograms stacked by direction of change and 100% stacked bars (:func:`change_distribution`,
:func:`grade_shift`, both through ``sns.histplot``) and the scatter of :func:`bland_altman`. It
estimates nothing: means, counts and percentages are computed here (or by the pipeline: the
directions of change are the ``change_direction`` analysis's) and given to it with
``errorbar=None``, as ``weights`` of one value per bar, or with ``estimator=None``. matplotlib
draws what seaborn cannot take as given, or not at registry size:

* confidence intervals (:func:`slope_plot`, :func:`change_distribution`, :func:`trajectory`,
  :func:`forest`): seaborn draws an interval only as one it computes from the raw values, so
  precomputed bounds are drawn with ``errorbar``/``fill_between``; the forest plot is nothing
  but such intervals (and section rows without one), so it is matplotlib throughout;
* one line per patient in :func:`slope_plot`: ``sns.lineplot(units=...)`` would draw the same
  lines through its semantic mapping, a call of ``ax.plot`` per line (slow with hundreds of
  patients), and a width per number of patients would need a size mapping of every count;
* the boxes of :func:`prepost_box` (:func:`_boxes`): the box statistics seaborn's box plot
  draws, without its reshaping of every value, which took three times the figure's time at
  100,000 patients;
* reference lines and their labels (zero, bias, limits of agreement), and the patient flow
  diagram (:func:`patient_flow`), which is boxes and arrows, not a plot of data.
"""

from __future__ import annotations

import functools
import textwrap
from contextlib import contextmanager
from typing import Callable

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator

# The t quantile from scipy.special, what scipy.stats.t.ppf computes.
from scipy.special import stdtrit

from pipeline.render.figure_files import (  # noqa: F401  (public names of the figures)
    DEFAULT_FORMATS,
    DOUBLE_COLUMN_IN,
    PAGE_HEIGHT_IN,
    SINGLE_COLUMN_IN,
    WIDTHS,
    Drawing,
    FigureSpec,
    attach_source,
    drawing,
    export,
    save,
    source_data,
    width_folder,
)
from pipeline.render.figure_list import (  # noqa: F401  (also names of the figures)
    BOX_PANEL_KEYS,
    DAYS_PER_MONTH,
    MAX_SINGLE_COLUMN_ROWS,
    _estimate_name,
    _grid,
    grid_widths,
    not_drawn,
    study_figures,
    study_flow,
)
from pipeline.render.figure_theme import (  # noqa: F401  (public names of the figures)
    CURVE_COLOURS,
    CURVE_STYLES,
    DIRECTION_COLOURS,
    IMPROVED,
    OKABE_ITO,
    THEME,
    UNCHANGED,
    WORSENED,
)
from pipeline.render.flow_diagram import patient_flow  # noqa: F401

# Six ordered grades, light (grade I, normal) to dark (grade VI): the cividis map is
# designed to read the same with deuteranopia and in greyscale.
GRADE_COLOURS = tuple(plt.colormaps["cividis_r"](x) for x in np.linspace(0.05, 0.95, 6))
ROMAN = ("I", "II", "III", "IV", "V", "VI")

FOOTER_IN = 0.2  # room at the bottom for the synthetic-data label


def _themed(function: Callable[..., plt.Figure]) -> Callable[..., plt.Figure]:
    """``function`` drawing under :data:`THEME`: every figure function is, so the theme is set here
    only."""

    @functools.wraps(function)
    def themed(*args, **kwargs) -> plt.Figure:
        with plt.rc_context(THEME):
            return function(*args, **kwargs)

    return themed


# Figures that show one mark per patient (slope lines, points) draw at most this many
# patients, a seeded random sample, above it: beyond a few hundred, marks merge into an
# unreadable block and drawing them costs seconds per figure in registry-sized cohorts.
# Means, CIs, boxes, histograms and limits of agreement always use every patient.
INDIVIDUALS_SHOWN = 400
# The two times of the before/after figures (box plots, grade shift): the visits a pair holds are
# the plan's, said in the caption, so the figure itself names only which of the two it is.
BEFORE, AFTER = "Before", "After"


def _shown(frame: pd.DataFrame, limit: int = INDIVIDUALS_SHOWN) -> pd.DataFrame:
    """At most ``limit`` rows of ``frame``, a seeded random sample in the original order."""
    if len(frame) <= limit:
        return frame
    keep = np.sort(np.random.default_rng(0).choice(len(frame), size=limit, replace=False))
    return frame.iloc[keep]


# --------------------------------------------------------------------------- helpers


def _mean_change(diff: np.ndarray, conf_level: float) -> dict:
    """The mean change with its t-based CI, for a panel given without its test's estimate."""
    mean, half = _mean_ci(diff, conf_level)
    return {"estimate": mean, "low": mean - half, "high": mean + half, "kind": "mean"}


def _error_lengths(estimate, low, high) -> np.ndarray:
    """Error-bar lengths below and above each estimate. R's Hodges-Lehmann interval can end a
    rounding error on the wrong side of its estimate (its root search stops within its
    tolerance; pipeline.statistics.paired.hodges_lehmann reproduces R): that side is drawn at
    the estimate, as matplotlib takes no negative length. NaN stays NaN (no limit)."""
    estimate, low, high = (np.asarray(v, float) for v in (estimate, low, high))
    return np.clip(np.vstack([estimate - low, high - estimate]), 0, None)


def _estimate_legend(kinds, conf_level: float) -> str:
    """The legend entry of a figure's change estimates with their CI, in one pair of brackets
    ("Hodges-Lehmann median change (95% CI)", not "(Hodges-Lehmann) (95% CI)")."""
    kinds = set(kinds)
    ci = f"({conf_level:.0%} CI)"
    if kinds == {"median"}:
        return f"Hodges-Lehmann median change {ci}"
    if kinds == {"mean"}:
        return f"Mean change {ci}"
    return f"Change, the estimate of each outcome's test {ci}"


def _mean_ci(values: np.ndarray, conf_level: float) -> tuple[float, float]:
    """Mean and half-width of its t-based CI (Student t with n - 1 df)."""
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, 0.0
    half = stdtrit(n - 1, 0.5 + conf_level / 2) * np.std(values, ddof=1) / np.sqrt(n)
    return mean, float(half)


def _figure(width: float, height: float, footer: str) -> plt.Figure:
    fig = plt.figure(figsize=(width, height))
    if footer:
        fig.get_layout_engine().set(rect=(0, FOOTER_IN / height, 1, 1 - FOOTER_IN / height))
        fig.text(0.01, 0.35 * FOOTER_IN / height, footer, fontsize=6, color="0.3", va="center")
    return fig


def _wrap(text: str, width: float, per_inch: int = 11) -> str:
    return textwrap.fill(text, max(12, int(width * per_inch)))


def _axis_label(text: str, length: float) -> str:
    """An axis label wrapped line by line to ``length`` inches of the axis (at 7-8 pt, about 16
    characters an inch): a long score name ("Facial landmarks oral commissure excursion:
    |affected - healthy|") would otherwise run off the figure."""
    return "\n".join(_wrap(line, length, per_inch=16) for line in text.split("\n"))


def _title_panel(ax: plt.Axes, title: str, caption: str, width: float) -> Text:
    """A panel's title wrapped to the panel's ``width`` (inches), its caption on the line below."""
    return ax.set_title(_wrap(title, width) + ("\n" + caption if caption else ""), loc="left")


def _hide_unused(axes, used: int) -> None:
    """Blank the grid's panels after the first ``used`` (an odd number of outcomes, two columns)."""
    for ax in axes[used:]:
        ax.set_axis_off()


PANEL_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _panel_letter(ax: plt.Axes, title: Text, letter: str) -> None:
    """The panel's letter, bold, at its top left: level with the first line of its title, just
    left of it (the text the figure legend and the caption refer to the panel by)."""
    ax.annotate(
        letter,
        xy=(0, 1),
        xycoords=title,
        xytext=(-5, 0),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize=8,
        fontweight="bold",
    )


def _panel_grid(
    panels: list[dict],
    width: float,
    footer: str,
    draw_one: Callable[[plt.Axes, dict, float], tuple[str, str, pd.DataFrame]],
    *,
    row_height: float,
    extra: float,
    cols: int | None = None,
) -> tuple[plt.Figure, np.ndarray]:
    """One panel per item of ``panels`` in a grid (:func:`_grid`, or ``cols`` a row), each drawn
    by ``draw_one(ax, panel, panel_width)``, which returns the panel's title, its caption (the
    line below the title) and the tidy frame of the numbers its marks are drawn from.

    The figure is ``row_height`` inches a row plus ``extra`` (legend, footer), at most
    :data:`PAGE_HEIGHT_IN`; with more than one panel each gets its letter (A, B, ...), and the
    figure's source data (:func:`attach_source`) are the panels' frames, each row with its
    panel's letter, title and, where the panel has them, outcome and score. Blank panels fill
    the grid's last row. Returns the figure and its axes, in panel order."""
    if cols is None:
        rows, cols = _grid(len(panels), width)
    else:
        rows = int(np.ceil(len(panels) / cols))
    fig = _figure(width, min(row_height * rows + extra, PAGE_HEIGHT_IN), footer)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    sources = []
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        title, caption, source = draw_one(ax, panel, width / cols)
        title_text = _title_panel(ax, title, caption, width / cols)
        which = {"title": panel["title"]}
        if len(panels) > 1:
            _panel_letter(ax, title_text, PANEL_LETTERS[i])
            which = {"panel": PANEL_LETTERS[i], **which}
        which.update({k: panel[k] for k in ("outcome", "score") if k in panel})
        sources.append(source.assign(**which)[[*which, *source.columns]])
    _hide_unused(axes, len(panels))
    attach_source(fig, pd.concat(sources, ignore_index=True) if sources else pd.DataFrame())
    return fig, axes


def _sequence(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` ordered by its values in ``columns``, with a ``number`` 1, 2, ... in that order:
    individual marks in a figure's source data are numbered by value, never in the order of the
    warehouse rows, which follow the subject codes."""
    ordered = frame.sort_values(columns, kind="stable").reset_index(drop=True)
    return ordered.assign(number=np.arange(1, len(ordered) + 1))


@contextmanager
def _seeded_jitter(seed: int = 0):
    """seaborn's strip plot jitters with numpy's global generator: seeded while it draws, so the
    same data give the same picture (and the same bytes), and put back as it was after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextmanager
def _labels_kept(ax):
    """While seaborn draws into ``ax``: the axis labels stay the figure's own. seaborn names an
    unlabelled axis after its data, checking first whether any tick label shows, which lays out
    every tick label: most of the time of a seaborn call on a small cohort. With a placeholder
    label it skips both; the labels are put back as they were."""
    labels = ax.get_xlabel(), ax.get_ylabel()
    ax.set(xlabel="_", ylabel="_")
    try:
        yield
    finally:
        ax.set(xlabel=labels[0], ylabel=labels[1])


# --------------------------------------------------------------------------- figures


@_themed
def slope_plot(
    pairs: pd.DataFrame,
    *,
    title: str,
    ylabel: str,
    pre_label: str,
    post_label: str,
    conf_level: float = 0.95,
    footer: str = "",
    width: float = SINGLE_COLUMN_IN,
) -> plt.Figure:
    """Paired slope plot: one thin line per patient, the mean (with CI) drawn over them.

    ``pairs`` has one row per patient with ``pre_value`` and ``post_value``.
    Patients are not labelled: the figure shows no identifiers. Above
    :data:`INDIVIDUALS_SHOWN` patients the lines are a random sample (the title says so);
    the mean and its CI use every patient.
    """
    fig = _figure(width, 3.0 if width < 5 else 3.4, footer)
    ax = fig.add_subplot()
    pre, post = pairs["pre_value"].to_numpy(float), pairs["post_value"].to_numpy(float)
    # Patients with the same pre and post values share one line, drawn wider: on an
    # ordinal scale (House-Brackmann) lines would otherwise hide one another.
    shown = _shown(pairs)
    shared = shown.groupby(["pre_value", "post_value"]).size().reset_index(name="count")
    # Lines made directly rather than by ax.plot, whose argument handling costs more than the
    # line itself when there are hundreds.
    for a, b, count in shared.itertuples(index=False):
        ax.add_line(
            Line2D(
                [0, 1], [a, b], color="0.55", alpha=0.45, linewidth=0.6 * np.sqrt(count), zorder=1
            )
        )
    means, halves = zip(*(_mean_ci(v, conf_level) for v in (pre, post)))
    labels = [pre_label, post_label]
    with _labels_kept(ax):
        sns.pointplot(
            x=labels,
            y=list(means),
            order=labels,
            errorbar=None,
            color=OKABE_ITO[0],
            markers="o",
            linewidth=2,
            markersize=5,
            markeredgewidth=1,
            zorder=3,
            ax=ax,
        )
    mean_line = ax.get_lines()[-1]
    interval = ax.errorbar(
        [0, 1],
        means,
        yerr=halves,
        fmt="none",
        ecolor=OKABE_ITO[0],
        elinewidth=2,
        capsize=3,
        zorder=3,
    )
    ax.set_xlim(-0.3, 1.3)
    ax.set_xlabel("")
    ax.set_ylabel(_axis_label(ylabel, 0.8 * fig.get_figheight()))
    caption = f"n = {len(pairs):,} patients"
    if len(shown) < len(pairs):
        caption += f"; lines: random {len(shown)}"
    if shared["count"].max() > 1:
        caption += "; wider lines: more patients"
    ax.set_title(_wrap(title, width) + "\n" + _wrap(caption, width), loc="left", fontsize=8)
    ax.legend([(interval, mean_line)], [f"Mean ({conf_level:.0%} CI)"], frameon=False, loc="best")
    # Source data: each line drawn (numbered by value; ``patients`` it stands for) at its two
    # ends, and the two means with their CIs.
    lines = _sequence(shared, ["pre_value", "post_value"])
    ends = len(lines)
    source = pd.DataFrame(
        {
            "mark": ["patient line"] * (2 * ends) + ["mean"] * 2,
            "line": [*np.tile(lines["number"].to_numpy(), 2), pd.NA, pd.NA],
            "time": ["before"] * ends + ["after"] * ends + ["before", "after"],
            "value": [*lines["pre_value"], *lines["post_value"], *means],
            "ci_low": [np.nan] * (2 * ends) + [m - h for m, h in zip(means, halves)],
            "ci_high": [np.nan] * (2 * ends) + [m + h for m, h in zip(means, halves)],
            "patients": [*np.tile(lines["count"].to_numpy(), 2), len(pre), len(post)],
        }
    )
    attach_source(fig, source.astype({"line": "Int64", "patients": "int64"}))
    return fig


def _boxes(ax: plt.Axes, pairs: pd.DataFrame, colours: list[str]) -> list[dict]:
    """The before and after boxes of every patient's value: ``matplotlib.cbook.boxplot_stats``
    (median, quartiles, whiskers to the furthest value within 1.5 IQR) drawn by ``ax.bxp``.

    It stands in for ``sns.boxplot``, which computes the same statistics with the same function
    (``tests/test_figures.py`` checks the boxes equal) but first reshapes a long frame of every
    value by category: 0.3 s a panel at 100,000 patients, three times the whole figure's time
    before seaborn."""
    from matplotlib import cbook

    values = [pairs["pre_value"].to_numpy(float), pairs["post_value"].to_numpy(float)]
    stats = cbook.boxplot_stats([v[~np.isnan(v)] for v in values], whis=1.5)
    drawn = ax.bxp(
        stats,
        positions=[0, 1],
        widths=0.5,
        showfliers=False,
        patch_artist=True,
        boxprops={"edgecolor": "black", "linewidth": 0.8},
        whiskerprops={"color": "black", "linewidth": 0.8},
        capprops={"color": "black", "linewidth": 0.8},
        medianprops={"color": "black", "linewidth": 1.2},
        manage_ticks=False,
    )
    for box, colour in zip(drawn["boxes"], colours):
        box.set_facecolor(colour)
        box.set_alpha(0.35)
    return stats


@_themed
def prepost_box(
    panels: list[dict], *, footer: str = "", width: float = DOUBLE_COLUMN_IN
) -> plt.Figure:
    """Box plots before and after with every patient's value as a point, one panel per outcome.

    ``panels``: dicts with ``title``, ``ylabel`` and ``pairs`` (``pre_value``, ``post_value``).
    Boxes: median and quartiles, whiskers to the furthest value within 1.5 IQR, from every
    patient; above :data:`INDIVIDUALS_SHOWN` patients the points are a random sample.
    """
    labels = [BEFORE, AFTER]

    def long(pairs: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "when": np.repeat(labels, len(pairs)),
                "value": np.concatenate(
                    [pairs["pre_value"].to_numpy(float), pairs["post_value"].to_numpy(float)]
                ),
            }
        )

    def draw_one(ax: plt.Axes, panel: dict, panel_width: float):
        n = len(panel["pairs"])
        stats = _boxes(ax, panel["pairs"], [OKABE_ITO[5], OKABE_ITO[0]])
        shown = _shown(panel["pairs"])
        points = long(shown)
        with _seeded_jitter():
            with _labels_kept(ax):
                sns.stripplot(
                    points,
                    x="when",
                    y="value",
                    order=labels,
                    jitter=0.13,
                    size=np.sqrt(5),
                    color="0.2",
                    alpha=0.6,
                    linewidth=0,
                    zorder=3,
                    ax=ax,
                )
        ax.set_xlim(-0.5, 1.5)
        ax.set_xlabel("")
        ax.set_ylabel(_axis_label(panel["ylabel"], 0.8 * 2.4))
        caption = f"n = {n:,}" + (f"; points: random {len(shown)}" if len(shown) < n else "")
        # Source data: each box's statistics (from every patient) and each point drawn, numbered
        # by value within its box (the points' horizontal jitter is not data).
        boxes = pd.DataFrame(
            [
                {"mark": "box", "time": time, "statistic": name, "value": float(box[key])}
                for time, box in zip(("before", "after"), stats)
                for name, key in (
                    ("whisker_low", "whislo"),
                    ("q1", "q1"),
                    ("median", "med"),
                    ("q3", "q3"),
                    ("whisker_high", "whishi"),
                )
            ]
        )
        dots = pd.concat(
            [
                _sequence(points[points["when"] == label][["value"]], ["value"]).assign(time=time)
                for label, time in zip(labels, ("before", "after"))
            ],
            ignore_index=True,
        )
        dots = dots.assign(mark="point", statistic="value")
        source = pd.concat([boxes, dots], ignore_index=True).astype({"number": "Int64"})
        return (
            panel["title"],
            _wrap(caption, panel_width),
            source[["mark", "time", "statistic", "number", "value"]].assign(patients=n),
        )

    fig, _ = _panel_grid(panels, width, footer, draw_one, row_height=2.4, extra=0.2)
    return fig


DIRECTIONS = tuple(DIRECTION_COLOURS)  # Improved, Unchanged, Worsened
# Modules whose code gives figures their numbers, beside this one: a change to them draws the
# figures again (the render cache's key, :func:`pipeline.render.figure_files._code_key`).
DRAWN_WITH = (
    "pipeline.statistics.ordinal",
    "pipeline.statistics.paired",
    "pipeline.statistics.grouped",
)
# Changes on a grid of one of these steps (grades, points, half points, ...) spanning at most
# CHANGE_STEPS_MAX steps are counted a step a bar, so that no change shares a bar with zero.
CHANGE_STEPS = (1.0, 0.5, 0.25, 0.1)
CHANGE_STEPS_MAX = 40


def _change_bins(diff: np.ndarray) -> np.ndarray:
    """Histogram bin edges for change scores, with one bin centred on zero.

    Changes on a grid (:data:`CHANGE_STEPS`) of at most :data:`CHANGE_STEPS_MAX` steps: one bin a
    step, so that the unchanged patients (zero) have a bar of their own. Otherwise bins of the
    Freedman-Diaconis width (numpy's "fd") placed so that one is centred on zero: small changes
    either way may share its bar with zero, each drawn in its own direction's colour (stacked)."""
    diff = diff[np.isfinite(diff)]
    if not len(diff):
        return np.array([-0.5, 0.5])
    for step in CHANGE_STEPS:
        steps = diff / step
        if np.allclose(steps, np.round(steps), rtol=0, atol=1e-9):
            low, high = np.floor(steps.min()), np.ceil(steps.max())
            if high - low <= CHANGE_STEPS_MAX:
                return (np.arange(low - 0.5, high + 1.5)) * step
            break
    edges = np.histogram_bin_edges(diff, bins="fd" if len(diff) > 3 else 3)
    width = float(edges[1] - edges[0]) if len(edges) > 1 else 0.0
    if not np.isfinite(width) or width <= 0:
        width = 1.0
    first, last = np.floor(diff.min() / width - 0.5), np.ceil(diff.max() / width - 0.5)
    return (np.arange(first, last + 1) + 0.5) * width


def _counts_by_direction(
    pairs: pd.DataFrame, diff: np.ndarray, edges: np.ndarray, higher_is_better: bool
) -> pd.DataFrame:
    """Patients per histogram bin and direction of change: one row per bin and direction with
    ``bin`` (index), ``direction`` and ``patients``.

    Each patient's direction is the one :func:`pipeline.statistics.ordinal.change_direction` (the
    ``change_direction`` analysis) counts them in: it is run once on the patients grouped by the
    sign of their change (falls, none, rises), and each group's patients all land in one of its
    improved, unchanged or worsened counts. So the bars add up to that table's counts."""
    from pipeline.statistics.ordinal import change_direction

    sign = np.sign(diff)
    by_sign = change_direction(
        pd.DataFrame(
            {
                "outcome": "panel",
                "score": "panel",
                "group": sign,
                "pre_value": pairs["pre_value"].to_numpy(float),
                "post_value": pairs["post_value"].to_numpy(float),
            }
        ),
        {"panel": higher_is_better},
    )
    counts = np.zeros((len(DIRECTIONS), len(edges) - 1), dtype="int64")
    for row in by_sign.itertuples():
        found = [row.n_improved, row.n_unchanged, row.n_worsened]
        if row.n_pairs == 0:  # a change without both values (NaN): drawn nowhere
            continue
        if max(found) != row.n_pairs:
            raise ValueError(
                "the change scores given to the figure do not follow the after - before "
                "values of the same pairs; draw it from one query of the pairs table"
            )
        values = diff[sign == row.group]
        counts[found.index(row.n_pairs)] += np.histogram(values, bins=edges)[0]
    return pd.DataFrame(
        {
            "bin": np.tile(np.arange(len(edges) - 1), len(DIRECTIONS)),
            "direction": np.repeat(DIRECTIONS, len(edges) - 1),
            "patients": counts.ravel(),
        }
    )


@_themed
def change_distribution(
    panels: list[dict],
    *,
    conf_level: float = 0.95,
    footer: str = "",
    width: float = DOUBLE_COLUMN_IN,
) -> plt.Figure:
    """Histogram of the change scores (after - before) per outcome, each patient coloured by the
    direction of their own change (stacked where a bar holds more than one), with the mean change
    and its CI above it.

    ``panels``: dicts with ``title``, ``xlabel``, ``pairs`` (``pre_value``, ``post_value``),
    ``diff`` (their change, row for row) and ``higher_is_better``. Directions as the
    ``change_direction`` analysis counts them (:func:`_counts_by_direction`); bins from
    :func:`_change_bins`.
    """

    def draw_one(ax: plt.Axes, panel: dict, panel_width: float):
        diff = np.asarray(panel["diff"], float)
        edges = _change_bins(diff)
        counts = _counts_by_direction(panel["pairs"], diff, edges, panel["higher_is_better"])
        centres = (edges[:-1] + edges[1:]) / 2
        with _labels_kept(ax):
            # The counts once, here; seaborn stacks them as given (one weighted value per bin and
            # direction). bins as a list: seaborn 0.13 compares an array of bins with "auto"
            # when given weights.
            sns.histplot(
                x=centres[counts["bin"]],
                weights=counts["patients"].to_numpy(),
                hue=counts["direction"].to_numpy(),
                hue_order=DIRECTIONS,
                palette=DIRECTION_COLOURS,
                multiple="stack",
                bins=list(edges),
                shrink=0.9,
                alpha=1,
                linewidth=0,
                legend=False,
                ax=ax,
            )
        # seaborn draws every bin once per direction, most of them empty: those are removed, as
        # each would cost its drawing in every file. The light grey of the unchanged patients is
        # edged, to stand out from the page.
        unchanged = mcolors.to_rgba(UNCHANGED)
        for bar in list(ax.patches):
            if bar.get_height() <= 0:
                bar.remove()
            elif mcolors.same_color(bar.get_facecolor(), unchanged):
                bar.set_edgecolor("0.3")
                bar.set_linewidth(0.5)
        ax.axvline(0, color="0.3", linewidth=0.6, linestyle=(0, (3, 2)))
        # The estimate of the outcome's test, as Table 2 shows it; without one, the mean.
        change = panel.get("change") or _mean_change(diff, conf_level)
        estimate, low, high = change["estimate"], change["low"], change["high"]
        top = counts.groupby("bin")["patients"].sum().max() * 1.12 + 0.5
        ax.errorbar(
            [estimate],
            [top],
            xerr=_error_lengths([estimate], [low], [high]),
            fmt="o",
            color="black",
            markersize=3.5,
            capsize=2.5,
            linewidth=1,
        )
        ax.set_ylim(0, top * 1.12)
        ax.set_xlabel(_wrap(panel["xlabel"], panel_width * 0.9))
        ax.set_ylabel("Patients, No.")
        source = pd.concat(
            [
                counts.assign(
                    mark="bar",
                    bin_low=edges[counts["bin"]],
                    bin_high=edges[counts["bin"] + 1],
                ),
                pd.DataFrame(
                    {
                        "mark": [f"{change['kind']} change"],
                        "value": [estimate],
                        "ci_low": [low],
                        "ci_high": [high],
                        "patients": [len(diff)],
                    }
                ),
            ],
            ignore_index=True,
        )
        columns = ["mark", "bin_low", "bin_high", "direction", "patients", "value"]
        return panel["title"], f"n = {len(diff)}", source[[*columns, "ci_low", "ci_high"]]

    fig, _ = _panel_grid(panels, width, footer, draw_one, row_height=2.3, extra=0.3)
    handles = [
        Rectangle(
            (0, 0),
            1,
            1,
            facecolor=DIRECTION_COLOURS[d],
            edgecolor="0.3" if d == "Unchanged" else "none",
            linewidth=0.5,
        )
        for d in DIRECTIONS
    ]
    handles.append(Line2D([], [], marker="o", color="black", markersize=3.5, linewidth=1))
    fig.legend(
        handles,
        [
            *DIRECTIONS,
            _estimate_legend(
                ((p.get("change") or {"kind": "mean"})["kind"] for p in panels), conf_level
            ),
        ],
        loc="outside upper center",
        ncols=4 if width > 5 else 2,
        frameon=False,
    )
    return fig


@_themed
def grade_shift(
    panels: list[dict], *, footer: str = "", width: float = DOUBLE_COLUMN_IN
) -> plt.Figure:
    """House-Brackmann grade distribution before and after, as 100% stacked bars.

    ``panels``: dicts with ``title`` and ``pairs`` (``pre_value``, ``post_value`` as grades 1-6);
    only patients with both grades are counted, so the two bars hold the same patients.
    """

    def draw_one(ax: plt.Axes, panel: dict, panel_width: float):
        n = len(panel["pairs"])
        shares = []
        for y, column in ((1, "pre_value"), (0, "post_value")):
            counts = panel["pairs"][column].round().astype(int).value_counts()
            shares += [
                {
                    "y": y,
                    "grade": grade,
                    "patients": counts.get(grade, 0),
                    "share": 100 * counts.get(grade, 0) / n if n else 0,
                }
                for grade in range(1, 7)
            ]
        shares = pd.DataFrame(shares)
        # Percentages computed here, stacked by seaborn as given; it stacks the last grade of the
        # order first, hence VI to I for grade I on the left.
        with _labels_kept(ax):
            sns.histplot(
                shares,
                y="y",
                weights="share",
                hue="grade",
                hue_order=range(6, 0, -1),
                palette=dict(zip(range(1, 7), GRADE_COLOURS)),
                multiple="stack",
                discrete=True,
                shrink=0.7,
                alpha=1,
                edgecolor="white",
                linewidth=0.4,
                legend=False,
                ax=ax,
            )
        for y, bar in shares.groupby("y", sort=False):
            left = bar["share"].cumsum() - bar["share"]
            for grade, share, start in zip(bar["grade"], bar["share"], left):
                if share >= 9:
                    ax.text(
                        start + share / 2,
                        y,
                        f"{share:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if grade >= 4 else "black",
                    )
        ax.set_yticks([1, 0], [BEFORE, AFTER])
        ax.set_xlim(0, 100)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        source = shares.assign(
            time=np.where(shares["y"] == 1, "before", "after"),
            grade=[ROMAN[g - 1] for g in shares["grade"]],
        ).rename(columns={"share": "percent"})
        return f"{panel['title']} (n = {n})", "", source[["time", "grade", "patients", "percent"]]

    fig, axes = _panel_grid(panels, width, footer, draw_one, row_height=0.9, extra=0.75, cols=1)
    axes[-1].set_xlabel("Patients, %")
    for ax in axes[:-1]:
        ax.set_xticklabels([])
    handles = [
        Rectangle((0, 0), 1, 1, facecolor=c, edgecolor="white", linewidth=0.4)
        for c in GRADE_COLOURS
    ]
    fig.legend(
        handles,
        ROMAN,
        loc="outside upper center",
        ncols=6,
        frameon=False,
        handlelength=1,
        columnspacing=1.2,
        title="House-Brackmann grade (I normal, VI total paralysis)",
        title_fontsize=7,
    )
    return fig


@_themed
def bland_altman(
    panels: list[dict], *, footer: str = "", width: float = SINGLE_COLUMN_IN
) -> plt.Figure:
    """Agreement between two raters (Bland JM, Altman DG. Lancet 1986;1(8476):307-310).

    ``panels``: dicts with ``title``, ``a``, ``b`` (the two raters' values at the same
    visits), ``a_label``, ``b_label``. The x axis is the mean of the two ratings, the y
    axis their difference a - b; lines: mean difference (bias) and the 95% limits of
    agreement, bias ± 1.96 SD of the differences. Identical points are drawn as one,
    larger marker (ordinal grades overlap otherwise); above :data:`INDIVIDUALS_SHOWN` distinct
    points, a random sample of them is drawn, the lines still from every rating.
    """

    def draw_one(ax: plt.Axes, panel: dict, panel_width: float):
        a, b = np.asarray(panel["a"], float), np.asarray(panel["b"], float)
        mean, diff = (a + b) / 2, a - b
        distinct = (
            pd.DataFrame({"m": mean, "d": diff}).value_counts(sort=False).reset_index(name="count")
        )
        points = _shown(distinct)
        with _labels_kept(ax):
            sns.scatterplot(
                x=points["m"].to_numpy(),
                y=points["d"].to_numpy(),
                s=6 * np.sqrt(points["count"].to_numpy()) ** 2 / 2 + 4,
                color=OKABE_ITO[0],
                alpha=0.55,
                linewidth=0,
                legend=False,
                ax=ax,
            )
        bias, sd = float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
        lines = (
            ("bias", bias, "-", f"Bias {bias:.2f}"),
            ("upper limit", bias + 1.96 * sd, "--", f"+1.96 SD {bias + 1.96 * sd:.2f}"),
            ("lower limit", bias - 1.96 * sd, "--", f"-1.96 SD {bias - 1.96 * sd:.2f}"),
        )
        for _, value, style, text in lines:
            ax.axhline(
                value, color=OKABE_ITO[1] if style == "-" else "0.3", linestyle=style, linewidth=0.8
            )
            ax.text(
                1.0,
                value,
                " " + text,
                transform=ax.get_yaxis_transform(),
                fontsize=6,
                va="center",
                ha="left",
                clip_on=False,
            )
        ax.set_xlabel(f"Mean of {panel['a_label']} and {panel['b_label']}")
        ax.set_ylabel(f"{panel['a_label']} - {panel['b_label']}".capitalize())
        caption = f"{len(diff):,} paired ratings"
        if len(points) < len(distinct):
            caption += f"; points: random {len(points)} of {len(distinct):,} distinct"
        # Source data: each point drawn (numbered by value; ``ratings`` it stands for) and the
        # three lines.
        dots = _sequence(points, ["m", "d"])
        source = pd.concat(
            [
                pd.DataFrame(
                    {
                        "mark": "point",
                        "number": dots["number"],
                        "mean": dots["m"],
                        "difference": dots["d"],
                        "ratings": dots["count"],
                    }
                ),
                pd.DataFrame(
                    {
                        "mark": [name for name, *_ in lines],
                        "difference": [value for _, value, *_ in lines],
                        "ratings": len(diff),
                    }
                ),
            ],
            ignore_index=True,
        ).astype({"number": "Int64", "ratings": "int64"})
        return panel["title"], _wrap(caption, panel_width), source

    fig, _ = _panel_grid(panels, width, footer, draw_one, row_height=2.5, extra=0.1)
    return fig


@_themed
def trajectory(
    panels: list[dict],
    *,
    conf_level: float = 0.95,
    xlabel: str = "Months after surgery",
    footer: str = "",
    width: float = DOUBLE_COLUMN_IN,
) -> plt.Figure:
    """Model-estimated mean per visit with its CI, one panel per outcome, each visit at its
    time after surgery.

    ``panels``: dicts with ``title``, ``ylabel`` and ``estimates`` (``visit``, ``x`` its time in
    the unit of ``xlabel``, ``estimate``, ``ci_low``, ``ci_high``) from the tidy model table.
    """

    def draw_one(ax: plt.Axes, panel: dict, panel_width: float):
        e = panel["estimates"].sort_values("x", kind="stable")
        ax.fill_between(
            e["x"], e["ci_low"], e["ci_high"], color=OKABE_ITO[0], alpha=0.18, linewidth=0
        )
        # The model's estimates as given: one value per visit, no estimator.
        with _labels_kept(ax):
            sns.lineplot(
                x=e["x"].to_numpy(),
                y=e["estimate"].to_numpy(),
                estimator=None,
                errorbar=None,
                sort=False,
                marker="o",
                markersize=3.5,
                markeredgewidth=1,
                markeredgecolor=OKABE_ITO[0],
                color=OKABE_ITO[0],
                ax=ax,
            )
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(_axis_label(panel["ylabel"], 0.8 * 2.3))
        kept = [c for c in ("visit", "median_day") if c in e]
        source = e[[*kept, "x", "estimate", "ci_low", "ci_high"]].rename(
            columns={"x": xlabel.split(" ")[0].lower()}
        )
        return panel["title"], f"model mean ({conf_level:.0%} CI)", source

    fig, _ = _panel_grid(panels, width, footer, draw_one, row_height=2.3, extra=0.1)
    return fig


@_themed
def forest(
    rows_frame: pd.DataFrame, *, xlabel: str, footer: str = "", width: float = DOUBLE_COLUMN_IN
) -> plt.Figure:
    """Subgroup forest plot: the change estimate with its CI per subgroup level.

    ``rows_frame``: ``label`` (row text), ``estimate``, ``ci_low``, ``ci_high``, ``n``,
    in display order; ``header`` (bool, optional) marks section rows without an estimate.
    """
    n = len(rows_frame)
    # Row labels take at most 0.6 of the width, the axis the rest: its label is wrapped to it.
    # The count stays on one line (no-break spaces).
    labels = [
        _wrap(
            f"{r.label} (n\u00a0=\u00a0{int(r.n)})" if pd.notna(r.n) else str(r.label),
            width * 0.6,
            17,
        )
        for r in rows_frame.itertuples()
    ]
    xlabel = _wrap(xlabel, width * 0.4, 15)
    # At least room for the axis, its wrapped label (0.14 in a line) and the footer: a level or
    # two alone would leave the axes no height at single-column width. A row is 0.22 in, and
    # 0.12 in more for each further line of the longest row label.
    lines = xlabel.count("\n") + 1
    row = 0.22 + 0.12 * max(label.count("\n") for label in labels) if n else 0.22
    fig = _figure(width, max(row * n + 0.66 + 0.14 * lines, 1.66 + 0.14 * lines), footer)
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    data = rows_frame.assign(y=y)
    est = data[data["estimate"].notna()]
    # Arrays, not Series: a level of one pair has no CI (NaN), and matplotlib would call float()
    # on a Series to find the first finite error.
    estimate, low, high = (est[c].to_numpy(float) for c in ("estimate", "ci_low", "ci_high"))
    ax.errorbar(
        estimate,
        est["y"].to_numpy(float),
        xerr=_error_lengths(estimate, low, high),
        fmt="s",
        color=OKABE_ITO[0],
        markersize=3.5,
        capsize=0,
        linewidth=1,
    )
    ax.axvline(0, color="0.3", linewidth=0.6, linestyle=(0, (3, 2)))
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(xlabel)
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    attach_source(
        fig,
        rows_frame.reindex(columns=["label", "estimate", "ci_low", "ci_high", "n"]).rename(
            columns={"label": "row"}
        ),
    )
    return fig


def _month_step(months: float) -> int:
    """Months between the ticks of a time axis running to ``months``: 6 up to 3 years, 12 up to
    6, then 24 (at most about 7 ticks, whose numbers at risk fit a single column)."""
    return 6 if months <= 36 else 12 if months <= 72 else 24


@_themed
def kaplan_meier_plot(
    curves: list[dict],
    *,
    title: str,
    ylabel: str,
    legend_title: str = "",
    p_text: str = "",
    conf_level: float = 0.95,
    footer: str = "",
    width: float = DOUBLE_COLUMN_IN,
) -> plt.Figure:
    """Kaplan-Meier curves with their confidence bands, censoring ticks and the numbers at risk
    under the time axis, aligned with its ticks.

    ``curves``: dicts with ``label`` and ``curve``, a :func:`pipeline.statistics.survival.
    kaplan_meier` frame (``time`` in days, ``n_risk``, ``n_event``, ``n_censor``, ``survival``,
    ``lower``, ``upper``). ``p_text``: the log-rank test as the panel shows it ('' for one
    curve). Steps and bands are drawn with matplotlib (``step``, ``fill_between``): seaborn
    draws no step function from given values with a band of given limits.
    """
    from pipeline.statistics.survival import event_free_at

    months = max(float(c["curve"]["time"].max()) for c in curves) / DAYS_PER_MONTH
    step = _month_step(months)
    ticks = np.arange(0, np.ceil(months / step) * step + step / 2, step)
    rows = len(curves)
    risk_height = 0.3 + 0.16 * rows
    fig = _figure(width, 2.5 + risk_height + FOOTER_IN, footer)
    ax, risk = fig.subplots(2, 1, gridspec_kw={"height_ratios": [2.5, risk_height]}, sharex=False)
    sources = []
    for i, c in enumerate(curves):
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        # Beyond the three colours, the line style tells curves apart too.
        style = CURVE_STYLES[i % len(CURVE_STYLES)] if rows > len(CURVE_COLOURS) else "-"
        curve = c["curve"]
        # The curve starts at 100% at surgery and steps after each event time.
        x = np.concatenate([[0.0], curve["time"].to_numpy(float)]) / DAYS_PER_MONTH
        y = 100 * np.concatenate([[1.0], curve["survival"].to_numpy(float)])
        low = 100 * np.concatenate([[1.0], curve["lower"].to_numpy(float)])
        high = 100 * np.concatenate([[1.0], curve["upper"].to_numpy(float)])
        ax.fill_between(x, low, high, step="post", color=colour, alpha=0.15, linewidth=0)
        ax.step(x, y, where="post", color=colour, linestyle=style, label=c["label"])
        censored = curve[curve["n_censor"] > 0]
        ax.plot(
            censored["time"].to_numpy(float) / DAYS_PER_MONTH,
            100 * censored["survival"].to_numpy(float),
            linestyle="none",
            marker="|",
            markersize=4,
            markeredgewidth=0.8,
            color=colour,
        )
        at_risk = event_free_at(curve, ticks * DAYS_PER_MONTH)["n_risk"].to_numpy(int)
        for x_tick, n in zip(ticks, at_risk):
            risk.text(x_tick, rows - 1 - i, str(n), ha="center", va="center", fontsize=7)
        sources.append(
            curve.assign(curve=c["label"], part="curve", month=curve["time"] / DAYS_PER_MONTH)
        )
        sources.append(
            pd.DataFrame(
                {
                    "curve": c["label"],
                    "part": "number at risk",
                    "time": ticks * DAYS_PER_MONTH,
                    "month": ticks,
                    "n_risk": at_risk,
                }
            )
        )
    for axis in (ax, risk):
        axis.set_xlim(-step / 6, ticks[-1] + step / 6)
        axis.set_xticks(ticks)
    ax.xaxis.set_major_formatter(lambda value, _: f"{value:g}")
    ax.set_ylim(0, 102)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.set_xlabel("Months after surgery")
    ax.set_ylabel(_axis_label(ylabel, 2.0))
    _title_panel(ax, title, f"Kaplan-Meier estimate, {conf_level:.0%} CI shaded", width)
    if rows > 1:
        # The log-rank P is the legend's last line, so the legend and the P are placed together
        # where the curves leave room ("best": fewest marks covered).
        handles, labels = ax.get_legend_handles_labels()
        if p_text:
            handles.append(Line2D([], [], linestyle="none"))
            labels.append(p_text)
        ax.legend(
            handles,
            labels,
            title=legend_title or None,
            loc="best",
            frameon=False,
            handlelength=2.2,
            alignment="left",
        )
    # The table: one row per curve, its label at the left in the curve's colour.
    risk.set_yticks(
        range(rows), [_wrap(c["label"], width * 0.25, 15) for c in curves][::-1], fontsize=7
    )
    for i, label in enumerate(risk.get_yticklabels()[::-1]):
        label.set_color(CURVE_COLOURS[i % len(CURVE_COLOURS)])
    risk.tick_params(axis="both", length=0, labelbottom=False)
    for side in ("top", "right", "bottom", "left"):
        risk.spines[side].set_visible(False)
    # Its heading is a text over the first row, not a title: the table is no panel of its own.
    risk.set_ylim(-0.5, rows + 0.3)
    risk.text(
        0,
        rows + 0.1,
        "No. at risk",
        transform=risk.get_yaxis_transform(),
        ha="left",
        va="center",
        fontsize=7,
    )
    attach_source(fig, pd.concat(sources, ignore_index=True))
    return fig
