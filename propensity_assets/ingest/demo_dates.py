"""The demo's dates, derived from the span of the ingested transactions (pure, no Dagster).

On the embedded data (2017-01-01 .. 2018-01-01) the rules give exactly the dates the
Makefile fixes: the CONTRACTS §7 propensity holdout 2017-12-01, the §8 LTV holdout
2017-10-01, the LTV training cutoff 2017-09-29 and the earlier propensity cutoff
2017-09-01 of the decay curves. `propensity-assets demo-dates` prints them for
`make demo` on a user's own data (PROPENSITY_SOURCE_DIR), whatever its decade.
"""

from __future__ import annotations

from datetime import date, timedelta

PROPENSITY_HORIZON_DAYS = 30  # the propensity label's window (CONTRACTS §4)
FRIDAY = 4  # date.weekday(): training cutoffs are Fridays (shared/partitions.py)
# The decay curves need ages of three months: the earlier cutoff is 13 weeks before the last.
DECAY_WEEKS = 13
# The first training cutoff leaves a quarter of history for the first snapshots' 90-day windows.
FIRST_CUTOFF_AFTER_DAYS = 90


class DemoDatesError(ValueError):
    """The data's span is too short for the demo's holdouts; the message gives the span and
    what was needed."""


def _friday_on_or_before(day: date) -> date:
    return day - timedelta(days=(day.weekday() - FRIDAY) % 7)


def _friday_on_or_after(day: date) -> date:
    return day + timedelta(days=(FRIDAY - day.weekday()) % 7)


def demo_dates(first_day: date, last_day: date, ltv_horizon_days: int) -> dict[str, str]:
    """The demo's dates for data whose transactions' days run from `first_day` to `last_day`.

    - HISTORY_FROM: the first day; the as_of partitions run from it to the day after the last
      day (exclusive end, PROPENSITY_AS_OF_END), the weekly cutoffs from the first Friday a
      quarter after it (PROPENSITY_TRAINING_START).
    - AS_OF (and PROPENSITY_TODAY): the last Friday whose 30-day propensity label lies inside
      the data: the propensity holdout, the models' last cutoff and the profile's date.
    - LTV_HOLDOUT: the last first-of-a-month whose H-day LTV label lies inside the data;
      LTV_CUTOFF the Friday on or before it (LTV trains there, on labels that end before it).
    - DECAY_CUTOFF: 13 weeks before AS_OF, the earlier propensity model of the decay curves.
    """
    end = last_day + timedelta(days=1)  # exclusive: a label window must end by it
    as_of = _friday_on_or_before(end - timedelta(days=PROPENSITY_HORIZON_DAYS))
    latest_holdout = end - timedelta(days=ltv_horizon_days)
    ltv_holdout = latest_holdout.replace(day=1)
    ltv_cutoff = _friday_on_or_before(ltv_holdout)
    decay_cutoff = as_of - timedelta(weeks=DECAY_WEEKS)
    training_start = _friday_on_or_after(first_day + timedelta(days=FIRST_CUTOFF_AFTER_DAYS))
    # LTV trains on snapshots whose H-day labels end by its cutoff, after the first cutoff's history.
    first_ltv_snapshot = ltv_cutoff - timedelta(days=ltv_horizon_days)
    if first_ltv_snapshot < training_start or decay_cutoff < training_start:
        span = (last_day - first_day).days + 1
        needed = FIRST_CUTOFF_AFTER_DAYS + 2 * ltv_horizon_days + 7 + 31
        raise DemoDatesError(
            f"the ingested transactions span {first_day} .. {last_day} ({span} days): too short for the demo's "
            f"holdouts with an LTV horizon of {ltv_horizon_days} days (PROPENSITY_LTV_HORIZON_DAYS); the LTV "
            f"cutoff {ltv_cutoff} would need training snapshots before {first_ltv_snapshot}, after the first "
            f"training cutoff {training_start}. Expected about {needed} days of transactions or more."
        )
    return {
        "HISTORY_FROM": first_day.isoformat(),
        "AS_OF": as_of.isoformat(),
        "LTV_HOLDOUT": ltv_holdout.isoformat(),
        "LTV_CUTOFF": ltv_cutoff.isoformat(),
        "DECAY_CUTOFF": decay_cutoff.isoformat(),
        "PROPENSITY_TODAY": as_of.isoformat(),
        "PROPENSITY_AS_OF_START": first_day.isoformat(),
        "PROPENSITY_AS_OF_END": end.isoformat(),
        "PROPENSITY_TRAINING_START": training_start.isoformat(),
    }
