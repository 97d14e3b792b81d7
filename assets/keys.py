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

# The tag every step of a study carries (its assets and checks): the executor runs one step of a
# study at a time, since a study's warehouse file takes one writing process
# (assets.definitions.executor_for).
STUDY_TAG = "study"
