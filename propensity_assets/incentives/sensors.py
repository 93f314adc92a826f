"""Keep the `incentive_study` partitions in sync with the catalogue: a sensor and a function for the CLI."""

import dagster as dg

from propensity_assets.incentives.catalog import StudyCatalogError, load_catalog
from propensity_assets.shared.partitions import incentive_study_partitions, sync_catalogue, sync_requests
from propensity_assets.incentives.resources import IncentiveStudiesResource


def sync_studies(instance: dg.DagsterInstance, path: str, prune: bool = False) -> tuple[list[str], list[str]]:
    """Make the instance's `incentive_study` partitions match the catalogue; (added, removed).
    Studies missing from the file are removed only with `prune` (see `sync_catalogue`)."""
    return sync_catalogue(
        instance, incentive_study_partitions, [s.key for s in load_catalog(path)],
        source=path, prune=prune, error=StudyCatalogError, command="propensity-assets sync-studies",
    )


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Keeps the `incentive_study` partitions in sync with data/incentive_studies.yaml: a new "
        "study appears as a partition, a removed one stops being scheduled (its history stays). "
        "An invalid catalogue leaves the partitions unchanged and says why."
    ),
)
def incentive_study_sync_sensor(context: dg.SensorEvaluationContext, incentive_studies: IncentiveStudiesResource):
    try:
        keys = [s.key for s in load_catalog(incentive_studies.path)]
    except StudyCatalogError as exc:
        return dg.SkipReason(f"Invalid incentive-study catalogue, partitions left unchanged: {exc}")
    existing = context.instance.get_dynamic_partitions(incentive_study_partitions.name)
    requests = sync_requests(incentive_study_partitions, keys, existing)
    if not requests:
        return dg.SkipReason(f"{len(keys)} incentive studies, already in sync")
    return dg.SensorResult(dynamic_partitions_requests=requests)
