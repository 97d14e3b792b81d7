"""Names of each study's assets; a study's asset key is ``[<study>, <name>]``."""

RAW_FILES = "raw_files"
INGESTED = "ingested"
SCORES = "scores"
PAIRS = "pairs"
PAIRED_TESTS = "paired_tests"
TABLE_2 = "table_2"
SLOPE_FIGURES = "slope_figures"
