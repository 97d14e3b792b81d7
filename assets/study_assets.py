"""The asset graph of one study: ingest -> scores -> pairs -> analysis -> tables, figures -> report.

Every asset key starts with the study's name, so each folder under
``data/raw/`` gets its own graph and a coordinator can materialize one study
alone. The asset bodies only call ``pipeline.steps`` steps and attach
metadata.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import dagster as dg

from assets.checks import build_study_checks
from assets.keys import (
    FIGURES,
    INGESTED,
    OWNER,
    PAIRED_TESTS,
    PAIRS,
    RAW_FILES,
    REPORT,
    SCORES,
    SECONDARY_ANALYSES,
    TABLES,
    study_asset_settings,
)
from assets.resources import AnalysisOptions, FigureWorkers, Reports, Warehouse
from pipeline import rerun, steps
from pipeline.provenance import fingerprint, record_overrides, recorded_run, write_provenance
from pipeline.render.cells import markdown_frame
from pipeline.render.style import AMA
from pipeline.sources import code_version
from pipeline.spec.study import Study
from pipeline.warehouse import make_private, private_files, scalar, warehouse_files

# The steps that compute each asset, its upstream assets' steps included. An asset's code version
# hashes the source they use (pipeline.sources.code_version), so an edit to scoring code gives
# `scores` and everything downstream a new code version at once: Dagster marks an asset stale for
# its own code version only, and would otherwise reach the downstream assets one rematerialization
# at a time.
INGEST_CODE = (steps.ingest,)
SCORES_CODE = (*INGEST_CODE, steps.score)
PAIRS_CODE = (*SCORES_CODE, steps.pair)
PAIRED_TESTS_CODE = (*PAIRS_CODE, steps.analyse)
SECONDARY_CODE = (*PAIRED_TESTS_CODE, steps.secondary_analyses)
TABLES_CODE = (*SECONDARY_CODE, steps.write_tables)
FIGURES_CODE = (*SECONDARY_CODE, steps.write_figures)
REPORT_CODE = (*TABLES_CODE, *FIGURES_CODE, steps.write_report)

# The step of pipeline.rerun each asset runs (its key says when its last run can be reused).
RERUN_STEP = {
    INGESTED: "ingest",
    SCORES: "score",
    PAIRS: "pair",
    PAIRED_TESTS: "analyse",
    SECONDARY_ANALYSES: "secondary",
    TABLES: "tables",
    FIGURES: "figures",
    REPORT: "report",
}

# Each step's asset: its group in the UI, the kinds shown on it, the steps its code version hashes.
ASSET_PLAN = {
    INGESTED: ("ingest", {"duckdb", "csv"}, INGEST_CODE),
    SCORES: ("scores", {"duckdb"}, SCORES_CODE),
    PAIRS: ("pairs", {"duckdb"}, PAIRS_CODE),
    PAIRED_TESTS: ("analysis", {"duckdb", "scipy"}, PAIRED_TESTS_CODE),
    SECONDARY_ANALYSES: ("analysis", {"duckdb", "scipy"}, SECONDARY_CODE),
    TABLES: ("tables", {"csv", "markdown", "docx"}, TABLES_CODE),
    FIGURES: ("figures", {"matplotlib"}, FIGURES_CODE),
    REPORT: ("report", {"html", "docx"}, REPORT_CODE),
}


def p_text(p: float) -> str:
    """A P value as the report prints it (AMA style): "P < .001", "P = .03"."""
    text = AMA.p(p)
    if text == AMA.missing:
        return "P not computed"
    return f"P {text[0]} {text[1:]}" if text[0] in "<>" else f"P = {text}"


def _paths(paths) -> dict[str, dg.MetadataValue]:
    return {p.name: dg.MetadataValue.path(str(p)) for p in paths}


def _listing(paths) -> dg.MetadataValue:
    """Many files as one Markdown list (one metadata entry per file would swamp the UI)."""
    return dg.MetadataValue.md("\n".join(f"- `{p}`" for p in paths))


@contextmanager
def _recorded(warehouse: Warehouse, study: Study, step: str, reports: Reports | None = None):
    """The step's warehouse connection, the step written to ``meta.runs`` under the Dagster run id
    (finished only if the step completes, otherwise with how it ended), so every table and
    figure traces back to its inputs.
    For a restricted study, what the step writes is readable by its owner only."""
    run_id = dg.AssetExecutionContext.get().run.run_id
    private = [
        *warehouse_files(warehouse.file(study.name)),
        *([steps.study_reports(reports.folder, study)] if reports else []),
    ]
    with private_files(study.restricted):
        try:
            with (
                warehouse.connect(study.name) as con,
                recorded_run(con, study, run_id=run_id, step=step),
            ):
                yield con
        finally:
            if study.restricted:
                make_private(*private)


def _raw_files_asset(study: Study) -> dg.SourceAsset:
    s = study.name

    @dg.observable_source_asset(
        name=RAW_FILES,
        key_prefix=[s],
        group_name="ingest",
        owners=[OWNER],
        tags={"study": s},
        description=f"The raw exports and spec of study `{s}` in `data/raw/{s}/`, "
        "versioned by content hash: a changed file marks everything "
        "downstream stale.",
    )
    def raw_files() -> dg.DataVersion:
        return dg.DataVersion(fingerprint(study))

    return raw_files


def build_study_assets(study: Study) -> list[dg.AssetsDefinition]:
    s = study.name
    common = study_asset_settings(s)
    # Each check runs in the step of the asset it checks (assets/checks.py).
    checks = build_study_checks(study)

    def planned(options: AnalysisOptions, reports: Reports) -> Study:
        """The study with this run's analysis overrides, which provenance records."""
        effective = options.apply(study)
        record_overrides(steps.study_reports(reports.folder, study), options.overrides)
        return effective

    def run_planned(step, name: str, warehouse: Warehouse, reports: Reports, options):
        """``step`` on the planned study (see ``planned``), its run recorded under ``name``: the
        files it wrote (this time, or when it last ran if nothing it reads has changed since:
        :func:`pipeline.rerun.run`)."""
        effective = planned(options, reports)
        with _recorded(warehouse, effective, name, reports) as con:
            done = rerun.run(con, effective, reports.folder, RERUN_STEP[name], step, reports.folder)
        return done.result if done.ran else done.paths

    def study_asset(name: str, *upstream):
        """The decorator of the asset ``name`` of this study, downstream of ``upstream``, as
        :data:`ASSET_PLAN` declares it; the asset function's docstring is its description in
        the UI (Markdown)."""
        group, kinds, code = ASSET_PLAN[name]
        return dg.asset(
            name=name,
            group_name=group,
            deps=list(upstream),
            kinds=kinds,
            **common,
            code_version=code_version(*code),
            check_specs=checks.specs(name),
        )

    # Observable source assets are marked beta in Dagster 1.13; they are the documented way to
    # version raw files by content, so the warning is silenced here rather than everywhere.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        raw_files = _raw_files_asset(study)

    @study_asset(INGESTED, raw_files)
    def ingested(warehouse: Warehouse, reports: Reports) -> dg.MaterializeResult:
        """Raw exports of the study read into the warehouse. Every row is accepted or quarantined
        with a reason; only columns the study spec maps are read."""
        with _recorded(warehouse, study, INGESTED, reports) as con:
            done = rerun.run(con, study, reports.folder, "ingest", steps.ingest, reports.folder)
            files = done.result if done.ran else steps.source_files(con, study)
            if not done.ran:  # the commit may have changed since: provenance.json says this one
                write_provenance(study, files, steps.study_reports(reports.folder, study))
            quarantined_values = scalar(
                con, f"SELECT count(*) FROM {s}.quarantine WHERE scope = 'value'"
            )
        metadata = {
            "quarantined_values": quarantined_values,
            "spec_sha256": study.spec_sha256,
            **_paths([steps.study_reports(reports.folder, study) / "provenance.json"]),
        }
        for f in files:
            metadata[f"{f.file} rows read / accepted / quarantined"] = (
                f"{f.rows_read} / {f.rows_accepted} / {f.rows_quarantined}"
            )
            metadata[f"{f.file} sha256"] = f.sha256
        # The data version is the inputs' content hash, so unchanged inputs keep
        # everything downstream up to date.
        return dg.MaterializeResult(
            metadata=metadata,
            data_version=dg.DataVersion(fingerprint(study)),
            check_results=checks.results(INGESTED, warehouse),
        )

    @study_asset(SCORES, ingested)
    def scores(warehouse: Warehouse) -> dg.MaterializeResult:
        """Instrument scores per visit (e.g. Sunnybrook composite, House-Brackmann grade per rater),
        computed in DuckDB from item-level answers."""
        with _recorded(warehouse, study, SCORES) as con:
            rerun.run(con, study, None, "score", steps.score)
            n, missing = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE value IS NULL) FROM {s}.scores"
            ).fetchall()[0]
        return dg.MaterializeResult(metadata={"dagster/row_count": n, "missing scores": missing})

    @study_asset(PAIRS, scores)
    def pairs(
        warehouse: Warehouse, reports: Reports, analysis_options: AnalysisOptions
    ) -> dg.MaterializeResult:
        """Pre/post pairs per planned outcome, by the visit rules of the analysis plan."""
        effective = planned(analysis_options, reports)
        with _recorded(warehouse, effective, PAIRS, reports) as con:
            rerun.run(con, effective, reports.folder, "pair", steps.pair)
            summary = con.execute(f"SELECT * FROM {s}.pairing_summary").df()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": int(summary["paired"].sum()),
                "pairing": dg.MetadataValue.md(markdown_frame(summary)),
            },
            check_results=checks.results(PAIRS, warehouse),
        )

    @study_asset(PAIRED_TESTS, pairs)
    def paired_tests(
        warehouse: Warehouse, reports: Reports, analysis_options: AnalysisOptions
    ) -> dg.MaterializeResult:
        """Paired tests of post - pre for every planned outcome, whole cohort and each subgroup: t
        and Wilcoxon signed-rank, effect sizes, adjusted P
        (`reports/<study>/tables/paired_tests.csv`, full precision)."""
        effective = planned(analysis_options, reports)
        with _recorded(warehouse, effective, PAIRED_TESTS, reports) as con:
            done = rerun.run(
                con, effective, reports.folder, "analyse", steps.analyse, reports.folder
            )
            results = done.result if done.ran else steps.cohort_results(con, effective)
        primary_name = effective.analysis.primary or results["outcome"].iat[0]
        primary = results[results["outcome"] == primary_name].iloc[0]
        preview = results[
            [
                "outcome",
                "score",
                "n_pairs",
                "mean_diff",
                "ci_low",
                "ci_high",
                "p_used",
                "p_adj",
                "test_used",
            ]
        ].copy()
        # P as the report prints it; the CSV keeps full precision.
        preview["p_used"] = [AMA.p(p) for p in preview["p_used"]]
        preview["p_adj"] = [AMA.p(p) for p in preview["p_adj"]]
        return dg.MaterializeResult(
            metadata={
                **_paths(
                    [steps.study_reports(reports.folder, study) / "tables" / "paired_tests.csv"]
                ),
                "dagster/row_count": len(results),
                "primary outcome": f"{primary['outcome']} {primary['score']}",
                "primary mean change": float(primary["mean_diff"]),
                "primary P": p_text(float(primary["p_used"])),
                "results": dg.MetadataValue.md(markdown_frame(preview)),
                "analysis overrides": dg.MetadataValue.json(analysis_options.overrides),
            },
            check_results=checks.results(PAIRED_TESTS, warehouse),
        )

    @study_asset(SECONDARY_ANALYSES, paired_tests)
    def secondary_analyses(
        warehouse: Warehouse, reports: Reports, analysis_options: AnalysisOptions
    ) -> dg.MaterializeResult:
        """The rest of the analysis plan, one full-precision table each: subgroups and ANCOVA,
        change direction (sign test, McNemar, Bowker), responders, rater reliability,
        baseline-change correlation, missing data, mixed-model visit means; complications and
        power for a future study when the plan declares them."""
        written = run_planned(
            steps.secondary_analyses, SECONDARY_ANALYSES, warehouse, reports, analysis_options
        )
        return dg.MaterializeResult(metadata={**_paths(written), "dagster/row_count": len(written)})

    @study_asset(TABLES, secondary_analyses)
    def publication_tables(
        warehouse: Warehouse, reports: Reports, analysis_options: AnalysisOptions
    ) -> dg.MaterializeResult:
        """Publication tables (Table 1, Table 2, Table 3 and eTables) as CSV, Markdown, HTML, LaTeX
        and Word, rounded for print."""
        written = run_planned(steps.write_tables, TABLES, warehouse, reports, analysis_options)
        return dg.MaterializeResult(
            metadata={
                "files": _listing(written),
                "Table 2": dg.MetadataValue.md(written[1].read_text(encoding="utf-8")),
            }
        )

    @study_asset(FIGURES, secondary_analyses)
    def figures(
        warehouse: Warehouse,
        reports: Reports,
        analysis_options: AnalysisOptions,
        figure_workers: FigureWorkers,  # noqa: ARG001  (set up by Dagster as the run starts)
    ) -> dg.MaterializeResult:
        """Publication figures (slope plots, before/after boxes, change distribution, grade shift,
        patient flow, rater agreement, trajectory, subgroup forest) as PNG 300 dpi, TIFF 600 dpi,
        PDF and SVG at single- and double-column width."""
        written = run_planned(steps.write_figures, FIGURES, warehouse, reports, analysis_options)
        # No figure when there is nothing to draw (the report says why).
        folder = steps.study_reports(reports.folder, study) / "figures"
        return dg.MaterializeResult(
            metadata={
                "files": _listing(written),
                "dagster/row_count": len(written),
                "folder": dg.MetadataValue.path(str(folder)),
            }
        )

    @study_asset(REPORT, publication_tables, figures)
    def study_report(
        warehouse: Warehouse, reports: Reports, analysis_options: AnalysisOptions
    ) -> dg.MaterializeResult:
        """The study report: one self-contained HTML file (and a Word copy) with the tables,
        figures, Methods paragraph and provenance."""
        written = run_planned(steps.write_report, REPORT, warehouse, reports, analysis_options)
        return dg.MaterializeResult(metadata=_paths(written))

    return [
        raw_files,
        ingested,
        scores,
        pairs,
        paired_tests,
        secondary_analyses,
        publication_tables,
        figures,
        study_report,
    ]
