"""The spec's schema: every table refuses a key it does not know, naming the nearest valid key;
files outside the study folder need an explicit setting; categorical and free-text columns are
declared with what they need."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipeline import paths
from pipeline.spec.study import SpecError, load_study

DEMO = paths.RAW_DATA_DIR / "demo"
SPEC = (DEMO / "study.toml").read_text(encoding="utf-8")


def _demo_with(tmp_path: Path, old: str, new: str, *more: str) -> Path:
    """The demo study with ``old`` replaced by ``new`` in its spec (and each further pair of
    ``more`` in turn)."""
    folder = tmp_path / "demo"
    folder.mkdir(parents=True)
    for name in ("patients.csv", "visits.csv"):
        shutil.copy(DEMO / name, folder / name)
    spec = SPEC
    pairs = [(old, new), *zip(more[::2], more[1::2])]
    for before, after in pairs:
        assert before in spec, before
        spec = spec.replace(before, after, 1)
    (folder / "study.toml").write_text(spec, encoding="utf-8")
    return folder


def _refusal(folder: Path) -> str:
    with pytest.raises(SpecError) as err:
        load_study(folder)
    message = str(err.value)
    assert message.startswith(str(folder / "study.toml") + ": ") and "\n" not in message
    return message.split(": ", 1)[1]


# (text in the demo spec, the same with a misspelt key, the message): one per table of the spec.
MISSPELT = [
    (
        'multiplicity = "holm"',
        'multiplicty = "bh"',
        "setting 'analysis.multiplicty' is not a setting of [analysis]; did you mean "
        "'multiplicity'?",
    ),
    (
        'version = "raw_sum"',
        'verison = "rasch"',
        "setting 'instruments.saq.verison' is not a setting of [instruments.saq]; did you mean "
        "'version'?",
    ),
    ("[checks]", "[chekcs]", "[chekcs] is not a table of the spec; did you mean 'checks'?"),
    (
        "min_pairs = 3",
        "min_pair = 3",
        "setting 'checks.min_pair' is not a setting of [checks]; did you mean 'min_pairs'?",
    ),
    (
        "synthetic = true",
        "synthetic = true\nrestrictd = true",
        "setting 'study.restrictd' is not a setting of [study]; did you mean 'restricted'?",
    ),
    (
        'id = "study_id"',
        'id = "study_id"\ncolumn = ["age"]',
        "setting 'subjects.column' is not a setting of [subjects]; did you mean 'columns'?",
    ),
    (
        'day = "day"',
        'day = "day"\nlayuot = "wide"',
        "setting 'visits.layuot' is not a setting of [visits]; did you mean 'layout'?",
    ),
    (
        'unit = "units"',
        'units = "units"',
        "setting 'instruments.botox_units.units' is not a setting of [instruments.botox_units]; "
        "did you mean 'unit'?",
    ),
    (
        'raters = ["observer", "surgeon"]\n',
        'raters = ["observer", "surgeon"]\nrater = "observer"\n',
        "setting 'instruments.house_brackmann.rater' is not a setting of "
        "[instruments.house_brackmann]; "
        "did you mean 'raters'?",
    ),
    (
        "max_day = 0 }",
        "max_day = 0, maxday = 3 }",
        "setting 'analysis.pre.maxday' is not a setting of [analysis.pre]; did you mean 'max_day'?",
    ),
    (
        "min_day = 90 }",
        "min_dya = 90 }",
        "setting 'analysis.post.min_dya' is not a setting of [analysis.post]; did you mean "
        "'min_day'?",
    ),
    (
        'column = "etiology" }',
        'column = "etiology", splt = "median" }',
        "setting 'analysis.subgroups[1].splt' is not a setting of [analysis.subgroups[1]]; did you "
        "mean 'split'?",
    ),
    (
        'weights = "quadratic",',
        'weight = "quadratic",',
        "setting 'analysis.reliability[0].weight' is not a setting of [analysis.reliability[0]]; "
        "did you mean 'weights'?",
    ),
    (
        "random_slope = false",
        "random_slopes = false",
        "setting 'analysis.longitudinal.random_slopes' is not a setting of "
        "[analysis.longitudinal]; "
        "did you mean 'random_slope'?",
    ),
    (
        'rater = "observer"\nscore = "grade"',
        'rater = "observer"\nscore = "grade"\ntset = "t"',
        "setting 'analysis.outcomes[0].tset' is not a setting of [analysis.outcomes[0]]; did you "
        "mean 'test'?",
    ),
    (
        "[checks]",
        '[identifiers]\nalow = { age = "ages are top-coded at 90" }\n[checks]',
        "setting 'identifiers.alow' is not a setting of [identifiers]; did you mean 'allow'?",
    ),
]


@pytest.mark.parametrize(
    "old, new, message", MISSPELT, ids=[m[1].split("=")[0].strip("[ \n") for m in MISSPELT]
)
def test_every_table_refuses_a_misspelt_key_naming_the_nearest(tmp_path, old, new, message):
    assert _refusal(_demo_with(tmp_path, old, new)) == message


def test_values_are_not_coerced(tmp_path):
    assert (
        _refusal(_demo_with(tmp_path, "alpha = 0.05", 'alpha = "0.05"'))
        == "setting 'analysis.alpha' must be a number, got '0.05'."
    )


def test_a_file_outside_the_study_folder_needs_an_explicit_setting(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(DEMO / "visits.csv", outside / "visits.csv")
    folder = _demo_with(tmp_path, 'file = "visits.csv"', 'file = "../elsewhere/visits.csv"')
    message = _refusal(folder)
    assert message.startswith("setting 'visits.file' names a file outside the study folder")
    assert "read_outside_folder = true" in message
    (folder / "study.toml").write_text(
        (folder / "study.toml")
        .read_text()
        .replace("synthetic = true", "synthetic = true\nread_outside_folder = true")
    )
    assert load_study(folder).visits_path.resolve() == (outside / "visits.csv").resolve()


def test_a_link_leading_out_of_the_study_folder_is_outside(tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    folder = _demo_with(tmp_path, 'file = "visits.csv"', 'file = "linked.csv"')
    os.symlink(outside, folder / "linked.csv")
    assert _refusal(folder).startswith(
        "setting 'visits.file' names a file outside the study folder"
    )
    # A link that stays inside the folder is read as usual.
    (folder / "linked.csv").unlink()
    os.symlink(folder / "visits.csv", folder / "linked.csv")
    assert load_study(folder).visits_file == "linked.csv"


@pytest.mark.parametrize(
    "levels, message",
    [
        ("sex = []", "setting 'subjects.levels.sex' must list at least one level."),
        (
            'sex = ["F", " "]',
            "setting 'subjects.levels.sex' has a blank level; a blank cell is a missing value, "
            "not a level.",
        ),
        (
            'shoe_size = ["9"]',
            "setting 'subjects.levels.shoe_size' names 'shoe_size', which is not in [subjects] "
            "columns; add it there or correct the name.",
        ),
    ],
)
def test_declared_levels_are_checked(tmp_path, levels, message):
    folder = _demo_with(tmp_path, 'sex = { F = "Female", M = "Male" }', levels)
    assert _refusal(folder) == message


def test_levels_are_read_as_written_with_their_labels(tmp_path):
    folder = _demo_with(
        tmp_path,
        'sex = { F = "Female", M = "Male" }',
        'sex = ["female", "male"]',
    )
    levels = dict(load_study(folder).subject_levels)
    assert levels["sex"] == (("female", "female"), ("male", "male"))
    assert levels["facelift"] == (("0", "No"), ("1", "Yes"))


def test_free_text_needs_a_reason_and_is_never_analysed(tmp_path):
    folder = _demo_with(
        tmp_path, "\n[subjects.levels]", '\nfree_text = { facelift = "no" }\n\n[subjects.levels]'
    )
    assert _refusal(folder).startswith(
        "setting 'subjects.free_text.facelift' needs a reason of a few words"
    )
    folder = _demo_with(
        tmp_path / "b",
        "\n[subjects.levels]",
        '\nfree_text = { facelift = "kept for the chart review only" }\n\n[subjects.levels]',
        'facelift = { 0 = "No", 1 = "Yes" }\n',
        "",
    )
    assert _refusal(folder) == (
        "setting 'analysis.subgroups[2].column' names 'facelift', a free-text column, which is "
        "never analysed "
        "or reported; declare its levels under [subjects.levels] instead."
    )
    folder = _demo_with(
        tmp_path / "c",
        "\n[subjects.levels]",
        '\nfree_text = { etiology = "kept for the chart review only" }\n\n[subjects.levels]',
    )
    assert _refusal(folder) == (
        "setting 'subjects.free_text.etiology' names a column that also has levels; "
        "a column is either categorical or free text."
    )


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("[study]\n", '["\\n"]\nx = 1\n\n[study]\n', "[\\n] is not a table of the spec"),
        (
            "[study]\n",
            '[study]\n"a\\nb" = 1\n',
            "setting 'study.a\\nb' is not a setting of [study]",
        ),
    ],
)
def test_a_line_break_typed_into_a_key_is_shown_escaped(tmp_path, old, new, message):
    # Found by tests/test_fuzz_spec.py: the message must stay one line.
    assert _refusal(_demo_with(tmp_path, old, new)).startswith(message)


# --- labels: what a reader sees for a subjects column, its unit and its levels ------------------


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            'age = "Age"',
            'age = " "',
            "setting 'subjects.labels.age' is blank; write the label a reader sees, or remove the "
            "entry.",
        ),
        (
            'age = "y"',
            'age = ""',
            "setting 'subjects.units.age' is blank; write the unit a reader sees, or remove the "
            "entry.",
        ),
        (
            'age = "Age"',
            'agee = "Age"',
            "setting 'subjects.labels.agee' names 'agee', which is not in [subjects] columns; add "
            "it there or correct the name.",
        ),
        (
            'age = "y"',
            'ages = "y"',
            "setting 'subjects.units.ages' names 'ages', which is not in [subjects] columns; add "
            "it there or correct the name.",
        ),
        (
            'sex = { F = "Female", M = "Male" }',
            'sex = { F = "Female", M = "" }',
            "setting 'subjects.levels.sex' gives a level a blank label; write the label a reader "
            "sees, or list the levels (each its own label).",
        ),
        (
            "[subjects.labels]",
            "[subjects.lables]",
            "setting 'subjects.lables' is not a setting of [subjects]; did you mean 'labels'?",
        ),
        ('age = "Age"', "age = 3", "setting 'subjects.labels.age' must be text, got 3."),
        # [visits.labels]: what a reader sees for a visit code.
        (
            'm1 = "1 month"',
            'm1 = "  "',
            "setting 'visits.labels.m1' is blank; write the label a reader sees, or remove the "
            "entry.",
        ),
        ('m1 = "1 month"', "m1 = 1", "setting 'visits.labels.m1' must be text, got 1."),
        (
            "[visits.labels]",
            "[visits.lables]",
            "setting 'visits.lables' is not a setting of [visits]; did you mean 'labels'?",
        ),
    ],
)
def test_labels_and_units_are_checked(tmp_path, old, new, message):
    assert _refusal(_demo_with(tmp_path, old, new)) == message


def test_labels_from_the_spec_and_readable_defaults(tmp_path):
    # The demo labels its columns; without [subjects.labels] a name is made readable.
    study = load_study(DEMO)
    assert study.column_label("months_since_onset") == "Time since onset"
    assert study.column_label_with_unit("months_since_onset") == "Time since onset, mo"
    assert study.column_label_with_unit("etiology") == "Etiology"
    assert study.level_label("etiology", "bells_palsy") == "Bell palsy"
    # A level the spec labels but no patient has is fine: it is simply never shown.
    assert study.level_label("etiology", "iatrogenic") == "Iatrogenic"
    labels = SPEC[SPEC.index("[subjects.labels]") : SPEC.index("[visits]")]
    bare = load_study(_demo_with(tmp_path, labels, ""))
    assert bare.column_label("months_since_onset") == "Months since onset"
    assert bare.column_label_with_unit("age") == "Age"
    assert bare.level_label("etiology", "ramsay_hunt") == "Ramsay Hunt syndrome"
    # A 0/1 column without level labels reads as no/yes; any other value is made readable.
    unlabelled = load_study(_demo_with(tmp_path / "b", 'facelift = { 0 = "No", 1 = "Yes" }\n', ""))
    assert [unlabelled.level_label("facelift", v) for v in ("0", "1")] == ["No", "Yes"]
    assert unlabelled.level_label("side_note", "left_only") == "Left only"


# --- visit labels: what a reader sees for a visit code ------------------------------------------


def test_visit_labels_from_the_spec_and_readable_defaults(tmp_path):
    study = load_study(DEMO)
    assert [study.visit_label(v) for v in ("pre", "m1", "m12", "last")] == [
        "Before surgery",
        "1 month",
        "12 months",
        "Last follow-up",
    ]
    # Without [visits.labels] a visit says what it is; a last follow-up code is always "Last
    # follow-up" (pipeline.spec.study.LAST_FOLLOW_UP_VISITS), whatever its case.
    labels = SPEC[SPEC.index("[visits.labels]") : SPEC.index("[instruments.sunnybrook]")]
    bare = load_study(_demo_with(tmp_path, labels, ""))
    assert [bare.visit_label(v) for v in ("pre", "m12", "last", "Final")] == [
        "Visit pre",
        "Visit m12",
        "Last follow-up",
        "Last follow-up",
    ]
    # The named visit of the post rule is said by its label wherever the plan is described.
    named = _demo_with(
        tmp_path / "named",
        'post = { rule = "last_followup", min_day = 90 }',
        'post = { rule = "named_visit", visit = "m12", min_day = 300, max_day = 430 }',
    )
    assert load_study(named).analysis.post_label == "12 months (300 ≤ day ≤ 430)"
    unlabelled = _demo_with(
        tmp_path / "unlabelled",
        labels,
        "",
        'post = { rule = "last_followup", min_day = 90 }',
        'post = { rule = "named_visit", visit = "m12", min_day = 300, max_day = 430 }',
    )
    assert load_study(unlabelled).analysis.post_label == "visit m12 (300 ≤ day ≤ 430)"


def test_a_label_for_a_visit_no_redcap_event_maps_to_is_refused(tmp_path):
    # A REDCap study lists its visits in [redcap.events], so a label can be checked against them
    # when the spec is read; a misspelt code would otherwise leave the visit under its code.
    from specs import REDCAP_STUDY, study_toml

    folder = tmp_path / "rc"
    folder.mkdir()
    for name in ("records.csv", "dictionary.csv"):
        shutil.copy(Path(__file__).parent / "redcap" / name, folder / name)
    events = {
        "baseline_arm_1": {"visit": "pre", "day": -14},
        "month_12_arm_1": {"visit": "m12", "day": 365},
    }

    def spec_with(labels: dict) -> Path:
        (folder / "study.toml").write_text(
            study_toml(
                REDCAP_STUDY,
                {"study": {"name": "rc"}},
                {"visits": {"labels": labels}},
                {
                    "redcap": {
                        "dictionary": "dictionary.csv",
                        "subjects_event": "enrolment_arm_1",
                        "events": events,
                    }
                },
            ),
            encoding="utf-8",
        )
        return folder

    assert load_study(spec_with({"pre": "Before surgery", "m12": "1 year"})).visit_label("m12") == (
        "1 year"
    )
    assert _refusal(spec_with({"pre": "Before surgery", "m18": "18 months"})) == (
        "setting 'visits.labels.m18' names visit 'm18', which no event of [redcap.events] is "
        "mapped to; label one of pre, m12, or correct the code."
    )


def test_subgroup_levels_by_their_labels():
    # The statistics name levels "<subgroup>: <value>", "<subgroup> > <median>" and pool small
    # ones (pipeline.statistics.subgroups, small_cells).
    study = load_study(DEMO)
    assert [
        study.group_label(g)
        for g in (
            "etiology: bells_palsy",
            "branches_transected > 6",
            "branches_transected ≤ 6.5",
            "facelift: 1",
            "cross_facial_nerve_graft: 0",
            "etiology: levels of fewer than 5 patients, pooled",
        )
    ] == [
        "Etiology: Bell palsy",
        "Branches transected > 6",
        "Branches transected ≤ 6.5",
        "Concurrent facelift: Yes",
        "Concurrent cross-facial nerve graft: No",
        "Etiology: levels of fewer than 5 patients, pooled",
    ]
    assert study.subgroup_label("nerve_rerouting") == "Concurrent nerve rerouting"
