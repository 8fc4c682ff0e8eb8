"""Start-up time of the ``fusionlab`` command, as ratios to ``python -c "import numpy"``.

Issue 14's targets, measured in the same run (medians of ``--repeat`` runs, default 5, the
commands taking turns so that all of them see the same machine):

- ``fusionlab --help``                  <= 2x ``import numpy``
- ``fusionlab predict googlenet.onnx``  <= 4x ``import numpy``

and, for information, ``predict --help``, ``models list`` and ``passes`` (which should import
nothing heavy either), and ``python -c "import onnx"`` (what any command that reads a model
pays first: with ml_dtypes 0.7.0 about 0.5 s more than with 0.6.0, hence the pin).
``googlenet.onnx`` is the zoo's (``fusionlab models export googlenet``, batch symbolic),
written to a temporary folder first. ``--importtime`` also prints, per command,
the heaviest imports (``python -X importtime``, cumulative) and the chain of modules that
pulled each one in.

The command is run as ``PYTHON -m fusionlab`` with this checkout first on PYTHONPATH
(``--python`` picks the interpreter, e.g. a venv with other pins), or as the ``fusionlab``
script on PATH (``--console``). Exit code 1 when a target is missed.

Run: .venv/bin/python benchmarks/bench_startup.py [--repeat N] [--importtime] [--python PY]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"--help": 2.0, "predict googlenet.onnx": 4.0}


def command_line(python: str, console: bool, args: list[str]) -> list[str]:
    if console:
        exe = shutil.which("fusionlab")
        if exe is None:
            sys.exit("bench_startup: no 'fusionlab' script on PATH (drop --console)")
        return [exe, *args]
    return [python, "-m", "fusionlab", *args]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONSTARTUP", None)
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"bench_startup: {' '.join(cmd)} failed (exit {proc.returncode}): "
                 f"{proc.stderr.decode(errors='replace').strip()[-500:]}")
    return elapsed


IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def heaviest_imports(cmd: list[str], cwd: Path, env: dict[str, str], top: int) -> list[tuple[float, str, str]]:
    """(cumulative ms, module, chain of importers) of the ``top`` heaviest top-level-ish imports."""
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        m = IMPORT_LINE.match(line)
        if m:
            rows.append((int(m.group(2)), len(m.group(3)) // 2, m.group(4)))
    # importtime prints a module after its children: walk backwards to find each one's parent
    chains: list[tuple[float, str, str]] = []
    stack: list[tuple[int, str]] = []
    for cum, depth, name in reversed(rows):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        chain = " <- ".join(n for _, n in reversed(stack[-4:]))
        chains.append((cum / 1000.0, name, chain))
        stack.append((depth, name))
    seen_roots: set[str] = set()
    out = []
    for ms, name, chain in sorted(chains, reverse=True):
        root = name.split(".")[0]
        if root in seen_roots and root != "fusionlab":
            continue
        seen_roots.add(root)
        out.append((ms, name, chain))
        if len(out) == top:
            break
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each command (the median is kept)")
    ap.add_argument("--python", default=sys.executable, help="interpreter to run fusionlab and numpy with")
    ap.add_argument("--console", action="store_true", help="run the 'fusionlab' script on PATH")
    ap.add_argument("--importtime", action="store_true", help="also list each command's heaviest imports")
    args = ap.parse_args()
    env = environment()
    # byte-compile fusionlab first: an installed package has its .pyc files, and a checkout run
    # with PYTHONDONTWRITEBYTECODE=1 (as on the project's machines) would compile every module
    # on every run (~0.15-0.3 s here), which is not start-up a user sees
    subprocess.run([args.python, "-m", "compileall", "-q", str(ROOT / "fusionlab")], check=True,
                   env={k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"})
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        cwd = Path(tmp)
        subprocess.run([args.python, "-m", "fusionlab", "models", "export", "googlenet", "-o", "googlenet.onnx"],
                       cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        commands = {
            "import numpy": [args.python, "-c", "import numpy"],
            "import onnx": [args.python, "-c", "import onnx"],
            "--help": command_line(args.python, args.console, ["--help"]),
            "predict --help": command_line(args.python, args.console, ["predict", "--help"]),
            "models list": command_line(args.python, args.console, ["models", "list"]),
            "passes": command_line(args.python, args.console, ["passes"]),
            "predict googlenet.onnx": command_line(args.python, args.console, ["predict", "googlenet.onnx"]),
        }
        for cmd in commands.values():  # warm the page cache and .pyc files
            timed(cmd, cwd, env)
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.repeat):
            for name, cmd in commands.items():
                times[name].append(timed(cmd, cwd, env))
        medians = {k: statistics.median(v) for k, v in times.items()}
        base = medians["import numpy"]
        version = subprocess.run([args.python, "-c", "import sys, numpy; print(sys.version.split()[0], "
                                  "numpy.__version__)"], capture_output=True, text=True, check=False).stdout.split()
        try:
            ml = subprocess.run([args.python, "-c", "import importlib.metadata as m; print(m.version('ml_dtypes'))"],
                                capture_output=True, text=True, check=False).stdout.strip() or "absent"
        except OSError:
            ml = "?"
        print(f"python {version[0] if version else '?'}, numpy {version[1] if len(version) > 1 else '?'}, "
              f"ml_dtypes {ml}; {os.cpu_count()} CPUs; medians of {args.repeat}")
        print(f"{'command':<26} {'median s':>9} {'ratio':>7} {'target':>7}")
        failed = False
        for name, t in medians.items():
            ratio = t / base
            target = TARGETS.get(name)
            mark = ""
            if target is not None:
                ok = ratio <= target
                failed |= not ok
                mark = f"<= {target:.0f}x  {'ok' if ok else 'MISSED'}"
            print(f"{name:<26} {t:9.3f} {ratio:6.2f}x {mark}")
        if args.importtime:
            for name, cmd in commands.items():
                if name.startswith("import "):
                    continue
                print(f"\nheaviest imports of `fusionlab {name}` (cumulative ms, who pulled them in):")
                for ms, mod, chain in heaviest_imports(cmd, cwd, env, 8):
                    print(f"  {ms:8.1f}  {mod:<36} {('<- ' + chain) if chain else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
