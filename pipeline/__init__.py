"""facial-outcomes: the domain core of the pipeline.

The data travel through these modules in this order, and each can be used
without Dagster:

``study``        the study spec (``data/raw/<study>/study.toml``)
``ingest``       raw exports -> warehouse tables, every row accepted or quarantined
``instruments``  grading scales: item declarations and scoring SQL
``pairing``      pre/post pairs per outcome
``statistics``   paired tests and, later, models and effect sizes
``tables``       publication tables, rendered from tidy results
``figures``      publication figures
``report``       the whole path for one study, end to end
"""
