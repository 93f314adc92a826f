"""LTV estimators: the fitted predictor, one permutation's fit, and the search that fits
every permutation, selects one and refits it.

Pure logic on pandas frames; no Dagster, no MLflow, no Spark. `LtvPredictor` is what the
lifecycle pickles into the registered model, so this module (and `features`, `metrics`,
which it imports) must import only numpy, pandas, scipy, scikit-learn and LightGBM: the
model has to load in a bare virtualenv built from its own requirements.

`train` fits every permutation of an `LtvSearchSpace` (`space.permutations`), scores it on
a disjoint household sample, selects by the space's metric and refits the winner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from propensity_assets.lifecycle.stage import TrainResult
from propensity_assets.ltv.features import design_matrix, lake_columns, subset_columns, subset_inputs
from propensity_assets.ltv.metrics import decile_table, evaluate
from propensity_assets.ltv.space import ALGORITHMS, MINIMIZE, LtvSearchSpace, permutations
from propensity_assets.shared import settings

HORIZON_DAYS = 90
LABEL = "label"


# -- the fitted predictor -----------------------------------------------------------------


def _signed_log1p(x):
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass
class LtvPredictor:
    """A fitted LTV regressor: lake feature rows in, predicted H-day spend (≥ 0) out.

    Picklable, and imports only pandas/numpy/scikit-learn/LightGBM.
    """

    features: list[str]  # lake input columns (CONTRACTS §4) it reads
    horizon_days: int
    columns: list[str]  # design columns fed to the reducer / model
    estimator: object  # lgb.Booster or a fitted scikit-learn regressor
    reducer: object | None = None  # a fitted scikit-learn transformer (PCA) or None
    num_iteration: int | None = None  # boosted rounds used: LightGBM, and scikit-learn boosting while selecting

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame | np.ndarray:
        x = design_matrix(frame, self.features, self.horizon_days)[self.columns]
        return x if self.reducer is None else self.reducer.transform(x)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        x = self.transform(frame)
        if isinstance(self.estimator, lgb.Booster):
            pred = self.estimator.predict(x, num_iteration=self.num_iteration)
        elif self.num_iteration is not None and self.num_iteration < getattr(self.estimator, "n_iter_", 0):
            # scikit-learn boosting fitted past its best round: the prediction of its first rounds
            pred = next(p for i, p in enumerate(self.estimator.staged_predict(x), 1) if i == self.num_iteration)
        else:
            pred = self.estimator.predict(x)
        return np.clip(np.asarray(pred, dtype="float64"), 0.0, None)


# -- fitting ------------------------------------------------------------------------------


def _lgb_params(perm: dict, seed: int, threads: int) -> dict:
    params = {
        "objective": "regression" if perm["algorithm"] == "lgbm_l2" else "tweedie",
        # One metric, so early stopping follows RMSE, the selection metric, only.
        "metric": "rmse",
        "num_leaves": perm["num_leaves"],
        "learning_rate": perm["learning_rate"],
        "min_child_samples": perm["min_child_samples"],
        "feature_fraction": perm["feature_fraction"],
        "lambda_l2": perm["lambda_l2"],
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "seed": seed,
        "num_threads": threads,
        "verbose": -1,
        "deterministic": True,
    }
    if perm["algorithm"] == "lgbm_tweedie":
        params["tweedie_variance_power"] = perm["tweedie_variance_power"]
    return params


def _select_top_k(x: pd.DataFrame, y: np.ndarray, k: int, seed: int, threads: int) -> list[str]:
    """The k columns with the largest total gain in a quick, small LightGBM fit."""
    quick = {"objective": "regression", "num_leaves": 15, "learning_rate": 0.1, "min_child_samples": 50,
             "seed": seed, "num_threads": threads, "verbose": -1, "deterministic": True}
    booster = lgb.train(quick, lgb.Dataset(x, y), num_boost_round=100)
    gain = pd.Series(booster.feature_importance("gain"), index=list(x.columns))
    # Stable order on ties (e.g. zero gain): by gain, then by column position.
    ranked = sorted(range(len(gain)), key=lambda i: (-gain.iloc[i], i))
    return [gain.index[i] for i in ranked[: min(k, len(gain))]]


def _pca(variance: float):
    # Spend is heavy-tailed: without the log, the first components would chase the few
    # biggest spenders; standardization puts days, counts and currency on one scale.
    return make_pipeline(
        FunctionTransformer(_signed_log1p), StandardScaler(), PCA(n_components=variance, svd_solver="full")
    )


@dataclass
class _Fitted:
    predictor: LtvPredictor
    rounds: int | None  # chosen boosting rounds, for the refit


def _fit(perm: dict, space: LtvSearchSpace, x_tr: pd.DataFrame, y_tr: np.ndarray,
         x_va: pd.DataFrame | None, y_va: np.ndarray | None, horizon_days: int, threads: int,
         rounds: int | None = None, rankings: dict | None = None) -> _Fitted:
    """Fit one permutation; with a validation set, boosted models stop early on it.

    With `rounds` (the refit) boosted models train exactly that many rounds. `rankings`
    keeps the columns selected by importance per (feature subset, k) across the search's
    permutations, which all fit the same rows: the ranking is the same for each.
    """
    columns = subset_columns(perm["feature_subset"])
    inputs = subset_inputs(perm["feature_subset"])
    reducer = None
    if perm["reducer"] == "select_by_importance":
        rankings = {} if rankings is None else rankings
        key = (perm["feature_subset"], perm["select_top_k"])
        if key not in rankings:
            rankings[key] = _select_top_k(x_tr[columns], y_tr, perm["select_top_k"], space.seed, threads)
        columns = rankings[key]
    xt, xv = x_tr[columns], (x_va[columns] if x_va is not None else None)
    if perm["reducer"] == "pca":
        reducer = _pca(perm["pca_variance"]).fit(xt)
        xt = reducer.transform(xt)
        xv = reducer.transform(xv) if xv is not None else None

    algorithm, chosen = perm["algorithm"], None
    if algorithm.startswith("lgbm"):
        params = _lgb_params(perm, space.seed, threads)
        train_set = lgb.Dataset(xt, y_tr)
        if rounds is None:
            valid_set = lgb.Dataset(xv, y_va, reference=train_set)
            estimator = lgb.train(params, train_set, num_boost_round=space.max_rounds, valid_sets=[valid_set],
                                  callbacks=[lgb.early_stopping(space.early_stopping_rounds, first_metric_only=True,
                                                                verbose=False)])
            chosen = estimator.best_iteration or space.max_rounds
        else:
            estimator = lgb.train(params, train_set, num_boost_round=rounds)
            chosen = rounds
    elif algorithm == "random_forest":
        estimator = RandomForestRegressor(
            n_estimators=perm["rf_n_estimators"], max_depth=perm["rf_max_depth"],
            min_samples_leaf=perm["rf_min_samples_leaf"], max_features=perm["rf_max_features"],
            max_samples=space.rf_max_samples, n_jobs=threads, random_state=space.seed,
        ).fit(xt, y_tr)
        # Predicting on two threads adds the trees up in whichever order they finish, so the
        # same rows scored twice differ in the last bits. One thread: the same answer every time.
        estimator.set_params(n_jobs=1)
    elif algorithm == "sklearn_gbr":
        def gbr(max_iter):
            return HistGradientBoostingRegressor(
                learning_rate=perm["gbr_learning_rate"], max_leaf_nodes=perm["gbr_max_leaf_nodes"],
                min_samples_leaf=perm["gbr_min_samples_leaf"], l2_regularization=perm["gbr_l2_regularization"],
                max_iter=max_iter, early_stopping=False, random_state=space.seed,
            )
        # scikit-learn's boosting takes its OpenMP threads from the process: the same count as the others.
        with threadpool_limits(threads, user_api="openmp"):
            if rounds is None:
                estimator, chosen = _gbr_early_stopped(gbr, xt, y_tr, xv, y_va, space)
            else:
                estimator, chosen = gbr(rounds).fit(xt, y_tr), rounds
    else:
        raise ValueError(f"unknown algorithm {algorithm!r}; expected one of {list(ALGORITHMS)}")
    num_iteration = chosen if algorithm.startswith("lgbm") or (algorithm == "sklearn_gbr" and rounds is None) else None
    predictor = LtvPredictor(inputs, horizon_days, columns, estimator, reducer, num_iteration)
    return _Fitted(predictor, chosen)


def _gbr_early_stopped(make, xt, y_tr, xv, y_va, space: LtvSearchSpace, chunk: int = 50):
    """scikit-learn boosting stopped early on our validation households, as LightGBM is.

    Not sklearn's own early stopping, whose random split of the training rows would mix
    snapshots of the same household. The model grows `chunk` rounds at a time (warm
    start: the same trees as one fit of that many rounds) and stops once its best round
    on the validation sample is `early_stopping_rounds` old, or at `gbr_max_iter`. The
    trial keeps that fit and predicts with its best rounds (no second fit for a model
    that only scores the selection sample); the winner is refitted by the caller.
    Returns (estimator, best round).
    """
    estimator = make(0).set_params(warm_start=True)
    grown, best = 0, 0
    while grown < space.gbr_max_iter:
        grown = min(grown + chunk, space.gbr_max_iter)
        estimator.set_params(max_iter=grown).fit(xt, y_tr)
        errors = [np.mean((p - y_va) ** 2) for p in estimator.staged_predict(xv)]
        best = int(np.argmin(errors)) + 1
        if grown - best >= space.early_stopping_rounds:
            break
    return estimator, best


def _importances(predictor: LtvPredictor, x: pd.DataFrame, y: np.ndarray, seed: int) -> pd.Series:
    """Importance per design column, normalized to sum to 1.

    Gain for LightGBM, impurity decrease for the forest, permutation importance (on at
    most 2,000 rows) for scikit-learn boosting. Under PCA, each component's importance
    is shared among the input columns by the share of its absolute loadings.
    """
    est = predictor.estimator
    if isinstance(est, lgb.Booster):
        raw = est.feature_importance("gain", iteration=predictor.num_iteration).astype("float64")
    elif isinstance(est, RandomForestRegressor):
        raw = est.feature_importances_
    else:
        from sklearn.inspection import permutation_importance

        rows = np.random.default_rng(seed).permutation(len(x))[:2000]
        xs = predictor.transform(x.iloc[rows])
        raw = permutation_importance(est, xs, y[rows], n_repeats=2, random_state=seed,
                                     scoring="neg_root_mean_squared_error").importances_mean.clip(min=0)
    raw = np.asarray(raw, dtype="float64")
    if predictor.reducer is not None:
        loadings = np.abs(predictor.reducer[-1].components_)  # components × columns
        raw = (raw[:, None] * loadings / loadings.sum(axis=1, keepdims=True)).sum(axis=0)
    total = raw.sum()
    series = pd.Series(raw / total if total > 0 else raw, index=predictor.columns, name="importance")
    return series.sort_values(ascending=False)


def plots(validation_deciles: pd.DataFrame, importances: pd.Series, title: str = "") -> dict:
    """The decile plot of the selected permutation on the selection sample and the feature
    importance, as matplotlib figures (callers close them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    table = validation_deciles
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.4
    ax.bar(table["decile"] - width / 2, table["mean_prediction"], width, label="mean prediction")
    ax.bar(table["decile"] + width / 2, table["mean_actual"], width, label="mean actual")
    ax.set(xlabel="prediction decile (1 = top 10 %)", ylabel="spend over the horizon",
           title=f"Deciles (validation) {title}".strip(), xticks=list(table["decile"]))
    ax.legend()
    fig.tight_layout()
    figures["decile_plot.png"] = fig

    top = importances.head(20)[::-1]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.barh(list(top.index), top.to_numpy())
    ax.set(xlabel="share of importance", title=f"Feature importance {title}".strip())
    fig.tight_layout()
    figures["feature_importance.png"] = fig
    return figures


def train(train_df: pd.DataFrame, valid_df: pd.DataFrame, space: LtvSearchSpace,
          horizon_days: int = HORIZON_DAYS, label: str = LABEL,
          threads: int = settings.DEFAULT_TRAINING_THREADS) -> TrainResult:
    """Fit every permutation on `train_df`, select on `valid_df`, refit the winner on both,
    every fit on `threads` threads.

    The result's `params` are the selected permutation, flat (plus the chosen rounds of a
    boosted model); `trials` one row per permutation (params, validation metrics,
    fit_seconds); `selection_metrics` the winner's on `valid_df` before the refit;
    `importances` by design column (mapped back through PCA where applied).

    `valid_df` must hold other households than `train_df` (the lifecycle's selection
    sample): it is used for early stopping and for selection, so its metrics are
    optimistic for the winner; vetting happens on a later snapshot elsewhere.
    """
    for name, df in [("train_df", train_df), ("valid_df", valid_df)]:
        if label not in df.columns:
            raise ValueError(f"{name} has no label column {label!r}")
        if df.empty:
            raise ValueError(f"{name} is empty; LTV training needs rows in both the training and validation frames")
        if df[label].isna().any():
            raise ValueError(f"{name}: column {label!r} holds {int(df[label].isna().sum())} nulls; expected spend ≥ 0")
    for required in ("hh_days_since_first", "hh_days_since_last"):
        if required not in train_df.columns:
            raise ValueError(f"train_df lacks the household feature {required!r} (CONTRACTS §4)")
    lake = lake_columns(train_df)
    x_tr = design_matrix(train_df, lake, horizon_days)
    x_va = design_matrix(valid_df, lake, horizon_days)
    y_tr, y_va = train_df[label].to_numpy("float64"), valid_df[label].to_numpy("float64")
    minimize = space.selection_metric in MINIMIZE

    rows, best, rankings = [], None, {}
    for i, perm in enumerate(permutations(space)):
        start = time.perf_counter()
        fitted = _fit(perm, space, x_tr, y_tr, x_va, y_va, horizon_days, threads, rankings=rankings)
        pred = fitted.predictor.predict(valid_df)
        metrics = evaluate(y_va, pred)
        seconds = time.perf_counter() - start
        rows.append({"permutation": i, **perm, "rounds": fitted.rounds, **metrics, "fit_seconds": seconds})
        score = metrics[space.selection_metric]
        key = score if minimize else -score
        if best is None or (np.isfinite(key) and (not np.isfinite(best[0]) or key < best[0])):
            best = (key, perm, fitted, metrics, pred)
    _, perm, fitted, metrics, pred = best

    both = pd.concat([train_df, valid_df], ignore_index=True)
    x_all = pd.concat([x_tr, x_va], ignore_index=True)
    y_all = both[label].to_numpy("float64")
    final = _fit(perm, space, x_all, y_all, None, None, horizon_days, threads, rounds=fitted.rounds)
    params = {**perm, **({"rounds": fitted.rounds} if fitted.rounds is not None else {})}
    importances = _importances(final.predictor, valid_df, y_va, space.seed)
    deciles = decile_table(y_va, pred)
    return TrainResult(
        predictor=final.predictor,
        params=params,
        trials=pd.DataFrame(rows),
        selection_metrics=metrics,
        importances=importances,
        # The plots show the selection sample, where the winner was chosen, not the vetting
        # snapshot the lifecycle passes.
        figures=lambda y, p: plots(deciles, importances),
    )
