"""Whether a study's units can carry its analysis: both arms of every treatment, each big enough.

Pure logic, run before anything is written: on the table (`check_arms`, before
`incentive_study_data` is written) and on each effect's fit after overlap trimming
(`check_effect_arms`, before `incentive_effects` is written).

Why 30 per arm by default: DML cross-fits its nuisance models on 3 folds, so each fold's
propensity model sees about 10 units of the smaller arm, about the least a classifier
can separate from noise; and the normal-approximation intervals of an arm mean are not
trustworthy below about 30 units. A 30-row study (about 15 per arm) gave a −15,699 effect
with an interval excluding 0 for a treatment the graph says does nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from propensity_assets.incentives.catalog import Study, StudyCatalogError, rows_shown

MIN_PER_ARM = 30


def check_arms(study: Study, data: pd.DataFrame, source: str, min_per_arm: int = MIN_PER_ARM,
               setting: str = "incentive_study_data config min_per_arm") -> None:
    """Refuse a table in which a treatment is given to every unit or to none, or one of its arms
    has fewer than `min_per_arm` units; the message names the treatment and the small arm's rows."""
    where = f"{source}: study {study.key!r}"
    for name in study.treatment_names:
        treated = data[name].to_numpy(dtype=float) == 1
        n, k = len(treated), int(treated.sum())
        if k in (0, n):
            who = "every one" if k == n else "none"
            raise StudyCatalogError(
                f"{where}: treatment {name!r} is given to {who} of the {n:,} rows: an effect needs treated and "
                "untreated units"
            )
        small, arm = (treated, "treated") if k < n - k else (~treated, "untreated")
        if int(small.sum()) < min_per_arm:
            raise StudyCatalogError(
                f"{where}: treatment {name!r} has {k:,} treated and {n - k:,} untreated rows; each arm needs at "
                f"least {min_per_arm} ({setting}); the {arm} arm is {rows_shown(small)}"
            )


def check_effect_arms(study: Study, data: pd.DataFrame, estimates, min_per_arm: int = MIN_PER_ARM) -> None:
    """Refuse an effect whose fit, after overlap trimming, has fewer than `min_per_arm` treated or
    untreated units; the message names the effect and the trimmed rows."""
    for e in estimates:
        treated = data[e.treatment].to_numpy(dtype=float) == 1
        inside = np.asarray(e.fit_rows_or_all, dtype=bool)  # every unit unless the study trims
        k, m = int((treated & inside).sum()), int((~treated & inside).sum())
        if min(k, m) < min_per_arm:
            raise StudyCatalogError(
                f"study {study.key!r}: {e.treatment} ({e.effect}): the fit inside the overlap band has {k:,} treated "
                f"and {m:,} untreated units; each arm needs at least {min_per_arm} (incentive_effects config "
                f"min_per_arm); trimmed: {rows_shown(~inside) if (~inside).any() else 'no row'}"
            )
