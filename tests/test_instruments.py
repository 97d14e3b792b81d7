"""Scoring: hand-worked examples run through the generated DuckDB SQL."""

from __future__ import annotations

import re

import duckdb
import pytest

from pipeline.instruments import REGISTRY
from pipeline.instruments.sql import score_sql
from specs import HB_OBSERVER, study_toml

SUNNYBROOK = REGISTRY["sunnybrook"]


def responses(instrument, items: dict[str, float]) -> duckdb.DuckDBPyConnection:
    """One subject's item responses at one visit, as table ``r`` of an in-memory database."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE r (subject TEXT, visit TEXT, day INT, instrument TEXT, rater TEXT, item "
        "TEXT, value DOUBLE)"
    )
    con.executemany(
        "INSERT INTO r VALUES ('S', 'v', 0, ?, '', ?, ?)",
        [(instrument.name, k, v) for k, v in items.items()],
    )
    return con


def score(instrument, items: dict[str, float]) -> dict[str, float]:
    con = responses(instrument, items)
    rows = con.execute(f"SELECT score, value FROM ({score_sql(instrument, 'r')})").fetchall()
    return dict(rows)


def sunnybrook_items(rest, vol, syn) -> dict[str, float]:
    names = [i.name for i in SUNNYBROOK.items]
    return dict(zip(names, [*rest, *vol, *syn]))


# Expected values worked by hand from Ross et al. 1996: resting = 5 x (eye + cheek + mouth),
# voluntary = 4 x sum of the five expressions, synkinesis = plain sum, composite = vol - rest - syn.
@pytest.mark.parametrize(
    "rest, vol, syn, expected",
    [
        # all best: 4 x 25 - 0 - 0
        (
            (0, 0, 0),
            (5, 5, 5, 5, 5),
            (0, 0, 0, 0, 0),
            {"resting": 0, "voluntary": 100, "synkinesis": 0, "composite": 100},
        ),
        # all worst: 4 x 5 - 5 x 4 - 15 = 20 - 20 - 15
        (
            (1, 2, 1),
            (1, 1, 1, 1, 1),
            (3, 3, 3, 3, 3),
            {"resting": 20, "voluntary": 20, "synkinesis": 15, "composite": -15},
        ),
        # mixed: rest 1+1+0 = 2 -> 10; vol 3+4+2+5+4 = 18 -> 72; syn 1+0+2+1+0 = 4; 72 - 10 - 4 = 58
        (
            (1, 1, 0),
            (3, 4, 2, 5, 4),
            (1, 0, 2, 1, 0),
            {"resting": 10, "voluntary": 72, "synkinesis": 4, "composite": 58},
        ),
    ],
)
def test_sunnybrook_hand_worked(rest, vol, syn, expected):
    assert score(SUNNYBROOK, sunnybrook_items(rest, vol, syn)) == expected


def test_sunnybrook_missing_item_makes_dependent_scores_missing():
    items = sunnybrook_items((1, 1, 0), (3, 4, 2, 5, 4), (1, 0, 2, 1, 0))
    del items["syn_smile"]
    scores = score(SUNNYBROOK, items)
    # resting and voluntary do not use the missing item; synkinesis and the composite do.
    assert scores["resting"] == 10 and scores["voluntary"] == 72
    assert scores["synkinesis"] is None and scores["composite"] is None


def test_house_brackmann_grade_is_the_item():
    assert score(REGISTRY["house_brackmann"], {"grade": 4}) == {"grade": 4}


def test_registry_declares_ranges_and_direction():
    assert SUNNYBROOK.score("composite").higher_is_better
    assert not REGISTRY["house_brackmann"].score("grade").higher_is_better
    assert {i.name: (i.minimum, i.maximum) for i in SUNNYBROOK.items}["rest_cheek"] == (0, 2)
    assert len(SUNNYBROOK.items) == 13


# --- bad input: a missing score always says why
# -------------------------------------------------------------


def scored_rows(instrument, items: dict[str, float], version=None) -> dict[str, tuple]:
    con = responses(instrument, items)
    rows = con.execute(
        f"SELECT score, value, version, reason FROM ({score_sql(instrument, 'r', version)})"
    ).fetchall()
    return {score: (value, version, reason) for score, value, version, reason in rows}


def test_value_outside_the_allowed_set_makes_the_score_missing_with_a_reason():
    items = sunnybrook_items((1, 3, 0), (3, 4, 2.5, 5, 4), (1, 0, 2, 1, 0))
    rows = scored_rows(SUNNYBROOK, items)
    assert rows["resting"] == (None, "", "rest_cheek = 3 is not allowed (whole number 0 to 2)")
    assert rows["voluntary"] == (None, "", "vol_smile = 2.5 is not allowed (whole number 1 to 5)")
    assert rows["synkinesis"] == (4, "", None)
    assert rows["composite"][0] is None
    assert rows["composite"][2] == (
        "rest_cheek = 3 is not allowed (whole number 0 to 2); "
        "vol_smile = 2.5 is not allowed (whole number 1 to 5)"
    )


def test_missing_item_reason_names_the_item():
    items = sunnybrook_items((1, 1, 0), (3, 4, 2, 5, 4), (1, 0, 2, 1, 0))
    del items["syn_smile"]
    rows = scored_rows(SUNNYBROOK, items)
    assert rows["synkinesis"] == (None, "", "syn_smile not recorded")
    assert rows["composite"] == (None, "", "syn_smile not recorded")
    assert rows["resting"] == (10, "", None)


def test_item_recorded_twice_is_not_silently_picked():
    con = duckdb.connect()
    con.execute("""CREATE TABLE r AS SELECT * FROM (VALUES
        ('S', 'v', 0, 'house_brackmann', '', 'grade', 2.0),
        ('S', 'v', 0, 'house_brackmann', '', 'grade', 5.0))
        t(subject, visit, day, instrument, rater, item, value)""")
    rows = con.execute(
        f"SELECT value, reason FROM ({score_sql(REGISTRY['house_brackmann'], 'r')})"
    ).fetchall()
    assert rows == [(None, "grade recorded more than once")]


def test_every_score_is_labelled_with_its_version():
    items = {str(k): 3 for k in range(1, 10)}
    assert scored_rows(REGISTRY["saq"], items)["total"] == (
        60.0,
        "percent_of_max",
        None,
    )  # 27 / 45 x 100
    assert scored_rows(REGISTRY["saq"], items, "raw_sum")["total"] == (27.0, "raw_sum", None)
    with pytest.raises(KeyError, match="no scoring version 'sum'"):
        scored_rows(REGISTRY["saq"], items, "sum")


# SAQ scored as a raw sum, and a custom measure with a unit, beside House-Brackmann.
VERSIONED_SPEC = study_toml(
    {
        "instruments": {
            "saq": {"column": "saq_{item}", "version": "raw_sum"},
            "botox_units": {
                "column": "botox",
                "label": "Botulinum toxin dose",
                "unit": "units",
                "minimum": 0,
                "maximum": 400,
                "better": "lower",
            },
        },
        "analysis": {
            "post": None,
            "outcomes": [HB_OBSERVER, {"instrument": "saq", "score": "total"}],
        },
    }
)


@pytest.fixture
def versioned_study(tmp_path):
    from tests.conftest import write_study

    saq = ",".join(f"saq_{k}" for k in range(1, 10))
    return write_study(
        tmp_path / "tiny",
        patients="""
            code,age
            P1,50
            P2,61
        """,
        visits=f"""
            code,visit,day,hb_observer,{saq},botox
            P1,pre,-10,4,3,3,3,3,3,3,3,3,3,60
            P1,m6,180,9,2,2,2,2,2,2,2,2,,450
            P2,pre,-5,5,4,4,4,4,4,4,4,4,x,12.5
            P2,m6,170,3,1,1,1,1,1,1,1,1,1,0
        """,
        spec=VERSIONED_SPEC,
    )


def test_study_scores_carry_version_reason_and_item_findings(versioned_study):
    from pipeline.ingest.ingestion import ingest_study
    from pipeline.scores import score_study
    from pipeline.spec.study import load_study

    study = load_study(versioned_study)
    con = duckdb.connect()
    ingest_study(con, study)
    score_study(con, study)
    scores = {
        (r[0], r[1], r[2]): r[3:]
        for r in con.execute(
            "SELECT subject, visit, instrument, value, version, reason FROM tiny.scores"
        ).fetchall()
    }
    assert scores[("P1", "pre", "saq")] == (27.0, "raw_sum", None)  # 9 x 3
    assert scores[("P2", "m6", "saq")] == (9.0, "raw_sum", None)
    assert scores[("P1", "m6", "saq")] == (None, "raw_sum", "9 not recorded")
    # The reason quotes ingest's own reason for refusing the value after naming the item (and
    # the value only where the quarantine keeps it: a short number, not text).
    assert scores[("P2", "pre", "saq")][:2] == (None, "raw_sum")
    assert scores[("P2", "pre", "saq")][2].startswith("9 refused at ingest: not a number")
    assert scores[("P1", "m6", "house_brackmann")][:2] == (None, "")
    assert scores[("P1", "m6", "house_brackmann")][2].startswith(
        "grade = 9 refused at ingest: outside the allowed range"
    )
    # The custom measure is scored as recorded; its out-of-range value is refused with the reason.
    assert scores[("P2", "pre", "botox_units")] == (12.5, "", None)
    assert scores[("P1", "m6", "botox_units")][0] is None
    assert scores[("P1", "m6", "botox_units")][2].startswith("value = 450 refused at ingest")
    findings = con.execute("""
        SELECT study, subject, visit, instrument, item, value, finding, scores_missing
        FROM tiny.item_findings ORDER BY subject, visit, instrument""").fetchall()
    assert [f[:6] + f[7:] for f in findings] == [
        ("tiny", "P1", "m6", "botox_units", "value", "450", "value"),
        ("tiny", "P1", "m6", "house_brackmann", "grade", "9", "grade"),
        ("tiny", "P1", "m6", "saq", "9", None, "total"),
        (
            "tiny",
            "P2",
            "pre",
            "saq",
            "9",
            None,
            "total",
        ),  # text refused: withheld, as in the quarantine
    ]
    assert [f[6] for f in findings] == [
        scores[("P1", "m6", "botox_units")][2],
        scores[("P1", "m6", "house_brackmann")][2],
        "9 not recorded",
        scores[("P2", "pre", "saq")][2],
    ]
    # Every missing score says why; no score with a value has a reason.
    assert con.execute(
        "SELECT count(*) FROM tiny.scores WHERE (value IS NULL) = (reason IS NULL)"
    ).fetchall() == [(0,)]


def test_the_scoring_version_is_a_note_beside_the_outcome_label(versioned_study):
    from pipeline.pairing import outcomes_frame
    from pipeline.spec.study import load_study

    frame = outcomes_frame(load_study(versioned_study))
    # The label is what every table and figure shows; the version is said once, in a footnote.
    assert frame["label"].tolist() == ["House-Brackmann grade (observer)", "SAQ total"]
    assert frame["version"].tolist() == ["", "raw_sum"]
    assert frame["version_note"].tolist() == ["", "SAQ, raw sum 9-45"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            'version = "raw_sum"',
            "must be one of raw_sum, percent_of_max, zero_to_hundred; got 'sum'",
        ),
        ('better = "lower"', "must be one of higher, lower; got 'down'"),
    ],
)
def test_spec_errors_for_versions_and_custom_measures(tmp_path, versioned_study, edit, message):
    from pipeline.spec.study import SpecError, load_study

    spec = versioned_study / "study.toml"
    spec.write_text(
        spec.read_text().replace(edit, edit.replace("raw_sum", "sum").replace("lower", "down"))
    )
    with pytest.raises(SpecError, match=re.escape(message)):
        load_study(versioned_study)


def test_registry_finds_every_module():
    import pkgutil

    import pipeline.instruments.scales as package

    modules = {m.name for m in pkgutil.iter_modules(package.__path__)}
    assert set(REGISTRY) == modules
    for instrument in REGISTRY.values():
        assert instrument.citation and instrument.sources
        if instrument.versions:
            assert instrument.default_version in instrument.version_names
        for version in instrument.version_names or (None,):
            names = [s.name for s in instrument.scores_for(version)]
            assert len(names) == len(set(names))


def test_flagged_only_scoring_is_the_full_scoring_of_the_rows_with_an_item_problem():
    """score_study scores a visit table straight into the score table and takes the item findings
    from a second pass over the rows with a missing, refused or disallowed item: that pass must
    give exactly those rows of the full scoring."""
    import numpy as np
    import pandas as pd

    from pipeline.instruments.sql import _problem, scored_columns_sql

    rng = np.random.default_rng(5)
    eface, landmarks = REGISTRY["eface"], REGISTRY["landmarks"]
    # Rater "b" has columns for three eFACE items only: its other items are never recorded.
    columns = {("", i.name): f"e_{i.name}" for i in eface.items}
    columns |= {("b", i.name): f"b_{i.name}" for i in eface.items[:3]}
    sided = {("", i.name): f"l_{i.name}" for i in landmarks.items}
    names = [*columns.values(), *sided.values()]
    n = 400
    pool = np.array([50.0, 100.0, 3.0, 12.5, np.nan, np.inf, -1.0, 250.0, 99.5, 0.0])
    cells = rng.choice(
        pool, size=(n, len(names)), p=[0.3, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]
    )
    cells[rng.random((n, len(names))) < 0.15] = None
    items = {c: eface.item(i) for (_, i), c in columns.items()}
    items |= {c: landmarks.item(i) for (_, i), c in sided.items()}
    allowed = [round((items[c].minimum + items[c].maximum) / 2) for c in names]
    cells[rng.random(n) < 0.5] = allowed  # half the visits fully recorded and allowed
    con = duckdb.connect()
    frame = {
        "line": np.arange(n),
        "subject": [f"S{i % 90}" for i in range(n)],
        "visit": [f"v{i // 90}" for i in range(n)],
        "day": np.arange(n) // 90,
    }
    con.register("cells", pd.DataFrame({**frame, **dict(zip(names, cells.T))}))
    con.execute("CREATE TABLE iv AS SELECT * FROM cells")
    con.execute(
        "CREATE TABLE subjects AS SELECT DISTINCT subject, "
        "CASE hash(subject) % 4 WHEN 0 THEN 'left' WHEN 1 THEN 'Right ' WHEN 2 THEN 'both' END AS "
        "side FROM iv"
    )
    # Refused at ingest: the cell is empty in the table, its raw text and reason are kept apart.
    refused = sorted(
        {
            (int(line), str(name), "x", "not a number")
            for line, name in zip(rng.integers(0, n, 60), rng.choice(names, 60))
        }
    )
    con.execute(
        'CREATE TABLE refused (line BIGINT, "column" VARCHAR, raw VARCHAR, problem VARCHAR)'
    )
    con.executemany("INSERT INTO refused VALUES (?, ?, ?, ?)", refused)
    for line, name, _, _ in refused:
        con.execute(f'UPDATE iv SET "{name}" = NULL WHERE line = {line}')
    for instrument, mapped in ((eface, columns), (landmarks, sided)):
        kwargs = dict(refused="refused", subjects="subjects", side_column="side")
        full = scored_columns_sql(instrument, "iv", mapped, **kwargs)
        flagged = scored_columns_sql(instrument, "iv", mapped, flagged_only=True, **kwargs)
        problem = " OR ".join(f"{_problem(i.name)} IS NOT NULL" for i in instrument.items)
        with_problem = f"SELECT * FROM ({full}) WHERE {problem}"
        counts = con.execute(
            f"SELECT (SELECT count(*) FROM ({full})), (SELECT count(*) FROM ({with_problem})), "
            f"(SELECT count(*) FROM ({flagged}))"
        ).fetchall()[0]
        assert 0 < counts[1] == counts[2] < counts[0], (instrument.name, counts)
        for a, b in ((with_problem, flagged), (flagged, with_problem)):
            assert con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchall() == [(0,)], (
                instrument.name
            )
