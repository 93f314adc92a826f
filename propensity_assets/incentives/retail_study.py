"""A product group's retail campaign study (INCENTIVES.md §2): the stacked (household,
campaign) table its campaigns make, and what was left out of it.

Pure pandas and numpy; `retail_assets.py` feeds it lake tables. `build_study` stacks
(household, campaign) rows over the campaigns whose coupon pool holds products of the
group: treated = the household received the campaign; outcome = the group's spend in the
`window_days` from the start; the pre-period placebo's outcome is the window before the
start. Every excluded campaign and row is counted with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from propensity_assets.incentives.estimation import EstimatorConfig

UNIT_ID = "unit_id"  # the household_id; campaign_id sits beside it
PRE = "pre__"  # prefix of the placebo's confounders (features at start − window)

@dataclass(frozen=True)
class RetailConfig:
    """Settings of every retail study (the `retail` section of data/incentive_studies.yaml)."""

    window_days: int = 28  # outcome window from the start; the placebo's window ends at the start
    eligibility_days: int = 90  # a household is eligible when it shopped in these days before the start
    min_rows: int = 30  # treated and control rows a cell needs to be estimated
    margin_rate: float = 0.30  # gross margin on incremental group spend
    cost_per_coupon: float = 1.00  # what one redeemed coupon of the group costs the retailer
    folds: int = 3
    n_estimators: int = 200
    random_state: int = 0

    def estimator(self) -> EstimatorConfig:
        return EstimatorConfig(folds=self.folds, n_estimators=self.n_estimators, random_state=self.random_state)


@dataclass
class CampaignTables:
    """The four campaign tables of CONTRACTS §1 (empty frames when the dataset has none)."""

    campaigns: pd.DataFrame  # campaign_id, household_id
    descriptions: pd.DataFrame  # campaign_id, campaign_type, start_date, end_date
    coupons: pd.DataFrame  # coupon_upc, product_id, campaign_id
    redemptions: pd.DataFrame  # household_id, coupon_upc, campaign_id, redemption_date

    @property
    def empty(self) -> bool:
        return self.descriptions.empty or self.campaigns.empty


@dataclass
class RetailStudy:
    """One group's stacked study table and what was left out of it."""

    data: pd.DataFrame  # one row per (household, campaign); see `build_study`
    exclusions: pd.DataFrame  # campaign_id, campaign_type, reason, rows
    campaigns: pd.DataFrame  # every campaign of the data: campaign_id, campaign_type, start_date, status
    nothing_to_do: str | None = None  # why the study is empty


def no_campaigns() -> RetailStudy:
    """The study of a dataset without campaign tables (transactions only): nothing to do."""
    return RetailStudy(pd.DataFrame(), pd.DataFrame(columns=["campaign_id", "campaign_type", "reason", "rows"]),
                       pd.DataFrame(columns=["campaign_id", "campaign_type", "start_date", "status"]),
                       "the dataset has no campaigns (campaigns or campaign_descriptions is empty)")


def treatment_name(campaign_type: str) -> str:
    """Type A pools cover every group: its effect on a group is the mailer's, labelled so."""
    return f"campaign type {campaign_type}" + (" (mailer)" if campaign_type == "A" else "")


def day(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values)).dt.normalize().dt.tz_localize(None)


def _excluded(rows: list, campaign, reason: str, n: int) -> None:
    if n:
        rows.append({"campaign_id": int(campaign.campaign_id), "campaign_type": campaign.campaign_type, "reason": reason, "rows": int(n)})


def build_study(
    tables: CampaignTables,
    transactions: pd.DataFrame,
    in_group: pd.Series,
    group_products: set | None,
    features: Callable[[list[str]], pd.DataFrame],
    config: RetailConfig,
) -> RetailStudy:
    """The stacked (household, campaign) table of one product group.

    `transactions`: household_id, product_id, sales_value, coupon_disc (may be absent), day
    (a datetime64 day) — every transaction of the data; `in_group` flags the group's rows.
    `group_products`: the group's product ids, None for an `all: true` group.
    `features(dates)`: the CONTRACTS §4 feature matrix (as_of, household_id, hh_*, grp_*) of
    the group at those as_of dates.

    Columns: unit_id (= household_id), campaign_id, campaign_type, start_date, treated,
    outcome, placebo_outcome, coupon_spend, redeemed, prior_campaigns, the features at the
    start, and the placebo's features at start − window prefixed `pre__`.
    """
    w, e = pd.Timedelta(days=config.window_days), pd.Timedelta(days=config.eligibility_days)
    empty = pd.DataFrame(columns=["campaign_id", "campaign_type", "reason", "rows"])
    if tables.empty:
        return no_campaigns()
    # "Type A" in the Complete Journey data, "A" elsewhere: the letter names the type.
    kinds = tables.descriptions["campaign_type"].astype(str).str.strip().str.removeprefix("Type ").str.strip()
    desc = tables.descriptions.assign(start_date=day(tables.descriptions["start_date"]).to_numpy(), campaign_type=kinds.to_numpy())
    pools = tables.coupons if group_products is None else tables.coupons[tables.coupons["product_id"].isin(group_products)]
    relevant = set(pools["campaign_id"])
    first, end = transactions["day"].min(), transactions["day"].max() + pd.Timedelta(days=1)
    received = tables.campaigns.merge(desc[["campaign_id", "start_date"]], on="campaign_id")
    # Only a campaign whose coupons can move the group's spend competes with this one.
    competing = received[received["campaign_id"].isin(relevant)]
    group_tx = transactions[in_group.to_numpy()]
    coupon_tx = group_tx[group_tx["coupon_disc"].fillna(0) != 0] if "coupon_disc" in group_tx else None
    group_coupons = set(pools["coupon_upc"])
    redeemed = tables.redemptions[tables.redemptions["coupon_upc"].isin(group_coupons)]

    excluded, statuses, parts, feature_dates = [], [], [], set()
    for c in desc.sort_values(["start_date", "campaign_id"]).itertuples():
        recipients = set(tables.campaigns.loc[tables.campaigns["campaign_id"] == c.campaign_id, "household_id"])
        if c.campaign_id not in relevant:
            statuses.append((c, "its coupon pool holds no product of the group"))
            continue
        if c.start_date - e < first:
            statuses.append((c, f"starts before {(first + e).date()}: less than {config.eligibility_days} days of pre-period history"))
            _excluded(excluded, c, "campaign lacks pre-period history", len(recipients))
            continue
        if c.start_date + w > end:
            statuses.append((c, f"its {config.window_days}-day outcome window runs past the data's end ({(end - pd.Timedelta(days=1)).date()})"))
            _excluded(excluded, c, "outcome window not fully observed", len(recipients))
            continue
        before = transactions[(transactions["day"] >= c.start_date - e) & (transactions["day"] < c.start_date)]
        eligible = set(before["household_id"])
        _excluded(excluded, c, f"recipient did not shop in the {config.eligibility_days} days before the start",
                  len(recipients - eligible))
        # Another campaign of the group whose outcome window overlaps this one's would mix two treatments.
        nearby = competing[(competing["campaign_id"] != c.campaign_id)
                           & (competing["start_date"] > c.start_date - w) & (competing["start_date"] < c.start_date + w)]
        overlapping = set(nearby["household_id"]) & eligible
        _excluded(excluded, c, f"household received another campaign of the group starting within {config.window_days} days",
                  len(overlapping))
        units = sorted(eligible - overlapping)
        prior = received[received["start_date"] < c.start_date - w].groupby("household_id").size()  # of any group
        frame = pd.DataFrame({
            UNIT_ID: np.asarray(units, dtype="int64"), "campaign_id": int(c.campaign_id), "campaign_type": str(c.campaign_type),
            "start_date": c.start_date,
        })
        frame["treated"] = frame[UNIT_ID].isin(recipients).astype("int64")
        frame["outcome"] = _spend(group_tx, frame[UNIT_ID], c.start_date, c.start_date + w)
        frame["placebo_outcome"] = _spend(group_tx, frame[UNIT_ID], c.start_date - w, c.start_date)
        frame["coupon_spend"] = (np.nan if coupon_tx is None
                                 else _spend(coupon_tx, frame[UNIT_ID], c.start_date, c.start_date + w))
        mine = redeemed[redeemed["campaign_id"] == c.campaign_id]
        frame["redeemed"] = frame[UNIT_ID].map(mine.groupby("household_id").size()).fillna(0).astype("int64")
        frame["prior_campaigns"] = frame[UNIT_ID].map(prior).fillna(0).astype("int64")
        parts.append(frame)
        feature_dates |= {c.start_date, c.start_date - w}
        statuses.append((c, "in the study"))
    status = pd.DataFrame([{"campaign_id": int(c.campaign_id), "campaign_type": c.campaign_type,
                            "start_date": c.start_date.date().isoformat(), "status": s} for c, s in statuses])
    exclusions = pd.DataFrame(excluded, columns=empty.columns)
    if not parts:
        why = ("no campaign's coupon pool holds a product of the group" if not relevant
               else "every campaign of the group was excluded (see the exclusions)")
        return RetailStudy(pd.DataFrame(), exclusions, status, why)
    data = pd.concat(parts, ignore_index=True)
    feats = features(sorted(d.date().isoformat() for d in feature_dates))
    feats = feats.assign(as_of=pd.to_datetime(feats["as_of"]))
    cols = [c for c in feats.columns if c.startswith(("hh_", "grp_"))]
    at = feats.rename(columns={"household_id": UNIT_ID, "as_of": "start_date"})
    data = data.merge(at, on=[UNIT_ID, "start_date"], how="left", validate="many_to_one")
    pre = feats.rename(columns={"household_id": UNIT_ID, **{c: PRE + c for c in cols}})
    pre["start_date"] = pre.pop("as_of") + w
    data = data.merge(pre, on=[UNIT_ID, "start_date"], how="left", validate="many_to_one")
    return RetailStudy(data, exclusions, status)


def _spend(tx: pd.DataFrame, households: pd.Series, start, end) -> np.ndarray:
    window = tx[(tx["day"] >= start) & (tx["day"] < end)]
    return households.map(window.groupby("household_id")["sales_value"].sum()).fillna(0.0).to_numpy(float)


def feature_columns(data: pd.DataFrame, placebo: bool = False) -> list[str]:
    """The confounders: the §4 features at the start (at start − window for the placebo),
    prior campaigns, and one indicator per campaign (the stacked design's fixed effects)."""
    feats = [c for c in data.columns if c.startswith(PRE)] if placebo else [
        c for c in data.columns if c.startswith(("hh_", "grp_"))]
    return [*feats, "prior_campaigns"]


def design(data: pd.DataFrame, placebo: bool = False) -> np.ndarray:
    fixed = pd.get_dummies(data["campaign_id"].astype(str), prefix="campaign", dtype=float)
    return np.column_stack([data[feature_columns(data, placebo)].to_numpy(float), fixed.to_numpy(float)])
