"""Publication figures: what each figure shows, drawn with seaborn under one theme.

Every figure is drawn at a journal column width (single 3.5 in, double 7 in) with fonts at
print size (7-8 pt), colour-blind-safe colours and one theme
(:data:`pipeline.render.figure_theme.THEME`, put in force by :func:`_themed` around every
figure function). Figures show groups and distributions only: no subject is ever labelled.
Writing the files (PNG, TIFF, PDF, SVG with the same bytes for the same inputs), the render
cache and the parallel drawing are in :mod:`pipeline.render.figure_files`; :func:`study_figures`
lists a study's figures as :class:`FigureSpec` for it to export.

seaborn draws the marks it draws the same way from the values given: strip plots
(:func:`prepost_box`), point estimates (:func:`slope_plot`), lines (:func:`trajectory`),
histograms and 100% stacked bars (:func:`change_distribution`, :func:`grade_shift`, both through
``sns.histplot``) and the scatter of :func:`bland_altman`. It estimates nothing: means, counts
and percentages are computed here (or by the pipeline) and given to it with ``errorbar=None``,
as ``weights`` of one value per bar, or with ``estimator=None``. matplotlib draws what seaborn
cannot take as given, or not at registry size:

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

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

# The t quantile from scipy.special, what scipy.stats.t.ppf computes.
from scipy.special import stdtrit

from pipeline.render.figure_files import (  # noqa: F401  (public names of the figures)
    DEFAULT_FORMATS,
    DOUBLE_COLUMN_IN,
    SINGLE_COLUMN_IN,
    WIDTHS,
    Drawing,
    FigureSpec,
    drawing,
    export,
    save,
    width_folder,
)
from pipeline.render.figure_theme import THEME
from pipeline.render.flow_diagram import patient_flow, study_flow  # noqa: F401

# Okabe-Ito palette: distinguishable with every common colour-vision deficiency.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
IMPROVED, WORSENED, UNCHANGED = OKABE_ITO[0], OKABE_ITO[1], "0.65"
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


def _shown(frame: pd.DataFrame, limit: int = INDIVIDUALS_SHOWN) -> pd.DataFrame:
    """At most ``limit`` rows of ``frame``, a seeded random sample in the original order."""
    if len(frame) <= limit:
        return frame
    keep = np.sort(np.random.default_rng(0).choice(len(frame), size=limit, replace=False))
    return frame.iloc[keep]


# --------------------------------------------------------------------------- helpers


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


def _grid(n: int, width: float) -> tuple[int, int]:
    """Panels per row: two at single-column width, up to three at double."""
    cols = min(n, 2 if width < 5 else 3)
    return int(np.ceil(n / cols)), cols


def _wrap(text: str, width: float, per_inch: int = 11) -> str:
    return textwrap.fill(text, max(12, int(width * per_inch)))


def _title_panel(ax: plt.Axes, title: str, caption: str, width: float) -> None:
    """A panel's title wrapped to the panel's ``width`` (inches), its caption on the line below."""
    ax.set_title(_wrap(title, width) + "\n" + caption, loc="left")


def _hide_unused(axes, used: int) -> None:
    """Blank the grid's panels after the first ``used`` (an odd number of outcomes, two columns)."""
    for ax in axes[used:]:
        ax.set_axis_off()


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
    ax.set_ylabel(ylabel)
    caption = f"n = {len(pairs):,} patients"
    if len(shown) < len(pairs):
        caption += f"; lines: random {len(shown)}"
    if shared["count"].max() > 1:
        caption += "; wider lines: more patients"
    ax.set_title(_wrap(title, width) + "\n" + _wrap(caption, width), loc="left", fontsize=8)
    ax.legend([(interval, mean_line)], [f"Mean ({conf_level:.0%} CI)"], frameon=False, loc="best")
    return fig


def _boxes(ax: plt.Axes, pairs: pd.DataFrame, colours: list[str]) -> None:
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


@_themed
def prepost_box(
    panels: list[dict],
    *,
    pre_label: str,
    post_label: str,
    footer: str = "",
    width: float = DOUBLE_COLUMN_IN,
) -> plt.Figure:
    """Box plots before and after with every patient's value as a point, one panel per outcome.

    ``panels``: dicts with ``title``, ``ylabel`` and ``pairs`` (``pre_value``, ``post_value``).
    Boxes: median and quartiles, whiskers to the furthest value within 1.5 IQR, from every
    patient; above :data:`INDIVIDUALS_SHOWN` patients the points are a random sample.
    """
    rows, cols = _grid(len(panels), width)
    fig = _figure(width, 2.4 * rows + 0.2, footer)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    labels = [pre_label, post_label]

    def long(pairs: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "when": np.repeat(labels, len(pairs)),
                "value": np.concatenate(
                    [pairs["pre_value"].to_numpy(float), pairs["post_value"].to_numpy(float)]
                ),
            }
        )

    for ax, panel in zip(axes, panels):
        n = len(panel["pairs"])
        _boxes(ax, panel["pairs"], [OKABE_ITO[5], OKABE_ITO[0]])
        shown = _shown(panel["pairs"])
        with _seeded_jitter():
            with _labels_kept(ax):
                sns.stripplot(
                    long(shown),
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
        ax.set_ylabel(panel["ylabel"])
        caption = f"n = {n:,}" + (f"; points: random {len(shown)}" if len(shown) < n else "")
        _title_panel(ax, panel["title"], _wrap(caption, width / cols), width / cols)
    _hide_unused(axes, len(panels))
    return fig


@_themed
def change_distribution(
    panels: list[dict],
    *,
    conf_level: float = 0.95,
    footer: str = "",
    width: float = DOUBLE_COLUMN_IN,
) -> plt.Figure:
    """Histogram of the change scores (after - before) per outcome, coloured by direction,
    with the mean change and its CI above it.

    ``panels``: dicts with ``title``, ``xlabel``, ``diff`` (array) and ``higher_is_better``.
    A bar's colour is the direction of its bin's centre.
    """
    rows, cols = _grid(len(panels), width)
    fig = _figure(width, 2.3 * rows + 0.3, footer)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels):
        diff = np.asarray(panel["diff"], float)
        integer = np.all(diff == np.round(diff))
        low, high = np.floor(diff.min()), np.ceil(diff.max())
        if integer and high - low <= 30:
            edges = np.arange(low - 0.5, high + 1.5)
        else:
            edges = np.histogram_bin_edges(diff, bins="fd" if len(diff) > 3 else 3)
        # The counts once, here; seaborn draws them as given (one weighted value per bin).
        counts, edges = np.histogram(diff, bins=edges)
        centres = (edges[:-1] + edges[1:]) / 2
        sign = 1 if panel["higher_is_better"] else -1
        with _labels_kept(ax):
            # bins as a list: seaborn 0.13 compares an array of bins with "auto" when given weights.
            sns.histplot(
                x=centres, weights=counts, bins=list(edges), shrink=0.9, alpha=1, linewidth=0, ax=ax
            )
        # Each bar coloured by the direction of its bin's centre (seaborn's hue would draw every
        # bin once per direction, most of them empty).
        for bar, centre in zip(ax.patches, centres):
            bar.set_facecolor(
                IMPROVED if sign * centre > 0 else WORSENED if sign * centre < 0 else UNCHANGED
            )
        ax.axvline(0, color="0.3", linewidth=0.6, linestyle=(0, (3, 2)))
        mean, half = _mean_ci(diff, conf_level)
        top = counts.max() * 1.12 + 0.5
        ax.errorbar(
            [mean],
            [top],
            xerr=[half],
            fmt="o",
            color="black",
            markersize=3.5,
            capsize=2.5,
            linewidth=1,
        )
        ax.set_ylim(0, top * 1.12)
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel("Patients, No.")
        _title_panel(ax, panel["title"], f"n = {len(diff)}", width / cols)
    _hide_unused(axes, len(panels))
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in (IMPROVED, UNCHANGED, WORSENED)]
    handles.append(Line2D([], [], marker="o", color="black", markersize=3.5, linewidth=1))
    fig.legend(
        handles,
        ["Improved", "Unchanged", "Worsened", f"Mean change ({conf_level:.0%} CI)"],
        loc="outside upper center",
        ncols=4 if width > 5 else 2,
        frameon=False,
    )
    return fig


@_themed
def grade_shift(
    panels: list[dict],
    *,
    pre_label: str,
    post_label: str,
    footer: str = "",
    width: float = DOUBLE_COLUMN_IN,
) -> plt.Figure:
    """House-Brackmann grade distribution before and after, as 100% stacked bars.

    ``panels``: dicts with ``title`` and ``pairs`` (``pre_value``, ``post_value`` as grades 1-6);
    only patients with both grades are counted, so the two bars hold the same patients.
    """
    rows = len(panels)
    fig = _figure(width, 0.9 * rows + 0.75, footer)
    axes = np.atleast_1d(fig.subplots(rows, 1, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels):
        n = len(panel["pairs"])
        shares = []
        for y, column in ((1, "pre_value"), (0, "post_value")):
            counts = panel["pairs"][column].round().astype(int).value_counts()
            shares += [
                {"y": y, "grade": grade, "share": 100 * counts.get(grade, 0) / n if n else 0}
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
        ax.set_yticks([1, 0], [pre_label, post_label])
        ax.set_xlim(0, 100)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_title(f"{panel['title']} (n = {n})", loc="left")
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
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
    rows, cols = _grid(len(panels), width)
    fig = _figure(width, 2.5 * rows + 0.1, footer)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels):
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
        for value, style, text in (
            (bias, "-", f"Bias {bias:.2f}"),
            (bias + 1.96 * sd, "--", f"+1.96 SD {bias + 1.96 * sd:.2f}"),
            (bias - 1.96 * sd, "--", f"-1.96 SD {bias - 1.96 * sd:.2f}"),
        ):
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
        _title_panel(ax, panel["title"], _wrap(caption, width / cols), width / cols)
    _hide_unused(axes, len(panels))
    return fig


@_themed
def trajectory(
    panels: list[dict],
    *,
    conf_level: float = 0.95,
    footer: str = "",
    width: float = DOUBLE_COLUMN_IN,
) -> plt.Figure:
    """Model-estimated mean per visit with its CI, one panel per outcome.

    ``panels``: dicts with ``title``, ``ylabel`` and ``estimates`` (``x`` position,
    ``tick`` label, ``estimate``, ``ci_low``, ``ci_high``) from the tidy model table.
    """
    rows, cols = _grid(len(panels), width)
    fig = _figure(width, 2.3 * rows + 0.1, footer)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels):
        e = panel["estimates"].sort_values("x")
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
        ax.set_xticks(e["x"], e["tick"])
        ax.set_ylabel(panel["ylabel"])
        _title_panel(ax, panel["title"], f"model mean ({conf_level:.0%} CI)", width / cols)
    _hide_unused(axes, len(panels))
    return fig


@_themed
def forest(
    rows_frame: pd.DataFrame, *, xlabel: str, footer: str = "", width: float = DOUBLE_COLUMN_IN
) -> plt.Figure:
    """Subgroup forest plot: mean change with CI per subgroup level.

    ``rows_frame``: ``label`` (row text), ``estimate``, ``ci_low``, ``ci_high``, ``n``,
    in display order; ``header`` (bool, optional) marks section rows without an estimate.
    """
    n = len(rows_frame)
    # At least room for the axis, its wrapped label and the footer: a level or two alone
    # would leave the axes no height at single-column width.
    fig = _figure(width, max(0.22 * n + 0.8, 1.8), footer)
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
        xerr=np.vstack([estimate - low, high - estimate]),
        fmt="s",
        color=OKABE_ITO[0],
        markersize=3.5,
        capsize=0,
        linewidth=1,
    )
    ax.axvline(0, color="0.3", linewidth=0.6, linestyle=(0, (3, 2)))
    labels = [
        (f"{r.label} (n = {int(r.n)})" if pd.notna(r.n) else str(r.label))
        for r in data.itertuples()
    ]
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(_wrap(xlabel, width * 0.6))
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    return fig


# --------------------------------------------------------------------------- a study's figures

# Tidy tables of the secondary analyses that, when present in the warehouse, add a figure.
# Columns used (others are ignored):
#   <study>.visit_estimates         outcome, score, visit, median_day, estimate, ci_low, ci_high
#   <study>.paired_tests_subgroups  outcome, score, group, n_pairs, mean_diff, ci_low, ci_high
VISIT_ESTIMATES, SUBGROUPS = "visit_estimates", "paired_tests_subgroups"


def _table(con, study_name: str, table: str, needs: tuple[str, ...]) -> pd.DataFrame | None:
    """A tidy table of the study if it exists and has the columns needed; otherwise None."""
    from pipeline.warehouse import read_frame, scalar

    exists = scalar(
        con,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [study_name, table],
    )
    if not exists:
        return None
    frame = read_frame(con, f"SELECT * FROM {study_name}.{table}")
    if frame.empty or any(not any(c in frame for c in need.split("|")) for need in needs):
        return None
    return frame


def _first(frame: pd.DataFrame, names: str) -> pd.Series:
    return frame[next(c for c in names.split("|") if c in frame)]


def study_figures(con, study) -> list[FigureSpec]:
    """Every figure the warehouse has data for, in report order.

    Always (when the data exist): paired slope plot per outcome, before/after box plots,
    change-score distributions, House-Brackmann grade shift, patient flow, and rater
    agreement for instruments rated by two raters. Only when the tidy tables exist:
    trajectory over visits (``visit_estimates``) and the subgroup forest plot
    (``subgroups``).
    """
    from pipeline.pairing import outcomes_frame
    from pipeline.render import tables
    from pipeline.render.labels import rater_label
    from pipeline.warehouse import read_frame

    s, plan = study.name, study.analysis
    footer = tables.SYNTHETIC_NOTE if study.synthetic else ""
    planned = outcomes_frame(study)
    pre_label, post_label = "Before surgery", f"Last follow-up\n(day ≥ {plan.post_min_day})"
    specs: list[FigureSpec] = []
    panels = []
    # Figures show each instrument's headline score per rater (the first the plan lists,
    # e.g. the eFACE total): a figure per sub-score would bury them (sub-scores are in Table 2).
    headline = set(planned.drop_duplicates(["instrument", "rater"]).index)
    for row in planned.itertuples():
        if row.Index not in headline:
            continue
        # The pairs of the headline scores only, in table order, picked by DuckDB: a registry has
        # millions of pairs over every score, and selecting them by name in pandas takes seconds.
        subset = read_frame(
            con,
            f"SELECT pre_value, post_value, diff FROM {s}.pairs WHERE outcome = ? AND score = ?",
            [row.outcome, row.score],
        )
        if subset.empty:
            continue
        score = study.instrument(row.instrument).score(
            row.score, getattr(row, "version", "") or None
        )
        direction = "higher is better" if score.higher_is_better else "lower is better"
        panels.append(
            {
                "outcome": row.outcome,
                "score": row.score,
                "instrument": row.instrument,
                "rater": row.rater,
                "title": row.label,
                "pairs": subset,
                "ylabel": f"{score.label} ({direction})",
                "xlabel": f"Change in {score.label.lower()}",
                "diff": subset["diff"].to_numpy(float),
                "higher_is_better": score.higher_is_better,
            }
        )

    for p in panels:
        specs.append(
            FigureSpec(
                f"slope_{p['outcome']}_{p['score']}",
                f"{p['title']} before and after surgery: one line per patient, mean with "
                f"{plan.conf_level:.0%} CI.",
                drawing(
                    slope_plot,
                    p["pairs"],
                    title=p["title"],
                    ylabel=p["ylabel"],
                    pre_label=pre_label,
                    post_label=post_label,
                    conf_level=plan.conf_level,
                    footer=footer,
                ),
                # A two-time-point plot is a single-column figure; export-figures draws it wider on
                # demand.
                widths=("single",),
            )
        )
    if panels:
        specs.append(
            FigureSpec(
                "prepost_box",
                "Outcomes before and after surgery: box plots (median, quartiles, whiskers to "
                "1.5 IQR) with every patient's value.",
                drawing(prepost_box, panels, pre_label="Before", post_label="After", footer=footer),
            )
        )
        specs.append(
            FigureSpec(
                "change_distribution",
                f"Distribution of the change (after - before) per outcome, coloured "
                f"by direction, with the mean change and its {plan.conf_level:.0%} CI.",
                drawing(change_distribution, panels, conf_level=plan.conf_level, footer=footer),
            )
        )
    hb = [p for p in panels if p["instrument"] == "house_brackmann"]
    if hb:
        hb_panels = [
            {
                "title": p["title"].replace("House-Brackmann grade ", "").strip("()").capitalize()
                if p["rater"]
                else p["title"],
                "pairs": p["pairs"],
            }
            for p in hb
        ]
        specs.append(
            FigureSpec(
                "grade_shift_house_brackmann",
                "House-Brackmann grade before and after surgery, patients with both grades.",
                drawing(
                    grade_shift, hb_panels, pre_label="Before", post_label="After", footer=footer
                ),
            )
        )
    flow = study_flow(con, study, footer=footer)
    if flow is not None:
        specs.append(flow)

    # Rater agreement: instruments scored by two raters at the same visits.
    two_raters = planned[planned["rater"] != ""].groupby(["instrument", "score"])["rater"].unique()
    agreement = []
    for (instrument, score_name), raters in two_raters.items():
        if len(raters) < 2:
            continue
        a_rater, b_rater = raters[0], raters[1]
        both = read_frame(
            con,
            f"""
            SELECT a.value AS a, b.value AS b
            FROM {s}.scores a JOIN {s}.scores b USING (subject, visit, instrument, score)
            WHERE a.instrument = ? AND a.score = ? AND a.rater = ? AND b.rater = ?
              AND a.value IS NOT NULL AND b.value IS NOT NULL ORDER BY subject, visit
        """,
            [instrument, score_name, a_rater, b_rater],
        )
        if len(both) > 2:
            measure = study.instrument(instrument)
            label = measure.score(
                score_name,
                planned.loc[planned["instrument"] == instrument, "version"].iloc[0] or None
                if "version" in planned
                else None,
            )
            agreement.append(
                {
                    "title": f"{measure.label} {label.label.lower()}, all visits",
                    "a": both["a"],
                    "b": both["b"],
                    "a_label": rater_label(a_rater),
                    "b_label": rater_label(b_rater),
                }
            )
    if agreement:
        specs.append(
            FigureSpec(
                "rater_agreement",
                "Agreement between raters (Bland-Altman): difference against mean of the "
                "two ratings, with the bias and 95% limits of agreement.",
                drawing(bland_altman, agreement, footer=footer),
            )
        )

    headline_keys = [(p["outcome"], p["score"]) for p in panels]
    estimates = _table(
        con, s, VISIT_ESTIMATES, ("outcome", "score", "visit", "estimate", "ci_low", "ci_high")
    )
    if estimates is not None:
        trajectory_panels = []
        for p in panels:
            e = estimates[
                (estimates["outcome"] == p["outcome"]) & (estimates["score"] == p["score"])
            ]
            e = e[e["estimate"].notna()]
            if len(e) < 2:
                continue
            # Visits evenly spaced in the order of their median day: true spacing crowds the
            # labels of visits a few weeks apart (e.g. m12 and the last follow-up).
            if "median_day" in e:
                e = e.sort_values("median_day", kind="stable")
            trajectory_panels.append(
                {
                    "title": p["title"],
                    "ylabel": p["ylabel"],
                    "estimates": e.assign(
                        x=np.arange(len(e), dtype=float), tick=e["visit"].astype(str)
                    ),
                }
            )
        if trajectory_panels:
            specs.append(
                FigureSpec(
                    "trajectory",
                    "Model-estimated mean per visit (visits in the order of their median day) "
                    "with "
                    f"{plan.conf_level:.0%} CI.",
                    drawing(
                        trajectory, trajectory_panels, conf_level=plan.conf_level, footer=footer
                    ),
                )
            )
    subgroups = _table(
        con, s, SUBGROUPS, ("outcome", "score", "group", "mean_diff", "ci_low", "ci_high")
    )
    if subgroups is not None and headline_keys:
        # The first planned outcome only: a forest of every outcome would be unreadable.
        outcome, score_name = headline_keys[0]
        g = subgroups[
            (subgroups["outcome"] == outcome)
            & (subgroups["score"] == score_name)
            & subgroups["mean_diff"].notna()
        ]
        if len(g):
            forest_rows = pd.DataFrame(
                {
                    "label": [study.group_label(str(group)) for group in g["group"]],
                    "estimate": g["mean_diff"],
                    "ci_low": g["ci_low"],
                    "ci_high": g["ci_high"],
                    "n": g["n_pairs"] if "n_pairs" in g else np.nan,
                }
            )
            title = panels[0]["title"]
            specs.append(
                FigureSpec(
                    "subgroup_forest",
                    f"{title}: mean change by subgroup with {plan.conf_level:.0%} CI "
                    "(exploratory).",
                    drawing(
                        forest,
                        forest_rows,
                        xlabel=f"Mean change in {title} (after - before)",
                        footer=footer,
                    ),
                )
            )
    return specs


def not_drawn(con, study) -> list[str]:
    """Why figures :func:`study_figures` draws for a complete study are missing, one line each:
    a headline outcome without pairs has no slope plot and no panel in the box, change and
    grade-shift figures; with no value of any outcome there is no patient flow."""
    from pipeline.pairing import outcomes_frame
    from pipeline.warehouse import read_frame

    s = study.name
    planned = outcomes_frame(study)
    paired = read_frame(con, f"SELECT DISTINCT outcome, score FROM {s}.pairs")
    paired = set(zip(paired["outcome"], paired["score"]))
    notes = [
        f"{row.label}: not drawn, no patient has both a before and an after value."
        for row in planned.drop_duplicates(["instrument", "rater"]).itertuples()
        if (row.outcome, row.score) not in paired
    ]
    if not len(read_frame(con, f"SELECT 1 FROM {s}.pairing_summary LIMIT 1")):
        notes.append("Patient flow: not drawn, no planned outcome has a value.")
    return notes
