"""The study spec: one TOML file per study, ``data/raw/<study>/study.toml``.

It says which raw files hold the cohort, which columns carry subjects, visits
and instrument items, and the analysis plan. Only the columns the spec names
are ever read from a raw file, so an unmapped column (a name, a date, a
free-text note) never reaches the warehouse.

Every problem is reported as one :class:`SpecError` naming the file, the
setting and how to fix it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.readers import DECIMALS, ENCODINGS, ReadOptions

SPEC_FILENAME = "study.toml"
# "auto": paired t when Shapiro-Wilk does not reject normal differences, else Wilcoxon
# (pipeline.statistics.paired.choose_test).
TESTS = ("wilcoxon", "t", "auto")
PRE_RULES = ("latest_preoperative",)
POST_RULES = ("last_followup", "named_visit", "nearest_day")
MULTIPLICITY = ("holm", "bh")
SUBGROUP_SPLITS = ("", "median")
KAPPA_WEIGHTS = ("linear", "quadratic")


class SpecError(ValueError):
    """A study spec that cannot be used; the message says where and how to fix it."""


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
        from pipeline.instruments import REGISTRY

        instrument = self.measure or REGISTRY[self.instrument]
        return tuple(s.name for s in instrument.scores_for(self.version or None))


@dataclass(frozen=True)
class Outcome:
    """One analysed score: an instrument's score, optionally from one rater."""

    instrument: str
    score: str
    rater: str = ""
    test: str = ""

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


@dataclass(frozen=True)
class ReliabilityPlan:
    """Several raters grading the same visits: ICCs and weighted kappa between them."""

    instrument: str
    score: str
    raters: tuple[str, ...]
    weights: str = "quadratic"


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

    @property
    def pre_label(self) -> str:
        window = f"{self.pre_min_day} ≤ day ≤ {self.pre_max_day}" if self.pre_min_day is not None \
            else f"day ≤ {self.pre_max_day}"
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
            return f"visit {self.post_visit} ({self.post_window})"
        if self.post_rule == "nearest_day":
            return f"nearest to day {self.post_target_day} ({self.post_window})"
        return f"last follow-up ({self.post_window})"

    @property
    def secondary(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.name != self.primary)

    def test_for(self, outcome: Outcome) -> str:
        return outcome.test or self.test


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
STUDY_KEYS = ("name", "title", "synthetic", "restricted")
# Schema names a study (its schema in the warehouse) cannot take: meta holds the runs table.
RESERVED_NAMES = ("meta", "main", "temp", "system", "information_schema", "pg_catalog")


class _Reader:
    """Typed access to a TOML table that reports problems with the setting's path."""

    def __init__(self, path: Path, table: dict[str, Any], where: str = ""):
        self.path, self.table, self.where = path, table, where

    def _fail(self, key: str, problem: str) -> SpecError:
        setting = f"{self.where}.{key}" if self.where else key
        return SpecError(f"{self.path}: setting '{setting}' {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.table:
            if default is ...:
                raise self._fail(key, "is missing. Add it to the spec.")
            return default
        value = self.table[key]
        # bool is an int in Python; a spec saying `alpha = true` is a mistake.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self._fail(key, f"must be {_kind_name(kind)}, got {value!r}.")
        if not isinstance(value, kind):
            raise self._fail(key, f"must be {_kind_name(kind)}, got {value!r}.")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, str, default)
        if key in self.table and value not in choices:
            raise self._fail(key, f"must be one of {', '.join(choices)}; got {value!r}.")
        return value

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(key, list, default)
        if not all(isinstance(v, str) for v in value):
            raise self._fail(key, f"must be a list of strings, got {value!r}.")
        return tuple(value)

    def sub(self, key: str, default: Any = ...) -> "_Reader":
        table = self.get(key, dict, {} if default is not ... else default)
        return _Reader(self.path, table, f"{self.where}.{key}" if self.where else key)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


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
    root = _Reader(path, data)

    study = root.sub("study")
    for key in study.table:
        # A misspelt `restricted` must not silently leave restricted data readable by everyone.
        if key not in STUDY_KEYS:
            raise study._fail(key, f"is not a study setting; use one of {', '.join(STUDY_KEYS)}.")
    name = study.get("name", str)
    if not _NAME.match(name):
        raise study._fail("name", "must be lower-case letters, digits and '_', starting with a letter.")
    if name in RESERVED_NAMES:
        raise study._fail("name", f"must not be {name!r}, which the warehouse uses itself; choose another name.")

    subjects = root.sub("subjects")
    visits = root.sub("visits")
    instruments = _instrument_sources(root.sub("instruments"))
    analysis = _analysis_plan(root.sub("analysis"), instruments, subjects.strings("columns", ()))

    spec = Study(
        name=name,
        title=study.get("title", str, name),
        folder=folder,
        spec_path=path,
        synthetic=study.get("synthetic", bool, False),
        restricted=study.get("restricted", bool, False),
        subjects_file=subjects.get("file", str),
        subject_id=subjects.get("id", str),
        subject_columns=subjects.strings("columns", ()),
        visits_file=visits.get("file", str),
        visit_subject=visits.get("subject", str),
        visit_column=visits.get("visit", str, "redcap_event_name" if "redcap" in data else ...),
        day_column=visits.get("day", str, "" if "redcap" in data else ...),
        instruments=instruments,
        analysis=analysis,
        **_source_settings(root, subjects, visits),
        checks=_checks(root.sub("checks", {})),
    )
    files = [("subjects.file", spec.subjects_file), ("visits.file", spec.visits_file)]
    if spec.redcap:
        files.append(("redcap.dictionary", spec.redcap.dictionary))
    for key, file in files:
        if not (folder / file).is_file():
            raise SpecError(f"{path}: setting '{key}' names {file}, which is not in {folder}. "
                            "Put the export there or correct the file name.")
    return spec


def _checks(table: _Reader) -> Checks:
    min_pairs = table.get("min_pairs", int, Checks.min_pairs)
    if min_pairs < 1:
        raise table._fail("min_pairs", f"must be 1 or more, got {min_pairs}.")
    share = float(table.get("min_paired_share", (int, float), Checks.min_paired_share))
    if not 0 <= share <= 1:
        raise table._fail("min_paired_share", f"must lie between 0 and 1, got {share}.")
    return Checks(min_pairs, share)


FORMATS = ("auto", "csv", "xlsx", "redcap")
LAYOUTS = ("wide", "long")
_DELIMITER_NAMES = {"auto": "auto", ",": ",", ";": ";", "tab": "\t", "\t": "\t"}


def _read_options(table: _Reader, redcap: bool) -> ReadOptions:
    """How one file is read: ``format``, ``encoding``, ``delimiter``, ``decimal``, ``sheet``."""
    fmt = table.choice("format", FORMATS, "redcap" if redcap else "auto")
    delimiter = table.get("delimiter", str, "auto")
    if delimiter not in _DELIMITER_NAMES:
        raise table._fail("delimiter", f"must be one of auto, \",\", \";\", \"tab\"; got {delimiter!r}.")
    sheet = table.get("sheet", str, "")
    if sheet and fmt not in ("auto", "xlsx"):
        raise table._fail("sheet", "applies to Excel workbooks only; remove it or set format = \"xlsx\".")
    return ReadOptions(format=fmt, encoding=table.choice("encoding", ENCODINGS, "auto"),
                       delimiter=_DELIMITER_NAMES[delimiter], decimal=table.choice("decimal", DECIMALS, "."),
                       sheet=sheet)


def _source_settings(root: _Reader, subjects: _Reader, visits: _Reader) -> dict[str, Any]:
    """The reading, layout, REDCap and allowed-identifier settings of a spec, as Study fields."""
    redcap = None
    if "redcap" in root.table:
        table = root.sub("redcap")
        events = []
        event_table = table.sub("events", {})
        for event in event_table.table:
            raw = event_table.table[event]
            if isinstance(raw, str):
                events.append(VisitEvent(event, raw))
                continue
            entry = event_table.sub(event)
            events.append(VisitEvent(event, entry.get("visit", str), entry.get("day", int, None)))
        redcap = RedcapSource(table.get("dictionary", str), table.get("subjects_event", str, ""),
                              table.get("repeat_instrument", str, ""), tuple(events))
        if not visits.table.get("day") and any(e.day is None for e in events):
            missing = next(e.event for e in events if e.day is None)
            raise event_table._fail(missing, "has no day, and [visits] names no day field. Give the event "
                                    "a nominal day (day = 90) or name the field holding days relative to surgery.")
        if not visits.table.get("day") and not events:
            raise visits._fail("day", "is missing: name the REDCap field holding days relative to surgery, "
                               "or map events to visits with days under [redcap.events].")
    layout = visits.choice("layout", LAYOUTS, "wide")
    windows = []
    window_table = visits.sub("windows", {})
    for name in window_table.table:
        bounds = window_table.get(name, list)
        if len(bounds) != 2 or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds) \
                or bounds[0] > bounds[1]:
            raise window_table._fail(name, f"must be [first_day, last_day] in whole days, got {bounds!r}.")
        windows.append((name, bounds[0], bounds[1]))
    allow = root.sub("identifiers", {}).sub("allow", {})
    allowed = []
    for column in allow.table:
        justification = allow.get(column, str)
        if len(justification.split()) < 3:
            raise allow._fail(column, "needs a written justification of a few words: why this column cannot "
                              "identify anyone (it is recorded in the run's provenance).")
        allowed.append((column, justification))
    return {
        "subjects_options": _read_options(subjects, redcap is not None),
        "visits_options": _read_options(visits, redcap is not None),
        "visits_layout": layout,
        "visit_item": visits.get("item", str, "item"),
        "visit_value": visits.get("value", str, "value"),
        "visit_windows": tuple(windows),
        "redcap": redcap,
        "identifiers_allowed": tuple(allowed),
    }


CUSTOM_KEYS = ("label", "minimum", "maximum", "better")
BETTER = ("higher", "lower")


def _custom_measure(key: str, entry: _Reader):
    """A measure the spec declares itself (label, range, unit, better direction), e.g. a toxin dose."""
    from pipeline.instruments import custom_measure

    if not _NAME.match(key):
        raise SpecError(f"{entry.path}: custom measure '{key}' must be named with lower-case letters, digits "
                        "and '_', starting with a letter.")
    minimum = float(entry.get("minimum", (int, float)))
    maximum = float(entry.get("maximum", (int, float)))
    if not minimum < maximum:
        raise entry._fail("maximum", f"must be greater than minimum ({minimum:g}), got {maximum:g}.")
    return custom_measure(key, entry.get("label", str), minimum, maximum,
                          integer=entry.get("integer", bool, False),
                          higher_is_better=entry.choice("better", BETTER) == "higher",
                          unit=entry.get("unit", str, ""))


def _template_problem(column: str) -> str:
    """What is wrong with a column template ('' when nothing): only {item} and {rater} may be filled in."""
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


def _instrument_sources(table: _Reader) -> tuple[InstrumentSource, ...]:
    from pipeline.instruments import REGISTRY

    sources = []
    for key in table.table:
        entry = table.sub(key)
        measure = None
        if key not in REGISTRY:
            if not any(k in entry.table for k in CUSTOM_KEYS):
                raise table._fail(key, f"is not a known instrument; known: {', '.join(sorted(REGISTRY))}. "
                                       "To analyse a measure of your own, give it label, minimum, maximum "
                                       "and better = \"higher\" or \"lower\" (optionally unit, integer).")
            measure = _custom_measure(key, entry)
        instrument = measure or REGISTRY[key]
        raters = entry.strings("raters", ("",))
        column = entry.get("column", str)
        problem = _template_problem(column)
        if problem:
            raise entry._fail("column", f"is not a column template ({problem}); write {{item}} and {{rater}} "
                              f"where the item and rater go, e.g. \"sb_{{item}}\", and {{{{ }}}} for a literal brace. "
                              f"Got {column!r}.")
        if "{item}" not in column and len(instrument.items) > 1:
            raise entry._fail("column", "must contain {item}, e.g. \"sb_{item}\".")
        if len(raters) > 1 and "{rater}" not in column:
            raise entry._fail("column", "must contain {rater} when several raters are listed.")
        version = ""
        if "version" in entry.table:
            if not instrument.versions:
                raise entry._fail("version", f"cannot be set: {key} has a single scoring definition.")
            version = entry.choice("version", instrument.version_names)
        side_column = entry.get("side", str, "")
        if instrument.sided and not side_column:
            raise entry._fail("side", "is missing: name the subjects column that holds the side of the "
                                      "paralysis (left/right), e.g. side = \"side\".")
        sources.append(InstrumentSource(key, column, raters, version or instrument.default_version,
                                        side_column, measure))
    if not sources:
        raise SpecError(f"{table.path}: no [instruments.*] table. Map at least one instrument.")
    return tuple(sources)


def _mapped_score(entry: _Reader, mapped: dict[str, InstrumentSource]) -> tuple[str, str]:
    """An entry's ``instrument`` (one the spec maps) and ``score`` (one it produces)."""
    instrument = entry.get("instrument", str)
    if instrument not in mapped:
        raise entry._fail("instrument", f"names {instrument!r}, which has no [instruments.{instrument}] mapping.")
    score = entry.get("score", str)
    known = mapped[instrument].score_names
    if score not in known:
        raise entry._fail("score", f"must be one of {', '.join(known)}; got {score!r}.")
    return instrument, score


def _analysis_plan(table: _Reader, sources: tuple[InstrumentSource, ...],
                   subject_columns: tuple[str, ...] | None = None) -> AnalysisPlan:
    from pipeline.instruments import REGISTRY

    alpha = float(table.get("alpha", (int, float), 0.05))
    conf_level = float(table.get("conf_level", (int, float), 0.95))
    for key, value in (("alpha", alpha), ("conf_level", conf_level)):
        if not 0 < value < 1:
            raise table._fail(key, f"must lie strictly between 0 and 1, got {value}.")
    pre, post = table.sub("pre", {}), table.sub("post", {})
    test = table.choice("test", TESTS, "wilcoxon")

    mapped = {s.instrument: s for s in sources}
    outcomes = []
    for i, raw in enumerate(table.get("outcomes", list)):
        entry = _Reader(table.path, raw if isinstance(raw, dict) else {}, f"analysis.outcomes[{i}]")
        instrument, score = _mapped_score(entry, mapped)
        rater = entry.get("rater", str, "")
        if rater not in mapped[instrument].raters:
            raise entry._fail("rater", f"must be one of {', '.join(r for r in mapped[instrument].raters if r)}; got {rater!r}.")
        outcomes.append(Outcome(instrument, score, rater, entry.choice("test", TESTS, "")))
    if not outcomes:
        raise table._fail("outcomes", "must list at least one outcome.")

    names = [o.name for o in outcomes]

    def outcome_name(reader: _Reader, key: str, value: str) -> str:
        if value not in names:
            raise reader._fail(key, f"names {value!r}, which is not a planned outcome; "
                               f"use one of {', '.join(dict.fromkeys(names))}.")
        return value

    primary = table.get("primary", str, "")
    if primary:
        outcome_name(table, "primary", primary)
    ordinal = tuple(outcome_name(table, "ordinal", o) for o in table.strings("ordinal", ()))
    responder_table = table.sub("responders", {})
    responders = []
    for key in responder_table.table:
        outcome_name(responder_table, key, key)
        mic = float(responder_table.get(key, (int, float)))
        if not mic > 0:
            raise responder_table._fail(key, f"must be a positive minimal important change, got {mic:g}.")
        responders.append((key, mic))

    subgroups = []
    for i, raw in enumerate(table.get("subgroups", list, [])):
        entry = _Reader(table.path, raw if isinstance(raw, dict) else {}, f"analysis.subgroups[{i}]")
        column = entry.get("column", str)
        if subject_columns is not None and column not in subject_columns:
            raise entry._fail("column", f"names {column!r}, which is not in [subjects] columns; "
                              "add it there or correct the name.")
        name = entry.get("name", str, column)
        if not _NAME.match(name) or name == "all":
            raise entry._fail("name", "must be lower-case letters, digits and '_' (and not 'all').")
        subgroups.append(Subgroup(name, column, entry.choice("split", SUBGROUP_SPLITS, "")))
    if len({g.name for g in subgroups}) < len(subgroups):
        raise table._fail("subgroups", "names a subgroup twice; give each entry its own name.")
    covariates = table.strings("covariates", ())
    for c in covariates:
        if subject_columns is not None and c not in subject_columns:
            raise table._fail("covariates", f"names {c!r}, which is not in [subjects] columns; "
                              "add it there or correct the name.")

    reliability = []
    for i, raw in enumerate(table.get("reliability", list, [])):
        entry = _Reader(table.path, raw if isinstance(raw, dict) else {}, f"analysis.reliability[{i}]")
        instrument, score = _mapped_score(entry, mapped)
        raters = entry.strings("raters", tuple(r for r in mapped[instrument].raters if r))
        unknown = [r for r in raters if r not in mapped[instrument].raters or not r]
        if unknown or len(set(raters)) < 2:
            raise entry._fail("raters", f"must list at least two of {', '.join(r for r in mapped[instrument].raters if r) or '(none)'}"
                              f" (the raters mapped in [instruments.{instrument}]); got {list(raters)}.")
        reliability.append(ReliabilityPlan(instrument, score, raters,
                                           entry.choice("weights", KAPPA_WEIGHTS, "quadratic")))

    pre_rule = pre.choice("rule", PRE_RULES, "latest_preoperative")
    pre_max_day = pre.get("max_day", int, 0)
    pre_min_day = pre.get("min_day", int, None)
    if pre_min_day is not None and pre_min_day > pre_max_day:
        raise pre._fail("min_day", f"must not exceed max_day ({pre_max_day}), got {pre_min_day}.")
    post_rule = post.choice("rule", POST_RULES, "last_followup")
    post_visit = ""
    post_target = None
    if post_rule == "named_visit":
        post_visit = post.get("visit", str)
    elif "visit" in post.table:
        raise post._fail("visit", f"is only used with rule = \"named_visit\"; remove it or change the rule.")
    if post_rule == "nearest_day":
        post_target = post.get("target_day", int)
    elif "target_day" in post.table:
        raise post._fail("target_day", "is only used with rule = \"nearest_day\"; remove it or change the rule.")
    # The post window: named visits and nearest-day accept any post-operative day by default.
    post_min_day = post.get("min_day", int, 90 if post_rule == "last_followup" else 1)
    post_max_day = post.get("max_day", int, None)
    if post_max_day is not None and post_max_day < post_min_day:
        raise post._fail("max_day", f"must be at least min_day ({post_min_day}), got {post_max_day}.")
    if post_target is not None and not (post_min_day <= post_target <= (post_max_day if post_max_day is not None else post_target)):
        raise post._fail("target_day", f"must lie in the window [{post_min_day}, {post_max_day}], got {post_target}.")
    if post_min_day <= pre_max_day:
        raise post._fail("min_day", f"must be after pre.max_day ({pre_max_day}) so one visit "
                         f"cannot be both pre and post; got {post_min_day}.")
    longitudinal = table.sub("longitudinal", {})

    return AnalysisPlan(
        alpha=alpha,
        conf_level=conf_level,
        test=test,
        pre_rule=pre_rule,
        pre_max_day=pre_max_day,
        post_rule=post_rule,
        post_min_day=post_min_day,
        outcomes=tuple(outcomes),
        pre_min_day=pre_min_day,
        post_visit=post_visit,
        post_target_day=post_target,
        post_max_day=post_max_day,
        primary=primary,
        multiplicity=table.choice("multiplicity", MULTIPLICITY, "holm"),
        subgroups=tuple(subgroups),
        covariates=covariates,
        ordinal=ordinal,
        responders=tuple(responders),
        reliability=tuple(reliability),
        random_slope=longitudinal.get("random_slope", bool, False),
    )


def discover_studies(raw_dir: Path) -> list[Path]:
    """Every study folder under ``raw_dir`` (a folder holding a ``study.toml``), sorted."""
    return sorted(p.parent for p in Path(raw_dir).glob(f"*/{SPEC_FILENAME}"))


# Analysis choices a statistician may change for one run without editing the spec (Dagster run
# config, resource ``analysis_options``): name -> (type, allowed values or None).
OVERRIDABLE: dict[str, tuple[type, tuple | None]] = {
    "alpha": (float, None),
    "test": (str, TESTS),
    "multiplicity": (str, MULTIPLICITY),
    "pre_max_day": (int, None),
    "post_rule": (str, POST_RULES),
    "post_min_day": (int, None),
    "post_max_day": (int, None),
    "post_visit": (str, None),
    "post_target_day": (int, None),
}


def with_overrides(study: Study, overrides: dict[str, Any]) -> Study:
    """``study`` with some analysis-plan choices replaced, each checked like the spec's own."""
    from dataclasses import replace

    if not overrides:
        return study
    where = f"run configuration of study '{study.name}'"
    changes = {}
    for key, value in overrides.items():
        if key not in OVERRIDABLE:
            raise SpecError(f"{where}: '{key}' cannot be overridden; use one of {', '.join(OVERRIDABLE)}.")
        kind, choices = OVERRIDABLE[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SpecError(f"{where}: '{key}' must be {_kind_name(kind)}, got {value!r}.")
        if choices and value not in choices:
            raise SpecError(f"{where}: '{key}' must be one of {', '.join(choices)}; got {value!r}.")
        changes[key] = value
    if "alpha" in changes and not 0 < changes["alpha"] < 1:
        raise SpecError(f"{where}: 'alpha' must lie strictly between 0 and 1, got {changes['alpha']}.")
    plan = replace(study.analysis, **changes)
    if plan.post_rule == "named_visit" and not plan.post_visit:
        raise SpecError(f"{where}: post_rule 'named_visit' needs post_visit (the visit code).")
    if plan.post_rule == "nearest_day" and plan.post_target_day is None:
        raise SpecError(f"{where}: post_rule 'nearest_day' needs post_target_day.")
    return replace(study, analysis=plan)
