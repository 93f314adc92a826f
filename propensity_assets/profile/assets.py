"""The customer profile marketing reads, assembled from the columns each stage declares.

A stage's asset carries the tag `profile/prefix` (`sources.py`); the profile takes one
value column per (stage, group), `<prefix>__<group>`, and for a scores source its decile
`<prefix>_decile__<group>` (1 = the top 10 %). A group a stage has not scored for the
date, or whose study has not run, has no column: the profile never invents one.
"""

import dagster as dg
import pandas as pd
import pyarrow.dataset as ds

from propensity_assets.shared.deciles import deciles
from propensity_assets.profile.sources import ProfileSource, study_columns
from propensity_assets.shared.partitions import as_of_partitions, product_group_partitions, requested_keys
from propensity_assets.shared.resources import LakeResource
from propensity_assets.shared import freshness, tables
from propensity_assets.shared.metadata import each_partition, lake_partition



def build_profile(
    scores: dict[str, pd.DataFrame], groups: list[str], without_deciles: frozenset[str] = frozenset()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(wide, long) profiles from long scores per prefix: frames with as_of, product_group,
    household_id, value, model_version.

    Wide: one row per (as_of, household_id) with `<prefix>__<group>` and
    `<prefix>_decile__<group>` per prefix and group, prefixes in the order given, groups
    in catalogue order (no decile column for a prefix in `without_deciles`). Long: one row
    per (as_of, household_id, product_group, stage).
    """
    longs, columns, index = [], {}, None
    for prefix, frame in scores.items():
        frame = frame[frame["product_group"].isin(groups)].copy()
        if frame.empty:
            continue
        frame["decile"] = frame.groupby(["as_of", "product_group"])["value"].transform(deciles)
        frame["stage"] = prefix
        longs.append(frame[["as_of", "household_id", "product_group", "stage", "value", "decile", "model_version"]])
        wide = frame.pivot_table(index=["as_of", "household_id"], columns="product_group", values=["value", "decile"], aggfunc="first")
        index = wide.index if index is None else index.union(wide.index)
        for group in groups:
            if ("value", group) in wide.columns:
                columns[f"{prefix}__{group}"] = wide[("value", group)]
                if prefix not in without_deciles:
                    columns[f"{prefix}_decile__{group}"] = wide[("decile", group)].astype("Int32")
    if index is None:
        empty = pd.DataFrame(columns=["as_of", "household_id"])
        return empty, pd.DataFrame(columns=["as_of", "household_id", "product_group", "stage", "value", "decile", "model_version"])
    wide = pd.DataFrame({name: col.reindex(index) for name, col in columns.items()}, index=index).reset_index()
    order = ["as_of", "household_id"] + [
        c for prefix in scores for g in groups for c in (f"{prefix}__{g}", f"{prefix}_decile__{g}") if c in wide.columns
    ]
    long = pd.concat(longs, ignore_index=True).sort_values(["as_of", "household_id", "product_group", "stage"])
    return wide[order].sort_values(["as_of", "household_id"]).reset_index(drop=True), long.reset_index(drop=True)


def top_scorers(wide: pd.DataFrame, prefixes: list[str], n: int = 5) -> tuple[pd.DataFrame, str | None]:
    """(the `n` households with the highest score, the column they are ranked by): the whole
    basket's (`<prefix>__all_products`) when the profile has it, else the first group's, of the
    first stage with columns; ties by household_id. A marketer's first look is who to target."""
    for prefix in prefixes:
        columns = [c for c in wide.columns if c.startswith(f"{prefix}__")]
        if columns:
            column = f"{prefix}__all_products" if f"{prefix}__all_products" in columns else columns[0]
            ranked = wide.sort_values([column, "household_id"], ascending=[False, True], na_position="last")
            return ranked.head(n), column
    return wide.head(n), None


def profile_asset(sources: list[ProfileSource]) -> dg.AssetsDefinition:
    """The profile asset over whatever stages declare profile columns."""
    scored = [s for s in sources if not s.is_study]
    # A study source holds for every as_of: the profile reads it as it stands, not as a dependency.
    studies = [s for s in sources if s.is_study]
    without_deciles = frozenset(s.prefix for s in scored if not s.deciles)

    @dg.asset(
        name=tables.CUSTOMER_PROFILE,
        group_name="profile",
        partitions_def=as_of_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"pandas", "parquet"},
        deps=[s.asset_key for s in scored],
        freshness_policy=freshness.daily("profile"),
        # Rebuilt whenever any group's scores for the date change (any date, not only the latest).
        automation_condition=(
            dg.AutomationCondition.any_deps_updated().since_last_handled()
            & ~dg.AutomationCondition.any_deps_in_progress()
            & ~dg.AutomationCondition.in_progress()
        ),
        description=(
            "The customer profile (the seed's Figure 1): one row per household with, for every product group "
            "a stage has scored, "
            + ", ".join(f"`{s.prefix}__<group>`" for s in scored)
            + " and their deciles `<stage>_decile__<group>` (1 = top 10 %). Also writes the long form "
            "`customer_profile_long` (household, group, stage, value, decile, model_version). Rebuilt when any "
            "group's scores for the date change; a group without scores has no column."
            + "".join(f" For every group whose study has run, `{s.prefix}__<group>` holds the household's "
                      f"`{s.value_column}` from `{s.table}`, or `not identified` when the study could identify no "
                      "effect for the group." for s in studies)
        ),
    )
    def customer_profile(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        dates = sorted(set(requested_keys(context)))
        groups = context.instance.get_dynamic_partitions(product_group_partitions.name)
        scores = {}
        for source in scored:
            if not lake.lake.exists(source.table):
                continue
            frame = lake.lake.read_pandas(
                source.table, filters=ds.field("as_of").isin(dates),
                columns=["as_of", "product_group", "household_id", source.value_column, "model_version"],
            )
            scores[source.prefix] = frame.rename(columns={source.value_column: "value"})
        wide, long = build_profile(scores, groups, without_deciles)
        if wide.empty:
            raise dg.Failure(
                f"no scores for as_of {', '.join(dates)} in {', '.join(s.table for s in scored)}: score the product groups first"
            )
        studied = {s.prefix: study_columns(lake.lake, s, groups, wide["household_id"]) for s in studies}
        for columns in studied.values():
            wide = wide.assign(**columns)
        specs = [{"as_of": d} for d in dates]
        lake.lake.write_pandas(tables.CUSTOMER_PROFILE, wide, ["as_of"], specs)
        lake.lake.write_pandas(tables.CUSTOMER_PROFILE_LONG, long, ["as_of"], specs)
        present = {prefix: sorted(set(long.loc[long["stage"] == prefix, "product_group"])) for prefix in scores}
        # Each as_of its own households, schema and location (a backfill of dates is one run).
        each_partition(context, {d: {"households": int((wide["as_of"] == d).sum()),
                                     **lake_partition(lake.lake, tables.CUSTOMER_PROFILE, {"as_of": d})}
                                 for d in dates if lake.lake.exists(tables.CUSTOMER_PROFILE, {"as_of": d})})
        preview, ranked_by = top_scorers(wide[wide["as_of"] == dates[-1]], [s.prefix for s in scored])
        return dg.MaterializeResult(
            metadata={
                "run_rows": len(wide),
                "run_households": int(wide["household_id"].nunique()),
                "as_of_min": dates[0],
                "as_of_max": dates[-1],
                "columns": len(wide.columns) - 2,
                **{f"{prefix}_groups": ", ".join(gs) or "none" for prefix, gs in present.items()},
                **{f"{prefix}_columns": ", ".join(columns) or "none (no study has run)" for prefix, columns in studied.items()},
                "groups_without_columns": dg.MetadataValue.json(
                    {s.prefix: sorted(set(groups) - set(present.get(s.prefix, []))) for s in scored}
                ),
                "model_versions": dg.MetadataValue.json(
                    long.groupby(["stage", "product_group"])["model_version"].agg(lambda s: sorted(set(s))).reset_index()
                    .assign(key=lambda f: f["stage"] + "__" + f["product_group"]).set_index("key")["model_version"].to_dict()
                ),
                "preview_ranked_by": ranked_by or "household_id",
                "preview": dg.MetadataValue.md(preview.round(4).to_markdown(index=False)),
            }
        )

    return customer_profile

