"""Code versions follow the code: an edit to the source a step uses gives its asset, and every asset
downstream, a new code version, which a real Dagster instance reports as stale; assets that do
not use that source stay fresh. Versions are hashed from source text alone, so they are the same
in every checkout."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.definitions.data_version import (
    CachingStaleStatusResolver,
    StaleCauseCategory,
    StaleStatus,
)
from dagster._core.loader import LoadingContextForTest

from assets.definitions import build_definitions
from assets.study_assets import p_text
from conftest import STUDY_ASSETS
from pipeline import sources, steps
from small_study import write_small_study

STUDY = "small"
UPSTREAM_OF_SCORES = {"ingested"}
SCORES_AND_DOWNSTREAM = set(STUDY_ASSETS) - UPSTREAM_OF_SCORES


def _edited(module: str, source=sources.module_source):
    """``module_source`` as it reads after an edit to ``module`` (a line appended)."""

    def read(name: str) -> str:
        return source(name) + ("\nEDITED = True\n" if name == module else "")

    return read


def test_an_edit_changes_the_versions_of_the_steps_that_use_it(monkeypatch):
    before = {
        f.__name__: sources.code_version(f)
        for f in (steps.ingest, steps.score, steps.pair, steps.analyse)
    }
    monkeypatch.setattr(sources, "module_source", _edited("pipeline.scores"))
    after = {
        f.__name__: sources.code_version(f)
        for f in (steps.ingest, steps.score, steps.pair, steps.analyse)
    }
    assert {name for name in before if before[name] != after[name]} == {"score"}


def test_only_the_step_functions_used_count_in_the_facade(monkeypatch):
    """An edit to one step function of pipeline.steps leaves the other steps' versions alone."""
    read = sources.module_source

    def edited(name: str) -> str:
        text = read(name)
        if name == "pipeline.steps":
            text = text.replace(
                "    pair_study(con, study)\n", "    pair_study(con, study)  # edited\n", 1
            )
            assert "# edited" in text
        return text

    before = {f.__name__: sources.code_version(f) for f in (steps.ingest, steps.score, steps.pair)}
    monkeypatch.setattr(sources, "module_source", edited)
    after = {f.__name__: sources.code_version(f) for f in (steps.ingest, steps.score, steps.pair)}
    assert {name for name in before if before[name] != after[name]} == {"pair"}


def test_versions_are_the_same_in_another_checkout(tmp_path):
    """Source text only: a copy elsewhere, its bytecode caches gone, gives the same versions."""
    for package in sources.PACKAGES:
        shutil.copytree(
            sources.ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    script = (
        "from pipeline import sources, steps; print(sources.__file__); "
        "print(sources.code_version(steps.ingest), sources.code_version(steps.ingest, "
        "steps.write_report))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    where, versions = done.stdout.splitlines()
    assert where == str(tmp_path / "pipeline" / "sources.py")
    assert versions.split() == [
        sources.code_version(steps.ingest),
        sources.code_version(steps.ingest, steps.write_report),
    ]


def test_the_cached_import_graph_is_the_one_read_from_the_source(tmp_path, monkeypatch):
    """Kept beside the bytecode by the hash of every module's text: a cache of other sources, or
    an unreadable one, is read again from the source (and written anew)."""
    cache = tmp_path / "import_graph.json"
    monkeypatch.setattr(sources, "GRAPH_CACHE", cache)
    known = set(sources.modules())
    parsed = {
        name: frozenset(
            t for t in sources.imports(name, path, known) if not name.startswith(t + ".")
        )
        for name, path in sources.modules().items()
    }
    try:
        sources.import_graph.cache_clear()
        assert sources.import_graph() == parsed and cache.is_file()
        sources.import_graph.cache_clear()
        assert sources.import_graph() == parsed  # from the cache
        record = json.loads(cache.read_text(encoding="utf-8"))
        for stale in (
            {"key": "another source", "graph": {"pipeline.steps": []}},
            {**record, "graph": {"pipeline.steps": []}, "key": record["key"][::-1]},
        ):
            cache.write_text(json.dumps(stale), encoding="utf-8")
            sources.import_graph.cache_clear()
            assert sources.import_graph() == parsed
            assert json.loads(cache.read_text(encoding="utf-8")) == record
        cache.write_text("{not json", encoding="utf-8")
        sources.import_graph.cache_clear()
        assert sources.import_graph() == parsed
    finally:
        sources.import_graph.cache_clear()


@pytest.mark.parametrize(
    "p, text",
    [
        (0.0004, "P < .001"),
        (0.031, "P = .03"),
        (0.0042, "P = .004"),
        (0.9999, "P > .99"),
        (float("nan"), "P not computed"),
    ],
)
def test_p_in_metadata_reads_as_in_the_report(p, text):
    assert p_text(p) == text


def _status(
    instance: dg.DagsterInstance, defs: dg.Definitions
) -> dict[str, tuple[StaleStatus, set]]:
    """Each asset's stale status and the categories of its own stale causes, as the UI shows
    them."""
    resolver = CachingStaleStatusResolver(
        instance, defs.resolve_asset_graph(), LoadingContextForTest(instance)
    )
    out = {}
    for key in defs.resolve_all_asset_keys():
        causes = resolver.get_stale_causes(key)
        out[key.path[-1]] = (
            resolver.get_status(key),
            {c.category for c in causes if c.asset_key == key},
        )
    return out


def test_a_scoring_edit_marks_scores_and_everything_downstream_stale(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    write_small_study(raw / STUDY, n_patients=12)
    monkeypatch.setenv("OUTCOMES_RAW", str(raw))
    monkeypatch.setenv("OUTCOMES_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("OUTCOMES_REPORTS", str(tmp_path / "reports"))

    home = tmp_path / "dagster_home"
    home.mkdir()
    defs = build_definitions()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance)
        assert result.success
        primary_p = next(
            e.materialization.metadata["primary P"].value
            for e in result.get_asset_materialization_events()
            if e.asset_key.path[-1] == "paired_tests"
        )
        assert re.fullmatch(r"P (= \.\d{2,3}|< \.001|> \.99)", primary_p)
        fresh = _status(instance, defs)
        assert {name for name, (status, _) in fresh.items() if status != StaleStatus.FRESH} == set()

        # The same definitions as after an edit to the scoring module.
        monkeypatch.setattr(sources, "module_source", _edited("pipeline.scores"))
        edited = build_definitions()
        graph_before, graph_after = defs.resolve_asset_graph(), edited.resolve_asset_graph()
        changed = {
            key.path[-1]
            for key in edited.resolve_all_asset_keys()
            if graph_before.get(key).code_version != graph_after.get(key).code_version
        }
        assert changed == SCORES_AND_DOWNSTREAM

        status = _status(instance, edited)
        for name in SCORES_AND_DOWNSTREAM:
            assert status[name] == (StaleStatus.STALE, {StaleCauseCategory.CODE}), name
        for name in UPSTREAM_OF_SCORES | {"raw_files"}:
            assert status[name][0] == StaleStatus.FRESH, name

        # Materializing what is stale brings everything up to date again, ingest not rerun.
        stale = [
            key
            for key in edited.resolve_all_asset_keys()
            if status[key.path[-1]][0] == StaleStatus.STALE
        ]
        rerun = edited.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=stale
        )
        assert rerun.success
        assert {
            e.asset_key.path[-1] for e in rerun.get_asset_materialization_events()
        } == SCORES_AND_DOWNSTREAM
        assert {
            name for name, (s, _) in _status(instance, edited).items() if s != StaleStatus.FRESH
        } == set()
