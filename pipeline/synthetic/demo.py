"""SYNTHETIC demo cohort: seeded, calibrated, de-identified by construction.

Nothing here describes a real patient. The generator draws a cohort whose
shape and average results are calibrated to the published series

    Azizzadeh B, Irvine LE, Diels J, et al. Modified Selective Neurectomy for
    the Treatment of Post-Facial Paralysis Synkinesis. Plast Reconstr Surg.
    2019;143(5):1483-1496.

(63 patients operated 2013-2017; House-Brackmann 3.9 -> 2.8 by an independent
observer and 3.7 -> 2.6 by the surgeon; eFACE sub-cohort of 46; mean latest
follow-up 373 days, range 6-1377; two patients lost to follow-up; temporary
oral incompetence 11%; revision 17%; median 6 branches transected), with
FaCE and SAQ levels from the same group's quality-of-life series and a
Sunnybrook composite of about 50 before and 62 after surgery (the paper does
not report one). Item values are drawn from a latent model so that pre and
post scores are correlated and improvement ramps up over the first months.

De-identified by construction: subjects carry opaque codes ("FP-001", ...)
assigned in random order, the only calendar information is the surgery year,
visit timing is in days relative to surgery, and ages of 90 or more are
collapsed to "90+" (one demo patient is 90+ so that rule is exercised).

Only ``numpy.random.default_rng(seed)`` is used, so the same seed and size
give byte-identical files. Everything is vectorised over patients and visits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from pipeline.instruments.scales.face import REVERSED as FACE_REVERSED

# --- cohort shape (shares are per patient; the published n = 63 fixes the counts) ---
PUBLISHED_N = 63
SURGERY_YEARS = np.arange(2013, 2018)
SURGERY_YEAR_WEIGHTS = np.array([0.14, 0.18, 0.21, 0.23, 0.24])  # a practice that grows over time
# Latest date a follow-up visit can have (as a fractional year): later surgeries
# cannot have years of follow-up, as in a real retrospective series.
DATA_CUTOFF_YEAR = 2018.75
AGE_MEAN, AGE_SD, AGE_MIN, AGE_TOP_CODE = 50.0, 14.0, 18, 90
SHARE_FEMALE = 0.80
ETIOLOGIES = ("bells_palsy", "ramsay_hunt", "acoustic_neuroma", "trauma", "iatrogenic", "other")
ETIOLOGY_WEIGHTS = np.array([0.55, 0.12, 0.14, 0.06, 0.08, 0.05])
ONSET_MEDIAN_MONTHS, ONSET_LOG_SD, ONSET_MIN, ONSET_MAX = 40.0, 0.75, 12, 400
SHARE_PRIOR_BOTOX = 0.85
# Exact counts at n = 63 (paper), the same shares at other n.
SHARE_FACELIFT = 0.30
SHARE_CFNG = 0.10
SHARE_REROUTING = 7 / PUBLISHED_N
SHARE_END_TO_SIDE = 10 / PUBLISHED_N
SHARE_ORAL_INCOMPETENCE = 7 / PUBLISHED_N  # 11%
SHARE_REVISION = 11 / PUBLISHED_N  # 8 done + 3 planned, 17%
SHARE_LOST = 2 / PUBLISHED_N  # lost to follow-up after the 1-month visit
SHARE_EFACE = 46 / PUBLISHED_N  # consistent photographs and >= 3 months follow-up
BRANCHES_MEDIAN, BRANCHES_LOG_SD, BRANCHES_MIN, BRANCHES_MAX = 6.4, 0.33, 2, 14
# Day of the revision after surgery: months to a few years (log-normal), never after the
# patient's last visit (a revision is known by the last contact). Drawn from a stream of its
# own after every other draw, so the columns drawn before it keep their values.
REVISION_STREAM = 19  # COURSE_STREAM (18) draws the oral incompetence course
REVISION_MEDIAN_DAYS, REVISION_LOG_SD, REVISION_MIN_DAYS = 300.0, 0.6, 60

# --- visit schedule: (nominal day, +/- window) ---
VISITS = ("pre", "m1", "m3", "m6", "m12", "last")
SCHEDULE = {"m1": (30, 7), "m3": (90, 14), "m6": (180, 21), "m12": (365, 30)}
PRE_DAY_RANGE = (-60, -1)
P_VISIT_MISSED = 0.12  # each scheduled post-operative visit
LAST_GAP_DAYS = 30  # a separate "last" row only if this much later than the last scheduled visit
# Follow-up of patients not lost: a floor after the 3-month window (so everyone
# not lost has a visit >= 90 days) plus a right-skewed tail, capped at the
# published maximum; tuned so the mean last-visit day is about 373.
FOLLOWUP_FLOOR_DAYS = 135
FOLLOWUP_TAIL_MEDIAN, FOLLOWUP_TAIL_LOG_SD = 190.0, 0.95
FOLLOWUP_MAX_DAYS = 1377
LOST_LAST_MAX_DAY = 89  # lost patients' last contact is before 3 months
P_ITEM_MISSING = 0.01  # an occasional empty item, to exercise missing-item handling

# --- latent model ---
# A visit's severity state s = w * patient severity + sqrt(1 - w^2) * visit noise
# (unit variance); w sets how strongly pre and post scores correlate.
PATIENT_WEIGHT = 0.90
# Patient-reported outcomes follow their own patient latent, partly shared with severity.
PROM_SEVERITY_CORRELATION = 0.60
# Improvement at a visit = responsiveness (mean 1) * (1 - exp(-day / tau)): about
# two thirds of the full effect at 1 month, 95% by 3 months.
RESPONSE_SD = 0.35
RAMP_TAU_DAYS = 30.0


@dataclass(frozen=True)
class ItemSpec:
    """One generated item: range, target means, and its share of the latent model.

    ``pre`` and ``post`` are the intended observed means before surgery and at
    full effect, after rounding and clipping; the generator solves for the
    latent centres that give them. ``worse_high``: severity raises the value.
    """

    name: str
    lo: int
    hi: int
    pre: float
    post: float
    sd_state: float
    sd_noise: float
    worse_high: bool


def _items(prefix, names, lo, hi, pre, post, sd_state, sd_noise, worse_high, offsets=None):
    offsets = np.zeros(len(names)) if offsets is None else offsets
    return tuple(
        ItemSpec(f"{prefix}{n}", lo, hi, pre + o, post + o, sd_state, sd_noise, worse_high)
        for n, o in zip(names, offsets)
    )


# House-Brackmann: one latent grade per visit, read by two raters; the surgeon
# grades about 0.2 lower (paper: observer 3.9 -> 2.8, surgeon 3.7 -> 2.6).
HB_SD_STATE, HB_SD_SHARED, HB_SD_RATER = 0.75, 0.30, 0.35
HB_ITEMS = (
    ItemSpec("hb_observer", 1, 6, 3.9, 2.8, HB_SD_STATE, HB_SD_RATER, True),
    ItemSpec("hb_surgeon", 1, 6, 3.7, 2.6, HB_SD_STATE, HB_SD_RATER, True),
)

# Sunnybrook: item means chosen so composite = 4*vol - 5*rest - syn is
# about 68 - 8.5 - 9.5 = 50 before and 75 - 6.5 - 6.5 = 62 after.
SB_ITEMS = (
    ItemSpec("sb_rest_eye", 0, 1, 0.55, 0.40, 0.35, 0.35, True),
    ItemSpec("sb_rest_cheek", 0, 2, 0.80, 0.65, 0.45, 0.45, True),
    ItemSpec("sb_rest_mouth", 0, 1, 0.35, 0.25, 0.30, 0.35, True),
    ItemSpec("sb_vol_brow", 1, 5, 3.1, 3.2, 0.60, 0.50, False),
    ItemSpec("sb_vol_eye", 1, 5, 4.1, 4.2, 0.50, 0.45, False),
    ItemSpec("sb_vol_smile", 1, 5, 3.0, 3.8, 0.60, 0.50, False),
    ItemSpec("sb_vol_snarl", 1, 5, 3.2, 3.6, 0.60, 0.50, False),
    ItemSpec("sb_vol_pucker", 1, 5, 3.6, 3.95, 0.60, 0.50, False),
    ItemSpec("sb_syn_brow", 0, 3, 1.5, 1.25, 0.55, 0.45, True),
    ItemSpec("sb_syn_eye", 0, 3, 2.2, 1.6, 0.55, 0.45, True),
    ItemSpec("sb_syn_smile", 0, 3, 2.0, 1.2, 0.55, 0.45, True),
    ItemSpec("sb_syn_snarl", 0, 3, 1.8, 1.2, 0.55, 0.45, True),
    ItemSpec("sb_syn_pucker", 0, 3, 2.0, 1.25, 0.55, 0.45, True),
)

# eFACE: published pre -> post means where the paper gives them; static items
# are raw sliders (0-200, 100 = balanced). NLF at rest: raw ~102.5 gives a
# score 100 - |raw - 100| of about 95 (paper 95 -> 96).
EFACE_ITEMS = (
    ItemSpec("eface_brow_rest", 0, 200, 92.0, 94.0, 8.0, 6.0, False),
    ItemSpec("eface_pf_rest", 0, 200, 86.0, 91.0, 8.0, 6.0, False),  # synkinetic eye narrower
    ItemSpec("eface_nlf_rest", 0, 200, 102.5, 101.5, 4.0, 4.0, True),
    ItemSpec("eface_oc_rest", 0, 200, 111.0, 106.0, 8.0, 6.0, True),  # paper 111 -> 106
    ItemSpec("eface_brow_elev", 0, 100, 58.0, 61.0, 15.0, 10.0, False),
    ItemSpec("eface_eye_gentle", 0, 100, 86.0, 88.0, 6.0, 5.0, False),
    ItemSpec("eface_eye_full", 0, 100, 91.0, 92.0, 5.0, 4.0, False),
    ItemSpec("eface_oc_smile", 0, 100, 43.0, 70.0, 13.0, 9.0, False),  # paper 43 -> 70
    ItemSpec("eface_nlf_depth_smile", 0, 100, 95.0, 96.0, 4.0, 4.0, False),
    ItemSpec("eface_nlf_orient_smile", 0, 100, 80.0, 92.0, 10.0, 7.0, False),
    ItemSpec("eface_lower_lip", 0, 100, 66.0, 79.0, 14.0, 10.0, False),
    ItemSpec("eface_syn_ocular", 0, 100, 63.0, 70.0, 12.0, 9.0, False),
    ItemSpec("eface_syn_midface", 0, 100, 80.0, 93.0, 9.0, 7.0, False),
    ItemSpec("eface_syn_mentalis", 0, 100, 79.0, 93.0, 10.0, 8.0, False),
    ItemSpec("eface_syn_platysma", 0, 100, 82.0, 99.0, 10.0, 8.0, False),
)

# SAQ: 9 items, sum 27 -> 21.5 (item mean 3.0 -> 2.39), higher worse.
# FaCE: 15 items, total (sum - 15) / 60 * 100 = 47 -> 62 (item mean 2.88 -> 3.48), drawn with 5 =
# best
# and written as answered (reverse-worded items reversed).
# Fixed item offsets (summing to zero) so the items are not interchangeable.
SAQ_OFFSETS = np.array([0.3, -0.2, 0.1, 0.4, -0.3, 0.0, -0.1, 0.2, -0.4])
FACE_OFFSETS = np.array(
    [0.2, -0.3, 0.1, 0.0, 0.3, -0.2, 0.1, -0.1, 0.25, -0.25, 0.0, 0.15, -0.15, 0.05, -0.15]
)
SAQ_ITEMS = _items("saq_", range(1, 10), 1, 5, 27 / 9, 21.5 / 9, 0.65, 0.70, True, SAQ_OFFSETS)
FACE_ITEMS = _items(
    "face_",
    range(1, 16),
    1,
    5,
    (15 + 0.47 * 60) / 15,
    (15 + 0.62 * 60) / 15,
    0.65,
    0.70,
    False,
    FACE_OFFSETS,
)

# Botulinum toxin units injected to the face in the interval before the visit.
# Pre: the usual dose before the >= 6-month pre-operative washout (0 for the
# toxin-naive). Post: fewer patients need it and at lower doses.
BOTOX_P_USE = {
    "pre": 0.95,
    "m3": 0.25,
    "m6": 0.55,
    "m12": 0.55,
    "last": 0.55,
}  # pre: among prior users
BOTOX_MEAN_DOSE = {
    "pre": 75.0,
    "m3": 45.0,
    "m6": 63.0,
    "m12": 63.0,
    "last": 63.0,
}  # among those injected
BOTOX_PATIENT_SHAPE, BOTOX_VISIT_SHAPE = (
    6.0,
    8.0,
)  # gamma shapes: patient dose level, visit-to-visit
BOTOX_STEP = 2.5  # units are recorded in 2.5-unit steps

QUESTIONNAIRE_VISITS = ("pre", "m3", "m6", "m12", "last")
EFACE_MIN_DAY = 90

PATIENT_COLUMNS = [
    "study_id",
    "age",
    "sex",
    "side",
    "etiology",
    "months_since_onset",
    "prior_botox",
    "facelift",
    "cross_facial_nerve_graft",
    "nerve_rerouting",
    "end_to_side",
    "branches_transected",
    "surgery_year",
    "oral_incompetence",
    "revision",
]
# Oral incompetence's course, drawn after every other value from a generator of its own
# (COURSE_STREAM), so adding it changed no earlier column. The paper reports it as temporary
# without its duration: median about 6 weeks, resolved when it ends before the patient's last
# contact, otherwise persistent at last follow-up (no duration yet).
COURSE_STREAM = 18
ORAL_INCOMPETENCE_MEDIAN_DAYS, ORAL_INCOMPETENCE_LOG_SD = 42.0, 0.7
ORAL_INCOMPETENCE_MIN_DAYS, ORAL_INCOMPETENCE_MAX_DAYS = 5, 365
EVENT_COLUMNS = ["oral_incompetence_days", "oral_incompetence_resolved"]
ITEM_COLUMNS = [
    i.name for i in (HB_ITEMS[1], HB_ITEMS[0], *SB_ITEMS, *EFACE_ITEMS, *SAQ_ITEMS, *FACE_ITEMS)
]
VISIT_COLUMNS = ["study_id", "visit", "day", *ITEM_COLUMNS, "botox_units"]
#: Written after PATIENT_COLUMNS in the demo's patients.csv (the registry's patients lack them).
EVENT_DAY_COLUMNS = ["revision_day"]


def _expected_observed(
    centre: np.ndarray, sd: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """E[clip(round(X), lo, hi)] for X ~ N(centre, sd): lo + sum over k of P(X > k + 0.5)."""
    k = np.arange(int(hi.max() - lo.min()))[None, :] + lo[:, None]
    inside = k < hi[:, None]
    return lo + (ndtr((centre[:, None] - k - 0.5) / sd[:, None]) * inside).sum(axis=1)


def _latent_centres(
    target: np.ndarray, sd: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Latent normal centres whose rounded, clipped means equal ``target`` (bisection)."""
    low, high = lo - 4.0 * sd - 1.0, hi + 4.0 * sd + 1.0
    for _ in range(60):
        mid = (low + high) / 2
        above = _expected_observed(mid, sd, lo, hi) > target
        high, low = np.where(above, mid, high), np.where(above, low, mid)
    return (low + high) / 2


def _calibrate(
    items: tuple[ItemSpec, ...], extra_var: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Latent (pre, full-effect post) centres for each item; see ItemSpec."""
    lo = np.array([i.lo for i in items], dtype=float)
    hi = np.array([i.hi for i in items], dtype=float)
    var = np.array([i.sd_state**2 + i.sd_noise**2 for i in items]) + extra_var
    delta = np.array([i.post - i.pre for i in items])
    sd_pre = np.sqrt(var)
    # After surgery the improvement itself varies between patients.
    sd_post = np.sqrt(var + (delta * RESPONSE_SD) ** 2)
    pre = _latent_centres(np.array([i.pre for i in items]), sd_pre, lo, hi)
    post = _latent_centres(np.array([i.post for i in items]), sd_post, lo, hi)
    return pre, post


def _draw_items(rng, items, state, gain, shared=None, extra_var=0.0) -> dict[str, np.ndarray]:
    """Integer item values for every row: latent normal, rounded and clipped (float, NaN-free)."""
    pre, post = _calibrate(items, extra_var)
    noise = rng.standard_normal((len(state), len(items)))
    out = {}
    for j, item in enumerate(items):
        sign = 1.0 if item.worse_high else -1.0
        x = (
            pre[j]
            + (post[j] - pre[j]) * gain
            + sign * item.sd_state * state
            + item.sd_noise * noise[:, j]
        )
        if shared is not None:
            x = x + shared
        out[item.name] = np.clip(np.rint(x), item.lo, item.hi)
    return out


def _pick(
    rng, n: int, k: int, weights: np.ndarray | None = None, among: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask with exactly k of n set (fewer if fewer are ``among``).

    Weighted sampling without replacement by Efraimidis-Spirakis keys
    (log(u) / w, keep the k largest): vectorised and reproducible for any n.
    """
    u = rng.random(n)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    keys = np.log(u) / w
    if among is not None:
        keys = np.where(among, keys, -np.inf)
    k = int(min(max(k, 0), n if among is None else among.sum()))
    mask = np.zeros(n, dtype=bool)
    if k:
        mask[np.argsort(-keys, kind="stable")[:k]] = True
    return mask


def _count(share: float, n: int) -> int:
    return int(round(share * n))


def _patients(rng, n: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    width = max(3, len(str(n)))
    study_id = np.array([f"FP-{i:0{width}d}" for i in range(1, n + 1)])

    age = np.rint(rng.normal(AGE_MEAN, AGE_SD, n)).clip(AGE_MIN, None).astype(int)
    # Guarantee at least one 90+ patient so the top-coding rule is exercised;
    # drawn unconditionally so the random stream does not depend on the outcome.
    old_idx, old_age = rng.integers(n), rng.integers(AGE_TOP_CODE, 97)
    if not (age >= AGE_TOP_CODE).any():
        age[old_idx] = old_age
    age_text = np.where(age >= AGE_TOP_CODE, f"{AGE_TOP_CODE}+", age.astype(str)).astype(object)

    sex = np.where(rng.random(n) < SHARE_FEMALE, "F", "M").astype(object)
    side = np.where(rng.random(n) < 0.5, "left", "right").astype(object)
    etiology = np.array(ETIOLOGIES, dtype=object)[
        rng.choice(len(ETIOLOGIES), n, p=ETIOLOGY_WEIGHTS)
    ]
    onset = np.rint(ONSET_MEDIAN_MONTHS * np.exp(rng.normal(0, ONSET_LOG_SD, n)))
    onset = onset.clip(ONSET_MIN, ONSET_MAX).astype(int)
    prior_botox = (rng.random(n) < SHARE_PRIOR_BOTOX).astype(int)

    facelift = _pick(rng, n, _count(SHARE_FACELIFT, n))
    cfng = _pick(rng, n, _count(SHARE_CFNG, n))
    rerouting = _pick(rng, n, _count(SHARE_REROUTING, n))
    end_to_side = _pick(rng, n, _count(SHARE_END_TO_SIDE, n))
    branches = np.rint(BRANCHES_MEDIAN * np.exp(rng.normal(0, BRANCHES_LOG_SD, n)))
    branches = branches.clip(BRANCHES_MIN, BRANCHES_MAX).astype(int)
    year = SURGERY_YEARS[rng.choice(len(SURGERY_YEARS), n, p=SURGERY_YEAR_WEIGHTS)]
    # Only the year is output; the within-year time only limits possible follow-up.
    surgery_time = year + rng.random(n)

    severity = rng.standard_normal(n)
    prom_own = rng.standard_normal(n)
    prom_latent = (
        PROM_SEVERITY_CORRELATION * severity + np.sqrt(1 - PROM_SEVERITY_CORRELATION**2) * prom_own
    )
    responsiveness = rng.normal(1.0, RESPONSE_SD, n).clip(0.0, 2.0)
    # Transecting more branches weakens more muscle: more temporary oral incompetence.
    oral_incompetence = _pick(
        rng, n, _count(SHARE_ORAL_INCOMPETENCE, n), weights=branches / BRANCHES_MEDIAN
    )
    # Revisions go to the poorer responders.
    revision = _pick(
        rng, n, _count(SHARE_REVISION, n), weights=np.exp(-2.0 * (responsiveness - 1.0))
    )

    patients = pd.DataFrame(
        {
            "study_id": study_id,
            "age": age_text,
            "sex": sex,
            "side": side,
            "etiology": etiology,
            "months_since_onset": onset,
            "prior_botox": prior_botox,
            "facelift": facelift.astype(int),
            "cross_facial_nerve_graft": cfng.astype(int),
            "nerve_rerouting": rerouting.astype(int),
            "end_to_side": end_to_side.astype(int),
            "branches_transected": branches,
            "surgery_year": year.astype(int),
            "oral_incompetence": oral_incompetence.astype(int),
            "revision": revision.astype(int),
        }
    )[PATIENT_COLUMNS]
    latent = {
        "severity": severity,
        "prom": prom_latent,
        "responsiveness": responsiveness,
        "surgery_time": surgery_time,
        "prior_botox": prior_botox,
    }
    return patients, latent


def _schedule(rng, n: int, latent: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Visit days and presence, shape (n, len(VISITS)), columns in VISITS order."""
    day = np.zeros((n, len(VISITS)), dtype=np.int64)
    present = np.zeros((n, len(VISITS)), dtype=bool)
    day[:, 0] = rng.integers(PRE_DAY_RANGE[0], PRE_DAY_RANGE[1] + 1, n)
    present[:, 0] = True  # every patient has a pre-operative visit
    for j, (nominal, window) in enumerate(SCHEDULE.values(), start=1):
        # Clinic visits cluster around the nominal day within the window.
        jitter = np.rint(rng.normal(0, window / 2, n)).clip(-window, window)
        day[:, j] = nominal + jitter.astype(np.int64)
    attended = rng.random((n, len(SCHEDULE))) >= P_VISIT_MISSED

    # Follow-up available before the data cut-off, and the published maximum.
    cap = np.minimum(
        np.floor((DATA_CUTOFF_YEAR - latent["surgery_time"]) * 365.25), FOLLOWUP_MAX_DAYS
    )
    tail = FOLLOWUP_TAIL_MEDIAN * np.exp(rng.normal(0, FOLLOWUP_TAIL_LOG_SD, n))
    last_contact = np.minimum(FOLLOWUP_FLOOR_DAYS + np.rint(tail), cap).astype(np.int64)
    # Lost patients: seen at 1 month, last contact before 3 months.
    lost = _pick(rng, n, _count(SHARE_LOST, n))
    lost_extra = rng.integers(0, LOST_LAST_MAX_DAY + 1, n)
    attended[lost, 0] = True
    attended[lost, 1:] = False
    last_contact = np.where(
        lost, np.minimum(day[:, 1] + lost_extra, LOST_LAST_MAX_DAY), last_contact
    )

    present[:, 1:5] = attended & (day[:, 1:5] <= last_contact[:, None])
    last_scheduled = np.where(present[:, :5], day[:, :5], np.iinfo(np.int64).min).max(axis=1)
    # A separate "last" row only if the last contact is well after the last
    # scheduled visit; otherwise that scheduled visit is the last follow-up.
    present[:, 5] = last_contact > last_scheduled + LAST_GAP_DAYS
    day[:, 5] = last_contact
    return day, present


def visit_states(
    rng, latent: dict[str, np.ndarray], pid: np.ndarray, row_day: np.ndarray, is_pre: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per visit row: severity state, patient-reported state and gain (see the latent model
    above)."""
    rows = len(pid)
    w = PATIENT_WEIGHT
    state = w * latent["severity"][pid] + np.sqrt(1 - w**2) * rng.standard_normal(rows)
    prom_state = w * latent["prom"][pid] + np.sqrt(1 - w**2) * rng.standard_normal(rows)
    ramp = np.where(is_pre, 0.0, 1.0 - np.exp(-np.maximum(row_day, 0) / RAMP_TAU_DAYS))
    return state, prom_state, ramp * latent["responsiveness"][pid]


def nullable_integers(values: np.ndarray) -> pd.arrays.IntegerArray:
    """Whole-number floats (NaN = missing) as a nullable integer column: written without ".0"."""
    missing = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def generate(seed: int = 63, n_patients: int = 63) -> dict[str, pd.DataFrame]:
    """SYNTHETIC cohort: {"patients": one row per patient, "visits": one row per patient visit}.

    Same seed and size -> identical frames. Item columns are nullable integers
    (missing = <NA>); ``botox_units`` is float (NaN at m1 and when missing).
    """
    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")
    rng = np.random.default_rng(seed)
    n = int(n_patients)
    patients, latent = _patients(rng, n)
    day, present = _schedule(rng, n, latent)

    # Long format, rows ordered by patient then visit (codes sort in patient order).
    pid, vid = np.nonzero(present)
    rows = len(pid)
    visit = np.array(VISITS, dtype=object)[vid]
    row_day = day[pid, vid]
    is_pre = vid == 0

    # eFACE sub-cohort: exactly SHARE_EFACE of patients, among those with a visit >= 90 days.
    eligible = np.zeros(n, dtype=bool)
    eligible[pid[row_day >= EFACE_MIN_DAY]] = True
    in_eface = _pick(rng, n, _count(SHARE_EFACE, n), among=eligible)

    state, prom_state, gain = visit_states(rng, latent, pid, row_day, is_pre)

    values: dict[str, np.ndarray] = {}
    # House-Brackmann: both raters see the same visit (shared term), each adds their own error.
    hb_shared = HB_SD_SHARED * rng.standard_normal(rows)
    values.update(
        _draw_items(rng, HB_ITEMS, state, gain, shared=hb_shared, extra_var=HB_SD_SHARED**2)
    )
    values.update(_draw_items(rng, SB_ITEMS, state, gain))
    eface = _draw_items(rng, EFACE_ITEMS, state, gain)
    eface_rows = in_eface[pid] & (is_pre | (row_day >= EFACE_MIN_DAY))
    values.update({k: np.where(eface_rows, v, np.nan) for k, v in eface.items()})
    questionnaire_rows = np.isin(visit, QUESTIONNAIRE_VISITS)
    for items in (SAQ_ITEMS, FACE_ITEMS):
        drawn = _draw_items(rng, items, prom_state, gain)
        values.update({k: np.where(questionnaire_rows, v, np.nan) for k, v in drawn.items()})
    # FaCE items are drawn with 5 = best; patients answer the reverse-worded ones the other way
    # round.
    for k in FACE_REVERSED:
        values[f"face_{k}"] = 6 - values[f"face_{k}"]

    # Botulinum toxin: patient dose level x visit variation, in 2.5-unit steps.
    dose_level = rng.gamma(BOTOX_PATIENT_SHAPE, 1 / BOTOX_PATIENT_SHAPE, n)[pid]
    visit_var = rng.gamma(BOTOX_VISIT_SHAPE, 1 / BOTOX_VISIT_SHAPE, rows)
    p_use = np.array([BOTOX_P_USE.get(v, 0.0) for v in VISITS])[vid]
    p_use = np.where(is_pre, p_use * latent["prior_botox"][pid], p_use)
    used = rng.random(rows) < p_use
    mean_dose = np.array([BOTOX_MEAN_DOSE.get(v, 0.0) for v in VISITS])[vid]
    units = np.rint(mean_dose * dose_level * visit_var / BOTOX_STEP) * BOTOX_STEP
    botox = np.where(used, units, 0.0)
    botox = np.where(visit == "m1", np.nan, botox)  # not recorded at the 1-month visit

    # An occasional empty item (about 1%), independent of everything else.
    item_names = [*ITEM_COLUMNS, "botox_units"]
    dropped = rng.random((rows, len(item_names))) < P_ITEM_MISSING
    values["botox_units"] = botox
    columns: dict[str, object] = {
        "study_id": patients["study_id"].to_numpy()[pid],
        "visit": visit,
        "day": row_day,
    }
    for j, name in enumerate(item_names):
        col = np.where(dropped[:, j], np.nan, values[name])
        if name == "botox_units":
            columns[name] = col
        else:
            columns[name] = nullable_integers(col)
    patients = patients.assign(**_oral_incompetence_course(seed, patients, day, present))
    last_day = np.where(present, day, np.iinfo(np.int64).min).max(axis=1)
    patients = patients.assign(
        revision_day=_revision_days(seed, patients["revision"].to_numpy(bool), last_day)
    )
    return {"patients": patients, "visits": pd.DataFrame({c: columns[c] for c in VISIT_COLUMNS})}


def _oral_incompetence_course(
    seed: int, patients: pd.DataFrame, day: np.ndarray, present: np.ndarray
) -> dict[str, pd.arrays.IntegerArray]:
    """Days each patient's oral incompetence lasted and whether it had resolved by the last
    contact (blank without the event; days blank while it persists)."""
    rng = np.random.default_rng([seed, COURSE_STREAM])
    n = len(patients)
    had = patients["oral_incompetence"].to_numpy() == 1
    days = np.rint(
        ORAL_INCOMPETENCE_MEDIAN_DAYS * np.exp(rng.normal(0, ORAL_INCOMPETENCE_LOG_SD, n))
    )
    days = days.clip(ORAL_INCOMPETENCE_MIN_DAYS, ORAL_INCOMPETENCE_MAX_DAYS)
    last_contact = np.where(present, day, np.iinfo(np.int64).min).max(axis=1)
    resolved = days <= last_contact
    return {
        "oral_incompetence_days": nullable_integers(np.where(had & resolved, days, np.nan)),
        "oral_incompetence_resolved": nullable_integers(
            np.where(had, resolved.astype(float), np.nan)
        ),
    }


def _revision_days(seed: int, revised: np.ndarray, last_day: np.ndarray) -> pd.arrays.IntegerArray:
    """Day of each revision after surgery (missing for patients without one): log-normal around
    REVISION_MEDIAN_DAYS, at least REVISION_MIN_DAYS, at most the patient's last visit day."""
    rng = np.random.default_rng([seed, REVISION_STREAM])
    drawn = np.rint(REVISION_MEDIAN_DAYS * np.exp(rng.normal(0, REVISION_LOG_SD, len(revised))))
    days = np.minimum(np.maximum(drawn, REVISION_MIN_DAYS), last_day).astype(float)
    return nullable_integers(np.where(revised, days, np.nan))


def write(out_dir: Path, seed: int = 63, n_patients: int = 63) -> list[Path]:
    """Write ``patients.csv`` and ``visits.csv`` (SYNTHETIC) into ``out_dir``; return their paths.

    UTF-8, comma-separated, "\\n" line endings, no index; integers without
    ".0", missing values as empty fields. Same seed -> byte-identical files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = generate(seed=seed, n_patients=n_patients)
    paths = []
    for name in ("patients", "visits"):
        path = out_dir / f"{name}.csv"
        # %.10g: whole toxin doses as "60", half steps as "62.5"; the only float column.
        frames[name].to_csv(
            path,
            index=False,
            encoding="utf-8",
            lineterminator="\n",
            na_rep="",
            float_format="%.10g",
        )
        paths.append(path)
    return paths
