"""eFACE: clinician-graded electronic facial paralysis assessment.

Banks CA, Bhama PK, Park J, Hadlock CR, Hadlock TA. Clinician-graded electronic
facial paralysis assessment: the eFACE. Plast Reconstr Surg. 2015;136(2):223e-230e.

15 scored items, each on a 0-100 scale where 100 is normal:

* 4 static items recorded on a 0-200 slider with 100 = balanced with the normal
  side (e.g. palpebral fissure: 0 wide, 200 narrow); deviation either way is
  penalised, item score = 100 - |100 - slider| (as the Auto-eFACE reference code
  computes it, Guarin, github dguari1/Auto-eFace, Compute_eFace.py);
* 7 dynamic items (0 = no movement, 100 = normal);
* 4 synkinesis items (100 = no synkinesis).

Static, dynamic and synkinesis scores are the means of their item scores. The
total's weighting and the regional scores reported by Azizzadeh et al. 2019
(periocular, midface and smile, lower face and neck, smile) are not published
as formulas; the variants are named scoring versions below.
"""

from pipeline.instruments.model import Instrument, Item, Score, Version

STATIC = {
    "brow_rest": "Brow at rest",
    "pf_rest": "Palpebral fissure at rest",
    "nlf_rest": "Nasolabial fold depth at rest",
    "oc_rest": "Oral commissure at rest",
}
DYNAMIC = {
    "brow_elev": "Brow elevation",
    "eye_gentle": "Gentle eye closure",
    "eye_full": "Full eye closure",
    "oc_smile": "Oral commissure movement with smile",
    "nlf_depth_smile": "Nasolabial fold depth with smile",
    "nlf_orient_smile": "Nasolabial fold orientation with smile",
    "lower_lip": "Lower lip movement (EEEE)",
}
SYNKINESIS = {
    "syn_ocular": "Ocular synkinesis",
    "syn_midface": "Midfacial synkinesis",
    "syn_mentalis": "Mentalis synkinesis",
    "syn_platysma": "Platysmal synkinesis",
}

ITEMS = (
    *(Item(k, f"{v} (slider 0-200, 100 = balanced)", 0, 200) for k, v in STATIC.items()),
    *(Item(k, f"{v} (0 = none, 100 = normal)", 0, 100) for k, v in DYNAMIC.items()),
    *(Item(k, f"{v} (100 = no synkinesis)", 0, 100) for k, v in SYNKINESIS.items()),
)

VERSIONS = (
    Version(
        "domain_mean",
        "total = mean of domains",
        "Total = mean of the static, dynamic and synkinesis scores, as the Auto-eFACE reference "
        "code "
        "computes it (Guarin, dguari1/Auto-eFace). Regions: periocular = palpebral fissure at "
        "rest, gentle "
        "and full eye closure, ocular synkinesis; midface and smile = NLF depth at rest, oral "
        "commissure at "
        "rest, OC movement, NLF depth and orientation with smile, midfacial synkinesis; lower face "
        "and neck "
        "= lower lip movement, mentalis and platysmal synkinesis; smile = OC movement, NLF depth "
        "and "
        "orientation with smile.",
    ),
    Version(
        "dynamic_double",
        "total with dynamic weighted twice",
        "As domain_mean, but total = (static + 2 x dynamic + synkinesis) / 4, following Banks et "
        "al. 2015: "
        "expert disfigurement was fitted best when dynamic parameters were weighted twice as "
        "heavily as "
        "static and synkinesis parameters.",
    ),
    Version(
        "brow_in_periocular",
        "periocular region with brow",
        "As domain_mean, but the periocular score also includes brow at rest and brow elevation.",
    ),
)
DEFAULT_REGIONS = ("domain_mean", "dynamic_double")


def item_score(item: str) -> str:
    """Score-name of an item's 0-100 score."""
    return f"item_{item}"


def _mean(items) -> str:
    # Means of item scores, never of raw sliders.
    names = [item_score(i) for i in items]
    return f"({' + '.join(names)}) / {len(names)}"


ITEM_SCORES = (
    # Static sliders: 100 = balanced; 0 and 200 are equally far from normal.
    *(Score(item_score(k), v, f"100 - abs(100 - {k})", 0, 100, True) for k, v in STATIC.items()),
    *(Score(item_score(k), v, k, 0, 100, True) for k, v in {**DYNAMIC, **SYNKINESIS}.items()),
)

PERIOCULAR = ("pf_rest", "eye_gentle", "eye_full", "syn_ocular")
MIDFACE_SMILE = (
    "nlf_rest",
    "oc_rest",
    "oc_smile",
    "nlf_depth_smile",
    "nlf_orient_smile",
    "syn_midface",
)
LOWER_FACE_NECK = ("lower_lip", "syn_mentalis", "syn_platysma")
SMILE = ("oc_smile", "nlf_depth_smile", "nlf_orient_smile")

INSTRUMENT = Instrument(
    name="eface",
    label="eFACE",
    citation=(
        "Banks CA, Bhama PK, Park J, Hadlock CR, Hadlock TA. Plast Reconstr Surg. "
        "2015;136(2):223e-230e."
    ),
    items=ITEMS,
    scores=(
        *ITEM_SCORES,
        Score("static", "Static score", _mean(STATIC), 0, 100, True),
        Score("dynamic", "Dynamic score", _mean(DYNAMIC), 0, 100, True),
        Score("synkinesis", "Synkinesis score", _mean(SYNKINESIS), 0, 100, True),
        Score(
            "total",
            "Total score",
            "(static + dynamic + synkinesis) / 3",
            0,
            100,
            True,
            versions=("domain_mean", "brow_in_periocular"),
        ),
        Score(
            "total",
            "Total score",
            "(static + 2 * dynamic + synkinesis) / 4",
            0,
            100,
            True,
            versions=("dynamic_double",),
        ),
        Score(
            "periocular",
            "Periocular score",
            _mean(PERIOCULAR),
            0,
            100,
            True,
            versions=DEFAULT_REGIONS,
        ),
        Score(
            "periocular",
            "Periocular score",
            _mean(("brow_rest", "brow_elev", *PERIOCULAR)),
            0,
            100,
            True,
            versions=("brow_in_periocular",),
        ),
        Score("midface_smile", "Midface and smile score", _mean(MIDFACE_SMILE), 0, 100, True),
        Score("lower_face_neck", "Lower face and neck score", _mean(LOWER_FACE_NECK), 0, 100, True),
        Score("smile", "Smile score", _mean(SMILE), 0, 100, True),
    ),
    versions=VERSIONS,
    default_version="domain_mean",
    missing_rule="Every item a score needs must be recorded; no proration (none is published).",
    sources=(
        "Banks et al. 2015 (items, 0-100 scales, dynamic weighted twice in the disfigurement fit)",
        "Banks et al. 2016 JAMA Facial Plast Surg 18(4):292-299 (15 item scores; static, dynamic, "
        "synkinesis "
        "and total subscores on 100-point scales)",
        "Greene et al. 2019 JAMA Facial Plast Surg (palpebral fissure 0 wide / 100 balanced / 200 "
        "narrow; eye "
        "closure 0 incomplete / 100 complete)",
        "Auto-eFACE reference code, dguari1/Auto-eFace Compute_eFace.py @ a82de7d (100 - |100 - "
        "raw|; domain "
        "means; total = mean of domains, for the automated item subset)",
        "Azizzadeh et al. 2019 Plast Reconstr Surg 143(5):1483-1496 (regional scores reported, not "
        "defined)",
    ),
    unverified=(
        "The clinician eFACE total formula: both weightings are versions.",
        "Which items form each regional score (periocular, midface and smile, lower face and neck, "
        "smile).",
        "Direction labels of brow, NLF depth and oral commissure at rest (0 = low/absent, 200 = "
        "high/deep "
        "assumed; the item score is symmetric, so only the label depends on it).",
        "Synkinesis items displayed with 100 = no synkinesis (inferred from improvement = "
        "increase).",
    ),
)
