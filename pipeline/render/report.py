"""The study report: one self-contained HTML file (and a Word version) per study.

``reports/<study>/report.html`` holds the tables, the figures (PNG embedded as
base64, so the file travels alone), a Methods / Statistical analysis paragraph
written from the study spec and the results, and the provenance (input file
and spec SHA-256, code commit, package versions). It carries no time stamp, so
the same inputs and code give the same bytes; the run's time is in the Dagster
run history.

The page is written through the Jinja2 templates of ``templates/`` (``report.html.j2``, which
includes the publication tables' own ``publication_table.html.j2``), every value escaped. The
tables are the ones :func:`pipeline.steps.write_tables` built, and their cells are neutralised
against spreadsheet formulas as in every table file; the provenance table here is neutralised
the same way (:func:`pipeline.render.cells.neutralise`): a report table copied into Excel is
evaluated cell by cell.
"""

from __future__ import annotations

import base64
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.render.cells import neutralise
from pipeline.render.tables import SYNTHETIC_NOTE
from pipeline.render.writers import (
    Table,
    add_docx_table,
    new_docx,
    save_docx,
    stylesheet,
    templates,
)

SOFTWARE = ("duckdb", "pandas", "numpy", "scipy", "matplotlib")


def _list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _change_summary(tests: list[str], level: str) -> str:
    """How Table 2 summarises a change: the estimate of each outcome's test, with its CI."""
    mean = f"the mean change with its t-based {level} confidence interval"
    median = (
        f"the Hodges-Lehmann median change with the {level} confidence interval that inverts "
        "the Wilcoxon signed-rank test"
    )
    if "Wilcoxon signed-rank" not in tests:
        return mean
    if "paired t" not in tests:
        return median
    return f"{median} (outcomes tested by it) or {mean} (outcomes tested by the paired t test)"


def methods_text(study, results: pd.DataFrame, provenance: dict) -> list[str]:
    """The Methods / Statistical analysis paragraphs, from the spec, the results and the
    versions."""
    plan = study.analysis
    # The outcomes that were tested: one without pairs has a row but no test.
    tested = results[results["n_pairs"] > 0] if "n_pairs" in results else results
    tests = sorted(set(tested["test_used"].dropna()))
    n_outcomes = len(tested)
    paragraphs = [
        f"Each outcome was compared within patients between the {plan.pre_label} assessment and "
        "the "
        f"{plan.post_label} assessment. Patients with both values were analysed (complete-case "
        f"analysis); the patient flow and missing data are given per outcome in the eTables. "
        "Changes are after minus before and are summarised as "
        f"{_change_summary(tests, f'{plan.conf_level:.0%}')}. "
        + (
            f"Differences were tested with the {_list(tests)} test{'s' if len(tests) > 1 else ''} "
            f"(two-sided, α = {plan.alpha:g}); P values are reported to AMA style."
            if tests
            else "No test was run: no patient had both a before and an after value of any outcome."
        ),
    ]
    if "p_adj" in results and results["p_adj"].notna().any():
        # p_adj_method describes each row's adjustment, e.g. "Holm over 19 secondary outcomes"
        # or "none (primary outcome)": state each once, in the plan's terms.
        methods = list(dict.fromkeys(results.get("p_adj_method", pd.Series(dtype=str)).dropna()))
        primary = (
            f" The primary outcome is {plan.primary.replace('_', ' ')}." if plan.primary else ""
        )
        paragraphs.append(
            "To control for multiple comparisons, P values were adjusted as follows: "
            + "; ".join(methods)
            + "."
            + primary
        )
    elif n_outcomes > 1:
        paragraphs.append(
            f"No adjustment was made for the {n_outcomes} outcomes tested; results for "
            "outcomes other than the first planned outcome are exploratory."
        )
    if plan.subgroups:
        n = study.min_cell
        paragraphs.append(
            "Subgroup analyses are exploratory. To protect patients' privacy, subgroup levels "
            "with fewer "
            f"than {n} patients were pooled with the other small levels of the same subgroup or, "
            "when "
            f"still fewer than {n}, not reported, and a level with fewer than {n} pairs for an "
            "outcome "
            "was not reported for that outcome."
        )
    by = getattr(study, "table_1_by", "")
    paragraphs.append(
        "Baseline characteristics are given as mean ± SD when the absolute skewness is at most 1, "
        "otherwise as median [IQR], and categorical characteristics as No. (%)"
        + (
            f"; comparisons between the {by.replace('_', ' ')} groups "
            "use one-way analysis of variance or the Kruskal-Wallis test, and the Pearson χ2 test "
            "(Fisher exact test for 2 × 2 tables, or a Monte Carlo P with small expected counts)."
            if by
            else "."
        )
    )
    paragraphs.append(
        "As a sensitivity analysis that uses every observed value, the mean at each visit was "
        "estimated "
        "with a linear mixed model (visit as a fixed effect, a random intercept"
        + (" and a random slope on time in years" if plan.random_slope else "")
        + f" per patient; REML) with Wald {plan.conf_level:.0%} confidence intervals."
    )
    packages = provenance.get("packages", {})
    versions = ", ".join(f"{name} {packages[name]}" for name in SOFTWARE if name in packages)
    paragraphs.append(
        f"Analyses were run with the facial-outcomes pipeline "
        f"{packages.get('facial-outcomes', '')} in Python "
        f"{provenance.get('python', platform.python_version())} "
        f"({versions}); paired tests were checked against R 4.2.2 (t.test and wilcox.test)."
    )
    return paragraphs


def _provenance_rows(provenance: dict) -> list[tuple[str, str]]:
    """The provenance table's rows, each cell neutralised (it names input files from the spec)."""
    return [(neutralise(k), neutralise(v)) for k, v in _provenance_items(provenance)]


def _provenance_items(provenance: dict) -> list[tuple[str, str]]:
    rows = [
        (
            f"Input {item['file']}",
            f"SHA-256 {item['sha256']}; {item['rows_read']} rows read, "
            f"{item['rows_accepted']} accepted, {item['rows_quarantined']} quarantined",
        )
        for item in provenance.get("inputs", [])
    ]
    spec = provenance.get("spec", {})
    rows.append((f"Study spec {spec.get('file', '')}", f"SHA-256 {spec.get('sha256', '')}"))
    code = provenance.get("code", {})
    dirty = " (with uncommitted changes)" if code.get("dirty") else ""
    rows.append(("Code commit", f"{code.get('commit', 'unknown')}{dirty}"))
    rows.append(("Python", str(provenance.get("python", ""))))
    rows += [(name, str(version)) for name, version in provenance.get("packages", {}).items()]
    return rows


@dataclass(frozen=True)
class ReportContent:
    """What the study report says, rendered as HTML (:func:`report_html`) and as Word
    (:func:`report_docx`).

    ``tables``: (name, table) as built by the tables step; ``figures``: (what names the figure:
    ``stem``, ``caption``; its PNG bytes); ``notes`` are shown under the title (e.g. that there
    was nothing to analyse); ``figure_notes`` say, under the figures, which were not drawn and
    why."""

    study: object
    tables: list[tuple[str, Table]]
    figures: list[tuple[object, bytes]]
    methods: list[str]
    provenance: dict
    notes: list[str] = field(default_factory=list)
    figure_notes: list[str] = field(default_factory=list)

    def tables_in_order(self) -> list[Table]:
        """Tables 1, 2, 3 first, by number (the parts of one number, such as "Table 3" and
        "Table 3 (continued)", in the order they were built), then the eTables, each by title."""

        def key(item):
            title = item[1][1].title
            number = re.match(r"Table (\d+)", title)
            if number:
                return (0, int(number.group(1)), item[0], "")
            return (1, 0, 0, title)

        ordered = sorted(enumerate(self.tables), key=key)
        return [table for _, (_, table) in ordered]

    def notes_beside_figures(self) -> list[str]:
        """What the Figures section says beside the figures: that there are none, and why some
        are missing."""
        return (["No figure was drawn."] if not self.figures else []) + list(self.figure_notes)


def report_html(content: ReportContent) -> str:
    """The whole report as one HTML page (``templates/report.html.j2``); figures are PNG bytes
    embedded as data URIs."""
    figures = [
        {"stem": spec.stem, "caption": spec.caption, "png": base64.b64encode(png).decode("ascii")}
        for spec, png in content.figures
    ]
    return (
        templates()
        .get_template("report.html.j2")
        .render(
            title=content.study.title,
            css=stylesheet("report.css") + stylesheet("publication.css"),
            synthetic=SYNTHETIC_NOTE if content.study.synthetic else "",
            notes=list(content.notes),
            methods=content.methods,
            tables=content.tables_in_order(),
            figures=figures,
            figure_notes=content.notes_beside_figures(),
            provenance=_provenance_rows(content.provenance),
        )
    )


def report_docx(content: ReportContent, path: Path) -> Path:
    """The same report as a Word document: real tables, figures as pictures."""
    import io

    from docx.shared import Inches

    document = new_docx()
    document.add_heading(content.study.title, level=1)
    if content.study.synthetic:
        document.add_paragraph().add_run(SYNTHETIC_NOTE).bold = True
    for note in content.notes:
        document.add_paragraph().add_run(note).bold = True
    document.add_heading("Methods: statistical analysis", level=2)
    for p in content.methods:
        document.add_paragraph(p)
    document.add_heading("Tables", level=2)
    for t in content.tables_in_order():
        add_docx_table(document, t)
        document.add_paragraph()
    document.add_heading("Figures", level=2)
    for number, (spec, png) in enumerate(content.figures, start=1):
        document.add_picture(io.BytesIO(png), width=Inches(6.5))
        document.add_paragraph(f"Figure {number}. {spec.caption}")
    for note in content.notes_beside_figures():
        document.add_paragraph(note)
    document.add_heading("Provenance", level=2)
    rows = _provenance_rows(content.provenance)
    grid = document.add_table(rows=len(rows), cols=2)
    for row, (k, v) in zip(grid.rows, rows):
        row.cells[0].text, row.cells[1].text = k, v
    return save_docx(document, path)
