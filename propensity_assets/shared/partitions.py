"""Partition definitions shared by every stage (CONTRACTS §3)."""


from datetime import date, datetime

import dagster as dg
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from propensity_assets.shared import settings

product_group_partitions = dg.DynamicPartitionsDefinition(name="product_group")

# One partition per study of data/incentive_studies.yaml (CONTRACTS §9).
incentive_study_partitions = dg.DynamicPartitionsDefinition(name="incentive_study")

# A fixed end (the embedded data's), or live: up to today, today's partition included
# from midnight UTC (end_offset=1), so the morning's scheduled run can compute it.
_END = settings.as_of_end()
_END_OFFSET = 0 if _END else 1

as_of_partitions = dg.DailyPartitionsDefinition(
    start_date=settings.as_of_start(),
    end_date=_END,
    end_offset=_END_OFFSET,
    fmt="%Y-%m-%d",
)

as_of_group_partitions = dg.MultiPartitionsDefinition(
    {"as_of": as_of_partitions, "product_group": product_group_partitions}
)

# Weekly training cutoffs, on Fridays like the CONTRACTS §7 holdout (2017-12-01).
# The dimension is named `cutoff` so that keys read `YYYY-MM-DD|<group>` too.
cutoff_partitions = dg.WeeklyPartitionsDefinition(
    start_date=settings.training_start(),
    end_date=_END,
    end_offset=_END_OFFSET,  # live: this Friday's cutoff from Friday 00:00 UTC
    day_offset=5,
    fmt="%Y-%m-%d",
)

cutoff_group_partitions = dg.MultiPartitionsDefinition(
    {"cutoff": cutoff_partitions, "product_group": product_group_partitions}
)


def catalogue_changes(keys: list[str], existing: list[str]) -> tuple[list[str], list[str]]:
    """(added, removed): what makes the `existing` dynamic partitions equal a catalogue's keys."""
    wanted, have = set(keys), set(existing)
    return [k for k in keys if k not in have], [k for k in existing if k not in wanted]


def sync_requests(partitions_def: dg.DynamicPartitionsDefinition, keys: list[str], existing: list[str]) -> list:
    """The sensor's dynamic-partition requests that make `existing` equal the catalogue.

    A removed key is deleted from the partitions so that nothing schedules it; its run
    history and lake partitions stay readable.
    """
    added, removed = catalogue_changes(keys, existing)
    requests = []
    if added:
        requests.append(partitions_def.build_add_request(added))
    if removed:
        requests.append(partitions_def.build_delete_request(removed))
    return requests


def sync_catalogue(
    instance: dg.DagsterInstance,
    partitions_def: dg.DynamicPartitionsDefinition,
    keys: list[str],
    *,
    source: str,
    prune: bool,
    error: type[Exception],
    command: str,
) -> tuple[list[str], list[str]]:
    """Make the instance's `partitions_def` partitions equal a catalogue's keys; (added, removed).

    For headless use (the CLI's sync commands): Dagster's CLI cannot add dynamic
    partitions. Keys missing from the catalogue are removed only with `prune`: a
    catalogue cut short by mistake must not drop partitions silently (raises `error`,
    naming `source` and the keys, and changes nothing).
    """
    existing = instance.get_dynamic_partitions(partitions_def.name)
    added, removed = catalogue_changes(keys, existing)
    if removed and not prune:
        raise error(
            f"{source}: {partitions_def.name} partition(s) {', '.join(removed)} are not in the catalogue; "
            f"nothing was changed. Add them back, or run `{command} --prune` to remove them "
            "(their run history and lake partitions stay)"
        )
    if added:
        instance.add_dynamic_partitions(partitions_def.name, added)
    for key in removed:
        instance.delete_dynamic_partition(partitions_def.name, key)
    return added, removed


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
        try:
            with partition_loading_context(dynamic_partitions_store=context.instance):
                in_range = partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
        except dg.DagsterInvalidInvocationError:  # an end that is no partition (an unknown group)
            in_range = []
        if not in_range:
            problem = range_problem(context.instance, start, end, _dates_of(partitions_def)) or "it holds no partition"
            raise dg.Failure(
                f"{context.asset_key.to_user_string()}: the partition range {start}...{end} is empty: {problem}",
                allow_retries=False,
            )
        for key in in_range:
            keys.setdefault(str(key))
    if not keys:
        raise dg.Failure(f"{context.asset_key.to_user_string()}: the run targets no partition", allow_retries=False)
    return list(keys)


def _dimension(value: str, position: int, instance: dg.DagsterInstance, dates: str) -> tuple[str, list[str]]:
    """(dimension name, its keys in order) for one part of a key: dates first, groups second."""
    if dates == incentive_study_partitions.name:
        return dates, instance.get_dynamic_partitions(dates)
    if position == 0 and value[:1].isdigit():
        return dates, (cutoff_partitions if dates == "cutoff" else as_of_partitions).get_partition_keys()
    return product_group_partitions.name, instance.get_dynamic_partitions(product_group_partitions.name)


def _dates_of(partitions_def) -> str:
    """The date dimension's name of a partitions definition: `cutoff` for training assets."""
    if partitions_def is incentive_study_partitions:
        return incentive_study_partitions.name
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return "cutoff" if "cutoff" in partitions_def.partition_dimension_names else "as_of"
    return "cutoff" if partitions_def is cutoff_partitions else "as_of"


def key_problem(instance: dg.DagsterInstance, key: str, dates: str = "as_of") -> str | None:
    """Why `key` (`YYYY-MM-DD`, `YYYY-MM-DD|<group>` or `<group>`) is not a partition, or None.
    The message shows the valid range or the known groups."""
    from datetime import date

    for position, part in enumerate(key.split("|")):
        name, keys = _dimension(part, position, instance, dates)
        if name in ("as_of", "cutoff"):
            try:
                date.fromisoformat(part)
            except ValueError:
                return f"{part!r} in {key!r} is not a date: expected YYYY-MM-DD"
            if part not in keys:
                what, first = (("the weekly cutoffs (Fridays)", "PROPENSITY_TRAINING_START") if name == "cutoff"
                               else ("the as_of partitions", "PROPENSITY_AS_OF_START"))
                return (f"{name} {part} in {key!r} is not one of {what}, {keys[0]} .. {keys[-1]} "
                        f"({first}, PROPENSITY_AS_OF_END)")
        elif part not in keys:
            what, sync = ("study", "sync-studies") if name == incentive_study_partitions.name else ("product group", "sync-groups")
            known = ", ".join(keys) if keys else f"none: run `propensity-assets {sync}` first"
            return f"{what} {part!r} in {key!r} is not a partition; known: {known}"
    return None


def range_problem(instance: dg.DagsterInstance, start: str, end: str, dates: str = "as_of") -> str | None:
    """Why START...END covers no partition (a bad key, or the ends in the wrong order), or None."""
    for key in (start, end):
        problem = key_problem(instance, key, dates)
        if problem:
            return problem
    for position, (first, last) in enumerate(zip(start.split("|"), end.split("|"))):
        name, keys = _dimension(first, position, instance, dates)
        if keys.index(first) > keys.index(last):
            order = "date" if name in ("as_of", "cutoff") else "product group (in the instance's order: " + ", ".join(keys) + ")"
            return (f"{name} {first} comes after {last}; give the earlier {order} first, or print a range "
                    "with `propensity-assets partition-range START END`")
    return None


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


# -- "today" and the newest partitions ------------------------------------------------------


def today(scheduled: datetime | None = None) -> date:
    """The date schedules and sensors act for: PROPENSITY_TODAY for data that ended in the
    past (the embedded data), else the tick's date (or now)."""
    configured = settings.configured_today()
    if configured:
        return date.fromisoformat(configured)
    return (scheduled or datetime.now()).date()


def latest_as_of(now: date) -> str:
    """The newest as_of partition on or before `now`: features as of today use data before today."""
    keys = as_of_partitions.get_partition_keys()
    eligible = [k for k in keys if k <= now.isoformat()]
    if not eligible:
        raise ValueError(f"no as_of partition on or before {now}")
    return eligible[-1]


def latest_cutoff(now: date) -> str:
    """The newest weekly training cutoff on or before `now`."""
    keys = [k for k in cutoff_partitions.get_partition_keys() if k <= now.isoformat()]
    if not keys:
        raise ValueError(f"no weekly cutoff on or before {now}")
    return keys[-1]
