"""The lifecycle's data-quality rules, on every modelling stage's tables:

- `label_rate`: each label partition's positive share (households with a label > 0) inside
  a band around the same group's recent history (warning: seasons move label rates).
- `scores_valid`: every score present, finite and inside the stage's range; a partition
  that fails is not written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import dagster as dg
import pyarrow.compute as pc
import pyarrow.dataset as ds

from propensity_assets.shared.checks import Rule, partition

# The label-rate band: the previous LABEL_HISTORY as_of dates of the group, their mean
# ± LABEL_BAND_SDS standard deviations, never narrower than ± LABEL_BAND_FLOOR.
LABEL_HISTORY = 28
LABEL_MIN_HISTORY = 7
LABEL_BAND_SDS = 4.0
LABEL_BAND_FLOOR = 0.05

LABEL_RATE = Rule(
    "label_rate",
    f"Each partition's positive share within mean ± {LABEL_BAND_SDS:g} sd (at least ± {LABEL_BAND_FLOOR:g}) "
    f"of the group's previous {LABEL_HISTORY} as_of dates.",
    blocking=False,
)
SCORES_VALID = Rule(
    "scores_valid",
    "Every score present, finite and inside the stage's range; failing partitions are not written.",
    blocking=True,
)

def positive_shares(lake, table: str, as_of_dates: Sequence[str], groups: Sequence[str]) -> dict[tuple[str, str], float]:
    """{(as_of, group): share of rows with label > 0} for the stored partitions of `table`."""
    shares = {}
    filters = ds.field("as_of").isin(sorted(set(as_of_dates))) & ds.field("product_group").isin(sorted(set(groups)))
    for key, fragment in lake.partition_files(table, filters):
        label = fragment.to_table(columns=["label"])["label"]
        shares[key] = pc.mean(pc.greater(label, 0).cast("float64")).as_py() if len(label) else 0.0
    return shares


def label_rate_result(lake, table: str, pairs: Sequence[tuple[str, str]]) -> dg.AssetCheckResult:
    """Each (as_of, group)'s positive share against the band of its previous LABEL_HISTORY
    stored as_of dates (the run's own earlier dates count as history)."""
    if not pairs:
        return LABEL_RATE.result([], 0)
    stored = lake.partitions(table, "as_of")
    first = min(d for d, _ in pairs)
    history_from = ([d for d in stored if d < first][-LABEL_HISTORY:] or [first])[0]
    dates = [d for d in stored if d >= history_from]
    shares = positive_shares(lake, table, dates, [g for _, g in pairs])
    failures, unchecked = [], 0
    for d, g in sorted(pairs):
        history = [shares[(x, g)] for x in dates if x < d and (x, g) in shares][-LABEL_HISTORY:]
        if (d, g) not in shares or len(history) < LABEL_MIN_HISTORY:
            unchecked += 1
            continue
        mean = sum(history) / len(history)
        sd = math.sqrt(sum((h - mean) ** 2 for h in history) / len(history))
        half = max(LABEL_BAND_SDS * sd, LABEL_BAND_FLOOR)
        share = shares[(d, g)]
        if abs(share - mean) > half:
            failures.append({
                **partition((d, g)), "positive_share": share, "band_low": mean - half, "band_high": mean + half,
                "history_dates": len(history),
            })
    return LABEL_RATE.result(failures, len(pairs), without_history=unchecked)


# -- scores


def score_problem(column: str, rows: int, nulls: int, infinite: int, outside: int, low: float,
                  high: float | None) -> str | None:
    """What is wrong with a partition of `rows` scores, or None: the `scores_valid` rule on
    counts (Spark scoring aggregates them on the executors)."""
    if not (nulls or infinite or outside):
        return None
    span = f"[{low:g}, {high:g}]" if high is not None else f"[{low:g}, ∞)"
    return (
        f"{column}: {nulls} null, {infinite} not finite, {outside} outside {span} of {rows} "
        "scores; the partition was not written"
    )


def invalid_scores(scores, column: str, low: float, high: float | None) -> dict[tuple[str, str], str]:
    """{(as_of, group): what is wrong} for scores that are missing, not finite or outside [low, high]."""
    problems = {}
    for (d, g), values in scores.groupby(["as_of", "product_group"])[column]:
        finite = values.dropna()
        finite = finite[finite.abs() != float("inf")]
        nulls = int(values.isna().sum())
        infinite = len(values) - nulls - len(finite)
        outside = int(((finite < low) | (finite > high if high is not None else False)).sum())
        problem = score_problem(column, len(values), nulls, infinite, outside, low, high)
        if problem:
            problems[(d, g)] = problem
    return problems
