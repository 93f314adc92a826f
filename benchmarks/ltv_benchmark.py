"""LTV benchmark: quality on the CONTRACTS §8 holdout, and the training time of all groups.

Usage (from the repository root, after `make demo`):

    .venv/bin/python benchmarks/ltv_benchmark.py quality
        Per group on the holdout as_of 2017-10-01 (H = 90): the champion's RMSE, normalized
        Gini, MAE, Spearman, top-decile capture and calibration against the previous-90-days
        and BTYD baselines, and each champion's training time from MLflow. Reads what
        `make demo` left in data/ (or PROPENSITY_LAKE_URI / MLFLOW_TRACKING_URI).

    .venv/bin/python benchmarks/ltv_benchmark.py speed [--repeat 3]
        `dagster asset materialize --select ltv_model` for every group at the cutoff
        2017-09-29, as one run, on the demo's lake with a fresh MLflow store and Dagster
        instance in a temp dir (permutations and BTYD included); prints each run and the median.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import stage_cli

REPO = Path(__file__).resolve().parent.parent
HOLDOUT = "2017-10-01"
CUTOFF = "2017-09-29"


def quality() -> int:
    import pandas as pd
    from mlflow import MlflowClient

    from propensity_assets.shared import registry, settings
    from propensity_assets.shared.lake import Lake
    from propensity_assets.lifecycle.evaluation import holdout_report
    from propensity_assets.ltv.stage import LTV

    metrics = ["rmse", "normalized_gini", "mae", "spearman", "top_decile_capture", "calibration"]
    report = holdout_report(LTV, Lake(settings.lake_uri()), HOLDOUT, metrics)
    if report.empty:
        print(f"no LTV scores and labels for {HOLDOUT}: run `make demo` first", file=sys.stderr)
        return 2
    client = MlflowClient(registry.default_tracking_uri(), registry.default_tracking_uri())
    seconds, chosen = {}, {}
    for group, version in report.set_index("group")["model_version"].items():
        run = client.get_run(client.get_model_version(registry.model_name("ltv", group), version).run_id)
        seconds[group] = run.data.metrics.get("train_seconds", float("nan"))
        chosen[group] = f"{run.data.params.get('best.algorithm')}/{run.data.params.get('best.reducer')}"
    report["permutation"] = report["group"].map(chosen)
    report["train_seconds"] = report["group"].map(seconds)
    pd.set_option("display.width", 250)
    cols = ["group", "model_version", "rmse", "previous_spend_rmse", "btyd_rmse", "normalized_gini",
            "previous_spend_normalized_gini", "btyd_normalized_gini", "mae", "spearman", "top_decile_capture",
            "calibration", "beats_baselines", "permutation", "train_seconds"]
    print(f"LTV holdout as_of {HOLDOUT} (labels {HOLDOUT} .. +90 days); champion vs baselines")
    print(report[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    everything = report.set_index("group").loc["all_products"] if "all_products" in set(report["group"]) else None
    if everything is not None:
        print(f"\nall_products: RMSE {everything['rmse']:.1f} (target <= 269), normalized Gini "
              f"{everything['normalized_gini']:.4f} (target >= 0.864), beats both baselines: {everything['beats_baselines']}")
    others = report[report["group"] != "all_products"]
    print(f"other groups beating previous-90-days on normalized Gini: "
          f"{int((others['normalized_gini'] > others['previous_spend_normalized_gini']).sum())} of {len(others)}")
    print(f"sum of training seconds: {report['train_seconds'].sum():.0f}")
    return 0


def speed(repeat: int) -> int:
    from propensity_assets.shared import settings

    lake = settings.lake_uri()
    times = []
    for i in range(repeat):
        work = Path(tempfile.mkdtemp(prefix="ltv_bench_"))
        try:
            env = {**os.environ, "PROPENSITY_LAKE_URI": lake, "DAGSTER_HOME": str(work / "home"),
                   "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
            env.pop("MLFLOW_REGISTRY_URI", None)
            pa = str(REPO / ".venv/bin/propensity-assets")
            subprocess.run([pa, "sync-groups"], cwd=REPO, env=env, check=True, capture_output=True)
            rng = subprocess.run([pa, "partition-range", CUTOFF], cwd=REPO, env=env, check=True,
                                 capture_output=True, text=True).stdout.strip()
            start = time.perf_counter()
            subprocess.run([str(REPO / ".venv/bin/dagster"), "asset", "materialize", "-m", "propensity_assets.definitions",
                            "--select", "ltv_model", "--partition-range", rng], cwd=REPO, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
            print(f"run {i + 1}: LTV training, all groups at {CUTOFF}: {times[-1]:.1f} s (load {os.getloadavg()[0]:.1f})",
                  flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nmedian of {repeat}: {statistics.median(times):.1f} s (target <= 300 s)")
    return 0


if __name__ == "__main__":
    sys.exit(stage_cli.run(__doc__, quality, speed))
