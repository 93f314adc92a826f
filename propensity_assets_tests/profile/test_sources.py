"""The profile's sources: what the stages declare, and the columns read from a declared study source."""

import dagster as dg
import pandas as pd
import pytest

from propensity_assets.profile.assets import profile_asset
from propensity_assets.profile.sources import ProfileSource, sources_from, study_columns
from propensity_assets.shared.lake import Lake


def test_sources_come_from_the_stages_declarations():
    from propensity_assets.definitions import defs

    assert sources_from(defs.assets) == [
        ProfileSource("propensity_scores", "propensity_scores", "propensity", "score"),
        ProfileSource("ltv_scores", "ltv_scores", "ltv", "ltv"),
        ProfileSource("retail_recommendations", "incentive_recommendations", "incentive", "recommended",
                      deciles=False, study_prefix="retail_", verdict_table="incentive_summary"),
    ]


def _declaring(name: str, tags: dict) -> dg.AssetsDefinition:
    @dg.asset(name=name, tags=tags)
    def declared():
        """A stage's asset that declares a profile source."""

    return declared


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
def test_a_declared_study_source_is_picked_up_and_read(tmp_path):
    """Any asset that declares a study source (here `offer` over `promo_<group>`) gives the
    profile its columns; the profile knows no stage by name."""
    asset = _declaring("offers", {"profile/prefix": "offer", "profile/table": "offer_table",
                                  "profile/value_column": "best", "profile/deciles": "false",
                                  "profile/study_prefix": "promo_", "profile/verdict_table": "offer_verdicts"})
    (source,) = sources_from([asset])
    assert source == ProfileSource("offers", "offer_table", "offer", "best", False, "promo_", "offer_verdicts")
    # A study source is read as it stands: not a dependency of the as_of-partitioned profile.
    assert dg.AssetKey("offers") not in profile_asset([source]).asset_deps[dg.AssetKey("customer_profile")]

    lake = Lake(str(tmp_path / "lake"))
    for study, verdicts in (("promo_a", ["identified", "not identified"]), ("promo_b", ["not identified"])):
        lake.write_pandas("offer_verdicts", pd.DataFrame({"verdict": verdicts, "study": study}), ["study"])
    lake.write_pandas("offer_table", pd.DataFrame({"unit_id": [1, 2], "best": ["x", "none"], "study": "promo_a"}), ["study"])
    households = pd.Series([2, 1, 3])
    columns = study_columns(lake, source, ["a", "b", "c"], households)
    assert list(columns) == ["offer__a", "offer__b"]  # c's study has not run: no column
    assert columns["offer__a"][:2].tolist() == ["none", "x"] and pd.isna(columns["offer__a"][2])  # 3 was not studied
    assert columns["offer__b"].tolist() == ["not identified"] * 3
