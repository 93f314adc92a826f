"""Incentive estimates under near-deterministic assignment (issue 26), through the real assets.

Materializes the incentive study assets (data → graph → effects → refutations → recommendations)
in process with `dagster.materialize`, on a temp lake and a SQLite MLflow, for each seed, and prints
per effect: the ATE over its population vs the truth there and over all accounts, whether the truth
is inside the interval, CATE RMSE and max error, the chosen specification and every candidate's
R-score; and the recommended policy's share of the oracle profit.

    python benchmarks/incentives_overlap.py software_company_deterministic 0 1 2
    python benchmarks/incentives_overlap.py software_company 0
"""

import sys
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd

from propensity_assets.incentives.recommender_assets import assets as recommender_assets
from propensity_assets.incentives.resources import IncentiveStudiesResource
from propensity_assets.incentives.sensors import sync_studies
from propensity_assets.incentives.study_assets import StudyDataConfig
from propensity_assets.incentives.study_assets import assets as study_assets
from propensity_assets.shared.lake import Lake
from propensity_assets.shared.resources import LakeResource, MlflowResource

CATALOGUE = Path(__file__).resolve().parents[1] / "data" / "incentive_studies.yaml"


def run(study: str, seed: int, n: int | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        resources = {
            "lake": LakeResource(uri=f"{tmp}/lake"),
            "mlflow": MlflowResource(tracking_uri=f"sqlite:///{tmp}/mlflow.db", artifact_root=Path(f"{tmp}/art").as_uri()),
            "incentive_studies": IncentiveStudiesResource(path=str(CATALOGUE)),
        }
        sync_studies(instance, str(CATALOGUE))
        result = dg.materialize([*study_assets, *recommender_assets], resources=resources, partition_key=study,
                                instance=instance,
                                run_config=dg.RunConfig(ops={"incentive_study_data": StudyDataConfig(seed=seed, n=n)}))
        lake = Lake(f"{tmp}/lake")
        summary, policy = lake.read_pandas("incentive_summary"), lake.read_pandas("incentive_policy")
        recs = lake.read_pandas("incentive_recommendations")
        data, effects = lake.read_pandas("incentive_study_data"), lake.read_pandas("incentive_effects")
        meta = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
                for e in result.get_asset_materialization_events()}
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        candidates = meta["incentive_effects"]["specification candidates (R-score)"].value
    rows = []
    for r in summary.itertuples():
        truth = data[f"{r.effect.capitalize()} Treatment Effect: {r.treatment}"].to_numpy()
        part = effects[(effects.treatment == r.treatment) & (effects.effect == r.effect)]
        rows.append({"seed": seed, "effect": f"{r.treatment} ({r.effect})", "spec": r.specification,
                     "population": r.population, "ATE": r.ate, "95% CI": f"{r.ate_lower:,.0f}–{r.ate_upper:,.0f}",
                     "truth (population)": r.true_ate, "error": r.ate_error, "truth in CI": r.truth_in_interval,
                     "truth (all)": truth.mean(), "CATE RMSE": r.cate_rmse, "max |CATE error|": r.cate_max_error,
                     "CATEs": int(part.cate.notna().sum()), "ranks": getattr(r, "ranks_better_than_ate", None)})
    rec = policy[policy.policy == "recommended"].iloc[0]
    return {"effects": pd.DataFrame(rows), "share_of_oracle": float(rec.share_of_oracle), "checks": checks,
            "candidates": candidates, "basis": recs.basis.value_counts().to_dict(),
            "options": recs.recommended.value_counts().to_dict()}


def main(argv: list[str]) -> None:
    study, seeds = argv[0], [int(s) for s in argv[1:]] or [0]
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    for seed in seeds:
        out = run(study, seed)
        print(f"\n## {study}, seed {seed}: policy share of oracle {out['share_of_oracle']:.4f}; checks {out['checks']}")
        print(out["effects"].to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
        print("recommended:", out["options"], "basis:", out["basis"])
        print(out["candidates"])
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
