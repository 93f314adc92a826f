"""What a stage declares for the profile, and the columns read from what it declares.

A stage's asset declares a profile source through tags:

- `profile/prefix`, `profile/table`, `profile/value_column`: the column
  `<prefix>__<group>` holds `value_column` of `table`;
- `profile/deciles` (default `true`): with it, `<prefix>_decile__<group>` too (1 = top 10 %);
- `profile/study_prefix`: a study source (CONTRACTS §9) instead of a scores table: the
  group's values are the partition `study=<study_prefix><group>` of `table`, keyed by
  `unit_id` (the household), and hold for every as_of of the profile;
- `profile/verdict_table`: a study source's verdicts (`incentive_summary`'s shape): a group
  whose study ran but identified nothing reads `not identified`.

A scores source is an as_of-partitioned table with `as_of`, `product_group`,
`household_id`, the value and `model_version`; the profile follows its updates.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pandas as pd

from propensity_assets.shared.lake import Lake

NOT_IDENTIFIED = "not identified"  # CONTRACTS §9: no effect of the study could be identified
IDENTIFIED = "identified"
TAG = "profile/"


@dataclass(frozen=True)
class ProfileSource:
    """One stage's contribution: its asset and table, and the value column in it."""

    asset_key: str
    table: str
    prefix: str
    value_column: str
    deciles: bool = True
    study_prefix: str | None = None
    verdict_table: str | None = None

    @property
    def is_study(self) -> bool:
        return self.study_prefix is not None


def sources_from(assets) -> list[ProfileSource]:
    """Profile sources declared by assets through their `profile/*` tags (see the module docstring)."""
    out = []
    for asset in assets:
        if not isinstance(asset, dg.AssetsDefinition):
            continue
        for key in asset.keys:
            tags = asset.tags_by_key.get(key, {})
            if f"{TAG}prefix" in tags:
                out.append(ProfileSource(
                    key.to_user_string(), tags[f"{TAG}table"], tags[f"{TAG}prefix"], tags[f"{TAG}value_column"],
                    deciles=tags.get(f"{TAG}deciles", "true") != "false",
                    study_prefix=tags.get(f"{TAG}study_prefix"),
                    verdict_table=tags.get(f"{TAG}verdict_table"),
                ))
    return out


def study_columns(lake: Lake, source: ProfileSource, groups: list[str], households: pd.Series) -> dict[str, pd.Series]:
    """`<prefix>__<group>` per household for every group whose study has run: the household's
    value, or `not identified` when the study's verdicts identify nothing (then no value is a
    finding). Households the study did not hold are null; a group whose study has not run
    gets no column."""
    out = {}
    for group in groups:
        study = {"study": f"{source.study_prefix}{group}"}
        column = f"{source.prefix}__{group}"
        if source.verdict_table is not None:
            if not lake.exists(source.verdict_table, study):
                continue
            if not (lake.read_partition(source.verdict_table, study)["verdict"] == IDENTIFIED).any():
                out[column] = pd.Series(NOT_IDENTIFIED, index=households.index, dtype=object)
                continue
        elif not lake.exists(source.table, study):
            continue
        values = lake.read_partition(source.table, study) if lake.exists(source.table, study) else None
        chosen = values.set_index("unit_id")[source.value_column] if values is not None else pd.Series(dtype=object)
        out[column] = households.map(chosen).astype(object)
    return out
