"""The site summary bundle (pipeline/site_summary.py, `outcomes export-summary`): aggregates only,
small cells suppressed, nothing of a patient recoverable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.site_summary import (
    FORMAT_VERSION,
    bundle,
    direction_counts,
    outcome_summaries,
    to_json,
)
from pipeline.spec.study import load_study
from pipeline.statistics.pooled import MOMENTS
from small_study import write_small_study


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """The small synthetic study (20 patients: House-Brackmann observer, Sunnybrook)."""
    return write_small_study(tmp_path_factory.mktemp("site") / "small", n_patients=20)


def pairs_frame(outcome: str, score: str, pre, post) -> pd.DataFrame:
    return pd.DataFrame(
        {"outcome": outcome, "score": score, "pre_value": pre, "post_value": post}, dtype=object
    ).astype({"pre_value": float, "post_value": float})


def reflected(values: np.ndarray) -> np.ndarray:
    """Each value mirrored through the mean (2 mean - x): the same mean, and with the other
    variable mirrored too, the same sums of squares and cross-product about the mean."""
    return 2 * values.mean() - values


def test_cohorts_that_share_the_aggregates_give_the_same_bundle(small):
    # Two cohorts of eight patients with different scores: the second is the first mirrored
    # through its means (Sunnybrook 16 + 24 - x before, 40 + 54 - y after...), so the two share
    # n, every sum, sum of squares and the cross-product, and every change is above 0 in both.
    # A bundle is a function of those alone: it cannot tell the cohorts apart, so no patient's
    # value can be had from it.
    study = load_study(small)
    pre = np.array([20, 35, 28, 41, 30, 25, 38, 23], float)  # mean 30
    post = np.array([52, 61, 58, 70, 60, 55, 66, 58], float)  # mean 60
    first = pd.concat(
        [
            pairs_frame("house_brackmann_observer", "grade", [5, 4, 5, 6, 4, 5, 4, 3], [3] * 8),
            pairs_frame("sunnybrook", "composite", pre, post),
        ]
    )
    second = pd.concat(
        [
            pairs_frame(
                "house_brackmann_observer", "grade", [4, 5, 4, 3, 5, 4, 5, 6], [3] * 8
            ),  # 9 - each grade: the same sums, the changes' signs unchanged
            pairs_frame("sunnybrook", "composite", reflected(pre), reflected(post)),
        ]
    )
    # The cohorts differ patient by patient and as sets of (before, after) pairs.
    as_pairs = [set(zip(f["pre_value"], f["post_value"])) for f in (first, second)]
    assert as_pairs[0] != as_pairs[1]
    a, b = (to_json(bundle(study, cohort)) for cohort in (first, second))
    assert a == b
    # ...and a bundle does change when an aggregate does.
    third = second.copy()
    third.iloc[-1, third.columns.get_loc("post_value")] += 1
    assert to_json(bundle(study, third)) != a


def leaves(node, path=()):
    """(path, value) of every leaf of a JSON document; list positions as '*'."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for value in node:
            yield from leaves(value, (*path, "*"))
    else:
        yield path, node


def test_export_summary_writes_aggregates_only(small, tmp_path, capsys):
    out = tmp_path / "site.json"
    assert main(["export-summary", "--study", str(small), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    text = out.read_text(encoding="utf-8")
    summary = json.loads(text)
    assert summary["format_version"] == FORMAT_VERSION
    # Every number in the bundle sits under a key of the format (docs/multi-centre.md): the
    # sums and counts per outcome, the plan's settings, the small-cell minimum, file sizes. No
    # list holds a number, so no list of values can be there.
    numeric = {
        "/".join(path)
        for path, value in leaves(summary)
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    allowed = {
        "format_version",
        "min_cell",
        "plan/pre/max_day",
        "plan/post/min_day",
        "plan/alpha",
        "plan/conf_level",
        "provenance/inputs/*/bytes",
        *(f"outcomes/*/moments/{m}" for m in MOMENTS),
        *(f"outcomes/*/change_direction/{d}" for d in ("increased", "unchanged", "decreased")),
    }
    assert "outcomes/*/moments/n" in numeric
    assert numeric <= allowed, numeric - allowed
    # No subject code and no value of a subjects column is written.
    patients = pd.read_csv(small / "patients.csv", dtype=str)
    strings = {value for _, value in leaves(summary) if isinstance(value, str)}
    for column in ("study_id", "sex", "etiology"):
        assert not strings & set(patients[column]), column
    assert not any(code in text for code in patients["study_id"])
    # The same inputs give the same bytes.
    again = tmp_path / "again.json"
    assert main(["export-summary", "--study", str(small), "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_an_outcome_with_fewer_pairs_than_the_minimum_is_suppressed_whole(small):
    study = load_study(small)
    pairs = pd.concat(
        [
            pairs_frame("house_brackmann_observer", "grade", [4, 5, 4, 3], [3, 3, 2, 2]),
            pairs_frame("sunnybrook", "composite", [20, 30, 40, 50, 60], [30, 30, 50, 70, 90]),
        ]
    )
    hb, sb = outcome_summaries(pairs, study)
    assert hb["suppressed"] is True
    assert "moments" not in hb and "change_direction" not in hb
    assert sb["suppressed"] is False
    assert sb["moments"]["n"] == 5
    # 4 increased, 1 unchanged: the 1 is suppressed, and the 4 with it (5 - 4 would give it).
    assert sb["change_direction"] == {"increased": None, "unchanged": None, "decreased": 0}


def test_direction_counts_suppress_small_counts_and_their_complement():
    change = np.array([1.0] * 10 + [0.0] * 6 + [-1.0] * 7)
    assert direction_counts(change, 5) == {"increased": 10, "unchanged": 6, "decreased": 7}
    # One small count (2): the smallest other (6) goes with it.
    change = np.array([1.0] * 10 + [0.0] * 6 + [-1.0] * 2)
    assert direction_counts(change, 5) == {"increased": 10, "unchanged": None, "decreased": None}
    # Two small counts hide each other; a zero is no small cell.
    change = np.array([1.0] * 10 + [0.0] * 3 + [-1.0] * 2)
    assert direction_counts(change, 5) == {"increased": 10, "unchanged": None, "decreased": None}
    assert direction_counts(np.ones(9), 5) == {"increased": 9, "unchanged": 0, "decreased": 0}


def test_a_site_exports_its_bundle_without_dagster(small, tmp_path):
    # A site has the `outcomes` command and its own study folder, not the coordinating
    # centre's Dagster set-up: the command's entry point (assets.cli:main, pyproject.toml)
    # exports a bundle without importing Dagster.
    import subprocess
    import sys

    out = tmp_path / "site.json"
    script = (
        "import sys\n"
        "from assets.cli import main\n"
        f"assert main(['export-summary', '--study', {str(small)!r}, '--out', {str(out)!r}]) == 0\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'dagster')\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["format_version"] == FORMAT_VERSION
