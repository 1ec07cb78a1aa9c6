"""The house's import rule, read from the source (docs/ARCHITECTURE.md): every import of a tfopt module, at module
level or inside a function, points to the same layer or one below; no cycle between modules or between areas; no
import hidden inside a function except the two kinds the rule names."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tfopt"

# Layer of each area, lowest first (docs/ARCHITECTURE.md).
LAYERS = {
    "tfopt": 0, "_checks": 0, "_timing": 0, "_tensorflow": 0, "_registration": 0, "data": 0,
    "layers": 1,
    "optimizers": 2, "schedules": 2, "regularizers": 2, "models": 2,
    "compression": 3,
    "callbacks": 4, "strategies": 4, "acceleration": 4,
    "tuning": 5,
    "compat": 6,
    "pipelines": 7,
    "demo": 8,
    "cli": 9, "__main__": 9,
}
# The command parses and checks its arguments before it loads Keras (a bad flag answers at once, and the backend's
# start-up output is held back), so its imports of the library wait inside its functions.
LAZY_IMPORTERS = {"tfopt.cli"}
# TensorFlow-only helpers, imported only where the backend is TensorFlow, so that JAX runs never load TensorFlow.
LAZY_IMPORTS = {"tfopt._tensorflow"}


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def area(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tfopt"


def resolve(module, name=None):
    """The tfopt module an import names: `from a.b import c` is a.b.c when that is a module, else a.b."""
    if name is not None and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module


def imports(module):
    """(imported module, line, inside a function?) for each tfopt import in `module`."""
    tree = ast.parse(MODULES[module].read_text())
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom) and child.level == 0 and (child.module or "").split(".")[0] == "tfopt":
                for alias in child.names:
                    found.append((resolve(child.module, alias.name), child.lineno, in_function))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "tfopt":
                        found.append((alias.name, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


EDGES = {module: imports(module) for module in MODULES}


def test_every_area_has_a_layer():
    assert {area(m) for m in MODULES} <= set(LAYERS)


def test_imports_point_to_the_same_layer_or_below():
    upward = [
        f"{module}:{line} imports {target} (layer {LAYERS[area(target)]} above {LAYERS[area(module)]})"
        for module, edges in EDGES.items()
        for target, line, _ in edges
        if LAYERS[area(target)] > LAYERS[area(module)]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_hides_inside_a_function():
    hidden = [
        f"{module}:{line} imports {target} inside a function"
        for module, edges in EDGES.items()
        if module not in LAZY_IMPORTERS
        for target, line, in_function in edges
        if in_function and target not in LAZY_IMPORTS
    ]
    assert not hidden, "\n".join(hidden)


def test_the_library_never_imports_the_pipelines_above_it():
    for module, edges in EDGES.items():
        for target, line, _ in edges:
            if target in ("tfopt.demo", "tfopt.cli"):
                assert area(module) in ("demo", "cli", "__main__"), f"{module}:{line} imports {target}"


def strongly_connected(graph):
    """Tarjan's components of `graph` (node -> set of nodes) with more than one node, or a node on itself."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.add(other)
                if other == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_cycle_between_modules():
    # A module inside a package that imports the package's own __init__ closes a cycle too (the __init__ imports it).
    graph = {module: {target for target, _, _ in edges if target != module} for module, edges in EDGES.items()}
    assert strongly_connected(graph) == []


def test_no_cycle_between_areas():
    graph = {}
    for module, edges in EDGES.items():
        for target, _, _ in edges:
            if area(target) != area(module) and LAYERS[area(target)] > 0:
                graph.setdefault(area(module), set()).add(area(target))
    assert strongly_connected(graph) == []


@pytest.mark.parametrize("graph, cycles", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
    ({"a": {"a"}}, [["a"]]),
])
def test_cycle_finder_finds_cycles(graph, cycles):
    assert strongly_connected(graph) == cycles
