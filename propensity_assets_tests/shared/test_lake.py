"""The lake (CONTRACTS §5): Hive-partitioned Parquet, partition-exact replacement,
and failed writes that leave the previous version readable."""

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from propensity_assets.shared.lake import Lake, partition_dir

PARTS = ["as_of", "product_group"]


def features(as_of: str, group: str, households: list[int], value: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "as_of": as_of,
            "product_group": group,
            "household_id": pd.Series(households, dtype="int64"),
            "score": [value] * len(households),
        }
    )


def initial(lake: Lake) -> pd.DataFrame:
    """Four partitions: 2 as_of × 2 groups, 2 households each."""
    df = pd.concat(
        [
            features("2017-11-01", "eggs", [1, 2], 0.1),
            features("2017-11-01", "beef", [1, 2], 0.2),
            features("2017-12-01", "eggs", [1, 2], 0.3),
            features("2017-12-01", "beef", [1, 2], 0.4),
        ],
        ignore_index=True,
    )
    assert lake.write_pandas("scores", df, PARTS) == 4
    return df


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    cols = ["as_of", "product_group", "household_id", "score"]
    out = df[cols].copy()
    out["as_of"] = out["as_of"].astype(str)
    out["product_group"] = out["product_group"].astype(str)
    out["household_id"] = out["household_id"].astype("int64")
    return out.sort_values(cols).reset_index(drop=True)


def files_under(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def staging_leftovers(root: Path) -> list[Path]:
    staging = root / "_staging"
    return sorted(staging.rglob("*")) if staging.exists() else []


@pytest.fixture
def lake(lake_root) -> Lake:
    return Lake(lake_root)


def test_unpartitioned_write_read_and_replace(lake, lake_root):
    df = pd.DataFrame(
        {
            "product_id": pd.Series([1, 2, 3], dtype="Int64"),
            "product_category": ["EGGS", "BEEF", None],
            "ts": pd.to_datetime(["2017-01-01 10:00", "2017-06-01 11:30", "2017-12-31 23:59"]),
        }
    )
    assert lake.write_pandas("products", df) == 1
    assert lake.exists("products")
    assert not lake.partitions_in("products")
    back = lake.read_pandas("products")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    # Written as microseconds: Spark 4 refuses nanosecond Parquet timestamps.
    files = list(Path(lake_root, "products").glob("*.parquet"))
    assert len(files) == 1
    assert pq.read_schema(files[0]).field("ts").type == pa.timestamp("us")

    # Re-writing replaces the whole table.
    lake.write_pandas("products", df.iloc[:1])
    assert lake.read_pandas("products")["product_id"].tolist() == [1]
    assert len(list(Path(lake_root, "products").rglob("*.parquet"))) == 1
    assert staging_leftovers(Path(lake_root)) == []

    # Zero rows is a valid (empty) table with its columns.
    lake.write_pandas("products", df.iloc[:0])
    empty = lake.read_pandas("products")
    assert len(empty) == 0 and list(empty.columns) == list(df.columns)


def test_read_missing_table_names_it(lake):
    with pytest.raises(FileNotFoundError, match="'nope'"):
        lake.read_pandas("nope")
    assert not lake.exists("nope")
    assert lake.partitions("nope", "as_of") == []


def test_partitioned_layout_and_listing(lake, lake_root):
    df = initial(lake)
    table = Path(lake_root, "scores")
    dirs = sorted(str(p.relative_to(table)) for p in table.glob("*/*") if p.is_dir())
    assert dirs == [
        "as_of=2017-11-01/product_group=beef",
        "as_of=2017-11-01/product_group=eggs",
        "as_of=2017-12-01/product_group=beef",
        "as_of=2017-12-01/product_group=eggs",
    ]
    # The partition values live in the path, not in the files.
    part_file = next((table / "as_of=2017-11-01/product_group=eggs").glob("*.parquet"))
    assert set(pq.read_schema(part_file).names) == {"household_id", "score"}
    assert lake.partitions("scores", "as_of") == ["2017-11-01", "2017-12-01"]
    assert lake.exists("scores", {"as_of": "2017-12-01", "product_group": "eggs"})
    assert not lake.exists("scores", {"as_of": "2017-12-02", "product_group": "eggs"})
    pd.testing.assert_frame_equal(canonical(lake.read_pandas("scores")), canonical(df))
    only = lake.read_pandas("scores", filters=ds.field("product_group") == "eggs", columns=["household_id"])
    assert len(only) == 4


def test_rewriting_a_partition_replaces_exactly_that_partition(lake, lake_root):
    df = initial(lake)
    table = Path(lake_root, "scores")
    untouched = {
        d: files_under(table / d)
        for d in [
            "as_of=2017-11-01/product_group=eggs",
            "as_of=2017-11-01/product_group=beef",
            "as_of=2017-12-01/product_group=beef",
        ]
    }
    # New version of (2017-12-01, eggs): household 2 is gone, 3 is new, values changed.
    new = features("2017-12-01", "eggs", [1, 3], 0.9)
    assert lake.write_pandas("scores", new, PARTS) == 1
    for d, content in untouched.items():
        assert files_under(table / d) == content, d
    back = lake.read_pandas("scores")
    target = back[(back["as_of"] == "2017-12-01") & (back["product_group"] == "eggs")]
    assert sorted(target["household_id"]) == [1, 3]  # no stale row for 2, no duplicate of 1
    assert target["score"].tolist() == [0.9, 0.9]
    expected = pd.concat(
        [df[~((df["as_of"] == "2017-12-01") & (df["product_group"] == "eggs"))], new], ignore_index=True
    )
    pd.testing.assert_frame_equal(canonical(back), canonical(expected))
    # Writing the same partition twice doesn't accumulate files or rows.
    lake.write_pandas("scores", new, PARTS)
    assert len(list((table / "as_of=2017-12-01/product_group=eggs").glob("*.parquet"))) == 1
    assert len(lake.read_pandas("scores")) == len(expected)
    assert staging_leftovers(Path(lake_root)) == []


def test_a_spec_without_rows_deletes_that_partition(lake, lake_root):
    initial(lake)
    new = features("2017-12-01", "eggs", [7], 0.5)
    specs = [
        {"as_of": "2017-12-01", "product_group": "eggs"},
        {"as_of": "2017-12-01", "product_group": "beef"},  # owned by this write, but no rows now
    ]
    assert lake.write_pandas("scores", new, PARTS, specs=specs) == 1
    assert not lake.exists("scores", {"as_of": "2017-12-01", "product_group": "beef"})
    back = lake.read_pandas("scores")
    assert set(zip(back["as_of"], back["product_group"])) == {
        ("2017-11-01", "eggs"),
        ("2017-11-01", "beef"),
        ("2017-12-01", "eggs"),
    }
    assert back.loc[back["as_of"] == "2017-12-01", "household_id"].tolist() == [7]
    # A spec for a partition that never existed, with no rows, is a no-op.
    assert lake.write_pandas("scores", new.iloc[:0], PARTS, specs=[{"as_of": "2018-01-01", "product_group": "eggs"}]) == 0
    assert lake.partitions("scores", "as_of") == ["2017-11-01", "2017-12-01"]


def test_an_unconvertible_frame_leaves_the_previous_version(lake, lake_root):
    df = initial(lake)
    before = files_under(Path(lake_root, "scores"))
    bad = features("2017-12-01", "eggs", [1, 2], 0.0)
    bad["score"] = pd.Series([0.5, "not a number"], dtype=object)  # pyarrow cannot convert it
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        lake.write_pandas("scores", bad, PARTS)
    assert files_under(Path(lake_root, "scores")) == before
    pd.testing.assert_frame_equal(canonical(lake.read_pandas("scores")), canonical(df))
    assert staging_leftovers(Path(lake_root)) == []


def test_a_write_failing_midway_leaves_the_previous_version(lake, lake_root):
    """The first partition is staged, the second one raises: nothing is swapped in."""
    df = initial(lake)
    before = files_under(Path(lake_root, "scores"))
    new = features("2017-12-01", "eggs", [1, 2, 3], 0.9)
    specs = [{"as_of": "2017-12-01", "product_group": "eggs"}, {"as_of": "2017-12-01", "no_such_column": "x"}]
    with pytest.raises(KeyError):
        lake.write_pandas("scores", new, PARTS, specs=specs)
    assert files_under(Path(lake_root, "scores")) == before
    pd.testing.assert_frame_equal(canonical(lake.read_pandas("scores")), canonical(df))
    assert staging_leftovers(Path(lake_root)) == []


def test_a_killed_write_is_invisible_to_readers(lake, lake_root):
    """Staged but never committed (the process died): readers see the previous version."""
    df = initial(lake)
    staging = lake.staging_uri()
    part = Path(staging, partition_dir({"as_of": "2017-12-01", "product_group": "eggs"}))
    part.mkdir(parents=True)
    pq.write_table(pa.table({"household_id": [99], "score": [1.0]}), part / "part-00000.parquet")

    table = str(Path(lake_root, "scores"))
    assert staging.startswith(lake_root) and not staging.startswith(table)
    pd.testing.assert_frame_equal(canonical(lake.read_pandas("scores")), canonical(df))
    assert 99 not in pd.read_parquet(table)["household_id"].tolist()
    assert 99 not in duckdb.sql(f"select household_id from read_parquet('{table}/**/*.parquet')").df()[
        "household_id"
    ].tolist()

    # Committing it later swaps in exactly that partition; discard would have dropped it.
    assert lake.commit("scores", staging, [{"as_of": "2017-12-01", "product_group": "eggs"}]) == 1
    back = lake.read_pandas("scores")
    assert back.loc[(back["as_of"] == "2017-12-01") & (back["product_group"] == "eggs"), "household_id"].tolist() == [99]
    assert len(back) == len(df) - 2 + 1
    assert staging_leftovers(Path(lake_root)) == []

    other = lake.staging_uri()
    Path(other, "data").mkdir(parents=True)
    lake.discard(other)
    assert not Path(other).exists()
    lake.discard(other)  # idempotent


def test_hive_table_is_readable_by_pandas_pyarrow_and_duckdb(lake, lake_root):
    df = initial(lake)
    table = str(Path(lake_root, "scores"))
    expected = canonical(df)

    via_pandas = pd.read_parquet(table)
    pd.testing.assert_frame_equal(canonical(via_pandas), expected)

    via_arrow = ds.dataset(table, format="parquet", partitioning="hive").to_table().to_pandas()
    pd.testing.assert_frame_equal(canonical(via_arrow), expected)

    via_duckdb = duckdb.sql(
        f"select as_of::varchar as as_of, product_group, household_id, score "
        f"from read_parquet('{table}/*/*/*.parquet', hive_partitioning = true)"
    ).df()
    pd.testing.assert_frame_equal(canonical(via_duckdb), expected)
    counts = duckdb.sql(
        f"select product_group, count(*) n from read_parquet('{table}/**/*.parquet', hive_partitioning = true) "
        "group by 1 order by 1"
    ).fetchall()
    assert counts == [("beef", 4), ("eggs", 4)]


def test_read_pandas_returns_partition_values_as_strings(lake):
    """Group keys may be all digits ([a-z0-9_]+): they must still come back as strings."""
    df = pd.concat([features("2017-12-01", "2024", [1], 0.1), features("2017-12-01", "7", [2], 0.2)])
    lake.write_pandas("scores", df, PARTS)
    back = lake.read_pandas("scores")
    assert sorted(back["product_group"]) == ["2024", "7"]
    assert back["as_of"].tolist() == ["2017-12-01", "2017-12-01"]
    filtered = lake.read_pandas("scores", filters=ds.field("product_group") == "2024")
    assert filtered["household_id"].tolist() == [1]


# -- where the lake may live ------------------------------------------------------------------

POSIX_ONLY = (
    "The lake must be a local or mounted POSIX filesystem path (e.g. /srv/lake or file:///srv/lake) that the "
    "driver and every Spark executor see at the same path: its crash-safe commit locks a table with flock and "
    "swaps partition directories by rename, which object stores (s3://, s3a://, gs://, abfss://) cannot do "
    "atomically and which the lake implements for POSIX filesystems only (not hdfs://)."
)
UNSUPPORTED = [
    ("s3a://bucket/lake", "s3a"),
    ("s3://bucket/lake", "s3"),
    ("gs://bucket/lake", "gs"),
    ("abfss://lake@account.dfs.core.windows.net/lake", "abfss"),
    ("hdfs://namenode:8020/lake", "hdfs"),
]


@pytest.mark.parametrize(("uri", "scheme"), UNSUPPORTED)
def test_an_object_store_or_hdfs_lake_is_refused_naming_the_variable(monkeypatch, uri, scheme):
    from propensity_assets.shared import settings

    monkeypatch.setenv("PROPENSITY_LAKE_URI", uri)
    with pytest.raises(settings.LakeLocationError) as caught:
        settings.lake_uri()
    assert str(caught.value) == f"PROPENSITY_LAKE_URI={uri!r}: scheme {scheme}:// is not supported. " + POSIX_ONLY
    assert isinstance(caught.value, settings.SettingsError)  # the CLI prints it as `error: ...`, exit 2
    with pytest.raises(settings.LakeLocationError) as caught:
        Lake(uri)  # models loading features, scripts: the same refusal
    assert str(caught.value) == f"lake root={uri!r}: scheme {scheme}:// is not supported. " + POSIX_ONLY


def test_a_file_uri_on_another_host_is_refused(monkeypatch):
    from propensity_assets.shared import settings

    monkeypatch.setenv("PROPENSITY_LAKE_URI", "file://fileserver/lake")
    with pytest.raises(settings.LakeLocationError) as caught:
        settings.lake_uri()
    assert str(caught.value) == (
        "PROPENSITY_LAKE_URI='file://fileserver/lake': a file: URI must name a path on this machine, not on host "
        "'fileserver'. " + POSIX_ONLY
    )


def test_paths_and_file_uris_are_one_absolute_path(monkeypatch, tmp_path):
    from propensity_assets.shared import settings

    monkeypatch.chdir(tmp_path)
    for uri in ("lake", "./lake/", str(tmp_path / "lake"), (tmp_path / "lake").as_uri(), f"file:{tmp_path}/lake",
                f"file://localhost{tmp_path}/lake"):
        monkeypatch.setenv("PROPENSITY_LAKE_URI", uri)
        # Absolute: Spark executors run in their own working directories.
        assert settings.lake_uri() == str(tmp_path / "lake"), uri
    monkeypatch.delenv("PROPENSITY_LAKE_URI")
    monkeypatch.setenv("PROPENSITY_DATA_DIR", str(tmp_path / "data"))
    assert settings.lake_uri() == str(tmp_path / "data" / "lake")

    lake = Lake((tmp_path / "lake").as_uri())
    assert lake.root == str(tmp_path / "lake")
    lake.write_pandas("scores", features("2017-12-01", "eggs", [1, 2], 0.5), PARTS)
    assert (tmp_path / "lake" / "scores" / "as_of=2017-12-01" / "product_group=eggs").is_dir()
    assert Lake("lake").read_pandas("scores")["household_id"].tolist() == [1, 2]


def test_a_lake_resource_on_an_object_store_fails_the_run_before_any_step(tmp_path):
    import dagster as dg

    from propensity_assets.shared.resources import LakeResource

    ran = []

    @dg.asset
    def writes_to_the_lake(lake: LakeResource) -> None:
        ran.append(lake.uri)

    with dg.instance_for_test() as instance:
        result = dg.materialize([writes_to_the_lake], instance=instance, raise_on_error=False,
                                resources={"lake": LakeResource(uri="s3a://bucket/lake")})
    assert not result.success and ran == []
    events = [e.event_type for e in result.all_events]
    assert dg.DagsterEventType.STEP_START not in events
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE]
    error = failure.event_specific_data.error
    assert error.cls_name == "LakeLocationError"
    assert error.message.strip() == (
        "propensity_assets.shared.settings.LakeLocationError: the lake resource's uri='s3a://bucket/lake': scheme s3a:// "
        "is not supported. " + POSIX_ONLY
    )


def test_sorted_batches_stage_one_file_per_partition_run(tmp_path):
    """The Spark write path's task body: runs of equal keys, spread over batches, become
    one file per partition, without the key columns, named by the task and the staging."""
    from datetime import date

    from propensity_assets.shared.lake_staging import stage_sorted_batches

    staging = tmp_path / "_staging" / "0001-abc"
    d1, d2 = date(2017, 12, 1), date(2017, 12, 2)
    first = pa.record_batch({"as_of": [d1, d1, d1], "product_group": ["eggs", "eggs", "milk"], "x": [1.0, 2.0, 3.0]})
    second = pa.record_batch({"as_of": [d1, d2], "product_group": ["milk", "eggs"], "x": [4.0, 5.0]})
    empty = first.slice(0, 0)
    out = pa.Table.from_batches(list(stage_sorted_batches([first, empty, second], str(staging), ["as_of", "product_group"], 7)))
    assert out.to_pydict() == {
        "partition": ["2017-12-01/eggs", "2017-12-01/milk", "2017-12-02/eggs"],
        "rows": [2, 2, 1],
    }
    files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*.parquet"))
    assert files == [
        "as_of=2017-12-01/product_group=eggs/part-00007-0001-abc.parquet",
        "as_of=2017-12-01/product_group=milk/part-00007-0001-abc.parquet",
        "as_of=2017-12-02/product_group=eggs/part-00007-0001-abc.parquet",
    ]
    milk = pq.read_table(staging / "as_of=2017-12-01" / "product_group=milk")
    assert milk.to_pydict() == {"x": [3.0, 4.0]}
    assert list(stage_sorted_batches([empty], str(staging), ["as_of", "product_group"], 0)) == []


def test_staging_refuses_a_null_or_path_like_partition_value(tmp_path):
    from propensity_assets.shared.lake_staging import stage_sorted_batches

    null = pa.record_batch({"product_group": pa.array([None], pa.string()), "x": [1.0]})
    with pytest.raises(ValueError, match=r"^lake partition column 'product_group': null values cannot name a partition$"):
        list(stage_sorted_batches([null], str(tmp_path), ["product_group"], 0))
    escape = pa.record_batch({"product_group": ["../x"], "x": [1.0]})
    with pytest.raises(ValueError, match=r"^lake partition product_group='\.\./x': expected letters"):
        list(stage_sorted_batches([escape], str(tmp_path), ["product_group"], 0))
    assert list(tmp_path.iterdir()) == []
