"""What a reader sees names things in the study's words: no column name, level code, subgroup
key, scoring-version name or model formula in any table, figure text, Methods sentence or
report (HTML and Word) of the demo study; and the Methods paragraph describes exactly the
analyses whose results the report shows."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import docx
import duckdb
import pandas as pd
import pytest
from PIL import Image

from pipeline import paths, steps
from pipeline.render import figures, report, tables
from pipeline.render.writers import Table
from pipeline.spec.study import load_study

DEMO = paths.RAW_DATA_DIR / "demo"
# What only a program should see: snake_case names (etiology: bells_palsy, house_brackmann,
# months_since_onset), a scoring version named as the code names it, a model formula, a path to
# this repository's documentation (docs/instruments.md).
INTERNAL = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b|\bversion |~|\bdocs/")
# The keys of figure panels and drawing arguments that are printed on the figure.
SHOWN_KEYS = {"title", "ylabel", "xlabel", "a_label", "b_label", "pre_label", "post_label"}


def internal_names(texts) -> list[str]:
    """Each text holding an internal name, with the name found (empty when none)."""
    return [f"{m.group(0)!r} in {t!r}" for t in texts if (m := INTERNAL.search(str(t)))]


def visit_codes_shown(texts, codes) -> list[str]:
    """Each text that is a visit code as the export writes it (a table cell "m12", "last"):
    codes such as "pre" and "m1" are no snake_case name, so INTERNAL does not see them."""
    return [repr(t) for t in texts if str(t).strip() in codes]


def _cells(table: Table) -> list[str]:
    return [str(v) for v in table.body.to_numpy().ravel()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo study analysed, its tables written, its figures specified (not drawn: their
    text is in the specs) and its report content assembled as write_report assembles it."""
    folder = tmp_path_factory.mktemp("reader")
    study = load_study(DEMO)
    con = duckdb.connect()
    steps.ingest(con, study, folder)
    steps.score(con, study)
    steps.pair(con, study)
    results = steps.analyse(con, study, folder)
    steps.secondary_analyses(con, study, folder)
    steps.write_tables(con, study, folder)
    built = tables.from_frame(con.execute("SELECT * FROM demo.publication_tables").df())
    specs = figures.study_figures(con, study)
    # What write_tables builds the tables from, to build them again under other labels.
    frames = {
        "paired_tests": con.execute("SELECT * FROM demo.paired_tests WHERE \"group\" = 'all'").df(),
        "subjects": con.execute("SELECT * FROM demo.subjects").df(),
        "visits": con.execute("SELECT subject, day FROM demo.visits").df(),
        "pairing_summary": con.execute("SELECT * FROM demo.pairing_summary").df(),
        "subjects_file": con.execute(
            "SELECT * FROM demo.source_files WHERE file = 'patients.csv'"
        ).df(),
        # The result tables the demo's plan writes (not, e.g., binary outcomes by subgroup).
        "results": {
            name: con.execute(f"SELECT * FROM demo.{name}").df()
            for name in tables.RESULT_TABLES
            if con.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = 'demo' AND table_name = ?",
                [name],
            ).fetchone()[0]
        },
    }
    visit_codes = {v for (v,) in con.execute("SELECT DISTINCT visit FROM demo.visits").fetchall()}
    con.close()
    provenance = {
        "python": "3.11.7",
        "packages": {
            "facial-outcomes": "0.1.0",
            "duckdb": "2.0.1",
            "pandas": "2.3.3",
            "numpy": "2.4.6",
            "scipy": "1.17.1",
            "statsmodels": "0.15.0",
            "matplotlib": "3.11.2",
            "seaborn": "0.13.2",
            "dagster": "1.13.27",
        },
    }
    methods = report.methods_text(
        study, results, provenance, tables=built, figures=[s.stem for s in specs]
    )
    # The report is assembled from the figures' captions; a blank picture stands in for each
    # drawing, whose text is checked from its spec below.
    blank = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(blank, format="PNG")
    content = report.ReportContent(
        study, built, [(s, blank.getvalue()) for s in specs], methods, provenance
    )
    return {
        "study": study,
        "results": results,
        "tables": built,
        "specs": specs,
        "methods": methods,
        "content": content,
        "folder": folder / "demo",
        "provenance": provenance,
        "frames": frames,
        "visit_codes": visit_codes,
    }


def _figure_texts(spec) -> list[str]:
    """The text a figure prints, read from its drawing's arguments: titles and axis labels of
    its panels, and the row labels of a forest plot."""
    found = []

    def walk(value, key=""):
        if isinstance(value, str):
            if key in SHOWN_KEYS:
                found.append(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, key)
        elif isinstance(value, pd.DataFrame) and "label" in value:
            found.extend(value["label"].astype(str))

    walk(list(spec.make.args))
    walk(spec.make.kwargs)
    return [spec.caption, *found]


def test_no_internal_name_in_the_tables(demo):
    assert {"pre", "m1", "m12", "last"} <= demo["visit_codes"]
    for stem, table in demo["tables"]:
        texts = [table.title, *table.body.columns, *table.footnotes]
        texts += _cells(table)
        assert internal_names(texts) == [], stem
        assert visit_codes_shown(texts, demo["visit_codes"]) == [], stem
    markdown = sorted((demo["folder"] / "tables").glob("*.md"))
    assert len(markdown) == len(demo["tables"])
    for path in markdown:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert internal_names(lines) == [], path.name
        cells = [cell for line in lines for cell in line.split("|")]
        assert visit_codes_shown(cells, demo["visit_codes"]) == [], path.name


def test_a_visit_code_in_a_table_is_caught(demo):
    # The model's tidy rows as they are, without the spec's visit labels: the check above sees
    # the codes the tables must not show.
    rows = demo["frames"]["results"]["visit_estimates"][["visit", "estimate"]]
    raw = tables.tidy_table(rows, "eTable. Model-estimated means per visit")
    assert "'m12'" in visit_codes_shown(_cells(raw), demo["visit_codes"])


def test_visits_by_their_labels_the_last_follow_up_after_the_scheduled_visits(demo):
    shown = dict(demo["tables"])["etable_visit_estimates"]
    first = shown.body[shown.body["Outcome"] == "House-Brackmann grade (observer)"]
    # The model's order is by median day, which puts the last follow-up (day 312) before the
    # 12-month visit (day 370.5); the table lists it after the scheduled visits and says why.
    assert list(first["Visit"]) == [
        "Before surgery",
        "1 month",
        "3 months",
        "6 months",
        "12 months",
        "Last follow-up",
    ]
    # Median days to the half day they can be (days are whole).
    assert list(first["Median day"]) == ["-28.0", "30.0", "91.0", "179.5", "370.5", "312.0"]
    assert shown.footnotes[0].startswith("Last follow-up: the visit recorded as a patient's last")
    # The footnote's letter stands on every "Last follow-up" cell, and nowhere else.
    visits = list(shown.body["Visit"])
    assert set(shown.marks) == {
        (i, 1, 0) for i, visit in enumerate(visits) if visit == "Last follow-up"
    }
    # Without [visits.labels], each visit says what it is, the last follow-up by its own name.
    bare = replace(demo["study"], visit_labels=())
    table = dict(tables.publication_tables(bare, **demo["frames"]))["etable_visit_estimates"]
    assert list(table.body["Visit"][:6]) == [
        "Visit pre",
        "Visit m1",
        "Visit m3",
        "Visit m6",
        "Visit m12",
        "Last follow-up",
    ]
    assert table.footnotes[0].startswith("Last follow-up: ")


def test_no_internal_name_in_the_figures(demo):
    assert {s.stem for s in demo["specs"]} >= {"subgroup_forest", "rater_agreement"}
    for spec in demo["specs"]:
        assert internal_names(_figure_texts(spec)) == [], spec.stem
    forest = next(s for s in demo["specs"] if s.stem == "subgroup_forest")
    assert "Etiology: Bell palsy" in _figure_texts(forest)


def test_no_internal_name_in_the_report_html_and_word(demo, tmp_path):
    page = report.report_html(demo["content"])
    # The page's text as a reader sees it (no markup, no embedded pictures), before the
    # provenance table, which names files and packages for the record.
    body = page.split("<h2>Provenance</h2>")[0]
    text = re.sub(r"<style>.*?</style>|<[^>]+>", " ", body, flags=re.S)
    assert internal_names(text.splitlines()) == []
    document = docx.Document(str(report.report_docx(demo["content"], tmp_path / "r.docx")))
    words = [p.text for p in document.paragraphs]
    words += [c.text for t in document.tables for row in t.rows for c in row.cells]
    provenance = words.index("Provenance") if "Provenance" in words else len(words)
    assert internal_names(words[:provenance]) == []
    cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
    assert visit_codes_shown(cells, demo["visit_codes"]) == []


def test_labels_where_the_reader_sees_them(demo):
    shown = dict(demo["tables"])
    subgroups = shown["table_3_subgroups"].body
    assert {"Etiology: Bell palsy", "Concurrent facelift: Yes", "Branches transected > 6"} <= set(
        subgroups["Outcome and subgroup"]
    )
    assert "Concurrent facelift" in set(shown["table_3_ancova"].body["Outcome, subgroup and level"])
    agreement = shown["etable_reliability"]
    first = agreement.body["Outcome and visit"]
    headings = {v for v, level in zip(first, agreement.indent) if level == 0}
    assert headings == {"House-Brackmann grade, observer vs surgeon"}
    assert {v.strip() for v, level in zip(first, agreement.indent) if level} == {
        "Before surgery",
        "12 months",
    }
    outcomes = list(shown["table_2"].body["Outcome"])
    assert "eFACE total score" in outcomes and "SAQ total" in outcomes
    # The scoring version of each score is said once, in Table 2's footnote.
    assert any(
        n.startswith("Scoring versions") and "SAQ, raw sum 9-45" in n
        for n in shown["table_2"].footnotes
    )
    table_1 = shown["table_1"].body
    assert {"Age, y, median [IQR]", "Left", "Prior botulinum toxin, No. (%)"} <= set(
        table_1["Characteristic"]
    )
    # A single-arm cohort's Table 1 has one column; its categories' levels are rows.
    assert "Bell palsy" in set(table_1["Characteristic"].str.strip())


# --- Methods: every analysis the report shows, and no other ----------------------------------

EVERY_KIND = {
    "Wilcoxon signed-rank test": "paired test",
    "complete-case": "missing data",
    "P values are two-sided; P < .05 was considered statistically significant": "α",
    "The primary outcome was House-Brackmann grade (observer)": "primary outcome",
    "Holm method": "multiplicity",
    "95% CI": "CI level",
    "latest pre-operative (day ≤ 0)": "pairing window",
    "Cohen dz": "effect size",
    "subgroup analyses (Table 3)": "subgroup tests",
    "analysis of covariance (ANCOVA)": "ANCOVA",
    "time since onset": "ANCOVA covariate",
    "Clopper-Pearson": "responders",
    "intraclass correlation": "ICC",
    "Cohen κ with quadratic weights": "kappa",
    "Bland-Altman": "Bland-Altman",
    "linear mixed model": "mixed model",
    "Each item of an instrument (eTables ": "item-level change",
    "the recorded value was compared as well": "raw values of folded item scores",
}
SOFTWARE = ("Python 3.11.7", "pandas 2.3.3", "SciPy 1.17.1", "statsmodels 0.15.0")
SOFTWARE += ("DuckDB 2.0.1", "matplotlib 3.11.2", "seaborn 0.13.2", "Dagster 1.13.27")


def test_methods_name_every_analysis_the_demo_report_shows(demo):
    text = " ".join(demo["methods"])
    missing = [kind for phrase, kind in EVERY_KIND.items() if phrase not in text]
    assert missing == []
    assert [s for s in SOFTWARE if s not in text] == []
    assert "AMA style" not in text and "α = " not in text
    assert internal_names(demo["methods"]) == []


def test_methods_name_no_analysis_the_report_does_not_show(demo):
    # The same study with only Tables 1 and 2 and the patient flow, and no figure.
    kept = [(s, t) for s, t in demo["tables"] if s in ("table_1", "table_2", "etable_flow")]
    text = " ".join(
        report.methods_text(
            demo["study"], demo["results"], demo["provenance"], tables=kept, figures=[]
        )
    )
    for phrase in (
        "subgroup",
        "ANCOVA",
        "Clopper-Pearson",
        "intraclass",
        "κ",
        "Bland-Altman",
        "mixed model",
        "McNemar",
        "matplotlib",
    ):
        assert phrase not in text, phrase
    assert "Wilcoxon signed-rank test" in text and "eTable" in text


def test_methods_name_direction_of_change_and_correlation_when_shown(demo):
    extra = [
        ("etable_change_direction", Table("eTable 6. Direction of change", pd.DataFrame())),
        ("etable_correlation", Table("eTable 7. Baseline and change", pd.DataFrame())),
    ]
    text = " ".join(
        report.methods_text(
            demo["study"], demo["results"], demo["provenance"], tables=extra, figures=[]
        )
    )
    assert "McNemar" in text and "sign test" in text
    # The graded outcomes of the plan get the Bowker test, named by their labels.
    assert "Bowker test" in text and "House-Brackmann grade (surgeon)" in text
    assert "Pearson and Spearman" in text


def test_methods_name_table_1_comparisons_only_when_table_1_compares_groups(demo):
    def methods(study):
        shown = tables.publication_tables(study, **demo["frames"])
        return " ".join(report.methods_text(study, demo["results"], demo["provenance"], shown))

    assert "Kruskal-Wallis" not in methods(demo["study"])
    assert "Kruskal-Wallis" in methods(replace(demo["study"], table_1_by="etiology"))


def test_methods_say_which_outcome_each_test_was_used_for(demo):
    results = demo["results"].copy()
    results.loc[results["outcome"] == "sunnybrook", "test_used"] = "paired t"
    text = " ".join(report.methods_text(demo["study"], results, demo["provenance"]))
    assert "the Wilcoxon signed-rank test for House-Brackmann grade (observer)" in text
    assert "the paired t test for Sunnybrook composite" in text


def test_the_bundled_spec_labels_every_column_it_reports():
    study = load_study(DEMO)
    labelled = dict(study.subject_labels)
    assert set(labelled) == set(study.subject_columns)
    assert Path(study.spec_path).read_text(encoding="utf-8").count("[subjects.labels]") == 1


def test_the_spec_is_the_one_source_of_labels(demo):
    # The same results under other labels: every table says what the spec says.
    study = demo["study"]
    relabelled = replace(
        study,
        subject_labels=(("etiology", "Cause of paralysis"), ("facelift", "Facelift")),
        subject_units=(("age", "years"),),
        subject_levels=(
            *((c, levels) for c, levels in study.subject_levels if c != "etiology"),
            ("etiology", (("trauma", "Injury"), ("bells_palsy", "Idiopathic (Bell) palsy"))),
        ),
        table_1_by="etiology",
    )
    shown = dict(tables.publication_tables(relabelled, **demo["frames"]))
    table_1 = shown["table_1"]
    assert table_1.title == "Table 1. Baseline characteristics overall and by cause of paralysis"
    # The levels the spec labels by their labels, the others made readable.
    assert {c.split(" (n = ")[0] for c in table_1.body.columns[2:-1]} == {
        "Injury",
        "Idiopathic (Bell) palsy",
        "Ramsay hunt",
        "Acoustic neuroma",
    }
    characteristics = set(table_1.body["Characteristic"])
    assert {
        "Age, years, median [IQR]",
        "Facelift, No. (%)",
        "Months since onset, median [IQR]",
    } <= (characteristics)
    subgroups = set(shown["table_3_subgroups"].body["Outcome and subgroup"])
    assert {"Cause of paralysis: Idiopathic (Bell) palsy", "Facelift: Yes"} <= subgroups


def test_phrases_shared_by_tables_and_methods():
    from pipeline.render import labels

    study = load_study(DEMO)
    assert labels.in_sentence("Time since onset") == "time since onset"
    assert labels.in_sentence("SAQ total") == "SAQ total"
    assert labels.in_sentence("House-Brackmann grade") == "House-Brackmann grade"
    # The formula the between-groups statistics write for the ANCOVA they fit.
    assert (
        labels.ancova_adjustment(study, "post ~ pre + months_since_onset + group")
        == "Adjusted for the before value and time since onset"
    )
    assert labels.ancova_adjustment(study, "post ~ pre + group") == "Adjusted for the before value"
    assert labels.agreement_statistic("weighted kappa (linear)", "a vs b") == (
        "Weighted κ, linear weights"
    )
    assert labels.agreement_statistic("ICC2", "single random raters") == (
        "ICC2, single random raters"
    )
    assert labels.score_label(study, "botox_units", "value") == "Botulinum toxin dose"
    assert labels.score_label(study, "eface", "total") == "eFACE total score"
