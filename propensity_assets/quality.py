"""Data-quality rules after ingest, as asset checks on the assets they guard.

- `population`: the rows of a features partition against the same table's previous as_of
  (per group). The population is every household seen before as_of, so it can only grow
  unless data went missing; a drop beyond the tolerance fails the check (blocking) and
  scoring refuses that partition, whichever run scores it.
- `features_finite`: no NaN or ±inf in any floating-point feature (nulls are allowed where
  CONTRACTS §4 says, e.g. days since a purchase that never happened). Counted by Spark while
  it writes the partitions, at no extra pass.
- `label_rate`: each partition's positive share (households with a label > 0) inside a
  band around the same group's recent history (warning: seasons move label rates).
- `scores_valid`: every score present, finite and inside the stage's range; a partition
  that fails is not written.

A run's check covers every partition the run wrote (a year backfill is one run): Dagster
1.13 evaluates a partitioned check per partition only in single-partition runs, and one
event per partition would cost a year backfill 4,004 more events. The metadata names each
failing partition.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import pyarrow.compute as pc
import pyarrow.dataset as ds

from propensity_assets import settings
from propensity_assets.metadata import md_table

POPULATION = "population"
FEATURES_FINITE = "features_finite"
LABEL_RATE = "label_rate"
SCORES_VALID = "scores_valid"

# The label-rate band: the previous LABEL_HISTORY as_of dates of the group, their mean
# ± LABEL_BAND_SDS standard deviations, never narrower than ± LABEL_BAND_FLOOR.
LABEL_HISTORY = 28
LABEL_MIN_HISTORY = 7
LABEL_BAND_SDS = 4.0
LABEL_BAND_FLOOR = 0.05
SHOWN = 20  # failing partitions listed in the metadata

_DESCRIPTIONS = {
    POPULATION: "Rows per partition against the table's previous as_of for the same group: a drop beyond "
    "PROPENSITY_POPULATION_DROP_TOLERANCE (default 2 %) fails, and scoring refuses the partition.",
    FEATURES_FINITE: "No NaN or ±inf in any floating-point feature of the partitions written.",
    LABEL_RATE: f"Each partition's positive share within mean ± {LABEL_BAND_SDS:g} sd (at least "
    f"± {LABEL_BAND_FLOOR:g}) of the group's previous {LABEL_HISTORY} as_of dates.",
    SCORES_VALID: "Every score present, finite and inside the stage's range; failing partitions are not written.",
}
_BLOCKING = {POPULATION: True, FEATURES_FINITE: True, LABEL_RATE: False, SCORES_VALID: True}


def check_specs(asset: str, *names: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(n, asset=asset, description=_DESCRIPTIONS[n], blocking=_BLOCKING[n]) for n in names]


def partition(key: Sequence[str]) -> dict:
    """A partition key as table columns (a `|` inside a Markdown cell would split it)."""
    return dict(zip(("as_of", "product_group"), key))


def result(name: str, failures: list[dict], checked: int, **metadata) -> dg.AssetCheckResult:
    """A check over `checked` partitions; `failures` are rows naming a partition and what is wrong."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=not failures,
        severity=dg.AssetCheckSeverity.WARN if not _BLOCKING[name] else dg.AssetCheckSeverity.ERROR,
        metadata={
            "partitions_checked": checked,
            "partitions_failed": len(failures),
            **({"failures": md_table(failures[:SHOWN])} if failures else {}),
            **metadata,
        },
    )


# -- population ---------------------------------------------------------------------------


def _previous(dates: list[str], d: str) -> str | None:
    earlier = [x for x in dates if x < d]
    return earlier[-1] if earlier else None


def population_drops(lake, table: str, pairs: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """{partition: why} for each (as_of[, group]) of `pairs` whose row count fell by more than
    the tolerance from the table's previous as_of in the lake (same group). Row counts come
    from the Parquet footers; a partition without a previous as_of passes."""
    if not pairs or not lake.exists(table):
        return {}
    tolerance = settings.population_drop_tolerance()
    stored = lake.partitions(table, "as_of")
    previous = {p: _previous(stored, p[0]) for p in pairs}
    wanted = sorted({p[0] for p in pairs} | {d for d in previous.values() if d})
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    for key, fragment in lake.partition_files(table, ds.field("as_of").isin(wanted)):
        counts[key] += fragment.count_rows()
    drops = {}
    for pair in pairs:
        before = previous[pair]
        if before is None or (before, *pair[1:]) not in counts:
            continue
        old, new = counts[(before, *pair[1:])], counts.get(tuple(pair), 0)
        if old and (old - new) / old > tolerance:
            drops[tuple(pair)] = (
                f"{table} {'|'.join(pair)}: {new:,} households against {old:,} at the previous as_of {before} "
                f"(−{(old - new) / old:.1%}, tolerance {tolerance:.1%}): data may be missing; re-ingest, or "
                "raise PROPENSITY_POPULATION_DROP_TOLERANCE if the drop is expected"
            )
    return drops


def population_result(lake, table: str, pairs: Sequence[tuple[str, ...]]) -> dg.AssetCheckResult:
    drops = population_drops(lake, table, pairs)
    failures = [{**partition(k), "problem": v} for k, v in sorted(drops.items())]
    return result(POPULATION, failures, len(pairs), tolerance=settings.population_drop_tolerance())


# -- finite features ----------------------------------------------------------------------


@dataclass
class NonFinite:
    """Counts of NaN/±inf per floating-point column, gathered while Spark writes a frame."""

    observation: object
    columns: list[str]

    @classmethod
    def observe(cls, frame):
        """(frame observed, counter): the counts arrive with the frame's first action."""
        from pyspark.sql import Observation
        from pyspark.sql import functions as F
        from pyspark.sql.types import DoubleType, FloatType

        columns = [f.name for f in frame.schema.fields if isinstance(f.dataType, (DoubleType, FloatType))]
        if not columns:
            return frame, cls(None, [])
        observation = Observation("non_finite")
        bad = [
            F.coalesce(
                F.sum((F.isnan(c) | F.col(c).isin(float("inf"), float("-inf"))).cast("long")), F.lit(0)
            ).alias(c)
            for c in columns
        ]
        return frame.observe(observation, *bad), cls(observation, columns)

    def counts(self) -> dict[str, int]:
        return {c: int(n) for c, n in (self.observation.get if self.observation else {}).items() if n}

    def result(self, lake, table: str, specs: list[dict]) -> dg.AssetCheckResult:
        bad = self.counts() if specs else {}
        failures = []
        if bad:  # rare: find the partitions, reading only the offending columns
            keys = list(specs[0])
            wanted = {tuple(s[k] for k in keys) for s in specs}
            for key, fragment in lake.partition_files(table, ds.field("as_of").isin(sorted({s["as_of"] for s in specs}))):
                if key not in wanted:
                    continue
                data = fragment.to_table(columns=list(bad))
                for column in bad:
                    n = len(data) - pc.sum(pc.fill_null(pc.is_finite(data[column]), True).cast("int64")).as_py()
                    if n:
                        failures.append({**partition(key), "column": column, "non_finite": n})
        return result(FEATURES_FINITE, failures, len(specs), columns_checked=len(self.columns))


# -- label rates --------------------------------------------------------------------------


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
        return result(LABEL_RATE, [], 0)
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
    return result(LABEL_RATE, failures, len(pairs), without_history=unchecked)


# -- scores -------------------------------------------------------------------------------


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
