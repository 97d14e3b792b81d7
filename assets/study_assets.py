"""The asset graph of one study: ingest -> scores -> pairs -> analysis -> tables, figures.

Every asset key starts with the study's name, so each folder under
``data/raw/`` gets its own graph and a coordinator can materialize one study
alone. The asset bodies only call ``pipeline.report`` steps and attach
metadata.
"""

from __future__ import annotations

import dagster as dg

from pipeline import report
from pipeline.instruments import score_study
from pipeline.pairing import pair_study
from pipeline.study import Study
from pipeline.warehouse import scalar

from assets.resources import Reports, Warehouse

OWNER = "team:research-coordination"
CODE_VERSION = "1"


def _paths(paths) -> dict[str, dg.MetadataValue]:
    return {p.name: dg.MetadataValue.path(str(p)) for p in paths}


def build_study_assets(study: Study) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    s = study.name
    common = {"key_prefix": [s], "owners": [OWNER], "code_version": CODE_VERSION, "tags": {"study": s}}

    @dg.asset(name="ingested", group_name="ingest", kinds={"duckdb", "csv"}, **common,
              description=f"Raw exports of study '{s}' read into the warehouse. Every row is accepted "
                          "or quarantined with a reason; only columns the study spec maps are read.")
    def ingested(warehouse: Warehouse, reports: Reports) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            files = report.ingest(con, study, reports.folder)
            quarantined_values = scalar(con, f"SELECT count(*) FROM {s}.quarantine WHERE scope = 'value'")
        metadata = {"quarantined_values": quarantined_values, "spec_sha256": study.spec_sha256,
                    **_paths([report.study_reports(reports.folder, study) / "provenance.json"])}
        for f in files:
            metadata[f"{f.file} rows read / accepted / quarantined"] = (
                f"{f.rows_read} / {f.rows_accepted} / {f.rows_quarantined}")
            metadata[f"{f.file} sha256"] = f.sha256
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset_check(asset=ingested, name="rows_accounted", blocking=True,
                    description="Every row read is either accepted or quarantined.")
    def rows_accounted(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            rows = con.execute(f"""
                SELECT file, rows_read, rows_accepted, rows_quarantined FROM {s}.source_files
                WHERE rows_read <> rows_accepted + rows_quarantined""").fetchall()
        return dg.AssetCheckResult(
            passed=not rows,
            metadata={"unaccounted files": ", ".join(r[0] for r in rows) or "none"},
        )

    @dg.asset(name="scores", group_name="scores", deps=[ingested], kinds={"duckdb"}, **common,
              description="Instrument scores per visit (e.g. Sunnybrook composite, House-Brackmann "
                          "grade per rater), computed in DuckDB from item-level answers.")
    def scores(warehouse: Warehouse) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            score_study(con, study)
            n, missing = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE value IS NULL) FROM {s}.scores").fetchall()[0]
        return dg.MaterializeResult(metadata={"dagster/row_count": n, "missing scores": missing})

    @dg.asset(name="pairs", group_name="pairs", deps=[scores], kinds={"duckdb"}, **common,
              description="Pre/post pairs per planned outcome, by the visit rules of the analysis plan.")
    def pairs(warehouse: Warehouse) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            pair_study(con, study)
            summary = con.execute(f"SELECT * FROM {s}.pairing_summary").df()
        return dg.MaterializeResult(metadata={
            "dagster/row_count": int(summary["paired"].sum()),
            "pairing": dg.MetadataValue.md(summary.to_markdown(index=False)),
        })

    @dg.asset(name="paired_tests", group_name="analysis", deps=[pairs], kinds={"duckdb", "scipy"}, **common,
              description="Paired t-test and Wilcoxon signed-rank test of post - pre for every planned "
                          "outcome, at full precision (reports/<study>/tables/paired_tests.csv).")
    def paired_tests(warehouse: Warehouse, reports: Reports) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            results = report.analyse(con, study, reports.folder)
        primary = results.iloc[0]
        preview = results[["outcome", "score", "n_pairs", "mean_diff", "ci_low", "ci_high", "p_used", "test_used"]]
        return dg.MaterializeResult(metadata={
            **_paths([report.study_reports(reports.folder, study) / "tables" / "paired_tests.csv"]),
            "dagster/row_count": len(results),
            "primary outcome": f"{primary['outcome']} {primary['score']}",
            "primary mean change": float(primary["mean_diff"]),
            "primary P": float(primary["p_used"]),
            "results": dg.MetadataValue.md(preview.to_markdown(index=False)),
        })

    @dg.asset(name="table_2", group_name="tables", deps=[paired_tests], kinds={"csv", "markdown"}, **common,
              description="Table 2, outcomes before and after surgery, as CSV and Markdown.")
    def table_2(warehouse: Warehouse, reports: Reports) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            written = report.write_tables(con, study, reports.folder)
        return dg.MaterializeResult(metadata={
            **_paths(written),
            "preview": dg.MetadataValue.md(written[1].read_text(encoding="utf-8")),
        })

    @dg.asset(name="slope_figures", group_name="figures", deps=[pairs], kinds={"matplotlib"}, **common,
              description="A paired slope plot per outcome (PNG 300 dpi, SVG, PDF).")
    def slope_figures(warehouse: Warehouse, reports: Reports) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            written = report.write_figures(con, study, reports.folder)
        return dg.MaterializeResult(metadata=_paths(written))

    return [ingested, scores, pairs, paired_tests, table_2, slope_figures], [rows_accounted]
