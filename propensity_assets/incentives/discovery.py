"""Causal discovery: causal-learn's PC with the study's background knowledge.

Pure logic. PC runs twice, without and with the knowledge (tiers, required and
forbidden edges), so the report shows how much the knowledge contributes. The graph
used downstream is the knowledge-guided PC graph *corrected* by the knowledge into a
DAG: forbidden edges and edges against the tiers removed or reversed, undirected edges
oriented by tier (then by catalogue order), required edges added. Every correction is
listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd

# An edge as PC reports it: (a, b, "->") or (a, b, "--") or (a, b, "<->").
Edge = tuple[str, str, str]


@dataclass
class DiscoveryResult:
    variables: list[str]
    pc_plain: list[Edge]  # PC without knowledge
    pc_knowledge: list[Edge]  # PC with tiers / required / forbidden
    graph: nx.DiGraph  # the corrected DAG used downstream
    corrections: list[str] = field(default_factory=list)
    shd: dict[str, int] = field(default_factory=dict)  # to the expected graph, when declared

    def edge_table(self) -> pd.DataFrame:
        return pd.DataFrame(sorted(self.graph.edges()), columns=["source", "target"])


def _edges_from_pc(cg, names: list[str]) -> list[Edge]:
    g = cg.G.graph
    edges: list[Edge] = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = g[i, j], g[j, i]
            if a == 0 and b == 0:
                continue
            if a == -1 and b == 1:
                edges.append((names[i], names[j], "->"))
            elif a == 1 and b == -1:
                edges.append((names[j], names[i], "->"))
            elif a == -1 and b == -1:
                edges.append((names[i], names[j], "--"))
            else:
                edges.append((names[i], names[j], "<->"))
    return edges


def run_pc(data: pd.DataFrame, variables: list[str], alpha: float = 0.01, tiers=(), required=(), forbidden=()) -> list[Edge]:
    """PC (Fisher-z) over `variables`, with optional background knowledge."""
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.search.ConstraintBased.PC import pc
    from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

    x = data[variables].to_numpy(float)
    # Standardize; heavy-tailed spend columns otherwise dominate the correlation matrix's conditioning.
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    bk = None
    if tiers or required or forbidden:
        bk = BackgroundKnowledge()
        for level, tier in enumerate(tiers):
            for name in tier:
                bk.add_node_to_tier(GraphNode(name), level)
        for a, b in required:
            bk.add_required_by_node(GraphNode(a), GraphNode(b))
        for a, b in forbidden:
            bk.add_forbidden_by_node(GraphNode(a), GraphNode(b))
    cg = pc(x, alpha, background_knowledge=bk, show_progress=False, node_names=list(variables))
    return _edges_from_pc(cg, list(variables))


def correct(edges: list[Edge], variables: list[str], tiers=(), required=(), forbidden=()) -> tuple[nx.DiGraph, list[str]]:
    """Turn a PC graph into a DAG consistent with the knowledge; list every change."""
    tier_of = {name: level for level, tier in enumerate(tiers) for name in tier}
    order = {name: k for k, name in enumerate(variables)}
    forbidden = set(map(tuple, forbidden))
    dag = nx.DiGraph()
    dag.add_nodes_from(variables)
    notes: list[str] = []

    def allowed(a: str, b: str) -> bool:
        if (a, b) in forbidden:
            return False
        return not (a in tier_of and b in tier_of and tier_of[a] > tier_of[b])

    for a, b, kind in edges:
        if kind == "->":
            if allowed(a, b):
                dag.add_edge(a, b)
            elif allowed(b, a) and (b, a) not in forbidden:
                dag.add_edge(b, a)
                notes.append(f"reversed {a} → {b} (against the tiers or forbidden) to {b} → {a}")
            else:
                notes.append(f"removed {a} → {b} (forbidden both ways)")
            continue
        # undirected or bidirected: orient by tier, then by catalogue order
        first, second = (a, b) if (tier_of.get(a, 0), order[a]) <= (tier_of.get(b, 0), order[b]) else (b, a)
        if allowed(first, second):
            dag.add_edge(first, second)
            why = "by tier" if tier_of.get(first, 0) != tier_of.get(second, 0) else "by catalogue order (same tier)"
            notes.append(f"oriented {a} {kind} {b} as {first} → {second} {why}")
        elif allowed(second, first):
            dag.add_edge(second, first)
            notes.append(f"oriented {a} {kind} {b} as {second} → {first} (the other way is forbidden)")
        else:
            notes.append(f"removed {a} {kind} {b} (forbidden both ways)")
    for a, b in required:
        if dag.has_edge(b, a):
            dag.remove_edge(b, a)
            notes.append(f"reversed {b} → {a}: {a} → {b} is required")
        if not dag.has_edge(a, b):
            dag.add_edge(a, b)
            notes.append(f"added required {a} → {b}")
    while not nx.is_directed_acyclic_graph(dag):
        cycle = nx.find_cycle(dag)
        a, b = next(((u, v) for u, v in cycle if (u, v) not in set(map(tuple, required))), cycle[0])
        dag.remove_edge(a, b)
        notes.append(f"removed {a} → {b} to break the cycle {' → '.join(u for u, _ in cycle)}")
    return dag, notes


def shd(edges: list[Edge] | nx.DiGraph, expected: list[tuple[str, str]]) -> int:
    """Structural Hamming distance: node pairs whose edge is missing, extra, reversed or undirected."""
    if isinstance(edges, nx.DiGraph):
        edges = [(a, b, "->") for a, b in edges.edges()]
    found = {frozenset((a, b)): (a, b, kind) for a, b, kind in edges}
    want = {frozenset(e): tuple(e) for e in expected}
    distance = 0
    for pair in set(found) | set(want):
        if pair not in found or pair not in want:
            distance += 1
            continue
        a, b, kind = found[pair]
        if kind != "->" or (a, b) != want[pair]:
            distance += 1
    return distance


def discover(data: pd.DataFrame, study, alpha: float = 0.01) -> DiscoveryResult:
    """Run PC with and without the study's knowledge, correct it, and compare to the expected graph."""
    variables = study.variables
    plain = run_pc(data, variables, alpha)
    guided = run_pc(data, variables, alpha, study.tiers, study.required, study.forbidden)
    dag, notes = correct(guided, variables, study.tiers, study.required, study.forbidden)
    result = DiscoveryResult(variables, plain, guided, dag, notes)
    if study.expected_graph is not None:
        result.shd = {
            "pc_without_knowledge": shd(plain, study.expected_graph),
            "pc_with_knowledge": shd(guided, study.expected_graph),
            "corrected": shd(dag, study.expected_graph),
        }
    return result


def plot_graph(dag: nx.DiGraph, tiers, path: str, title: str = "", highlight: set[str] | None = None) -> str:
    """A layered drawing of the DAG (one column per tier) saved as PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tier_of = {n: k for k, tier in enumerate(tiers) for n in tier}
    layers: dict[int, list[str]] = {}
    for node in dag.nodes:
        layers.setdefault(tier_of.get(node, len(tiers)), []).append(node)
    pos = {}
    for level, nodes in layers.items():
        for k, node in enumerate(nodes):
            pos[node] = (level * 3.0, -k + (len(nodes) - 1) / 2)
    fig, ax = plt.subplots(figsize=(14, 7))
    try:
        colors = ["#f4a261" if highlight and n in highlight else "#a8dadc" for n in dag.nodes]
        nx.draw_networkx(
            dag, pos, ax=ax, node_color=colors, node_size=2200, font_size=7, arrowsize=14,
            edge_color="#555555", connectionstyle="arc3,rad=0.08",
        )
        ax.set_title(title)
        ax.axis("off")
        fig.tight_layout()
        fig.savefig(path, dpi=90)
    finally:
        plt.close(fig)
    return path
