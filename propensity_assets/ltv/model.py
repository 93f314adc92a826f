"""LTV regressors: derived features, the parameter-permutation search, and the fitted predictor.

Pure logic on pandas frames; no Dagster, no MLflow, no Spark. `LtvPredictor` is what the
lifecycle pickles into the registered model, so this module (and `metrics`, which it
imports) must import only numpy, pandas, scipy, scikit-learn and LightGBM: the model
has to load in a bare virtualenv built from its own requirements.

The seed's interface: a declared `LtvSearchSpace` crosses algorithms, dimensionality
reducers, named feature subsets and each algorithm's hyperparameters; `permutations`
turns it into a deterministic list of flat parameter dicts, and `train` fits every one,
scores it on a disjoint household sample, selects by RMSE and refits the winner.
"""

from __future__ import annotations

import itertools
import random
import re
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

from propensity_assets.shared import settings
from propensity_assets.ltv.metrics import decile_table, evaluate
from propensity_assets.ltv.space import ALGORITHMS, FEATURE_SUBSETS, REDUCERS, LtvSearchSpace

HORIZON_DAYS = 90
LABEL = "label"
# Lower is better for these; higher for every other selectable metric.
_MINIMIZE = {"rmse", "mae"}
_SELECTABLE = {"rmse", "mae", "normalized_gini", "spearman", "top_decile_capture"}
# "Never bought" recency: longer ago than any window, so trees and PCA see it as the far end.
_NEVER_DAYS = 730.0
_LAKE_COLUMN = re.compile(
    r"^(hh|grp)_((baskets|spend|units|days)_\d+d|days_since_(last|first))$|^grp_spend_share_\d+d$"
)


# -- features -----------------------------------------------------------------------------


def lake_columns(frame: pd.DataFrame) -> list[str]:
    """The CONTRACTS §4 feature columns (hh_*, grp_*) of `frame`, in frame order.

    Columns that other code derives (e.g. the propensity ratios) are ignored: the
    predictor derives its own from the lake columns, so it needs nothing else at scoring.
    """
    return [c for c in frame.columns if _LAKE_COLUMN.match(c)]


def _windows(columns: list[str], prefix: str) -> list[int]:
    return sorted(int(c[len(prefix) + 7 : -1]) for c in columns if re.fullmatch(rf"{prefix}_spend_\d+d", c))


def derived_features(frame: pd.DataFrame, horizon_days: int, prefixes: tuple[str, ...] = ("hh", "grp")) -> pd.DataFrame:
    """LTV features derived from the lake columns, as H-day quantities where they are rates.

    Window sums grow with a household's history: early in the data a 365-day window
    holds a few weeks, so raw sums understate a new household's value and a tree fitted
    on January snapshots misreads October ones. Run rates divide each window sum by the
    days the household was actually observed in it (min(W, hh_days_since_first)) and
    scale to the horizon H, so they mean the same at every as_of.
    """
    out = {}
    observed = frame["hh_days_since_first"].astype("float64").clip(lower=1.0)
    for p in prefixes:
        windows = _windows(list(frame.columns), p)
        for w in windows:
            span = np.minimum(float(w), observed)
            out[f"{p}_spend_rate_{w}d"] = frame[f"{p}_spend_{w}d"] * horizon_days / span
            out[f"{p}_days_rate_{w}d"] = frame[f"{p}_days_{w}d"] * horizon_days / span
        long_w = windows[-1]
        days = frame[f"{p}_days_{long_w}d"].astype("float64")
        baskets = frame[f"{p}_baskets_{long_w}d"].astype("float64")
        spend = frame[f"{p}_spend_{long_w}d"].astype("float64")
        out[f"{p}_spend_per_day"] = (spend / days.replace(0, np.nan)).fillna(0.0)
        out[f"{p}_spend_per_basket"] = (spend / baskets.replace(0, np.nan)).fillna(0.0)
        # Trends: recent rate against a longer one, as log ratios so 0 means steady.
        for short, long in zip(windows, windows[1:]):
            if short >= 30:
                out[f"{p}_trend_{short}_{long}d"] = np.log1p(out[f"{p}_spend_rate_{short}d"]) - np.log1p(
                    out[f"{p}_spend_rate_{long}d"]
                )
        since_last = frame[f"{p}_days_since_last"].astype("float64")
        never = since_last.isna()
        out[f"{p}_recency"] = since_last.fillna(_NEVER_DAYS)
        # How overdue the next purchase is: days since the last one over the usual gap.
        gap = np.minimum(float(long_w), observed) / days.replace(0, np.nan)
        out[f"{p}_overdue"] = (since_last / gap).fillna(_NEVER_DAYS)
        if p == "grp":
            out["grp_never_bought"] = never.astype("float64")
            out["grp_tenure"] = frame["grp_days_since_first"].astype("float64").fillna(0.0)
    return pd.DataFrame(out, index=frame.index)


# Which columns each named subset feeds the model; "rates" leaves out the raw long-window
# sums and tenure that change meaning with the length of history.
def _subset_columns(subset: str, lake: list[str], derived: list[str]) -> list[str]:
    if subset == "household":
        return [c for c in lake + derived if c.startswith("hh_")]
    if subset == "group":
        return [c for c in lake + derived if c.startswith("grp_")]
    if subset == "all":
        return lake + derived
    if subset == "lake":  # the CONTRACTS §4 columns alone: the yardstick for the derived ones
        return list(lake)
    if subset == "rates":
        keep = re.compile(r"_(7|14|30)d$")
        return [c for c in lake if keep.search(c) and "share" not in c] + [
            c for c in derived if c != "grp_tenure"
        ] + [c for c in lake if c.startswith("grp_spend_share_")]
    raise ValueError(f"unknown feature subset {subset!r}; expected one of {list(FEATURE_SUBSETS)}")


def design_matrix(frame: pd.DataFrame, features: list[str], horizon_days: int) -> pd.DataFrame:
    """Lake columns (recency filled) plus derived features, all float64 with no NaN."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(f"LTV features: the input frame lacks the lake columns {missing}; expected every one of {features}")
    lake = frame[features].astype("float64")
    prefixes = tuple(p for p in ("hh", "grp") if f"{p}_days_since_first" in features)
    derived = derived_features(lake, horizon_days, prefixes)
    lake = lake.assign(**{c: lake[c].fillna(_NEVER_DAYS if "since_last" in c else 0.0) for c in features})
    return pd.concat([lake, derived], axis=1)


# -- search space -------------------------------------------------------------------------

_ALGORITHM_PARAMS = {
    "lgbm_l2": ["num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "lambda_l2"],
    "lgbm_tweedie": [
        "num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "lambda_l2", "tweedie_variance_power",
    ],
    "random_forest": ["rf_n_estimators", "rf_max_depth", "rf_min_samples_leaf", "rf_max_features"],
    "sklearn_gbr": ["gbr_learning_rate", "gbr_max_leaf_nodes", "gbr_min_samples_leaf", "gbr_l2_regularization"],
}
_REDUCER_PARAMS = {"none": [], "pca": ["pca_variance"], "select_by_importance": ["select_top_k"]}


def _grid(space: LtvSearchSpace, names: list[str]) -> list[dict]:
    for name in names:
        if not getattr(space, name):
            raise ValueError(f"LtvSearchSpace.{name} is empty; give at least one value")
    return [dict(zip(names, values)) for values in itertools.product(*(getattr(space, n) for n in names))]


def permutations(space: LtvSearchSpace) -> list[dict]:
    """A deterministic, seeded sample of at most `max_permutations` from the cross product.

    Each permutation is a flat dict (algorithm, reducer, feature_subset and the
    parameters that apply to them), loggable as MLflow params. The sample is stratified
    by (algorithm, reducer): strata take turns in a seeded order, so a budget as large as
    the number of strata tries every declared algorithm and reducer at least once,
    whereas a plain sample would be dominated by the largest hyperparameter grid.
    """
    for name, allowed, values in [
        ("algorithms", ALGORITHMS, space.algorithms), ("reducers", REDUCERS, space.reducers),
    ]:
        unknown = [v for v in values if v not in allowed]
        if unknown or not values:
            raise ValueError(f"LtvSearchSpace.{name}: unknown or no values {unknown}; expected a subset of {list(allowed)}")
    unknown = [s for s in space.feature_subsets if s not in FEATURE_SUBSETS]
    if unknown or not space.feature_subsets:
        raise ValueError(
            f"LtvSearchSpace.feature_subsets: unknown or no values {unknown}; expected a subset of {list(FEATURE_SUBSETS)}"
        )
    if space.selection_metric not in _SELECTABLE:
        raise ValueError(f"LtvSearchSpace.selection_metric {space.selection_metric!r}; expected one of {sorted(_SELECTABLE)}")
    if space.max_permutations < 1:
        raise ValueError(f"LtvSearchSpace.max_permutations must be ≥ 1, got {space.max_permutations}")
    if space.gbr_max_iter < 1:
        raise ValueError(f"LtvSearchSpace.gbr_max_iter must be ≥ 1, got {space.gbr_max_iter}")
    rng = random.Random(space.seed)
    strata = []
    for algorithm, reducer in itertools.product(space.algorithms, space.reducers):
        members = [
            {"algorithm": algorithm, "reducer": reducer, "feature_subset": subset, **hyper, **red}
            for subset in space.feature_subsets
            for hyper in _grid(space, _ALGORITHM_PARAMS[algorithm])
            for red in _grid(space, _REDUCER_PARAMS[reducer])
        ]
        rng.shuffle(members)
        strata.append(members)
    rng.shuffle(strata)
    chosen = []
    for layer in itertools.zip_longest(*strata):
        chosen.extend(p for p in layer if p is not None)
        if len(chosen) >= space.max_permutations:
            break
    return chosen[: space.max_permutations]


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


def _fit(perm: dict, space: LtvSearchSpace, lake: list[str], x_tr: pd.DataFrame, y_tr: np.ndarray,
         x_va: pd.DataFrame | None, y_va: np.ndarray | None, horizon_days: int, threads: int,
         rounds: int | None = None, rankings: dict | None = None) -> _Fitted:
    """Fit one permutation; with a validation set, boosted models stop early on it.

    With `rounds` (the refit) boosted models train exactly that many rounds. `rankings`
    keeps the columns selected by importance per (feature subset, k) across the search's
    permutations, which all fit the same rows: the ranking is the same for each.
    """
    derived = [c for c in x_tr.columns if c not in lake]
    columns = _subset_columns(perm["feature_subset"], lake, derived)
    if not columns:
        raise ValueError(f"feature subset {perm['feature_subset']!r} selects no column of the input frame")
    if perm["feature_subset"] == "household":
        inputs = [c for c in lake if c.startswith("hh_")]
    else:
        inputs = list(lake)
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


@dataclass
class TrainResult:
    predictor: LtvPredictor
    params: dict  # the selected permutation, flat (plus the chosen rounds of a boosted model)
    trials: pd.DataFrame  # one row per permutation: params, validation metrics, fit_seconds
    validation_metrics: dict  # the selected permutation on the validation sample, before the refit
    importances: pd.Series  # by design column (mapped back through PCA where applied)
    validation_deciles: pd.DataFrame  # decile table of the selected permutation on validation

    def figures(self, title: str = "") -> dict:
        """The decile plot and the feature importance, as matplotlib figures (callers close them)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figures = {}
        table = self.validation_deciles
        fig, ax = plt.subplots(figsize=(6, 4))
        width = 0.4
        ax.bar(table["decile"] - width / 2, table["mean_prediction"], width, label="mean prediction")
        ax.bar(table["decile"] + width / 2, table["mean_actual"], width, label="mean actual")
        ax.set(xlabel="prediction decile (1 = top 10 %)", ylabel="spend over the horizon",
               title=f"Deciles (validation) {title}".strip(), xticks=list(table["decile"]))
        ax.legend()
        fig.tight_layout()
        figures["decile_plot.png"] = fig

        top = self.importances.head(20)[::-1]
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
    lake = lake_columns(train_df)
    for required in ("hh_days_since_first", "hh_days_since_last"):
        if required not in lake:
            raise ValueError(f"train_df lacks the household feature {required!r} (CONTRACTS §4)")
    x_tr = design_matrix(train_df, lake, horizon_days)
    x_va = design_matrix(valid_df, lake, horizon_days)
    y_tr, y_va = train_df[label].to_numpy("float64"), valid_df[label].to_numpy("float64")
    minimize = space.selection_metric in _MINIMIZE

    rows, best, rankings = [], None, {}
    for i, perm in enumerate(permutations(space)):
        start = time.perf_counter()
        fitted = _fit(perm, space, lake, x_tr, y_tr, x_va, y_va, horizon_days, threads, rankings=rankings)
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
    final = _fit(perm, space, lake, x_all, y_all, None, None, horizon_days, threads, rounds=fitted.rounds)
    params = {**perm, **({"rounds": fitted.rounds} if fitted.rounds is not None else {})}
    return TrainResult(
        predictor=final.predictor,
        params=params,
        trials=pd.DataFrame(rows),
        validation_metrics=metrics,
        importances=_importances(final.predictor, valid_df, y_va, space.seed),
        validation_deciles=decile_table(y_va, pred),
    )
