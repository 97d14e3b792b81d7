"""Figure files: PNG, TIFF, PDF and SVG written reproducibly with the figure's source data (CSV),
the render cache, and the processes that draw figures in parallel. What a figure shows is in
:mod:`pipeline.render.figures`.

A figure can be saved as PNG (300 dpi), TIFF (600 dpi, LZW, RGB), PDF (TrueType fonts
embedded) and SVG (text kept as text) at a journal column width (single 3.5 in, double 7 in):
a study run writes those its spec's ``[figures]`` asks for (by default the PNG its report
shows), ``outcomes export-figures`` any of them; each figure is laid out once per width and
every format written from that one figure.
File metadata that would change from run to run (creation dates, SVG element ids, zip/TIFF
tags) is fixed, so the same inputs give the same bytes.

A figure is described by a :class:`FigureSpec` whose ``make(width)`` draws it for a given
width, so the same figure can be re-exported at another width or resolution
(``outcomes export-figures``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import json
import pickle
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pipeline import files
from pipeline.render import figure_processes

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    from PIL import Image

# matplotlib, seaborn and Pillow are imported when a figure is drawn or saved, not with this
# module: listing a study's figures (pipeline.render.figure_list) and finding them unchanged
# in the render cache import none of them (about a second in a fresh process).
THEME_MODULE = "pipeline.render.figure_theme"

SINGLE_COLUMN_IN = 3.5  # about 85-89 mm, the usual single-column width
DOUBLE_COLUMN_IN = 7.0  # about 180 mm
# The tallest figure a journal page holds with its caption (a page's text block is about 9.5 in).
PAGE_HEIGHT_IN = 9.0
WIDTHS = {"single": SINGLE_COLUMN_IN, "double": DOUBLE_COLUMN_IN}
DPI = {"png": 300, "tiff": 600}
# "csv" is the figure's source data, beside its pictures: the numbers each mark is drawn from,
# as a tidy table at full precision (:func:`attach_source`). A figure without them has none.
SOURCE_DATA = "csv"
DEFAULT_FORMATS = ("png", "tiff", "pdf", "svg", SOURCE_DATA)


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
    be sent to another process, so :func:`export` can draw figures in parallel.

    ``function`` is the function itself or its name, ``"module:function"``, imported only when
    the figure is drawn: a study's figures are listed that way (:mod:`pipeline.render.figure_list`)
    so that a run finding them all unchanged never imports what draws them."""

    function: Callable[..., plt.Figure] | str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self, width: float) -> plt.Figure:
        return self.drawn_by()(*self.args, width=width, **self.kwargs)

    def drawn_by(self) -> Callable[..., plt.Figure]:
        """The figure function (imported if named)."""
        if isinstance(self.function, str):
            module, _, name = self.function.partition(":")
            return getattr(importlib.import_module(module), name)
        return self.function

    @property
    def module(self) -> str:
        """The name of the module that draws the figure."""
        if isinstance(self.function, str):
            return self.function.partition(":")[0]
        return getattr(self.function, "__module__", "") or ""


def drawing(function: Callable[..., plt.Figure] | str, *args, **kwargs) -> Drawing:
    return Drawing(function, args, kwargs)


def attach_source(fig: plt.Figure, frame) -> plt.Figure:
    """Give ``fig`` its source data: a tidy DataFrame, one row per mark (or per value a mark is
    drawn from), with no identifier (individual marks are numbered, never named by subject).
    :func:`save` writes it as ``<stem>.csv`` beside the pictures."""
    fig.source_data = frame.reset_index(drop=True)
    return fig


def source_data(fig: plt.Figure):
    """The source data :func:`attach_source` gave ``fig``, or None."""
    return getattr(fig, "source_data", None)


def width_folder(folder: Path, width: str) -> Path:
    """Single-column files go in ``figures/``, double-column ones in ``figures/double_column/``."""
    return folder if width == "single" else folder / f"{width}_column"


# --------------------------------------------------------------------------- writing the files


def _rgb(fig: plt.Figure, dpi: int) -> Image.Image:
    """The figure rendered by Agg at ``dpi``, as an RGB image (journals reject alpha channels).

    Drawn on the figure's Agg canvas and read from its buffer in place: at 600 dpi a
    double-column figure is some 70 MB of RGBA, which savefig(format="rgba") would copy twice.
    The figure is opaque, so dropping the alpha channel changes no pixel."""
    from PIL import Image

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
    # Encoded in memory and written only if the bytes changed (pipeline.files).
    buffer = io.BytesIO()
    if ext == "png":
        image.save(buffer, format="PNG", dpi=(dpi, dpi), compress_level=PNG_COMPRESS_LEVEL)
    else:
        image.save(buffer, format="TIFF", compression="tiff_lzw", dpi=(dpi, dpi))
    files.write_bytes(path, buffer.getvalue())


# Tables of an embedded TrueType font that a PDF viewer never reads: the PDF names each glyph
# and its place itself (matplotlib works out glyphs and kerning from the font on disk when it
# writes the text). Left out of each figure's font subset, the glyphs and their outlines are the
# same, the PDF is smaller and renders the same, and subsetting takes a fifth of the time
# (fontTools otherwise reads and prunes DejaVu Sans's large GSUB and GPOS tables for every PDF).
PDF_UNUSED_FONT_TABLES = ("GDEF", "GPOS", "GSUB", "kern", "MATH")


@contextmanager
def _pdf_fonts_without_layout_tables():
    """While saving a PDF: fontTools' subsetter drops :data:`PDF_UNUSED_FONT_TABLES` too.

    matplotlib builds the subsetter's options itself, with no way to pass tables to drop, so
    this changes the default list those options start from, ``subset.Options._drop_tables_default``:
    a private attribute of fontTools (a class attribute since at least fontTools 4.0). If a
    fontTools release renames it, PDFs are subset as matplotlib does by default, whole layout
    tables included: larger and slower to write, the same on the page."""
    from fontTools import subset

    default = getattr(subset.Options, "_drop_tables_default", None)
    if not isinstance(default, list):  # another fontTools: subset as matplotlib does
        yield
        return
    subset.Options._drop_tables_default = default + [
        t for t in PDF_UNUSED_FONT_TABLES if t not in default
    ]
    try:
        yield
    finally:
        subset.Options._drop_tables_default = default


def _save_one(fig: plt.Figure, path: Path, ext: str, dpi: int | None) -> None:
    if ext == SOURCE_DATA:
        from pipeline.render.writers import write_results

        write_results(source_data(fig), path.parent, path.stem)
    elif ext in DPI:
        _save_raster(_rgb(fig, dpi or DPI[ext]), path, ext, dpi or DPI[ext])
    elif ext == "svg":
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        files.write_bytes(path, buffer.getvalue())
    elif ext == "pdf":
        buffer = io.BytesIO()
        with _pdf_fonts_without_layout_tables():
            fig.savefig(
                buffer,
                format="pdf",
                dpi=dpi or DPI["png"],
                metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
            )
        files.write_bytes(path, buffer.getvalue())
    else:
        raise ValueError(f"unknown figure format {ext!r}; use one of {', '.join(DEFAULT_FORMATS)}")


def save(
    fig: plt.Figure,
    folder: Path,
    stem: str,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    dpi: int | None = None,
) -> list[Path]:
    """Save ``fig`` in each format (``dpi`` overrides the format's default); return the paths.
    Its source data (``csv``) are written only if it has them (:func:`attach_source`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    plt, THEME = _pyplot()
    for ext in formats:
        if ext not in DEFAULT_FORMATS:
            raise ValueError(
                f"unknown figure format {ext!r}; use one of {', '.join(DEFAULT_FORMATS)}"
            )
    folder.mkdir(parents=True, exist_ok=True)
    if source_data(fig) is None:
        formats = tuple(ext for ext in formats if ext != SOURCE_DATA)
    written = []
    if not isinstance(
        fig.canvas, FigureCanvasAgg
    ):  # made without pyplot: Agg lays it out and draws
        FigureCanvasAgg(fig)
    with plt.rc_context(THEME):
        # Lay the figure out once, then freeze it: the layout is in inches and points, the
        # same at every resolution, and recomputing it for each file is most of the cost.
        # The layout engine runs on its own, as a draw would run it first: a whole drawing
        # just to lay the figure out would cost as much again.
        engine = fig.get_layout_engine()
        if fig.axes and engine is not None:
            pinned = _pin_titles(fig)
            engine.execute(fig)
            if not _titles_clear(fig, pinned):  # matplotlib would have moved one: let it
                for ax in pinned:
                    ax._autotitlepos = True
                engine.execute(fig)
    # No layout engine at all from here, not even the placeholder set_layout_engine("none")
    # leaves: with one, every savefig draws the whole figure once without output before drawing
    # it for the file. (savefig puts back an absent engine as the rc settings say: hence these.)
    with plt.rc_context(
        {**THEME, "figure.autolayout": False, "figure.constrained_layout.use": False}
    ):
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


def _pin_titles(fig: plt.Figure) -> list[plt.Axes]:
    """Keep the titles of the axes where matplotlib leaves them anyway at the top of the axes,
    without its checking that again from each axis' ticks in every pass of the layout (a fifth
    of the layout's time); return those axes.

    matplotlib moves a title up only over what sits above its axes: x tick labels or an x label
    at the top, a twin's, or the y axis' offset text ("1e6"). Axes with none of the first three
    are pinned here; :func:`_titles_clear` checks the rest once the layout is done."""
    pinned = []
    for ax in fig.axes:
        if (
            getattr(ax, "_autotitlepos", None)
            and not ax.child_axes
            and list(ax._twinned_axes.get_siblings(ax)) == [ax]
            and list(fig._align_label_groups["title"].get_siblings(ax)) == [ax]
            and ax.xaxis.get_ticks_position() == "bottom"
            and ax.xaxis.get_label_position() == "bottom"
        ):
            ax._autotitlepos = False
            pinned.append(ax)
    return pinned


def _titles_clear(fig: plt.Figure, pinned: list[plt.Axes]) -> bool:
    """Whether each title pinned by :func:`_pin_titles` is where matplotlib would have left it:
    no offset text on the y axis, and the title wholly above its axes."""
    renderer = fig.canvas.get_renderer()
    for ax in pinned:
        if ax.yaxis.offsetText.get_visible() and ax.yaxis.offsetText.get_text():
            return False
        for title in (ax.title, ax._left_title, ax._right_title):
            if title.get_text() and title.get_window_extent(renderer).ymin < ax.bbox.ymax:
                return False
    return True


LEGEND_PLACES = (
    "upper right",
    "upper left",
    "lower left",
    "lower right",
    "right",
    "center left",
    "center right",
    "lower center",
    "upper center",
    "center",
)


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


# --------------------------------------------------------------------------- exporting a study's
# figures


def _pyplot():
    """pyplot and the figures' theme, whose module puts matplotlib on the Agg backend (files
    only, never a window; switched before any figure exists, so the import order is free)."""
    import matplotlib.pyplot as plt

    from pipeline.render.figure_theme import THEME

    return plt, THEME


def _draw_and_save(job: tuple[FigureSpec, str, Path, tuple[str, ...], int | None]) -> list[Path]:
    spec, width, folder, formats, dpi = job
    plt, THEME = _pyplot()
    with plt.rc_context(THEME):
        fig = spec.make(WIDTHS[width])
    return save(fig, folder, spec.stem, formats, dpi)


def _workers(n_jobs: int) -> int:
    """Processes for ``n_jobs`` figure files: this one and the warm workers a run started
    (:mod:`pipeline.render.figure_processes`); without them, one per idle core, but a single
    process for a few figures, where starting another interpreter (about 2 s of imports) costs
    more than it saves. The files' bytes are the same either way."""
    warm = figure_processes.warm_workers()
    if warm is not None:
        return max(1, min(warm[1] + 1, n_jobs))
    return max(1, min(figure_processes.idle_cores(), n_jobs // 4))


def export(
    specs: list[FigureSpec],
    folder: Path,
    *,
    widths: tuple[str, ...] | None = None,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    dpi: int | None = None,
    layout: Callable[[Path, str], Path] = width_folder,
    workers: int | None = None,
) -> list[Path]:
    """Draw every figure at each width (default: the spec's own widths) and save it in
    every format; returns the paths in a fixed order.

    Figures are independent, so with ``workers`` > 1 (default: one per core when there are
    enough figures) they are drawn in that many processes, this one and ``workers - 1`` others
    (:func:`_in_processes`); each file's bytes are the same either way. Specs whose ``make``
    cannot be sent to another process (a lambda) are drawn here, every time.

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
        # the reports are written, and by what the drawing is made from (its stem and drawing
        # function with its data), not by the other widths asked for or the caption, which
        # change no file of it.
        code = _code_key(specs)
        pickled = [
            pickle.dumps(((spec.stem, spec.make), width, _relative(out, folder), *rest), protocol=5)
            for spec, width, out, *rest in jobs
        ]
        keys = [hashlib.sha256(code + data).hexdigest() for data in pickled]
    except (pickle.PicklingError, AttributeError, TypeError):  # a lambda: drawn here, every time
        keys = None
    manifest_path = Path(folder) / RENDERED
    manifest = _read_manifest(manifest_path) if keys else {}
    results: list[list[Path] | None] = [None] * len(jobs)
    todo = []
    for i, job in enumerate(jobs):
        # Source data are checked where the figure had them when written (patient flow has none).
        paths = [
            path
            for path in _job_paths(job)
            if path.suffix != f".{SOURCE_DATA}" or _relative(path, folder) in manifest
        ]
        if keys and all(
            _unchanged(manifest.get(_relative(path, folder)), keys[i], path) for path in paths
        ):
            results[i] = paths
        else:
            todo.append(i)
    workers = (
        1 if keys is None else _workers(len(todo)) if workers is None else min(workers, len(todo))
    )
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
        _write_manifest(manifest_path, manifest)
    return [path for paths in results for path in paths]


RENDERED = ".rendered.json"


def widths_for(spec: FigureSpec, asked: tuple[str, ...]) -> tuple[str, ...]:
    """The widths a study run draws ``spec`` at: its widest (the one the report shows, last of
    ``spec.widths``) and those of ``asked`` it is made for, in the spec's order."""
    return tuple(w for w in spec.widths if w in asked or w == spec.widths[-1])


def remove_unwritten(folder: Path, written: list[Path]) -> list[Path]:
    """Remove the files :func:`export` recorded in ``folder/.rendered.json`` that ``written``
    does not list (a format or width the study no longer asks for, a figure it no longer
    draws), and their entries; return the paths removed.

    Without this a figure drawn again from new data would sit beside an older file of the same
    figure in another format, showing the old data. Only files written here are removed."""
    folder = Path(folder)
    manifest_path = folder / RENDERED
    manifest = _read_manifest(manifest_path)
    keep = {_relative(path, folder) for path in written}
    gone = sorted(name for name in manifest if name not in keep)
    if not gone:
        return []
    removed = []
    for name in gone:
        path = folder / name
        if path.is_file():
            path.unlink()
            removed.append(path)
        del manifest[name]
    _write_manifest(manifest_path, manifest)
    return removed


def _write_manifest(path: Path, manifest: dict) -> None:
    """Write the render record whole (through a partial file replaced in one step, even if the
    run is killed here), unless it already holds exactly this."""
    text = json.dumps(dict(sorted(manifest.items())), indent=1) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


SOURCE_DATA_WRITER = "pipeline.render.writers"
# Modules whose code gives a drawing module's figures their numbers, beside its own (the
# directions of change are the change_direction analysis's, the estimates the paired tests'):
# a change to them draws those figures again.
DRAWN_WITH = {
    "pipeline.render.figures": (
        "pipeline.statistics.ordinal",
        "pipeline.statistics.paired",
        "pipeline.statistics.grouped",
    ),
}


def _source(module: str) -> Path | None:
    """The file of a module's source, found without importing it (None for one without)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.has_location else None


def _code_key(specs: list[FigureSpec]) -> bytes:
    """What, besides a figure's data and settings, decides its bytes: this module's code and the
    theme's, the code of the modules whose functions draw the figures, and the versions of the
    libraries that draw and encode them."""
    from importlib import metadata

    # The source data are written by the result tables' CSV writer.
    modules = {THEME_MODULE, SOURCE_DATA_WRITER}
    for spec in specs:
        drawn = (
            spec.make.module
            if isinstance(spec.make, Drawing)
            else getattr(spec.make, "__module__", "")
        )
        # Modules whose functions the drawing calls for its numbers decide the figure too.
        modules.update((drawn, *DRAWN_WITH.get(drawn, ())))
    sources = {Path(__file__), *(_source(name) for name in modules if name)}
    digest = hashlib.sha256()
    for source in sorted(s for s in sources if s is not None):
        digest.update(source.read_bytes())
    for package in ("matplotlib", "seaborn", "pillow", "numpy", "pandas", "fonttools"):
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
    return (
        isinstance(entry, dict)
        and entry.get("key") == key
        and path.is_file()
        and entry.get("sha256") == _sha256(path)
    )


# --------------------------------------------------------------------------- drawing in parallel


def _in_processes(jobs: list, workers: int) -> list[list[Path]]:
    """Run :func:`_draw_and_save` over ``jobs`` here and in ``workers - 1`` other processes,
    each taking the next job as it finishes one.

    The other processes are the run's warm workers when it started enough
    (:func:`pipeline.render.figure_processes.start`), kept for its next figures; otherwise a pool
    started for these jobs (:func:`pipeline.render.figure_processes.new_pool`) and let go after.

    One thread here per worker process hands it a job, waits for its files, then hands it the
    next: a job is given to a worker only when it is free, never queued ahead. This process
    draws too (the threads only pass jobs and never touch matplotlib), so one core needs no
    extra interpreter start.

    Ctrl-C: the workers ignore it (blocked from their start,
    :func:`~pipeline.render.figure_processes.worker_ignores_ctrl_c`), so it interrupts this
    process only. Its main thread stops handing out jobs, each worker finishes the figure it is
    drawing (so no file is left half-written) and gets no other, and KeyboardInterrupt goes on up
    to the caller.
    """
    pending = deque(enumerate(jobs))
    results: list[list[Path] | None] = [None] * len(jobs)
    lock = threading.Lock()

    def take():
        with lock:
            return pending.popleft() if pending else None

    def hand_out(pool: ProcessPoolExecutor) -> None:
        while (item := take()) is not None:
            index, job = item
            try:
                results[index] = pool.submit(_draw_and_save, job).result()
            except BrokenProcessPool as err:
                raise RuntimeError(f"the process drawing figure {job[0].stem!r} stopped") from err
            except Exception as err:
                raise RuntimeError(
                    f"figure {job[0].stem!r} ({job[1]} column) failed: {type(err).__name__}: {err}"
                ) from err

    warm = figure_processes.warm_workers()
    own = warm is None or warm[1] < workers - 1
    pool = figure_processes.new_pool(workers - 1) if own else warm[0]
    finished = False
    try:
        with ThreadPoolExecutor(
            workers - 1, initializer=figure_processes.without_ctrl_c_here
        ) as threads:
            try:
                # Inside the try: a Ctrl-C while the workers start must stop the handing out of
                # jobs too, or leaving the pool would wait for the workers to draw every figure.
                handing_out = [threads.submit(hand_out, pool) for _ in range(workers - 1)]
                while (item := take()) is not None:
                    index, job = item
                    results[index] = _draw_and_save(job)
            except (
                BaseException
            ):  # Ctrl-C included: hand out no more jobs; workers finish their current one
                with lock:
                    pending.clear()
                raise
            for done in handing_out:
                done.result()
        finished = True
    finally:
        # Every figure drawn: a pool of these jobs' own is told to stop but not waited for, as a
        # worker's interpreter takes a good part of a second to end, with nothing left to write
        # (its files were written before it returned them); warm workers stay for the run's
        # next figures. Otherwise, as the pool's context would: wait for each worker to finish
        # the figure it holds, so no file is left half-written, and let warm workers go too.
        if own:
            pool.shutdown(wait=not finished)
        elif not finished:
            figure_processes.stop(wait=True)
    return results
