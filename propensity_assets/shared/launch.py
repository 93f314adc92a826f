"""`propensity-assets launch`: a run of one of the project's named jobs, made the way the
web UI and the daemon make runs, and executed in this process.

`dg launch --job J` (and the superseded `dagster job execute`) execute the job in process
from a Python pointer, so their runs carry no code-location origin: the UI's Jobs pages,
which list the runs of a job of *this* code location (the `.dagster/repository` tag),
never show them. Here the run is created from the code location (`propensity_assets`, as
in workspace.yaml and `[tool.dg.project]`), so it carries that origin, and then executed
here, in the foreground, with its logs on the terminal, like `dg launch`. A partition range
is one run (every asset of the project's jobs backfills in a single run); `assets` runs a
subset of the job, as "Materialize selected" does in the UI.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

LOCATION_NAME = "propensity_assets"
DEFINITIONS_MODULE = "propensity_assets.definitions"


class LaunchError(ValueError):
    """A launch request that names no job, asset or partition of the project."""


def _code_location(instance):
    import os
    import sys

    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE,
                                  working_directory=os.getcwd())
    return InProcessCodeLocationOrigin(target, location_name=LOCATION_NAME).create_location(instance)


def _partition_tags(job_def, asset_keys, partition: str | None, partition_range: str | None, instance) -> dict:
    """The run tags of one partition or of a single-run range, each end checked against the job."""
    from dagster._core.definitions.partitions.context import partition_loading_context
    from dagster._core.errors import DagsterUnknownPartitionError
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    if partition and partition_range:
        raise LaunchError("give --partition or --partition-range, not both")
    keys = [partition] if partition else (partition_range.split("...") if partition_range else [])
    if partition_range and len(keys) != 2:
        raise LaunchError(f"--partition-range {partition_range!r}: expected FIRST...LAST")
    partitioned = any(job_def.asset_layer.get(key).partitions_def is not None for key in asset_keys)
    if not keys:
        if partitioned:
            raise LaunchError(f"job {job_def.name} is partitioned: give --partition or --partition-range")
        return {}
    if not partitioned:
        raise LaunchError(f"job {job_def.name} is not partitioned: drop --partition/--partition-range")
    with partition_loading_context(dynamic_partitions_store=instance) as context:
        for key in keys:
            try:
                job_def.validate_partition_key(key, selected_asset_keys=asset_keys, context=context)
            except DagsterUnknownPartitionError:
                raise LaunchError(f"{key!r} is not a partition of job {job_def.name} on this instance "
                                  "(run `propensity-assets sync-groups` / `sync-studies` for new groups or studies)") from None
        if partition:
            return dict(job_def.get_tags_for_partition_key(partition, selected_asset_keys=asset_keys))
    return {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[1]}


def launch(instance, job_name: str, *, assets: Sequence[str] = (), partition: str | None = None,
           partition_range: str | None = None, run_config: dict | None = None):
    """Create the run of `job_name` (its `assets` only, if given) from the code location and
    execute it here; returns the finished DagsterRun."""
    import importlib

    import dagster as dg
    from dagster._utils.hosted_user_process import recon_job_from_origin
    from dagster._core.definitions.selector import JobSubsetSelector
    from dagster._core.execution.api import execute_run

    with _code_location(instance) as location:
        (repo,) = location.get_repositories().values()
        if not repo.has_job(job_name):
            names = sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__"))
            raise LaunchError(f"no job {job_name!r} in {DEFINITIONS_MODULE}: the jobs are {', '.join(names)}")
        job_def = importlib.import_module(DEFINITIONS_MODULE).defs.resolve_job_def(job_name)
        in_job = set(job_def.asset_layer.executable_asset_keys)
        selected = [dg.AssetKey.from_user_string(a) for a in assets] or sorted(in_job)
        missing = [k.to_user_string() for k in selected if k not in in_job]
        if missing:
            raise LaunchError(f"job {job_name} has no asset {', '.join(missing)}: its assets are "
                              f"{', '.join(sorted(k.to_user_string() for k in in_job))}")
        tags = _partition_tags(job_def, selected, partition, partition_range, instance)
        asset_selection = frozenset(selected) if assets else None
        remote_job = location.get_job(JobSubsetSelector(
            location_name=location.name, repository_name=repo.name, job_name=job_name, op_selection=None,
            asset_selection=asset_selection))
        run_config = run_config or {}
        plan = location.get_execution_plan(remote_job, run_config, step_keys_to_execute=None, known_state=None,
                                           instance=instance).execution_plan_snapshot
        run = instance.create_run(
            job_name=job_name, run_id=None, run_config=run_config, resolved_op_selection=None,
            step_keys_to_execute=plan.step_keys_to_execute, op_selection=None, status=None, root_run_id=None,
            parent_run_id=None, tags={**remote_job.tags, **tags}, job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan, parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(),
            asset_selection=asset_selection, asset_check_selection=None, asset_graph=repo.asset_graph,
        )
        recon_job = recon_job_from_origin(run.job_code_origin)
        if asset_selection is not None:
            recon_job = recon_job.get_subset(asset_selection=asset_selection)
        execute_run(recon_job, run, instance)
    return instance.get_run_by_id(run.run_id)


def parse_config(config_json: str | None) -> dict:
    if not config_json:
        return {}
    try:
        config = json.loads(config_json)
    except json.JSONDecodeError as exc:
        raise LaunchError(f"--config-json is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise LaunchError("--config-json must be a JSON object (the run config)")
    return config
