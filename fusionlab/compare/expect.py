"""Fusion expectations for CI, kept in TOML, checked against a predicted or actual plan.

::

    # expect.toml
    max_layers = 8
    eliminated = ["inception_3a/output"]

    [[fused]]                      # must be one layer
    nodes = ["inception_3a/3x3", "inception_3a/3x3/bn", "inception_3a/relu_3x3"]

    [[separate]]                   # must be in different layers
    nodes = ["inception_3a/pool", "inception_3a/pool_proj"]

    [[max_time_ms]]                # only with a measured profile (or predicted times)
    layer = "inception_3a/pool"
    ms = 0.05

>>> from fusionlab.plan import Layer, Plan
>>> plan = Plan((Layer("a + b", "Convolution", ("a", "b")), Layer("c", "Pooling", ("c",))))
>>> exp = parse_expectations('[[fused]]\\nnodes = ["a", "b"]\\n[[separate]]\\nnodes = ["b", "c"]', "t.toml")
>>> [r.ok for r in check(exp, plan, known_nodes={"a", "b", "c"})]
[True, True]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusionlab.errors import FusionlabError
from fusionlab.io import parse_toml, read_text
from fusionlab.plan import Plan

KEYS = frozenset({"fused", "separate", "eliminated", "max_layers", "max_time_ms"})


@dataclass(frozen=True)
class Expectations:
    """What a plan must show."""

    fused: tuple[tuple[str, ...], ...] = ()
    separate: tuple[tuple[str, ...], ...] = ()
    eliminated: tuple[str, ...] = ()
    max_layers: int | None = None
    max_time_ms: tuple[tuple[str, float], ...] = ()
    source: str = ""

    def nodes(self) -> set[str]:
        """Every node an expectation names."""
        return {n for group in (*self.fused, *self.separate) for n in group} | set(self.eliminated)


@dataclass(frozen=True)
class Result:
    """One expectation checked."""

    kind: str
    subject: str
    ok: bool
    detail: str = field(default="")

    def __str__(self) -> str:
        mark = "PASS" if self.ok else "FAIL"
        return f"{mark}  {self.kind} {self.subject}" + (f": {self.detail}" if self.detail else "")


def _names(value: Any, where: str, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise FusionlabError(f"{where}: {what} must be a non-empty list of node names")
    return tuple(value)


def _groups(data: dict[str, Any], key: str, where: str) -> tuple[tuple[str, ...], ...]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise FusionlabError(f"{where}: [[{key}]] must be tables with a 'nodes' list")
    out = []
    for i, entry in enumerate(entries, 1):
        unknown = set(entry) - {"nodes"}
        if unknown:
            raise FusionlabError(f"{where}: [[{key}]] #{i} has unknown keys {sorted(unknown)}")
        nodes = _names(entry.get("nodes"), where, f"[[{key}]] #{i} nodes")
        if len(nodes) < 2:
            raise FusionlabError(f"{where}: [[{key}]] #{i} needs at least two nodes")
        out.append(nodes)
    return tuple(out)


def parse_expectations(text: str, where: str) -> Expectations:
    """Parse expectation TOML; every mistake is a one-line FusionlabError naming the file."""
    data = parse_toml(text, where)
    unknown = set(data) - KEYS
    if unknown:
        raise FusionlabError(f"{where}: unknown keys {sorted(unknown)} (known: {', '.join(sorted(KEYS))})")
    eliminated = _names(data["eliminated"], where, "eliminated") if "eliminated" in data else ()
    max_layers = data.get("max_layers")
    if max_layers is not None and (not isinstance(max_layers, int) or isinstance(max_layers, bool) or max_layers < 1):
        raise FusionlabError(f"{where}: max_layers must be a positive whole number")
    times = []
    raw_times = data.get("max_time_ms", [])
    if not isinstance(raw_times, list):
        raise FusionlabError(f"{where}: [[max_time_ms]] must be tables with 'layer' and 'ms'")
    for i, entry in enumerate(raw_times, 1):
        layer, ms = (entry.get("layer"), entry.get("ms")) if isinstance(entry, dict) else (None, None)
        try:
            value = float(ms) if isinstance(ms, (int, float)) and not isinstance(ms, bool) else math.nan
        except OverflowError:  # a TOML integer beyond any float
            value = math.inf
        if not isinstance(layer, str) or not 0 < value < math.inf:
            raise FusionlabError(f"{where}: [[max_time_ms]] #{i} needs layer = \"name\" and ms = a positive number")
        times.append((layer, value))
    exp = Expectations(_groups(data, "fused", where), _groups(data, "separate", where), eliminated, max_layers,
                       tuple(times), where)
    if not (exp.fused or exp.separate or exp.eliminated or exp.max_layers or exp.max_time_ms):
        raise FusionlabError(f"{where}: no expectations found")
    return exp


def load_expectations(path: str | Path) -> Expectations:
    """Read an expectation file."""
    p = Path(path)
    return parse_expectations(read_text(p), str(p))


def _where(plan: Plan, node: str) -> str:
    layer = plan.layer_of(node)
    if layer is not None:
        return f"{node} in {layer.name!r}"
    if node in plan.eliminated:
        return f"{node} eliminated"
    return f"{node} in no layer"


def check(exp: Expectations, plan: Plan, known_nodes: Iterable[str] | None = None) -> list[Result]:
    """Check every expectation against ``plan``; names not in ``known_nodes`` are an error."""
    if known_nodes is not None:
        missing = sorted(exp.nodes() - set(known_nodes))
        if missing:
            raise FusionlabError(f"{exp.source}: expectation names nodes the model does not have: {missing[:5]}")
    results: list[Result] = []
    owner = plan.node_to_layer()
    for group in exp.fused:
        layers = {owner.get(n) for n in group}
        ok = len(layers) == 1 and None not in layers
        detail = "" if ok else "; ".join(_where(plan, n) for n in group)
        results.append(Result("fused", " + ".join(group), ok, detail))
    for group in exp.separate:
        indexes = [owner.get(n) for n in group]
        clash = [n for n, i in zip(group, indexes, strict=True) if i is not None and indexes.count(i) > 1]
        ok = not clash
        detail = "" if ok else "; ".join(_where(plan, n) for n in clash)
        results.append(Result("separate", " | ".join(group), ok, detail))
    for node in exp.eliminated:
        ok = node in plan.eliminated
        results.append(Result("eliminated", node, ok, "" if ok else _where(plan, node)))
    if exp.max_layers is not None:
        count = len(plan.layers)
        results.append(Result("max_layers", str(exp.max_layers), count <= exp.max_layers, f"{count} layers"))
    for name, ms in exp.max_time_ms:
        layer = next((layer for layer in plan.layers if layer.name == name), None)
        if layer is None:
            results.append(Result("max_time_ms", name, False, "no layer of that name"))
        elif layer.time_ms is None:
            results.append(Result("max_time_ms", name, False, "no time for this layer (give a profile)"))
        else:
            results.append(Result("max_time_ms", name, layer.time_ms <= ms, f"{layer.time_ms:.4f} ms (limit {ms} ms)"))
    return results


def report(results: Sequence[Result]) -> str:
    """One line per expectation plus a count."""
    failed = sum(1 for r in results if not r.ok)
    lines = [str(r) for r in results]
    lines.append(f"{len(results) - failed} of {len(results)} expectations hold")
    return "\n".join(lines)
