"""The incentive recommenders' vetting rule: a pure function of policy values.

A recommender is a policy (an option per unit). Its value is the mean profit per unit
it earns: for a catalogue study, the doubly robust policy value (`dr_policy_value`); for
a retail study, the profit at the lower 95 % bound of the CATE (`lower_bound_profit`).
The lifecycle's rule (`lifecycle.vetting.decide`) then applies with that one metric: beat
every baseline policy, and be at least as good as the champion's policy valued on the
same data. A failed refutation of the study's effects blocks promotion whatever the values.
"""

from __future__ import annotations

import json

from propensity_assets.lifecycle.vetting import REJECTED, Decision, VettingRule, decide

RECOMMENDED = "recommended"
DR_POLICY_VALUE = "dr_policy_value"
LOWER_BOUND_PROFIT = "lower_bound_profit"


def policy_decision(
    metric: str,
    candidate: float,
    baselines: dict[str, float],
    champion_value: float | None,
    champion_version: str | None,
    failed_refutations: list[str],
    auto_promote: bool,
) -> Decision:
    """The shared vetting rule on policy values, then the refutation gate."""
    rule = VettingRule(metric=metric, baseline_metrics=(metric,), auto_promote=auto_promote)
    champion = None if champion_value is None else {metric: champion_value}
    decision = decide(rule, {metric: candidate}, {p: {metric: v} for p, v in baselines.items()}, champion, champion_version)
    if decision.challenger and failed_refutations:
        decision = Decision(REJECTED, f"refutation(s) failed, promotion blocked: {', '.join(failed_refutations)} "
                                      f"(vetting alone said: {decision.decision}, {decision.reason})")
    return decision


def policy_tags(metric: str, candidate: float, baselines: dict[str, float], decision: Decision) -> dict[str, str]:
    """What the vetting leaves on the model version's tags."""
    return {
        "vetting.decision": decision.decision,
        "vetting.reason": decision.reason[:5000],
        f"vetting.{metric}": f"{candidate:.2f}",
        "vetting.baselines": json.dumps({k: round(v, 2) for k, v in baselines.items()})[:5000],
    }
