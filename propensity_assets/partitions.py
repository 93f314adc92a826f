"""Partition definitions shared by every stage (CONTRACTS §3)."""


import dagster as dg
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from propensity_assets import settings

product_group_partitions = dg.DynamicPartitionsDefinition(name="product_group")

# One partition per study of data/incentive_studies.yaml (CONTRACTS §9).
incentive_study_partitions = dg.DynamicPartitionsDefinition(name="incentive_study")

as_of_partitions = dg.DailyPartitionsDefinition(
    start_date=settings.as_of_start(),
    end_date=settings.as_of_end(),
    fmt="%Y-%m-%d",
)

as_of_group_partitions = dg.MultiPartitionsDefinition(
    {"as_of": as_of_partitions, "product_group": product_group_partitions}
)

# Weekly training cutoffs, on Fridays like the CONTRACTS §7 holdout (2017-12-01).
# The dimension is named `cutoff` so that keys read `YYYY-MM-DD|<group>` too.
cutoff_partitions = dg.WeeklyPartitionsDefinition(
    start_date=settings.training_start(),
    end_date=settings.as_of_end(),
    day_offset=5,
    fmt="%Y-%m-%d",
)

cutoff_group_partitions = dg.MultiPartitionsDefinition(
    {"cutoff": cutoff_partitions, "product_group": product_group_partitions}
)


def requested_keys(context: dg.AssetExecutionContext) -> list[str]:
    """Every partition key a run targets, however it was launched.

    Single-run backfills of multi-partitioned assets have, in some Dagster releases,
    exposed only the first key through `context.partition_keys`. The run's range
    tags are the source of truth, so expand them against the instance's dynamic
    partitions and take the union with what the context reports.
    """
    partitions_def = context.assets_def.partitions_def
    keys = dict.fromkeys(context.partition_keys)
    tags = context.run.tags
    start = tags.get(ASSET_PARTITION_RANGE_START_TAG)
    end = tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end and partitions_def is not None:
        # Only some partitions definitions take a `dynamic_partitions_store` argument (a
        # daily one does not); the loading context serves every kind.
        with partition_loading_context(dynamic_partitions_store=context.instance):
            for key in partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(start, end)):
                keys.setdefault(str(key))
    return list(keys)


def split_key(key: str) -> tuple[str, str]:
    """`YYYY-MM-DD|<group>` → (as_of, product_group)."""
    as_of, sep, group = key.partition("|")
    if not sep:
        raise ValueError(f"Partition key {key!r} is not of the form YYYY-MM-DD|<product_group>")
    return as_of, group


def group_range_tags(
    instance: dg.DagsterInstance, start: str, end: str | None = None, group: str | None = None
) -> dict[str, str]:
    """Run tags for one run over dates start..end × one group or all groups.

    A multi-partition range is the rectangle between its two keys, and the dynamic
    dimension is ordered as the instance holds it, so "all groups" runs from the
    first to the last group there.
    """
    groups = instance.get_dynamic_partitions(product_group_partitions.name)
    if not groups:
        raise ValueError("no product_group partitions: run `propensity-assets sync-groups` first")
    if group is not None and group not in groups:
        raise ValueError(f"product group {group!r} is not a partition; known: {', '.join(groups)}")
    first, last = (group, group) if group else (groups[0], groups[-1])
    return {
        ASSET_PARTITION_RANGE_START_TAG: f"{start}|{first}",
        ASSET_PARTITION_RANGE_END_TAG: f"{end or start}|{last}",
    }
