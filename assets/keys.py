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

# The tag every step of a study carries (its assets, whose steps run their checks): the executor
# runs one step of a study at a time, since a study's warehouse file takes one writing process
# (assets.graph.executor_for).
STUDY_TAG = "study"


def study_op_tags(study: str) -> dict[str, str]:
    """The op tags of every step of ``study``: :data:`STUDY_TAG`, and its Celery queue, which one
    worker process consumes when the steps run on Celery workers (docs/scaling.md)."""
    return {STUDY_TAG: study, "dagster-celery/queue": f"study-{study}"}


#: Who answers for every study's assets (shown in the Dagster UI).
OWNER = "team:research-coordination"


def study_asset_settings(study: str) -> dict:
    """The settings every asset of ``study`` shares: its key prefix, owner, tag and op tags."""
    return {
        "key_prefix": [study],
        "owners": [OWNER],
        "tags": {STUDY_TAG: study},
        "op_tags": study_op_tags(study),
    }
