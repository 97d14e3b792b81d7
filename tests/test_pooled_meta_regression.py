"""Meta-regression of the sites' mean changes on declared site characteristics
(pipeline.statistics.pooled.meta_regression, the [pooled] moderators of a pooled study).

Expected values: tests/fixtures/r/meta_regression.R, metafor::rma(yi, vi, mods = ~ ...,
method = "REML" | "DL", test = "z" | "knha") on metafor's dat.bcg (13 trials: a numeric, two
numeric and a three-level moderator) and two small hand cases (three sites; four sites with no
residual heterogeneity), read from tests/fixtures/r/meta_regression_inputs.csv.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from r_reference import FIXTURES

from pipeline import paths
from pipeline.pooled_study import load_pooled_study, moderator_design
from pipeline.spec.schema import SpecError
from pipeline.statistics.pooled import meta_regression, meta_regression_table

INPUTS = pd.read_csv(FIXTURES / "meta_regression_inputs.csv", keep_default_na=False, na_values=[""])
EXPECTED = pd.read_csv(
    FIXTURES / "meta_regression_expected.csv", keep_default_na=False, na_values=["NA"]
)
# case -> (the inputs' case, the moderators); "level" is categorical, its levels in this order
MODELS = {
    "bcg": ("bcg", ["x1"]),
    "bcg_two": ("bcg", ["x1", "x2"]),
    "bcg_levels": ("bcg", ["level"]),
    "three_sites": ("three_sites", ["x1"]),
    "no_residual": ("no_residual", ["x1"]),
}
LEVELS = ["random", "alternate", "systematic"]
# R's names of the model-level results -> ours
MODEL_KEYS = {
    "k": "k",
    "p": "n_coefficients",
    "tau2": "tau2",
    "I2": "i2",
    "H2": "h2",
    "R2": "r2",
    "QE": "qe",
    "QE_p": "qe_p",
    "QM": "qm",
    "QM_df1": "qm_df1",
    "QM_df2": "qm_df2",
    "QM_p": "qm_p",
}


def design(case: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The case's sites and its model matrix, columns named as R names the coefficients."""
    data, mods = MODELS[case]
    d = INPUTS[INPUTS["case"] == data]
    x = pd.DataFrame({"intrcpt": 1.0}, index=d.index)
    for m in mods:
        if m == "level":
            for level in LEVELS[1:]:
                x[f"level{level}"] = (d[m] == level).astype(float)
        else:
            x[m] = d[m].astype(float)
    return d, x


@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("method", ["REML", "DL"])
@pytest.mark.parametrize("case", list(MODELS))
def test_meta_regression_equals_metafor(case, method, test):
    d, x = design(case)
    coefficients, model = meta_regression(
        d["yi"], d["vi"], x, tau2_method=method, hartung_knapp=test == "knha"
    )
    coefficients = coefficients.set_index("term")
    r = EXPECTED[
        (EXPECTED["case"] == case) & (EXPECTED["method"] == method) & (EXPECTED["test"] == test)
    ]
    assert len(r) == 6 * x.shape[1] + len(MODEL_KEYS)
    for row in r.itertuples():
        if row.term:
            ours = coefficients.loc[row.term, row.key]
        else:
            ours = model[MODEL_KEYS[row.key]]
        if pd.isna(row.value):  # QM's second df with z tests
            assert np.isnan(ours), row.key
        elif row.value == 0:  # tau² on the boundary, R² of a model with tau² 0
            assert ours == pytest.approx(0, abs=1e-10), (row.key, row.term)
        else:
            # R ran its Fisher scoring to 1e-12, so REML is held to 1e-6 as DL is.
            assert ours == pytest.approx(row.value, rel=1e-6), (row.key, row.term)
    assert model["distribution"] == ("t" if test == "knha" else "z")
    assert model["qm_distribution"] == ("F" if test == "knha" else "chisq")


def test_a_meta_regression_needs_more_sites_than_coefficients():
    d, x = design("three_sites")
    x["second"] = [1.0, 4.0, 2.0]
    with pytest.raises(ValueError, match="3 coefficients needs at least 4 sites"):
        meta_regression(d["yi"], d["vi"], x)
    d, x = design("no_residual")
    x["x1"] = 2.0  # the same at every site
    with pytest.raises(ValueError, match="do not tell the sites apart"):
        meta_regression(d["yi"], d["vi"], x)


def test_the_tidy_table_notes_an_outcome_without_enough_sites():
    d, x = design("three_sites")
    effects = pd.DataFrame(
        {
            "site": list(d["site"]) * 2,
            "outcome": ["a"] * 3 + ["b"] * 3,
            "score": "total",
            "mean_change": list(d["yi"]) * 2,
            # outcome b: one site whose patients all changed alike (no sampling variance)
            "variance": list(d["vi"]) + [4.1, 6.3, 0.0],
        }
    )
    x.index = list(d["site"])
    terms = {"intrcpt": ("intercept", "", ""), "x1": ("volume", "", "")}
    table = meta_regression_table(effects, x, terms, tau2_method="REML", hartung_knapp=True)
    assert list(table["term"]) == ["intercept", "volume"] * 2
    a, b = table.iloc[:2], table.iloc[2:]
    reml = EXPECTED[
        (EXPECTED["case"] == "three_sites")
        & (EXPECTED["method"] == "REML")
        & (EXPECTED["test"] == "knha")
        & (EXPECTED["key"] == "estimate")
    ]
    assert list(a["estimate"]) == pytest.approx(list(reml["value"]), rel=1e-6)
    assert (a["note"] == "").all() and (a["moderators"] == "volume").all()
    assert b["estimate"].isna().all()
    assert b["note"].str.contains("needs at least 3 sites, not 2").all()
    assert b["note"].str.contains("1 site without variation in the change left out").all()


EXAMPLE = paths.RAW_DATA_DIR / "demo_pooled"


def example_with(tmp_path, old: str, new: str):
    folder = tmp_path / "demo_pooled"
    shutil.copytree(EXAMPLE, folder)
    spec = folder / "study.toml"
    text = spec.read_text(encoding="utf-8")
    assert old in text
    spec.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def test_the_example_declares_its_sites_characteristics():
    study = load_pooled_study(EXAMPLE)
    assert study.moderators == ("bells_palsy_pct",)
    by_name = {c.name: c for c in study.characteristics}
    assert by_name["setting"].levels == ("tertiary", "regional")
    x = moderator_design(study.characteristics, [0, 1, 2])
    assert list(x.columns) == ["intercept", "bells_palsy_pct", "setting: regional"]
    assert list(x["setting: regional"]) == [0.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        # a moderator nobody declared
        (
            'moderators = ["bells_palsy_pct"]',
            'moderators = ["volume"]',
            "pooled.moderators names volume, which is not declared",
        ),
        # two coefficients besides the intercept need four sites
        (
            'moderators = ["bells_palsy_pct"]',
            'moderators = ["bells_palsy_pct", "setting"]',
            "pooled.moderators needs at least 4 sites for its 3 coefficients",
        ),
        # a numeric characteristic given as text
        ("bells_palsy_pct = 73.7", 'bells_palsy_pct = "73.7"', "pooled.sites[1].characteristics"),
        # a level not declared
        ('setting = "tertiary"', 'setting = "university"', "not one of the levels"),
        # a site without a value
        (', setting = "regional" }', " }", "pooled.sites[1].characteristics.setting is missing"),
    ],
)
def test_site_characteristics_are_checked_naming_the_setting(tmp_path, old, new, named):
    folder = example_with(tmp_path, old, new)
    with pytest.raises(SpecError) as refused:
        load_pooled_study(folder)
    message = str(refused.value)
    assert named in message
    # The message names settings and sites, never a site's value.
    for value in ("73.7", "university", "46.7", "tertiary"):
        assert value not in message.split(": ", 1)[1].replace("study.toml", "")


def test_a_moderator_the_same_at_every_site_is_refused(tmp_path):
    folder = example_with(tmp_path, "bells_palsy_pct = 73.7", "bells_palsy_pct = 46.7")
    spec = folder / "study.toml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace(
            "bells_palsy_pct = 42.9", "bells_palsy_pct = 46.7"
        ),
        encoding="utf-8",
    )
    with pytest.raises(SpecError, match="pooled.moderators cannot tell the sites apart"):
        load_pooled_study(folder)


def test_a_small_coefficient_shows_a_digit_other_than_zero():
    # A slope per percentage point of a few thousandths read "0.00 (-0.29 to 0.29)" in the
    # example's eTable; two decimals, or more until the coefficient shows a digit (at most 4).
    from pipeline.pooled_study import _coefficient_digits

    assert [_coefficient_digits(x) for x in (1.5, -0.012, 0.0041, -0.00004, 0.0)] == [2, 2, 3, 4, 2]
