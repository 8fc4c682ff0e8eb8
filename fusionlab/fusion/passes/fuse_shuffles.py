"""fuse_shuffles: consecutive layout ops become one Shuffle layer where one Shuffle can do both.

Before::

    x -> Reshape(n, 2, c/2, h, w) -> Transpose(0, 2, 1, 3, 4) -> Reshape(n, c, h, w) -> y
After::

    x -> [Reshape + Transpose] -> [Reshape] -> y     (channel shuffle: two Shuffle layers)

A TensorRT Shuffle layer is a first transpose, a reshape and a second transpose, in that
order (NVIDIA/TensorRT#2330, maintainer), so it runs Transpose+Reshape or Reshape+Transpose
alone; two reshapes fuse only when the transposes between them cancel (the 8.x guide's
"Shuffle and Shuffle"). Layers are joined from the producer side, in graph order: a
channel shuffle (reshape, transpose, reshape) becomes ``Reshape + Transpose`` and the
last ``Reshape``. Which pair TensorRT joins first in such a chain is not documented and no
engine listing of one was found: the pairing is an assumption.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

SHUFFLE_OPS = frozenset({"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})

RULE = Rule(
    name="fuse_shuffles",
    conditions=(
        "both layers hold only layout ops (Transpose, Reshape, Flatten, Squeeze, Unsqueeze) and "
        "one writes what the other reads",
        "the first one's outputs are read by the second alone and are not graph outputs",
        "one Shuffle (first transpose, reshape, second transpose) can do both: not two reshapes "
        "with a transpose between them that does not cancel",
    ),
    source=(
        "TensorRT 8.x Developer Guide, 'Shuffle and Shuffle' (two Shuffle layers become one, or "
        "none; with two reshapes only when the transposes between them are inverse); "
        "NVIDIA/TensorRT#1197 (maintainer: 'Consecutive shuffle layers will be fused by the TensorRT "
        "optimizer'); NVIDIA/TensorRT#2330 (maintainer: 'A ShuffleLayer in TRT actually does three "
        "things in sequence: FirstTranspose + Reshape + SecondTranspose')"
    ),
    joins=(Join(SHUFFLE_OPS, SHUFFLE_OPS, first_only=True, second_only=True),),
)
__doc__ = RULE.document(__doc__)

Perm = tuple[int, ...] | None
Shuffle = tuple[Perm, bool, Perm]
"""(first transpose, reshapes, second transpose); None is the identity."""


def _compose(p: Perm, q: Perm) -> Perm:
    """``p`` then ``q`` as one permutation (``out[i] = in[p[q[i]]]``); None for the identity.

    >>> _compose((1, 0), (1, 0)), _compose((0, 2, 1), None)
    (None, (0, 2, 1))
    """
    if p is None:
        return q
    if q is None:
        return p
    out = tuple(p[i] for i in q)
    return None if out == tuple(range(len(out))) else out


def _of_node(graph: Graph, name: str) -> Shuffle:
    node = graph.node(name)
    if node.op == "Transpose":
        perm = node.attrs.get("perm")
        if perm is None:
            t = graph.tensors.get(node.inputs[0])
            rank = len(t.shape) if t is not None and t.shape is not None else 0
            perm = list(reversed(range(rank)))
        return (_compose(tuple(int(p) for p in perm), None), False, None)
    return (None, True, None)


def _then(a: Shuffle, b: Shuffle) -> Shuffle | None:
    """One Shuffle doing ``a`` then ``b``, or None when no Shuffle can."""
    t1a, ra, t2a = a
    t1b, rb, t2b = b
    if not ra:  # a is a permutation: it goes before b's first transpose
        return (_compose(_compose(t1a, t2a), t1b), rb, t2b)
    if not rb:  # b is a permutation: it goes after a's second transpose
        return (t1a, ra, _compose(_compose(t2a, t1b), t2b))
    if _compose(t2a, t1b) is None:  # both reshape: only with nothing between them
        return (t1a, True, t2b)
    return None


def _of_layer(graph: Graph, nodes: Sequence[str]) -> Shuffle | None:
    state: Shuffle | None = (None, False, None)
    for n in nodes:
        state = _then(state, _of_node(graph, n)) if state is not None else None
    return state


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    if len(graph.names_with_ops(SHUFFLE_OPS)) < 2:
        return plan  # a pair of shuffle layers needs two shuffle nodes
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)

    def shuffle(index: int) -> bool:
        layer = work.layer(index)
        return layer.kind is not Kind.MYELIN and all(op in SHUFFLE_OPS for op in work.ops_of(index))

    for name in graph.order:
        if name not in work.owner:
            continue
        src = work.owner[name]
        if work.layer(src).nodes[-1] != name or not shuffle(src):
            continue
        outs = work.external_outputs(src)
        readers = {work.owner[c] for t in outs for c in work.consumers(t) if c in work.owner}
        shuffles = sorted(r for r in readers if r != src and shuffle(r))
        if not shuffles:
            continue
        dst = shuffles[0]
        pair = [*work.layer(src).nodes, *work.layer(dst).nodes]
        if not work.outputs_consumed_only_by(src, dst):
            reject(2, pair)
            continue
        if _of_layer(graph, pair) is None:
            reject(3, pair, "two reshapes with a transpose between them")
            continue
        work.merge(src, dst, rule=RULE.name, kind=Kind.SHUFFLE)
    return work.finish()
