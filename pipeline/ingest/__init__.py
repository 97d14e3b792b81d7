"""Raw exports into the warehouse: read (:mod:`.readers`, :mod:`.redcap`), guarded against
identifiers (:mod:`.deidentify`), every row accepted or quarantined (:mod:`.ingestion`); and the
same checks without writing anything (:mod:`.validate`, ``outcomes validate``)."""
