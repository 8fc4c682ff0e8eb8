"""GoogLeNet / Inception-v1 family: one Inception (3a) block, the full network (with and
without BatchNormalization) and a synthetic chain of blocks for benchmarks.

Sources: Szegedy et al., "Going deeper with convolutions" (2014), Table 1 (channel counts);
BVLC's Caffe model ``models/bvlc_googlenet/deploy.prototxt`` (layer names, LRN, ceil-mode
pooling, dropout 0.4, InnerProduct + Softmax head).

Every node has a readable name in the Caffe style (``inception_3a/1x1``,
``inception_3a/1x1/bn``, ``inception_3a/relu_1x1``, ..., ``inception_3a/output``) and every
node's output tensor is named after the node: ONNX tensors are written once, so Caffe's
in-place ReLU and Dropout blobs cannot keep the name of their input.

>>> m = inception3a(batch=1)
>>> [n.name for n in m.graph.node][:4]
['inception_3a/1x1', 'inception_3a/1x1/bn', 'inception_3a/relu_1x1', 'inception_3a/3x3_reduce']
>>> len(inception_chain(3, batch=2).graph.node)
60
"""

from __future__ import annotations

from typing import NamedTuple

import onnx

from fusionlab.errors import FusionlabError
from fusionlab.zoo._builder import Builder
from fusionlab.zoo.catalog import CATALOG, chain_channels


class Branches(NamedTuple):
    """Output channels of an Inception block's convolutions (paper, Table 1)."""

    c1x1: int
    c3x3_reduce: int
    c3x3: int
    c5x5_reduce: int
    c5x5: int
    pool_proj: int

    @property
    def out(self) -> int:
        """Channels of the block's concatenated output."""
        return self.c1x1 + self.c3x3 + self.c5x5 + self.pool_proj


GOOGLENET_BLOCKS: dict[str, Branches] = {
    "3a": Branches(64, 96, 128, 16, 32, 32),
    "3b": Branches(128, 128, 192, 32, 96, 64),
    "4a": Branches(192, 96, 208, 16, 48, 64),
    "4b": Branches(160, 112, 224, 24, 64, 64),
    "4c": Branches(128, 128, 256, 24, 64, 64),
    "4d": Branches(112, 144, 288, 32, 64, 64),
    "4e": Branches(256, 160, 320, 32, 128, 128),
    "5a": Branches(256, 160, 320, 32, 128, 128),
    "5b": Branches(384, 192, 384, 48, 128, 128),
}
"""The nine Inception blocks of GoogLeNet, in order (Szegedy et al. 2014, Table 1)."""

POOL_AFTER = frozenset({"3b", "4e"})
"""Blocks followed by a 3x3 stride-2 max pooling (pool3, pool4)."""

BN_EPS = 1e-3
"""BatchNormalization epsilon of the BN variants (torchvision's GoogLeNet uses 0.001)."""

SEED_INCEPTION3A, SEED_GOOGLENET, SEED_CAFFE, SEED_CHAIN = 3, 2014, 1409, 4842


def _conv_act(b: Builder, prefix: str, part: str, x: str, cin: int, cout: int, k: int,
              *, stride: int = 1, bn: bool) -> str:
    """``<prefix>/<part>`` conv (+ ``/bn``) + ``<prefix>/relu_<part>``: the Caffe naming."""
    pad = (k - 1) // 2
    if bn:
        y = b.conv(f"{prefix}/{part}", x, cin, cout, k, stride=stride, pad=pad)
        y = b.bn(f"{prefix}/{part}/bn", y, cout, BN_EPS)
    else:
        y = b.conv(f"{prefix}/{part}", x, cin, cout, k, stride=stride, pad=pad, bias=True)
    return b.node("Relu", f"{prefix}/relu_{part.removesuffix('_s2')}", [y])  # conv1/relu_7x7


def inception_block(b: Builder, prefix: str, x: str, cin: int, c: Branches, *, bn: bool) -> str:
    """One Inception block, nodes in the Caffe prototxt's order; returns the Concat's output.

    Four branches read ``x``: 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5; 3x3 max pooling
    (stride 1, pad 1) -> 1x1 projection. Each convolution is followed by a ReLU (and, with
    ``bn``, a BatchNormalization in between); a channel Concat joins the branches.
    """
    o1 = _conv_act(b, prefix, "1x1", x, cin, c.c1x1, 1, bn=bn)
    r3 = _conv_act(b, prefix, "3x3_reduce", x, cin, c.c3x3_reduce, 1, bn=bn)
    o3 = _conv_act(b, prefix, "3x3", r3, c.c3x3_reduce, c.c3x3, 3, bn=bn)
    r5 = _conv_act(b, prefix, "5x5_reduce", x, cin, c.c5x5_reduce, 1, bn=bn)
    o5 = _conv_act(b, prefix, "5x5", r5, c.c5x5_reduce, c.c5x5, 5, bn=bn)
    p = b.maxpool(f"{prefix}/pool", x, 3, 1, 1)
    op = _conv_act(b, prefix, "pool_proj", p, cin, c.pool_proj, 1, bn=bn)
    return b.node("Concat", f"{prefix}/output", [o1, o3, o5, op], axis=1)


def inception3a(batch: int | None = None) -> onnx.ModelProto:
    """GoogLeNet's Inception (3a) block alone, with BatchNormalization: [N,192,28,28] -> 256."""
    b = Builder("inception3a", SEED_INCEPTION3A, batch)
    x = b.input("data", 192, 28, 28)
    c = GOOGLENET_BLOCKS["3a"]
    y = inception_block(b, "inception_3a", x, 192, c, bn=True)
    return b.model([(y, (c.out, 28, 28))], doc=DESCRIPTIONS["inception3a"])


def _stem(b: Builder, x: str, *, bn: bool) -> str:
    """conv1 .. pool2 of GoogLeNet (LRN only in the Caffe model, which has no BN)."""
    y = _conv_act(b, "conv1", "7x7_s2", x, 3, 64, 7, stride=2, bn=bn)
    y = b.maxpool("pool1/3x3_s2", y, 3, 2, ceil=True)
    if not bn:
        y = b.node("LRN", "pool1/norm1", [y], alpha=1e-4, beta=0.75, bias=1.0, size=5)
    y = _conv_act(b, "conv2", "3x3_reduce", y, 64, 64, 1, bn=bn)
    y = _conv_act(b, "conv2", "3x3", y, 64, 192, 3, bn=bn)
    if not bn:
        y = b.node("LRN", "conv2/norm2", [y], alpha=1e-4, beta=0.75, bias=1.0, size=5)
    return b.maxpool("pool2/3x3_s2", y, 3, 2, ceil=True)


def _body(b: Builder, x: str, *, bn: bool) -> str:
    """The nine Inception blocks with pool3 and pool4 between them; 1024 channels, 7x7."""
    cin = 192
    for tag, c in GOOGLENET_BLOCKS.items():
        x = inception_block(b, f"inception_{tag}", x, cin, c, bn=bn)
        cin = c.out
        if tag in POOL_AFTER:
            x = b.maxpool(f"pool{tag[0]}/3x3_s2", x, 3, 2, ceil=True)
    return x


def googlenet(batch: int | None = None) -> onnx.ModelProto:
    """GoogLeNet (Inception-v1) with BatchNormalization after every convolution."""
    b = Builder("googlenet", SEED_GOOGLENET, batch)
    x = b.input("data", 3, 224, 224)
    y = _body(b, _stem(b, x, bn=True), bn=True)
    y = b.node("GlobalAveragePool", "pool5/7x7_s1", [y])
    y = b.node("Flatten", "loss3/classifier/flatten", [y], axis=1)
    y = b.gemm("loss3/classifier", y, 1024, 1000)
    return b.model([(y, (1000,))], doc=DESCRIPTIONS["googlenet"])


def googlenet_caffe(batch: int | None = None) -> onnx.ModelProto:
    """BVLC GoogLeNet as Caffe's deploy.prototxt: ReLU, LRN, Dropout, InnerProduct, Softmax.

    Node names are the Caffe layer names. Caffe's InnerProduct flattens its input itself;
    ONNX's Gemm needs 2-D input, so a Flatten named ``loss3/classifier/flatten`` (part of
    the InnerProduct layer, hence under its name) comes before the Gemm.
    """
    b = Builder("googlenet-caffe", SEED_CAFFE, batch)
    x = b.input("data", 3, 224, 224)
    y = _body(b, _stem(b, x, bn=False), bn=False)
    y = b.node("AveragePool", "pool5/7x7_s1", [y], kernel_shape=[7, 7], strides=[1, 1])
    ratio = b.scalar("pool5/drop_7x7_s1.ratio", 0.4)
    y = b.node("Dropout", "pool5/drop_7x7_s1", [y, ratio])
    y = b.node("Flatten", "loss3/classifier/flatten", [y], axis=1)
    y = b.gemm("loss3/classifier", y, 1024, 1000)
    y = b.node("Softmax", "prob", [y], axis=1)
    return b.model([(y, (1000,))], doc=DESCRIPTIONS["googlenet-caffe"], graph_name="GoogleNet")


CHAIN_SIZE = 28
"""Height and width of the chain's feature maps."""


def inception_chain(blocks: int, width: float = 0.125, batch: int | None = None) -> onnx.ModelProto:
    """``blocks`` Inception blocks in a row, 20 nodes each, for benchmarks.

    Each block has the inception3a structure (six conv/BN/ReLU, a max pooling, a Concat)
    with the branch widths in inception3a's output proportions (1/4, 1/2, 1/8, 1/8 of
    the block's channels; reduces 3/8 and 1/16), so a block's input and output both have
    :func:`chain_channels` channels; feature maps are 28x28. With the default width
    (32 channels) a block holds about 3,000 weights (16 kB with names): 5,000 blocks,
    100,000 nodes, are about 80 MB.
    """
    if blocks < 1:
        raise FusionlabError(f"inception chain: blocks must be at least 1, got {blocks}")
    ch = chain_channels(width)
    c = Branches(ch // 4, 3 * ch // 8, ch // 2, ch // 16, ch // 8, ch // 8)
    b = Builder(f"inception-chain-{blocks}", SEED_CHAIN, batch)
    x = b.input("data", ch, CHAIN_SIZE, CHAIN_SIZE)
    digits = len(str(blocks))
    for i in range(blocks):
        x = inception_block(b, f"block_{i:0{digits}d}", x, ch, c, bn=True)
    doc = f"{blocks} Inception blocks of {ch} channels (synthetic, for benchmarks)"
    return b.model([(x, (ch, CHAIN_SIZE, CHAIN_SIZE))], doc=doc)


# the lines live in fusionlab.zoo.catalog, which `fusionlab models list` reads without importing onnx
DESCRIPTIONS = {name: CATALOG[name] for name in ("inception3a", "googlenet", "googlenet-caffe")}
