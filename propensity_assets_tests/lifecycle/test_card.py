"""A registered version's card (its MLflow description), from hand-written tags and params."""

from propensity_assets.lifecycle.registration import model_card

TAGS = {
    "cutoff": "2017-12-01", "train_as_of_min": "2017-06-30", "train_as_of_max": "2017-10-27",
    "vetting_as_of": "2017-11-01", "horizon_days": "30", "holdout_average_precision": "0.61",
    "vetting.decision": "champion", "vetting.reason": "auto-promoted: average_precision 0.6100 ≥ champion v2 0.6000 − 0.0",
    "vetting.metric": "average_precision", "vetting.as_of": "2017-11-01",
    "vetting.candidate_average_precision": "0.610000", "vetting.champion_average_precision": "0.600000",
    "promotion.by": "vetting", "promotion.reason": "auto-promoted", "promotion.replaced_version": "2",
    "complete": "true",
}
PARAMS = {"best.num_leaves": "15", "best.learning_rate": "0.05", "best.rounds": "120", "train_rows": "74070"}


def test_the_card_states_window_configuration_decision_and_promotion():
    assert model_card("propensity__beef", "3", TAGS, PARAMS).splitlines() == [
        "**propensity__beef version 3**",
        "",
        "- trained at cutoff 2017-12-01 on the snapshots 2017-06-30 .. 2017-10-27; vetting snapshot 2017-11-01; "
        "label window 30 days",
        "- selected configuration: learning_rate=0.05, num_leaves=15, rounds=120",
        "- on the vetting snapshot at training: average_precision 0.61",
        "- vetting decision: **champion**: auto-promoted: average_precision 0.6100 ≥ champion v2 0.6000 − 0.0",
        "- vetting figures: as_of 2017-11-01, candidate_average_precision 0.610000, champion_average_precision "
        "0.600000, metric average_precision",
        "- promoted to champion by vetting, replacing version 2: auto-promoted",
    ]


def test_a_version_not_yet_vetted_has_no_decision_on_its_card():
    tags = {k: v for k, v in TAGS.items() if not k.startswith(("vetting.", "promotion."))}
    card = model_card("ltv__beef", "1", tags, {})
    assert "vetting" not in card.replace("vetting snapshot", "") and "promoted" not in card
    assert "selected configuration" not in card
