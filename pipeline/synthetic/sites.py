"""The worked multi-centre example: the SYNTHETIC demo cohort split into three synthetic sites.

Each demo patient goes to one site, drawn (seeded) with weights that give the sites different
sizes and case mix: a large tertiary centre seeing more acoustic neuromas and iatrogenic
palsies, a middle one mostly Bell palsy, a small one more Ramsay Hunt syndrome and trauma. Each
site is a study folder of its own (the demo's spec under the site's name, the site's patients
and their visits), which exports its bundle with ``outcomes export-summary``; the pooled study
folder lists the three bundles (``docs/multi-centre.md``). Since every patient is in exactly one
site, the exact pooled analysis equals the single-study analysis of the whole demo.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import site_summary
from pipeline.spec.study import SPEC_FILENAME, load_study

#: site -> (share of the patients before case mix, weight factor per etiology)
SITES = {
    "north": (0.50, {"acoustic_neuroma": 2.5, "iatrogenic": 2.0}),
    "central": (0.30, {"bells_palsy": 1.5}),
    "south": (0.20, {"ramsay_hunt": 2.0, "trauma": 2.5}),
}


def assign_sites(patients: pd.DataFrame, seed: int) -> pd.Series:
    """Each patient's site (index as ``patients``), drawn with the case-mix weights."""
    rng = np.random.default_rng(seed)
    names = list(SITES)
    weights = np.array(
        [
            [SITES[s][0] * SITES[s][1].get(etiology, 1.0) for s in names]
            for etiology in patients["etiology"]
        ]
    )
    weights /= weights.sum(axis=1, keepdims=True)
    draws = rng.random(len(patients))
    chosen = (draws[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
    return pd.Series([names[i] for i in chosen], index=patients.index)


def _site_spec(demo_spec: str, site: str) -> str:
    """The demo's spec under the site's study name and title."""
    spec = re.sub(r'(?m)^name = "demo"$', f'name = "demo_{site}"', demo_spec, count=1)
    return re.sub(
        r'(?m)^title = "(.*)\(synthetic demo cohort\)"$',
        rf'title = "\1(synthetic site {site})"',
        spec,
        count=1,
    )


#: Each site's setting, a categorical characteristic the example declares (not a moderator:
#: with three sites the meta-regression has room for one, the share of Bell palsy).
SETTINGS = {"north": "tertiary", "central": "regional", "south": "regional"}


def pooled_spec(sites: list[str], bells_share: dict[str, float] | None = None) -> str:
    """The pooled example study's ``study.toml``; ``bells_share`` is each site's percentage
    of Bell palsy (its patients' etiology), declared as the site characteristic the
    meta-regression explains the sites' changes by."""
    bells_share = bells_share or {site: 0.0 for site in sites}
    entries = "\n".join(
        f'[[pooled.sites]]\nname = "{site.capitalize()}"\n'
        f'bundle = "demo_{site}.site-summary.json"\n'
        f"characteristics = {{ bells_palsy_pct = {bells_share[site]:.1f}, "
        f'setting = "{SETTINGS[site]}" }}\n'
        for site in sites
    )
    return (
        "# The worked multi-centre example (SYNTHETIC): the demo cohort split into three sites,\n"
        "# each of which sent its site summary bundle (`outcomes demo-sites` writes them; see\n"
        "# docs/multi-centre.md).\n\n"
        '[study]\nname = "demo_pooled"\n'
        'title = "Modified selective neurectomy for post-facial paralysis synkinesis: three '
        'synthetic sites pooled"\n'
        'kind = "pooled"\nsynthetic = true\n\n'
        '[pooled]\ntau2_method = "REML"    # or "DL"\nhartung_knapp = true\n'
        "# The meta-regression's moderators: with three sites, one at most (one coefficient\n"
        "# besides the intercept, and one residual degree of freedom).\n"
        'moderators = ["bells_palsy_pct"]\n\n'
        "# Site characteristics, each site's value under its [[pooled.sites]] entry.\n"
        "[pooled.characteristics.bells_palsy_pct]\n"
        'label = "share of Bell palsy"    # as it reads in a sentence\n'
        'unit = "percentage point"\n\n'
        "[pooled.characteristics.setting]\n"
        'label = "setting"\nlevels = ["tertiary", "regional"]    # the first is the reference\n\n'
        f"{entries}"
    )


#: What a bundle records of the code that exported it: the git commit (and whether the
#: checkout had uncommitted changes) and the package versions.
EXPORTING_CODE = ("code", "packages")


def _keep_if_only_provenance_differs(fresh: Path, target: Path) -> Path:
    """Move the bundle ``fresh`` to ``target``, unless ``target`` already holds the same bundle
    but for the code that exported it (:data:`EXPORTING_CODE`): then keep ``target``.

    A bundle records the commit that exported it, so the committed example, exported at one
    commit and committed in the next, would change at every regeneration though nothing in it
    but that record did. Kept, it still says truly which code wrote those bytes (checking out
    its commit and running ``outcomes demo-sites`` writes them again), and the current code
    gives the same numbers: regenerating the example is reproducible."""

    def without_code(path: Path) -> dict:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        for key in EXPORTING_CODE:
            bundle["provenance"].pop(key, None)
        return bundle

    if target.is_file() and without_code(target) == without_code(fresh):
        fresh.unlink()
    else:
        fresh.replace(target)
    return target


def write_example(demo: Path, sites_dir: Path, pooled_dir: Path, *, seed: int = 22) -> list[Path]:
    """Split the demo study in ``demo`` into the site folders ``sites_dir/demo_<site>``, export
    each site's bundle into ``pooled_dir`` (an existing bundle that differs only in the code
    that exported it is kept: :func:`_keep_if_only_provenance_differs`) and write the pooled
    study's spec there, with each site's share of Bell palsy and setting as its declared
    characteristics; return the paths written. Same inputs and seed, same bytes."""
    demo, sites_dir, pooled_dir = Path(demo), Path(sites_dir), Path(pooled_dir)
    study = load_study(demo)
    read = {"dtype": str, "keep_default_na": False, "encoding": "utf-8"}
    patients = pd.read_csv(study.subjects_path, **read)
    visits = pd.read_csv(study.visits_path, **read)
    site_of = assign_sites(patients, seed)
    spec = study.spec_path.read_text(encoding="utf-8")
    written = []
    pooled_dir.mkdir(parents=True, exist_ok=True)
    bells_share = {}
    for site in SITES:
        folder = sites_dir / f"demo_{site}"
        folder.mkdir(parents=True, exist_ok=True)
        mine = patients[site_of == site]
        bells_share[site] = 100 * float((mine["etiology"] == "bells_palsy").mean())
        for frame, name in (
            (mine, study.subjects_file),
            (visits[visits[study.visit_subject].isin(mine[study.subject_id])], study.visits_file),
        ):
            path = folder / name
            frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
            written.append(path)
        (folder / SPEC_FILENAME).write_text(_site_spec(spec, site), encoding="utf-8")
        written.append(folder / SPEC_FILENAME)
        site_study = load_study(folder)
        target = pooled_dir / f"{site_study.name}.site-summary.json"
        fresh = site_summary.export_summary(site_study, target.with_name(target.name + ".new"))
        written.append(_keep_if_only_provenance_differs(fresh, target))
    (pooled_dir / SPEC_FILENAME).write_text(pooled_spec(list(SITES), bells_share), encoding="utf-8")
    written.append(pooled_dir / SPEC_FILENAME)
    return written
