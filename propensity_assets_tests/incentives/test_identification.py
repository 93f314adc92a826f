"""Identification on hand-made graphs: the collider never, the mediator only for direct effects."""

import networkx as nx
import pytest

from propensity_assets.incentives.catalog import Study, Treatment
from propensity_assets.incentives.identification import identify


def _study(**kw) -> Study:
    base = dict(key="toy", description="", outcome="Y", treatments=(Treatment("T", "0"),), covariates=("C",),
                mediators={"M": ("T",)}, other=("S",), effects={"T": ("total", "direct")})
    base.update(kw)
    return Study(**base)


@pytest.fixture
def graph():
    # C confounds T and Y; T → M → Y; T → Y; Y → S ← T (S a collider); Z → Y only (a precision variable)
    return nx.DiGraph([("C", "T"), ("C", "Y"), ("T", "M"), ("M", "Y"), ("T", "Y"), ("Y", "S"), ("T", "S"), ("Z", "Y")])


def test_total_effect_adjusts_for_confounders_not_mediator_or_collider(graph):
    ident = identify(graph, _study(covariates=("C",)), "T", "total")
    assert ident.identified
    assert "C" in ident.adjustment
    assert "M" not in ident.adjustment and "S" not in ident.adjustment


def test_direct_effect_adds_the_mediator_never_the_collider(graph):
    ident = identify(graph, _study(), "T", "direct")
    assert ident.identified
    assert {"C", "M"} <= set(ident.adjustment)
    assert "S" not in ident.adjustment
    assert "M" in ident.controls  # not an effect modifier: it is post-treatment


def test_descendant_of_treatment_is_not_an_effect_modifier(graph):
    g = graph.copy()
    g.add_edge("T", "D")
    g.add_edge("D", "Y")
    ident = identify(g, _study(covariates=("C", "D")), "T", "total")
    assert "D" not in ident.modifiers and "D" not in ident.adjustment


def test_declared_mediator_is_added_when_the_graph_misses_it():
    g = nx.DiGraph([("C", "T"), ("C", "Y"), ("T", "Y"), ("M", "Y")])
    ident = identify(g, _study(), "T", "direct")
    assert "M" in ident.adjustment
    assert any("declared mediator M" in n for n in ident.notes)


def test_no_path_is_estimated_and_noted():
    g = nx.DiGraph([("C", "T"), ("C", "Y"), ("T", "S"), ("Y", "S")])
    ident = identify(g, _study(mediators={}), "T", "total")
    assert ident.identified and "C" in ident.adjustment and "S" not in ident.adjustment
    assert "no path T → Y" in ident.notes[0]
