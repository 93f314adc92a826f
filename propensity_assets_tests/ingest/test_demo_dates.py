"""The demo's dates from the ingested data: exactly the Makefile's on the embedded span, and
derived for a transactions-only dataset of 1997-1998 after a real ingest (no Spark needed)."""

import re
from datetime import date

import dagster as dg
import pytest

from propensity_assets import cli
from propensity_assets.groups.resources import ProductGroupsResource
from propensity_assets.ingest.demo_dates import DemoDatesError, demo_dates
from propensity_assets.ingest.resources import SourceResource
from propensity_assets.ingest.sources import SCHEMA
from propensity_assets.shared import settings
from propensity_assets.shared.resources import LakeResource
from propensity_assets_tests import own_data
from propensity_assets_tests.in_process import assets

MAKEFILE = settings.PROJECT_ROOT / "Makefile"


def makefile_defaults() -> dict[str, str]:
    text = MAKEFILE.read_text()
    return dict(re.findall(r"^(HISTORY_FROM|AS_OF|LTV_HOLDOUT|LTV_CUTOFF|DECAY_CUTOFF)\s*\?=\s*(\S+)$", text, re.M))


def test_the_embedded_span_gives_the_makefiles_dates_and_the_partitions_defaults(monkeypatch):
    for name in ("PROPENSITY_AS_OF_START", "PROPENSITY_AS_OF_END", "PROPENSITY_TRAINING_START"):
        monkeypatch.delenv(name, raising=False)
    dates = demo_dates(date(2017, 1, 1), date(2018, 1, 1), 90)  # the embedded transactions' first and last day
    fixed = makefile_defaults()
    assert fixed == {"HISTORY_FROM": "2017-01-01", "AS_OF": "2017-12-01", "LTV_HOLDOUT": "2017-10-01",
                     "LTV_CUTOFF": "2017-09-29", "DECAY_CUTOFF": "2017-09-01"}
    assert dates == {**fixed, "PROPENSITY_TODAY": "2017-12-01", "PROPENSITY_AS_OF_START": settings.as_of_start(),
                     "PROPENSITY_AS_OF_END": settings.as_of_end(), "PROPENSITY_TRAINING_START": settings.training_start()}


def test_a_span_too_short_for_the_holdouts_is_refused_naming_it():
    with pytest.raises(DemoDatesError) as caught:
        demo_dates(date(2017, 1, 1), date(2017, 6, 30), 90)
    assert str(caught.value) == (
        "the ingested transactions span 2017-01-01 .. 2017-06-30 (181 days): too short for the demo's holdouts "
        "with an LTV horizon of 90 days (PROPENSITY_LTV_HORIZON_DAYS); the LTV cutoff 2017-03-31 would need "
        "training snapshots before 2016-12-31, after the first training cutoff 2017-04-07. Expected about 308 "
        "days of transactions or more.")


def test_transactions_of_1997_are_ingested_and_give_the_demo_its_dates(tmp_path, monkeypatch, capsys):
    """The issue's user: transactions only, 1997-01-01 .. 1998-06-30. Every row passes the
    default timestamp bounds, and `demo-dates` derives 1998's holdouts from the lake."""
    own_data.write(tmp_path / "source", households=30, seed=1)
    rows = len(own_data.generate(30, seed=1))
    groups = tmp_path / "groups.yaml"
    groups.write_text((settings.PROJECT_ROOT / "data" / "product_groups_all_products.yaml").read_text())
    resources = {"lake": LakeResource(uri=str(tmp_path / "lake")),
                 "source": SourceResource(directory=str(tmp_path / "source")),
                 "product_groups": ProductGroupsResource(path=str(groups))}
    with dg.instance_for_test() as instance:
        result = dg.materialize(assets(*SCHEMA), instance=instance, resources=resources)
    meta = result.asset_materializations_for_node("transactions")[0].metadata
    assert (meta["rows"].value, meta["quarantined"].value) == (rows, 0)
    assert meta["first_timestamp"].value.startswith("1997-01-01 ")
    assert meta["last_timestamp"].value.startswith("1998-06-30 ")

    monkeypatch.setenv("PROPENSITY_LAKE_URI", str(tmp_path / "lake"))
    monkeypatch.delenv("PROPENSITY_LTV_HORIZON_DAYS", raising=False)
    capsys.readouterr()  # the ingest run's log
    assert cli.main(["demo-dates"]) == 0
    out, err = capsys.readouterr()
    assert out == ("HISTORY_FROM=1997-01-01 AS_OF=1998-05-29 LTV_HOLDOUT=1998-04-01 LTV_CUTOFF=1998-03-27 "
                   "DECAY_CUTOFF=1998-02-27 PROPENSITY_TODAY=1998-05-29 PROPENSITY_AS_OF_START=1997-01-01 "
                   "PROPENSITY_AS_OF_END=1998-07-01 PROPENSITY_TRAINING_START=1997-04-04\n")
    assert err.startswith("demo dates from the transactions of 1997-01-01 .. 1998-06-30: HISTORY_FROM 1997-01-01, ")
    assert date.fromisoformat("1998-03-27").weekday() == date.fromisoformat("1998-05-29").weekday() == 4  # Fridays


def test_demo_dates_without_ingested_transactions_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROPENSITY_LAKE_URI", str(tmp_path / "lake"))
    assert cli.main(["demo-dates"]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path}/lake/transactions: no ingested transactions; run the ingest_job first\n")
