"""A catalogue study end to end, its recommender included (it needs the study's assets), on a
real Dagster instance, a temp lake and a real MLflow (SQLite)."""

import textwrap

import dagster as dg
import mlflow
import pandas as pd
import pytest

from propensity_assets.incentives.recommender_assets import assets as recommender_assets
from propensity_assets.incentives.study_assets import EffectsConfig, StudyDataConfig
from propensity_assets.incentives.study_assets import assets as study_assets
from propensity_assets.incentives.resources import IncentiveStudiesResource
from propensity_assets.incentives.sensors import incentive_study_sync_sensor, sync_studies
from propensity_assets.shared.lake import Lake
from propensity_assets.shared.resources import LakeResource, MlflowResource

CATALOGUE = textwrap.dedent(
    """
    incentive_studies:
      sw:
        generate: software_company
        generator: {n: 3000, seed: 5}
        outcome: Revenue
        treatments:
          Tech Support: {cost: "100 * `PC Count`"}
          Discount: {cost: 7000}
        covariates: [Global Flag, Major Flag, SMC Flag, Commercial Flag, IT Spend, Employee Count, PC Count, Size]
        mediators: {New Product Adoption: [Tech Support]}
        other: [Planning Summit]
        effects: {Tech Support: [total, direct], Discount: [total]}
        knowledge:
          tiers:
            - [Global Flag, Major Flag, SMC Flag, Commercial Flag, IT Spend, Employee Count, PC Count, Size]
            - [Tech Support, Discount]
            - [New Product Adoption]
            - [Revenue]
            - [Planning Summit]
          required: [[Tech Support, Revenue], [Discount, Revenue], [IT Spend, Tech Support], [IT Spend, Discount],
                     [Tech Support, New Product Adoption], [New Product Adoption, Revenue], [Revenue, Planning Summit]]
          forbidden: [[Tech Support, Discount], [Discount, Tech Support]]
        expected_graph: [[IT Spend, Tech Support], [IT Spend, Discount], [Tech Support, Revenue], [Discount, Revenue],
                         [Tech Support, New Product Adoption], [New Product Adoption, Revenue], [Revenue, Planning Summit]]
    """
)
FAST = EffectsConfig(folds=2, n_estimators=80)
assets = [*study_assets, *recommender_assets]
RUN_CONFIG = dg.RunConfig(ops={"incentive_effects": FAST, "incentive_refutations": FAST,
                               "incentive_study_data": StudyDataConfig()})


@pytest.fixture(scope="module")
def env(tmp_path_factory, module_instance):
    tmp = tmp_path_factory.mktemp("incentives")
    catalogue = tmp / "studies.yaml"
    catalogue.write_text(CATALOGUE)
    resources = {
        "lake": LakeResource(uri=str(tmp / "lake")),
        "mlflow": MlflowResource(tracking_uri=f"sqlite:///{tmp}/mlflow.db", artifact_root=(tmp / "artifacts").as_uri()),
        "incentive_studies": IncentiveStudiesResource(path=str(catalogue)),
    }
    assert sync_studies(module_instance, str(catalogue)) == (["sw"], [])
    result = dg.materialize(assets, resources=resources, partition_key="sw", instance=module_instance,
                            run_config=RUN_CONFIG)
    assert result.success
    return {"tmp": tmp, "catalogue": catalogue, "resources": resources, "result": result, "instance": module_instance}


def test_lake_tables_follow_the_contract(env):
    lake = Lake(str(env["tmp"] / "lake"))
    effects = lake.read_pandas("incentive_effects")
    assert {"unit_id", "treatment", "effect", "cate", "cate_lower", "cate_upper", "study"} <= set(effects.columns)
    assert set(zip(effects.treatment, effects.effect)) == {("Tech Support", "total"), ("Tech Support", "direct"), ("Discount", "total")}
    summary = lake.read_pandas("incentive_summary")
    assert {"treatment", "effect", "ate", "ate_lower", "ate_upper", "verdict", "reason"} <= set(summary.columns)
    assert (summary.verdict == "identified").all()
    recs = lake.read_pandas("incentive_recommendations")
    assert set(recs.recommended) <= {"none", "Tech Support", "Discount", "Tech Support+Discount"}
    assert {"expected_profit", "expected_profit__none", "expected_profit__Tech Support+Discount"} <= set(recs.columns)
    data = lake.read_pandas("incentive_study_data")
    assert list(data.unit_id) == list(range(3000)) and "Total Treatment Effect: Tech Support" in data.columns
    assert lake.partitions("incentive_effects", "study") == ["sw"]


def test_metadata_and_checks(env):
    result = env["result"]
    meta = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert "data:image/png;base64" in meta["incentive_graph"]["graph"].value
    assert "shd corrected" in meta["incentive_graph"] and "adjustment sets" in meta["incentive_graph"]
    assert "Tech Support" in meta["incentive_effects"]["ATE table"].value
    assert "observed allocation" in meta["incentive_recommendations"]["policy comparison"].value
    # The recommender's DR value is its cross-fitted policy's, as the lake's policy table holds it.
    recs_meta = meta["incentive_recommendations"]
    assert recs_meta["dr_value_basis"].value.startswith("the recommender's DR value is cross-fitted (2 folds)")
    policy = Lake(str(env["tmp"] / "lake")).read_pandas("incentive_policy").set_index("policy")["dr_value"]
    assert recs_meta["dr_value recommended"].value == policy["recommended"]
    # Its uplift curve: targeting everyone with their option is the held-out recommended policy;
    # no one, the no-incentive policy (both valued by the same evaluator).
    assert recs_meta["uplift_curve"].value.startswith("![uplift curve](data:image/png;base64,")
    run_id = recs_meta["mlflow_run"].value.rsplit("/", 1)[1]
    client = mlflow.MlflowClient(env["resources"]["mlflow"].tracking_uri)
    curve = pd.read_json(client.download_artifacts(run_id, "uplift_curve.json", str(env["tmp"])), orient="split")
    assert curve["share_targeted"].tolist() == pytest.approx([i / 20 for i in range(21)])
    assert curve["dr_value"].iloc[0] == pytest.approx(policy["no incentive"])
    assert curve["dr_value"].iloc[-1] == pytest.approx(policy["recommended"])
    half = curve[curve.share_targeted.round(2) == 0.5].iloc[0]
    assert recs_meta["uplift_at_half"].value == pytest.approx(half["dr_value"] - half["random"])
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()
              if c.asset_key == dg.AssetKey("incentive_refutations")}
    assert set(checks) == {"placebo_treatment", "random_common_cause", "data_subset", "dummy_outcome"}
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items()}
    assert meta["incentive_recommendations"]["decision"].value == "champion"


def test_registered_pyfunc_scores_unit_rows(env):
    client = env["resources"]["mlflow"].client()
    mv = client.get_model_version_by_alias("incentive__sw", "champion")
    model = mlflow.pyfunc.load_model(f"models:/incentive__sw@champion")
    rows = pd.DataFrame({"Global Flag": [0, 1], "Major Flag": [0, 0], "SMC Flag": [1, 0], "Commercial Flag": [1, 1],
                         "IT Spend": [20_000, 90_000], "Employee Count": [50, 400], "PC Count": [10, 300],
                         "Size": [300_000, 20_000]})
    out = model.predict(rows)
    assert str(mv.version) == "1"
    assert list(model.predict(rows.assign(unit_id=[7, 8])).unit_id) == [7, 8]
    # a big account with few PCs: Tech Support (≈ 5,000 + 6,000 + 800 effect for $1,000) and Discount (≈15,000 for $7,000)
    assert out.recommended[0] == "Tech Support+Discount"
    # a small account with 300 PCs: Tech Support costs $30,000; Discount earns ≈ 0 for $7,000
    assert out.recommended[1] == "none" and out.expected_profit[1] == 0


def test_failed_refutation_blocks_promotion(env):
    lake = Lake(str(env["tmp"] / "lake"))
    refutations = lake.read_pandas("incentive_refutations")
    refutations.loc[0, "passed"] = False
    lake.write_pandas("incentive_refutations", refutations, ["study"], [{"study": "sw"}])
    recommender = [a for a in assets if dg.AssetKey("incentive_recommendations") in a.keys]
    result = dg.materialize(recommender, resources=env["resources"], partition_key="sw", instance=env["instance"])
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["decision"].value == "rejected"
    assert "refutation(s) failed, promotion blocked" in meta["reason"].value
    client = env["resources"]["mlflow"].client()
    assert str(client.get_model_version_by_alias("incentive__sw", "champion").version) == "1"
    assert client.get_model_version("incentive__sw", "2").tags["vetting.decision"] == "rejected"


def test_sensor_syncs_and_refuses_an_invalid_catalogue(tmp_path):
    catalogue = tmp_path / "studies.yaml"
    catalogue.write_text(CATALOGUE.replace("  sw:", "  other_study:"))
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"incentive_studies": IncentiveStudiesResource(path=str(catalogue))})
        result = incentive_study_sync_sensor(ctx)
        assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["other_study"]]
        catalogue.write_text(CATALOGUE.replace("Discount: {cost: 7000}", "Discount: {cost: free}"))
        skipped = incentive_study_sync_sensor(ctx)
        assert isinstance(skipped, dg.SkipReason) and "Invalid incentive-study catalogue" in skipped.skip_message
