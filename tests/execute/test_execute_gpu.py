"""The reference executor on a CUDA GPU: cuDNN's fused kernels, CUDA graphs, kernel counts.

Marked ``gpu``; skipped (with the reason) where PyTorch sees no CUDA device.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the executor needs PyTorch (the 'torch' extra)")

from fusionlab.cli import main  # noqa: E402
from fusionlab.execute import ExecuteOptions, execute  # noqa: E402
from fusionlab.formats.trtexec import read_profile  # noqa: E402
from fusionlab.fusion.predictor import predict  # noqa: E402
from fusionlab.ir.graph import load  # noqa: E402
from tests.execute import models  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU visible to PyTorch"),
]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_resnet18_on_gpu(resnet18: Path, precision: str, cuda_graph: bool) -> None:
    graph = load(resnet18, batch=4)
    plan = predict(graph, "trt10", precision).plan
    options = ExecuteOptions(precision=precision, iterations=20, warmup=3, cuda_graph=cuda_graph,
                             count_kernels=True)
    fused = execute(graph, plan, options)
    unfused = execute(graph, plan, ExecuteOptions(precision=precision, iterations=20, warmup=3,
                                                  check=False, count_kernels=True), unfused=True)
    assert fused.check is not None and fused.check.passed
    assert fused.kernels is not None and unfused.kernels is not None
    assert fused.kernels < unfused.kernels
    residual = next(layer for layer in fused.layers if "Add" in layer.name)
    assert ("cudnn_convolution_add_relu" in residual.path or "cuDNN fused op failed" in residual.path
            or "residual Add" in residual.path)  # a tactic may put the Add in a Triton epilogue
    timer = fused.profile.method["per-layer timing"]
    assert ("captured in the CUDA graph" in timer) == cuda_graph
    assert all(layer.stats.median_ms > 0 for layer in fused.layers)


def test_inception3a_cli_fp16_graph(inception: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.json"
    assert main(["execute", str(inception), "--batch", "8", "--precision", "fp16",
                 "--cuda-graph", "--kernels", "--iterations", "20",
                 "--export-profile", str(out)]) == 0
    text = capsys.readouterr().out
    assert "check: fused matches unfused" in text and "kernels per inference" in text
    assert read_profile(out).runs == 20


def test_pointwise_chain_is_compiled_on_gpu() -> None:
    graph = load(models.pointwise_model(), batch=4)
    result = execute(graph, predict(graph, "trt10").plan,
                     ExecuteOptions(iterations=5, warmup=2, count_kernels=True))
    pwn = next(layer for layer in result.layers if layer.name == "PWN(sig, mul, addbias)")
    assert "torch.compile" in pwn.path
    if "failed" not in pwn.path:
        assert pwn.kernels == 1

