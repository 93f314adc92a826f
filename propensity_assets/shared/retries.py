"""The retry policy of the Spark and training assets: preemptible machines lose executors,
connections and object-store requests, and a step that failed that way usually passes
when run again a little later.

Only unexpected errors are retried. Every failure the project raises for bad input or
state (`dg.Failure(..., allow_retries=False)`: stale data, an empty range, an unreachable
registry, a group without labels) fails at once: running it again gives the same answer.
A run whose process was killed is not a step failure: run monitoring marks it failed and
the instance's run retries (`run_retries` in dagster.yaml) launch it again.
"""

import dagster as dg

# 30 s, then 60 s: long enough for a restarted executor or a throttled store, short
# enough that a nightly run still finishes in its window.
SPARK_AND_TRAINING = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
