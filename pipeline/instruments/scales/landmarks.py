"""Facial landmark measures per side (Emotrics-style photograph measurements).

Guarin DL, Dusseldorp J, Hadlock TA, Jowett N. A machine learning approach for
automated facial measurements in facial palsy. JAMA Facial Plast Surg.
2018;20(4):335-337 (Emotrics; measurements in github dguari1/Emotrics,
measurements.py @ 04d2427).

Each measure is recorded for the left and the right side, in millimetres
(calibrated by iris diameter) or degrees. Scoring takes the affected side from
the subject's side of the paralysis (the subjects column the spec names with
``side = "..."``) and reports, per measure, affected minus healthy (signed; 0 is
symmetric, negative means the affected side shows less), its absolute value
(asymmetry, lower is better) and the ratio affected / healthy (1 is symmetric).
"""

from pipeline.instruments.model import SIDES, Instrument, Item, Score

MEASURES = {
    # name: (label, unit, minimum, maximum)
    "commissure_excursion": ("Oral commissure excursion", "mm", 0, 60),
    "smile_angle": ("Smile angle", "degrees", 0, 180),
    "dental_show": ("Dental show", "mm", 0, 40),
    "brow_height": ("Brow height", "mm", 0, 60),
    "palpebral_fissure_height": ("Palpebral fissure height", "mm", 0, 25),
}

ITEMS = tuple(
    Item(
        f"{m}_{side}",
        f"{label}, {side} side ({unit})",
        low,
        high,
        integer=False,
        side=side,
        unit=unit,
    )
    for m, (label, unit, low, high) in MEASURES.items()
    for side in SIDES
)

SCORES = tuple(
    score
    for m, (label, unit, low, high) in MEASURES.items()
    for score in (
        # Signed: a paretic or synkinetic side usually moves less, so a rise towards 0 is
        # improvement.
        Score(
            f"{m}_difference",
            f"{label}: affected minus healthy",
            f"affected_{m} - healthy_{m}",
            low - high,
            high - low,
            True,
            unit=unit,
        ),
        Score(
            f"{m}_asymmetry",
            # In words: a line of a table cell breaks after "|", splitting "|affected".
            f"{label}: absolute difference, affected vs healthy",
            f"abs(affected_{m} - healthy_{m})",
            0,
            high - low,
            False,
            unit=unit,
        ),
        Score(
            f"{m}_ratio",
            f"{label}: affected / healthy",
            f"affected_{m} / nullif(healthy_{m}, 0)",
            0,
            float("inf"),
            True,
            undefined="healthy side measures 0, so the ratio is undefined",
        ),
    )
)

INSTRUMENT = Instrument(
    name="landmarks",
    label="Facial landmarks",
    citation=(
        "Guarin DL, Dusseldorp J, Hadlock TA, Jowett N. JAMA Facial Plast Surg. 2018;20(4):335-337."
    ),
    items=ITEMS,
    scores=SCORES,
    missing_rule="Both sides of a measure and the subject's side of the paralysis must be known.",
    sources=(
        "Emotrics measurements.py @ 04d24271 (per-side measures; calibration by iris diameter)",
        "MEEI outcomes pages (oral commissure excursion in mm)",
    ),
    unverified=(
        "Plausible ranges used to refuse values (0-60 mm etc.) are ours, not published.",
        "The Emotrics citation details (measures verified from its code only).",
    ),
)
