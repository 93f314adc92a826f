"""The BTYD baseline: RFM from lake features by hand, and a fit on data simulated with known parameters."""

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from propensity_assets.ltv.btyd import BtydBaseline, rfm

# Known parameters (time unit: a day). Purchase rate ~ Gamma(r, alpha): one every 20 days on
# average; dropout ~ Beta(a, b); Gamma-Gamma mean spend per purchase p·v / (q − 1) = 30.
TRUE = {"r": 0.5, "alpha": 10.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "v": 15.0}
H = 90


def lake_rows(rows: list[dict]) -> pd.DataFrame:
    """Group-feature rows with only the columns BTYD reads."""
    return pd.DataFrame(rows, columns=["household_id", "grp_days_365d", "grp_spend_365d",
                                       "grp_days_since_last", "grp_days_since_first"])


def test_rfm_by_hand():
    frame = lake_rows([
        # 4 purchase days over 100 days, the last 10 days ago, 40 spent: 3 repeats, recency 90, 10 a day.
        {"household_id": 1, "grp_days_365d": 4, "grp_spend_365d": 40.0, "grp_days_since_last": 10, "grp_days_since_first": 100},
        # Never bought in the group: no RFM row.
        {"household_id": 2, "grp_days_365d": 0, "grp_spend_365d": 0.0, "grp_days_since_last": None, "grp_days_since_first": None},
        # One purchase day: no repeat, recency 0.
        {"household_id": 3, "grp_days_365d": 1, "grp_spend_365d": 7.0, "grp_days_since_last": 30, "grp_days_since_first": 30},
        # History beyond the window: truncated to 365 days with the first purchase pinned at its
        # start, so all 5 days in the window are repeats; the last was 20 days ago → recency 345.
        {"household_id": 4, "grp_days_365d": 5, "grp_spend_365d": 50.0, "grp_days_since_last": 20, "grp_days_since_first": 400},
        # Returns made the spend negative: the mean spend is floored to stay positive.
        {"household_id": 5, "grp_days_365d": 2, "grp_spend_365d": -3.0, "grp_days_since_last": 5, "grp_days_since_first": 50},
    ])
    out = rfm(frame)
    assert list(out["customer_id"]) == [1, 3, 4, 5]
    assert list(out["frequency"]) == [3, 0, 5, 1]
    assert list(out["recency"]) == [90, 0, 345, 45]
    assert list(out["T"]) == [100, 30, 365, 50]
    assert list(out["monetary_value"]) == [10.0, 7.0, 10.0, 0.01]


def test_rfm_names_missing_columns():
    with pytest.raises(ValueError, match=r"lacks the group feature columns \['grp_spend_365d'\]"):
        rfm(lake_rows([]).drop(columns="grp_spend_365d"))


def test_gamma_gamma_mean_by_hand():
    model = BtydBaseline(params={"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0, "p": 2.0, "q": 3.0, "v": 10.0})
    data = pd.DataFrame({"frequency": [0.0, 2.0], "monetary_value": [99.0, 20.0]})
    # x = 0: the population mean v·p / (q − 1) = 10. x = 2: weight p·x / (p·x + q − 1) = 4 / 6,
    # so 1/3 · 10 + 2/3 · 20 = 50 / 3.
    assert model.expected_spend_per_day(data) == pytest.approx([10.0, 50.0 / 3.0])


def simulate(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """BG/NBD + Gamma-Gamma customers as lake rows, and each one's spend over the next H days.

    As in `lifetimes.generate_data`: the first purchase at time 0, exponential gaps, and
    after every repeat purchase the customer drops out with probability p.
    """
    rng = np.random.default_rng(seed)
    rows, future = [], np.zeros(n)
    for i in range(n):
        lam = rng.gamma(TRUE["r"], 1.0 / TRUE["alpha"])
        drop = rng.beta(TRUE["a"], TRUE["b"])
        nu = rng.gamma(TRUE["q"], 1.0 / TRUE["v"])
        T = float(rng.integers(60, 271))
        times, t, alive = [0.0], 0.0, True
        while alive:
            t += rng.exponential(1.0 / lam)
            if t >= T + H:
                break
            times.append(t)
            alive = rng.random() > drop
        past = [s for s in times if s < T]
        spend = rng.gamma(TRUE["p"], 1.0 / nu, len(times))
        future[i] = spend[len(past):].sum()
        rows.append({"household_id": i, "grp_days_365d": len(past), "grp_spend_365d": spend[: len(past)].sum(),
                     "grp_days_since_last": T - past[-1], "grp_days_since_first": T})
    return lake_rows(rows), future


@pytest.fixture(scope="module")
def fitted():
    frame, future = simulate(3000, seed=1)
    return BtydBaseline().fit(frame), frame, future


def test_map_fit_recovers_the_parameters(fitted):
    model, _, _ = fitted
    est = model.params
    assert est["r"] / est["alpha"] == pytest.approx(TRUE["r"] / TRUE["alpha"], rel=0.15)  # mean purchase rate
    assert est["r"] == pytest.approx(TRUE["r"], rel=0.35)
    assert est["a"] / (est["a"] + est["b"]) == pytest.approx(TRUE["a"] / (TRUE["a"] + TRUE["b"]), abs=0.1)
    mean_spend = est["p"] * est["v"] / (est["q"] - 1)
    assert mean_spend == pytest.approx(TRUE["p"] * TRUE["v"] / (TRUE["q"] - 1), rel=0.15)
    assert model.customers == 3000 and model.fit_seconds > 0


def test_predictions_match_the_simulated_future(fitted):
    model, _, _ = fitted
    frame, future = simulate(3000, seed=2)  # new customers from the same population
    pred = model.predict(frame, H)
    assert pred.sum() == pytest.approx(future.sum(), rel=0.15)
    assert np.corrcoef(pred, future)[0, 1] > 0.4


def test_closed_form_equals_pymc_marketing(fitted):
    model, frame, _ = fitted
    data = rfm(frame.head(200))
    library = model.models["bg_nbd"].expected_purchases(data, future_t=H).mean(("chain", "draw")).values
    assert model.expected_purchase_days(data, H) == pytest.approx(library, rel=1e-6)
    spend = model.models["gamma_gamma"].expected_customer_spend(data).mean(("chain", "draw")).values
    assert model.expected_spend_per_day(data) == pytest.approx(spend, rel=1e-6)


def test_households_that_never_bought_get_zero(fitted):
    model, frame, _ = fitted
    rows = pd.concat([frame.head(3), lake_rows([{"household_id": 99, "grp_days_365d": 0, "grp_spend_365d": 0.0,
                                                 "grp_days_since_last": np.nan, "grp_days_since_first": np.nan}])])
    pred = model.predict(rows, H)
    assert pred[-1] == 0.0 and (pred[:3] > 0).all()
    restored = pickle.loads(pickle.dumps(model))  # light: the params, not the pymc models
    assert restored.models == {} and restored.predict(rows, H) == pytest.approx(pred)


def test_a_second_fit_of_the_same_snapshot_reuses_the_first(fitted):
    """Training and vetting fit the baseline on the same vetting snapshot: the second fit
    reuses the MAP parameters; a snapshot that differs in one household's spend is fitted."""
    model, frame, _ = fitted
    again = BtydBaseline().fit(frame.copy())
    assert again.from_cache and not model.from_cache
    assert (again.params, again.customers, again.fit_seconds) == (model.params, model.customers, model.fit_seconds)
    assert again.models == {}
    changed = frame.copy()
    changed.loc[changed.index[0], "grp_spend_365d"] += 1.0
    refitted = BtydBaseline().fit(changed)
    assert not refitted.from_cache and refitted.params != model.params and set(refitted.models) == {"bg_nbd", "gamma_gamma"}


def test_a_new_snapshot_compiles_no_new_c_code(fitted):
    """pymc-marketing's graphs hold the data as constants: with pytensor's loop fusion, each
    new snapshot compiled C modules of its own into the cache. The fit compiles without it,
    so a snapshot never seen before reuses what the first fit compiled."""
    import pytensor

    frame, _ = simulate(500, seed=3)
    cache = Path(pytensor.config.compiledir)
    before = set(cache.iterdir())
    model = BtydBaseline().fit(frame)
    assert not model.from_cache
    assert set(cache.iterdir()) - before == set()


def test_predict_before_fit_and_too_little_data():
    with pytest.raises(ValueError, match="call fit"):
        BtydBaseline().predict(lake_rows([]), H)
    with pytest.raises(ValueError, match="need at least 10"):
        BtydBaseline().fit(simulate(5, seed=0)[0])


def test_compile_btyd_fits_the_whole_basket_view_of_the_household_features(tmp_path, monkeypatch, capsys):
    """`propensity-assets compile-btyd` fits once on the household features at as_of, read
    as the group features of an `all: true` group: the same RFM data, so the fit that
    follows on that group's features is the one it made (reused in the process)."""
    from propensity_assets import cli
    from propensity_assets.shared.lake import Lake
    from propensity_assets.ltv.btyd import whole_basket

    group, _ = simulate(300, seed=4)
    household = group.rename(columns={c: "hh_" + c[4:] for c in group.columns if c.startswith("grp_")})
    assert whole_basket(household).equals(group)
    lake = Lake(str(tmp_path / "lake"))
    lake.write_pandas("household_features", household.assign(as_of="2017-05-01"), ["as_of"], [{"as_of": "2017-05-01"}])
    monkeypatch.setenv("PROPENSITY_LAKE_URI", lake.root)

    assert cli.main(["compile-btyd", "--as-of", "2017-05-01"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("BTYD baseline fitted on household_features as_of 2017-05-01 (300 households) in ")
    assert BtydBaseline().fit(group).from_cache

    assert cli.main(["compile-btyd", "--as-of", "2017-06-01"]) == 2
    assert capsys.readouterr().err == (
        f"error: Lake table 'household_features' has no partition as_of=2017-06-01 at {lake.uri('household_features')}: "
        "materialize household_features for 2017-06-01 first\n"
    )
