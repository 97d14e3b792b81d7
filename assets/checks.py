"""Asset checks of one study: visible in the UI, and blocking downstream assets on failure.

Each check runs inside the step of the asset it checks (declared on that asset as an
``AssetCheckSpec``, its result returned with the asset's ``MaterializeResult``), not in a step of
its own: under the multiprocess executor every step is a process, and a check's query takes
milliseconds against a step's start of a second or more (docs/scaling.md). A failed check stops the
asset's step after its materialization is recorded, so nothing downstream runs.

Each failure's metadata names the rows or outcomes at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from assets.keys import INGESTED, PAIRED_TESTS, PAIRS
from assets.resources import Warehouse
from pipeline import steps
from pipeline.render.cells import markdown_frame
from pipeline.spec.study import Study, item_columns
from pipeline.warehouse import scalar


def _listing(frame: pd.DataFrame, limit: int = 20) -> dg.MetadataValue:
    # Rows at fault can carry export text (a subject code, a visit label): neutralised as in
    # every table written (pipeline.render.cells), since a preview is easily copied into a
    # spreadsheet.
    return dg.MetadataValue.md(markdown_frame(frame.head(limit)) if not frame.empty else "none")


@dataclass(frozen=True)
class StudyCheck:
    """One check of a study's asset: what the UI shows of it, and how it is evaluated."""

    spec: dg.AssetCheckSpec
    evaluate: Callable[[Warehouse], dg.AssetCheckResult]


class StudyChecks(dict[str, list[StudyCheck]]):
    """A study's checks by the name of the asset each checks."""

    def specs(self, asset: str) -> list[dg.AssetCheckSpec]:
        """The checks declared on ``asset`` (``check_specs`` of its decorator)."""
        return [c.spec for c in self.get(asset, [])]

    def results(self, asset: str, warehouse: Warehouse) -> list[dg.AssetCheckResult]:
        """The checks of ``asset`` evaluated on what its step just wrote, in declared order."""
        return [c.evaluate(warehouse) for c in self.get(asset, [])]


def build_study_checks(study: Study) -> StudyChecks:
    """The study's checks, each to run in the step of the asset it checks."""
    s, limits = study.name, study.checks
    checks = StudyChecks()

    def check(asset: str, name: str, description: str):
        """A check of one of the study's assets; a failure stops the assets downstream."""

        def declare(evaluate: Callable[[Warehouse], dg.AssetCheckResult]):
            spec = dg.AssetCheckSpec(
                name=name, asset=dg.AssetKey([s, asset]), description=description, blocking=True
            )

            def evaluated(warehouse: Warehouse) -> dg.AssetCheckResult:
                # The asset's step evaluates every check it declares: each result names its own.
                result = evaluate(warehouse)
                return dg.AssetCheckResult(
                    asset_key=spec.asset_key,
                    check_name=name,
                    passed=result.passed,
                    metadata=result.metadata,
                )

            checks.setdefault(asset, []).append(StudyCheck(spec, evaluated))
            return evaluate

        return declare

    @check(INGESTED, "rows_accounted", "Every row read is either accepted or quarantined.")
    def rows_accounted(warehouse: Warehouse) -> dg.AssetCheckResult:
        bad = warehouse.frame(
            s,
            f"""
            SELECT file, rows_read, rows_accepted, rows_quarantined FROM {s}.source_files
            WHERE rows_read <> rows_accepted + rows_quarantined""",
        )
        return dg.AssetCheckResult(passed=bad.empty, metadata={"unaccounted files": _listing(bad)})

    @check(
        INGESTED,
        "no_identifier_columns",
        "No ingested table holds a column whose name or values look like an "
        "identifier (HIPAA Safe Harbor), apart from columns the spec allows.",
    )
    def no_identifier_columns(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect(s) as con:
            findings = steps.identifier_findings(con, study)
        # Column and rule only: a finding never carries the value itself.
        listed = pd.DataFrame(
            [
                {"table": f.file, "column": f.column, "rule": f.rule, "rows": f.rows}
                for f in findings
            ]
        )
        return dg.AssetCheckResult(passed=not findings, metadata={"findings": _listing(listed)})

    @check(
        INGESTED,
        "item_values_in_range",
        "Every accepted item value lies in its instrument's allowed range.",
    )
    def item_values_in_range(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect(s) as con:
            con.register("item_ranges", item_columns(study))
            try:
                bad = con.execute(f"""
                    SELECT r.subject, r.visit, r.instrument, r.rater, r.item, r.value, r.line
                    FROM {s}.item_responses r
                    LEFT JOIN item_ranges m USING (instrument, rater, item)
                    WHERE m.item IS NULL OR r.value < m.minimum OR r.value > m.maximum
                       OR (m.integer AND r.value <> round(r.value))
                    ORDER BY r.line""").df()
            finally:
                con.unregister("item_ranges")
        return dg.AssetCheckResult(
            passed=bad.empty,
            metadata={"values out of range": len(bad), "first rows": _listing(bad)},
        )

    @check(
        PAIRS,
        "pairing_completeness",
        f"For every outcome, at least {limits.min_paired_share:.0%} of subjects "
        "have both a pre and a post value (`min_paired_share` under `[checks]` in the spec).",
    )
    def pairing_completeness(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect(s) as con:
            summary = con.execute(f"""
                SELECT outcome, score, subjects, paired,
                       paired / nullif(subjects, 0) AS share FROM {s}.pairing_summary""").df()
            subjects = scalar(con, f"SELECT count(*) FROM {s}.subjects")
        # A planned outcome without a single value is not in the summary: none of its subjects is
        # paired.
        planned = steps.planned_outcomes(study)[["outcome", "score"]]
        summary = planned.merge(summary, on=["outcome", "score"], how="left").fillna(
            {"subjects": subjects, "paired": 0}
        )
        summary["share"] = summary["paired"] / summary["subjects"].where(summary["subjects"] > 0)
        short = summary[~(summary["share"] >= limits.min_paired_share)]
        return dg.AssetCheckResult(
            passed=short.empty,
            metadata={
                "threshold": limits.min_paired_share,
                "below threshold": _listing(short),
                "lowest share": float(summary["share"].min()) if not summary.empty else 0.0,
            },
        )

    @check(
        PAIRED_TESTS,
        "minimum_pairs",
        f"Every planned test has at least {limits.min_pairs} pairs "
        "(`min_pairs` under `[checks]` in the spec); an outcome without any pair "
        "has no test, and `pairing_completeness` decides whether that is allowed.",
    )
    def minimum_pairs(warehouse: Warehouse) -> dg.AssetCheckResult:
        # Whole cohort only: a subgroup level may be small by design (exploratory analyses).
        results = warehouse.frame(
            s,
            f"""
            SELECT outcome, score, n_pairs FROM {s}.paired_tests WHERE "group" = 'all'""",
        )
        # No pair, no test: its Table 2 row says "not estimable". Such an outcome already fails
        # pairing_completeness unless the spec allows it (min_paired_share = 0, e.g. a study of
        # rater agreement), so it is not a test with too few pairs here.
        short = results[(results["n_pairs"] > 0) & (results["n_pairs"] < limits.min_pairs)]
        return dg.AssetCheckResult(
            passed=short.empty,
            metadata={"threshold": limits.min_pairs, "too few pairs": _listing(short)},
        )

    @check(
        PAIRED_TESTS,
        "statistics_sanity",
        "Every P value lies in [0, 1] and every mean change inside its CI.",
    )
    def statistics_sanity(warehouse: Warehouse) -> dg.AssetCheckResult:
        p_in_range = " AND ".join(
            f"coalesce(isnan({p}) OR {p} BETWEEN 0 AND 1, true)"
            for p in ("p_t", "p_wilcoxon", "p_used")
        )
        bad = warehouse.frame(
            s,
            f"""
            SELECT outcome, score, "group", mean_diff, ci_low, ci_high, p_t, p_wilcoxon, p_used
            FROM {s}.paired_tests
            WHERE NOT ({p_in_range}
                       AND coalesce(isnan(mean_diff) OR isnan(ci_low) OR isnan(ci_high)
                                    OR mean_diff BETWEEN ci_low AND ci_high, true))""",
        )
        return dg.AssetCheckResult(passed=bad.empty, metadata={"violations": _listing(bad)})

    return checks
