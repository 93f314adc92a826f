"""The product-group sync sensor and `sync_product_groups` (the CLI's sync), against a
real (test) Dagster instance.

A sensor invoked directly returns its SensorResult without applying it: in the daemon,
the dynamic-partition requests are applied after the tick. `apply` does that here, after
the test has asserted what was requested.
"""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from propensity_assets.groups.assets import product_group_sync_sensor, sync_product_groups
from propensity_assets.shared import tables
from propensity_assets.groups.catalog import CatalogError
from propensity_assets.groups.resources import ProductGroupsResource
from propensity_assets.shared.settings import PROJECT_ROOT

PARTITIONS = "product_group"

THREE = """\
product_groups:
  soft_drinks:
    description: Soft drinks
    categories: [SOFT DRINKS]
  cheese:
    categories: [CHEESE]
  eggs:
    categories: [EGGS]
"""

WITH_BEEF = THREE + "  beef:\n    categories: [BEEF]\n"

WITHOUT_CHEESE = """\
product_groups:
  soft_drinks:
    description: Soft drinks
    categories: [SOFT DRINKS]
  eggs:
    categories: [EGGS]
  beef:
    categories: [BEEF]
"""


@pytest.fixture
def instance(module_instance):
    """The module's instance, with no product_group partitions at the start of each test."""
    for key in module_instance.get_dynamic_partitions(PARTITIONS):
        module_instance.delete_dynamic_partition(PARTITIONS, key)
    return module_instance


def tick(instance, path: Path, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"product_groups": ProductGroupsResource(path=str(path))}
    )
    return product_group_sync_sensor(context)


def requested(result: dg.SensorResult) -> tuple[list[str], list[str]]:
    """(keys to add, keys to delete) from a SensorResult's dynamic-partition requests."""
    added, deleted = [], []
    for request in result.dynamic_partitions_requests or []:
        assert request.partitions_def_name == PARTITIONS
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            added += request.partition_keys
        else:
            assert isinstance(request, dg.DeleteDynamicPartitionsRequest)
            deleted += request.partition_keys
    return added, deleted


def apply(instance, result: dg.SensorResult) -> None:
    """What the sensor daemon does with the tick's dynamic-partition requests."""
    added, deleted = requested(result)
    if added:
        instance.add_dynamic_partitions(PARTITIONS, added)
    for key in deleted:
        instance.delete_dynamic_partition(PARTITIONS, key)


def members_runs(result: dg.SensorResult) -> list[dg.RunRequest]:
    for run in result.run_requests or []:
        assert run.asset_selection == [dg.AssetKey(tables.PRODUCT_GROUP_MEMBERS)]
    return list(result.run_requests or [])


def test_sensor_keeps_partitions_in_sync_with_the_catalogue(instance, tmp_path):
    path = tmp_path / "product_groups.yaml"
    path.write_text(THREE)

    # First tick: every group is new; the catalogue's products are resolved.
    first = tick(instance, path, cursor=None)
    assert isinstance(first, dg.SensorResult)
    assert requested(first) == (["soft_drinks", "cheese", "eggs"], [])
    assert len(members_runs(first)) == 1
    assert first.cursor
    apply(instance, first)
    assert instance.get_dynamic_partitions(PARTITIONS) == ["soft_drinks", "cheese", "eggs"]

    # Unchanged file on the next tick: nothing to do, no run.
    second = tick(instance, path, cursor=first.cursor)
    assert isinstance(second, dg.SkipReason)
    assert "3 product groups, already in sync" in second.skip_message

    # A new group appears.
    path.write_text(WITH_BEEF)
    third = tick(instance, path, cursor=first.cursor)
    assert requested(third) == (["beef"], [])
    assert len(members_runs(third)) == 1 and third.cursor != first.cursor
    apply(instance, third)
    assert instance.get_dynamic_partitions(PARTITIONS) == ["soft_drinks", "cheese", "eggs", "beef"]

    # A removed group is deleted from the partitions.
    path.write_text(WITHOUT_CHEESE)
    fourth = tick(instance, path, cursor=third.cursor)
    assert requested(fourth) == ([], ["cheese"])
    assert len(members_runs(fourth)) == 1
    apply(instance, fourth)
    assert sorted(instance.get_dynamic_partitions(PARTITIONS)) == ["beef", "eggs", "soft_drinks"]
    assert isinstance(tick(instance, path, cursor=fourth.cursor), dg.SkipReason)


def test_a_reverted_catalogue_is_resolved_again(instance, tmp_path):
    """A → B → A: the members must be re-resolved for A, so the run must not be deduped."""
    path = tmp_path / "product_groups.yaml"
    path.write_text(THREE)
    first = tick(instance, path, None)
    apply(instance, first)
    path.write_text(WITH_BEEF)
    second = tick(instance, path, first.cursor)
    apply(instance, second)
    path.write_text(THREE)
    third = tick(instance, path, second.cursor)
    assert requested(third) == ([], ["beef"])
    assert third.cursor == first.cursor
    [run_first], [run_third] = members_runs(first), members_runs(third)
    # The daemon skips a run whose run_key it has already seen.
    assert run_third.run_key is None or run_third.run_key != run_first.run_key


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (THREE + "  Bad-Key:\n    categories: [BEEF]\n", "'Bad-Key'"),
        (THREE + "  beef:\n    categories: [BEEF\n", "YAML syntax error"),
        (THREE + "  cheese:\n    categories: [CHEESE]\n", "duplicate key 'cheese'"),
        (THREE + "  beef:\n    description: no selector\n", "'beef': the group is empty"),
    ],
    ids=["bad-key", "yaml-syntax", "duplicate", "empty-group"],
)
def test_an_invalid_catalogue_skips_and_leaves_partitions_unchanged(instance, tmp_path, text, fragment):
    path = tmp_path / "product_groups.yaml"
    path.write_text(THREE)
    first = tick(instance, path, None)
    apply(instance, first)

    path.write_text(text)
    result = tick(instance, path, cursor=first.cursor)
    assert isinstance(result, dg.SkipReason)
    assert "Invalid product-group catalogue" in result.skip_message
    assert str(path) in result.skip_message and fragment in result.skip_message
    assert instance.get_dynamic_partitions(PARTITIONS) == ["soft_drinks", "cheese", "eggs"]

    # Fixed again: the cursor was not advanced, so only real changes cause work.
    path.write_text(WITH_BEEF)
    fixed = tick(instance, path, cursor=first.cursor)
    assert requested(fixed) == (["beef"], [])


def test_a_missing_catalogue_file_skips(instance, tmp_path):
    result = tick(instance, tmp_path / "nowhere.yaml", cursor=None)
    assert isinstance(result, dg.SkipReason)
    assert "nowhere.yaml" in result.skip_message
    assert instance.get_dynamic_partitions(PARTITIONS) == []


def test_partitions_changed_outside_the_sensor_are_repaired(instance, tmp_path):
    path = tmp_path / "product_groups.yaml"
    path.write_text(THREE)
    first = tick(instance, path, None)
    apply(instance, first)
    instance.delete_dynamic_partition(PARTITIONS, "eggs")
    instance.add_dynamic_partitions(PARTITIONS, ["stray"])
    again = tick(instance, path, cursor=first.cursor)
    assert requested(again) == (["eggs"], ["stray"])
    assert members_runs(again) == []  # the file did not change: no re-resolution


def test_sensor_tick_evaluation_accepts_its_run_request(instance, tmp_path):
    """Through `evaluate_tick`, as the daemon does: a RunRequest from a sensor without a
    target fails the whole tick there (partition requests included)."""
    path = tmp_path / "product_groups.yaml"
    path.write_text(THREE)
    context = dg.build_sensor_context(
        instance=instance, resources={"product_groups": ProductGroupsResource(path=str(path))}
    )
    data = product_group_sync_sensor.evaluate_tick(context)
    assert [r.partition_keys for r in data.dynamic_partitions_requests] == [["soft_drinks", "cheese", "eggs"]]
    assert [r.asset_selection for r in data.run_requests] == [[dg.AssetKey(tables.PRODUCT_GROUP_MEMBERS)]]
    assert data.cursor


def test_sync_product_groups(instance, tmp_path):
    path = tmp_path / "product_groups.yaml"
    path.write_text(THREE)
    assert sync_product_groups(instance, str(path)) == (["soft_drinks", "cheese", "eggs"], [])
    assert instance.get_dynamic_partitions(PARTITIONS) == ["soft_drinks", "cheese", "eggs"]
    assert sync_product_groups(instance, str(path)) == ([], [])

    path.write_text(WITHOUT_CHEESE)
    # A group gone from the file is removed only when asked: a truncated file changes nothing.
    with pytest.raises(CatalogError) as info:
        sync_product_groups(instance, str(path))
    assert str(info.value) == (
        f"{path}: product_group partition(s) cheese are not in the catalogue; nothing was changed. Add them "
        "back, or run `propensity-assets sync-groups --prune` to remove them (their run history and lake "
        "partitions stay)"
    )
    assert instance.get_dynamic_partitions(PARTITIONS) == ["soft_drinks", "cheese", "eggs"]
    assert sync_product_groups(instance, str(path), prune=True) == (["beef"], ["cheese"])
    assert sorted(instance.get_dynamic_partitions(PARTITIONS)) == ["beef", "eggs", "soft_drinks"]

    path.write_text(THREE + "  Bad-Key:\n    categories: [BEEF]\n")
    with pytest.raises(CatalogError, match="'Bad-Key'"):
        sync_product_groups(instance, str(path))
    assert sorted(instance.get_dynamic_partitions(PARTITIONS)) == ["beef", "eggs", "soft_drinks"]

    # With the lake's products, an unknown category is refused before anything changes.
    products = pd.DataFrame({"product_id": [1, 2], "product_category": ["SOFT DRINKS", "EGGS"]})
    path.write_text(THREE)
    with pytest.raises(CatalogError) as info:
        sync_product_groups(instance, str(path), products, prune=True)
    assert str(info.value).startswith(f"{path}: product group 'cheese': unknown category 'CHEESE'")
    assert sorted(instance.get_dynamic_partitions(PARTITIONS)) == ["beef", "eggs", "soft_drinks"]


def test_sync_the_shipped_catalogue(instance):
    added, removed = sync_product_groups(instance, str(PROJECT_ROOT / "data" / "product_groups.yaml"))
    assert len(added) == 12 and removed == []
    assert instance.get_dynamic_partitions(PARTITIONS)[0] == "soft_drinks"
    assert instance.get_dynamic_partitions(PARTITIONS)[-1] == "all_products"
