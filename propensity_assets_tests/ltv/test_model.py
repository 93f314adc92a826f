"""The LTV estimators: the search, its selection and refit, and the fitted predictor, on tiny frames."""

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from propensity_assets.ltv.features import lake_columns
from propensity_assets.ltv.model import train
from propensity_assets.ltv.space import LtvSearchSpace, permutations
from propensity_assets_tests.ltv.lake_rows import lake_frame

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def frames():
    return lake_frame(1500, seed=1), lake_frame(500, seed=2), lake_frame(500, seed=3)


def test_train_fits_every_permutation_and_refits_the_best(frames):
    tr, va, holdout = frames
    space = LtvSearchSpace(max_permutations=5, rf_n_estimators=[20], gbr_max_iter=100, max_rounds=300)
    result = train(tr, va, space, horizon_days=90)
    assert len(result.trials) == 5
    assert list(result.trials["permutation"]) == list(range(5))
    best = result.trials.loc[result.trials["rmse"].idxmin()]
    assert result.params["algorithm"] == best["algorithm"]
    assert result.selection_metrics["rmse"] == pytest.approx(best["rmse"])
    pred = result.predictor.predict(holdout)
    assert pred.shape == (500,) and (pred >= 0).all()
    assert np.corrcoef(pred, holdout["label"])[0, 1] > 0.8  # it learned the spend rate
    assert set(result.predictor.features) <= set(lake_columns(tr))
    assert result.importances.sum() == pytest.approx(1.0)
    figures = result.figures(None, None)
    assert set(figures) == {"decile_plot.png", "feature_importance.png"}
    import matplotlib.pyplot as plt

    for fig in figures.values():
        plt.close(fig)


def test_a_scikit_learn_trial_scores_with_its_best_rounds_and_the_winner_is_refitted_to_them(frames):
    from sklearn.ensemble import HistGradientBoostingRegressor

    tr, va, holdout = frames
    space = LtvSearchSpace(algorithms=["sklearn_gbr"], reducers=["none"], feature_subsets=["all"], gbr_max_iter=120,
                           gbr_learning_rate=[0.5],
                           gbr_max_leaf_nodes=[15], gbr_min_samples_leaf=[50], gbr_l2_regularization=[0.0],
                           max_permutations=1)
    result = train(tr, va, space)
    rounds = result.params["rounds"]
    assert 1 <= rounds < 120  # stopped before the last round on this noisy sample
    # the final model is a fit of exactly that many rounds on both frames, predicting without staging
    assert result.predictor.estimator.n_iter_ == rounds and result.predictor.num_iteration is None
    # the trial's score is that of `rounds` rounds: the same as a fit stopped there
    p = result.trials.iloc[0]
    x = result.predictor.transform(tr)
    stopped = HistGradientBoostingRegressor(
        learning_rate=p["gbr_learning_rate"], max_leaf_nodes=15, min_samples_leaf=50, l2_regularization=0.0,
        max_iter=rounds, early_stopping=False, random_state=space.seed,
    ).fit(x, tr["label"].to_numpy("float64"))
    expected = np.clip(stopped.predict(result.predictor.transform(va)), 0.0, None)
    assert result.trials.iloc[0]["rmse"] == pytest.approx(float(np.sqrt(np.mean((expected - va["label"]) ** 2))), rel=1e-9)


def test_scikit_learn_boosting_stops_early_with_lightgbms_patience_and_grows_the_same_trees(frames):
    """Grown 10 rounds at a time, it stops at the first multiple of 10 that is 20 rounds past
    its best so far, and its trees are those of one fit of that many rounds."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from propensity_assets.ltv.features import design_matrix
    from propensity_assets.ltv.model import _gbr_early_stopped

    tr, va, _ = frames
    lake = lake_columns(tr)
    xt, xv = design_matrix(tr, lake, 90), design_matrix(va, lake, 90)
    y_tr, y_va = tr["label"].to_numpy("float64"), va["label"].to_numpy("float64")

    def make(max_iter):
        return HistGradientBoostingRegressor(learning_rate=0.5, max_leaf_nodes=15, min_samples_leaf=50,
                                             max_iter=max_iter, early_stopping=False, random_state=42)

    full = make(300).fit(xt, y_tr)
    errors = [np.mean((p - y_va) ** 2) for p in full.staged_predict(xv)]
    expected_stop = next(g for g in range(10, 301, 10) if g - (int(np.argmin(errors[:g])) + 1) >= 20)
    expected_best = int(np.argmin(errors[:expected_stop])) + 1
    assert expected_stop < 300  # the rule stops this fit early

    space = LtvSearchSpace(gbr_max_iter=300, early_stopping_rounds=20)
    estimator, best = _gbr_early_stopped(make, xt, y_tr, xv, y_va, space, chunk=10)
    assert (estimator.n_iter_, best) == (expected_stop, expected_best)
    staged = list(full.staged_predict(xv))[expected_stop - 1]
    np.testing.assert_array_equal(estimator.predict(xv), staged)

    # the cap holds when the patience is never used up
    estimator, best = _gbr_early_stopped(make, xt, y_tr, xv, y_va, LtvSearchSpace(gbr_max_iter=25,
                                                                                   early_stopping_rounds=1000), chunk=10)
    assert (estimator.n_iter_, best) == (25, int(np.argmin(errors[:25])) + 1)

    # a space without a single round is refused up front, with the other space checks
    with pytest.raises(ValueError, match=r"^LtvSearchSpace.gbr_max_iter must be ≥ 1, got 0$"):
        permutations(LtvSearchSpace(gbr_max_iter=0))


def test_pca_is_applied_and_importances_map_back(frames):
    tr, va, _ = frames
    space = LtvSearchSpace(algorithms=["lgbm_l2"], reducers=["pca"], pca_variance=[0.9], max_permutations=1,
                           max_rounds=100)
    result = train(tr, va, space)
    pca = result.predictor.reducer[-1]
    assert 0 < pca.n_components_ < len(result.predictor.columns)
    assert list(result.importances.index) != [] and set(result.importances.index) == set(result.predictor.columns)
    assert result.params["reducer"] == "pca" and result.params["pca_variance"] == 0.9


def test_selection_by_importance_keeps_k_columns(frames):
    tr, va, _ = frames
    space = LtvSearchSpace(algorithms=["lgbm_tweedie"], reducers=["select_by_importance"], select_top_k=[6],
                           max_permutations=1, max_rounds=100)
    result = train(tr, va, space)
    assert len(result.predictor.columns) == 6


def test_the_search_ranks_columns_by_importance_once_per_subset(frames, monkeypatch):
    """Two permutations select by importance from the same subset: the search fits the same
    rows for both, so it ranks the columns once; the refit on all rows ranks them again."""
    from propensity_assets.ltv import model

    tr, va, _ = frames
    calls = []

    def counted(x, y, k, seed, threads):
        calls.append(len(x))
        return real(x, y, k, seed, threads)

    real = model._select_top_k
    monkeypatch.setattr(model, "_select_top_k", counted)
    space = LtvSearchSpace(algorithms=["lgbm_l2", "lgbm_tweedie"], reducers=["select_by_importance"],
                           feature_subsets=["all"], select_top_k=[6], max_permutations=2, max_rounds=50)
    result = train(tr, va, space)
    assert len(result.trials) == 2
    assert calls == [len(tr), len(tr) + len(va)]


def test_a_random_forest_scores_the_same_rows_bit_for_bit_every_time(frames):
    """Fitted on two threads, a forest that also predicted on two threads summed its trees in
    the order they finished: of 10 repeated predictions of 3,000 rows, some differed in the
    last bits (vetting compared such a prediction with itself and saw a difference)."""
    tr, va, _ = frames
    space = LtvSearchSpace(algorithms=["random_forest"], reducers=["none"], rf_n_estimators=[40],
                           max_permutations=1)
    predictor = train(tr, va, space).predictor
    rows = lake_frame(3000, seed=4)
    first = predictor.predict(rows)
    assert all(np.array_equal(first, predictor.predict(rows)) for _ in range(10))


def test_predictor_unpickles_without_spark_or_dagster(frames, tmp_path):
    tr, va, holdout = frames
    space = LtvSearchSpace(algorithms=["lgbm_l2"], reducers=["none"], max_permutations=1, max_rounds=50)
    predictor = train(tr, va, space).predictor
    path = tmp_path / "predictor.pkl"
    path.write_bytes(pickle.dumps(predictor))
    holdout.to_parquet(tmp_path / "rows.parquet")
    expected = predictor.predict(holdout)
    np.save(tmp_path / "expected.npy", expected)
    # A fresh interpreter in which importing pyspark or dagster fails.
    script = (
        "import sys, pickle, numpy as np, pandas as pd\n"
        "sys.modules['pyspark'] = None; sys.modules['dagster'] = None; sys.modules['mlflow'] = None\n"
        f"p = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        f"pred = p.predict(pd.read_parquet({str(tmp_path / 'rows.parquet')!r}))\n"
        f"assert np.allclose(pred, np.load({str(tmp_path / 'expected.npy')!r}))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO)


def test_train_errors_name_the_problem(frames):
    tr, va, _ = frames
    with pytest.raises(ValueError, match="valid_df has no label column 'label'"):
        train(tr, va.drop(columns="label"), LtvSearchSpace(max_permutations=1))
    with pytest.raises(ValueError, match="train_df lacks the household feature 'hh_days_since_first'"):
        train(tr.drop(columns="hh_days_since_first"), va, LtvSearchSpace(max_permutations=1))


def test_launchpad_config_is_the_search_space():
    from propensity_assets.ltv.stage import LtvTraining

    # seed is in both; history_weeks, the row budget, the threads and from_champion are the shared lifecycle's.
    assert set(LtvTraining.model_fields) == {
        "history_weeks", "max_training_rows", "training_threads", "from_champion", *LtvSearchSpace.__dataclass_fields__}
    assert LtvTraining().from_champion is False
    assert LtvTraining().history_weeks == 26  # the stage's own default over TrainingConfig's 30
    assert LtvTraining().space() == LtvSearchSpace()
    chosen = LtvTraining(algorithms=["random_forest"], rf_max_depth=[4], max_permutations=3, seed=7)
    assert chosen.space() == LtvSearchSpace(algorithms=["random_forest"], rf_max_depth=[4], max_permutations=3, seed=7)


def test_every_fit_takes_its_threads_from_the_setting(monkeypatch):
    """The training Config's `training_threads`, else PROPENSITY_TRAINING_THREADS (default 2),
    sets the threads of LightGBM in both stages; `make demo` fits on one thread each when two
    trainings run side by side."""
    from types import SimpleNamespace

    from propensity_assets.ltv import model as ltv_model
    from propensity_assets.ltv.model import _lgb_params
    from propensity_assets.ltv.stage import LTV, LtvTraining
    from propensity_assets.propensity import model as propensity_model
    from propensity_assets.propensity.model import _params
    from propensity_assets.propensity.space import SearchSpace
    from propensity_assets.propensity.stage import PROPENSITY, PropensityTraining
    from propensity_assets.shared import settings

    perm = permutations(LtvSearchSpace(algorithms=["lgbm_tweedie"], reducers=["none"]))[0]
    trial, space = SearchSpace().trials()[0], SearchSpace()
    monkeypatch.delenv("PROPENSITY_TRAINING_THREADS", raising=False)
    assert settings.training_threads() == 2
    assert LtvTraining().training_threads is None  # the launchpad default: the deployment's setting
    assert LtvTraining().resolved().training_threads == 2 and PropensityTraining().resolved().training_threads == 2
    monkeypatch.setenv("PROPENSITY_TRAINING_THREADS", "1")
    assert LtvTraining().resolved().training_threads == 1 and PropensityTraining().resolved().training_threads == 1
    assert PropensityTraining(training_threads=3).resolved().training_threads == 3  # a run's choice wins
    for threads in (1, 2):
        assert _lgb_params(perm, 1, threads)["num_threads"] == threads
        assert _params(trial, space, threads)["num_threads"] == threads
    # Each stage hands its config's threads to its model code.
    seen = {}
    fake = SimpleNamespace(predictor=None, params={}, trials=None, validation_metrics={}, importances=None,
                           figures=lambda: {})

    def recorder(stage, result=None):
        def train(*args, threads, **kwargs):
            seen[stage] = threads
            return result
        return train

    monkeypatch.setattr(ltv_model, "train", recorder("ltv", fake))
    monkeypatch.setattr(propensity_model, "train", recorder("propensity"))
    LTV.train(None, None, LtvTraining().resolved())
    PROPENSITY.train(None, None, PropensityTraining(training_threads=3).resolved())
    assert seen == {"ltv": 1, "propensity": 3}
    for raw in ("0", "two"):
        monkeypatch.setenv("PROPENSITY_TRAINING_THREADS", raw)
        with pytest.raises(settings.SettingsError) as error:
            settings.training_threads()
        assert str(error.value) == f"PROPENSITY_TRAINING_THREADS={raw!r}: expected a whole number of threads ≥ 1, e.g. 2"
    with pytest.raises(settings.SettingsError) as error:
        PropensityTraining(training_threads=0).resolved()
    assert str(error.value) == "training_threads=0: expected a whole number of threads ≥ 1, e.g. 2"
