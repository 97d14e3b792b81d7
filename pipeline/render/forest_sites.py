"""The forest plot of a pooled study: each site's mean change, the pooled diamonds and the
prediction interval (:mod:`pipeline.pooled_study`)."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Polygon

from pipeline.render.figure_theme import OKABE_ITO, THEME

DOUBLE_COLUMN_IN = 7.0
ROW_IN = 0.26
FOOTER_IN = 0.2


def site_forest(
    sites: pd.DataFrame,
    pooled: pd.DataFrame,
    *,
    xlabel: str,
    title: str,
    footer: str = "",
    width: float = DOUBLE_COLUMN_IN,
) -> plt.Figure:
    """Forest plot by site.

    Parameters
    ----------
    sites : DataFrame
        One row per site, in display order: ``label`` (site name), ``n`` (pairs), ``estimate``,
        ``ci_low``, ``ci_high`` (the site's mean change and its t interval) and ``weight``
        (its share of the random-effects weight, 0-1), drawn as a square of that area.
    pooled : DataFrame
        The pooled rows under the sites, in order: ``label``, ``n``, ``estimate``, ``ci_low``,
        ``ci_high`` drawn as a diamond, and ``pi_low``, ``pi_high`` (NaN for none) drawn as a
        line through it: the prediction interval of a new site.
    """
    with plt.rc_context(THEME):
        n_rows = len(sites) + len(pooled)
        height = ROW_IN * (n_rows + 1) + 0.9 + (0.2 if footer else 0)
        fig = plt.figure(figsize=(width, height))
        if footer:
            # The footer gets a strip of its own below the axes, which constrained layout keeps
            # clear (as the study figures do), so the axis label never runs into it.
            fig.get_layout_engine().set(rect=(0, FOOTER_IN / height, 1, 1 - FOOTER_IN / height))
            fig.text(0.01, 0.35 * FOOTER_IN / height, footer, fontsize=6, color="0.3", va="center")
        ax = fig.add_subplot()
        y_sites = np.arange(n_rows, n_rows - len(sites), -1, dtype=float)
        y_pooled = np.arange(len(pooled), 0, -1, dtype=float) - 0.5
        colour = OKABE_ITO[0]
        for y, row in zip(y_sites, sites.itertuples()):
            ax.plot([row.ci_low, row.ci_high], [y, y], color=colour, linewidth=1)
            # The square's area follows the site's weight (its side the square root).
            size = 3 + 9 * np.sqrt(max(float(row.weight), 0.0))
            ax.plot(row.estimate, y, marker="s", markersize=size, color=colour)
        for y, row in zip(y_pooled, pooled.itertuples()):
            if np.isfinite(row.pi_low):
                ax.plot([row.pi_low, row.pi_high], [y, y], color="0.35", linewidth=1.2)
            diamond = Polygon(
                [
                    (row.ci_low, y),
                    (row.estimate, y + 0.3),
                    (row.ci_high, y),
                    (row.estimate, y - 0.3),
                ],
                closed=True,
                facecolor=OKABE_ITO[1],
                edgecolor="black",
                linewidth=0.6,
                zorder=3,
            )
            ax.add_patch(diamond)
        ax.axvline(0, color="0.3", linewidth=0.6, linestyle=(0, (3, 2)))
        labels = [f"{r.label} (n\u00a0=\u00a0{int(r.n)})" for r in sites.itertuples()]
        labels += [f"{r.label} (n\u00a0=\u00a0{int(r.n)})" for r in pooled.itertuples()]
        ax.set_yticks([*y_sites, *y_pooled], labels)
        ax.set_ylim(0, n_rows + 0.7)
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        # Wrapped to the axis' share of the width (about 11 characters an inch at 8 pt).
        ax.set_xlabel(textwrap.fill(xlabel, max(20, int(width * 0.55 * 11))))
        ax.set_title(title, loc="left", fontsize=8)
        ax.autoscale(axis="x")
        return fig
