"""Hostile and careless inputs, run as a new coordinator would (``outcomes validate``, then
``outcomes report`` through Dagster): no identifier written in an export leaves through any
message, table, figure, report, warehouse table or Dagster's own run history.

Each study below carries the same canary identifiers (a name, a phone number, an e-mail, a
street address, a date of birth, a record number, a ZIP code, a note naming a person) in a
place a coordinator could plausibly put them. A refused study must say so in one line
without quoting them; an accepted one must quarantine them without keeping them.
"""

from __future__ import annotations

import re
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest

from assets.cli import main
from conftest import set_report_environment, warehouse_file
from pipeline import warehouse
from specs import study_toml

CANARIES = {
    "name": "Jane Roe",
    "surname": "Roe",
    "phone": "617-555-0142",
    "email": "jroe@example.com",
    "street": "12 Elm Street",
    "dob": "1970-04-12",
    "mrn": "4471203",
    "zip": "02114",
    "note": "Called John Smith",
    "ssn": "123-45-6789",
}

# House-Brackmann by an observer, with etiology as a subgroup.
ETIOLOGY = {
    "subjects": {
        "columns": ["age", "etiology"],
        "levels": {"etiology": ["bells", "hunt", "trauma"]},
    },
    "analysis": {"subgroups": [{"name": "etiology", "column": "etiology"}]},
}
N = 18


def _patients(cells: dict[tuple[int, str], str] | None = None) -> list[list[str]]:
    rows = [["code", "age", "etiology"]]
    rows += [[f"P{i:02d}", str(40 + i), ("bells", "hunt", "trauma")[i % 3]] for i in range(N)]
    for (row, column), value in (cells or {}).items():
        rows[row][rows[0].index(column)] = value
    return rows


def _visits() -> list[list[str]]:
    rng = np.random.default_rng(11)
    rows = [["code", "visit", "day", "hb_observer"]]
    for i in range(N):
        pre = int(rng.integers(3, 7))
        rows += [
            [f"P{i:02d}", "pre", "-7", str(pre)],
            [f"P{i:02d}", "m12", "365", str(max(1, pre - int(rng.integers(0, 3))))],
        ]
    return rows


def _csv(rows: list[list[str]]) -> str:
    return "".join(
        ",".join(f'"{c}"' if ("," in c or '"' in c) else c for c in row) + "\n" for row in rows
    )


def _study(
    raw: Path, name: str, patients: list[list[str]], visits: list[list[str]], *changes: dict
) -> Path:
    folder = raw / name
    folder.mkdir(parents=True)
    (folder / "study.toml").write_text(study_toml(ETIOLOGY, {"study": {"name": name}}, *changes))
    (folder / "patients.csv").write_text(_csv(patients))
    (folder / "visits.csv").write_text(_csv(visits))
    return folder


def _identifiers_row() -> list[str]:
    return [
        CANARIES["mrn"],
        CANARIES["name"],
        CANARIES["phone"],
        CANARIES["dob"],
        CANARIES["email"],
        CANARIES["street"],
    ]


# --- the held-out studies ------------------------------------------------------------------------


def accepted(raw: Path) -> Path:
    """Identifiers where a careless export puts them and no identifier rule can tell them from
    data (a lone name, a bare number): every one of them quarantined by the column's own rule."""
    patients = _patients({(3, "etiology"): CANARIES["name"], (4, "age"): CANARIES["surname"]})
    visits = _visits()
    visits[5][3] = CANARIES["name"]  # a name typed in a score cell
    visits[7][2] = CANARIES["mrn"]  # a record number as a day
    visits[8][3] = CANARIES["zip"]  # a ZIP code as a score
    visits.append(["P99", "pre", "-3", "4"])  # an unknown subject
    visits.append([CANARIES["surname"], "pre", "-3", "4"])  # a surname as the subject code
    return _study(raw, "accepted", patients, visits)


def in_values(raw: Path) -> Path:
    """Identifiers the guard's value rules know, in columns the spec maps."""
    patients = _patients({(4, "age"): CANARIES["street"]})
    visits = _visits()
    visits[6][2] = CANARIES["phone"]
    return _study(raw, "in_values", patients, visits)


def note_as_visit(raw: Path) -> Path:
    """A note typed into the visit column (visit codes are reported, so this cannot pass)."""
    visits = _visits()
    visits[9][1] = f"{CANARIES['note']} re follow-up"
    return _study(raw, "note_as_visit", _patients(), visits)


def name_as_code(raw: Path) -> Path:
    """A patient's name in the subject code column of the subjects file."""
    patients = _patients({(5, "code"): CANARIES["name"]})
    return _study(raw, "name_as_code", patients, _visits())


def headerless(raw: Path) -> Path:
    """A visits file exported without its header row: the first line is data."""
    visits = [_identifiers_row()] + [_identifiers_row()[:1] + ["x"] * 5]
    return _study(raw, "headerless", _patients(), visits)


def wrong_file(raw: Path) -> Path:
    """A spec pointing at the hospital's contact list instead of the visits export."""
    contacts = [["mrn", "patient", "phone", "dob", "email", "address"], _identifiers_row()]
    return _study(raw, "wrong_file", _patients(), contacts)


def note_column(raw: Path) -> Path:
    """A free-text note mapped as a subject column."""
    patients = [
        row + [("note" if i == 0 else f"{CANARIES['note']} re follow-up")]
        for i, row in enumerate(_patients())
    ]
    spec = {"subjects": {"columns": ["age", "etiology", "note"]}}
    return _study(raw, "note_column", patients, _visits(), spec)


def zip_column(raw: Path) -> Path:
    """5-digit ZIP codes under an innocent name."""
    patients = [
        row + [("region" if i == 0 else ("02114", "10027", "60614")[i % 3])]
        for i, row in enumerate(_patients())
    ]
    spec = {"subjects": {"columns": ["age", "etiology", "region"]}}
    return _study(raw, "zip_column", patients, _visits(), spec)


REFUSED = (headerless, wrong_file, in_values, note_column, zip_column, note_as_visit, name_as_code)


# A canary of digits counts only as a number of its own: Dagster's event log is full of
# timestamps and durations ("1764769322114...") that hold "02114" by chance.
_CANARY_PATTERNS = {
    k: re.compile(rf"(?<!\d){re.escape(v)}(?!\d)" if v.isdigit() else re.escape(v))
    for k, v in CANARIES.items()
}


def _leaks(text: str) -> list[str]:
    return [k for k, pattern in _CANARY_PATTERNS.items() if pattern.search(text)]


def _file_text(path: Path) -> str:
    if path.suffix in (".docx", ".xlsx"):
        with zipfile.ZipFile(path) as z:
            return "".join(
                z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml")
            )
    text = path.read_bytes().decode("utf-8", "replace")
    if path.suffix == ".html":
        # The report's figures are PNGs in base64, as in the DOCX (whose images are not read
        # either): their letters can spell a short canary ("Roe") by chance. The figures' text
        # is checked in their SVG files, where it is kept as text.
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    return text


def _tree_leaks(folder: Path) -> dict[str, list[str]]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file():
            text = _file_text(path)
            if path.suffix == ".db" or path.name.endswith(".db-wal"):
                text += _sqlite_text(path)
            if _leaks(text):
                found[str(path.relative_to(folder))] = _leaks(text)
    return found


def _sqlite_text(path: Path) -> str:
    """Every text and blob cell of a SQLite database (Dagster's run and event-log storage)."""
    out = []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return ""
    try:
        for (table,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        ).fetchall():
            for row in con.execute(f'SELECT * FROM "{table}"'):
                out += [
                    c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in row
                ]
    except sqlite3.Error:
        pass
    finally:
        con.close()
    return "\n".join(out)


def _warehouse_leaks(path: Path) -> dict[str, list[str]]:
    if not path.exists():
        return {}
    # As the product opens it: a file named like its study (accepted.duckdb) would otherwise make
    # "accepted.quarantine" ambiguous between the file's catalog and the study's schema.
    con = warehouse.connect(path, read_only=True)
    found = {}
    try:
        for schema, table in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database()"
        ).fetchall():
            rows = con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
            text = "\n".join(str(c) for row in rows for c in row)
            if _leaks(text):
                found[f"{schema}.{table}"] = _leaks(text)
    finally:
        con.close()
    return found


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    set_report_environment(monkeypatch, tmp_path / "raw", tmp_path)
    return tmp_path


def _outcomes(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("make", REFUSED, ids=[m.__name__ for m in REFUSED])
def test_a_refused_study_says_so_in_one_line_without_quoting_the_export(workspace, capsys, make):
    folder = make(workspace / "raw")
    code, printed = _outcomes(capsys, "validate", str(folder))
    assert code == 2 and _leaks(printed) == [], printed
    code, printed = _outcomes(capsys, "report", "--study", folder.name)
    assert code == 2, printed
    assert printed.startswith("error: ") and printed.count("\n") == 1, printed
    assert _leaks(printed) == [], printed
    assert _tree_leaks(workspace / "dagster") == {}
    assert _warehouse_leaks(warehouse_file(workspace, folder.name)) == {}
    assert _tree_leaks(workspace / "reports") == {} if (workspace / "reports").exists() else True


def test_an_accepted_study_quarantines_every_identifier_and_keeps_none(workspace, capsys):
    folder = accepted(workspace / "raw")
    code, printed = _outcomes(capsys, "validate", str(folder))
    assert code == 1 and _leaks(printed) == [], printed  # rows would be quarantined
    code, printed = _outcomes(capsys, "report", "--study", folder.name)
    assert code == 0, printed
    assert _leaks(printed) == [], printed
    assert _warehouse_leaks(warehouse_file(workspace, "accepted")) == {}
    assert _tree_leaks(workspace / "reports") == {}
    assert _tree_leaks(workspace / "dagster") == {}
    con = warehouse.connect(warehouse_file(workspace, "accepted"), read_only=True)
    try:
        quarantined = con.execute(
            'SELECT line, "column" FROM accepted.quarantine ORDER BY ALL'
        ).fetchall()
    finally:
        con.close()
    # Each planted value is accounted for in the quarantine, by file line and column.
    assert {
        (4, "etiology"),
        (5, "age"),
        (6, "hb_observer"),
        (8, "day"),
        (9, "hb_observer"),
        (38, "code"),
        (39, "code"),
    } <= set(quarantined)
