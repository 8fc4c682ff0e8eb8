"""The documentation's examples run, and print what the documentation says they print.

Every fenced ```console block of README.md and docs/*.md is a script: each ``$ fusionlab
...`` line is run (``python -m fusionlab``, no shell) and what follows it, up to the next
``$`` line, is its expected output (stdout and stderr together), compared as doctest does
with ELLIPSIS: ``...`` stands for any text, on a line or across lines. A command is
expected to exit 0, or 2 when its expected output is a ``fusionlab: error:`` line, or N
when the command ends with ``# exit N``.

The blocks of one document run in order in one temporary folder ``main/`` laid out like
the repository: ``models/`` and ``records/`` (links to the repository's) and
``docs/examples/`` (a copy). A comment ``<!-- docs-test: requires dot -->`` (Graphviz's
program), ``requires tensorrt-builder`` (TensorRT or TensorRT-RTX) or ``requires MODULE``
(an importable module) on the line before a block skips that block, with the
reason, where the requirement is missing. Blocks fenced as ```sh are shown, not run.
Blocks fenced as ```pycon are Python sessions: they run as doctests (ELLIPSIS on), in the
same folder, after the document's console blocks.

Docs figures: ``docs/figures/*.dot`` must be what ``fusionlab figures`` draws now.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fusionlab.render.figures import FIGURES, figure_dot

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "records"
DOCUMENTS = ("README.md", "docs/guide.md", "docs/adding-a-pass.md")
BUILDER_MODULES = ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings")
"""Any of these builds engines (``requires tensorrt-builder``)."""
FENCE = re.compile(r"(?:<!-- docs-test: requires ([\w.-]+) -->\n)?```console\n(.*?)```", re.S)
PYCON = re.compile(r"```pycon\n(.*?)```", re.S)


@dataclass(frozen=True)
class Command:
    line: int
    argv: tuple[str, ...]
    expected: str
    exit_code: int


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    requires: str | None
    commands: tuple[Command, ...]


def parse(document: str) -> list[Block]:
    """The console blocks of ``document`` (a path relative to the repository)."""
    text = (ROOT / document).read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        first = text.count("\n", 0, m.start(2)) + 1
        commands: list[Command] = []
        lines = m.group(2).splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                raise AssertionError(f"{document}:{first + i}: text before the first $ command")
            command, code = lines[i][2:], None
            exit_mark = re.search(r"\s+# exit (\d+)$", command)
            if exit_mark:
                command, code = command[:exit_mark.start()], int(exit_mark.group(1))
            argv = tuple(shlex.split(command))
            if not argv or argv[0] != "fusionlab":
                raise AssertionError(f"{document}:{first + i}: console blocks run fusionlab "
                                     f"commands only (use ```sh for others): {command}")
            j = i + 1
            while j < len(lines) and not lines[j].startswith("$ "):
                j += 1
            expected = "\n".join(lines[i + 1:j]) + ("\n" if j > i + 1 else "")
            if code is None:
                code = 2 if expected.startswith("fusionlab: error:") else 0
            commands.append(Command(first + i, argv, expected, code))
            i = j
        blocks.append(Block(document, first, m.group(1), tuple(commands)))
    return blocks


def missing(requirement: str | None) -> str | None:
    """Why ``requirement`` is not met here, or None."""
    if requirement is None:
        return None
    if requirement == "dot":
        return None if shutil.which("dot") else "Graphviz's dot is not installed"
    if requirement == "tensorrt-builder":
        found = any(importlib.util.find_spec(m) for m in BUILDER_MODULES)
        return None if found else "neither TensorRT nor TensorRT-RTX is installed"
    if importlib.util.find_spec(requirement) is None:
        return f"the {requirement!r} module is not installed"
    return None


ALL = [(doc, b) for doc in DOCUMENTS for b in parse(doc)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One working folder per document, laid out like the repository."""
    out = {}
    for doc in DOCUMENTS:
        base = tmp_path_factory.mktemp(Path(doc).stem)
        main = base / "main"
        main.mkdir()
        (main / "models").symlink_to(ROOT / "models", target_is_directory=True)
        if (ROOT / "docs" / "examples").is_dir():
            shutil.copytree(ROOT / "docs" / "examples", main / "docs" / "examples")
        (main / "records").symlink_to(RECORDS, target_is_directory=True)
        out[doc] = main
    return out


def run(command: Command, cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "fusionlab", *command.argv[1:]], cwd=cwd,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600, check=False)
    return done.returncode, done.stdout


@pytest.mark.parametrize(("document", "block"), ALL,
                         ids=[f"{d}:{b.line}" for d, b in ALL])
def test_console_block(document: str, block: Block, folders: dict[str, Path]) -> None:
    reason = missing(block.requires)
    if reason is not None:
        pytest.skip(f"{document}:{block.line}: {reason}")
    checker = doctest.OutputChecker()
    for command in block.commands:
        code, got = run(command, folders[document])
        got = "\n".join(line.rstrip() for line in got.splitlines()) + ("\n" if got else "")
        want = "\n".join(line.rstrip() for line in command.expected.splitlines())
        want += "\n" if want else ""
        where = f"{document}:{command.line}: $ {shlex.join(command.argv)}"
        assert code == command.exit_code, f"{where}\nexit code {code}\n{got}"
        assert checker.check_output(want, got, doctest.ELLIPSIS), \
            f"{where}\n--- documented ---\n{want}--- printed ---\n{got}"


PYTHON_BLOCKS = [
    (doc, (ROOT / doc).read_text(encoding="utf-8").count("\n", 0, m.start()) + 1, m.group(1))
    for doc in DOCUMENTS
    for m in PYCON.finditer((ROOT / doc).read_text(encoding="utf-8"))
]


@pytest.mark.parametrize(("document", "line", "session"), PYTHON_BLOCKS,
                         ids=[f"{d}:{n}" for d, n, _ in PYTHON_BLOCKS])
def test_python_block(document: str, line: int, session: str, folders: dict[str, Path],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folders[document])
    test = doctest.DocTestParser().get_doctest(session, {}, f"{document}:{line}", document, line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_readme_has_a_python_example() -> None:
    assert any(doc == "README.md" for doc, _, _ in PYTHON_BLOCKS)


def test_documents_have_examples() -> None:
    counts = {doc: sum(len(b.commands) for b in parse(doc)) for doc in DOCUMENTS}
    assert all(counts.values()), counts


def test_guide_shows_every_command() -> None:
    """docs/guide.md has a section and a console example for each subcommand."""
    from fusionlab.cli import COMMANDS

    guide = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    run_commands = {c.argv[1] for b in parse("docs/guide.md") for c in b.commands}
    for module in COMMANDS:
        name = module.rstrip("_")
        assert f"## `fusionlab {name}`" in guide, f"docs/guide.md has no section for {name}"
        assert name in run_commands or f"fusionlab {name} " in guide, \
            f"docs/guide.md shows no example of fusionlab {name}"


def test_docs_figures_are_current() -> None:
    """docs/figures holds what ``fusionlab figures`` draws now (run it after a change)."""
    for fig in FIGURES:
        path = ROOT / "docs" / "figures" / f"{fig.name}.dot"
        assert path.exists(), f"{path} missing: run 'fusionlab figures'"
        assert path.read_text(encoding="utf-8") == figure_dot(fig), \
            f"{path} is stale: run 'fusionlab figures' and commit docs/figures"


def test_readme_shows_the_stage_figures() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for fig in FIGURES[:4]:
        assert f"docs/figures/{fig.name}.png" in readme
        assert (ROOT / "docs" / "figures" / f"{fig.name}.png").exists()
    assert "docs/fusion-rules.md" in readme
