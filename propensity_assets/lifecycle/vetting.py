"""The vetting rule: a pure function of metrics, testable without MLflow.

A candidate version must (1) be evaluated on data that neither it nor the champion
was fitted on, (2) beat every baseline on every baseline metric (on the vetting metric, a
stage may instead require only that the candidate is not worse with confidence: a model
baseline such as BTYD can tie on error), and (3) be at least as good as the champion on the
selection metric, within a tolerance. It then becomes `challenger`, and `champion` when
auto-promotion is on or no champion exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

CHAMPION, CHALLENGER, REJECTED, REFUSED = "champion", "challenger", "rejected", "refused"


@dataclass(frozen=True)
class VettingRule:
    metric: str
    higher_is_better: bool = True
    # The candidate must reach the champion's metric minus (or plus, when lower is
    # better) this tolerance.
    tolerance: float = 0.0
    # The candidate must beat each baseline on each of these metrics. On `metric`, when
    # `baseline_confidence` > 0, a loss counts only if a paired bootstrap over the vetting
    # snapshot's rows finds the candidate worse with that confidence (a tie is not a loss).
    baseline_metrics: tuple[str, ...] = ()
    baseline_confidence: float = 0.0
    auto_promote: bool = False
    # metric → higher is better, for the baseline metrics that are not `metric`.
    directions: dict[str, bool] = field(default_factory=dict)

    def better(self, name: str, a: float, b: float) -> bool:
        """Is `a` strictly better than `b` on metric `name`?"""
        higher = self.higher_is_better if name == self.metric else self.directions.get(name, True)
        return a > b if higher else a < b


def probability_worse(
    y: np.ndarray,
    candidate: np.ndarray,
    baseline: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    higher_is_better: bool,
    resamples: int = 1000,
    seed: int = 0,
) -> float:
    """Paired bootstrap over rows: the share of resamples (the same rows for both) on which
    the candidate's `metric` is strictly worse than the baseline's."""
    y, candidate, baseline = (np.asarray(a, dtype="float64") for a in (y, candidate, baseline))
    rng = np.random.default_rng(seed)
    worse = 0
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        a, b = metric(y[rows], candidate[rows]), metric(y[rows], baseline[rows])
        worse += bool(a < b if higher_is_better else a > b)
    return worse / resamples


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
    p_worse: dict[str, float] | None = None,
) -> Decision:
    """Decide what a candidate becomes.

    `evaluated_on` is the as_of of the vetting snapshot; `champion_trained_until` is
    the last as_of the champion was fitted, early-stopped or selected on. Scoring the
    champion on its own training rows would flatter it, so a vetting snapshot that is
    not later than that is refused (ISO dates compare as strings). `p_worse` maps a
    baseline to the bootstrap probability that the candidate is worse on the vetting metric.
    """
    p_worse = p_worse or {}
    m = rule.metric
    if evaluated_on and champion_trained_until and evaluated_on <= champion_trained_until:
        return Decision(
            REFUSED,
            f"the vetting snapshot {evaluated_on} is not later than champion v{champion_version}'s training data "
            f"(up to {champion_trained_until}): the champion would be scored on its own training rows; train the "
            f"candidate at a later cutoff, or promote it by hand",
        )
    losses, ties = [], []
    for base, metrics in baselines.items():
        for name in rule.baseline_metrics:
            if rule.better(name, candidate[name], metrics[name]):
                continue
            detail = f"{base} on {name} ({fmt(candidate[name])} vs {fmt(metrics[name])}"
            tested = name == m and rule.baseline_confidence > 0 and base in p_worse
            if tested and p_worse[base] < rule.baseline_confidence:
                ties.append(f"{detail}, worse with probability {p_worse[base]:.3f} < {rule.baseline_confidence})")
            else:
                losses.append(detail + (f", worse with probability {p_worse[base]:.3f} ≥ {rule.baseline_confidence})"
                                        if tested else ")"))
    if losses:
        return Decision(REJECTED, "does not beat the naive baseline(s): " + "; ".join(losses))
    tied = f" (a tie with {'; '.join(ties)})" if ties else ""
    if champion is None:
        return Decision(CHAMPION, f"no champion existed; first version that beats the baselines{tied}")
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
    reason = f"{m} {fmt(candidate[m])} {cmp} champion v{champion_version} {fmt(champion[m])} {sign} {rule.tolerance}{tied}"
    if rule.auto_promote:
        return Decision(CHAMPION, f"auto-promoted: {reason}")
    return Decision(CHALLENGER, reason)
