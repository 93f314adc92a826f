"""The audiences asset, its CSV, the `audience` command and the lake's SQL catalogue on the
tiny lake of conftest.py (profile, one audience, the DuckDB file)."""

import os
import subprocess

import dagster as dg
import duckdb
import pandas as pd
import pytest

from propensity_assets.audiences.rules import COLUMNS
from propensity_assets.cli import main
from propensity_assets.profile.assets import top_scorers
from propensity_assets.shared.resources import LakeResource
from propensity_assets_tests.audiences.conftest import AS_OF
from propensity_assets_tests.cli_helpers import BIN, REPO
from propensity_assets_tests.in_process import assets

# Top 3 of beef: 0.9 (hh 1), then the tie at 0.8, hh 2 before hh 3. The profile's deciles
# of six households rank 1..6 → ceil(r / 6 × 10): 2, 4, 5 (the tie broken by first seen).
TOP3 = pd.DataFrame({
    "household_id": [1, 2, 3], "rank": [1, 2, 3], "score": [0.9, 0.8, 0.8], "score_decile": [2, 4, 5],
    "ltv": [10.0, 100.0, 50.0], "expected_value": [9.0, 80.0, 40.0], "incentive": ["TypeB", "none", "TypeB"],
    "rule": "top 3 by score",
})
CSV = (
    "household_id,rank,score,score_decile,ltv,expected_value,incentive,rule\n"
    "1,1,0.9,2,10.0,9.0,TypeB,top 3 by score\n"
    "2,2,0.8,4,100.0,80.0,none,top 3 by score\n"
    "3,3,0.8,5,50.0,40.0,TypeB,top 3 by score\n"
)


def test_the_asset_writes_the_lake_partition_and_the_csv(tiny_lake):
    stored = tiny_lake.lake.read_partition("audiences", {"as_of": AS_OF, "product_group": "beef"})
    assert list(stored.columns) == COLUMNS
    pd.testing.assert_frame_equal(stored, TOP3, check_dtype=False)
    csv = tiny_lake.root / "exports" / "audiences" / AS_OF / "beef.csv"
    assert csv.read_text() == CSV
    assert [p.name for p in csv.parent.iterdir()] == ["beef.csv"]  # no temporary file left

    [materialization] = tiny_lake.results["audiences"].asset_materializations_for_node("audiences")
    assert materialization.partition == f"{AS_OF}|beef"
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["size"] == 3 and meta["dagster/row_count"] == 3 and meta["rule"] == "top 3 by score"
    assert meta["dagster/uri"] == f"{tiny_lake.lake.root}/audiences/as_of={AS_OF}/product_group=beef"
    assert meta["csv"] == str(csv)
    assert meta["expected_value_total"] == 129.0
    assert [c.name for c in meta["dagster/column_schema"].columns] == COLUMNS


def test_a_bad_rule_or_a_date_without_profile_fails_the_run_naming_the_partition(tiny_lake):
    resources = {"lake": LakeResource(uri=tiny_lake.lake.root)}
    for key, config, message in (
        (f"{AS_OF}|beef", {"top": 3, "threshold": 0.5},
         f"audiences {AS_OF}|beef: give exactly one audience rule of top, deciles, threshold, min_expected_value; "
         "got 2: top=3, threshold=0.5"),
        ("2017-11-30|beef", {},
         f"audiences 2017-11-30|beef: customer_profile has no partition as_of=2017-11-30 at "
         f"{tiny_lake.lake.root}/customer_profile (it holds: {AS_OF} .. {AS_OF}, 1 date(s)): score the product "
         "groups for 2017-11-30, then materialize customer_profile for it"),
    ):
        result = dg.materialize(assets("audiences"), instance=tiny_lake.instance, resources=resources,
                                partition_key=key, run_config={"ops": {"audiences": {"config": config}}},
                                raise_on_error=False)
        assert not result.success
        [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert failure.step_failure_data.user_failure_data.description == message
    # The failed runs changed nothing.
    assert tiny_lake.lake.partitions("audiences", "as_of") == [AS_OF]


def test_the_profile_preview_shows_the_top_scorers(tiny_lake):
    [materialization] = tiny_lake.results["customer_profile"].asset_materializations_for_node("customer_profile")
    assert materialization.metadata["preview_ranked_by"].value == "propensity__beef"
    profile = tiny_lake.lake.read_partition("customer_profile", {"as_of": AS_OF})
    top, column = top_scorers(profile, ["propensity", "ltv"], n=3)
    assert column == "propensity__beef" and list(top["household_id"]) == [1, 2, 3]
    whole = profile.assign(propensity__all_products=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert list(top_scorers(whole, ["propensity"], n=2)[0]["household_id"]) == [6, 5]


def test_the_duckdb_catalogue_answers_sql(tiny_lake):
    path = tiny_lake.root / "lake.duckdb"
    [materialization] = tiny_lake.results["sql_catalog"].asset_materializations_for_node("sql_catalog")
    assert materialization.metadata["path"].value == str(path) and materialization.metadata["views"].value == 8
    with duckdb.connect(str(path), read_only=True) as sql:
        assert sql.sql("select count(*) from customer_profile").fetchall() == [(6,)]
        assert sql.sql(
            "select household_id, rank, incentive from audiences where product_group = 'beef' "
            "and as_of = '2017-12-01' order by rank"
        ).fetchall() == [(1, 1, "TypeB"), (2, 2, "none"), (3, 3, "TypeB")]
        assert sql.sql("select product_group, count(*) from propensity_scores group by 1 order by 1").fetchall() == [
            ("beef", 6), ("eggs", 3)]
        assert [r[0] for r in sql.sql("select table_name from information_schema.tables order by 1").fetchall()] == [
            "audiences", "customer_profile", "customer_profile_long", "incentive_recommendations", "incentive_summary",
            "ltv_scores", "propensity_labels", "propensity_scores"]


def _env(tiny_lake) -> dict[str, str]:
    return {"PROPENSITY_LAKE_URI": tiny_lake.lake.root, "PROPENSITY_PRODUCT_GROUPS": str(tiny_lake.groups_file)}


def _cli(tiny_lake, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **_env(tiny_lake), "PYTHONPATH": str(REPO)}
    env.pop("PROPENSITY_DEBUG", None)
    return subprocess.run([str(BIN / "propensity-assets"), *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def in_process_cli(tiny_lake, monkeypatch, capsys):
    """The command line in this process (a subprocess costs seconds): (exit code, stdout, stderr)."""
    for name, value in _env(tiny_lake).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PROPENSITY_DEBUG", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_the_audience_command_prints_and_writes_the_same_audience(tiny_lake, tmp_path):
    out = tmp_path / "beef.csv"
    done = _cli(tiny_lake, "audience", "--group", "beef", "--as-of", AS_OF, "--top", "3", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text() == CSV
    assert done.stdout.splitlines()[0] == f"audience {AS_OF}|beef: 3 households (top 3 by score) -> {out}"
    assert done.stdout.splitlines()[1].split() == COLUMNS[:-1]
    assert done.stdout.splitlines()[2].split() == ["1", "1", "0.9000", "2", "10.0000", "9.0000", "TypeB"]


@pytest.mark.parametrize("args, message", [
    (["--group", "pork", "--as-of", AS_OF, "--top", "3"], "product group 'pork' is not in {groups}; known: beef, eggs"),
    (["--group", "beef", "--as-of", AS_OF, "--top", "3", "--deciles", "1"],
     "give exactly one audience rule of top, deciles, threshold, min_expected_value; got 2: top=3, deciles=1"),
    (["--group", "beef", "--as-of", AS_OF, "--threshold", "2"], "audience rule threshold=2.0: expected a propensity in [0, 1]"),
    (["--group", "beef", "--as-of", AS_OF, "--top", "0"], "audience rule top=0: expected a whole number of households ≥ 1"),
    (["--group", "beef", "--as-of", "2017-12-32", "--top", "3"], "as_of '2017-12-32' is not a date: expected YYYY-MM-DD"),
    (["--group", "eggs", "--as-of", AS_OF, "--top", "3", "--incentive", "none"],
     f"customer_profile as_of={AS_OF} has no column incentive__eggs: the retail campaign study of 'eggs' has not run, "
     "so no household has a recommended incentive (materialize retail_recommendations, then customer_profile)"),
])
def test_the_audience_command_refuses_bad_input(in_process_cli, tiny_lake, tmp_path, args, message):
    code, _, err = in_process_cli("audience", "--out", str(tmp_path / "bad.csv"), *args)
    assert (code, err) == (2, f"error: {message.format(groups=tiny_lake.groups_file)}\n")
    assert not (tmp_path / "bad.csv").exists()


def test_the_sql_catalog_command_and_its_spark_sql(tiny_lake, in_process_cli, tmp_path):
    out = tmp_path / "catalog.duckdb"
    done = _cli(tiny_lake, "sql-catalog", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"{out}: 8 views (audiences, customer_profile, customer_profile_long, incentive_recommendations, "
                           "incentive_summary, ltv_scores, propensity_labels, propensity_scores)\n")
    with duckdb.connect(str(out), read_only=True) as sql:
        assert sql.sql("select count(*) from customer_profile").fetchall() == [(6,)]
    assert [p.name for p in tmp_path.iterdir()] == ["catalog.duckdb"]  # no temporary file or WAL left
    code, out, _ = in_process_cli("sql-catalog", "--spark-sql")
    location = tiny_lake.lake.root
    assert code == 0 and out.splitlines()[:3] == [
        f"CREATE TABLE IF NOT EXISTS `audiences` USING parquet OPTIONS (mergeSchema 'true') LOCATION 'file://{location}/audiences';",
        "MSCK REPAIR TABLE `audiences`;",
        f"CREATE TABLE IF NOT EXISTS `customer_profile` USING parquet OPTIONS (mergeSchema 'true') LOCATION 'file://{location}/customer_profile';",
    ]
