"""The package's layers stay strict: no import cycle, no import up a layer, no hidden function-local imports.

Every module-level and function-level `import` of ddbench code is read from the source (ast), so an
import hidden inside a function counts like any other.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module may import its own package and any package of a lower layer, never a higher one.
LAYERS: list[set[str]] = [
    {"core"},
    {"data", "models", "protocols"},
    {"store"},
    {"engine"},
    {"cards"},
    {"kinds", "distill", "interop"},
    {"sweep", "methods"},
    {"publish"},
    {"cli"},
]
LAYER_OF = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
# Function-local imports of ddbench code allowed where they exist for a reason other than a cycle.
# (The CLI imports lazily throughout, so that `--help` and a refused flag never load torch or timm.)
LOCAL_ALLOWED = {  # card parsing stays free of torch and timm until a card's names must be checked
    ("ddbench.cards.card", "ddbench.data"),
    ("ddbench.cards.card", "ddbench.engine.augment"),
    ("ddbench.cards.card", "ddbench.models"),
    # the model zoo (timm + torchvision, ~1.5 s) loads on the first network built, never for a name check
    ("ddbench.models", "ddbench.models.factory"),
    ("ddbench.models", "ddbench.models.tested"),
    ("ddbench.models.index", "ddbench.models.classic"),
    ("ddbench.models.index", "ddbench.models.convnet"),
    ("ddbench.models.index", "ddbench.models.crossarch"),
    ("ddbench.models.index", "ddbench.models.tested"),
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.glob("ddbench/**/*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    for folder, pkg in (("methods", "ddbench.methods"), ("protocols", "ddbench.protocols")):
        for path in (ROOT / folder).glob("*.py"):
            mods[pkg if path.stem == "__init__" else f"{pkg}.{path.stem}"] = path
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _imports(mods: dict[str, Path]) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """Module → ddbench modules it imports; and the (module, target) pairs imported inside a function."""
    edges: dict[str, set[str]] = defaultdict(set)
    local: set[tuple[str, str]] = set()
    for mod, path in mods.items():
        tree = ast.parse(path.read_text())
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        inside = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                target = _resolve(name, mods)
                if target and target != mod and target.startswith("ddbench"):
                    edges[mod].add(target)
                    if id(node) in inside:
                        local.add((mod, target))
    return edges, local


def _layer(mod: str) -> int | None:
    parts = mod.split(".")
    return LAYER_OF.get(parts[1]) if len(parts) > 1 else None  # `ddbench` itself (version, error type) is below all


def test_every_package_has_a_layer():
    packages = {m.split(".")[1] for m in _modules() if m.count(".") >= 1}
    top_level_modules = {p for p in packages if (ROOT / "ddbench" / f"{p}.py").is_file()}
    assert top_level_modules <= {"__main__"}, f"modules outside a layer package: {sorted(top_level_modules)}"
    assert packages - {"__main__"} <= set(LAYER_OF), f"packages without a layer: {sorted(packages - set(LAYER_OF))}"


def test_no_import_runs_up_a_layer():
    edges, _ = _imports(_modules())
    upward = sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                    if _layer(a) is not None and _layer(b) is not None and _layer(b) > _layer(a))
    assert not upward, "imports up a layer:\n" + "\n".join(upward)


def test_no_import_cycle():
    edges, _ = _imports(_modules())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(_modules()):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_no_function_local_import_of_ddbench_code():
    """A local import of our own code usually hides a cycle; the few with another reason are listed above."""
    _, local = _imports(_modules())
    hidden = sorted(f"{a} -> {b}" for a, b in local - LOCAL_ALLOWED if not a.startswith("ddbench.cli"))
    assert not hidden, "function-local imports of ddbench code:\n" + "\n".join(hidden)


def test_the_checker_sees_a_planted_upward_import(tmp_path):
    """The checks above can fail: a planted engine -> sweep import is found, and it runs up a layer."""
    mods = _modules()
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from ddbench.sweep.build import Request\n")
    mods["ddbench.engine.planted"] = planted
    edges, local = _imports(mods)
    assert "ddbench.sweep.build" in edges["ddbench.engine.planted"]
    assert ("ddbench.engine.planted", "ddbench.sweep.build") in local
    assert _layer("ddbench.sweep.build") > _layer("ddbench.engine.planted")
