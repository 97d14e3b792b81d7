"""Publication figures: one theme, colour-blind-safe, reproducible bytes.

Every figure is saved as PNG (300 dpi), SVG (text kept as text) and PDF (fonts
embedded). File metadata that would change from run to run (creation dates,
SVG element ids) is fixed, so the same inputs give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

SINGLE_COLUMN_IN = 3.5  # about 85-89 mm, the usual single-column width
DOUBLE_COLUMN_IN = 7.0  # about 180 mm
# Okabe-Ito palette: distinguishable with every common colour-vision deficiency.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

THEME = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "svg.fonttype": "none",   # text stays text in SVG, editable by the journal
    "pdf.fonttype": 42,       # TrueType fonts embedded in PDF
    "svg.hashsalt": "facial-outcomes",  # fixed ids: same figure, same SVG bytes
}

FORMATS = {
    "png": {"dpi": 300},
    "svg": {"metadata": {"Date": None}},
    "pdf": {"metadata": {"CreationDate": None, "ModDate": None}},
}


def save(fig: plt.Figure, folder: Path, stem: str) -> list[Path]:
    """Save ``fig`` in every publication format; return the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with plt.rc_context(THEME):
        for ext, options in FORMATS.items():
            path = folder / f"{stem}.{ext}"
            fig.savefig(path, format=ext, **options)
            written.append(path)
    plt.close(fig)
    return written


def _mean_ci(values: np.ndarray, conf_level: float) -> tuple[float, float]:
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, 0.0
    half = stats.t.ppf(0.5 + conf_level / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n)
    return mean, float(half)


def slope_plot(pairs: pd.DataFrame, *, title: str, ylabel: str, pre_label: str, post_label: str,
               conf_level: float = 0.95, footer: str = "") -> plt.Figure:
    """Paired slope plot: one thin line per patient, the mean (with CI) drawn over them.

    ``pairs`` has one row per patient with ``pre_value`` and ``post_value``.
    Patients are not labelled: the figure shows no identifiers.
    """
    with plt.rc_context(THEME):
        fig, ax = plt.subplots(figsize=(SINGLE_COLUMN_IN, 3.2))
        pre, post = pairs["pre_value"].to_numpy(float), pairs["post_value"].to_numpy(float)
        # Patients with the same pre and post values share one line, drawn wider: on an
        # ordinal scale (House-Brackmann) lines would otherwise hide one another.
        shared = pairs.groupby(["pre_value", "post_value"]).size().reset_index(name="count")
        for a, b, count in shared.itertuples(index=False):
            ax.plot([0, 1], [a, b], color="0.55", alpha=0.45, linewidth=0.6 * np.sqrt(count), zorder=1)
        means, halves = zip(*(_mean_ci(v, conf_level) for v in (pre, post)))
        ax.errorbar([0, 1], means, yerr=halves, color=OKABE_ITO[0], linewidth=2, marker="o",
                    markersize=5, capsize=3, zorder=3, label=f"Mean ({conf_level:.0%} CI)")
        ax.set_xticks([0, 1], [pre_label, post_label])
        ax.set_xlim(-0.3, 1.3)
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left")
        ax.legend(frameon=False, loc="best", fontsize=7)
        caption = f"n = {len(pairs)} patients"
        if shared["count"].max() > 1:
            caption += "; line width grows with the number of patients sharing a line"
        ax.text(0.0, -0.2, caption + (f".\n{footer}" if footer else "."),
                transform=ax.transAxes, fontsize=6, color="0.3", va="top")
    return fig
