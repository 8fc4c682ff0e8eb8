"""fusionlab imports, builds its parser and prints --help without any optional GPU module.

Each test runs a fresh interpreter in which importing ``tensorrt``, ``tensorrt_rtx``,
``torch``, ``cuda`` or ``pycuda`` (and the dev-only ``onnxruntime`` and ``hypothesis``)
raises ImportError (a meta path finder installed by a ``-c`` prelude, or by a
``sitecustomize`` for the console script), the way it would on a machine without them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BLOCKED = ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings", "tensorrt_bindings", "tensorrt_libs", "torch", "cuda",
           "pycuda", "onnxruntime", "hypothesis")
"""Optional GPU modules, and the dev-only ones that a plain ``pip install fusionlab`` lacks."""

BLOCKER = f"""
import importlib.abc, sys
BLOCKED = {BLOCKED!r}
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked by fusionlab's import test")
        return None
sys.meta_path.insert(0, _Block())
"""

LOADED_OPTIONAL = f"""
import sys
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r})
print("optional modules loaded:", loaded)
"""


def python(code: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env, check=False)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


def test_the_blocker_blocks() -> None:
    done = python(BLOCKER + "import torch")
    assert done.returncode == 1
    assert "ImportError: torch is blocked by fusionlab's import test" in done.stderr


def test_import_fusionlab_without_optional_modules() -> None:
    done = python(BLOCKER + "import fusionlab\nprint(fusionlab.__version__, fusionlab.load)\n"
                  + LOADED_OPTIONAL)
    assert done.returncode == 0, done.stderr
    assert "optional modules loaded: []" in done.stdout


def test_build_parser_and_every_subcommand_help_without_optional_modules() -> None:
    code = BLOCKER + """
import argparse, contextlib, io
from fusionlab.cli import COMMANDS, build_parser
parser = build_parser()
sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
names = list(sub.choices)
assert len(names) >= len(COMMANDS), (names, COMMANDS)
for name in names:
    with contextlib.redirect_stdout(io.StringIO()) as text:
        try:
            parser.parse_args([name, "--help"])
        except SystemExit as exc:
            assert exc.code == 0, (name, exc.code)
    assert f"usage: fusionlab {name}" in text.getvalue(), name
print("helped:", ",".join(names))
""" + LOADED_OPTIONAL
    done = python(code)
    assert done.returncode == 0, done.stderr
    helped = done.stdout.split("helped: ", 1)[1].splitlines()[0].split(",")
    assert {"inspect", "predict", "diff", "check", "build", "profile"} <= set(helped)
    assert "optional modules loaded: []" in done.stdout


def test_importing_does_not_load_optional_modules_even_where_installed() -> None:
    # no blocker: a module that imports tensorrt "just in case" would show up here
    done = python("import fusionlab, fusionlab.cli\nfusionlab.cli.build_parser()\n"
                  + LOADED_OPTIONAL)
    assert done.returncode == 0, done.stderr
    assert "optional modules loaded: []" in done.stdout


def test_installed_script_help_without_optional_modules(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("fusionlab")
    assert script.exists(), "the console script is installed by `pip install -e .`"
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = clean_env() | {"PYTHONPATH": str(tmp_path)}
    # the sitecustomize is really in force in this environment
    check = python("import tensorrt", env=env)
    assert "tensorrt is blocked" in check.stderr
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: fusionlab")
    assert "inspect" in done.stdout
    assert done.stderr == ""
