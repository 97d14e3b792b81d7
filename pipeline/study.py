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

SPEC_FILENAME = "study.toml"
TESTS = ("wilcoxon", "t")
PRE_RULES = ("latest_preoperative",)
POST_RULES = ("last_followup",)


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

    def column_for(self, item: str, rater: str) -> str:
        return self.column.format(item=item, rater=rater)


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
class AnalysisPlan:
    alpha: float = 0.05
    conf_level: float = 0.95
    test: str = "wilcoxon"
    pre_rule: str = "latest_preoperative"
    pre_max_day: int = 0
    post_rule: str = "last_followup"
    post_min_day: int = 90
    outcomes: tuple[Outcome, ...] = ()

    @property
    def pre_label(self) -> str:
        return f"latest pre-operative (day ≤ {self.pre_max_day})"

    @property
    def post_label(self) -> str:
        return f"last follow-up (day ≥ {self.post_min_day})"

    def test_for(self, outcome: Outcome) -> str:
        return outcome.test or self.test


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

    @property
    def subjects_path(self) -> Path:
        return self.folder / self.subjects_file

    @property
    def visits_path(self) -> Path:
        return self.folder / self.visits_file

    @property
    def input_paths(self) -> tuple[Path, ...]:
        return (self.spec_path, self.subjects_path, self.visits_path)

    @property
    def spec_sha256(self) -> str:
        return hashlib.sha256(self.spec_path.read_bytes()).hexdigest()


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


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
    name = study.get("name", str)
    if not _NAME.match(name):
        raise study._fail("name", "must be lower-case letters, digits and '_', starting with a letter.")

    subjects = root.sub("subjects")
    visits = root.sub("visits")
    instruments = _instrument_sources(root.sub("instruments"))
    analysis = _analysis_plan(root.sub("analysis"), instruments)

    spec = Study(
        name=name,
        title=study.get("title", str, name),
        folder=folder,
        spec_path=path,
        synthetic=study.get("synthetic", bool, False),
        subjects_file=subjects.get("file", str),
        subject_id=subjects.get("id", str),
        subject_columns=subjects.strings("columns", ()),
        visits_file=visits.get("file", str),
        visit_subject=visits.get("subject", str),
        visit_column=visits.get("visit", str),
        day_column=visits.get("day", str),
        instruments=instruments,
        analysis=analysis,
    )
    for key, file in (("subjects.file", spec.subjects_file), ("visits.file", spec.visits_file)):
        if not (folder / file).is_file():
            raise SpecError(f"{path}: setting '{key}' names {file}, which is not in {folder}. "
                            "Put the export there or correct the file name.")
    return spec


def _instrument_sources(table: _Reader) -> tuple[InstrumentSource, ...]:
    from pipeline.instruments import REGISTRY

    sources = []
    for key in table.table:
        if key not in REGISTRY:
            raise table._fail(key, f"is not a known instrument; known: {', '.join(sorted(REGISTRY))}.")
        entry = table.sub(key)
        raters = entry.strings("raters", ("",))
        column = entry.get("column", str)
        if "{item}" not in column and len(REGISTRY[key].items) > 1:
            raise entry._fail("column", "must contain {item}, e.g. \"sb_{item}\".")
        if len(raters) > 1 and "{rater}" not in column:
            raise entry._fail("column", "must contain {rater} when several raters are listed.")
        sources.append(InstrumentSource(key, column, raters))
    if not sources:
        raise SpecError(f"{table.path}: no [instruments.*] table. Map at least one instrument.")
    return tuple(sources)


def _analysis_plan(table: _Reader, sources: tuple[InstrumentSource, ...]) -> AnalysisPlan:
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
        instrument = entry.get("instrument", str)
        if instrument not in mapped:
            raise entry._fail("instrument", f"names {instrument!r}, which has no [instruments.{instrument}] mapping.")
        score = entry.get("score", str)
        if score not in REGISTRY[instrument].score_names:
            raise entry._fail("score", f"must be one of {', '.join(REGISTRY[instrument].score_names)}; got {score!r}.")
        rater = entry.get("rater", str, "")
        if rater not in mapped[instrument].raters:
            raise entry._fail("rater", f"must be one of {', '.join(r for r in mapped[instrument].raters if r)}; got {rater!r}.")
        outcomes.append(Outcome(instrument, score, rater, entry.choice("test", TESTS, "")))
    if not outcomes:
        raise table._fail("outcomes", "must list at least one outcome.")

    return AnalysisPlan(
        alpha=alpha,
        conf_level=conf_level,
        test=test,
        pre_rule=pre.choice("rule", PRE_RULES, "latest_preoperative"),
        pre_max_day=pre.get("max_day", int, 0),
        post_rule=post.choice("rule", POST_RULES, "last_followup"),
        post_min_day=post.get("min_day", int, 90),
        outcomes=tuple(outcomes),
    )


def discover_studies(raw_dir: Path) -> list[Path]:
    """Every study folder under ``raw_dir`` (a folder holding a ``study.toml``), sorted."""
    return sorted(p.parent for p in Path(raw_dir).glob(f"*/{SPEC_FILENAME}"))
