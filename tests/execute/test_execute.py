"""The reference executor on the CPU: the numerical check, realisations, the profile format.

Everything here runs on the CPU (CI has no GPU); the GPU tests are in test_execute_gpu.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch", reason="the executor needs PyTorch (the 'torch' extra)")

from fusionlab.cli import main  # noqa: E402
from fusionlab.errors import FusionlabError  # noqa: E402
from fusionlab.execute import ExecuteOptions, backend_settings, build, execute  # noqa: E402
from fusionlab.execute.check import compare, require_match  # noqa: E402
from fusionlab.formats.trtexec import join_profile, read_profile  # noqa: E402
from fusionlab.fusion.predictor import predict  # noqa: E402
from fusionlab.ir.graph import load  # noqa: E402
from fusionlab.plan.serialize import plan_from_json  # noqa: E402
from tests.execute import models  # noqa: E402

CPU = ExecuteOptions(device="cpu", iterations=3, warmup=1)


def _unfused_vs_onnxruntime(model: onnx.ModelProto, batch: int) -> float:
    """Relative error of the unfused execution against onnxruntime (the kernels' semantics)."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime checks the kernels' semantics")
    graph = load(model, batch=batch)
    with backend_settings("fp32"):
        progs = build(graph, None, device="cpu")
        out = progs.unfused.run(progs.feeds)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = session.run(None, {k: v.contiguous().numpy() for k, v in progs.feeds.items()})
    return max(
        float(np.linalg.norm(out[t.name].numpy() - r) / np.linalg.norm(r))
        for t, r in zip(graph.outputs, ref, strict=True)
    )


def test_cli_inception3a_check_and_profile(inception: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    profile_path = tmp_path / "inception.profile.json"
    plan_path = tmp_path / "plan.json"
    assert main(["predict", str(inception), "--batch", "1", "--json", str(plan_path)]) == 0
    capsys.readouterr()
    code = main(["execute", str(inception), "--plan", str(plan_path), "--device", "cpu",
                 "--iterations", "4", "--warmup", "1", "--export-profile", str(profile_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "check: fused matches unfused" in out
    assert "time.perf_counter" in out  # the method says how the CPU was timed
    assert "=== Performance summary ===" in out
    # the profile is trtexec's --exportProfile format, named by the plan's layers
    plan = plan_from_json(plan_path.read_text())
    profile = read_profile(profile_path)
    assert profile.runs == 4
    assert [t.name for t in profile.layers] == [layer.name for layer in plan.layers]
    assert all(t.median_ms is not None and t.average_ms > 0 for t in profile.layers)
    assert abs(sum(t.percentage or 0 for t in profile.layers) - 100) < 1e-6
    joined = join_profile(plan, profile)
    assert all(layer.time_ms is not None for layer in joined.layers)


def test_inception3a_realisations_follow_the_plan(inception: Path) -> None:
    graph = load(inception, batch=2)
    plan = predict(graph, "trt10").plan
    result = execute(graph, plan, CPU)
    assert result.check is not None and result.check.passed
    assert result.check.worst_error < 1e-4 and result.check.compared >= len(plan.layers) - 1
    paths = {layer.name: layer.path for layer in result.layers}
    merged = next(p for n, p in paths.items() if " || " in n)
    assert "one convolution over 3 members' concatenated weights" in merged
    assert "outputs are channel views" in merged
    assert "copy into channel slice [0:64]" in paths["inception_3a/relu_1x1 copy"]
    conv = paths["inception_3a/3x3 + inception_3a/3x3/bn + inception_3a/relu_3x3"]
    assert "BatchNorm folded" in conv and "Concat slot" in conv
    assert "cuDNN's fused kernels need CUDA" in conv  # the CPU fallback says so
    assert [lt.name for lt in result.profile.layers] == [layer.name for layer in plan.layers]
    assert result.profile.summary is not None and result.profile.summary.gpu_compute is not None


def test_unfused_is_one_step_per_node(inception: Path) -> None:
    graph = load(inception, batch=1)
    options = ExecuteOptions(device="cpu", iterations=3, warmup=1, check=False)
    result = execute(graph, predict(graph, "trt10").plan, options, unfused=True)
    assert [layer.name for layer in result.layers] == list(graph.order)
    assert result.label == "unfused"


def test_resnet18_residual_fused_matches_unfused(resnet18: Path) -> None:
    graph = load(resnet18, batch=1)
    plan = predict(graph, "trt10").plan
    with backend_settings("fp32"):
        progs = build(graph, plan, device="cpu")
        assert progs.fused is not None
        result = compare(progs.fused, progs.unfused, progs.feeds, "fp32")
    require_match(result)
    assert result.worst_error < 1e-4 and result.output_error < 1e-4
    residual = next(s for s in progs.fused.steps if "Add" in s.name)
    assert residual.name.endswith("Relu_" + residual.name.rsplit("_", 1)[1])
    assert "add_ + relu_" in residual.path  # the CPU fallback of cudnn_convolution_add_relu


@pytest.mark.parametrize("make", [models.pointwise_model, models.concat_model,
                                  models.reshape_model])
def test_small_models_match_fused_unfused_and_onnxruntime(make: object) -> None:
    assert callable(make)
    model = make()
    assert _unfused_vs_onnxruntime(model, 2) < 1e-5
    graph = load(model, batch=2)
    result = execute(graph, predict(graph, "trt10").plan, CPU)
    assert result.check is not None and result.check.passed


def test_pointwise_pad_and_gemm_batchnorm_paths() -> None:
    graph = load(models.pointwise_model(), batch=2)
    # trt8: the fully connected layer is a CASK layer with the BN folded in (trt10 hands
    # Flatten + Gemm to Myelin, which the executor runs node by node)
    result = execute(graph, predict(graph, "trt8").plan, CPU)
    paths = {layer.name: layer.path for layer in result.layers}
    assert "Pad folded into the padding" in paths["pad + conv1 + bn1 + relu6"]
    assert "torch.clamp in place" in paths["pad + conv1 + bn1 + relu6"]
    assert "torch.compile skipped on the CPU" in paths["PWN(sig, mul, addbias)"]
    assert paths["fc + bn2"].startswith("F.linear (BatchNorm folded into the weights)")


def test_concat_elimination_writes_slots_and_copies() -> None:
    graph = load(models.concat_model(), batch=1)
    plan = predict(graph, "trt10").plan
    assert {"cat_inner", "cat_outer"} <= set(plan.eliminated)
    result = execute(graph, plan, CPU)
    paths = {layer.name: layer.path for layer in result.layers}
    assert "copy into channel slice [4:7] of 'inner'" in paths["x copy"]
    assert "writes sc into its Concat slot" in paths["sigc"]  # out= straight into the slot
    assert "copied into its Concat slot" in paths["convb"]  # cuDNN cannot write a slice
    assert "alias (no kernel)" in paths["pool"]  # Identity and Dropout eliminated


def test_check_names_the_layer_that_differs(inception: Path) -> None:
    graph = load(inception, batch=1)
    plan = predict(graph, "trt10").plan
    bad = "inception_3a/5x5 + inception_3a/5x5/bn + inception_3a/relu_5x5"
    with backend_settings("fp32"):
        progs = build(graph, plan, device="cpu")
        assert progs.fused is not None
        step = next(s for s in progs.fused.steps if s.name == bad)
        good_run = step.run

        def off_by_one_percent(env: dict[str, torch.Tensor]) -> None:
            good_run(env)
            env["inception_3a/relu_5x5"].mul_(1.01)

        step.run = off_by_one_percent
        result = compare(progs.fused, progs.unfused, progs.feeds, "fp32")
    assert not result.passed and result.worst_layer == bad
    with pytest.raises(FusionlabError, match="does not match the unfused one") as info:
        require_match(result)
    assert bad in str(info.value)


def test_unsupported_op_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "erf.onnx"
    onnx.save_model(models.unsupported_model(), str(path))
    assert main(["execute", str(path), "--batch", "2", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "op 'Erf' is not supported by the PyTorch executor" in err


def test_a_plan_of_another_model_is_refused(inception: Path, tmp_path: Path) -> None:
    other = load(models.reshape_model(), batch=1)
    plan = predict(other, "trt10").plan
    with pytest.raises(FusionlabError, match="the plan does not match the model"):
        build(load(inception, batch=1), plan, device="cpu")


def test_cuda_without_a_gpu_is_one_line(inception: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: test_execute_gpu.py runs on it")
    assert main(["execute", str(inception), "--batch", "1"]) == 2
    assert "no CUDA device is available to PyTorch" in capsys.readouterr().err


def test_tactic_choice_on_the_cpu_keeps_the_first_candidate() -> None:
    from fusionlab.execute.program import Step, Tactic
    from fusionlab.execute.tactics import choose

    ran: list[str] = []
    first = Tactic("torch", lambda env: ran.append("torch"), "the PyTorch realisation")
    other = Tactic("triton", lambda env: ran.append("triton"), "a Triton kernel")
    step = Step("layer", "Convolution", ("n",), first.run, (), (), first.path,
                tactics=[first, other])
    choose(step, {}, torch.device("cpu"))
    assert step.tactics == [first] and step.path == "the PyTorch realisation"
    assert step.tactic_ms == {} and ran == []  # nothing is timed on the CPU
    step.run({})
    assert ran == ["torch"]
