"""A catalogue file's keys as the partitions of a `DynamicPartitionsDefinition`.

One mechanism for the product groups and the incentive studies: a `CatalogueSync`
keeps an instance's partitions equal to a catalogue's keys, from a sensor (`sensor`) or
from the project's CLI (`sync`, `run_cli`), with the same errors and messages for both.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from propensity_assets.shared.partitions import sync_catalogue, sync_requests

# A sensor's extra work when the catalogue file changes: (run requests, new cursor).
OnChange = Callable[[dg.SensorEvaluationContext, str], tuple[list[dg.RunRequest], "str | None"]]


@dataclass(frozen=True)
class CatalogueSync:
    """A catalogue file whose keys are the partitions of `partitions_def`."""

    partitions_def: dg.DynamicPartitionsDefinition
    keys: Callable[[str], list[str]]  # the catalogue's keys, in file order; raises `error`
    error: type[Exception]
    noun: str  # what a key is, plural: "product groups"
    catalogue: str  # what the file is: "product-group catalogue"
    command: str  # the CLI command that syncs it

    def sync(self, instance: dg.DagsterInstance, path: str, prune: bool = False,
             keys: list[str] | None = None) -> tuple[list[str], list[str]]:
        """Make the instance's partitions match the catalogue; (added, removed). Keys
        missing from the file are removed only with `prune` (see `sync_catalogue`)."""
        return sync_catalogue(
            instance, self.partitions_def, self.keys(path) if keys is None else keys,
            source=path, prune=prune, error=self.error, command=f"propensity-assets {self.command}",
        )

    def run_cli(self, open_instance: Callable[[], dg.DagsterInstance],
                sync: Callable[[dg.DagsterInstance], tuple[list[str], list[str]]]) -> int:
        """A CLI sync command: run `sync` on the instance and print its partitions, or the error (exit 2)."""
        try:
            with open_instance() as instance:
                added, removed = sync(instance)
                current = instance.get_dynamic_partitions(self.partitions_def.name)
        except self.error as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{self.noun}: {len(current)} ({', '.join(current)})")
        print(f"added: {', '.join(added) or 'none'}; removed: {', '.join(removed) or 'none'}")
        return 0

    def sensor(self, name: str, resource: str, description: str, target=None,
               on_change: OnChange | None = None) -> dg.SensorDefinition:
        """A running sensor that adds and deletes partitions as the catalogue (the `path` of
        resource `resource`) changes. An invalid catalogue leaves them unchanged and says why."""

        @dg.sensor(name=name, target=target, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
                   description=description, required_resource_keys={resource})
        def catalogue_sync_sensor(context: dg.SensorEvaluationContext, **resources):
            # A direct call (tests) passes the resource as an argument; a tick, on the context.
            path = (resources.get(resource) or getattr(context.resources, resource)).path
            try:
                keys = self.keys(path)
                run_requests, cursor = on_change(context, path) if on_change else ([], None)
            except (self.error, OSError) as exc:
                return dg.SkipReason(f"Invalid {self.catalogue}, partitions left unchanged: {exc}")
            existing = context.instance.get_dynamic_partitions(self.partitions_def.name)
            requests = sync_requests(self.partitions_def, keys, existing)
            if not requests and not run_requests:
                return dg.SkipReason(f"{len(keys)} {self.noun}, already in sync")
            return dg.SensorResult(run_requests=run_requests, dynamic_partitions_requests=requests, cursor=cursor)

        return catalogue_sync_sensor
