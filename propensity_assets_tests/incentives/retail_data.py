"""Hand-built and planted retail campaign data for the retail study tests."""

import numpy as np
import pandas as pd

from propensity_assets.incentives.retail_study import CampaignTables, RetailConfig, build_study

D = pd.Timestamp


def tables(campaigns, descriptions, coupons, redemptions=()) -> CampaignTables:
    return CampaignTables(
        pd.DataFrame(campaigns, columns=["campaign_id", "household_id"]),
        pd.DataFrame(descriptions, columns=["campaign_id", "campaign_type", "start_date", "end_date"]),
        pd.DataFrame(coupons, columns=["coupon_upc", "product_id", "campaign_id"]),
        pd.DataFrame(list(redemptions), columns=["household_id", "coupon_upc", "campaign_id", "redemption_date"]),
    )


START_DATES = (D("2017-04-03"), D("2017-05-01"), D("2017-05-29"), D("2017-06-26"))


def planted_retail_data(effect: float, n: int = 1500, seed: int = 3, starts=START_DATES):
    """(transactions, campaign tables) of households that buy the group (product 1) every
    k days (k in 2..10; the features reveal k), plus random small purchases. Recipients
    are targeted on k (frequent buyers, strong targeting). A treated household's group
    purchases in the window carry coupons, and it makes one extra coupon purchase worth
    `effect`. The type B campaigns start 28 days apart, so none overlaps another."""
    rng = np.random.default_rng(seed)
    first, last = D("2017-01-01"), D("2017-07-31")
    k = rng.integers(2, 11, n)
    phase = rng.integers(0, 10, n)
    targeted = {s: rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 0.5 * (8 - k)))) for s in starts}
    rows = []
    days = pd.date_range(first, last)
    for h in range(n):
        buy = days[(np.arange(len(days)) + phase[h]) % k[h] == 0]
        extra = days[rng.random(len(days)) < 0.05]
        for d in buy:
            rows.append((h + 1, 1, 5.0, d))
        for d in extra:
            rows.append((h + 1, 1, 3.0, d))
        for s in starts:
            if targeted[s][h] and effect:
                rows.append((h + 1, 1, effect, s + pd.Timedelta(days=3)))
    tx = pd.DataFrame(rows, columns=["household_id", "product_id", "sales_value", "day"])
    tx["coupon_disc"] = 0.0
    for s in starts:
        ids = np.flatnonzero(targeted[s]) + 1
        window = tx["household_id"].isin(ids) & (tx["day"] >= s) & (tx["day"] < s + pd.Timedelta(days=28))
        tx.loc[window, "coupon_disc"] = -0.5
    campaigns = [(i + 1, int(h) + 1) for i, s in enumerate(starts) for h in np.flatnonzero(targeted[s])]
    descriptions = [(i + 1, "B", s, s + pd.Timedelta(days=30)) for i, s in enumerate(starts)]
    coupons = [(100 + i, 1, i + 1) for i in range(len(starts))]
    redemptions = [(h, 100 + c - 1, c, starts[c - 1]) for c, h in campaigns]
    return tx, tables(campaigns, descriptions, coupons, redemptions)


def synthetic_retail(effect: float, n: int = 1500, seed: int = 3):
    """The planted data's study, with 90-day features computed here from the transactions."""
    tx, campaign_tables = planted_retail_data(effect, n, seed)

    def features(dates: list[str]) -> pd.DataFrame:
        out = []
        for d in dates:
            at = D(d)
            hist = tx[tx["day"] < at]
            w = hist[hist["day"] >= at - pd.Timedelta(days=90)].groupby("household_id")["sales_value"]
            f = pd.DataFrame({"grp_spend_90d": w.sum(), "grp_baskets_90d": w.size()}).reindex(sorted(hist["household_id"].unique())).fillna(0)
            f["hh_spend_90d"] = f["grp_spend_90d"]
            out.append(f.rename_axis("household_id").reset_index().assign(as_of=d))
        return pd.concat(out, ignore_index=True)

    return build_study(campaign_tables, tx, pd.Series(True, index=tx.index), {1}, features, RetailConfig())
