"""Sunnybrook Facial Grading System.

Ross BG, Fradet G, Nedzelski JM. Development of a sensitive clinical facial
grading system. Otolaryngol Head Neck Surg. 1996;114(3):380-386.

Resting symmetry (eye 0-1, cheek 0-2, mouth 0-1; sum x 5 -> 0-20, lower is
better); symmetry of voluntary movement (5 expressions, 1-5 each; sum x 4 ->
20-100, higher is better); synkinesis (same 5 expressions, 0-3 each; sum ->
0-15, lower is better). Composite = voluntary - resting - synkinesis:
conventionally 0-100, arithmetically -15 to 100.
"""

from pipeline.instruments.model import Instrument, Item, Score

EXPRESSIONS = {
    "brow": "brow lift / forehead wrinkle",
    "eye": "gentle eye closure",
    "smile": "open-mouth smile",
    "snarl": "snarl",
    "pucker": "lip pucker",
}

# Labels carry each item's range and its normal end (Ross et al. 1996, via the sources below), so
# an item-level table reads without the form: resting and synkinesis items lower is better.
ITEMS = (
    Item("rest_eye", "Resting symmetry: eye (palpebral fissure; 0-1, 0 = normal)", 0, 1),
    Item("rest_cheek", "Resting symmetry: cheek (nasolabial fold; 0-2, 0 = normal)", 0, 2),
    Item("rest_mouth", "Resting symmetry: mouth (0-1, 0 = normal)", 0, 1),
    *(
        Item(f"vol_{key}", f"Voluntary movement: {label} (1-5, 5 = movement complete)", 1, 5)
        for key, label in EXPRESSIONS.items()
    ),
    *(
        Item(f"syn_{key}", f"Synkinesis: {label} (0-3, 0 = none)", 0, 3)
        for key, label in EXPRESSIONS.items()
    ),
)


def _sum(prefix: str) -> str:
    return " + ".join(i.name for i in ITEMS if i.name.startswith(prefix))


INSTRUMENT = Instrument(
    name="sunnybrook",
    label="Sunnybrook",
    citation="Ross BG, Fradet G, Nedzelski JM. Otolaryngol Head Neck Surg. 1996;114(3):380-386.",
    items=ITEMS,
    scores=(
        Score(
            "resting", "Resting symmetry", f"5 * ({_sum('rest_')})", 0, 20, higher_is_better=False
        ),
        Score(
            "voluntary",
            "Voluntary movement",
            f"4 * ({_sum('vol_')})",
            20,
            100,
            higher_is_better=True,
        ),
        Score("synkinesis", "Synkinesis", _sum("syn_"), 0, 15, higher_is_better=False),
        Score(
            "composite",
            "Composite",
            "voluntary - resting - synkinesis",
            -15,
            100,
            higher_is_better=True,
        ),
    ),
    sources=(
        "Ross et al. 1996 via a public implementation citing it, the BMJ Best Practice summary and "
        "Kanerva/eFACE-vs-Sunnybrook comparisons (item scales, weights, composite)",
    ),
    unverified=("Minimal important change: none found; healthy people score 65-100.",),
)
