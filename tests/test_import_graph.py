"""The house: no import circles in src/, counting imports inside functions and under TYPE_CHECKING (a reader must
hold each of them in mind all the same)."""

from __future__ import annotations

import ast
from pathlib import Path
import shutil

SRC = Path(__file__).resolve().parent.parent / "src"


def module_graph(root: Path) -> dict[str, set[str]]:
    """Each module under root (dotted name) -> the modules of ours it imports, wherever the import stands."""
    files = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package[: len(package) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # `from . import x` imports the module x; `from .m import y` imports m (y may be a module too).
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            graph[name].update(target for target in targets if target in files and target != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted: every import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
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
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_src_has_no_import_circle():
    graph = module_graph(SRC)
    assert len(graph) > 40  # the walk found the package, not an empty folder
    assert cycles(graph) == [], "import circles (every import counts, lazy and TYPE_CHECKING ones too)"


def test_a_circle_added_through_a_lazy_import_is_found_and_named(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    errors = copy / "benchmarking" / "errors.py"
    # errors is imported by nearly everything: one import inside a function closes a circle through the runner.
    errors.write_text(errors.read_text() + "\n\ndef _late():\n    from .benchmark_runner import run_benchmark\n")
    found = cycles(module_graph(copy))
    assert len(found) == 1
    assert {"benchmarking.errors", "benchmarking.benchmark_runner"} <= set(found[0])


def test_a_circle_under_type_checking_is_found(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    measurement = copy / "benchmarking" / "measurement.py"
    measurement.write_text(measurement.read_text()
                           + "\nfrom typing import TYPE_CHECKING as _CHECKING\nif _CHECKING:\n    from . import console\n")
    found = cycles(module_graph(copy))
    assert any({"benchmarking.measurement", "benchmarking.console"} <= set(component) for component in found)
