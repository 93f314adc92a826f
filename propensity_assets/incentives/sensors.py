"""Keep the `incentive_study` partitions in sync with the catalogue: a sensor and a function for the CLI."""

import dagster as dg

from propensity_assets.incentives.catalog import StudyCatalogError, load_catalog
from propensity_assets.shared.catalog_sync import CatalogueSync
from propensity_assets.shared.partitions import incentive_study_partitions

studies_sync = CatalogueSync(
    partitions_def=incentive_study_partitions,
    keys=lambda path: [s.key for s in load_catalog(path)],
    error=StudyCatalogError,
    noun="incentive studies",
    catalogue="incentive-study catalogue",
    command="sync-studies",
)


def sync_studies(instance: dg.DagsterInstance, path: str, prune: bool = False) -> tuple[list[str], list[str]]:
    """Make the instance's `incentive_study` partitions match the catalogue; (added, removed).
    Studies missing from the file are removed only with `prune` (see `sync_catalogue`)."""
    return studies_sync.sync(instance, path, prune=prune)


incentive_study_sync_sensor = studies_sync.sensor(
    "incentive_study_sync_sensor",
    resource="incentive_studies",
    description=(
        "Keeps the `incentive_study` partitions in sync with data/incentive_studies.yaml: a new "
        "study appears as a partition, a removed one stops being scheduled (its history stays). "
        "An invalid catalogue leaves the partitions unchanged and says why."
    ),
)
