"""Data-quality rules as asset checks: the shape every rule shares, and the `population`
rule, which the features room checks and every scoring step obeys.

A run's check covers every partition the run wrote (a year backfill is one run): Dagster
1.13 evaluates a partitioned check per partition only in single-partition runs, and one
event per partition would cost a year backfill 4,004 more events. The metadata names each
failing partition.

- `population`: the rows of a features partition against the same table's previous as_of
  (per group). The population is every household seen before as_of, so it can only grow
  unless data went missing; a drop beyond the tolerance fails the check (blocking) and
  scoring refuses that partition, whichever run scores it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import pyarrow.dataset as ds

from propensity_assets.shared import settings
from propensity_assets.shared.metadata import md_table

SHOWN = 20  # failing partitions listed in the metadata


@dataclass(frozen=True)
class Rule:
    """One data-quality rule: its check name, what it asserts, and whether a failure blocks
    the assets downstream (an error) or only warns."""

    name: str
    description: str
    blocking: bool

    def spec(self, asset: str) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(self.name, asset=asset, description=self.description, blocking=self.blocking)

    def result(self, failures: list[dict], checked: int, **metadata) -> dg.AssetCheckResult:
        """The check over `checked` partitions; `failures` are rows naming a partition and what is wrong."""
        return dg.AssetCheckResult(
            check_name=self.name,
            passed=not failures,
            severity=dg.AssetCheckSeverity.ERROR if self.blocking else dg.AssetCheckSeverity.WARN,
            metadata={
                "partitions_checked": checked,
                "partitions_failed": len(failures),
                **({"failures": md_table(failures[:SHOWN])} if failures else {}),
                **metadata,
            },
        )


def partition(key: Sequence[str]) -> dict:
    """A partition key as table columns (a `|` inside a Markdown cell would split it)."""
    return dict(zip(("as_of", "product_group"), key))


POPULATION = Rule(
    "population",
    "Rows per partition against the table's previous as_of for the same group: a drop beyond "
    "PROPENSITY_POPULATION_DROP_TOLERANCE (default 2 %) fails, and scoring refuses the partition.",
    blocking=True,
)

def _previous(dates: list[str], d: str) -> str | None:
    earlier = [x for x in dates if x < d]
    return earlier[-1] if earlier else None


def population_drops(
    lake, table: str, pairs: Sequence[tuple[str, ...]], tolerance: float | None = None
) -> dict[tuple[str, ...], str]:
    """{partition: why} for each (as_of[, group]) of `pairs` whose row count fell by more than
    `tolerance` (a fraction; None: the deployment's setting) from the table's previous as_of
    in the lake (same group). Row counts come from the Parquet footers; a partition without
    a previous as_of passes."""
    if not pairs or not lake.exists(table):
        return {}
    tolerance = settings.population_drop_tolerance(tolerance)
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
    return POPULATION.result(failures, len(pairs), tolerance=settings.population_drop_tolerance())


