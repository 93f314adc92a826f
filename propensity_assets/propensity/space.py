"""The propensity search space: plain data, importable without LightGBM (the launchpad
config is built from it, see `lifecycle.config.search_config`)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

# The label's horizon (CONTRACTS §4): a purchase in the group within this many days.
HORIZON_DAYS = 30


@dataclass
class SearchSpace:
    """A declared hyperparameter space: every list is a dimension of the grid.

    Class reweighting (`scale_pos_weight`) is not offered: it distorts the scores, which
    must be probabilities (CONTRACTS §5).
    """

    num_leaves: list[int] = field(default_factory=lambda: [15, 31, 63])
    learning_rate: list[float] = field(default_factory=lambda: [0.03, 0.08])
    min_child_samples: list[int] = field(default_factory=lambda: [50, 200])
    feature_fraction: list[float] = field(default_factory=lambda: [0.7, 1.0])
    lambda_l2: list[float] = field(default_factory=lambda: [0.0, 5.0])
    max_trials: int = 6
    max_rounds: int = 1500
    early_stopping_rounds: int = 50
    selection_metric: str = "average_precision"
    seed: int = 42

    NAMES = ("num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "lambda_l2")

    def __post_init__(self):
        # Refused when the space is built, before a training reads anything: an empty grid or
        # no trial would otherwise fail deep inside the search with nothing named.
        for name in self.NAMES:
            if not getattr(self, name):
                raise ValueError(f"propensity_model config {name}: the search list is empty; expected at least one value")
        for name in ("max_trials", "max_rounds", "early_stopping_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"propensity_model config {name}: expected a whole number ≥ 1, got {getattr(self, name)}")

    def trials(self) -> list[dict]:
        """A seeded random sample of the grid, at most `max_trials` permutations."""
        grid = [dict(zip(self.NAMES, values)) for values in itertools.product(*(getattr(self, n) for n in self.NAMES))]
        if len(grid) <= self.max_trials:
            return grid
        return random.Random(self.seed).sample(grid, self.max_trials)
