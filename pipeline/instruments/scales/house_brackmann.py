"""House-Brackmann facial nerve grading system.

House JW, Brackmann DE. Facial nerve grading system. Otolaryngol Head Neck
Surg. 1985;93(2):146-147.

Grade I (normal) to VI (total paralysis), coded 1-6; lower is better. The
grade is ordinal; like the index study (Azizzadeh et al. 2019) the pipeline
also reports its mean, and tests it with the Wilcoxon signed-rank test.
"""

from pipeline.instruments.model import Instrument, Item, Score

INSTRUMENT = Instrument(
    name="house_brackmann",
    label="House-Brackmann",
    citation="House JW, Brackmann DE. Otolaryngol Head Neck Surg. 1985;93(2):146-147.",
    items=(Item("grade", "House-Brackmann grade (1 = I normal ... 6 = VI total paralysis)", 1, 6),),
    scores=(Score("grade", "Grade", "grade", 1, 6, higher_is_better=False),),
    sources=(
        "House & Brackmann 1985 (grade definitions I-VI)",
        "Azizzadeh et al. 2019 (mean grade and Wilcoxon test)",
    ),
    unverified=("Minimal important change: none published (a change of one grade is often used).",),
)
