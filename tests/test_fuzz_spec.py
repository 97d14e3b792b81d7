"""Property-based fuzzing of the study spec parser: random bytes, random TOML, and the demo
study's spec with settings removed, added or given values of any type.

Every case ends as a usable Study or a SpecError naming the spec file and the setting, on
one line: never another exception, never a hang.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import tomllib
from datetime import date, datetime, time, timezone
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from conftest import bounded, fuzz_settings
from pipeline import paths
from pipeline.ingest.ingestion import IngestError, item_columns
from pipeline.pairing import outcomes_frame
from pipeline.spec.study import OVERRIDABLE, SpecError, Study, load_study, with_overrides

FUZZ = fuzz_settings(max_examples=100)
BASE = tomllib.loads((paths.RAW_DATA_DIR / "demo" / "study.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="fuzz_spec_") as name:
        folder = Path(name)
        for file in ("patients.csv", "visits.csv"):
            shutil.copy(paths.RAW_DATA_DIR / "demo" / file, folder / file)
        yield folder


def _load(folder: Path, text: str | bytes):
    """Parse a spec; return the Study, or None when refused with a proper message."""
    spec = folder / "study.toml"
    spec.write_bytes(
        text if isinstance(text, bytes) else text.encode("utf-8", errors="surrogatepass")
    )
    try:
        with bounded():
            study = load_study(folder)
            # A spec the parser accepts must be usable by the steps that read it.
            item_columns(study)
            outcomes_frame(study)
            study.analysis.pre_label, study.analysis.post_label
    except SpecError as err:
        event(f"refused: {str(err).split(': setting', 1)[-1][:25]}")
        message = str(err)
        assert message.startswith(str(spec)), message
        assert "\n" not in message.strip(), message
        return None
    except IngestError as err:  # refused at ingestion, naming the spec: a column mapped twice
        assert str(spec) in str(err)
        event("refused at ingestion")
        return None
    event("accepted")
    assert isinstance(study, Study)
    return study


@FUZZ
@given(data=st.one_of(st.binary(max_size=2000), st.text(max_size=300)))
def test_random_bytes_or_text(folder, data):
    _load(folder, data)


# TOML values of every type, and strings that mean something to the parser.
MEANINGFUL = [
    "",
    " ",
    "{item}",
    "{rater}",
    "{",
    "}",
    "{0}",
    "{item.x}",
    "{item!r}",
    "{item:>5}",
    "{}",
    "sb_{item}",
    "hb_{rater}",
    "house_brackmann",
    "sunnybrook",
    "eface",
    "observer",
    "surgeon",
    "grade",
    "composite",
    "total",
    "median",
    "wilcoxon",
    "t",
    "auto",
    "holm",
    "bh",
    "named_visit",
    "nearest_day",
    "last_followup",
    "latest_preoperative",
    "higher",
    "lower",
    "linear",
    "quadratic",
    "all",
    "meta",
    "demo",
    "study_id",
    "age",
    "etiology",
    "patients.csv",
    "visits.csv",
    "../visits.csv",
    "/etc/passwd",
    "tab",
    ";",
    "long",
    "xlsx",
    "redcap",
    "latin-1",
    ",",
    "\x00",
    "\u202e",
    "Ω" * 50,
    "x" * 5000,
]
scalars = st.one_of(
    st.sampled_from(MEANINGFUL),
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 90, 2**63 - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.just(timezone.utc)),
    st.times(),
)
toml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(MEANINGFUL[:40]), st.text(max_size=8)), inner, max_size=3
        ),
    ),
    max_leaves=6,
)


def _toml(value) -> str:
    """``value`` as TOML (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"


def _document(spec: dict) -> str:
    return "\n".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in spec.items()) + "\n"


def _places(node, path=()):
    """Every place in the spec: (path to it, whether it is a table or array)."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _places(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _places(value, (*path, i))


@st.composite
def mutated_specs(draw) -> dict:
    """The demo spec with one to four settings replaced, removed or added."""
    spec = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_places(spec))))
        parent = spec
        for key in path[:-1]:
            parent = parent[key]
        target = parent[path[-1]] if path else spec
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "add" and isinstance(target, (dict, list)):
            if isinstance(target, dict):
                target[draw(st.one_of(st.sampled_from(MEANINGFUL[:40]), st.text(max_size=8)))] = (
                    draw(toml_values)
                )
            else:
                target.append(draw(toml_values))
        elif path and action == "remove":
            del parent[path[-1]]
        elif path:
            parent[path[-1]] = draw(toml_values)
    return spec


@FUZZ
@given(spec=mutated_specs())
def test_the_demo_spec_mutated(folder, spec):
    _load(folder, _document(spec))


@FUZZ
@given(
    overrides=st.dictionaries(
        st.one_of(st.sampled_from(sorted(OVERRIDABLE)), st.text(max_size=8)), scalars, max_size=4
    )
)
def test_run_configuration_overrides(folder, overrides):
    study = _load(folder, _document(BASE))
    try:
        with bounded():
            changed = with_overrides(study, overrides)
            outcomes_frame(changed)
            changed.analysis.post_label
    except SpecError as err:
        assert str(err).startswith(f"run configuration of study '{study.name}'"), err
        assert "\n" not in str(err)


TEMPLATES = [
    "sb_{item}{",
    "sb_{item}}",
    "sb_{item}_{0}",
    "sb_{item}_{other}",
    "sb_{item.x}",
    "sb_{item[0]}",
    "sb_{item}{rater!z}",
    "sb_{item:>q}",
    "sb_{item}_{rater}",
    "{item}",
    "sb_{{item}}",
    "sb_{item}{}",
]


@FUZZ
@given(
    template=st.one_of(
        st.sampled_from(TEMPLATES),
        st.text(max_size=12).map(lambda t: "sb_{item}" + t),
        st.text(max_size=12).map(lambda t: t + "_{item}"),
    ),
    instrument=st.sampled_from(["sunnybrook", "house_brackmann", "botox_units"]),
)
def test_column_templates(folder, template, instrument):
    spec = copy.deepcopy(BASE)
    spec["instruments"][instrument]["column"] = (
        template.replace("{item}", "{rater}") if instrument == "house_brackmann" else template
    )
    _load(folder, _document(spec))
