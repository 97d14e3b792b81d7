"""Publication figures: every figure in every format, at the journal column widths,
with text kept as text (SVG), fonts embedded (PDF) and the same bytes on every run."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline import figures

RNG = np.random.default_rng(7)
PRE = RNG.integers(2, 7, 20).astype(float)
POST = np.clip(PRE - RNG.integers(0, 3, 20), 1, 6)
PAIRS = pd.DataFrame({"pre_value": PRE, "post_value": POST})
PANEL = {"title": "House-Brackmann grade (observer)", "ylabel": "Grade (lower is better)", "pairs": PAIRS,
         "xlabel": "Change in grade", "diff": POST - PRE, "higher_is_better": False}
FLOW = pd.DataFrame({"label": ["House-Brackmann grade (observer)", "Sunnybrook composite"], "records": 20,
                     "excluded": 1, "included": 19, "analysed": [18, 15], "not_analysed": [1, 4]})
ESTIMATES = pd.DataFrame({"x": [0.0, 30, 90, 365], "tick": ["pre", "m1", "m3", "m12"],
                          "estimate": [4.0, 3.6, 3.0, 2.8], "ci_low": [3.7, 3.3, 2.7, 2.4],
                          "ci_high": [4.3, 3.9, 3.3, 3.2]})
FOREST = pd.DataFrame({"label": ["House-Brackmann grade", "  Sex: female", "  Sex: male"],
                       "estimate": [np.nan, -1.2, -0.9], "ci_low": [np.nan, -1.6, -1.5],
                       "ci_high": [np.nan, -0.8, -0.3], "n": [np.nan, 14, 6]})
FOOTER = "SYNTHETIC DATA: demonstration cohort, not real patients."

MAKERS = {
    "slope": lambda w: figures.slope_plot(PAIRS, title=PANEL["title"], ylabel=PANEL["ylabel"], pre_label="Before",
                                          post_label="After", footer=FOOTER, width=w),
    "prepost_box": lambda w: figures.prepost_box([PANEL, PANEL], pre_label="Before", post_label="After",
                                                 footer=FOOTER, width=w),
    "change_distribution": lambda w: figures.change_distribution([PANEL], footer=FOOTER, width=w),
    "grade_shift": lambda w: figures.grade_shift([PANEL], pre_label="Before", post_label="After",
                                                 footer=FOOTER, width=w),
    "patient_flow": lambda w: figures.patient_flow(FLOW, subjects_file="patients.csv", footer=FOOTER, width=w),
    "rater_agreement": lambda w: figures.bland_altman([{"title": "House-Brackmann grade", "a": PRE, "b": POST,
                                                         "a_label": "observer", "b_label": "surgeon"}],
                                                       footer=FOOTER, width=w),
    "trajectory": lambda w: figures.trajectory([{"title": "House-Brackmann grade", "ylabel": "Grade",
                                                 "estimates": ESTIMATES}], footer=FOOTER, width=w),
    "subgroup_forest": lambda w: figures.forest(FOREST, xlabel="Mean change", footer=FOOTER, width=w),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_figure_in_every_format_and_width(name, tmp_path):
    spec = figures.FigureSpec(name, "caption", MAKERS[name])
    written = figures.export([spec], tmp_path)
    assert len(written) == 8  # 2 widths x PNG, TIFF, PDF, SVG
    for width, inches in figures.WIDTHS.items():
        folder = figures.width_folder(tmp_path, width)
        # Exactly the column width at the format's resolution: no tight bounding box.
        with Image.open(folder / f"{name}.png") as png:
            assert png.size[0] == round(inches * 300)
            assert png.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        with Image.open(folder / f"{name}.tiff") as tiff:
            assert tiff.size[0] == round(inches * 600)
            assert tiff.mode == "RGB" and tiff.info["compression"] == "tiff_lzw"
            assert tiff.info["dpi"] == pytest.approx((600, 600), abs=0.01)
        svg = (folder / f"{name}.svg").read_text()
        assert "<text" in svg and "SYNTHETIC DATA" in svg  # text kept as text
        pdf = (folder / f"{name}.pdf").read_bytes()
        assert b"/FontFile2" in pdf  # TrueType font embedded
        assert b"/CreationDate" not in pdf


def test_same_figure_same_bytes(tmp_path):
    spec = figures.FigureSpec("change_distribution", "caption", MAKERS["change_distribution"])
    first = figures.export([spec], tmp_path / "a", widths=("single",))
    second = figures.export([spec], tmp_path / "b", widths=("single",))
    for a, b in zip(first, second):
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest(), a.name


def test_resolution_and_width_can_be_asked_for(tmp_path):
    spec = figures.FigureSpec("slope", "caption", MAKERS["slope"])
    [path] = figures.export([spec], tmp_path, widths=("double",), formats=("tiff",), dpi=300)
    with Image.open(path) as tiff:
        assert tiff.size[0] == 2100 and tiff.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    with pytest.raises(ValueError, match="unknown width"):
        figures.export([spec], tmp_path, widths=("triple",))
