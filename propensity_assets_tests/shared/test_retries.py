"""Retries only for what can succeed on retry: the classification on real errors of real
reads (pyarrow, Spark), a real full disk and real socket errors; and a Spark asset whose
input file is truncated failing once, at once, on a real Dagster instance."""

import errno
import socket
import struct
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from propensity_assets.features import lookup
from propensity_assets.shared import retries
from propensity_assets.shared.lake import Lake
from propensity_assets.shared.resources import LakeResource
from propensity_assets_tests.test_definitions import write_tiny_lake


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def lake_with_bad_partitions(root: Path) -> Lake:
    """group_features with a truncated file in as_of=2017-03-01/product_group=milk and a stray
    notes.txt beside a good file in as_of=2017-03-01/product_group=beef."""
    lake = Lake(str(root))
    frame = pd.DataFrame({"as_of": "2017-03-01", "product_group": ["milk"] * 3 + ["beef"] * 3, "household_id": range(6),
                          "grp_spend_30d": 1.0})
    lake.write_pandas("group_features", frame, ["as_of", "product_group"])
    [milk] = (root / "group_features/as_of=2017-03-01/product_group=milk").glob("*.parquet")
    truncate(milk)
    (root / "group_features/as_of=2017-03-01/product_group=beef/notes.txt").write_text("re-ran on Monday\n")
    return lake


def raised(read) -> BaseException:
    try:
        read()
    except BaseException as exc:  # noqa: BLE001 - the error itself is what is tested
        return exc
    raise AssertionError("the read did not fail")


def test_pyarrow_reads_of_a_truncated_file_and_a_stray_file_are_permanent(tmp_path):
    lake_with_bad_partitions(tmp_path)
    milk = tmp_path / "group_features/as_of=2017-03-01/product_group=milk"
    truncated = raised(lambda: pq.read_table(next(milk.glob("*.parquet"))))
    stray = raised(lambda: ds.dataset(tmp_path / "group_features", format="parquet").to_table())
    assert type(truncated).__name__ == "ArrowInvalid" and "Parquet magic bytes not found" in str(truncated)
    assert type(stray).__name__ == "ArrowInvalid"
    assert retries.classify(truncated) == retries.classify(stray) == retries.PERMANENT


def test_spark_reads_of_a_truncated_file_and_a_stray_file_are_permanent(tmp_path, spark):
    lake_with_bad_partitions(tmp_path)
    base = tmp_path / "group_features/as_of=2017-03-01"
    truncated = raised(lambda: spark.read.parquet(str(base / "product_group=milk")).count())
    stray = raised(lambda: spark.read.parquet(str(base / "product_group=beef")).collect())
    for exc, name in [(truncated, "product_group=milk/part-"), (stray, "product_group=beef/notes.txt")]:
        assert "FAILED_READ_FILE" in str(exc) and name in str(exc)
        assert retries.classify(exc) == retries.PERMANENT
        message = retries.short_message(exc)
        assert "\tat " not in message and "\n" not in message and name in message


def test_a_full_disk_is_permanent():
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full to fill")
    def write():
        with open("/dev/full", "wb") as handle:
            handle.write(b"scores")
    full = raised(write)
    assert isinstance(full, OSError) and full.errno == errno.ENOSPC
    assert retries.classify(full) == retries.PERMANENT


def test_reset_and_refused_connections_are_transient():
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a RST
    accepted.close()
    time.sleep(0.1)
    reset = raised(lambda: client.recv(1))
    client.close()
    port = server.getsockname()[1]
    server.close()
    refused = raised(lambda: socket.create_connection(("127.0.0.1", port), timeout=2))
    assert isinstance(reset, ConnectionResetError) and isinstance(refused, ConnectionRefusedError)
    assert retries.classify(reset) == retries.classify(refused) == retries.TRANSIENT
    # A wrapper raised while handling it is judged by its cause; an error nobody knows is retried.
    try:
        try:
            raise reset
        except ConnectionResetError as cause:
            raise RuntimeError("scoring job aborted") from cause
    except RuntimeError as wrapped:
        assert retries.classify(wrapped) == retries.TRANSIENT
    assert retries.classify(RuntimeError("scoring job aborted")) == retries.UNKNOWN
    assert retries.classify(KeyError("vetting_as_of")) == retries.PERMANENT


def test_a_group_partition_with_an_unreadable_file_is_named_for_that_group_only(tmp_path):
    lake = lake_with_bad_partitions(tmp_path)
    lake.write_pandas("household_features", pd.DataFrame({"as_of": "2017-03-01", "household_id": range(6)}), ["as_of"])
    [milk] = lake.unreadable_files("group_features", {"as_of": "2017-03-01", "product_group": "milk"})
    assert milk.startswith("part-") and "(ArrowInvalid: " in milk and "Parquet magic bytes not found" in milk
    stray = ("notes.txt (ArrowInvalid: Parquet magic bytes not found in footer. Either the file is corrupted or this "
             "is not a parquet file.)")
    assert lake.unreadable_files("group_features", {"as_of": "2017-03-01", "product_group": "beef"}) == [stray]
    assert lake.unreadable_files("household_features", {"as_of": "2017-03-01"}) == []
    with pytest.raises(lookup.FeatureLookupError) as err:
        lookup.require_features(lake, "beef", ["2017-03-01"])
    assert str(err.value) == (
        "lake table 'group_features' partition as_of=2017-03-01/product_group=beef holds 1 file(s) that are not "
        f"readable Parquet: {stray}. Remove a stray file, or re-materialize group_features for as_of 2017-03-01")


def test_a_truncated_input_fails_the_spark_step_once_and_at_once(spark_resource, lake_root):
    from propensity_assets.features.assets import household_features

    lake = write_tiny_lake(lake_root)
    [tx] = Path(lake_root, "transactions").rglob("*.parquet")
    truncate(tx)
    with dg.instance_for_test() as instance:
        started = time.monotonic()
        result = dg.materialize([household_features], instance=instance, partition_key="2017-03-05",
                                resources={"spark": spark_resource, "lake": LakeResource(uri=lake_root)},
                                raise_on_error=False)
        seconds = time.monotonic() - started
    assert not result.success and seconds < 30
    assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.user_failure_data.description
    assert message.startswith("household_features (partition 2017-03-05): ")
    assert "[FAILED_READ_FILE" in message and str(tx) in message
    assert message.endswith("(a permanent error: not retried, a retry would fail the same way)")
    assert not lake.exists("household_features")
