"""Facial Nerve Grading System 2.0 (FNGS 2.0).

Vrabec JT, Backous DD, Djalilian HR, et al. Facial Nerve Grading System 2.0.
Otolaryngol Head Neck Surg. 2009;140(4):445-450.

Four regions (brow, eye, nasolabial fold, oral) each graded 1 (normal) to 6
(no movement), plus secondary movement (synkinesis) 0-3. The summed score is
mapped to grades I-VI: grade I is a score of 4 and grade VI a score of 24.
Whether secondary movement is added to the sum is a named version.
"""

from pipeline.instruments.model import Instrument, Item, Score, Version

REGIONS = {"brow": "Brow", "eye": "Eye", "nlf": "Nasolabial fold", "oral": "Oral"}
ITEMS = (
    *(Item(k, f"{v} region (1 normal ... 6 no movement)", 1, 6) for k, v in REGIONS.items()),
    Item("secondary", "Secondary movement / synkinesis (0 none ... 3 severe)", 0, 3),
)
# Grade cut-offs on the total: I 4, II 5-9, III 10-14, IV 15-19, V 20-23, VI 24 and above.
GRADE = (
    "CASE WHEN total <= 4 THEN 1 WHEN total <= 9 THEN 2 WHEN total <= 14 THEN 3 "
    "WHEN total <= 19 THEN 4 WHEN total <= 23 THEN 5 ELSE 6 END"
)

INSTRUMENT = Instrument(
    name="fngs",
    label="FNGS 2.0",
    citation=(
        "Vrabec JT, Backous DD, Djalilian HR, et al. Otolaryngol Head Neck Surg. "
        "2009;140(4):445-450."
    ),
    items=ITEMS,
    scores=(
        *(Score(f"region_{k}", f"{v} region", k, 1, 6, False) for k, v in REGIONS.items()),
        Score("regional_sum", "Sum of regional scores", " + ".join(REGIONS), 4, 24, False),
        Score(
            "total", "Total", "regional_sum + secondary", 4, 27, False, versions=("with_secondary",)
        ),
        Score("total", "Total", "regional_sum", 4, 24, False, versions=("regions_only",)),
        Score("grade", "Grade (1 = I ... 6 = VI)", GRADE, 1, 6, False),
    ),
    versions=(
        Version(
            "with_secondary",
            "regions + secondary movement",
            "Total = the four regional scores plus the secondary movement score; graded I 4, II "
            "5-9, III "
            "10-14, IV 15-19, V 20-23, VI 24 and above.",
        ),
        Version(
            "regions_only",
            "regions only",
            "Total = the four regional scores (4-24); secondary movement reported but not added; "
            "same "
            "grade cut-offs.",
        ),
    ),
    default_version="with_secondary",
    sources=(
        "Vrabec et al. 2009 (regions 1-6, secondary movement 0-3, grade I = 4, grade VI = 24)",
    ),
    unverified=(
        "Intermediate grade cut-offs (II 5-9, III 10-14, IV 15-19, V 20-23).",
        "Whether secondary movement is added to the total (both are versions).",
    ),
)
