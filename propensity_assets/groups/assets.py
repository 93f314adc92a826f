"""Product groups as partitions: the catalogue asset, the sync sensor and the sync function."""


import hashlib
from pathlib import Path

import dagster as dg

from propensity_assets.groups.catalog import CatalogError, load_catalog, resolve
from propensity_assets.groups.resources import ProductGroupsResource
from propensity_assets.shared.catalog_sync import CatalogueSync
from propensity_assets.shared.metadata import md_table
from propensity_assets.shared.partitions import product_group_partitions
from propensity_assets.shared.resources import LakeResource
from propensity_assets.shared import tables



def _keys(path: str) -> list[str]:
    return [group.key for group in load_catalog(path)]


groups_sync = CatalogueSync(
    partitions_def=product_group_partitions,
    keys=_keys,
    error=CatalogError,
    noun="product groups",
    catalogue="product-group catalogue",
    command="sync-groups",
)


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
    return groups_sync.sync(instance, path, prune=prune, keys=[group.key for group in groups])


def _resolve_on_change(context: dg.SensorEvaluationContext, path: str) -> tuple[list[dg.RunRequest], str]:
    """Re-resolve the groups' products when the catalogue file changed since the cursor."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    if context.cursor == digest:
        return [], digest
    # No run_key: the cursor already dedups, and a key derived from the digest would
    # make the daemon skip the re-resolution when a change is reverted (A → B → A).
    return [dg.RunRequest(asset_selection=[dg.AssetKey(tables.PRODUCT_GROUP_MEMBERS)], tags={"product_groups/catalogue": digest})], digest


product_group_sync_sensor = groups_sync.sensor(
    "product_group_sync_sensor",
    resource="product_groups",
    # Without a target, Dagster rejects the sensor's RunRequest and fails the whole tick,
    # partition requests included.
    target=dg.AssetSelection.assets(tables.PRODUCT_GROUP_MEMBERS),
    description=(
        "Keeps the `product_group` partitions in sync with data/product_groups.yaml: a new group "
        "appears as a partition, a removed one stops being scheduled (its history stays). "
        "When the catalogue changes it re-resolves the groups' products."
    ),
    on_change=_resolve_on_change,
)


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

    rows = [{"group": g.key, "description": g.description, "selectors": selectors(g), "products": size(g)} for g in groups]
    return dg.MaterializeResult(
        metadata={
            "groups": len(groups),
            "rows": len(members),
            "catalogue": md_table(rows, align={"products": "right"}),
            "catalogue_file": product_groups.path,
            **{f"products:{g.key}": int(counts[g.key]) for g in groups if not g.everything},
        }
    )
