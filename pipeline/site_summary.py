"""A site's summary bundle: what a centre of a multi-centre study sends the coordinating centre.

``outcomes export-summary --study DIR`` reads the site's exports as ``outcomes run`` does
(ingestion, scoring, pairing, in a warehouse held in memory: the site's own warehouse and
reports are not touched), and writes one JSON file holding, per planned outcome, only the
aggregates the pooled analyses need (:data:`pipeline.statistics.pooled.MOMENTS`: the number of
pairs, the sums, the sums of squares and the cross-product of the values before and after and of
the change) and how many patients' scores went up, stayed and went down; with them the
instruments and scoring versions, the analysis plan and the hashes of the inputs.

No subject-level row, no subject code, no date, no free text and no subjects column is in it.
An outcome with fewer pairs than the spec's ``[identifiers] min_cell`` (default 5) is
suppressed whole (not even its number of pairs is given); a direction count between 1 and
``min_cell - 1`` is suppressed, and with it the next smallest count of that outcome, so that it
cannot be had by subtraction from the number of pairs. The format is described in
``docs/multi-centre.md`` (:data:`FORMAT_VERSION`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import paths, warehouse
from pipeline.ingest.ingestion import ingest_study
from pipeline.ingest.readers import sha256
from pipeline.pairing import outcomes_frame, pair_study, primary_pairs
from pipeline.provenance import fingerprint, git_state, package_versions
from pipeline.scores import score_study
from pipeline.spec.study import Study

#: What the file is, and the version of its layout; a reader refuses any other.
FORMAT = "facial-outcomes site summary"
FORMAT_VERSION = 1
#: The change directions counted per outcome, in the bundle's order.
DIRECTIONS = ("increased", "unchanged", "decreased")


def default_path(study: Study, reports_dir: Path | None = None) -> Path:
    """Where ``export-summary`` writes a study's bundle unless told: beside its reports."""
    reports = Path(reports_dir) if reports_dir else paths.reports_dir()
    return reports / study.name / f"{study.name}.site-summary.json"


def scoring_hash(study: Study, instrument: str, score: str, version: str) -> str:
    """SHA-256 of how a score is computed (its formula, range, direction and missing-item
    rule as the instrument registry or the spec defines them): two sites agree on it iff they
    score the same way."""
    definition = study.instrument(instrument).score(score, version or None)
    text = json.dumps(
        [
            definition.formula,
            definition.minimum,
            definition.maximum,
            definition.higher_is_better,
            definition.min_answered,
            definition.unit,
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def analysis_plan(study: Study) -> dict[str, object]:
    """The parts of the plan that decide what a pooled number means: which visits are paired,
    the test, the confidence level and the outcomes (a pooled study refuses sites that
    differ in them)."""
    plan = study.analysis
    return {
        "pre": {"rule": plan.pre_rule, "min_day": plan.pre_min_day, "max_day": plan.pre_max_day},
        "post": {
            "rule": plan.post_rule,
            "min_day": plan.post_min_day,
            "max_day": plan.post_max_day,
            "visit": plan.post_visit,
            "target_day": plan.post_target_day,
        },
        "test": plan.test,
        "alpha": plan.alpha,
        "conf_level": plan.conf_level,
        "primary": plan.primary,
        "outcomes": [{"outcome": o.name, "score": o.score} for o in plan.outcomes],
    }


def direction_counts(change: np.ndarray, min_cell: int) -> dict[str, int | None]:
    """How many changes are above, at and below zero, small counts suppressed (None).

    A count from 1 to ``min_cell - 1`` is suppressed; when only one is, the smallest other
    count is too, since the number of pairs less the two others would give it back.
    """
    change = np.asarray(change, dtype=float)
    counts = {
        "increased": int((change > 0).sum()),
        "unchanged": int((change == 0).sum()),
        "decreased": int((change < 0).sum()),
    }
    small = [d for d in DIRECTIONS if 0 < counts[d] < min_cell]
    if len(small) == 1:
        others = sorted((counts[d], DIRECTIONS.index(d), d) for d in DIRECTIONS if d not in small)
        small.append(others[0][2])
    return {d: (None if d in small else counts[d]) for d in DIRECTIONS}


def outcome_summaries(pairs: pd.DataFrame, study: Study) -> list[dict[str, object]]:
    """One entry per planned outcome (spec order) from the study's pairs (``outcome``,
    ``score``, ``pre_value``, ``post_value``): what the outcome is, and its aggregates or
    ``"suppressed": true``. Nothing of a subject but these sums and counts is read."""
    from pipeline.statistics.pooled import moments

    plan = study.analysis
    entries = []
    for row in outcomes_frame(study).itertuples(index=False):
        chosen = pairs[(pairs["outcome"] == row.outcome) & (pairs["score"] == row.score)]
        chosen = chosen.dropna(subset=["pre_value", "post_value"])
        entry: dict[str, object] = {
            "outcome": row.outcome,
            "instrument": row.instrument,
            "rater": row.rater or "",
            "score": row.score,
            "version": row.version,
            "scoring_sha256": scoring_hash(study, row.instrument, row.score, row.version),
            "label": row.label,
            "higher_is_better": bool(row.higher_is_better),
            "comparison": {"pre": plan.pre_label, "post": plan.post_label},
        }
        if len(chosen) < study.min_cell:
            entry["suppressed"] = True
        else:
            pre = chosen["pre_value"].to_numpy(float)
            post = chosen["post_value"].to_numpy(float)
            entry["suppressed"] = False
            entry["moments"] = moments(pre, post)
            entry["change_direction"] = direction_counts(post - pre, study.min_cell)
        entries.append(entry)
    return entries


def bundle(study: Study, pairs: pd.DataFrame) -> dict[str, object]:
    """The whole site summary of ``study`` (:data:`FORMAT_VERSION`) from its pairs."""
    from pipeline.statistics.pooled import MOMENTS

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "study": study.name,
        "title": study.title,
        "synthetic": study.synthetic,
        "min_cell": study.min_cell,
        "moments": list(MOMENTS),
        "plan": analysis_plan(study),
        "outcomes": outcome_summaries(pairs, study),
        "provenance": {
            "spec": {"file": study.spec_path.name, "sha256": study.spec_sha256},
            "input_fingerprint": fingerprint(study),
            "inputs": [
                {"file": p.name, "sha256": sha256(p), "bytes": p.stat().st_size}
                for p in study.input_paths
            ],
            "code": git_state(),
            "packages": package_versions(),
        },
    }


def study_pairs(study: Study) -> pd.DataFrame:
    """The study's pre/post pairs, computed from its exports as ``outcomes run`` computes them,
    in a warehouse held in memory (nothing is written anywhere)."""
    con = warehouse.in_memory()
    try:
        ingest_study(con, study)
        score_study(con, study)
        pair_study(con, study)
        return warehouse.read_frame(
            con,
            "SELECT outcome, score, pre_value, post_value "
            f"FROM {study.name}.pairs WHERE TRUE{primary_pairs(study)}",
        )
    finally:
        con.close()


def to_json(summary: dict[str, object]) -> str:
    """The bundle's text: indented, keys in the order written, every number exactly as
    computed (a float as its shortest round-trip form); no NaN, which JSON lacks."""
    return json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def export_summary(study: Study, out: Path) -> Path:
    """Write ``study``'s site summary bundle to ``out``; return the path."""
    text = to_json(bundle(study, study_pairs(study)))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(out)
    return out
