"""Complications, power and responders against published thresholds, from the spec to the
report: the spec's checks, the demo's tables (numbers against R calls quoted beside them) and
a study that declares none of them writing exactly what it wrote before."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from test_spec_schema import _demo_with, _refusal

from pipeline.spec.study import load_study
from specs import study_toml

# --- the spec ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            'column = "revision"',
            'column = "age"',
            "setting 'analysis.complications[1].column' names 'age', which needs levels 0 and 1 "
            "(1: the patient had the event); declare them under [subjects.levels], e.g. age = "
            '{ 0 = "No", 1 = "Yes" }.',
        ),
        (
            'resolved = "oral_incompetence_resolved"',
            'resolved = "side"',
            "setting 'analysis.complications[0].resolved' names 'side', which needs levels 0 and "
            "1 (1: it resolved); declare them under [subjects.levels], e.g. side = "
            '{ 0 = "No", 1 = "Yes" }.',
        ),
        (
            'duration = "oral_incompetence_days"',
            'duration = "days_of_drooling"',
            "setting 'analysis.complications[0].duration' names 'days_of_drooling', which is "
            "not in [subjects] columns; add it there or correct the name.",
        ),
        (
            'column = "revision"',
            'column = "oral_incompetence"',
            "setting 'analysis.complications' names an event column twice; declare each once.",
        ),
        (
            "target_dz = { house_brackmann_observer = 0.5 }",
            "target_dz = { house_brackmann_observer = -0.5 }",
            "setting 'analysis.power.target_dz.house_brackmann_observer' must be a positive "
            "effect (mean change / SD of the changes), got -0.5.",
        ),
        (
            'outcomes = ["house_brackmann_observer", "sunnybrook", "saq"]',
            'outcomes = ["sunybrook"]',
            "setting 'analysis.power.outcomes[0]' names 'sunybrook', which is not a planned "
            "outcome; use one of house_brackmann_observer, house_brackmann_surgeon, sunnybrook, "
            "eface, saq, face, botox_units.",
        ),
        (
            'column = "revision"',
            'column = "revision"\nduraton = "x"',
            "setting 'analysis.complications[1].duraton' is not a setting of "
            "[analysis.complications[1]]; did you mean 'duration'?",
        ),
    ],
)
def test_complications_and_power_settings_are_checked(tmp_path, old, new, message):
    assert _refusal(_demo_with(tmp_path, old, new)) == message


def test_power_plans_for_the_primary_outcome_by_default(tmp_path):
    folder = _demo_with(
        tmp_path, 'outcomes = ["house_brackmann_observer", "sunnybrook", "saq"]\n', ""
    )
    assert load_study(folder).analysis.power.outcomes == ("house_brackmann_observer",)


# --- the demo ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_results(demo_run):
    folder, outcome = demo_run
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    try:
        yield {
            name: con.execute(f"SELECT * FROM demo.{name}").df()
            for name in ("complications", "power", "responders")
        }
    finally:
        con.close()


def test_demo_oral_incompetence_matches_r(demo_results):
    row = demo_results["complications"].query("event == 'oral_incompetence' and group == 'all'")
    row = row.iloc[0]
    assert (row["n_events"], row["n_patients"]) == (7, 63)
    # R: binom.test(7, 63)$conf.int
    assert (row["ci_low"], row["ci_high"]) == (
        pytest.approx(0.045856623716870777, rel=1e-9),
        pytest.approx(0.215624248702528054, rel=1e-9),
    )
    # R: quantile(c(163, 88, 78, 21, 27, 29, 50), type = 7), the demo's seven durations
    assert [row[c] for c in ("duration_min", "duration_q1", "duration_median")] == [21, 28, 50]
    assert [row["duration_q3"], row["duration_max"]] == [83, 163]
    assert (row["n_resolved"], row["n_persistent"]) == (7, 0)


def test_demo_power_matches_r(demo_results):
    power = demo_results["power"].set_index(["outcome", "basis"])
    hb = power.loc[("house_brackmann_observer", "observed")]
    # R: power.t.test(delta = 1.2009256483873341 (the observed dz), power = 0.8,
    #    type = "paired", strict = TRUE, tol = 1e-12)$n
    assert hb["dz"] == pytest.approx(1.2009256483873341, rel=1e-12)
    assert hb["pairs_80"] == pytest.approx(7.5795362483481483, rel=1e-6)
    assert hb["pairs_80_needed"] == 8
    # R: power.t.test(n = 61, power = 0.8, type = "paired", strict = TRUE, tol = 1e-12)$delta
    assert hb["detectable_dz_80"] == pytest.approx(0.36457613649297738, rel=1e-6)
    # R: power.t.test(delta = 0.5, power = 0.8, ...)$n = 33.367 (power_paired_expected.csv)
    target = power.loc[("house_brackmann_observer", "target")]
    assert (target["dz"], target["pairs_80_needed"], target["pairs_90_needed"]) == (0.5, 34, 44)
    sunnybrook = power.loc[("sunnybrook", "observed")]
    # R: power.t.test(delta = 0.48096019496912007, power = 0.8, ...)$n
    assert sunnybrook["pairs_80"] == pytest.approx(35.898447835827305, rel=1e-6)


def test_demo_responders_use_the_published_threshold_and_name_its_source(demo_results):
    rows = demo_results["responders"].set_index("outcome")
    assert rows.loc["house_brackmann_observer", "threshold_source"] == "study spec"
    face = rows.loc["face"]
    # FaCE total (item_weighted): Bruins et al. 2021's minimal important change, 0.7.
    assert (face["score"], face["threshold"]) == ("total", 0.7)
    assert face["threshold_source"].startswith("Bruins TE, et al.")
    # The spec's own thresholds are unchanged: 47 and 45 of 61 (as before published ones).
    assert rows.loc["house_brackmann_observer", "n_responders"] == 47
    assert rows.loc["house_brackmann_surgeon", "n_responders"] == 45


def test_demo_report_shows_and_describes_the_new_tables(demo_run):
    folder, _ = demo_run
    html = (folder / "reports" / "demo" / "report.html").read_text(encoding="utf-8")
    tables = folder / "reports" / "demo" / "tables"
    events = (tables / "etable_complications.md").read_text(encoding="utf-8")
    assert "Postoperative oral incompetence" in events and "Revision surgery" in events
    assert "| 7 (11)" in events and "50 [28-83]" in events and "Etiology: Bell palsy" in events
    responders = (tables / "etable_responders.md").read_text(encoding="utf-8")
    assert "FaCE total, 0.7 (published, Bruins TE, et al." in responders
    assert "(set in the study spec)" in responders
    power = (tables / "etable_power.md").read_text(encoding="utf-8")
    assert "| Target" in power and ">99" in power
    number = {
        stem: html.split(f"{title}")[0].rsplit("eTable ", 1)[1].split(".")[0]
        for stem, title in (
            ("complications", ". Complications and adverse events"),
            ("power", ". Power and sample size for a future study"),
        )
    }
    # Methods: each analysis with its table's number and the R call it matches.
    assert f"The complications and adverse events (eTable {number['complications']})" in html
    assert f"For a future study (eTable {number['power']})" in html
    assert "power.t.test with type = &quot;paired&quot;" in html or "power.t.test with type" in html
    assert "0.7 for FaCE total, as published" in html


# --- a study that declares none of it -----------------------------------------------------


def _tables_after_run(folder: Path, reports: Path) -> dict[str, bytes]:
    from small_study import DATA_STEPS, file_bytes, run_steps

    con = duckdb.connect(str(folder.parent / "warehouse.duckdb"))
    try:
        run_steps(con, load_study(folder), reports, DATA_STEPS)
    finally:
        con.close()
    return file_bytes(reports / "small" / "tables")


def test_a_study_without_complications_or_power_writes_what_it_wrote_before(tmp_path):
    # The small study as every session runs it (no complications, no power plan), and the same
    # study declaring a complication (its columns read too) and a power plan.
    from small_study import SMALL_STUDY, file_bytes, full_run, write_small_study

    before = file_bytes(full_run() / "reports" / "small" / "tables")
    declared = write_small_study(tmp_path / "declared" / "small")
    plain = (declared / "study.toml").read_text(encoding="utf-8")
    subjects = SMALL_STUDY["subjects"]
    spec = study_toml(
        SMALL_STUDY,
        {
            "study": {"name": "small"},
            "subjects": {
                "columns": [*subjects["columns"], "oral_incompetence", "oral_incompetence_days"],
                "levels": {**subjects["levels"], "oral_incompetence": ["0", "1"]},
            },
            "analysis": {
                "complications": [
                    {"column": "oral_incompetence", "duration": "oral_incompetence_days"}
                ],
                "power": {},
            },
        },
    )
    (declared / "study.toml").write_text(spec, encoding="utf-8")
    after = _tables_after_run(declared, tmp_path / "declared_reports")
    added = {name for name in after if name not in before}
    assert added == {"complications.csv", "power.csv"} | {
        f"etable_{stem}.{ext}"
        for stem in ("complications", "power")
        for ext in ("csv", "md", "html", "tex", "docx")
    }
    # Every file the plain study writes is written byte for byte the same (no empty table, no
    # other number changed) when the plan adds them; only the item eTables, which come last,
    # move down by the two new eTables' numbers.
    items = {name for name in before if name.startswith("etable_items_")}
    assert {name: after[name] for name in before if name not in items} == {
        name: before[name] for name in before if name not in items
    }

    def renumbered(text: bytes, by: int) -> bytes:
        return re.sub(rb"eTable (\d+)\.", lambda m: b"eTable %d." % (int(m[1]) + by), text)

    assert items and all(
        renumbered(before[name], 2) == after[name] for name in items if not name.endswith(".docx")
    )
    power = pd.read_csv(tmp_path / "declared_reports" / "small" / "tables" / "power.csv")
    assert power["outcome"].tolist() == ["house_brackmann_observer"]
    # Run again without them: what the earlier plan left is gone from the warehouse and the
    # result CSVs, and no publication table shows it.
    (declared / "study.toml").write_text(plain, encoding="utf-8")
    again = _tables_after_run(declared, tmp_path / "declared_reports")
    assert not {"complications.csv", "power.csv"} & set(again)
    con = duckdb.connect(str(declared.parent / "warehouse.duckdb"), read_only=True)
    try:
        left = set(
            con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'small'"
            ).df()["table_name"]
        )
        titles = " ".join(
            con.execute("SELECT text FROM small.publication_tables WHERE part = 'title'").df()[
                "text"
            ]
        )
    finally:
        con.close()
    assert not {"complications", "power"} & left
    assert "Complications" not in titles and "Power" not in titles
