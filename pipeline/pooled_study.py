"""A pooled (multi-centre) study: site summary bundles in, pooled and per-site results out.

A study folder whose ``study.toml`` says ``[study] kind = "pooled"`` lists its sites' bundles
(:mod:`pipeline.site_summary`) under ``[pooled]``. :func:`read_bundles` reads them and refuses
bundles that cannot be pooled (another format version, or instruments, scoring or plans that
disagree: the message names the sites and the setting, never a value);
:func:`analyse_pooled` computes the exact pooled paired t test of all patients, each site's mean
change, their meta-analysis and, when the spec names moderators among its declared site
characteristics (``[pooled.characteristics]``, checked by :func:`load_pooled_study`), the
meta-regression of the sites' mean changes on them (:mod:`pipeline.statistics.pooled`);
:func:`write_pooled_outputs` writes Table 2 (pooled and per-site rows), the meta-regression's
eTable, a forest plot per outcome, the Methods paragraph, a short report and
``provenance.json`` listing each bundle's hash. ``outcomes pool --study DIR`` runs them
without Dagster; ``assets/pooled_assets.py`` makes them a Dagster graph.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from pipeline import site_summary
from pipeline.ingest.readers import sha256
from pipeline.spec import schema
from pipeline.spec.schema import SpecError
from pipeline.spec.study import SPEC_FILENAME
from pipeline.warehouse import atomic, write_frame

# The statistics (scipy, statsmodels) are imported by the functions that use them: loading the
# Dagster definitions reads pooled specs and needs none of them.


@dataclass(frozen=True)
class SiteCharacteristic:
    """A characteristic the coordinating centre declared of every site
    (``[pooled.characteristics.<name>]``), and each site's value, in the spec's site order."""

    name: str
    label: str
    unit: str
    # categorical: its levels, the first the reference; () for a numeric characteristic
    levels: tuple[str, ...]
    values: tuple[float | str, ...]

    @property
    def numeric(self) -> bool:
        return not self.levels

    @property
    def terms(self) -> tuple[tuple[str, str], ...]:
        """The meta-regression's coefficients for it: (name, level) pairs, level "" for a
        numeric characteristic, else each level but the reference."""
        return (
            ((self.name, ""),)
            if self.numeric
            else tuple((self.name, level) for level in self.levels[1:])
        )


@dataclass(frozen=True)
class PooledStudy:
    name: str
    title: str
    folder: Path
    spec_path: Path
    synthetic: bool
    # (site name, bundle file name in the folder), in the spec's order
    sites: tuple[tuple[str, str], ...]
    tau2_method: str = "REML"
    hartung_knapp: bool = True
    # What meta.runs records of a study (pipeline.provenance.recorded_run): a pooled study
    # reads no export, so no identifier is let through and nothing is restricted.
    identifiers_allowed: tuple = ()
    restricted: bool = False
    # Declared site characteristics, and the names of those the meta-regression uses.
    characteristics: tuple[SiteCharacteristic, ...] = ()
    moderators: tuple[str, ...] = ()

    @property
    def bundle_paths(self) -> tuple[Path, ...]:
        return tuple(self.folder / bundle for _, bundle in self.sites)

    @property
    def input_paths(self) -> tuple[Path, ...]:
        return (self.spec_path, *self.bundle_paths)

    @property
    def spec_sha256(self) -> str:
        return hashlib.sha256(self.spec_path.read_bytes()).hexdigest()


def is_pooled(folder: Path) -> bool:
    """Whether the study folder's spec says ``kind = "pooled"`` (False for any other spec,
    readable or not: :func:`pipeline.spec.study.load_study` says what is wrong with those)."""
    try:
        data = tomllib.loads((Path(folder) / SPEC_FILENAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    study = data.get("study")
    return isinstance(study, dict) and study.get("kind") == "pooled"


def load_pooled_study(folder: Path) -> PooledStudy:
    """Read and check ``<folder>/study.toml`` of a pooled study."""
    folder = Path(folder)
    path = folder / SPEC_FILENAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: not valid TOML ({err}). Fix the syntax at that line.") from None
    spec = schema.validate(schema.PooledSpecFile, data, "", path)
    names = [site.name for site in spec.pooled.sites]
    for i, site in enumerate(spec.pooled.sites):
        where = f"{path}: pooled.sites[{i}]"
        if names.count(site.name) > 1:
            raise SpecError(f"{where}: the site name is used twice; give each site its own name.")
        target = folder / site.bundle
        if not target.resolve().is_relative_to(folder.resolve()):
            raise SpecError(f"{where}: the bundle lies outside {folder}; copy it into the folder.")
        if not target.is_file():
            raise SpecError(
                f"{where}: the bundle {site.bundle} is not in {folder}. Put the site's "
                "site-summary file there or correct the name."
            )
    characteristics = _characteristics(spec.pooled, path)
    return PooledStudy(
        name=spec.study.name,
        title=spec.study.title or spec.study.name,
        folder=folder,
        spec_path=path,
        synthetic=spec.study.synthetic,
        sites=tuple((site.name, site.bundle) for site in spec.pooled.sites),
        tau2_method=spec.pooled.tau2_method,
        hartung_knapp=spec.pooled.hartung_knapp,
        characteristics=characteristics,
        moderators=tuple(spec.pooled.moderators),
    )


def _characteristics(pooled: schema.PooledTable, path: Path) -> tuple[SiteCharacteristic, ...]:
    """The declared site characteristics with every site's value, checked: each site gives a
    number or a declared level for each, and the moderators are declared, tell the sites apart
    and leave the meta-regression a residual degree of freedom. Messages name the setting and
    the site, never a value."""
    declared = pooled.characteristics
    for i, site in enumerate(pooled.sites):
        for name in site.characteristics:
            if name not in declared:
                raise SpecError(
                    f"{path}: pooled.sites[{i}].characteristics.{name} is not declared; add "
                    f"[pooled.characteristics.{name}] (numeric, or with its levels) or remove it."
                )
    out = []
    for name, spec in declared.items():
        where = f"{path}: pooled.characteristics.{name}"
        if spec.levels and (len(spec.levels) < 2 or len(set(spec.levels)) < len(spec.levels)):
            raise SpecError(
                f"{where}.levels: list two or more different levels (the first is the "
                "reference), or no levels for a numeric characteristic."
            )
        values = []
        for i, site in enumerate(pooled.sites):
            at = f"{path}: pooled.sites[{i}].characteristics.{name}"
            if name not in site.characteristics:
                raise SpecError(
                    f"{at} is missing: every site gives a value for every declared characteristic."
                )
            value = site.characteristics[name]
            if spec.levels and not (isinstance(value, str) and value in spec.levels):
                raise SpecError(
                    f"{at} is not one of the levels of pooled.characteristics.{name}; use one "
                    "of them, spelled as declared."
                )
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not spec.levels and not (number and math.isfinite(value)):
                raise SpecError(
                    f"{at} is not a number, and the characteristic is numeric; give a number "
                    f"or declare its levels under [pooled.characteristics.{name}]."
                )
            values.append(value if spec.levels else float(value))
        out.append(
            SiteCharacteristic(
                name=name,
                label=spec.label or name.replace("_", " "),
                unit=spec.unit,
                levels=tuple(spec.levels),
                values=tuple(values),
            )
        )
    by_name = {c.name: c for c in out}
    for name in pooled.moderators:
        if name not in by_name:
            raise SpecError(
                f"{path}: pooled.moderators names {name}, which is not declared; declare it "
                f"under [pooled.characteristics.{name}] with each site's value."
            )
    if len(set(pooled.moderators)) < len(pooled.moderators):
        raise SpecError(f"{path}: pooled.moderators names a characteristic twice; name it once.")
    if pooled.moderators:
        chosen = [by_name[name] for name in pooled.moderators]
        coefficients = 1 + sum(len(c.terms) for c in chosen)
        if len(pooled.sites) < coefficients + 1:
            raise SpecError(
                f"{path}: pooled.moderators needs at least {coefficients + 1} sites for its "
                f"{coefficients} coefficients (intercept included) and one residual degree of "
                f"freedom; the study has {len(pooled.sites)}. Name fewer moderators (a "
                "categorical one takes one coefficient per level but the first)."
            )
        import numpy as np

        design = moderator_design(chosen, list(range(len(pooled.sites))))
        if np.linalg.matrix_rank(design.to_numpy(float)) < design.shape[1]:
            raise SpecError(
                f"{path}: pooled.moderators cannot tell the sites apart (a numeric moderator "
                "is the same at every site, a level is at no site, or two moderators say the "
                "same); name other moderators."
            )
    return tuple(out)


def moderator_design(characteristics, rows) -> pd.DataFrame:
    """The meta-regression's model matrix: an ``intercept`` column of ones, each numeric
    characteristic as it is, and one 0/1 column per level of a categorical characteristic but
    its first (the reference, as R's treatment contrasts); ``rows`` are site positions in the
    spec's order. Columns are named ``name`` or ``name: level``."""
    columns = {"intercept": [1.0] * len(rows)}
    for c in characteristics:
        for name, level in c.terms:
            if level:
                columns[f"{name}: {level}"] = [float(c.values[i] == level) for i in rows]
            else:
                columns[name] = [float(c.values[i]) for i in rows]
    return pd.DataFrame(columns)


class BundleError(SpecError):
    """Bundles that cannot be read or pooled; the message names the files and the setting."""


def read_bundle(path: Path) -> dict:
    """One site summary bundle, its format checked."""
    try:
        bundle = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError(
            f"{path}: not a site summary bundle (not JSON text). Ask the site for the file "
            "`outcomes export-summary` wrote."
        ) from None
    if not isinstance(bundle, dict) or bundle.get("format") != site_summary.FORMAT:
        raise BundleError(
            f"{path}: not a site summary bundle (no format '{site_summary.FORMAT}'). Ask the "
            "site for the file `outcomes export-summary` wrote."
        )
    if bundle.get("format_version") != site_summary.FORMAT_VERSION:
        raise BundleError(
            f"{path}: a bundle of another format version than {site_summary.FORMAT_VERSION}, "
            "which this version of the pipeline reads; ask the site to export it again with "
            "the coordinating centre's version."
        )
    return bundle


def _differences(first, other, where: str = "") -> list[str]:
    """The settings (dotted paths) in which two JSON values differ."""
    if isinstance(first, dict) and isinstance(other, dict):
        out = []
        for key in dict.fromkeys([*first, *other]):
            out += _differences(first.get(key), other.get(key), f"{where}.{key}".strip("."))
        return out
    if isinstance(first, list) and isinstance(other, list) and len(first) == len(other):
        return [d for i, (a, b) in enumerate(zip(first, other)) for d in _differences(a, b, where)]
    return [] if first == other else [where]


#: What must be the same at every site, per outcome: what is measured, how it is scored and
#: which visits are compared.
OUTCOME_KEYS = ("instrument", "rater", "score", "version", "scoring_sha256", "higher_is_better")


def check_agreement(bundles: dict[str, dict], files: dict[str, str]) -> None:
    """Refuse bundles whose plans, outcomes, instruments or scoring disagree, naming the sites,
    their files and the settings that differ (never their values)."""
    sites = list(bundles)
    first = sites[0]
    for site in sites[1:]:
        pair = f"sites '{first}' ({files[first]}) and '{site}' ({files[site]})"
        differ = _differences(bundles[first]["plan"], bundles[site]["plan"], "plan")
        if differ:
            raise BundleError(
                f"{pair} differ in their analysis plans ({', '.join(dict.fromkeys(differ))}): "
                "pooled sites must pair the same visits and plan the same outcomes. Ask the "
                "sites to align their study.toml and export again."
            )
        for mine, theirs in zip(bundles[first]["outcomes"], bundles[site]["outcomes"]):
            keys = [k for k in OUTCOME_KEYS if mine.get(k) != theirs.get(k)]
            if keys:
                what = f"{mine['outcome']} {mine['score']}"
                raise BundleError(
                    f"{pair} differ in the {', '.join(keys)} of outcome {what}: the sites "
                    "measure or score it differently, so their numbers cannot be pooled. Ask "
                    "the sites to use the same instrument and scoring version and export again."
                )


def read_bundles(study: PooledStudy) -> tuple[dict[str, dict], dict[str, str]]:
    """Every site's bundle (by site name) and its SHA-256, checked to agree."""
    bundles = {name: read_bundle(study.folder / file) for name, file in study.sites}
    check_agreement(bundles, dict(study.sites))
    hashes = {name: sha256(study.folder / file) for name, file in study.sites}
    return bundles, hashes


def site_moments(bundles: dict[str, dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sites' sums, one row per site and outcome not suppressed (``site``, ``outcome``,
    ``score`` and :data:`MOMENTS`), and the planned outcomes (``position``, ``outcome``,
    ``score``, ``label``, ``higher_is_better``, ``sites_suppressed``)."""
    from pipeline.statistics.pooled import MOMENTS

    rows, suppressed = [], {}
    for site, bundle in bundles.items():
        for entry in bundle["outcomes"]:
            key = (entry["outcome"], entry["score"])
            suppressed.setdefault(key, 0)
            if entry["suppressed"]:
                suppressed[key] += 1
                continue
            rows.append({"site": site, "outcome": key[0], "score": key[1], **entry["moments"]})
    first = next(iter(bundles.values()))["outcomes"]
    planned = pd.DataFrame(
        [
            {
                "position": i,
                "outcome": e["outcome"],
                "score": e["score"],
                "label": e["label"],
                "higher_is_better": e["higher_is_better"],
                "sites_suppressed": suppressed[(e["outcome"], e["score"])],
            }
            for i, e in enumerate(first, start=1)
        ]
    )
    columns = ["site", "outcome", "score", *MOMENTS]
    return pd.DataFrame(rows, columns=columns), planned


@atomic  # the pooled tables replaced together, or none
def analyse_pooled(
    con: duckdb.DuckDBPyConnection, study: PooledStudy, bundles: dict[str, dict]
) -> dict[str, pd.DataFrame]:
    """The pooled analyses of every planned outcome, written to the warehouse:
    ``<study>.pooled_paired`` (exact paired t of all patients), ``<study>.site_effects`` (each
    site's mean change), ``<study>.meta_analysis`` (common and random effects) and, with
    moderators, ``<study>.meta_regression`` (:func:`site_meta_regression`)."""
    from pipeline.statistics.pooled import meta_analysis, pooled_paired, site_effects

    sums, planned = site_moments(bundles)
    conf_level = float(next(iter(bundles.values()))["plan"]["conf_level"])
    results = {
        "pooled_outcomes": planned,
        "pooled_paired": pooled_paired(sums, conf_level),
        "site_effects": site_effects(sums, conf_level),
    }
    results["meta_analysis"] = meta_analysis(
        results["site_effects"],
        tau2_method=study.tau2_method,
        hartung_knapp=study.hartung_knapp,
        conf_level=conf_level,
    )
    if study.moderators:
        results["meta_regression"] = site_meta_regression(study, results["site_effects"])
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {study.name}")
    # A study that no longer names moderators keeps no meta-regression of an earlier run.
    con.execute(f"DROP TABLE IF EXISTS {study.name}.meta_regression")
    for name, frame in results.items():
        write_frame(con, f"{study.name}.{name}", frame.assign(study=study.name))
    return results


def moderators(study: PooledStudy) -> list[SiteCharacteristic]:
    """The characteristics the meta-regression uses, in ``pooled.moderators``' order."""
    by_name = {c.name: c for c in study.characteristics}
    return [by_name[name] for name in study.moderators]


def site_meta_regression(study: PooledStudy, effects: pd.DataFrame) -> pd.DataFrame:
    """The meta-regression of every outcome's mean change on the declared moderators
    (:func:`pipeline.statistics.pooled.meta_regression_table`), with the study's tau² method,
    Hartung-Knapp setting and confidence level."""
    from pipeline.statistics.pooled import meta_regression_table

    chosen = moderators(study)
    design = moderator_design(chosen, list(range(len(study.sites))))
    design.index = [site for site, _ in study.sites]
    terms = {"intercept": ("intercept", "", "")}
    for c in chosen:
        for name, level in c.terms:
            terms[f"{name}: {level}" if level else name] = (
                name,
                level,
                c.levels[0] if level else "",
            )
    conf = float(effects["conf_level"].iloc[0]) if len(effects) else 0.95
    return meta_regression_table(
        effects,
        design,
        terms,
        tau2_method=study.tau2_method,
        hartung_knapp=study.hartung_knapp,
        conf_level=conf,
    )


def _estimator(study: PooledStudy) -> str:
    method = {
        "REML": "restricted maximum likelihood",
        "DL": "the DerSimonian-Laird method",
    }[study.tau2_method]
    test = "the Hartung-Knapp method" if study.hartung_knapp else "the normal distribution"
    return f"between-site variance τ² by {method}; confidence interval and test by {test}"


def methods_paragraph(study: PooledStudy, bundles: dict[str, dict], pooled: pd.DataFrame) -> str:
    """The Methods paragraph describing the pooling, in the plan's words."""
    first = next(iter(bundles.values()))
    plan = first["plan"]
    outcome = first["outcomes"][0]["comparison"]
    min_cells = sorted({int(b["min_cell"]) for b in bundles.values()})
    level = f"{float(plan['conf_level']):.0%}"
    patients = int(pooled["n_pairs"].max()) if len(pooled) else 0
    words = {2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six", 7: "Seven", 8: "Eight"}
    sites = words.get(len(bundles), f"The {len(bundles)}")
    return (
        f"{sites} sites analysed their own patients with the same study plan (before: "
        f"{outcome['pre']}; after: {outcome['post']}) and the same instruments and scoring, "
        "and sent the coordinating centre only aggregates: per outcome, the number of pairs "
        "and the sums, sums of squares and cross-products of the scores before and after "
        "surgery and of their change (an outcome with fewer than "
        f"{' or '.join(str(m) for m in min_cells)} pairs at a site was suppressed there); no "
        "patient-level record left a site. The mean change over all patients (up to "
        f"{patients} pairs per outcome) and its {level} CI come from the paired t test of "
        "every patient of every site, computed exactly from these sums; it equals the "
        "analysis of the stacked patient data. Each site's mean change (with its own paired t "
        "interval) was combined in a random-effects meta-analysis with inverse-variance "
        f"weights ({_estimator(study)}), reported with Cochran's Q, I² and the {level} "
        "prediction interval of the mean change at a new site. Rank-based analyses (the "
        "Wilcoxon signed-rank test) need patient-level values and were not pooled."
        + _meta_regression_sentence(study)
        + " Statistics were computed in Python (scipy, statsmodels) and checked against R "
        "(t.test; metafor rma and predict)."
    )


def _coefficient_digits(estimate: float, fewest: int = 2, most: int = 4) -> int:
    """Decimals for a meta-regression coefficient: two, or as many more (up to four) as it takes
    for a coefficient that is not zero to show a digit other than 0 (a slope per percentage
    point is often a few thousandths; "0.00" would read as no association)."""
    digits = fewest
    while digits < most and estimate == estimate and round(abs(estimate), digits) == 0 != estimate:
        digits += 1
    return digits


def _meta_regression_sentence(study: PooledStudy) -> str:
    """The Methods sentence on the meta-regression ("" when the study names no moderator)."""
    if not study.moderators:
        return ""
    # Labels as declared (written to read in a sentence: "share of Bell palsy").
    chosen = [f"the {c.label}" for c in moderators(study)]
    named = chosen[0] if len(chosen) == 1 else ", ".join(chosen[:-1]) + " and " + chosen[-1]
    test = (
        "Knapp-Hartung t tests and F test of the moderators"
        if study.hartung_knapp
        else "z tests and χ² test of the moderators"
    )
    method = {"REML": "restricted maximum likelihood", "DL": "the DerSimonian-Laird method"}
    return (
        " Whether the between-site heterogeneity went with site characteristics declared by "
        f"the coordinating centre was explored by a mixed-effects meta-regression of the sites' "
        f"mean changes on {named} (residual τ² by {method[study.tau2_method]}; {test}; R², "
        "the share of the between-site variance explained); with "
        f"{len(study.sites)} sites it is exploratory."
    )


def table_2(study: PooledStudy, results: dict[str, pd.DataFrame]):
    """Table 2 of a pooled study: per outcome, all patients pooled, each site, and the
    random-effects estimate with its heterogeneity."""
    from pipeline.render.style import AMA
    from pipeline.render.tables import SYNTHETIC_NOTE
    from pipeline.render.writers import Table

    planned = results["pooled_outcomes"]
    pooled = results["pooled_paired"].set_index(["outcome", "score"])
    sites = results["site_effects"]
    meta = results["meta_analysis"]
    conf = float(pooled["conf_level"].iloc[0]) if len(pooled) else 0.95
    ci = AMA.ci_label(conf)
    columns = [
        "Outcome",
        "Pairs",
        "Before, mean ± SD",
        "After, mean ± SD",
        f"Change, mean ({ci})",
        "P value",
        "Heterogeneity",
    ]
    rows, indent = [], []
    random_label = (
        f"Random effects ({study.tau2_method}"
        + (", Hartung-Knapp" if study.hartung_knapp else "")
        + ")"
    )
    for row in planned.itertuples():
        key = (row.outcome, row.score)
        rows.append([row.label, "", "", "", "", "", ""])
        indent.append(0)
        if key not in pooled.index:
            rows.append(["No site with enough pairs", "", "", "", "", "", ""])
            indent.append(1)
            continue
        p = pooled.loc[key]
        rows.append(
            [
                "All patients, pooled",
                str(int(p["n_pairs"])),
                AMA.mean_sd(p["mean_pre"], p["sd_pre"]),
                AMA.mean_sd(p["mean_post"], p["sd_post"]),
                AMA.estimate_ci(p["mean_change"], p["ci_low"], p["ci_high"]),
                AMA.p(p["p"]),
                "",
            ]
        )
        indent.append(1)
        for s in sites[
            (sites["outcome"] == row.outcome) & (sites["score"] == row.score)
        ].itertuples():
            rows.append(
                [
                    f"Site {s.site}",
                    str(int(s.n_pairs)),
                    AMA.mean_sd(s.mean_pre, s.sd_pre),
                    AMA.mean_sd(s.mean_post, s.sd_post),
                    AMA.estimate_ci(s.mean_change, s.ci_low, s.ci_high),
                    AMA.p(s.p),
                    "",
                ]
            )
            indent.append(2)
        random = meta[
            (meta["outcome"] == row.outcome)
            & (meta["score"] == row.score)
            & (meta["model"] == "random")
        ].iloc[0]
        if pd.notna(random["estimate"]):
            heterogeneity = (
                f"I² = {AMA.number(random['i2'], 0)}%; τ² = {AMA.number(random['tau2'], 2)}; "
                f"PI {AMA.number(random['pi_low'], 1)} to {AMA.number(random['pi_high'], 1)}"
            )
            rows.append(
                [
                    random_label,
                    f"{int(random['k'])} sites",
                    "",
                    "",
                    AMA.estimate_ci(random["estimate"], random["ci_low"], random["ci_high"]),
                    AMA.p(random["p"]),
                    heterogeneity,
                ]
            )
            indent.append(1)
    footnotes = [
        "Change is after minus before surgery. All patients, pooled: paired t test of every "
        "patient of every site, computed exactly from the sites' sums. Site rows: each site's "
        f"own paired t test. {random_label}: meta-analysis of the sites' mean changes "
        f"({_estimator(study)}); I², share of the variation between sites; τ², between-site "
        f"variance; PI, {conf:.0%} prediction interval of the mean change at a new site.",
    ]
    suppressed = planned[planned["sites_suppressed"] > 0]
    if len(suppressed):
        footnotes.append(
            "Sites with too few pairs for an outcome sent no numbers for it (small-cell "
            f"suppression): {', '.join(suppressed['label'])}."
        )
    if study.synthetic:
        footnotes.append(SYNTHETIC_NOTE)
    body = pd.DataFrame(rows, columns=columns)
    return Table(
        title=f"Table 2. Change from before to after surgery, pooled over {len(study.sites)} "
        "sites and by site",
        body=body,
        footnotes=tuple(footnotes),
        indent=tuple(indent),
    )


#: Residual degrees of freedom below which the meta-regression's eTable marks an outcome's
#: sites: too few sites to tell a characteristic from whatever else differs between them.
FEW_RESIDUAL_DF = 5


def _term_label(study: PooledStudy, term: str, level: str, reference: str) -> str:
    if term == "intercept":
        return "Intercept"
    characteristic = {c.name: c for c in study.characteristics}[term]
    if level:
        return f"{_capitalised(characteristic.label)}: {level} vs {reference}"
    unit = f" (per {characteristic.unit})" if characteristic.unit else " (per unit)"
    return f"{_capitalised(characteristic.label)}{unit}"


def _capitalised(label: str) -> str:
    """A label as a table row starts it: its first letter in capitals (labels are declared as
    they read in a sentence)."""
    return label[:1].upper() + label[1:]


def etable_meta_regression(study: PooledStudy, results: dict[str, pd.DataFrame]):
    """The eTable of the meta-regression: per outcome, its sites, each coefficient with its CI
    and P, the test of the moderators and the residual heterogeneity (τ², I², R², QE)."""
    from pipeline.render.style import AMA
    from pipeline.render.tables import SYNTHETIC_NOTE
    from pipeline.render.writers import Table

    fits = results["meta_regression"]
    planned = results["pooled_outcomes"]
    conf = float(fits["conf_level"].iloc[0]) if len(fits) else 0.95
    test = "t" if study.hartung_knapp else "z"
    columns = [
        "Outcome and term",
        "Sites",
        f"Estimate ({AMA.ci_label(conf)})",
        "P value",
        "Residual heterogeneity",
    ]
    rows, indent, marked, few = [], [], [], []
    for row in planned.itertuples():
        fit = fits[(fits["outcome"] == row.outcome) & (fits["score"] == row.score)]
        if not len(fit):
            continue
        first = fit.iloc[0]
        rows.append([row.label, f"{int(first['k'])}", "", "", ""])
        indent.append(0)
        if first["note"]:
            rows.append(["Not estimable: " + str(first["note"]).split(": ", 1)[-1], "", "", "", ""])
            indent.append(1)
            continue
        if first["qe_df"] < FEW_RESIDUAL_DF:
            marked.append(len(rows) - 1)
            few.append((int(first["k"]), int(first["n_coefficients"])))
        for term in fit.itertuples():
            rows.append(
                [
                    _term_label(study, term.term, term.level, term.reference),
                    "",
                    AMA.estimate_ci(
                        term.estimate, term.ci_low, term.ci_high, _coefficient_digits(term.estimate)
                    ),
                    AMA.p(term.p),
                    "",
                ]
            )
            indent.append(1)
        if first["qm_distribution"] == "F":
            qm = f"F({int(first['qm_df1'])}, {int(first['qm_df2'])}) = "
        else:
            qm = f"χ²({int(first['qm_df1'])}) = "
        rows.append(
            ["Test of moderators", "", qm + AMA.number(first["qm"], 2), AMA.p(first["qm_p"]), ""]
        )
        indent.append(1)
        rows.append(
            [
                "Residual heterogeneity",
                "",
                f"Q({int(first['qe_df'])}) = {AMA.number(first['qe'], 2)}",
                AMA.p(first["qe_p"]),
                f"τ² = {AMA.number(first['tau2'], 2)}; I² = {AMA.number(first['i2'], 0)}%; "
                f"R² = {AMA.number(first['r2'], 0)}%",
            ]
        )
        indent.append(1)
    chosen = ", ".join(c.label for c in moderators(study))
    method = {"REML": "restricted maximum likelihood", "DL": "the DerSimonian-Laird method"}
    footnotes = [
        "Exploratory: a mixed-effects meta-regression of each site's mean change (after minus "
        f"before surgery) on site characteristics ({chosen}), declared by the coordinating "
        "centre. It describes how the sites' changes go with their characteristics; it cannot "
        "tell a characteristic from anything else that differs between the sites, and says "
        "nothing of patients within a site. Sites: k, the sites in the model. Estimates: "
        "intercept, the mean change where every numeric characteristic is 0 and every "
        "categorical one at its first level; other rows, the difference in mean change per unit "
        "or against the first level. Weights 1/(vᵢ + τ²), residual τ² by "
        f"{method[study.tau2_method]}; "
        + (
            "CIs and tests by the Knapp-Hartung method (t with k − p df; the moderators by F)."
            if test == "t"
            else "CIs and tests from the normal distribution (the moderators by χ²)."
        ),
        "Residual heterogeneity: Q, Cochran's test of the variation left unexplained; τ², the "
        "between-site variance left; I², its share of the variation left; R², the share of "
        "the between-site variance of the model without characteristics that they explain.",
        "; ".join(
            f"{k} sites for {p} coefficients leave {k - p} residual degree"
            + ("s" if k - p != 1 else "")
            + " of freedom"
            for k, p in dict.fromkeys(few)
        )
        + ": with so few sites, any characteristic that differs between them will appear to "
        "explain some of their differences, and the estimates are imprecise; treat them as "
        "hypotheses for a larger study.",
    ]
    if study.synthetic:
        footnotes.append(SYNTHETIC_NOTE)
    marks = tuple((r, 1, 2) for r in marked)
    if not marked:
        footnotes.pop(2)
    return Table(
        title="eTable. Meta-regression of the change from before to after surgery on site "
        "characteristics (exploratory)",
        body=pd.DataFrame(rows, columns=columns),
        footnotes=tuple(footnotes),
        indent=tuple(indent),
        marks=marks,
    )


def forest_figure(
    study: PooledStudy,
    results: dict[str, pd.DataFrame],
    primary: tuple[str, str],
    *,
    width: float | None = None,
):
    """The forest plot of one outcome (the primary): each site, the pooled diamonds and the
    prediction interval; ``width`` in inches (default: double column)."""
    from pipeline.render.forest_sites import site_forest
    from pipeline.render.tables import SYNTHETIC_NOTE

    outcome, score = primary
    sites = results["site_effects"]
    sites = sites[(sites["outcome"] == outcome) & (sites["score"] == score)]
    meta = results["meta_analysis"]
    meta = meta[(meta["outcome"] == outcome) & (meta["score"] == score)].set_index("model")
    pooled = results["pooled_paired"]
    pooled = pooled[(pooled["outcome"] == outcome) & (pooled["score"] == score)].iloc[0]
    random = meta.loc["random"]
    tau2 = random["tau2"] if pd.notna(random["tau2"]) else 0.0
    weight = 1 / (sites["variance"] + tau2)
    site_rows = pd.DataFrame(
        {
            "label": [f"Site {s}" for s in sites["site"]],
            "n": sites["n_pairs"].to_numpy(),
            "estimate": sites["mean_change"].to_numpy(),
            "ci_low": sites["ci_low"].to_numpy(),
            "ci_high": sites["ci_high"].to_numpy(),
            "weight": (weight / weight.sum()).to_numpy(),
        }
    )
    pooled_rows = pd.DataFrame(
        [
            {
                "label": "All patients, pooled",
                "n": pooled["n_pairs"],
                "estimate": pooled["mean_change"],
                "ci_low": pooled["ci_low"],
                "ci_high": pooled["ci_high"],
                "pi_low": float("nan"),
                "pi_high": float("nan"),
            },
            {
                # Without a random-effects estimate (fewer than two sites to combine) the row
                # says why it has no diamond.
                "label": f"Random effects ({study.tau2_method}); line: prediction interval"
                if pd.notna(random["estimate"])
                else f"Random effects: not estimable, {random['note']}",
                "n": pooled["n_pairs"],
                "estimate": random["estimate"],
                "ci_low": random["ci_low"],
                "ci_high": random["ci_high"],
                "pi_low": random["pi_low"],
                "pi_high": random["pi_high"],
            },
        ]
    )
    label = results["pooled_outcomes"].set_index(["outcome", "score"]).loc[primary, "label"]
    conf = float(pooled["conf_level"])
    return site_forest(
        site_rows,
        pooled_rows,
        xlabel=f"Mean change ({conf:.0%} CI), after minus before surgery",
        title=f"{label}: change by site",
        footer=SYNTHETIC_NOTE if study.synthetic else "",
        **({"width": width} if width is not None else {}),
    )


def pooled_provenance(
    study: PooledStudy, bundles: dict[str, dict], hashes: dict[str, str]
) -> dict[str, object]:
    """What produced the pooled outputs: the spec and every bundle by its hash, with the
    provenance the site recorded in it."""
    from pipeline.provenance import fingerprint, git_state, package_versions

    return {
        "study": study.name,
        "kind": "pooled",
        "synthetic": study.synthetic,
        "spec": {"file": study.spec_path.name, "sha256": study.spec_sha256},
        "input_fingerprint": fingerprint(study),
        "bundles": [
            {
                "site": site,
                "file": file,
                "sha256": hashes[site],
                "site_study": bundles[site]["study"],
                "format_version": bundles[site]["format_version"],
                "site_input_fingerprint": bundles[site]["provenance"]["input_fingerprint"],
                "site_code": bundles[site]["provenance"]["code"],
            }
            for site, file in study.sites
        ],
        "code": git_state(),
        "packages": package_versions(),
    }


def write_pooled_outputs(
    study: PooledStudy,
    results: dict[str, pd.DataFrame],
    bundles: dict[str, dict],
    hashes: dict[str, str],
    reports_dir: Path,
) -> list[Path]:
    """Write ``reports/<study>/``: ``tables/`` (the tidy results at full precision, Table 2 and
    with moderators the meta-regression eTable in CSV, Markdown, HTML and Word),
    ``figures/forest_sites.png`` (the primary outcome) and ``forest_sites_<outcome>_<score>.png``
    (each other), ``methods.md``, ``report.html`` and ``provenance.json``; return the paths.
    A meta-regression table or forest plot an earlier run wrote and this one did not (the
    moderators or outcomes changed) is removed, so that the folder holds this run's outputs."""
    from pipeline.render import figure_files, writers

    folder = Path(reports_dir) / study.name
    tables = folder / "tables"
    tidy = ("pooled_paired", "site_effects", "meta_analysis", "meta_regression")
    written = [
        writers.write_results(results[name], tables, name) for name in tidy if name in results
    ]
    table = table_2(study, results)
    formats = ("csv", "md", "html", "docx")
    written += writers.write_table(table, tables, "table_2", formats=formats)
    etable = None
    if "meta_regression" in results:
        etable = etable_meta_regression(study, results)
        written += writers.write_table(etable, tables, "etable_meta_regression", formats=formats)
    plan = next(iter(bundles.values()))["plan"]
    planned = results["pooled_outcomes"]
    primary_rows = planned[planned["outcome"] == plan["primary"]]
    primary = primary_rows.iloc[0] if len(primary_rows) else planned.iloc[0]
    key = (primary["outcome"], primary["score"])
    # The primary outcome's forest plot first (forest_sites.png), then each other outcome's
    # (forest_sites_<outcome>_<score>.png), in the plan's order.
    estimated = set(zip(results["site_effects"]["outcome"], results["site_effects"]["score"]))
    ordered = [key] + [
        k for k in zip(planned["outcome"], planned["score"]) if k != key and k in estimated
    ]
    figures, specs = [], []
    for outcome in ordered:
        if outcome not in estimated:
            continue
        stem = "forest_sites" if outcome == key else f"forest_sites_{outcome[0]}_{outcome[1]}"
        label = planned.set_index(["outcome", "score"]).loc[outcome, "label"]
        draw = figure_files.drawing(forest_figure, study, results, outcome)
        specs.append(figure_files.FigureSpec(stem, label, draw, widths=("double",)))
        figures.append((f"figures/{stem}.png", label))
    # Drawn as a study's figures are: in the run's figure workers too, and not again while
    # what each shows is unchanged (figure_files.export); all in figures/, at double width.
    drawn = figure_files.export(specs, folder / "figures", formats=("png",), layout=_figures_folder)
    figure_files.remove_unwritten(folder / "figures", drawn)
    written += drawn
    methods = methods_paragraph(study, bundles, results["pooled_paired"])
    (folder / "methods.md").write_text(f"## Methods: pooling\n\n{methods}\n", encoding="utf-8")
    written.append(folder / "methods.md")
    html = writers.to_html(table)
    if etable is not None:
        html += "\n" + writers.to_html(etable)
    image = "\n".join(
        f'<img src="{src}" alt="Forest plot by site: {_escape(label)}" width="700">'
        for src, label in figures
    )
    (folder / "report.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_escape(study.title)}</title>"
        # The publication tables' own stylesheet, as every table page of a study uses.
        f"<style>{writers.stylesheet('publication.css')}</style></head><body>\n"
        f"<h1>{_escape(study.title)}</h1>\n<h2>Methods: pooling</h2>\n<p>{_escape(methods)}</p>\n"
        f"<h2>Results</h2>\n{html}\n{image}\n</body></html>\n",
        encoding="utf-8",
    )
    written.append(folder / "report.html")
    record = pooled_provenance(study, bundles, hashes)
    (folder / "provenance.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    written.append(folder / "provenance.json")
    kept = set(written)
    for stale in [
        *tables.glob("meta_regression.csv"),
        *tables.glob("etable_meta_regression.*"),
        *(folder / "figures").glob("forest_sites*.png"),
    ]:
        if stale not in kept:
            stale.unlink()
    return written


def _figures_folder(folder: Path, width: str) -> Path:
    """Every forest plot in ``figures/`` itself (they have one width)."""
    return folder


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def pool_study(con: duckdb.DuckDBPyConnection, study: PooledStudy, reports_dir: Path) -> list[Path]:
    """A pooled study end to end: bundles read and checked, analysed, written."""
    bundles, hashes = read_bundles(study)
    results = analyse_pooled(con, study, bundles)
    return write_pooled_outputs(study, results, bundles, hashes, reports_dir)
