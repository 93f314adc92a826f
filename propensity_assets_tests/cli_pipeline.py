"""The pipeline driven by the CLI as a user drives it, on a tiny synthetic project, once per
Spark mode, for the tests that compare modes row for row (test_spark_cluster.py,
test_spark_connect.py):

    propensity-assets sync-groups; dagster job execute ... -j ingest_job          (once)
    dagster asset materialize ... --select household_features --partition-range ...
    dagster asset materialize ... --select group_features,propensity_labels,ltv_labels ...
    dagster asset materialize ... --select propensity_scores --partition-range ...

The reference is a classic local[1] run (`classic_cli_run` in conftest, once per session);
another mode replays the same commands on a copy of the ingested lake, against the same
Dagster instance and MLflow registry (the champions are trained once, on the reference lake).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from propensity_assets.shared import registry
from propensity_assets.shared.lake import Lake
from propensity_assets.propensity.stage import PropensityTraining as TrainingConfig
from propensity_assets_tests.cli_helpers import BIN, MODULE, REPO, instance_at


PRODUCTS = """\
product_id,product_category,department
1,SOFT DRINKS,GROCERY
2,BAG SNACKS,GROCERY
3,CHEESE,GROCERY
"""
GROUPS_YAML = """\
product_groups:
  soft_drinks:
    categories: [SOFT DRINKS]
  snacks:
    categories: [BAG SNACKS]
"""
# Training at the Friday CUTOFF with the 30-day propensity window: vetting snapshot
# 2017-04-26, training snapshots 2017-04-12 and 2017-04-19; scores after all of them.
CUTOFF = date(2017, 5, 26)
FEATURE_RANGE = ("2017-04-12", "2017-04-28")
SCORE_RANGE = ("2017-04-27", "2017-04-28")
TINY = TrainingConfig(
    history_weeks=2, num_leaves=[4], learning_rate=[0.2], min_child_samples=[5], feature_fraction=[1.0],
    lambda_l2=[0.0], max_trials=1, max_rounds=20, early_stopping_rounds=5,
)
TABLES = ["household_features", "group_features", "propensity_labels", "ltv_labels", "propensity_scores"]

# Every mode plans alike (the same parallelism: a standalone cluster's default is at least
# 2, the Connect server runs local[2]), so equal inputs give equal rows, floating-point sums included.
COMMON_CONF = [
    "spark.sql.shuffle.partitions=2",
    "spark.default.parallelism=2",
    "spark.ui.enabled=false",
    "spark.sql.adaptive.enabled=false",
    "spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
]
REFERENCE = "local"


def transactions_csv() -> str:
    """80 households over 2017-01-01 .. 2017-06-15, joining over time; each leans to one
    group, so the propensity labels are learnable."""
    rng = np.random.default_rng(2017)
    lines = ["household_id,basket_id,product_id,quantity,sales_value,transaction_timestamp"]
    basket = 1000
    for day in pd.date_range("2017-01-01", "2017-06-15"):
        for hh in range(1, 81):
            if hh > 20 + day.dayofyear // 2 or rng.random() > 0.15:
                continue
            basket += 1
            weights = [0.6, 0.2, 0.2] if hh % 2 else [0.2, 0.6, 0.2]
            for product in rng.choice([1, 2, 3], size=int(rng.integers(1, 3)), replace=False, p=weights):
                quantity = int(rng.integers(1, 4))
                value = quantity * round(float(rng.uniform(0.5, 6.0)), 2)
                lines.append(f"{hh},{basket},{product},{quantity},{value:.2f},{day.date()} {8 + hh % 12:02d}:{basket % 60:02d}:00")
    return "\n".join(lines) + "\n"


def groups_range(first: str, last: str) -> str:
    return f"{first}|soft_drinks...{last}|snacks"  # catalogue order


class CliPipeline:
    """A temp project (source files, catalogue, DAGSTER_HOME, MLflow) and one lake per mode."""

    def __init__(self, root: Path):
        self.root = root
        self.source, self.home = root / "source", root / "dagster_home"
        for path in (self.source, self.home):
            path.mkdir()
        (self.source / "products.csv").write_text(PRODUCTS)
        (self.source / "transactions.csv").write_text(transactions_csv())
        (root / "product_groups.yaml").write_text(GROUPS_YAML)
        (self.home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
        self.tracking_uri = f"sqlite:///{root}/mlflow/mlflow.db"
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "PROPENSITY_DATA_DIR": str(root),
            "PROPENSITY_SOURCE_DIR": str(self.source),
            "PROPENSITY_PRODUCT_GROUPS": str(root / "product_groups.yaml"),
            "PROPENSITY_LTV_HORIZON_DAYS": "30",
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "SPARK_DRIVER_MEMORY": "1g",
            "PYSPARK_PYTHON": sys.executable,
        }
        for name in ("MLFLOW_REGISTRY_URI", "PROPENSITY_TODAY", "SPARK_MASTER", "SPARK_REMOTE",
                     "PROPENSITY_SPARK_CONF", "SPARK_CONNECT_MODE_ENABLED"):
            self.env.pop(name, None)
        self.modes: dict[str, dict[str, str]] = {}
        self.lakes: dict[str, Lake] = {}
        self.ingested = root / "lake_ingested"

    def add_mode(self, mode: str, **env: str) -> Lake:
        path = self.root / f"lake_{mode}"
        self.modes[mode] = {"PROPENSITY_LAKE_URI": str(path), **env}
        self.lakes[mode] = Lake(str(path))
        return self.lakes[mode]

    def environment(self, mode: str) -> dict[str, str]:
        """The project's environment with `mode`'s settings; a None setting unsets the variable."""
        merged = {**self.env, **self.modes[mode]}
        return {k: v for k, v in merged.items() if v is not None}

    def run_all(self, commands: list[tuple[str, tuple[str, ...]]]) -> None:
        """(mode, argv) side by side; fail with the output of any that fails."""
        logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in commands]
        procs = [
            subprocess.Popen([str(BIN / args[0]), *args[1:]], env=self.environment(mode), stdout=out,
                             stderr=err, text=True, cwd=self.root, start_new_session=True)
            for (mode, args), (out, err) in zip(commands, logs)
        ]
        try:
            for (mode, args), proc, (out, err) in zip(commands, procs, logs):
                proc.wait(timeout=600)
                out.seek(0), err.seek(0)
                if proc.returncode != 0:
                    pytest.fail(f"[{mode}] {' '.join(args)} exited {proc.returncode}\n--- stdout\n{out.read()[-4000:]}"
                                f"\n--- stderr\n{err.read()[-8000:]}")
        finally:  # a failed or hung run must not leave its siblings (and their JVMs) behind
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def run_ids(self) -> set[str]:
        with instance_at(self.home) as instance:
            return {r.run_id for r in instance.get_runs()}

    def materialize(self, mode_selects: list[tuple[str, str, str]]) -> None:
        """`dagster asset materialize --select S --partition-range R` per (mode, S, R)."""
        before = self.run_ids()
        self.run_all([(mode, ("dg", "launch", *MODULE, "--assets", select, "--partition-range", rng))
                      for mode, select, rng in mode_selects])
        with instance_at(self.home) as instance:
            new = [r for r in instance.get_runs() if r.run_id not in before]
        assert len(new) == len(mode_selects)
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in new)

    def ingest(self, mode: str) -> None:
        """Sync the catalogue and ingest into `mode`'s lake; keep a copy for the other modes."""
        self.run_all([(mode, ("propensity-assets", "sync-groups"))])
        self.run_all([(mode, ("dg", "launch", *MODULE, "--job", "ingest_job"))])
        shutil.copytree(self.lakes[mode].root, self.ingested)

    def features(self, mode: str) -> None:
        """The feature backfill and both labels over FEATURE_RANGE: two runs."""
        if not self.lakes[mode].exists("transactions"):
            shutil.copytree(self.ingested, self.lakes[mode].root, dirs_exist_ok=True)
        self.materialize([(mode, "household_features", "...".join(FEATURE_RANGE))])
        self.materialize([(mode, "group_features,propensity_labels,ltv_labels", groups_range(*FEATURE_RANGE))])

    def train_champions(self, mode: str) -> None:
        """A champion per group, trained on `mode`'s lake, as test_cli_scores does."""
        from propensity_assets.lifecycle.training import train_and_register
        from propensity_assets.propensity.stage import PROPENSITY
        from propensity_assets.shared.resources import MlflowResource

        mlflow_res = MlflowResource(tracking_uri=self.tracking_uri,
                                    artifact_root=(self.root / "mlflow" / "artifacts").as_uri())
        saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        try:
            for group in ("soft_drinks", "snacks"):
                out = train_and_register(PROPENSITY, self.lakes[mode], mlflow_res, group, CUTOFF, TINY, {})
                registry.promote(mlflow_res.client(), out.model_name, out.version, "test champion", by="test")
        finally:
            import mlflow

            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
            for name, value in saved.items():
                os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)

    def scores(self, mode: str) -> None:
        self.materialize([(mode, "propensity_scores", groups_range(*SCORE_RANGE))])

    def replay(self, mode: str) -> Lake:
        """The reference's feature backfill, labels and scoring in `mode` (add_mode first)."""
        self.features(mode)
        self.scores(mode)
        return self.lakes[mode]


def reference_run(root: Path) -> CliPipeline:
    """Ingest, then the whole sequence on a classic local[1] session: the reference."""
    pipeline = CliPipeline(root)
    pipeline.add_mode(REFERENCE, SPARK_MASTER="local[1]", PROPENSITY_SPARK_CONF=",".join(COMMON_CONF))
    pipeline.ingest(REFERENCE)
    pipeline.features(REFERENCE)
    pipeline.train_champions(REFERENCE)
    pipeline.scores(REFERENCE)
    return pipeline


def sorted_table(lake: Lake, table: str) -> pd.DataFrame:
    frame = lake.read_pandas(table)
    keys = [c for c in ("as_of", "product_group", "household_id") if c in frame.columns]
    return frame.sort_values(keys).reset_index(drop=True)[sorted(frame.columns)]


def assert_lakes_equal(pipeline: CliPipeline, mode: str, table: str) -> None:
    """`mode`'s table equals the reference's row for row, and covers the requested partitions."""
    other, reference = sorted_table(pipeline.lakes[mode], table), sorted_table(pipeline.lakes[REFERENCE], table)
    assert len(reference) > 0
    first, last = SCORE_RANGE if table == "propensity_scores" else FEATURE_RANGE
    assert (reference["as_of"].min(), reference["as_of"].max()) == (first, last)
    if "product_group" in reference.columns:
        assert set(reference["product_group"]) == {"soft_drinks", "snacks"}
    pd.testing.assert_frame_equal(other, reference, check_exact=True)
    for lake in (pipeline.lakes[mode], pipeline.lakes[REFERENCE]):
        assert lake.partitions(table, "as_of") == sorted(set(reference["as_of"])), mode
