"""The study spec (``data/raw/<study>/study.toml``): its schema (:mod:`.schema`) and the
:class:`~pipeline.spec.study.Study` the steps read (:mod:`.study`)."""
