"""The comparison for the benchmark: the same paired analysis written plainly in pandas and scipy.

What a statistician would write without the pipeline, for the registry's study spec: read the
two CSV files with pandas, score each planned outcome from its items with the published
formulas (the same ones :mod:`pipeline.instruments` declares), pick each subject's pre value
(latest on or before day 0) and post value (latest on or after day 90), and run the paired
t-test and the Wilcoxon signed-rank test (``scipy.stats``) with mean change, its 95% CI, d_z
and Shapiro-Wilk, for the whole cohort and for every level of the planned subgroups.

It does not quarantine, check identifiers, keep provenance or compute the Hodges-Lehmann
estimate (scipy has none; the Walsh-average median is quadratic in the number of pairs); it
is the analysis only. Its numbers are compared with the pipeline's as a check (``bench.md``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.instruments.scales import eface, face

# Which items make up each part of a score (eFACE domains and regions, FaCE domains and its
# reverse-worded items) is the pipeline's declaration; the formulas on them below are written out
# from the publications.
EFACE_STATIC = tuple(eface.STATIC)
EFACE_DYNAMIC = tuple(eface.DYNAMIC)
EFACE_SYNKINESIS = tuple(eface.SYNKINESIS)
EFACE_REGIONS = {
    "periocular": eface.PERIOCULAR,
    "midface_smile": eface.MIDFACE_SMILE,
    "lower_face_neck": eface.LOWER_FACE_NECK,
    "smile": eface.SMILE,
}
FACE_REVERSED = face.REVERSED
FACE_DOMAINS = {domain: items for domain, (_, items) in face.DOMAINS.items()}
SUBGROUPS = (
    "branches_transected",
    "etiology",
    "facelift",
    "cross_facial_nerve_graft",
    "nerve_rerouting",
)


def _mean(frame: pd.DataFrame) -> pd.Series:
    return frame.mean(axis=1, skipna=False)


def score(visits: pd.DataFrame, patients: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    """Every planned outcome of the registry spec, keyed (outcome, score), one value per visit
    row."""
    v = visits
    out: dict[tuple[str, str], pd.Series] = {}
    out["house_brackmann_observer", "grade"] = v["hb_observer"]
    out["house_brackmann_surgeon", "grade"] = v["hb_surgeon"]

    def total(prefix: str) -> pd.Series:
        columns = [c for c in v.columns if c.startswith(prefix)]
        return v[columns].sum(axis=1, min_count=len(columns))  # every item needed

    out["sunnybrook", "composite"] = 4 * total("sb_vol_") - 5 * total("sb_rest_") - total("sb_syn_")
    item = {k: 100 - (100 - v[f"eface_{k}"]).abs() for k in EFACE_STATIC}
    item.update({k: v[f"eface_{k}"] for k in (*EFACE_DYNAMIC, *EFACE_SYNKINESIS)})
    items = pd.DataFrame(item)
    static, dynamic = _mean(items[list(EFACE_STATIC)]), _mean(items[list(EFACE_DYNAMIC)])
    synkinesis = _mean(items[list(EFACE_SYNKINESIS)])
    out["eface", "total"] = (static + dynamic + synkinesis) / 3
    out["eface", "static"], out["eface", "dynamic"], out["eface", "synkinesis"] = (
        static,
        dynamic,
        synkinesis,
    )
    for region, names in EFACE_REGIONS.items():
        out["eface", region] = _mean(items[list(names)])
    out["saq", "total"] = v[[f"saq_{k}" for k in range(1, 10)]].sum(axis=1, min_count=9)
    face = pd.DataFrame(
        {k: (6 - v[f"face_{k}"]) if k in FACE_REVERSED else v[f"face_{k}"] for k in range(1, 16)}
    )
    out["face", "total"] = (face.sum(axis=1, min_count=15) - 15) / 60 * 100
    for domain, ks in FACE_DOMAINS.items():
        out["face", domain] = (
            (face[list(ks)].sum(axis=1, min_count=len(ks)) - len(ks)) / (4 * len(ks)) * 100
        )
    # FDI: each sub-scale over the items answered (physical answers of 0 left out), ((sum - N) / N)
    # x 25 or 20.
    physical = v[[f"fdi_{k}" for k in range(1, 6)]].where(lambda x: x > 0)
    social = v[[f"fdi_{k}" for k in range(6, 11)]]
    n_p, n_s = physical.count(axis=1), social.count(axis=1)
    out["fdi", "physical"] = (physical.sum(axis=1) - n_p) / n_p.where(n_p > 0) * 25
    out["fdi", "social"] = (social.sum(axis=1) - n_s) / n_s.where(n_s > 0) * 20
    out["fdi", "total"] = (out["fdi", "physical"] + out["fdi", "social"]) / 2
    total = v[["fngs_brow", "fngs_eye", "fngs_nlf", "fngs_oral", "fngs_secondary"]].sum(
        axis=1, min_count=5
    )
    out["fngs", "total"] = total
    out["fngs", "grade"] = pd.cut(total, [-np.inf, 4, 9, 14, 19, 23, np.inf], labels=False) + 1
    left = v["study_id"].map(patients.set_index("study_id")["side"]).eq("left")
    for measure in ("commissure_excursion", "smile_angle"):
        a = v[f"lm_{measure}_left"].where(left, v[f"lm_{measure}_right"])
        h = v[f"lm_{measure}_right"].where(left, v[f"lm_{measure}_left"])
        out["landmarks", f"{measure}_asymmetry"] = (a - h).abs()
    return out


def pair(visits: pd.DataFrame, scores: dict[tuple[str, str], pd.Series]) -> pd.DataFrame:
    """Per outcome and subject: latest value on or before day 0 and latest on or after day 90."""
    keys = visits[["study_id", "visit", "day"]]
    frames = []
    for (outcome, score_name), values in scores.items():
        d = keys.assign(value=values.astype(float)).dropna(subset=["value"])
        d = d.sort_values(["study_id", "day", "visit"])
        pre = d[d["day"] <= 0].groupby("study_id").tail(1).set_index("study_id")["value"]
        post = d[d["day"] >= 90].groupby("study_id").tail(1).set_index("study_id")["value"]
        both = pd.concat({"pre_value": pre, "post_value": post}, axis=1, join="inner")
        frames.append(both.reset_index().assign(outcome=outcome, score=score_name))
    return pd.concat(frames, ignore_index=True)


def paired_tests(pairs: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """Paired t, Wilcoxon, mean change with 95% CI, d_z and Shapiro-Wilk per outcome and group."""
    p = patients.set_index("study_id")
    median = pd.to_numeric(p["branches_transected"]).median()
    # Level labels as the pipeline writes them, so the two tables can be matched row by row.
    groups = {
        "branches_transected": np.where(
            pd.to_numeric(p["branches_transected"]) > median,
            f"branches_transected > {median:g}",
            f"branches_transected ≤ {median:g}",
        )
    }
    for g in SUBGROUPS[1:]:
        groups[g] = (g + ": " + p[g].astype(str)).to_numpy()
    level = pd.DataFrame(groups, index=p.index)
    rows = []
    for (outcome, score_name), d in pairs.groupby(["outcome", "score"], sort=False):
        sets = [("all", d)]
        for g in SUBGROUPS:
            lv = d["study_id"].map(level[g])
            sets += [(name, part) for name, part in d.groupby(lv, sort=True)]
        for group, part in sets:
            diff = (part["post_value"] - part["pre_value"]).to_numpy()
            n = diff.size
            row = {
                "outcome": outcome,
                "score": score_name,
                "group": group,
                "n_pairs": n,
                "mean_diff": diff.mean() if n else np.nan,
            }
            if n >= 2 and diff.std() > 0:
                t = stats.ttest_rel(part["post_value"], part["pre_value"])
                ci = t.confidence_interval(0.95)
                row.update(
                    t=t.statistic,
                    p_t=t.pvalue,
                    ci_low=ci.low,
                    ci_high=ci.high,
                    sd_diff=diff.std(ddof=1),
                    dz=diff.mean() / diff.std(ddof=1),
                )
            nonzero = diff[diff != 0]
            if nonzero.size >= 1:
                # R's rule, as the pipeline follows it: exact only below 50 differences without
                # ties or zeros, else the normal approximation (scipy's default would run a
                # permutation test on small tied samples).
                exact = (
                    nonzero.size < 50 and nonzero.size == n and np.unique(np.abs(nonzero)).size == n
                )
                w = stats.wilcoxon(
                    diff,
                    zero_method="wilcox",
                    correction=True,
                    method="exact" if exact else "approx",
                )
                row.update(p_wilcoxon=w.pvalue)
            if 3 <= n <= 5000 and np.ptp(diff) > 0:
                row.update(shapiro_p=stats.shapiro(diff).pvalue)
            rows.append(row)
    return pd.DataFrame(rows)


def run(folder: Path) -> tuple[list[tuple[str, float, int]], pd.DataFrame]:
    """The whole baseline on a registry folder: per-stage (name, seconds, rows) and the results."""
    timings = []
    start = time.perf_counter()
    patients = pd.read_csv(folder / "patients.csv", dtype={"study_id": str})
    visits = pd.read_csv(folder / "visits.csv", dtype={"study_id": str, "visit": str})
    timings.append(("read", time.perf_counter() - start, len(patients) + len(visits)))
    start = time.perf_counter()
    scores = score(visits, patients)
    timings.append(("score", time.perf_counter() - start, len(visits) * len(scores)))
    start = time.perf_counter()
    pairs = pair(visits, scores)
    timings.append(("pair", time.perf_counter() - start, len(pairs)))
    start = time.perf_counter()
    results = paired_tests(pairs, patients)
    timings.append(("tests", time.perf_counter() - start, len(pairs)))
    return timings, results
