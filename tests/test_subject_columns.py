"""Subjects columns: categories only from declared levels, free text only when declared and never
reported, refused text withheld from the quarantine, and subgroup levels too small to report
pooled or left out, in every output."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import run_args, write_study
from pipeline.cli import main
from pipeline.statistics.small_cells import pool_small_levels, pooled_label, small_codes_left_out
from specs import study_toml

# House-Brackmann by an observer, with etiology as a subgroup, its levels labelled.
LEVELS = {
    "etiology": {
        "bells": "Bell palsy",
        "hunt": "Ramsay Hunt syndrome",
        "rare": "Rare",
        "odd": "Odd",
    }
}
# Ten Bell palsy, six Ramsay Hunt, two each of two rare causes.
ETIOLOGY = ["bells"] * 10 + ["hunt"] * 6 + ["rare"] * 2 + ["odd"] * 2
NAME, NOTE = "Jane Roe", "Called John Smith re follow-up"


def cohort(
    tmp_path: Path,
    etiology=ETIOLOGY,
    *,
    note: list[str] | None = None,
    free_text: dict | None = None,
    changes: dict | None = None,
) -> Path:
    n = len(etiology)
    header = "code,age,etiology" + (",note" if note else "")
    patients = [header] + [
        f"P{i:02d},{40 + i},{e}" + (f",{note[i]}" if note else "") for i, e in enumerate(etiology)
    ]
    rng = np.random.default_rng(7)
    visits = ["code,visit,day,hb_observer"]
    for i in range(n):
        pre = int(rng.integers(3, 7))
        visits += [
            f"P{i:02d},pre,-7,{pre}",
            f"P{i:02d},m12,365,{max(1, pre - int(rng.integers(0, 3)))}",
        ]
    spec = study_toml(
        {
            "study": {"name": "cohort"},
            "subjects": {
                "columns": ["age", "etiology", *(["note"] if note else [])],
                "levels": LEVELS,
                "free_text": free_text,
            },
            "analysis": {"subgroups": [{"name": "etiology", "column": "etiology"}]},
            "tables": {"table_1_by": "etiology"},
        },
        changes or {},
    )
    return write_study(
        tmp_path / "cohort", "\n".join(patients) + "\n", "\n".join(visits) + "\n", spec
    )


def run(study: Path, tmp_path: Path, capsys) -> tuple[int, str]:
    code = main(run_args(study, tmp_path))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def ingested(study: Path) -> duckdb.DuckDBPyConnection:
    """The study ingested into an in-memory warehouse: for what ingestion alone decides."""
    from pipeline.ingest.ingestion import ingest_study
    from pipeline.spec.study import load_study

    con = duckdb.connect()
    ingest_study(con, load_study(study))
    return con


def everywhere(tmp_path: Path, text: str) -> list[str]:
    """Where ``text`` occurs: files under reports/ (binary formats unpacked by grep -a / -z for
    .docx via python-docx) and every text cell of every warehouse table."""
    found = []
    for path in (tmp_path / "reports").rglob("*"):
        if path.is_file() and path.suffix != ".docx" and text.encode() in path.read_bytes():
            found.append(str(path))
        if path.suffix == ".docx":
            from docx import Document

            doc = Document(str(path))
            cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
            if any(text in t for t in [p.text for p in doc.paragraphs] + cells):
                found.append(str(path))
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        for schema, table in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE'"
        ).fetchall():
            columns = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND "
                    "table_name = ?",
                    [schema, table],
                ).fetchall()
            ]
            hits = con.execute(
                f"SELECT count(*) FROM {schema}.{table} WHERE "
                + " OR ".join(f'contains(CAST("{c}" AS VARCHAR), ?)' for c in columns),
                [text] * len(columns),
            ).fetchall()[0][0]
            if hits:
                found.append(f"{schema}.{table}")
    finally:
        con.close()
    return found


def test_a_name_in_a_categorical_column_is_quarantined_and_reaches_no_output(tmp_path, capsys):
    etiology = ETIOLOGY[:-1] + [NAME]
    code, printed = run(cohort(tmp_path, etiology), tmp_path, capsys)
    assert code == 0, printed
    assert NAME not in printed
    assert everywhere(tmp_path, NAME) == []
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    row = con.execute("""SELECT line, "column", value, value_length, value_hash IS NOT NULL, reason,
                                scope
                         FROM cohort.quarantine""").fetchall()
    assert row == [
        (
            21,
            "etiology",
            None,
            len(NAME),
            True,
            "not one of the levels declared for etiology (bells, hunt, rare, odd); correct it in "
            "the "
            "export or add the level under [subjects.levels]",
            "value",
        )
    ]
    # The patient stays, without an etiology.
    assert con.execute("SELECT etiology FROM cohort.subjects WHERE subject = 'P19'").fetchall() == [
        (None,)
    ]


def test_levels_match_whatever_the_case_and_are_stored_as_declared(tmp_path):
    etiology = [e.upper() if i % 2 else f" {e} " for i, e in enumerate(ETIOLOGY)]
    con = ingested(cohort(tmp_path, etiology))
    stored = dict(
        con.execute("SELECT etiology, count(*) FROM cohort.subjects GROUP BY 1").fetchall()
    )
    assert stored == {"bells": 10, "hunt": 6, "rare": 2, "odd": 2}
    assert con.execute("SELECT count(*) FROM cohort.quarantine").fetchall() == [(0,)]


def test_a_column_of_text_not_declared_is_refused_without_quoting_it(tmp_path, capsys):
    note = [NOTE] + ["seen"] * (len(ETIOLOGY) - 1)
    code, printed = run(cohort(tmp_path, note=note), tmp_path, capsys)
    assert code == 2
    assert "column 'note' holds text, not numbers (20 rows)" in printed
    assert "[subjects.levels]" in printed and "[subjects.free_text]" in printed
    assert NOTE not in printed and "John Smith" not in printed and "seen" not in printed
    assert not (tmp_path / "reports" / "cohort" / "tables").exists()


def test_a_number_column_keeps_numbers_and_withholds_text(tmp_path, capsys):
    study = cohort(tmp_path)
    patients = study / "patients.csv"
    lines = patients.read_text().splitlines()
    lines[1] = lines[1].replace(",40,", f",{NAME},")  # a name in the age column
    lines[2] = lines[2].replace(",41,", ",90+,")  # a top-coded age counts as a number
    patients.write_text("\n".join(lines) + "\n")
    code, printed = run(study, tmp_path, capsys)
    assert code == 0, printed
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    ages = dict(
        con.execute(
            "SELECT subject, age FROM cohort.subjects WHERE subject IN ('P00','P01','P02')"
        ).fetchall()
    )
    assert ages == {"P00": None, "P01": "90+", "P02": "42"}
    assert con.execute('SELECT "column", value, reason FROM cohort.quarantine').fetchall() == [
        (
            "age",
            None,
            "not a number; a column of categories needs its levels under [subjects.levels]",
        )
    ]
    assert everywhere(tmp_path, NAME) == []


@pytest.mark.parametrize(
    "written, kept",
    [
        ("11", "11"),
        ("-3", "-3"),
        ("4.5", "4.5"),
        ("12345", None),
        ("6175550142", None),
        ("02114", None),
        ("Jane", None),
    ],
)
def test_the_quarantine_keeps_only_short_numbers(tmp_path, written, kept):
    study = cohort(tmp_path)
    visits = study / "visits.csv"
    lines = visits.read_text().splitlines()
    lines[2] = ",".join(lines[2].split(",")[:3] + [written])
    visits.write_text("\n".join(lines) + "\n")
    con = ingested(study)
    assert con.execute(
        'SELECT line, "column", value, value_length, value_hash IS NULL FROM cohort.quarantine'
    ).fetchall() == [(3, "hb_observer", kept, len(written), kept is not None)]


def test_declared_free_text_is_kept_for_the_team_and_never_reported(tmp_path, capsys):
    note = [NOTE] + ["seen"] * (len(ETIOLOGY) - 1)
    study = cohort(tmp_path, note=note, free_text={"note": "kept for the chart review only"})
    code, printed = run(study, tmp_path, capsys)
    assert code == 0, printed
    assert everywhere(tmp_path, NOTE) == ["cohort.subjects"]


def test_small_subgroup_levels_are_left_out_of_every_output(tmp_path, capsys):
    # rare (2) and odd (2) pool to 4, fewer than 5: both left out of the subgroup's analyses.
    code, printed = run(cohort(tmp_path), tmp_path, capsys)
    assert code == 0, printed
    tables = tmp_path / "reports" / "cohort" / "tables"
    groups = set(pd.read_csv(tables / "paired_tests.csv")["group"])
    assert groups == {"all", "etiology: bells", "etiology: hunt"}
    between = pd.read_csv(tables / "between_groups.csv")
    assert {lv for levels in between["levels"] for lv in levels.split(" | ")} == {
        "etiology: bells",
        "etiology: hunt",
    }
    table_1 = (tables / "table_1.csv").read_text()
    assert "Rare (n" not in table_1 and "Odd (n" not in table_1
    assert (
        "4 patients in etiology groups of fewer than 5 patients are counted in the Overall column "
        "only" in table_1
    )
    for path in (tmp_path / "reports").rglob("*"):
        if path.suffix in (".csv", ".md", ".html", ".tex", ".svg"):
            # Lower case: the reports name the level by its label ("Etiology: Rare").
            text = path.read_text(errors="replace").lower()
            assert "etiology: rare" not in text and "etiology: odd" not in text, path
    # Whole-cohort analyses still count every patient.
    assert pd.read_csv(tables / "paired_tests.csv").query("group == 'all'")["n_pairs"].tolist() == [
        20
    ]


def test_small_levels_that_together_reach_the_minimum_are_pooled(tmp_path, capsys):
    etiology = ["bells"] * 10 + ["hunt"] * 6 + ["rare"] * 3 + ["odd"] * 3
    code, printed = run(cohort(tmp_path, etiology), tmp_path, capsys)
    assert code == 0, printed
    groups = pd.read_csv(tmp_path / "reports" / "cohort" / "tables" / "paired_tests.csv")
    pooled = groups[groups["group"] == pooled_label("etiology", 5)]
    assert pooled["n_pairs"].tolist() == [6]


def test_the_spec_sets_the_small_cell_minimum(tmp_path, capsys):
    study = cohort(tmp_path, changes={"identifiers": {"min_cell": 2}})
    code, printed = run(study, tmp_path, capsys)
    assert code == 0, printed
    groups = set(
        pd.read_csv(tmp_path / "reports" / "cohort" / "tables" / "paired_tests.csv")["group"]
    )
    assert {"etiology: rare", "etiology: odd"} <= groups


def test_pool_small_levels():
    levels = pd.Series(["a"] * 5 + ["b"] * 2 + ["c"] * 3 + [None])
    assert pool_small_levels(levels, "g", 5).tolist()[5:10] == [pooled_label("g", 5)] * 5
    assert pool_small_levels(levels, "g", 5, pool=False)[5:].isna().all()
    assert pool_small_levels(levels, "g", 6).isna().all()  # every level small: nothing to compare
    assert pool_small_levels(levels, "g", 2).equals(levels)
    # One small level alone is left out, not "pooled" with nothing.
    assert (
        pool_small_levels(pd.Series(["a"] * 5 + ["b"] * 4), "g", 5).isna().tolist()
        == [False] * 5 + [True] * 4
    )


def test_small_codes_left_out_counts_only_what_counts():
    codes = np.array([0, 0, 0, 1, 1, 1, -1])
    counted = np.array([True, True, True, True, True, False, True])
    assert small_codes_left_out(codes, counted, 3).tolist() == [0, 0, 0, -1, -1, -1, -1]
    assert small_codes_left_out(codes, counted, 2).tolist() == codes.tolist()
