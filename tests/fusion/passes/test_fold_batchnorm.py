"""fold_batchnorm: fires on Conv -> BN; one case per condition where it must not."""

from fusionlab.plan import Kind
from tests.fusion.passes.conftest import failed, groups, run_pass
from tests.fusion.passes.netbuilder import Net


def test_fires_conv_bn() -> None:
    #   x -> conv -> bn -> y
    g = Net().conv("conv", "x").bn("bn", "conv").graph()
    plan, _ = run_pass("fold_batchnorm", g)
    assert groups(plan) == {frozenset({"conv", "bn"})}
    assert plan.layers[0].absorbed == ("bn",)
    assert plan.layers[0].name == "conv + bn"


def test_condition1_bn_after_pool_is_a_scale_layer() -> None:
    #   x -> pool -> bn
    g = Net().maxpool("pool", "x").bn("bn", "pool").graph()
    plan, ctx = run_pass("fold_batchnorm", g)
    assert groups(plan) == {frozenset({"pool"}), frozenset({"bn"})}
    assert plan.layer_of("bn").kind is Kind.SCALE  # type: ignore[union-attr]
    assert failed(ctx) == {1}


def test_condition2_conv_output_read_twice() -> None:
    #   x -> conv -> bn
    #          └──-> relu
    g = Net().conv("conv", "x").bn("bn", "conv").relu("relu", "conv").graph()
    plan, ctx = run_pass("fold_batchnorm", g)
    assert frozenset({"conv", "bn"}) not in groups(plan)
    assert failed(ctx) == {2}


def test_condition2_conv_output_is_graph_output() -> None:
    g = Net().conv("conv", "x").bn("bn", "conv").output("conv").graph()
    plan, ctx = run_pass("fold_batchnorm", g)
    assert frozenset({"conv", "bn"}) not in groups(plan)
    assert failed(ctx) == {2}


def test_condition3_non_constant_statistics() -> None:
    #   x -> conv -> bn(mean = relu(x_stat)) : the mean is computed, not a weight
    n = Net().conv("conv", "x").conv("stat", "x").relu("r", "stat")
    n.bn("bn", "conv")
    bn = n.nodes[-1]
    bn.input[3] = "r"  # mean comes from a computed tensor
    g = n.graph()
    plan, ctx = run_pass("fold_batchnorm", g)
    assert frozenset({"conv", "bn"}) not in groups(plan)
    assert 3 in failed(ctx)


def test_empty_graph() -> None:
    from tests.fusion.passes.test_smoke import empty_graph

    plan, ctx = run_pass("fold_batchnorm", empty_graph())
    assert plan.layers == () and ctx.rejections == []
