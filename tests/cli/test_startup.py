"""The command line starts without its heavy dependencies (issue 14).

``fusionlab --help``, every ``fusionlab COMMAND --help``, ``models list`` and ``passes``
import neither onnx (which imports ml_dtypes, ~0.5 s with ml_dtypes 0.7) nor networkx nor
numpy: each command module registers its parser with argparse-level imports only, and
imports what its work needs inside its ``run``. Checked in a fresh interpreter, where
``sys.modules`` starts clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fusionlab.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("onnx", "ml_dtypes", "networkx", "numpy", "google.protobuf", "onnx_graphsurgeon", "rich", "graphviz")

PROBE = """
import contextlib, io, json, sys
from fusionlab.cli import main
loaded = {}
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
    heavy = json.loads(sys.argv[2])
    loaded[" ".join(argv)] = sorted(m for m in sys.modules if m in heavy or m.split(".")[0] in heavy)
print(json.dumps(loaded))
"""


def _heavy_imports(*argvs: list[str]) -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(argvs)), json.dumps(HEAVY)],
                         capture_output=True, text=True, env=env, check=True, timeout=120).stdout
    result: dict[str, list[str]] = json.loads(out)
    return result


def test_import_and_help_import_nothing_heavy() -> None:
    # one interpreter, commands in turn: what an earlier one imported would show in later ones
    argvs = [["--help"], ["models", "list"], ["passes"]]
    loaded = _heavy_imports(*argvs)
    assert loaded == {" ".join(a): [] for a in argvs}


def test_every_command_help_imports_nothing_heavy() -> None:
    argvs = [[name.rstrip("_"), "--help"] for name in COMMANDS] + [["models", "export", "--help"]]
    loaded = _heavy_imports(*argvs)
    assert loaded[" ".join(argvs[-1])] == [], loaded


def test_predict_does_import_onnx(tmp_path: Path) -> None:
    """The probe sees imports at all: a command that reads a model imports onnx."""
    from fusionlab import zoo

    model = zoo.export("inception3a", tmp_path / "m.onnx")
    loaded = _heavy_imports(["predict", str(model)])
    assert "onnx" in loaded[f"predict {model}"]
    # a prediction builds no networkx graph (Graph.nx is made when drawing or diffing)
    assert not any(m.startswith("networkx") for m in loaded[f"predict {model}"])


def test_main_as_a_library_keeps_nothing_for_the_exit(tmp_path: Path, capsys: object) -> None:
    """Only the console script hands the command's graph to the process's end
    (:func:`fusionlab.cli.leave_for_exit`); ``main`` called by a program frees it as usual."""
    import fusionlab.cli as cli
    from fusionlab import zoo

    model = zoo.export("inception3a", tmp_path / "m.onnx")
    assert cli.main(["predict", str(model)]) == 0
    assert cli._LEFT_FOR_EXIT == []


def test_the_script_ends_with_its_output_whole(tmp_path: Path) -> None:
    """``python -m fusionlab`` ends the process without interpreter teardown
    (:func:`fusionlab.cli.script`): stdout, held-back log lines and the exit code survive."""
    from fusionlab import zoo

    model = zoo.export("inception3a", tmp_path / "m.onnx")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "fusionlab", "predict", str(model), "--json", "-"],
                          capture_output=True, text=True, env=env, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["layers"]
    failed = subprocess.run([sys.executable, "-m", "fusionlab", "predict", str(tmp_path / "none.onnx")],
                            capture_output=True, text=True, env=env, check=False, timeout=120)
    assert failed.returncode == 2
    assert failed.stderr.strip().endswith("none.onnx: no such file")
