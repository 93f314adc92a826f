"""Keys from configuration never escape the lake root nor inject into MLflow search
filters; the web UIs bind to the loopback interface by default."""

import json
import re
import subprocess

import pandas as pd
import pytest

from propensity_assets.shared import registry
from propensity_assets.incentives import tracking
from propensity_assets.incentives.catalog import StudyCatalogError, parse_catalog
from propensity_assets.shared.lake import Lake
from propensity_assets_tests.conftest import REPO

TRAVERSAL = "expected letters, digits, '_', '.', ':', '+' or '-', not starting with '.' or '-' (a partition value never names a path outside its table)"


@pytest.mark.parametrize("value", ["../../escape", "..", "a/b", "/etc", ".hidden", "-rf", "x\n", ""])
def test_a_partition_value_cannot_name_a_path_outside_its_table(tmp_path, value):
    lake = Lake(str(tmp_path / "lake"))
    frame = pd.DataFrame({"product_group": [value], "x": [1]})
    with pytest.raises(ValueError) as info:
        lake.write_pandas("scores", frame, ["product_group"], specs=[{"product_group": value}])
    assert str(info.value) == f"lake partition product_group={value!r}: {TRAVERSAL}"
    with pytest.raises(ValueError, match="a partition value never names a path"):
        lake.exists("scores", {"as_of": value})
    # nothing was written anywhere, inside the lake or beside it
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and "_locks" not in p.parts) == []
    assert not (tmp_path / "escape").exists()


def test_ordinary_partition_values_are_accepted(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    frame = pd.DataFrame({"as_of": ["2017-12-01"], "product_group": ["all_products"], "x": [1]})
    assert lake.write_pandas("scores", frame, ["as_of", "product_group"]) == 1
    assert lake.exists("scores", {"as_of": "2017-12-01", "product_group": "all_products"})


@pytest.mark.parametrize("key", ["sw\n", "../sw", "sw'", "Sw"])
def test_a_study_key_must_be_a_plain_name(key):
    text = f"incentive_studies:\n  {json.dumps(key)}:\n    generate: {{n: 100}}\n"
    with pytest.raises(StudyCatalogError) as info:
        parse_catalog(text, "studies.yaml")
    assert str(info.value) == f"studies.yaml: study {key!r}: key must be lowercase letters, digits and '_' ([a-z0-9_]+)"


@pytest.mark.parametrize("key", ["eggs' or name like '%", "eggs\n", "../eggs"])
def test_keys_cannot_inject_into_mlflow_search_filters(key):
    message = f"invalid product group or study key {key!r}: expected lowercase [a-z0-9_]+"
    with pytest.raises(ValueError) as info:
        registry.name_filter(f"propensity__{key}")
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        tracking.latest_run(None, "0", key, "effects")  # refused before any search
    assert str(info.value) == message


def test_the_web_uis_bind_to_loopback_by_default():
    for target, expected in (("dev", "--host 127.0.0.1 --port 3000"), ("mlflow-ui", "--host 127.0.0.1 --port 5000")):
        commands = subprocess.run(["make", "-n", "-W", "pyproject.toml", target], cwd=REPO, capture_output=True,
                                  text=True, check=True).stdout.replace("\\\n", " ")
        # `make dev` starts `dg dev` under a local Spark Connect server, or directly under SPARK_REMOTE.
        launches = re.findall(r"(?:dg dev|mlflow ui)[^;]*", commands)
        assert len(launches) == (2 if target == "dev" else 1), commands
        for launch in launches:
            assert expected in launch, launch
