"""The study spec: one TOML file per study, ``data/raw/<study>/study.toml``.

It says which raw files hold the cohort, which columns carry subjects, visits
and instrument items, and the analysis plan. Only the columns the spec names
are ever read from a raw file, so an unmapped column (a name, a date, a
free-text note) never reaches the warehouse.

The file's schema (every table, key, type and choice) is
:mod:`pipeline.spec.schema`; this module checks what needs the whole spec (an
outcome naming a mapped instrument, a subgroup naming a subjects column, files
inside the study folder) and builds the :class:`Study` the steps read. Every
problem is reported as one :class:`SpecError` naming the file, the setting and
how to fix it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.instruments import REGISTRY, custom_measure
from pipeline.spec import schema
from pipeline.spec.schema import OVERRIDABLE, ReadOptions, SpecError
from pipeline.statistics.small_cells import pooled_label

SPEC_FILENAME = "study.toml"


@dataclass(frozen=True)
class InstrumentSource:
    """Where one instrument's items live in the visits file.

    ``column`` is a template filled with ``{item}`` and ``{rater}``, e.g.
    ``"sb_{item}"`` or ``"hb_{rater}"``.
    """

    instrument: str
    column: str
    raters: tuple[str, ...] = ("",)
    # The scoring version the spec selects ('' = the instrument's default, or it has none).
    version: str = ""
    # Subjects column holding the side of the paralysis (left/right), for per-side measures.
    side_column: str = ""
    # A custom measure declared in the spec (None for registry instruments).
    measure: Any = None

    def column_for(self, item: str, rater: str) -> str:
        return self.column.format(item=item, rater=rater)

    @property
    def score_names(self) -> tuple[str, ...]:
        """Scores this mapping produces: the custom measure's, or the registry instrument's
        in the selected scoring version."""
        instrument = self.measure or REGISTRY[self.instrument]
        return tuple(s.name for s in instrument.scores_for(self.version or None))


@dataclass(frozen=True)
class Outcome:
    """One analysed score: an instrument's score, optionally from one rater."""

    instrument: str
    score: str
    rater: str = ""
    test: str = ""
    # "score", "binary" (0/1) or "categorical" (whole-number codes): schema.OutcomeKind.
    kind: str = "score"
    # (code, label) of a binary or categorical outcome's categories, as the spec names them.
    categories: tuple[tuple[int, str], ...] = ()

    def category_label(self, code: float) -> str:
        """A category as a reader sees it: its label in the spec, else its code (``2``)."""
        return dict(self.categories).get(int(code), f"{code:g}") if code == int(code) else str(code)

    @property
    def name(self) -> str:
        return f"{self.instrument}_{self.rater}" if self.rater else self.instrument


@dataclass(frozen=True)
class Subgroup:
    """A baseline column that splits the cohort: each value is a level, or, with
    ``split = "median"``, a numeric column is cut into above / at or below its median."""

    name: str
    column: str
    split: str = ""
    # The reference level's code ('' : the first declared level; a median split: at or below).
    reference: str = ""
    # The column's levels as [subjects.levels] declares them, in that order (codes).
    levels: tuple[str, ...] = ()
    # "reference" (each level against the reference) or "all_pairs"; their P adjustment.
    contrasts: str = "reference"
    adjust: str = "holm"


#: The warehouse table of the derived visits' scores (``<study>.derived_scores``), written by
#: pipeline.scores.derive_visits and read beside the scores by pipeline.pairing.
DERIVED_SCORES = "derived_scores"


@dataclass(frozen=True)
class DerivedVisit:
    """A visit computed from others ([visits.derived]): at each (patient, instrument, rater,
    score), the sum or mean of the values at ``visits`` when every one has a value
    (``require = "all"``), else missing with the visits lacking one named in its reason. Its day
    is its first or last visit's (of those the patient had), or a nominal day."""

    name: str
    visits: tuple[str, ...]
    combine: str
    require: str = "all"
    day: str | int = "last"


@dataclass(frozen=True)
class ReliabilityPlan:
    """Several raters grading the same visits: ICCs and weighted kappa between them."""

    instrument: str
    score: str
    raters: tuple[str, ...]
    weights: str = "quadratic"
    # The visits that enter, in order ((): every visit the raters graded, in time order), and
    # whether each is analysed on its own ("per_visit") or all pooled ("subject_visit").
    visits: tuple[str, ...] = ()
    targets: str = "per_visit"


@dataclass(frozen=True)
class Complication:
    """A complication or adverse event: the subjects column marking it (0 / 1) and, when the
    spec names them, the columns of its duration in days and of its resolution (0 / 1)."""

    column: str
    duration: str = ""
    resolved: str = ""


@dataclass(frozen=True)
class PowerPlan:
    """Power for the next study: the outcomes planned for and their target effects (dz)."""

    outcomes: tuple[str, ...] = ()
    target_dz: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class PredictorsPlan:
    """``[analysis.predictors]``: regression of each modelled outcome on baseline predictors
    (:func:`pipeline.statistics.regression.predictors_of_outcome`)."""

    outcomes: tuple[str, ...]
    predictors: tuple[str, ...]
    # (categorical predictor, its levels as written), in the predictors' order.
    categorical: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # (categorical predictor, reference level) the spec chose, under [analysis.predictors] or as
    # a subgroup's reference; others: the first declared level a patient of the model has.
    reference: tuple[tuple[str, str], ...] = ()
    model: str = "change"
    univariable: bool = False
    # (outcome, score, minimal important change, its source) for the logistic model of
    # responders; empty when the plan asks for none.
    thresholds: tuple[tuple[str, str, float, str], ...] = ()

    @property
    def responders(self) -> bool:
        return bool(self.thresholds)


@dataclass(frozen=True)
class MixedModelPlan:
    """``[analysis.longitudinal]`` with ``model = true``: the mixed model of each outcome
    (:func:`pipeline.statistics.mixed_model.mixed_model`). ``time``: "visits", "days" or
    "months"; ``group``: a subgroup's name ('' none), with its ``column``, declared ``levels``
    and ``reference`` level; ``covariates``: numeric subjects columns; ``method``: "reml" or
    "ml"; ``df``: "satterthwaite" or "wald_z"."""

    outcomes: tuple[str, ...]
    time: str = "visits"
    group: str = ""
    column: str = ""
    levels: tuple[str, ...] = ()
    reference: str = ""
    interaction: bool = True
    covariates: tuple[str, ...] = ()
    random_slope: bool = False
    method: str = "reml"
    df: str = "satterthwaite"


@dataclass(frozen=True)
class TimeToEventPlan:
    """Time from surgery to an event: ``event`` (0/1) and ``day`` (its day after surgery) are
    subjects columns; a patient without the event is censored at ``censor_day`` (a subjects
    column) or, when that is '', at the last visit day. ``by``: the subjects column whose
    levels the log-rank test compares ('' = none); ``times``: days of the event-free
    proportions and numbers at risk."""

    name: str
    event: str
    day: str
    censor_day: str = ""
    by: str = ""
    times: tuple[int, ...] = (365, 730)


#: The pre and post rules of one comparison, named as the plan's own fields
#: (:meth:`AnalysisPlan.for_comparison` puts them in its place).
RULE_FIELDS = (
    "pre_rule",
    "pre_max_day",
    "pre_min_day",
    "pre_visit",
    "pre_visit_label",
    "post_rule",
    "post_min_day",
    "post_max_day",
    "post_visit",
    "post_visit_label",
    "post_target_day",
)


@dataclass(frozen=True)
class Comparison:
    """One named comparison of the plan: which visit is "before" and which "after"
    (``[[analysis.comparisons]]``). ``name`` is the study's word for it (``m12``), ``label`` what
    a reader sees ("12 months"); ``rules`` the values of :data:`RULE_FIELDS`, in their order."""

    name: str
    label: str
    rules: tuple

    @property
    def fields(self) -> dict:
        return dict(zip(RULE_FIELDS, self.rules))


@dataclass(frozen=True)
class ImputationPlan:
    """``[analysis] imputation``: the outcome whose missing pre or post values are imputed
    ``m`` times from ``seed`` (:func:`pipeline.statistics.imputation.imputation_analysis`),
    with the subjects columns ``predictors``."""

    outcome: str
    m: int
    seed: int
    predictors: tuple[str, ...] = ()
    method: str = "mice"
    iterations: int = 10
    donors: int = 5


@dataclass(frozen=True)
class AnalysisPlan:
    alpha: float = 0.05
    conf_level: float = 0.95
    test: str = "wilcoxon"
    pre_rule: str = "latest_preoperative"
    pre_max_day: int = 0
    post_rule: str = "last_followup"
    post_min_day: int = 90
    outcomes: tuple[Outcome, ...] = ()
    # Pre window lower bound (None: any earlier day counts).
    pre_min_day: int | None = None
    # post rule "named_visit": the visit code; "nearest_day": the target day.
    post_visit: str = ""
    # The named visit as a reader sees it (Study.visit_label), '' for the default.
    post_visit_label: str = ""
    post_target_day: int | None = None
    post_max_day: int | None = None
    primary: str = ""
    multiplicity: str = "holm"
    subgroups: tuple[Subgroup, ...] = ()
    covariates: tuple[str, ...] = ()
    ordinal: tuple[str, ...] = ()
    # (outcome name, minimal important change in the better direction)
    responders: tuple[tuple[str, float], ...] = ()
    reliability: tuple[ReliabilityPlan, ...] = ()
    random_slope: bool = False
    # Item-level change of every instrument with items (pipeline.statistics.items).
    item_changes: bool = True
    # Correlations and sign tests within the cohort and each subgroup level.
    within_groups: bool = False
    complications: tuple[Complication, ...] = ()
    # None: no power table.
    power: PowerPlan | None = None
    # Predictors of outcome ([analysis.predictors]); None when the plan has none.
    predictors: PredictorsPlan | None = None
    time_to_event: tuple[TimeToEventPlan, ...] = ()
    # Multiple imputation of the primary outcome; None when the plan has none.
    imputation: ImputationPlan | None = None
    # pre rule "named_visit": the visit code, and as a reader sees it ('' for the default).
    pre_visit: str = ""
    pre_visit_label: str = ""
    # False when the visits have codes but no days relative to surgery (pre and post are then
    # named visits, and no label speaks of days).
    days: bool = True
    # [[analysis.comparisons]], in spec order; empty: the one comparison of the plan's own pre
    # and post rules (which are always the primary comparison's).
    comparisons: tuple[Comparison, ...] = ()
    primary_comparison: str = ""
    # "per_comparison" or "study": the family of the multiplicity adjustment.
    multiplicity_scope: str = "per_comparison"

    @property
    def compared(self) -> tuple[Comparison, ...]:
        """Every comparison, the primary first when the spec lists none: a plan without
        ``[[analysis.comparisons]]`` has the one of its own rules, named by its post visit
        (or rule) and labelled as the follow-up a reader knows."""
        if self.comparisons:
            return self.comparisons
        rules = tuple(getattr(self, f) for f in RULE_FIELDS)
        if self.post_rule == "named_visit":
            name = self.post_visit
            label = self.post_visit_label or default_visit_label(self.post_visit)
        elif self.post_rule == "nearest_day":
            name, label = self.post_rule, f"Nearest to day {self.post_target_day}"
        else:
            name, label = self.post_rule, "Last follow-up"
        return (Comparison(name, label, rules),)

    @property
    def primary_comparison_name(self) -> str:
        return self.primary_comparison or self.compared[0].name

    def for_comparison(self, comparison: Comparison) -> AnalysisPlan:
        """This plan with ``comparison``'s pre and post rules in place of its own: what pairs,
        tests and labels one comparison."""
        return replace(self, **comparison.fields)

    # The mixed model as lme4 users write it ([analysis.longitudinal] model = true); else None.
    mixed_model: MixedModelPlan | None = None

    @property
    def pre_label(self) -> str:
        window = (
            f"{self.pre_min_day} ≤ day ≤ {self.pre_max_day}"
            if self.pre_min_day is not None
            else f"day ≤ {self.pre_max_day}"
        )
        if self.pre_rule == "named_visit":
            label = _in_sentence(self.pre_visit_label or default_visit_label(self.pre_visit))
            return f"{label} ({window})" if self.days else label
        return f"latest pre-operative ({window})"

    @property
    def post_window(self) -> str:
        low = self.post_min_day
        high = self.post_max_day
        if high is None:
            return f"day ≥ {low}"
        return f"{low} ≤ day ≤ {high}"

    @property
    def post_label(self) -> str:
        if self.post_rule == "named_visit":
            label = self.post_visit_label or default_visit_label(self.post_visit)
            # Inside a sentence ("after: 12 months (...)"): a first capital that starts a word,
            # not an abbreviation, in lower case.
            if label[1:2].islower():
                label = label[:1].lower() + label[1:]
            return f"{label} ({self.post_window})" if self.days else label
        if self.post_rule == "nearest_day":
            return f"nearest to day {self.post_target_day} ({self.post_window})"
        return f"last follow-up ({self.post_window})"

    @property
    def secondary(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.name != self.primary)

    def test_for(self, outcome: Outcome) -> str:
        return outcome.test or self.test


def _in_sentence(label: str) -> str:
    """A label inside a sentence: a first capital that starts a word, not an abbreviation, in
    lower case ("Before surgery" -> "before surgery", "MRI visit" kept)."""
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


@dataclass(frozen=True)
class VisitEvent:
    """A REDCap event read as a visit: its visit code and, optionally, its nominal day."""

    event: str
    visit: str
    day: int | None = None


@dataclass(frozen=True)
class RedcapSource:
    """A REDCap project export: the data dictionary and how records map to subjects and visits.

    ``subjects_event`` is the (longitudinal) event whose row holds the subject columns;
    ``repeat_instrument`` the repeating instrument whose instances are visits.
    """

    dictionary: str
    subjects_event: str = ""
    repeat_instrument: str = ""
    events: tuple[VisitEvent, ...] = ()


@dataclass(frozen=True)
class Checks:
    """Thresholds of the data-quality checks that stop a study's run (``[checks]`` in the spec)."""

    # Every planned test needs at least this many pairs (whole cohort).
    min_pairs: int = 3
    # For every outcome, at least this share of subjects must have both a pre and a post value.
    min_paired_share: float = 0.5


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    folder: Path
    spec_path: Path
    synthetic: bool
    subjects_file: str
    subject_id: str
    subject_columns: tuple[str, ...]
    visits_file: str
    visit_subject: str
    visit_column: str
    day_column: str
    instruments: tuple[InstrumentSource, ...]
    analysis: AnalysisPlan = field(default_factory=AnalysisPlan)
    # How each file is read (format, encoding, delimiter, decimal separator, sheet).
    subjects_options: ReadOptions = ReadOptions()
    visits_options: ReadOptions = ReadOptions()
    # "wide": one row per subject and visit; "long": one row per subject, visit and item.
    visits_layout: str = "wide"
    visit_item: str = "item"
    visit_value: str = "value"
    # (visit window name, first day, last day): a visit outside every window is quarantined.
    visit_windows: tuple[tuple[str, int, int], ...] = ()
    redcap: RedcapSource | None = None
    # (column, written justification): columns the de-identification guard lets through.
    identifiers_allowed: tuple[tuple[str, str], ...] = ()
    checks: Checks = field(default_factory=Checks)
    # Restricted data: the warehouse and this study's reports are readable by their owner only.
    restricted: bool = False
    # Categorical subjects columns: (column, ((value as written, label), ...)); a value outside
    # them is quarantined. Free-text columns: (column, why it is kept); never in a report.
    subject_levels: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    free_text: tuple[tuple[str, str], ...] = ()
    # Subgroup levels with fewer patients are pooled or suppressed in every output.
    min_cell: int = schema.MIN_CELL
    # (column, label) and (column, unit) as [subjects] labels and units give them.
    subject_labels: tuple[tuple[str, str], ...] = ()
    subject_units: tuple[tuple[str, str], ...] = ()
    # [tables] table_1_by: the subjects column whose levels are Table 1's columns ("": none).
    table_1_by: str = ""
    # [figures] formats and widths: the figure files a run writes besides the report's PNG.
    figure_formats: tuple[str, ...] = ("png",)
    figure_widths: tuple[str, ...] = ("double",)
    # (visit code, label) as [visits.labels] gives them.
    visit_labels: tuple[tuple[str, str], ...] = ()
    # Visits computed from others ([visits.derived]), in spec order.
    derived_visits: tuple[DerivedVisit, ...] = ()
    # The analysis table as the spec wrote it: run overrides are applied to it and checked again.
    analysis_spec: Any = None

    def instrument(self, name: str):
        """The instrument the spec maps under ``name``: a custom measure it declares, or the
        registry's (:data:`pipeline.instruments.REGISTRY`)."""
        for source in self.instruments:
            if source.instrument == name and source.measure is not None:
                return source.measure
        return REGISTRY[name]

    # --- what a reader sees: every table, figure and Methods sentence names columns, their
    # levels and the subgroups through these, so a label is written once, in the spec.

    def column_label(self, column: str) -> str:
        """A subjects column as a reader sees it: its ``[subjects] labels`` entry, else its name
        made readable (``months_since_onset`` -> ``Months since onset``)."""
        return dict(self.subject_labels).get(column) or readable(column)

    def column_unit(self, column: str) -> str:
        """The column's ``[subjects] units`` entry ('' when none)."""
        return dict(self.subject_units).get(column, "")

    def column_label_with_unit(self, column: str) -> str:
        """The label with its unit as a table row writes it (AMA): ``Age, y``."""
        unit = self.column_unit(column)
        return f"{self.column_label(column)}, {unit}" if unit else self.column_label(column)

    def level_label(self, column: str, level: str) -> str:
        """A value of a subjects column as a reader sees it: its label under ``[subjects.levels]``,
        else No / Yes for 0 / 1, else the value made readable (``bells_palsy`` -> ``Bells
        palsy``)."""
        level = str(level).strip()
        for code, label in dict(self.subject_levels).get(column, ()):
            if code.lower() == level.lower():
                return label
        return YES_NO.get(level) or readable(level)

    def visit_label(self, visit: str) -> str:
        """A visit code as a reader sees it: its ``[visits.labels]`` entry, else
        :func:`default_visit_label` (``Last follow-up`` for a last follow-up code, ``Visit m12``
        for another)."""
        return labelled_visit(self.visit_labels, visit)

    def subgroup_label(self, name: str) -> str:
        """A planned subgroup by the label of the column it splits."""
        for g in self.analysis.subgroups:
            if g.name == name:
                return self.column_label(g.column)
        return readable(name)

    def group_label(self, group: str) -> str:
        """A subgroup level as the statistics name it (:mod:`pipeline.statistics.subgroups`:
        ``etiology: bells_palsy``, ``branches > 6``, ``etiology: levels of fewer than 5
        patients, pooled``) in the reader's words: ``Etiology: Bell palsy``, ``Branches
        transected > 6``. A name the plan does not know is only made readable."""
        # Subgroup names are unique and hold neither ': ' nor a space, so the longest name the
        # level starts with, followed by a separator, is its subgroup.
        for g in sorted(self.analysis.subgroups, key=lambda g: -len(g.name)):
            label = self.column_label(g.column)
            for sep in (" > ", " ≤ "):
                if g.split == "median" and group.startswith(g.name + sep):
                    return label + sep + group[len(g.name) + len(sep) :]
            if group.startswith(g.name + ": "):
                level = group[len(g.name) + 2 :]
                if group == pooled_label(g.name, self.min_cell):
                    return f"{label}: {level}"
                return f"{label}: {self.level_label(g.column, level)}"
        return readable(group)

    @property
    def dictionary_path(self) -> Path | None:
        return self.folder / self.redcap.dictionary if self.redcap else None

    @property
    def subjects_path(self) -> Path:
        return self.folder / self.subjects_file

    @property
    def visits_path(self) -> Path:
        return self.folder / self.visits_file

    @property
    def input_paths(self) -> tuple[Path, ...]:
        paths = (self.spec_path, self.subjects_path, self.visits_path, self.dictionary_path)
        return tuple(dict.fromkeys(p for p in paths if p is not None))

    @property
    def spec_sha256(self) -> str:
        return hashlib.sha256(self.spec_path.read_bytes()).hexdigest()


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: The label of a 0 / 1 value the spec does not label: the convention of a yes/no column.
YES_NO = {"0": "No", "1": "Yes"}


#: Visit codes of a patient's last follow-up rather than of a time after surgery: their day
#: differs from patient to patient, so they are shown after the scheduled visits and are no
#: time point of the trajectory figure.
LAST_FOLLOW_UP_VISITS = ("last", "last_followup", "last_follow_up", "final")


def is_last_follow_up(visit: str) -> bool:
    """Whether ``visit`` is a last follow-up code (:data:`LAST_FOLLOW_UP_VISITS`)."""
    return str(visit).strip().lower() in LAST_FOLLOW_UP_VISITS


def default_visit_label(visit: str) -> str:
    """A visit the spec does not label, shown as what it is: ``Last follow-up`` for a last
    follow-up code, otherwise ``Visit <code>`` (``Visit m12``)."""
    visit = str(visit).strip()
    return "Last follow-up" if is_last_follow_up(visit) else f"Visit {visit}"


def labelled_visit(labels: tuple[tuple[str, str], ...], visit: str) -> str:
    """``visit``'s label among ``labels`` (code, label), the code matched as written, else
    whatever its case; else :func:`default_visit_label`."""
    visit = str(visit).strip()
    found = dict(labels).get(visit)
    if found is None:
        found = next((label for code, label in labels if code.lower() == visit.lower()), None)
    return found if found is not None else default_visit_label(visit)


def readable(name: str) -> str:
    """A name as a reader sees it when the spec gives no label: underscores as spaces, the
    first letter capitalised (``months_since_onset`` -> ``Months since onset``)."""
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


# Schema names a study (its schema in the warehouse) cannot take: meta holds the runs table.
RESERVED_NAMES = ("meta", "main", "temp", "system", "information_schema", "pg_catalog")


def _fail(path: Path, setting: str, problem: str) -> SpecError:
    return SpecError(f"{path}: setting '{setting}' {problem}")


def load_study(folder: Path) -> Study:
    """Read and validate ``<folder>/study.toml``."""
    folder = Path(folder)
    path = folder / SPEC_FILENAME
    if not path.is_file():
        raise SpecError(f"{path}: no study spec found. Create {SPEC_FILENAME} in {folder}.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: not valid TOML ({err}). Fix the syntax at that line.") from None
    if isinstance(data.get("study"), dict) and data["study"].get("kind") == "pooled":
        raise SpecError(
            f'{path}: a pooled study (kind = "pooled") pools site summary bundles and has no '
            f"exports to run; pool it with `outcomes pool --study {folder}` or `outcomes report` "
            "(docs/multi-centre.md)."
        )
    unknown = [key for key in data if key not in schema.SpecFile.model_fields]
    if unknown:
        raise SpecError(
            f"{path}: [{schema.shown_key(unknown[0])}] is not a table of the spec"
            f"{schema.nearest(unknown[0], list(schema.SpecFile.model_fields))}"
        )
    spec = schema.validate(schema.SpecFile, data, "", path)

    name = spec.study.name
    if not _NAME.match(name):
        raise _fail(
            path,
            "study.name",
            "must be lower-case letters, digits and '_', starting with a letter.",
        )
    if name in RESERVED_NAMES:
        raise _fail(
            path,
            "study.name",
            f"must not be {name!r}, which the warehouse uses itself; choose another name.",
        )
    redcap = _redcap(path, spec)
    visit_column = (
        spec.visits.visit
        if spec.visits.visit is not None
        else ("redcap_event_name" if redcap else None)
    )
    day_column = spec.visits.day if spec.visits.day is not None else ("" if redcap else None)
    days = True
    if day_column is None and visit_column is not None:
        # Visits known by their codes alone: allowed when no rule of the plan needs days.
        _no_days_needed(path, spec)
        day_column, days = "", False
    for key, value in (("visits.visit", visit_column), ("visits.day", day_column)):
        if value is None:
            raise _fail(path, key, "is missing. Add it to the spec.")
    subject_columns = tuple(spec.subjects.columns)
    instruments = _instrument_sources(path, spec.instruments)
    _declared_columns(path, spec.subjects)
    levels, free_text = _subject_kinds(path, spec.subjects)
    visit_labels = _visit_labels(path, spec.visits, redcap)

    study = Study(
        name=name,
        title=spec.study.title or name,
        folder=folder,
        spec_path=path,
        synthetic=spec.study.synthetic,
        restricted=spec.study.restricted,
        subjects_file=spec.subjects.file,
        subject_id=spec.subjects.id,
        subject_columns=subject_columns,
        visits_file=spec.visits.file,
        visit_subject=spec.visits.subject,
        visit_column=visit_column,
        day_column=day_column,
        instruments=instruments,
        analysis=_analysis_plan(
            path, spec.analysis, instruments, subject_columns, free_text, visit_labels, levels, days
        ),
        subjects_options=_read_options(spec.subjects, redcap is not None),
        visits_options=_read_options(spec.visits, redcap is not None),
        visits_layout=spec.visits.layout,
        visit_item=spec.visits.item,
        visit_value=spec.visits.value,
        visit_windows=tuple((name, lo, hi) for name, (lo, hi) in spec.visits.windows.items()),
        redcap=redcap,
        identifiers_allowed=tuple(spec.identifiers.allow.items()),
        checks=Checks(spec.checks.min_pairs, float(spec.checks.min_paired_share)),
        subject_levels=levels,
        free_text=free_text,
        min_cell=spec.identifiers.min_cell,
        subject_labels=tuple(spec.subjects.labels.items()),
        subject_units=tuple(spec.subjects.units.items()),
        analysis_spec=spec.analysis,
        table_1_by=_table_1_by(path, spec.tables.table_1_by, subject_columns, free_text),
        figure_formats=tuple(dict.fromkeys(["png", *spec.figures.formats])),
        figure_widths=tuple(dict.fromkeys(spec.figures.widths)),
        visit_labels=visit_labels,
        derived_visits=_derived_visits(path, spec.visits),
    )
    files = [("subjects.file", study.subjects_file), ("visits.file", study.visits_file)]
    if study.redcap:
        files.append(("redcap.dictionary", study.redcap.dictionary))
    inside = folder.resolve()
    for key, file in files:
        target = folder / file
        if not spec.study.read_outside_folder and not target.resolve().is_relative_to(inside):
            raise _fail(
                path,
                key,
                f"names a file outside the study folder {folder} (a path or a link leading "
                "out of it). Copy the export into the folder, or set read_outside_folder = true "
                "under [study] if it must be read from where it is.",
            )
        if not target.is_file():
            raise SpecError(
                f"{path}: setting '{key}' names {file}, which is not in {folder}. "
                "Put the export there or correct the file name."
            )
    return study


def _rule_needing_days(analysis: schema.AnalysisTable, windows) -> str:
    """The first setting of the plan that needs days relative to surgery, as a message names it
    ('' when none does): the latest pre-operative, last follow-up and nearest-day rules, a day
    window of a rule, visit windows, a random slope in time, a censoring day read off the last
    visit."""
    rules = [("analysis", analysis.pre, analysis.post)]
    if analysis.comparisons:
        rules = [
            (f"analysis.comparisons[{i}]", c.pre or analysis.pre, c.post)
            for i, c in enumerate(analysis.comparisons)
        ]
    for where, pre, post in rules:
        if pre.rule != "named_visit":
            # A comparison's own pre rule, or the [analysis] one it takes.
            shown = where if pre is not analysis.pre else "analysis"
            return f'{shown}.pre.rule = "{pre.rule}"'
        if post.rule != "named_visit":
            return f'{where}.post.rule = "{post.rule}"'
        for table, entry in (("pre", pre), ("post", post)):
            for key in ("min_day", "max_day"):
                if key in entry.model_fields_set:
                    shown = where if entry is not analysis.pre else "analysis"
                    return f"{shown}.{table}.{key}"
    if windows:
        return "visits.windows"
    if analysis.longitudinal.random_slope:
        return "analysis.longitudinal.random_slope (time in years since surgery)"
    if analysis.longitudinal.time != "visits":
        return f'analysis.longitudinal.time = "{analysis.longitudinal.time}"'
    for i, entry in enumerate(analysis.time_to_event):
        if not entry.censor_day:
            return f'analysis.time_to_event[{i}].censor_day = "" (the last visit\'s day)'
    return ""


def _no_days_needed(path: Path, spec: schema.SpecFile) -> None:
    """A spec without ``visits.day`` is refused, naming the first rule that needs days."""
    problem = _rule_needing_days(spec.analysis, spec.visits.windows)
    if problem:
        raise _fail(
            path,
            "visits.day",
            f"is missing, and {problem} needs days relative to surgery. Name the column of "
            'days, or pair by visit code: pre = { rule = "named_visit", visit = "..." } and '
            'post = { rule = "named_visit", visit = "..." }, without min_day or max_day.',
        )


def _redcap(path: Path, spec: schema.SpecFile) -> RedcapSource | None:
    if spec.redcap is None:
        return None
    events = tuple(
        VisitEvent(event, entry)
        if isinstance(entry, str)
        else VisitEvent(event, entry.visit, entry.day)
        for event, entry in spec.redcap.events.items()
    )
    if spec.visits.day is None:
        missing = next((e.event for e in events if e.day is None), None)
        if missing is not None:
            raise _fail(
                path,
                f"redcap.events.{missing}",
                "has no day, and [visits] names no day field. Give the "
                "event a nominal day (day = 90) or name the field holding days relative to "
                "surgery.",
            )
        if not events:
            raise _fail(
                path,
                "visits.day",
                "is missing: name the REDCap field holding days relative to "
                "surgery, or map events to visits with days under [redcap.events].",
            )
    return RedcapSource(
        spec.redcap.dictionary, spec.redcap.subjects_event, spec.redcap.repeat_instrument, events
    )


def _table_1_by(path: Path, column: str, subject_columns, free_text) -> str:
    """``[tables] table_1_by``: a subjects column that is read and is not free text."""
    if column and column not in subject_columns:
        raise _fail(
            path,
            "tables.table_1_by",
            f"names '{column}', which is not in [subjects] columns; add it there or choose one "
            "of them.",
        )
    if column in dict(free_text):
        raise _fail(
            path,
            "tables.table_1_by",
            f"names '{column}', a free-text column, which is never reported; choose a column "
            "of categories.",
        )
    return column


def _read_options(table: schema.ReadSettings, redcap: bool) -> ReadOptions:
    """How one file is read: ``format``, ``encoding``, ``delimiter``, ``decimal``, ``sheet``."""
    fmt = "redcap" if redcap and "format" not in table.model_fields_set else table.format
    return ReadOptions(
        format=fmt,
        encoding=table.encoding,
        delimiter=schema.DELIMITER_NAMES[table.delimiter],
        decimal=table.decimal,
        sheet=table.sheet,
    )


def _subject_kinds(path: Path, subjects: schema.SubjectsTable):
    """The declared categorical and free-text subjects columns (each one of ``columns``, as
    :func:`_declared_columns` checked)."""
    both = sorted(set(subjects.levels) & set(subjects.free_text))
    if both:
        raise _fail(
            path,
            f"subjects.free_text.{both[0]}",
            "names a column that also has levels; a column is either categorical or free text.",
        )
    levels = []
    for column, values in subjects.levels.items():
        pairs = values.items() if isinstance(values, dict) else ((v, v) for v in values)
        levels.append((column, tuple((str(code).strip(), str(label)) for code, label in pairs)))
    return tuple(levels), tuple(subjects.free_text.items())


def _declared_columns(path: Path, subjects: schema.SubjectsTable) -> None:
    """Every column given levels, free text, a label or a unit is one of ``columns``: a label
    for a misspelt column would otherwise leave the column under its bare name."""
    for key in ("levels", "free_text", "labels", "units"):
        for column in getattr(subjects, key):
            if column not in subjects.columns:
                raise _fail(
                    path,
                    f"subjects.{key}.{schema.shown_key(column)}",
                    f"names {column!r}, which is not in [subjects] columns; add it there or "
                    "correct the name.",
                )


def _derived_visits(path: Path, visits: schema.VisitsTable) -> tuple[DerivedVisit, ...]:
    """``[visits.derived]``: a derived visit is made of visits of the export, not of others."""
    out = []
    for name, entry in visits.derived.items():
        code = str(name).strip()
        nested = [v for v in entry.visits if v in visits.derived]
        if not code or nested:
            raise _fail(
                path,
                f"visits.derived.{schema.shown_key(code)}.visits",
                "must name visits of the visits file, not derived ones; list their visits.",
            )
        out.append(DerivedVisit(code, tuple(entry.visits), entry.combine, entry.require, entry.day))
    return tuple(out)


def _visit_labels(
    path: Path, visits: schema.VisitsTable, redcap: RedcapSource | None
) -> tuple[tuple[str, str], ...]:
    """``[visits.labels]`` as (code, label). Where the spec lists the visits itself (the visit
    codes of ``[redcap.events]``), a label must name one of them: a misspelt code would leave
    the visit under its code."""
    labels = tuple((str(code).strip(), text.strip()) for code, text in visits.labels.items())
    known = list(dict.fromkeys(e.visit for e in redcap.events)) if redcap else []
    if known:
        for code, _ in labels:
            if code not in known:
                raise _fail(
                    path,
                    f"visits.labels.{schema.shown_key(code)}",
                    f"names visit {code!r}, which no event of [redcap.events] is mapped to; "
                    f"label one of {', '.join(known)}, or correct the code.",
                )
    return labels


def _template_problem(column: str) -> str:
    """What is wrong with a column template ('' when nothing): only {item} and {rater} may be
    filled in."""
    import string

    try:
        fields = list(string.Formatter().parse(column))
    except ValueError as err:
        return str(err).lower()
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in ("item", "rater"):
            return f"{{{name}}} is not {{item}} or {{rater}}"
        if spec or conversion:
            return f"{{{name}}} takes no format or conversion"
    return ""


def _instrument_sources(
    path: Path, tables: dict[str, dict[str, Any]]
) -> tuple[InstrumentSource, ...]:
    sources = []
    for key, raw in tables.items():
        where = f"instruments.{key}"
        if not isinstance(raw, dict):
            raise _fail(path, where, f"must be a table, got {raw!r}.")
        measure = None
        if key in REGISTRY:
            entry = schema.validate(schema.RegistryInstrumentTable, raw, where, path)
            instrument = REGISTRY[key]
        else:
            if not any(k in raw for k in schema.CUSTOM_KEYS):
                raise _fail(
                    path,
                    where,
                    f"is not a known instrument; known: {', '.join(sorted(REGISTRY))}. "
                    "To analyse a measure of your own, give it label, minimum, maximum "
                    'and better = "higher" or "lower" (optionally unit, integer).',
                )
            if not _NAME.match(key):
                raise SpecError(
                    f"{path}: custom measure '{key}' must be named with lower-case letters, digits "
                    "and '_', starting with a letter."
                )
            entry = schema.validate(schema.CustomMeasureTable, raw, where, path)
            measure = instrument = custom_measure(
                key,
                entry.label,
                entry.minimum,
                entry.maximum,
                integer=entry.integer,
                higher_is_better=entry.better == "higher",
                unit=entry.unit,
            )
        raters = tuple(entry.raters)
        problem = _template_problem(entry.column)
        if problem:
            raise _fail(
                path,
                f"{where}.column",
                f"is not a column template ({problem}); write {{item}} and "
                f'{{rater}} where the item and rater go, e.g. "sb_{{item}}", and {{{{ }}}} for a '
                f"literal brace. Got {entry.column!r}.",
            )
        if "{item}" not in entry.column and len(instrument.items) > 1:
            raise _fail(path, f"{where}.column", 'must contain {item}, e.g. "sb_{item}".')
        if len(raters) > 1 and "{rater}" not in entry.column:
            raise _fail(
                path, f"{where}.column", "must contain {rater} when several raters are listed."
            )
        version = getattr(entry, "version", None)
        if version is not None:
            if not instrument.versions:
                raise _fail(
                    path,
                    f"{where}.version",
                    f"cannot be set: {key} has a single scoring definition.",
                )
            if version not in instrument.version_names:
                raise _fail(
                    path,
                    f"{where}.version",
                    f"must be one of {', '.join(instrument.version_names)}; got {version!r}.",
                )
        side_column = getattr(entry, "side", "")
        if instrument.sided and not side_column:
            raise _fail(
                path,
                f"{where}.side",
                "is missing: name the subjects column that holds the side of the "
                'paralysis (left/right), e.g. side = "side".',
            )
        sources.append(
            InstrumentSource(
                key,
                entry.column,
                raters,
                version or instrument.default_version,
                side_column,
                measure,
            )
        )
    return tuple(sources)


def _analysis_plan(
    path: Path,
    table: schema.AnalysisTable,
    sources: tuple[InstrumentSource, ...],
    subject_columns: tuple[str, ...],
    free_text: tuple[tuple[str, str], ...] = (),
    visit_labels: tuple[tuple[str, str], ...] = (),
    levels: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (),
    days: bool = True,
) -> AnalysisPlan:
    """The analysis plan of a validated ``[analysis]`` table, checked against the rest of the
    spec (``days``: whether the visits have days relative to surgery)."""
    mapped = {s.instrument: s for s in sources}

    def mapped_score(where: str, instrument: str, score: str) -> None:
        if instrument not in mapped:
            raise _fail(
                path,
                f"{where}.instrument",
                f"names {instrument!r}, which has no [instruments.{instrument}] mapping.",
            )
        known = mapped[instrument].score_names
        if score not in known:
            raise _fail(
                path, f"{where}.score", f"must be one of {', '.join(known)}; got {score!r}."
            )

    outcomes = []
    for i, entry in enumerate(table.outcomes):
        where = f"analysis.outcomes[{i}]"
        mapped_score(where, entry.instrument, entry.score)
        raters = mapped[entry.instrument].raters
        if entry.rater not in raters:
            raise _fail(
                path,
                f"{where}.rater",
                f"must be one of {', '.join(r for r in raters if r)}; got {entry.rater!r}.",
            )
        _outcome_kind(path, where, entry, mapped[entry.instrument])
        categories = tuple((int(code), label.strip()) for code, label in entry.categories.items())
        outcomes.append(
            Outcome(entry.instrument, entry.score, entry.rater, entry.test, entry.kind, categories)
        )
    names = list(dict.fromkeys(o.name for o in outcomes))

    def outcome_name(setting: str, value: str) -> str:
        if value not in names:
            raise _fail(
                path,
                setting,
                f"names {value!r}, which is not a planned outcome; use one of {', '.join(names)}.",
            )
        return value

    if table.primary:
        outcome_name("analysis.primary", table.primary)
    ordinal = tuple(outcome_name("analysis.ordinal", o) for o in table.ordinal)
    for key in table.responders:
        outcome_name(f"analysis.responders.{key}", key)
    _scores_only(path, table, {o.name: o.kind for o in outcomes})

    kept_text = {c for c, _ in free_text}

    def subjects_column(setting: str, column: str) -> None:
        if column not in subject_columns:
            raise _fail(
                path,
                setting,
                f"names {column!r}, which is not in [subjects] columns; "
                "add it there or correct the name.",
            )
        if column in kept_text:
            raise _fail(
                path,
                setting,
                f"names {column!r}, a free-text column, which is never analysed or "
                "reported; declare its levels under [subjects.levels] instead.",
            )

    subgroups = []
    for i, entry in enumerate(table.subgroups):
        where = f"analysis.subgroups[{i}]"
        subjects_column(f"{where}.column", entry.column)
        name = entry.name if entry.name is not None else entry.column
        if not _NAME.match(name) or name == "all":
            raise _fail(
                path, f"{where}.name", "must be lower-case letters, digits and '_' (and not 'all')."
            )
        subgroups.append(_subgroup(path, where, entry, name, dict(levels)))
    if len({g.name for g in subgroups}) < len(subgroups):
        raise _fail(
            path, "analysis.subgroups", "names a subgroup twice; give each entry its own name."
        )
    for c in table.covariates:
        subjects_column("analysis.covariates", c)

    reliability = []
    for i, entry in enumerate(table.reliability):
        where = f"analysis.reliability[{i}]"
        mapped_score(where, entry.instrument, entry.score)
        visits = tuple(entry.visits or ())
        if len(set(visits)) < len(visits) or any(not v.strip() for v in visits):
            raise _fail(
                path, f"{where}.visits", "must list visit codes, each once; or leave it out."
            )
        named = tuple(r for r in mapped[entry.instrument].raters if r)
        raters = tuple(entry.raters) if entry.raters is not None else named
        if any(r not in named for r in raters) or len(set(raters)) < 2:
            raise _fail(
                path,
                f"{where}.raters",
                f"must list at least two of {', '.join(named) or '(none)'}"
                f" (the raters mapped in [instruments.{entry.instrument}]); got {list(raters)}.",
            )
        reliability.append(
            ReliabilityPlan(
                entry.instrument, entry.score, raters, entry.weights, visits, entry.targets
            )
        )

    complications = _complications(path, table.complications, subjects_column, levels)
    power = None
    if table.power is not None:
        chosen = [
            outcome_name(f"analysis.power.outcomes[{i}]", o)
            for i, o in enumerate(table.power.outcomes)
        ]
        for key in table.power.target_dz:
            outcome_name(f"analysis.power.target_dz.{key}", key)
        # Power is planned for scores: a binary or categorical outcome has no dz.
        scored = [o.name for o in outcomes if o.kind == "score"]
        default = [table.primary] if table.primary in scored else scored
        power = PowerPlan(
            tuple(chosen or default), tuple((k, float(v)) for k, v in table.power.target_dz.items())
        )
    predictors = (
        _predictors_plan(path, table, mapped, outcomes, outcome_name, subjects_column, dict(levels))
        if table.predictors is not None
        else None
    )
    time_to_event = []
    for i, entry in enumerate(table.time_to_event):
        where = f"analysis.time_to_event[{i}]"
        for key in ("event", "day", "censor_day", "by"):
            if getattr(entry, key):
                subjects_column(f"{where}.{key}", getattr(entry, key))
        name = entry.name if entry.name is not None else entry.event
        if not _NAME.match(name):
            raise _fail(path, f"{where}.name", "must be lower-case letters, digits and '_'.")
        time_to_event.append(
            TimeToEventPlan(
                name, entry.event, entry.day, entry.censor_day, entry.by, tuple(entry.times)
            )
        )
    if len({t.name for t in time_to_event}) < len(time_to_event):
        raise _fail(
            path,
            "analysis.time_to_event",
            "names an analysis twice; give each entry its own name.",
        )

    imputation = _imputation_plan(path, table, outcomes, outcome_name, subjects_column)
    comparisons = tuple(
        Comparison(
            entry.name,
            # Unlabelled: the named visit as a reader sees it ("12 months"), else the name.
            entry.label
            or (labelled_visit(visit_labels, entry.post.visit) if entry.post.visit else "")
            or readable(entry.name),
            _rules(entry.pre or table.pre, entry.post, visit_labels),
        )
        for entry in table.comparisons
    )
    if len(comparisons) > 1 and any(o.kind != "score" for o in outcomes):
        raise _fail(
            path,
            "analysis.comparisons",
            "lists several comparisons, and a binary or categorical outcome is planned: "
            "their before x after tables are made for one comparison; plan them in a study "
            "of one comparison.",
        )
    primary_comparison = table.primary_comparison or (comparisons[0].name if comparisons else "")
    rules = (
        next(c for c in comparisons if c.name == primary_comparison).fields
        if comparisons
        else dict(zip(RULE_FIELDS, _rules(table.pre, table.post, visit_labels)))
    )
    return AnalysisPlan(
        alpha=float(table.alpha),
        conf_level=float(table.conf_level),
        test=table.test,
        outcomes=tuple(outcomes),
        primary=table.primary,
        multiplicity=table.multiplicity,
        subgroups=tuple(subgroups),
        covariates=tuple(table.covariates),
        ordinal=ordinal,
        responders=tuple((k, float(v)) for k, v in table.responders.items()),
        reliability=tuple(reliability),
        random_slope=table.longitudinal.random_slope,
        item_changes=table.item_changes,
        within_groups=table.within_groups,
        complications=complications,
        power=power,
        predictors=predictors,
        time_to_event=tuple(time_to_event),
        imputation=imputation,
        days=days,
        comparisons=comparisons,
        primary_comparison=primary_comparison,
        multiplicity_scope=table.multiplicity_scope,
        **rules,
        mixed_model=_mixed_model_plan(
            path, table, outcomes, subgroups, outcome_name, subjects_column, dict(levels)
        ),
    )


def _modelled_outcomes(
    path: Path, where: str, listed, table: schema.AnalysisTable, outcome_name
) -> tuple[str, ...]:
    """The outcomes a model of ``where`` is fitted to: those listed, else the primary; refused
    when neither is given."""
    if listed:
        return tuple(outcome_name(f"{where}.outcomes", o) for o in listed)
    if table.primary:
        return (table.primary,)
    raise _fail(
        path,
        f"{where}.outcomes",
        "is empty and [analysis] names no primary outcome; list the outcomes to model, or "
        "set analysis.primary.",
    )


def _mixed_model_plan(
    path: Path,
    table: schema.AnalysisTable,
    outcomes: list[Outcome],
    subgroups: list[Subgroup],
    outcome_name,
    subjects_column,
    levels: dict[str, tuple[tuple[str, str], ...]],
) -> MixedModelPlan | None:
    """``[analysis.longitudinal]`` with ``model = true`` checked against the plan: outcomes
    planned scores (default the primary), the group a subgroup of declared levels, covariates
    numeric subjects columns."""
    entry = table.longitudinal
    if not entry.model:
        return None
    where = "analysis.longitudinal"
    names = _modelled_outcomes(path, where, entry.outcomes, table, outcome_name)
    kinds = {o.name: o.kind for o in outcomes}
    for name in names:
        if kinds.get(name, "score") != "score":
            raise _fail(
                path,
                f"{where}.outcomes",
                f"names {name!r}, a {kinds[name]} outcome; a linear mixed model is for scores. "
                "List score outcomes.",
            )
    column, declared, reference = "", (), ""
    if entry.group:
        by_name = {g.name: g for g in subgroups}
        if entry.group not in by_name:
            raise _fail(
                path,
                f"{where}.group",
                f"names {entry.group!r}, which is not a subgroup; use one of "
                f"{', '.join(by_name) or '(none: declare it under analysis.subgroups)'}.",
            )
        g = by_name[entry.group]
        if g.split == "median":
            raise _fail(
                path,
                f"{where}.group",
                f"names {entry.group!r}, a median split, which is not a factor of the model; "
                "name a subgroup of categories.",
            )
        # Levels not declared: the data's, ordered as every subgroup orders them.
        column, declared = g.column, g.levels
        reference = g.reference or (g.levels[0] if g.levels else "")
    for c in entry.covariates:
        subjects_column(f"{where}.covariates", c)
        if c in levels:
            raise _fail(
                path,
                f"{where}.covariates",
                f"names {c!r}, a column of categories; covariates of the mixed model are "
                "numbers. Compare its levels as the group instead, or remove it.",
            )
    return MixedModelPlan(
        outcomes=names,
        time=entry.time,
        group=entry.group,
        column=column,
        levels=declared,
        reference=reference,
        interaction=entry.interaction and bool(entry.group),
        covariates=tuple(entry.covariates),
        random_slope=entry.random_slope,
        method=entry.method,
        df=entry.df,
    )


def _rules(pre: schema.PreTable, post: schema.PostTable, visit_labels) -> tuple:
    """The values of :data:`RULE_FIELDS` of a validated pre and post rule."""
    fields = {
        "pre_rule": pre.rule,
        "pre_max_day": pre.max_day,
        "pre_min_day": pre.min_day,
        "pre_visit": pre.visit or "",
        "pre_visit_label": labelled_visit(visit_labels, pre.visit) if pre.visit else "",
        "post_rule": post.rule,
        "post_min_day": post.first_day,
        "post_max_day": post.max_day,
        "post_visit": post.visit or "",
        "post_visit_label": labelled_visit(visit_labels, post.visit) if post.visit else "",
        "post_target_day": post.target_day,
    }
    return tuple(fields[f] for f in RULE_FIELDS)


def _imputation_plan(
    path: Path, table: schema.AnalysisTable, outcomes, outcome_name, subjects_column
) -> ImputationPlan | None:
    """``[analysis] imputation`` checked against the plan: a score outcome (the primary one by
    default, else the first planned score) and subjects columns as predictors."""
    entry = table.imputation
    if entry is None:
        return None
    kinds = {o.name: o.kind for o in outcomes}
    if entry.outcome:
        outcome = outcome_name("analysis.imputation.outcome", entry.outcome)
    else:
        scored = [o.name for o in outcomes if o.kind == "score"]
        outcome = table.primary if table.primary in scored else (scored or [""])[0]
    if kinds.get(outcome, "") != "score":
        raise _fail(
            path,
            "analysis.imputation.outcome",
            "must name a planned score outcome (a binary or categorical outcome has no mean "
            "change to impute); name one, or remove imputation.",
        )
    for i, column in enumerate(entry.predictors):
        subjects_column(f"analysis.imputation.predictors[{i}]", column)
    return ImputationPlan(
        outcome,
        entry.m,
        entry.seed,
        tuple(entry.predictors),
        entry.method,
        entry.iterations,
        entry.donors,
    )


def _subgroup(
    path: Path,
    where: str,
    entry: schema.SubgroupTable,
    name: str,
    levels: dict[str, tuple[tuple[str, str], ...]],
) -> Subgroup:
    """A subgroup with its levels in their declared order and its reference level checked
    against them."""
    declared = tuple(code for code, _ in levels.get(entry.column, ()))
    reference = "" if entry.reference is None else str(entry.reference).strip()
    if entry.reference is not None:
        key = f"{where}.reference"
        if entry.split == "median":
            raise _fail(
                path,
                key,
                "applies to a subgroup of categories only; a median split compares the patients "
                "above the median with those at or below it (the reference). Remove reference.",
            )
        if not declared:
            raise _fail(
                path,
                key,
                f"needs the levels of column {entry.column!r} declared under [subjects.levels] "
                "(in the order wanted); declare them, or remove reference.",
            )
        if reference not in declared:
            raise _fail(
                path,
                key,
                f"must be one of the levels declared for {entry.column!r} under "
                f"[subjects.levels]: {', '.join(declared)}.",
            )
    return Subgroup(
        name,
        entry.column,
        entry.split,
        reference=reference,
        levels=declared,
        contrasts=entry.contrasts,
        adjust=entry.adjust,
    )


def _outcome_kind(path: Path, where: str, entry, source: InstrumentSource) -> None:
    """A binary outcome's score takes the values 0 and 1 only, a categorical one's whole numbers
    only (a custom measure declared ``integer = true``, or a registry score that is one
    whole-number item, as the House-Brackmann grade)."""
    if entry.kind == "score":
        return
    instrument = source.measure or REGISTRY[entry.instrument]
    score = instrument.score(entry.score, source.version or None)
    items = {item.name: item for item in instrument.items}
    whole = score.formula in items and items[score.formula].integer
    if entry.kind == "binary" and not (whole and (score.minimum, score.maximum) == (0, 1)):
        raise _fail(
            path,
            f"{where}.kind",
            f'is "binary", which needs a score of 0 (no) and 1 (yes); declare the measure under '
            f"[instruments.{entry.instrument}] with minimum = 0, maximum = 1 and integer = true, "
            'or set kind = "score".',
        )
    outside = [c for c in entry.categories if not score.minimum <= int(c) <= score.maximum]
    if outside:
        raise _fail(
            path,
            f"{where}.categories",
            f"names the code {schema.shown_key(outside[0])}, outside the score's range "
            f"({score.minimum:g} to {score.maximum:g}); correct the code.",
        )
    if entry.kind == "categorical" and not whole:
        raise _fail(
            path,
            f"{where}.kind",
            'is "categorical", which needs whole-number codes; declare the measure under '
            f'[instruments.{entry.instrument}] with integer = true, or set kind = "score".',
        )


def _scores_only(path: Path, table: schema.AnalysisTable, kinds: dict[str, str]) -> None:
    """Responders, power and predictors of outcome model a change score: a binary or
    categorical outcome has none."""
    named = [(f"analysis.responders.{o}", o) for o in table.responders]
    if table.power is not None:
        named += [(f"analysis.power.outcomes[{i}]", o) for i, o in enumerate(table.power.outcomes)]
        named += [(f"analysis.power.target_dz.{o}", o) for o in table.power.target_dz]
    if table.predictors is not None:
        named += [("analysis.predictors.outcomes", o) for o in table.predictors.outcomes]
    for setting, outcome in named:
        if kinds.get(outcome, "score") != "score":
            raise _fail(
                path,
                setting,
                f"names {outcome!r}, a {kinds[outcome]} outcome, which has no change score to "
                "model; its proportions and McNemar or Stuart-Maxwell test are in "
                "paired_categorical.csv. Remove it here.",
            )
    # Predictors model the primary outcome unless the plan lists others.
    primary = table.primary
    if table.predictors is not None and not table.predictors.outcomes and primary in kinds:
        if kinds[primary] != "score":
            raise _fail(
                path,
                "analysis.predictors.outcomes",
                f"is empty, so it models the primary outcome {primary!r}, a {kinds[primary]} "
                "outcome without a change score; list the score outcomes to model.",
            )


def _predictors_plan(
    path: Path,
    table: schema.AnalysisTable,
    mapped: dict[str, InstrumentSource],
    outcomes: list[Outcome],
    outcome_name,
    subjects_column,
    levels: dict[str, tuple[tuple[str, str], ...]],
) -> PredictorsPlan:
    """``[analysis.predictors]`` checked against the plan and the subjects columns: outcomes
    planned (default the primary), predictors read and not free text, reference levels declared,
    and a minimal important change for every outcome when responders are modelled (the plan's
    ``responders``, else the score's published one)."""
    entry = table.predictors
    where = "analysis.predictors"
    names = _modelled_outcomes(path, where, entry.outcomes, table, outcome_name)
    for column in entry.predictors:
        subjects_column(f"{where}.predictors", column)
    categorical = tuple(
        (c, tuple(code for code, _ in levels[c])) for c in entry.predictors if c in levels
    )
    codes = dict(categorical)
    reference = []
    for column, level in entry.reference.items():
        key = f"{where}.reference.{schema.shown_key(column)}"
        if column not in codes:
            raise _fail(
                path,
                key,
                f"names {column!r}, which is not a categorical predictor; give references only "
                "for predictors listed in predictors that have [subjects.levels].",
            )
        if str(level).strip() not in codes[column]:
            raise _fail(path, key, f"must be one of {', '.join(codes[column])}.")
        reference.append((column, str(level).strip()))
    # A predictor that is also a subgroup is compared with the subgroup's reference (Table 3's),
    # unless the predictors name their own; else with its first declared level (regression.py).
    for subgroup in table.subgroups:
        column = subgroup.column
        if (
            column in codes
            and not subgroup.split
            and subgroup.reference is not None
            and column not in dict(reference)
        ):
            reference.append((column, str(subgroup.reference).strip()))
    thresholds = []
    if entry.responders:
        planned = dict(table.responders)
        for outcome in (o for o in outcomes if o.name in names):
            name, score = outcome.name, outcome.score
            source = mapped[outcome.instrument]
            instrument = source.measure or REGISTRY[outcome.instrument]
            published = instrument.score(score, source.version or None).minimal_change
            if name in planned:
                thresholds.append((name, score, float(planned[name]), "analysis.responders"))
            elif published is not None and published.mic_improvement is not None:
                mic = float(published.mic_improvement)
                thresholds.append((name, score, mic, published.source))
            else:
                raise _fail(
                    path,
                    f"{where}.responders",
                    f"needs a minimal important change for {name!r}, which has no published "
                    "one; give it under analysis.responders, or set responders = false.",
                )
    return PredictorsPlan(
        outcomes=names,
        predictors=tuple(entry.predictors),
        categorical=categorical,
        reference=tuple(reference),
        model=entry.model,
        univariable=entry.univariable,
        thresholds=tuple(thresholds),
    )


def _complications(path: Path, entries, subjects_column, levels) -> tuple[Complication, ...]:
    """``[[analysis.complications]]``: each event a subjects column of levels 0 and 1, its
    resolved column likewise, its duration a subjects column (days)."""
    declared = dict(levels)
    out = []
    for i, entry in enumerate(entries):
        where = f"analysis.complications[{i}]"
        for key in ("column", "duration", "resolved"):
            column = getattr(entry, key)
            if not column:
                continue
            subjects_column(f"{where}.{key}", column)
            codes = {code for code, _ in declared.get(column, ())}
            if key != "duration" and codes != {"0", "1"}:
                raise _fail(
                    path,
                    f"{where}.{key}",
                    f"names {column!r}, which needs levels 0 and 1 (1: "
                    + ("the patient had the event" if key == "column" else "it resolved")
                    + f"); declare them under [subjects.levels], e.g. {column} = "
                    '{ 0 = "No", 1 = "Yes" }.',
                )
        out.append(Complication(entry.column, entry.duration, entry.resolved))
    if len({c.column for c in out}) < len(out):
        raise _fail(
            path, "analysis.complications", "names an event column twice; declare each once."
        )
    return tuple(out)


def discover_studies(raw_dir: Path) -> list[Path]:
    """Every study folder under ``raw_dir`` (a folder holding a ``study.toml``), sorted."""
    return sorted(p.parent for p in Path(raw_dir).glob(f"*/{SPEC_FILENAME}"))


def with_overrides(study: Study, overrides: dict[str, Any]) -> Study:
    """``study`` with some analysis-plan choices replaced
    (:class:`~pipeline.spec.schema.AnalysisOverrides`),
    each checked as the spec setting it replaces, together with the rest of ``[analysis]``.

    Changing the post rule drops the old rule's own settings (``visit``, ``target_day``) unless
    the overrides give them too."""
    if not overrides:
        return study
    where = f"run configuration of study '{study.name}'"
    unknown = [key for key in overrides if key not in OVERRIDABLE]
    if unknown:
        raise SpecError(
            # repr: a key with a line break or quote stays one line.
            f"{where}: {unknown[0]!r} cannot be overridden"
            f"{schema.nearest(unknown[0], list(OVERRIDABLE))}"
        )
    posts = [key for key in overrides if key.startswith("post_")]
    if posts and study.analysis.comparisons:
        raise SpecError(
            f"{where}: '{posts[0]}' cannot be overridden in a study with "
            "[[analysis.comparisons]], where each comparison has its own post rule; change the "
            "comparison in the spec instead."
        )
    given = _validated_override(schema.AnalysisOverrides, overrides, where)
    analysis = study.analysis_spec.model_dump(exclude_unset=True)
    changes = given.model_dump(exclude_unset=True)
    if "post_rule" in changes:
        post = analysis.setdefault("post", {})
        for key, own in (("visit", "post_visit"), ("target_day", "post_target_day")):
            if own not in changes:
                post.pop(key, None)
    for key, value in changes.items():
        table, setting = schema.OVERRIDE_SETTINGS[key]
        (analysis.setdefault(table, {}) if table else analysis)[setting] = value
    checked = _validated_override(schema.AnalysisTable, analysis, where)
    from dataclasses import replace

    plan = _analysis_plan(
        study.spec_path,
        checked,
        study.instruments,
        study.subject_columns,
        study.free_text,
        study.visit_labels,
        study.subject_levels,
        study.analysis.days,
    )
    if not study.analysis.days:
        problem = _rule_needing_days(checked, study.visit_windows)
        if problem:
            raise SpecError(
                f"{where}: {problem} needs days relative to surgery, and [visits] names no day "
                "column; pair by visit code (named_visit) instead."
            )
    return replace(study, analysis=plan, analysis_spec=checked)


def _validated_override(model, data: dict, where: str):
    """``data`` validated as ``model``; a failure raised as a :class:`SpecError` in the
    overrides' names."""
    try:
        return model.model_validate(data)
    except schema.ValidationError as err:
        raise SpecError(f"{where}: {_override_message(schema.describe(err, model))}") from None


def _override_message(text: str) -> str:
    """A spec message about an ``[analysis]`` setting, in the overrides' names:
    ``setting 'post.visit' is missing`` -> ``'post_visit' is missing``."""
    for key, (table, setting) in schema.OVERRIDE_SETTINGS.items():
        text = text.replace(f"setting '{f'{table}.' if table else ''}{setting}'", f"'{key}'")
    return text.removeprefix("setting ").replace(
        "Add it to the spec.", "Set it in the run configuration too."
    )


def item_columns(study: Study) -> pd.DataFrame:
    """The spec's mapping from visits-file columns to instrument items, with allowed ranges."""
    rows = []
    for source in study.instruments:
        for rater in source.raters:
            for item in study.instrument(source.instrument).items:
                rows.append(
                    {
                        "column": source.column_for(item.name, rater),
                        "instrument": source.instrument,
                        "rater": rater,
                        "item": item.name,
                        "minimum": float(item.minimum),
                        "maximum": float(item.maximum),
                        "integer": item.integer,
                    }
                )
    mapping = pd.DataFrame(rows)
    clash = mapping[mapping["column"].duplicated(keep=False)]
    if not clash.empty:
        raise SpecError(
            f"{study.spec_path}: column {clash['column'].iloc[0]!r} is mapped to more than one "
            "item. "
            "Give each instrument its own column template."
        )
    return mapping
