"""Synkinesis Assessment Questionnaire (SAQ).

Mehta RP, et al. Validation of the Synkinesis
Assessment Questionnaire. Laryngoscope. 2007;117(5):923-926.

Nine patient-answered items, each 1-5 (1 = seldom or not at all ... 5 = all the
time); higher is worse. Published reports use three scalings of the sum, kept
as named versions: the raw sum (9-45), the sum as a percentage of the maximum
(sum / 45 x 100, 20-100) and a 0-100 rescaling ((sum - 9) / 36 x 100).
"""

from pipeline.instruments.model import Instrument, Item, MinimalChange, Score, Version
from pipeline.sql import quote

ITEMS = tuple(
    Item(str(k), f"SAQ item {k} (1 = seldom or not at all ... 5 = all the time)", 1, 5)
    for k in range(1, 10)
)
SUM = " + ".join(quote(i.name) for i in ITEMS)

# Bruins et al. 2021 report these on a 0-100 SAQ; which 0-100 transformation they used is not
# verified.
BRUINS_2021 = MinimalChange(
    source=(
        "Bruins TE, et al. Facial Plast Surg Aesthet Med. 2021;23(2):75-80 (doi "
        "10.1089/fpsam.2020.0604)"
    ),
    mic_improvement=2.8,
    mic_deterioration=0.6,
    sdc_individual=28.2,
    sdc_group=4.6,
    note=(
        "Reported on a 0-100 scale; whether that was sum/45 x 100 or (sum - 9)/36 x 100 is not "
        "verified."
    ),
)

INSTRUMENT = Instrument(
    name="saq",
    label="SAQ",
    citation=(
        "Mehta RP, et al. Validation of the Synkinesis Assessment Questionnaire. Laryngoscope. "
        "2007;117(5):923-926."
    ),
    items=ITEMS,
    scores=(
        Score("total", "Total", SUM, 9, 45, False, versions=("raw_sum",)),
        Score(
            "total",
            "Total",
            f"({SUM}) / 45 * 100",
            20,
            100,
            False,
            versions=("percent_of_max",),
            minimal_change=BRUINS_2021,
        ),
        Score(
            "total",
            "Total",
            f"(({SUM}) - 9) / 36 * 100",
            0,
            100,
            False,
            versions=("zero_to_hundred",),
            minimal_change=BRUINS_2021,
        ),
    ),
    versions=(
        Version(
            "raw_sum",
            "raw sum 9-45",
            "Sum of the nine items, 9-45 (the scale of Shtraks et al. 2021's values, 21-29).",
        ),
        Version(
            "percent_of_max",
            "sum/45 x 100",
            "Sum divided by the maximum 45, times 100: 20-100 (the commonly described scoring).",
        ),
        Version(
            "zero_to_hundred",
            "0-100 rescaled",
            "(sum - 9) / 36 x 100: 0 (no synkinesis symptoms) to 100.",
        ),
    ),
    default_version="percent_of_max",
    missing_rule="All nine items must be answered; no proration (none is published).",
    sources=(
        "Mehta et al. 2007 (9 items after deleting one of 10; alpha 0.859; responsive to botulinum "
        "toxin)",
        "Shtraks et al. 2021 Facial Plast Surg Aesthet Med (values 21-29, consistent with the raw "
        "sum)",
        "Bruins et al. 2021 (minimal important change and smallest detectable change)",
    ),
    unverified=(
        "The original scoring formula (all three scalings are versions; the default sum/45 x 100 "
        "is the "
        "commonly described one, not read in the source).",
        "Item wording and answer labels (1 seldom/not at all ... 5 all the time).",
        "The scale Bruins et al. 2021 used for the minimal important change.",
    ),
)
