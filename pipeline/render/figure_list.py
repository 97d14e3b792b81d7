"""A study's figures, listed without drawing: what each is drawn from, its caption, its widths and
the figure function that draws it, by name (:func:`study_figures`); and which are missing.

Read by the figures step, which exports the list (:func:`pipeline.render.figure_files.export`
draws only the figures whose data changed), and by the steps that draw nothing: the tables (the
patient flow eTable counts the same exclusions as the flow diagram) and the report (its notes on
missing figures). Importing it costs no matplotlib or seaborn, which
:mod:`pipeline.render.figures` and :mod:`pipeline.render.flow_diagram` load to draw (about a
second and a half of imports in a fresh process), so a rerun whose figures are all unchanged
never loads them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.render.figure_files import SINGLE_COLUMN_IN, FigureSpec, drawing
from pipeline.spec.study import LAST_FOLLOW_UP_VISITS, Study

# The modules that draw the figures listed here, named, not imported: a figure's function is
# imported where and when it is drawn (figure_files.Drawing).
FIGURES = "pipeline.render.figures"
FLOW_DIAGRAM = "pipeline.render.flow_diagram"


def drawn_by(function: str) -> str:
    """The figure function ``function`` of :mod:`pipeline.render.figures`, by name."""
    return f"{FIGURES}:{function}"


DAYS_PER_MONTH = 365.25 / 12


def _grid(n: int, width: float) -> tuple[int, int]:
    """Panels per row: two at single-column width, up to three at double."""
    cols = min(n, 2 if width < 5 else 3)
    return int(np.ceil(n / cols)), cols


# A grid of panels is offered at single-column width for at most this many rows (6 outcomes):
# 4 rows of 2.3-2.5 in make a figure taller than the 9 in a page holds with its caption, and
# squeezing them to fit leaves panels too flat to read. Splitting the outcomes over several
# figures would break the one figure per analysis the report and its captions follow, so a study
# with more headline outcomes has these figures at double-column width only, 3 panels a row.
MAX_SINGLE_COLUMN_ROWS = 3


def grid_widths(n_panels: int) -> tuple[str, ...]:
    """The column widths a grid of ``n_panels`` panels is exported at (see
    :data:`MAX_SINGLE_COLUMN_ROWS`)."""
    rows, _ = _grid(n_panels, SINGLE_COLUMN_IN)
    return ("single", "double") if rows <= MAX_SINGLE_COLUMN_ROWS else ("double",)


def _grid_figure(
    stem: str, caption: str, function: str, panels: list[dict], **kwargs
) -> FigureSpec:
    """A figure of one panel per outcome, drawn by the figure function named ``function``,
    exported at the widths its grid fits."""
    return FigureSpec(
        stem,
        caption,
        drawing(drawn_by(function), panels, **kwargs),
        widths=grid_widths(len(panels)),
    )


def _estimate_name(kinds) -> str:
    """What the change estimates of a figure are, by the kinds of
    :func:`pipeline.statistics.paired.test_estimates` they are: the estimate of each outcome's
    test, as Table 2 shows it."""
    kinds = set(kinds)
    if kinds == {"median"}:
        return "Median change (Hodges-Lehmann)"
    if kinds == {"mean"}:
        return "Mean change"
    return "Change (estimate of each outcome's test)"


def read_exclusions(con, study: Study) -> pd.DataFrame:
    """The subjects file's records excluded at ingest, counted by reason
    (:func:`pipeline.statistics.flow.ingest_exclusions`), from the study's quarantine."""
    from pipeline.ingest.ingestion import file_labels
    from pipeline.statistics.flow import ingest_exclusions
    from pipeline.warehouse import read_frame

    return ingest_exclusions(
        read_frame(
            con,
            f'SELECT "column", reason FROM {study.name}.quarantine '
            "WHERE file = ? AND scope = 'row'",
            [file_labels(study)[0]],
        )
    )


def not_drawn(con, study: Study) -> list[str]:
    """Why figures :func:`pipeline.render.figures.study_figures` draws for a complete study are
    missing, one line each: a headline outcome without pairs has no slope plot and no panel in
    the box, change and grade-shift figures; with no value of any outcome there is no patient
    flow."""
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


# Tidy tables of the secondary analyses that, when present in the warehouse, add a figure.
# Columns used (others are ignored):
#   <study>.visit_estimates         outcome, score, visit, median_day, estimate, ci_low, ci_high
#   <study>.paired_tests_subgroups  outcome, score, group, n_pairs, test_used, the estimates
#                                   (pipeline.statistics.paired.test_estimates)
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


def _measure_name(measure, score) -> str:
    """What an axis calls a score: the instrument's name and the score's ("Sunnybrook
    composite"); a measure of the study's own with its one score, by its name alone."""
    if score.name == "value" and len(measure.scores) == 1:
        return measure.label
    return f"{measure.label} {score.label.lower()}"


def _scale(score) -> str:
    """An axis's scale: the unit of a measure that has one, otherwise the score's range, and its
    better direction: "0-100; higher is better", "units; lower is better"."""
    span = (
        f"{score.minimum:g}-{score.maximum:g}"
        if score.minimum >= 0
        else (f"{score.minimum:g} to {score.maximum:g}")
    )
    better = "higher is better" if score.higher_is_better else "lower is better"
    return f"{score.unit or span}; {better}"


# Visits that are a patient's last contact rather than a time after surgery: their days vary
# from patient to patient, so the trajectory leaves them out instead of drawing them as a time
# point between the scheduled visits (the pre/post analysis uses the last follow-up). They are
# LAST_FOLLOW_UP_VISITS of the spec, which labels them (Study.visit_label).


def _change_of(estimates: pd.DataFrame, outcome: str, score: str) -> dict | None:
    """The change estimate of an outcome's test (:func:`test_estimates` beside its paired-tests
    row), or None when the outcome was not tested."""
    if (outcome, score) not in estimates.index:
        return None
    r = estimates.loc[(outcome, score)]
    if not np.isfinite(r["estimate"]):
        return None
    low, high = float(r["estimate_low"]), float(r["estimate_high"])
    return {"estimate": float(r["estimate"]), "low": low, "high": high, "kind": r["estimate_kind"]}


# What :func:`prepost_box` reads of a panel (its source data name the outcome and score).
BOX_PANEL_KEYS = ("outcome", "score", "title", "ylabel", "pairs")


def study_figures(con, study: Study) -> list[FigureSpec]:
    """Every figure the warehouse has data for, in report order.

    Always (when the data exist): paired slope plot per outcome, before/after box plots,
    change-score distributions, House-Brackmann grade shift, patient flow, and rater
    agreement for instruments rated by two raters. Only when the tidy tables exist:
    trajectory over visits (``visit_estimates``) and the subgroup forest plot
    (``subgroups``).
    """
    from pipeline.pairing import outcomes_frame, primary_pairs
    from pipeline.render import tables
    from pipeline.render.labels import rater_label
    from pipeline.statistics.paired import test_estimates
    from pipeline.warehouse import read_frame

    s, plan = study.name, study.analysis
    footer = tables.SYNTHETIC_NOTE if study.synthetic else ""
    planned = outcomes_frame(study)
    pre_label, post_label = "Before surgery", f"Last follow-up\n(day ≥ {plan.post_min_day})"
    if primary_pairs(study):  # several comparisons: the primary one's, by its label
        main = next(c for c in plan.compared if c.name == plan.primary_comparison_name)
        post_label = f"{main.label}\n({plan.post_window})"
    specs: list[FigureSpec] = []
    panels = []
    # Figures show each instrument's headline score per rater (the first the plan lists,
    # e.g. the eFACE total): a figure per sub-score would bury them (sub-scores are in Table 2).
    headline = set(planned.drop_duplicates(["instrument", "rater"]).index)
    # The primary comparison's, when the plan has several (pairing.primary_pairs).
    tested = read_frame(
        con, f"SELECT * FROM {s}.paired_tests WHERE \"group\" = 'all'{primary_pairs(study)}"
    )
    estimates = pd.concat([tested, test_estimates(tested, plan.conf_level)], axis=1)
    estimates = estimates.set_index(["outcome", "score"])
    for row in planned.itertuples():
        if row.Index not in headline or getattr(row, "kind", "score") != "score":
            continue  # a binary or categorical outcome has no change to plot (its eTable)
        # The pairs of the headline scores only, in table order, picked by DuckDB: a registry has
        # millions of pairs over every score, and selecting them by name in pandas takes seconds.
        subset = read_frame(
            con,
            f"SELECT pre_value, post_value, diff FROM {s}.pairs WHERE outcome = ? AND score = ?"
            + primary_pairs(study),
            [row.outcome, row.score],
        )
        if subset.empty:
            continue
        score = study.instrument(row.instrument).score(
            row.score, getattr(row, "version", "") or None
        )
        name = _measure_name(study.instrument(row.instrument), score)
        panels.append(
            {
                "outcome": row.outcome,
                "score": row.score,
                "instrument": row.instrument,
                "rater": row.rater,
                "title": row.label,
                "pairs": subset,
                "ylabel": f"{name}\n({_scale(score)})",
                "xlabel": f"Change in {name}" + (f" ({score.unit})" if score.unit else ""),
                "diff": subset["diff"].to_numpy(float),
                "higher_is_better": score.higher_is_better,
                "change": _change_of(estimates, row.outcome, row.score),
            }
        )

    for p in panels:
        specs.append(
            FigureSpec(
                f"slope_{p['outcome']}_{p['score']}",
                f"{p['title']} before and after surgery: one line per patient, mean with "
                f"{plan.conf_level:.0%} CI.",
                drawing(
                    drawn_by("slope_plot"),
                    p["pairs"],
                    title=p["title"],
                    ylabel=p["ylabel"],
                    pre_label=pre_label,
                    post_label=post_label,
                    conf_level=plan.conf_level,
                    footer=footer,
                ),
            )
        )
    if panels:
        # The box plots show no test: given only what they draw, a rerun with another test or
        # conf_level (the panels' "change") leaves them as they were, not drawn again.
        box_panels = [{k: p[k] for k in BOX_PANEL_KEYS} for p in panels]
        specs.append(
            _grid_figure(
                "prepost_box",
                "Outcomes before and after surgery: box plots (median, quartiles, whiskers to "
                "1.5 IQR) with every patient's value.",
                "prepost_box",
                box_panels,
                footer=footer,
            )
        )
        specs.append(
            _grid_figure(
                "change_distribution",
                f"Distribution of the change (after - before) per outcome, each patient "
                f"coloured by the direction of their change, with the change its test estimates "
                f"(as in Table 2) and its {plan.conf_level:.0%} CI.",
                "change_distribution",
                panels,
                conf_level=plan.conf_level,
                footer=footer,
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
                "outcome": p["outcome"],
                "score": p["score"],
            }
            for p in hb
        ]
        specs.append(
            FigureSpec(
                "grade_shift_house_brackmann",
                "House-Brackmann grade before and after surgery, patients with both grades.",
                drawing(drawn_by("grade_shift"), hb_panels, footer=footer),
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
            _grid_figure(
                "rater_agreement",
                "Agreement between raters (Bland-Altman): difference against mean of the "
                "two ratings, with the bias and 95% limits of agreement.",
                "bland_altman",
                agreement,
                footer=footer,
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
            e = e[
                e["estimate"].notna()
                & ~e["visit"].astype(str).str.lower().isin(LAST_FOLLOW_UP_VISITS)
            ]
            if "median_day" in e:
                e = e[e["median_day"].notna()]
            if len(e) < 2 or "median_day" not in e:
                continue
            # Each visit at its median day after surgery, in months.
            trajectory_panels.append(
                {
                    "outcome": p["outcome"],
                    "score": p["score"],
                    "title": p["title"],
                    "ylabel": p["ylabel"],
                    "estimates": e.assign(x=e["median_day"].to_numpy(float) / DAYS_PER_MONTH),
                }
            )
        if trajectory_panels:
            specs.append(
                _grid_figure(
                    "trajectory",
                    "Model-estimated mean per visit, at the visit's median day after surgery, "
                    f"with {plan.conf_level:.0%} CI (the last follow-up, at a different day for "
                    "each patient, is not a time point here).",
                    "trajectory",
                    trajectory_panels,
                    conf_level=plan.conf_level,
                    footer=footer,
                )
            )
    subgroups = _table(
        con,
        s,
        SUBGROUPS,
        ("outcome", "score", "group", "test_used", "mean_diff", "ci_low", "ci_high"),
    )
    if subgroups is not None and headline_keys:
        # The first planned outcome only: a forest of every outcome would be unreadable.
        outcome, score_name = headline_keys[0]
        g = subgroups[(subgroups["outcome"] == outcome) & (subgroups["score"] == score_name)]
        if primary_pairs(study):  # several comparisons: the primary one's levels
            g = g[g["comparison"] == plan.primary_comparison_name]
        # Each level's change as Table 3 shows it: the estimate of the level's test.
        g = pd.concat([g, test_estimates(g, plan.conf_level)], axis=1)
        g = g[g["estimate"].notna()]
        if len(g):
            forest_rows = pd.DataFrame(
                {
                    "label": [study.group_label(str(group)) for group in g["group"]],
                    "estimate": g["estimate"],
                    "ci_low": g["estimate_low"],
                    "ci_high": g["estimate_high"],
                    "n": g["n_pairs"] if "n_pairs" in g else np.nan,
                }
            )
            title = panels[0]["title"]
            name = _estimate_name(g["estimate_kind"])
            specs.append(
                FigureSpec(
                    "subgroup_forest",
                    f"{title}: {name[0].lower() + name[1:]} by subgroup with "
                    f"{plan.conf_level:.0%} CI (exploratory), as in Table 3.",
                    drawing(
                        drawn_by("forest"),
                        forest_rows,
                        xlabel=f"{name} in {title} (after - before)",
                        footer=footer,
                    ),
                )
            )
    specs += _time_to_event_figures(con, study, footer)
    return specs


def _time_to_event_figures(con, study: Study, footer: str) -> list[FigureSpec]:
    """A Kaplan-Meier figure per time-to-event analysis (``time_to_event_curves``): the whole
    cohort, or one curve per level of its ``by`` column with the log-rank P."""
    from pipeline.render import tables

    curves = _table(con, study.name, "time_to_event_curves", ("analysis", "group", "survival"))
    if curves is None:
        return []
    tested = _table(con, study.name, "log_rank", ("analysis", "p"))
    specs = []
    for t in study.analysis.time_to_event:
        mine = curves[curves["analysis"] == t.name]
        groups = [g for g in mine["group"].unique() if g != "all"] if t.by else ["all"]
        if not groups or mine.empty:
            continue
        event = study.column_label(t.event)
        p_text, legend_title = "", ""
        if t.by:
            legend_title = study.column_label(t.by)
            row = tested[tested["analysis"] == t.name] if tested is not None else tested
            if row is not None and len(row) and pd.notna(row["p"].iloc[0]):
                p_text = f"Log-rank P {tables.p_equals(row['p'].iloc[0])}"
        panels = [
            {
                "label": tables.time_to_event_level(study, t, g),
                "curve": mine[mine["group"] == g].sort_values("time", kind="stable"),
            }
            for g in groups
        ]
        by_words = f" by {legend_title.lower()}" if t.by else ""
        specs.append(
            FigureSpec(
                f"time_to_event_{t.name}",
                f"Time to {event.lower()}{by_words}: Kaplan-Meier estimate of the proportion "
                f"free of {event.lower()} with its {study.analysis.conf_level:.0%} CI (shaded); "
                "ticks mark censored patients (last follow-up)"
                + (", the P value is the log-rank test's" if p_text else "")
                + "; the numbers at risk are under the time axis.",
                drawing(
                    drawn_by("kaplan_meier_plot"),
                    panels,
                    title=f"Time to {event.lower()}",
                    ylabel=f"Free of {event.lower()}, %",
                    legend_title=legend_title,
                    p_text=p_text,
                    conf_level=study.analysis.conf_level,
                    footer=footer,
                ),
            )
        )
    return specs


def primary_flow_row(flow: pd.DataFrame, primary: str) -> pd.Series:
    """The flow of the plan's primary outcome (its first score), else of the first outcome."""
    if primary and "outcome" in flow and (flow["outcome"] == primary).any():
        return flow[flow["outcome"] == primary].iloc[0]
    return flow.iloc[0]


def study_flow(con, study: Study, *, footer: str = "") -> FigureSpec | None:
    """The patient flow figure of a study from its warehouse, or None before there is a flow
    (no planned outcome has a value, or the subjects file is not accounted for)."""
    from pipeline.ingest.ingestion import file_labels
    from pipeline.pairing import outcomes_frame
    from pipeline.render.tables import flow_counts
    from pipeline.warehouse import read_frame

    s = study.name
    name = study.subjects_path.name
    summary = read_frame(con, f"SELECT * FROM {s}.pairing_summary")
    source = read_frame(
        con, f"SELECT * FROM {s}.source_files WHERE file = ?", [file_labels(study)[0]]
    )
    if not len(summary) or not len(source):
        return None
    flow = flow_counts(source, summary, outcomes_frame(study))
    exclusions = read_exclusions(con, study)
    primary = study.analysis.primary
    row = primary_flow_row(flow, primary)
    # Named for what it is: the plan's primary outcome, or the first outcome with a value
    # (none planned as primary, or the primary has no value at all: then it has no flow row).
    if row["outcome"] == primary:
        which = f"the primary outcome, {row['label']}"
    else:
        which = f"{row['label']}, the first planned outcome with a value" + (
            " (the primary outcome has none)" if primary else ""
        )
    return FigureSpec(
        "patient_flow",
        f"Patient flow for {which}: records read, exclusions at ingest, inclusion, and the "
        "patients not analysed with their reasons (every outcome's counts are in the "
        "patient-flow eTable).",
        drawing(
            f"{FLOW_DIAGRAM}:patient_flow",
            flow,
            subjects_file=name,
            primary=primary,
            exclusions=exclusions,
            footer=footer,
        ),
        # Drawn for one column, where its text prints at 7 pt: the report shows that one, and
        # export-figures draws it at double width on demand.
        widths=("single",),
    )
