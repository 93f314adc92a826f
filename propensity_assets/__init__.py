"""propensity_assets: a retailer's marketing-scoring lifecycle as Dagster software-defined assets."""
