"""Retail campaign studies (INCENTIVES.md §2): did a product group's coupon campaigns raise
its spend, and can this data tell?

Pure pandas and numpy; the assets in `retail_assets.py` feed it lake tables.

- `build_study` stacks (household, campaign) rows over the campaigns whose coupon pool
  holds products of the group: treated = the household received the campaign; outcome
  = the group's spend in the `window_days` from the start; the pre-period placebo's
  outcome is the window before the start. Every excluded campaign and row is counted
  with its reason.
- `estimate_att` is the effect on the treated by AIPW with cross-fitting grouped by
  household, household-clustered intervals and overlap trimming.
- `verdicts` calls a (group, campaign type) cell `identified` only when its placebo is
  compatible with 0 and its effect is within what the treated's coupon-line spend makes
  plausible; otherwise `not identified`, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from propensity_assets.incentives.estimation import OVERLAP_BAND, EstimatorConfig, _lgbm, check_overlap

UNIT_ID = "unit_id"  # the household_id; campaign_id sits beside it
PRE = "pre__"  # prefix of the placebo's confounders (features at start − window)
MODIFIERS = ("grp_spend_90d", "grp_baskets_90d", "hh_spend_90d")  # where a targeting effect may vary
IDENTIFIED, NOT_IDENTIFIED = "identified", "not identified"
Z95 = 1.959963984540054


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


# -- estimation -------------------------------------------------------------------------------


@dataclass
class AttEstimate:
    att: float
    lower: float
    upper: float
    se: float
    n_treated: int
    n_control: int
    trimmed: int  # rows outside the overlap band, left out of the fit and the average
    propensity: np.ndarray = field(repr=False)
    inside: np.ndarray = field(repr=False)
    pseudo: np.ndarray = field(repr=False)  # per-row doubly robust effect (for the CATE projection)


def household_folds(clusters: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold per row such that every row of a household falls in the same fold."""
    unique = np.unique(clusters)
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = dict(zip(unique[order], np.arange(len(unique)) % folds))
    return np.array([fold_of[c] for c in clusters])


def clustered_se(influence: np.ndarray, clusters: np.ndarray) -> float:
    """The standard error of a mean of influence values, summed within clusters first."""
    sums = pd.Series(influence).groupby(np.asarray(clusters)).sum().to_numpy()
    return float(np.sqrt(np.sum(sums ** 2)) / len(influence))


def att_from_nuisances(y, t, e, m0, m1, clusters) -> tuple[float, float, np.ndarray]:
    """(ATT, its household-clustered standard error, per-row DR effects) from cross-fitted
    P(T=1|x) = e, E[Y|x,T=0] = m0 and E[Y|x,T=1] = m1.

    ATT = Σ [T (Y − m0) − (1 − T) e/(1 − e) (Y − m0)] / Σ T, the doubly robust score of the
    effect on the treated; its influence value per row is [that term − T·ATT] / P(T = 1).
    """
    y, t, e, m0, m1 = (np.asarray(v, float) for v in (y, t, e, m0, m1))
    term = t * (y - m0) - (1 - t) * e / (1 - e) * (y - m0)
    att = float(term.sum() / t.sum())
    influence = (term - t * att) / t.mean()
    pseudo = m1 - m0 + t * (y - m1) / e - (1 - t) * (y - m0) / (1 - e)
    return att, clustered_se(influence, clusters), pseudo


def estimate_att(x: np.ndarray, y: np.ndarray, t: np.ndarray, clusters: np.ndarray, config: RetailConfig) -> AttEstimate:
    """The effect on the treated: cross-fitted (by household) LightGBM nuisances of the
    incentive stage's estimator, units outside its overlap band trimmed, AIPW score."""
    est = config.estimator()
    t = np.asarray(t, int)
    folds = household_folds(clusters, est.folds, est.random_state)
    e, m0, m1 = np.zeros(len(y)), np.zeros(len(y)), np.zeros(len(y))
    for k in range(est.folds):
        train, test = folds != k, folds == k
        e[test] = _lgbm("classifier", est).fit(x[train], t[train]).predict_proba(x[test])[:, 1]
        m0[test] = _lgbm("regressor", est).fit(x[train & (t == 0)], y[train & (t == 0)]).predict(x[test])
        m1[test] = _lgbm("regressor", est).fit(x[train & (t == 1)], y[train & (t == 1)]).predict(x[test])
    low, high = OVERLAP_BAND
    inside = (e >= low) & (e <= high)
    if inside[t == 1].sum() < config.min_rows or inside[t == 0].sum() < config.min_rows:
        inside = np.ones(len(y), bool)  # too few left to trim: keep all, the overlap warning says so
    att, se, pseudo = att_from_nuisances(y[inside], t[inside], e[inside], m0[inside], m1[inside], clusters[inside])
    full_pseudo = np.full(len(y), np.nan)
    full_pseudo[inside] = pseudo
    return AttEstimate(att, att - Z95 * se, att + Z95 * se, se, int(t[inside].sum()), int((1 - t[inside]).sum()),
                       int((~inside).sum()), e, inside, full_pseudo)


def cate_projection(pseudo: np.ndarray, modifiers: np.ndarray, clusters: np.ndarray, at: np.ndarray):
    """Linear projection of the DR effects on the modifiers (with intercept), evaluated at
    `at`: (cate, lower, upper) with household-clustered 95 % intervals."""
    keep = ~np.isnan(pseudo)
    x = np.column_stack([np.ones(keep.sum()), modifiers[keep]])
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ x.T @ pseudo[keep]
    resid = pseudo[keep] - x @ beta
    scores = pd.DataFrame(x * resid[:, None]).groupby(np.asarray(clusters)[keep]).sum().to_numpy()
    cov = xtx_inv @ (scores.T @ scores) @ xtx_inv
    z = np.column_stack([np.ones(len(at)), at])
    cate = z @ beta
    half = Z95 * np.sqrt(np.einsum("ij,jk,ik->i", z, cov, z))
    return cate, cate - half, cate + half


# -- verdicts ---------------------------------------------------------------------------------


@dataclass
class Cell:
    campaign_type: str
    row: dict  # the incentive_summary row
    effect: AttEstimate | None = None
    rows: pd.DataFrame | None = None  # the cell's study rows

    @property
    def identified(self) -> bool:
        return self.row["verdict"] == IDENTIFIED


def verdict(att: AttEstimate, placebo: AttEstimate, bound: float, campaign_type: str) -> tuple[str, str]:
    """`identified` only when the placebo interval holds 0 and the effect is within the bound."""
    reasons = []
    if not placebo.lower <= 0 <= placebo.upper:
        reasons.append(
            f"pre-period placebo {placebo.att:,.2f} [{placebo.lower:,.2f}, {placebo.upper:,.2f}] excludes 0: the treated "
            "already differed before the campaign after adjustment, so targeting is read as effect"
        )
    if np.isnan(bound):
        reasons.append("no coupon_disc column in transactions: the plausibility bound cannot be computed")
    elif abs(att.att) > bound:
        reasons.append(
            f"effect {att.att:,.2f} exceeds the plausibility bound {bound:,.2f} (the treated's mean coupon-line "
            "spend on the group in the window)"
        )
    mailer = " It is a mailer effect on the group (type A pools cover every group), not a group-specific incentive." if campaign_type == "A" else ""
    if reasons:
        return NOT_IDENTIFIED, "; ".join(reasons) + "." + mailer
    return IDENTIFIED, ("placebo compatible with 0 and effect within the plausibility bound." + mailer)


def estimate_cells(data: pd.DataFrame, config: RetailConfig) -> list[Cell]:
    """Per campaign type: naive difference, ATT with its interval, placebo, bound and verdict."""
    cells = []
    for kind, rows in data.groupby("campaign_type", sort=True):
        rows = rows.reset_index(drop=True)
        n_t, n_c = int(rows["treated"].sum()), int((1 - rows["treated"]).sum())
        treated = rows[rows["treated"] == 1]
        row = {
            "treatment": treatment_name(kind), "effect": "total", "campaign_type": kind, "estimand": "ATT",
            "campaigns": int(rows["campaign_id"].nunique()), "n_treated": n_t, "n_control": n_c,
            "naive": float(treated["outcome"].mean() - rows.loc[rows["treated"] == 0, "outcome"].mean()) if n_t and n_c else np.nan,
            "plausibility_bound": float(treated["coupon_spend"].mean()) if n_t else np.nan,
            "redemption_rate": float((treated["redeemed"] > 0).mean()) if n_t else np.nan,
            "redemptions_per_treated": float(treated["redeemed"].mean()) if n_t else np.nan,
        }
        if n_t < config.min_rows or n_c < config.min_rows:
            row.update(ate=np.nan, ate_lower=np.nan, ate_upper=np.nan, placebo=np.nan, placebo_lower=np.nan,
                       placebo_upper=np.nan, verdict=NOT_IDENTIFIED,
                       reason=f"too few rows to estimate: {n_t} treated and {n_c} control (at least {config.min_rows} each)")
            cells.append(Cell(kind, row, None, rows))
            continue
        clusters = rows[UNIT_ID].to_numpy()
        t = rows["treated"].to_numpy()
        att = estimate_att(design(rows), rows["outcome"].to_numpy(float), t, clusters, config)
        placebo = estimate_att(design(rows, placebo=True), rows["placebo_outcome"].to_numpy(float), t, clusters, config)
        overlap = check_overlap(att.propensity, treatment_name(kind))
        decided, reason = verdict(att, placebo, row["plausibility_bound"], kind)
        if overlap.warning:
            reason += f" WARNING {overlap.warning}"
        row.update(ate=att.att, ate_lower=att.lower, ate_upper=att.upper, placebo=placebo.att,
                   placebo_lower=placebo.lower, placebo_upper=placebo.upper, verdict=decided, reason=reason,
                   n_fit_treated=att.n_treated, n_fit_control=att.n_control, trimmed=att.trimmed,
                   overlap_outside_share=round(overlap.share_outside, 4))
        cells.append(Cell(kind, row, att, rows))
    return cells


SUMMARY_COLUMNS = [
    "treatment", "effect", "ate", "ate_lower", "ate_upper", "verdict", "reason", "campaign_type", "n_treated",
    "n_control", "naive", "placebo", "placebo_lower", "placebo_upper", "plausibility_bound",
    "estimand", "campaigns", "redemption_rate", "redemptions_per_treated", "n_fit_treated", "n_fit_control",
    "trimmed", "overlap_outside_share",
]


COUNTS = ("n_treated", "n_control", "campaigns", "n_fit_treated", "n_fit_control", "trimmed")
TEXTS = ("treatment", "effect", "verdict", "reason", "campaign_type", "estimand")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """One schema for every retail summary: counts Int64, texts strings, the rest float64."""
    frame = frame.reindex(columns=SUMMARY_COLUMNS)
    return frame.astype({c: ("Int64" if c in COUNTS else object if c in TEXTS else "float64") for c in SUMMARY_COLUMNS})


def summary_table(cells: list[Cell]) -> pd.DataFrame:
    """`incentive_summary` (CONTRACTS §9, with the retail columns), one row per campaign type."""
    return _typed(pd.DataFrame([c.row for c in cells]))


def modifiers_of(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(MODIFIERS)].fillna(0.0).to_numpy(float)


def effects_table(cells: list[Cell]) -> pd.DataFrame:
    """`incentive_effects`: per (household, campaign) row of each estimated cell, the CATE of
    its campaign type, projected on the modifiers, with a household-clustered interval."""
    frames = []
    for cell in cells:
        if cell.effect is None:
            continue
        rows, clusters = cell.rows, cell.rows[UNIT_ID].to_numpy()
        cate, lo, hi = cate_projection(cell.effect.pseudo, modifiers_of(rows), clusters, modifiers_of(rows))
        frames.append(pd.DataFrame({
            UNIT_ID: rows[UNIT_ID].to_numpy(), "campaign_id": rows["campaign_id"].to_numpy(),
            "treatment": treatment_name(cell.campaign_type), "effect": "total", "cate": cate, "cate_lower": lo,
            "cate_upper": hi, "in_overlap": cell.effect.inside,
        }))
    columns = [UNIT_ID, "campaign_id", "treatment", "effect", "cate", "cate_lower", "cate_upper", "in_overlap"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def recommendations(cells: list[Cell], config: RetailConfig) -> pd.DataFrame:
    """Per household of the study (at its latest campaign start), the option of the identified
    campaign types with the highest profit at the lower 95 % bound of the household's CATE:
    margin_rate × CATE lower bound − cost_per_coupon × the cell's redemptions per treated
    household. A campaign is recommended only when it pays even then: an identified effect
    whose interval holds 0 targets nobody. Empty when no cell is identified."""
    from propensity_assets.incentives import recommender as rec

    identified = [c for c in cells if c.identified]
    if not identified:
        return pd.DataFrame(columns=[UNIT_ID, "recommended", "expected_profit"])
    stacked = pd.concat([c.rows for c in cells if c.rows is not None], ignore_index=True)
    latest = stacked.sort_values(["start_date", "campaign_id"]).groupby(UNIT_ID).tail(1).sort_values(UNIT_ID)
    at = modifiers_of(latest)
    effects, costs, names = {}, {}, []
    for cell in identified:
        name = treatment_name(cell.campaign_type)
        _, lower, _ = cate_projection(cell.effect.pseudo, modifiers_of(cell.rows), cell.rows[UNIT_ID].to_numpy(), at)
        effects[name] = config.margin_rate * lower
        costs[name] = np.full(len(latest), config.cost_per_coupon * cell.row["redemptions_per_treated"])
        names.append(name)
    out = rec.recommend(rec.option_profits(effects, costs, names))
    out.insert(0, UNIT_ID, latest[UNIT_ID].to_numpy())
    out.insert(1, "as_of", latest["start_date"].dt.date.astype(str).to_numpy())
    return out


def nothing_to_do_row(why: str) -> pd.DataFrame:
    """The summary of a study with nothing to estimate: one `not identified` row saying why."""
    return _typed(pd.DataFrame([{"treatment": "no campaign", "effect": "total", "verdict": NOT_IDENTIFIED,
                          "reason": f"nothing to do: {why}", "campaign_type": "", "n_treated": 0, "n_control": 0,
                          "estimand": "ATT", "campaigns": 0}]))
