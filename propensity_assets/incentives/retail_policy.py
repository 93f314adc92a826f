"""The retail recommender: per household, the campaign option that pays at the lower 95 %
bound of its effect, and the MLflow pyfunc it is registered as (`incentive__retail_<group>`).

The policy holds, per identified campaign type, the CATE projection on the modifiers
(coefficients and covariance) and its cost per household; it scores any rows carrying
the modifiers. `recommendations` writes the lake table from it, and the registered model
is the same object read back from JSON, so the two cannot disagree. This module imports
only numpy, pandas and MLflow: the model loads in an environment made from its requirements.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow.pyfunc
import numpy as np
import pandas as pd

from propensity_assets.incentives import recommender as rec
from propensity_assets.incentives.retail_estimation import MODIFIERS, fit_projection, modifiers_of, project
from propensity_assets.incentives.retail_study import UNIT_ID, RetailConfig, treatment_name


@dataclass(frozen=True)
class ProjectedOption:
    """One campaign type's option: its CATE projection and what it costs per household."""

    name: str
    beta: np.ndarray
    cov: np.ndarray
    cost: float


@dataclass(frozen=True)
class RetailPolicy:
    margin_rate: float
    options: tuple[ProjectedOption, ...]

    def recommend(self, rows: pd.DataFrame) -> pd.DataFrame:
        """`recommended`, `expected_profit` and `expected_profit__<option>` per row, the profit
        of an option being margin_rate × its CATE's lower bound − its cost."""
        at = modifiers_of(rows)
        effects, costs, names = {}, {}, []
        for option in self.options:
            _, lower, _ = project(option.beta, option.cov, at)
            effects[option.name] = self.margin_rate * lower
            costs[option.name] = np.full(len(rows), option.cost)
            names.append(option.name)
        return rec.recommend(rec.option_profits(effects, costs, names))

    def to_dict(self) -> dict:
        return {"modifiers": list(MODIFIERS), "margin_rate": self.margin_rate,
                "options": [{"name": o.name, "beta": o.beta.tolist(), "cov": o.cov.tolist(), "cost": o.cost}
                            for o in self.options]}

    @classmethod
    def from_dict(cls, d: dict) -> "RetailPolicy":
        if tuple(d["modifiers"]) != MODIFIERS:
            raise ValueError(f"retail recommender: fitted on modifiers {d['modifiers']}, this code projects on {list(MODIFIERS)}")
        return cls(float(d["margin_rate"]), tuple(
            ProjectedOption(o["name"], np.asarray(o["beta"], float), np.asarray(o["cov"], float), float(o["cost"]))
            for o in d["options"]))


def fit_policy(cells, config: RetailConfig) -> RetailPolicy | None:
    """The policy over the identified cells (`retail_verdicts.Cell`), or None when none is identified."""
    identified = [c for c in cells if c.identified]
    if not identified:
        return None
    return RetailPolicy(config.margin_rate, tuple(
        ProjectedOption(treatment_name(c.campaign_type),
                        *fit_projection(c.effect.pseudo, modifiers_of(c.rows), c.rows[UNIT_ID].to_numpy()),
                        config.cost_per_coupon * c.row["redemptions_per_treated"])
        for c in identified))


def latest_rows(cells) -> pd.DataFrame:
    """Each household of the study once, at its latest campaign start."""
    stacked = pd.concat([c.rows for c in cells if c.rows is not None], ignore_index=True)
    return stacked.sort_values(["start_date", "campaign_id"]).groupby(UNIT_ID).tail(1).sort_values(UNIT_ID)


def recommendations(cells, config: RetailConfig) -> pd.DataFrame:
    """Per household of the study (at its latest campaign start), the option of the identified
    campaign types with the highest profit at the lower 95 % bound of the household's CATE:
    margin_rate × CATE lower bound − cost_per_coupon × the cell's redemptions per treated
    household. A campaign is recommended only when it pays even then: an identified effect
    whose interval holds 0 targets nobody. Empty when no cell is identified."""
    policy = fit_policy(cells, config)
    if policy is None:
        return pd.DataFrame(columns=[UNIT_ID, "recommended", "expected_profit"])
    latest = latest_rows(cells)
    out = policy.recommend(latest)
    out.insert(0, UNIT_ID, latest[UNIT_ID].to_numpy())
    out.insert(1, "as_of", latest["start_date"].dt.date.astype(str).to_numpy())
    return out


def policy_values(profits: pd.DataFrame) -> dict[str, float]:
    """Mean profit per household at the lower bound under each policy, from the recommender's
    output: the recommendation, no incentive, and each option for everyone."""
    values = {"recommended": float(profits["expected_profit"].mean())}
    for column in profits.columns:
        if column.startswith("expected_profit__"):
            option = column.removeprefix("expected_profit__")
            values["no incentive" if option == rec.NONE else f"treat all: {option}"] = float(profits[column].mean())
    return values


def value_of(profits: pd.DataFrame, chosen) -> float:
    """Mean profit per household at the lower bound of another policy's `chosen` options,
    valued with the recommender's output `profits`; an option it does not identify earns 0."""
    return float(np.mean([profits[f"expected_profit__{o}"].iat[r] if f"expected_profit__{o}" in profits else 0.0
                          for r, o in enumerate(chosen)]))


class RetailRecommender(mlflow.pyfunc.PythonModel):
    """Takes household rows carrying the modifiers (`grp_spend_90d`, `grp_baskets_90d`,
    `hh_spend_90d`) and returns, per row, the recommended campaign option, its profit at the
    lower bound and that of every option; `unit_id` is passed through when given."""

    def load_context(self, context):
        import json

        with open(context.artifacts["policy"]) as handle:
            self.policy = RetailPolicy.from_dict(json.load(handle))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = model_input.reset_index(drop=True)
        missing = [c for c in MODIFIERS if c not in frame.columns]
        if missing:
            raise KeyError(f"retail recommender: input lacks column(s) {missing} (needs {list(MODIFIERS)})")
        out = self.policy.recommend(frame)
        if UNIT_ID in frame.columns:
            out.insert(0, UNIT_ID, frame[UNIT_ID].to_numpy())
        return out
