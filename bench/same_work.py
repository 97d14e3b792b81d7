"""The second comparison for the benchmark: the pipeline's paired analysis written by a careful
user in pandas and scipy, doing the same work as the pipeline's ingest, score, pair and analyse
steps.

:mod:`baseline` is what a user writes for the analysis alone. A careful user who must also meet
the pipeline's obligations writes this instead, on the same registry:

- **Identifier guard.** Every column of both files, read as text, is checked by its name
  (names, addresses, phone, e-mail, record numbers, ...) and by its values (e-mail addresses,
  URLs, IP addresses, phone numbers, SSNs, dates more specific than a year, 5-digit ZIP codes,
  ages of 90 or more); a column of numbers below 501 cannot match a value rule and is skipped,
  as the pipeline skips it. The run stops if anything is found.
- **Quarantine.** Subject codes must be unique; a visit must name a known subject, once per
  visit code, with a whole number of days; every item cell must be a number within its item's
  range (and whole where the item is). Refused rows and cells are kept in a quarantine table
  (line, column, reason) and left out of the analysis.
- **Every score** of every instrument the spec maps (62 on the registry; :mod:`baseline`
  scores only the 24 planned outcomes): Sunnybrook's three sub-scores, eFACE's item scores,
  FNGS's regions, every landmark's difference, asymmetry and ratio, ...
- **Pairs** as :mod:`baseline` picks them.
- **Tests** as :mod:`baseline` (paired t, its CI, d_z, Wilcoxon by R's rule, Shapiro-Wilk), plus
  the **Hodges-Lehmann estimate with its confidence interval** (scipy has none): below 50
  differences without ties or zeros, the median of the Walsh averages; otherwise, as R does,
  the roots of the signed-rank z of ``d - mu`` (average ranks over the distinct differences,
  tie-corrected, with the continuity correction for the limits) found by
  ``scipy.optimize.brentq`` to R's tolerance of 1e-4; and Holm's adjustment over the secondary
  outcomes
  (``statsmodels.stats.multitest.multipletests``).

Item ranges and the scores' item lists are read from the pipeline's instrument declarations,
as :mod:`baseline` reads eFACE's and FaCE's; the code on them is plain pandas and scipy.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import baseline
import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests

from pipeline.spec.study import item_columns, load_study

NAME_RULES = re.compile(
    r"(^|_)(first_?name|last_?name|full_?name|surname|street|address|city|phone|fax|e_?mail|"
    r"ssn|social_security|mrn|medical_record|insurance|account|licen[cs]e|vehicle|device_id|"
    r"url|ip_address|biometric|photo|zip|postcode|birth|dob)($|_)",
    re.IGNORECASE,
)
VALUE_RULES = {
    "e-mail": r"[\w.+-]+@[\w-]+\.[\w.]+",
    "URL": r"https?://|www\.",
    "IP address": r"\b\d{1,3}(?:\.\d{1,3}){3}\b",
    "phone": r"\(?\b\d{3}\)?[-. ]\d{3}[-. ]\d{4}\b",
    "SSN": r"\b\d{3}-\d{2}-\d{4}\b",
    "date": r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b",
    "ZIP code": r"^\d{5}(?:-\d{4})?$",
}
PRIMARY = "house_brackmann_observer"


def identifier_guard(frames: dict[str, pd.DataFrame], folder: Path) -> list[str]:
    """The columns that look like identifiers (empty when none): by name and by value. Text
    columns are checked as read; a column pandas read as numbers is checked as text (read again,
    that column alone: a ZIP code loses its leading zero as a number) unless every value is
    below 501, which no value rule can match."""
    found = []
    for file, frame in frames.items():
        for column in frame.columns:
            if NAME_RULES.search(column):
                found.append(f"{file}: {column} (name)")
            values = frame[column]
            if pd.api.types.is_numeric_dtype(values):
                if (values.dropna().abs() < 501).all():
                    continue  # no value rule can match a number below 501
                if column == "age" and (values >= 90).any():
                    found.append(f"{file}: {column} (age 90 or more)")
                values = pd.read_csv(folder / file, usecols=[column], dtype=str)[column]
            text = values.dropna().astype(str)
            for rule, pattern in VALUE_RULES.items():
                if text.str.contains(pattern, regex=True).any():
                    found.append(f"{file}: {column} ({rule})")
    return found


def quarantine(
    patients: pd.DataFrame, visits: pd.DataFrame, items: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The accepted patients and visits (item cells as numbers, refused ones empty) and the
    quarantine: one row per refused row or cell (``file, line, column, reason``)."""
    held = []
    duplicated = patients["study_id"].duplicated(keep=False)
    held.append(
        pd.DataFrame({"file": "patients.csv", "line": patients.index[duplicated] + 2}).assign(
            column="study_id", reason="duplicate subject"
        )
    )
    patients = patients[~duplicated]
    day = pd.to_numeric(visits["day"], errors="coerce")
    bad = (
        ~visits["study_id"].isin(patients["study_id"])
        | visits.duplicated(["study_id", "visit"], keep=False)
        | day.isna()
        | (day != day.round())
    )
    held.append(
        pd.DataFrame({"file": "visits.csv", "line": visits.index[bad] + 2}).assign(
            column="", reason="visit refused"
        )
    )
    visits = visits[~bad].assign(day=day[~bad].astype(int))
    checked = {}
    for item in items.itertuples(index=False):
        raw = visits[item.column]
        # A column with a cell that is no number was read as text.
        value = raw if pd.api.types.is_numeric_dtype(raw) else pd.to_numeric(raw, errors="coerce")
        ok = value.between(item.minimum, item.maximum)
        if item.integer:
            ok &= value == value.round()
        refused = raw.notna() & ~ok
        if refused.any():
            held.append(
                pd.DataFrame({"file": "visits.csv", "line": visits.index[refused] + 2}).assign(
                    column=item.column, reason="value out of range or not a number"
                )
            )
        checked[item.column] = value.where(ok).astype(float)
    visits = visits.assign(**checked)
    return patients, visits, pd.concat(held, ignore_index=True)


def every_score(
    visits: pd.DataFrame, patients: pd.DataFrame
) -> tuple[dict[tuple[str, str], pd.Series], list[tuple[str, str]]]:
    """Every score of the mapped instruments, and which of them are :func:`baseline.score`'s
    planned outcomes."""
    v = visits
    out = baseline.score(visits, patients)
    planned = list(out)

    def total(prefix: str) -> pd.Series:
        columns = [c for c in v.columns if c.startswith(prefix)]
        return v[columns].sum(axis=1, min_count=len(columns))

    out["sunnybrook", "resting"] = 5 * total("sb_rest_")
    out["sunnybrook", "voluntary"] = 4 * total("sb_vol_")
    out["sunnybrook", "synkinesis"] = total("sb_syn_")
    for k in baseline.EFACE_STATIC:
        out["eface", f"item_{k}"] = 100 - (100 - v[f"eface_{k}"]).abs()
    for k in (*baseline.EFACE_DYNAMIC, *baseline.EFACE_SYNKINESIS):
        out["eface", f"item_{k}"] = v[f"eface_{k}"]
    regions = ("brow", "eye", "nlf", "oral")
    for region in regions:
        out["fngs", f"region_{region}"] = v[f"fngs_{region}"]
    out["fngs", "regional_sum"] = v[[f"fngs_{r}" for r in regions]].sum(axis=1, min_count=4)
    left = v["study_id"].map(patients.set_index("study_id")["side"]).eq("left")
    measures = sorted({c[3:].rsplit("_", 1)[0] for c in v.columns if c.startswith("lm_")})
    for measure in measures:
        a = v[f"lm_{measure}_left"].where(left, v[f"lm_{measure}_right"])
        h = v[f"lm_{measure}_right"].where(left, v[f"lm_{measure}_left"])
        out["landmarks", f"{measure}_difference"] = a - h
        out["landmarks", f"{measure}_asymmetry"] = (a - h).abs()
        out["landmarks", f"{measure}_ratio"] = a / h.where(h != 0)
    return out, planned


def _signed_rank_z(values: np.ndarray, counts: np.ndarray, mu: float, correct: bool) -> float:
    """R's signed-rank z of ``d - mu`` (zeros dropped, average ranks, tie-corrected variance),
    for the sample holding ``counts[k]`` copies of ``values[k]``: ranked over the distinct
    values, as a careful user does when a graded score has a few dozen distinct differences
    among a registry's hundred thousand (ranking every difference at every step of the root
    search takes minutes there)."""
    x = values - mu
    keep = x != 0
    x, c = x[keep], counts[keep]
    n = c.sum()
    if n == 0:
        return np.nan
    a = np.abs(x)
    order = np.argsort(a, kind="stable")
    a, x, c = a[order], x[order], c[order]
    group = np.cumsum(np.r_[True, a[1:] != a[:-1]]) - 1
    sizes = np.bincount(group, weights=c)
    average = (np.cumsum(sizes) - sizes + (sizes + 1) / 2)[group]
    v = (c * average)[x > 0].sum()
    sigma = np.sqrt(n * (n + 1) * (2 * n + 1) / 24 - (sizes**3 - sizes).sum() / 48)
    z = v - n * (n + 1) / 4
    if correct:
        z -= np.sign(z) * 0.5
    return z / sigma if sigma > 0 else np.nan


def hodges_lehmann(d: np.ndarray, conf_level: float = 0.95) -> tuple[float, float, float]:
    """Hodges-Lehmann estimate and confidence interval of the median difference."""
    x = d[d != 0]
    n = x.size
    if n == 0:
        return np.nan, np.nan, np.nan
    if n < 50 and np.unique(np.abs(x)).size == n and x.size == d.size:
        i, j = np.triu_indices(n)
        walsh = np.sort(x[i] + x[j]) / 2
        # The exact critical value from the signed-rank distribution's normal limit: close to
        # R's qsignrank, which scipy does not expose.
        q = stats.norm.ppf(1 - (1 - conf_level) / 2)
        k = max(int(np.floor(n * (n + 1) / 4 - q * np.sqrt(n * (n + 1) * (2 * n + 1) / 24))), 1)
        return float(np.median(walsh)), float(walsh[k - 1]), float(walsh[-k])
    lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        return lo, np.nan, np.nan
    values, counts = np.unique(x, return_counts=True)
    estimate = optimize.brentq(
        lambda mu: _signed_rank_z(values, counts, mu, False), lo, hi, xtol=1e-4
    )
    q = stats.norm.ppf(1 - (1 - conf_level) / 2)
    limits = []
    for target in (q, -q):
        f = lambda mu, t=target: _signed_rank_z(values, counts, mu, True) - t  # noqa: E731
        if np.sign(f(lo)) == np.sign(f(hi)):
            limits.append(np.nan)  # not achievable with so few differences
        else:
            limits.append(optimize.brentq(f, lo, hi, xtol=1e-4))
    return float(estimate), limits[0], limits[1]


def paired_tests(pairs: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """:func:`baseline.paired_tests` with the Hodges-Lehmann estimate and interval of every
    outcome and group, and Holm's adjustment over the secondary outcomes within each group."""
    results = baseline.paired_tests(pairs, patients)
    p = patients.set_index("study_id")
    median = pd.to_numeric(p["branches_transected"]).median()
    levels = {
        "branches_transected": np.where(
            pd.to_numeric(p["branches_transected"]) > median,
            f"branches_transected > {median:g}",
            f"branches_transected ≤ {median:g}",
        )
    }
    for g in baseline.SUBGROUPS[1:]:
        levels[g] = (g + ": " + p[g].astype(str)).to_numpy()
    level = pd.DataFrame(levels, index=p.index)
    hl = []
    for (outcome, score_name), d in pairs.groupby(["outcome", "score"], sort=False):
        sets = [("all", d)]
        for g in baseline.SUBGROUPS:
            sets += list(d.groupby(d["study_id"].map(level[g]), sort=True))
        for group, part in sets:
            diff = (part["post_value"] - part["pre_value"]).to_numpy()
            est, low, high = hodges_lehmann(diff)
            hl.append((outcome, score_name, group, est, low, high))
    hl = pd.DataFrame(hl, columns=["outcome", "score", "group", "hl", "hl_low", "hl_high"])
    results = results.merge(hl, on=["outcome", "score", "group"], how="left")
    results["p_adj"] = np.nan
    secondary = (results["outcome"] != PRIMARY) & results["p_wilcoxon"].notna()
    for _, idx in results[secondary].groupby("group").groups.items():
        results.loc[idx, "p_adj"] = multipletests(results.loc[idx, "p_wilcoxon"], method="holm")[1]
    return results


def run(folder: Path) -> tuple[list[tuple[str, float, int]], pd.DataFrame]:
    """The whole same-work baseline on a registry folder: per-stage (name, seconds, rows) and
    the results."""
    items = item_columns(load_study(folder))
    timings = []
    start = time.perf_counter()
    text = {"study_id": str, "visit": str}
    patients = pd.read_csv(folder / "patients.csv", dtype=text)
    visits = pd.read_csv(folder / "visits.csv", dtype=text)
    found = identifier_guard({"patients.csv": patients, "visits.csv": visits}, folder)
    if found:
        raise SystemExit("identifiers found: " + "; ".join(found))
    patients, visits, held = quarantine(patients, visits, items)
    timings.append(("read, guard, quarantine", time.perf_counter() - start, len(visits)))
    start = time.perf_counter()
    scores, planned = every_score(visits, patients)
    timings.append(("score", time.perf_counter() - start, len(visits) * len(scores)))
    start = time.perf_counter()
    pairs = baseline.pair(visits, {k: scores[k] for k in planned})
    timings.append(("pair", time.perf_counter() - start, len(pairs)))
    start = time.perf_counter()
    results = paired_tests(pairs, patients)
    timings.append(("tests", time.perf_counter() - start, len(pairs)))
    return timings, results
