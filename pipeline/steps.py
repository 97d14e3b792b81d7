"""One study from raw files to tables and figures, step by step.

Each step reads what the previous one wrote to the warehouse, so the Dagster
assets (``assets/``) call these same functions one per asset, and
:func:`run_study` chains them for the command line and the tests.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipeline import files as output_files
from pipeline import kept_results
from pipeline.ingest.ingestion import SourceFile, file_labels, ingest_study
from pipeline.pairing import (
    comparison_study,
    outcomes_frame,
    pair_study,
    planned_scores_sql,
    planned_tests,
    primary_pairs,
)
from pipeline.provenance import recorded_run, write_provenance
from pipeline.scores import score_study
from pipeline.spec.study import Study
from pipeline.sql import quote
from pipeline.statistics.small_cells import small_codes_left_out
from pipeline.warehouse import atomic, read_frame, read_shared_text, scalar, write_frame

# Statistics, tables and figures (scipy, matplotlib, python-docx) are imported by the steps
# that use them: loading the Dagster definitions or ingesting needs none of them.


def study_reports(reports_dir: Path, study: Study) -> Path:
    return Path(reports_dir) / study.name


def ingest(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> list[SourceFile]:
    """Ingest the raw files and record their hashes in ``reports/<study>/provenance.json``."""
    files = ingest_study(con, study)
    write_provenance(study, files, study_reports(reports_dir, study))
    return files


def score(con: duckdb.DuckDBPyConnection, study: Study) -> None:
    """Every instrument's scores per visit, from the ingested item answers: ``<study>.scores``."""
    score_study(con, study)


def pair(con: duckdb.DuckDBPyConnection, study: Study) -> None:
    """The pre/post pairs of every planned outcome by the plan's visit rules: ``<study>.pairs``
    and ``<study>.pairing_summary``."""
    pair_study(con, study)


def _subgroup_levels(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """Each subject's level in every planned subgroup
    (:func:`pipeline.statistics.subgroups.subgroup_levels`)."""
    from pipeline.statistics.subgroups import COLUMNS, subgroup_levels

    groups = study.analysis.subgroups
    if not groups:
        return pd.DataFrame(columns=COLUMNS)
    columns = ", ".join(quote(g.column) for g in groups)
    subjects = read_frame(con, f"SELECT subject, {columns} FROM {study.name}.subjects")
    try:
        return _kept(
            con, study, "subgroup_levels", subgroup_levels, subjects, groups, study.min_cell
        )
    except ValueError as err:
        raise ValueError(f"{study.spec_path}: {err}") from None


def _levels_in_order(
    con: duckdb.DuckDBPyConnection, study: Study
) -> tuple[pd.DataFrame, list[str]]:
    """Each subject's subgroup levels, and the levels in a stable, readable order (subgroup by
    spec order, then its levels in their declared order,
    :func:`pipeline.statistics.subgroups.ordered_levels`): the whole cohort is group ``"all"``,
    then each level (``paired_tests(..., levels=...)``, ``complication_rates``)."""
    from pipeline.statistics.subgroups import ordered_levels

    levels = _subgroup_levels(con, study)
    level_order = []
    for g in study.analysis.subgroups:
        present = levels.loc[levels["subgroup"] == g.name, "group"].unique()
        level_order += ordered_levels(g, present, study.min_cell)[0]
    return levels[["subject", "group"]], level_order


def _pairs_and_levels(
    con: duckdb.DuckDBPyConnection, study: Study
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The pairs, with :func:`_levels_in_order`'s levels and their order."""
    pairs = read_shared_text(
        con,
        "SELECT comparison, outcome, score, subject, pre_value, post_value "
        f"FROM {study.name}.pairs",
    )
    return pairs, *_levels_in_order(con, study)


@atomic  # paired_tests and its subgroup view replaced together, or neither
def analyse(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> pd.DataFrame:
    """Paired tests for every planned outcome, for the whole cohort and each subgroup level, in
    every comparison of the plan.

    Writes ``<study>.paired_tests`` and ``tables/paired_tests.csv`` at full precision: one row
    per comparison, outcome, score and group (``all`` for the whole cohort, first, one row per
    planned outcome; then ``<subgroup>=<level>`` rows), plus the view
    ``<study>.paired_tests_subgroups`` of the subgroup rows. ``comparison`` names each row's
    comparison (in the CSV only when the plan has several). Returns the whole-cohort rows. P
    values are adjusted over the secondary outcomes within each group and comparison (Holm or
    Benjamini-Hochberg, as the plan says); the primary outcome's is not. With
    ``multiplicity_scope = "study"`` the whole-cohort family is every secondary test of every
    comparison (:func:`_adjusted_across_comparisons`).
    """
    from pipeline.render import writers

    plan = study.analysis
    pairs, levels, level_order = _pairs_and_levels(con, study)
    several = len(plan.compared) > 1
    whole, by_level = [], []
    for comparison in plan.compared:
        rows = pairs[pairs["comparison"] == comparison.name].drop(columns="comparison")
        one = comparison_study(study, comparison)
        if comparison.name != plan.primary_comparison_name:
            # The primary outcome is confirmatory in the primary comparison alone: in another
            # it is one more secondary test of that comparison's family.
            one = replace(one, analysis=replace(one.analysis, primary=""))
        results, subgroups = _analyse_comparison(con, one, reports_dir, rows, levels, level_order)
        whole.append(results.assign(comparison=comparison.name))
        by_level.append(subgroups.assign(study=study.name, comparison=comparison.name))
    results = pd.concat(whole, ignore_index=True)
    if several and plan.multiplicity_scope == "study":
        results = _adjusted_across_comparisons(results, plan)
    results.insert(1, "comparison", results.pop("comparison"))
    subgroups = pd.concat(by_level, ignore_index=True)
    every_group = pd.concat([results, subgroups[results.columns]], ignore_index=True)
    write_frame(con, f"{study.name}.paired_tests", every_group)
    # One comparison: the CSV as before comparisons could be named (its rows are all the one).
    writers.write_results(
        every_group if several else every_group.drop(columns="comparison"),
        study_reports(reports_dir, study) / "tables",
        "paired_tests",
    )
    # The subgroup rows as a view: readers that want only them need no second copy.
    kind = scalar(
        con,
        "SELECT any_value(table_type) FROM information_schema.tables "
        "WHERE table_schema = ? AND table_name = 'paired_tests_subgroups'",
        [study.name],
    )
    if kind:
        con.execute(
            f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {study.name}.paired_tests_subgroups"
        )
    if len(subgroups):
        con.execute(f"""CREATE VIEW {study.name}.paired_tests_subgroups AS
                        SELECT * FROM {study.name}.paired_tests WHERE "group" <> 'all'""")
    return results


def _adjusted_across_comparisons(results: pd.DataFrame, plan) -> pd.DataFrame:
    """The whole-cohort ``results`` of every comparison with ``p_adj`` over one family: every
    secondary outcome of every comparison, and the primary outcome in the comparisons other
    than the primary one (``multiplicity_scope = "study"``). The primary outcome in the
    primary comparison keeps its unadjusted P, as in a study of one comparison."""
    from pipeline.statistics.multiplicity import METHODS, adjust_p

    out = results.copy()
    confirmatory = (out["outcome"] == plan.primary) & (
        out["comparison"] == plan.primary_comparison_name
    )
    p = out["p_used"].astype(float)
    family = ~confirmatory & p.notna()
    out.loc[family, "p_adj"] = adjust_p(p[family].to_numpy(), plan.multiplicity)
    out.loc[family, "p_adj_method"] = (
        f"{METHODS[plan.multiplicity]} over {int(family.sum())} secondary tests "
        f"of {len(plan.compared)} comparisons"
    )
    return out


def _analyse_comparison(
    con: duckdb.DuckDBPyConnection,
    study: Study,
    reports_dir: Path,
    pairs: pd.DataFrame,
    levels: pd.DataFrame,
    level_order: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paired tests of one comparison (``study``'s plan has its rules, ``pairs`` are its
    pairs): the whole-cohort rows, one per planned outcome in plan order, with ``study``; and
    the subgroup levels' rows with enough pairs."""
    from pipeline.statistics.paired import (
        chosen_tests,
        paired_statistics,
        test_label_without_pairs,
    )

    plan = study.analysis
    planned = outcomes_frame(study)
    # Binary and categorical outcomes are tested on their before x after table, not averaged.
    kinds = _tabled_kinds(study)
    tabled = pairs[pairs["outcome"].isin(kinds)]
    pairs = pairs[~pairs["outcome"].isin(kinds)] if kinds else pairs
    options = planned_tests(study)
    # paired_tests in two parts: the statistics, kept for the options they read (a rerun with
    # another test, alpha or multiplicity method computes none of them again: the demo's 0.5 s,
    # a registry's several seconds), then the plan's choice of test and its adjusted P values.
    statistics = _kept(
        con,
        study,
        "paired_statistics",
        paired_statistics,
        pairs,
        levels=levels,
        level_order=level_order,
        pre_visit=options["pre_visit"],
        post_visit=options["post_visit"],
        conf_level=options["conf_level"],
    )
    results = chosen_tests(
        statistics,
        test=options["test"],
        alpha=options["alpha"],
        primary=plan.primary,
        multiplicity=options["multiplicity"],
    )
    # A level's row for an outcome with fewer pairs than the small-cell minimum is not reported.
    subgroups = results[
        (results["group"] != "all") & (results["n_pairs"] >= study.min_cell)
    ].reset_index(drop=True)
    results = results[results["group"] == "all"]
    # An outcome with no pairs at all still gets a row, so nothing planned silently disappears;
    # reindexing also puts the rows in the spec's order.
    keys = pd.MultiIndex.from_frame(planned[["outcome", "score"]])
    results = results.set_index(["outcome", "score"]).reindex(keys).reset_index()
    unpaired = results["n_pairs"].isna()
    results.loc[
        unpaired, ["group", "pre_visit", "post_visit", "wilcoxon_method", "p_adj_method", "note"]
    ] = [
        "all",
        plan.pre_label,
        plan.post_label,
        "not computed",
        "not computed (no p-value)",
        "no subject has both a pre and a post value",
    ]
    # The test the plan names, as the statistics report it for a group without pairs.
    tests = dict(zip(planned["outcome"], planned["test"]))
    results.loc[unpaired, "test_used"] = [
        test_label_without_pairs(tests[o]) for o in results.loc[unpaired, "outcome"]
    ]
    results.loc[unpaired, "n_pairs"] = 0
    results["n_pairs"] = results["n_pairs"].astype(int)
    results = _tabled_outcomes(con, study, reports_dir, results, tabled, kinds)
    results.insert(0, "study", study.name)
    return results.reset_index(drop=True), subgroups


#: The results of the binary and categorical outcomes (pipeline.statistics.binary).
TABLED_TABLES = ("paired_categorical", "paired_categorical_cells")


def _tabled_kinds(study: Study) -> dict[str, str]:
    """Outcome name -> ``binary`` or ``categorical`` for the plan's outcomes that are not
    scores."""
    return {o.name: o.kind for o in study.analysis.outcomes if o.kind != "score"}


def scored_study(study: Study) -> Study:
    """``study`` with its score outcomes alone: what averages or models a change (the mixed model,
    item changes) never sees a binary or categorical outcome."""
    from dataclasses import replace

    if not _tabled_kinds(study):
        return study
    outcomes = tuple(o for o in study.analysis.outcomes if o.kind == "score")
    return replace(study, analysis=replace(study.analysis, outcomes=outcomes))


def _tabled_outcomes(
    con: duckdb.DuckDBPyConnection,
    study: Study,
    reports_dir: Path,
    results: pd.DataFrame,
    tabled: pd.DataFrame,
    kinds: dict[str, str],
) -> pd.DataFrame:
    """The binary and categorical outcomes' tests (``<study>.paired_categorical`` and its
    before x after counts ``paired_categorical_cells``, with their CSVs), and their rows of the
    whole-cohort ``results``: n pairs, the test (exact McNemar, Stuart-Maxwell) and its P, no t,
    Wilcoxon, Hodges-Lehmann or Shapiro-Wilk. P is then adjusted over every outcome again. A
    plan without such outcomes drops the tables an earlier plan left and changes nothing."""
    from pipeline.statistics.binary import TEST_LABELS, paired_categorical
    from pipeline.statistics.multiplicity import adjust_secondary

    if not kinds:
        for name in TABLED_TABLES:
            _drop_result(con, study, reports_dir, name)
        return results
    plan = study.analysis
    # An outcome without any pair keeps its row (n_pairs = 0), as in paired_tests.
    planned = outcomes_frame(study)
    unpaired = planned[planned["outcome"].isin(kinds) & ~planned["outcome"].isin(tabled["outcome"])]
    if len(unpaired):
        tabled = pd.concat(
            [tabled, unpaired[["outcome", "score"]].assign(pre_value=np.nan, post_value=np.nan)],
            ignore_index=True,
        )
        order = {o: i for i, o in enumerate(planned["outcome"])}
        tabled = tabled.sort_values("outcome", key=lambda o: o.map(order), kind="stable")
    tested, cells = _kept(
        con, study, "paired_categorical", paired_categorical, tabled, kinds, plan.conf_level
    )
    _save(con, study, reports_dir, "paired_categorical", tested)
    _save(con, study, reports_dir, "paired_categorical_cells", cells)
    found = tested.set_index("outcome")
    for i in results.index[results["outcome"].isin(kinds)]:
        outcome = results.at[i, "outcome"]
        results.at[i, "test_used"] = TEST_LABELS[kinds[outcome]]
        if outcome in found.index and found.at[outcome, "n_pairs"] > 0:
            results.at[i, "n_pairs"] = int(found.at[outcome, "n_pairs"])
            results.at[i, "p_used"] = found.at[outcome, "p_used"]
            results.at[i, "note"] = (
                f"{kinds[outcome]} outcome: tested on its before x after table "
                "(paired_categorical.csv)"
            )
    results = results.drop(columns=["p_adj", "p_adj_method"])
    adjusted = adjust_secondary(results, primary=plan.primary, method=plan.multiplicity)
    return adjusted[[c for c in results.columns if c != "note"] + ["p_adj", "p_adj_method", "note"]]


#: The binary outcomes by subgroup level (pipeline.statistics.binary.binary_subgroups).
BINARY_SUBGROUPS = "binary_subgroups"


def binary_by_subgroup(
    con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path
) -> list[Path]:
    """The plan's binary outcomes within each level of each subgroup and compared between the
    levels (:func:`pipeline.statistics.binary.binary_subgroups`): ``<study>.binary_subgroups``
    and its CSV when the plan has both; else the table an earlier plan left is dropped."""
    from pipeline.statistics.binary import BINARY, binary_subgroups
    from pipeline.statistics.subgroups import ordered_levels

    binary = [o for o, kind in _tabled_kinds(study).items() if kind == BINARY]
    if not (binary and study.analysis.subgroups):
        _drop_result(con, study, reports_dir, BINARY_SUBGROUPS)
        return []
    pairs = read_frame(
        con, f"SELECT outcome, score, subject, pre_value, post_value FROM {study.name}.pairs"
    )
    levels = _subgroup_levels(con, study)
    order = {
        g.name: ordered_levels(
            g, levels.loc[levels["subgroup"] == g.name, "group"].unique(), study.min_cell
        )[0]
        for g in study.analysis.subgroups
    }
    frame = _kept(
        con,
        study,
        BINARY_SUBGROUPS,
        binary_subgroups,
        pairs[pairs["outcome"].isin(binary)],
        levels,
        order,
        study.analysis.conf_level,
        study.min_cell,
    )
    return [_save(con, study, reports_dir, BINARY_SUBGROUPS, frame)]


def _in_nominal_order(estimates: pd.DataFrame, plan) -> pd.DataFrame:
    """Visit estimates of visits known by their codes alone (no days): no median day, and the
    visits in the plan's order (the pre visit, the post visit, then the others by code) rather
    than by day."""
    rank = {plan.pre_visit: 0, plan.post_visit: 1}
    order = estimates["visit"].map(lambda v: (rank.get(v, 2), str(v)))
    out = estimates.assign(median_day=float("nan"), _order=order)
    position = {o: i for i, o in enumerate(pd.unique(out["outcome"]))}
    out["_outcome"] = out["outcome"].map(position)
    out = out.sort_values(["_outcome", "_order"], kind="stable")
    return out.drop(columns=["_order", "_outcome"]).reset_index(drop=True)


def _higher_is_better(study: Study) -> dict[str, bool]:
    planned = outcomes_frame(study)
    return dict(zip(planned["outcome"], planned["higher_is_better"].astype(bool)))


def _save(
    con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path, name: str, frame: pd.DataFrame
) -> Path:
    """Write one tidy result table to the warehouse and ``tables/<name>.csv`` (full precision)."""
    from pipeline.render import writers

    frame = frame.copy()
    frame.insert(0, "study", study.name)
    write_frame(con, f"{study.name}.{name}", frame)
    return writers.write_results(frame, study_reports(reports_dir, study) / "tables", name)


def _kept(con: duckdb.DuckDBPyConnection, study: Study, label: str, function, *args, **kwargs):
    """``function(*args, **kwargs)``, a statistics function that reads nothing but its
    arguments, or its result for the same arguments kept in the warehouse
    (:func:`pipeline.kept_results.computed`): an option the analysis does not read leaves it as
    it was."""
    return kept_results.computed(con, study.name, label, function, *args, **kwargs)


def compare_subgroups(
    con: duckdb.DuckDBPyConnection,
    study: Study,
    reports_dir: Path,
    pairs: pd.DataFrame | None = None,
) -> list[Path]:
    """Change compared between the levels of every planned subgroup (Welch t, Mann-Whitney,
    ANOVA, Welch ANOVA, Kruskal-Wallis, ANCOVA post ~ pre + covariates + group), every
    contrast "level minus reference" in the spec's declared order of the levels:
    ``<study>.between_groups`` and ``tables/between_groups.csv``; and the ANCOVA model of the
    primary outcome per subgroup (:func:`pipeline.statistics.group_model.ancova_model`):
    ``ancova_coefficients`` and ``ancova_models``. ``pairs`` is the study's pairs table if the
    caller has already read it (in table order)."""
    from pipeline.statistics.between_groups import RESULT_COLUMNS, compare_groupings
    from pipeline.statistics.group_model import ancova_model
    from pipeline.statistics.grouped import group_rows
    from pipeline.statistics.regression import COEFFICIENT_COLUMNS, MODEL_COLUMNS
    from pipeline.statistics.subgroups import numeric_covariates, ordered_levels

    plan = study.analysis
    columns = ["outcome", "score", "subgroup", *RESULT_COLUMNS]
    keys = ["outcome", "score", "subgroup"]
    # The ANCOVA's model of the primary outcome (the first planned when none is primary), per
    # subgroup: its coefficient table and its fit.
    modelled = plan.primary or plan.outcomes[0].name
    models: list[tuple[pd.DataFrame, pd.DataFrame]] = []

    def saved(between: pd.DataFrame) -> list[Path]:
        tables = {"between_groups": between}
        for i, (name, layout) in enumerate(
            (("ancova_coefficients", COEFFICIENT_COLUMNS), ("ancova_models", MODEL_COLUMNS))
        ):
            parts = [m[i] for m in models]
            tables[name] = (
                pd.concat(parts, ignore_index=True)
                if parts
                else pd.DataFrame(columns=[*keys, *layout])
            )
        return [_save(con, study, reports_dir, name, frame) for name, frame in tables.items()]

    if not plan.subgroups:
        return saved(pd.DataFrame(columns=columns))
    if pairs is None:
        pairs = read_frame(
            con,
            "SELECT outcome, score, subject, pre_value, post_value "
            f"FROM {study.name}.pairs WHERE TRUE{primary_pairs(study)}",
        )
    levels = _subgroup_levels(con, study)
    covariates = list(plan.covariates)
    # Everything about a subject (levels, covariates) is looked up once per subject and reaches
    # the pairs by the subject's code: a registry has millions of pairs, and merging or building
    # a frame per outcome and subgroup costs more than the tests.
    codes, subjects = pd.factorize(pairs["subject"])
    baseline = None
    if covariates:
        cols = ", ".join(quote(c) for c in covariates)
        baseline = numeric_covariates(
            read_frame(con, f"SELECT subject, {cols} FROM {study.name}.subjects"), covariates
        )
        # A subject of the pairs missing from the subjects table has no covariates.
        baseline = baseline.set_index("subject").reindex(subjects).reset_index(drop=True)
    level_codes, references = {}, {}
    for g in plan.subgroups:
        level_of = (
            levels[levels["subgroup"] == g.name].set_index("subject")["group"].reindex(subjects)
        )
        # The levels in the spec's declared order; every comparison is "level minus reference",
        # the same reference for every outcome (the first level where the spec names none).
        order, references[g.name] = ordered_levels(g, level_of.dropna().unique(), study.min_cell)
        subject_level = pd.Categorical(level_of, categories=order).codes.astype(int)
        level_codes[g.name] = (subject_level[codes], order)
    pre, post = pairs["pre_value"].to_numpy(float), pairs["post_value"].to_numpy(float)
    rows = []
    # The pairs of each outcome in table order (as the tests have always summed them); outcomes
    # in order of first appearance.
    outcomes, scores = pairs["outcome"].to_numpy(), pairs["score"].to_numpy()
    for rows_of in group_rows(pairs, ["outcome", "score"]):
        outcome, score = outcomes[rows_of[0]], scores[rows_of[0]]
        # Levels with fewer pairs of this outcome than the small-cell minimum are left out.
        paired = ~np.isnan(pre[rows_of]) & ~np.isnan(post[rows_of])
        res = _kept(
            con,
            study,
            "between_groups",
            compare_groupings,
            pre[rows_of],
            post[rows_of],
            {
                name: (small_codes_left_out(c[rows_of], paired, study.min_cell), labels)
                for name, (c, labels) in level_codes.items()
            },
            baseline.iloc[codes[rows_of]] if covariates else None,
            plan.conf_level,
            references,
            all_pairs=[g.name for g in plan.subgroups if g.contrasts == "all_pairs"],
            adjustments={g.name: g.adjust for g in plan.subgroups},
        )
        res.insert(0, "score", score)
        res.insert(0, "outcome", outcome)
        rows.append(res)
        if outcome != modelled:
            continue
        for name, (c, labels) in level_codes.items():
            level = small_codes_left_out(c[rows_of], paired, study.min_cell)
            frame = pd.DataFrame(
                {
                    "pre_value": pre[rows_of],
                    "post_value": post[rows_of],
                    "group_level": pd.Categorical.from_codes(level, categories=labels),
                }
            )
            if covariates:
                frame[covariates] = baseline.iloc[codes[rows_of]][covariates].to_numpy()
            coefficients, fit = _kept(
                con,
                study,
                "ancova_model",
                ancova_model,
                frame,
                covariates,
                levels=labels,
                reference=references[name],
                conf_level=plan.conf_level,
            )
            where = {"outcome": outcome, "score": score, "subgroup": name}
            models.append(
                tuple(f.assign(**where)[[*keys, *f.columns]] for f in (coefficients, fit))
            )
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    return saved(out)


@atomic  # every table of the step replaced together, or none
def secondary_analyses(
    con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path
) -> list[Path]:
    """Every analysis of the plan beyond the paired tests, each as a warehouse table and a
    full-precision CSV under ``tables/``: ``between_groups``, ``change_direction`` (improved /
    unchanged / worsened, sign test, McNemar, Bowker), ``responders`` (Clopper-Pearson),
    ``reliability`` (ICCs and weighted kappa), ``correlation`` (baseline vs change),
    ``missing_data`` (values per outcome and visit, pairs lost), ``visit_estimates`` (mixed
    model, all visits: the sensitivity analysis beside the complete-case pairs) and
    ``item_changes`` (each instrument's items before and after, on its total's pairs); when
    the plan declares them, ``complications`` (:func:`complications`) and ``power``
    (:func:`power`); ``correlations_by_group`` and ``sign_tests_by_group``
    (:func:`within_groups`); when the plan declares it, ``imputation`` (:func:`imputation`);
    when the plan names predictors, ``regression`` and
    ``regression_models`` (:func:`predictor_models`); and, when the plan declares time-to-event
    analyses, :func:`time_to_event`'s tables. Responders are counted against the spec's
    thresholds and the published minimal important changes
    (:func:`pipeline.pairing.responder_thresholds`)."""
    from pipeline.pairing import responder_thresholds
    from pipeline.statistics.correlation import baseline_change_correlation
    from pipeline.statistics.items import study_item_changes
    from pipeline.statistics.observed import missing_values, visit_estimates
    from pipeline.statistics.ordinal import change_direction
    from pipeline.statistics.reliability import AGREEMENT_COLUMNS, rater_agreement
    from pipeline.statistics.responders import responder_rates

    s, plan = study.name, study.analysis
    better = _higher_is_better(study)
    every = read_shared_text(
        con, f"SELECT comparison, outcome, score, subject, pre_value, post_value FROM {s}.pairs"
    )
    # The primary comparison's pairs for every analysis here but the responders, which are
    # counted in each comparison (_per_comparison).
    primary = every["comparison"] == plan.primary_comparison_name
    pairs = every[primary].drop(columns="comparison").reset_index(drop=True)
    # Change is a score's: binary and categorical outcomes have their own tests (analyse).
    kinds = _tabled_kinds(study)
    if kinds:
        pairs = pairs[~pairs["outcome"].isin(kinds)].reset_index(drop=True)
    written = compare_subgroups(con, study, reports_dir, pairs)
    written += binary_by_subgroup(con, study, reports_dir)
    written.append(
        _save(
            con,
            study,
            reports_dir,
            "change_direction",
            _kept(con, study, "change_direction", change_direction, pairs, better, plan.ordinal),
        )
    )
    thresholds = responder_thresholds(scored_study(study))
    keys = list(zip(thresholds["outcome"], thresholds["score"]))
    written.append(
        _save(
            con,
            study,
            reports_dir,
            "responders",
            _per_comparison(
                study,
                every[~every["outcome"].isin(kinds)],
                lambda rows: _kept(
                    con,
                    study,
                    "responders",
                    responder_rates,
                    rows,
                    dict(zip(keys, thresholds["threshold"])),
                    better,
                    plan.conf_level,
                    sources=dict(zip(keys, thresholds["source"])),
                ),
            ),
        )
    )
    written.append(
        _save(
            con,
            study,
            reports_dir,
            "correlation",
            _kept(con, study, "correlation", baseline_change_correlation, pairs, plan.conf_level),
        )
    )

    agreement = [
        _kept(
            con,
            study,
            "reliability",
            rater_agreement,
            read_frame(
                con,
                f"""
                     SELECT subject, visit, day, rater, value FROM {s}.scores
                     WHERE instrument = ? AND score = ? AND value IS NOT NULL""",
                [r.instrument, r.score],
            ),
            r.raters,
            r.weights,
            plan.conf_level,
            visits=r.visits,
            targets=r.targets,
        ).assign(instrument=r.instrument, score=r.score)
        for r in plan.reliability
    ]
    reliability = pd.concat(agreement, ignore_index=True) if agreement else pd.DataFrame()
    written.append(
        _save(
            con, study, reports_dir, "reliability", reliability.reindex(columns=AGREEMENT_COLUMNS)
        )
    )

    # Every observed value of every planned outcome: counted and fitted one outcome at a time in
    # the warehouse (a registry holds millions), with the results of missing_data and visit_means.
    written.append(_save(con, study, reports_dir, "missing_data", missing_values(con, study)))
    scored = scored_study(study)
    estimates = visit_estimates(con, scored)
    if not plan.days:
        estimates = _in_nominal_order(estimates, plan)
    written.append(_save(con, study, reports_dir, "visit_estimates", estimates))
    # The mixed model as lme4 users write it, when the plan asks for it.
    if plan.mixed_model is not None:
        written += mixed_models(con, study, reports_dir)
    else:
        for name in MIXED_MODEL_TABLES:
            _drop_result(con, study, reports_dir, name)
    # Each instrument's items on its total's pairs (the index study's eFACE table).
    written.append(_save(con, study, reports_dir, "item_changes", study_item_changes(con, scored)))
    # Only what the plan declares: a study without complications, a power plan or a
    # time-to-event analysis writes no table for them, and a table an earlier plan left is
    # dropped, so no report shows an analysis the plan no longer asks for.
    if plan.complications:
        written.append(_save(con, study, reports_dir, "complications", complications(con, study)))
    else:
        _drop_result(con, study, reports_dir, "complications")
    if plan.power is not None:
        written.append(_save(con, study, reports_dir, "power", power(con, study)))
    else:
        _drop_result(con, study, reports_dir, "power")
    written += predictor_models(con, study, reports_dir, pairs)
    if plan.within_groups:
        written += within_groups(con, study, reports_dir, pairs)
    else:
        for name in ("correlations_by_group", "sign_tests_by_group"):
            _drop_result(con, study, reports_dir, name)
    if plan.imputation is not None:
        written.append(_save(con, study, reports_dir, "imputation", imputation(con, study)))
    else:
        _drop_result(con, study, reports_dir, "imputation")
    if plan.time_to_event:
        written += time_to_event(con, study, reports_dir)
    else:
        for name in TIME_TO_EVENT_TABLES:
            _drop_result(con, study, reports_dir, name)
    return written


def _per_comparison(study: Study, pairs: pd.DataFrame, analysis) -> pd.DataFrame:
    """``analysis`` of each comparison's ``pairs`` (with their ``comparison`` column), one
    after another in plan order under a first column ``comparison``; a plan of one comparison
    gets ``analysis`` of its pairs as it is, without the column."""
    compared = study.analysis.compared
    if len(compared) < 2:
        return analysis(pairs.drop(columns="comparison").reset_index(drop=True))
    parts = []
    for c in compared:
        rows = pairs[pairs["comparison"] == c.name].drop(columns="comparison")
        part = analysis(rows.reset_index(drop=True))
        part.insert(0, "comparison", c.name)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _drop_result(
    con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path, name: str
) -> None:
    """Remove a result table :func:`_save` wrote for an earlier plan: the warehouse table and
    its CSV."""
    con.execute(f"DROP TABLE IF EXISTS {study.name}.{quote(name)}")
    (study_reports(reports_dir, study) / "tables" / f"{name}.csv").unlink(missing_ok=True)


# The mixed model's result tables (pipeline.statistics.mixed_model).
MIXED_MODEL_TABLES = ("mixed_model_fixed", "mixed_model_fit", "mixed_model_lrt")


def mixed_model_frames(
    con: duckdb.DuckDBPyConnection, study: Study
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Each planned outcome's mixed model ([analysis.longitudinal] model = true,
    :func:`pipeline.statistics.mixed_model.mixed_model`): fixed effects, fit, likelihood-ratio
    tests, outcomes in the plan's order.

    The group is the subgroup's level of each patient as every other table has it (small
    levels pooled, :func:`pipeline.statistics.subgroups.subgroup_levels`), coded by its
    declared code; covariates are read as numbers."""
    from pipeline.statistics.mixed_model import (
        FIT_COLUMNS,
        FIXED_COLUMNS,
        LRT_COLUMNS,
        ModelSpec,
        mixed_model,
    )
    from pipeline.statistics.subgroups import numeric_covariates, ordered_levels

    s, plan, mm = study.name, study.analysis, study.analysis.mixed_model
    subjects = read_frame(con, f"SELECT subject FROM {s}.subjects")
    levels, reference = mm.levels, mm.reference
    if mm.group:
        groups = _subgroup_levels(con, study)
        groups = groups[groups["subgroup"] == mm.group]
        # The levels in the order every comparison of the study has them (declared order, then
        # undeclared ones, a pooled level of small ones last) and the reference.
        subgroup = next(g for g in plan.subgroups if g.name == mm.group)
        order, reference = ordered_levels(subgroup, groups["group"].unique(), study.min_cell)
        prefix = f"{mm.group}: "
        levels = tuple(o.removeprefix(prefix) for o in order)
        reference = reference.removeprefix(prefix)
        subjects = subjects.merge(
            pd.DataFrame(
                {"subject": groups["subject"], mm.group: groups["group"].str.removeprefix(prefix)}
            ),
            how="left",
        )
    if mm.covariates:
        columns = ", ".join(quote(c) for c in mm.covariates)
        covariates = read_frame(con, f"SELECT subject, {columns} FROM {s}.subjects")
        subjects = subjects.merge(numeric_covariates(covariates, mm.covariates), how="left")
    spec = ModelSpec(
        time=mm.time,
        group=mm.group,
        levels=levels,
        reference=reference,
        interaction=mm.interaction,
        covariates=mm.covariates,
        random_slope=mm.random_slope,
        method=mm.method,
        df=mm.df,
        conf_level=plan.conf_level,
    )
    planned = outcomes_frame(study)
    queries = dict(zip(planned["outcome"], planned_scores_sql(study, missing=False, separate=True)))
    scores = dict(zip(planned["outcome"], planned["score"]))
    parts: list[list[pd.DataFrame]] = [[], [], []]
    for outcome in mm.outcomes:
        values = read_frame(
            con,
            f"SELECT subject, visit, day, value FROM ({queries[outcome]}) ORDER BY subject, visit",
        ).merge(subjects, on="subject", how="left")
        visits = None
        if not plan.days:
            rank = {plan.pre_visit: 0, plan.post_visit: 1}
            visits = sorted(values["visit"].unique(), key=lambda v: (rank.get(v, 2), str(v)))
        fitted = _kept(
            con,
            study,
            "mixed_model",
            mixed_model,
            values,
            spec,
            outcome=outcome,
            score=scores[outcome],
            visits=visits,
        )
        for part, frame in zip(parts, fitted):
            part.append(frame)
    out = []
    for part, columns in zip(parts, (FIXED_COLUMNS, FIT_COLUMNS, LRT_COLUMNS)):
        frames = [f for f in part if len(f)]
        out.append(
            pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        )
    return tuple(out)


def mixed_models(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> list[Path]:
    """:func:`mixed_model_frames` saved as ``mixed_model_fixed``, ``mixed_model_fit`` and
    ``mixed_model_lrt``."""
    return [
        _save(con, study, reports_dir, name, frame)
        for name, frame in zip(MIXED_MODEL_TABLES, mixed_model_frames(con, study))
    ]


def within_groups(
    con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path, pairs: pd.DataFrame
) -> list[Path]:
    """Within the whole cohort and each subgroup level (levels in their declared order, a
    level of fewer pairs than the small-cell minimum left out): pre vs post and pre vs change
    correlations (:func:`pipeline.statistics.correlation.correlations_by_group`):
    ``correlations_by_group``; and the sign test (:func:`pipeline.statistics.paired.sign_tests`):
    ``sign_tests_by_group``."""
    from pipeline.statistics.within_groups import within_group_tests

    levels, level_order = _levels_in_order(con, study)
    # One pass over the pairs for every group (pipeline.statistics.within_groups): a table of
    # every level's rows would be the pairs as many times as there are subgroups.
    tables = _kept(
        con,
        study,
        "within_groups",
        within_group_tests,
        pairs,
        levels,
        level_order,
        study.min_cell,
        study.analysis.conf_level,
    )
    return [
        _save(con, study, reports_dir, name, frame)
        for name, frame in zip(("correlations_by_group", "sign_tests_by_group"), tables)
    ]


def imputation(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """The imputed outcome's mean change, complete pairs and multiply imputed
    (:func:`pipeline.statistics.imputation.imputation_analysis`), from
    ``<study>.imputation_values`` (every patient with a pre or post value) and the plan's
    predictors, read as numbers as the covariates are."""
    from pipeline.statistics.imputation import imputation_analysis
    from pipeline.statistics.subgroups import numeric_covariates

    plan, s = study.analysis.imputation, study.name
    values = read_frame(con, f"SELECT subject, pre_value, post_value FROM {s}.imputation_values")
    predictors = list(plan.predictors)
    if predictors:
        columns = ", ".join(quote(c) for c in predictors)
        subjects = numeric_covariates(
            read_frame(con, f"SELECT subject, {columns} FROM {s}.subjects"), predictors
        )
        for column in predictors:
            if not pd.api.types.is_numeric_dtype(subjects[column]):
                raise ValueError(
                    f"{study.spec_path}: setting 'analysis.imputation.predictors' names "
                    f"{column!r}, whose values are not all numbers; name columns of numbers "
                    "(0/1 codes for a yes/no column) or correct the export."
                )
        values = values.merge(subjects, on="subject", how="left")
    score = next(o.score for o in study.analysis.outcomes if o.name == plan.outcome)
    table, _ = _kept(
        con,
        study,
        "imputation",
        imputation_analysis,
        values,
        outcome=plan.outcome,
        score=score,
        m=plan.m,
        seed=plan.seed,
        predictors=predictors,
        iterations=plan.iterations,
        donors=plan.donors,
        conf_level=study.analysis.conf_level,
    )
    return table


def complications(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """Each declared complication, overall and by subgroup level
    (:func:`pipeline.statistics.complications.complication_rates`)."""
    from pipeline.statistics.complications import complication_rates

    events = study.analysis.complications
    columns = list(
        dict.fromkeys(c for e in events for c in (e.column, e.duration, e.resolved) if c)
    )
    subjects = read_frame(
        con, f"SELECT subject, {', '.join(quote(c) for c in columns)} FROM {study.name}.subjects"
    )
    # The levels only: the pairs (millions of rows in a registry) are not needed here.
    levels, level_order = _levels_in_order(con, study)
    try:
        return _kept(
            con,
            study,
            "complications",
            complication_rates,
            subjects,
            events,
            levels,
            level_order,
            conf_level=study.analysis.conf_level,
            min_cell=study.min_cell,
        )
    except ValueError as err:
        raise ValueError(
            f"{study.spec_path}: analysis.complications ({study.subjects_path.name}): {err}"
        ) from None


def power(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """Pairs needed for 80% and 90% power in the next study, from each planned outcome's
    observed dz and the spec's target dz (:func:`pipeline.statistics.power.paired_power`)."""
    from pipeline.statistics.power import paired_power

    plan = study.analysis.power
    results = read_frame(
        con,
        f"SELECT outcome, score, n_pairs, dz FROM {study.name}.paired_tests "
        f"WHERE \"group\" = 'all'{primary_pairs(study)}",
    )
    chosen = results[results["outcome"].isin(plan.outcomes)]
    return _kept(
        con, study, "power", paired_power, chosen, study.analysis.alpha, dict(plan.target_dz)
    )


#: The warehouse tables (and tables/*.csv) of the predictors of outcome.
PREDICTOR_TABLES = ("regression", "regression_models")


def predictor_models(
    con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path, pairs: pd.DataFrame
) -> list[Path]:
    """Regression of each modelled outcome on the plan's predictors
    (:func:`pipeline.statistics.regression.predictors_of_outcome`): ``<study>.regression`` (one
    row per coefficient) and ``<study>.regression_models`` (one row per model, with
    ``n_small_levels`` the patients left out for a categorical level of fewer than the
    small-cell minimum, ``threshold`` and ``threshold_source`` of the responders' models), and
    their CSVs. A plan without ``[analysis.predictors]`` writes nothing (and drops the tables an
    earlier plan left), so its files are those of a study that never had them.

    Numeric predictors are read as the covariates are (top-coded "90+" counts as 90); the levels
    of a categorical predictor with fewer patients with pairs than the small-cell minimum are
    pooled or left out as a subgroup's are (:mod:`pipeline.statistics.small_cells`)."""
    from pipeline.statistics.regression import (
        COEFFICIENT_COLUMNS,
        MODEL_COLUMNS,
        RegressionResult,
        predictors_of_outcome,
    )
    from pipeline.statistics.small_cells import pool_small_levels
    from pipeline.statistics.subgroups import numeric_covariates

    s, plan = study.name, study.analysis.predictors
    if plan is None:
        for name in PREDICTOR_TABLES:
            _drop_result(con, study, reports_dir, name)
        return []
    categorical = dict(plan.categorical)
    numeric = [c for c in plan.predictors if c not in categorical]
    columns = ", ".join(quote(c) for c in plan.predictors)
    subjects = numeric_covariates(
        read_frame(con, f"SELECT subject, {columns} FROM {s}.subjects"), numeric
    )
    for column in numeric:
        if not pd.api.types.is_numeric_dtype(subjects[column]):
            raise ValueError(
                f"{study.spec_path}: setting 'analysis.predictors.predictors' names {column!r}, "
                "whose values are not all numbers; declare its levels under [subjects.levels] to "
                "use it as a categorical predictor, or correct the export."
            )
    for column in categorical:
        subjects[column] = subjects[column].astype("string").str.strip().replace("", pd.NA)
    better = _higher_is_better(study)
    thresholds = {(o, score): (mic, source) for o, score, mic, source in plan.thresholds}
    results = []
    for (outcome, score), rows in pairs.groupby(["outcome", "score"], sort=False):
        if outcome not in plan.outcomes:
            continue
        frame = rows.merge(subjects, on="subject", how="left")
        paired = frame["pre_value"].notna() & frame["post_value"].notna()
        small = 0
        for column in categorical:
            given = frame.loc[paired, column]
            pooled = pool_small_levels(given, column, study.min_cell)
            small += int((given.notna() & pooled.isna()).sum())
            frame[column] = frame[column].astype("object")
            frame.loc[paired, column] = pooled.astype("object")
        mic, source = thresholds.get((outcome, score), (None, ""))
        result = _kept(
            con,
            study,
            "regression",
            predictors_of_outcome,
            frame.astype({c: "object" for c in categorical}),
            plan.predictors,
            model=plan.model,
            categorical=categorical,
            reference=dict(plan.reference),
            univariable=plan.univariable,
            responder_threshold=mic,
            higher_is_better=better[outcome],
            conf_level=study.analysis.conf_level,
        )
        models = result.models.assign(n_small_levels=small, threshold=float("nan"))
        models["threshold_source"] = ""
        responders = models["response"] == "responder"
        models.loc[responders, "threshold"] = mic
        models.loc[responders, "threshold_source"] = source
        for frame_ in (result.coefficients, models):
            frame_.insert(0, "score", score)
            frame_.insert(0, "outcome", outcome)
        results.append(RegressionResult(result.coefficients, models))
    if not results:  # no modelled outcome has pairs: empty tables with every column
        empty = RegressionResult.concat([])
        results = [
            RegressionResult(
                empty.coefficients.reindex(columns=["outcome", "score", *COEFFICIENT_COLUMNS]),
                empty.models.reindex(
                    columns=["outcome", "score", *MODEL_COLUMNS]
                    + ["n_small_levels", "threshold", "threshold_source"]
                ),
            )
        ]
    both = RegressionResult.concat(results)
    coefficients, models = both.coefficients, both.models
    return [
        _save(con, study, reports_dir, "regression", coefficients),
        _save(con, study, reports_dir, "regression_models", models),
    ]


#: The tables of the time-to-event analyses (written only when the plan declares one).
TIME_TO_EVENT_TABLES = ("time_to_event", "time_to_event_at", "time_to_event_curves", "log_rank")


def time_to_event(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> list[Path]:
    """Every ``[[analysis.time_to_event]]`` of the plan (Kaplan-Meier, median, event-free
    proportions, log-rank test; :mod:`pipeline.statistics.survival`), each frame with the
    analysis's ``analysis`` name first: ``time_to_event`` (per group: n, events, median and its
    CI, ``censoring`` rule, ``left_out`` patients), ``time_to_event_at`` (event-free proportion
    and numbers at risk per day), ``time_to_event_curves`` (the curves the figure draws) and
    ``log_rank`` (one row per analysis with a ``by`` column)."""
    from pipeline.statistics import survival

    s, plan = study.name, study.analysis
    last_visit = read_frame(con, f"SELECT subject, max(day) AS day FROM {s}.visits GROUP BY 1")
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in TIME_TO_EVENT_TABLES}
    for t in plan.time_to_event:
        columns = dict.fromkeys(c for c in (t.event, t.day, t.censor_day, t.by) if c)
        subjects = read_frame(
            con, f"SELECT subject, {', '.join(quote(c) for c in columns)} FROM {s}.subjects"
        )
        try:
            data, left_out = survival.event_times(
                subjects, last_visit, t.event, t.day, t.censor_day, t.by, study.min_cell
            )
        except ValueError as err:
            raise ValueError(
                f"{study.spec_path}: analysis.time_to_event '{t.name}' "
                f"({study.subjects_path.name}): {err}"
            ) from None
        result = _kept(
            con,
            study,
            "time_to_event",
            survival.time_to_event,
            data,
            t.times,
            plan.conf_level,
            by=bool(t.by),
        )
        named = {"analysis": t.name, "event": t.event, "by": t.by}
        censoring = t.censor_day or "last visit"
        for name, frame in zip(
            TIME_TO_EVENT_TABLES,
            (
                result.summary.assign(censoring=censoring, left_out=left_out),
                result.at,
                result.curves,
                result.log_rank,
            ),
        ):
            frames[name].append(frame.assign(**named)[[*named, *frame.columns]])
    return [
        _save(con, study, reports_dir, name, pd.concat(frames[name], ignore_index=True))
        for name in TIME_TO_EVENT_TABLES
    ]


def _result_table(con: duckdb.DuckDBPyConnection, study: Study, name: str) -> pd.DataFrame | None:
    """``<study>.<name>`` when the warehouse has it (a result the plan ran, a list a step kept),
    else None."""
    if not scalar(
        con,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [study.name, name],
    ):
        return None
    return read_frame(con, f"SELECT * FROM {study.name}.{name}")


def reader_study(study: Study) -> Study:
    """The study as its tables, figures and report name things. For a REDCap export, the data
    dictionary's labels stand in where the spec gives none (:func:`pipeline.ingest.redcap.
    reader_labels`): a radio field's codes ``1`` and ``2`` read as its choices ``Female`` and
    ``Male`` (not as No/Yes, the default of an unlabelled 0/1 column), the column by its field
    label; the spec's ``[subjects.labels]`` and ``[subjects.levels]`` always win."""
    from dataclasses import replace

    from pipeline.ingest import redcap

    if study.redcap is None or study.subjects_options.format != "redcap":
        return study
    labels, levels = redcap.reader_labels(
        redcap.read_dictionary(study.dictionary_path), study.subject_columns
    )
    return replace(
        study,
        subject_labels=tuple({**labels, **dict(study.subject_labels)}.items()),
        subject_levels=tuple({**levels, **dict(study.subject_levels)}.items()),
    )


def write_tables(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> list[Path]:
    """Every publication table under ``reports/<study>/tables/`` as CSV, Markdown, HTML,
    LaTeX and DOCX: Table 2 (first: ``table_2.csv``, ``table_2.md``), Table 1, the flow and
    missing-data eTables, and Table 3 / other eTables when their results exist.

    The tables' text is kept in ``<study>.publication_tables``
    (:func:`pipeline.render.tables.as_frame`), where :func:`write_report` reads it."""
    from pipeline.render import tables, writers
    from pipeline.render.figure_list import read_exclusions

    study = reader_study(study)
    s = study.name
    results = {
        name: frame
        for name in (*tables.RESULT_TABLES, *TABLED_TABLES)
        if (frame := _result_table(con, study, name)) is not None
    }
    built = tables.publication_tables(
        study,
        paired_tests=read_frame(con, f"SELECT * FROM {s}.paired_tests WHERE \"group\" = 'all'"),
        subjects=read_frame(con, f"SELECT * FROM {s}.subjects"),
        visits=read_frame(con, f"SELECT subject, day FROM {s}.visits"),
        pairing_summary=read_frame(con, f"SELECT * FROM {s}.pairing_summary"),
        subjects_file=read_frame(
            con, f"SELECT * FROM {s}.source_files WHERE file = ?", [file_labels(study)[0]]
        ),
        results=results,
        exclusions=read_exclusions(con, study),
    )
    folder = study_reports(reports_dir, study) / "tables"
    written, kept = [], []
    last = rendered_tables(con, study)
    for stem, table in built:
        # A table whose text, code and packages are those it was last written from, with its
        # files as then written, is not written again (a rerun changes a few tables).
        key = writers.render_key(table, stem)
        paths = [folder / f"{stem}.{ext}" for ext in writers.FORMATS]
        record = last.get(stem)
        if record is None or record[0] != key or not _files_as_listed(paths, record[1]):
            paths = writers.write_table(table, folder, stem)
            record = (key, [[p.name, _sha256(p)] for p in paths])
        written += paths
        kept.append((stem, *record))
    write_frame(con, f"{s}.publication_tables", tables.as_frame(built))
    _keep_rendered_tables(con, study, kept)
    return written


RENDERED_TABLES = "meta.rendered_tables"


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def rendered_tables(con: duckdb.DuckDBPyConnection, study: Study) -> dict[str, tuple[str, list]]:
    """Per table stem, the key it was last written with (:func:`pipeline.render.writers.
    render_key`) and its files as written (``[[name under tables/, sha256], ...]``), from
    ``meta.rendered_tables``; nothing when the table is missing or a record cannot be read (then
    every table is written again)."""
    import json

    if not scalar(
        con,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'meta' "
        "AND table_name = 'rendered_tables'",
    ):
        return {}
    try:
        rows = con.execute(
            f"SELECT stem, key, files FROM {RENDERED_TABLES} WHERE study = ?", [study.name]
        ).fetchall()
        return {stem: (key, json.loads(listed)) for stem, key, listed in rows}
    except (duckdb.Error, TypeError, ValueError):
        return {}


def _files_as_listed(paths: list[Path], listed: list) -> bool:
    try:
        if [name for name, _ in listed] != [p.name for p in paths]:
            return False
        return all(p.is_file() and _sha256(p) == sha for p, (_, sha) in zip(paths, listed))
    except (TypeError, ValueError, OSError):  # a record of another shape, an unreadable file
        return False


def _keep_rendered_tables(con: duckdb.DuckDBPyConnection, study: Study, kept: list) -> None:
    import json

    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {RENDERED_TABLES} "
        "(study VARCHAR, stem VARCHAR, key VARCHAR, files JSON)"
    )
    con.execute(f"DELETE FROM {RENDERED_TABLES} WHERE study = ?", [study.name])
    if kept:
        con.executemany(
            f"INSERT INTO {RENDERED_TABLES} VALUES (?, ?, ?, ?)",
            [[study.name, stem, key, json.dumps(listed)] for stem, key, listed in kept],
        )


FIGURE_LIST_COLUMNS = ("position", "stem", "caption", "png")


def write_figures(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> list[Path]:
    """Every figure under ``reports/<study>/figures/`` (single column, 3.5 in) and
    ``figures/double_column/`` (7 in), in the formats and widths of the spec's ``[figures]``
    (default: PNG 300 dpi at the width the report shows), with its source data (CSV). TIFF
    600 dpi, PDF and SVG, and other widths, are written when ``[figures]`` asks for them, or on
    demand by ``outcomes export-figures``; files of a format or width no longer asked for are
    removed, so none shows older data than the rest.

    The figures drawn are listed in ``<study>.figure_list``, in report order, where
    :func:`write_report` reads them: ``position`` (from 1), ``stem``, ``caption`` and ``png``, the
    widest PNG written (it reads best on screen), relative to ``reports/<study>/``."""
    from dataclasses import replace

    # Listed and looked up in the render cache without importing what draws them: a rerun
    # whose figures are all unchanged imports no matplotlib or seaborn.
    from pipeline.render import figure_files, figure_list

    study = reader_study(study)
    folder = study_reports(reports_dir, study)
    specs = figure_list.study_figures(con, study)
    if primary_pairs(study):
        # Several comparisons: a figure of pairs says which comparison it draws (the primary);
        # the trajectory draws every visit.
        plan = study.analysis
        main = next(c for c in plan.compared if c.name == plan.primary_comparison_name)
        specs = [
            s
            if s.stem == "trajectory"
            else replace(s, caption=f"{s.caption} Comparison shown: {main.label} (the primary).")
            for s in specs
        ]
    written = figure_files.export(
        [replace(s, widths=figure_files.widths_for(s, study.figure_widths)) for s in specs],
        folder / "figures",
        formats=(*study.figure_formats, figure_files.SOURCE_DATA),
    )
    figure_files.remove_unwritten(folder / "figures", written)
    pngs = [
        (
            figure_files.width_folder(Path("figures"), spec.widths[-1]) / f"{spec.stem}.png"
        ).as_posix()
        for spec in specs
    ]
    listed = pd.DataFrame(
        {
            "position": pd.Series(range(1, len(specs) + 1), dtype="int64"),
            "stem": pd.Series([spec.stem for spec in specs], dtype="string"),
            "caption": pd.Series([spec.caption for spec in specs], dtype="string"),
            "png": pd.Series(pngs, dtype="string"),
        },
        columns=list(FIGURE_LIST_COLUMNS),
    )
    write_frame(con, f"{study.name}.figure_list", listed)
    return written


def write_report(con: duckdb.DuckDBPyConnection, study: Study, reports_dir: Path) -> list[Path]:
    """``reports/<study>/report.html`` (self-contained) and ``report.docx``: tables, figures,
    Methods paragraph and provenance.

    Builds no table and draws no figure: the tables are the text :func:`write_tables` kept in
    ``<study>.publication_tables``, the figures the PNGs :func:`write_figures` wrote and listed in
    ``<study>.figure_list``, so it runs after both."""
    import json

    from pipeline.render import report as report_html
    from pipeline.render import tables
    from pipeline.render.figure_list import not_drawn

    study = reader_study(study)
    s = study.name
    folder = study_reports(reports_dir, study)
    provenance = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
    # The Methods and the headline results speak of the primary comparison.
    results = read_frame(
        con, f"SELECT * FROM {s}.paired_tests WHERE \"group\" = 'all'{primary_pairs(study)}"
    )
    for name, step in (("publication_tables", "write_tables"), ("figure_list", "write_figures")):
        if _result_table(con, study, name) is None:
            raise FileNotFoundError(
                f"{s}.{name} is missing: write the {step.split('_')[1]} ({step}) before the report."
            )
    table_list = tables.from_frame(read_frame(con, f"SELECT * FROM {s}.publication_tables"))
    figure_list = []
    for figure in read_frame(
        con, f"SELECT stem, caption, png FROM {s}.figure_list ORDER BY position"
    ).itertuples():
        png = folder / figure.png
        if not png.is_file():
            raise FileNotFoundError(
                f"{png} is missing: write the figures (write_figures) before the report."
            )
        figure_list.append((figure, png.read_bytes()))
    methods = report_html.methods_text(
        study,
        results,
        provenance,
        tables=table_list,
        figures=[figure.stem for figure, _ in figure_list],
    )
    content = report_html.ReportContent(
        study,
        table_list,
        figure_list,
        methods,
        provenance,
        notes=nothing_to_analyse(con, study),
        figure_notes=not_drawn(con, study),
    )
    html_path = folder / "report.html"
    output_files.write_text(html_path, report_html.report_html(content))
    docx_path = report_html.report_docx(content, folder / "report.docx")
    return [html_path, docx_path]


def nothing_to_analyse(con: duckdb.DuckDBPyConnection, study: Study) -> list[str]:
    """One line saying why there was nothing to analyse when no planned outcome has a pair
    (no visit, no value, or no patient with both); empty otherwise."""
    s, plan = study.name, study.analysis
    if scalar(con, f"SELECT count(*) FROM {s}.pairs"):
        return []
    subjects = scalar(con, f"SELECT count(*) FROM {s}.subjects")
    visits = scalar(con, f"SELECT count(*) FROM {s}.visits")
    observed = scalar(con, f"SELECT count(*) FROM {s}.pairing_summary")
    refused = scalar(con, f"SELECT count(*) FROM {s}.quarantine WHERE scope = 'row'")
    quarantined = (
        f" ({refused} rows quarantined, each with its reason in {s}.quarantine)" if refused else ""
    )
    if not subjects:
        why = f"no patient was accepted from {study.subjects_path.name}{quarantined}"
    elif not visits:
        why = f"no visit was accepted from {study.visits_path.name}{quarantined}"
    elif not observed:
        why = f"no planned outcome has a value at any of the {visits} visits"
    else:
        why = (
            f"no patient has both a before ({plan.pre_label}) and an after ({plan.post_label}) "
            "value of "
            "any planned outcome"
        )
    estimated = f"SELECT count(*) FROM {s}.reliability WHERE estimate IS NOT NULL"
    if plan.reliability and scalar(con, estimated):
        # A study of rater agreement alone has no pair by design: its analysis did run.
        return [
            f"Nothing to analyse before and after: {why}. Table 2 lists each planned outcome "
            "with n = 0 and no paired test was run; the agreement between raters is estimated "
            "in its eTable."
        ]
    return [
        f"Nothing to analyse: {why}. Table 2 lists each planned outcome with n = 0 and no test was "
        "run; "
        "check the exports and the analysis plan's visit rules in study.toml."
    ]


def run_study(
    con: duckdb.DuckDBPyConnection,
    study: Study,
    reports_dir: Path,
    overrides: dict[str, object] | None = None,
) -> dict[str, object]:
    """The whole path for one study; returns the accounting, every path written, the report's
    notes (that there was nothing to analyse, :func:`nothing_to_analyse`) and the steps reused
    from the last run (``reused``).

    ``overrides`` changes analysis options for this run without editing the spec
    (:func:`pipeline.spec.study.with_overrides`, checked as the settings they replace);
    ``provenance.json`` and ``meta.runs`` record them. Each step runs unless its last run can be
    reused (:mod:`pipeline.rerun`): a new option reruns only the steps that read it.

    The run is on record in ``meta.runs`` (what its tables were made from) from its start,
    and says how it ended: finished, or refused, failed or interrupted with the error's class."""
    from pipeline.spec.study import with_overrides

    planned = with_overrides(study, dict(overrides or {}))
    with recorded_run(con, planned):
        return _run_steps(con, planned, reports_dir, dict(overrides or {}))


def source_files(con: duckdb.DuckDBPyConnection, study: Study) -> list[SourceFile]:
    """The raw files as the last ingest read them (``<study>.source_files``)."""
    frame = read_frame(con, f"SELECT * FROM {study.name}.source_files")
    return [
        SourceFile(**{name: row[name] for name in SourceFile.__dataclass_fields__})
        for _, row in frame.iterrows()
    ]


def cohort_results(con: duckdb.DuckDBPyConnection, study: Study) -> pd.DataFrame:
    """The whole-cohort rows of ``<study>.paired_tests``, as :func:`analyse` returns them."""
    return read_frame(con, f"SELECT * FROM {study.name}.paired_tests WHERE \"group\" = 'all'")


def _run_steps(
    con: duckdb.DuckDBPyConnection,
    study: Study,
    reports_dir: Path,
    overrides: dict[str, object],
) -> dict[str, object]:
    from pipeline import rerun
    from pipeline.provenance import record_overrides

    reused = []

    def step(name: str, function, *args) -> rerun.Outcome:
        done = rerun.run(con, study, reports_dir, name, function, *args)
        if not done.ran:
            reused.append(name)
        return done

    def paths(done: rerun.Outcome) -> list[Path]:
        return done.result if done.ran else done.paths

    ingested = step("ingest", ingest, reports_dir)
    files = ingested.result if ingested.ran else source_files(con, study)
    if not ingested.ran:  # the commit may have changed since: provenance.json says this one
        write_provenance(study, files, study_reports(reports_dir, study))
    record_overrides(study_reports(reports_dir, study), overrides)
    step("score", score)
    step("pair", pair)
    analysed = step("analyse", analyse, reports_dir)
    results = analysed.result if analysed.ran else cohort_results(con, study)
    secondary = paths(step("secondary", secondary_analyses, reports_dir))
    written = [
        study_reports(reports_dir, study) / "provenance.json",
        study_reports(reports_dir, study) / "tables" / "paired_tests.csv",
    ]
    written += paths(step("tables", write_tables, reports_dir))
    written += paths(step("figures", write_figures, reports_dir))
    written += paths(step("report", write_report, reports_dir))
    written += secondary
    return {
        "files": files,
        "results": results,
        "paths": written,
        "notes": nothing_to_analyse(con, study),
        "reused": reused,
    }


# What the asset checks ask of the warehouse and the plan, so the Dagster layer calls this module
# only.


def identifier_findings(con: duckdb.DuckDBPyConnection, study: Study) -> list:
    """Columns of the study's ingested tables that look like identifiers, apart from those the
    spec allows (:func:`pipeline.ingest.deidentify.scan_warehouse`)."""
    from pipeline.ingest.deidentify import scan_warehouse

    return scan_warehouse(con, study.name, dict(study.identifiers_allowed))


def planned_outcomes(study: Study) -> pd.DataFrame:
    """The plan's outcomes, one row per outcome and score
    (:func:`pipeline.pairing.outcomes_frame`)."""
    return outcomes_frame(study)
