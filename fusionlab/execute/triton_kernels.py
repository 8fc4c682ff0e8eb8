# mypy: disable-error-code="untyped-decorator,no-untyped-def,misc"
# (the @triton.jit kernels are untyped by nature: Triton reads their annotations itself)
"""Hand-written Triton kernels of the fused executor (CUDA only).

Three memory-bound kernels that PyTorch has no single call for:

- :func:`max_pool` — 2-D max pooling over channels-last activations without the int64 index
  tensor that ``F.max_pool2d`` (``max_pool2d_with_indices``) writes beside its output; reads
  and writes through explicit strides, so the output may be a channel slice of an
  eliminated Concat's buffer.
- :func:`epilogue` — a convolution's epilogue (bias, residual Add, ReLU; any subset, or none:
  a copy) from a dense convolution output into its destination: a fresh tensor or a Concat
  slot, in one pass. It also converts layouts (an NCHW convolution output into a
  channels-last destination).
- :func:`split_epilogue` — the epilogue of a horizontally merged convolution: the wide output
  is read once and each member's channels go, with bias and ReLU, to that member's own
  destination (a Concat slot or a dense tensor), so no member is a strided view that a
  consumer must copy, and no ``copy`` layer is needed.

Activations are addressed as ``[N, H*W, C]`` through three strides (batch, pixel, channel),
which covers channels-last tensors, channel slices of channels-last buffers and contiguous
NCHW tensors; :func:`pixel_strides` says whether a tensor can be addressed so. Arithmetic is in
float32, rounded once on the store.

This module imports torch and triton; :mod:`fusionlab.execute.fused` imports it only on CUDA,
through :func:`fusionlab.execute.fused.triton_kernels`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import triton  # type: ignore[import-not-found,unused-ignore]
import triton.language as tl  # type: ignore[import-not-found,unused-ignore]

Tensor = torch.Tensor

MAX_SPLIT = 4
"""Most destinations one :func:`split_epilogue` launch writes."""


def pixel_strides(t: Tensor) -> tuple[int, int, int] | None:
    """``(batch, pixel, channel)`` strides of a 4-D tensor addressed as ``[N, H*W, C]``.

    None when the H and W dimensions cannot be merged into one pixel index (W's stride times
    W must equal H's stride, unless H is 1).

    >>> pixel_strides(torch.empty(2, 8, 3, 5).contiguous(memory_format=torch.channels_last))
    (120, 8, 1)
    >>> pixel_strides(torch.empty(2, 8, 3, 5))
    (120, 1, 15)
    >>> print(pixel_strides(torch.empty(2, 8, 6, 5)[:, :, ::2]))
    None
    """
    if t.dim() != 4:
        return None
    sn, sc, sh, sw = t.stride()
    _, _, h, w = t.shape
    if h > 1 and w > 1 and sh != sw * w:
        return None
    pixel = sw if w > 1 else sh
    return sn, pixel, sc


def _blocks(channels: int, budget: int) -> tuple[int, int]:
    """``(BLOCK_P, BLOCK_C)``: up to 128 channels a tile, ``budget`` elements a tile."""
    bc = min(128, max(16, triton.next_power_of_2(channels)))
    return max(budget // bc, 16), bc


@triton.jit
def _tile(y_ptr, ysn, ysp, ysc, b_ptr, r_ptr, rsn, rsp, rsc, o_ptr, osn, osp, osc,
          n_cols, P, HW, pid_p, pid_c,
          HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, RELU: tl.constexpr,
          BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """One [BLOCK_P pixels, BLOCK_C channels] tile of an epilogue (b_ptr already offset)."""
    rows = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    cols = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    rmask = rows < P
    cmask = cols < n_cols
    mask = rmask[:, None] & cmask[None, :]
    n = (rows // HW).to(tl.int64)
    hw = (rows % HW).to(tl.int64)
    c = cols.to(tl.int64)
    y = tl.load(y_ptr + (n * ysn + hw * ysp)[:, None] + (c * ysc)[None, :], mask=mask)
    y = y.to(tl.float32)
    if HAS_BIAS:
        y += tl.load(b_ptr + cols, mask=cmask).to(tl.float32)[None, :]
    if HAS_RES:
        z = tl.load(r_ptr + (n * rsn + hw * rsp)[:, None] + (c * rsc)[None, :], mask=mask)
        y += z.to(tl.float32)
    if RELU:
        y = tl.maximum(y, 0.0)
    tl.store(o_ptr + (n * osn + hw * osp)[:, None] + (c * osc)[None, :],
             y.to(o_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["P", "HW"])
def triton_fl_epilogue(y_ptr, ysn, ysp, ysc, b_ptr, r_ptr, rsn, rsp, rsc, o_ptr, osn, osp, osc,
                     C, P, HW,
                     HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, RELU: tl.constexpr,
                     BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    _tile(y_ptr, ysn, ysp, ysc, b_ptr, r_ptr, rsn, rsp, rsc, o_ptr, osn, osp, osc,
          C, P, HW, tl.program_id(0), tl.program_id(1),
          HAS_BIAS, HAS_RES, RELU, BLOCK_P, BLOCK_C)


@triton.jit(do_not_specialize=["P", "HW"])
def triton_fl_split(y_ptr, ysn, ysp, b_ptr, P, HW,
                  o0, s0n, s0p, off0, n0, o1, s1n, s1p, off1, n1,
                  o2, s2n, s2p, off2, n2, o3, s3n, s3p, off3, n3,
                  HAS_BIAS: tl.constexpr, RELU: tl.constexpr,
                  BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    pid_p = tl.program_id(0)
    pid_c = tl.program_id(1)
    d = tl.program_id(2)
    # channel strides are 1 (dense channels-last wide output, channels-last destinations)
    if d == 0:
        if pid_c * BLOCK_C < n0:
            _tile(y_ptr + off0, ysn, ysp, 1, b_ptr + off0, y_ptr, 0, 0, 0, o0, s0n, s0p, 1,
                  n0, P, HW, pid_p, pid_c, HAS_BIAS, False, RELU, BLOCK_P, BLOCK_C)
    elif d == 1:
        if pid_c * BLOCK_C < n1:
            _tile(y_ptr + off1, ysn, ysp, 1, b_ptr + off1, y_ptr, 0, 0, 0, o1, s1n, s1p, 1,
                  n1, P, HW, pid_p, pid_c, HAS_BIAS, False, RELU, BLOCK_P, BLOCK_C)
    elif d == 2:
        if pid_c * BLOCK_C < n2:
            _tile(y_ptr + off2, ysn, ysp, 1, b_ptr + off2, y_ptr, 0, 0, 0, o2, s2n, s2p, 1,
                  n2, P, HW, pid_p, pid_c, HAS_BIAS, False, RELU, BLOCK_P, BLOCK_C)
    else:
        if pid_c * BLOCK_C < n3:
            _tile(y_ptr + off3, ysn, ysp, 1, b_ptr + off3, y_ptr, 0, 0, 0, o3, s3n, s3p, 1,
                  n3, P, HW, pid_p, pid_c, HAS_BIAS, False, RELU, BLOCK_P, BLOCK_C)


@triton.jit(do_not_specialize=["P", "H", "W", "OH", "OW"])
def triton_fl_max_pool(x_ptr, xsn, xsh, xsw, o_ptr, osn, osh, osw, C, P, H, W, OH, OW,
                     KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr,
                     PH: tl.constexpr, PW: tl.constexpr,
                     BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    rmask = rows < P
    cmask = cols < C
    ow = rows % OW
    t = rows // OW
    oh = t % OH
    n = (t // OH).to(tl.int64)
    c = cols.to(tl.int64)
    acc = tl.full([BLOCK_P, BLOCK_C], float("-inf"), o_ptr.dtype.element_ty)
    for kh in tl.static_range(KH):
        ih = oh * SH - PH + kh
        hok = rmask & (ih >= 0) & (ih < H)
        for kw in tl.static_range(KW):
            iw = ow * SW - PW + kw
            ok = hok & (iw >= 0) & (iw < W)
            base = n * xsn + ih.to(tl.int64) * xsh + iw.to(tl.int64) * xsw
            v = tl.load(x_ptr + base[:, None] + c[None, :], mask=ok[:, None] & cmask[None, :],
                        other=float("-inf"))
            acc = tl.maximum(acc, v.to(acc.dtype), propagate_nan=tl.PropagateNan.ALL)
    out = n * osn + oh.to(tl.int64) * osh + ow.to(tl.int64) * osw
    tl.store(o_ptr + out[:, None] + c[None, :], acc, mask=rmask[:, None] & cmask[None, :])


def epilogue(y: Tensor, out: Tensor, bias: Tensor | None = None, residual: Tensor | None = None,
             relu: bool = False) -> Tensor:
    """``out = relu?(y + bias + residual)`` in one pass (4-D, same shape); returns ``out``.

    Any of bias, residual and ReLU may be left out (with none, a strided copy). ``y``,
    ``residual`` and ``out`` may each be channels-last, NCHW or a channel slice of a larger
    channels-last buffer (see :func:`pixel_strides`).
    """
    ys, os_ = pixel_strides(y), pixel_strides(out)
    rs = pixel_strides(residual) if residual is not None else (0, 0, 0)
    if ys is None or os_ is None or rs is None or y.shape != out.shape:
        raise ValueError("epilogue: tensors must be 4-D of one shape with mergeable H, W")
    n, c, h, w = y.shape
    p = n * h * w
    bp, bc = _blocks(c, 4096)
    grid = (triton.cdiv(p, bp), triton.cdiv(c, bc))
    triton_fl_epilogue[grid](
        y, *ys, bias if bias is not None else y, residual if residual is not None else y, *rs,
        out, *os_, c, p, h * w,
        HAS_BIAS=bias is not None, HAS_RES=residual is not None, RELU=relu,
        BLOCK_P=bp, BLOCK_C=bc, num_warps=4)
    return out


def split_epilogue(y: Tensor, outs: Sequence[Tensor], bias: Tensor | None = None,
                   relu: bool = False) -> None:
    """Members of a merged convolution's dense channels-last output ``y`` into ``outs``.

    ``outs[k]`` receives channels ``[sum(sizes[:k]), sum(sizes[:k+1]))`` of ``y`` (plus the
    same channels of ``bias``, then ReLU), at most :data:`MAX_SPLIT` destinations, each
    channels-last (dense or a Concat slot).
    """
    if not 1 <= len(outs) <= MAX_SPLIT:
        raise ValueError(f"split_epilogue: 1 to {MAX_SPLIT} destinations, got {len(outs)}")
    ys = pixel_strides(y)
    if ys is None or ys[2] != 1:
        raise ValueError("split_epilogue: the wide output must be channels-last")
    n, c, h, w = y.shape
    args: list[object] = []
    offset = 0
    for o in outs:
        s = pixel_strides(o)
        if s is None or s[2] != 1 or o.shape[0] != n or tuple(o.shape[2:]) != (h, w):
            raise ValueError("split_epilogue: destinations must be channels-last, of y's size")
        args += [o, s[0], s[1], offset, o.shape[1]]
        offset += o.shape[1]
    if offset != c:
        raise ValueError("split_epilogue: the destinations' channels must add up to y's")
    for _ in range(MAX_SPLIT - len(outs)):
        args += [y, 0, 0, 0, 0]
    p = n * h * w
    bp, bc = _blocks(max(o.shape[1] for o in outs), 4096)
    grid = (triton.cdiv(p, bp), triton.cdiv(max(o.shape[1] for o in outs), bc), len(outs))
    triton_fl_split[grid](y, ys[0], ys[1], bias if bias is not None else y, p, h * w, *args,
                        HAS_BIAS=bias is not None, RELU=relu, BLOCK_P=bp, BLOCK_C=bc,
                        num_warps=4)


def pool_output_size(size: int, kernel: int, stride: int, begin: int, end: int,
                     ceil: bool) -> int:
    """Output length of a pooling window along one axis, as PyTorch computes it.

    Symmetric padding as ``F.max_pool2d(padding=begin)``; asymmetric as an explicit pad of
    the input followed by pooling without padding (how the executor's PyTorch kernel runs it).

    >>> pool_output_size(112, 3, 2, 0, 0, True), pool_output_size(112, 3, 2, 0, 0, False)
    (56, 55)
    >>> pool_output_size(28, 3, 1, 1, 1, False)
    28
    """
    if begin != end:
        size, begin, end = size + begin + end, 0, 0
    total = size + begin + end - kernel + (stride - 1 if ceil else 0)
    out = total // stride + 1
    if ceil and (out - 1) * stride >= size + begin:
        out -= 1
    return out


def max_pool(x: Tensor, kernel: Sequence[int], stride: Sequence[int], begin: Sequence[int],
             out: Tensor) -> Tensor:
    """2-D max pooling of ``x`` into ``out`` (both with channel stride 1); returns ``out``.

    ``out``'s spatial size decides how many windows there are (see
    :func:`pool_output_size`); window ``(i, j)`` starts at ``(i*stride - begin)``; elements
    outside the input are ignored (padding counts as minus infinity). NaN propagates.
    """
    if x.dim() != 4 or out.dim() != 4 or x.stride(1) != 1 or out.stride(1) != 1:
        raise ValueError("max_pool: 4-D tensors with channel stride 1 (channels-last)")
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    p = n * oh * ow
    bp, bc = _blocks(c, 2048)
    grid = (triton.cdiv(p, bp), triton.cdiv(c, bc))
    triton_fl_max_pool[grid](x, x.stride(0), x.stride(2), x.stride(3),
                           out, out.stride(0), out.stride(2), out.stride(3),
                           c, p, h, w, oh, ow,
                           KH=kernel[0], KW=kernel[1], SH=stride[0], SW=stride[1],
                           PH=begin[0], PW=begin[1], BLOCK_P=bp, BLOCK_C=bc, num_warps=4)
    return out
