"""The zoo as a whole: every model is valid ONNX, runs in onnxruntime, and is deterministic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from fusionlab import zoo
from fusionlab.errors import FusionlabError
from fusionlab.zoo import inception
from tests.zoo.test_cookbook import COOKBOOK  # the TensorRT Cookbook's network, tested there
from tests.zoo.test_modern import MODERN  # the exporter-style models, tested there

ROOT = Path(__file__).resolve().parents[2]
SMALL_CHAIN = "inception-chain-3"
EXPECTED = {
    "googlenet", "googlenet-caffe", "inception-chain-500", "inception3a", "mobilenetv2",
    "resnet18", "resnet50",
} | {"mobilenetv2-qdq", "resnet18-qat", "unet", "yolov8n"}  # see test_qdq_and_detectors.py
RUNNABLE = [*sorted(EXPECTED - {"inception-chain-500"}), SMALL_CHAIN]
"""Models run in onnxruntime (the 10,000-node chain is represented by a short one)."""
OUTPUT_SHAPE = {
    "googlenet": [1000], "googlenet-caffe": [1000], "inception3a": [256, 28, 28],
    "mobilenetv2": [1000], "resnet18": [1000], "resnet50": [1000], SMALL_CHAIN: [32, 28, 28],
    "mobilenetv2-qdq": [1000], "resnet18-qat": [1000], "unet": [2, 256, 256],
    "yolov8n": [84, 8400],
}


Builds = Callable[[str], onnx.ModelProto]


@pytest.fixture(scope="module")
def built() -> Builds:
    """Each model built once per module (symbolic batch); tests must not modify them."""
    cache: dict[str, onnx.ModelProto] = {}

    def get(name: str) -> onnx.ModelProto:
        if name not in cache:
            cache[name] = zoo.build(name)
        return cache[name]

    return get


def _run(model: onnx.ModelProto, batch: int) -> tuple[list[int | str], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    shape = [batch, *inp.shape[1:]]
    x = np.random.default_rng(7).standard_normal(shape, dtype=np.float32)
    (y,) = session.run(None, {inp.name: x})
    return shape, y


def test_names_are_the_zoo() -> None:
    assert set(zoo.names()) == EXPECTED | set(MODERN) | COOKBOOK
    assert zoo.names() == sorted(zoo.names())


@pytest.mark.parametrize("name", [*sorted(EXPECTED), SMALL_CHAIN])
def test_describe_is_one_line(name: str) -> None:
    text = zoo.describe(name)
    assert text and "\n" not in text and len(text) < 120


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(FusionlabError) as err:
        zoo.build("resnet19")
    message = str(err.value)
    assert "resnet19" in message and "\n" not in message
    assert all(name in message for name in EXPECTED)
    for bad in ("inception-chain-0", "inception-chain-", "inception-chain-x"):
        with pytest.raises(FusionlabError):
            zoo.describe(bad)


def test_batch_must_be_positive() -> None:
    with pytest.raises(FusionlabError, match="at least 1"):
        zoo.build("inception3a", batch=0)


@pytest.mark.parametrize("name", RUNNABLE)
def test_model_is_valid_and_runs_at_batch_1(name: str, built: Builds) -> None:
    model = built(name)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    assert len({n.name for n in model.graph.node}) == len(model.graph.node), "node names unique"
    assert all(n.name for n in model.graph.node)
    _, y = _run(model, 1)
    assert list(y.shape) == [1, *OUTPUT_SHAPE[name]]
    assert np.isfinite(y).all()


@pytest.mark.parametrize("name", ["resnet18", "inception3a"])
def test_symbolic_batch_runs_at_batch_2(name: str, built: Builds) -> None:
    _, y = _run(built(name), 2)
    assert list(y.shape) == [2, *OUTPUT_SHAPE[name]]


@pytest.mark.parametrize("name", ["inception3a", "mobilenetv2", "resnet18", SMALL_CHAIN])
def test_symbolic_and_fixed_batch(name: str, built: Builds) -> None:
    symbolic = "batch_size" if name.startswith("resnet") else "N"
    model = built(name)
    for value in (model.graph.input[0], model.graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_param == symbolic
    fixed = zoo.build(name, batch=3)
    onnx.checker.check_model(fixed, full_check=True)
    for value in (fixed.graph.input[0], fixed.graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_value == 3


@pytest.mark.parametrize("name", ["inception3a", "googlenet-caffe", "mobilenetv2", "resnet18",
                                  SMALL_CHAIN])
def test_building_twice_gives_the_same_bytes(name: str, built: Builds) -> None:
    assert zoo.build(name).SerializeToString() == built(name).SerializeToString()


def test_batch_norm_variances_are_positive(built: Builds) -> None:
    for name in ("inception3a", "googlenet", "mobilenetv2"):
        model = built(name)
        inits = {i.name: i for i in model.graph.initializer}
        bns = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
        assert bns
        for n in bns:
            assert (onnx.numpy_helper.to_array(inits[n.input[4]]) > 0).all()


def test_committed_inception3a_is_a_fresh_export(tmp_path: Path) -> None:
    committed = ROOT / "models" / "inception3a.onnx"
    fresh = zoo.export("inception3a", tmp_path / "inception3a.onnx")
    assert fresh == tmp_path / "inception3a.onnx"
    assert committed.read_bytes() == fresh.read_bytes()
    assert committed.stat().st_size < 1_000_000


def test_readme_documents_every_model() -> None:
    readme = (ROOT / "models" / "README.md").read_text(encoding="utf-8")
    for name in sorted(EXPECTED - {"inception-chain-500"}):
        assert f"fusionlab models export {name} " in readme
    assert "fusionlab models export inception-chain-" in readme


def test_export_into_a_missing_folder_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(FusionlabError, match="does not exist"):
        zoo.export("inception3a", tmp_path / "no" / "such.onnx")
    assert not (tmp_path / "no").exists()


# ---------------------------------------------------------------- the synthetic chain
def test_chain_blocks_keep_their_channels() -> None:
    model = zoo.inception_chain(2, width=0.25, batch=1)
    channels = inception.chain_channels(0.25)
    assert channels == 64
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, channels, 28, 28]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.output]}
    assert shapes["block_0/output"] == shapes["block_1/output"] == [1, channels, 28, 28]
    assert len(model.graph.node) == 40
    assert [n.op_type for n in model.graph.node].count("Concat") == 2


def test_chain_size_stays_small_at_100k_nodes() -> None:
    """A 5,000-block chain (100,000 nodes) extrapolated from 1 and 2 blocks: well under 300 MB."""
    one = len(zoo.build("inception-chain-1").SerializeToString())
    two = len(zoo.build("inception-chain-2").SerializeToString())
    assert one + (two - one) * 4999 < 150e6


def test_chain_rejects_bad_arguments() -> None:
    with pytest.raises(FusionlabError):
        zoo.inception_chain(0)
    with pytest.raises(FusionlabError):
        zoo.inception_chain(1, width=0.0)
