"""The `audiences` asset: per as_of and campaign (product group), the households to target."""

from typing import Optional

import dagster as dg
from pydantic import Field

from propensity_assets.audiences.build import build, export_path, write_csv
from propensity_assets.audiences.rules import COLUMNS, AudienceError, rule_from
from propensity_assets.shared import tables
from propensity_assets.shared.lake import partition_dir
from propensity_assets.shared.metadata import md_table
from propensity_assets.shared.partitions import as_of_group_partitions
from propensity_assets.shared.resources import LakeResource

# When the launchpad sets no rule: the top score decile.
DEFAULT_DECILES = 1

SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("household_id", "int64", description="the household"),
    dg.TableColumn("rank", "int64", description="1 = the first to target"),
    dg.TableColumn("score", "float64", description="propensity to buy the group within 30 days"),
    dg.TableColumn("score_decile", "int32", description="1 = the top 10 % by score"),
    dg.TableColumn("ltv", "float64", description="predicted spend on the group over the LTV horizon"),
    dg.TableColumn("expected_value", "float64", description="score × ltv"),
    dg.TableColumn("incentive", "string", description="the retail study's recommended option, if it ran"),
    dg.TableColumn("rule", "string", description="the selection rule, as text"),
])


class AudienceConfig(dg.Config):
    """One rule (leave the others empty; none set: the top score decile), and an optional
    incentive filter."""

    top: Optional[int] = Field(default=None, description="the k households with the highest score")
    deciles: Optional[int] = Field(default=None, description="score deciles 1..N (1 = the top 10 %)")
    threshold: Optional[float] = Field(default=None, description="households whose score is above this propensity")
    min_expected_value: Optional[float] = Field(
        default=None, description="households whose score × LTV is above this cost per contact")
    incentive: Optional[str] = Field(
        default=None, description="only households whose recommended incentive is this option (e.g. `none`)")


@dg.asset(
    name=tables.AUDIENCES,
    group_name="audiences",
    partitions_def=as_of_group_partitions,
    kinds={"pandas", "parquet", "csv"},
    deps=[tables.CUSTOMER_PROFILE],
)
def audiences(context: dg.AssetExecutionContext, config: AudienceConfig, lake: LakeResource) -> dg.MaterializeResult:
    """The households to target in one campaign (product group) at one as_of, chosen from the
    customer profile by the launchpad's rule: the top k by score, the top score deciles, a
    score above a threshold, or expected value (score × LTV) above a cost per contact;
    optionally only households whose recommended incentive is a given option. One row per
    household with its rank, score, decile, LTV, expected value and incentive, written to the
    lake (`audiences`) and exported as CSV for campaign tools
    (`data/exports/audiences/<as_of>/<group>.csv`). The same audience prints with
    `propensity-assets audience`."""
    keys = context.partition_key.keys_by_dimension
    as_of, group = keys["as_of"], keys["product_group"]
    chosen = (config.top, config.deciles, config.threshold, config.min_expected_value)
    try:
        rule = rule_from(*(chosen if any(v is not None for v in chosen) else (None, DEFAULT_DECILES, None, None)),
                         incentive=config.incentive)
        audience = build(lake.lake, as_of, group, rule)
    except AudienceError as exc:
        raise dg.Failure(f"audiences {as_of}|{group}: {exc}", allow_retries=False) from None
    spec = {"as_of": as_of, "product_group": group}
    lake.lake.write_pandas(tables.AUDIENCES, audience.assign(**spec), list(spec), [spec])
    csv = write_csv(audience, export_path(lake.lake, as_of, group))
    return dg.MaterializeResult(metadata={
        "size": len(audience),
        "rule": str(rule),
        "as_of": as_of,
        "product_group": group,
        "score_min": float(audience["score"].min()) if len(audience) else float("nan"),
        "expected_value_total": float(audience["expected_value"].sum()) if len(audience) else 0.0,
        "dagster/row_count": len(audience),
        "dagster/column_schema": SCHEMA,
        "dagster/uri": f"{lake.lake.uri(tables.AUDIENCES)}/{partition_dir(spec)}",
        "csv": dg.MetadataValue.path(str(csv)),
        "top": md_table(audience.head(10)[[c for c in COLUMNS if c != "rule"]]),
    })
