"""Every instrument's generated SQL against a small pure-Python reference, and hand-worked examples.

The reference below is written from the published definitions (docs/instruments.md), not from the
declarations in pipeline/instruments, so a slip in a declaration or in the SQL generator shows up as
a
difference. Generated data: a few hundred subjects per instrument from a seeded numpy RNG, with some
items left out, so the missing-item rules are exercised too.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.instruments import REGISTRY
from pipeline.instruments.sql import score_sql

# --- reference implementation
# -------------------------------------------------------------------------


def _all(values):
    return None if any(v is None for v in values) else values


def _mean(values):
    values = _all(values)
    return None if values is None else sum(values) / len(values)


def ref_sunnybrook(a, version):
    # Ross et al. 1996: resting = 5 x (eye + cheek + mouth); voluntary = 4 x sum of five
    # expressions;
    # synkinesis = sum; composite = voluntary - resting - synkinesis.
    parts = {
        "resting": (5, ("rest_eye", "rest_cheek", "rest_mouth")),
        "voluntary": (4, tuple(f"vol_{k}" for k in ("brow", "eye", "smile", "snarl", "pucker"))),
        "synkinesis": (1, tuple(f"syn_{k}" for k in ("brow", "eye", "smile", "snarl", "pucker"))),
    }
    out = {}
    for name, (weight, items) in parts.items():
        values = _all([a.get(k) for k in items])
        out[name] = None if values is None else weight * sum(values)
    used = (out["voluntary"], out["resting"], out["synkinesis"])
    out["composite"] = None if None in used else used[0] - used[1] - used[2]
    return out


def ref_house_brackmann(a, version):
    return {"grade": a.get("grade")}


EFACE_STATIC = ("brow_rest", "pf_rest", "nlf_rest", "oc_rest")
EFACE_DYNAMIC = (
    "brow_elev",
    "eye_gentle",
    "eye_full",
    "oc_smile",
    "nlf_depth_smile",
    "nlf_orient_smile",
    "lower_lip",
)
EFACE_SYN = ("syn_ocular", "syn_midface", "syn_mentalis", "syn_platysma")


def ref_eface(a, version):
    # Static slider 0-200, 100 = balanced: item score 100 - |100 - raw| (Auto-eFACE); others as
    # recorded.
    item = {
        k: (None if a.get(k) is None else (100 - abs(100 - a[k]) if k in EFACE_STATIC else a[k]))
        for k in (*EFACE_STATIC, *EFACE_DYNAMIC, *EFACE_SYN)
    }
    out = {f"item_{k}": v for k, v in item.items()}
    out["static"] = _mean([item[k] for k in EFACE_STATIC])
    out["dynamic"] = _mean([item[k] for k in EFACE_DYNAMIC])
    out["synkinesis"] = _mean([item[k] for k in EFACE_SYN])
    domains = (out["static"], out["dynamic"], out["synkinesis"])
    if None in domains:
        out["total"] = None
    elif version == "dynamic_double":
        out["total"] = (
            domains[0] + 2 * domains[1] + domains[2]
        ) / 4  # Banks 2015: dynamic weighted twice
    else:
        out["total"] = sum(domains) / 3
    periocular = ["pf_rest", "eye_gentle", "eye_full", "syn_ocular"]
    if version == "brow_in_periocular":
        periocular += ["brow_rest", "brow_elev"]
    out["periocular"] = _mean([item[k] for k in periocular])
    midface_smile = "nlf_rest oc_rest oc_smile nlf_depth_smile nlf_orient_smile syn_midface"
    out["midface_smile"] = _mean([item[k] for k in midface_smile.split()])
    out["lower_face_neck"] = _mean([item[k] for k in ("lower_lip", "syn_mentalis", "syn_platysma")])
    out["smile"] = _mean([item[k] for k in ("oc_smile", "nlf_depth_smile", "nlf_orient_smile")])
    return out


def ref_saq(a, version):
    items = _all([a.get(str(k)) for k in range(1, 10)])
    if items is None:
        return {"total": None}
    total = sum(items)
    return {
        "total": {
            "raw_sum": total,
            "percent_of_max": total / 45 * 100,
            "zero_to_hundred": (total - 9) / 36 * 100,
        }[version]
    }


FACE_DOMAINS = {
    "movement": (1, 2, 3),
    "comfort": (4, 6, 10),
    "oral": (7, 11),
    "eye": (5, 12),
    "lacrimal": (13,),
    "social": (8, 9, 14, 15),
}


def ref_face(a, version):
    scored = {
        k: (
            None
            if a.get(str(k)) is None
            else (6 - a[str(k)] if k in (9, 10, 13, 14, 15) else a[str(k)])
        )
        for k in range(1, 16)
    }

    def domain(items):
        values = _all([scored[k] for k in items])
        return None if values is None else (sum(values) - len(items)) / (4 * len(items)) * 100

    out = {name: domain(items) for name, items in FACE_DOMAINS.items()}
    if version == "item_weighted":
        out["total"] = domain(range(1, 16))
    else:
        out["total"] = _mean([out[d] for d in FACE_DOMAINS])
    return out


def ref_fdi(a, version):
    def adjusted(items, per_point):
        # N counts answered items; a physical answer of 0 (not applicable) is left out.
        answered = [a[str(k)] for k in items if a.get(str(k)) is not None and a[str(k)] > 0]
        if not answered:
            return None
        return (sum(answered) - len(answered)) / len(answered) * per_point

    out = {"physical": adjusted(range(1, 6), 25), "social": adjusted(range(6, 11), 20)}
    out["total"] = None if None in out.values() else (out["physical"] + out["social"]) / 2
    return out


def ref_fngs(a, version):
    regions = {k: a.get(k) for k in ("brow", "eye", "nlf", "oral")}
    out = {f"region_{k}": v for k, v in regions.items()}
    values = _all(list(regions.values()))
    out["regional_sum"] = None if values is None else sum(values)
    if out["regional_sum"] is None or (version == "with_secondary" and a.get("secondary") is None):
        out["total"] = None
    else:
        out["total"] = out["regional_sum"] + (a["secondary"] if version == "with_secondary" else 0)
    total = out["total"]
    # Grade I = 4, II 5-9, III 10-14, IV 15-19, V 20-23, VI 24 and above.
    out["grade"] = (
        None
        if total is None
        else next(g for g, top in enumerate((4, 9, 14, 19, 23, 1e9), 1) if total <= top)
    )
    return out


LANDMARKS = (
    "commissure_excursion",
    "smile_angle",
    "dental_show",
    "brow_height",
    "palpebral_fissure_height",
)


def ref_landmarks(a, version, side):
    out = {}
    for m in LANDMARKS:
        left, right = a.get(f"{m}_left"), a.get(f"{m}_right")
        if side not in ("left", "right") or left is None or right is None:
            affected = healthy = None
        else:
            affected, healthy = (left, right) if side == "left" else (right, left)
        ok = affected is not None
        out[f"{m}_difference"] = affected - healthy if ok else None
        out[f"{m}_asymmetry"] = abs(affected - healthy) if ok else None
        out[f"{m}_ratio"] = affected / healthy if ok and healthy != 0 else None
    return out


REFERENCE = {
    "sunnybrook": ref_sunnybrook,
    "house_brackmann": ref_house_brackmann,
    "eface": ref_eface,
    "saq": ref_saq,
    "face": ref_face,
    "fdi": ref_fdi,
    "fngs": ref_fngs,
}


# --- running the SQL
# ---------------------------------------------------------------------------------------


def _responses(con, instrument, answers: list[dict[str, float]]):
    rows = [
        (f"S{n:04d}", instrument, item, float(value))
        for n, answer in enumerate(answers)
        for item, value in answer.items()
        if value is not None
    ]
    frame = pd.DataFrame(rows, columns=["subject", "instrument", "item", "value"])
    frame = frame.assign(visit="v", day=0, rater="")[
        ["subject", "visit", "day", "instrument", "rater", "item", "value"]
    ]
    con.register("r", frame)


def sql_scores(instrument, answers, version=None, sides=None) -> dict[str, dict[str, float | None]]:
    con = duckdb.connect()
    _responses(con, instrument.name, answers)
    kwargs = {}
    if sides is not None:
        con.register(
            "subj",
            pd.DataFrame({"subject": [f"S{n:04d}" for n in range(len(sides))], "side": sides}),
        )
        kwargs = {"subjects": "subj", "side_column": "side"}
    rows = con.execute(
        f"SELECT subject, score, value FROM ({score_sql(instrument, 'r', version, **kwargs)})"
    ).fetchall()
    out: dict[str, dict] = {}
    for subject, score, value in rows:
        out.setdefault(subject, {})[score] = value
    return out


def _generate(instrument, rng, n=300, p_missing=0.03):
    """Random answers: every allowed value (including both ends), about 3% of items left out."""
    answers = []
    for _ in range(n):
        answer = {}
        for item in instrument.items:
            if item.integer:
                value = float(rng.integers(int(item.minimum), int(item.maximum) + 1))
            else:
                value = float(np.round(rng.uniform(item.minimum, item.maximum), 2))
            answer[item.name] = None if rng.random() < p_missing else value
        answers.append(answer)
    return answers


def _versions(instrument):
    return instrument.version_names or (None,)


CASES = [(name, version) for name in REFERENCE for version in _versions(REGISTRY[name])]


@pytest.mark.parametrize("name, version", CASES)
def test_sql_matches_reference_on_generated_answers(name, version):
    instrument = REGISTRY[name]
    rng = np.random.default_rng(2019)
    answers = _generate(instrument, rng)
    if name == "fdi":
        # Some subjects with every physical item "not applicable" (0): physical undefined.
        for answer in answers[:5]:
            answer.update({str(k): 0.0 for k in range(1, 6)})
    got = sql_scores(instrument, answers, version)
    for n, answer in enumerate(answers):
        if all(v is None for v in answer.values()):
            assert f"S{n:04d}" not in got  # nothing recorded: the instrument was not done, no rows
            continue
        expected = REFERENCE[name](answer, version)
        actual = got[f"S{n:04d}"]
        assert set(actual) == set(expected), name
        for score, value in expected.items():
            if value is None:
                assert actual[score] is None, (name, version, n, score, answer)
            else:
                assert actual[score] == pytest.approx(value, rel=1e-12, abs=1e-12), (
                    name,
                    version,
                    n,
                    score,
                )
                declared = instrument.score(score, version)
                assert declared.minimum - 1e-9 <= actual[score] <= declared.maximum + 1e-9, (
                    name,
                    score,
                )


def test_landmarks_match_reference_on_generated_measurements():
    instrument = REGISTRY["landmarks"]
    rng = np.random.default_rng(7)
    answers = _generate(instrument, rng, n=200)
    sides = list(
        rng.choice(
            ["left", "right", "Left ", "", "both"], size=len(answers), p=[0.4, 0.4, 0.1, 0.05, 0.05]
        )
    )
    answers[0]["smile_angle_right"] = (
        0.0  # healthy side 0 for a left-sided subject -> ratio undefined
    )
    sides[0] = "left"
    got = sql_scores(instrument, answers, sides=sides)
    for n, answer in enumerate(answers):
        expected = ref_landmarks(answer, None, sides[n].strip().lower())
        for score, value in expected.items():
            actual = got[f"S{n:04d}"][score]
            assert (actual is None) == (value is None) and (
                value is None or actual == pytest.approx(value)
            ), (n, score, sides[n])


# --- hand-worked examples
# ----------------------------------------------------------------------------------


def one(instrument_name, answers, version=None, sides=None):
    return sql_scores(REGISTRY[instrument_name], [answers], version, sides)["S0000"]


def eface_answers(static, dynamic, syn):
    return dict(zip((*EFACE_STATIC, *EFACE_DYNAMIC, *EFACE_SYN), (*static, *dynamic, *syn)))


def test_eface_all_best_all_worst_and_both_static_extremes():
    best = one("eface", eface_answers((100,) * 4, (100,) * 7, (100,) * 4))
    assert best["static"] == best["dynamic"] == best["synkinesis"] == best["total"] == 100
    assert (
        best["periocular"]
        == best["midface_smile"]
        == best["lower_face_neck"]
        == best["smile"]
        == 100
    )
    # Static slider at 0 and at 200 are equally abnormal: 100 - |100 - 0| = 100 - |100 - 200| = 0.
    for extreme in (0, 200):
        worst = one("eface", eface_answers((extreme,) * 4, (0,) * 7, (0,) * 4))
        assert worst["static"] == worst["total"] == worst["periocular"] == 0


def test_eface_mixed_case_in_every_version():
    # Static sliders 92, 86, 102, 111 -> item scores 92, 86, 98, 89; static = 365 / 4 = 91.25.
    # Dynamic 58, 86, 91, 43, 95, 80, 66: sum 519, dynamic = 519 / 7 = 74.142857...
    # Synkinesis 63, 80, 79, 82: sum 304, synkinesis = 76.
    answers = eface_answers((92, 86, 102, 111), (58, 86, 91, 43, 95, 80, 66), (63, 80, 79, 82))
    scores = one("eface", answers)
    assert scores["static"] == 91.25 and scores["synkinesis"] == 76
    assert scores["dynamic"] == pytest.approx(519 / 7)
    # domain_mean total = (91.25 + 519/7 + 76) / 3
    assert scores["total"] == pytest.approx((91.25 + 519 / 7 + 76) / 3)
    # Regions: periocular (86 + 86 + 91 + 63) / 4 = 81.5; midface & smile (98 + 89 + 43 + 95 + 80 +
    # 80) / 6
    # = 485 / 6; lower face & neck (66 + 79 + 82) / 3 = 227 / 3; smile (43 + 95 + 80) / 3 = 218 / 3.
    assert scores["periocular"] == 81.5
    assert scores["midface_smile"] == pytest.approx(485 / 6)
    assert scores["lower_face_neck"] == pytest.approx(227 / 3)
    assert scores["smile"] == pytest.approx(218 / 3)
    # dynamic_double total = (91.25 + 2 x 519/7 + 76) / 4
    assert one("eface", answers, "dynamic_double")["total"] == pytest.approx(
        (91.25 + 2 * 519 / 7 + 76) / 4
    )
    # brow_in_periocular adds brow at rest (92) and brow elevation (58): (326 + 92 + 58) / 6 = 476 /
    # 6.
    assert one("eface", answers, "brow_in_periocular")["periocular"] == pytest.approx(476 / 6)


def test_eface_missing_item_only_touches_the_scores_that_need_it():
    answers = eface_answers((92, 86, 102, 111), (58, 86, 91, 43, 95, 80, 66), (63, 80, 79, 82))
    del answers["syn_platysma"]
    scores = one("eface", answers)
    assert (
        scores["synkinesis"] is None
        and scores["total"] is None
        and scores["lower_face_neck"] is None
    )
    assert scores["static"] == 91.25 and scores["periocular"] == 81.5


@pytest.mark.parametrize(
    "version, all_best, all_worst, mixed",
    [
        # Items 1,1,1,1,1,1,1,1,1 (sum 9), 5 x 9 (sum 45); mixed 3,2,2,3,2,2,2,4,2: sum 22.
        ("raw_sum", 9, 45, 22),
        ("percent_of_max", 9 / 45 * 100, 100, 22 / 45 * 100),  # 20, 100, 48.888...
        ("zero_to_hundred", 0, 100, (22 - 9) / 36 * 100),  # 0, 100, 36.111...
    ],
)
def test_saq_versions(version, all_best, all_worst, mixed):
    items = lambda values: {str(k): v for k, v in zip(range(1, 10), values)}  # noqa: E731
    assert one("saq", items([1] * 9), version)["total"] == pytest.approx(all_best)
    assert one("saq", items([5] * 9), version)["total"] == pytest.approx(all_worst)
    assert one("saq", items([3, 2, 2, 3, 2, 2, 2, 4, 2]), version)["total"] == pytest.approx(mixed)
    assert one("saq", items([3, 2, 2, 3, 2, 2, 2, 4]), version)["total"] is None  # item 9 missing


def test_face_reverse_scored_items_and_domains():
    # All best as answered: 5 on normally worded items, 1 on reverse-worded 9, 10, 13, 14, 15.
    best = {str(k): (1 if k in (9, 10, 13, 14, 15) else 5) for k in range(1, 16)}
    assert set(one("face", best).values()) == {100.0}
    worst = {str(k): (5 if k in (9, 10, 13, 14, 15) else 1) for k in range(1, 16)}
    assert set(one("face", worst).values()) == {0.0}
    # Mixed: answers 4,3,2 | 4,5,2,3,4,2,1,3,4,2,5,3 for items 1..15.
    answers = dict(zip(map(str, range(1, 16)), (4, 3, 2, 4, 5, 2, 3, 4, 2, 1, 3, 4, 2, 5, 3)))
    # Scored (6 - answer on 9, 10, 13, 14, 15): 4,3,2,4,5,2,3,4,4,5,3,4,4,1,3; sum 51.
    scores = one("face", answers)
    assert scores["movement"] == pytest.approx((9 - 3) / 12 * 100)  # items 1-3: 4+3+2 = 9 -> 50
    assert scores["comfort"] == pytest.approx(
        (11 - 3) / 12 * 100
    )  # items 4, 6, 10: 4+2+5 = 11 -> 66.67
    assert scores["oral"] == pytest.approx((6 - 2) / 8 * 100)  # items 7, 11: 3+3 = 6 -> 50
    assert scores["eye"] == pytest.approx((9 - 2) / 8 * 100)  # items 5, 12: 5+4 = 9 -> 87.5
    assert scores["lacrimal"] == pytest.approx((4 - 1) / 4 * 100)  # item 13: 6-2 = 4 -> 75
    assert scores["social"] == pytest.approx(
        (12 - 4) / 16 * 100
    )  # items 8, 9, 14, 15: 4+4+1+3 -> 50
    assert scores["total"] == pytest.approx((51 - 15) / 60 * 100)  # item-weighted: 60
    domain_mean = (50 + 800 / 12 + 50 + 87.5 + 75 + 50) / 6
    assert one("face", answers, "domain_mean")["total"] == pytest.approx(domain_mean)
    del answers["13"]
    missing = one("face", answers)
    assert missing["lacrimal"] is None and missing["total"] is None and missing["movement"] == 50


def test_fdi_n_adjusted_subscales():
    # Physical 5,4,0,3,5: item 3 "not applicable" leaves N = 4, sum 17: (17 - 4) / 4 x 25 = 81.25.
    # Social 6,5,4,6 with item 10 unanswered: N = 4, sum 21: (21 - 4) / 4 x 20 = 85.
    answers = {"1": 5, "2": 4, "3": 0, "4": 3, "5": 5, "6": 6, "7": 5, "8": 4, "9": 6}
    scores = one("fdi", answers)
    assert scores["physical"] == 81.25 and scores["social"] == 85
    assert scores["total"] == pytest.approx((81.25 + 85) / 2)
    best = one("fdi", {**{str(k): 5 for k in range(1, 6)}, **{str(k): 6 for k in range(6, 11)}})
    worst = one("fdi", {str(k): 1 for k in range(1, 11)})
    assert best == {"physical": 100, "social": 100, "total": 100} and worst == {
        "physical": 0,
        "social": 0,
        "total": 0,
    }
    assert one("fdi", {**{str(k): 0 for k in range(1, 6)}, "6": 3})["physical"] is None


@pytest.mark.parametrize(
    "regions, secondary, version, total, grade",
    [
        ((1, 1, 1, 1), 0, "with_secondary", 4, 1),  # normal: 4 -> grade I
        ((6, 6, 6, 6), 0, "with_secondary", 24, 6),  # total paralysis: 24 -> grade VI
        ((2, 2, 2, 2), 1, "with_secondary", 9, 2),  # 8 + 1 = 9 -> II (upper edge)
        ((2, 2, 3, 3), 0, "with_secondary", 10, 3),  # 10 -> III (lower edge)
        ((5, 5, 5, 4), 3, "with_secondary", 22, 5),  # 19 + 3 = 22 -> V
        ((5, 5, 5, 4), 3, "regions_only", 19, 4),  # 19 -> IV without secondary movement
    ],
)
def test_fngs_totals_and_grade_boundaries(regions, secondary, version, total, grade):
    answers = {**dict(zip(("brow", "eye", "nlf", "oral"), regions)), "secondary": secondary}
    scores = one("fngs", answers, version)
    assert scores["total"] == total and scores["grade"] == grade


def test_landmarks_use_the_subjects_side():
    # Commissure excursion left 8 mm, right 12 mm. Left-sided paralysis: 8 - 12 = -4, |-4| = 4, 8 /
    # 12.
    answers = {"commissure_excursion_left": 8, "commissure_excursion_right": 12}
    left = one("landmarks", answers, sides=["left"])
    assert (
        left["commissure_excursion_difference"] == -4
        and left["commissure_excursion_asymmetry"] == 4
    )
    assert left["commissure_excursion_ratio"] == pytest.approx(8 / 12)
    right = one("landmarks", answers, sides=["right"])
    assert (
        right["commissure_excursion_difference"] == 4 and right["commissure_excursion_ratio"] == 1.5
    )
    assert one("landmarks", answers, sides=["unknown"])["commissure_excursion_difference"] is None
