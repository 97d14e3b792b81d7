"""Names of each study's assets; a study's asset key is ``[<study>, <name>]``."""

RAW_FILES = "raw_files"
INGESTED = "ingested"
SCORES = "scores"
PAIRS = "pairs"
PAIRED_TESTS = "paired_tests"
SECONDARY_ANALYSES = "secondary_analyses"
TABLES = "tables"
FIGURES = "figures"
REPORT = "report"
BUNDLE_PREFIX = "bundle_"  # a pooled study's site bundle: bundle_<site> (source asset)
