"""Product groups as partitions: the catalogue asset, the sync sensor and the sync function."""


import hashlib
from pathlib import Path

import dagster as dg

from propensity_assets.groups.catalog import CatalogError, load_catalog, resolve
from propensity_assets.shared.partitions import product_group_partitions, sync_catalogue, sync_requests
from propensity_assets.groups.resources import ProductGroupsResource
from propensity_assets.shared.resources import LakeResource
from propensity_assets.shared import tables



def sync_product_groups(
    instance: dg.DagsterInstance, path: str, products=None, prune: bool = False
) -> tuple[list[str], list[str]]:
    """Make the instance's `product_group` partitions match the catalogue file; (added, removed).

    With `products` (the lake's table), every selector is checked against it first.
    Groups missing from the file are removed only with `prune` (see `sync_catalogue`).
    """
    groups = load_catalog(path)
    if products is not None:
        resolve(groups, products, path)  # raises CatalogError naming the group and value
    return sync_catalogue(
        instance, product_group_partitions, [group.key for group in groups],
        source=path, prune=prune, error=CatalogError, command="propensity-assets sync-groups",
    )


@dg.sensor(
    # Without a target, Dagster rejects the sensor's RunRequest and fails the whole tick,
    # partition requests included.
    target=dg.AssetSelection.assets(tables.PRODUCT_GROUP_MEMBERS),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Keeps the `product_group` partitions in sync with data/product_groups.yaml: a new group "
        "appears as a partition, a removed one stops being scheduled (its history stays). "
        "When the catalogue changes it re-resolves the groups' products."
    ),
)
def product_group_sync_sensor(context: dg.SensorEvaluationContext, product_groups: ProductGroupsResource):
    try:
        groups = load_catalog(product_groups.path)
        text = Path(product_groups.path).read_bytes()
    except (CatalogError, OSError) as exc:
        return dg.SkipReason(f"Invalid product-group catalogue, partitions left unchanged: {exc}")
    keys = [group.key for group in groups]
    existing = context.instance.get_dynamic_partitions(product_group_partitions.name)
    requests = sync_requests(product_group_partitions, keys, existing)
    digest = hashlib.sha256(text).hexdigest()[:16]
    run_requests = []
    if context.cursor != digest:
        # No run_key: the cursor already dedups, and a key derived from the digest would
        # make the daemon skip the re-resolution when a change is reverted (A → B → A).
        run_requests.append(
            dg.RunRequest(asset_selection=[dg.AssetKey(tables.PRODUCT_GROUP_MEMBERS)], tags={"product_groups/catalogue": digest})
        )
    if not requests and not run_requests:
        return dg.SkipReason(f"{len(keys)} product groups, already in sync")
    return dg.SensorResult(run_requests=run_requests, dynamic_partitions_requests=requests, cursor=digest)


@dg.asset(
    name=tables.PRODUCT_GROUP_MEMBERS,
    group_name="ingest",
    kinds={"pandas", "parquet"},
    deps=[tables.PRODUCTS],
    description=(
        "The product-group catalogue resolved against `products`: one row per "
        "(product_group, product_id). Groups may overlap. Metadata lists each group's "
        "description, selectors and product count."
    ),
)
def product_group_members(product_groups: ProductGroupsResource, lake: LakeResource) -> dg.MaterializeResult:
    groups = load_catalog(product_groups.path)
    products = lake.lake.read_pandas(tables.PRODUCTS)
    members = resolve(groups, products, product_groups.path)
    lake.lake.write_pandas(tables.PRODUCT_GROUP_MEMBERS, members)
    counts = members.groupby("product_group").size()
    def selectors(group) -> str:
        if group.everything:
            return "all: every product, including ids `products` does not know"
        return "; ".join(f"{kind}: {', '.join(map(str, values))}" for kind, values in group.selectors.items())

    def size(group) -> str:
        return "all" if group.everything else f"{counts[group.key]:,}"

    lines = [f"| {g.key} | {g.description} | {selectors(g)} | {size(g)} |" for g in groups]
    table = "| group | description | selectors | products |\n|---|---|---|---:|\n" + "\n".join(lines)
    return dg.MaterializeResult(
        metadata={
            "groups": len(groups),
            "rows": len(members),
            "catalogue": dg.MetadataValue.md(table),
            "catalogue_file": product_groups.path,
            **{f"products:{g.key}": int(counts[g.key]) for g in groups if not g.everything},
        }
    )
