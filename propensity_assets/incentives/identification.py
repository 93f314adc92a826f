"""Identification: the adjustment set of each treatment × effect, derived by DoWhy from the graph.

Pure logic. DoWhy's identifier works on a given graph; we use its maximal valid
back-door set (not the minimal one) because adjusting for every non-descendant cause
of the outcome lowers the variance of the DML estimate without adding bias.

- total effect: DoWhy's `nonparametric-ate` back-door set. DoWhy removes the
  descendants of the treatment from the candidates, so neither the mediator nor the
  collider (a descendant of the outcome) can enter.
- direct effect: DoWhy's `nonparametric-cde` (controlled direct effect) adjustment
  set, which removes only the descendants of the outcome and must block the mediated
  path, so it contains the mediator. We then *check* that the study's declared
  mediators of the treatment are in the set (a direct effect holds the mediator fixed,
  so it must be adjusted for); if the graph lacks the mediator edge, the declared mediator is
  added and a note says so. A collider is never added.

The effect modifiers X of the estimator are the study's covariates that are not
descendants of the treatment in the graph (pre-treatment account attributes): the CATE
may vary with them, and adjusting for them is valid. The controls W are the rest of
the adjustment set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import networkx as nx


@dataclass(frozen=True)
class Identification:
    treatment: str
    effect: str
    adjustment: tuple[str, ...]  # the full adjustment set
    modifiers: tuple[str, ...]  # X
    controls: tuple[str, ...]  # W = adjustment − X
    identified: bool
    reason: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    # False: the graph has no path treatment → outcome, so it says the effect is 0. The effect is
    # still estimated (with the edge added) to test that claim, but its verdict is never `identified`.
    graph_path: bool = True


def backdoor_set(graph: nx.DiGraph, treatment: str, outcome: str, effect: str) -> list[str] | None:
    """DoWhy's maximal adjustment set for a total (ATE) or direct (CDE) effect; None if not identified."""
    from dowhy.causal_identifier.auto_identifier import (
        BackdoorAdjustment,
        EstimandType,
        identify_effect_auto,
    )

    estimand_type = EstimandType.NONPARAMETRIC_ATE if effect == "total" else EstimandType.NONPARAMETRIC_CDE
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    estimand = identify_effect_auto(
        graph, [treatment], [outcome], list(graph.nodes), estimand_type,
        backdoor_adjustment=BackdoorAdjustment.BACKDOOR_MAX,
    )
    variables = (estimand.backdoor_variables or {}).get("backdoor")
    if variables is None:
        return None
    return sorted(variables, key=list(graph.nodes).index)


def identify(graph: nx.DiGraph, study, treatment: str, effect: str) -> Identification:
    """The adjustment set for `treatment`'s `effect` on the study's outcome in `graph`."""
    outcome = study.outcome
    notes: list[str] = []
    g = graph.copy()
    graph_path = nx.has_path(g, treatment, outcome)
    if not graph_path:
        # The graph says the effect is zero. Estimate it anyway, adjusting as if the edge
        # existed: that tests the graph's claim instead of assuming it.
        g.add_edge(treatment, outcome)
        notes.append(f"the graph has no path {treatment} → {outcome} (effect 0 by the graph); "
                     f"estimated with the edge added, to test that")
    mediators = study.mediators_of(treatment)
    if effect == "direct":
        for m in mediators:
            if not (g.has_edge(treatment, m) and nx.has_path(g, m, outcome)):
                g.add_edge(treatment, m)
                g.add_edge(m, outcome)
                notes.append(f"declared mediator {m} is not on a path {treatment} → {m} → {outcome} in the graph; added")
    adjustment = backdoor_set(g, treatment, outcome, effect)
    if adjustment is None:
        return Identification(treatment, effect, (), (), (), False, "no valid adjustment set in the graph", tuple(notes),
                              graph_path)
    if effect == "direct":
        missing = [m for m in mediators if m not in adjustment]
        if missing:
            return Identification(
                treatment, effect, tuple(adjustment), (), (), False,
                f"the direct-effect adjustment set {adjustment} lacks the mediator(s) {missing}", tuple(notes), graph_path,
            )
    descendants = nx.descendants(g, treatment)
    modifiers = tuple(c for c in study.covariates if c not in descendants)
    controls = tuple(v for v in adjustment if v not in modifiers)
    bad = [v for v in controls if v in study.other]
    if bad:  # a declared post-outcome variable in the set means the graph is wrong
        return Identification(treatment, effect, tuple(adjustment), modifiers, controls, False,
                              f"adjustment set contains {bad}, declared as not adjustable", tuple(notes), graph_path)
    reason = (f"back-door set of the corrected graph ({'maximal, DoWhy nonparametric-ate' if effect == 'total' else 'DoWhy nonparametric-cde, mediator included'})")
    return Identification(treatment, effect, tuple(dict.fromkeys([*modifiers, *adjustment])), modifiers, controls, True, reason,
                          tuple(notes), graph_path)
