"""The fused executor's Triton kernels and per-layer tactic selection on a CUDA GPU (issue 15).

Marked ``gpu``; skipped (with the reason) where PyTorch sees no CUDA device or Triton is missing.
Every kernel writes into a NaN-poisoned destination, so an unwritten element fails the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="the executor needs PyTorch (the 'torch' extra)")

from fusionlab.execute import ExecuteOptions, execute  # noqa: E402
from fusionlab.fusion.predictor import predict  # noqa: E402
from fusionlab.ir.graph import load  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU visible to PyTorch"),
]

tk = pytest.importorskip("fusionlab.execute.triton_kernels",
                         reason="the Triton kernels need the triton package")


def _rel(a: Any, b: Any) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def _cl(t: Any) -> Any:
    return t.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_triton_epilogue_writes_a_concat_slot(dtype: Any) -> None:
    gen = torch.Generator(device="cuda").manual_seed(int(torch.randint(0, 2**30, ())))
    y = _cl(torch.randn(3, 40, 9, 11, device="cuda", dtype=dtype, generator=gen))
    z = _cl(torch.randn(3, 40, 9, 11, device="cuda", dtype=dtype, generator=gen))
    b = torch.randn(40, device="cuda", dtype=dtype, generator=gen)
    buf = _cl(torch.full((3, 72, 9, 11), float("nan"), device="cuda", dtype=dtype))
    slot = buf.narrow(1, 16, 40)
    tk.epilogue(y, slot, b, z, relu=True)
    ref = torch.relu(y.float() + b.float()[None, :, None, None] + z.float())
    assert _rel(slot, ref) < (1e-6 if dtype == torch.float32 else 1e-3)
    assert bool(buf[:, :16].isnan().all()) and bool(buf[:, 56:].isnan().all())  # nothing else
    nchw = torch.randn(2, 5, 7, 6, device="cuda", dtype=dtype, generator=gen)  # layout change
    out = _cl(torch.full((2, 5, 7, 6), float("nan"), device="cuda", dtype=dtype))
    tk.epilogue(nchw, out, b[:5], relu=True)
    assert _rel(out, torch.relu(nchw.float() + b[:5].float()[None, :, None, None])) < 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_triton_split_epilogue_fills_every_member(dtype: Any) -> None:
    sizes = [64, 96, 16, 24, 8]  # five members: two launches of at most four
    y = _cl(torch.randn(2, sum(sizes), 7, 7, device="cuda", dtype=dtype))
    b = torch.randn(sum(sizes), device="cuda", dtype=dtype)
    buf = _cl(torch.full((2, 256, 7, 7), float("nan"), device="cuda", dtype=dtype))
    outs = [buf.narrow(1, 0, 64)] + [
        _cl(torch.full((2, c, 7, 7), float("nan"), device="cuda", dtype=dtype)) for c in sizes[1:]]
    tk.split_epilogue(y.narrow(1, 0, 200), outs[:4], b[:200], relu=True)
    tk.split_epilogue(y.narrow(1, 200, 8), outs[4:], b[200:], relu=True)
    refs = torch.relu(y.float() + b.float()[None, :, None, None]).split(sizes, 1)
    for o, r in zip(outs, refs, strict=True):
        assert not bool(o.isnan().any())
        assert _rel(o, r) < 1e-3
    assert bool(buf[:, 64:].isnan().all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(("size", "k", "s", "p", "ceil"),
                         [(112, 3, 2, 0, True), (28, 3, 1, 1, False), (15, 3, 2, 1, False),
                          (14, 2, 2, 0, True)])
def test_triton_max_pool_matches_torch(dtype: Any, size: int, k: int, s: int, p: int,
                                       ceil: bool) -> None:
    x = _cl(torch.randn(2, 48, size, size + 1, device="cuda", dtype=dtype))
    ref = torch.nn.functional.max_pool2d(x, k, s, p, 1, ceil)
    shape = [tk.pool_output_size(n, k, s, p, p, ceil) for n in (size, size + 1)]
    assert tuple(ref.shape[2:]) == tuple(shape)
    out = _cl(torch.full(ref.shape, float("nan"), device="cuda", dtype=dtype))
    tk.max_pool(x, (k, k), (s, s), (p, p), out)
    assert torch.equal(out, ref)  # a max is exact


def test_tactics_are_timed_and_the_fastest_kept(inception: Path) -> None:
    graph = load(inception, batch=8)
    plan = predict(graph, "trt10", "fp16").plan
    base = dict(precision="fp16", iterations=10, warmup=2, cuda_graph=True, count_kernels=True)
    tuned = execute(graph, plan, ExecuteOptions(**base))  # type: ignore[arg-type]
    plain = execute(graph, plan, ExecuteOptions(tactics=False, **base))  # type: ignore[arg-type]
    assert tuned.check is not None and tuned.check.passed and tuned.check.worst_error < 1e-2
    assert tuned.kernels is not None and plain.kernels is not None
    assert tuned.kernels < plain.kernels  # the split epilogue replaces copies
    paths = {layer.name: layer.path for layer in tuned.layers}
    assert "[tactic " in paths["inception_3a/pool"]
    merged = next(p for n, p in paths.items() if " || " in n)
    assert "[tactic " in merged
    if "split epilogue" in merged:
        assert paths["inception_3a/relu_1x1 copy"].startswith("no-op")
    assert tuned.method["tactics"].startswith("timed per layer")
    assert plain.method["tactics"] == "off"
