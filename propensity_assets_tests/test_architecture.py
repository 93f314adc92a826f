"""The package's layout as rules: which room may import which, through which modules, and
what stays small. A change that breaks one shows here, in review, with the import named."""

import ast
from pathlib import Path

from propensity_assets_tests.conftest import REPO

PACKAGE = REPO / "propensity_assets"

# The rooms, each a folder with its own definitions.py; `shared` is the foundation every room
# builds on, `deploy` the launchers an operator runs.
ROOMS = {"ingest", "groups", "features", "lifecycle", "propensity", "ltv", "incentives", "profile", "audiences"}

# Which rooms a room may import (besides `shared`): a DAG from the catalogue of groups to the
# modelling stages. The profile reads what the stages declare, not the stages.
MAY_IMPORT = {
    "shared": set(),
    "deploy": set(),
    "groups": set(),
    "ingest": {"groups"},  # products are refused when the group catalogue cannot resolve them
    "features": {"groups"},
    "lifecycle": {"groups", "features"},
    "propensity": {"features", "lifecycle"},
    "ltv": {"features", "lifecycle"},
    "incentives": {"features", "lifecycle"},
    "profile": set(),
    # Audiences read the profile from the lake; the catalogue names the groups a command may ask for.
    "audiences": {"groups"},
}

# What another room may import of a room: its public modules. The rest is the room's own.
PUBLIC = {
    "groups": {"catalog", "membership", "resources"},
    # The declaration and the lookups serve every model; `logic` is the point-in-time window
    # engine the lifecycle's labels reuse, so labels and features count days the same way.
    "features": {"declaration", "lookup", "logic"},
    # The framework every modelling stage is built with.
    "lifecycle": {"stage", "config", "assets", "label_assets", "vetting", "registration", "pyfunc"},
}

MAX_LINES = 400


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield path, parts


def _imports(path: Path) -> list[tuple[int, list[str]]]:
    """(line, [room, module, ...]) for each import of a propensity_assets module."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "propensity_assets":
            base = node.module.split(".")[1:]
            names = [base + [alias.name] for alias in node.names] if len(base) == 1 else [base]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == "propensity_assets"]
        out += [(node.lineno, name) for name in names if name]
    return out


def test_rooms_import_only_the_rooms_and_public_modules_they_may():
    problems = []
    for path, parts in _modules():
        if len(parts) < 2:  # the top-level definitions.py and cli.py assemble the rooms
            continue
        room = parts[0]
        for line, target in _imports(path):
            other = target[0]
            if other == room or other == "shared":
                continue
            where = f"{path.relative_to(REPO)}:{line} imports propensity_assets.{'.'.join(target)}"
            if other not in MAY_IMPORT.get(room, set()):
                problems.append(f"{where}: {room} may not import {other}")
            elif len(target) < 2 or target[1] not in PUBLIC.get(other, set()):
                problems.append(f"{where}: not a public module of {other} ({sorted(PUBLIC.get(other, set()))})")
    assert problems == []


def test_definitions_only_merge_the_rooms():
    tree = ast.parse((PACKAGE / "definitions.py").read_text())
    ours = [node for node in tree.body if isinstance(node, ast.ImportFrom) and node.module.startswith("propensity_assets")]
    # `from propensity_assets.<room> import definitions as <room>`, for every room and shared.
    assert sorted(node.module for node in ours) == sorted(f"propensity_assets.{r}" for r in [*ROOMS, "shared"])
    assert {a.name for node in ours for a in node.names} == {"definitions"}
    # Besides imports, only the merge: one function that merges, and `defs`.
    rest = [node for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom, ast.Expr))]
    assert [type(n).__name__ for n in rest] == ["FunctionDef", "Assign"]
    assert "Definitions.merge" in ast.unparse(rest[0]) and ast.unparse(rest[1]) == "defs = _merge()"
    # Every room exports its definitions; nothing but definitions.py imports them.
    for room in [*ROOMS, "shared"]:
        assert (PACKAGE / room / "definitions.py").exists(), room
    for path, parts in _modules():
        if parts == ("definitions",):
            continue
        for line, target in _imports(path):
            assert target[-1] != "definitions", f"{path.relative_to(REPO)}:{line} imports a room's definitions"


def test_the_foundation_imports_no_room():
    for path, parts in _modules():
        if parts[0] in ("shared", "deploy"):
            for line, target in _imports(path):
                assert target[0] in ("shared", parts[0]), f"{path.relative_to(REPO)}:{line} imports propensity_assets.{'.'.join(target)}"


def test_no_package_file_is_a_god_module():
    long = {str(path.relative_to(REPO)): n for path, _ in _modules() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
