"""facial-outcomes: the domain core of the pipeline.

The data travel through these modules in this order, and each can be used
without Dagster:

``study``        the study spec (``data/raw/<study>/study.toml``)
``readers``      CSV (encodings, delimiters, decimal comma), XLSX, long and wide layouts
``redcap``       REDCap records exports with their data dictionary
``deidentify``   the HIPAA Safe Harbor guard, run before anything is written
``ingest``       raw exports -> warehouse tables, every row accepted or quarantined
``validate``     the same checks without writing anything (``outcomes validate``)
``instruments``  grading scales: item declarations, scoring versions, scoring SQL
``pairing``      pre/post pairs per outcome, by the plan's visit rules
``statistics``   paired tests, effect sizes, multiplicity, groups, models, reliability
``tables``       publication tables, rendered from tidy results
``figures``      publication figures
``report_html``  the study report (HTML and Word)
``cells``        text cells made safe to open in a spreadsheet (formula injection), for every writer
``report``       the steps for one study, end to end
``provenance``   what produced the outputs
``warehouse``, ``paths``, ``cli``, ``demo``: the DuckDB file, folders, the command, the synthetic cohort
"""
