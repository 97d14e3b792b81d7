"""facial-outcomes: the domain core of the pipeline, with no Dagster in it.

The data travel through these packages and modules in this order (each imports only those
above it):

``spec``         the study spec (``data/raw/<study>/study.toml``): its schema and the Study
                 the steps read
``instruments``  grading scales: one module per scale under ``instruments/scales``, their
                 model and scoring SQL
``ingest``       raw exports -> warehouse: readers, REDCap, the identifier guard, every row
                 accepted or quarantined
``scores``       every mapped instrument scored at every visit
``pairing``      pre/post pairs per outcome, by the plan's visit rules
``statistics``   paired tests, effect sizes, multiplicity, groups, models, reliability, small cells
``render``       publication tables, figures and the study report, every cell safe to open in a
                 spreadsheet
``steps``        the steps of one study's run, end to end: what the Dagster assets and
                 ``outcomes run`` call
``provenance``   what produced the outputs

and, used by all of them: ``sql`` (quoting), ``warehouse`` (the DuckDB file), ``paths``,
``progress``, ``exits``; ``synthetic`` writes the SYNTHETIC demo and registry cohorts; ``cli``
is the ``outcomes`` command (``assets.cli`` adds ``outcomes report``, which runs Dagster).
"""
