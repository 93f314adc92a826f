"""LTV quality and training time on the embedded data, CONTRACTS §8 protocol, from a feature cache.

Usage (from the repository root, in the project's virtualenv):

    .venv/bin/python benchmarks/ltv_dev_data.py --cache /tmp/ltv_cache     # once (Spark, ~2 min)
    .venv/bin/python benchmarks/ltv_quality_dev.py --cache /tmp/ltv_cache
    .venv/bin/python benchmarks/ltv_quality_dev.py --cache /tmp/ltv_cache --groups all_products --max-permutations 4

Per product group: train on the weekly snapshots with d + 90 ≤ 2017-10-01 (every household
of each snapshot; 20 % of households, drawn once with a fixed seed, form the selection
sample), fit the BTYD baseline on the latest training snapshot, and evaluate the model,
the previous-90-days spend and BTYD on the holdout as_of 2017-10-01 (labels
2017-10-01 … 2017-12-29). Prints the quality table and the training time per group (the
permutations and BTYD separately) and their total.

On a shared machine, run with OMP_WAIT_POLICY=PASSIVE: LightGBM's OpenMP threads otherwise
spin while waiting, and with other busy processes a fit took 7–10× longer (measured).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from propensity_assets.ltv.btyd import BtydBaseline
from propensity_assets.ltv.metrics import evaluate, previous_spend_baseline
from propensity_assets.ltv.model import train
from propensity_assets.ltv.space import LtvSearchSpace

HOLDOUT = "2017-10-01"
HORIZON = 90
SELECTION_SHARE = 0.2


def load(cache: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    hh = pd.read_parquet(cache / "household_features.parquet")
    grp = pd.read_parquet(cache / "group_features.parquet")
    labels = pd.read_parquet(cache / "ltv_labels.parquet")
    return hh, grp, labels


def group_frame(hh: pd.DataFrame, grp: pd.DataFrame, labels: pd.DataFrame, group: str) -> pd.DataFrame:
    keys = ["as_of", "household_id"]
    g = grp[grp["product_group"] == group].drop(columns="product_group")
    lab = labels[labels["product_group"] == group].drop(columns="product_group")
    frame = hh.merge(g, on=keys, validate="one_to_one").merge(lab, on=keys, validate="one_to_one")
    return frame.sort_values(keys, ignore_index=True)


def selection_households(households: np.ndarray, share: float, seed: int) -> set:
    rng = np.random.default_rng(seed)
    ids = np.sort(np.unique(households))
    return set(rng.choice(ids, size=int(round(share * len(ids))), replace=False).tolist())


def run_group(frame: pd.DataFrame, space: LtvSearchSpace) -> tuple[list[dict], dict, pd.DataFrame]:
    history = frame[frame["as_of"] < HOLDOUT]
    holdout = frame[frame["as_of"] == HOLDOUT].reset_index(drop=True)
    selection = selection_households(history["household_id"].to_numpy(), SELECTION_SHARE, space.seed)
    in_sel = history["household_id"].isin(selection)
    start = time.perf_counter()
    result = train(history[~in_sel].reset_index(drop=True), history[in_sel].reset_index(drop=True), space, HORIZON)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    latest = history[history["as_of"] == history["as_of"].max()]
    btyd = BtydBaseline().fit(latest)
    btyd_seconds = time.perf_counter() - start
    y = holdout["label"].to_numpy("float64")
    rows = []
    for name, pred in [
        ("model", result.predictor.predict(holdout)),
        ("prev_90d", previous_spend_baseline(holdout, HORIZON)),
        ("btyd", btyd.predict(holdout, HORIZON)),
    ]:
        rows.append({"predictor": name, **evaluate(y, pred)})
    timing = {"train_s": train_seconds, "btyd_s": btyd_seconds, "selected": _describe(result.params),
              "btyd_fit_s": btyd.fit_seconds}
    return rows, timing, result.trials


def _describe(params: dict) -> str:
    return f"{params['algorithm']}/{params['reducer']}/{params['feature_subset']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=os.environ.get("LTV_DEV_CACHE", "/tmp/ltv_cache"))
    parser.add_argument("--groups", nargs="*", help="product groups (default: every group in the cache)")
    parser.add_argument("--max-permutations", type=int, default=None)
    parser.add_argument("--algorithms", nargs="*")
    parser.add_argument("--reducers", nargs="*")
    parser.add_argument("--subsets", nargs="*")
    parser.add_argument("--seed", type=int, default=None, help="search and selection-sample seed")
    parser.add_argument("--trials", action="store_true", help="print every permutation's validation metrics")
    args = parser.parse_args()

    space = LtvSearchSpace()
    if args.max_permutations:
        space.max_permutations = args.max_permutations
    if args.algorithms:
        space.algorithms = args.algorithms
    if args.reducers:
        space.reducers = args.reducers
    if args.seed is not None:
        space.seed = args.seed
    if args.subsets:
        space.feature_subsets = args.subsets
    hh, grp, labels = load(Path(args.cache))
    groups = args.groups or sorted(grp["product_group"].unique(), key=lambda g: (g != "all_products", g))
    table, times = [], []
    total = time.perf_counter()
    for group in groups:
        rows, timing, trials = run_group(group_frame(hh, grp, labels, group), space)
        table += [{"group": group, **r} for r in rows]
        times.append({"group": group, **timing})
        by = {r["predictor"]: r for r in rows}
        print(
            f"{group:20s} model {by['model']['rmse']:8.2f} / {by['model']['normalized_gini']:.4f}   "
            f"prev_90d {by['prev_90d']['rmse']:8.2f} / {by['prev_90d']['normalized_gini']:.4f}   "
            f"btyd {by['btyd']['rmse']:8.2f} / {by['btyd']['normalized_gini']:.4f}   "
            f"train {timing['train_s']:5.1f}s btyd {timing['btyd_s']:5.1f}s  [{timing['selected']}]",
            flush=True,
        )
        if args.trials:
            cols = ["algorithm", "reducer", "feature_subset", "rounds", "rmse", "normalized_gini", "fit_seconds"]
            print(trials[cols].to_string(index=False), flush=True)
    total = time.perf_counter() - total
    quality = pd.DataFrame(table).pivot(index="group", columns="predictor", values=["rmse", "normalized_gini"])
    quality.columns = [f"{m}_{p}" for m, p in quality.columns]
    quality["gini_beats_prev"] = quality["normalized_gini_model"] > quality["normalized_gini_prev_90d"]
    quality["rmse_beats_prev"] = quality["rmse_model"] < quality["rmse_prev_90d"]
    quality["beats_btyd"] = (quality["normalized_gini_model"] > quality["normalized_gini_btyd"]) & (
        quality["rmse_model"] < quality["rmse_btyd"]
    )
    pd.set_option("display.width", 200)
    print("\nHoldout 2017-10-01, H = 90 (RMSE, normalized Gini):")
    print(quality.round(4).loc[groups].to_string())
    full = pd.DataFrame(table).set_index(["group", "predictor"])
    print("\nAll metrics:")
    print(full.round(4).to_string())
    timing = pd.DataFrame(times).set_index("group")
    print("\nTraining time per group (s):")
    print(timing.round(1).to_string())
    print(f"\ntotal wall time for {len(groups)} groups (training + BTYD + evaluation): {total:.0f}s "
          f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
