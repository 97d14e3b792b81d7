"""What a reader sees in place of the pipeline's names.

The warehouse and the full-precision CSV files keep the names programs use (``etiology:
bells_palsy``, ``house_brackmann``, ``post ~ pre + months_since_onset + group``); every table,
figure and Methods sentence a reader sees names columns, levels, subgroups, raters and scores by
the study's labels instead. The labels themselves are the spec's, through
:meth:`pipeline.spec.study.Study.column_label`, :meth:`~pipeline.spec.study.Study.level_label`
and :meth:`~pipeline.spec.study.Study.group_label`; this module applies them to the tidy frames
the publication tables are built from, and writes the few phrases several outputs share.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from pipeline.spec.study import Study
from pipeline.statistics.baseline import Variable, table_1_variables


def listed(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    words = list(words)
    if not words:
        return ""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def in_sentence(label: str) -> str:
    """A label inside a sentence: its first letter in lower case unless the first word is a
    name or an abbreviation (``Time since onset`` -> ``time since onset``; ``SAQ total`` and
    ``House-Brackmann grade`` unchanged)."""
    first = label.split(" ", 1)[0]
    if len(first) > 1 and first[1:] == first[1:].lower() and first[:1].isupper():
        return first[:1].lower() + label[1:]
    return label


def rater_label(rater: str) -> str:
    """A rater as the spec names it, readable (``senior_surgeon`` -> ``senior surgeon``)."""
    return str(rater).replace("_", " ").strip()


def score_label(study: Study, instrument: str, score: str) -> str:
    """An instrument's score as the outcome labels write it (``House-Brackmann grade``), without
    a rater; a custom measure's one score is the measure itself."""
    measure = study.instrument(instrument)
    version = next((s.version for s in study.instruments if s.instrument == instrument), "")
    found = measure.score(score, version or None)
    if found.name == "value" and len(measure.scores) == 1:
        return measure.label
    return f"{measure.label} {found.label.lower()}"


def ancova_adjustment(study: Study, formula: str) -> str:
    """The ANCOVA the statistics name by its formula (``post ~ pre + months_since_onset +
    group``, :mod:`pipeline.statistics.between_groups`) as a reader reads it: ``Adjusted for the
    before value and time since onset``. Another text is returned as it is."""
    if not formula.startswith("post ~ pre"):
        return formula
    terms = [t.strip() for t in formula.split("~", 1)[1].split("+")]
    covariates = [in_sentence(study.column_label(t)) for t in terms if t not in ("pre", "group")]
    return "Adjusted for " + listed(["the before value", *covariates])


def readable_results(study: Study, table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A tidy results frame of ``table`` (one of :data:`pipeline.render.tables.RESULT_TABLES`)
    with its names replaced by labels where a reader sees them: subgroup levels
    (``group``, ``levels``), subgroups (``subgroup``), visits (``visit``), the ANCOVA's formula
    (``method``), and for
    rater agreement one ``label`` naming the score and the raters (``House-Brackmann grade,
    observer vs surgeon``) and a ``description`` naming the statistic."""
    frame = frame.copy()
    if "group" in frame:
        frame["group"] = [study.group_label(g) if isinstance(g, str) else g for g in frame["group"]]
    if "levels" in frame:
        frame["levels"] = [
            " | ".join(study.group_label(level) for level in text.split(" | "))
            if isinstance(text, str)
            else text
            for text in frame["levels"]
        ]
    if "subgroup" in frame:
        frame["subgroup"] = [study.subgroup_label(str(s)) for s in frame["subgroup"]]
    if "visit" in frame:
        frame["visit"] = [
            visits_label(study, v) if isinstance(v, str) else v for v in frame["visit"]
        ]
    if "method" in frame:
        frame["method"] = [
            ancova_adjustment(study, m) if isinstance(m, str) else m for m in frame["method"]
        ]
    if table == "reliability" and len(frame):
        frame["label"] = [
            f"{score_label(study, i, s)}, "
            + " vs ".join(rater_label(r) for r in str(raters).split(" | "))
            for i, s, raters in zip(frame["instrument"], frame["score"], frame["raters"])
        ]
        frame["description"] = [
            agreement_statistic(statistic, description)
            for statistic, description in zip(frame["statistic"], frame["description"])
        ]
    return frame


def visits_label(study: Study, visit: str) -> str:
    """A visit as a reader names it; several pooled visits (rater agreement over ``"pre | m12"``)
    as their labels in a list: ``Before surgery, 12 months``."""
    return ", ".join(study.visit_label(v) for v in visit.split(" | "))


def agreement_notes(frame: pd.DataFrame, study: Study) -> tuple[str, ...]:
    """The agreement eTable's footnote when visits were pooled (``targets = "subject_visit"``):
    its rows treat the visits of one patient as independent targets."""
    pooled = [v for v in pd.unique(frame.get("visit", pd.Series(dtype=object))) if " | " in str(v)]
    if not pooled:
        return ()
    return (
        "Visits pooled ("
        + "; ".join(visits_label(study, v) for v in pooled)
        + "): each patient visit is one rated target, so the visits of one patient are treated "
        "as independent, and the CIs are narrower than the data support.",
    )


def agreement_statistic(statistic: str, description: str) -> str:
    """One agreement statistic of :func:`pipeline.statistics.reliability.rater_agreement` as a
    table row names it: ``ICC2, single random raters, absolute agreement, two-way random``;
    ``Weighted κ, quadratic weights``."""
    if str(statistic).startswith("weighted kappa"):
        weights = str(statistic).partition("(")[2].rstrip(")")
        return f"Weighted κ, {weights} weights" if weights else "Weighted κ"
    return f"{statistic}, {description}"


def labelled_variables(study: Study, subjects: pd.DataFrame) -> list[Variable]:
    """The Table 1 variables of these subjects columns
    (:func:`pipeline.statistics.baseline.table_1_variables`: which columns, their kind and order)
    with the spec's labels: the column's label and unit (``Age, y``) and its levels' labels in
    the order the spec lists them."""
    declared = dict(study.subject_levels)
    out = []
    for v in table_1_variables(subjects):
        codes = [code for code, _ in declared.get(v.name, ())] or [code for code, _ in v.levels]
        # The spec's levels first, in its order; then any other the catalogue lists.
        present = codes + [code for code, _ in v.levels if code not in codes]
        levels = tuple((code, study.level_label(v.name, code)) for code in present)
        out.append(
            replace(
                v,
                label=study.column_label_with_unit(v.name),
                levels=levels if v.kind == "categorical" else v.levels,
            )
        )
    return out
