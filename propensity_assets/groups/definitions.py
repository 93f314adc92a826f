"""The product-groups room's definitions: the catalogue resolved to products, and the sensor
that keeps the `product_group` partitions in sync with it."""

import dagster as dg

from propensity_assets.groups.assets import product_group_members, product_group_sync_sensor
from propensity_assets.groups.resources import ProductGroupsResource

defs = dg.Definitions(
    assets=[product_group_members],
    sensors=[product_group_sync_sensor],
    resources={"product_groups": ProductGroupsResource()},
)
