"""Discovery: PC with knowledge, corrections listed, SHD."""

import networkx as nx

from propensity_assets.incentives.discovery import correct, discover, plot_graph, shd
from propensity_assets.incentives.generator import GeneratorConfig, generate_software_company


def test_correct_applies_tiers_forbidden_and_required():
    edges = [("B", "A", "->"), ("A", "C", "--"), ("C", "D", "->"), ("A", "D", "->")]
    dag, notes = correct(edges, ["A", "B", "C", "D"], tiers=(("A", "B"), ("C",), ("D",)), required=(("B", "D"),),
                         forbidden=(("A", "D"),))
    assert set(dag.edges()) == {("B", "A"), ("A", "C"), ("C", "D"), ("B", "D")}
    assert any("oriented A -- C as A → C by tier" in n for n in notes)
    assert any("removed A → D" in n for n in notes)
    assert any("added required B → D" in n for n in notes)


def test_shd_counts_missing_extra_reversed_and_undirected():
    expected = [("A", "B"), ("B", "C"), ("C", "D")]
    assert shd([("A", "B", "->"), ("B", "C", "->"), ("C", "D", "->")], expected) == 0
    assert shd([("B", "A", "->"), ("B", "C", "--"), ("A", "D", "->")], expected) == 4


def test_discovery_on_the_software_study(software_study, tmp_path):
    data = generate_software_company(GeneratorConfig(n=3000, seed=2))
    result = discover(data, software_study)
    assert nx.is_directed_acyclic_graph(result.graph)
    for a, b in software_study.required:
        assert result.graph.has_edge(a, b)
    for a, b in software_study.forbidden:
        assert not result.graph.has_edge(a, b)
    assert result.shd["corrected"] <= result.shd["pc_without_knowledge"]
    png = plot_graph(result.graph, software_study.tiers, str(tmp_path / "g.png"), "t")
    assert (tmp_path / "g.png").stat().st_size > 1000 and png.endswith(".png")
