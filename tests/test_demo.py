"""The SYNTHETIC demo cohort generator: reproducible, well-formed, calibrated to the index study."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pipeline.synthetic import demo

SCHEDULED = {"m1": (23, 37), "m3": (76, 104), "m6": (159, 201), "m12": (335, 395)}
EFACE_COLUMNS = [c for c in demo.VISIT_COLUMNS if c.startswith("eface_")]


@pytest.fixture(scope="module")
def cohort() -> dict[str, pd.DataFrame]:
    return demo.generate(seed=63, n_patients=63)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    paths = demo.write(out, seed=63)
    return paths


def _visits(cohort) -> pd.DataFrame:
    return cohort["visits"]


def _pre_and_post(visits: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """Per patient: the pre value, and the value at the last follow-up >= 90 days."""
    pre = visits[visits["visit"] == "pre"].set_index("study_id")[column].astype(float)
    late = visits[visits["day"] >= 90].sort_values(["study_id", "day"])
    post = late.groupby("study_id").tail(1).set_index("study_id")[column].astype(float)
    return pre, post


def _score(visits: pd.DataFrame, prefix: str, n_items: int) -> pd.Series:
    items = visits[[f"{prefix}{k}" for k in range(1, n_items + 1)]]
    return items.sum(axis=1, min_count=n_items).astype(float)


# --- reproducibility and file format ---------------------------------------------------


def test_same_seed_gives_identical_frames(cohort):
    again = demo.generate(seed=63, n_patients=63)
    for name in ("patients", "visits"):
        pd.testing.assert_frame_equal(cohort[name], again[name])


def test_other_seed_differs(cohort):
    other = demo.generate(seed=64, n_patients=63)
    assert not cohort["visits"].equals(other["visits"])


def test_same_seed_gives_identical_bytes(written, tmp_path):
    again = demo.write(tmp_path / "again", seed=63)
    assert [p.name for p in written] == ["patients.csv", "visits.csv"]
    for first, second in zip(written, again):
        assert first.read_bytes() == second.read_bytes()


def test_file_format(written):
    patients, visits = (p.read_bytes() for p in written)
    for raw in (patients, visits):
        raw.decode("utf-8")
        assert b"\r" not in raw and raw.endswith(b"\n")
        assert b".0," not in raw and b".0\n" not in raw  # integers without ".0"
        assert b"nan" not in raw.lower() and b"<NA>" not in raw  # missing = empty field
    header = [*demo.PATIENT_COLUMNS, *demo.EVENT_COLUMNS, *demo.EVENT_DAY_COLUMNS]
    assert patients.splitlines()[0].decode() == ",".join(header)
    assert visits.splitlines()[0].decode() == ",".join(demo.VISIT_COLUMNS)


def test_bundled_demo_files_match_the_generator(written):
    from pathlib import Path

    bundled = Path(__file__).resolve().parents[1] / "data" / "raw" / "demo"
    for path in written:
        assert (bundled / path.name).read_bytes() == path.read_bytes(), (
            f"data/raw/demo/{path.name} is stale: regenerate with `outcomes demo --seed 63 --out "
            "data/raw/demo`"
        )


# --- structure -------------------------------------------------------------------------


def test_63_patients_each_with_exactly_one_pre_visit(cohort):
    patients, visits = cohort["patients"], cohort["visits"]
    assert len(patients) == 63 and patients["study_id"].is_unique
    assert patients["study_id"].tolist() == [f"FP-{i:03d}" for i in range(1, 64)]
    pre = visits[visits["visit"] == "pre"]
    assert pre["study_id"].is_unique and set(pre["study_id"]) == set(patients["study_id"])
    assert not visits.duplicated(["study_id", "visit"]).any()
    assert set(visits["study_id"]) <= set(patients["study_id"])


def test_visit_days_follow_the_schedule(cohort):
    visits = cohort["visits"]
    assert set(visits["visit"]) <= set(demo.VISITS)
    pre = visits[visits["visit"] == "pre"]["day"]
    assert pre.between(-60, -1).all()
    for visit, (low, high) in SCHEDULED.items():
        assert visits.loc[visits["visit"] == visit, "day"].between(low, high).all(), visit
    # "last" only when more than 30 days after every scheduled visit the patient had.
    scheduled = visits[visits["visit"] != "last"].groupby("study_id")["day"].max()
    last = visits[visits["visit"] == "last"].set_index("study_id")["day"]
    assert (last > scheduled.reindex(last.index) + 30).all()
    # Rows sorted by patient, then in visit order (which is also day order).
    order = visits["visit"].map({v: i for i, v in enumerate(demo.VISITS)})
    assert visits.assign(o=order).sort_values(["study_id", "o"]).index.equals(visits.index)
    assert (visits.groupby("study_id")["day"].diff().dropna() > 0).all()


def test_follow_up(cohort):
    last_day = cohort["visits"].groupby("study_id")["day"].max()
    assert (last_day < 90).sum() == 2  # lost to follow-up after m1
    assert last_day.between(6, 1377).all()
    assert 320 <= last_day.mean() <= 430  # paper: mean 373


def test_wider_codes_for_large_cohorts():
    patients = demo.generate(seed=1, n_patients=1000)["patients"]
    assert patients["study_id"].iloc[0] == "FP-0001" and patients["study_id"].iloc[-1] == "FP-1000"


# --- values ----------------------------------------------------------------------------

ALLOWED_RANGES = {
    "hb_": (1, 6),
    "sb_rest_cheek": (0, 2),
    "sb_rest_": (0, 1),
    "sb_vol_": (1, 5),
    "sb_syn_": (0, 3),
    "eface_brow_rest": (0, 200),
    "eface_pf_rest": (0, 200),
    "eface_nlf_rest": (0, 200),
    "eface_oc_rest": (0, 200),
    "eface_": (0, 100),
    "saq_": (1, 5),
    "face_": (1, 5),
}


def _range_for(column: str) -> tuple[int, int]:
    return next(r for prefix, r in ALLOWED_RANGES.items() if column.startswith(prefix))


def test_item_values_within_allowed_sets(cohort):
    visits = cohort["visits"]
    for column in demo.ITEM_COLUMNS:
        low, high = _range_for(column)
        values = visits[column].dropna()
        assert str(visits[column].dtype) == "Int64", column
        assert values.between(low, high).all(), column
    botox = visits["botox_units"].dropna()
    assert (botox >= 0).all() and np.allclose(botox * 10, np.round(botox * 10))
    assert visits.loc[visits["visit"] == "m1", "botox_units"].isna().all()


def test_patient_values_within_allowed_sets(cohort):
    p = cohort["patients"]
    assert set(p["sex"]) <= {"F", "M"} and set(p["side"]) <= {"left", "right"}
    assert set(p["etiology"]) <= set(demo.ETIOLOGIES)
    assert p["etiology"].value_counts().idxmax() == "bells_palsy"
    assert p["months_since_onset"].between(12, 400).all()
    assert p["branches_transected"].between(2, 14).all()
    assert p["surgery_year"].between(2013, 2017).all()
    flags = [
        "prior_botox",
        "facelift",
        "cross_facial_nerve_graft",
        "nerve_rerouting",
        "end_to_side",
        "oral_incompetence",
        "revision",
    ]
    assert p[flags].isin([0, 1]).all().all()
    assert p["nerve_rerouting"].sum() == 7 and p["end_to_side"].sum() == 10
    assert p["oral_incompetence"].sum() == 7 and p["revision"].sum() == 11
    # Oral incompetence's course only where it occurred; a duration only once it resolved.
    had = p["oral_incompetence"] == 1
    assert p.loc[~had, demo.EVENT_COLUMNS].isna().all().all()
    assert p.loc[had, "oral_incompetence_resolved"].isin([0, 1]).all()
    resolved = had & (p["oral_incompetence_resolved"] == 1)
    assert p.loc[resolved, "oral_incompetence_days"].between(5, 365).all()
    assert p.loc[had & ~resolved, "oral_incompetence_days"].isna().all()
    # Each revision has its day after surgery (months to a few years), by the last visit; no day
    # without a revision.
    last_visit = cohort["visits"].groupby("study_id")["day"].max()
    revised = p["revision"] == 1
    days = p.loc[revised, "revision_day"].astype(float)
    assert p.loc[~revised, "revision_day"].isna().all() and days.notna().all()
    assert (days > 0).all() and (days <= p.loc[revised, "study_id"].map(last_visit).values).all()
    assert 90 < days.median() < 730


def test_ages_90_or_more_written_as_90_plus(cohort, written):
    ages = cohort["patients"]["age"]
    assert (ages == "90+").sum() >= 1
    numeric = ages[ages != "90+"]
    assert numeric.str.fullmatch(r"\d+").all()
    assert numeric.astype(int).between(18, 89).all()
    on_disk = pd.read_csv(written[0], dtype=str)["age"]
    assert (on_disk == "90+").sum() >= 1 and not on_disk.str.fullmatch(r"9\d|1\d\d").any()


def test_no_column_looks_like_a_date(written):
    date_like = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}")
    for path in written:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column in frame:
            assert not re.search(r"date|dob|birth|time", column, re.I), column
            assert not frame[column].str.contains(date_like).any(), column


def test_eface_for_exactly_46_patients_at_pre_and_from_90_days(cohort):
    visits = cohort["visits"]
    has_eface = visits[EFACE_COLUMNS].notna().any(axis=1)
    assert visits.loc[has_eface, "study_id"].nunique() == 46
    assert (visits.loc[has_eface, "visit"].eq("pre") | visits.loc[has_eface, "day"].ge(90)).all()


def test_questionnaires_not_at_one_month(cohort):
    visits = cohort["visits"]
    questionnaire = [c for c in demo.ITEM_COLUMNS if c.startswith(("saq_", "face_"))]
    assert visits.loc[visits["visit"] == "m1", questionnaire].isna().all().all()


def test_occasional_missing_items(cohort):
    visits = cohort["visits"]
    share = visits[[c for c in demo.ITEM_COLUMNS if c.startswith("sb_")]].isna().mean().mean()
    assert 0.0 < share < 0.04


# --- calibration (generous bounds: 63 patients) -----------------------------------------


@pytest.mark.parametrize(
    "column, pre_bounds, post_bounds",
    [
        ("hb_observer", (3.6, 4.2), (2.5, 3.1)),  # paper 3.9 -> 2.8
        ("hb_surgeon", (3.4, 4.0), (2.3, 2.9)),  # paper 3.7 -> 2.6
        ("eface_oc_smile", (38, 48), (64, 76)),  # paper 43 -> 70
        ("eface_oc_rest", (105, 117), (100, 112)),  # paper 111 -> 106 (raw slider)
        ("eface_syn_platysma", (74, 90), (92, 100)),  # paper 82 -> 99
    ],
)
def test_item_calibration(cohort, column, pre_bounds, post_bounds):
    pre, post = _pre_and_post(_visits(cohort), column)
    assert pre_bounds[0] <= pre.mean() <= pre_bounds[1]
    assert post_bounds[0] <= post.mean() <= post_bounds[1]


def test_score_calibration(cohort):
    visits = cohort["visits"].copy()
    sb = visits.filter(like="sb_").astype(float)
    visits["sb_composite"] = (
        4 * sb.filter(like="sb_vol_").sum(axis=1, min_count=5)
        - 5 * sb.filter(like="sb_rest_").sum(axis=1, min_count=3)
        - sb.filter(like="sb_syn_").sum(axis=1, min_count=5)
    )
    # FaCE reverse-worded items are written as answered (5 = worst): reverse them before summing.
    face = visits[[f"face_{k}" for k in range(1, 16)]].astype(float)
    reverse = [f"face_{k}" for k in sorted(demo.FACE_REVERSED)]
    face[reverse] = 6 - face[reverse]
    visits["face_total"] = (face.sum(axis=1, min_count=15) - 15) / 60 * 100
    visits["saq_sum"] = _score(visits, "saq_", 9)
    expected = {
        "sb_composite": ((44, 56), (55, 69)),  # ~50 -> ~62
        "face_total": ((41, 53), (56, 68)),  # 47 -> 62
        "saq_sum": ((24, 30), (18.5, 24.5)),  # 27 -> 21.5
        "botox_units": ((45, 75), (20, 50)),
    }  # ~60 -> ~35
    for column, (pre_bounds, post_bounds) in expected.items():
        pre, post = _pre_and_post(visits, column)
        assert pre_bounds[0] <= pre.mean() <= pre_bounds[1], column
        assert post_bounds[0] <= post.mean() <= post_bounds[1], column
        both = pre.to_frame("pre").join(post.rename("post"), how="inner").dropna()
        if column != "botox_units":
            assert both["pre"].corr(both["post"]) > 0.3, (
                column
            )  # patient-level severity carries over


def test_improvement_ramps_up(cohort):
    visits = cohort["visits"]
    means = visits.groupby("visit")["hb_observer"].mean()
    assert means["pre"] > means["m1"] > means["m6"]


def test_calibration_holds_at_larger_n():
    """Sampling noise aside, the generator hits the published means closely."""
    visits = demo.generate(seed=7, n_patients=4000)["visits"]
    for column, pre_target, post_target, tol in [
        ("hb_observer", 3.9, 2.8, 0.08),
        ("hb_surgeon", 3.7, 2.6, 0.08),
        ("eface_oc_smile", 43, 70, 1.5),
        ("eface_lower_lip", 66, 79, 1.5),
    ]:
        pre, post = _pre_and_post(visits, column)
        assert abs(pre.mean() - pre_target) < tol, column
        assert abs(post.mean() - post_target) < tol, column
