"""Every figure of a study laid out for print: no two texts overlap, nothing falls off the canvas,
the figure fits a journal column and a page, and its categories read apart in greyscale.

Drawn for the demo study, a study with one outcome (the small study's plan cut to House-Brackmann)
and a registry-sized synthetic study (more patients than the figures draw individually, every
instrument), each through the pipeline's steps up to the tables, then every figure
:func:`pipeline.render.figures.study_figures` lists, at each width it is exported at.
"""

from __future__ import annotations

import itertools
import re

import duckdb
import matplotlib.colors as mcolors
import numpy as np
import pytest
from PIL import Image

from pipeline import paths
from pipeline.render import figures
from pipeline.render.figure_theme import DIRECTION_COLOURS, GREY_STEP
from pipeline.spec.study import load_study
from small_study import run_steps, write_small_study
from specs import HB_OBSERVER, edit_spec

# A text may touch another, or the canvas edge, by this much (points): glyph boxes carry a little
# blank space around the letters.
TOLERANCE_PT = 0.5
DOUBLE_COLUMN_RANGE_IN = (7.0, 7.2)  # what journals take as a full page width
FONT_PT = (6, 8)  # text at print size: no smaller than 6 pt, no larger than 8 pt


def _drawn_texts(fig) -> list:
    """Every text the figure draws: figure texts and legends, each visible axes' titles, texts
    and annotations, its legend, and (axes with axes drawn) axis labels, offset texts and the
    tick labels within the axis's view."""
    from matplotlib.text import Text

    texts = list(fig.texts)
    legends = list(fig.legends)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [c for c in ax.get_children() if isinstance(c, Text)]
        if ax.get_legend() is not None:
            legends.append(ax.get_legend())
        if not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible():
                continue
            texts += [axis.label, axis.get_offset_text()]
            low, high = sorted(axis.get_view_interval())
            span = (high - low) * 1e-9
            texts += [
                label
                for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
                if low - span <= loc <= high + span
            ]
    for legend in legends:
        texts += [legend.get_title(), *legend.get_texts()]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def layout_defects(fig) -> list[str]:
    """What is wrong with ``fig``'s layout, one line each (none: an empty list).

    After a full drawing under the figures' theme (as the files are drawn): two visible texts
    whose boxes overlap (tick labels, titles, legends, panel letters, axis labels...), a text or
    an axes' decorations outside the canvas, text under 6 pt or over 8 pt, a width other than a
    single column (:data:`figures.SINGLE_COLUMN_IN`) or a double one (7.0-7.2 in), a height over
    :data:`figures.PAGE_HEIGHT_IN`."""
    with figures.plt.rc_context(figures.THEME):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        defects = []
        width, height = fig.get_size_inches()
        if not (
            np.isclose(width, figures.SINGLE_COLUMN_IN)
            or DOUBLE_COLUMN_RANGE_IN[0] <= width <= DOUBLE_COLUMN_RANGE_IN[1]
        ):
            defects.append(f"width {width:.2f} in: neither a single nor a double column")
        if height > figures.PAGE_HEIGHT_IN + 1e-9:
            defects.append(f"height {height:.2f} in: over the {figures.PAGE_HEIGHT_IN} in page")
        tolerance = TOLERANCE_PT * fig.dpi / 72
        canvas = fig.bbox
        boxes = [(t, t.get_window_extent(renderer)) for t in _drawn_texts(fig)]

        def outside(box) -> bool:
            return (
                box.x0 < canvas.x0 - tolerance
                or box.y0 < canvas.y0 - tolerance
                or box.x1 > canvas.x1 + tolerance
                or box.y1 > canvas.y1 + tolerance
            )

        defects += [f"off the canvas: {t.get_text()!r}" for t, box in boxes if outside(box)]
        defects += [
            f"{t.get_fontsize():g} pt: {t.get_text()!r}"
            for t, _ in boxes
            if not FONT_PT[0] <= t.get_fontsize() <= FONT_PT[1]
        ]
        defects += [
            f"off the canvas: the axes of panel {i + 1}"
            for i, ax in enumerate(fig.axes)
            if ax.get_visible() and ax.axison and outside(ax.get_tightbbox(renderer))
        ]
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            across = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            up = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if across > tolerance and up > tolerance:
                defects.append(f"overlap: {a.get_text()!r} and {b.get_text()!r}")
    return defects


def luma(colour) -> int:
    """The greyscale value (0-255) PIL's convert("L") gives ``colour`` (ITU-R 601 luma)."""
    rgb = tuple(round(255 * v) for v in mcolors.to_rgb(colour))
    return Image.new("RGB", (1, 1), rgb).convert("L").getpixel((0, 0))


# --------------------------------------------------------------------------- the studies


def _one_outcome(folder):
    write_small_study(folder, name="one_outcome")
    edit_spec(folder, {"analysis": {"outcomes": [HB_OBSERVER]}})
    return folder


def _registry(folder):
    from pipeline.synthetic import registry

    # More patients than the figures draw one mark each for: the sampled figures are drawn.
    registry.write(
        folder, seed=3, n_patients=figures.INDIVIDUALS_SHOWN + 100, visits=4, name="registry"
    )
    return folder


STUDIES = {
    "demo": lambda folder: paths.RAW_DATA_DIR / "demo",
    "one_outcome": _one_outcome,
    "registry": _registry,
}


@pytest.fixture(scope="module", params=sorted(STUDIES))
def study_warehouse(request, tmp_path_factory):
    """A study run up to its tables (no figure drawn yet), with its warehouse connection."""
    base = tmp_path_factory.mktemp(request.param)
    study = load_study(STUDIES[request.param](base / "raw" / request.param))
    con = duckdb.connect()
    run_steps(con, study, base / "reports")
    yield request.param, con, study
    con.close()


def _drawn(con, study, stems=None):
    """Each figure of the study (or those of ``stems``) at each width it is exported at:
    (stem, width, figure)."""
    for spec in figures.study_figures(con, study):
        if stems is not None and spec.stem not in stems:
            continue
        for width in spec.widths:
            with figures.plt.rc_context(figures.THEME):
                fig = spec.make(figures.WIDTHS[width])
            yield spec.stem, width, fig


def _panel_letters(fig) -> tuple[list[str], int]:
    """The bold panel letters drawn, in panel order, and the number of titled panels."""
    panels = [ax for ax in fig.axes if ax.axison and ax.get_title(loc="left")]
    letters = [
        t.get_text()
        for ax in panels
        for t in ax.texts
        if t.get_text() in figures.PANEL_LETTERS and t.get_fontweight() == "bold"
    ]
    return letters, len(panels)


# --------------------------------------------------------------------------- the tests


def test_every_figure_is_laid_out_for_print(study_warehouse):
    name, con, study = study_warehouse
    defects = {}
    stems = set()
    for stem, width, fig in _drawn(con, study):
        stems.add(stem)
        found = layout_defects(fig)
        # A multi-panel figure letters its panels A, B, C ...; a single panel has no letter.
        letters, panels = _panel_letters(fig)
        if letters != (list(figures.PANEL_LETTERS[:panels]) if panels > 1 else []):
            found.append(f"panel letters {letters} for {panels} panels")
        if found:
            defects[f"{stem} ({width})"] = found
        figures.plt.close(fig)
    assert defects == {}, name
    # The figures a study with pairs always has were drawn.
    assert {"prepost_box", "change_distribution"} <= stems
    # The demo declares time to revision: its Kaplan-Meier figure is among those laid out.
    assert ("time_to_event_revision" in stems) == (name == "demo")


def test_directions_read_apart_in_greyscale():
    # The three directions of change, each against the others and against the white page.
    shades = {name: luma(colour) for name, colour in DIRECTION_COLOURS.items()}
    for a, b in itertools.combinations(shades, 2):
        assert abs(shades[a] - shades[b]) >= GREY_STEP, (a, b, shades)
    # The ordered grades: a step apart each, dark to light.
    grades = [luma(c) for c in figures.GRADE_COLOURS]
    assert all(a - b >= 30 for a, b in zip(grades, grades[1:])), grades


def test_change_bars_are_drawn_in_greyscale_distinct_colours(study_warehouse):
    _, con, study = study_warehouse
    spec = next(s for s in figures.study_figures(con, study) if s.stem == "change_distribution")
    fig = spec.make(figures.WIDTHS[spec.widths[0]])
    drawn = {
        mcolors.to_hex(bar.get_facecolor())
        for ax in fig.axes
        for bar in ax.patches
        if bar.get_height() > 0
    }
    shades = sorted(luma(c) for c in drawn)
    assert len(drawn) <= 3 and all(b - a >= GREY_STEP for a, b in zip(shades, shades[1:]))
    figures.plt.close(fig)


def test_change_bars_count_each_patient_in_their_own_direction(study_warehouse):
    # The bars of each direction add up to the change_direction analysis's counts: a bar spanning
    # zero shows its unchanged patients as unchanged (the demo's 5 patients with no change in
    # botulinum toxin dose were once drawn as worsened, with the bar's centre above zero).
    _, con, study = study_warehouse
    spec = next(s for s in figures.study_figures(con, study) if s.stem == "change_distribution")
    fig = spec.make(figures.WIDTHS[spec.widths[0]])
    direction_of = {mcolors.to_hex(c): d for d, c in DIRECTION_COLOURS.items()}
    table = con.execute(f"SELECT * FROM {study.name}.change_direction WHERE \"group\" = 'all'").df()
    source = figures.source_data(fig)
    panels = [ax for ax in fig.axes if ax.axison]
    keys = source.drop_duplicates("title")[["outcome", "score"]].itertuples(index=False)
    for ax, (outcome, score) in zip(panels, keys):
        counts = {d: 0.0 for d in DIRECTION_COLOURS}
        for bar in ax.patches:
            counts[direction_of[mcolors.to_hex(bar.get_facecolor())]] += bar.get_height()
        row = table[(table["outcome"] == outcome) & (table["score"] == score)].iloc[0]
        expected = {
            "Improved": row["n_improved"],
            "Unchanged": row["n_unchanged"],
            "Worsened": row["n_worsened"],
        }
        assert counts == expected, (outcome, score)
    figures.plt.close(fig)


def test_report_shows_each_figure_at_its_print_width():
    # Single-column figures are not enlarged to the page: each <img> is its PNG's width at 300 dpi.
    import base64
    import io
    import re

    from pipeline.render.writers import templates

    pngs = []
    for pixels in (1050, 2100):
        buffer = io.BytesIO()
        Image.new("RGB", (pixels, 10), "white").save(buffer, format="PNG", dpi=(300, 300))
        pngs.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    template = templates().get_template("report.html.j2")
    page = template.render(
        title="t",
        css="",
        synthetic="",
        notes=[],
        methods=[],
        tables=[],
        figures=[{"stem": f"f{i}", "caption": "c", "png": png} for i, png in enumerate(pngs)],
        figure_notes=[],
        provenance=[],
    )
    assert re.findall(
        r'<img src="data:image/png;base64,[^"]+" alt="[^"]*" style="([^"]+)"', page
    ) == [
        "width:3.5in",
        "width:7in",
    ]


SCALE = re.compile(r"^(?P<name>.+) \((?P<scale>[^;()]+); (higher|lower) is better\)$")


def test_axes_name_the_score_its_scale_and_time(study_warehouse):
    # A value axis names the score ("Sunnybrook composite"), its range or unit, and which way is
    # better; the trajectory's time axis is months after surgery, with no last-follow-up visit.
    name, con, study = study_warehouse
    for stem, _, fig in _drawn(con, study, {"prepost_box", "trajectory"}):
        for ax in fig.axes:
            if not ax.axison:
                continue
            label = ax.get_ylabel().replace("\n", " ")
            match = SCALE.match(label)
            assert match, (stem, label)
            # A range ("0-100", "-15 to 100") or a unit ("units", "mm").
            assert re.fullmatch(r"-?[\d.]+(-| to )[\d.]+|[^\d;()]+", match["scale"]), label
            if stem == "trajectory":
                assert ax.get_xlabel() == "Months after surgery"
                ticks = [t.get_text() for t in ax.get_xticklabels()]
                assert "last" not in ticks and all(re.fullmatch(r"−?\d+", t) for t in ticks if t)
        figures.plt.close(fig)
    if name == "demo":
        # The study's own measure shows its unit from the spec (unit = "units").
        spec = next(s for s in figures.study_figures(con, study) if s.stem == "prepost_box")
        fig = spec.make(figures.DOUBLE_COLUMN_IN)
        labels = [ax.get_ylabel().replace("\n", " ") for ax in fig.axes if ax.axison]
        assert "Botulinum toxin dose (units; lower is better)" in labels
        assert "Sunnybrook composite (-15 to 100; higher is better)" in labels
        figures.plt.close(fig)


def test_numbers_at_risk_sit_under_the_time_ticks(study_warehouse):
    # The Kaplan-Meier figure's table of numbers at risk: one number per curve under each tick of
    # the time axis, centred on it, a row per curve, each row at one height.
    name, con, study = study_warehouse
    if name != "demo":
        pytest.skip("only the demo declares a time-to-event analysis")
    for _, width, fig in _drawn(con, study, {"time_to_event_revision"}):
        with figures.plt.rc_context(figures.THEME):
            fig.canvas.draw()
        curve_axes, risk = fig.axes[0], fig.axes[1]
        ticks = curve_axes.get_xticks()
        low, high = curve_axes.get_xlim()
        ticks = ticks[(ticks >= low) & (ticks <= high)]
        tick_x = curve_axes.transData.transform([(t, 0) for t in ticks])[:, 0]
        numbers = [t for t in risk.texts if t.get_text().isdigit()]
        rows = len(risk.get_yticks())
        assert rows == 2 and len(numbers) == rows * len(ticks), width
        renderer = fig.canvas.get_renderer()
        centres = sorted(
            {round((b.x0 + b.x1) / 2, 1) for b in (t.get_window_extent(renderer) for t in numbers)}
        )
        np.testing.assert_allclose(centres, tick_x, atol=1.0, err_msg=width)
        heights = {round(t.get_window_extent(renderer).y0, 1) for t in numbers}
        assert len(heights) == rows, width
        figures.plt.close(fig)


def test_curves_read_apart_in_greyscale():
    # The Kaplan-Meier curves of a subgroup's levels, each against the others.
    shades = [luma(colour) for colour in figures.CURVE_COLOURS]
    for a, b in itertools.combinations(shades, 2):
        assert abs(a - b) >= GREY_STEP, shades


def test_kaplan_meier_of_four_levels_is_laid_out_for_print():
    # survival::veteran's four cell types (tests/fixtures/r/survival_inputs.csv): four curves, a
    # legend of four and a table of four rows, at both widths; beyond three colours each curve
    # has its own line style too.
    import pandas as pd

    from pipeline.statistics.survival import time_to_event

    inputs = pd.read_csv(paths.PROJECT_ROOT / "tests" / "fixtures" / "r" / "survival_inputs.csv")
    result = time_to_event(inputs[inputs["dataset"] == "veteran"], by=True)
    curves = [
        {"label": level, "curve": result.curves[result.curves["group"] == level]}
        for level in result.summary["group"][1:]
    ]
    words = {"title": "Time to death", "ylabel": "Alive, %", "legend_title": "Cell type"}
    for width in (figures.SINGLE_COLUMN_IN, figures.DOUBLE_COLUMN_IN):
        fig = figures.kaplan_meier_plot(curves, p_text="Log-rank P < .001", width=width, **words)
        assert layout_defects(fig) == [], width
        styles = [line.get_linestyle() for line in fig.axes[0].get_lines()[::2]]
        assert len(set(styles)) == 4, styles
        figures.plt.close(fig)
