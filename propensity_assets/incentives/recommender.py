"""The incentive recommender: per unit, the option with the highest expected profit.

Pure logic plus the MLflow pyfunc. An option is "none", one treatment, or a
combination (treatments joined by `+` in catalogue order). Its expected profit is the
sum of the treatments' estimated total effects (CATE) minus their costs; effects of
different incentives add up (INCENTIVES.md §1). The policy is judged without ground
truth by doubly robust off-policy evaluation against "no incentive", "treat everyone
with each option" and the observed allocation, and, when the study carries truth
columns, by the profit it realizes under the true effects against the oracle.
"""

from __future__ import annotations

from itertools import combinations

import mlflow.pyfunc
import numpy as np
import pandas as pd

NONE = "none"
# Propensities of the observed option below this are clipped in the DR weights.
PROPENSITY_FLOOR = 0.01
FALLBACK_BASIS = "fallback: best single option by doubly robust value (outside overlap, no validated CATE)"


def best_single_option(evaluator: "DoublyRobustEvaluator", costs: dict[str, np.ndarray]) -> str:
    """The option (none or one treatment or a combination) with the highest doubly robust value when
    given to everyone: the recommendation for units without a validated CATE."""
    n = len(evaluator.y)
    values = {name: evaluator.value(np.full(n, name), costs) for name in evaluator.names}
    return max(values, key=values.get)


def options(treatments: list[str]) -> list[tuple[str, ...]]:
    """none, each treatment, each combination, in catalogue order."""
    out: list[tuple[str, ...]] = [()]
    for k in range(1, len(treatments) + 1):
        out.extend(combinations(treatments, k))
    return out


def option_name(option: tuple[str, ...]) -> str:
    return "+".join(option) if option else NONE


def option_profits(effects: dict[str, np.ndarray], costs: dict[str, np.ndarray], treatments: list[str]) -> pd.DataFrame:
    """Expected profit of every option per unit: Σ effect − Σ cost over the option's treatments."""
    n = len(next(iter(costs.values())))
    cols = {}
    for option in options(treatments):
        total = np.zeros(n)
        for t in option:
            total = total + np.asarray(effects[t], float) - np.asarray(costs[t], float)
        cols[option_name(option)] = total
    return pd.DataFrame(cols)


def recommend(profits: pd.DataFrame) -> pd.DataFrame:
    """`recommended`, `expected_profit` and `expected_profit__<option>` per unit.

    Ties go to the option listed first (none before any treatment): an incentive must
    strictly pay for itself.
    """
    values = profits.to_numpy(float)
    best = values.argmax(axis=1)
    out = pd.DataFrame({"recommended": np.asarray(profits.columns)[best], "expected_profit": values[np.arange(len(values)), best]})
    for name in profits.columns:
        out[f"expected_profit__{name}"] = profits[name].to_numpy(float)
    return out


def observed_option(data: pd.DataFrame, treatments: list[str]) -> np.ndarray:
    """The option each unit actually received."""
    given = data[treatments].to_numpy().astype(bool)
    return np.array([option_name(tuple(t for t, g in zip(treatments, row) if g)) for row in given])


def option_cost(names: np.ndarray, costs: dict[str, np.ndarray]) -> np.ndarray:
    out = np.zeros(len(names))
    for t, c in costs.items():
        has = np.array([t in name.split("+") for name in names])
        out += np.where(has, c, 0.0)
    return out


class DoublyRobustEvaluator:
    """Cross-fitted nuisance models for doubly robust values of deterministic policies.

    value(π) = mean_i [ μ(x_i, π_i) + 1{a_i = π_i} / p(π_i | x_i) · (y_i − μ(x_i, a_i)) ] − mean cost(π_i)
    with μ the outcome model given covariates and the treatments, p the probability of
    the observed option given covariates (a multinomial model over options).
    """

    def __init__(self, folds: int = 3, random_state: int = 0, n_estimators: int = 200):
        self.folds, self.random_state, self.n_estimators = folds, random_state, n_estimators

    def fit(self, data: pd.DataFrame, covariates: list[str], treatments: list[str], outcome: str) -> "DoublyRobustEvaluator":
        import lightgbm as lgb
        from sklearn.model_selection import KFold

        self.treatments, self.names = treatments, [option_name(o) for o in options(treatments)]
        x = data[covariates].to_numpy(float)
        t = data[treatments].to_numpy(float)
        y = data[outcome].to_numpy(float)
        self.actions = observed_option(data, treatments)
        code = np.array([self.names.index(a) for a in self.actions])
        n, k = len(data), len(self.names)
        self.mu = np.zeros((n, k))
        self.p = np.zeros((n, k))
        self.y = y
        params = dict(n_estimators=self.n_estimators, learning_rate=0.05, num_leaves=15, n_jobs=1, verbose=-1,
                      random_state=self.random_state)
        for train, test in KFold(self.folds, shuffle=True, random_state=self.random_state).split(x):
            reg = lgb.LGBMRegressor(**params).fit(np.hstack([x[train], t[train]]), y[train])
            for j, option in enumerate(options(treatments)):
                t_opt = np.array([[1.0 if tr in option else 0.0 for tr in treatments]] * len(test))
                self.mu[test, j] = reg.predict(np.hstack([x[test], t_opt]))
            clf = lgb.LGBMClassifier(**params).fit(x[train], code[train])
            proba = clf.predict_proba(x[test])
            self.p[np.ix_(test, clf.classes_)] = proba
        self.clipped_share = float((self.p[np.arange(n), code] < PROPENSITY_FLOOR).mean())
        return self

    def value(self, policy: np.ndarray, costs: dict[str, np.ndarray]) -> float:
        """DR estimate of the mean profit (outcome − cost) per unit under `policy` (option names)."""
        idx = np.array([self.names.index(a) for a in policy])
        rows = np.arange(len(policy))
        mu_pi = self.mu[rows, idx]
        obs = np.array([self.names.index(a) for a in self.actions])
        match = idx == obs
        p_pi = np.maximum(self.p[rows, idx], PROPENSITY_FLOOR)
        correction = np.where(match, (self.y - self.mu[rows, obs]) / p_pi, 0.0)
        return float(np.mean(mu_pi + correction) - np.mean(option_cost(policy, costs)))


def uplift_curve(evaluator: DoublyRobustEvaluator, policy: np.ndarray, gain: np.ndarray,
                 costs: dict[str, np.ndarray], steps: int = 20) -> pd.DataFrame:
    """The policy's uplift curve: its DR value per unit when only the share q of units with the
    highest expected gain get their recommended option (the rest none), for q = 0, 1/steps, … 1,
    beside `random`, the same share chosen at random (the straight line between the two ends).
    With held-out `policy` and `gain`, a curve above the line shows the ranking pays."""
    none = option_name(())
    order = np.argsort(-np.asarray(gain, float), kind="stable")
    rows = []
    for q in np.linspace(0.0, 1.0, steps + 1):
        targeted = np.full(len(policy), none, dtype=object)
        top = order[: int(round(q * len(policy)))]
        targeted[top] = np.asarray(policy, dtype=object)[top]
        rows.append({"share_targeted": float(q), "dr_value": evaluator.value(targeted, costs)})
    curve = pd.DataFrame(rows)
    first, last = curve["dr_value"].iloc[0], curve["dr_value"].iloc[-1]
    return curve.assign(random=first + curve["share_targeted"] * (last - first))


def plot_uplift(curve: pd.DataFrame, title: str):
    """The uplift curve against random targeting, as a matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve["share_targeted"] * 100, curve["dr_value"], marker="o", ms=3, label="highest expected gain first")
    ax.plot(curve["share_targeted"] * 100, curve["random"], "k--", lw=1, label="random targeting")
    ax.set(xlabel="% of units given their recommended incentive", ylabel="DR profit per unit (held out)", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def policy_comparison(
    policy: np.ndarray,
    data: pd.DataFrame,
    costs: dict[str, np.ndarray],
    treatments: list[str],
    evaluator: DoublyRobustEvaluator,
    truth: dict[str, np.ndarray] | None = None,
    held_out: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per policy: the recommender, no incentive, each treat-all option and the observed
    allocation, with the DR value and, given true effects, the realized incremental profit and the oracle.

    The recommender's DR value is that of `held_out` when given: the options the same procedure
    recommends to each unit from effects fitted without it (`study.cross_fitted_policy`). The
    value of `policy` itself on the rows its effects were fitted on would be in-sample: the
    effects follow those rows' noise, and the DR correction reuses the same outcomes."""
    n = len(data)
    policies = {"recommended": policy}
    for name in evaluator.names:
        label = "no incentive" if name == NONE else f"treat all: {name}"
        policies[label] = np.full(n, name)
    policies["observed allocation"] = observed_option(data, treatments)
    true_profits = None
    if truth is not None:
        true_profits = option_profits(truth, costs, treatments)
        policies["oracle"] = np.asarray(true_profits.columns)[true_profits.to_numpy().argmax(axis=1)]
    rows = []
    for label, pol in policies.items():
        valued = held_out if label == "recommended" and held_out is not None else pol
        row = {"policy": label, "dr_value": evaluator.value(valued, costs)}
        if true_profits is not None:
            idx = np.array([list(true_profits.columns).index(a) for a in pol])
            row["realized_profit"] = float(true_profits.to_numpy()[np.arange(n), idx].mean())
        rows.append(row)
    table = pd.DataFrame(rows)
    if true_profits is not None:
        oracle = table.loc[table.policy == "oracle", "realized_profit"].iloc[0]
        table["share_of_oracle"] = table["realized_profit"] / oracle if oracle > 0 else np.nan
    return table


class IncentiveRecommender(mlflow.pyfunc.PythonModel):
    """Takes unit rows (the study's covariate and cost columns) and returns, per unit, the
    recommended option, its expected profit and the expected profit of every option."""

    def load_context(self, context):
        import joblib

        self._load(joblib.load(context.artifacts["estimators"]))

    @classmethod
    def from_bundle(cls, bundle: dict) -> "IncentiveRecommender":
        """The recommender of an in-memory bundle (`tracking.recommender_bundle`), as MLflow would load it."""
        model = cls()
        model._load(bundle)
        return model

    def _load(self, bundle: dict) -> None:
        self.estimators = bundle["estimators"]  # treatment → fitted EconML estimator (total effect)
        self.modifiers = bundle["modifiers"]  # treatment → its X columns
        self.costs = bundle["costs"]  # treatment → cost formula
        self.treatments = bundle["treatments"]
        self.id_column = bundle.get("id_column")
        self.bundle = bundle

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from propensity_assets.incentives.catalog import Treatment

        frame = model_input.reset_index(drop=True)
        effects, costs, basis = {}, {}, np.full(len(frame), "CATE", dtype=object)
        outside = np.zeros(len(frame), bool)
        for t in self.treatments:
            needs = [*self.modifiers[t], *self.bundle.get("features", {}).get(t, [])]
            missing = [c for c in dict.fromkeys(needs) if c not in frame.columns]
            if missing:
                raise KeyError(f"incentive recommender: input lacks column(s) {missing} (needs {list(dict.fromkeys(needs))})")
            effects[t], basis = self._effect(t, frame, basis)
            if not self.bundle.get("extrapolates", {}).get(t, True):
                outside |= self._outside_overlap(t, frame)
            costs[t] = Treatment(t, self.costs[t]).unit_cost(frame)
        out = recommend(option_profits(effects, costs, self.treatments))
        fallback = self.bundle.get("fallback")
        if outside.any() and fallback is not None:
            # No validated CATE for these units: the best single option by doubly robust value.
            out.loc[outside, "recommended"] = fallback
            out.loc[outside, [c for c in out.columns if c.startswith("expected_profit")]] = np.nan
            basis[outside] = FALLBACK_BASIS
        out["basis"] = basis
        for key in ("unit_id", self.id_column):
            if key and key in frame.columns:
                out.insert(0, key, frame[key].to_numpy())
        return out

    def _effect(self, t: str, frame: pd.DataFrame, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cols, est = self.modifiers[t], self.estimators[t]
        if not cols:
            return np.full(len(frame), float(est.ate())), basis
        if not self.bundle.get("use_cate", {}).get(t, True):
            label = f"ATE of {t} (its CATEs failed validation)"
            basis = np.array([label if b == "CATE" else f"{b}; {label}" for b in basis], dtype=object)
            return np.full(len(frame), float(self.bundle["ate"][t])), basis
        return np.asarray(est.effect(frame[cols].to_numpy(float)), float).ravel(), basis

    def _outside_overlap(self, t: str, frame: pd.DataFrame) -> np.ndarray:
        from propensity_assets.incentives.estimation import OVERLAP_BAND

        p = self.bundle["propensity_models"][t].predict_proba(frame[self.bundle["features"][t]].to_numpy(float))[:, 1]
        return (p < OVERLAP_BAND[0]) | (p > OVERLAP_BAND[1])
