"""A plain-text report of one incentive study from the lake (`propensity-assets incentives`)."""

import sys

import pandas as pd

from propensity_assets.shared import tables
from propensity_assets.incentives.study_tables import read_or_none as _read
from propensity_assets.incentives.study_tables import retail_key
from propensity_assets.incentives.retail_verdicts import NO_CAMPAIGN
from propensity_assets.shared.lake import Lake


def print_report(lake_uri: str, study: str) -> int:
    lake = Lake(lake_uri)
    summary = _read(lake, tables.INCENTIVE_SUMMARY, study)
    if summary is None:
        print(f"error: lake table 'incentive_summary' has no partition study={study}: materialize the incentives "
              f"assets for {study} first", file=sys.stderr)
        return 2
    fmt = lambda v: f"{v:,.1f}"  # noqa: E731
    cols = [c for c in ["treatment", "effect", "population", "population_share", "specification", "ate", "ate_lower",
                        "ate_upper", "true_ate", "ate_error", "truth_in_interval", "cate_rmse", "overlap_outside_share",
                        "verdict"] if c in summary]
    print(f"incentive study {study}: effects (95 % intervals over the population each covers; truth where the study "
          "carries it)")
    print(summary[cols].to_string(index=False, float_format=fmt))
    refutations = _read(lake, tables.INCENTIVE_REFUTATIONS, study)
    if refutations is not None:
        failed = refutations[~refutations.passed.astype(bool)]
        print(f"refutations: {len(refutations) - len(failed)}/{len(refutations)} passed")
        for row in failed.itertuples():
            print(f"  FAILED {row.refuter} ({row.treatment}, {row.effect}): {row.detail}")
    recs = _read(lake, tables.INCENTIVE_RECOMMENDATIONS, study)
    if recs is not None:
        print("recommended options: " + ", ".join(f"{k} {v:,}" for k, v in recs.recommended.value_counts().items()))
        print(f"mean expected profit per unit under the recommendation: {recs.expected_profit.mean():,.1f}")
    policy = _read(lake, tables.INCENTIVE_POLICY, study)
    if policy is not None:
        version, decision = policy.model_version.iloc[0], policy.decision.iloc[0]
        print(f"policy value per unit (doubly robust; realized under the true effects where known), "
              f"recommender v{version}: {decision}")
        shown = policy.drop(columns=["model_version", "decision"])
        if "share_of_oracle" in shown:
            shown["share_of_oracle"] = shown["share_of_oracle"].map(lambda v: f"{v:.2%}")
        print(shown.to_string(index=False, float_format=fmt))
    return 0


def print_retail(lake_uri: str, groups: list[str]) -> int:
    """The verdict table of every retail campaign study in the lake (`propensity-assets retail`)."""
    lake = Lake(lake_uri)
    # A study with nothing to do (a dataset without campaigns) writes its summary, saying why, and no study table.
    studies = [g for g in groups if any(lake.exists(table, {"study": retail_key(g)})
                                        for table in (tables.INCENTIVE_STUDY_DATA, tables.INCENTIVE_SUMMARY))]
    if not studies:
        print("error: lake table 'incentive_study_data' holds no retail study: materialize retail_study_data and "
              "retail_effects for the product groups first", file=sys.stderr)
        return 2
    rows, idle = [], {}
    for group in studies:
        summary = _read(lake, tables.INCENTIVE_SUMMARY, retail_key(group))
        if summary is None or summary.empty:
            idle[group] = "nothing to do (no campaign of the group could be studied)"
            continue
        studied = summary[summary.treatment != NO_CAMPAIGN]
        if studied.empty:
            idle[group] = "; ".join(summary.reason.unique())
            continue
        rows.append(studied.assign(group=group))
    print("retail campaign studies: effect on the treated (ATT) per household-campaign, group spend in the 28-day "
          "window, 95 % household-clustered intervals")
    if rows:
        table = pd.concat(rows, ignore_index=True)
        fmt = lambda lo, hi: "" if pd.isna(lo) else f"[{lo:,.2f}, {hi:,.2f}]"  # noqa: E731
        shown = pd.DataFrame({
            "group": table.group, "type": table.campaign_type, "treated": table.n_treated, "control": table.n_control,
            "naive": table.naive.round(2), "ATT": table.ate.round(2), "ATT 95%": [fmt(a, b) for a, b in zip(table.ate_lower, table.ate_upper)],
            "placebo": table.placebo.round(2), "placebo 95%": [fmt(a, b) for a, b in zip(table.placebo_lower, table.placebo_upper)],
            "bound": table.plausibility_bound.round(2), "verdict": table.verdict,
        })
        print(shown.to_string(index=False))
        print(f"{(table.verdict == 'identified').sum()} of {len(table)} cells identified. Reasons:")
        for r in table.itertuples():
            print(f"  {r.group} type {r.campaign_type}: {r.verdict}: {r.reason}")
    for group, why in idle.items():
        print(f"  {group}: {why}")
    return 0
