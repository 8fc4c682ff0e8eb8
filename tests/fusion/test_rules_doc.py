"""docs/fusion-rules.md is generated: the committed file must equal a fresh generation."""

from pathlib import Path

from fusionlab.cli import main
from fusionlab.fusion.passes import PASSES
from fusionlab.fusion.rules_doc import passes_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "fusion-rules.md"


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
