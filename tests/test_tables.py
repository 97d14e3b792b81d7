"""Rendering rules for publication tables (AMA Manual of Style, 11th ed., P values)."""

import math
import re

import numpy as np
import pytest

from pipeline.render.style import AMA

format_p, mean_sd, estimate_ci = AMA.p, AMA.mean_sd, AMA.estimate_ci


@pytest.mark.parametrize(
    "p, text",
    [
        (0.00001, "<.001"),
        (0.0009999, "<.001"),
        (0.001, ".001"),
        (0.0042, ".004"),
        (0.00951, ".01"),
        (0.00949, ".009"),
        (0.03, ".03"),
        (0.049, ".05"),
        (0.3, ".30"),
        (0.994, ".99"),
        (0.996, ">.99"),
        (1.0, ">.99"),
        (math.nan, "NA"),
    ],
)
def test_format_p(p, text):
    assert format_p(p) == text


def test_numbers_round_only_when_rendered():
    assert mean_sd(3.86, 0.849) == "3.9 ± 0.8"
    assert estimate_ci(-1.04, -1.31, -0.77) == "-1.0 (-1.3 to -0.8)"
    # a change that rounds to zero is not shown as "-0.0"
    assert estimate_ci(-0.04, -0.5, 0.4) == "0.0 (-0.5 to 0.4)"
    # an estimate without limits says so in words, never "NA to NA"
    assert estimate_ci(-1.5, math.nan, math.nan) == "-1.5 (CI not estimable)"
    assert estimate_ci(math.nan, math.nan, math.nan) == "NA (NA to NA)"


# --------------------------------------------------------------------------- Table 1

import docx  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.render import tables, writers  # noqa: E402
from pipeline.statistics import baseline  # noqa: E402

SUBJECTS = pd.DataFrame(
    {
        "subject": ["S1", "S2", "S3", "S4", "S5"],
        "age": ["40", "50", "60", "90+", "30"],
        "sex": ["F", "F", "M", "F", "M"],
        "etiology": ["bells_palsy", "bells_palsy", "trauma", "trauma", "bells_palsy"],
        "prior_botox": ["1", "0", "1", "", "1"],
        "branches_transected": ["6", "7", "8", "5", "9"],
    }
)
# Days of each subject's visits; S5 has no visit after surgery.
VISITS = pd.DataFrame(
    {"subject": ["S1", "S1", "S2", "S3", "S4", "S5"], "day": [-5, 365, 180, 730, 90, -1]}
)


@pytest.fixture
def tidy_by_etiology():
    follow_up = baseline.follow_up_months(VISITS)
    return baseline.baseline_characteristics(SUBJECTS, follow_up, by="etiology")


def _row(tidy, variable, group, level=""):
    rows = tidy[
        (tidy["variable"] == variable) & (tidy["group"] == group) & (tidy["level"] == level)
    ]
    assert len(rows) == 1
    return rows.iloc[0]


def test_table_1_numbers_by_hand(tidy_by_etiology):
    tidy = tidy_by_etiology
    # Age 40, 50, 60, 90+ (counted as 90), 30: top-coded, so median [IQR] whatever the skew.
    # Sorted 30 40 50 60 90; R type-7 quartiles at positions 1 + (5 - 1) * p: Q1 = 40, Q3 = 60.
    age = _row(tidy, "age", "Overall")
    assert (age["statistic"], age["median"], age["q1"], age["q3"], age["top_coded"]) == (
        "median_iqr",
        50,
        40,
        60,
        1,
    )
    # Trauma: 60 and 90 -> median 75, Q1 = 60 + 0.25 * 30 = 67.5, Q3 = 82.5.
    trauma = _row(tidy, "age", "trauma")
    assert (trauma["median"], trauma["q1"], trauma["q3"]) == (75, 67.5, 82.5)
    # Branches 6 7 8 5 9: skewness 0 -> mean ± SD = 7 ± sqrt(10 / 4) = 7 ± 1.5811.
    branches = _row(tidy, "branches_transected", "Overall")
    assert branches["statistic"] == "mean_sd"
    assert branches["mean"] == 7 and branches["sd"] == pytest.approx(math.sqrt(2.5), rel=1e-12)
    # Prior botulinum toxin: 3 of 4 recorded (75%), 1 missing; trauma 1 of 1, 1 missing.
    botox = _row(tidy, "prior_botox", "Overall", "1")
    assert (botox["count"], botox["n"], botox["missing"], botox["percent"]) == (3, 4, 1, 75)
    assert (_row(tidy, "prior_botox", "trauma", "1")[["count", "n", "missing"]] == [1, 1, 1]).all()
    # Sex: 3 female of 5 overall; 2 of 3 with Bell palsy.
    assert _row(tidy, "sex", "Overall", "F")["count"] == 3
    assert _row(tidy, "sex", "bells_palsy", "F")["percent"] == pytest.approx(200 / 3)
    # Follow-up: last day after surgery / 30.4375: S1 365, S2 180, S3 730, S4 90; S5 none.
    follow = _row(tidy, "follow_up_months", "Overall")
    assert follow["n"] == 4 and follow["missing"] == 1
    assert follow["maximum"] == pytest.approx(730 / 30.4375)


def test_table_1_group_p_values_match_r(tidy_by_etiology):
    tidy = tidy_by_etiology.drop_duplicates("variable").set_index("variable")
    # R 4.2.2: kruskal.test(list(c(40, 50, 30), c(60, 90)))$p.value
    assert tidy.loc["age", "p_value"] == pytest.approx(0.083264516663550558, rel=1e-12)
    assert tidy.loc["age", "test"] == "Kruskal-Wallis test"
    # R: fisher.test(matrix(c(2, 1, 1, 1), 2))$p.value (sex by etiology, expected counts < 5)
    assert tidy.loc["sex", "p_value"] == pytest.approx(1.0)
    assert tidy.loc["sex", "test"] == "Fisher exact test"


def test_group_p_tests_match_r():
    # R: oneway.test(x ~ g, var.equal = TRUE) with x = c(6, 7, 8, 5, 9, 12), g = c(1, 1, 1, 2, 2, 2)
    p, test = baseline.group_p(
        "continuous", "mean_sd", [np.array([6, 7, 8.0]), np.array([5, 9, 12.0])], None
    )
    assert (
        p == pytest.approx(0.47342736525713763, rel=1e-12)
        and test == "one-way analysis of variance"
    )
    # R: chisq.test(matrix(c(20, 10, 15, 25), 2), correct = FALSE)$p.value
    p, test = baseline.group_p("categorical", "", None, np.array([[20, 15], [10, 25]]))
    assert p == pytest.approx(0.015725299754505352, rel=1e-12) and test == "Pearson χ2 test"


def test_table_1_rendering(tidy_by_etiology):
    sizes = {"Overall": 5, "bells_palsy": 3, "trauma": 2}
    table = tables.table_1(
        tidy_by_etiology,
        sizes,
        by_label="etiology",
        group_labels={"bells_palsy": "Bell palsy", "trauma": "Trauma"},
        synthetic=True,
    )
    body = table.body.set_index("Characteristic")
    assert list(body.columns) == ["Overall (n = 5)", "Bell palsy (n = 3)", "Trauma (n = 2)", "P"]
    assert body.loc["Age, y, median [IQR]"].tolist()[:3] == [
        "50 [40-60]",
        "40 [35-45]",
        "75 [68-83]",
    ]
    assert body.loc["Branches transected, No., mean ± SD", "Overall (n = 5)"] == "7.0 ± 1.6"
    # N < 100: whole percentages (AMA).
    assert body.loc["Prior botulinum toxin, No. (%)"].tolist()[:3] == [
        "3 (75)",
        "2 (67)",
        "1 (100)",
    ]
    assert body.loc["Female", "Overall (n = 5)"] == "3 (60)"
    assert "Missing, No." in body.index
    assert any("90+" in note for note in table.footnotes)
    assert any("Kruskal-Wallis test for Age" in note for note in table.footnotes)
    assert table.indent[list(body.index).index("Female")] == 1


def test_unknown_text_in_a_number_column_is_one_clear_message():
    bad = SUBJECTS.assign(age=["40", "fifty", "60", "90+", "30"])
    with pytest.raises(ValueError, match="subjects column 'age': 'fifty' is not a number"):
        baseline.baseline_characteristics(bad)


def test_percent_digits_follow_ama():
    assert AMA.percent_digits(99) == 0 and AMA.percent_digits(100) == 1
    assert AMA.count_percent(1, 3, 0) == "1 (33)" and AMA.count_percent(1, 300, 1) == "1 (0.3)"


# --------------------------------------------------------------------------- Table 2 extras and
# renderers

RESULTS = pd.DataFrame(
    {
        "outcome": ["hb", "sb"],
        "score": ["grade", "composite"],
        "pre_visit": ["pre", "pre"],
        "post_visit": ["post", "post"],
        "n_pairs": [10, 9],
        "pre_mean": [4.0, 50.0],
        "pre_sd": [1.0, 20.0],
        "post_mean": [3.0, 60.0],
        "post_sd": [1.0, 21.0],
        "mean_diff": [-1.0, 10.0],
        "ci_low": [-1.5, 2.0],
        "ci_high": [-0.5, 18.0],
        "p_used": [0.0004, 0.03],
        "test_used": ["Wilcoxon signed-rank"] * 2,
        "note": ["", ""],
        "p_adj": [0.0008, 0.03],
        "p_adj_method": ["holm", "holm"],
        "rank_biserial": [-0.9, 0.6],
        "rank_biserial_ci_low": [-0.97, 0.1],
        "rank_biserial_ci_high": [-0.7, 0.85],
    }
)
OUTCOMES = pd.DataFrame(
    {
        "outcome": ["hb", "sb"],
        "score": ["grade", "composite"],
        "label": ["House-Brackmann grade", "Sunnybrook composite"],
        "higher_is_better": [False, True],
    }
)


def test_table_2_adds_adjusted_p_and_effect_size_when_present():
    table = tables.table_2(RESULTS, OUTCOMES, conf_level=0.95)
    assert table.body["Adjusted P"].tolist() == ["<.001", ".03"]
    assert table.body["Rank-biserial r"].tolist() == [
        "-0.90 (-0.97 to -0.70)",
        "0.60 (0.10 to 0.85)",
    ]
    assert any("holm" in note for note in table.footnotes)
    plain = tables.table_2(
        RESULTS.drop(columns=["p_adj", "rank_biserial"]), OUTCOMES, conf_level=0.95
    )
    assert "Adjusted P" not in plain.body and "Rank-biserial r" not in plain.body


# Hodges-Lehmann columns as paired_tests gives them (numbers made up for the rendering rules).
WITH_HL = RESULTS.assign(
    hodges_lehmann=[-1.0000213, 9.5],
    hl_ci_low=[-1.4999831, 1.25],
    hl_ci_high=[-0.9999712, 17.75],
    hl_conf_level=[0.95, 0.95],
)


def test_table_2_change_is_the_estimate_of_the_test():
    # Wilcoxon rows: the Hodges-Lehmann median change and its CI, not the t-based mean change.
    table = tables.table_2(WITH_HL, OUTCOMES, conf_level=0.95)
    heading = "Median change (Hodges-Lehmann, 95% CI)"
    assert table.body[heading].tolist() == ["-1.0 (-1.5 to -1.0)", "9.5 (1.3 to 17.8)"]
    assert not any("Mean change" in c for c in table.body.columns)
    assert any(n.startswith("Median change: the Hodges-Lehmann estimate") for n in table.footnotes)
    assert not any("t-based" in n for n in table.footnotes)
    # Paired t rows: the mean change.
    t_rows = WITH_HL.assign(test_used="paired t")
    table = tables.table_2(t_rows, OUTCOMES, conf_level=0.95)
    assert table.body["Mean change (95% CI)"].tolist() == [
        "-1.0 (-1.5 to -0.5)",
        "10.0 (2.0 to 18.0)",
    ]
    assert not any("Hodges" in c for c in table.body.columns)
    assert any("t-based 95% CI" in n for n in table.footnotes)
    # Mixed: two columns, each row in the column of its test, a footnote saying so.
    mixed = WITH_HL.assign(test_used=["paired t", "Wilcoxon signed-rank"])
    table = tables.table_2(mixed, OUTCOMES, conf_level=0.90)
    assert table.body["Mean change (90% CI)"].tolist() == ["-1.0 (-1.5 to -0.5)", ""]
    assert table.body["Median change (Hodges-Lehmann, 90% CI)"].tolist() == [
        "",
        "9.5 (1.3 to 17.8)",
    ]
    assert any(
        n.startswith("Each outcome's change is given with the estimate of its test")
        for n in table.footnotes
    )


def test_a_footnote_keeps_its_marks_whatever_its_words():
    """Marks are attached where a builder adds its footnote, not found again by its wording:
    another journal's words (a CI without limits, the mean and SD) move no mark."""
    from dataclasses import replace

    few = WITH_HL.assign(hl_conf_level=[0.75, 0.95])
    words = replace(AMA, no_ci="no 95% CI", mean_sd_label="mean (SD)")
    ama, other = (tables.table_2(few, OUTCOMES, conf_level=0.95, style=s) for s in (AMA, words))
    assert ama.marks == other.marks and len(ama.marks) >= 6
    assert other.footnotes[2].startswith("No 95% CI: with so few non-zero changes")
    assert other.mark_of(0, 4) == "c" and "Before, mean (SD)" in other.body.columns
    assert other.mark_of(None, 2) == other.mark_of(None, 3) == "a"  # before and after
    # A mark on a heading the table lacks is the builder's error, not a mark silently dropped.
    notes = tables._Footnotes()
    notes.add("P values are two-sided.", (None, "P value"))
    with pytest.raises(ValueError, match="P value"):
        notes.marks(pd.DataFrame({"Outcome": ["x"], "P": [".04"]}))


def test_table_2_hides_a_hodges_lehmann_interval_below_the_level():
    # R lowered the level (3 non-zero differences): the estimate and words, no "NA" limits, the
    # footnote saying why marked on that cell alone; the row's note as a footnote; the same
    # note on a paired t row is not shown (its table shows no Hodges-Lehmann estimate).
    note = (
        "Hodges-Lehmann 95% CI not achievable with 3 non-zero differences (R gives a 75% interval)"
    )
    few = WITH_HL.assign(hl_conf_level=[0.75, 0.95], note=[note, ""])
    table = tables.table_2(few, OUTCOMES, conf_level=0.95)
    heading = "Median change (Hodges-Lehmann, 95% CI)"
    assert table.body[heading].tolist() == ["-1.0 (CI not estimable)", "9.5 (1.3 to 17.8)"]
    column = list(table.body.columns).index(heading)
    why = [table.footnotes[k] for i, j, k in table.marks if i is not None and j == column]
    assert [(i, j) for i, j, _ in table.marks if i is not None and j > 0] == [(0, column)]
    assert why == [
        "CI not estimable: with so few non-zero changes the 95% Hodges-Lehmann CI of a median "
        "change cannot be achieved (R's wilcox.test would give one at a lower level)."
    ]
    assert f"House-Brackmann grade: {note}" in table.footnotes
    table = tables.table_2(few.assign(test_used="paired t"), OUTCOMES, conf_level=0.95)
    assert not any("Hodges" in n for n in table.footnotes)


def _table() -> writers.Table:
    return writers.Table(
        "Table 9. A & B",
        pd.DataFrame(
            {
                "Characteristic": ["Sex, No. (%)", "Female"],
                "Overall (n = 5)": ["", "3 (60)"],
                "P": [".04", ""],
            }
        ),
        ("P from the Pearson χ2 test; 50% ± 2 and a_b.",),
        (0, 1),
    )


def test_renderers(tmp_path):
    written = writers.write_table(_table(), tmp_path, "t")
    assert [p.suffix for p in written] == [".csv", ".md", ".html", ".tex", ".docx"]
    csv = (tmp_path / "t.csv").read_text()
    assert "  Female,3 (60)," in csv and csv.endswith(
        "# P from the Pearson χ2 test; 50% ± 2 and a_b.\n"
    )
    md = (tmp_path / "t.md").read_text()
    assert "\u00a0Female" in md and "a. P from" in md
    page = (tmp_path / "t.html").read_text()
    assert "<caption>Table 9. A &amp; B</caption>" in page and "padding-left:1.2em" in page
    tex = (tmp_path / "t.tex").read_text()
    for piece in (
        "\\toprule",
        "\\midrule",
        "\\bottomrule",
        "Table 9. A \\& B",
        "\\quad Female",
        "50\\% $\\pm$ 2 and a\\_b",
        "$\\chi$2",
    ):
        assert piece in tex


def test_docx_is_a_real_word_table(tmp_path):
    path = writers.to_docx(_table(), tmp_path / "t.docx")
    document = docx.Document(str(path))
    assert len(document.tables) == 1
    grid = document.tables[0]
    assert [c.text for c in grid.rows[0].cells] == ["Characteristic", "Overall (n = 5)", "P"]
    assert grid.cell(2, 1).text == "3 (60)"
    notes = [p for p in document.paragraphs if "Pearson" in p.text]
    assert notes and notes[0].runs[0].font.superscript
    assert document.core_properties.created.year == 2000  # fixed, so bytes do not change
    again = writers.to_docx(_table(), tmp_path / "again.docx")
    assert again.read_bytes() == path.read_bytes()


def test_docx_cells_are_the_xml_python_docx_writes(tmp_path):
    """The table cells are written as XML directly; python-docx's own calls for the same
    formatting (run size, no space after, indent, centring, bold, superscript footnote marks,
    keep with next, non-breaking hyphens and spaces where a cell wraps: writers.fill_docx_cell)
    must give the same XML."""
    from lxml import etree

    body = pd.DataFrame(
        {
            "Name": [
                "  leading space",
                "",
                "tab\there",
                "line\nbreak",
                "é ± χ2 <&>",
                "House-Brackmann end-to-side (n = 3)",
            ],
            "Value": ["1", " 2 ", "", "3", "4", "-1.2 (-1.4 to -0.9)"],
        }
    )
    marks = {(None, 1): "a", (4, 0): "a,b", (5, 1): "b"}
    # 80 pt and 120 pt: the last label wraps in its 69 pt of text width, nothing else does.
    layout = writers.DocxLayout(9, (1600, 2400), landscape=False)
    fast = writers.new_docx()
    headings, rows = list(body.columns), body.values.tolist()
    indent = (0, 1, 0, 2, 0, 0)
    writers.add_docx_grid(fast, headings, rows, layout, indent=indent, marks=marks)

    reference = writers.new_docx()
    grid = reference.add_table(rows=len(body) + 1, cols=2)
    for j, column in enumerate(headings):
        writers.fill_docx_cell(
            grid.rows[0].cells[j],
            column,
            9,
            bold=True,
            center=j > 0,
            mark=marks.get((None, j), ""),
            keep_with_next=True,  # the heading row stays with the first row
        )
    for i, values in enumerate(rows):
        for j, value in enumerate(values):
            writers.fill_docx_cell(
                grid.rows[i + 1].cells[j],
                value,
                9,
                indent=indent[i] if j == 0 else 0,
                center=j > 0,
                mark=marks.get((i, j), ""),
                # a row the next is indented under stays with it
                keep_with_next=indent[i + 1 : i + 2] > indent[i : i + 1],
                wraps=(i, j) == (5, 0),
            )

    def paragraphs(document):
        return [etree.tostring(p) for p in document.tables[0]._tbl.iter(docx.oxml.ns.qn("w:p"))]

    assert paragraphs(fast) == paragraphs(reference)
    label = fast.tables[0].rows[6].cells[0]
    assert len(label._tc.xpath(".//w:noBreakHyphen")) == 3
    # Non-breaking hyphens read as "-"; the spaces in brackets are non-breaking.
    assert label.text == "House-Brackmann end-to-side (n\u00a0=\u00a03)"
    assert fast.tables[0].rows[5].cells[0].text == "é ± χ2 <&>a,b"


def test_built_tables_come_back_from_the_warehouse_as_they_were_built():
    """write_report shows the tables write_tables kept in the warehouse, not tables built again."""
    import duckdb

    from pipeline.warehouse import read_frame, write_frame

    empty = writers.Table("Table 8. No rows", pd.DataFrame(columns=["Outcome", "P"]), ("Note.",))
    built = [("t", _table()), ("e", empty)]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA s")
    write_frame(con, "s.publication_tables", tables.as_frame(built))
    back = tables.from_frame(read_frame(con, "SELECT * FROM s.publication_tables"))
    assert [stem for stem, _ in back] == ["t", "e"]
    for (_, before), (_, after) in zip(built, back):
        assert (after.title, after.footnotes, after.indent) == (
            before.title,
            before.footnotes,
            before.indent,
        )
        assert list(after.body.columns) == list(before.body.columns)
        assert after.body.values.tolist() == before.body.values.tolist()
        assert writers.to_html(after, standalone=True) == writers.to_html(before, standalone=True)


def test_html_templates_escape_every_value_and_ship_with_the_package():
    hostile = writers.Table(
        '<script>alert("x")</script>', pd.DataFrame({"<b>": ["a & b"]}), ("<i>'n'</i>",)
    )
    page = writers.to_html(hostile, standalone=True)
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page and "a &amp; b" in page
    assert "&#x27;n&#x27;" in page
    assert {
        "publication_table.html.j2",
        "publication_table_page.html.j2",
        "report.html.j2",
        "publication.css",
        "report.css",
    } <= set(writers.templates().list_templates())


# --------------------------------------------------------------------------- Table 3


def _ancova_rows():
    """Between-groups rows of one outcome: etiology with four levels (one of 3 patients, below
    the small-cell minimum 5), facelift with one level left."""
    common = {"outcome": "hb", "score": "grade", "label": "House-Brackmann grade", "note": ""}
    rows = [
        {
            "subgroup": "etiology",
            "test": "ANCOVA",
            "levels": "a | b | c | d",
            "n": "30 | 12 | 6 | 3",
        }
        | {"n_total": 51, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": 0.2134},
        {"subgroup": "etiology", "test": "ANCOVA difference", "levels": "b | a", "n": "12 | 30"}
        | {"n_total": 42, "estimate": 0.25, "ci_low": -0.3449, "ci_high": 0.8451, "p": 0.4},
        {"subgroup": "etiology", "test": "ANCOVA difference", "levels": "c | a", "n": "6 | 30"}
        | {"n_total": 36, "estimate": -0.55, "ci_low": -1.35, "ci_high": 0.25, "p": 0.17},
        {"subgroup": "etiology", "test": "ANCOVA difference", "levels": "d | a", "n": "3 | 30"}
        | {"n_total": 33, "estimate": -0.6, "ci_low": -6.85, "ci_high": 5.85, "p": 0.8},
        {"subgroup": "facelift", "test": "ANCOVA", "levels": "facelift: 0", "n": "47"}
        | {"n_total": 47, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan}
        | {"note": "fewer than 2 groups: ANCOVA undefined"},
    ]
    return pd.DataFrame([common | r for r in rows])


def test_table_3_ancova_levels_against_the_reference():
    table = tables.table_3_ancova(
        _ancova_rows(), conf_level=0.95, min_cell=5, covariates=("time since onset",)
    )
    body = table.body
    assert list(body.columns) == [
        "Outcome, subgroup and level",
        "n",
        "Adjusted difference (95% CI)",
        "P",
    ]
    # The outcome once, each subgroup indented under it with the F test's P, its levels indented
    # twice: the reference level first, each other level against it, at Table 2's one decimal;
    # a level under the small-cell minimum neither estimated nor counted.
    assert body.to_numpy().tolist() == [
        ["House-Brackmann grade", "", "", ""],
        ["etiology", "", "", ".21"],
        ["a", "30", "Reference", ""],
        ["b", "12", "0.3 (-0.3 to 0.8)", ""],
        ["c", "6", "-0.6 (-1.4 to 0.3)", ""],
        ["d", "<5", "too few to estimate", ""],
        ["facelift", "", "not estimable", ""],
        ["0", "47", "", ""],
    ]
    assert table.indent == (0, 1, 2, 2, 2, 2, 1, 2)
    # Why the facelift is not estimable: the footnote marked on the cell that says so.
    (why,) = [table.footnotes[k] for i, j, k in table.marks if (i, j) == (6, 2)]
    assert why == "House-Brackmann grade, facelift: fewer than 2 groups: ANCOVA undefined."
    notes = " ".join(table.footnotes)
    assert "level minus reference level" in notes and "time since onset" in notes
    assert "first level declared" in notes and "F test" in notes
    assert "fewer than 5 patients" in notes and "ANCOVA undefined" in notes
    assert "Method" not in body and "post ~ pre" not in notes + " ".join(body.to_numpy().ravel())


def test_table_3_subgroups_match_table_2():
    rows = WITH_HL.assign(group=["etiology: a", "etiology: b"], n_pairs=[12, 3])
    rows = rows.merge(OUTCOMES[["outcome", "score", "label"]], on=["outcome", "score"])
    table = tables.table_3_subgroups(rows, conf_level=0.95, min_cell=5)
    heading = "Median change (Hodges-Lehmann, 95% CI)"
    # Each outcome named once on a row of its own, its subgroup levels indented under it.
    assert table.body["Outcome and subgroup"].tolist() == [
        "House-Brackmann grade",
        "etiology: a",
        "Sunnybrook composite",
        "etiology: b",
    ]
    assert table.indent == (0, 1, 0, 1)
    assert (table.body.iloc[[0, 2], 1:] == "").all().all()
    levels = table.body.iloc[[1, 3]]
    # Table 2's estimate and decimals; a level under the small-cell minimum not shown.
    assert levels[heading].tolist() == ["-1.0 (-1.5 to -1.0)", "too few to estimate"]
    assert levels["n pairs"].tolist() == ["12", "<5"]
    assert levels["P"].tolist() == ["<.001", ""]
    assert any("too few to estimate" in n.lower() for n in table.footnotes)
    # A lowered Hodges-Lehmann level: no limits, the footnote saying why marked on that cell.
    lowered = rows.assign(n_pairs=[12, 9], hl_conf_level=[0.95, 0.9])
    table = tables.table_3_subgroups(lowered, conf_level=0.95, min_cell=5)
    assert table.body[heading].tolist()[3] == "9.5 (CI not estimable)"
    (mark,) = [m for m in table.marks if m[0] is not None]  # the others on headings
    assert mark[:2] == (3, list(table.body.columns).index(heading))
    assert table.footnotes[mark[2]].startswith("CI not estimable: with so few non-zero changes")
    # ... not where the level is too small to be shown.
    hidden = rows.assign(n_pairs=[12, 3], hl_conf_level=[0.95, 0.9])
    table = tables.table_3_subgroups(hidden, conf_level=0.95, min_cell=5)
    assert not any("CI not estimable" in n for n in table.footnotes)
    # There the too-few note is marked instead: on the hidden count and estimate.
    too_few = [k for k, n in enumerate(table.footnotes) if n.lower().startswith("too few")]
    hidden_cells = {(3, list(table.body.columns).index(h)) for h in ("n pairs", heading)}
    assert {(i, j) for i, j, k in table.marks if k in too_few} == hidden_cells


def test_no_table_of_a_small_study_shows_na_and_a_ci_not_estimable_is_marked(tmp_path):
    """A 20-patient study: subgroup levels and items with few non-zero changes, whose 95%
    Hodges-Lehmann CI R cannot reach. No cell a reader sees says "NA"; each such change is
    "estimate (CI not estimable)", with the footnote saying why marked on that cell."""
    import duckdb

    from pipeline.spec.study import load_study
    from pipeline.warehouse import read_frame
    from small_study import run_steps, write_small_study

    study = load_study(write_small_study(tmp_path / "raw" / "small", n_patients=20))
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    run_steps(con, study, tmp_path / "reports")
    built = tables.from_frame(read_frame(con, "SELECT * FROM small.publication_tables"))
    con.close()
    na = [
        (stem, text)
        for stem, table in built
        for text in [table.title, *map(str, table.body.columns), *table.body.to_numpy().ravel()]
        if re.search(r"\bNA\b", str(text))
    ]
    assert na == []
    without_ci = {
        (stem, i, j): table.mark_of(i, j)
        for stem, table in built
        for i, row in enumerate(table.body.itertuples(index=False))
        for j, text in enumerate(row)
        if str(text).endswith("(CI not estimable)")
    }
    # Table 3 and the item eTables of this study have them (the test would prove nothing else).
    assert {stem for stem, _, _ in without_ci} >= {"table_3_subgroups", "etable_items_sunnybrook"}
    shown = dict(built)
    assert "etable_reliability" not in {stem for stem, _, _ in without_ci}
    for (stem, i, j), letters in without_ci.items():
        notes = [
            shown[stem].footnotes[k]
            for row, column, k in shown[stem].marks
            if (row, column) == (i, j)
        ]
        assert len(notes) == 1 and notes[0].startswith("CI not estimable: with so few non-zero"), (
            stem,
            i,
            j,
        )
        assert letters == writers._letters(shown[stem].footnotes.index(notes[0]))
    # Weighted kappa, for which no interval is computed, is its estimate alone, so marked.
    reliability = shown["etable_reliability"]
    # Agreement per visit: each score and raters a row of its own, its visits indented under it.
    columns = list(reliability.body.columns)
    assert columns[:2] == ["Outcome and visit", "Statistic"]
    assert reliability.body.iloc[0, 1] == "" and reliability.indent[:2] == (0, 1)
    kappa = reliability.body["Statistic"].tolist().index("Weighted κ, quadratic weights")
    assert re.fullmatch(r"-?[0-9.]+", reliability.body.iloc[kappa, 2])
    (mark,) = [m for m in reliability.marks if m[:2] == (kappa, 2)]
    assert reliability.footnotes[mark[2]].startswith("Estimate without an interval")


def test_report_orders_tables_by_number_and_keeps_table_3_parts_in_order():
    from pipeline.render.report import ReportContent

    def t(title):
        return writers.Table(title, pd.DataFrame({"a": ["1"]}))

    built = [
        ("table_2", t("Table 2. Outcomes")),
        ("table_1", t("Table 1. Baseline")),
        ("table_3_subgroups", t("Table 3. Change by subgroup")),
        ("table_3_ancova", t("Table 3 (continued). Adjusted differences")),
        ("etable_items_face", t("eTable 10. FaCE items")),
        ("etable_flow", t("eTable 1. Flow")),
        ("etable_items_saq", t("eTable 9. SAQ items")),
        ("table_10", t("Table 10. Later")),
    ]
    content = ReportContent(None, built, [], [], {})
    assert [x.title.split(".")[0] for x in content.tables_in_order()] == [
        "Table 1",
        "Table 2",
        "Table 3",
        "Table 3 (continued)",
        "Table 10",
        "eTable 1",
        "eTable 9",
        "eTable 10",
    ]


# --------------------------------------------------------------------------- Table 1 layout


def test_table_1_single_arm_has_one_column_and_no_p():
    tidy = baseline.baseline_characteristics(SUBJECTS, baseline.follow_up_months(VISITS))
    table = tables.table_1(tidy, {"Overall": 5})
    assert list(table.body.columns) == ["Characteristic", "Overall (n = 5)"]
    assert table.title == "Table 1. Baseline characteristics"
    assert not any("P values" in n for n in table.footnotes)


def test_table_1_decimals_follow_the_recorded_precision():
    # Time since onset recorded to 2 decimals: skewness 0.60 (<= 1) -> mean ± SD at 3 decimals.
    # R: m <- c(12.5, 30, 7.25, 18, 40.75); mean(m) = 21.7, sd(m) = 13.591587.
    subjects = SUBJECTS.assign(months_since_onset=["12.5", "30", "7.25", "18", "40.75"])
    tidy = baseline.baseline_characteristics(subjects, baseline.follow_up_months(VISITS))
    body = tables.table_1(tidy, {"Overall": 5}).body.set_index("Characteristic")
    assert body.loc["Time since onset, mo, mean ± SD", "Overall (n = 5)"] == "21.700 ± 13.592"
    # Integer ages ("90+" counted as 90): median [IQR] without decimals; integer branch counts:
    # mean ± SD to one decimal.
    assert body.loc["Age, y, median [IQR]", "Overall (n = 5)"] == "50 [40-60]"
    assert body.loc["Branches transected, No., mean ± SD", "Overall (n = 5)"] == "7.0 ± 1.6"
    assert baseline.recorded_decimals(pd.Series(["55", "90+", "", None])) == 0
    assert baseline.recorded_decimals(pd.Series(["1.23456", "2"])) == baseline.MAX_DECIMALS


def test_table_1_follow_up_as_the_index_study_reports_it():
    # Last postoperative days 365, 180, 730, 90 (S5 none) / 30.4375. R: d <- c(365, 180, 730,
    # 90) / 30.4375; median 8.952772, quantile(d, c(.25, .75)) 5.174538 14.989733, mean
    # 11.211499, range 2.956879 to 23.983573.
    tidy = baseline.baseline_characteristics(SUBJECTS, baseline.follow_up_months(VISITS))
    table = tables.table_1(tidy, {"Overall": 5})
    body = table.body.set_index("Characteristic")
    assert body.loc["Follow-up, mo, median [IQR]", "Overall (n = 5)"] == "9.0 [5.2-15.0]"
    assert body.loc["Mean (range)", "Overall (n = 5)"] == "11.2 (3.0-24.0)"
    assert any("mean (range)" in n for n in table.footnotes)


def _demo_spec_with(tmp_path, extra: str):
    import shutil

    from pipeline import paths

    demo = paths.RAW_DATA_DIR / "demo"
    folder = tmp_path / "demo"
    folder.mkdir(parents=True)
    for name in ("patients.csv", "visits.csv"):
        shutil.copy(demo / name, folder / name)
    spec = (demo / "study.toml").read_text(encoding="utf-8")
    (folder / "study.toml").write_text(spec + "\n" + extra, encoding="utf-8")
    return folder


def test_table_1_by_is_a_spec_choice(tmp_path):
    from pipeline.spec.study import SpecError, load_study

    subjects = pd.DataFrame({"subject": ["S1"], "etiology": ["trauma"], "side": ["left"]})
    study = load_study(_demo_spec_with(tmp_path / "none", ""))
    assert study.table_1_by == "" and tables.table_1_grouping(study, subjects) == ""
    study = load_study(_demo_spec_with(tmp_path / "by", '[tables]\ntable_1_by = "etiology"\n'))
    assert study.table_1_by == "etiology"
    assert tables.table_1_grouping(study, subjects) == "etiology"
    with pytest.raises(SpecError, match="tables.table_1_by' names 'shoe_size'"):
        load_study(_demo_spec_with(tmp_path / "bad", '[tables]\ntable_1_by = "shoe_size"\n'))
    with pytest.raises(SpecError, match="table_1_b"):
        load_study(_demo_spec_with(tmp_path / "typo", '[tables]\ntable_1_b = "etiology"\n'))


def test_table_1_rows_name_no_small_subgroup_level():
    from types import SimpleNamespace

    from pipeline.spec.study import Subgroup

    study = SimpleNamespace(
        analysis=SimpleNamespace(
            subgroups=(Subgroup("etiology", "etiology"), Subgroup("botox", "prior_botox"))
        ),
        min_cell=3,
    )
    # bells_palsy 3 patients (kept), trauma 2 (under 3): shown as one row of small levels.
    out = tables.small_subgroup_levels_together(SUBJECTS, study)
    assert out["etiology"].tolist() == [
        "bells_palsy",
        "bells_palsy",
        "Levels of fewer than 3 patients each",
        "Levels of fewer than 3 patients each",
        "bells_palsy",
    ]
    # 0/1 columns and Table 1's column grouping are left alone.
    assert out["prior_botox"].tolist() == SUBJECTS["prior_botox"].tolist()
    same = tables.small_subgroup_levels_together(SUBJECTS, study, exclude="etiology")
    assert same["etiology"].tolist() == SUBJECTS["etiology"].tolist()
    tidy = baseline.baseline_characteristics(out)
    body = tables.table_1(tidy, {"Overall": 5}).body.set_index("Characteristic")
    assert body.loc["Levels of fewer than 3 patients each", "Overall (n = 5)"] == "2 (40)"
    assert "Trauma" not in body.index
