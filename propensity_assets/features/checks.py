"""The features room's data-quality rules: `population` (shared with scoring, which refuses
a partition whose population fell) and `features_finite`: no NaN or ±inf in any
floating-point feature (nulls are allowed where CONTRACTS §4 says, e.g. days since a
purchase that never happened), counted by Spark while it writes the partitions, at no extra
pass."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pyarrow.compute as pc
import pyarrow.dataset as ds

from propensity_assets.shared.checks import POPULATION, Rule, partition, population_result

FEATURES_FINITE = Rule(
    "features_finite", "No NaN or ±inf in any floating-point feature of the partitions written.", blocking=True
)

__all__ = ["FEATURES_FINITE", "POPULATION", "NonFinite", "check_specs", "population_result"]


def check_specs(table: str) -> list[dg.AssetCheckSpec]:
    """The checks of a features table: its population against the previous as_of, finite values."""
    return [POPULATION.spec(table), FEATURES_FINITE.spec(table)]

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
        return FEATURES_FINITE.result(failures, len(specs), columns_checked=len(self.columns))


