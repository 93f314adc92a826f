"""The vetting rule: a pure function of metrics, testable without MLflow.

A candidate version must (1) be evaluated on data that neither it nor the champion
was fitted on, (2) beat every baseline on every baseline metric (on the vetting metric, within a relative
tolerance the stage may allow: a model baseline such as BTYD can tie on error), and (3) be at
least as good as the champion on the selection metric, within a tolerance. It then
becomes `challenger`, and `champion` when auto-promotion is on or no champion exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHAMPION, CHALLENGER, REJECTED, REFUSED = "champion", "challenger", "rejected", "refused"


@dataclass(frozen=True)
class VettingRule:
    metric: str
    higher_is_better: bool = True
    # The candidate must reach the champion's metric minus (or plus, when lower is
    # better) this tolerance.
    tolerance: float = 0.0
    # The candidate must beat each baseline on each of these metrics; on `metric`, coming
    # within this fraction of the baseline's value is enough.
    baseline_metrics: tuple[str, ...] = ()
    baseline_tolerance: float = 0.0
    auto_promote: bool = False
    # metric → higher is better, for the baseline metrics that are not `metric`.
    directions: dict[str, bool] = field(default_factory=dict)

    def better(self, name: str, a: float, b: float) -> bool:
        """Is `a` strictly better than `b` on metric `name`?"""
        higher = self.higher_is_better if name == self.metric else self.directions.get(name, True)
        return a > b if higher else a < b

    def beats_baseline(self, name: str, candidate: float, baseline: float) -> bool:
        """Strictly better than the baseline; on the vetting metric, within `baseline_tolerance`
        of it is enough (the other baseline metrics, e.g. ranking, must be beaten)."""
        if self.better(name, candidate, baseline):
            return True
        slack = self.baseline_tolerance * abs(baseline)
        if name != self.metric or slack <= 0:
            return False
        return candidate >= baseline - slack if self.higher_is_better else candidate <= baseline + slack


@dataclass(frozen=True)
class Decision:
    decision: str  # champion | challenger | rejected | refused
    reason: str

    @property
    def promote(self) -> bool:
        return self.decision == CHAMPION

    @property
    def challenger(self) -> bool:
        return self.decision in (CHAMPION, CHALLENGER)


def fmt(value: float) -> str:
    return f"{value:.4f}"


def decide(
    rule: VettingRule,
    candidate: dict[str, float],
    baselines: dict[str, dict[str, float]],
    champion: dict[str, float] | None = None,
    champion_version: str | None = None,
    evaluated_on: str | None = None,
    champion_trained_until: str | None = None,
) -> Decision:
    """Decide what a candidate becomes.

    `evaluated_on` is the as_of of the vetting snapshot; `champion_trained_until` is
    the last as_of the champion was fitted, early-stopped or selected on. Scoring the
    champion on its own training rows would flatter it, so a vetting snapshot that is
    not later than that is refused (ISO dates compare as strings).
    """
    m = rule.metric
    if evaluated_on and champion_trained_until and evaluated_on <= champion_trained_until:
        return Decision(
            REFUSED,
            f"the vetting snapshot {evaluated_on} is not later than champion v{champion_version}'s training data "
            f"(up to {champion_trained_until}): the champion would be scored on its own training rows; train the "
            f"candidate at a later cutoff, or promote it by hand",
        )
    losses = [
        f"{base} on {name} ({fmt(candidate[name])} vs {fmt(metrics[name])})"
        for base, metrics in baselines.items()
        for name in rule.baseline_metrics
        if not rule.beats_baseline(name, candidate[name], metrics[name])
    ]
    if losses:
        within = f" (nor within {rule.baseline_tolerance:.1%} on {m})" if rule.baseline_tolerance else ""
        return Decision(REJECTED, f"does not beat the naive baseline(s){within}: " + "; ".join(losses))
    if champion is None:
        return Decision(CHAMPION, "no champion existed; first version that beats the baselines")
    slack = rule.tolerance if rule.higher_is_better else -rule.tolerance
    threshold = champion[m] - slack
    ok = candidate[m] >= threshold if rule.higher_is_better else candidate[m] <= threshold
    sign = "−" if rule.higher_is_better else "+"
    if not ok:
        cmp = "<" if rule.higher_is_better else ">"
        return Decision(
            REJECTED,
            f"{m} {fmt(candidate[m])} {cmp} champion v{champion_version} {fmt(champion[m])} {sign} {rule.tolerance}",
        )
    cmp = "≥" if rule.higher_is_better else "≤"
    reason = f"{m} {fmt(candidate[m])} {cmp} champion v{champion_version} {fmt(champion[m])} {sign} {rule.tolerance}"
    if rule.auto_promote:
        return Decision(CHAMPION, f"auto-promoted: {reason}")
    return Decision(CHALLENGER, reason)
