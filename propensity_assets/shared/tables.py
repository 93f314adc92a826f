"""The lake's tables (CONTRACTS §5): every room names a table it reads or writes from here,
so a table's name lives in one place. Each is a Parquet dataset at `<lake>/<table>/`."""

# Ingest: the raw tables of CONTRACTS §1, and the rows validation refused.
TRANSACTIONS = "transactions"
PRODUCTS = "products"
HOUSEHOLDS = "households"
CAMPAIGNS = "campaigns"
CAMPAIGN_DESCRIPTIONS = "campaign_descriptions"
COUPONS = "coupons"
COUPON_REDEMPTIONS = "coupon_redemptions"
QUARANTINE = "quarantine"

# Product groups: the catalogue resolved to product ids.
PRODUCT_GROUP_MEMBERS = "product_group_members"

# Features [as_of] and [as_of × product_group].
HOUSEHOLD_FEATURES = "household_features"
GROUP_FEATURES = "group_features"

# The modelling stages' labels and scores [as_of × product_group].
PROPENSITY_LABELS = "propensity_labels"
PROPENSITY_SCORES = "propensity_scores"
LTV_LABELS = "ltv_labels"
LTV_SCORES = "ltv_scores"
LTV_COHORTS = "ltv_cohorts"

# The profile [as_of].
CUSTOMER_PROFILE = "customer_profile"
CUSTOMER_PROFILE_LONG = "customer_profile_long"

# The households to target per campaign [as_of × product_group], chosen from the profile.
AUDIENCES = "audiences"

# Incentive studies [study] (CONTRACTS §9); a retail study's key is `retail_<group>`.
INCENTIVE_STUDY_DATA = "incentive_study_data"
INCENTIVE_GRAPH = "incentive_graph"
INCENTIVE_EFFECTS = "incentive_effects"
INCENTIVE_SUMMARY = "incentive_summary"
INCENTIVE_REFUTATIONS = "incentive_refutations"
INCENTIVE_RECOMMENDATIONS = "incentive_recommendations"
INCENTIVE_POLICY = "incentive_policy"  # the recommender's policy comparison (not a CONTRACTS table)
