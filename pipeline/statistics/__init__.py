"""Statistical tests for the clinical outcomes pipeline.

One module per statistical family, each a set of plain functions on numpy
arrays / pandas DataFrames that return tidy, unrounded results and are
checked against R reference output (``tests/fixtures/r/``). This package is
part of the domain core and has no orchestration (Dagster) dependencies.
Modules so far: ``paired`` -- pre/post comparisons within subjects (paired
t-test and Wilcoxon signed-rank test, matching R's ``t.test`` and
``wilcox.test`` with ``paired = TRUE``).
"""
