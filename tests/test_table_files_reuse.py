"""Table files written fast and only when they change.

A table's Word file is set in the process's one copy of python-docx's template and zipped with
the template's members compressed once (:func:`pipeline.render.writers.to_docx`); its bytes are
those python-docx itself saves. A rerun writes a table's five files again only when its key
(:func:`pipeline.render.writers.render_key`) or one of the files changed
(``meta.rendered_tables``)."""

from __future__ import annotations

import io
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline import sources, steps
from pipeline.render import tables, writers
from pipeline.spec.study import load_study
from small_study import full_run


def _python_docx_bytes(document) -> bytes:
    """The document as python-docx's own ``save`` writes it, its members rezipped with the fixed
    dates (as the writers did before they zipped the members themselves)."""
    saved = io.BytesIO()
    document.save(saved)
    out = io.BytesIO()
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zip:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            zip.writestr(fixed, source.read(info.filename))
    return out.getvalue()


def _tables() -> list[writers.Table]:
    wide = pd.DataFrame(
        {f"Column {j} (95% CI)": ["-1.20 (-1.53 to -0.87)"] * 4 for j in range(9)}
    ).assign(**{"Column 0 (95% CI)": ["House-Brackmann grade (observer)"] * 4})
    odd = pd.DataFrame(
        {
            "Name": ["  leading space", "", "tab\there", "line\nbreak", "é ± χ2 <&>"],
            "Value": ["1", " 2 ", "", "3", "=1+2"],
        }
    )
    return [
        writers.Table("Table 9. Wide, landscape", wide, ("a note",), (), ((None, 2, 0),)),
        writers.Table("Table 10. Odd cells", odd, ("a", "b"), (0, 1, 0, 2, 0), ((4, 0, 1),)),
        writers.Table("Table 11. Empty", odd.iloc[:0], ()),
    ]


def test_a_table_file_has_the_bytes_python_docx_saves(tmp_path):
    # Landscape then portrait then landscape again: nothing of one table stays for the next.
    for table in [*_tables(), _tables()[0], _tables()[1]]:
        writers.to_docx(table, tmp_path / "table.docx")
        document = writers.new_docx()
        writers.add_docx_table(document, table)
        assert (tmp_path / "table.docx").read_bytes() == _python_docx_bytes(document), table.title


def test_a_table_set_again_from_its_kept_xml_is_the_same():
    # The report sets each table the tables step set, as read back from publication_tables
    # (every cell as text, every row's indentation): from the XML kept then, with its
    # orientation (a landscape section, then portrait again) as when set from scratch.
    built = _tables()
    read_back = [t for _, t in tables.from_frame(tables.as_frame(list(zip("abc", built))))]

    def report(kept: bool) -> bytes:
        document = writers.new_docx()
        for table in [*built, *read_back]:
            if not kept:
                writers._set_tables.clear()
            writers.add_docx_table(document, table)
            writers.set_orientation(document, False)
            document.add_paragraph()
        return _python_docx_bytes(document)

    writers._set_tables.clear()
    first = report(kept=True)  # each table set from scratch once, then from its kept XML
    assert len(writers._set_tables) == len(built)
    assert first == report(kept=False) == report(kept=True)


def test_a_changed_member_of_the_template_is_compressed_again(tmp_path):
    # The compressed template members are reused only while their bytes are the same.
    for title in ("First", "Second", "First"):
        document = writers.new_docx()
        document.core_properties.title = title  # docProps/core.xml
        document.add_heading(title, level=1)
        writers.save_docx(document, tmp_path / "report.docx")
        assert (tmp_path / "report.docx").read_bytes() == _python_docx_bytes(document)


def test_the_render_key_changes_with_anything_the_files_show():
    table = _tables()[1]
    key = writers.render_key(table, "table_10")
    same = replace(table, body=table.body.copy())
    assert writers.render_key(same, "table_10") == key
    changed = [
        replace(table, title="Table 10. Odd"),
        replace(table, footnotes=("a", "c")),
        replace(table, indent=(0, 1, 0, 1, 0)),
        replace(table, marks=((4, 1, 1),)),
        replace(table, body=table.body.assign(Value=["1", " 2 ", "", "3", "=1+3"])),
        replace(table, body=table.body.assign(Value=[1, 2, 3, 4, 5])),
        replace(table, body=table.body.assign(Value=[1.0, 2.0, 3.0, 4.0, 5.0])),
        replace(table, body=table.body.rename(columns={"Value": "Values"})),
    ]
    keys = {writers.render_key(t, "table_10") for t in changed}
    assert len(keys) == len(changed) and key not in keys
    assert writers.render_key(table, "table_11") != key
    assert writers.render_key(table, "table_10", ("csv",)) != key


def test_the_render_key_reads_every_module_the_writers_run():
    # A module the writers import that the key did not read could change a file unseen.
    closure = sources.closure(["pipeline.render.writers"])
    read = {sources.module_name(sources.ROOT / name) for name in writers.RENDER_MODULES}
    assert closure <= read


@pytest.fixture
def small_run(tmp_path, monkeypatch):
    """A copy of the small study's full run, and the stems write_table is called for."""
    base = full_run()
    shutil.copy2(base / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    shutil.copytree(base / "reports", tmp_path / "reports")
    rendered: list[str] = []
    write_table = writers.write_table

    def recorded(table, folder, stem, *args):
        rendered.append(stem)
        return write_table(table, folder, stem, *args)

    monkeypatch.setattr(writers, "write_table", recorded)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield con, load_study(base / "raw" / "small"), tmp_path / "reports", rendered
    con.close()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_table_is_written_again_only_when_it_or_its_files_changed(small_run):
    con, study, reports, rendered = small_run
    folder = reports / "small" / "tables"
    before = _files(folder)
    stems = [r[0] for r in con.execute(f"SELECT stem FROM {steps.RENDERED_TABLES}").fetchall()]
    assert "table_1" in stems and "table_2" in stems

    # As the full run left them: nothing written.
    steps.write_tables(con, study, reports)
    assert rendered == []

    # A file edited or removed: that table's files written again, as they were.
    (folder / "table_1.md").write_text("edited", encoding="utf-8")
    (folder / "table_2.docx").unlink()
    steps.write_tables(con, study, reports)
    assert sorted(rendered) == ["table_1", "table_2"]
    assert _files(folder) == before

    # A record that cannot be read, or none: every table written again.
    for broken in (
        f"UPDATE {steps.RENDERED_TABLES} SET files = '[[1]]'",
        f"DROP TABLE {steps.RENDERED_TABLES}",
    ):
        rendered.clear()
        con.execute(broken)
        steps.write_tables(con, study, reports)
        assert sorted(rendered) == sorted(stems)
        assert _files(folder) == before
