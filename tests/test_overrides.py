"""Rerunning with another analysis choice, without editing the spec; provenance records it."""

from __future__ import annotations

import json
import re

import dagster as dg
import pandas as pd
import pytest

from assets.definitions import build_definitions
from pipeline import paths
from pipeline.spec.study import SpecError, load_study, with_overrides

UP_TO_TESTS = [
    dg.AssetKey(["demo", name]) for name in ("ingested", "scores", "pairs", "paired_tests")
]


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("OUTCOMES_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("OUTCOMES_REPORTS", str(tmp_path / "reports"))
    return tmp_path / "reports" / "demo"


def _run(run_config: dict) -> dg.ExecuteInProcessResult:
    job = build_definitions().resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        return job.execute_in_process(
            run_config=run_config, instance=instance, asset_selection=UP_TO_TESTS
        )


def test_run_config_overrides_the_post_visit_rule_and_is_recorded(workspace):
    overrides = {"post_min_day": 180, "test": "t"}
    assert _run({"resources": {"analysis_options": {"config": overrides}}}).success
    results = pd.read_csv(workspace / "tables" / "paired_tests.csv")
    assert set(results["post_visit"]) == {"last follow-up (day ≥ 180)"}
    assert set(results.loc[results["group"] == "all", "test_used"]) == {"paired t"}
    assert json.loads((workspace / "provenance.json").read_text())["analysis_overrides"] == {
        "post_min_day": 180,
        "test": "t",
    }

    # The next run without overrides goes back to the spec, and says so.
    assert _run({}).success
    results = pd.read_csv(workspace / "tables" / "paired_tests.csv")
    assert set(results["post_visit"]) == {"last follow-up (day ≥ 90)"}
    assert json.loads((workspace / "provenance.json").read_text())["analysis_overrides"] == {}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"test": "anova"}, "'test' must be one of wilcoxon, t, auto; got 'anova'"),
        ({"alpha": 2}, "'alpha' must lie strictly between 0 and 1"),
        ({"outcomes": []}, "'outcomes' cannot be overridden"),
        (
            {"post_rule": "named_visit"},
            "'post_visit' is missing. Set it in the run configuration too.",
        ),
        # A misspelt choice must not silently leave the spec's in force.
        ({"multiplicty": "bh"}, "'multiplicty' cannot be overridden; did you mean 'multiplicity'?"),
        (
            {"post_rule": "nearest_day", "post_target_day": 30, "post_min_day": 60},
            "'post_target_day' must lie in the post window (day ≥ 60), got 30.",
        ),
    ],
)
def test_bad_override_is_refused_with_a_clear_message(overrides, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        with_overrides(load_study(paths.RAW_DATA_DIR / "demo"), overrides)


def test_launchpad_options_are_the_overrides_of_the_schema():
    """The Dagster resource offers exactly the overridable settings, with the schema's choices
    (plus "spec", the spec's own) and types, so the launchpad refuses what the schema would."""
    from typing import get_args

    from assets.resources import SPEC, AnalysisOptions
    from pipeline.spec.schema import AnalysisOverrides

    ours, theirs = AnalysisOptions.model_fields, AnalysisOverrides.model_fields
    assert list(ours) == list(theirs)
    for name, field in theirs.items():
        choices = [a for arg in get_args(field.annotation) for a in get_args(arg)]
        if choices:
            assert get_args(ours[name].annotation) == (SPEC, *choices), name
        else:
            assert ours[name].annotation == field.annotation, name
    assert AnalysisOptions(test="t", multiplicity=SPEC).overrides == {"test": "t"}
