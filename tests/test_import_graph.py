"""The house: no import circles in src/, and imports only downwards through the layers of DESIGN.md, counting imports
inside functions and under TYPE_CHECKING (a reader must hold each of them in mind all the same)."""

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


# DESIGN.md "The house", top to bottom: a module may import its own layer and those under it. Each layer is named by
# the top-level modules and packages under src/benchmarking/ it holds ("" is the package itself: its version).
LAYERS = (
    ("cli", {"cli"}),
    ("app", {"app"}),
    ("engines", {"benchmark_runner", "load", "watch", "report", "site", "console", "check", "scheduler"}),
    ("providers, executors, storage", {"providers", "executors", "storage", "simulator"}),
    ("settings, workloads, pricing, measurement", {"settings", "workloads", "pricing", "measurement", "slo", "figures",
                                                   "expectations", "dialogue", "agent_workloads"}),
    ("helpers", {"redaction", "safe_files", "textfile", "csv_cells", "deferred", "durations", "stopping"}),
    ("errors", {"errors", ""}),
)
# Upward imports not yet undone, each with why; the test fails when one of these goes away, so that the list only
# shrinks. (The executors' imports of the runner went when Cell and measure_cell moved to providers/cells.py.)
KNOWN_UPWARD: set[tuple[str, str]] = set()


def layer_of(module: str) -> int | None:
    """The module's layer, counted from the top (cli: 0); None for a module that no layer names."""
    top = module.split(".")[1] if "." in module else ""
    return next((index for index, (_, tops) in enumerate(LAYERS) if top in tops), None)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a module from a layer above its own, as 'a -> b (layer imports layer above)'."""
    found = []
    for name in sorted(graph):
        for target in sorted(graph[name]):
            here, there = layer_of(name), layer_of(target)
            if here is not None and there is not None and there < here:
                found.append(f"{name} -> {target} ({LAYERS[here][0]} imports {LAYERS[there][0]})")
    return found


def test_src_has_no_import_circle():
    graph = module_graph(SRC)
    assert len(graph) > 40  # the walk found the package, not an empty folder
    assert cycles(graph) == [], "import circles (every import counts, lazy and TYPE_CHECKING ones too)"


def test_every_module_has_a_layer():
    assert [name for name in sorted(module_graph(SRC)) if layer_of(name) is None] == [], \
        "place each new top-level module or package in LAYERS (DESIGN.md, The house)"


def test_imports_run_only_downwards_through_the_layers():
    known = {f"{a} -> {b}" for a, b in KNOWN_UPWARD}
    found = upward_imports(module_graph(SRC))
    assert [line for line in found if line.split(" (")[0] not in known] == [], "imports from a layer above"
    assert {line.split(" (")[0] for line in found} == known, "an upward import was undone: drop it from KNOWN_UPWARD"


def test_an_upward_import_added_lazily_is_found_and_named(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    watching = copy / "benchmarking" / "settings" / "watching.py"
    # As settings once checked notify URLs through the watch engine: one import inside a function, no circle.
    watching.write_text(watching.read_text() + "\n\ndef _late():\n    from ..watch.notify import send\n")
    graph = module_graph(copy)
    assert cycles(graph) == []
    assert [line for line in upward_imports(graph) if "executors" not in line] == [
        "benchmarking.settings.watching -> benchmarking.watch.notify "
        "(settings, workloads, pricing, measurement imports engines)"]


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
