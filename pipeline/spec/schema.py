"""The schema of a study spec (``study.toml``) and of a run's analysis overrides.

One pydantic model per table of the spec; every table refuses a key it does not
know, naming the nearest valid key, so a misspelt ``multiplicty = "bh"`` cannot
silently leave the default in force. Choices are ``Literal`` types defined once
here and used by the spec, the run overrides (``AnalysisOverrides``) and the
Dagster launchpad (``assets.resources.AnalysisOptions``).

The models check what a setting is on its own (its type, its allowed values,
its range, the settings of its own table that go together). Whatever needs the
rest of the spec (an outcome naming a mapped instrument, a subgroup naming a
subjects column) is checked by :func:`pipeline.spec.study.load_study`, which turns
both kinds of problem into one :class:`SpecError` line naming the setting.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.statistics.multiplicity import METHODS

# --- choices ---------------------------------------------------------------------------------
# How a raw file is read (pipeline.ingest.readers).
FORMATS = ("auto", "csv", "xlsx", "redcap")  # a REDCap records export is CSV
# "windows-1252" is the same encoding as "cp1252", under the name Excel and browsers use.
ENCODINGS = ("auto", "utf-8", "cp1252", "windows-1252", "latin-1")
DECIMALS = (".", ",")
#: "auto": paired t when Shapiro-Wilk does not reject normal differences, else Wilcoxon
#: (pipeline.statistics.paired.choose_test).
Test = Literal["wilcoxon", "t", "auto"]
#: "named_visit": the visit with the code ``pre.visit`` (needs no days relative to surgery).
PreRule = Literal["latest_preoperative", "named_visit"]
PostRule = Literal["last_followup", "named_visit", "nearest_day"]
Multiplicity = Literal[tuple(METHODS)]
SubgroupSplit = Literal["", "median"]
#: Contrasts between a subgroup's levels: each level against the reference, or every pair.
Contrasts = Literal["reference", "all_pairs"]
KappaWeights = Literal["linear", "quadratic"]
#: Rater agreement at several visits: each visit on its own ("per_visit"), or every patient visit
#: one target ("subject_visit": the visits of one patient treated as independent).
ReliabilityTargets = Literal["per_visit", "subject_visit"]
Better = Literal["higher", "lower"]
#: What an outcome's values are: a score (averaged, t / Wilcoxon), yes/no coded 0/1 (McNemar), or
#: whole-number categories (Stuart-Maxwell, Bowker): pipeline.statistics.binary.
OutcomeKind = Literal["score", "binary", "categorical"]
#: Predictors of outcome: a linear model of the change, or of the after value adjusted for the
#: before value (pipeline.statistics.regression.predictors_of_outcome).
RegressionModel = Literal["change", "post_adjusted"]
# The mixed model's time: visits as a factor, or continuous days or months since surgery.
MixedTime = Literal["visits", "days", "months"]
MixedMethod = Literal["reml", "ml"]
MixedDf = Literal["satterthwaite", "wald_z"]
ImputationMethod = Literal["mice"]
FileFormat = Literal[FORMATS]
Encoding = Literal[ENCODINGS]
Decimal = Literal[DECIMALS]
Layout = Literal["wide", "long"]
#: How a delimiter is written in the spec -> the character.
DELIMITER_NAMES = {"auto": "auto", ",": ",", ";": ";", "tab": "\t", "\t": "\t"}
Delimiter = Literal[tuple(DELIMITER_NAMES)]


def _says_why(needs: str, why: str) -> AfterValidator:
    """A written reason of at least three words, which the run's provenance records: an
    exception to a rule has to say why it is safe."""

    def check(text: str) -> str:
        if len(text.split()) < 3:
            raise ValueError(
                f"needs {needs} of a few words: {why} (it is recorded in the run's provenance)."
            )
        return text

    return AfterValidator(check)


FreeTextReason = Annotated[str, _says_why("a reason", "why this free text is kept")]
AllowJustification = Annotated[
    str, _says_why("a written justification", "why this column cannot identify anyone")
]


@dataclass(frozen=True)
class ReadOptions:
    """How to read one raw file (the settings of :class:`ReadSettings`, the delimiter as its
    character); ``auto`` settings are detected from the file."""

    format: str = "auto"
    encoding: str = "auto"
    delimiter: str = "auto"
    decimal: str = "."
    sheet: str = ""


TESTS: tuple[str, ...] = get_args(Test)
POST_RULES: tuple[str, ...] = get_args(PostRule)
MULTIPLICITY: tuple[str, ...] = get_args(Multiplicity)

#: A subgroup level with fewer patients than this is pooled or suppressed in every output.
MIN_CELL = 5


class SpecError(ValueError):
    """A study spec that cannot be used; the message says where and how to fix it."""


class _Table(BaseModel):
    """A table of the spec: known keys only, values of their own type (no coercion: ``alpha =
    "0.05"`` and ``min_pairs = true`` are refused, not converted)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ReadSettings(_Table):
    """How one file is read (``[subjects]`` and ``[visits]``)."""

    format: FileFormat = "auto"
    encoding: Encoding = "auto"
    delimiter: Delimiter = "auto"
    decimal: Decimal = "."
    sheet: str = ""

    @model_validator(mode="after")
    def _sheet_for_workbooks(self):
        if self.sheet and self.format not in ("auto", "xlsx"):
            raise _problem(
                "sheet", 'applies to Excel workbooks only; remove it or set format = "xlsx".'
            )
        return self


StudyKind = Literal["single", "pooled"]


class StudyTable(_Table):
    name: str
    title: str = ""
    synthetic: bool = False
    # Restricted data: the warehouse and this study's reports are readable by their owner only.
    restricted: bool = False
    # The spec may name files outside the study folder (or links leading out of it) only when
    # this says so: a spec copied from elsewhere must not read /etc/passwd into a warehouse.
    read_outside_folder: bool = False
    # "pooled": a multi-centre study pooled from site summary bundles ([pooled], PooledSpecFile).
    kind: StudyKind = "single"


class SubjectsTable(ReadSettings):
    file: str
    id: str
    columns: list[str] = []
    # Categorical columns: the values allowed (as the export writes them) and their labels,
    # as a list (each value its own label) or a table value -> label.
    levels: dict[str, list[str | int] | dict[str, str]] = {}
    # Columns of free text kept in the warehouse (never in a report), each with the reason.
    free_text: dict[str, FreeTextReason] = {}
    # What a reader sees for a column (Table 1, Table 3, figures, Methods), and its unit
    # (Table 1 writes "Age, y"); a column without a label is shown by its name made readable.
    labels: dict[str, str] = {}
    units: dict[str, str] = {}

    @field_validator("labels", "units")
    @classmethod
    def _words_given(cls, words, info):
        for column, text in words.items():
            if not text.strip():
                raise ValueError(
                    f"{info.field_name}.{column}: is blank; write the "
                    f"{'label' if info.field_name == 'labels' else 'unit'} a reader sees, or "
                    "remove the entry."
                )
        return words

    @field_validator("levels")
    @classmethod
    def _levels_given(cls, levels):
        for column, values in levels.items():
            codes = list(values)
            if not codes:
                raise ValueError(f"levels.{column}: must list at least one level.")
            if any(not str(c).strip() for c in codes):
                raise ValueError(
                    f"levels.{column}: has a blank level; a blank cell is a missing value, "
                    "not a level."
                )
            if len({str(c).strip() for c in codes}) < len(codes):
                raise ValueError(f"levels.{column}: lists a level twice.")
            if isinstance(values, dict) and any(not label.strip() for label in values.values()):
                raise ValueError(
                    f"levels.{column}: gives a level a blank label; write the label a reader "
                    "sees, or list the levels (each its own label)."
                )
        return levels


#: How a derived visit combines its visits' values, and which must have one (only "all": a value
#: missing at any of them leaves the derived value missing, never a partial sum).
DerivedCombine = Literal["sum", "mean"]
DerivedRequire = Literal["all"]
#: The day a derived visit is given: its first or last visit's, or a nominal day.
DerivedDay = Literal["first", "last"]


class DerivedVisit(_Table):
    """A visit computed from others ([visits.derived]): each score the sum or mean of its
    values at ``visits``, e.g. seizures counted over four periods as one post value."""

    visits: list[str]
    combine: DerivedCombine
    require: DerivedRequire = "all"
    day: DerivedDay | int = "last"

    @field_validator("visits")
    @classmethod
    def _visits(cls, visits):
        if len(visits) < 2 or len(set(visits)) < len(visits) or any(not v.strip() for v in visits):
            raise ValueError("visits: must list two or more visit codes, each once.")
        return visits


class VisitsTable(ReadSettings):
    file: str
    subject: str
    visit: str | None = None
    day: str | None = None
    layout: Layout = "wide"
    item: str = "item"
    value: str = "value"
    # visit window name -> [first day, last day]: a visit outside every window is quarantined.
    windows: dict[str, list[int]] = {}
    # What a reader sees for a visit code (the eTable of visit means, Methods): pre = "Before
    # surgery", m12 = "12 months"; a visit without a label is shown as "Visit <code>", and a
    # last follow-up code ("last", "final") as "Last follow-up".
    labels: dict[str, str] = {}
    # Visits computed from others, by the code the pairing rules name them with (named_visit):
    # post_total = { visits = ["v1", "v2", "v3", "v4"], combine = "sum", require = "all" }.
    derived: dict[str, DerivedVisit] = {}

    @field_validator("labels")
    @classmethod
    def _labels_given(cls, labels):
        for visit, text in labels.items():
            if not str(visit).strip():
                raise ValueError("labels: has a blank visit code; write the code the export uses.")
            if not text.strip():
                raise ValueError(
                    f"labels.{visit}: is blank; write the label a reader sees, or remove the entry."
                )
        return labels

    @field_validator("windows")
    @classmethod
    def _windows(cls, windows):
        for name, bounds in windows.items():
            if len(bounds) != 2 or bounds[0] > bounds[1]:
                raise ValueError(
                    f"windows.{name}: must be [first_day, last_day] in whole days, got {bounds!r}."
                )
        return windows


class RedcapEvent(_Table):
    visit: str
    day: int | None = None


class RedcapTable(_Table):
    dictionary: str
    subjects_event: str = ""
    repeat_instrument: str = ""
    # event name -> visit code, or {visit, day}
    events: dict[str, str | RedcapEvent] = {}


class IdentifiersTable(_Table):
    # column -> written justification: columns the de-identification guard lets through.
    allow: dict[str, AllowJustification] = {}
    min_cell: int = Field(MIN_CELL, ge=1)


class RegistryInstrumentTable(_Table):
    """An instrument of the registry (``pipeline.instruments``) mapped to columns."""

    column: str
    raters: list[str] = [""]
    version: str | None = None
    side: str = ""


class CustomMeasureTable(_Table):
    """A measure the study declares itself (label, range, unit, better direction)."""

    column: str
    raters: list[str] = [""]
    label: str
    minimum: float
    maximum: float
    better: Better
    unit: str = ""
    integer: bool = False

    @model_validator(mode="after")
    def _range(self):
        if not self.minimum < self.maximum:
            raise _problem(
                "maximum", f"must be greater than minimum ({self.minimum:g}), got {self.maximum:g}."
            )
        return self


CUSTOM_KEYS = ("label", "minimum", "maximum", "better")


class ChecksTable(_Table):
    """Thresholds of the data-quality checks that stop a study's run."""

    # Every planned test needs at least this many pairs (whole cohort).
    min_pairs: int = Field(3, ge=1)
    # For every outcome, at least this share of subjects must have both a pre and a post value.
    min_paired_share: float = Field(0.5, ge=0, le=1)


class PreTable(_Table):
    rule: PreRule = "latest_preoperative"
    max_day: int = 0
    min_day: int | None = None
    # rule "named_visit": the visit code of the assessment before surgery.
    visit: str | None = None

    @model_validator(mode="after")
    def _named_visit(self):
        if self.rule == "named_visit" and self.visit is None:
            raise _problem("visit", "is missing. Add it to the spec.", kind="missing")
        if self.rule != "named_visit" and self.visit is not None:
            raise _problem(
                "visit", 'is only used with rule = "named_visit"; remove it or change the rule.'
            )
        return self

    @model_validator(mode="after")
    def _window(self):
        if self.min_day is not None and self.min_day > self.max_day:
            raise _problem(
                "min_day", f"must not exceed max_day ({self.max_day}), got {self.min_day}."
            )
        return self


class PostTable(_Table):
    rule: PostRule = "last_followup"
    # Named visits and nearest-day accept any post-operative day by default; last follow-up
    # counts from day 90.
    min_day: int | None = None
    max_day: int | None = None
    visit: str | None = None
    target_day: int | None = None

    @property
    def first_day(self) -> int:
        return (
            self.min_day
            if self.min_day is not None
            else (90 if self.rule == "last_followup" else 1)
        )

    @model_validator(mode="after")
    def _rule_settings(self):
        if self.rule == "named_visit" and self.visit is None:
            raise _problem("visit", "is missing. Add it to the spec.", kind="missing")
        if self.rule != "named_visit" and self.visit is not None:
            raise _problem(
                "visit", 'is only used with rule = "named_visit"; remove it or change the rule.'
            )
        if self.rule == "nearest_day" and self.target_day is None:
            raise _problem("target_day", "is missing. Add it to the spec.", kind="missing")
        if self.rule != "nearest_day" and self.target_day is not None:
            raise _problem(
                "target_day",
                'is only used with rule = "nearest_day"; remove it or change the rule.',
            )
        low, high = self.first_day, self.max_day
        if high is not None and high < low:
            raise _problem("max_day", f"must be at least min_day ({low}), got {high}.")
        if self.target_day is not None and not (
            low <= self.target_day <= (high if high is not None else self.target_day)
        ):
            window = f"day ≥ {low}" if high is None else f"{low} ≤ day ≤ {high}"
            raise _problem(
                "target_day", f"must lie in the post window ({window}), got {self.target_day}."
            )
        return self


#: Which P values one multiplicity family holds when the plan has several comparisons: the
#: secondary outcomes within each comparison (the rule of a study with one), or every secondary
#: outcome of every comparison together (docs/statistics.md, "Several comparisons").
MultiplicityScope = Literal["per_comparison", "study"]


class ComparisonTable(_Table):
    """One named comparison (``[[analysis.comparisons]]``): a pre rule and a post rule. Its
    ``pre`` defaults to ``[analysis].pre``; ``label`` is what a reader sees ("12 months")."""

    name: str
    label: str = ""
    pre: PreTable | None = None
    post: PostTable

    @field_validator("name")
    @classmethod
    def _name(cls, name):
        if not re.match(r"^[a-z][a-z0-9_]*$", name):
            raise ValueError("must be lower-case letters, digits and '_', starting with a letter.")
        return name


class OutcomeTable(_Table):
    instrument: str
    score: str
    rater: str = ""
    test: Test | Literal[""] = ""
    # "binary" (0 = no, 1 = yes) and "categorical" outcomes are tested on their before x after
    # table (McNemar; Stuart-Maxwell and Bowker), never averaged.
    kind: OutcomeKind = "score"
    # A categorical outcome's codes as a reader sees them: { 1 = "Absent", 2 = "Partial" }.
    categories: dict[str, str] = {}

    @model_validator(mode="after")
    def _categories_named(self):
        if self.categories and self.kind == "score":
            raise _problem(
                "categories",
                'applies to kind = "binary" or "categorical" only; remove it or set the kind.',
            )
        for code, label in self.categories.items():
            if not code.strip().lstrip("-").isdigit():
                raise _problem(
                    "categories",
                    f'must name whole-number codes (1 = "Absent"); got the key '
                    f"{shown_key(code)!r}.",
                )
            if not label.strip():
                raise _problem(f"categories.{code}", "is blank; write the label a reader sees.")
        return self

    @model_validator(mode="after")
    def _test_of_a_score(self):
        if self.kind != "score" and self.test:
            raise _problem(
                "test",
                f"applies to scores only; a {self.kind} outcome is tested on its before x after "
                "table (binary: exact McNemar; categorical: Stuart-Maxwell). Remove it.",
            )
        return self


class SubgroupTable(_Table):
    column: str
    name: str | None = None
    split: SubgroupSplit = ""
    # The level every other is compared with ("level minus reference"): a code of the column's
    # [subjects.levels]; default the first level declared there.
    reference: str | int | None = None
    # Contrasts between the levels: each against the reference, or every pair of levels.
    contrasts: Contrasts = "reference"
    # How the contrasts' P values are adjusted, over the subgroup's contrasts of each test.
    adjust: Multiplicity = "holm"


class ReliabilityTable(_Table):
    instrument: str
    score: str
    raters: list[str] | None = None
    weights: KappaWeights = "quadratic"
    # The visits that enter (codes), in this order; default every visit the raters graded.
    visits: list[str] | None = None
    targets: ReliabilityTargets = "per_visit"


class LongitudinalTable(_Table):
    """``[analysis.longitudinal]``: the mixed model of every observed visit. The visit means
    (``random_slope`` only) are always estimated; ``model = true`` adds the model as lme4 users
    write it (``value ~ time * group + covariates + (1 [+ time] | subject)``), with its fixed
    effects, variance components and likelihood-ratio tests."""

    # A random slope on time (years since surgery when time is visits), with the intercept.
    random_slope: bool = False
    # Fit and report the model below (an eTable, mixed_model_*.csv).
    model: bool = False
    # Outcomes modelled ([]: the primary outcome).
    outcomes: list[str] = []
    time: MixedTime = "visits"
    # A subgroup's name ([[analysis.subgroups]], levels declared): its reference level and
    # declared order; "" for none.
    group: str = ""
    # The group x time interaction (a group only).
    interaction: bool = True
    # Numeric subjects columns.
    covariates: list[str] = []
    method: MixedMethod = "reml"
    # Satterthwaite's df with t (lmerTest's default), or Wald z without df (lme4's).
    df: MixedDf = "satterthwaite"

    @field_validator("outcomes", "covariates")
    @classmethod
    def _listed_once(cls, names, info):
        if len(set(names)) < len(names):
            raise ValueError(f"lists a {info.field_name[:-1]} twice; list each once.")
        return names

    @model_validator(mode="after")
    def _model_settings(self):
        set_keys = self.model_fields_set - {"random_slope", "model"}
        if set_keys and not self.model:
            raise _problem(
                sorted(set_keys)[0],
                "describes the mixed model, which is fitted with model = true; add it or "
                "remove this setting.",
            )
        if "interaction" in self.model_fields_set and not self.group:
            raise _problem("interaction", "needs a group (the subgroup crossed with time).")
        return self


def _all_positive(values: dict[str, float], key: str, what: str) -> dict[str, float]:
    """``values`` when every one is above 0; else the first other named as ``key.<name>``."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{key}.{name}: must be a positive {what}, got {value:g}.")
    return values


class ComplicationTable(_Table):
    """A complication or adverse event (``[[analysis.complications]]``): a subjects column of
    0 / 1 (1: the patient had it), optionally the columns of its duration in days and of
    whether it resolved (0 / 1)."""

    column: str
    duration: str = ""
    resolved: str = ""


class PowerTable(_Table):
    """Power and sample size for the next study (``[analysis.power]``): the pairs a paired t
    test needs for 80% and 90% power, from the observed effect of each outcome named and from
    a target effect the spec gives."""

    # The outcomes to plan for; empty: the primary outcome (every outcome when none is primary).
    outcomes: list[str] = []
    # outcome name -> target standardised mean change dz (mean change / SD of the changes).
    target_dz: dict[str, float] = {}

    @field_validator("target_dz")
    @classmethod
    def _positive_effect(cls, targets):
        return _all_positive(targets, "target_dz", "effect (mean change / SD of the changes)")


class PredictorsTable(_Table):
    """``[analysis.predictors]``: regression of outcome on baseline characteristics."""

    # Planned outcomes modelled ([] : the primary outcome).
    outcomes: list[str] = []
    # Subjects columns; one with [subjects.levels] is categorical, any other a number.
    predictors: list[str] = Field(min_length=1)
    # Categorical predictor -> its reference level (default: the level with the most patients).
    reference: dict[str, str | int] = {}
    model: RegressionModel = "change"
    # Each predictor alone too, beside the multivariable model.
    univariable: bool = False
    # Logistic regression of responder status (change reaching the minimal important change).
    responders: bool = False

    @field_validator("outcomes", "predictors")
    @classmethod
    def _once(cls, names, info):
        if len(set(names)) < len(names):
            raise ValueError(f"lists a {info.field_name[:-1]} twice; list each once.")
        return names


class TimeToEventTable(_Table):
    """Time from surgery to an event (``[[analysis.time_to_event]]``): Kaplan-Meier, median and
    event-free proportions, log-rank test between the levels of ``by``."""

    # The analysis's name in tables and files (default: the event column).
    name: str | None = None
    # Subjects column: 1 = the event happened, 0 = it did not.
    event: str
    # Subjects column: the event's day relative to surgery (day 0).
    day: str
    # Subjects column: the day a patient without the event is censored; "" = the patient's last
    # visit day in the visits file (the last follow-up).
    censor_day: str = ""
    # Subjects column whose levels the log-rank test compares ("" = whole cohort only).
    by: str = ""
    # Days after surgery at which the event-free proportion and the numbers at risk are given.
    times: list[int] = [365, 730]

    @field_validator("times")
    @classmethod
    def _days_after_surgery(cls, times):
        if not times:
            raise ValueError("must list at least one day, e.g. [365, 730].")
        if any(t <= 0 for t in times) or list(times) != sorted(set(times)):
            raise ValueError(
                "must be days after surgery (positive whole numbers) in increasing order, each "
                f"once; got {times!r}."
            )
        return times

    @model_validator(mode="after")
    def _own_columns(self):
        if self.day == self.event:
            raise _problem("day", "must name the column of event days, not the event column.")
        if self.censor_day and self.censor_day in (self.event, self.day):
            raise _problem(
                "censor_day",
                'must name a column of censoring days of its own, or be "" for the last visit.',
            )
        return self


class ImputationTable(_Table):
    """``[analysis] imputation``: the primary outcome's missing pre or post values by multiple
    imputation (chained equations, predictive mean matching), pooled by Rubin's rules beside
    the complete-case result: a sensitivity analysis."""

    method: ImputationMethod = "mice"
    # Imputed data sets.
    m: int = Field(20, ge=2, le=1000)
    # Seeds the imputations: the same data and seed give the same values.
    seed: int = Field(ge=0)
    # Subjects columns of numbers that predict the missing values, beside the other visit's.
    predictors: list[str] = []
    # The planned outcome imputed ("" : the primary outcome, else the first planned).
    outcome: str = ""
    # Cycles of the chained equations per imputed data set (R mice's maxit).
    iterations: int = Field(10, ge=1, le=1000)
    # Patients whose predicted values are nearest, one of whose values is drawn (R mice's donors).
    donors: int = Field(5, ge=1, le=100)

    @field_validator("predictors")
    @classmethod
    def _once(cls, names):
        if len(set(names)) < len(names):
            raise ValueError("lists a predictor twice; list each once.")
        return names


class AnalysisTable(_Table):
    alpha: float = 0.05
    conf_level: float = 0.95
    test: Test = "wilcoxon"
    pre: PreTable = PreTable()
    post: PostTable = PostTable()
    outcomes: list[OutcomeTable] = Field(min_length=1)
    primary: str = ""
    multiplicity: Multiplicity = "holm"
    ordinal: list[str] = []
    # outcome name -> minimal important change in the better direction
    responders: dict[str, float] = {}
    covariates: list[str] = []
    subgroups: list[SubgroupTable] = []
    reliability: list[ReliabilityTable] = []
    longitudinal: LongitudinalTable = LongitudinalTable()
    # Each instrument's items before and after, on its total's pairs (an eTable per instrument).
    item_changes: bool = True
    # Before vs after correlations and the sign test within the cohort and each subgroup level
    # (correlations_by_group, sign_tests_by_group); off unless asked for: one pass over a
    # registry's pairs, still about 16 s of CPU at 100,000 patients (scipy per group and outcome).
    within_groups: bool = False
    # Complications and adverse events: n (%) with exact CI, duration, resolution.
    complications: list[ComplicationTable] = []
    # Pairs needed for the next study (absent: no power table).
    power: PowerTable | None = None
    predictors: PredictorsTable | None = None
    # Time from surgery to an event ([[analysis.time_to_event]]); none by default.
    time_to_event: list[TimeToEventTable] = []
    # Several named comparisons (follow-up windows, pre rules); none: the one of pre and post.
    comparisons: list[ComparisonTable] = []
    # The comparison that carries the primary outcome ("": the first).
    primary_comparison: str = ""
    multiplicity_scope: MultiplicityScope = "per_comparison"
    # Multiple imputation of the primary outcome (absent: none).
    imputation: ImputationTable | None = None

    @field_validator("alpha", "conf_level")
    @classmethod
    def _open_unit(cls, value):
        if not 0 < value < 1:
            raise ValueError(f"must lie strictly between 0 and 1, got {value}.")
        return value

    @field_validator("responders")
    @classmethod
    def _positive(cls, responders):
        return _all_positive(responders, "responders", "minimal important change")

    @model_validator(mode="after")
    def _pre_before_post(self):
        if self.comparisons:
            return self._comparisons()
        _pre_before_post(self.pre, self.post, "")
        return self

    def _comparisons(self):
        """Each comparison's rules checked as ``pre`` and ``post`` are; names unique; the
        primary comparison one of them."""
        if "post" in self.model_fields_set:
            raise _problem(
                "post",
                "is used only without [[analysis.comparisons]]: move it into a comparison "
                "(each comparison has its own post rule).",
            )
        names = []
        for i, entry in enumerate(self.comparisons):
            where = f"comparisons.{i}"
            if entry.name in names:
                raise _problem(
                    f"{where}.name",
                    "names a comparison twice; give each comparison its own name.",
                )
            names.append(entry.name)
            _pre_before_post(entry.pre or self.pre, entry.post, f"{where}.")
        if self.primary_comparison and self.primary_comparison not in names:
            raise _problem(
                "primary_comparison",
                f"names {self.primary_comparison!r}, which is not a comparison; use one of "
                f"{', '.join(names)}.",
            )
        return self


def _pre_before_post(pre: PreTable, post: PostTable, where: str) -> None:
    """No visit can be both pre and post: the named visits differ, the windows do not overlap.
    ``where`` prefixes the keys a message names ("comparisons.1.")."""
    if pre.visit is not None and pre.visit == post.visit:
        raise _problem(
            f"{where}post.visit",
            f"must differ from pre.visit ({pre.visit!r}) so one visit cannot be both pre and post.",
        )
    if post.first_day <= pre.max_day:
        raise _problem(
            f"{where}post.min_day",
            f"must be after pre.max_day ({pre.max_day}) so one visit "
            f"cannot be both pre and post; got {post.first_day}.",
        )


class TablesTable(_Table):
    """How the publication tables are laid out (``[tables]``)."""

    # A categorical subjects column whose levels become Table 1's columns beside Overall, with
    # P values comparing them; "" (the default, a single-arm cohort): the Overall column alone.
    table_1_by: str = ""


#: Picture formats of a figure and the column widths it is drawn at
#: (pipeline.render.figure_files: single 3.5 in, double 7 in).
FigureFormat = Literal["png", "tiff", "pdf", "svg"]
FigureWidth = Literal["single", "double"]


class FiguresTable(_Table):
    """Which figure files a run writes (``[figures]``); ``outcomes export-figures`` writes any
    other format or width from the warehouse on demand."""

    # PNG is written whatever this says: the report embeds it. Add "tiff", "pdf", "svg" for the
    # journal files in every run (each format adds to the figures step's time).
    formats: list[FigureFormat] = ["png"]
    # Each figure is drawn at the widest width it is made for (the one the report shows) and at
    # these; "single" adds the single-column files.
    widths: list[FigureWidth] = ["double"]


class SpecFile(_Table):
    """A whole ``study.toml``."""

    study: StudyTable
    subjects: SubjectsTable
    visits: VisitsTable
    # name -> table; checked against the registry by load_study (registry or custom measure)
    instruments: dict[str, dict[str, Any]] = Field(min_length=1)
    analysis: AnalysisTable
    checks: ChecksTable = ChecksTable()
    redcap: RedcapTable | None = None
    identifiers: IdentifiersTable = IdentifiersTable()
    tables: TablesTable = TablesTable()
    figures: FiguresTable = FiguresTable()


class AnalysisOverrides(_Table):
    """Analysis choices a statistician may change for one run without editing the spec (Dagster
    run configuration, resource ``analysis_options``). Each is the spec setting named beside it
    (:data:`OVERRIDE_SETTINGS`) and is checked as that setting is."""

    alpha: float | None = None
    conf_level: float | None = None
    test: Test | None = None
    multiplicity: Multiplicity | None = None
    pre_max_day: int | None = None
    post_rule: PostRule | None = None
    post_min_day: int | None = None
    post_max_day: int | None = None
    post_visit: str | None = None
    post_target_day: int | None = None


#: override -> (table of [analysis], key) it replaces
OVERRIDE_SETTINGS: dict[str, tuple[str, str]] = {
    "alpha": ("", "alpha"),
    "conf_level": ("", "conf_level"),
    "test": ("", "test"),
    "multiplicity": ("", "multiplicity"),
    "pre_max_day": ("pre", "max_day"),
    "post_rule": ("post", "rule"),
    "post_min_day": ("post", "min_day"),
    "post_max_day": ("post", "max_day"),
    "post_visit": ("post", "visit"),
    "post_target_day": ("post", "target_day"),
}
OVERRIDABLE: tuple[str, ...] = tuple(AnalysisOverrides.model_fields)


# --- messages --------------------------------------------------------------------------------


class _Problem(ValueError):
    """A problem with one key of the table being validated (raised inside a model validator)."""

    def __init__(self, key: str, text: str, kind: str = ""):
        super().__init__(text)
        self.key, self.text, self.kind = key, text, kind


def _problem(key: str, text: str, kind: str = "") -> _Problem:
    return _Problem(key, text, kind)


_KINDS = {
    "string": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "list": "a list",
    "dict": "a table",
    "model": "a table",
    "model_attributes": "a table",
}


def shown_key(key: Any) -> str:
    """A key of the spec as a message shows it: a line break or other control character typed
    into a key is escaped, so that the message stays on one line."""
    text = str(key)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _path(where: str, loc: tuple) -> str:
    text = where
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif "[" in str(part) or "," in str(part):  # a union member's tag, e.g. 'list[str]'
            continue
        else:
            text += f".{shown_key(part)}" if text else shown_key(part)
    return text


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys of the table at ``loc`` (relative to ``model``): where an unknown key was found."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    return list(getattr(current, "model_fields", {})) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def nearest(key: str, known: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the known key closest to ``key``, else the list of keys."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; use one of {', '.join(known)}." if known else "."


def describe(err: ValidationError, model: type[BaseModel], where: str = "") -> str:
    """The first problem of a validation error as the spec's one-line message (without the
    file): ``setting 'analysis.multiplicty' is not a setting of [analysis]; did you mean ...``."""
    e = err.errors(include_url=False)[0]
    loc, kind, value = tuple(e["loc"]), e["type"], e.get("input")
    cause = (e.get("ctx") or {}).get("error")
    if isinstance(cause, _Problem):
        # "comparisons.1.post.visit": a number is the place in a list ([1]).
        loc = loc + tuple(int(k) if k.isdigit() else k for k in cause.key.split("."))
        if cause.kind == "missing":
            return f"setting '{_path(where, loc)}' {cause.text}"
        return f"setting '{_path(where, loc)}' {cause.text}"
    setting = _path(where, loc)
    if kind == "extra_forbidden":
        table = _path(where, loc[:-1])
        known = _known_keys(model, loc)
        return (
            f"setting '{setting}' is not a setting of [{table or 'the spec'}]"
            f"{nearest(str(loc[-1]), known)}"
        )
    if kind == "missing":
        return f"setting '{setting}' is missing. Add it to the spec."
    if kind == "literal_error":
        choices = [c for c in _choices(model, loc)]
        shown = ", ".join(c for c in choices if c) if choices else e["msg"]
        return f"setting '{setting}' must be one of {shown}; got {_shown(value)}."
    if kind == "too_short":
        return f"setting '{setting}' must list at least one entry."
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = next(iter((e.get("ctx") or {}).values()), "")
        words = {
            "greater_than_equal": "at least",
            "less_than_equal": "at most",
            "greater_than": "more than",
            "less_than": "less than",
        }[kind]
        return f"setting '{setting}' must be {words} {bound}, got {_shown(value)}."
    if kind == "value_error":
        text = str(cause) if cause is not None else e["msg"].removeprefix("Value error, ")
        # "levels.etiology: ..." names a key inside the setting's table.
        head, sep, rest = text.partition(": ")
        if sep and "." in head and " " not in head:
            return f"setting '{_path(where, loc[:-1] + tuple(head.split('.')))}' {rest}"
        return f"setting '{setting}' {text}"
    base = kind.removesuffix("_type").removesuffix("_parsing").removesuffix("_from_float")
    if base in _KINDS:
        return f"setting '{setting}' must be {_KINDS[base]}, got {_shown(value)}."
    return f"setting '{setting}' is not valid ({e['msg']})."


def _choices(model: type[BaseModel], loc: tuple) -> list[str]:
    current: Any = model
    annotation = None
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            break
        annotation = field.annotation
        current = _model_in(annotation)
    return [str(a) for a in _literals(annotation)]


def _literals(annotation: Any) -> list[Any]:
    if annotation is None:
        return []
    args = get_args(annotation)
    if getattr(annotation, "__origin__", None) is Literal:
        return list(args)
    out: list[Any] = []
    for arg in args:
        out += _literals(arg)
    return out


def validate(model: type[BaseModel], data: Any, where: str, path: Any) -> Any:
    """``model`` validated from ``data``; a problem raises :class:`SpecError` naming ``path``
    (the spec file) and the setting under ``where``."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise SpecError(f"{path}: {describe(err, model, where)}") from None


# --- A pooled (multi-centre) study: [study] kind = "pooled" and a [pooled] table instead of
# subjects, visits, instruments and analysis (pipeline.pooled_study; docs/multi-centre.md).

Tau2Method = Literal["REML", "DL"]


class PooledSite(_Table):
    """One site of a pooled study: its name in tables and figures, and its bundle file (in the
    pooled study's folder)."""

    name: str
    bundle: str
    # The site's value of each characteristic declared under [pooled.characteristics]: a
    # number, or one of the declared levels (pipeline.pooled_study checks them against the
    # declaration, so that its message can say what the characteristic needs).
    characteristics: dict[str, Any] = Field(default_factory=dict)


class PooledCharacteristic(_Table):
    """A characteristic of the sites ([pooled.characteristics.<name>]): numeric, or
    categorical when it lists its levels (the first is the reference)."""

    # As it reads in a sentence ("share of Bell palsy"); tables capitalise its first letter.
    label: str = ""
    unit: str = ""
    levels: list[str] = Field(default_factory=list)


class PooledTable(_Table):
    sites: list[PooledSite] = Field(min_length=2)
    # The random-effects model's estimator of tau², and the Hartung-Knapp interval and t test.
    tau2_method: Tau2Method = "REML"
    hartung_knapp: bool = True
    # Site characteristics, and those the meta-regression explains the sites' changes by.
    characteristics: dict[str, PooledCharacteristic] = Field(default_factory=dict)
    moderators: list[str] = Field(default_factory=list)


class PooledStudyTable(_Table):
    name: str
    title: str = ""
    synthetic: bool = False
    kind: Literal["pooled"]


class PooledSpecFile(_Table):
    """A pooled study's ``study.toml``."""

    study: PooledStudyTable
    pooled: PooledTable
