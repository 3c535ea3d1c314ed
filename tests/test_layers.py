"""The package's layers, checked over every module and every import (at import time and inside
functions alike, ``TYPE_CHECKING`` blocks and ``importlib.import_module`` of a literal too).

Each module belongs to one layer of :data:`LAYERS` (the longest matching prefix); a module may
import its own layer and the layers below, never one above, and no set of modules imports in a
circle.  A new module that matches no layer fails here: place it in the table, bottom first.
CONTRIBUTING.md shows the same table.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import neuromfa_native as nm

PKG = Path(nm.__file__).resolve().parent
ROOT = "neuromfa_native"

#: Bottom first.  A layer is a tuple of module names or subpackage prefixes.
LAYERS = (
    # foundations: the compiled core, input checks, result helpers, files, HTML escaping, version
    ("_core", "_validation", "_results", "_fs", "_html", "_text", "_version"),
    ("mfa.boxes", "science.nulls"),  # the box-type and control registries the configuration validates against
    ("config",),
    ("mfa", "io"),  # the method on any graph; reading weights
    ("network",),  # models -> neuron interaction networks
    ("science",),  # one checkpoint: analysis, controls, rival statistics, by layer
    ("plots",),  # figures of result objects (duck-typed: they import no result type)
    ("run",),  # a checkpoint series: checkpoints, Series, the run directory, the runner
    ("scores",),  # benchmark scores and correlation
    ("report",),  # tables, report.html, compare, sensitivity
    ("integrations",),  # training callbacks
    ("cli", "__main__", ""),  # the command, and the package's face (__init__ re-exports)
)


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of a dotted module name (``neuromfa_native.x.y``)."""
    rel = module[len(ROOT) + 1:] if module != ROOT else ""
    best, where = -1, None
    for i, names in enumerate(LAYERS):
        for n in names:
            if rel == n or (n and rel.startswith(n + ".")) or (n == "" and rel == ""):
                if len(n) > best:
                    best, where = len(n), i
    if where is None:
        raise LookupError(f"{module} is in no layer of tests/test_layers.py LAYERS")
    return where


def modules() -> dict:
    """``{dotted name: path}`` of every module of the package (subpackages included)."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([ROOT, *parts])] = path
    out[ROOT + "._core"] = PKG / "_core.pyi"
    return out


def _resolve(name: str, known: set) -> str:
    """The longest known module that ``name`` (a module or a name in one) lies in."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def imports_of(module: str, path: Path, known: set) -> set:
    """Package modules that ``module`` imports anywhere in its code."""
    if path.suffix == ".pyi":
        return set()
    is_pkg = path.name == "__init__.py"
    here = module.split(".") if is_pkg else module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1]) if node.level else ""
            mod = ".".join(x for x in (base, node.module or "") if x)
            names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            target = node.args[0].value
            pkg = node.args[1] if len(node.args) > 1 else None
            if target.startswith(".") and isinstance(pkg, (ast.Attribute, ast.Name)):  # relative to __package__
                level = len(target) - len(target.lstrip("."))
                target = ".".join(here[: len(here) - level + 1] + [target.lstrip(".")])
            names = [target]
        for n in names:
            if n == ROOT or n.startswith(ROOT + "."):
                r = _resolve(n, known)
                if r and r != module:
                    out.add(r)
    return out


GRAPH = None


def graph() -> dict:
    global GRAPH
    if GRAPH is None:
        files = modules()
        GRAPH = {m: imports_of(m, p, set(files)) for m, p in files.items()}
    return GRAPH


@pytest.mark.slow
def test_every_module_has_a_layer():
    missing = []
    for m in graph():
        try:
            layer_of(m)
        except LookupError as exc:
            missing.append(str(exc))
    assert not missing, missing


def test_imports_point_down_the_layers():
    up = [f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
          for m, deps in graph().items() for d in sorted(deps)
          if layer_of(d) > layer_of(m) and m != ROOT]  # the face re-exports from every layer
    assert not up, "\n".join(up)


def test_no_import_circle():
    g = {m: {d for d in deps if d != ROOT} for m, deps in graph().items() if m != ROOT}
    state: dict = {}
    circles = []

    def visit(m, path):
        if state.get(m) == "done":
            return
        if state.get(m) == "active":
            circles.append(" -> ".join(path[path.index(m):] + [m]))
            return
        state[m] = "active"
        for d in sorted(g.get(m, ())):
            visit(d, path + [m])
        state[m] = "done"

    for m in sorted(g):
        visit(m, [])
    assert not circles, "\n".join(circles)


def test_the_graph_sees_imports_inside_functions():
    """The rule is not vacuous: the runner's imports, the CLI's lazy ones and the face's are seen."""
    g = graph()
    assert "neuromfa_native.run.store" in g["neuromfa_native.run.runner"]
    assert "neuromfa_native.integrations.monitor" in g[ROOT]  # imported inside __getattr__
    assert any(d.startswith("neuromfa_native.report") for d in g["neuromfa_native.cli.analyze"])
    assert layer_of("neuromfa_native.mfa.boxes") < layer_of("neuromfa_native.config") < layer_of(
        "neuromfa_native.mfa.engine")
    assert layer_of("neuromfa_native.science.nulls") < layer_of("neuromfa_native.config") < layer_of(
        "neuromfa_native.science.controls")
    with pytest.raises(LookupError):
        layer_of("neuromfa_native.nowhere")


def test_modules_are_short_and_the_package_top_is_small():
    top = [p.name for p in PKG.glob("*.py")]
    assert len(top) <= 15, top
    lines = {p.relative_to(PKG): len(p.read_text().splitlines()) for p in PKG.rglob("*.py")}
    long = [f"{p} ({n} lines)" for p, n in lines.items() if n > 600]
    assert not long, long
