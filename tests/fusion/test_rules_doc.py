"""docs/fusion-rules.md is generated: the committed file must equal a fresh generation."""

from pathlib import Path

from fusionlab.cli import main
from fusionlab.fusion.differences import FACTS, MODERN, differences_markdown, target_rows
from fusionlab.fusion.passes import PASSES
from fusionlab.fusion.rules_doc import passes_markdown
from fusionlab.fusion.targets import TARGETS

DOC = Path(__file__).resolve().parents[2] / "docs" / "fusion-rules.md"
DIFFERENCES = DOC.with_name("target-differences.md")


def test_committed_rules_doc_is_current() -> None:
    assert DOC.read_text() == passes_markdown(), (
        "run: fusionlab passes --markdown > docs/fusion-rules.md"
    )


def test_every_rule_documented_with_conditions_and_source() -> None:
    text = passes_markdown()
    for name, module in PASSES.items():
        assert f"### `{name}`" in text
        assert module.RULE.source in text
        for condition in module.RULE.conditions:
            assert condition in text


def test_passes_cli_lists_rules(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["passes"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in PASSES)


def test_committed_differences_doc_is_current(capsys) -> None:  # type: ignore[no-untyped-def]
    assert DIFFERENCES.read_text() == differences_markdown(), (
        "run: fusionlab passes --differences > docs/target-differences.md"
    )
    assert main(["passes", "--differences"]) == 0
    assert capsys.readouterr().out == differences_markdown()


def test_every_fact_has_a_source_and_trt8_trt10_trt11_differ() -> None:
    assert all(f.source for f in FACTS)
    rows = target_rows()
    differing = {r.fact for r in rows if len(set(r.values.values())) > 1}
    assert any("fully connected" in f for f in differing)  # D3: trt8 CASK FC, trt10/11 Myelin
    assert any("Pooling" in f for f in differing)  # implicit INT8: trt8/trt10, not trt11
    assert all(TARGETS[t].myelin is not None for t in MODERN)
