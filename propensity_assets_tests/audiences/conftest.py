"""A tiny lake with a profile, one audience and the SQL catalogue, materialized once per
session through the real assets (pandas only, no Spark) on a real Dagster instance."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from propensity_assets.definitions import defs
from propensity_assets.shared import tables
from propensity_assets.shared.lake import Lake
from propensity_assets.shared.resources import LakeResource
from propensity_assets_tests.in_process import assets

AS_OF = "2017-12-01"
# beef: six households; 2 and 3 tie on score. eggs: households 1-3 only.
BEEF = pd.DataFrame({
    "household_id": [1, 2, 3, 4, 5, 6],
    "score": [0.90, 0.80, 0.80, 0.50, 0.20, 0.05],
    "ltv": [10.0, 100.0, 50.0, 300.0, 20.0, 0.0],
    "label": [1, 0, 1, 1, 0, 0],  # bought beef in the 30 days after AS_OF
    "recommended": ["TypeB", "none", "TypeB", "none", "TypeB", "none"],
})
EGGS = pd.DataFrame({"household_id": [1, 2, 3], "score": [0.3, 0.6, 0.9], "ltv": [5.0, 6.0, 7.0], "label": [0, 1, 1]})


@dataclass
class TinyLake:
    root: Path
    lake: Lake
    groups_file: Path
    results: dict  # asset name → its ExecuteInProcessResult
    instance: dg.DagsterInstance


def _scores(group: str, frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return pd.DataFrame({"as_of": AS_OF, "product_group": group, "household_id": frame["household_id"],
                         column: frame[column], "model_name": f"x__{group}", "model_version": "1"})


def write_inputs(lake: Lake) -> None:
    """What scoring, labelling and the retail study of beef would have written."""
    for table, column in ((tables.PROPENSITY_SCORES, "score"), (tables.LTV_SCORES, "ltv")):
        lake.write_pandas(table, pd.concat([_scores("beef", BEEF, column), _scores("eggs", EGGS, column)]),
                          ["as_of", "product_group"])
    labels = pd.concat([_scores("beef", BEEF, "label"), _scores("eggs", EGGS, "label")])
    lake.write_pandas(tables.PROPENSITY_LABELS, labels[["as_of", "product_group", "household_id", "label"]],
                      ["as_of", "product_group"])
    study = {"study": "retail_beef"}
    lake.write_pandas(tables.INCENTIVE_SUMMARY, pd.DataFrame({"study": ["retail_beef"], "treatment": ["TypeB"],
                                                              "verdict": ["identified"]}), ["study"])
    lake.write_pandas(tables.INCENTIVE_RECOMMENDATIONS,
                      BEEF[["household_id", "recommended"]].rename(columns={"household_id": "unit_id"}).assign(**study),
                      ["study"])


@pytest.fixture(scope="session")
def tiny_lake(tmp_path_factory) -> TinyLake:
    root = tmp_path_factory.mktemp("audiences")
    lake = Lake(str(root / "lake"))
    write_inputs(lake)
    groups_file = root / "groups.yaml"
    groups_file.write_text("product_groups:\n  beef:\n    categories: [BEEF]\n  eggs:\n    categories: [EGGS]\n")
    resources = {"lake": LakeResource(uri=lake.root)}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("product_group", ["beef", "eggs"])
        results = {}
        for names, key, config in (
            (["customer_profile"], AS_OF, None),
            (["audiences"], f"{AS_OF}|beef", {"ops": {"audiences": {"config": {"top": 3}}}}),
        ):
            result = dg.materialize(assets(*names), instance=instance, resources=resources, partition_key=key,
                                    run_config=config or {})
            assert result.success
            results[names[0]] = result
        # The profile job rebuilds the profile for its date, then the SQL catalogue (unpartitioned);
        # the LTV cohorts beside them need household features, which this lake lacks.
        result = defs.resolve_job_def("profile_job").get_subset(
            asset_selection={dg.AssetKey("customer_profile"), dg.AssetKey("sql_catalog")}
        ).execute_in_process(instance=instance, partition_key=AS_OF, resources=resources)
        assert result.success
        results["sql_catalog"] = result
        yield TinyLake(root, lake, groups_file, results, instance)
