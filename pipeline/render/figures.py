"""Publication figures: one theme, colour-blind-safe, reproducible bytes.

Every figure is drawn at a journal column width (single 3.5 in, double 7 in)
with fonts at print size (7-8 pt), and saved as PNG (300 dpi), TIFF (600 dpi,
LZW, RGB), PDF (TrueType fonts embedded) and SVG (text kept as text). File
metadata that would change from run to run (creation dates, SVG element ids,
zip/TIFF tags) is fixed, so the same inputs give the same bytes. Figures show
groups and distributions only: no subject is ever labelled.

A figure is described by a :class:`FigureSpec` whose ``make(width)`` draws it
for a given width, so the same figure can be re-exported at another width or
resolution (``outcomes export-figures``).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from PIL import Image  # noqa: E402
# The t quantile from scipy.special, what scipy.stats.t.ppf computes: importing scipy.stats
# would add about half a second to the start of every figure worker.
from scipy.special import stdtrit  # noqa: E402

SINGLE_COLUMN_IN = 3.5  # about 85-89 mm, the usual single-column width
DOUBLE_COLUMN_IN = 7.0  # about 180 mm
WIDTHS = {"single": SINGLE_COLUMN_IN, "double": DOUBLE_COLUMN_IN}
# Okabe-Ito palette: distinguishable with every common colour-vision deficiency.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
IMPROVED, WORSENED, UNCHANGED = OKABE_ITO[0], OKABE_ITO[1], "0.65"
# Six ordered grades, light (grade I, normal) to dark (grade VI): the cividis map is
# designed to read the same with deuteranopia and in greyscale.
GRADE_COLOURS = tuple(matplotlib.colormaps["cividis_r"](x) for x in np.linspace(0.05, 0.95, 6))
ROMAN = ("I", "II", "III", "IV", "V", "VI")

THEME = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "lines.linewidth": 1.0,
    # No tight bounding box: the saved figure keeps exactly the column width asked for;
    # constrained layout fits the labels inside it instead.
    "savefig.bbox": None,
    "figure.constrained_layout.use": True,
    "svg.fonttype": "none",   # text stays text in SVG, editable by the journal
    "pdf.fonttype": 42,       # TrueType fonts embedded in PDF
    "svg.hashsalt": "facial-outcomes",  # fixed ids: same figure, same SVG bytes
}

DPI = {"png": 300, "tiff": 600}
DEFAULT_FORMATS = ("png", "tiff", "pdf", "svg")
FOOTER_IN = 0.2  # room at the bottom for the synthetic-data label


@dataclass(frozen=True)
class FigureSpec:
    """One figure of a study: its file stem, a caption, how to draw it at a width, and the
    widths the study run exports (``export-figures`` can ask for any width)."""

    stem: str
    caption: str
    make: Callable[[float], plt.Figure]
    widths: tuple[str, ...] = ("single", "double")


@dataclass(frozen=True)
class Drawing:
    """A figure function with its data, drawn at a width when called: unlike a lambda it can
    be sent to another process, so :func:`export` can draw figures in parallel."""

    function: Callable[..., plt.Figure]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self, width: float) -> plt.Figure:
        return self.function(*self.args, width=width, **self.kwargs)


def drawing(function: Callable[..., plt.Figure], *args, **kwargs) -> Drawing:
    return Drawing(function, args, kwargs)


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


def _rgb(fig: plt.Figure, dpi: int) -> Image.Image:
    """The figure rendered by Agg at ``dpi``, as an RGB image (journals reject alpha channels).

    Drawn on the figure's Agg canvas and read from its buffer in place: at 600 dpi a
    double-column figure is some 70 MB of RGBA, which savefig(format="rgba") would copy twice.
    The figure is opaque, so dropping the alpha channel changes no pixel."""
    original = fig.get_dpi()
    fig.set_dpi(dpi)
    try:
        fig.canvas.draw()
        buffer = fig.canvas.buffer_rgba()
        height, width = buffer.shape[:2]
        return Image.frombuffer("RGBA", (width, height), buffer, "raw", "RGBA", 0, 1).convert("RGB")
    finally:
        fig.set_dpi(original)


# Compression level 1 of 9: PNGs about 8% larger than zlib's default 6, written in half the
# time; the pixels are the same (PNG is lossless) and so are the bytes from run to run.
PNG_COMPRESS_LEVEL = 1


def _save_raster(image: Image.Image, path: Path, ext: str, dpi: int) -> None:
    # Through Pillow, to control the file: RGB, the resolution tag, LZW for TIFF, and no
    # other metadata (no software version or time), so bytes do not drift.
    if ext == "png":
        image.save(path, format="PNG", dpi=(dpi, dpi), compress_level=PNG_COMPRESS_LEVEL)
    else:
        image.save(path, format="TIFF", compression="tiff_lzw", dpi=(dpi, dpi))


# Tables of an embedded TrueType font that a PDF viewer never reads: the PDF names each glyph
# and its place itself (matplotlib works out glyphs and kerning from the font on disk when it
# writes the text). Left out of each figure's font subset, the glyphs and their outlines are the
# same, the PDF is smaller and renders the same, and subsetting takes a fifth of the time
# (fontTools otherwise reads and prunes DejaVu Sans's large GSUB and GPOS tables for every PDF).
PDF_UNUSED_FONT_TABLES = ("GDEF", "GPOS", "GSUB", "kern", "MATH")


@contextmanager
def _pdf_fonts_without_layout_tables():
    """While saving a PDF: fontTools' subsetter drops :data:`PDF_UNUSED_FONT_TABLES` too
    (matplotlib builds the subsetter's options itself, from these defaults)."""
    from fontTools import subset

    default = getattr(subset.Options, "_drop_tables_default", None)
    if not isinstance(default, list):  # another fontTools: subset as matplotlib does
        yield
        return
    subset.Options._drop_tables_default = default + [t for t in PDF_UNUSED_FONT_TABLES if t not in default]
    try:
        yield
    finally:
        subset.Options._drop_tables_default = default


def _save_one(fig: plt.Figure, path: Path, ext: str, dpi: int | None) -> None:
    if ext in DPI:
        _save_raster(_rgb(fig, dpi or DPI[ext]), path, ext, dpi or DPI[ext])
    elif ext == "svg":
        fig.savefig(path, format="svg", metadata={"Date": None})
    elif ext == "pdf":
        with _pdf_fonts_without_layout_tables():
            fig.savefig(path, format="pdf", dpi=dpi or DPI["png"],
                        metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    else:
        raise ValueError(f"unknown figure format {ext!r}; use one of {', '.join(DEFAULT_FORMATS)}")


def save(fig: plt.Figure, folder: Path, stem: str, formats: tuple[str, ...] = DEFAULT_FORMATS,
         dpi: int | None = None) -> list[Path]:
    """Save ``fig`` in each format (``dpi`` overrides the format's default); return the paths."""
    for ext in formats:
        if ext not in DEFAULT_FORMATS:
            raise ValueError(f"unknown figure format {ext!r}; use one of {', '.join(DEFAULT_FORMATS)}")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if not isinstance(fig.canvas, FigureCanvasAgg):  # made without pyplot: Agg lays it out and draws
        FigureCanvasAgg(fig)
    with plt.rc_context(THEME):
        # Lay the figure out once, then freeze it: the layout is in inches and points, the
        # same at every resolution, and recomputing it for each file is most of the cost.
        # The layout engine runs on its own, as a draw would run it first: a whole drawing
        # just to lay the figure out would cost as much again.
        engine = fig.get_layout_engine()
        if fig.axes and engine is not None:
            engine.execute(fig)
    # No layout engine at all from here, not even the placeholder set_layout_engine("none")
    # leaves: with one, every savefig draws the whole figure once without output before drawing
    # it for the file. (savefig puts back an absent engine as the rc settings say: hence these.)
    with plt.rc_context({**THEME, "figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)
        # The layout solver's last bits vary from process to process (its internal maps are
        # keyed by memory address), which would change the files' bytes: snap every axes to
        # 1/10000 of the figure (under 0.001 in), invisible in print.
        for ax in fig.axes:
            ax.set_position([round(v, 4) for v in ax.get_position().bounds])
            # Titles stay at the top of the axes, where matplotlib puts them unless the y axis
            # has an offset text ("1e6") in their way: it otherwise checks that again from every
            # tick label in each file's drawing, a tenth of the whole export.
            if getattr(ax, "_autotitlepos", None) and not ax.yaxis.offsetText.get_text():
                ax._autotitlepos = False
        _pin_best_legends(fig)
        # PNG at 300 dpi from the 600-dpi TIFF rendering, each pixel the mean of 2 x 2:
        # one Agg rendering instead of two, and the PNG is supersampled, not worse.
        shared = None
        if dpi is None and {"png", "tiff"} <= set(formats) and DPI["tiff"] % DPI["png"] == 0:
            shared = _rgb(fig, DPI["tiff"])
        for ext in formats:
            path = folder / f"{stem}.{ext}"
            if shared is not None and ext in DPI:
                image = shared if ext == "tiff" else shared.reduce(DPI["tiff"] // DPI["png"])
                _save_raster(image, path, ext, DPI[ext])
            else:
                _save_one(fig, path, ext, dpi)
            written.append(path)
    plt.close(fig)
    return written


LEGEND_PLACES = ("upper right", "upper left", "lower left", "lower right", "right", "center left",
                 "center right", "lower center", "upper center", "center")


def _pin_best_legends(fig: plt.Figure) -> None:
    """Fix each loc="best" legend at the place matplotlib chose for it, once.

    "best" is one of the ten named places, the one covering the fewest data; finding it tests
    every line of the axes against each place, in every drawing (a third of a slope plot's time
    with hundreds of patients' lines). Chosen once, every file also shows the legend in the
    same place."""
    renderer = None
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or getattr(legend, "_loc", None) != 0:  # not "best" (0)
            continue
        renderer = renderer or fig.canvas.get_renderer()
        chosen = legend.get_window_extent(renderer).bounds
        for place in LEGEND_PLACES:
            legend.set_loc(place)
            if legend.get_window_extent(renderer).bounds == chosen:
                break
        else:  # not at a named place (matplotlib changed how it chooses): choose every time
            legend.set_loc("best")


def width_folder(folder: Path, width: str) -> Path:
    """Single-column files go in ``figures/``, double-column ones in ``figures/double_column/``."""
    return folder if width == "single" else folder / f"{width}_column"


def _draw_and_save(job: tuple[FigureSpec, str, Path, tuple[str, ...], int | None]) -> list[Path]:
    spec, width, folder, formats, dpi = job
    with plt.rc_context(THEME):
        fig = spec.make(WIDTHS[width])
    return save(fig, folder, spec.stem, formats, dpi)


def _workers(n_jobs: int) -> int:
    """Processes for ``n_jobs`` figure files: one per core, but a single process for a few
    figures, where starting another interpreter (about 2 s of imports) costs more than it saves."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, n_jobs // 4))


def export(specs: list[FigureSpec], folder: Path, *, widths: tuple[str, ...] | None = None,
           formats: tuple[str, ...] = DEFAULT_FORMATS, dpi: int | None = None,
           layout: Callable[[Path, str], Path] = width_folder, workers: int | None = None) -> list[Path]:
    """Draw every figure at each width (default: the spec's own widths) and save it in
    every format; returns the paths in a fixed order.

    Figures are independent, so with ``workers`` > 1 (default: one per core when there are
    enough figures) they are drawn in that many processes, this one and ``workers - 1`` fresh
    ones; each file's bytes are the same either way. Specs whose ``make`` cannot be sent to
    another process (a lambda) are drawn here, every time.

    A figure whose data, settings and drawing code are unchanged since it was last written
    here, and whose files are still the bytes written then, is not drawn again: drawing is
    deterministic, so it would give the same bytes. ``folder/.rendered.json`` records, per
    file, the key it was drawn from and its SHA-256.
    """
    jobs = []
    for spec in specs:
        for width in widths or spec.widths:
            if width not in WIDTHS:
                raise ValueError(f"unknown width {width!r}; use single (3.5 in) or double (7 in)")
            jobs.append((spec, width, layout(folder, width), tuple(formats), dpi))
    try:
        # Keyed without the output folder itself, so that the record is the same wherever
        # the reports are written.
        code = _code_key()
        pickled = [pickle.dumps(job[:2] + (_relative(job[2], folder),) + job[3:], protocol=5) for job in jobs]
        keys = [hashlib.sha256(code + data).hexdigest() for data in pickled]
    except (pickle.PicklingError, AttributeError, TypeError):  # a lambda: drawn here, every time
        keys = None
    manifest_path = Path(folder) / RENDERED
    manifest = _read_manifest(manifest_path) if keys else {}
    results: list[list[Path] | None] = [None] * len(jobs)
    todo = []
    for i, job in enumerate(jobs):
        paths = _job_paths(job)
        if keys and all(_unchanged(manifest.get(_relative(path, folder)), keys[i], path) for path in paths):
            results[i] = paths
        else:
            todo.append(i)
    workers = 1 if keys is None else _workers(len(todo)) if workers is None else min(workers, len(todo))
    if workers <= 1:
        drawn = [_draw_and_save(jobs[i]) for i in todo]
    else:
        # The longest drawings first, so that the processes finish together, on short ones:
        # the more data a figure is given (panels, patients) and the wider it is, the longer.
        todo.sort(key=lambda i: (len(pickled[i]), WIDTHS[jobs[i][1]]), reverse=True)
        drawn = _in_processes([jobs[i] for i in todo], workers)
    for i, paths in zip(todo, drawn):
        results[i] = paths
    if keys:
        for i in todo:  # the files left alone keep their entries: already checked above
            for path in results[i]:
                manifest[_relative(path, folder)] = {"key": keys[i], "sha256": _sha256(path)}
        manifest_path.parent.mkdir(parents=True, exist_ok=True)
        partial = manifest_path.with_suffix(".partial")
        partial.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n", encoding="utf-8")
        partial.replace(manifest_path)  # whole or not at all, even if the run is killed here
    return [path for paths in results for path in paths]


RENDERED = ".rendered.json"


def _code_key() -> bytes:
    """What, besides a figure's data and settings, decides its bytes: this module's code and
    the versions of the libraries that draw and encode it."""
    from importlib import metadata

    digest = hashlib.sha256(Path(__file__).read_bytes())
    for package in ("matplotlib", "pillow", "numpy", "pandas", "fonttools"):
        try:
            digest.update(f"{package}={metadata.version(package)};".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=none;".encode())
    return digest.digest()


def _job_paths(job: tuple) -> list[Path]:
    spec, _, folder, formats, _ = job
    return [Path(folder) / f"{spec.stem}.{ext}" for ext in formats]


def _relative(path: Path, folder: Path) -> str:
    path = Path(path)
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else path.as_posix()


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_manifest(path: Path) -> dict[str, dict[str, str]]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: draw everything again
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _unchanged(entry: object, key: str, path: Path) -> bool:
    return (isinstance(entry, dict) and entry.get("key") == key and path.is_file()
            and entry.get("sha256") == _sha256(path))


def _in_processes(jobs: list, workers: int) -> list[list[Path]]:
    """Run :func:`_draw_and_save` over ``jobs`` here and in ``workers - 1`` fresh interpreters
    (``python -m pipeline.render.figures``), each taking the next job as it finishes one.

    Plain subprocesses rather than :mod:`multiprocessing`: its "spawn" re-runs the caller's
    main script in every worker (harmful in a script without a ``__main__`` guard), and
    "fork" would copy a process that may hold DuckDB's or Dagster's threads and locks.
    This process draws too (its other threads only pass jobs to the workers and never touch
    matplotlib), so one core needs no extra interpreter start.
    """
    pending = list(enumerate(jobs))
    results: list[list[Path] | None] = [None] * len(jobs)
    lock = threading.Lock()

    def take():
        with lock:
            return pending.pop(0) if pending else None

    def drive() -> None:
        # In a session of its own: Ctrl-C in the terminal reaches the caller only, which
        # stops handing out jobs and closes the workers' input, so they end quietly.
        worker = subprocess.Popen([sys.executable, "-m", "pipeline.render.figures"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, start_new_session=True)
        try:
            while (item := take()) is not None:
                index, job = item
                pickle.dump(job, worker.stdin)
                worker.stdin.flush()
                try:
                    status, value = pickle.load(worker.stdout)
                except EOFError:
                    raise RuntimeError(f"the process drawing figure {job[0].stem!r} stopped "
                                       f"(exit code {worker.wait()})") from None
                if status != "ok":
                    raise RuntimeError(f"figure {job[0].stem!r} ({job[1]} column) failed: {value}")
                results[index] = value
        finally:
            worker.stdin.close()  # the worker's signal to exit
            worker.wait()

    with ThreadPoolExecutor(workers - 1) as pool:
        try:
            # Inside the try: a Ctrl-C while the workers start must stop the handing out of
            # jobs too, or leaving the pool would wait for the workers to draw every figure.
            drivers = [pool.submit(drive) for _ in range(workers - 1)]
            while (item := take()) is not None:
                index, job = item
                results[index] = _draw_and_save(job)
        except BaseException:  # Ctrl-C included: hand out no more jobs; workers finish their current one
            with lock:
                pending.clear()
            raise
        for done in drivers:
            done.result()
    return results


def _serve() -> None:
    """A figure worker: read pickled jobs from stdin until it closes, answer each on stdout."""
    answers = sys.stdout.buffer
    sys.stdout = sys.stderr  # anything printed while drawing must not corrupt the answers
    while True:
        try:
            job = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        try:
            answer = ("ok", _draw_and_save(job))
        except Exception as err:  # sent back to the caller, which raises it with the figure's name
            answer = ("error", f"{type(err).__name__}: {err}")
        pickle.dump(answer, answers)
        answers.flush()


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


def _jitter(n: int, spread: float = 0.13) -> np.ndarray:
    # Seeded, so the same data give the same picture (and the same bytes).
    return np.random.default_rng(0).uniform(-spread, spread, n)


# --------------------------------------------------------------------------- figures


def slope_plot(pairs: pd.DataFrame, *, title: str, ylabel: str, pre_label: str, post_label: str,
               conf_level: float = 0.95, footer: str = "", width: float = SINGLE_COLUMN_IN) -> plt.Figure:
    """Paired slope plot: one thin line per patient, the mean (with CI) drawn over them.

    ``pairs`` has one row per patient with ``pre_value`` and ``post_value``.
    Patients are not labelled: the figure shows no identifiers. Above
    :data:`INDIVIDUALS_SHOWN` patients the lines are a random sample (the title says so);
    the mean and its CI use every patient.
    """
    with plt.rc_context(THEME):
        fig = _figure(width, 3.0 if width < 5 else 3.4, footer)
        ax = fig.add_subplot()
        pre, post = pairs["pre_value"].to_numpy(float), pairs["post_value"].to_numpy(float)
        # Patients with the same pre and post values share one line, drawn wider: on an
        # ordinal scale (House-Brackmann) lines would otherwise hide one another.
        shown = _shown(pairs)
        shared = shown.groupby(["pre_value", "post_value"]).size().reset_index(name="count")
        # Lines made directly rather than by ax.plot, whose argument handling costs more than the
        # line itself when there are hundreds; the errorbar below rescales the axes to them.
        for a, b, count in shared.itertuples(index=False):
            ax.add_line(Line2D([0, 1], [a, b], color="0.55", alpha=0.45, linewidth=0.6 * np.sqrt(count), zorder=1))
        means, halves = zip(*(_mean_ci(v, conf_level) for v in (pre, post)))
        ax.errorbar([0, 1], means, yerr=halves, color=OKABE_ITO[0], linewidth=2, marker="o",
                    markersize=5, capsize=3, zorder=3, label=f"Mean ({conf_level:.0%} CI)")
        ax.set_xticks([0, 1], [pre_label, post_label])
        ax.set_xlim(-0.3, 1.3)
        ax.set_ylabel(ylabel)
        caption = f"n = {len(pairs):,} patients"
        if len(shown) < len(pairs):
            caption += f"; lines: random {len(shown)}"
        if shared["count"].max() > 1:
            caption += "; wider lines: more patients"
        ax.set_title(_wrap(title, width) + "\n" + _wrap(caption, width), loc="left", fontsize=8)
        ax.legend(frameon=False, loc="best")
    return fig


def prepost_box(panels: list[dict], *, pre_label: str, post_label: str, footer: str = "",
                width: float = DOUBLE_COLUMN_IN) -> plt.Figure:
    """Box plots before and after with every patient's value as a point, one panel per outcome.

    ``panels``: dicts with ``title``, ``ylabel`` and ``pairs`` (``pre_value``, ``post_value``).
    Boxes: median and quartiles, whiskers to the furthest value within 1.5 IQR, from every
    patient; above :data:`INDIVIDUALS_SHOWN` patients the points are a random sample.
    """
    rows, cols = _grid(len(panels), width)
    fig = _figure(width, 2.4 * rows + 0.2, footer)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels):
        data = [panel["pairs"]["pre_value"].to_numpy(float), panel["pairs"]["post_value"].to_numpy(float)]
        box = ax.boxplot(data, positions=[0, 1], widths=0.5, showfliers=False, patch_artist=True,
                         medianprops={"color": "black", "linewidth": 1.2},
                         whiskerprops={"linewidth": 0.8}, capprops={"linewidth": 0.8})
        for patch, colour in zip(box["boxes"], (OKABE_ITO[5], OKABE_ITO[0])):
            patch.set(facecolor=colour, alpha=0.35, edgecolor="black", linewidth=0.8)
        shown = _shown(panel["pairs"])
        for x, column in enumerate(("pre_value", "post_value")):
            values = shown[column].to_numpy(float)
            ax.scatter(x + _jitter(len(values)), values, s=5, color="0.2", alpha=0.6, linewidths=0, zorder=3)
        ax.set_xticks([0, 1], [pre_label, post_label])
        ax.set_xlim(-0.5, 1.5)
        ax.set_ylabel(panel["ylabel"])
        caption = f"n = {len(data[0]):,}" + (f"; points: random {len(shown)}" if len(shown) < len(data[0]) else "")
        ax.set_title(_wrap(panel["title"], width / cols) + "\n" + _wrap(caption, width / cols), loc="left")
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    return fig


def change_distribution(panels: list[dict], *, conf_level: float = 0.95, footer: str = "",
                        width: float = DOUBLE_COLUMN_IN) -> plt.Figure:
    """Histogram of the change scores (after - before) per outcome, coloured by direction,
    with the mean change and its CI above it.

    ``panels``: dicts with ``title``, ``xlabel``, ``diff`` (array) and ``higher_is_better``.
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
        counts, edges = np.histogram(diff, bins=edges)
        centres = (edges[:-1] + edges[1:]) / 2
        sign = 1 if panel["higher_is_better"] else -1
        colours = [IMPROVED if sign * c > 0 else WORSENED if sign * c < 0 else UNCHANGED for c in centres]
        ax.bar(centres, counts, width=np.diff(edges) * 0.9, color=colours, edgecolor="none")
        ax.axvline(0, color="0.3", linewidth=0.6, linestyle=(0, (3, 2)))
        mean, half = _mean_ci(diff, conf_level)
        top = counts.max() * 1.12 + 0.5
        ax.errorbar([mean], [top], xerr=[half], fmt="o", color="black", markersize=3.5, capsize=2.5,
                    linewidth=1)
        ax.set_ylim(0, top * 1.12)
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel("Patients, No.")
        ax.set_title(_wrap(panel["title"], width / cols) + f"\nn = {len(diff)}", loc="left")
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in (IMPROVED, UNCHANGED, WORSENED)]
    handles.append(plt.Line2D([], [], marker="o", color="black", markersize=3.5, linewidth=1))
    fig.legend(handles, ["Improved", "Unchanged", "Worsened", f"Mean change ({conf_level:.0%} CI)"],
               loc="outside upper center", ncols=4 if width > 5 else 2, frameon=False)
    return fig


def grade_shift(panels: list[dict], *, pre_label: str, post_label: str, footer: str = "",
                width: float = DOUBLE_COLUMN_IN) -> plt.Figure:
    """House-Brackmann grade distribution before and after, as 100% stacked bars.

    ``panels``: dicts with ``title`` and ``pairs`` (``pre_value``, ``post_value`` as grades 1-6);
    only patients with both grades are counted, so the two bars hold the same patients.
    """
    rows = len(panels)
    fig = _figure(width, 0.9 * rows + 0.75, footer)
    axes = np.atleast_1d(fig.subplots(rows, 1, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels):
        n = len(panel["pairs"])
        for y, column in ((1, "pre_value"), (0, "post_value")):
            counts = panel["pairs"][column].round().astype(int).value_counts()
            left = 0.0
            for grade in range(1, 7):
                share = 100 * counts.get(grade, 0) / n if n else 0
                ax.barh(y, share, left=left, color=GRADE_COLOURS[grade - 1], height=0.7,
                        edgecolor="white", linewidth=0.4, label=ROMAN[grade - 1] if y else None)
                if share >= 9:
                    ax.text(left + share / 2, y, f"{share:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if grade >= 4 else "black")
                left += share
        ax.set_yticks([1, 0], [pre_label, post_label])
        ax.set_xlim(0, 100)
        ax.set_title(f"{panel['title']} (n = {n})", loc="left")
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
    axes[-1].set_xlabel("Patients, %")
    for ax in axes[:-1]:
        ax.set_xticklabels([])
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=6, frameon=False,
               handlelength=1, columnspacing=1.2, title="House-Brackmann grade (I normal, VI total paralysis)",
               title_fontsize=7)
    return fig


def patient_flow(flow: pd.DataFrame, *, subjects_file: str, footer: str = "",
                 width: float = SINGLE_COLUMN_IN) -> plt.Figure:
    """Patient flow diagram (STROBE 13c): records, excluded, included, analysed per outcome.

    ``flow`` is :func:`pipeline.render.tables.flow_counts`.
    """
    first = flow.iloc[0]
    n_out = len(flow)
    side_by_side = width > 5
    height = 2.75 if side_by_side else 1.75 + 0.55 * n_out + (FOOTER_IN if footer else 0)
    fig = _figure(width, height, footer)
    fig.set_layout_engine("none")
    ax = fig.add_axes((0, FOOTER_IN / height if footer else 0, 1, 1 - (FOOTER_IN / height if footer else 0)))
    ax.set_axis_off()
    ax.set_xlim(0, width)
    usable = height - (FOOTER_IN if footer else 0)
    ax.set_ylim(0, usable)

    def box(x, y, w, h, text, colour="white"):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.04",
                                    facecolor=colour, edgecolor="0.2", linewidth=0.7))
        ax.text(x, y, text, ha="center", va="center", fontsize=7, linespacing=1.25)

    def arrow(x0, y0, x1, y1):
        ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "-|>", "color": "0.2", "lw": 0.7,
                                                         "shrinkA": 0, "shrinkB": 0, "mutation_scale": 7})

    main_w, box_h = (2.4 if side_by_side else 1.8), 0.42
    main_x = width * 0.3 if side_by_side else 0.4 + main_w / 2  # room on the left for the trunk line
    top_y = usable - 0.3
    incl_y = top_y - 0.85
    box(main_x, top_y, main_w, box_h, f"Patient records in {subjects_file}\nn = {first['records']}")
    ex_x, ex_w = main_x + main_w / 2 + (width - main_x - main_w / 2) / 2, min(2.0, width - main_x - main_w / 2 - 0.15)
    ex_y = (top_y + incl_y) / 2
    box(ex_x, ex_y, ex_w, 0.36, f"Excluded at ingest\nn = {first['excluded']}", "#f2f2f2")
    arrow(main_x, top_y - box_h / 2, main_x, incl_y + box_h / 2)
    arrow(main_x, ex_y, ex_x - ex_w / 2, ex_y)
    box(main_x, incl_y, main_w, box_h, f"Included\nn = {first['included']}")
    text = [f"{_wrap(r.label, 1.6 if side_by_side else 2.9, 16)}\nAnalysed n = {r.analysed}; "
            f"not analysed {r.not_analysed}" for r in flow.itertuples()]
    if side_by_side:
        w = (width - 0.3) / n_out - 0.12
        y = incl_y - 1.0
        for i, t in enumerate(text):
            x = 0.15 + (w + 0.12) * i + w / 2
            box(x, y, w, 0.62, t)
            arrow(main_x, incl_y - box_h / 2, x, y + 0.31)
    else:
        w, x = width - 0.6, width / 2
        ax.plot([0.2, 0.2], [incl_y, incl_y - 0.6 - 0.55 * (n_out - 1)], color="0.2", lw=0.7)
        ax.plot([main_x - main_w / 2, 0.2], [incl_y, incl_y], color="0.2", lw=0.7)
        for i, t in enumerate(text):
            y = incl_y - 0.6 - 0.55 * i
            box(x + 0.1, y, w - 0.2, 0.46, t)
            arrow(0.2, y, x + 0.1 - (w - 0.2) / 2, y)
    return fig


def bland_altman(panels: list[dict], *, footer: str = "", width: float = SINGLE_COLUMN_IN) -> plt.Figure:
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
        distinct = pd.DataFrame({"m": mean, "d": diff}).value_counts(sort=False).reset_index(name="count")
        points = _shown(distinct)
        ax.scatter(points["m"], points["d"], s=6 * np.sqrt(points["count"]) ** 2 / 2 + 4, color=OKABE_ITO[0],
                   alpha=0.55, linewidths=0)
        bias, sd = float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
        for value, style, text in ((bias, "-", f"Bias {bias:.2f}"),
                                   (bias + 1.96 * sd, "--", f"+1.96 SD {bias + 1.96 * sd:.2f}"),
                                   (bias - 1.96 * sd, "--", f"-1.96 SD {bias - 1.96 * sd:.2f}")):
            ax.axhline(value, color=OKABE_ITO[1] if style == "-" else "0.3", linestyle=style, linewidth=0.8)
            ax.text(1.0, value, " " + text, transform=ax.get_yaxis_transform(), fontsize=6, va="center",
                    ha="left", clip_on=False)
        ax.set_xlabel(f"Mean of {panel['a_label']} and {panel['b_label']}")
        ax.set_ylabel(f"{panel['a_label']} - {panel['b_label']}".capitalize())
        caption = f"{len(diff):,} paired ratings"
        if len(points) < len(distinct):
            caption += f"; points: random {len(points)} of {len(distinct):,} distinct"
        ax.set_title(_wrap(panel["title"], width / cols) + "\n" + _wrap(caption, width / cols), loc="left")
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    return fig


def trajectory(panels: list[dict], *, conf_level: float = 0.95, footer: str = "",
               width: float = DOUBLE_COLUMN_IN) -> plt.Figure:
    """Model-estimated mean per visit with its CI, one panel per outcome.

    ``panels``: dicts with ``title``, ``ylabel`` and ``estimates`` (``x`` position,
    ``tick`` label, ``estimate``, ``ci_low``, ``ci_high``) from the tidy model table.
    """
    rows, cols = _grid(len(panels), width)
    fig = _figure(width, 2.3 * rows + 0.1, footer)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels):
        e = panel["estimates"].sort_values("x")
        ax.fill_between(e["x"], e["ci_low"], e["ci_high"], color=OKABE_ITO[0], alpha=0.18, linewidth=0)
        ax.plot(e["x"], e["estimate"], marker="o", markersize=3.5, color=OKABE_ITO[0])
        ax.set_xticks(e["x"], e["tick"])
        ax.set_ylabel(panel["ylabel"])
        ax.set_title(_wrap(panel["title"], width / cols) + f"\nmodel mean ({conf_level:.0%} CI)", loc="left")
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    return fig


def forest(rows_frame: pd.DataFrame, *, xlabel: str, footer: str = "",
           width: float = DOUBLE_COLUMN_IN) -> plt.Figure:
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
    ax.errorbar(estimate, est["y"].to_numpy(float), xerr=np.vstack([estimate - low, high - estimate]),
                fmt="s", color=OKABE_ITO[0], markersize=3.5, capsize=0, linewidth=1)
    ax.axvline(0, color="0.3", linewidth=0.6, linestyle=(0, (3, 2)))
    labels = [(f"{r.label} (n = {int(r.n)})" if pd.notna(r.n) else str(r.label)) for r in data.itertuples()]
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

    exists = scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                         "AND table_name = ?", [study_name, table])
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
    from pipeline.render import tables
    from pipeline.pairing import outcomes_frame
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
        subset = read_frame(con, f"SELECT pre_value, post_value, diff FROM {s}.pairs "
                                 "WHERE outcome = ? AND score = ?", [row.outcome, row.score])
        if subset.empty:
            continue
        score = study.instrument(row.instrument).score(row.score, getattr(row, "version", "") or None)
        direction = "higher is better" if score.higher_is_better else "lower is better"
        panels.append({"outcome": row.outcome, "score": row.score, "instrument": row.instrument,
                       "rater": row.rater, "title": row.label, "pairs": subset,
                       "ylabel": f"{score.label} ({direction})", "xlabel": f"Change in {score.label.lower()}",
                       "diff": subset["diff"].to_numpy(float), "higher_is_better": score.higher_is_better})

    for p in panels:
        specs.append(FigureSpec(
            f"slope_{p['outcome']}_{p['score']}",
            f"{p['title']} before and after surgery: one line per patient, mean with "
            f"{plan.conf_level:.0%} CI.",
            drawing(slope_plot, p["pairs"], title=p["title"], ylabel=p["ylabel"], pre_label=pre_label,
                    post_label=post_label, conf_level=plan.conf_level, footer=footer),
            # A two-time-point plot is a single-column figure; export-figures draws it wider on demand.
            widths=("single",)))
    if panels:
        specs.append(FigureSpec(
            "prepost_box", "Outcomes before and after surgery: box plots (median, quartiles, whiskers to "
                           "1.5 IQR) with every patient's value.",
            drawing(prepost_box, panels, pre_label="Before", post_label="After", footer=footer)))
        specs.append(FigureSpec(
            "change_distribution", f"Distribution of the change (after - before) per outcome, coloured "
                                   f"by direction, with the mean change and its {plan.conf_level:.0%} CI.",
            drawing(change_distribution, panels, conf_level=plan.conf_level, footer=footer)))
    hb = [p for p in panels if p["instrument"] == "house_brackmann"]
    if hb:
        hb_panels = [{"title": p["title"].replace("House-Brackmann grade ", "").strip("()").capitalize()
                      if p["rater"] else p["title"], "pairs": p["pairs"]} for p in hb]
        specs.append(FigureSpec(
            "grade_shift_house_brackmann", "House-Brackmann grade before and after surgery, patients "
                                           "with both grades.",
            drawing(grade_shift, hb_panels, pre_label="Before", post_label="After", footer=footer)))
    summary = read_frame(con, f"SELECT * FROM {s}.pairing_summary")
    source = read_frame(con, f"SELECT * FROM {s}.source_files WHERE file = ?", [study.subjects_path.name])
    if len(summary) and len(source):
        flow = tables.flow_counts(source, summary, planned)
        specs.append(FigureSpec(
            "patient_flow", "Patient flow: records, exclusions, inclusion and analysis per outcome.",
            drawing(patient_flow, flow, subjects_file=study.subjects_path.name, footer=footer)))

    # Rater agreement: instruments scored by two raters at the same visits.
    two_raters = planned[planned["rater"] != ""].groupby(["instrument", "score"])["rater"].unique()
    agreement = []
    for (instrument, score_name), raters in two_raters.items():
        if len(raters) < 2:
            continue
        a_rater, b_rater = raters[0], raters[1]
        both = read_frame(con, f"""
            SELECT a.value AS a, b.value AS b FROM {s}.scores a JOIN {s}.scores b USING (subject, visit, instrument, score)
            WHERE a.instrument = ? AND a.score = ? AND a.rater = ? AND b.rater = ?
              AND a.value IS NOT NULL AND b.value IS NOT NULL ORDER BY subject, visit
        """, [instrument, score_name, a_rater, b_rater])
        if len(both) > 2:
            measure = study.instrument(instrument)
            label = measure.score(score_name, planned.loc[planned["instrument"] == instrument, "version"].iloc[0]
                                  or None if "version" in planned else None)
            agreement.append({"title": f"{measure.label} {label.label.lower()}, all visits",
                              "a": both["a"], "b": both["b"], "a_label": a_rater, "b_label": b_rater})
    if agreement:
        specs.append(FigureSpec(
            "rater_agreement", "Agreement between raters (Bland-Altman): difference against mean of the "
                               "two ratings, with the bias and 95% limits of agreement.",
            drawing(bland_altman, agreement, footer=footer)))

    headline_keys = [(p["outcome"], p["score"]) for p in panels]
    estimates = _table(con, s, VISIT_ESTIMATES, ("outcome", "score", "visit", "estimate", "ci_low", "ci_high"))
    if estimates is not None:
        trajectory_panels = []
        for p in panels:
            e = estimates[(estimates["outcome"] == p["outcome"]) & (estimates["score"] == p["score"])]
            e = e[e["estimate"].notna()]
            if len(e) < 2:
                continue
            # Visits evenly spaced in the order of their median day: true spacing crowds the
            # labels of visits a few weeks apart (e.g. m12 and the last follow-up).
            if "median_day" in e:
                e = e.sort_values("median_day", kind="stable")
            trajectory_panels.append({"title": p["title"], "ylabel": p["ylabel"],
                                      "estimates": e.assign(x=np.arange(len(e), dtype=float),
                                                            tick=e["visit"].astype(str))})
        if trajectory_panels:
            specs.append(FigureSpec(
                "trajectory", f"Model-estimated mean per visit (visits in the order of their median day) with "
                              f"{plan.conf_level:.0%} CI.",
                drawing(trajectory, trajectory_panels, conf_level=plan.conf_level, footer=footer)))
    subgroups = _table(con, s, SUBGROUPS, ("outcome", "score", "group", "mean_diff", "ci_low", "ci_high"))
    if subgroups is not None and headline_keys:
        # The first planned outcome only: a forest of every outcome would be unreadable.
        outcome, score_name = headline_keys[0]
        g = subgroups[(subgroups["outcome"] == outcome) & (subgroups["score"] == score_name)
                      & subgroups["mean_diff"].notna()]
        if len(g):
            forest_rows = pd.DataFrame({"label": g["group"].astype(str), "estimate": g["mean_diff"],
                                        "ci_low": g["ci_low"], "ci_high": g["ci_high"],
                                        "n": g["n_pairs"] if "n_pairs" in g else np.nan})
            title = panels[0]["title"]
            specs.append(FigureSpec(
                "subgroup_forest", f"{title}: mean change by subgroup with {plan.conf_level:.0%} CI "
                                   "(exploratory).",
                drawing(forest, forest_rows, xlabel=f"Mean change in {title} (after - before)", footer=footer)))
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
    notes = [f"{row.label}: not drawn, no patient has both a before and an after value."
             for row in planned.drop_duplicates(["instrument", "rater"]).itertuples()
             if (row.outcome, row.score) not in paired]
    if not len(read_frame(con, f"SELECT 1 FROM {s}.pairing_summary LIMIT 1")):
        notes.append("Patient flow: not drawn, no planned outcome has a value.")
    return notes


if __name__ == "__main__":
    # Serve from the imported module, not this __main__ copy, so the jobs' classes are one.
    from pipeline.render.figures import _serve as serve

    serve()
