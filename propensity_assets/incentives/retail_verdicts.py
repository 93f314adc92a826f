"""The verdict of each campaign type of a retail study, and the §9 tables it fills (INCENTIVES.md §2).

A (group, campaign type) cell is `identified` only when its pre-period placebo is
compatible with 0 and its effect is within what the treated's coupon-line spend makes
plausible; otherwise `not identified`, with the reason. Pure numpy and pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from propensity_assets.incentives.estimation import check_overlap
from propensity_assets.incentives.retail_estimation import MODIFIERS, AttEstimate, cate_projection, estimate_att, modifiers_of
from propensity_assets.incentives.retail_study import UNIT_ID, RetailConfig, design, treatment_name

IDENTIFIED, NOT_IDENTIFIED = "identified", "not identified"


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
        share = 1 - att.trimmed / len(rows)  # the rows the ATT averages over: those inside overlap
        if att.trimmed and decided == IDENTIFIED:
            reason = f"identified on the {share * 100:.0f} % of rows inside overlap; " + reason
        if overlap.warning:
            reason += f" WARNING {overlap.warning}"
        row.update(ate=att.att, ate_lower=att.lower, ate_upper=att.upper, placebo=placebo.att,
                   placebo_lower=placebo.lower, placebo_upper=placebo.upper, verdict=decided, reason=reason,
                   n_fit_treated=att.n_treated, n_fit_control=att.n_control, trimmed=att.trimmed,
                   population="overlap" if att.trimmed else "all", population_share=share,
                   specification=f"linear projection of the doubly robust effects on {', '.join(MODIFIERS)}",
                   overlap_outside_share=round(overlap.share_outside, 4))
        cells.append(Cell(kind, row, att, rows))
    return cells


SUMMARY_COLUMNS = [
    "treatment", "effect", "ate", "ate_lower", "ate_upper", "verdict", "reason", "campaign_type", "n_treated",
    "n_control", "naive", "placebo", "placebo_lower", "placebo_upper", "plausibility_bound",
    "estimand", "campaigns", "redemption_rate", "redemptions_per_treated", "n_fit_treated", "n_fit_control",
    "trimmed", "overlap_outside_share", "population", "population_share", "specification",
]


COUNTS = ("n_treated", "n_control", "campaigns", "n_fit_treated", "n_fit_control", "trimmed")
TEXTS = ("treatment", "effect", "verdict", "reason", "campaign_type", "estimand", "population", "specification")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """One schema for every retail summary: counts Int64, texts strings, the rest float64."""
    frame = frame.reindex(columns=SUMMARY_COLUMNS)
    return frame.astype({c: ("Int64" if c in COUNTS else object if c in TEXTS else "float64") for c in SUMMARY_COLUMNS})


def summary_table(cells: list[Cell]) -> pd.DataFrame:
    """`incentive_summary` (CONTRACTS §9, with the retail columns), one row per campaign type."""
    return _typed(pd.DataFrame([c.row for c in cells]))


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


NO_CAMPAIGN = "no campaign"  # the treatment of a summary with nothing to estimate


def nothing_to_do_row(why: str) -> pd.DataFrame:
    """The summary of a study with nothing to estimate: one `not identified` row saying why."""
    return _typed(pd.DataFrame([{"treatment": NO_CAMPAIGN, "effect": "total", "verdict": NOT_IDENTIFIED,
                          "reason": f"nothing to do: {why}", "campaign_type": "", "n_treated": 0, "n_control": 0,
                          "estimand": "ATT", "campaigns": 0}]))
