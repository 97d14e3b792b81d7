"""One study from raw files to tables and figures, step by step.

Each step reads what the previous one wrote to the warehouse, so the Dagster
assets (``assets/``) call these same functions one per asset, and
:func:`run_study` chains them for the command line and the tests.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from pipeline import figures, tables
from pipeline.ingest import SourceFile, ingest_study
from pipeline.instruments import REGISTRY, score_study
from pipeline.pairing import outcomes_frame, pair_study
from pipeline.provenance import write_provenance
from pipeline.statistics.paired import paired_tests
from pipeline.study import Study
from pipeline.warehouse import read_frame, write_frame


def study_reports(reports_dir: Path, study: Study) -> Path:
    return Path(reports_dir) / study.name


def ingest(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> list[SourceFile]:
    """Ingest the raw files and record their hashes in ``reports/<study>/provenance.json``."""
    files = ingest_study(con, study)
    write_provenance(study, files, study_reports(reports_dir, study))
    return files


def analyse(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> pd.DataFrame:
    """Paired tests for every planned outcome; writes ``<study>.paired_tests`` and
    ``tables/paired_tests.csv`` (full precision) and returns the results."""
    plan = study.analysis
    planned = outcomes_frame(study)
    pairs = read_frame(con, f"SELECT outcome, score, subject, pre_value, post_value FROM {study.name}.pairs")
    results = paired_tests(
        pairs,
        test=dict(zip(planned["outcome"], planned["test"])),
        pre_visit=plan.pre_label,
        post_visit=plan.post_label,
        conf_level=plan.conf_level,
    )
    # An outcome with no pairs at all still gets a row, so nothing planned silently disappears;
    # reindexing also puts the rows in the spec's order.
    keys = pd.MultiIndex.from_frame(planned[["outcome", "score"]])
    results = results.set_index(["outcome", "score"]).reindex(keys).reset_index()
    unpaired = results["n_pairs"].isna()
    results.loc[unpaired, ["group", "pre_visit", "post_visit", "note"]] = [
        "all", plan.pre_label, plan.post_label, "no subject has both a pre and a post value"]
    results.loc[unpaired, "n_pairs"] = 0
    results["n_pairs"] = results["n_pairs"].astype(int)
    results.insert(0, "study", study.name)
    results = results.reset_index(drop=True)
    write_frame(con, f"{study.name}.paired_tests", results)
    tables.write_results(results, study_reports(reports_dir, study) / "tables", "paired_tests")
    return results


def write_tables(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> list[Path]:
    """Table 2 as CSV and Markdown under ``reports/<study>/tables/``."""
    results = read_frame(con, f"SELECT * FROM {study.name}.paired_tests")
    table = tables.table_2(results, outcomes_frame(study), conf_level=study.analysis.conf_level,
                           synthetic=study.synthetic)
    return tables.write_table(table, study_reports(reports_dir, study) / "tables", "table_2")


def write_figures(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> list[Path]:
    """A paired slope plot per outcome under ``reports/<study>/figures/``."""
    plan = study.analysis
    pairs = read_frame(con, f"SELECT outcome, score, pre_value, post_value FROM {study.name}.pairs")
    written = []
    for row in outcomes_frame(study).itertuples():
        subset = pairs[(pairs["outcome"] == row.outcome) & (pairs["score"] == row.score)]
        if subset.empty:
            continue
        score = REGISTRY[row.instrument].score(row.score)
        direction = "higher is better" if score.higher_is_better else "lower is better"
        fig = figures.slope_plot(
            subset,
            title=row.label,
            ylabel=f"{score.label} ({direction})",
            pre_label="Before surgery",
            post_label=f"Last follow-up\n(day ≥ {plan.post_min_day})",
            conf_level=plan.conf_level,
            footer=tables.SYNTHETIC_NOTE if study.synthetic else "",
        )
        written += figures.save(fig, study_reports(reports_dir, study) / "figures",
                                f"slope_{row.outcome}_{row.score}")
    return written


def run_study(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> dict[str, object]:
    """The whole path for one study; returns the accounting and every path written."""
    files = ingest(con, study, reports_dir)
    score_study(con, study)
    pair_study(con, study)
    results = analyse(con, study, reports_dir)
    written = [study_reports(reports_dir, study) / "provenance.json",
               study_reports(reports_dir, study) / "tables" / "paired_tests.csv"]
    written += write_tables(con, study, reports_dir)
    written += write_figures(con, study, reports_dir)
    return {"files": files, "results": results, "paths": written}
