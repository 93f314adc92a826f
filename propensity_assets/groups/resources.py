"""The product-group catalogue file as a resource (default data/product_groups.yaml)."""

import dagster as dg

from propensity_assets.shared import settings


class ProductGroupsResource(dg.ConfigurableResource):
    """The product-group catalogue file (CONTRACTS §2)."""

    path: str = str(settings.product_groups_file())
