"""Scoring: hand-worked examples run through the generated DuckDB SQL."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.instruments import REGISTRY, score_sql

SUNNYBROOK = REGISTRY["sunnybrook"]


def score(instrument, items: dict[str, float]) -> dict[str, float]:
    con = duckdb.connect()
    con.execute("CREATE TABLE r (subject TEXT, visit TEXT, day INT, instrument TEXT, rater TEXT, item TEXT, value DOUBLE)")
    con.executemany("INSERT INTO r VALUES ('S', 'v', 0, ?, '', ?, ?)",
                    [(instrument.name, k, v) for k, v in items.items()])
    rows = con.execute(f"SELECT score, value FROM ({score_sql(instrument, 'r')})").fetchall()
    return dict(rows)


def sunnybrook_items(rest, vol, syn) -> dict[str, float]:
    names = [i.name for i in SUNNYBROOK.items]
    return dict(zip(names, [*rest, *vol, *syn]))


# Expected values worked by hand from Ross et al. 1996: resting = 5 x (eye + cheek + mouth),
# voluntary = 4 x sum of the five expressions, synkinesis = plain sum, composite = vol - rest - syn.
@pytest.mark.parametrize("rest, vol, syn, expected", [
    # all best: 4 x 25 - 0 - 0
    ((0, 0, 0), (5, 5, 5, 5, 5), (0, 0, 0, 0, 0), {"resting": 0, "voluntary": 100, "synkinesis": 0, "composite": 100}),
    # all worst: 4 x 5 - 5 x 4 - 15 = 20 - 20 - 15
    ((1, 2, 1), (1, 1, 1, 1, 1), (3, 3, 3, 3, 3), {"resting": 20, "voluntary": 20, "synkinesis": 15, "composite": -15}),
    # mixed: rest 1+1+0 = 2 -> 10; vol 3+4+2+5+4 = 18 -> 72; syn 1+0+2+1+0 = 4; 72 - 10 - 4 = 58
    ((1, 1, 0), (3, 4, 2, 5, 4), (1, 0, 2, 1, 0), {"resting": 10, "voluntary": 72, "synkinesis": 4, "composite": 58}),
])
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
