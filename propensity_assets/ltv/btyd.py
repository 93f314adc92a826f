"""The BTYD baseline (CONTRACTS §8): BG/NBD for purchase days, Gamma-Gamma for spend per day.

Fitted with pymc-marketing's `clv` module (the maintained successor of `lifetimes`), by
MAP. Pure logic on pandas frames; no Dagster, no MLflow, no Spark.

RFM from lake features, not transactions, so the baseline scales like the rest of the
stage. The time unit is a day, and a purchase occasion is a day with a group purchase:

- T         = grp_days_since_first (days from the first group purchase day to as_of)
- frequency = grp_days_365d − 1 (repeat purchase days; the first day is not a repeat)
- recency   = T − grp_days_since_last (first to last purchase day)
- monetary  = grp_spend_365d / grp_days_365d: mean spend per purchase day. BTYD wants
  the mean over *repeat* days only, but the first day's spend is not separable from the
  window sums; including it biases the mean towards the first visit, which matters
  little once a household has a few repeat days (and Gamma-Gamma only fits those).

Histories longer than the 365-day window: the window sums no longer see the first
purchase, so the calibration period is truncated to the last 365 days and the first
purchase pinned at its start: T = 365, every purchase day in the window is a repeat
(frequency = grp_days_365d), recency = 365 − grp_days_since_last (0 when the last
purchase is older than the window). The embedded data spans one year, so this only
applies to users with longer history.

Households that never bought in the group have no first purchase, hence no BTYD
prediction: they get 0.

A fit is a pure function of the snapshot's RFM table, and the lifecycle asks for it twice
per group (the training run's baseline metrics, then vetting, on the same vetting
snapshot): the MAP parameters of the last fits are kept in the process, keyed by a digest
of that table, and a second fit of the same table reuses them (`from_cache`).

Prediction evaluates the two closed forms (BG/NBD expected purchases, Gamma-Gamma
conditional mean) at the MAP point in numpy rather than through the fitted pymc models:
those return chain × draw xarrays and carry their pytensor graphs, while the baseline
only needs seven numbers. A test checks the two agree.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

WINDOW = 365
# Gamma-Gamma needs a positive mean spend; returns can make a household's window spend ≤ 0.
_MIN_MONETARY = 0.01
_REQUIRED = ("grp_days_365d", "grp_spend_365d", "grp_days_since_last", "grp_days_since_first")
# RFM digest → (params, customers, fit_seconds) of the last fits in this process.
_FITS: OrderedDict[str, tuple[dict, int, float]] = OrderedDict()
_FITS_KEPT = 32


def _mode():
    """pytensor's default compile mode without loop fusion, for the MAP fits.

    pymc-marketing puts the RFM data in the graph as constants, and fusion inlines scalars
    derived from them into the C code of each fused loop: every new snapshot would compile
    new C modules into pytensor's cache, which would grow with every training. Unfused,
    the loops are generic C, compiled once per machine and reused by every later fit; a
    warm fit costs the same either way, and the MAP parameters agree to 1e-9.
    """
    from pytensor.compile.mode import get_default_mode

    return get_default_mode().excluding("fusion")


def _digest(data: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for column in ("customer_id", "frequency", "recency", "T", "monetary_value"):
        h.update(np.ascontiguousarray(data[column].to_numpy("float64")).tobytes())
    return h.hexdigest()


def rfm(frame: pd.DataFrame) -> pd.DataFrame:
    """pymc-marketing's RFM columns for every household that bought in the group.

    Returns customer_id (= household_id), frequency, recency, T, monetary_value, indexed
    like the buying rows of `frame`.
    """
    missing = [c for c in (*_REQUIRED, "household_id") if c not in frame.columns]
    if missing:
        raise ValueError(f"BTYD baseline: the frame lacks the group feature columns {missing} (CONTRACTS §4)")
    bought = frame[frame["grp_days_since_last"].notna()]
    since_first = bought["grp_days_since_first"].astype("float64")
    since_last = bought["grp_days_since_last"].astype("float64")
    days = bought["grp_days_365d"].astype("float64")
    truncated = since_first > WINDOW
    T = np.where(truncated, float(WINDOW), since_first)
    frequency = np.where(truncated, days, np.maximum(days - 1.0, 0.0))
    recency = np.clip(T - since_last, 0.0, None)
    # A single purchase day has no repeat: recency is 0 by the BTYD convention.
    recency = np.where(frequency == 0, 0.0, recency)
    monetary = (bought["grp_spend_365d"].astype("float64") / days.replace(0, np.nan)).fillna(0.0)
    return pd.DataFrame(
        {
            "customer_id": bought["household_id"].to_numpy(),
            "frequency": frequency,
            "recency": recency,
            "T": T,
            "monetary_value": monetary.clip(lower=_MIN_MONETARY).to_numpy(),
        },
        index=bought.index,
    )


def whole_basket(household: pd.DataFrame) -> pd.DataFrame:
    """Household features (CONTRACTS §4, hh_*) as the group features of a group of every
    product (`all: true`), whose grp_* columns are the household's own: what `rfm` reads.

    `propensity-assets compile-btyd` fits on it before any group features exist.
    """
    return household.rename(columns={c: "grp_" + c[3:] for c in household.columns if c.startswith("hh_")})


@dataclass
class BtydBaseline:
    """BG/NBD × Gamma-Gamma, fitted on one snapshot's group features, predicting H-day spend.

    `fit` returns self, as scikit-learn estimators do. After it, `params` holds the MAP
    estimates (r, alpha, a, b of BG/NBD; p, q, v of Gamma-Gamma) and `fit_seconds` the
    wall time including pytensor compilation (of the first fit, when `from_cache`).
    """

    params: dict = field(default_factory=dict)
    fit_seconds: float = float("nan")
    customers: int = 0
    from_cache: bool = False
    # The fitted pymc-marketing models, for their own diagnostics; predict needs only params.
    models: dict = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict:
        # Pickle the seven numbers, not the pymc models and their compiled graphs.
        return {**self.__dict__, "models": {}}

    def fit(self, frame: pd.DataFrame) -> BtydBaseline:
        import pytensor
        from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

        data = rfm(frame).reset_index(drop=True)
        if data["customer_id"].duplicated().any():
            raise ValueError("BTYD baseline: fit on one snapshot (one row per household_id); got duplicated households")
        repeat = data[data["frequency"] > 0]
        if len(data) < 10 or len(repeat) < 10:
            raise ValueError(
                f"BTYD baseline: {len(data)} buying households, {len(repeat)} with repeat purchase days; "
                "need at least 10 of each to fit BG/NBD and Gamma-Gamma"
            )
        key = _digest(data)
        if key in _FITS:
            _FITS.move_to_end(key)
            params, self.customers, self.fit_seconds = _FITS[key]
            self.params, self.from_cache, self.models = dict(params), True, {}
            return self
        start = time.perf_counter()
        with warnings.catch_warnings(), pytensor.config.change_flags(mode=_mode()):
            warnings.simplefilter("ignore")  # pymc's optimizer chatter; the fit is checked below
            bg = BetaGeoModel()
            bg.fit(data[["customer_id", "frequency", "recency", "T"]], method="map", progressbar=False)
            gg = GammaGammaModel()
            gg.fit(repeat[["customer_id", "frequency", "monetary_value"]], method="map", progressbar=False)
        self.fit_seconds = time.perf_counter() - start
        post_bg, post_gg = bg.fit_result, gg.fit_result
        self.params = {
            **{k: float(post_bg[k].values.mean()) for k in ("r", "alpha", "a", "b")},
            **{k: float(post_gg[k].values.mean()) for k in ("p", "q", "v")},
        }
        self.customers = len(data)
        self.models = {"bg_nbd": bg, "gamma_gamma": gg}
        bad = [k for k, v in self.params.items() if not np.isfinite(v) or v <= 0]
        if bad or self.params["q"] <= 1:
            raise ValueError(f"BTYD baseline: the MAP fit gave unusable parameters {self.params} (q must exceed 1)")
        _FITS[key] = (dict(self.params), self.customers, self.fit_seconds)
        while len(_FITS) > _FITS_KEPT:
            _FITS.popitem(last=False)
        return self

    def expected_purchase_days(self, data: pd.DataFrame, horizon_days: int) -> np.ndarray:
        """BG/NBD expected purchase days in (T, T + H] (Fader, Hardie & Lee 2005, eq. 10)."""
        from scipy.special import hyp2f1

        r, alpha, a, b = (self.params[k] for k in ("r", "alpha", "a", "b"))
        x, t_x, T = (data[c].to_numpy("float64") for c in ("frequency", "recency", "T"))
        t = float(horizon_days)
        numerator = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        numerator *= (a + b + x - 1) / (a - 1)
        denominator = 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        return numerator / denominator

    def expected_spend_per_day(self, data: pd.DataFrame) -> np.ndarray:
        """Gamma-Gamma conditional mean spend per purchase day (Fader & Hardie 2013, eq. 5)."""
        p, q, v = (self.params[k] for k in ("p", "q", "v"))
        x, m = data["frequency"].to_numpy("float64"), data["monetary_value"].to_numpy("float64")
        weight = p * x / (p * x + q - 1)
        return (1 - weight) * (v * p / (q - 1)) + weight * m

    def predict(self, frame: pd.DataFrame, horizon_days: int) -> np.ndarray:
        """Expected group spend over the next H days, one value per row of `frame` (0 for non-buyers)."""
        if not self.params:
            raise ValueError("BTYD baseline: call fit(frame) before predict")
        data = rfm(frame)
        out = np.zeros(len(frame))
        # rfm keeps the buying rows in frame order; place them by position (the index may repeat).
        bought = frame["grp_days_since_last"].notna().to_numpy()
        if bought.any():
            out[bought] = self.expected_purchase_days(data, horizon_days) * self.expected_spend_per_day(data)
        return np.clip(out, 0.0, None)
