"""Every pass on an empty graph and on a one-node graph: nothing breaks, nothing changes."""

import onnx
import pytest
from onnx import TensorProto, helper

from fusionlab.fusion.partition import initial_plan
from fusionlab.fusion.passes import PASSES
from fusionlab.ir.graph import Graph, load
from tests.fusion.passes.conftest import run_pass


def empty_graph() -> Graph:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    return load(helper.make_model(helper.make_graph([], "empty", [x], [x])))


def one_node() -> Graph:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    m = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "one", [x], [y])
    )
    onnx.checker.check_model(m)
    return load(m)


@pytest.mark.parametrize("name", sorted(PASSES))
def test_empty(name: str) -> None:
    plan, _ = run_pass(name, empty_graph())
    assert plan.layers == () and dict(plan.eliminated) == {}


@pytest.mark.parametrize("name", sorted(PASSES))
def test_one_node_unchanged(name: str) -> None:
    g = one_node()
    plan, _ = run_pass(name, g)
    assert [layer.nodes for layer in plan.layers] == [
        layer.nodes for layer in initial_plan(g).layers
    ]


@pytest.mark.parametrize("name", sorted(PASSES))
def test_pass_contract(name: str) -> None:
    module = PASSES[name]
    assert module.RULE.name == name == module.__name__.rsplit(".", 1)[-1]
    assert module.RULE.conditions and module.RULE.source
    assert module.RULE.joins or module.RULE.eliminates, "diff must be able to blame a miss on the rule"
    doc = module.__doc__ or ""
    assert "Before" in doc and "After" in doc and "Conditions" in doc and "Source" in doc
