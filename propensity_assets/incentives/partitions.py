"""The `incentive_study` partitions (CONTRACTS §9): one per study of data/incentive_studies.yaml."""

import dagster as dg

incentive_study_partitions = dg.DynamicPartitionsDefinition(name="incentive_study")
