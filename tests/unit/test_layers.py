"""The layers, read from the source: the CLI imports pipelines; pipelines import models; models
import nothing of pipelines but its base layer; nothing below the CLI imports the CLI; the base
layer imports nothing above it; and no module takes part in an import cycle (imports inside
functions count, `if TYPE_CHECKING:` ones do not)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import REPOSITORY

ROOT = REPOSITORY  # the repository root
PACKAGES = {"speakembed_cli": "speakembed", "pipelines": "speakembed.pipelines", "models": "speakembed.models"}
CLI_PREFIXES = ("speakembed.main", "speakembed.commands", "speakembed.console")


def _module_name(path: Path) -> str:
    folder = path.relative_to(ROOT).parts[0]
    parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGES[folder], *parts])


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported(tree: ast.AST) -> set[str]:
    """Every speakembed module named by an import anywhere in `tree` (`from pkg import name` counts
    as pkg.name, which is a module or a name inside pkg; both are checked)."""
    names: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if _is_type_checking_block(node):
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return {name for name in names if name == "speakembed" or name.startswith("speakembed.")}


def _graph() -> dict[str, set[str]]:
    sources = [path for folder in PACKAGES for path in (ROOT / folder).rglob("*.py")]
    modules = {_module_name(path): path for path in sources}
    graph = {}
    for name, path in modules.items():
        imported = _imported(ast.parse(path.read_text(), str(path)))
        graph[name] = {target for target in imported if target in modules and target != name}
        graph[name] |= {target for target in imported if target == "speakembed" and name != "speakembed"}
    return graph


GRAPH = _graph()


def _layer(module: str) -> str:
    if module.startswith("speakembed.pipelines.base"):
        return "base"
    if module.startswith("speakembed.pipelines"):
        return "pipelines"
    if module.startswith("speakembed.models"):
        return "models"
    return "cli"


ALLOWED = {"cli": {"cli", "pipelines", "models", "base"}, "pipelines": {"pipelines", "models", "base"},
           "models": {"models", "base"}, "base": {"base"}}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_run_one_way(module):
    wrong = sorted(target for target in GRAPH[module] if _layer(target) not in ALLOWED[_layer(module)])
    assert not wrong, f"{module} ({_layer(module)}) imports {wrong}"


def test_no_import_cycles():
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_pipelines_top_level_holds_only_jobs():
    jobs = {"preprocess", "train", "train_clone_adapter", "embed", "verify", "diarise", "clone",
            "evaluate_verification", "evaluate_diarisation", "evaluate_clone", "evaluate_identification",
            "calibrate", "train_backend", "enrol", "identify", "ui"}  # one per command (spk train backend: train_backend; spk ui: the app)
    top = {path.stem for path in (ROOT / "pipelines").glob("*.py")} - {"__init__"}
    assert top <= jobs, f"building blocks at the top of pipelines/: {sorted(top - jobs)}"
