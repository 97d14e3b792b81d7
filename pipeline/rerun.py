"""Which steps of a study a rerun can reuse: each step's content key, kept in the warehouse.

The statistician's loop: change one analysis option (``outcomes run --set conf_level=0.9``,
the launchpad's ``analysis_options``), run again, and only what depends on that option is
computed again. Each step of :data:`STEPS` has a key, a SHA-256 of everything its result is
made from:

- its code: every source file of ``pipeline/`` (any change of the code runs every step again;
  finer code versions cost half a second of parsing per process, more than most steps);
- the keys its upstream steps had when they last ran (:data:`UPSTREAM`, every step it reads
  from, directly or through others), so a step is reused only on exactly the tables it was
  made from;
- the analysis settings it reads: ``[analysis]`` as the run applies it, overrides included,
  less the options the step never reads (:data:`NOT_READ`: ingest and scores read no analysis
  option, pairing reads the visit rules but not ``alpha``, ``conf_level``, ``test`` or
  ``multiplicity``);
- for ingest, the first step: the inputs' fingerprint (every raw file and the spec), and the
  Python and package versions;
- for the report, the commit and whether the checkout had changes, which its provenance table
  shows (``provenance.json`` is written again by every run, from the warehouse when ingest is
  reused, and left alone when its bytes are the same).

:func:`run` runs a step unless the key it last ran with is its key now and every file it wrote
is still there with the bytes it wrote; otherwise it runs it, lists the files it writes
(:func:`pipeline.files.recording`) and keeps the key and the files' hashes in
``meta.step_keys``. The key is removed before the step starts, so a step that fails or is
interrupted is run again next time. Within a step, files whose bytes do not change are not
written again (:mod:`pipeline.files`), and figures are redrawn only when what they show
changed (:func:`pipeline.render.figure_files.export`): a figure without confidence intervals
is not redrawn for a new ``conf_level``.

The keys are kept by :func:`pipeline.steps.run_study` and the Dagster assets, which run every
step through :func:`run`; a step function called directly (a test, the benchmark) neither reads
nor writes them, so a later run through :func:`run` computes the steps it wrote over again
only if their keys differ.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb

from pipeline import files, sources
from pipeline.provenance import fingerprint, git_state, package_versions
from pipeline.spec.study import Study

STEPS = ("ingest", "score", "pair", "analyse", "secondary", "tables", "figures", "report")

#: Every step a step reads the results of, directly or through others.
UPSTREAM: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "score": ("ingest",),
    "pair": ("ingest", "score"),
    "analyse": ("ingest", "score", "pair"),
    "secondary": ("ingest", "score", "pair", "analyse"),
    "tables": ("ingest", "score", "pair", "analyse", "secondary"),
    "figures": ("ingest", "score", "pair", "analyse", "secondary"),
    "report": ("ingest", "score", "pair", "analyse", "secondary", "tables", "figures"),
}

# What pairing never reads of [analysis]: the tests' settings. Any other setting (the visit
# rules, the outcomes, and whatever [analysis] gains later) counts as read.
_TEST_SETTINGS = frozenset({"alpha", "conf_level", "test", "multiplicity"})
ALL = None  # the whole of [analysis]

#: The ``[analysis]`` settings a step does not read: ``ALL`` for none read at all.
NOT_READ: dict[str, frozenset[str] | None] = {
    "ingest": ALL,
    "score": ALL,
    "pair": _TEST_SETTINGS,
}

#: Files a later step rewrites (the analysis overrides in ``provenance.json``): a step that
#: wrote one is reused if it is there, whatever it holds now.
REWRITTEN_LATER = ("provenance.json",)

TABLE = "meta.step_keys"


@dataclass
class Outcome:
    """What :func:`run` did: ``ran`` (False: reused), what the step returned (None if reused),
    and every file the step wrote, this time or when it last ran."""

    ran: bool
    result: Any = None
    paths: list[Path] = field(default_factory=list)


@functools.cache
def code_key() -> str:
    """A SHA-256 of every source file of ``pipeline/``: it changes with any change of the code
    (also the key of each kept analysis result, :mod:`pipeline.kept_results`)."""
    digest = hashlib.sha256()
    for name, path in sorted(sources.modules().items()):
        if name.split(".")[0] == "pipeline":
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _settings(study: Study, step: str) -> dict[str, Any]:
    skipped = NOT_READ.get(step, frozenset())
    if skipped is ALL:
        return {}
    analysis = study.analysis_spec.model_dump(mode="json")
    return {key: value for key, value in sorted(analysis.items()) if key not in skipped}


def _table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (study VARCHAR, step VARCHAR, key VARCHAR, files JSON)"
    )


def stored(con: duckdb.DuckDBPyConnection, study: str) -> dict[str, tuple[str, list]]:
    """Each step's key and files (``[[path under reports/<study>/, sha256 or None], ...]``) as
    its last complete run left them."""
    _table(con)
    rows = con.execute(f"SELECT step, key, files FROM {TABLE} WHERE study = ?", [study]).fetchall()
    return {step: (key, json.loads(listed)) for step, key, listed in rows}


def step_key(study: Study, step: str, upstream_keys: dict[str, str]) -> str | None:
    """The key of ``step`` now, given the keys its upstream steps last ran with; None when one
    of them has none (it never completed a run through :func:`run`): then there is nothing to
    reuse."""
    if any(name not in upstream_keys for name in UPSTREAM[step]):
        return None
    made_from: dict[str, Any] = {
        "step": step,
        "code": code_key(),
        "upstream": {name: upstream_keys[name] for name in UPSTREAM[step]},
        "analysis": _settings(study, step),
    }
    if step == "ingest":
        made_from.update(
            inputs=fingerprint(study),
            python=platform.python_version(),
            packages=package_versions(),
        )
    if step == "report":
        # The report's provenance table names the commit; no table or figure does (an edit to
        # the code itself changes every key, through the code's hash above).
        made_from.update(code_state=git_state())
    text = json.dumps(made_from, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _intact(folder: Path, listed: list) -> bool:
    for name, sha in listed:
        path = folder / name
        if not path.is_file():
            return False
        if sha is not None and hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            return False
    return True


def run(
    con: duckdb.DuckDBPyConnection,
    study: Study,
    reports_dir: Path | None,
    step: str,
    function: Callable,
    *args,
) -> Outcome:
    """``function(con, study, *args)``, the step ``step`` of :data:`STEPS`, unless its last run
    can be reused (module docstring). ``reports_dir`` holds the study's reports folder (None for
    a step that writes no file)."""
    if step not in UPSTREAM:
        raise ValueError(f"unknown step {step!r}; one of {', '.join(STEPS)}")
    folder = Path(reports_dir) / study.name if reports_dir is not None else None
    known = stored(con, study.name)
    key = step_key(study, step, {name: value[0] for name, value in known.items()})
    if key is not None and step in known and known[step][0] == key:
        listed = known[step][1]
        if folder is None or _intact(folder, listed):
            return Outcome(False, None, [folder / name for name, _ in listed])
    con.execute(f"DELETE FROM {TABLE} WHERE study = ? AND step = ?", [study.name, step])
    with files.recording() as written:
        result = function(con, study, *args)
    returned = result if isinstance(result, list) else []
    paths = list(dict.fromkeys([*(p for p in returned if isinstance(p, Path)), *written]))
    if key is None:
        return Outcome(True, result, paths)
    listed = []
    for path in paths:
        if folder is None or not path.is_relative_to(folder) or not path.is_file():
            continue
        name = path.relative_to(folder).as_posix()
        sha = None if name in REWRITTEN_LATER else hashlib.sha256(path.read_bytes()).hexdigest()
        listed.append([name, sha])
    con.execute(
        f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?)", [study.name, step, key, json.dumps(listed)]
    )
    return Outcome(True, result, paths)
