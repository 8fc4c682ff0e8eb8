"""The package's layers import downwards only, and no modules import each other in a cycle.

Layers, lowest first (Polygraphy's one-way layering: tools -> comparison -> backends):

  0 base        errors, io, gcpause, table, dtypes
  1 model       ir (graph, ops, tensors, flops), zoo (model builders)
  2 plans       plan (Layer, Plan, kinds, JSON, profiles)
  3 predict     fusion (passes, partition, targets, predictor); formats (TensorRT's files)
  4 engines     backends (live TensorRT / TensorRT-RTX); cost (the cost model)
  5 compare     compare (diff, expectations); execute (the PyTorch reference executor)
  6 render      render (DOT, Graphviz, figures)
  7 api         fusionlab (the package), api, testing
  8 cli         cli, __main__

Every import counts, those inside functions and under ``TYPE_CHECKING`` too: a lazy import
of a higher layer is still an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "fusionlab"

LAYERS: dict[str, int] = {
    "fusionlab.errors": 0, "fusionlab.io": 0, "fusionlab.gcpause": 0, "fusionlab.table": 0,
    "fusionlab.dtypes": 0,
    "fusionlab.ir": 1, "fusionlab.zoo": 1,
    "fusionlab.plan": 2,
    "fusionlab.fusion": 3, "fusionlab.formats": 3,
    "fusionlab.backends": 4, "fusionlab.cost": 4,
    "fusionlab.compare": 5, "fusionlab.execute": 5,
    "fusionlab.render": 6,
    "fusionlab": 7, "fusionlab.api": 7, "fusionlab.testing": 7,
    "fusionlab.cli": 8, "fusionlab.__main__": 8,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """The layer of ``module``: that of its longest listed prefix."""
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(every fusionlab module ``path`` imports, those imported at module level at run time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    everything: set[str] = set()
    top: set[str] = set()
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded.update(id(n) for child in node.body for n in ast.walk(child))
    top_level = {id(n) for n in tree.body} | {
        id(n) for stmt in tree.body if isinstance(stmt, ast.Try) for n in stmt.body
    }
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        names = [n for n in names if n == "fusionlab" or n.startswith("fusionlab.")]
        if not names:
            continue
        real = {n for n in names if (PACKAGE.parent / n.replace(".", "/")).with_suffix(".py").exists()
                or (PACKAGE.parent / n.replace(".", "/") / "__init__.py").exists()}
        everything |= real
        if id(node) in top_level and id(node) not in guarded:
            top |= real
    return everything, top


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        assert layer_of(module) is not None, module


def test_imports_go_downwards_only() -> None:
    upward = []
    for module, path in MODULES.items():
        mine = layer_of(module)
        for target in imports(path)[0]:
            if target != "fusionlab" and layer_of(target) > mine:
                upward.append(f"{module} (layer {mine}) imports {target} (layer {layer_of(target)})")
    assert not upward, "\n".join(upward)


def test_no_import_cycle_at_module_level() -> None:
    g: nx.DiGraph[str] = nx.DiGraph()
    for module, path in MODULES.items():
        g.add_node(module)
        for target in imports(path)[1]:
            if target in MODULES and target != module:
                g.add_edge(module, target)
    cycles = list(nx.simple_cycles(g))
    assert not cycles, cycles[:5]


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    """
    module-level: fusionlab.plan        (counted for cycles and layers)
    in a function: fusionlab.cli        (counted for layers only)
    under TYPE_CHECKING: fusionlab.api  (counted for layers only)
    """
    path = PACKAGE / "fusion" / "predictor.py"
    everything, top = imports(path)
    assert "fusionlab.plan" in top
    sample = tmp_path / "sample.py"
    sample.write_text("from typing import TYPE_CHECKING\nimport fusionlab.plan\n"
                      "if TYPE_CHECKING:\n    import fusionlab.api\n"
                      "def f():\n    import fusionlab.cli\n")
    everything, top = imports(sample)
    assert everything == {"fusionlab.plan", "fusionlab.api", "fusionlab.cli"}
    assert top == {"fusionlab.plan"}
