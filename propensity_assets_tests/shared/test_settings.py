"""`shared/settings.py` is the only module that reads the environment: every other module
asks it, so each variable is documented, defaulted and checked in one place."""

import ast
from pathlib import Path

import propensity_assets

PACKAGE = Path(propensity_assets.__file__).resolve().parent
SETTINGS = "shared/settings.py"

# (module, enclosing function): why it may read the environment itself. Each must still
# read it: a stale entry fails too.
ALLOWED_READS = {
    ("deploy/spark_connect.py", "server_environment"):
        "the Spark Connect server process inherits this process's environment, amended",
    ("deploy/spark_connect.py", "main"):
        "the wrapped command inherits this process's environment, with SPARK_REMOTE added",
    ("deploy/spark_cluster.py", "start"):
        "the Spark master and worker processes inherit this process's environment, amended",
    ("lifecycle/sensors.py", "fail_fast_http"):
        "sets MLflow's HTTP variables for one sensor tick where the deployment has not set its own",
}

# Uses of the environment that only change it (for this process's libraries or its children).
_WRITING_METHODS = {"pop", "update", "__setitem__", "__delitem__"}


def _environment_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, enclosing function) of each read of os.environ / os.getenv / environ."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def function_of(node: ast.AST) -> str:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node.name
        return "<module>"

    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {alias.name for alias in node.names}
            if names & {"environ", "environb", "getenv", "getenvb"}:
                reads.append((node.lineno, function_of(node)))
            continue
        is_os = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"
        if not (is_os and node.attr in {"environ", "environb", "getenv", "getenvb"}):
            continue
        parent = parents.get(node)
        if node.attr.startswith("environ"):
            if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, (ast.Store, ast.Del)):
                continue  # os.environ[key] = value / del os.environ[key]
            if isinstance(parent, ast.Attribute) and parent.attr in _WRITING_METHODS:
                continue  # os.environ.pop(...), os.environ.update(...)
        reads.append((node.lineno, function_of(node)))
    return reads


def test_only_settings_reads_the_environment():
    found, unexpected = set(), []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module == SETTINGS:
            continue
        for line, function in _environment_reads(ast.parse(path.read_text(), str(path))):
            if (module, function) in ALLOWED_READS:
                found.add((module, function))
            else:
                unexpected.append(f"propensity_assets/{module}:{line} (in {function})")
    assert unexpected == [], (
        "read the environment through a function of propensity_assets/shared/settings.py: " + ", ".join(unexpected)
    )
    assert found == set(ALLOWED_READS), f"no longer read there, drop from ALLOWED_READS: {set(ALLOWED_READS) - found}"


def test_the_check_sees_reads_and_lets_writes_pass():
    source = (
        "import os\n"
        "from os import getenv\n"
        "A = os.environ.get('A')\n"
        "def f():\n"
        "    os.environ['B'] = '1'\n"
        "    os.environ.pop('B', None)\n"
        "    del os.environ['C']\n"
        "    return os.getenv('D'), os.environ['E'], {**os.environ}, 'F' in os.environ\n"
        "def g():\n"
        "    return os.environ.setdefault('G', '1')\n"
    )
    assert _environment_reads(ast.parse(source)) == [
        (2, "<module>"), (3, "<module>"), (8, "f"), (8, "f"), (8, "f"), (8, "f"), (10, "g"),
    ]
