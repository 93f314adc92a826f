"""A plain-text report of one incentive study from the lake (`propensity-assets incentives`)."""

import sys

import pandas as pd
import pyarrow.dataset as ds

from propensity_assets.lake import Lake


def _read(lake: Lake, table: str, study: str) -> pd.DataFrame | None:
    if not lake.exists(table, {"study": study}):
        return None
    return lake.read_pandas(table, filters=ds.field("study") == study).drop(columns=["study"])


def print_report(lake_uri: str, study: str) -> int:
    lake = Lake(lake_uri)
    summary = _read(lake, "incentive_summary", study)
    if summary is None:
        print(f"error: lake table 'incentive_summary' has no partition study={study}: materialize the incentives "
              f"assets for {study} first", file=sys.stderr)
        return 2
    fmt = lambda v: f"{v:,.1f}"  # noqa: E731
    cols = [c for c in ["treatment", "effect", "ate", "ate_lower", "ate_upper", "true_ate", "ate_error",
                        "truth_in_interval", "cate_rmse", "overlap_outside_share", "verdict"] if c in summary]
    print(f"incentive study {study}: effects (95 % intervals; truth where the study carries it)")
    print(summary[cols].to_string(index=False, float_format=fmt))
    refutations = _read(lake, "incentive_refutations", study)
    if refutations is not None:
        failed = refutations[~refutations.passed.astype(bool)]
        print(f"refutations: {len(refutations) - len(failed)}/{len(refutations)} passed")
        for row in failed.itertuples():
            print(f"  FAILED {row.refuter} ({row.treatment}, {row.effect}): {row.detail}")
    recs = _read(lake, "incentive_recommendations", study)
    if recs is not None:
        print("recommended options: " + ", ".join(f"{k} {v:,}" for k, v in recs.recommended.value_counts().items()))
        print(f"mean expected profit per unit under the recommendation: {recs.expected_profit.mean():,.1f}")
    policy = _read(lake, "incentive_policy", study)
    if policy is not None:
        version, decision = policy.model_version.iloc[0], policy.decision.iloc[0]
        print(f"policy value per unit (doubly robust; realized under the true effects where known), "
              f"recommender v{version}: {decision}")
        shown = policy.drop(columns=["model_version", "decision"])
        if "share_of_oracle" in shown:
            shown["share_of_oracle"] = shown["share_of_oracle"].map(lambda v: f"{v:.2%}")
        print(shown.to_string(index=False, float_format=fmt))
    return 0
