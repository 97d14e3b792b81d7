"""The asset graph of a pooled (multi-centre) study: site bundles -> checked bundles -> pooled
analyses -> report.

One observable source asset per site bundle, versioned by the bundle's SHA-256, so a new or
changed bundle marks the pooled study stale; ``ingested`` reads and checks the bundles (its data
version the fingerprint of the spec and every bundle, which the export sensor compares, as for a
single study); ``pooled_analysis`` writes the pooled tables to the warehouse, and ``report``
the tables, forest plot, Methods paragraph, report and provenance. The bodies only call
:mod:`pipeline.pooled_study`.
"""

from __future__ import annotations

import warnings

import dagster as dg

from assets.keys import BUNDLE_PREFIX, INGESTED, OWNER, REPORT, study_asset_settings
from assets.resources import FigureWorkers, Reports, Warehouse
from pipeline import pooled_study
from pipeline.ingest.readers import sha256
from pipeline.pooled_study import PooledStudy
from pipeline.provenance import fingerprint, recorded_run
from pipeline.sources import code_version

POOLED_ANALYSIS = "pooled_analysis"


def bundle_key(site: str) -> str:
    """The asset name of a site's bundle: ``bundle_<site>`` in lower case."""
    return BUNDLE_PREFIX + "".join(c if c.isalnum() else "_" for c in site.lower())


def _bundle_asset(study: PooledStudy, site: str, file: str) -> dg.SourceAsset:
    @dg.observable_source_asset(
        name=bundle_key(site),
        key_prefix=[study.name],
        group_name="bundles",
        owners=[OWNER],
        tags={"study": study.name},
        description=f"Site {site}'s summary bundle `{file}` (aggregates only), versioned by its "
        "SHA-256: a new or changed bundle marks the pooled study stale.",
    )
    def bundle() -> dg.DataVersion:
        return dg.DataVersion(sha256(study.folder / file))

    return bundle


def build_pooled_assets(study: PooledStudy) -> list:
    s = study.name
    common = study_asset_settings(s)
    version = code_version(pooled_study.pool_study)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        bundles = [_bundle_asset(study, site, file) for site, file in study.sites]

    @dg.asset(name=INGESTED, group_name="bundles", deps=bundles, code_version=version, **common)
    def ingested() -> dg.MaterializeResult:
        """The site bundles read and checked: one format version, and the same plan,
        instruments and scoring at every site (else the run stops, naming the difference)."""
        read, hashes = pooled_study.read_bundles(study)
        return dg.MaterializeResult(
            metadata={f"{site} sha256": hashes[site] for site in read},
            data_version=dg.DataVersion(fingerprint(study)),
        )

    @dg.asset(
        name=POOLED_ANALYSIS,
        group_name="analysis",
        deps=[ingested],
        kinds={"duckdb", "statsmodels"},
        code_version=version,
        **common,
    )
    def pooled_analysis(warehouse: Warehouse) -> dg.MaterializeResult:
        """Exact pooled paired t of all patients, each site's mean change, the
        random-effects meta-analysis and, with declared moderators, the meta-regression on
        site characteristics (`<study>.pooled_paired`, `.site_effects`, `.meta_analysis`,
        `.meta_regression`)."""
        read, _ = pooled_study.read_bundles(study)
        run_id = dg.AssetExecutionContext.get().run.run_id
        with (
            warehouse.connect(s) as con,
            recorded_run(con, study, run_id=run_id, step=POOLED_ANALYSIS),
        ):
            results = pooled_study.analyse_pooled(con, study, read)
        return dg.MaterializeResult(metadata={"dagster/row_count": len(results["pooled_paired"])})

    @dg.asset(
        name=REPORT,
        group_name="report",
        deps=[pooled_analysis],
        kinds={"html", "docx"},
        code_version=version,
        **common,
    )
    def report(
        warehouse: Warehouse,
        reports: Reports,
        figure_workers: FigureWorkers,  # noqa: ARG001  (set up by Dagster as the run starts)
    ) -> dg.MaterializeResult:
        """Table 2 (pooled and per-site rows), the meta-regression eTable, the forest plots by
        site, the Methods paragraph, `report.html` and `provenance.json` listing each bundle's
        hash."""
        read, hashes = pooled_study.read_bundles(study)
        names = ["pooled_outcomes", "pooled_paired", "site_effects", "meta_analysis"]
        if study.moderators:
            names.append("meta_regression")
        results = {
            name: warehouse.frame(s, f"SELECT * EXCLUDE (study) FROM {s}.{name}") for name in names
        }
        written = pooled_study.write_pooled_outputs(study, results, read, hashes, reports.folder)
        folder = reports.folder / s
        return dg.MaterializeResult(
            metadata={str(p.relative_to(folder)): dg.MetadataValue.path(str(p)) for p in written}
        )

    return [*bundles, ingested, pooled_analysis, report]
