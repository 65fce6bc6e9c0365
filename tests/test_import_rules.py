"""The layers of docs/architecture.md, kept true: every import of omni's source (lazy ones inside functions
included) goes down the layers, and no group of modules imports itself round in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = {"omni": REPO / "omni", "omni_kernels": REPO / "kernels" / "omni_kernels"}

# Bottom to top: a unit may import its own modules and units of lower layers, never a unit of its own layer
# or of a higher one. docs/architecture.md draws the same picture.
LAYERS = [
    ["omni", "omni.config", "omni.plugins", "omni.tasks"],
    ["omni.ops", "omni.audio", "omni.media"],
    ["omni.models"],
    ["omni.conditioning", "omni_kernels"],
    ["omni.pipelines"],
    ["omni.data"],
    ["omni.train", "omni.eval", "omni.apps"],
    ["omni.toyworld"],
    ["omni.cli"],
]
LAYER = {unit: index for index, units in enumerate(LAYERS) for unit in units}
# `import omni` gives the version; `omni.OmniTransformer` and `omni.LatentStream` are loaded on first use.
FACADE_IMPORTS = {"omni": {"omni.models"}}


def module_name(package: str, path: Path) -> str:
    parts = path.relative_to(SOURCES[package]).with_suffix("").parts
    name = ".".join((package, *parts))
    return name.removesuffix(".__init__")


def imported_modules(name: str, path: Path) -> set[str]:
    """Every omni / omni_kernels module or package `path` imports, wherever in the file the import sits."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in SOURCES}


def source_graph() -> dict[str, set[str]]:
    """module -> the modules it imports (names that are attributes, not modules, are dropped)."""
    files = {}
    for package, root in SOURCES.items():
        for path in sorted(root.rglob("*.py")):
            files[module_name(package, path)] = path
    return {
        name: {m for m in imported_modules(name, path) if m in files} - {name} for name, path in files.items()
    }


def unit_of(module: str) -> str:
    if module.startswith("omni_kernels"):
        return "omni_kernels"
    parts = module.split(".")
    return ".".join(parts[:2])


def is_program(module: str) -> bool:
    """A package's `__main__` is a program (`torchrun -m omni.train`), run and never imported: it may call the CLI."""
    return module.endswith(".__main__")


GRAPH = source_graph()


def test_every_unit_has_a_layer():
    units = {unit_of(module) for module in GRAPH}
    assert units <= set(LAYER), f"units without a layer in LAYERS: {sorted(units - set(LAYER))}"


def test_imports_only_go_down_the_layers():
    upward = []
    for module, imports in GRAPH.items():
        if is_program(module):
            continue
        for target in imports - FACADE_IMPORTS.get(module, set()):
            a, b = unit_of(module), unit_of(target)
            if a != b and LAYER[b] >= LAYER[a]:
                upward.append(f"{module} imports {target} ({a}: layer {LAYER[a]}, {b}: layer {LAYER[b]})")
    assert not upward, "imports that do not go down the layers:\n" + "\n".join(sorted(upward))


@pytest.mark.parametrize("wing", ["omni.cli", "omni.toyworld"])
def test_the_outer_shell_and_the_toy_world_are_imported_by_no_library_module(wing):
    importers = sorted(
        module
        for module, imports in GRAPH.items()
        if not is_program(module)
        and unit_of(module) not in (wing, "omni.cli")
        and any(unit_of(target) == wing for target in imports)
    )
    assert not importers, f"{wing} is imported by {importers}"


def test_built_in_plugins_come_from_the_layers_above_their_users():
    import importlib

    from omni.plugins import BUILT_IN

    for (group, name), provider in BUILT_IN.items():
        module, _, attribute = provider.partition(":")
        assert module in GRAPH, f"plug-in {group} {name!r}: no module {module}"
        assert LAYER[unit_of(module)] > LAYER["omni.data"], f"plug-in {group} {name!r} lives in the engine"
        assert hasattr(importlib.import_module(module), attribute), f"plug-in {group} {name!r}: no {provider}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_units():
    units: dict[str, set[str]] = {}
    for module, imports in GRAPH.items():
        if not is_program(module):
            units.setdefault(unit_of(module), set()).update(
                unit_of(t)
                for t in imports - FACADE_IMPORTS.get(module, set())
                if unit_of(t) != unit_of(module)
            )
    assert cycles(units) == []


def test_no_import_cycles_between_modules():
    # A package's __init__ re-exporting its modules is not a cycle of meaning: `omni.media.output` may use
    # `omni.media.write_png`. Every other loop is.
    graph = {
        module: {t for t in imports if not (t.startswith(module + ".") or module.startswith(t + "."))}
        for module, imports in GRAPH.items()
        if not is_program(module)
    }
    assert cycles(graph) == []


def test_lazy_relative_and_package_imports_are_all_seen(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "import torch\nfrom omni.media import geometry\nfrom . import sampling\n\n\n"
        "def f():\n    from omni.cli import main\n"
    )
    found = imported_modules("omni.pipelines.x", source)
    assert {"omni.media", "omni.media.geometry", "omni.pipelines.sampling", "omni.cli.main"} <= found
    assert "torch" not in found


def test_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
