"""A live deployment (PROPENSITY_AS_OF_END=live) computes and scores today's as_of on the
morning of that day. The partitions are built when the definitions load, so each check runs
in a fresh interpreter with the variable set, on Dagster's frozen clock (`freeze_time`):
the partitions, the schedules' run requests, and a real materialization of today's
household features on a tiny lake whose transactions end yesterday."""

import json
import os
import subprocess
import sys
import textwrap

from propensity_assets_tests.conftest import REPO

PROBE = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime, timezone
    import dagster as dg
    from dagster._core.test_utils import freeze_time
    from dagster_pyspark import PySparkResource
    from propensity_assets import definitions
    from propensity_assets.features.assets import household_features
    from propensity_assets.shared.partitions import as_of_partitions, cutoff_partitions
    from propensity_assets.shared.resources import LakeResource
    from propensity_assets.features.automation import daily_features_schedule
    from propensity_assets.lifecycle.automation import weekly_training_schedule

    lake_root, materialize_at = sys.argv[1], sys.argv[2]
    out = {}
    for now in ["2026-11-22T23:59:00", "2026-11-23T00:00:00", "2026-11-23T05:00:00", "2026-11-27T06:00:00"]:
        when = datetime.fromisoformat(now).replace(tzinfo=timezone.utc)
        with freeze_time(when), dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("product_group", ["snacks"])
            features = daily_features_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
            training = weekly_training_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
            out[now] = {
                "last_as_of": as_of_partitions.get_last_partition_key(),
                "last_cutoff": cutoff_partitions.get_last_partition_key(),
                "features_run": features.partition_key,
                "training_cutoff": training.tags["dagster/asset_partition_range_start"].split("|")[0],
            }
    when = datetime.fromisoformat(materialize_at).replace(tzinfo=timezone.utc)
    with freeze_time(when), dg.instance_for_test() as instance:
        resources = {"spark": PySparkResource(spark_config={"spark.master": "local[1]", "spark.ui.enabled": "false"}),
                     "lake": LakeResource(uri=lake_root)}
        result = dg.materialize([household_features], partition_key="2026-11-23", instance=instance, resources=resources)
        [mat] = result.asset_materializations_for_node("household_features")
        out["materialized"] = {"partition": mat.partition, "rows": mat.metadata["rows"].value}
    print("RESULT " + json.dumps(out))
    """
)


def test_today_is_a_partition_on_the_morning_of_that_day(tmp_path):
    from propensity_assets.shared.lake import Lake
    from propensity_assets_tests.conftest import tx_frame

    lake = Lake(str(tmp_path / "lake"))
    # Two households; the data ends yesterday (2026-11-22), as a nightly ingest leaves it.
    lake.write_pandas("transactions", tx_frame([
        (1, 11, 1, 1, 2.0, "2026-11-20 10:00:00"), (2, 21, 1, 2, 3.0, "2026-11-22 18:30:00"),
    ]))
    env = {**os.environ, "PROPENSITY_AS_OF_END": "live", "PROPENSITY_AS_OF_START": "2026-01-01",
           "PROPENSITY_TRAINING_START": "2026-01-02"}
    env.pop("PROPENSITY_TODAY", None)
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "lake"), "2026-11-23T05:00:00"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [line] = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    out = json.loads(line.removeprefix("RESULT "))
    assert out == {
        # A minute before midnight, today is still the 22nd; the 23rd exists from 00:00 UTC.
        "2026-11-22T23:59:00": {"last_as_of": "2026-11-22", "last_cutoff": "2026-11-20",
                                "features_run": "2026-11-22", "training_cutoff": "2026-11-20"},
        "2026-11-23T00:00:00": {"last_as_of": "2026-11-23", "last_cutoff": "2026-11-20",
                                "features_run": "2026-11-23", "training_cutoff": "2026-11-20"},
        "2026-11-23T05:00:00": {"last_as_of": "2026-11-23", "last_cutoff": "2026-11-20",
                                "features_run": "2026-11-23", "training_cutoff": "2026-11-20"},
        # Friday morning: that Friday's cutoff is trained the same morning.
        "2026-11-27T06:00:00": {"last_as_of": "2026-11-27", "last_cutoff": "2026-11-27",
                                "features_run": "2026-11-27", "training_cutoff": "2026-11-27"},
        # Today's features on the morning of today, from data that ends yesterday.
        "materialized": {"partition": "2026-11-23", "rows": 2},
    }
