"""The bad-input corpus (issue 9): one table of malformed inputs across the raw tables, the
product-group catalogue, the incentive-study catalogue, partition keys and ranges,
configuration and the environment.

Every case runs against one world that already holds good state: a lake with every raw
table ingested, an MLflow registry with a champion, and a Dagster instance with the
groups and studies synced. Each case asserts

- the exact error type, and its exact message: it names the file, table, column, group,
  study, partition or variable, and says what was expected;
- that the lake (every table; the quarantine may gain the refused rows, for inspection),
  the registry (models, versions, aliases, runs) and the instance (partitions and
  materializations) are exactly as before.

Raw tables go through the real ingest assets (`dg.materialize`); catalogues through the
sync functions the CLI and sensors use; partitions through the real Spark assets;
configuration and the environment through the `propensity-assets` CLI in a subprocess,
which must print one `error:` line and no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster_pyspark import PySparkResource

from propensity_assets.shared import settings
from propensity_assets.features.assets import group_features, household_features
from propensity_assets.groups.assets import product_group_members, sync_product_groups
from propensity_assets.groups.catalog import CatalogError
from propensity_assets.incentives.catalog import StudyCatalogError
from propensity_assets.incentives.resources import IncentiveStudiesResource
from propensity_assets.incentives.study_assets import incentive_study_data
from propensity_assets.incentives.sensors import sync_studies
from propensity_assets.ingest.assets import raw_assets
from propensity_assets.shared import registry
from propensity_assets.shared.lake import Lake
from propensity_assets.groups.resources import ProductGroupsResource
from propensity_assets.ingest.resources import SourceResource
from propensity_assets.shared.resources import LakeResource, MlflowResource
from propensity_assets_tests.cli_helpers import instance_at
from propensity_assets_tests.conftest import REPO
from propensity_assets_tests.ingest.test_ingest_assets import TX_COLUMNS, build_source, good_transactions

BIN = Path(sys.executable).parent
GROUPS_YAML = """\
product_groups:
  soft_drinks:
    description: Soft drinks
    categories: [SOFT DRINKS]
  cheese:
    description: Cheese
    categories: [CHEESE]
"""
STUDIES_YAML = """\
incentive_studies:
  small:
    generate: software_company
    generator: {n: 200, seed: 0}
    outcome: Revenue
    treatments:
      Discount: {cost: 7000}
    covariates: [Size]
"""
LINEAGE = {"complete": "true", "stage": "ltv", "product_group": "cheese", "cutoff": "2017-04-07",
           "horizon_days": "90", "train_as_of_min": "2016-12-09", "train_as_of_max": "2017-01-06",
           "vetting_as_of": "2017-01-06", "features_sha256": "0" * 64}
WRONG_CHAMPIONS = {
    "propensity__cheese": LINEAGE,  # an LTV model made the propensity champion of cheese
    "ltv__soft_drinks": LINEAGE,  # cheese's LTV model made the champion of soft_drinks
    "ltv__cheese": {k: v for k, v in LINEAGE.items() if k != "train_as_of_max"},  # no training window
}
SPARK_CONF = {"spark.master": "local[1]", "spark.sql.shuffle.partitions": "1", "spark.ui.enabled": "false"}


# -- the world: good state that no bad input may change --------------------------------------


@dataclass
class World:
    root: Path
    src: Path
    lake_dir: Path
    groups: Path
    studies: Path
    mlflow_db: Path
    instance: dg.DagsterInstance

    def resources(self, src: Path | None = None) -> dict:
        return {
            "source": SourceResource(directory=str(src or self.src)),
            "lake": LakeResource(uri=str(self.lake_dir)),
            "product_groups": ProductGroupsResource(path=str(self.groups)),
            "mlflow": MlflowResource(tracking_uri=f"sqlite:///{self.mlflow_db}"),
            "spark": PySparkResource(spark_config=SPARK_CONF),
        }

    def state(self) -> dict:
        return {"lake": self.lake_state(), "registry": self.registry_state(), "instance": self.instance_state()}

    def lake_state(self) -> dict[str, bytes]:
        """Every table's files; the quarantine and the lake's own bookkeeping (`_locks`, …) aside."""
        return {
            str(p.relative_to(self.lake_dir)): p.read_bytes()
            for p in sorted(self.lake_dir.rglob("*"))
            if p.is_file() and not p.relative_to(self.lake_dir).parts[0].startswith(("_", "quarantine"))
        }

    def registry_state(self) -> dict:
        with sqlite3.connect(f"file:{self.mlflow_db}?mode=ro", uri=True) as db:
            return {
                table: db.execute(f"select * from {table} order by 1, 2").fetchall()
                for table in ("registered_models", "model_versions", "registered_model_aliases", "runs", "experiments")
            }

    def instance_state(self) -> dict:
        keys = sorted(self.instance.get_asset_keys(), key=lambda k: k.to_user_string())
        return {
            "product_group": self.instance.get_dynamic_partitions("product_group"),
            "incentive_study": self.instance.get_dynamic_partitions("incentive_study"),
            # A failed run may make an asset known to the instance (planned events): what
            # counts is that it recorded no materialization.
            "materializations": {
                k.to_user_string(): records
                for k in keys
                if (records := [r.storage_id for r in self.instance.fetch_materializations(k, limit=1000).records])
            },
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory, spark):  # the session's Spark: the partition cases reuse its JVM
    root = tmp_path_factory.mktemp("bad_inputs")
    src = build_source(root / "src")
    groups = root / "product_groups.yaml"
    groups.write_text(GROUPS_YAML)
    studies = root / "incentive_studies.yaml"
    studies.write_text(STUDIES_YAML)
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    with dg.instance_for_test() as instance:
        w = World(root, src, root / "lake", groups, studies, root / "mlflow" / "mlflow.db", instance)
        result = dg.materialize([*raw_assets, product_group_members], instance=instance, resources=w.resources())
        assert result.success
        sync_product_groups(instance, str(groups), Lake(str(w.lake_dir)).read_pandas("products"))
        sync_studies(instance, str(studies))
        home = root / "home"  # the CLI's persistent instance, with the same groups
        home.mkdir()
        (home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
        with instance_at(home) as cli_instance:
            cli_instance.add_dynamic_partitions("product_group", ["soft_drinks", "cheese"])
        client = w.resources()["mlflow"].client()
        client.create_registered_model("propensity__soft_drinks")
        version = client.create_model_version("propensity__soft_drinks", source=(root / "model").as_uri())
        client.set_registered_model_alias("propensity__soft_drinks", "champion", version.version)
        # Champions a forced promotion could leave: complete versions whose lineage is not the model's.
        for name, tags in WRONG_CHAMPIONS.items():
            client.create_registered_model(name)
            version = client.create_model_version(name, source=(root / "model").as_uri(), tags=tags)
            client.set_registered_model_alias(name, "champion", version.version)
        try:
            yield w
        finally:
            import mlflow

            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
            for key, value in saved.items():
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


# -- how each kind of case is run -------------------------------------------------------------


def user_error(result) -> tuple[str, str]:
    """(class name, message) of the user-code error that failed the run's first failed step."""
    [event, *_] = result.get_step_failure_events()
    error = event.step_failure_data.error
    while error.cls_name in ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError") and error.cause:
        error = error.cause
    message = error.message.strip()
    prefix = f"{error.cls_name}: "
    message = message.split(prefix, 1)[1] if prefix in message else message
    return error.cls_name, message


def ingest(world: World, src: Path, tables: list[str], run_config: dict | None = None) -> tuple[str, str]:
    assets = [a for a in raw_assets if a.key.path[-1] in tables]
    result = dg.materialize(assets, instance=world.instance, resources=world.resources(src), raise_on_error=False,
                            run_config=run_config)
    assert not result.success
    return user_error(result)


def materialize_range(world: World, asset, start: str, end: str) -> tuple[str, str]:
    tags = {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end}
    result = dg.materialize([asset], instance=world.instance, resources=world.resources(), tags=tags,
                            raise_on_error=False)
    assert not result.success
    return user_error(result)


def raised(call: Callable) -> tuple[str, str]:
    try:
        call()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    raise AssertionError("no error was raised")


def cli(world: World, *args: str, **env: str) -> tuple[str, str]:
    """`propensity-assets ARGS`: must exit 2 with one `error:` line and no traceback."""
    done = subprocess.run(
        [str(BIN / "propensity-assets"), *args], capture_output=True, text=True, timeout=120, cwd=world.root,
        env={**os.environ, "DAGSTER_HOME": str(world.root / "home"), "PROPENSITY_DATA_DIR": str(world.root),
             "PROPENSITY_LAKE_URI": str(world.lake_dir), "PROPENSITY_PRODUCT_GROUPS": str(world.groups),
             "MLFLOW_TRACKING_URI": f"sqlite:///{world.mlflow_db}", "PYTHONPATH": str(REPO), **env},
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout, done.stderr)
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return "exit 2", line.removeprefix("error: ")


# -- bad source files: each writes one bad file into a copy of the good source ----------------


def tx_frame(rows, columns=TX_COLUMNS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def write_tx_csv(src: Path, text: str) -> Path:
    path = src / "transactions.csv"
    path.write_text(text)
    return path


TX_HEADER = ",".join(TX_COLUMNS)
GOOD_LINE = "1,1000,100,1,2.5,2017-03-01 10:00:00"


def rows_csv(src: Path, lines: list[str], header: str = TX_HEADER) -> Path:
    return write_tx_csv(src, "\n".join([header, *lines]) + "\n")


def good_lines(n: int = 20) -> list[str]:
    return [",".join(map(str, row)) for row in good_transactions(n)]


def replace_tx_with_parquet(src: Path, frame: pd.DataFrame) -> Path:
    (src / "transactions.csv").unlink()
    path = src / "transactions.parquet"
    frame.to_parquet(path)
    return path


def bad_products(src: Path, frame: pd.DataFrame) -> Path:
    path = src / "products.parquet"
    frame.to_parquet(path)
    return path


PRODUCT_IDS = [100, 101, 102, 103]


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    run: Callable[[World, Path], tuple[str, str]]  # (world, a scratch dir) → (error type, message)
    error: str
    message: str  # exact; {src}, {root}, {groups}, {studies}, {scratch} are filled in


def _empty_transactions(w, d):
    rows_csv(d, [])
    return ingest(w, d, ["transactions"])


def _ids_beyond_64_bits(w, d):
    rows_csv(d, [*good_lines(), "99999999999999999999,1000,100,1,2.5,2017-03-01 10:00:00"])
    return ingest(w, d, ["transactions"])


def _uint64_ids(w, d):
    frame = pd.DataFrame({"product_id": pa.array([100, 2**64 - 1], pa.uint64()).to_pandas(),
                          "product_category": ["SOFT DRINKS", "CHEESE"]})
    bad_products(d, frame)
    return ingest(w, d, ["products"])


def _float_ids_above_2_53(w, d):
    frame = tx_frame(good_transactions(20))
    frame["transaction_timestamp"] = pd.to_datetime(frame["transaction_timestamp"])
    frame["household_id"] = frame["household_id"].astype(float) + 2.0**53
    replace_tx_with_parquet(d, frame)
    return ingest(w, d, ["transactions"])


def _day_first_timestamps(w, d):
    rows_csv(d, [f"{1 + i % 7},{1000 + i},100,1,2.5,{1 + i % 28:02d}/{1 + i % 12:02d}/2017 10:00" for i in range(20)])
    return ingest(w, d, ["transactions"])


def _boolean_sales(w, d):
    frame = tx_frame(good_transactions(20))
    frame["transaction_timestamp"] = pd.to_datetime(frame["transaction_timestamp"])
    frame["sales_value"] = frame.index % 2 == 0
    replace_tx_with_parquet(d, frame)
    return ingest(w, d, ["transactions"])


def _infinite_sales(w, d):
    rows_csv(d, [*good_lines(40), "7,5000,100,1,inf,2017-03-01 10:00:00"])
    return ingest(w, d, ["transactions"])


def _repeated_header(w, d):
    rows_csv(d, [line + ",9.99" for line in good_lines()], header=TX_HEADER + ",sales_value")
    return ingest(w, d, ["transactions"])


def _product_in_two_categories(w, d):
    frame = pd.DataFrame({"product_id": [*PRODUCT_IDS, 100],
                          "product_category": ["SOFT DRINKS", "CHEESE", "EGGS", "HOT DOGS", "CHEESE"]})
    bad_products(d, frame)
    return ingest(w, d, ["products"])


def _integer_categories(w, d):
    bad_products(d, pd.DataFrame({"product_id": PRODUCT_IDS, "product_category": [1, 2, 3, 4]}))
    return ingest(w, d, ["products"])


def _categories_the_catalogue_does_not_know(w, d):
    bad_products(d, pd.DataFrame({"product_id": PRODUCT_IDS,
                                  "product_category": ["SODA", "CHEESE", "EGGS", "HOT DOGS"]}))
    return ingest(w, d, ["products"])


def _missing_column(w, d):
    rows_csv(d, [line.rsplit(",", 2)[0] + "," + line.rsplit(",", 1)[1] for line in good_lines()],
             header="household_id,basket_id,product_id,quantity,transaction_timestamp")
    return ingest(w, d, ["transactions"])


def _text_quantity(w, d):
    rows_csv(d, [f"1,{1000 + i},100,a few,2.5,2017-03-01 10:00:00" for i in range(5)])
    return ingest(w, d, ["transactions"])


def _null_keys(w, d):
    rows_csv(d, [*good_lines(20), ",9000,100,1,2.5,2017-03-01 10:00:00", ",9001,100,1,2.5,2017-03-01 10:00:00"])
    return ingest(w, d, ["transactions"])


def _campaign_described_twice(w, d):
    frame = pd.read_csv(d / "campaign_descriptions.csv")
    extra = frame.iloc[[0]].assign(campaign_type="Type C")
    pd.concat([frame, extra]).to_csv(d / "campaign_descriptions.csv", index=False)
    return ingest(w, d, ["campaign_descriptions"])


def _garbage_parquet(w, d):
    (d / "products.parquet").write_bytes(b"PAR1 not parquet at all \x00\x01")
    return ingest(w, d, ["products"])


def _no_transactions_file(w, d):
    (d / "transactions.csv").unlink()
    return ingest(w, d, ["transactions"])


def _no_source_directory(w, d):
    return ingest(w, d / "nowhere", ["households"])


def _timestamps_out_of_range(w, d):
    rows_csv(d, [f"{1 + i % 7},{1000 + i},100,1,2.5,2031-0{1 + i % 9}-01 10:00:00" for i in range(10)])
    return ingest(w, d, ["transactions"])


def _transactions_of_1899(w, d):
    rows_csv(d, [*good_lines(20), *(f"{1 + i % 7},{2000 + i},100,1,2.5,1899-12-0{1 + i}" for i in range(3))])
    return ingest(w, d, ["transactions"])


def _transactions_of_1997_below_a_configured_bound(w, d):
    rows_csv(d, [f"{1 + i % 7},{1000 + i},100,1,2.5,1997-0{1 + i % 9}-15 10:00:00" for i in range(10)])
    config = {"ops": {"transactions": {"config": {"min_timestamp": "1998-01-01", "max_timestamp": "2018-01-02"}}}}
    return ingest(w, d, ["transactions"], config)


def _truncated_parquet(w, d):
    good = (d / "products.parquet").read_bytes()
    (d / "products.parquet").write_bytes(good[: len(good) // 2])
    return ingest(w, d, ["products"])


def _stray_file_in_the_lake(w, d):
    stray = w.lake_dir / "products" / "notes.txt"
    stray.write_text("remember to re-ingest on Monday\n")
    try:
        result = dg.materialize([product_group_members], instance=w.instance, resources=w.resources(),
                                raise_on_error=False)
        return user_error(result)
    finally:
        stray.unlink()


# -- the catalogues ----------------------------------------------------------------------------


def sync_groups_text(w: World, d: Path, text: str) -> tuple[str, str]:
    path = d / "product_groups.yaml"
    path.write_text(text)
    products = Lake(str(w.lake_dir)).read_pandas("products")
    return raised(lambda: sync_product_groups(w.instance, str(path), products))


def sync_studies_text(w: World, d: Path, text: str) -> tuple[str, str]:
    path = d / "incentive_studies.yaml"
    path.write_text(text)
    return raised(lambda: sync_studies(w.instance, str(path)))


def _key_with_newline(w, d):
    return sync_groups_text(w, d, GROUPS_YAML + '  "milk\\n":\n    categories: [CHEESE]\n')


def _yaml_aliases(w, d):
    laughs = "".join(f"  - &l{i} [*l{i - 1}, *l{i - 1}]\n" for i in range(1, 9))
    return sync_groups_text(w, d, "x:\n  - &l0 lol\n" + laughs + GROUPS_YAML)


def _deep_yaml(w, d):
    return sync_groups_text(w, d, "product_groups: " + "[" * 50_000 + "]" * 50_000 + "\n")


def _unknown_category(w, d):
    return sync_groups_text(w, d, GROUPS_YAML.replace("[CHEESE]", "[CHEESES]"))


def _catalogue_cut_short(w, d):
    return sync_groups_text(w, d, GROUPS_YAML.split("  cheese:")[0])


def _huge_catalogue(w, d):
    return sync_groups_text(w, d, GROUPS_YAML + "# " + "x" * 1_100_000 + "\n")


def _group_traversal_key(w, d):
    return sync_groups_text(w, d, GROUPS_YAML + '  "../../etc":\n    categories: [CHEESE]\n')


def _study_traversal_key(w, d):
    return sync_studies_text(w, d, STUDIES_YAML.replace("  small:", '  "../small":'))


def _study_unknown_generator(w, d):
    return sync_studies_text(w, d, STUDIES_YAML.replace("generate: software_company", "generate: retail_shop"))


def _study_mediator_of_nothing(w, d):
    return sync_studies_text(w, d, STUDIES_YAML + "    mediators:\n      New Product Adoption: [Tech Support]\n")


def _cost_formula_that_runs_code(w, d):
    return sync_studies_text(w, d, STUDIES_YAML.replace("{cost: 7000}", """{cost: "`Size`.to_csv('out.csv')"}"""))


def _cost_formula_reaching_class(w, d):
    return sync_studies_text(w, d, STUDIES_YAML.replace("{cost: 7000}", '{cost: "`Size`.__class__"}'))


def _cost_formula_importing(w, d):
    return sync_studies_text(w, d, STUDIES_YAML.replace("{cost: 7000}", """{cost: "__import__('os')"}"""))


def _cost_formula_naming_a_column_twice_and_an_undeclared_one(w, d):
    return sync_studies_text(w, d, STUDIES_YAML.replace("{cost: 7000}", '{cost: "`Size` * `Size` + `Seats`"}'))


def _negative_cost(w, d):
    return sync_studies_text(w, d, STUDIES_YAML.replace("{cost: 7000}", "{cost: -7000}"))


def _infinite_cost(w, d):
    return sync_studies_text(w, d, STUDIES_YAML.replace("{cost: 7000}", "{cost: 1e400}"))


def _study_keyed_like_a_retail_study(w, d):
    return sync_studies_text(w, d, STUDIES_YAML + STUDIES_YAML.split("\n", 1)[1].replace("  small:", "  retail_beef:"))


# -- study tables: the data asset of the study `small`, read from a scratch catalogue ------------

STUDY_ON_A_FILE = """\
incentive_studies:
  small:
    path: {path}
    outcome: Revenue
    treatments:
      Discount: {{cost: 100}}
    covariates: [Size, Age]
"""


def study_table(n: int = 120) -> pd.DataFrame:
    """Every other account given the Discount; Revenue = 2 × Size + 10 × Discount."""
    discount = np.arange(n) % 2
    size = np.arange(n, dtype=float) * 10
    return pd.DataFrame({"Size": size, "Age": np.arange(n) % 7, "Discount": discount, "Revenue": 2 * size + 10 * discount})


def study_data(w: World, d: Path, catalogue: str) -> tuple[str, str]:
    path = d / "incentive_studies.yaml"
    path.write_text(catalogue)
    resources = {**w.resources(), "incentive_studies": IncentiveStudiesResource(path=str(path))}
    result = dg.materialize([incentive_study_data], partition_key="small", instance=w.instance, resources=resources,
                            raise_on_error=False)
    return user_error(result)


def study_of(w: World, d: Path, table: pd.DataFrame) -> tuple[str, str]:
    table.to_csv(d / "table.csv", index=False)
    return study_data(w, d, STUDY_ON_A_FILE.format(path="table.csv"))


def _thirty_row_study(w, d):
    return study_data(w, d, STUDIES_YAML.replace("n: 200", "n: 30"))


def _nan_outcome(w, d):
    table = study_table()
    table.loc[[3, 17], "Revenue"] = np.nan
    return study_of(w, d, table)


def _infinite_outcome(w, d):
    table = study_table()
    table.loc[[5], "Revenue"] = np.inf
    return study_of(w, d, table)


def _every_unit_treated(w, d):
    return study_of(w, d, study_table().assign(Discount=1))


def _csv_that_is_not_a_table(w, d):
    (d / "table.csv").write_text('Size,Age,Discount,Revenue\n1,2,0,3\n4,5,1,6,"and more",7\n')
    return study_data(w, d, STUDY_ON_A_FILE.format(path="table.csv"))


def _study_path_a_named_pipe(w, d):
    os.mkfifo(d / "pipe.csv")  # reading it would block for ever
    return study_data(w, d, STUDY_ON_A_FILE.format(path="pipe.csv"))


def _study_path_a_symlink_to_a_system_file(w, d):
    (d / "passwd.csv").symlink_to("/etc/passwd")
    return study_data(w, d, STUDY_ON_A_FILE.format(path="passwd.csv"))


def _study_path_a_directory(w, d):
    (d / "tables.csv").mkdir()
    return study_data(w, d, STUDY_ON_A_FILE.format(path="tables.csv"))


# -- champions, promotion and training configuration -------------------------------------------


def score(w: World, stage: str, key: str) -> tuple[str, str]:
    from propensity_assets.ltv.assets import lifecycle as ltv
    from propensity_assets.propensity.assets import lifecycle as propensity

    scores = {"propensity": propensity, "ltv": ltv}[stage].assets[2]
    result = dg.materialize([scores], partition_key=key, instance=w.instance, resources=w.resources(),
                            raise_on_error=False)
    return user_error(result)


def train(w: World, stage: str, config: dict) -> tuple[str, str]:
    from propensity_assets.ltv.assets import lifecycle as ltv
    from propensity_assets.propensity.assets import lifecycle as propensity

    model = {"propensity": propensity, "ltv": ltv}[stage].assets[0]
    result = dg.materialize([model], partition_key="2017-04-07|soft_drinks", instance=w.instance,
                            resources=w.resources(), raise_on_error=False,
                            run_config={"ops": {f"{stage}_model": {"config": config}}})
    return user_error(result)


def _incomplete_champion_scored(w, d):
    return score(w, "propensity", "2017-03-02|soft_drinks")


def _ltv_model_as_propensity_champion(w, d):
    return score(w, "propensity", "2017-03-02|cheese")


def _champion_of_another_group(w, d):
    return score(w, "ltv", "2017-03-02|soft_drinks")


def _champion_without_train_as_of_max(w, d):
    return score(w, "ltv", "2017-03-02|cheese")


def _promote_an_incomplete_version(w, d):
    return cli(w, "promote", "soft_drinks", "1")


def _promote_an_unvetted_version(w, d):
    return cli(w, "promote", "cheese", "1", "--stage", "ltv")


def _no_trials(w, d):
    return train(w, "propensity", {"max_trials": 0})


def _empty_search_list(w, d):
    return train(w, "propensity", {"num_leaves": []})


def _no_ltv_algorithm(w, d):
    return train(w, "ltv", {"algorithms": []})


# -- partitions --------------------------------------------------------------------------------


def _reversed_date_range(w, d):
    return materialize_range(w, household_features, "2017-11-30", "2017-11-01")


def _reversed_group_range(w, d):
    return materialize_range(w, group_features, "2017-03-02|cheese", "2017-03-02|soft_drinks")


def _stale_as_of(w, d):
    return materialize_range(w, household_features, "2017-12-30", "2017-12-31")


def _features_before_ingest(w, d):
    resources = {**w.resources(), "lake": LakeResource(uri=str(d / "new_lake"))}
    result = dg.materialize([household_features], partition_key="2017-03-02", instance=w.instance,
                            resources=resources, raise_on_error=False)
    return user_error(result)


def _partition_range_outside(w, d):
    return cli(w, "partition-range", "2030-01-01")


def _partition_range_unknown_group(w, d):
    return cli(w, "partition-range", "2017-03-02", "--group", "milk")


def _lake_partition_traversal(w, d):
    lake = Lake(str(w.lake_dir))
    frame = pd.DataFrame({"product_group": ["../../escape"], "x": [1]})
    return raised(lambda: lake.write_pandas("group_features", frame, ["product_group"],
                                            specs=[{"product_group": "../../escape"}]))


# -- configuration and the environment ---------------------------------------------------------


def _bad_as_of_end(w, d):
    return cli(w, "partition-range", "2017-03-02", PROPENSITY_AS_OF_END="2018-13-01")


def _as_of_end_before_start(w, d):
    return cli(w, "partition-range", "2017-03-02", PROPENSITY_AS_OF_END="2016-06-01")


def _lake_on_an_object_store(w, d):
    return cli(w, "sync-groups", PROPENSITY_LAKE_URI="s3a://bucket/lake")


def _unreachable_mlflow(w, d):
    return cli(w, "promote", "soft_drinks", "1", MLFLOW_TRACKING_URI="http://127.0.0.1:9")


def _bad_catalogue_on_the_cli(w, d):
    path = d / "groups.yaml"
    path.write_text("product_groups:\n  Soft:\n    categories: [SOFT DRINKS]\n")
    return cli(w, "sync-groups", "--file", str(path))


def _bad_horizon(w, d):
    os.environ["PROPENSITY_LTV_HORIZON_DAYS"] = "60"
    try:
        return raised(settings.ltv_horizon_days)
    finally:
        del os.environ["PROPENSITY_LTV_HORIZON_DAYS"]


def _bad_spark_conf(w, d):
    os.environ["PROPENSITY_SPARK_CONF"] = "spark.master"
    try:
        return raised(settings.spark_conf)
    finally:
        del os.environ["PROPENSITY_SPARK_CONF"]


def _registry_down_for_scoring(w, d):
    from propensity_assets.propensity.assets import lifecycle

    scores = lifecycle.assets[2]
    resources = {**w.resources(), "mlflow": MlflowResource(tracking_uri="http://127.0.0.1:9")}
    result = dg.materialize([scores], partition_key="2017-03-02|soft_drinks", instance=w.instance,
                            resources=resources, raise_on_error=False)
    return user_error(result)


FAILURE = "Failure"
UNREACHABLE = ("MLflow tracking server http://127.0.0.1:9 is unreachable ([Errno 111] Connection refused); "
               "start it, or point MLFLOW_TRACKING_URI at a running server (unset: the local SQLite store under data/mlflow)")
KEY_RULE = "key must be lowercase letters, digits and '_' ([a-z0-9_]+)"
CASES = [
    # raw tables
    Case("empty transactions file", "raw", _empty_transactions, FAILURE,
         "{scratch}/transactions.csv: the 'transactions' table has no rows; expected at least one transaction. "
         "Nothing was written: the lake keeps its previous transactions."),
    Case("household id beyond 64 bits", "raw", _ids_beyond_64_bits, "SourceError",
         "{scratch}/transactions.csv: column 'household_id' of table 'transactions' holds 99999999999999999999, "
         "beyond the 64-bit integer range; expected ids up to 9223372036854775807"),
    Case("uint64 product id beyond int64", "raw", _uint64_ids, "SourceError",
         "{scratch}/products.parquet: column 'product_id' of table 'products' holds 18446744073709551615, "
         "beyond the 64-bit integer range; expected ids up to 9223372036854775807"),
    Case("float ids above 2**53", "raw", _float_ids_above_2_53, "SourceError",
         "{scratch}/transactions.parquet: column 'household_id' of table 'transactions' has the wrong type: it is "
         "stored as floating point (float64) with values such as 9007199254740994: above 2**53 such ids are "
         "rounded onto each other; expected an integer column"),
    Case("dd/mm/yyyy timestamps", "raw", _day_first_timestamps, "SourceError",
         "{scratch}/transactions.csv: column 'transaction_timestamp' of table 'transactions' has the wrong type: "
         "expected timestamp, ISO 8601 (YYYY-MM-DD, optionally followed by HH:MM[:SS]), got object values such "
         "as '01/01/2017 10:00'"),
    Case("boolean sales_value", "raw", _boolean_sales, "SourceError",
         "{scratch}/transactions.parquet: column 'sales_value' of table 'transactions' has the wrong type: "
         "expected numbers, got booleans (bool): True/False is not an amount"),
    Case("inf sales_value", "raw", _infinite_sales, FAILURE,
         "{scratch}/transactions.csv: 1 of 41 rows of table 'transactions' are invalid (invalid share 2.44%, "
         "limit max_invalid_share=1.00%; duplicate share 0.00%, limit max_duplicate_share=10.00%; reasons: "
         "non_finite:sales_value 1). They are in the lake's quarantine table (source_table=transactions); "
         "the previous version of 'transactions' is kept."),
    Case("duplicated header sales_value", "raw", _repeated_header, "SourceError",
         "{scratch}/transactions.csv: header has column(s) ['sales_value'] more than once (columns sales_value: "
         "5, 7); expected each column once"),
    Case("product_id in two categories", "raw", _product_in_two_categories, FAILURE,
         "{scratch}/products.parquet: 2 of 5 rows of table 'products' are invalid (invalid share 40.00%, limit "
         "max_invalid_share=1.00%; duplicate share 0.00%, limit max_duplicate_share=10.00%; reasons: "
         "conflicting_key:product_id 2). They are in the lake's quarantine table (source_table=products); "
         "the previous version of 'products' is kept."),
    Case("integer product_category", "raw", _integer_categories, "SourceError",
         "{scratch}/products.parquet: column 'product_category' of table 'products' has the wrong type: expected "
         "text (names such as 'SOFT DRINKS'), got int64 values such as 1; a numeric code is not a name the "
         "catalogues can match"),
    Case("products the catalogue cannot resolve", "raw", _categories_the_catalogue_does_not_know, FAILURE,
         "{scratch}/products.parquet: the new 'products' table does not resolve the product-group catalogue: "
         "{groups}: product group 'soft_drinks': unknown category 'SOFT DRINKS' (no product has product_category "
         "= 'SOFT DRINKS'). Nothing was written: the lake keeps its previous products. Fix the catalogue or the "
         "products file."),
    Case("missing required column", "raw", _missing_column, "SourceError",
         "{scratch}/transactions.csv: table 'transactions' is missing required column(s) ['sales_value']; found "
         "['household_id', 'basket_id', 'product_id', 'quantity', 'transaction_timestamp']"),
    Case("quantity of text", "raw", _text_quantity, "SourceError",
         "{scratch}/transactions.csv: column 'quantity' of table 'transactions' has the wrong type: expected "
         "number, got object values such as 'a few'"),
    Case("null household ids over the limit", "raw", _null_keys, FAILURE,
         "{scratch}/transactions.csv: 2 of 22 rows of table 'transactions' are invalid (invalid share 9.09%, "
         "limit max_invalid_share=1.00%; duplicate share 0.00%, limit max_duplicate_share=10.00%; reasons: "
         "null:household_id 2). They are in the lake's quarantine table (source_table=transactions); the "
         "previous version of 'transactions' is kept."),
    Case("timestamps in the future", "raw", _timestamps_out_of_range, FAILURE,
         "{scratch}/transactions.csv: 10 of 10 rows of table 'transactions' are invalid (invalid share 100.00%, "
         "limit max_invalid_share=1.00%; duplicate share 0.00%, limit max_duplicate_share=10.00%; reasons: "
         "timestamp_out_of_range:transaction_timestamp 10). They are in the lake's quarantine table "
         "(source_table=transactions); the previous version of 'transactions' is kept. Timestamps must lie "
         "within min_timestamp=1900-01-01 .. max_timestamp={tomorrow} (tomorrow); to accept other dates, set "
         "them in the run config of asset 'transactions' (launchpad, or --config-json '{{\"ops\": "
         "{{\"transactions\": {{\"config\": {{\"min_timestamp\": \"YYYY-MM-DD\"}}}}}}}}')."),
    Case("campaign described twice, differently", "raw", _campaign_described_twice, FAILURE,
         "{scratch}/campaign_descriptions.csv: 2 of 3 rows of table 'campaign_descriptions' are invalid (invalid "
         "share 66.67%, limit max_invalid_share=1.00%; duplicate share 0.00%, limit max_duplicate_share=10.00%; "
         "reasons: conflicting_key:campaign_id 2). They are in the lake's quarantine table "
         "(source_table=campaign_descriptions); the previous version of 'campaign_descriptions' is kept."),
    Case("garbage parquet", "raw", _garbage_parquet, "SourceError",
         "{scratch}/products.parquet: unreadable file (ArrowInvalid: Could not open Parquet input source "
         "'<Buffer>': Parquet magic bytes not found in footer. Either the file is corrupted or this is not a "
         "parquet file.)"),
    Case("no transactions file", "raw", _no_transactions_file, "SourceError",
         "{scratch}: required table 'transactions' not found (expected transactions.parquet or transactions.csv)"),
    Case("no source directory", "raw", _no_source_directory, "SourceError",
         "{scratch}/nowhere: source directory does not exist"),
    Case("transactions of 1899", "raw", _transactions_of_1899, FAILURE,
         "{scratch}/transactions.csv: 3 of 23 rows of table 'transactions' are invalid (invalid share 13.04%, "
         "limit max_invalid_share=1.00%; duplicate share 0.00%, limit max_duplicate_share=10.00%; reasons: "
         "timestamp_out_of_range:transaction_timestamp 3). They are in the lake's quarantine table "
         "(source_table=transactions); the previous version of 'transactions' is kept. Timestamps must lie "
         "within min_timestamp=1900-01-01 .. max_timestamp={tomorrow} (tomorrow); to accept other dates, set "
         "them in the run config of asset 'transactions' (launchpad, or --config-json '{{\"ops\": "
         "{{\"transactions\": {{\"config\": {{\"min_timestamp\": \"YYYY-MM-DD\"}}}}}}}}')."),
    Case("transactions of 1997 below a configured min_timestamp", "raw",
         _transactions_of_1997_below_a_configured_bound, FAILURE,
         "{scratch}/transactions.csv: 10 of 10 rows of table 'transactions' are invalid (invalid share "
         "100.00%, limit max_invalid_share=1.00%; duplicate share 0.00%, limit max_duplicate_share=10.00%; "
         "reasons: timestamp_out_of_range:transaction_timestamp 10). They are in the lake's quarantine table "
         "(source_table=transactions); the previous version of 'transactions' is kept. Timestamps must lie "
         "within min_timestamp=1998-01-01 .. max_timestamp=2018-01-02; to accept other dates, set them in the "
         "run config of asset 'transactions' (launchpad, or --config-json '{{\"ops\": {{\"transactions\": "
         "{{\"config\": {{\"min_timestamp\": \"YYYY-MM-DD\"}}}}}}}}')."),
    Case("truncated parquet", "raw", _truncated_parquet, "SourceError",
         "{scratch}/products.parquet: unreadable file (ArrowInvalid: Could not open Parquet input source "
         "'<Buffer>': Parquet magic bytes not found in footer. Either the file is corrupted or this is not a "
         "parquet file.)"),
    Case("stray file in a lake table", "raw", _stray_file_in_the_lake, "ArrowInvalid",
         "Error creating dataset. Could not read schema from '{root}/lake/products/notes.txt'. Is this a "
         "'parquet' file?: Could not open Parquet input source '{root}/lake/products/notes.txt': Parquet "
         "magic bytes not found in footer. Either the file is corrupted or this is not a parquet file."),
    # the product-group catalogue
    Case("group key with a trailing newline", "groups", _key_with_newline, "CatalogError",
         "{scratch}/product_groups.yaml: product group 'milk\\n': " + KEY_RULE),
    Case("YAML aliases (billion laughs)", "groups", _yaml_aliases, "CatalogError",
         "{scratch}/product_groups.yaml: YAML aliases (*name) are not allowed (line 3)"),
    Case("50,000-deep YAML", "groups", _deep_yaml, "CatalogError",
         "{scratch}/product_groups.yaml: nesting deeper than 20 levels (line 1)"),
    Case("unknown category", "groups", _unknown_category, "CatalogError",
         "{scratch}/product_groups.yaml: product group 'cheese': unknown category 'CHEESES' (no product has "
         "product_category = 'CHEESES'); did you mean 'CHEESE'?"),
    Case("catalogue cut short", "groups", _catalogue_cut_short, "CatalogError",
         "{scratch}/product_groups.yaml: product_group partition(s) cheese are not in the catalogue; nothing was "
         "changed. Add them back, or run `propensity-assets sync-groups --prune` to remove them (their run "
         "history and lake partitions stay)"),
    Case("catalogue over 1 MB", "groups", _huge_catalogue, "CatalogError",
         "{scratch}/product_groups.yaml: 1,100,152 bytes; a catalogue is at most 1,000,000 bytes"),
    Case("group key with path traversal", "groups", _group_traversal_key, "CatalogError",
         "{scratch}/product_groups.yaml: product group '../../etc': " + KEY_RULE),
    # the incentive-study catalogue
    Case("study key with path traversal", "studies", _study_traversal_key, "StudyCatalogError",
         "{scratch}/incentive_studies.yaml: study '../small': " + KEY_RULE),
    Case("unknown study generator", "studies", _study_unknown_generator, "StudyCatalogError",
         "{scratch}/incentive_studies.yaml: study 'small': 'generate' must be one of ('software_company',), "
         "got 'retail_shop'"),
    Case("mediator of a treatment the study lacks", "studies", _study_mediator_of_nothing, "StudyCatalogError",
         "{scratch}/incentive_studies.yaml: study 'small': mediator 'New Product Adoption' mediates "
         "'Tech Support', which is not a treatment of the study"),
    Case("cost formula that runs code", "studies", _cost_formula_that_runs_code, "StudyCatalogError",
         "{scratch}/incentive_studies.yaml: study 'small': treatment 'Discount': cost "
         "\"`Size`.to_csv('out.csv')\": unexpected '.to_csv' at character 7. A cost is a number or a formula of "
         "numbers and backticked columns with + - * /, parentheses, min(...) and max(...), e.g. \"100 * `PC "
         "Count`\""),
    Case("cost formula reaching __class__", "studies", _cost_formula_reaching_class, "StudyCatalogError",
         "{scratch}/incentive_studies.yaml: study 'small': treatment 'Discount': cost '`Size`.__class__': "
         "unexpected '.__class__' at character 7. A cost is a number or a formula of numbers and backticked "
         "columns with + - * /, parentheses, min(...) and max(...), e.g. \"100 * `PC Count`\""),
    Case("cost formula calling __import__", "studies", _cost_formula_importing, "StudyCatalogError",
         "{scratch}/incentive_studies.yaml: study 'small': treatment 'Discount': cost \"__import__('os')\": "
         "unexpected \"'os'\" at character 12. A cost is a number or a formula of numbers and backticked "
         "columns with + - * /, parentheses, min(...) and max(...), e.g. \"100 * `PC Count`\""),
    Case("cost formula naming a column twice and an undeclared one", "studies",
         _cost_formula_naming_a_column_twice_and_an_undeclared_one, "StudyCatalogError",
         "{scratch}/incentive_studies.yaml: study 'small': treatment 'Discount': cost formula '`Size` * "
         "`Size` + `Seats`' uses column 'Seats', which the study does not have"),
    Case("negative cost", "studies", _negative_cost, "StudyCatalogError",
         "{scratch}/incentive_studies.yaml: study 'small': treatment 'Discount': cost '-7000' is negative; a "
         "rebate needs allow_negative_cost: true"),
    Case("infinite cost", "studies", _infinite_cost, "StudyCatalogError",
         "{scratch}/incentive_studies.yaml: study 'small': treatment 'Discount': cost '1e400': the number "
         "1e400 is not finite (costs must be finite). A cost is a number or a formula of numbers and "
         "backticked columns with + - * /, parentheses, min(...) and max(...), e.g. \"100 * `PC Count`\""),
    Case("study keyed retail_beef", "studies", _study_keyed_like_a_retail_study, "StudyCatalogError",
         "{scratch}/incentive_studies.yaml: study 'retail_beef': keys starting with 'retail_' are reserved "
         "for the retail campaign studies of the product groups (retail_<group>), which write the same lake "
         "tables under study=<key>; choose another key"),
    # study tables
    Case("30-row study", "study tables", _thirty_row_study, FAILURE,
         "generator 'software_company': study 'small': treatment 'Discount' has 13 treated and 17 untreated "
         "rows; each arm needs at least 30 (incentive_study_data config min_per_arm); the treated arm is 13 "
         "row(s) (rows 0, 1, 2, 3, 5, …). Nothing was written."),
    Case("NaN outcome", "study tables", _nan_outcome, FAILURE,
         "{scratch}/table.csv: study 'small': column 'Revenue' is not a finite number in 2 row(s) (rows 3, "
         "17); every value of the outcome, treatments, covariates, mediators and other variables must be (no "
         "blank, NaN, inf or text). Nothing was written."),
    Case("infinite outcome", "study tables", _infinite_outcome, FAILURE,
         "{scratch}/table.csv: study 'small': column 'Revenue' is not a finite number in 1 row(s) (rows 5); "
         "every value of the outcome, treatments, covariates, mediators and other variables must be (no "
         "blank, NaN, inf or text). Nothing was written."),
    Case("every unit treated", "study tables", _every_unit_treated, FAILURE,
         "{scratch}/table.csv: study 'small': treatment 'Discount' is given to every one of the 120 rows: an "
         "effect needs treated and untreated units. Nothing was written."),
    Case("CSV that is not a table", "study tables", _csv_that_is_not_a_table, FAILURE,
         "{scratch}/incentive_studies.yaml: study 'small': path '{scratch}/table.csv' is not a CSV table with "
         "a header row (ParserError). Nothing was written."),
    Case("study path a named pipe", "study tables", _study_path_a_named_pipe, FAILURE,
         "{scratch}/incentive_studies.yaml: study 'small': path '{scratch}/pipe.csv' is a named pipe; "
         "expected a regular CSV or Parquet file. Nothing was written."),
    Case("study path a symlink to /etc/passwd", "study tables", _study_path_a_symlink_to_a_system_file, FAILURE,
         "{scratch}/incentive_studies.yaml: study 'small': path '{scratch}/passwd.csv' is not a CSV table "
         "with a header row (ParserError). Nothing was written."),
    Case("study path a directory", "study tables", _study_path_a_directory, FAILURE,
         "{scratch}/incentive_studies.yaml: study 'small': path '{scratch}/tables.csv' is a directory; "
         "expected a regular CSV or Parquet file. Nothing was written."),
    # champions, promotion and training configuration
    Case("incomplete champion scored", "models", _incomplete_champion_scored, FAILURE,
         "nothing scored; 1 partition(s) skipped:\n2017-03-02|soft_drinks: champion refused: "
         "propensity__soft_drinks version 1 is incomplete: its registration stopped before all its tags and "
         "artifacts were written (no `complete` tag, e.g. a killed training run); train it again"),
    Case("LTV model as propensity champion", "models", _ltv_model_as_propensity_champion, FAILURE,
         "nothing scored; 1 partition(s) skipped:\n2017-03-02|cheese: champion refused: propensity__cheese "
         "version 1 is not a propensity model of product group cheese: tag stage is 'ltv', expected "
         "'propensity'"),
    Case("champion of another group", "models", _champion_of_another_group, FAILURE,
         "nothing scored; 1 partition(s) skipped:\n2017-03-02|soft_drinks: champion refused: ltv__soft_drinks "
         "version 1 is not a ltv model of product group soft_drinks: tag product_group is 'cheese', expected "
         "'soft_drinks'"),
    Case("champion without train_as_of_max", "models", _champion_without_train_as_of_max, FAILURE,
         "nothing scored; 1 partition(s) skipped:\n2017-03-02|cheese: champion refused: ltv__cheese version 1 "
         "lacks the lineage tags train_as_of_max that the lifecycle writes at registration; retrain it, or "
         "promote a version the lifecycle registered"),
    Case("promote an incomplete version", "models", _promote_an_incomplete_version, "exit 2",
         "not promoted: propensity__soft_drinks version 1 is incomplete: its registration stopped before all "
         "its tags and artifacts were written (no `complete` tag, e.g. a killed training run); train it "
         "again; --force promotes it anyway"),
    Case("promote an unvetted version", "models", _promote_an_unvetted_version, "exit 2",
         "not promoted: ltv__cheese version 1 has not been vetted (no vetting.decision tag): materialize its "
         "champion partition (cutoff 2017-04-07) first; --force promotes it anyway"),
    Case("max_trials 0", "models", _no_trials, FAILURE,
         "every model failed to train:\n2017-04-07|soft_drinks: ValueError: propensity_model config "
         "max_trials: expected a whole number ≥ 1, got 0"),
    Case("empty search list", "models", _empty_search_list, FAILURE,
         "every model failed to train:\n2017-04-07|soft_drinks: ValueError: propensity_model config "
         "num_leaves: the search list is empty; expected at least one value"),
    Case("no LTV algorithm", "models", _no_ltv_algorithm, FAILURE,
         "every model failed to train:\n2017-04-07|soft_drinks: ValueError: LtvSearchSpace.algorithms: unknown "
         "or no values []; expected a subset of ['lgbm_l2', 'lgbm_tweedie', 'random_forest', 'sklearn_gbr']"),
    # partition keys and ranges
    Case("reversed date range", "partitions", _reversed_date_range, FAILURE,
         "household_features: the partition range 2017-11-30...2017-11-01 is empty: as_of 2017-11-30 comes "
         "after 2017-11-01; give the earlier date first, or print a range with `propensity-assets "
         "partition-range START END`"),
    Case("reversed group range", "partitions", _reversed_group_range, FAILURE,
         "group_features: the partition range 2017-03-02|cheese...2017-03-02|soft_drinks is empty: product_group "
         "cheese comes after soft_drinks; give the earlier product group (in the instance's order: soft_drinks, "
         "cheese) first, or print a range with `propensity-assets partition-range START END`"),
    Case("as_of past the ingested data", "partitions", _stale_as_of, FAILURE,
         "household_features as_of 2017-12-30..2017-12-31 (2 dates): the ingested transactions end on "
         "2017-12-28, 2 day(s) short of the day before as_of 2017-12-31; features would read the missing days "
         "as no purchases. Ingest newer transactions, or materialize as_of up to 2017-12-29."),
    Case("features before ingest", "partitions", _features_before_ingest, FAILURE,
         "Lake table 'transactions' does not exist at {scratch}/new_lake/transactions: materialize the asset "
         "'transactions' first"),
    Case("partition-range outside the as_of range", "partitions", _partition_range_outside, "exit 2",
         "START 2030-01-01 is not an as_of partition: the as_of partitions run from 2017-01-01 to 2018-01-01"),
    Case("partition-range for an unknown group", "partitions", _partition_range_unknown_group, "exit 2",
         "product group 'milk' is not a partition; known: soft_drinks, cheese"),
    Case("lake partition value with path traversal", "partitions", _lake_partition_traversal, "ValueError",
         "lake partition product_group='../../escape': expected letters, digits, '_', '.', ':', '+' or '-', not "
         "starting with '.' or '-' (a partition value never names a path outside its table)"),
    # configuration and the environment
    Case("PROPENSITY_AS_OF_END not a date", "config", _bad_as_of_end, "exit 2",
         "PROPENSITY_AS_OF_END='2018-13-01': expected a date YYYY-MM-DD (the exclusive end of the as_of "
         "partitions, or 'live' for partitions up to today), e.g. 2018-01-02"),
    Case("PROPENSITY_AS_OF_END before the start", "config", _as_of_end_before_start, "exit 2",
         "PROPENSITY_AS_OF_END=2016-06-01: expected a date after PROPENSITY_AS_OF_START=2017-01-01 (the end is "
         "exclusive: the last as_of partition is the day before it)"),
    Case("LTV horizon not a feature window", "config", _bad_horizon, "ValueError",
         "PROPENSITY_LTV_HORIZON_DAYS: expected one of 7, 14, 30, 90, 365 (a feature window), got 60"),
    Case("PROPENSITY_SPARK_CONF without '='", "config", _bad_spark_conf, "ValueError",
         "PROPENSITY_SPARK_CONF: expected key=value pairs separated by commas, got 'spark.master'"),
    Case("lake on an object store", "config", _lake_on_an_object_store, "exit 2",
         "PROPENSITY_LAKE_URI='s3a://bucket/lake': scheme s3a:// is not supported. The lake must be a local or "
         "mounted POSIX filesystem path (e.g. /srv/lake or file:///srv/lake) that the driver and every Spark "
         "executor see at the same path: its crash-safe commit locks a table with flock and swaps partition "
         "directories by rename, which object stores (s3://, s3a://, gs://, abfss://) cannot do atomically and "
         "which the lake implements for POSIX filesystems only (not hdfs://)."),
    Case("bad catalogue on the CLI", "config", _bad_catalogue_on_the_cli, "exit 2",
         "{scratch}/groups.yaml: product group 'Soft': " + KEY_RULE),
    Case("unreachable MLflow on the CLI", "environment", _unreachable_mlflow, "exit 2", UNREACHABLE),
    Case("unreachable MLflow for scoring", "environment", _registry_down_for_scoring, FAILURE, UNREACHABLE),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_naming_what_and_why_and_loses_nothing(world, tmp_path, case):
    scratch = tmp_path / "scratch"
    shutil.copytree(world.src, scratch)
    before = world.state()
    error, message = case.run(world, scratch)
    tomorrow = (pd.Timestamp.now().normalize() + pd.Timedelta(days=1)).date()
    expected = case.message.format(scratch=scratch, groups=world.groups, root=world.root, tomorrow=tomorrow)
    assert (error, message) == (case.error, expected)
    after = world.state()
    assert after["lake"] == before["lake"], "the lake changed"
    assert after["registry"] == before["registry"], "the registry changed"
    assert after["instance"] == before["instance"], "the instance changed"


def test_the_corpus_covers_every_area_with_60_distinct_inputs():
    assert len({c.id for c in CASES}) == len(CASES) >= 60
    assert {c.area for c in CASES} == {"raw", "groups", "studies", "study tables", "models", "partitions", "config",
                                       "environment"}


# -- what used to be silently corrupted is now stored exactly ---------------------------------


def test_ids_above_2_53_with_a_blank_cell_are_stored_exactly(tmp_path):
    from propensity_assets.ingest.sources import read_source
    from propensity_assets.ingest.validation import validate

    ids = [2**53 + k for k in (1, 2, 3, 4, 5)]
    lines = [f"{i},{1000 + n},100,1,2.5,2017-03-01 10:00:00" for n, i in enumerate(ids)]
    lines.append(",2000,100,1,2.5,2017-03-01 10:00:00")  # the blank cell that made pandas read floats
    (tmp_path / "src").mkdir()
    rows_csv(tmp_path / "src", lines)
    result = validate(read_source("transactions", str(tmp_path / "src")))
    assert result.valid["household_id"].tolist() == ids  # 5 distinct ids, not 3
    assert result.invalid_counts == {"null:household_id": 1}


def test_a_source_without_an_optional_table_keeps_the_previous_one(world, tmp_path):
    before = world.lake_state()
    households = Lake(str(world.lake_dir)).read_pandas("households")
    assert len(households) == 7
    minimal = tmp_path / "minimal"
    minimal.mkdir()
    shutil.copy(world.src / "transactions.csv", minimal)
    shutil.copy(world.src / "products.parquet", minimal)
    result = dg.materialize([a for a in raw_assets if a.key.path[-1] in ("households", "campaigns")],
                            instance=world.instance, resources=world.resources(minimal))
    assert result.success
    for table, rows in (("households", 7), ("campaigns", 3)):
        [mat] = result.asset_materializations_for_node(table)
        meta = {k: v.value for k, v in mat.metadata.items()}
        assert meta["kept_previous"] is True and meta["rows"] == rows
        assert meta["note"] == (
            f"the source has no {table} table ({minimal}/{table}.*); kept the previously ingested {table} "
            f"({rows:,} rows). To empty it, give a {table} file with the header only."
        )
    assert world.lake_state() == before  # nothing erased, nothing rewritten
