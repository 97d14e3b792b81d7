"""SYNTHETIC registry: the demo cohort's model at any size, every instrument at every visit.

A multi-centre outcomes registry would hold thousands of patients, each seen
on a fixed schedule and graded with every instrument the pipeline knows. This
module draws such a registry from the same latent model as the demo cohort
(:mod:`pipeline.synthetic.demo`: patient severity, patient-reported latent, response
ramp, item calibration), so its scores behave like the demo's, and writes it
as the raw files the pipeline ingests: ``patients.csv``, ``visits.csv`` (one
row per patient visit, one column per item) and a ``study.toml``.

Differences from the demo cohort, all deliberate:

* every patient attends every visit of the schedule (``pre`` and ``visits - 1``
  post-operative visits, each jittered inside its window), so a registry of N
  patients has exactly N x visits visit rows;
* every instrument is recorded at every visit: Sunnybrook, House-Brackmann
  (observer and surgeon), eFACE, SAQ, FaCE as in the demo, plus FDI, FNGS 2.0
  and per-side facial landmarks, whose levels are invented (plausible, not
  calibrated to a publication);
* no toxin dose column.

Items are missing at the demo's rate (about 1%). Only
``numpy.random.default_rng(seed)`` is used and the files are written by DuckDB
in row order, so the same seed, size and number of visits give byte-identical
files. Nothing here describes a real patient.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipeline.sql import literal, quote
from pipeline.synthetic import demo
from pipeline.synthetic.demo import ItemSpec, _items

# (visit code, nominal day, +/- window in days); a registry with V visits uses pre and the first V -
# 1.
SCHEDULE = (
    ("m1", 30, 7),
    ("m3", 90, 14),
    ("m6", 180, 21),
    ("m12", 365, 30),
    ("m24", 730, 45),
    ("m36", 1095, 60),
    ("m48", 1460, 60),
    ("m60", 1825, 60),
)
MAX_VISITS = 1 + len(SCHEDULE)
DEFAULT_VISITS = 6

# FDI (VanSwearingen & Brach 1996): physical items 1-5 as worksheet points (5 no difficulty;
# 0, not applicable, is not drawn), social items 6-10 as points 1-6; higher is better.
FDI_ITEMS = (
    *_items(
        "fdi_",
        range(1, 6),
        1,
        5,
        3.6,
        4.2,
        0.55,
        0.60,
        False,
        np.array([0.3, -0.2, 0.1, -0.3, 0.1]),
    ),
    *_items(
        "fdi_",
        range(6, 11),
        1,
        6,
        4.0,
        4.6,
        0.60,
        0.65,
        False,
        np.array([-0.2, 0.2, 0.0, 0.3, -0.3]),
    ),
)
# FNGS 2.0 (Vrabec et al. 2009): four regions 1 (normal) to 6, secondary movement 0-3; higher is
# worse.
FNGS_ITEMS = (
    *_items(
        "fngs_",
        ("brow", "eye", "nlf", "oral"),
        1,
        6,
        3.4,
        2.7,
        0.60,
        0.45,
        True,
        np.array([0.2, 0.3, -0.2, -0.3]),
    ),
    ItemSpec("fngs_secondary", 0, 3, 2.0, 1.3, 0.55, 0.45, True),
)
# Facial landmarks (Emotrics measures), drawn in tenths of a unit and written with one decimal.
# (measure, healthy-side mean, affected-side mean before, and at full effect, SD of the state term),
# in mm or degrees; the affected side moves less and improves after surgery.
LANDMARKS = (
    ("commissure_excursion", 12.0, 7.0, 9.5, 1.5),
    ("smile_angle", 35.0, 26.0, 30.0, 3.0),
    ("dental_show", 8.0, 5.0, 6.5, 1.0),
    ("brow_height", 18.0, 16.0, 16.5, 1.5),
    ("palpebral_fissure_height", 10.0, 8.0, 9.0, 0.8),
)
LANDMARK_TENTHS = 10
LANDMARK_MAX = {
    "commissure_excursion": 60,
    "smile_angle": 180,
    "dental_show": 40,
    "brow_height": 60,
    "palpebral_fissure_height": 25,
}


def _landmark_items(role: str) -> tuple[ItemSpec, ...]:
    """One item per measure for the healthy or the affected side, in tenths."""
    t = LANDMARK_TENTHS
    out = []
    for measure, healthy, before, after, sd in LANDMARKS:
        pre, post = (healthy, healthy) if role == "healthy" else (before, after)
        out.append(
            ItemSpec(
                f"{role}_{measure}",
                0,
                LANDMARK_MAX[measure] * t,
                pre * t,
                post * t,
                sd * t,
                0.5 * sd * t,
                False,
            )
        )
    return tuple(out)


INTEGER_ITEMS = (
    demo.HB_ITEMS[1],
    demo.HB_ITEMS[0],
    *demo.SB_ITEMS,
    *demo.EFACE_ITEMS,
    *demo.SAQ_ITEMS,
    *demo.FACE_ITEMS,
    *FDI_ITEMS,
    *FNGS_ITEMS,
)
LANDMARK_COLUMNS = [f"lm_{m}_{side}" for m, *_ in LANDMARKS for side in ("left", "right")]
ITEM_COLUMNS = [*(i.name for i in INTEGER_ITEMS), *LANDMARK_COLUMNS]
VISIT_COLUMNS = ["study_id", "visit", "day", *ITEM_COLUMNS]


def visit_codes(visits: int = DEFAULT_VISITS) -> tuple[str, ...]:
    if not 2 <= visits <= MAX_VISITS:
        raise ValueError(f"visits must be between 2 and {MAX_VISITS}, got {visits}")
    return ("pre", *(code for code, _, _ in SCHEDULE[: visits - 1]))


def generate(
    seed: int = 63, n_patients: int = 1000, visits: int = DEFAULT_VISITS
) -> dict[str, pd.DataFrame]:
    """SYNTHETIC registry: {"patients": one row per patient, "visits": one row per patient visit}.

    Item columns are nullable integers, except the landmark columns (floats with one decimal);
    missing values are <NA>/NaN. Same arguments -> identical frames.
    """
    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")
    codes = visit_codes(visits)
    rng = np.random.default_rng(seed)
    n = int(n_patients)
    patients, latent = demo._patients(rng, n)

    # Every patient at every visit: rows ordered by patient, then visit.
    day = np.empty((n, visits), dtype=np.int64)
    day[:, 0] = rng.integers(demo.PRE_DAY_RANGE[0], demo.PRE_DAY_RANGE[1] + 1, n)
    for j, (_, nominal, window) in enumerate(SCHEDULE[: visits - 1], start=1):
        jitter = np.rint(rng.normal(0, window / 2, n)).clip(-window, window)
        day[:, j] = nominal + jitter.astype(np.int64)
    pid = np.repeat(np.arange(n), visits)
    vid = np.tile(np.arange(visits), n)
    rows = n * visits
    row_day = day.ravel()
    is_pre = vid == 0
    state, prom_state, gain = demo.visit_states(rng, latent, pid, row_day, is_pre)

    values: dict[str, np.ndarray] = {}
    hb_shared = demo.HB_SD_SHARED * rng.standard_normal(rows)
    values.update(
        demo._draw_items(
            rng, demo.HB_ITEMS, state, gain, shared=hb_shared, extra_var=demo.HB_SD_SHARED**2
        )
    )
    for items in (demo.SB_ITEMS, demo.EFACE_ITEMS, FNGS_ITEMS):
        values.update(demo._draw_items(rng, items, state, gain))
    for items in (demo.SAQ_ITEMS, demo.FACE_ITEMS, FDI_ITEMS):
        values.update(demo._draw_items(rng, items, prom_state, gain))
    for k in demo.FACE_REVERSED:
        values[f"face_{k}"] = 6 - values[f"face_{k}"]
    # Landmarks: the healthy side does not change with surgery (gain 0); the paralysed side
    # follows the severity state. Which physical side is which comes from the patient's side.
    healthy = demo._draw_items(rng, _landmark_items("healthy"), state, np.zeros(rows))
    affected = demo._draw_items(rng, _landmark_items("affected"), state, gain)
    left_affected = (patients["side"].to_numpy() == "left")[pid]
    for measure, *_ in LANDMARKS:
        a, h = affected[f"affected_{measure}"], healthy[f"healthy_{measure}"]
        values[f"lm_{measure}_left"] = np.where(left_affected, a, h) / LANDMARK_TENTHS
        values[f"lm_{measure}_right"] = np.where(left_affected, h, a) / LANDMARK_TENTHS

    dropped = rng.random((rows, len(ITEM_COLUMNS))) < demo.P_ITEM_MISSING
    columns: dict[str, object] = {
        "study_id": patients["study_id"].to_numpy()[pid],
        "visit": np.array(codes, dtype=object)[vid],
        "day": row_day,
    }
    landmark = set(LANDMARK_COLUMNS)
    for j, name in enumerate(ITEM_COLUMNS):
        col = np.where(dropped[:, j], np.nan, values[name])
        columns[name] = col if name in landmark else demo.nullable_integers(col)
    return {"patients": patients, "visits": pd.DataFrame(columns, columns=VISIT_COLUMNS)}


def _copy_csv(
    con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, path: Path, decimals: set[str]
) -> None:
    """``frame`` as CSV in row order: UTF-8, comma, "\\n", header, missing as an empty field.

    DuckDB writes in a fraction of the time pandas takes at registry sizes; ``decimals`` are
    written with one decimal place.
    """
    con.register("_registry_frame", frame)
    try:
        cols = ", ".join(
            f"CAST({quote(c)} AS DECIMAL(6, 1)) AS {quote(c)}" if c in decimals else quote(c)
            for c in frame.columns
        )
        con.execute(
            f"COPY (SELECT {cols} FROM _registry_frame) TO {literal(path)} "
            "(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', NEW_LINE '\\n', NULLSTR '')"
        )
    finally:
        con.unregister("_registry_frame")


# The demo spec's labels of the subjects columns and their levels (data/raw/demo/study.toml), so
# the registry's tables and figures name them as a reader does ("Bell palsy", not bells_palsy).
_NO_YES = '{ 0 = "No", 1 = "Yes" }'
SUBJECT_LABELS = f"""[subjects.levels]
sex = {{ F = "Female", M = "Male" }}
side = {{ left = "Left", right = "Right" }}
etiology = {{ bells_palsy = "Bell palsy", ramsay_hunt = "Ramsay Hunt syndrome", \
acoustic_neuroma = "Acoustic neuroma", trauma = "Trauma", iatrogenic = "Iatrogenic", \
other = "Other" }}
prior_botox = {_NO_YES}
facelift = {_NO_YES}
cross_facial_nerve_graft = {_NO_YES}
nerve_rerouting = {_NO_YES}
end_to_side = {_NO_YES}
oral_incompetence = {_NO_YES}
revision = {_NO_YES}

[subjects.labels]
age = "Age"
sex = "Sex"
side = "Side of paralysis"
etiology = "Etiology"
months_since_onset = "Time since onset"
prior_botox = "Prior botulinum toxin"
facelift = "Concurrent facelift"
cross_facial_nerve_graft = "Concurrent cross-facial nerve graft"
nerve_rerouting = "Concurrent nerve rerouting"
end_to_side = "Concurrent end-to-side nerve transfer"
branches_transected = "Branches transected"
surgery_year = "Year of surgery"
oral_incompetence = "Postoperative oral incompetence"
revision = "Revision surgery"

[subjects.units]
age = "y"
months_since_onset = "mo"
branches_transected = "No."
"""


def study_toml(name: str = "registry", visits: int = DEFAULT_VISITS) -> str:
    """The study spec of a registry: every instrument mapped, the demo's plan plus the new
    outcomes."""
    last = visit_codes(visits)[-1]
    outcomes = [
        ("house_brackmann", "observer", "grade"),
        ("house_brackmann", "surgeon", "grade"),
        ("sunnybrook", "", "composite"),
        *(
            ("eface", "", s)
            for s in (
                "total",
                "static",
                "dynamic",
                "synkinesis",
                "periocular",
                "midface_smile",
                "lower_face_neck",
                "smile",
            )
        ),
        ("saq", "", "total"),
        *(
            ("face", "", s)
            for s in ("total", "movement", "comfort", "oral", "eye", "lacrimal", "social")
        ),
        ("fdi", "", "physical"),
        ("fdi", "", "social"),
        ("fdi", "", "total"),
        ("fngs", "", "total"),
        ("fngs", "", "grade"),
        ("landmarks", "", "commissure_excursion_asymmetry"),
        ("landmarks", "", "smile_angle_asymmetry"),
    ]
    blocks = "\n".join(
        f'[[analysis.outcomes]]\ninstrument = "{i}"\n'
        + (f'rater = "{r}"\n' if r else "")
        + f'score = "{s}"\n'
        for i, r, s in outcomes
    )
    header = (
        "# Study spec of a SYNTHETIC registry (pipeline/synthetic/registry.py): "
        "every instrument at every visit."
    )
    reliability = (
        '{ instrument = "house_brackmann", score = "grade", '
        'raters = ["observer", "surgeon"], weights = "quadratic" }'
    )
    post_comment = f"# the {last} visit for every patient who attended it"
    visit_labels = "\n".join(f'{code} = "{visit_label(code)}"' for code in visit_codes(visits))
    return f'''{header}

[study]
name = "{name}"
title = "Synthetic facial paralysis registry ({visits} visits per patient, every instrument)"
synthetic = true

[subjects]
file = "patients.csv"
id = "study_id"
columns = {_toml_list(demo.PATIENT_COLUMNS[1:])}

{SUBJECT_LABELS}
[visits]
file = "visits.csv"
subject = "study_id"
visit = "visit"
day = "day"

[visits.labels]
{visit_labels}

[instruments.sunnybrook]
column = "sb_{{item}}"

[instruments.house_brackmann]
column = "hb_{{rater}}"
raters = ["observer", "surgeon"]

[instruments.eface]
column = "eface_{{item}}"
version = "domain_mean"

[instruments.saq]
column = "saq_{{item}}"
version = "raw_sum"

[instruments.face]
column = "face_{{item}}"
version = "item_weighted"

[instruments.fdi]
column = "fdi_{{item}}"

[instruments.fngs]
column = "fngs_{{item}}"

[instruments.landmarks]
column = "lm_{{item}}"
side = "side"

[analysis]
alpha = 0.05
conf_level = 0.95
test = "wilcoxon"
pre = {{ rule = "latest_preoperative", max_day = 0 }}
post = {{ rule = "last_followup", min_day = 90 }}   {post_comment}
primary = "house_brackmann_observer"
multiplicity = "holm"
ordinal = ["house_brackmann_observer", "house_brackmann_surgeon"]
responders = {{ house_brackmann_observer = 1, house_brackmann_surgeon = 1 }}
covariates = ["months_since_onset"]
subgroups = [
  {{ name = "branches_transected", column = "branches_transected", split = "median" }},
  {{ name = "etiology", column = "etiology" }},
  {{ name = "facelift", column = "facelift" }},
  {{ name = "cross_facial_nerve_graft", column = "cross_facial_nerve_graft" }},
  {{ name = "nerve_rerouting", column = "nerve_rerouting" }},
]
reliability = [{reliability}]
longitudinal = {{ random_slope = false }}

{blocks}'''


def visit_label(code: str) -> str:
    """What a reader sees for a visit of the schedule: ``pre`` -> ``Before surgery``, ``m12`` ->
    ``12 months``."""
    if code == "pre":
        return "Before surgery"
    months = int(code.removeprefix("m"))
    return f"{months} month" + ("s" if months > 1 else "")


def _toml_list(names) -> str:
    return "[" + ", ".join(f'"{n}"' for n in names) + "]"


def write(
    out_dir: Path,
    seed: int = 63,
    n_patients: int = 1000,
    visits: int = DEFAULT_VISITS,
    name: str = "registry",
) -> list[Path]:
    """Write ``patients.csv``, ``visits.csv`` and ``study.toml`` (SYNTHETIC) into ``out_dir``.

    Same arguments -> byte-identical files. Returns the three paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = generate(seed=seed, n_patients=n_patients, visits=visits)
    con = duckdb.connect()
    try:
        # One thread: the bytes must not depend on how DuckDB splits the work.
        con.execute("SET threads = 1")
        paths = []
        for table in ("patients", "visits"):
            path = out_dir / f"{table}.csv"
            _copy_csv(con, frames[table], path, set(LANDMARK_COLUMNS))
            paths.append(path)
    finally:
        con.close()
    spec = out_dir / "study.toml"
    spec.write_text(study_toml(name, visits), encoding="utf-8")
    return [*paths, spec]
