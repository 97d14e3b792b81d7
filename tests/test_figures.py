"""Publication figures: every figure in every format, at the journal column widths,
with text kept as text (SVG), fonts embedded (PDF) and the same bytes on every run."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.render import figure_files, figures
from pipeline.spec.study import load_study

RNG = np.random.default_rng(7)
PRE = RNG.integers(2, 7, 20).astype(float)
POST = np.clip(PRE - RNG.integers(0, 3, 20), 1, 6)
PAIRS = pd.DataFrame({"pre_value": PRE, "post_value": POST})
PANEL = {
    "title": "House-Brackmann grade (observer)",
    "ylabel": "Grade (lower is better)",
    "pairs": PAIRS,
    "xlabel": "Change in grade",
    "diff": POST - PRE,
    "higher_is_better": False,
}
FLOW = pd.DataFrame(
    {
        "label": ["House-Brackmann grade (observer)", "Sunnybrook composite"],
        "records": 20,
        "excluded": 1,
        "included": 19,
        "analysed": [18, 15],
        "not_analysed": [1, 4],
    }
)
ESTIMATES = pd.DataFrame(
    {
        "x": [0.0, 30, 90, 365],
        "tick": ["pre", "m1", "m3", "m12"],
        "estimate": [4.0, 3.6, 3.0, 2.8],
        "ci_low": [3.7, 3.3, 2.7, 2.4],
        "ci_high": [4.3, 3.9, 3.3, 3.2],
    }
)
FOREST = pd.DataFrame(
    {
        "label": ["House-Brackmann grade", "  Sex: female", "  Sex: male"],
        "estimate": [np.nan, -1.2, -0.9],
        "ci_low": [np.nan, -1.6, -1.5],
        "ci_high": [np.nan, -0.8, -0.3],
        "n": [np.nan, 14, 6],
    }
)
FOOTER = "SYNTHETIC DATA: demonstration cohort, not real patients."

SLOPE = {
    "title": PANEL["title"],
    "ylabel": PANEL["ylabel"],
    "pre_label": "Before",
    "post_label": "After",
    "footer": FOOTER,
}

MAKERS = {
    "slope": lambda w: figures.slope_plot(PAIRS, **SLOPE, width=w),
    "prepost_box": lambda w: figures.prepost_box([PANEL, PANEL], footer=FOOTER, width=w),
    "change_distribution": lambda w: figures.change_distribution([PANEL], footer=FOOTER, width=w),
    "grade_shift": lambda w: figures.grade_shift([PANEL], footer=FOOTER, width=w),
    "patient_flow": lambda w: figures.patient_flow(
        FLOW, subjects_file="patients.csv", footer=FOOTER, width=w
    ),
    "rater_agreement": lambda w: figures.bland_altman(
        [
            {
                "title": "House-Brackmann grade",
                "a": PRE,
                "b": POST,
                "a_label": "observer",
                "b_label": "surgeon",
            }
        ],
        footer=FOOTER,
        width=w,
    ),
    "trajectory": lambda w: figures.trajectory(
        [{"title": "House-Brackmann grade", "ylabel": "Grade", "estimates": ESTIMATES}],
        footer=FOOTER,
        width=w,
    ),
    "subgroup_forest": lambda w: figures.forest(
        FOREST, xlabel="Mean change", footer=FOOTER, width=w
    ),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_figure_in_every_format_and_width(name, tmp_path):
    spec = figures.FigureSpec(name, "caption", MAKERS[name])
    written = figures.export([spec], tmp_path)
    # 2 widths x PNG, TIFF, PDF, SVG and the source data (CSV), which the flow diagram has not.
    assert len(written) == (8 if name == "patient_flow" else 10)
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
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest(), (
            a.name
        )


def assert_valid_file(path):
    """``path`` is a whole, readable file of the format its suffix names (what a journal's
    upload checker opens): PNG and TIFF decoded by Pillow with their resolution, PDF with its
    header, trailer and cross-reference table where ``startxref`` says, SVG parsed as XML with
    an <svg> root, CSV as a table."""
    import xml.etree.ElementTree as ET

    data = path.read_bytes()
    kind = path.suffix[1:]
    if kind in ("png", "tiff"):
        with Image.open(path) as image:
            assert image.format == kind.upper() and image.mode == "RGB", path
            image.load()  # every pixel decodes
            assert image.info["dpi"] == pytest.approx((figure_files.DPI[kind],) * 2, abs=0.01)
    elif kind == "pdf":
        assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF"), path
        offset = int(data[data.rindex(b"startxref") :].split()[1])
        assert data[offset : offset + 4] == b"xref", path
    elif kind == "svg":
        root = ET.fromstring(data)
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("width").endswith("pt")
    elif kind == "csv":
        assert len(pd.read_csv(path)) > 0, path
    else:
        raise AssertionError(f"unexpected file {path}")


def test_each_format_written_is_a_valid_file_of_that_format(tmp_path):
    spec = figures.FigureSpec("slope", "caption", MAKERS["slope"])
    written = figures.export([spec], tmp_path, widths=("single",))
    assert sorted(p.suffix for p in written) == [".csv", ".pdf", ".png", ".svg", ".tiff"]
    for path in written:
        assert_valid_file(path)


def test_resolution_and_width_can_be_asked_for(tmp_path):
    spec = figures.FigureSpec("slope", "caption", MAKERS["slope"])
    [path] = figures.export([spec], tmp_path, widths=("double",), formats=("tiff",), dpi=300)
    with Image.open(path) as tiff:
        assert tiff.size[0] == 2100 and tiff.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    with pytest.raises(ValueError, match="unknown width"):
        figures.export([spec], tmp_path, widths=("triple",))


def test_drawn_in_parallel_processes_same_bytes_as_here(tmp_path):
    # Drawings (not lambdas) can go to other processes; the files must not depend on where.
    specs = [
        figures.FigureSpec(
            "slope",
            "caption",
            figures.drawing(figures.slope_plot, PAIRS, **SLOPE),
            widths=("single",),
        ),
        figures.FigureSpec(
            "flow",
            "caption",
            figures.drawing(
                figures.patient_flow, FLOW, subjects_file="patients.csv", footer=FOOTER
            ),
        ),
    ]
    here = figures.export(specs, tmp_path / "here", workers=1)
    there = figures.export(specs, tmp_path / "there", workers=2)
    assert [p.relative_to(tmp_path / "here") for p in here] == [
        p.relative_to(tmp_path / "there") for p in there
    ]
    for a, b in zip(here, there):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_warm_workers_draw_the_figures_and_stay_for_the_runs_next_ones(tmp_path):
    # Workers a run started ahead (figure_processes.warm) draw even a few figures, which a pool
    # started for them would not pay its start for, and are kept until the run lets them go.
    from pipeline.render import figure_files, figure_processes

    specs = [
        figures.FigureSpec(
            f"slope{i}",
            "caption",
            figures.drawing(
                figures.slope_plot, PAIRS.assign(post_value=PAIRS["post_value"] + i), **SLOPE
            ),
            widths=("single",),
        )
        for i in range(2)
    ]
    here = figures.export(specs, tmp_path / "here", formats=("png",), workers=1)
    assert figure_files._workers(2) == 1  # no warm worker: two figures are drawn here
    with figure_processes.warm(1) as started:
        assert started == 1
        warm = figure_processes.warm_workers()
        assert figure_files._workers(2) == 2
        there = figures.export(specs, tmp_path / "there", formats=("png",))
        assert figure_processes.warm_workers() == warm
    assert figure_processes.warm_workers() is None
    for a, b in zip(here, there, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_png_is_the_tiff_rendering_halved(tmp_path):
    # PNG 300 dpi comes from the 600-dpi rendering, 2 x 2 pixels averaged: same picture, half the
    # size.
    spec = figures.FigureSpec("slope", "caption", MAKERS["slope"], widths=("single",))
    png, tiff = figures.export([spec], tmp_path, formats=("png", "tiff"))
    with Image.open(png) as small, Image.open(tiff) as large:
        assert small.mode == "RGB"
        assert small.size == ((large.size[0] + 1) // 2, (large.size[1] + 1) // 2)
        assert np.array_equal(np.asarray(small), np.asarray(large.reduce(2)))


def _as_matplotlib_draws_it(make, width: float) -> tuple[np.ndarray, bytes]:
    """The 600-dpi pixels and the SVG of a figure drawn the plain way: laid out by a whole
    drawing (then snapped, as export does), and each file drawn from scratch by savefig, with
    every automatic placement (titles, loc="best" legends) worked out again."""
    with figures.plt.rc_context(figures.THEME):
        fig = make(width)
        fig.canvas.draw()
        fig.set_layout_engine("none")
        for ax in fig.axes:
            ax.set_position([round(v, 4) for v in ax.get_position().bounds])
        raw = io.BytesIO()
        fig.savefig(raw, format="rgba", dpi=600)
        width_px, height_px = (round(v * 600) for v in fig.get_size_inches())
        pixels = np.frombuffer(raw.getvalue(), np.uint8).reshape(height_px, width_px, 4)[..., :3]
        svg = io.BytesIO()
        fig.savefig(svg, format="svg", metadata={"Date": None})
    figures.plt.close(fig)
    return pixels, svg.getvalue()


@pytest.mark.parametrize(
    "name", ["slope", "prepost_box", "change_distribution", "grade_shift", "rater_agreement"]
)
def test_files_show_what_matplotlib_draws(name, tmp_path):
    # export lays a figure out once and fixes what matplotlib would otherwise work out again in
    # each file's drawing (title places, the legend's "best" place): the files must not change.
    spec = figures.FigureSpec(name, "caption", MAKERS[name], widths=("single",))
    tiff, svg = figures.export([spec], tmp_path, formats=("tiff", "svg"))
    pixels, reference_svg = _as_matplotlib_draws_it(MAKERS[name], figures.SINGLE_COLUMN_IN)
    with Image.open(tiff) as image:
        assert np.array_equal(np.asarray(image), pixels)
    assert svg.read_bytes() == reference_svg


def test_pdf_embeds_a_complete_truetype_subset(tmp_path):
    # The embedded subset keeps what a PDF viewer reads (outlines, metrics, character map) and
    # leaves out the layout tables it never reads.
    from fontTools import subset
    from fontTools.ttLib import TTFont

    spec = figures.FigureSpec("slope", "caption", MAKERS["slope"], widths=("single",))
    [pdf] = figures.export([spec], tmp_path, formats=("pdf",))
    data = pdf.read_bytes()
    fonts = []
    for match in re.finditer(rb"/FontFile2 (\d+) 0 R", data):
        start = data.index(b"stream", data.index(b"\n%s 0 obj" % match.group(1))) + len(b"stream\n")
        fonts.append(TTFont(io.BytesIO(zlib.decompressobj().decompress(data[start:]))))
    assert fonts
    for font in fonts:
        assert {"glyf", "loca", "hmtx", "cmap", "head", "maxp"} <= set(font.keys())
        assert not {"GSUB", "GPOS", "GDEF", "kern"} & set(font.keys())
        assert font["maxp"].numGlyphs > 1  # the figure's glyphs, not an empty font
    # Subsetting is set back as matplotlib had it once the PDF is written.
    assert "GSUB" not in subset.Options().drop_tables


def test_confidence_interval_is_student_t():
    from scipy import stats

    values = np.array([3.0, 4.5, 2.0, 6.0, 5.5, 4.0, 3.5])
    mean, half = figures._mean_ci(values, 0.95)
    expected = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    assert mean == values.mean() and half == expected


def test_large_cohorts_draw_a_sample_of_patients_but_summarise_all():
    rng = np.random.default_rng(3)
    n = figures.INDIVIDUALS_SHOWN * 5
    pre = rng.normal(50, 15, n).round(2)
    pairs = pd.DataFrame({"pre_value": pre, "post_value": pre + rng.normal(8, 5, n).round(2)})
    fig = figures.slope_plot(
        pairs,
        title="Sunnybrook composite",
        ylabel="Composite",
        pre_label="Before",
        post_label="After",
    )
    ax = fig.axes[0]
    patient_lines = [line for line in ax.get_lines() if line.get_color() == "0.55"]
    assert len(patient_lines) == figures.INDIVIDUALS_SHOWN
    assert f"n = {n:,} patients; lines: random {figures.INDIVIDUALS_SHOWN}" in ax.get_title(
        loc="left"
    ).replace("\n", " ")
    # The mean drawn is the mean of every patient, not of the sample.
    mean_line = next(line for line in ax.get_lines() if line.get_marker() == "o")
    assert mean_line.get_ydata() == pytest.approx(
        [pairs["pre_value"].mean(), pairs["post_value"].mean()]
    )
    figures.plt.close(fig)


DRAWN = []


def _counted_slope(pairs, *, width):
    DRAWN.append(width)
    return figures.slope_plot(
        pairs, title="Grade", ylabel="Grade", pre_label="Before", post_label="After", width=width
    )


def test_unchanged_figures_are_not_drawn_again(tmp_path):
    def spec(pairs):
        return figures.FigureSpec(
            "slope", "caption", figures.drawing(_counted_slope, pairs), widths=("single",)
        )

    DRAWN.clear()
    first = figures.export([spec(PAIRS)], tmp_path, workers=1)
    before = {p: p.read_bytes() for p in first}
    assert figures.export([spec(PAIRS)], tmp_path, workers=1) == first and len(DRAWN) == 1
    assert {p: p.read_bytes() for p in first} == before
    # A file changed by hand is drawn again, and so is every file when the data change.
    first[0].write_bytes(b"edited")
    figures.export([spec(PAIRS)], tmp_path, workers=1)
    assert len(DRAWN) == 2 and first[0].read_bytes() == before[first[0]]
    figures.export([spec(PAIRS.assign(post_value=PAIRS["post_value"] - 1))], tmp_path, workers=1)
    assert len(DRAWN) == 3 and first[0].read_bytes() != before[first[0]]


HELD_FIGURE = """
import os, time
import matplotlib.pyplot as plt

def draw(marks, *, width):
    # Says it is drawing (a file named by the process id), then holds the figure until the test
    # releases it, so that both processes are inside a figure when Ctrl-C comes, however slowly
    # they started.
    open(os.path.join(marks, str(os.getpid())), "w").close()
    try:
        while not os.path.exists(os.path.join(marks, "release")):
            time.sleep(0.01)
    except KeyboardInterrupt:
        open(os.path.join(marks, f"interrupted-{os.getpid()}"), "w").close()
        raise
    return plt.figure(figsize=(width, 1))
"""

INTERRUPTED_EXPORT = """
import signal, sys
from pathlib import Path
from pipeline.render import figure_processes, figures
import held_figure

# Ctrl-C as a terminal's foreground job receives it. A test runner started in the background by
# a non-interactive shell hands SIGINT down ignored, and Python then keeps it ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
marks = sys.argv[1]
draw = figures.drawing(held_figure.draw, marks)
specs = [figures.FigureSpec(f"f{i}", "c", draw, widths=("single",)) for i in range(12)]
# "warm": by a worker started ahead, as a run starts them (figure_processes.warm).
with figure_processes.warm(1 if sys.argv[2] == "warm" else 0):
    figures.export(specs, Path(marks) / "out", formats=("svg",), workers=2)
"""


@pytest.mark.parametrize("worker", ["started for the figures", "warm"])
def test_ctrl_c_while_drawing_in_parallel_interrupts_the_caller_only(worker, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "held_figure.py").write_text(HELD_FIGURE)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def wait_for(what, done):
        # Polls a state (files the processes write); the limit only turns a hang into a failure.
        limit = time.monotonic() + 600
        while not done():
            assert run.poll() is None, f"the export ended before {what}: {run.communicate()[1]}"
            assert time.monotonic() < limit, f"no {what} after 10 minutes"
            time.sleep(0.02)

    # A session of its own, like a terminal's foreground job: Ctrl-C goes to its whole group.
    run = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_EXPORT, str(marks), worker],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for("two processes drawing", lambda: len(list(marks.glob("[0-9]*"))) == 2)
        # Both hold a figure until released: the export cannot have finished.
        assert run.poll() is None
        os.killpg(run.pid, signal.SIGINT)
        wait_for("interrupted figure in the caller", (marks / f"interrupted-{run.pid}").exists)
        (marks / "release").touch()  # the worker may finish the figure it holds
        _, err = run.communicate(timeout=300)
    finally:
        run.kill()
        run.wait()
    worker = next(int(p.name) for p in marks.glob("[0-9]*") if int(p.name) != run.pid)
    assert run.returncode != 0 and "KeyboardInterrupt" in err
    assert err.count("Traceback") == 1, err  # the caller's; the worker finished its figure quietly
    assert not (marks / f"interrupted-{worker}").exists()  # Ctrl-C reached the caller only
    # The worker's figure was saved, and it stopped there: no figure is drawn after Ctrl-C.
    assert 1 <= len(list((marks / "out").glob("*.svg"))) < 12


def test_ctrl_c_while_the_workers_start_hands_out_no_more_figures(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    class InterruptedAfterStart(ThreadPoolExecutor):
        # The worker's driver is started, then Ctrl-C lands, before the caller draws anything.
        def submit(self, *args, **kwargs):
            super().submit(*args, **kwargs)
            raise KeyboardInterrupt

    monkeypatch.setattr(figure_files, "ThreadPoolExecutor", InterruptedAfterStart)
    specs = [
        figures.FigureSpec(
            f"f{i}",
            "c",
            figures.drawing(
                figures.slope_plot,
                PAIRS,
                title="t",
                ylabel="y",
                pre_label="Before",
                post_label="After",
            ),
            widths=("single",),
        )
        for i in range(12)
    ]
    with pytest.raises(KeyboardInterrupt):
        figures.export(specs, tmp_path, formats=("svg",), workers=2)
    # At most the figure the worker had taken when Ctrl-C came; not the other eleven.
    assert len(list(tmp_path.glob("*.svg"))) <= 1


def test_the_boxes_are_seaborns_boxes():
    # prepost_box draws its boxes with matplotlib's box statistics, as sns.boxplot does, without
    # seaborn's reshaping of every value (pipeline.render.figures._boxes): the same lines.
    import matplotlib.pyplot as plt
    import seaborn as sns

    rng = np.random.default_rng(5)
    pairs = pd.DataFrame({"pre_value": rng.normal(50, 15, 301), "post_value": rng.gamma(3, 9, 301)})
    pairs.loc[[3, 40], "pre_value"] = [150.0, -60.0]  # beyond the whiskers
    long = pd.DataFrame(
        {
            "when": np.repeat(["pre", "post"], len(pairs)),
            "value": np.concatenate([pairs["pre_value"], pairs["post_value"]]),
        }
    )
    fig, (ours, theirs) = plt.subplots(1, 2)
    figures._boxes(ours, pairs, ["C0", "C1"])
    sns.boxplot(
        long,
        x="when",
        y="value",
        order=["pre", "post"],
        width=0.5,
        whis=1.5,
        showfliers=False,
        ax=theirs,
    )

    def drawn(ax):
        lines = sorted(tuple(np.round(line.get_ydata(), 9)) for line in ax.lines)
        boxes = sorted(tuple(np.round(p.get_path().vertices[:, 1], 9)) for p in ax.patches)
        return lines, boxes

    assert drawn(ours) == drawn(theirs)
    plt.close(fig)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_text_and_axes_print_black(name):
    # seaborn's theme greys text and axes (.15); a journal prints them black, as the theme sets.
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    fig = MAKERS[name](figures.DOUBLE_COLUMN_IN)
    for ax in fig.axes:
        if not ax.axison:
            continue
        shown = [ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]
        colours = {mcolors.to_hex(t.get_color()) for t in shown if t.get_text()}
        colours |= {
            mcolors.to_hex(s.get_edgecolor()) for s in ax.spines.values() if s.get_visible()
        }
        assert colours <= {"#000000"}, (name, colours)
    plt.close(fig)


# --------------------------------------------------------------------------- source data


def _small_study_figures():
    """The small study's figure source data (``figures/double_column/<name>.csv``), its result
    tables and its warehouse (tests/small_study.py: House-Brackmann by the observer and
    Sunnybrook, 20 patients)."""
    import duckdb

    from small_study import full_run

    base = full_run()
    folder = base / "reports" / "small"
    con = duckdb.connect(str(base / "warehouse.duckdb"), read_only=True)
    return folder, con


def _t_half_width(sd, n, conf_level=0.95):
    from scipy import stats

    return stats.t.ppf(0.5 + conf_level / 2, n - 1) * sd / np.sqrt(n)


def test_source_data_beside_every_figure_match_the_analysis_tables():
    folder, con = _small_study_figures()
    try:
        # A run writes each figure at the width the report shows: double column, but the flow
        # diagram's single column.
        figures_dir = folder / "figures" / "double_column"
        pngs = {p.stem for p in figures_dir.glob("*.png")} | {
            p.stem for p in (folder / "figures").glob("*.png")
        }
        csvs = {p.stem for p in figures_dir.glob("*.csv")}
        # Every figure has its source data beside it, except the flow diagram (boxes of counts
        # that are eTable flow's).
        assert csvs == pngs - {"patient_flow"}, (pngs, csvs)
        tests = pd.read_csv(folder / "tables" / "paired_tests.csv")
        tests = tests[tests["group"] == "all"].set_index(["outcome", "score"])
        directions = pd.read_csv(folder / "tables" / "change_direction.csv")
        directions = directions[directions["group"] == "all"].set_index(["outcome", "score"])
        pairs = con.execute("SELECT outcome, score, pre_value, post_value FROM small.pairs").df()

        # Slope plots: the two means and their t CIs are paired_tests' pre and post means
        # (CI: mean +- t(n - 1) SD / sqrt(n) from its SD and n); the lines hold every patient.
        for (outcome, score), row in tests.iterrows():
            path = figures_dir / f"slope_{outcome}_{score}.csv"
            if not path.exists():
                continue
            slope = pd.read_csv(path)
            means = slope[slope["mark"] == "mean"].set_index("time")
            for time in ("pre", "post"):
                mean, sd = row[f"{time}_mean"], row[f"{time}_sd"]
                half = _t_half_width(sd, row["n_pairs"])
                drawn = means.loc["before" if time == "pre" else "after"]
                assert drawn["value"] == pytest.approx(mean, rel=1e-12)
                assert drawn["ci_low"] == pytest.approx(mean - half, rel=1e-9)
                assert drawn["ci_high"] == pytest.approx(mean + half, rel=1e-9)
            lines = slope[(slope["mark"] == "patient line") & (slope["time"] == "before")]
            assert lines["patients"].sum() == row["n_pairs"]

        # Change histogram: bars per direction are change_direction's counts; the change and its
        # CI are Table 2's: the Hodges-Lehmann estimate and its Wilcoxon CI beside a Wilcoxon P,
        # the mean difference and its paired t CI beside a t P.
        change = pd.read_csv(figures_dir / "change_distribution.csv")
        for (outcome, score), panel in change.groupby(["outcome", "score"]):
            bars = panel[panel["mark"] == "bar"].groupby("direction")["patients"].sum()
            row = directions.loc[(outcome, score)]
            assert bars.to_dict() == {
                "Improved": row["n_improved"],
                "Unchanged": row["n_unchanged"],
                "Worsened": row["n_worsened"],
            }
            expected = tests.loc[(outcome, score)]
            wilcoxon = expected["test_used"] == "Wilcoxon signed-rank"
            kind, columns = (
                ("median", ("hodges_lehmann", "hl_ci_low", "hl_ci_high"))
                if wilcoxon
                else ("mean", ("mean_diff", "ci_low", "ci_high"))
            )
            drawn = panel[panel["mark"] == f"{kind} change"].iloc[0]
            for shown, column in zip(("value", "ci_low", "ci_high"), columns):
                assert drawn[shown] == pytest.approx(expected[column], rel=1e-12), column

        # Box plots: quartiles and median of every pair's value (numpy's linear percentiles, what
        # R's quantile type 7 gives), one point per patient.
        boxes = pd.read_csv(figures_dir / "prepost_box.csv")
        for (outcome, score), panel in boxes.groupby(["outcome", "score"]):
            values = pairs[(pairs["outcome"] == outcome) & (pairs["score"] == score)]
            for time, column in (("before", "pre_value"), ("after", "post_value")):
                box = panel[(panel["mark"] == "box") & (panel["time"] == time)]
                stat = box.set_index("statistic")["value"]
                q1, median, q3 = np.percentile(values[column], [25, 50, 75])
                assert (stat["q1"], stat["median"], stat["q3"]) == pytest.approx((q1, median, q3))
                points = panel[(panel["mark"] == "point") & (panel["time"] == time)]
                assert sorted(points["value"]) == sorted(values[column])

        # Grade shift: patients per grade before and after, from the pairs.
        grades = pd.read_csv(figures_dir / "grade_shift_house_brackmann.csv")
        for (outcome, score), panel in grades.groupby(["outcome", "score"]):
            values = pairs[(pairs["outcome"] == outcome) & (pairs["score"] == score)]
            for time, column in (("before", "pre_value"), ("after", "post_value")):
                drawn = panel[panel["time"] == time].set_index("grade")["patients"]
                counted = values[column].round().astype(int).value_counts()
                assert drawn.to_dict() == {
                    roman: counted.get(g, 0) for g, roman in enumerate(figures.ROMAN, start=1)
                }

        # Trajectory: the model's estimates and CIs per visit, at the visit's median day.
        trajectory = pd.read_csv(figures_dir / "trajectory.csv")
        estimates = pd.read_csv(folder / "tables" / "visit_estimates.csv")
        merged = trajectory.merge(estimates, on=["outcome", "score", "visit"], suffixes=("", "_t"))
        assert len(merged) == len(trajectory) > 0
        for column in ("estimate", "ci_low", "ci_high", "median_day"):
            assert merged[column].to_numpy() == pytest.approx(merged[f"{column}_t"].to_numpy())
        assert merged["months"].to_numpy() == pytest.approx(merged["median_day"] / (365.25 / 12))
        assert "last" not in set(trajectory["visit"])

        # Forest: each level's change of the first outcome as Table 3 shows it, the estimate of
        # the level's test (Hodges-Lehmann beside a Wilcoxon P, else the mean); no limits where
        # so few changes are not zero that R lowers the interval's level.
        forest = pd.read_csv(figures_dir / "subgroup_forest.csv")
        subgroups = con.execute(
            "SELECT \"group\", n_pairs, CASE WHEN test_used = 'Wilcoxon signed-rank' THEN "
            "hodges_lehmann ELSE mean_diff END AS change, CASE WHEN test_used = "
            "'Wilcoxon signed-rank' THEN (CASE WHEN hl_conf_level >= 0.95 THEN hl_ci_low END) "
            "ELSE ci_low END AS low "
            "FROM small.paired_tests_subgroups"
            " WHERE outcome = 'house_brackmann_observer' AND mean_diff IS NOT NULL"
        ).df()
        # Rows are labelled as the reader reads them (the spec's labels).
        study = load_study(folder.parents[1] / "raw" / "small")
        subgroups["row"] = [study.group_label(g) for g in subgroups["group"]]
        merged = forest.merge(subgroups, on="row")
        assert len(merged) == len(forest) == len(subgroups)
        assert merged["estimate"].to_numpy() == pytest.approx(merged["change"].to_numpy())
        assert merged["ci_low"].to_numpy() == pytest.approx(merged["low"].to_numpy(), nan_ok=True)
        assert (merged["n"] == merged["n_pairs"]).all()
    finally:
        con.close()


def test_source_data_carry_no_identifier():
    # No subject code, and no column that could hold one: individual marks are numbered by value.
    folder, con = _small_study_figures()
    try:
        codes = set(con.execute("SELECT DISTINCT subject FROM small.pairs").df()["subject"])
    finally:
        con.close()
    sources = list((folder / "figures").rglob("*.csv"))
    assert sources
    for path in sources:
        text = path.read_text(encoding="utf-8")
        header = text.splitlines()[0].split(",")
        assert not {"subject", "study_id", "code", "record_id"} & set(header), path.name
        cells = set(re.split(r"[,\n]", text))
        assert not codes & cells, path.name


def test_bland_altman_source_data_are_the_bias_and_limits():
    # Bland & Altman 1986: bias = mean of a - b, limits = bias +- 1.96 SD (n - 1); computed here
    # with numpy from the ratings the figure is given.
    fig = MAKERS["rater_agreement"](figures.SINGLE_COLUMN_IN)
    source = figures.source_data(fig).set_index("mark")
    diff = PRE - POST
    bias, sd = diff.mean(), diff.std(ddof=1)
    assert source.loc["bias", "difference"] == pytest.approx(bias)
    assert source.loc["upper limit", "difference"] == pytest.approx(bias + 1.96 * sd)
    assert source.loc["lower limit", "difference"] == pytest.approx(bias - 1.96 * sd)
    points = source.loc["point"]
    assert points["ratings"].sum() == len(diff) and points["number"].tolist() == list(
        range(1, len(points) + 1)
    )
    figures.plt.close(fig)


def test_source_data_are_written_with_the_figure_and_only_when_it_changed(tmp_path):
    spec = figures.FigureSpec(
        "slope", "caption", figures.drawing(_counted_slope, PAIRS), widths=("single",)
    )
    DRAWN.clear()
    written = figures.export([spec], tmp_path, workers=1)
    csv = tmp_path / "slope.csv"
    assert csv in written and len(DRAWN) == 1
    first = csv.read_bytes()
    figures.export([spec], tmp_path, workers=1)
    assert len(DRAWN) == 1  # unchanged: neither the pictures nor the source data written again
    csv.unlink()  # deleted by hand: drawn and written again, the same bytes
    figures.export([spec], tmp_path, workers=1)
    assert len(DRAWN) == 2 and csv.read_bytes() == first


def _small_study_copy(tmp_path):
    """The small study's spec and files and a copy of its warehouse after a full run."""
    import shutil

    from small_study import full_run

    base = full_run()
    shutil.copytree(base / "raw", tmp_path / "raw")
    shutil.copy(base / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    return tmp_path / "raw" / "small", tmp_path / "warehouse.duckdb"


def test_export_figures_writes_the_formats_and_widths_asked_for(tmp_path, capsys, monkeypatch):
    from pipeline.cli import main

    folder, warehouse = _small_study_copy(tmp_path)
    monkeypatch.setenv("OUTCOMES_RAW", str(folder.parent))
    reports = tmp_path / "reports"
    code = main(
        [
            "export-figures",
            "--study",
            "small",
            "--formats",
            "png",
            "svg",
            "--widths",
            "single",
            "--warehouse",
            str(warehouse),
            "--reports",
            str(reports),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    listed = {Path(line) for line in out.splitlines()}
    exported = reports / "small" / "figures" / "export" / "single_column"
    assert listed == {p for p in exported.iterdir() if not p.name.startswith(".")}
    stems = {p.stem for p in listed}
    assert {"slope_house_brackmann_observer_grade", "prepost_box", "patient_flow"} <= stems
    for stem in stems:  # every figure in each format asked for, with its source data
        suffixes = {p.suffix for p in listed if p.stem == stem}
        assert suffixes == ({".png", ".svg"} | ({".csv"} if stem != "patient_flow" else set()))
    for path in listed:
        assert_valid_file(path)
    assert not (reports / "small" / "figures" / "export" / "double_column").exists()


def test_a_run_writes_the_figure_widths_its_spec_asks_for_and_removes_the_others(tmp_path):
    import shutil

    import duckdb

    from pipeline import steps
    from small_study import full_run

    folder, warehouse = _small_study_copy(tmp_path)
    # The full run's figures, with their render record: what is unchanged is not drawn again.
    shutil.copytree(full_run() / "reports", tmp_path / "reports")
    figures_dir = tmp_path / "reports" / "small" / "figures"
    spec = folder / "study.toml"
    default = spec.read_text(encoding="utf-8")
    con = duckdb.connect(str(warehouse))
    try:
        spec.write_text(default + '\n[figures]\nwidths = ["single"]\n', encoding="utf-8")
        first = steps.write_figures(con, load_study(folder), tmp_path / "reports")
        spec.write_text(default, encoding="utf-8")
        second = steps.write_figures(con, load_study(folder), tmp_path / "reports")
        listed = con.execute("SELECT png FROM small.figure_list").fetchall()
    finally:
        con.close()
    slope = "slope_house_brackmann_observer_grade"
    # Asked for single width: both widths written (the report shows the double).
    for name in (f"{slope}.png", f"{slope}.csv", f"double_column/{slope}.png"):
        assert figures_dir / name in first
    # Then the default: the report's PNG and source data only; the single-column files are gone
    # from the disk and from the render record.
    on_disk = {p for p in figures_dir.rglob("*") if p.is_file() and p.suffix != ".json"}
    assert on_disk == set(second) and {p.suffix for p in second} == {".png", ".csv"}
    assert figures_dir / f"double_column/{slope}.png" in second
    assert not (figures_dir / f"{slope}.png").exists()
    recorded = json.loads((figures_dir / figure_files.RENDERED).read_text())
    assert {figures_dir / name for name in recorded} == set(second)
    # The report finds every figure it lists.
    assert listed and all((figures_dir.parent / png).is_file() for (png,) in listed)


@pytest.mark.parametrize(
    "kind, entry",
    [
        ("median", "Hodges-Lehmann median change (95% CI)"),
        ("mean", "Mean change (95% CI)"),
    ],
)
def test_change_distribution_legend_names_its_estimate_in_one_pair_of_brackets(kind, entry):
    change = {"kind": kind, "estimate": -1.0, "low": -1.5, "high": -0.5}
    fig = figures.change_distribution([{**PANEL, "change": change}], footer=FOOTER)
    try:
        [legend] = fig.legends
        texts = [t.get_text() for t in legend.get_texts()]
    finally:
        figures.plt.close(fig)
    assert texts[-1] == entry
    assert all(t.count("(") <= 1 for t in texts)


def test_box_plots_are_given_nothing_of_the_test(demo_run):
    # The render cache redraws a figure when what it is drawn from changes
    # (figure_files.export keys it by its pickled drawing). The box plots show no test and no
    # CI: a rerun with another conf_level (or test) gives them the same drawing, so they are not
    # drawn again, while the change histogram, which shows the test's estimate and CI, is.
    import duckdb

    from pipeline import paths
    from pipeline.spec.study import with_overrides

    folder, _ = demo_run
    study = load_study(paths.RAW_DATA_DIR / "demo")
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    try:
        runs = [
            {s.stem: s.make for s in figures.study_figures(con, planned)}
            for planned in (study, with_overrides(study, {"conf_level": 0.9}))
        ]
    finally:
        con.close()
    drawn = [{stem: pickle.dumps(make) for stem, make in run.items()} for run in runs]
    assert drawn[0]["prepost_box"] == drawn[1]["prepost_box"]
    assert drawn[0]["change_distribution"] != drawn[1]["change_distribution"]
    assert set(runs[0]["prepost_box"].args[0][0]) == set(figures.BOX_PANEL_KEYS)


def test_steps_that_draw_nothing_import_no_plotting_library():
    # The tables and the report read what they need of the figures from figure_list: a rerun
    # that redraws no figure pays no matplotlib.pyplot or seaborn import (a second or more).
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipeline import steps\n"
        "from pipeline.render import figure_list, report, tables, writers\n"
        "print(sorted(m for m in ('matplotlib.pyplot', 'seaborn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# The demo's figures in report order (data/raw/demo: seven headline outcomes, two raters of
# House-Brackmann, visit estimates, subgroups and a time-to-event analysis).
DEMO_FIGURES = [
    *(
        f"slope_{o}"
        for o in (
            "house_brackmann_observer_grade",
            "house_brackmann_surgeon_grade",
            "sunnybrook_composite",
            "eface_total",
            "saq_total",
            "face_total",
            "botox_units_value",
        )
    ),
    "prepost_box",
    "change_distribution",
    "grade_shift_house_brackmann",
    "patient_flow",
    "rater_agreement",
    "trajectory",
    "subgroup_forest",
    "time_to_event_revision",
]


def test_the_demo_lists_every_figure_each_named_for_a_function_that_draws_it(demo_run):
    # study_figures names each figure's function instead of importing it: a name that no
    # longer resolves, or a figure dropped from the list, would leave the report short of it.
    import importlib

    import duckdb

    from pipeline import paths
    from pipeline.render import figure_list

    folder, _ = demo_run
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    try:
        specs = figure_list.study_figures(con, load_study(paths.RAW_DATA_DIR / "demo"))
    finally:
        con.close()
    assert [s.stem for s in specs] == DEMO_FIGURES
    for spec in specs:
        module, _, name = spec.make.function.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), spec.stem
    html = (folder / "reports" / "demo" / "report.html").read_text(encoding="utf-8")
    assert [f'<figure id="{stem}">' in html for stem in DEMO_FIGURES] == [True] * len(specs)


def test_figures_found_unchanged_are_listed_without_a_plotting_library(demo_run, tmp_path):
    # A rerun whose figures are all unchanged (alpha=0.01 on the demo) lists them and finds them
    # in the render cache without importing what draws them (figure_list names each figure's
    # function); one figure whose file no longer matches is drawn again, which imports them.
    import shutil
    import subprocess
    import sys

    folder, _ = demo_run
    shutil.copy(folder / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    shutil.copytree(folder / "reports", tmp_path / "reports")
    code = (
        "import sys, duckdb\n"
        "from pathlib import Path\n"
        "from pipeline import paths, steps\n"
        "from pipeline.spec.study import load_study\n"
        f"con = duckdb.connect({str(tmp_path / 'warehouse.duckdb')!r})\n"
        "study = load_study(paths.RAW_DATA_DIR / 'demo')\n"
        f"written = steps.write_figures(con, study, Path({str(tmp_path / 'reports')!r}))\n"
        "drawing = ('matplotlib.pyplot', 'seaborn')\n"
        "print(len(written), sorted(m for m in drawing if m in sys.modules))\n"
    )

    def figures_step() -> str:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    png = tmp_path / "reports" / "demo" / "figures" / "double_column" / "trajectory.png"
    before = png.read_bytes()
    listed = figures_step()
    assert listed.endswith(" []") and int(listed.split()[0]) > 10
    png.write_bytes(b"not the figure")
    assert figures_step().endswith("['matplotlib.pyplot', 'seaborn']")
    assert png.read_bytes() == before


def _title_over_offset_text(width: float):
    # Values near a million: the y axis has an offset text ("1e6") above it, which matplotlib
    # moves the title over.
    fig = figures.plt.figure(figsize=(width, 2.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [1e6, 1e6 + 3])
    ax.set_title("A title over the offset text\nn = 2", loc="left")
    return fig


def _title_over_top_ticks(width: float):
    fig = figures.plt.figure(figsize=(width, 2.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    ax.xaxis.tick_top()
    ax.set_title("A title over tick labels", loc="left")
    return fig


@pytest.mark.parametrize("make", [_title_over_offset_text, _title_over_top_ticks])
def test_titles_matplotlib_moves_up_stay_clear_of_what_is_above_the_axes(make, tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # save keeps titles at the top of their axes without matplotlib's check of what sits above
    # them (figure_files._pin_titles) where nothing does: a title over an offset text or top
    # tick labels must still be drawn clear of them.
    with figures.plt.rc_context(figures.THEME):
        fig = make(figures.SINGLE_COLUMN_IN)
    figures.save(fig, tmp_path, "titled", formats=("png",))
    [ax] = fig.axes
    # Drawn again as in the PNG (save closed the figure's own canvas; the layout is frozen).
    fig.set_dpi(figure_files.DPI["png"])
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    above = [ax.yaxis.offsetText] + [t.label2 for t in ax.xaxis.get_major_ticks()]
    tops = [t.get_window_extent(renderer).ymax for t in above if t.get_visible() and t.get_text()]
    assert tops and ax.get_title(loc="left")
    assert ax._left_title.get_window_extent(renderer).ymin >= max(tops)


def test_a_title_over_an_offset_text_is_placed_as_matplotlib_draws_it(tmp_path):
    make = _title_over_offset_text
    spec = figures.FigureSpec("titled", "caption", figures.drawing(make), widths=("single",))
    tiff, svg = figures.export([spec], tmp_path, formats=("tiff", "svg"))
    pixels, reference_svg = _as_matplotlib_draws_it(make, figures.SINGLE_COLUMN_IN)
    with Image.open(tiff) as image:
        assert np.array_equal(np.asarray(image), pixels)
    assert svg.read_bytes() == reference_svg
