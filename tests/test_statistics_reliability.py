"""ICC and weighted kappa against R psych::ICC(lmer = FALSE) and psych::cohen.kappa."""

import math

import numpy as np
import pytest
from r_reference import expected, inputs

from pipeline.statistics.reliability import icc, weighted_kappa


def r6(x):
    return pytest.approx(x, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("case", ["shrout_fleiss", "usjudgeratings"])
def test_icc_matches_r(case):
    out = icc(inputs(case).to_numpy(float)).set_index("type")
    for form in ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"):
        exp = expected(f"{case}/{form}")
        for k, v in exp.items():
            assert out.loc[form, k] == r6(v), (form, k)


def test_weighted_kappa_matches_r():
    g = inputs("grades")
    assert weighted_kappa(g["a"], g["b"])["kappa"] == r6(expected("kappa_grades")["quadratic"])
    assert weighted_kappa(g["a"], g["b"], "linear")["kappa"] == r6(
        expected("kappa_grades_linear")["linear"]
    )


def test_degenerate():
    assert "fewer than 2" in icc([[1, 2]])["note"].iloc[0]
    assert "no variation" in icc([[1, 1], [1, 1], [1, 1]])["note"].iloc[0]
    assert math.isnan(weighted_kappa([2, 2], [2, 2])["kappa"])


def test_weighted_kappa_is_statsmodels_formula():
    # The kappa is statsmodels' cohens_kappa; check it against the textbook formula
    # 1 - sum(w O) / sum(w E) on the grades (to rounding: the sums are taken in another order).
    g = inputs("grades")
    a, b = g["a"].to_numpy(float), g["b"].to_numpy(float)
    cats = np.unique(np.concatenate([a, b]))
    c = cats.size
    obs = np.zeros((c, c))
    np.add.at(obs, (np.searchsorted(cats, a), np.searchsorted(cats, b)), 1)
    obs /= obs.sum()
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0))
    i, j = np.indices((c, c))
    for weights, w in (
        ("quadratic", ((i - j) / (c - 1)) ** 2),
        ("linear", np.abs(i - j) / (c - 1)),
    ):
        kappa = 1 - (w * obs).sum() / (w * exp).sum()
        assert weighted_kappa(a, b, weights)["kappa"] == pytest.approx(kappa, rel=1e-14)


def _visits_reference():
    """tests/fixtures/r/reliability_visits.R: psych::ICC and psych::cohen.kappa per visit."""
    import pandas as pd
    from r_reference import FIXTURES

    scores = pd.read_csv(FIXTURES / "reliability_visits_inputs.csv", float_precision="round_trip")
    exp = pd.read_csv(FIXTURES / "reliability_visits_expected.csv", float_precision="round_trip")
    return scores, exp


@pytest.mark.parametrize("targets", ["per_visit", "subject_visit"])
def test_agreement_per_visit_matches_r(targets):
    from pipeline.statistics.reliability import rater_agreement

    scores, exp = _visits_reference()
    raters = ["observer", "surgeon", "resident"]
    visits = ["pre", "m12"] if targets == "subject_visit" else None
    out = rater_agreement(scores, raters, visits=visits, targets=targets)
    # Default visits: every visit graded, in time order (median day).
    expected_visits = ["pre | m12"] if targets == "subject_visit" else ["pre", "m6", "m12"]
    assert list(pd_unique(out["visit"])) == expected_visits
    assert len(out) == 9 * len(expected_visits)
    for row in out.itertuples():
        name = row.description if row.statistic.startswith("weighted") else row.statistic
        ref = exp[(exp["visit"] == row.visit) & (exp["statistic"] == name)]
        assert len(ref), (row.visit, name)
        for key, value in zip(ref["key"], ref["value"]):
            assert getattr(row, key) == r6(value), (row.visit, name, key)
    # A patient with a missing grade leaves only the visit it is missing at.
    n = out.drop_duplicates("visit").set_index("visit")["n_targets"]
    assert n.to_dict() == ({"pre | m12": 23} if visits else {"pre": 12, "m6": 11, "m12": 11})


def pd_unique(values):
    return list(dict.fromkeys(values))


def test_agreement_at_a_visit_nobody_graded_is_nan_with_a_note():
    from pipeline.statistics.reliability import rater_agreement

    scores, _ = _visits_reference()
    out = rater_agreement(scores, ["observer", "surgeon"], visits=["m3", "pre"])
    assert pd_unique(out["visit"]) == ["m3", "pre"]
    m3 = out[out["visit"] == "m3"]
    assert m3["estimate"].isna().all() and (m3["note"] != "").all()
    assert (m3["n_targets"] == 0).all()


def test_pooled_visits_are_labelled_and_footnoted(tmp_path):
    """The eTable of agreement names a visit by its label, pooled visits as a list of them,
    and says in a footnote that pooled visits of one patient were taken as independent."""
    import pandas as pd

    from pipeline.render.labels import agreement_notes, readable_results
    from pipeline.spec.study import load_study
    from small_study import write_small_study

    study = load_study(write_small_study(tmp_path / "small", n_patients=4))
    assert study.analysis.reliability[0].targets == "per_visit"  # the default
    frame = pd.DataFrame(
        {
            "instrument": ["house_brackmann"] * 2,
            "score": ["grade"] * 2,
            "raters": ["observer | surgeon"] * 2,
            "visit": ["pre", "pre | m12"],
            "statistic": ["ICC2", "ICC2"],
            "description": ["single random raters"] * 2,
        }
    )
    (note,) = agreement_notes(frame, study)
    assert note.startswith("Visits pooled (Visit pre, Visit m12): each patient visit is one")  # noqa: E501
    assert "treated as independent" in note
    assert agreement_notes(frame.iloc[:1], study) == ()
    shown = readable_results(study, "reliability", frame)
    assert shown["visit"].tolist() == ["Visit pre", "Visit pre, Visit m12"]
