"""Lake-shaped LTV rows for the model tests: every stored feature column, a known label."""

import numpy as np
import pandas as pd

from propensity_assets.features.declaration import WINDOWS


def lake_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Lake-shaped rows (CONTRACTS §4) whose label is driven by the 30-day spend rate."""
    rng = np.random.default_rng(seed)
    since_first = rng.integers(7, 300, n).astype(float)
    rate = rng.gamma(1.0, 3.0, n)  # spend per day
    frame = {"as_of": "2017-06-01", "household_id": np.arange(n)}
    for p in ("hh", "grp"):
        share = 1.0 if p == "hh" else 0.3
        for w in WINDOWS:
            span = np.minimum(w, since_first)
            days = rng.poisson(span / 7.0)
            frame[f"{p}_spend_{w}d"] = rate * share * span * (days > 0)
            frame[f"{p}_days_{w}d"] = days
            frame[f"{p}_baskets_{w}d"] = days
            frame[f"{p}_units_{w}d"] = 3.0 * days
        frame[f"{p}_days_since_first"] = since_first
        frame[f"{p}_days_since_last"] = rng.integers(1, 30, n).astype(float)
    for w in WINDOWS:
        frame[f"grp_spend_share_{w}d"] = 0.3
    frame = pd.DataFrame(frame)
    never = rng.random(n) < 0.1
    frame.loc[never, "grp_days_since_last"] = np.nan
    frame.loc[never, "grp_days_since_first"] = np.nan
    frame["label"] = np.clip(rate * 0.3 * 90 + rng.normal(0, 5, n), 0, None) * ~never
    return frame
