"""The audience rules on a hand-built profile, with the answers worked out by hand."""

import math

import pandas as pd
import pytest

from propensity_assets.audiences.rules import COLUMNS, AudienceError, rule_from, select_audience

# Household 6 has no beef score (not in the audience whatever the rule); 7 has no LTV.
# Households 2 and 3 tie on score: 2 ranks first (household_id ascending).
PROFILE = pd.DataFrame({
    "household_id": [1, 2, 3, 4, 5, 6, 7],
    "propensity__beef": [0.90, 0.80, 0.80, 0.50, 0.20, None, 0.05],
    "propensity_decile__beef": pd.array([1, 2, 2, 5, 8, None, 10], "Int32"),
    "ltv__beef": [10.0, 100.0, 50.0, 300.0, 20.0, 999.0, None],
    "incentive__beef": ["TypeB", "none", "TypeB", "none", "TypeB", "none", None],
    "propensity__eggs": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
})


def ids(audience: pd.DataFrame) -> list[int]:
    assert list(audience["rank"]) == list(range(1, len(audience) + 1))
    return list(audience["household_id"])


def test_top_k_by_score_ties_by_household():
    audience = select_audience(PROFILE, "beef", rule_from(top=3))
    assert list(audience.columns) == COLUMNS
    assert ids(audience) == [1, 2, 3]
    first = audience.iloc[0]
    assert (first["score"], first["score_decile"], first["ltv"], first["expected_value"], first["incentive"]) == (
        0.9, 1, 10.0, 9.0, "TypeB")
    assert set(audience["rule"]) == {"top 3 by score"}
    # More than the scored households: all six, in order.
    assert ids(select_audience(PROFILE, "beef", rule_from(top=100))) == [1, 2, 3, 4, 5, 7]


def test_top_deciles():
    assert ids(select_audience(PROFILE, "beef", rule_from(deciles=2))) == [1, 2, 3]
    assert ids(select_audience(PROFILE, "beef", rule_from(deciles=5))) == [1, 2, 3, 4]


def test_threshold_is_strictly_above():
    assert ids(select_audience(PROFILE, "beef", rule_from(threshold=0.5))) == [1, 2, 3]
    assert ids(select_audience(PROFILE, "beef", rule_from(threshold=0.8))) == [1]
    assert select_audience(PROFILE, "beef", rule_from(threshold=1.0)).empty


def test_expected_value_above_the_cost_ranks_by_expected_value():
    # score × ltv: 1 → 9, 2 → 80, 3 → 40, 4 → 150, 5 → 4, 7 → unknown (no LTV).
    audience = select_audience(PROFILE, "beef", rule_from(min_expected_value=9.0))
    assert ids(audience) == [4, 2, 3]
    assert list(audience["expected_value"]) == [150.0, 80.0, 40.0]
    assert set(audience["rule"]) == {"score × ltv > 9"}
    assert ids(select_audience(PROFILE, "beef", rule_from(min_expected_value=0))) == [4, 2, 3, 1, 5]


def test_incentive_filter_applies_before_the_rule():
    audience = select_audience(PROFILE, "beef", rule_from(top=2, incentive="TypeB"))
    assert ids(audience) == [1, 3]
    assert set(audience["rule"]) == {"top 2 by score, incentive = TypeB"}
    with pytest.raises(AudienceError, match=r"^incentive 'TypeC' is recommended to no household of 'beef' in the "
                                            r"profile; recommended there: TypeB, none$"):
        select_audience(PROFILE, "beef", rule_from(top=2, incentive="TypeC"))


def test_a_group_without_ltv_or_incentive_columns():
    audience = select_audience(PROFILE, "eggs", rule_from(top=2))
    assert ids(audience) == [7, 6]
    assert audience["ltv"].isna().all() and audience["incentive"].isna().all() and audience["score_decile"].isna().all()
    with pytest.raises(AudienceError, match=r"^P has no column ltv__eggs: the min_expected_value rule needs"):
        select_audience(PROFILE, "eggs", rule_from(min_expected_value=1), where="P")
    with pytest.raises(AudienceError, match=r"^P has no column incentive__eggs: the retail campaign study of 'eggs' has not run"):
        select_audience(PROFILE, "eggs", rule_from(top=1, incentive="none"), where="P")


def test_a_group_without_scores_names_the_groups_scored():
    with pytest.raises(AudienceError, match=r"^P has no column propensity__milk: product group 'milk' has no propensity "
                                            r"scores there \(groups scored: beef, eggs\)$"):
        select_audience(PROFILE, "milk", rule_from(top=1), where="P")


@pytest.mark.parametrize("kwargs, message", [
    ({}, "give exactly one audience rule of top, deciles, threshold, min_expected_value; got none"),
    ({"top": 5, "deciles": 2}, "give exactly one audience rule of top, deciles, threshold, min_expected_value; got 2: top=5, deciles=2"),
    ({"top": 0}, "audience rule top=0: expected a whole number of households ≥ 1"),
    ({"top": -3}, "audience rule top=-3: expected a whole number of households ≥ 1"),
    ({"deciles": 11}, "audience rule deciles=11: expected a whole number from 1 to 10 (1 = the top 10 %)"),
    ({"threshold": 1.5}, "audience rule threshold=1.5: expected a propensity in [0, 1]"),
    ({"threshold": -0.1}, "audience rule threshold=-0.1: expected a propensity in [0, 1]"),
    ({"threshold": math.nan}, "audience rule threshold=nan: expected a finite number"),
    ({"min_expected_value": -1.0}, "audience rule min_expected_value=-1.0: expected a cost ≥ 0"),
    ({"top": 3, "incentive": " "}, "audience incentive filter: expected an option such as `none` or a campaign type, not an empty text"),
])
def test_bad_rules_are_refused(kwargs, message):
    with pytest.raises(AudienceError) as raised:
        rule_from(**kwargs)
    assert str(raised.value) == message
