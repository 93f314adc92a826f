"""When the daily cycle's outputs are due: freshness policies derived from the schedule.

The cycle starts with the features schedule (`DAILY_CYCLE_CRON`, 05:00); scoring follows the
features by sensor and the profile follows the scores by its automation condition. Each
step is due a fixed time after the start (`DUE_AFTER`), so the catalog shows a step as
overdue (failing its freshness) when no materialization landed between the start of the
day's cycle and its deadline. With the embedded dataset, whose data ended in the past, no
schedule runs by itself, and the catalog says so.
"""

from datetime import timedelta

import dagster as dg

CYCLE_HOUR = 5
CYCLE_MINUTE = 0
DAILY_CYCLE_CRON = f"{CYCLE_MINUTE} {CYCLE_HOUR} * * *"  # the features schedule: the daily cycle starts

# How long after the cycle starts each step must have landed.
DUE_AFTER = {"features": timedelta(hours=1), "scores": timedelta(hours=2), "profile": timedelta(hours=3)}


def daily(step: str) -> dg.FreshnessPolicy:
    """The step's policy: materialized between the cycle's start and `DUE_AFTER[step]` later, daily."""
    due = DUE_AFTER[step]
    minutes = CYCLE_HOUR * 60 + CYCLE_MINUTE + int(due.total_seconds() // 60)
    return dg.FreshnessPolicy.cron(deadline_cron=f"{minutes % 60} {minutes // 60} * * *", lower_bound_delta=due)
