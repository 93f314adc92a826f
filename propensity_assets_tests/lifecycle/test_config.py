"""The lifecycle's launchpad Config: a field left None is the deployment's setting, read
when the run starts; a run's own value wins."""

import pytest

from propensity_assets.lifecycle.config import ScoringConfig, VettingConfig, rule_for
from propensity_assets.propensity.stage import PROPENSITY
from propensity_assets.shared import settings


def test_auto_promote_is_the_runs_choice_else_propensity_auto_promote(monkeypatch):
    monkeypatch.delenv("PROPENSITY_AUTO_PROMOTE", raising=False)
    assert VettingConfig().auto_promote is None
    assert rule_for(PROPENSITY, VettingConfig()).auto_promote is False  # off by default
    monkeypatch.setenv("PROPENSITY_AUTO_PROMOTE", "true")  # what the demo sets
    assert rule_for(PROPENSITY, VettingConfig()).auto_promote is True
    assert rule_for(PROPENSITY, VettingConfig(auto_promote=False)).auto_promote is False


def test_the_scores_population_tolerance_is_the_runs_choice_else_the_environment(monkeypatch):
    monkeypatch.delenv("PROPENSITY_POPULATION_DROP_TOLERANCE", raising=False)
    assert ScoringConfig().population_drop_tolerance is None
    assert settings.population_drop_tolerance(ScoringConfig().population_drop_tolerance) == 0.02
    monkeypatch.setenv("PROPENSITY_POPULATION_DROP_TOLERANCE", "0.05")
    assert settings.population_drop_tolerance(None) == 0.05
    assert settings.population_drop_tolerance(ScoringConfig(population_drop_tolerance=0.1).population_drop_tolerance) == 0.1
    with pytest.raises(settings.SettingsError) as info:
        settings.population_drop_tolerance(1.5)
    assert str(info.value) == "population_drop_tolerance=1.5: expected a fraction between 0 and 1, e.g. 0.02"
