"""Who to target for a campaign: selection rules over one product group's profile columns.

Pure pandas: the asset and the `audience` command both call `select_audience` on the
profile's columns for the group (`propensity__<g>`, `propensity_decile__<g>`, `ltv__<g>`,
`incentive__<g>`). A rule is one of

- `top` k: the k households with the highest score;
- `deciles` N: the households in score deciles 1..N (1 = the top 10 %);
- `threshold` P: the households whose score is above P;
- `min_expected_value` C: the households whose expected value, score × LTV, is above C
  (the cost of contacting one: the campaign pays for them in expectation);

optionally restricted first to the households whose recommended incentive is a given
option. Ranks are by the rule's measure (expected value for `min_expected_value`, else the
score), highest first, ties by household_id ascending, so an audience is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

# The audiences table's columns (CONTRACTS §5), besides its partition columns.
COLUMNS = ["household_id", "rank", "score", "score_decile", "ltv", "expected_value", "incentive", "rule"]
RULES = ("top", "deciles", "threshold", "min_expected_value")


class AudienceError(ValueError):
    """A rule or a request that cannot make an audience; the message says what to change."""


@dataclass(frozen=True)
class AudienceRule:
    kind: str  # one of RULES
    value: float
    incentive: str | None = None

    def __str__(self) -> str:
        """The rule as the audience's `rule` column and the UI show it: `top 500 by score`."""
        texts = {"top": "top {:.0f} by score", "deciles": "score deciles 1-{:.0f}", "threshold": "score > {:g}",
                 "min_expected_value": "score × ltv > {:g}"}
        text = texts[self.kind].format(self.value)
        return text + (f", incentive = {self.incentive}" if self.incentive is not None else "")


def rule_from(
    top: int | None = None,
    deciles: int | None = None,
    threshold: float | None = None,
    min_expected_value: float | None = None,
    incentive: str | None = None,
) -> AudienceRule:
    """The one rule given, checked; AudienceError names the setting and what it must be."""
    given = {name: value for name, value in zip(RULES, (top, deciles, threshold, min_expected_value)) if value is not None}
    if len(given) != 1:
        chosen = ", ".join(f"{name}={value}" for name, value in given.items())
        raise AudienceError(
            f"give exactly one audience rule of {', '.join(RULES)}; " + (f"got {len(given)}: {chosen}" if given else "got none")
        )
    (kind, value), = given.items()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
        raise AudienceError(f"audience rule {kind}={value!r}: expected a finite number")
    if kind == "top" and (value != int(value) or value < 1):
        raise AudienceError(f"audience rule top={value}: expected a whole number of households ≥ 1")
    if kind == "deciles" and (value != int(value) or not 1 <= value <= 10):
        raise AudienceError(f"audience rule deciles={value}: expected a whole number from 1 to 10 (1 = the top 10 %)")
    if kind == "threshold" and not 0 <= value <= 1:
        raise AudienceError(f"audience rule threshold={value}: expected a propensity in [0, 1]")
    if kind == "min_expected_value" and value < 0:
        raise AudienceError(f"audience rule min_expected_value={value}: expected a cost ≥ 0")
    if incentive is not None and not str(incentive).strip():
        raise AudienceError("audience incentive filter: expected an option such as `none` or a campaign type, not an empty text")
    return AudienceRule(kind, float(value), incentive)


def select_audience(profile: pd.DataFrame, group: str, rule: AudienceRule, where: str = "the profile") -> pd.DataFrame:
    """The audience of `group` under `rule` from a profile frame (one row per household),
    with COLUMNS, ranked from 1. `where` names the profile in errors (table and as_of)."""
    score, decile, ltv, incentive = (f"{p}__{group}" for p in ("propensity", "propensity_decile", "ltv", "incentive"))
    if score not in profile.columns:
        scored = sorted(c.split("__", 1)[1] for c in profile.columns if c.startswith("propensity__"))
        raise AudienceError(
            f"{where} has no column {score}: product group {group!r} has no propensity scores there "
            f"(groups scored: {', '.join(scored) or 'none'})"
        )
    if rule.kind == "min_expected_value" and ltv not in profile.columns:
        raise AudienceError(f"{where} has no column {ltv}: the min_expected_value rule needs the group's LTV scores")
    scored = profile[profile[score].notna()]
    frame = pd.DataFrame({
        "household_id": scored["household_id"].astype("int64"),
        "score": scored[score].astype(float),
        "score_decile": scored[decile].astype("Int32") if decile in scored else pd.array([pd.NA] * len(scored), "Int32"),
        "ltv": scored[ltv].astype(float) if ltv in scored else np.nan,
        "incentive": scored[incentive].astype(object) if incentive in scored else None,
    })
    frame["expected_value"] = frame["score"] * frame["ltv"]
    if rule.incentive is not None:
        if incentive not in profile.columns:
            raise AudienceError(
                f"{where} has no column {incentive}: the retail campaign study of {group!r} has not run, so no "
                "household has a recommended incentive (materialize retail_recommendations, then customer_profile)"
            )
        options = sorted(frame["incentive"].dropna().astype(str).unique())
        if rule.incentive not in options:
            raise AudienceError(
                f"incentive {rule.incentive!r} is recommended to no household of {group!r} in {where}; "
                f"recommended there: {', '.join(options) or 'none'}"
            )
        frame = frame[frame["incentive"] == rule.incentive]
    measure = "expected_value" if rule.kind == "min_expected_value" else "score"
    frame = frame.sort_values([measure, "household_id"], ascending=[False, True], na_position="last", kind="mergesort")
    if rule.kind == "top":
        frame = frame.head(int(rule.value))
    elif rule.kind == "deciles":
        frame = frame[frame["score_decile"].fillna(11) <= rule.value]
    elif rule.kind == "threshold":
        frame = frame[frame["score"] > rule.value]
    else:
        frame = frame[frame["expected_value"] > rule.value]
    frame = frame.reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1, dtype="int64")
    frame["rule"] = str(rule)
    return frame[COLUMNS]
