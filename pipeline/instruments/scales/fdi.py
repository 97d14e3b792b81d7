"""Facial Disability Index (FDI).

VanSwearingen JM, Brach JS. The Facial Disability Index: reliability and
validity of a disability assessment instrument for disorders of the facial
neuromuscular system. Phys Ther. 1996;76(12):1288-1298.

Ten patient-answered items, recorded as the points the worksheet assigns
(higher = better): items 1-5 physical function, 5 no difficulty ... 1 usually
did not do because of health, 0 usually did not do for another reason (not
applicable); items 6-10 social / well-being, 1-6 with the negatively worded
items already reversed on the worksheet. Each sub-scale adjusts for N, the
number of items answered (physical items answered 0 and unanswered items are
left out): physical = ((sum - N) / N) x 25, social = ((sum - N) / N) x 20,
each 0-100.
"""

from pipeline.instruments.model import Instrument, Item, MinimalChange, Score
from pipeline.sql import quote

PHYSICAL = tuple(range(1, 6))
SOCIAL = tuple(range(6, 11))
ITEMS = (
    *(
        Item(
            str(k),
            f"FDI physical item {k} (5 no difficulty ... 1 did not do for health; 0 not "
            "applicable)",
            0,
            5,
        )
        for k in PHYSICAL
    ),
    *(
        Item(
            str(k),
            f"FDI social / well-being item {k} (worksheet points 1-6, higher = better)",
            1,
            6,
        )
        for k in SOCIAL
    ),
)


def _q(k: int) -> str:
    return quote(str(k))


def _adjusted(items, per_point: int) -> str:
    # VanSwearingen & Brach 1996 worksheet: ((sum - N) / N) x 25 (physical) or x 20 (social), where
    # N counts
    # the items answered; a physical answer of 0 (did not do for another reason) is left out of sum
    # and N.
    total = " + ".join(f"coalesce(CASE WHEN {_q(k)} > 0 THEN {_q(k)} END, 0)" for k in items)
    n = " + ".join(f"CAST(coalesce({_q(k)} > 0, FALSE) AS INTEGER)" for k in items)
    return f"(({total}) - ({n})) / nullif({n}, 0) * {per_point}"


INSTRUMENT = Instrument(
    name="fdi",
    label="FDI",
    citation="VanSwearingen JM, Brach JS. Phys Ther. 1996;76(12):1288-1298.",
    items=ITEMS,
    scores=(
        Score(
            "physical",
            "Physical function",
            _adjusted(PHYSICAL, 25),
            0,
            100,
            True,
            min_answered=1,
            minimal_change=MinimalChange(
                source="Bruins et al. 2021", mic_improvement=4.4, mic_deterioration=8.2
            ),
            undefined="no physical item answered 1-5 (all not applicable)",
        ),
        Score(
            "social",
            "Social / well-being function",
            _adjusted(SOCIAL, 20),
            0,
            100,
            True,
            min_answered=1,
            minimal_change=MinimalChange(
                source="Bruins et al. 2021", mic_improvement=0.4, mic_deterioration=-1.8
            ),
        ),
        Score(
            "total", "Total (mean of the two sub-scales)", "(physical + social) / 2", 0, 100, True
        ),
    ),
    missing_rule=(
        "N-adjusted: each sub-scale averages the items answered (at least one); a physical "
        "answer of 0 (not applicable) is left out like an unanswered item."
    ),
    sources=(
        "VanSwearingen & Brach 1996 (10 items; items 1-5 physical, 6-10 social/well-being; "
        "sub-scales 0-100, "
        "higher = better)",
        "FDI worksheet (answer points); an EMR implementation (Bahmni obs calculator) for the "
        "N-adjusted formulas",
        "Bruins et al. 2021 (minimal important change)",
    ),
    unverified=(
        "The formulas were read in an EMR implementation, not in the 1996 paper.",
        "Leaving physical answers of 0 and unanswered items out of N.",
        "The total as the mean of the two sub-scales.",
        "Per-item reversal of the social items (recorded here as worksheet points, already "
        "reversed).",
    ),
)
