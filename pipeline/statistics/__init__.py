"""Statistical tests for the clinical outcomes pipeline.

One module per statistical family, each a set of plain functions on numpy arrays / pandas
DataFrames that return tidy, unrounded results, checked against R reference output
(``tests/fixtures/r/``); ``docs/statistics.md`` says which scipy or statsmodels call each one
uses or stands in for. No Dagster here.

``paired``          pre/post within subjects: paired t, Wilcoxon signed-rank, Hodges-Lehmann,
                    effect sizes
``multiplicity``    Holm and Benjamini-Hochberg adjustment
``between_groups``  change compared between subgroups; ANCOVA on a covariate
``ordinal``         direction of change and grade shifts: sign test, McNemar, Bowker
``responders``      patients reaching a minimal important change, Clopper-Pearson intervals
``reliability``     agreement between raters: ICCs and weighted kappa
``correlation``     baseline severity against change, before against after: Pearson and
                    Spearman, per group
``imputation``      missing pre or post values by multiple imputation, Rubin's rules
``longitudinal``    mixed model of every observed visit
``mixed_model``     mixed models as lme4 users write them: Satterthwaite df, likelihood-ratio
                    tests
``missing``         values present per outcome and visit, and pairs lost
``baseline``        Table 1: baseline characteristics overall and by group
``subgroups``       subject levels of each planned subgroup (median splits included)
``small_cells``     pooling or leaving out levels with too few patients
``observed``        the planned outcomes at every visit, summarised
``grouped``         the shared layout of per-group result tables
``pooled``          multi-centre pooling from site sums: exact pooled paired t, meta-analysis
"""
