"""The command line: one study end to end, and one clear line for a refused input."""

from __future__ import annotations

from conftest import run_args
from pipeline.cli import main


def test_run_one_study_without_dagster(tiny_study, tmp_path, capsys):
    code = main(run_args(tiny_study, tmp_path))
    out = capsys.readouterr().out
    assert code == 0
    assert "visits.csv: 10 rows read, 6 accepted, 4 quarantined" in out
    assert (tmp_path / "reports" / "tiny" / "tables" / "table_2.md").is_file()


def test_bad_spec_is_refused_with_one_line(tiny_study, tmp_path, capsys):
    spec = tiny_study / "study.toml"
    spec.write_text(spec.read_text().replace('test = "wilcoxon"', 'test = "anova"'))
    code = main(["run", "--study", str(tiny_study), "--warehouse", str(tmp_path / "w.duckdb")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "setting 'analysis.test' must be one of wilcoxon, t, auto; got 'anova'" in err
