"""Write the SYNTHETIC records of the worked examples in docs/adding-a-study.md.

    python docs/examples/make_examples.py

``two_arm``: selective neurectomy alone or with botulinum toxin (12 and 10 patients).
``three_arm``: smile reanimation by masseteric nerve transfer, cross-face nerve graft or both
(12, 9 and 8 patients). Each patient has House-Brackmann grades (independent observer) and the
oral commissure excursion on smiling (mm) before surgery and at 12 months. Seeded: the same
files every time. No real patient's data.
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


if __name__ == "__main__":
    write(HERE / "two_arm", {"neurectomy": (12, 3.0, 1.0), "neurectomy_botox": (10, 4.5, 1.4)}, 2)
    write(
        HERE / "three_arm",
        {"masseteric": (12, 6.0, 1.6), "cross_face": (9, 3.5, 1.0), "dual": (8, 6.5, 1.8)},
        3,
    )
