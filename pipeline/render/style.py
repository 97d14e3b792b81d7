"""The journal style: how a number, a P value, a CI or a count is written in a table.

Numbers are kept at full precision everywhere else; rounding happens only here, when a table
builder (:mod:`pipeline.render.tables`) turns a tidy result into text. Every builder takes a
:class:`JournalStyle` and asks it for every number it writes, so no builder and no writer
knows a journal's rules itself (as a gtsummary theme does for R tables). :data:`AMA` is the
style of the AMA Manual of Style, 11th ed. (JAMA, JAMA Facial Plastic Surgery, FPSAM and
PRS-adjacent journals), the default of every builder:

- P values: no leading zero, two decimals from .01 up, three below, ``<.001`` below .001,
  ``>.99`` above .99, never ``.000`` (:meth:`JournalStyle.p`);
- numbers rounded half away from zero, as readers round by hand, and never ``-0.0``;
- CIs as ``estimate (low to high)``: "to" rather than a dash, so negative limits read well;
  an estimate whose CI cannot be had as ``estimate (CI not estimable)``, never "NA to NA";
- percentages whole when the group has fewer than 100 patients, one decimal from 100 up,
  written ``No. (%)`` (domain reference section 4.2).

Another journal's style is another :class:`JournalStyle` (its fields), or a subclass that
overrides a method (its rules); the writers (:mod:`pipeline.render.writers`) only write text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

__all__ = ["AMA", "JournalStyle", "is_missing"]


def is_missing(value) -> bool:
    """Whether a cell's value is absent (None, NaN or pandas' NA): written as the style's
    ``missing`` text, or left empty, by the builders."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


@dataclass(frozen=True)
class JournalStyle:
    """The rules of one journal for the numbers and labels of its tables.

    The fields are the words and marks; the methods the rules. Defaults are AMA's.
    """

    name: str = "AMA"
    #: a statistic that does not exist (a mean of no patient, a P of no test)
    missing: str = "NA"
    #: a cell with nothing to show, such as the values of an outcome without pairs
    no_value: str = "—"
    #: between a CI's limits
    ci_separator: str = " to "
    #: in place of the limits of an estimate whose CI cannot be had (a Hodges-Lehmann interval
    #: of too few non-zero changes), so no reader sees "NA to NA"
    no_ci: str = "CI not estimable"
    #: group size from which percentages get one decimal (whole below)
    percent_decimal_from: int = 100
    #: headings' units: a count with its percentage, a count, the two summaries
    count_percent_label: str = "No. (%)"
    count_label: str = "No."
    mean_sd_label: str = "mean ± SD"
    median_iqr_label: str = "median [IQR]"

    def p(self, p: float) -> str:
        """``<.001``, ``.004``, ``.03``, ``.30``, ``>.99``; the ``missing`` text for no P."""
        if p is None or (isinstance(p, float) and math.isnan(p)):
            return self.missing
        if p < 0.001:
            return "<.001"
        # Round first, then decide the number of digits, so .0095 -> .010 -> shown as ".01".
        if round(p, 3) < 0.01:
            text = f"{p:.3f}"
        elif round(p, 2) >= 1:
            return ">.99"
        else:
            text = f"{p:.2f}"
        return text.lstrip("0")

    def number(self, x: float, digits: int) -> str:
        """``x`` rounded to ``digits`` decimals; the ``missing`` text for no value."""
        if is_missing(x):
            return self.missing
        # Half away from zero on the shortest decimal form (82.5 -> 83, 2.675 -> 2.68), as
        # readers round by hand; Python's own formatting rounds exact halves to even.
        rounded = Decimal(repr(float(x))).quantize(
            Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP
        )
        text = f"{rounded:.{digits}f}"
        # "-0.0" reads as a signed result; a change that rounds to zero is shown as 0.0.
        return text[1:] if text.startswith("-") and float(text) == 0 else text

    def mean_sd(self, mean: float, sd: float, digits: int = 1) -> str:
        """``mean ± SD``."""
        return f"{self.number(mean, digits)} ± {self.number(sd, digits)}"

    def median_iqr(self, median: float, q1: float, q3: float, digits: int = 1) -> str:
        """``median [Q1-Q3]``."""
        return (
            f"{self.number(median, digits)} [{self.number(q1, digits)}-{self.number(q3, digits)}]"
        )

    def value_range(self, low: float, high: float, digits: int = 1) -> str:
        """``minimum-maximum``."""
        return f"{self.number(low, digits)}-{self.number(high, digits)}"

    def estimate_ci(self, estimate: float, low: float, high: float, digits: int = 1) -> str:
        """``estimate (low to high)``; ``estimate (CI not estimable)`` (:attr:`no_ci`) when a
        limit is missing."""
        if not is_missing(estimate) and (is_missing(low) or is_missing(high)):
            return f"{self.number(estimate, digits)} ({self.no_ci})"
        limits = f"{self.number(low, digits)}{self.ci_separator}{self.number(high, digits)}"
        return f"{self.number(estimate, digits)} ({limits})"

    def ci_label(self, conf_level: float) -> str:
        """``95% CI`` for ``conf_level`` 0.95."""
        return f"{conf_level:.0%} CI"

    def percent_digits(self, n: int) -> int:
        """Decimals of a percentage of a group of ``n`` patients: 0 below
        ``percent_decimal_from``, 1 from it up."""
        return 0 if n < self.percent_decimal_from else 1

    def count_percent(self, count: int, denominator: int, digits: int) -> str:
        """``count (percent)``, the percentage of ``denominator`` at ``digits`` decimals
        (:meth:`percent_digits` of the group's size); ``count (NA)`` of nobody."""
        count, denominator = int(count), int(denominator)
        if denominator == 0:
            return f"{count} ({self.missing})"
        return f"{count} ({self.number(100 * count / denominator, digits)})"


#: The AMA Manual of Style, the default of every table builder.
AMA = JournalStyle()
