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
from pipeline.render.labels import in_sentence, listed, rater_label, score_label
from pipeline.render.tables import RAW_VALUE, SYNTHETIC_NOTE
from pipeline.render.writers import (
    Table,
    add_docx_grid,
    add_docx_table,
    docx_layout,
    docx_text_widths_pt,
    grid_layout,
    new_docx,
    save_docx,
    set_orientation,
    stylesheet,
    templates,
)
from pipeline.spec.study import Study

#: The software a Methods section cites, as provenance names it -> as a reader knows it.
SOFTWARE = {
    "pandas": "pandas",
    "numpy": "NumPy",
    "scipy": "SciPy",
    "statsmodels": "statsmodels",
    "duckdb": "DuckDB",
}
FIGURE_SOFTWARE = {"matplotlib": "matplotlib", "seaborn": "seaborn"}
#: The effect sizes of Table 2 (its columns :data:`pipeline.render.tables.EFFECT_SIZES`) in words.
EFFECT_SIZE_WORDS = {
    "dz": "Cohen dz (the mean change divided by the SD of the changes)",
    "hedges_g": "Hedges g (the standardised mean change corrected for small-sample bias)",
    "rank_biserial": "the matched-pairs rank-biserial correlation r (Kerby 2014)",
}


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


def _imputation_methods(study: Study, shown: dict, labels: dict, level: str) -> str:
    """The Methods paragraph of the multiple-imputation eTable: the model, m, seed, predictors,
    Rubin's rules and the Barnard-Rubin degrees of freedom."""
    plan = study.analysis.imputation
    predictors = [in_sentence(study.column_label(c)) for c in plan.predictors]
    outcome = labels.get(plan.outcome, plan.outcome)
    model = _list(["the other visit's value", *predictors])
    return (
        "As a sensitivity analysis"
        + _number(shown, "etable_imputation")
        + f", the missing before and after values of {outcome} of every patient with either value "
        "were imputed by multiple imputation by chained "
        f"equations (statsmodels MICEData; m = {plan.m} imputed data sets, each after "
        f"{plan.iterations} iterations, random seed {plan.seed}), each value from a linear "
        f"model on {model} with predictive mean matching ({plan.donors} donors), assuming the "
        "values are "
        "missing at random given these. The mean change was estimated in each imputed data set "
        "as for the complete pairs and the estimates were pooled by Rubin's rules, with the "
        f"Barnard-Rubin degrees of freedom for the {level} CI and P value (as R's mice::pool); "
        "the pooled result is shown beside the paired t of the complete pairs."
    )


def _agreement_visits(study: Study, reliability) -> str:
    """Which visits rater agreement was estimated over, as the Methods say it: each visit
    separately (each patient once per estimate), or pooled with visits taken as independent."""
    visit_sets = sorted({r.visits for r in reliability})
    visits = (
        " (" + _list([in_sentence(study.visit_label(v)) for v in visit_sets[0]]) + ")"
        if len(visit_sets) == 1 and visit_sets[0]
        else ""
    )
    if all(r.targets == "subject_visit" for r in reliability):
        return (
            f", over every patient visit{visits} graded by every rater, the visits of one patient "
            "taken as independent targets,"
        )
    if any(r.targets == "subject_visit" for r in reliability):
        return (
            f", at each visit{visits} separately or, where the eTable says so, over the visits "
            "pooled, among the patients graded by every rater,"
        )
    return f", at each visit{visits} separately among the patients graded by every rater,"


def _number(tables: dict, stem: str) -> str:
    """`` (eTable 4)``: where the report shows the table of ``stem`` ('' when it has none)."""
    table = tables.get(stem)
    if table is None:
        return ""
    return f" ({table.title.split('.', 1)[0].removesuffix(' (continued)')})"


def _time_to_event_methods(study: Study, shown: dict, drawn: set) -> list[str]:
    """The Methods sentence of each time-to-event analysis the report shows (its eTable or its
    Kaplan-Meier figure): the estimator, the CI, the median's CI, the censoring rule, the
    log-rank test."""
    paragraphs = []
    level = f"{study.analysis.conf_level:.0%}"
    for t in study.analysis.time_to_event:
        stem = f"etable_time_to_{t.name}"
        if stem not in shown and f"time_to_event_{t.name}" not in drawn:
            continue
        event = in_sentence(study.column_label(t.event))
        censoring = (
            f"at the day recorded in {in_sentence(study.column_label(t.censor_day))}"
            if t.censor_day
            else "at their last visit (last follow-up)"
        )
        days = _list([f"{d:g}" for d in t.times])
        paragraphs.append(
            f"Time from surgery to {event}"
            + _number(shown, stem)
            + f" was estimated with the Kaplan-Meier method; patients without {event} were "
            f"censored {censoring}. Pointwise {level} CIs of the event-free proportion were "
            "computed on the log scale from the Greenwood variance (the default of R's "
            f"survfit); the {level} CI of the median time runs between the times at which these "
            f"limits fall to 50%. Event-free proportions are given at {days} days after surgery."
            + (
                " Curves were compared between the levels of "
                f"{in_sentence(study.column_label(t.by))} with the log-rank test."
                if t.by
                else ""
            )
        )
    return paragraphs


def _p_threshold(alpha: float) -> str:
    """α as AMA writes a P value: no zero before the decimal point (.05)."""
    return f"{alpha:g}".removeprefix("0")


def comparisons_text(study: Study) -> str:
    """The Methods sentences of a plan with several comparisons ([[analysis.comparisons]]):
    the other comparisons' visits, which comparison carries the primary outcome, and the
    multiplicity family (docs/statistics.md, "Several comparisons")."""
    plan = study.analysis
    primary = plan.primary_comparison_name
    others = [c for c in plan.compared if c.name != primary]
    main = next(c for c in plan.compared if c.name == primary)
    described = _list(
        [
            f"{c.label} (between the {p.pre_label} and the {p.post_label} assessment)"
            for c in others
            for p in (plan.for_comparison(c),)
        ]
    )
    family = (
        "P values were adjusted over the secondary outcomes within each comparison, the primary "
        "outcome counting as secondary in the other comparisons"
        if plan.multiplicity_scope == "per_comparison"
        else "P values of every secondary outcome in every comparison, and of the primary "
        "outcome in the other comparisons, were adjusted together as one family"
    )
    return (
        f"The same comparison was also made at {described}. Each comparison has its own rows "
        "in Table 2 and in the subgroup and responder tables; the patient flow, the figures and "
        f"the other analyses are of the primary comparison, {main.label}"
        + (", at which the primary outcome is judged" if plan.primary else "")
        + f". {family}."
    )


def methods_text(
    study: Study,
    results: pd.DataFrame,
    provenance: dict,
    tables: list[tuple[str, Table]] | None = None,
    figures: list[str] | None = None,
) -> list[str]:
    """The Methods / Statistical analysis paragraphs an author can paste: every analysis whose
    result the report shows, and nothing else.

    Parameters
    ----------
    study : Study
        The spec: the plan (visit rules, tests, multiplicity, CI level, α, subgroups,
        covariates, responders, raters) and the labels a reader sees.
    results : DataFrame
        The whole-cohort paired tests (``group = 'all'``): which test each outcome used and how
        its P was adjusted.
    provenance : dict
        ``provenance.json``: the Python and package versions cited.
    tables : list of (str, Table), optional
        The report's tables by file stem (:func:`pipeline.render.tables.publication_tables`);
        an analysis is described when its table is among them.
    figures : list of str, optional
        The stems of the report's figures (Bland-Altman plots: ``rater_agreement``; the mixed
        model's trajectories: ``trajectory``; the subgroup forest: ``subgroup_forest``).
    """
    from pipeline.pairing import outcomes_frame
    from pipeline.render.tables import EFFECT_SIZES

    plan = study.analysis
    shown = dict(tables or [])
    drawn = set(figures or [])
    has = set(shown) | drawn
    level = f"{plan.conf_level:.0%}"
    planned = outcomes_frame(study)
    labels = dict(zip(planned["outcome"], planned["label"]))
    # The outcomes that were tested: one without pairs has a row but no test.
    tested = results[results["n_pairs"] > 0] if "n_pairs" in results else results
    paragraphs = []

    if "table_1" in shown:
        table_1 = shown["table_1"]
        compared = "P" in table_1.body.columns
        by = table_1.title.partition(" by ")[2]
        paragraphs.append(
            "Baseline characteristics"
            + _number(shown, "table_1")
            + " are summarised as mean ± SD when their absolute sample skewness is at most 1 and "
            "otherwise as median [IQR], and categorical characteristics as No. (%)."
            + (
                f" They were compared between the {by} groups with one-way analysis of variance "
                "(mean ± SD) or the Kruskal-Wallis test (median [IQR]), and with the Pearson χ2 "
                "test, the Fisher exact test for 2 × 2 tables with an expected count below 5, or "
                "a Monte Carlo P (9999 tables) for larger such tables."
                if compared
                else ""
            )
        )

    paragraphs.append(
        f"Each outcome was compared within patients between the {plan.pre_label} assessment "
        f"and the {plan.post_label} assessment. Patients with both values were analysed "
        "(complete-case analysis; no value was imputed)"
        + (
            "; the patient flow and the missing data are given per outcome"
            + _number(shown, "etable_flow")
            + (
                " and per baseline characteristic" + _number(shown, "etable_missing")
                if "etable_missing" in shown
                else ""
            )
            if "etable_flow" in shown
            else ""
        )
        + ". Changes are after minus before, summarised as "
        + _change_summary(list(tested["test_used"].dropna().unique()) if len(tested) else [], level)
        + _number(shown, "table_2")
        + "."
    )

    if len(plan.compared) > 1:
        paragraphs.append(comparisons_text(study))

    tests = list(dict.fromkeys(tested["test_used"].dropna())) if len(tested) else []
    if tests:
        by_test = {
            test: [labels.get(o, o) for o in tested.loc[tested["test_used"] == test, "outcome"]]
            for test in tests
        }
        if len(tests) == 1:
            which = f"the {tests[0]} test"
        else:
            which = _list([f"the {t} test for {listed(by_test[t])}" for t in tests])
        auto = plan.test == "auto" or any(o.test == "auto" for o in plan.outcomes)
        rule = (
            " The test of each outcome was chosen by one rule: the paired t test when the "
            "Shapiro-Wilk test did not reject normality of the changes (P ≥ "
            f"{_p_threshold(plan.alpha)}), otherwise the Wilcoxon signed-rank test."
            if auto
            else ""
        )
        wilcoxon = (
            " The Wilcoxon signed-rank P is exact for fewer than 50 pairs without ties or zero "
            "changes, otherwise from the normal approximation with continuity correction, as in "
            "R's wilcox.test."
            if any("Wilcoxon" in t for t in tests)
            else ""
        )
        table_2 = shown.get("table_2")
        effects = [
            EFFECT_SIZE_WORDS[c] + (f" with its {level} CI" if f"{c}_ci_low" in results else "")
            for c, heading in EFFECT_SIZES.items()
            if table_2 is not None and heading in table_2.body.columns
        ]
        paragraphs.append(
            f"Changes were tested with {which}.{rule}{wilcoxon}"
            + (f" Effect sizes are {_list(effects)}." if effects else "")
            + f" P values are two-sided; P < {_p_threshold(plan.alpha)} was considered "
            "statistically significant."
        )
    else:
        paragraphs.append(
            "No test was run: no patient had both a before and an after value of any outcome."
        )
    binary = [
        labels.get(o, o)
        for o in planned.loc[planned["kind"] == "binary", "outcome"]
        if "outcome" in tested and o in set(tested["outcome"])
    ]
    if binary:
        paragraphs.append(
            f"For {'the binary outcome' if len(binary) == 1 else 'the binary outcomes'} "
            f"({listed(binary)}), the patients with a yes before and after are given as No. (%), "
            "and the difference of the paired proportions (after minus before, in percentage "
            f"points) with Newcombe's hybrid score {level} CI for paired data (Newcombe 1998, "
            "method 10); its P is the exact McNemar test (the binomial test on the patients "
            "whose value changed)."
        )

    if "p_adj" in results and results["p_adj"].notna().any():
        from pipeline.statistics.multiplicity import METHODS

        adjusted_rows = tested[tested["p_adj"].notna()] if "p_adj" in tested else tested
        family = adjusted_rows[
            ~adjusted_rows.get("p_adj_method", pd.Series("", index=adjusted_rows.index))
            .astype(str)
            .str.startswith("none")
        ]
        primary = (
            f"The primary outcome was {labels.get(plan.primary, plan.primary)}; its P value was "
            "not adjusted. "
            if plan.primary
            else ""
        )
        n = len(family)
        adjusted = (
            f"To control for multiple comparisons, the P values of the {n} "
            f"{'secondary ' if plan.primary else ''}outcome{'s' if n != 1 else ''} were "
            f"adjusted with the {METHODS.get(plan.multiplicity, plan.multiplicity)} method."
            if n
            else ""
        )
        paragraphs.append((primary + adjusted).strip())
    elif len(tested) > 1:
        paragraphs.append(
            f"No adjustment was made for the {len(tested)} outcomes tested; results for "
            "outcomes other than the first planned outcome are exploratory."
        )

    if "table_3_subgroups" in shown or "subgroup_forest" in drawn:
        split = [
            in_sentence(study.column_label(g.column))
            + (" (split at its median)" if g.split == "median" else "")
            for g in plan.subgroups
        ]
        n = study.min_cell
        paragraphs.append(
            "In exploratory subgroup analyses"
            + _number(shown, "table_3_subgroups")
            + f", the change was tested as above within each level of {_list(split)}, with the "
            "P values of the secondary outcomes adjusted within each level. To protect "
            f"patients' privacy, subgroup levels with fewer than {n} patients were pooled with "
            f"the other small levels of the same subgroup or, when still fewer than {n}, not "
            f"reported, and a level with fewer than {n} pairs for an outcome was not reported "
            "for that outcome."
        )
    if "table_3_binary" in shown:
        paragraphs.append(
            "For the binary outcomes"
            + _number(shown, "table_3_binary")
            + ", the difference of the paired proportions and its exact McNemar P were given "
            "within each subgroup level, and the proportion with a yes after surgery was compared "
            "between the levels with Fisher's exact test (the Freeman-Halton extension for more "
            "than two levels), the proportions before surgery given beside."
        )
    if "table_3_ancova" in shown:
        covariates = [in_sentence(study.column_label(c)) for c in plan.covariates]
        terms = _list(["the before value", *covariates, "the subgroup"])
        paragraphs.append(
            "The difference in change between the levels of each subgroup"
            + _number(shown, "table_3_ancova")
            + " was estimated by analysis of covariance (ANCOVA) of the after value on "
            f"{terms}, with a common slope on the before value: the "
            "adjusted difference of each level from the reference level (the level the plan "
            "names, else the first level declared) "
            f"with its {level} CI, and the F test of the subgroup"
            + (
                "; with more than two levels, the P value of each contrast adjusted over the "
                "subgroup's contrasts ("
                + _list(sorted({METHODS[g.adjust] for g in plan.subgroups}))
                + ")"
                if any(g.contrasts == "all_pairs" or len(g.levels) > 2 for g in plan.subgroups)
                else ""
            )
            + "."
            + "".join(
                f" The model of {t.title.partition('covariance of ')[2].partition(': ')[0]}, "
                "with the slope on the before value, each covariate, R² and the residual SE, is "
                f"given for each subgroup{_number(shown, stem)}."
                for stem, t in shown.items()
                if stem.startswith("etable_ancova_")
            )
        )
    if any("change_direction" in stem for stem in has):
        graded = [labels.get(o, o) for o in plan.ordinal]
        paragraphs.append(
            "Patients were counted as improved, unchanged or worsened, and the direction of "
            "change was tested with the exact sign test and the McNemar test of improved versus "
            "worsened"
            + (
                f"; for the graded outcomes ({listed(graded)}), the Bowker test of symmetry of "
                "the before × after table"
                if graded
                else ""
            )
            + "."
        )
    if "etable_responders" in shown:
        from pipeline.pairing import SPEC_SOURCE, responder_thresholds

        used = responder_thresholds(study).merge(
            planned[["outcome", "score", "label"]], on=["outcome", "score"]
        )
        by_mic: dict[tuple[float, bool], list[str]] = {}
        for r in used.itertuples(index=False):
            by_mic.setdefault((r.threshold, r.source == SPEC_SOURCE), []).append(r.label)
        thresholds = "; ".join(
            f"{mic:g} for {listed(names)}" + (" as the study set it" if given else ", as published")
            for (mic, given), names in by_mic.items()
        )
        paragraphs.append(
            "Responders"
            + _number(shown, "etable_responders")
            + " were patients whose outcome improved, in its better direction, by at least the "
            f"minimal important change ({thresholds}; each source is cited under the table); the "
            f"proportion of responders is given with its exact (Clopper-Pearson) {level} CI, as "
            "R's binom.test."
        )
    if "etable_complications" in shown:
        events = [in_sentence(study.column_label(e.column)) for e in plan.complications]
        timed = any(e.duration for e in plan.complications)
        paragraphs.append(
            "The complications and adverse events"
            + _number(shown, "etable_complications")
            + f", {listed(events)}, are given as the number and percentage of the patients "
            f"with the event recorded, with exact (Clopper-Pearson) {level} CIs as R's binom.test"
            + (
                ", their duration in days as median [IQR] (R's quantile, type 7) and range, and "
                "whether they had resolved by the last follow-up"
                if timed
                else ""
            )
            + (", for the whole cohort and within each subgroup level" if plan.subgroups else "")
            + "."
        )
    if "etable_power" in shown:
        targets = bool(plan.power and plan.power.target_dz)
        paragraphs.append(
            "For a future study"
            + _number(shown, "etable_power")
            + ", the number of patients with both values needed for 80% and 90% power with the "
            f"two-sided paired t test at a significance level of {_p_threshold(plan.alpha)} was "
            "computed from the observed "
            "standardised mean change (dz, the mean change divided by the SD of the changes)"
            + (" and from a target dz set in advance" if targets else "")
            + ", with the smallest dz the present pairs detect with 80% power (statsmodels "
            'TTestPower, as R\'s power.t.test with type = "paired" and strict = TRUE).'
        )
    if "etable_imputation" in shown and plan.imputation is not None:
        paragraphs.append(_imputation_methods(study, shown, labels, level))
    if "etable_reliability" in shown or "rater_agreement" in drawn:
        described = [
            f"{score_label(study, r.instrument, r.score)} between "
            + _list([rater_label(x) for x in r.raters])
            for r in plan.reliability
        ]
        what = _list(described) if described else "the scores graded by two raters"
        sentences = []
        if "etable_reliability" in shown:
            weights = _list(sorted({r.weights for r in plan.reliability})) or "quadratic"
            sentences.append(
                f"Agreement on {what}"
                + _number(shown, "etable_reliability")
                + _agreement_visits(study, plan.reliability)
                + " was estimated with the six "
                "Shrout-Fleiss intraclass correlation coefficients (ICC1, ICC2 and ICC3 for "
                "single ratings and ICC1k, ICC2k and ICC3k for their average: one-way random, "
                f"two-way random and two-way mixed models) with F-based {level} CIs, and with "
                f"Cohen κ with {weights} weights."
            )
        if "rater_agreement" in drawn:
            sentences.append(
                "Bland-Altman plots show the difference between two raters' grades against "
                "their mean, with the mean difference (bias) and the 95% limits of agreement "
                "(bias ± 1.96 SD of the differences)."
            )
        paragraphs.append(" ".join(sentences))
    if any("correlation" in stem for stem in has):
        paragraphs.append(
            "The association of the before value with the change was estimated with the Pearson "
            "and Spearman correlation coefficients."
        )
    items = [stem for stem in shown if stem.startswith("etable_items_")]
    if items:
        from pipeline.statistics.multiplicity import METHODS

        numbers = [_number(shown, stem).strip(" ()").split()[-1] for stem in items]
        where = (
            f"eTable {numbers[0]}" if len(numbers) == 1 else f"eTables {numbers[0]}-{numbers[-1]}"
        )
        folded = any(RAW_VALUE in set(shown[stem].body.iloc[:, 0]) for stem in items)
        paragraphs.append(
            f"Each item of an instrument ({where}) was compared between the same two "
            "assessments as the instrument's total score, with the test and the estimate used "
            "for the outcomes; its P values were adjusted with the "
            f"{METHODS.get(plan.multiplicity, plan.multiplicity)} method over the items of the "
            "instrument."
            + (
                " Where an item score is computed from a recorded value (a deviation from "
                "normal either way scored alike), the recorded value was compared as well."
                if folded
                else ""
            )
        )
    if "etable_visit_estimates" in shown or "trajectory" in drawn:
        paragraphs.append(
            "As a sensitivity analysis that uses every observed value rather than complete "
            "pairs, the mean at each visit"
            + _number(shown, "etable_visit_estimates")
            + " was estimated with a linear mixed model (visit as a fixed effect, a random "
            "intercept"
            + (" and a random slope on time in years" if plan.random_slope else "")
            + f" per patient; restricted maximum likelihood) with Wald {level} CIs, valid when "
            "values are missing at random."
        )

    paragraphs += _mixed_model_methods(study, shown, labels)
    paragraphs.append(_predictors_text(study, shown, labels, level))
    paragraphs += _time_to_event_methods(study, shown, drawn)

    packages = provenance.get("packages", {})

    def cited(names: dict[str, str]) -> list[str]:
        return [
            f"{shown_name} {packages[name]}"
            for name, shown_name in names.items()
            if name in packages
        ]

    python = provenance.get("python", platform.python_version())
    software = f"Analyses were performed in Python {python}" + (
        f" with {_list(cited(SOFTWARE))}" if cited(SOFTWARE) else ""
    )
    drawing = cited(FIGURE_SOFTWARE)
    paragraphs.append(
        software
        + (f"; figures were drawn with {_list(drawing)}" if drawing and figures else "")
        + (
            f"; the analysis steps were run with Dagster {packages['dagster']}"
            if "dagster" in packages
            else ""
        )
        + (
            f" (facial-outcomes pipeline {packages['facial-outcomes']})"
            if "facial-outcomes" in packages
            else ""
        )
        + ". The paired tests were checked against R 4.2.2 (t.test and wilcox.test)."
    )
    return [p for p in paragraphs if p]


def _predictors_text(study: Study, shown: dict, labels: dict[str, str], level: str) -> str:
    """The Methods sentences of the predictors of outcome (``[analysis.predictors]``), when the
    report shows their tables (``etable_predictors_*``); '' otherwise."""
    plan = study.analysis.predictors
    stems = [stem for stem in shown if stem.startswith("etable_predictors_")]
    if plan is None or not stems:
        return ""
    numbers = [_number(shown, stem).strip(" ()").split()[-1] for stem in stems]
    where = f"eTable {numbers[0]}" if len(numbers) == 1 else f"eTables {listed(numbers)}"
    outcomes = listed([labels.get(o, o) for o in plan.outcomes])
    characteristics = listed([in_sentence(study.column_label(c)) for c in plan.predictors])
    explained = (
        f"the change in {outcomes}"
        if plan.model == "change"
        else f"the after value of {outcomes} on the before value and"
    )
    responders = ""
    if plan.responders:
        sources = sorted({source for *_, source in plan.thresholds})
        cited = [s for s in sources if s != "analysis.responders"]
        responders = (
            ", and by logistic regression of response (an improvement of at least the minimal "
            "important change, as for the responders"
            + (f"; published threshold: {'; '.join(cited)}" if cited else "")
            + ")"
            + (", adjusted for the before value" if plan.model == "post_adjusted" else "")
        )
    return (
        f"Pre-operative characteristics associated with the result ({where}) were examined by "
        f"multivariable linear regression of {explained} on {characteristics}"
        + (", each characteristic also alone (univariable models)" if plan.univariable else "")
        + responders
        + ". Categorical characteristics were entered as indicators against a reference level "
        "(the first level declared for it unless the plan names another), levels of fewer than "
        f"{study.min_cell} patients pooled or left out; patients with a missing characteristic "
        "were left out of a model (complete-case analysis). Coefficients are given with t-based "
        f"{level} CIs"
        + (
            f", odds ratios with Wald {level} CIs and the logistic model's discrimination as its "
            "area under the ROC curve (C statistic); a level at which every patient had the "
            "same response (separation) has no finite odds ratio and is reported as not "
            "estimable"
            if plan.responders
            else ""
        )
        + ". The models were fitted with the statsmodels formula API and checked against R's lm "
        "and glm."
    )


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
        """Tables 1, 2, 3 first, then the eTables, each by number (eTable 10 after eTable 9; the
        parts of one number, such as "Table 3" and "Table 3 (continued)", in the order they were
        built); a table without a number last, by title."""

        def key(item):
            title = item[1][1].title
            number = re.match(r"(e?)Table (\d+)", title)
            if number:
                return (number.group(1) == "e", int(number.group(2)), item[0], "")
            return (True, float("inf"), 0, title)

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


#: Margins of the report's figure pages, in inches: on US Letter a text width of 7.0 in, a
#: double-column figure's print width (:data:`pipeline.render.figure_files.DOUBLE_COLUMN_IN`),
#: where the manuscript's 1 in margins (:data:`pipeline.render.writers.DOCX_MARGIN_IN`) leave
#: 6.5 in and Word would print it at 93%; and a text height of 9.5 in.
FIGURE_MARGIN_IN = 0.75


def _figure_pages(document):
    """Start the figures: a portrait section of their own, on a new page once anything is
    written, with :data:`FIGURE_MARGIN_IN` margins; returns it. The text before keeps its
    margins."""
    from docx.enum.section import WD_ORIENT, WD_SECTION
    from docx.shared import Inches

    section = document.sections[-1]
    if len(document.element.body) > 1:  # more than the final w:sectPr: something is written
        section = document.add_section(WD_SECTION.NEW_PAGE)
    if section.orientation == WD_ORIENT.LANDSCAPE:
        width, height = section.page_width, section.page_height
        section.orientation = WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = height, width
    margin = Inches(FIGURE_MARGIN_IN)
    section.left_margin = section.right_margin = margin
    section.top_margin = section.bottom_margin = margin
    return section


def report_docx(content: ReportContent, path: Path) -> Path:
    """The same report as a Word document: real tables, figures as pictures.

    Laid out to be submitted as it is: each table set as :func:`add_docx_table` sets it (a wide
    one on landscape pages of its own, then portrait again); the figures on portrait pages of
    their own with :data:`FIGURE_MARGIN_IN` margins (:func:`_figure_pages`), each at its print
    width, the width its PNG was drawn for (3.5 or 7 in at 300 dpi), shrunk only to fit the
    text height, centred, and kept on a page with its caption; the provenance in columns sized
    to it."""
    import io

    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Emu

    document = new_docx()
    document.add_heading(content.study.title, level=1)
    if content.study.synthetic:
        document.add_paragraph().add_run(SYNTHETIC_NOTE).bold = True
    for note in content.notes:
        document.add_paragraph().add_run(note).bold = True
    document.add_heading("Methods: statistical analysis", level=2)
    for p in content.methods:
        document.add_paragraph(p)
    tables = content.tables_in_order()
    if tables:  # the heading on the first table's page, landscape or not
        set_orientation(document, docx_layout(document, tables[0]).landscape)
    document.add_heading("Tables", level=2)
    for t in tables:
        add_docx_table(document, t)
        document.add_paragraph()
    section = _figure_pages(document)
    document.add_heading("Figures", level=2)
    text_width = section.page_width - section.left_margin - section.right_margin
    # Room for the caption (three lines) under the tallest figure.
    text_height = section.page_height - section.top_margin - section.bottom_margin - Emu(914400)
    for number, (spec, png) in enumerate(content.figures, start=1):
        picture = document.add_picture(io.BytesIO(png))  # its size from the PNG's dpi
        scale = min(1, text_width / picture.width, text_height / picture.height)
        if scale < 1:
            picture.width, picture.height = int(picture.width * scale), int(picture.height * scale)
        placed = document.paragraphs[-1].paragraph_format
        placed.keep_with_next, placed.alignment = True, WD_ALIGN_PARAGRAPH.CENTER
        document.add_paragraph(f"Figure {number}. {spec.caption}")
    for note in content.notes_beside_figures():
        document.add_paragraph(note)
    document.add_heading("Provenance", level=2)
    rows = [list(row) for row in _provenance_rows(content.provenance)]
    portrait, _ = docx_text_widths_pt(document)
    layout = grid_layout(
        None, rows, portrait_pt=portrait, landscape_pt=portrait, unbroken_values=False
    )
    add_docx_grid(document, None, rows, layout, center_values=False)
    return save_docx(document, path)


def _mixed_model_methods(study, shown: dict, labels: dict) -> list[str]:
    """The Methods sentence of the mixed model ([analysis.longitudinal] model = true) when the
    report shows its eTables: the model, its estimation method and its df method."""
    plan = study.analysis.mixed_model
    stems = [stem for stem in shown if stem.startswith("etable_mixed_model_")]
    if plan is None or not stems:
        return []
    numbers = [_number(shown, stem).strip(" ()").removeprefix("eTable ") for stem in stems]
    where = f"eTable {numbers[0]}" if len(numbers) == 1 else f"eTables {_list(numbers)}"
    time = {"visits": "visit", "days": "time in days", "months": "time in months"}[plan.time]
    fixed = time
    if plan.group:
        group = in_sentence(study.column_label(plan.column))
        fixed += f" and {group}" + (" with their interaction" if plan.interaction else "")
    if plan.covariates:
        fixed += ", adjusted for " + _list(
            [in_sentence(study.column_label(c)) for c in plan.covariates]
        )
    slope = "time in years" if plan.time == "visits" else time
    random = "a random intercept" + (f" and a random slope on {slope}" if plan.random_slope else "")
    method = "restricted maximum likelihood" if plan.method == "reml" else "maximum likelihood"
    df = (
        "fixed effects were tested with t tests on Satterthwaite degrees of freedom (as "
        "lmerTest), with CIs from the same t distributions"
        if plan.df == "satterthwaite"
        else "fixed effects were tested with Wald z tests, with Wald CIs"
    )
    return [
        f"Every observed value was also modeled ({where}) with a linear mixed model of "
        f"{fixed} (fixed effects) and {random} per patient, fitted by {method}; {df}; nested "
        "models were compared with likelihood-ratio tests on maximum likelihood fits."
    ]
