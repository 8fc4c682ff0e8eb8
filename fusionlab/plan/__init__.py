"""Engine plans: predicted or actual, as ordered layers over ONNX nodes.

A :class:`Plan` groups ONNX node names into :class:`Layer` values and says, for each node
that disappears, how (an :class:`Elimination`). Layers the engine adds itself (reformats,
copies) have no nodes. Structure is carried by fields, never by names: a horizontally
merged layer lists its :attr:`Layer.branches`, a layer's :attr:`Layer.kind` comes from one
vocabulary (:class:`~fusionlab.plan.kinds.Kind`) with TensorRT's own ``LayerType`` kept
beside it (:attr:`Layer.engine_type`). Names are TensorRT-style text for people.
Plans serialize to fusionlab's versioned JSON (:mod:`fusionlab.plan.serialize`).

One ONNX node may be computed by several layers (TensorRT-RTX: a convolution whose bias
moves into the next generated kernel is listed by both; an LRN is three kernels). Every
layer lists all the nodes it computes in :attr:`Layer.nodes`; in a predicted plan, all but
one of them name the node in :attr:`Layer.shared`, so each node still has one *owner*
(:meth:`Plan.node_to_layer`, the partition that passes and the fused graph work on), and
:meth:`Plan.node_to_layers` gives every layer that computes it.

>>> conv = Layer("Conv_0 + Relu_1", Kind.CONVOLUTION, ("Conv_0", "Relu_1"), "fuse_conv_activation")
>>> p = Plan(layers=(conv,), eliminated={"Flatten_2": Elimination(How.ABSORBED, "read by Gemm_3")})
>>> p.layer_of("Relu_1").name, p.eliminated["Flatten_2"].how.value
('Conv_0 + Relu_1', 'absorbed')
>>> join_branches(["a + b", "c + d"])
'a + b || c + d'
>>> kgen = Layer("bn + conv", Kind.POINTWISE, ("bn", "conv"), shared=("conv",))
>>> two = Plan((Layer("conv", Kind.CONVOLUTION, ("conv",)), kgen))
>>> two.node_to_layer()["conv"], two.node_to_layers()["conv"], kgen.owned
(0, (0, 1), ('bn',))
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from fusionlab.plan.kinds import Kind

__all__ = [
    "BRANCH_SEP",
    "FUSED_SEP",
    "Elimination",
    "How",
    "Kind",
    "Layer",
    "Plan",
    "join_branches",
]

FUSED_SEP = " + "
"""Joins the names of vertically fused nodes in a TensorRT layer name."""
BRANCH_SEP = " || "
"""Joins the names of horizontally merged layers in a TensorRT layer name (written here,
read back only by the engine-name parser in :mod:`fusionlab.formats.layer_info`)."""


def join_branches(names: Iterable[str]) -> str:
    """The TensorRT-style name of a horizontally merged layer."""
    return BRANCH_SEP.join(names)


class How(enum.Enum):
    """How a node disappeared from the engine (one small vocabulary; prose goes beside it)."""

    CONCAT = "concat"
    """A Concat whose producers write straight into its output buffer."""
    NOOP = "noop"
    """An identity at inference (Dropout, Identity)."""
    CONSTANT = "constant-folded"
    """Computed from constants only: folded into weights at build time."""
    ABSORBED = "absorbed"
    """Moves no data and is absorbed by a neighbour (a Flatten before a fully connected
    layer, a layout op inside an engine layer)."""
    CANCELLED = "cancelled"
    """A DequantizeLinear and a QuantizeLinear of equal scale that cancel out once moved next
    to each other (Q/DQ propagation): the data passes through as it was."""
    DUPLICATE = "duplicate"
    """The same op on the same inputs with the same constants as another node (``same_as``):
    the engine computes it once (e.g. two QuantizeLinear of one tensor with one scale)."""
    UNNAMED = "unnamed"
    """Actual plans: no engine layer names the node and nothing says why."""


@dataclass(frozen=True)
class Elimination:
    """Why a node is in no layer: ``how`` (decided on) and ``reason`` (for people)."""

    how: How
    reason: str = ""
    same_as: str | None = None
    """For :attr:`How.DUPLICATE`: the node whose outputs this node's outputs are (readers
    of this node read that node's results instead)."""

    def __str__(self) -> str:
        return self.reason or self.how.value


@dataclass(frozen=True)
class Layer:
    """One engine layer."""

    name: str
    """TensorRT-style name: node names joined by ``" + "``, merged siblings by ``" || "``."""
    kind: Kind
    """What the layer does, in fusionlab's vocabulary (a Kind or its value)."""
    nodes: tuple[str, ...] = ()
    """Every ONNX node the layer computes, in order (folded nodes included)."""
    rule: str = ""
    """The rule (pass name) that formed it; ``"unfused"`` for a layer of one node."""
    absorbed: tuple[str, ...] = ()
    """Nodes folded away into it (e.g. BatchNormalization folded into a convolution)."""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    time_ms: float | None = None
    branches: tuple[tuple[str, ...], ...] = ()
    """For a horizontally merged layer, the nodes of each former layer, in order; empty
    for any other layer."""
    engine_type: str | None = None
    """TensorRT's own ``LayerType`` for an actual engine layer (``CaskConvolution``, ``kgen``
    ...); None for predicted layers."""
    shared: tuple[str, ...] = ()
    """Nodes of :attr:`nodes` that another layer owns and this one computes too (a
    convolution's bias moved into the next kernel, one of several kernels of one node);
    empty for most layers, always empty in actual plans (which name no owner)."""
    stream: int | None = None
    """The engine stream that runs an actual layer (the inspector's or TensorRT-RTX's
    ``StreamId``: 0 the main stream, others auxiliary streams); None when not known."""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, Kind):
            object.__setattr__(self, "kind", Kind(self.kind))

    @property
    def inserted(self) -> bool:
        """True for a layer the engine added that computes no ONNX node (copy, reformat)."""
        return not self.nodes

    @property
    def owned(self) -> tuple[str, ...]:
        """The nodes this layer owns: :attr:`nodes` less :attr:`shared`."""
        if not self.shared:
            return self.nodes
        shared = set(self.shared)
        return tuple(n for n in self.nodes if n not in shared)

    @property
    def merged(self) -> bool:
        """True for a horizontally merged layer (it has branches)."""
        return bool(self.branches)


@dataclass(frozen=True)
class Plan:
    """An ordered list of layers plus the nodes that were removed, with how and why."""

    layers: tuple[Layer, ...]
    eliminated: Mapping[str, Elimination] = field(default_factory=dict)
    source: str = "predicted"
    target: str | None = None
    """The fusionlab target: the one predicted for, or for an actual plan the one that models
    the builder that made it (known for engines fusionlab built, else None)."""
    precision: str = "fp32"
    batch: int | None = None
    model: str | None = None

    def layer_of(self, node: str) -> Layer | None:
        """The layer that owns ``node`` (computes it, not as a shared node), or None
        (eliminated or unknown)."""
        for layer in self.layers:
            if node in layer.nodes and node not in layer.shared:
                return layer
        return None

    def node_to_layer(self) -> dict[str, int]:
        """ONNX node name -> index of the layer that owns it (see :attr:`Layer.shared`)."""
        return {n: i for i, layer in enumerate(self.layers) for n in layer.owned}

    def node_to_layers(self) -> dict[str, tuple[int, ...]]:
        """ONNX node name -> indexes of every layer that computes it, in plan order."""
        found: dict[str, list[int]] = {}
        for i, layer in enumerate(self.layers):
            for n in dict.fromkeys(layer.nodes):
                found.setdefault(n, []).append(i)
        return {n: tuple(ix) for n, ix in found.items()}

    @property
    def covered(self) -> frozenset[str]:
        """All ONNX nodes computed by some layer."""
        return frozenset(n for layer in self.layers for n in layer.nodes)

    def with_layers(self, layers: Iterable[Layer]) -> Plan:
        """A copy with other layers (same eliminated nodes and metadata)."""
        return replace(self, layers=tuple(layers))
