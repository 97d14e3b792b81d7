"""Write the SYNTHETIC records of the worked examples in docs/adding-a-study.md.

    python docs/examples/make_examples.py

``two_arm``: selective neurectomy alone or with botulinum toxin (12 and 10 patients).
``three_arm``: smile reanimation by masseteric nerve transfer, cross-face nerve graft or both
(12, 9 and 8 patients). Each patient has House-Brackmann grades (independent observer) and the
oral commissure excursion on smiling (mm) before surgery and at 12 months. ``two_window``:
masseteric nerve transfer (14 patients), the same measures before surgery, at 6 and at 12
months; one patient missed the 6-month visit, one came to it late (day 265, outside its window)
and one missed the 12-month visit. Seeded: the same files every time. No real patient's data.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def write(folder: Path, arms: dict[str, tuple[int, float, float]], seed: int) -> None:
    """``arms``: arm code -> (patients, mean gain in excursion mm, mean House-Brackmann gain)."""
    rng = np.random.default_rng(seed)
    patients, visits = [], []
    number = 0
    for arm, (size, gain_mm, gain_grade) in arms.items():
        for _ in range(size):
            number += 1
            subject = f"P{number:03d}"
            age = int(rng.integers(24, 75))
            months = int(rng.integers(8, 96))
            patients.append([subject, arm, age, months])
            grade = int(rng.integers(3, 6))
            excursion = round(float(rng.normal(4.0, 1.5)), 1)
            after_grade = int(np.clip(round(grade - gain_grade + rng.normal(0, 0.7)), 1, 6))
            after = round(max(0.0, excursion * 0.6 + gain_mm + float(rng.normal(0, 1.6))), 1)
            visits.append([subject, "pre", -int(rng.integers(1, 30)), grade, excursion])
            visits.append([subject, "m12", int(rng.integers(330, 400)), after_grade, after])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "patients.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["study_id", "arm", "age", "months_since_onset"])
        w.writerows(patients)
    with open(folder / "visits.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["study_id", "visit", "day", "hb_observer", "excursion_mm"])
        w.writerows(visits)


def write_two_window(folder: Path, seed: int) -> None:
    """14 patients before surgery, at 6 months (most of the gain) and at 12 months; P003
    missed the 6-month visit, P005 came to it on day 265 and P007 missed the 12-month one."""
    rng = np.random.default_rng(seed)
    patients, visits = [], []
    for number in range(1, 15):
        subject = f"P{number:03d}"
        patients.append([subject, int(rng.integers(24, 75)), int(rng.integers(8, 96))])
        grade = int(rng.integers(3, 6))
        excursion = round(float(rng.normal(3.5, 1.2)), 1)
        at_6 = round(max(0.0, excursion + 3.0 + float(rng.normal(0, 1.4))), 1)
        at_12 = round(max(0.0, at_6 + 1.5 + float(rng.normal(0, 1.0))), 1)
        grade_6 = int(np.clip(round(grade - 0.8 + rng.normal(0, 0.6)), 1, 6))
        grade_12 = int(np.clip(round(grade_6 - 0.5 + rng.normal(0, 0.5)), 1, 6))
        day_6, day_12 = int(rng.integers(160, 220)), int(rng.integers(340, 400))
        visits.append([subject, "pre", -int(rng.integers(1, 30)), grade, excursion])
        if subject == "P005":
            day_6 = 265
        if subject != "P003":
            visits.append([subject, "m6", day_6, grade_6, at_6])
        if subject != "P007":
            visits.append([subject, "m12", day_12, grade_12, at_12])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "patients.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["study_id", "age", "months_since_onset"])
        w.writerows(patients)
    with open(folder / "visits.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["study_id", "visit", "day", "hb_observer", "excursion_mm"])
        w.writerows(visits)


if __name__ == "__main__":
    write(HERE / "two_arm", {"neurectomy": (12, 3.0, 1.0), "neurectomy_botox": (10, 4.5, 1.4)}, 2)
    write(
        HERE / "three_arm",
        {"masseteric": (12, 6.0, 1.6), "cross_face": (9, 3.5, 1.0), "dual": (8, 6.5, 1.8)},
        3,
    )
    write_two_window(HERE / "two_window", 4)
