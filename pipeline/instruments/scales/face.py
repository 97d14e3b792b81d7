"""FaCE Scale (Facial Clinimetric Evaluation).

Kahn JB, Gliklich RE, Boyev KP, Stewart MG, Metson RB, McKenna MJ. Validation
of a patient-graded instrument for facial nerve paralysis: the FaCE scale.
Laryngoscope. 2001;111(3):387-398.

Fifteen patient-answered items on a 5-point scale, in six domains (facial
movement, facial comfort, oral function, eye comfort, lacrimal control, social
function). Negatively worded items are reverse-scored (6 - answer) so that 5 is
always best; each domain is ((sum - n) / (4n)) x 100, 0 worst to 100 best. The
total is item-weighted, ((sum of all 15 - 15) / 60) x 100: regressing the total
on the domains gives coefficients proportional to the domains' item counts
(Yoon et al.). A plain mean of the six domains is kept as a second version.
"""

from pipeline.instruments.model import Instrument, Item, MinimalChange, Score, Version

# Reverse-worded items (answered so that 5 is worst): 9, 10, 13, 14, 15.
REVERSED = {9, 10, 13, 14, 15}
DOMAINS = {
    "movement": ("Facial movement", (1, 2, 3)),
    "comfort": ("Facial comfort", (4, 6, 10)),
    "oral": ("Oral function", (7, 11)),
    "eye": ("Eye comfort", (5, 12)),
    "lacrimal": ("Lacrimal control", (13,)),
    "social": ("Social function", (8, 9, 14, 15)),
}
DOMAIN_OF = {k: key for key, (_, items) in DOMAINS.items() for k in items}

ITEMS = tuple(
    Item(
        str(k),
        f"FaCE item {k} ({DOMAINS[DOMAIN_OF[k]][0].lower()}; 1-5"
        + (", reverse-worded: 5 is worst)" if k in REVERSED else ", 5 is best)"),
        1,
        5,
        reverse=k in REVERSED,
    )
    for k in range(1, 16)
)


def _domain(items) -> str:
    # Kahn et al. 2001 Appendix B form: ((sum - n) / (4n)) x 100 on reverse-scored items.
    n = len(items)
    return f"(({' + '.join(f'{chr(34)}{k}{chr(34)}' for k in items)}) - {n}) / {4 * n} * 100"


BRUINS_2021 = MinimalChange(
    source=(
        "Bruins TE, et al. Facial Plast Surg Aesthet Med. 2021;23(2):75-80 (doi "
        "10.1089/fpsam.2020.0604)"
    ),
    mic_improvement=0.7,
    mic_deterioration=-8.5,
    sdc_individual=17.6,
    sdc_group=2.9,
)

INSTRUMENT = Instrument(
    name="face",
    label="FaCE",
    citation="Kahn JB, Gliklich RE, Boyev KP, et al. Laryngoscope. 2001;111(3):387-398.",
    items=ITEMS,
    scores=(
        *(
            Score(key, label, _domain(items), 0, 100, True)
            for key, (label, items) in DOMAINS.items()
        ),
        Score(
            "total",
            "Total",
            _domain(range(1, 16)),
            0,
            100,
            True,
            versions=("item_weighted",),
            minimal_change=BRUINS_2021,
        ),
        Score(
            "total",
            "Total",
            f"({' + '.join(DOMAINS)}) / {len(DOMAINS)}",
            0,
            100,
            True,
            versions=("domain_mean",),
        ),
    ),
    versions=(
        Version(
            "item_weighted",
            "item-weighted total",
            "Total = ((sum of all 15 items - 15) / 60) x 100, the domains weighted by their number "
            "of "
            "items (Yoon et al.: regression coefficients exactly proportional to domain item "
            "counts).",
        ),
        Version(
            "domain_mean",
            "total = mean of domains",
            "Total = unweighted mean of the six domain scores (as some secondary descriptions "
            "state).",
        ),
    ),
    default_version="item_weighted",
    missing_rule=(
        "Every item of a domain must be answered (the total needs all 15); no proration, since "
        "Kahn et al.'s rule for missing answers was not retrieved."
    ),
    sources=(
        "Kahn et al. 2001 (15 items, 6 domains, 0-100 scores; formulas in its Appendix B)",
        "Yoon et al. (authorea 613732): total regression weights proportional to domain item "
        "counts "
        "(social 4/15 = 0.267, comfort 3/15 = 0.200)",
        "Bruins et al. 2021 (minimal important change and smallest detectable change of the total)",
    ),
    unverified=(
        "Item-to-domain mapping beyond the domain sizes (movement 1-3; comfort 4, 6, 10; oral 7, "
        "11; eye 5, 12; "
        "lacrimal 13; social 8, 9, 14, 15).",
        "Which items are reverse-worded (9, 10, 13, 14, 15, as in a public implementation; not "
        "read in Kahn "
        "2001 Appendix B).",
        "The domain formula ((sum - n) / (4n)) x 100 (standard; Appendix B text not retrieved).",
    ),
)
