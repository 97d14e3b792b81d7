"""Study specs for the tests, built as data and written as TOML.

Most tests need the same small study: subjects in ``patients.csv`` keyed by ``code``, visits in
``visits.csv``, House-Brackmann graded by an observer, a Wilcoxon test of the last follow-up
from day 90. ``study_toml`` writes that study with only what a test is about changed, so a
reader sees the difference instead of finding it in a copy of the whole spec.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import tomli_w

HB_OBSERVER = {"instrument": "house_brackmann", "rater": "observer", "score": "grade"}
HB_SURGEON = {"instrument": "house_brackmann", "rater": "surgeon", "score": "grade"}
LAST_FOLLOWUP = {"rule": "last_followup", "min_day": 90}

BASE = {
    "study": {"name": "tiny", "synthetic": True},
    "subjects": {"file": "patients.csv", "id": "code", "columns": ["age"]},
    "visits": {"file": "visits.csv", "subject": "code", "visit": "visit", "day": "day"},
    "instruments": {"house_brackmann": {"column": "hb_{rater}", "raters": ["observer"]}},
    "analysis": {"test": "wilcoxon", "post": LAST_FOLLOWUP, "outcomes": [HB_OBSERVER]},
}

# A REDCap project (tests/redcap/) in place of the two CSV files: records keyed by record_id,
# the visit's day in days_from_surgery.
REDCAP_STUDY = {
    "subjects": {
        "file": "records.csv",
        "id": "record_id",
        "columns": ["age", "sex", "etiology", "prior_treatment___1", "surgery_year"],
    },
    "visits": {
        "file": "records.csv",
        "subject": "record_id",
        "day": "days_from_surgery",
        "visit": None,
    },
    "analysis": {"post": None},
}


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` merged table by table: a key of a top-level table (``[study]``,
    ``[analysis]``, ...) is replaced whole by the change's value, or removed if that is ``None``."""
    out = copy.deepcopy(base)
    for table, keys in changes.items():
        if keys is None:
            out.pop(table, None)
            continue
        if not isinstance(keys, dict) or not isinstance(out.get(table), dict):
            out[table] = copy.deepcopy(keys)
            continue
        for key, value in keys.items():
            if value is None:
                out[table].pop(key, None)
            else:
                out[table][key] = copy.deepcopy(value)
    return out


def study_spec(*changes: dict) -> dict:
    """The base study with each of ``changes`` merged in turn (see :func:`merged`)."""
    spec = BASE
    for change in changes:
        spec = merged(spec, change)
    return spec


def study_toml(*changes: dict) -> str:
    """:func:`study_spec` as the text of a ``study.toml``."""
    return tomli_w.dumps(study_spec(*changes))


def edit_spec(folder: Path, *changes: dict) -> None:
    """Change a study's ``study.toml`` in place, as :func:`merged` does."""
    path = folder / "study.toml"
    spec = tomllib.loads(path.read_text(encoding="utf-8"))
    for change in changes:
        spec = merged(spec, change)
    path.write_text(tomli_w.dumps(spec), encoding="utf-8")
