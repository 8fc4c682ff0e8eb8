"""A small Vision Transformer, ViT-S/16 (Dosovitskiy et al., "An Image is Worth 16x16
Words", 2021; the "S" size of Touvron et al. 2021: 12 layers, 6 heads, width 384, MLP
1536), in torchvision's ``VisionTransformer`` (``nn.MultiheadAttention``), as PyTorch's
TorchScript ONNX exporter writes it (``torch.onnx.export(model.eval(), x, f,
dynamo=False, opset_version=17, input_names=["input"], output_names=["output"],
dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}})``, checked
against torch 2.13; opset 13 cannot export it: attention needs opset 14).

What the export writes, and this module reproduces:

- Patch embedding: ``Conv`` 16x16 stride 16, ``Reshape`` to ``[n, 384, 196]`` with the
  shape computed from ``Shape``/``Gather``/``Div`` of the input, ``Transpose``.
- Class token: ``Expand(class_token, ·)`` to ``[n, -1, -1]`` (the ``-1`` replaced via
  ``ConstantOfShape``/``Equal``/``Where``), ``Concat`` in front of the patches; position
  embedding ``Add``.
- Each encoder layer: ``LayerNormalization``; attention as the exporter lowers
  ``nn.MultiheadAttention``: ``Transpose`` to sequence-first, one ``MatMul`` with the
  packed q/k/v weight (``onnx::MatMul_<id>``) + ``Add(bias, ·)``, ``Reshape``/
  ``Unsqueeze``/``Transpose``/``Squeeze`` glue splitting q, k and v (``Gather`` 0, 1, 2),
  three ``Reshape`` + ``Transpose`` to heads, the scale ``1/sqrt(head_dim)`` computed at
  run time and applied as ``Sqrt`` of it to both q and kᵀ (``Mul``), ``MatMul``,
  ``Softmax``, ``MatMul``, ``Transpose``/``Reshape`` back, ``Gemm`` (``out_proj``), and
  about 110 ``Shape``/``Gather``/``Unsqueeze``/``Concat`` nodes computing the shapes;
  residual ``Add``; ``LayerNormalization``; MLP ``MatMul`` + ``Add``, exact GELU (``Erf``
  form), ``MatMul`` + ``Add``; residual ``Add``.
- Head: ``LayerNormalization``, ``Gather`` of the class token (axis 1), ``Gemm``.
- Node names are scope paths (``/encoder/layers/encoder_layer_0/self_attention/MatMul``),
  tensors ``<node>_output_0``; see :class:`~fusionlab.zoo._builder.TorchScriptBuilder`.

22 M parameters (88 MB): generated on demand, never committed.

>>> len(vit_s16(batch=1).graph.node)
1996
"""

from __future__ import annotations

import numpy as np
import onnx

from fusionlab.zoo._builder import TorchScriptBuilder
from fusionlab.zoo.catalog import CATALOG

IMAGE, PATCH, LAYERS, HEADS, WIDTH, MLP = 224, 16, 12, 6, 384, 1536
SEQ = (IMAGE // PATCH) ** 2 + 1
"""197: the patches and the class token."""
LN_EPS = 1e-6
INT64_MAX = np.iinfo(np.int64).max
SEED_VIT_S16 = 2010


# The TorchScript value ids of the loose constants (``onnx::Unsqueeze_<id>``) count values
# the export makes and drops; the ``b.skip()`` calls put them where comparison with
# torch 2.13's export shows them.


class _Shared:
    """Scalar constants the export creates once, before the patch embedding, and reuses
    (``/Constant`` is 0, ``/conv_proj/Constant`` 1, ``/Constant_2`` 2)."""

    zero = one = two = ""


def _shape_dims(b: TorchScriptBuilder, x: str) -> tuple[str, str, str, str]:
    """``n, c, h, w = x.shape`` and ``h // 16``, ``w // 16`` as the export computes them."""
    _Shared.zero = b.constant("", 0)
    n = b.emit("Gather", "", [b.emit("Shape", "", [x]), b.constant("", 0)], axis=0)
    _Shared.two = b.constant("", 2)
    h = b.emit("Gather", "", [b.emit("Shape", "", [x]), b.constant("", 2)], axis=0)
    w = b.emit("Gather", "", [b.emit("Shape", "", [x]), b.constant("", 3)], axis=0)
    b.skip(2)  # the two torch._assert checks of the image size
    n_h = b.emit("Div", "", [h, b.constant("", PATCH)])
    n_h = b.emit("Cast", "", [b.emit("Cast", "", [n_h], to=7)], to=7)
    n_w = b.emit("Div", "", [w, b.constant("", PATCH)])
    n_w = b.emit("Cast", "", [b.emit("Cast", "", [n_w], to=7)], to=7)
    return n, h, n_h, n_w


def _embed(b: TorchScriptBuilder, x: str) -> str:
    """Patch embedding, class token, position embedding: ``[n, 197, 384]``."""
    token = b.param("class_token", b.small((1, 1, WIDTH), 0.02))  # state_dict order
    n, _, n_h, n_w = _shape_dims(b, x)
    _Shared.one = b.constant("conv_proj", 1)
    y = b.named_conv("conv_proj", x, 3, WIDTH, PATCH, stride=PATCH, pad=0)
    patches = b.emit("Mul", "", [n_h, n_w])
    shape = [b.unsqueeze("", n), _literal(b, "", WIDTH), b.unsqueeze("", patches)]
    y = b.emit("Reshape", "", [y, b.emit("Concat", "", shape, axis=0)], allowzero=0)
    y = b.emit("Transpose", "", [y], perm=[0, 2, 1])
    b.skip()
    # class_token.expand(n, -1, -1)
    batch = b.emit("Gather", "", [b.emit("Shape", "", [y]), b.constant("", 0)], axis=0)
    sizes = [b.emit("Unsqueeze", "", [batch, b.constant("", [0])]), b.constant("", [-1]),
             b.constant("", [-1])]
    sizes_t = b.emit("Reshape", "", [b.emit("Concat", "", sizes, axis=0), b.constant("", [-1])],
                     allowzero=0)
    ones = b.emit("ConstantOfShape", "", [b.emit("Shape", "", [sizes_t])],
                  value=onnx.numpy_helper.from_array(np.array([1], dtype=np.int64), ""))
    minus = b.emit("Mul", "", [ones, b.constant("", -1)])
    sizes_t = b.emit("Where", "", [b.emit("Equal", "", [sizes_t, minus]), ones, sizes_t])
    y = b.emit("Concat", "", [b.emit("Expand", "", [token, sizes_t]), y], axis=1)
    b.skip(3)
    pos = b.param("encoder.pos_embedding", b.small((1, SEQ, WIDTH), 0.02))
    return b.emit("Add", "encoder", [y, pos])


def _literal(b: TorchScriptBuilder, module: str, value: int) -> str:
    """A Python int in a shape list: a 1-D Constant, made from a scalar one (two ids)."""
    out = b.constant(module, [value])
    b.skip()
    return out


def _heads_shape(b: TorchScriptBuilder, a: str, first: str, heads: bool, *rest: str) -> str:
    """``Concat`` of a shape list: ``first``, then ``HEADS`` (if ``heads``), then ``rest``."""
    dims = [b.unsqueeze(a, first)]
    if heads:
        dims.append(_literal(b, a, HEADS))
    dims += [b.unsqueeze(a, d) for d in rest]
    return b.emit("Concat", a, dims, axis=0)


def _attention(b: TorchScriptBuilder, a: str, x: str, first: bool) -> str:
    """``nn.MultiheadAttention(x, x, x, need_weights=False)`` as the export lowers it."""
    w_in = b.rng.standard_normal((WIDTH, 3 * WIDTH), dtype=np.float32) * np.float32(WIDTH**-0.5)
    bias_in = b.param(f"{a}.in_proj_bias", b.small((3 * WIDTH,), 0.01))
    w_out = b.param(f"{a}.out_proj.weight", b.small((WIDTH, WIDTH), WIDTH**-0.5))
    bias_out = b.param(f"{a}.out_proj.bias", b.small((WIDTH,), 0.01))

    x = b.emit("Transpose", a, [x], perm=[1, 0, 2])  # batch_first -> sequence first
    dims = [b.emit("Gather", a, [b.emit("Shape", a, [x]), b.constant(a, i)], axis=0)
            for i in range(3)]
    tgt_len, bsz, embed = dims
    head_dim = b.emit("Div", a, [embed, b.constant(a, HEADS)])
    head_dim = b.emit("Cast", a, [b.emit("Cast", a, [head_dim], to=7)], to=7)
    shape = b.emit("Shape", a, [x])
    starts = b.constant(a, [0])
    last = b.emit("Slice", a, [shape, b.constant(a, [-1]), b.constant(a, [INT64_MAX]), starts])
    last = b.emit("Squeeze", a, [last, b.constant(a, [0])])
    b.skip()  # the traced in_proj_weight.t(), folded into the created weight
    qkv = b.emit("MatMul", a, [x, b.created("MatMul", w_in)])
    qkv = b.emit("Add", a, [bias_in, qkv])
    # unflatten(-1, (3, E)): the new shape is shape[:-1] + [3, E]
    three_e = b.emit("Concat", a, [b.constant(a, [3]), b.unsqueeze(a, last)], axis=0)
    axis = b.emit("Mod", a, [b.constant(a, [2]), b.constant(a, [3])])
    shape = b.emit("Shape", a, [qkv])
    zero = b.constant(a, [0])
    head = b.emit("Slice", a, [shape, zero, b.emit("Reshape", a, [axis, b.constant(a, [1])])])
    after = b.emit("Add", a, [axis, b.constant(a, [1])])
    after = b.emit("Reshape", a, [after, b.constant(a, [1])])
    tail = b.emit("Slice", a, [shape, after, b.constant(a, [INT64_MAX])])
    qkv = b.emit("Reshape", a, [qkv, b.emit("Concat", a, [head, three_e, tail], axis=0)],
                 allowzero=0)
    # .unsqueeze(0).transpose(0, -2).squeeze(-2): [3, L, N, E]
    qkv = b.emit("Unsqueeze", a, [qkv, b.constant(a, [0])])
    qkv = b.emit("Transpose", a, [qkv], perm=[3, 1, 2, 0, 4])
    qkv = b.emit("Squeeze", a, [qkv, b.constant(a, [3])])
    b.skip(2)
    q, k, v = (b.emit("Gather", a, [qkv, i], axis=0) for i in (_Shared.zero, _Shared.one,
                                                                 _Shared.two))
    bsz_heads = b.emit("Mul", a, [bsz, b.constant(a, HEADS)])
    # q.view(L, N * H, D).transpose(0, 1); k, v with the sequence length a constant
    q = b.emit("Reshape", a, [q, _heads_shape(b, a, tgt_len, False, bsz_heads, head_dim)],
               allowzero=0)
    q = b.emit("Transpose", a, [q], perm=[1, 0, 2])
    b.skip()
    kv = []
    for j, t in enumerate((k, v)):
        dims_kv = [_literal(b, a, SEQ), b.unsqueeze(a, bsz_heads), b.unsqueeze(a, head_dim)]
        t = b.emit("Reshape", a, [t, b.emit("Concat", a, dims_kv, axis=0)], allowzero=0)
        kv.append(b.emit("Transpose", a, [t], perm=[1, 0, 2]))
        if j == 0 or first:  # for v, one value more in the first layer only
            b.skip()
    k, v = kv
    src_len = b.emit("Gather", a, [b.emit("Shape", a, [k]), b.constant(a, 1)], axis=0)
    # view(N, H, L, D) for the attention
    q = b.emit("Reshape", a, [q, _heads_shape(b, a, bsz, True, tgt_len, head_dim)], allowzero=0)
    k_shape = _heads_shape(b, a, bsz, True, src_len, head_dim)
    v_shape = _heads_shape(b, a, bsz, True, src_len, head_dim)
    k = b.emit("Reshape", a, [k, k_shape], allowzero=0)
    v = b.emit("Reshape", a, [v, v_shape], allowzero=0)
    # scaled_dot_product_attention (opset 14 lowering): scale = 1 / sqrt(D), sqrt(scale)
    # applied to q and to k transposed
    d = b.emit("Slice", a, [b.emit("Shape", a, [q]), b.constant(a, [-1]),
                            b.constant(a, [INT64_MAX])])
    scale = b.emit("Sqrt", a, [b.emit("Cast", a, [d], to=1)])
    scale = b.emit("Div", a, [b.constant(a, [1.0], np.float32), scale])
    scale = b.emit("Cast", a, [scale], to=1)
    kt = b.emit("Transpose", a, [k], perm=[0, 1, 3, 2])
    q = b.emit("Mul", a, [q, b.emit("Sqrt", a, [scale])])
    kt = b.emit("Mul", a, [kt, b.emit("Sqrt", a, [scale])])
    attn = b.emit("Softmax", a, [b.emit("MatMul", a, [q, kt])], axis=-1)
    y = b.emit("MatMul", a, [attn, v])
    # permute(2, 0, 1, 3).view(L * N, E), out_proj, view(L, N, E), back to batch first
    y = b.emit("Transpose", a, [y], perm=[2, 0, 1, 3])
    rows = b.emit("Mul", a, [bsz, tgt_len])
    y = b.emit("Reshape", a, [y, _heads_shape(b, a, rows, False, embed)], allowzero=0)
    y = b.emit("Gemm", a, [y, w_out, bias_out], alpha=1.0, beta=1.0, transB=1)
    cols = b.emit("Gather", a, [b.emit("Shape", a, [y]), b.constant(a, 1)], axis=0)
    y = b.emit("Reshape", a, [y, _heads_shape(b, a, tgt_len, False, bsz, cols)], allowzero=0)
    y = b.emit("Transpose", a, [y], perm=[1, 0, 2])
    b.skip()
    return y


def _encoder_layer(b: TorchScriptBuilder, m: str, x: str, first: bool) -> str:
    y = b.layer_norm(f"{m}.ln_1", x, WIDTH, LN_EPS)
    y = _attention(b, f"{m}.self_attention", y, first)
    x = b.emit("Add", m, [y, x])
    y = b.layer_norm(f"{m}.ln_2", x, WIDTH, LN_EPS)
    # the folding of in_proj makes 7 more values before mlp.0's weight
    y = b.linear(f"{m}.mlp.0", y, WIDTH, MLP, created_skip=7)
    y = b.gelu(f"{m}.mlp.1", y)
    y = b.linear(f"{m}.mlp.3", y, MLP, WIDTH, scale=0.5 * MLP**-0.5)
    return b.emit("Add", m, [x, y])


def _state_dict_size() -> int:
    """torchvision's ``state_dict`` entries: 4 before the layers, 12 per layer, 4 after."""
    return 4 + 12 * LAYERS + 4


def vit_s16(batch: int | None = None) -> onnx.ModelProto:
    """ViT-S/16 (224x224, 1000 classes) at opset 17: 1,996 nodes, 22 M parameters."""
    b = TorchScriptBuilder("vit-s16", SEED_VIT_S16, batch, opset=17,
                           first_id=_state_dict_size() + 1)
    x = _embed(b, b.input("input", 3, IMAGE, IMAGE))
    for i in range(LAYERS):
        x = _encoder_layer(b, f"encoder.layers.encoder_layer_{i}", x, i == 0)
    x = b.layer_norm("encoder.ln", x, WIDTH, LN_EPS)
    x = b.emit("Gather", "", [x, _Shared.zero], axis=1)  # x[:, 0], the class token
    x = b.fc("heads.head", x, WIDTH, 1000, scale=WIDTH**-0.5)
    return b.model([(x, (1000,))], doc=DESCRIPTION, created_gap=2)  # as torch 2.13 numbers


DESCRIPTION = CATALOG["vit-s16"]
