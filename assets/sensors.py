"""Notice a new or changed export and request a run of that study alone.

A study needs a run when the content hash of its spec and raw files differs
from the data version of its last ``ingested`` materialization: an unchanged
study is never recomputed, and a run only covers the study whose files changed.
"""

from __future__ import annotations

import dagster as dg

from assets.keys import INGESTED
from pipeline.provenance import fingerprint
from pipeline.spec.study import Study

CHECK_EVERY_SECONDS = 30


def _materialized_version(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    return event.asset_materialization.tags.get("dagster/data_version")


def build_export_sensor(studies: list[Study], asset_keys: list[dg.AssetKey]) -> dg.SensorDefinition:
    """``asset_keys``: every materializable asset (source assets excluded)."""

    @dg.sensor(
        name="raw_export_changed",
        minimum_interval_seconds=CHECK_EVERY_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        asset_selection=asset_keys,
        description="Requests a run of a study when its export or spec under `data/raw/<study>/` "
        "is new or has changed since it was last ingested.",
    )
    def raw_export_changed(context: dg.SensorEvaluationContext):
        requests = []
        for study in studies:
            current = fingerprint(study)
            if (
                _materialized_version(context.instance, dg.AssetKey([study.name, INGESTED]))
                == current
            ):
                continue
            keys = [k for k in asset_keys if k.path[0] == study.name]
            # The run key makes a repeated evaluation of the same files request one run only.
            requests.append(
                dg.RunRequest(
                    run_key=f"{study.name}:{current}",
                    asset_selection=keys,
                    tags={"study": study.name},
                )
            )
        if not requests:
            return dg.SkipReason(
                "every study's exports are unchanged since they were last ingested"
            )
        return requests

    return raw_export_changed
