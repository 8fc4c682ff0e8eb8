"""A seeded fuzz campaign against the ``fusionlab`` command line (issue 14).

Every case is a hostile input and a command that reads it: structurally valid but hostile
ONNX graphs (built with ``onnx.helper``), engine layer-information and profile JSON mutated
from the test fixtures and from the zoo's ResNet-18 run through ``fusionlab predict
--json``, trtexec text logs, plan and efficiency JSON, TOML expectations, raw argument
vectors, and special output targets (a character device, ``/dev/stdout``, a FIFO, a
dangling symlink, an output that is one of the inputs, a read-only folder, a full disk
simulated with ``RLIMIT_FSIZE``). Each case runs in a fresh temporary folder with a
timeout and a memory limit, and is held to the contract of issue 14:

- a user error ends with exit code 2 and exactly one line on stderr, never a traceback;
- nothing hangs or blows up memory; input files are never modified;
- outputs are written whole or not at all (strict JSON: no NaN/Infinity), and a device,
  FIFO or symlink given as the output is written through, never replaced.

Cases run through the stable surface only: ``fusionlab.cli.main(argv)`` in a forked child
of a process that imported fusionlab once (``--mode fork``, the default: tens of cases a
second), or ``python -m fusionlab`` (``--mode subprocess``: faithful, about a second a case).

Run::

    nice python benchmarks/fuzz_campaign.py --cases 10000 --seed 1 --timeout 20 \\
        --out /work/scratch/fuzz/campaign

It prints, per input kind: cases run / ok / clean errors / unclear errors / internal errors /
timeouts / inputs modified / partial outputs / invalid outputs / replaced targets / errors
that do not name the offending file, and writes ``OUT/failures.json`` (one entry per
distinct failure: exception type and innermost fusionlab frame, or the contract broken)
with up to three reproducers each under ``OUT/repro/<id>/`` (inputs and ``repro.sh``).
The special output targets never touch the real ``/dev``: a private null device made with
``mknod`` and a symlink to ``/proc/self/fd/1`` stand for ``/dev/null`` and ``/dev/stdout``
(the campaign runs as root, and replacing the real ones would break the machine).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "formats" / "data"
TOML_FIXTURES = ROOT / "tests" / "cli" / "data"

KINDS = ("onnx", "layer_json", "profile", "plan_json", "efficiency", "toml", "argv", "output")
TARGETS = ("classic", "trt8", "trt10", "trt11", "rtx")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
DEVICES = ("a100-80gb-pcie", "h100-sxm", "t4", "jetson-agx-orin", "rtx-4090")
COMMANDS = ("models", "inspect", "predict", "passes", "diff", "check", "build", "profile",
            "import", "render", "figures", "calibrate", "execute")
TRACEBACK = "Traceback (most recent call last)"
OUTPUT_CAP = 1 << 20
"""Bytes of a child's stdout or stderr kept (the rest is counted and dropped)."""


# ---------------------------------------------------------------------------------------
# Cases


@dataclasses.dataclass
class Case:
    """One run: the files to lay out in a fresh folder, the argument vector, what to check.

    ``files`` maps a relative name to bytes, or to a tuple naming something special:
    ``("base", key)`` a hard link to a base file (a zoo model), ``("symlink", target)``,
    ``("fifo",)``, ``("chardev",)`` (a private null device), ``("sparse", size)`` (a file of
    that many zero bytes that takes no disk), ``("dir",)``, ``("rodir",)`` (an immutable
    folder, ``chattr +i``: root ignores permission bits).
    """

    kind: str
    argv: list[str]
    files: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: list[str] = dataclasses.field(default_factory=list)
    """Paths the command may write (checked: whole, strict, special targets kept)."""
    targets: list[str] = dataclasses.field(default_factory=list)
    """Files laid out as output targets (a device, a FIFO, a symlink, an old file): not inputs."""
    culprit: str | None = None
    """The hostile input: a clean error should name it."""
    fsize: int | None = None
    """RLIMIT_FSIZE for the child (a full disk)."""
    note: str = ""

    def command(self) -> str:
        return self.argv[0] if self.argv and not self.argv[0].startswith("-") else "(none)"


class Base:
    """Material built once per campaign: zoo models, fixture texts, predicted plans."""

    def __init__(self, folder: Path, run_cli: Callable[[list[str]], int]) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.models: dict[str, Path] = {}
        for name in ("resnet18", "inception3a"):
            path = folder / f"{name}.onnx"
            if not path.exists():
                run_cli(["models", "export", name, "-o", str(path), "--batch", "1"])
            self.models[name] = path
        self.texts: dict[str, str] = {}
        for p in sorted(FIXTURES.iterdir()):
            if p.is_file():  # data/rtx/ holds build logs, not fixtures of this campaign
                self.texts[p.name] = p.read_text(encoding="utf-8")
        for p in sorted(TOML_FIXTURES.glob("*.toml")):
            self.texts[p.name] = p.read_text(encoding="utf-8")
        plans = {}
        for name in ("resnet18", "inception3a"):
            out = folder / f"{name}.plan.json"
            if not out.exists():
                run_cli(["predict", str(self.models[name]), "--json", str(out)])
            plans[name] = out.read_text(encoding="utf-8")
        self.texts["resnet18.plan.json"] = plans["resnet18"]
        self.texts["inception3a.plan.json"] = plans["inception3a"]
        names = [layer["name"] for layer in json.loads(plans["resnet18"])["layers"]]
        # TensorRT's default profiling verbosity: layer names only; and its profile
        self.texts["resnet18.names.layers.json"] = json.dumps({"Layers": names, "Bindings": ["input.1"]})
        rng = random.Random(0)
        profile: list[dict[str, Any]] = [{"count": 10}]
        for n in names:
            t = round(rng.uniform(0.01, 0.5), 5)
            profile.append({"name": n, "timeMs": t * 10, "averageMs": t, "medianMs": t, "percentage": 4.0})
        self.texts["resnet18.profile.json"] = json.dumps(profile, indent=1)
        eff = folder / "eff.json"
        if not eff.exists():
            run_cli(["calibrate", "--layer-info", str(FIXTURES / "trt11.layers.json"), "--profile",
                     str(FIXTURES / "quoted_names.profile.json"), "--device", "a100-80gb-pcie", "-o", str(eff)])
        self.texts["eff.json"] = eff.read_text(encoding="utf-8")
        self.hashes = {k: _sha(p.read_bytes()) for k, p in self.models.items()}

    def check_intact(self) -> None:
        """Re-export a base model that a case damaged (hard links share its inode)."""
        for k, p in self.models.items():
            if _sha(p.read_bytes()) != self.hashes[k]:
                raise RuntimeError(f"base model {p} was modified by a case (hard link written in place)")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------
# Hostile values


HUGE_NUMBERS = ("1e400", "-1e400", "1" + "0" * 400, "-" + "9" * 400, "NaN", "Infinity", "-Infinity",
                "1e308", "5e-324", "-0", "0", "-1", "9223372036854775808", "1.0e+1000000", "1E-400")
ODD_VALUES: tuple[Any, ...] = (None, True, False, 0, -1, 1.5, -0.0, 2**63, -(2**63), 2**31, 10**30, "", "x",
                               "1.5", "NaN", [], {}, [None], {"": None}, "\u0000", "\u202e\u00e9\U0001F600",
                               "a" * 5000, " + ", " || ", "PWN(", "\x1e\x1f")


def deep_json(depth: int, kind: str = "[") -> str:
    if kind == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def mutate_tree(rng: random.Random, value: Any, n: int) -> tuple[Any, list[str]]:
    """Apply ``n`` structural mutations to a JSON tree; return it and placeholders to splice.

    Text that ``json.dumps`` cannot make (deep nesting, 1e400, ...) is put in as a
    placeholder string ``@@Pk@@`` and spliced into the text afterwards.
    """
    value = json.loads(json.dumps(value))
    splices: list[str] = []
    for _ in range(n):
        paths = list(_paths(value))
        if not paths:
            break
        path = rng.choice(paths)
        parent, key = _resolve(value, path)
        op = rng.random()
        if parent is None:
            # the root itself
            if op < 0.5:
                value = rng.choice([[value], {"Layers": value}, None, 1, "x", []])
            continue
        if op < 0.25:
            parent[key] = rng.choice(ODD_VALUES)
        elif op < 0.45:
            token = rng.choice(HUGE_NUMBERS)
            splices.append(token)
            parent[key] = f"@@P{len(splices) - 1}@@"
        elif op < 0.55:
            splices.append(deep_json(rng.choice([200, 990, 1500, 20000, 100000]), rng.choice("[{")))
            parent[key] = f"@@P{len(splices) - 1}@@"
        elif op < 0.65 and isinstance(parent, dict):
            del parent[key]
        elif op < 0.72 and isinstance(parent, list):
            parent.extend([parent[key]] * rng.choice([1, 2, 50]))
        elif op < 0.78 and isinstance(parent, list):
            rng.shuffle(parent)
        elif op < 0.84:
            parent[key] = [parent[key]] if rng.random() < 0.5 else {"x": parent[key]}
        elif op < 0.9 and isinstance(parent[key], str):
            s = parent[key]
            parent[key] = rng.choice([s + " + " + s, s.upper(), s[: len(s) // 2], s * 3, s + "\n", ""])
        elif op < 0.95 and isinstance(parent[key], int | float) and not isinstance(parent[key], bool):
            parent[key] = rng.choice([parent[key] * 10**12, -parent[key], parent[key] + 0.5, 0])
        else:
            parent[key] = rng.choice([{}, [], "", None])
    return value, splices


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterable[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:60]):
            yield from _paths(v, (*prefix, i))


def _resolve(value: Any, path: tuple[Any, ...]) -> tuple[Any, Any]:
    if not path:
        return None, None
    parent = value
    for k in path[:-1]:
        parent = parent[k]
    return parent, path[-1]


def dump_with_splices(value: Any, splices: list[str], rng: random.Random) -> str:
    text = json.dumps(value, indent=rng.choice([None, 1]), ensure_ascii=rng.random() < 0.5)
    for i, s in enumerate(splices):
        text = text.replace(f'"@@P{i}@@"', s)
    return text


def mutate_bytes(rng: random.Random, text: str) -> bytes:
    """Byte-level damage to a text file."""
    raw = text.encode("utf-8")
    op = rng.random()
    if op < 0.2:
        return raw[: rng.randrange(len(raw) + 1)]
    if op < 0.4:
        i = rng.randrange(len(raw) + 1)
        return raw[:i] + rng.choice([b"\xff\xfe", b"\xc3", b"\x80\x80", b"\xed\xa0\x80", b"\x00"]) + raw[i:]
    if op < 0.5:
        return b"\xef\xbb\xbf" + raw
    if op < 0.6:
        return text.encode("utf-16")
    if op < 0.7:
        return raw + rng.choice([b"garbage", b"\n}\n", b"]", b"\x00" * 10])
    if op < 0.8:
        return raw.replace(b"\n", b"\r\n")
    if op < 0.9:
        return rng.randbytes(rng.choice([1, 10, 1000]))
    return b""


def big_file(rng: random.Random, text: str) -> Any:
    """A huge or endless input: sparse zeros, a long padded file, or /dev/zero."""
    op = rng.random()
    if op < 0.3:
        return ("sparse", rng.choice([30 << 20, 200 << 20, 2 << 30]))
    if op < 0.6:
        return ("devzero",)
    pad = rng.choice([20 << 20, 40 << 20])
    if text.lstrip().startswith(("{", "[")):
        return (" " * pad + text).encode("utf-8")
    return (text + ("\n# pad" * (pad // 6))).encode("utf-8")


def hostile_text_file(rng: random.Random, text: str, tree: Any | None) -> Any:
    """Mutate a JSON (tree given) or text file: structure, bytes, or size."""
    op = rng.random()
    if tree is not None and op < 0.65:
        mutated, splices = mutate_tree(rng, tree, rng.choice([1, 1, 2, 3, 6]))
        return dump_with_splices(mutated, splices, rng).encode("utf-8")
    if tree is None and op < 0.5:
        return mutate_numbers(rng, text).encode("utf-8")
    if op < 0.93:
        return mutate_bytes(rng, text)
    return big_file(rng, text)


NUMBER = re.compile(r"(?<![A-Za-z_])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def mutate_numbers(rng: random.Random, text: str) -> str:
    """Replace some numbers of a text log by odd ones (trtexec text summaries, dumpProfile)."""
    odd = ("1e400", "nan", "inf", "-inf", "1" + "0" * 400, "-0", "0", "-5", "1,234.5", "0x10", "1e-400",
           "99999999999999999999", "", "..", "1.2.3", "\u221e", "\u0661\u0662")

    def sub(m: re.Match[str]) -> str:
        return rng.choice(odd) if rng.random() < 0.3 else m.group(0)

    out = NUMBER.sub(sub, text)
    if rng.random() < 0.3:
        lines = out.splitlines(keepends=True)
        if lines:
            i = rng.randrange(len(lines))
            lines[i:i] = [lines[i]] * rng.choice([1, 100, 5000])
            out = "".join(lines)
    return out


# ---------------------------------------------------------------------------------------
# Hostile ONNX graphs


def onnx_case_bytes(rng: random.Random) -> tuple[bytes, dict[str, bytes], str, list[str]]:
    """A hostile ONNX model: its bytes, side files (external data), a note, node names."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    notes: list[str] = []
    shape: list[Any] = [1, rng.choice([1, 3, 8]), 4, 4]
    dtype: int = TensorProto.FLOAT
    nodes: list[Any] = []
    inits: list[Any] = []
    side: dict[str, bytes] = {}
    counter = [0]

    def fresh(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    cur = "input"
    channels = shape[1]
    shape_kind = rng.random()
    if shape_kind < 0.35:
        # a long plain chain (quadratic behaviour, size guards)
        length = rng.choice([1, 10, 100, 500, 1000, 2000]) if rng.random() < 0.9 else rng.choice([4000, 8000, 30000])
        op = rng.choice(["Relu", "Relu", "Sigmoid", "Identity", "Abs", "Tanh"])
        notes.append(f"chain of {length} {op}")
        for _ in range(length):
            out = fresh("t")
            nodes.append(helper.make_node(op, [cur], [out], name=fresh(op)))
            cur = out
    else:
        n_blocks = rng.choice([1, 2, 3, 5, 10])
        notes.append(f"{n_blocks} random blocks")
        for _ in range(n_blocks):
            choice = rng.random()
            if choice < 0.35:
                w = fresh("w")
                k = rng.choice([1, 3])
                out_c = rng.choice([channels, 4, 8])
                inits.append(numpy_helper.from_array(np.full((out_c, channels, k, k), 0.1, np.float32), w))
                conv_out = fresh("c")
                nodes.append(helper.make_node("Conv", [cur, w], [conv_out], name=fresh("Conv"),
                                              kernel_shape=[k, k], pads=[k // 2] * 4))
                channels = out_c
                cur = conv_out
                if rng.random() < 0.6:
                    names = [fresh(p) for p in ("s", "b", "m", "v")]
                    for nm, val in zip(names, (1.0, 0.0, 0.0, 1.0), strict=True):
                        inits.append(numpy_helper.from_array(np.full((channels,), val, np.float32), nm))
                    bn_out = fresh("bn")
                    nodes.append(helper.make_node("BatchNormalization", [cur, *names], [bn_out], name=fresh("BN")))
                    cur = bn_out
                act = rng.choice(["Relu", "Clip", "Sigmoid", "LeakyRelu", None])
                if act:
                    a_out = fresh("a")
                    nodes.append(helper.make_node(act, [cur], [a_out], name=fresh(act)))
                    cur = a_out
            elif choice < 0.55:
                # siblings reading the same tensor, then a Concat
                branches = []
                for _ in range(rng.choice([2, 3])):
                    w = fresh("w")
                    inits.append(numpy_helper.from_array(np.full((4, channels, 1, 1), 0.1, np.float32), w))
                    c = fresh("c")
                    nodes.append(helper.make_node("Conv", [cur, w], [c], name=fresh("Conv"), kernel_shape=[1, 1]))
                    r = fresh("r")
                    nodes.append(helper.make_node("Relu", [c], [r], name=fresh("Relu")))
                    branches.append(r)
                cat = fresh("cat")
                nodes.append(helper.make_node("Concat", branches, [cat], name=fresh("Concat"), axis=1))
                channels = 4 * len(branches)
                cur = cat
            elif choice < 0.7:
                a = fresh("p")
                nodes.append(helper.make_node("Relu", [cur], [a], name=fresh("Relu")))
                s = fresh("add")
                nodes.append(helper.make_node(rng.choice(["Add", "Mul", "Sub"]), [cur, a], [s], name=fresh("Add")))
                cur = s
            elif choice < 0.8:
                p = fresh("pool")
                nodes.append(helper.make_node(rng.choice(["MaxPool", "AveragePool"]), [cur], [p], name=fresh("Pool"),
                                              kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]))
                cur = p
            elif choice < 0.87:
                # Q/DQ pair
                sc, zp = fresh("scale"), fresh("zp")
                inits.append(numpy_helper.from_array(np.array(0.1, np.float32), sc))
                inits.append(numpy_helper.from_array(np.array(0, np.int8), zp))
                q, dq = fresh("q"), fresh("dq")
                nodes.append(helper.make_node("QuantizeLinear", [cur, sc, zp], [q], name=fresh("Q")))
                nodes.append(helper.make_node("DequantizeLinear", [q, sc, zp], [dq], name=fresh("DQ")))
                cur = dq
            elif choice < 0.93:
                o = fresh("custom")
                nodes.append(helper.make_node(rng.choice(["FooBar", "Relu"]), [cur], [o], name=fresh("Custom"),
                                              domain=rng.choice(["com.example", "", "ai.onnx.ml"])))
                cur = o
            else:
                f = fresh("flat")
                nodes.append(helper.make_node("Flatten", [cur], [f], name=fresh("Flatten"), axis=1))
                w = fresh("fc")
                inits.append(numpy_helper.from_array(np.full((channels * 16, 5), 0.1, np.float32), w))
                g = fresh("gemm")
                nodes.append(helper.make_node(rng.choice(["MatMul", "Gemm"]), [f, w], [g], name=fresh("Gemm")))
                cur = g
                break

    # --- mutations
    mutations = rng.choice([0, 1, 1, 2, 3])
    out_dtype: int = TensorProto.FLOAT
    opset = 13
    ir_version = 8
    for _ in range(mutations):
        m = rng.random()
        if m < 0.12:
            dtype = rng.choice([0, 999, -1, 8, 16, 17, 19, 21, 23, 25, 40, 2**31 - 1, TensorProto.STRING])
            notes.append(f"input dtype {dtype}")
        elif m < 0.25 and shape:
            i = rng.randrange(len(shape))
            shape[i] = rng.choice([0, -1, -7, 2**40, 2**62, 2**63 - 1, "", "N", "batch size", "\u00e9", None])
            notes.append(f"dim {i} = {shape[i]!r}")
        elif m < 0.3:
            shape = rng.choice([[], [1], [1] * 9, [None, None, None, None], ["N", 3, 4, 4]])
            notes.append(f"shape {shape!r}")
        elif m < 0.42 and nodes:
            node = rng.choice(nodes)
            node.attribute.append(_weird_attribute(rng, helper, onnx, numpy_helper, np))
            notes.append(f"weird attribute on {node.name}")
        elif m < 0.5 and inits:
            init = rng.choice(inits)
            loc = rng.choice(["../../../../etc/passwd", "/etc/passwd", "missing.bin", "", "sub/../../w.bin",
                              "w.bin", "a" * 300, "nul\x00byte", "w.bin?x", "..", "."])
            init.data_location = TensorProto.EXTERNAL
            del init.external_data[:]
            entries: dict[str, str] = {"location": str(loc)}
            if rng.random() < 0.5:
                entries["offset"] = rng.choice(["0", "-5", "abc", str(2**70), "1e3"])
                entries["length"] = rng.choice(["4", "-1", "xyz", str(2**70)])
            for key, value in entries.items():
                e = init.external_data.add()
                e.key, e.value = key, value
            init.ClearField("float_data")
            init.ClearField("raw_data")
            if loc == "w.bin":
                side["w.bin"] = rng.randbytes(rng.choice([0, 3, 64]))
            notes.append(f"external data {loc!r}")
        elif m < 0.56 and inits:
            init = rng.choice(inits)
            init.data_type = rng.choice([0, 999, 13, 16, 8])
            if rng.random() < 0.5:
                init.raw_data = rng.randbytes(rng.choice([0, 1, 7]))
            notes.append("initializer dtype/raw_data mismatch")
        elif m < 0.62 and inits:
            init = rng.choice(inits)
            del init.dims[:]
            init.dims.extend(rng.choice([[2**40], [-3, 4], [0], [2**31, 2**31]]))
            notes.append("initializer dims")
        elif m < 0.7 and nodes:
            node = rng.choice(nodes)
            node.name = rng.choice(["", nodes[0].name, "x\ny", 'q"uote', "a" * 10000, "A + B", "x || y", "\u0000",
                                    "PWN(a)", "Reformatting CopyNode for x", "{}", "<b>", "\\"])
            notes.append(f"node name {node.name[:20]!r}")
        elif m < 0.75 and nodes:
            node = rng.choice(nodes)
            node.input.append(rng.choice(["undefined_tensor", "", node.output[0] if node.output else "x"]))
            notes.append("dangling/self input")
        elif m < 0.8 and len(nodes) > 2:
            # a cycle
            nodes[0].input[0] = nodes[-1].output[0]
            notes.append("cycle")
        elif m < 0.85:
            opset = rng.choice([1, 6, 7, 11, 99, 10**6])
            notes.append(f"opset {opset}")
        elif m < 0.88:
            ir_version = rng.choice([0, 1, 3, 99])
            notes.append(f"ir_version {ir_version}")
        elif m < 0.92 and nodes:
            # an If node with a subgraph
            then = helper.make_graph([helper.make_node("Relu", [cur], ["then_out"], name="then_relu")], "then", [],
                                     [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, None)])
            cond = fresh("cond")
            inits.append(numpy_helper.from_array(np.array(True), cond))
            o = fresh("if")
            nodes.append(helper.make_node("If", [cond], [o], name=fresh("If"), then_branch=then, else_branch=then))
            cur = o
            notes.append("If subgraph")
        elif m < 0.95:
            out_dtype = rng.choice([0, 999, TensorProto.STRING])
            notes.append(f"output dtype {out_dtype}")
        else:
            const = helper.make_tensor("v", TensorProto.FLOAT, [2], [1.0, 2.0])
            if rng.random() < 0.5:
                const.data_type = rng.choice([0, 999, TensorProto.STRING])
            nodes.append(helper.make_node("Constant", [], [fresh("k")], name=fresh("Constant"),
                                          value=const if rng.random() < 0.8 else None))
            notes.append("odd Constant")

    dims = [d if d is not None else None for d in shape]
    inp = helper.make_tensor_value_info("input", dtype, dims if rng.random() > 0.05 else None)
    out = helper.make_tensor_value_info(cur, out_dtype, None)
    graph = helper.make_graph(nodes, "fuzz", [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="fuzz")
    model.ir_version = ir_version
    data = model.SerializeToString()
    if rng.random() < 0.04:
        data = data[: rng.randrange(len(data) + 1)]
        notes.append("truncated protobuf")
    names = [n.name for n in nodes if n.name]
    return data, side, "; ".join(notes), names


def _weird_attribute(rng: random.Random, helper: Any, onnx: Any, numpy_helper: Any, np: Any) -> Any:
    name = rng.choice(["kernel_shape", "pads", "strides", "group", "axis", "epsilon", "alpha", "min", "max",
                       "dilations", "auto_pad", "perm", "", "x" * 300])
    kind = rng.random()
    if kind < 0.2:
        return helper.make_attribute(name, "SAME_UPPER" if rng.random() < 0.5 else "\xff")
    if kind < 0.35:
        return helper.make_attribute(name, rng.choice([1.5, float("nan"), float("inf"), -0.0]))
    if kind < 0.5:
        value = rng.choice([[], [2**62], [-1, -1], [0, 0, 0, 0, 0, 0, 0, 0, 0]])
        return helper.make_attribute(name, value, attr_type=onnx.AttributeProto.INTS)
    if kind < 0.6:
        return helper.make_attribute(name, rng.choice([0, -1, 2**62, -(2**62)]))
    if kind < 0.7:
        return helper.make_attribute(name, numpy_helper.from_array(np.zeros((2,), np.float32)))
    if kind < 0.8:
        return helper.make_attribute(name, [b"a", b"\xff"])
    if kind < 0.9:
        a = onnx.AttributeProto()
        a.name = name
        a.type = rng.choice([0, onnx.AttributeProto.SPARSE_TENSOR, onnx.AttributeProto.TYPE_PROTO])
        return a
    return helper.make_attribute(name, helper.make_graph([], "g", [], []))


# ---------------------------------------------------------------------------------------
# Generators, one per kind


def _model_args(rng: random.Random) -> list[str]:
    args: list[str] = []
    if rng.random() < 0.3:
        args += ["--batch", rng.choice(["1", "2", "7", str(2**31), str(10**12), str(2**63)])]
    return args


def gen_onnx(rng: random.Random, base: Base) -> Case:
    if rng.random() < 0.05:
        # file-level hostility for the MODEL argument
        files: dict[str, Any] = {"m.onnx": rng.choice([b"", rng.randbytes(100), b"\x08\x07" * 1000,
                                                       ("sparse", 300 << 20), ("devzero",), ("dir",)])}
        note, names = "file-level hostile model", ["x"]
    else:
        data, side, note, names = onnx_case_bytes(rng)
        files = {"m.onnx": data, **side}
    cmd = rng.random()
    outputs: list[str] = []
    if cmd < 0.2:
        argv = ["inspect", "m.onnx", *_model_args(rng), *rng.sample(["--nodes", "--json"], rng.randint(0, 2))]
    elif cmd < 0.65:
        argv = ["predict", "m.onnx", *_model_args(rng), "--target", rng.choice(TARGETS)]
        if rng.random() < 0.3:
            argv += ["--precision", rng.choice(PRECISIONS)]
        if rng.random() < 0.3:
            argv += ["--stages"]
        if rng.random() < 0.2 and names:
            argv += ["--explain", rng.choice(names)]
        if rng.random() < 0.25:
            argv += ["--device", rng.choice(DEVICES)]
        if rng.random() < 0.4:
            argv += ["--json", "plan.json"]
            outputs.append("plan.json")
    elif cmd < 0.88:
        ext = ".dot" if rng.random() < 0.85 else rng.choice([".svg", ".png"])
        argv = ["render", "m.onnx", *_model_args(rng), "-o", "out" + ext, "--target", rng.choice(TARGETS)]
        argv += rng.choice([[], ["--stage", "all"], ["--stage", "original"], ["--compact"],
                            ["--focus", rng.choice(names) if names else "x", "--radius", rng.choice(["0", "1", "3"])],
                            ["--match", rng.choice([".*", "Relu", "(", "a{99999}"])]])
        outputs.append("out" + ext)
        if "all" in argv:
            outputs.append("out-*" + ext)
    else:
        files["e.toml"] = (f'[[separate]]\nnodes = ["{names[0]}", "{names[-1]}"]\n' if len(names) > 1
                           else "max_layers = 5\n").encode()
        argv = ["check", "m.onnx", *_model_args(rng), "--expect", "e.toml", "--target", rng.choice(TARGETS)]
    return Case("onnx", argv, files, outputs, culprit="m.onnx", note=note)


LAYER_BASES = ("trt11.layers.json", "metadata.layers.json", "names_only.layers.json", "resnet18.names.layers.json")
PROFILE_BASES = ("quoted_names.profile.json", "trt7_4key.profile.json", "resnet18.profile.json",
                 "trt10.dump_profile.txt", "trt7.dump_profile.txt", "trt8.summary.txt")


def _hostile(rng: random.Random, base: Base, name: str) -> Any:
    text = base.texts[name]
    tree = None
    if name.endswith(".json"):
        try:
            tree = json.loads(text, strict=False)
        except json.JSONDecodeError:  # TensorRT's unescaped quotes in names: mutate it as text
            tree = None
    return hostile_text_file(rng, text, tree)


def gen_layer_json(rng: random.Random, base: Base) -> Case:
    src = rng.choice(LAYER_BASES)
    files: dict[str, Any] = {"layers.json": _hostile(rng, base, src)}
    with_model = rng.random() < 0.3
    if with_model:
        files["resnet18.onnx"] = ("base", "resnet18")
    profile = rng.random() < 0.4
    if profile:
        files["profile.json"] = base.texts["resnet18.profile.json"].encode()
    cmd = rng.random()
    outputs: list[str] = []
    if cmd < 0.4 or (not with_model and cmd < 0.7):
        argv = ["import", "layers.json"] + (["--model", "resnet18.onnx"] if with_model else [])
        argv += ["--profile", "profile.json"] if profile else []
        if rng.random() < 0.5:
            argv += ["-o", "plan.json"]
            outputs.append("plan.json")
    elif cmd < 0.7 or not with_model:
        if "profile.json" not in files:
            files["profile.json"] = base.texts["resnet18.profile.json"].encode()
        argv = ["calibrate", "--layer-info", "layers.json", "--profile", "profile.json", "--device",
                rng.choice(DEVICES)] + (["--model", "resnet18.onnx"] if with_model else [])
        if rng.random() < 0.5:
            argv += ["-o", "eff.json"]
            outputs.append("eff.json")
    elif cmd < 0.88:
        argv = ["diff", "resnet18.onnx", "--layer-info", "layers.json"] + (["--profile", "profile.json"]
                                                                             if profile else [])
        if rng.random() < 0.5:
            argv += ["--json", "diff.json"]
            outputs.append("diff.json")
    else:
        files["e.toml"] = base.texts["inception3a-holds.toml"].encode() if rng.random() < 0.3 else \
            b'max_layers = 40\n[[fused]]\nnodes = ["Conv_0", "Relu_1"]\n'
        argv = ["check", "resnet18.onnx", "--expect", "e.toml", "--layer-info", "layers.json"]
    return Case("layer_json", argv, files, outputs, culprit="layers.json", note=f"from {src}")


def gen_profile(rng: random.Random, base: Base) -> Case:
    src = rng.choice(PROFILE_BASES)
    pname = "profile" + (".json" if src.endswith(".json") else ".txt")
    files: dict[str, Any] = {pname: _hostile(rng, base, src)}
    names_only = src.startswith("resnet18") or rng.random() < 0.5
    layer_src = "resnet18.names.layers.json" if names_only else "trt11.layers.json"
    files["layers.json"] = base.texts[layer_src].encode()
    with_model = rng.random() < 0.4
    if with_model:
        files["resnet18.onnx"] = ("base", "resnet18")
    cmd = rng.random()
    outputs: list[str] = []
    if cmd < 0.35:
        argv = ["import", "layers.json", "--profile", pname] + (["--model", "resnet18.onnx"] if with_model else [])
        if rng.random() < 0.5:
            argv += ["-o", "plan.json"]
            outputs.append("plan.json")
    elif cmd < 0.7 or not with_model:
        argv = ["calibrate", "--layer-info", "layers.json", "--profile", pname, "--device", rng.choice(DEVICES)]
        argv += ["--model", "resnet18.onnx"] if with_model else []
        if rng.random() < 0.5:
            argv += ["-o", "eff.json"]
            outputs.append("eff.json")
    elif cmd < 0.9:
        argv = ["diff", "resnet18.onnx", "--layer-info", "layers.json", "--profile", pname]
        if rng.random() < 0.3:
            argv += ["--device", rng.choice(DEVICES)]
        if rng.random() < 0.5:
            argv += ["--json", "diff.json"]
            outputs.append("diff.json")
    else:
        files["e.toml"] = b'[[max_time_ms]]\nlayer = "Conv_0 + Relu_1"\nms = 1.0\n'
        argv = ["check", "resnet18.onnx", "--expect", "e.toml", "--layer-info", "layers.json", "--profile", pname]
    return Case("profile", argv, files, outputs, culprit=pname, note=f"from {src} with {layer_src}")


def gen_plan_json(rng: random.Random, base: Base) -> Case:
    model = rng.choice(["resnet18", "inception3a"])
    files: dict[str, Any] = {"plan.json": _hostile(rng, base, f"{model}.plan.json"),
                             f"{model}.onnx": ("base", model)}
    # (execute --plan reads the same file, but imports torch first: seconds a case)
    argv = ["render", f"{model}.onnx", "--plan", "plan.json", "-o", "out.dot"]
    argv += rng.choice([[], ["--compact"], ["--match", "Conv"], ["--focus", "Conv_0"]])
    outputs = ["out.dot"]
    return Case("plan_json", argv, files, outputs, culprit="plan.json", note=f"from {model} plan")


def gen_efficiency(rng: random.Random, base: Base) -> Case:
    files: dict[str, Any] = {"eff.json": _hostile(rng, base, "eff.json")}
    cmd = rng.random()
    outputs: list[str] = []
    if cmd < 0.5:
        files["inception3a.onnx"] = ("base", "inception3a")
        argv = ["predict", "inception3a.onnx", "--device", rng.choice(DEVICES), "--efficiency", "eff.json"]
        if rng.random() < 0.4:
            argv += ["--json", "plan.json"]
            outputs.append("plan.json")
    elif cmd < 0.8:
        files["layers.json"] = base.texts["trt11.layers.json"].encode()
        files["profile.json"] = base.texts["quoted_names.profile.json"].encode()
        argv = ["calibrate", "--layer-info", "layers.json", "--profile", "profile.json", "--device",
                "a100-80gb-pcie", "--efficiency", "eff.json"]
        if rng.random() < 0.5:
            argv += ["-o", "fitted.json"]
            outputs.append("fitted.json")
    else:
        files["resnet18.onnx"] = ("base", "resnet18")
        files["layers.json"] = base.texts["trt11.layers.json"].encode()
        argv = ["diff", "resnet18.onnx", "--layer-info", "layers.json", "--device", "a100-80gb-pcie",
                "--efficiency", "eff.json"]
    return Case("efficiency", argv, files, outputs, culprit="eff.json")


TOML_KEYS = ("fused", "separate", "eliminated", "max_layers", "max_time_ms", "nodes", "layer", "ms")


def hostile_toml(rng: random.Random, base: Base) -> Any:
    src = base.texts[rng.choice(["inception3a-holds.toml", "inception3a-fails.toml"])]
    op = rng.random()
    if op < 0.15:
        d = rng.choice([100, 990, 3000, 50000])
        return (src + f"\nextra = {'[' * d}{']' * d}\n").encode()
    if op < 0.25:
        d = rng.choice([100, 990, 3000, 50000])
        return (f"max_layers = {'{a=' * d}1{'}' * d}\n").encode()
    if op < 0.3:
        d = rng.choice([1000, 50000])
        return ("[[fused]]\nnodes = " + "[" * d + '"a"' + "]" * d + "\n").encode()
    if op < 0.55:
        key = rng.choice(["max_layers", "ms", "nodes", "eliminated", "fused", "separate", "max_time_ms"])
        val = rng.choice(["1e400", "nan", "inf", "-inf", "1" + "0" * 400, "-1", "0", "1.5", "true", '"x"',
                          "[]", "{}", "[1, 2]", '["a"]', "[[1]]", '"\\u0000"', "1979-05-27", "0x7fffffffffffffff",
                          "9223372036854775808", '"' + "a" * 100000 + '"'])
        if key in ("ms", "nodes"):
            table = "max_time_ms" if key == "ms" else rng.choice(["fused", "separate"])
            other = 'layer = "Conv_0"' if key == "ms" else ""
            return f"[[{table}]]\n{other}\n{key} = {val}\n".encode()
        return (f"{key} = {val}\n" + (src if rng.random() < 0.5 else "")).encode()
    if op < 0.6:
        return (src * rng.choice([2, 1000])).encode()
    if op < 0.92:
        return mutate_bytes(rng, src)
    return big_file(rng, src)


def gen_toml(rng: random.Random, base: Base) -> Case:
    files: dict[str, Any] = {"e.toml": hostile_toml(rng, base), "inception3a.onnx": ("base", "inception3a")}
    argv = ["check", "inception3a.onnx", "--expect", "e.toml"]
    if rng.random() < 0.3:
        files["layers.json"] = base.texts["names_only.layers.json"].encode()
        argv += ["--layer-info", "layers.json"]
    if rng.random() < 0.3:
        argv += ["--target", rng.choice(TARGETS)]
    return Case("toml", argv, files, [], culprit="e.toml")


FLAGS = {
    "models": [["list"], ["list", "--json"], ["export"], ["export", "NAME"], ["export", "NAME", "-o", "OUT"]],
    "inspect": [["MODEL"], ["--batch", "NUM"], ["--nodes"], ["--json"]],
    "predict": [["MODEL"], ["--batch", "NUM"], ["--target", "TARGET"], ["--precision", "PREC"], ["--json", "OUT"],
                ["--stages"], ["--explain", "STR"], ["--device", "DEVICE"], ["--efficiency", "FILE"], ["--no-tf32"]],
    "passes": [["--markdown"]],
    "diff": [["MODEL"], ["--layer-info", "FILE"], ["--engine", "FILE"], ["--profile", "FILE"], ["--target", "TARGET"],
             ["--json", "OUT"], ["-o", "OUT"], ["--device", "DEVICE"], ["--efficiency", "FILE"], ["--batch", "NUM"]],
    "check": [["MODEL"], ["--expect", "FILE"], ["--layer-info", "FILE"], ["--profile", "FILE"], ["--engine", "FILE"],
              ["--target", "TARGET"], ["--batch", "NUM"]],
    "build": [["MODEL"], ["--fp16"], ["--int8"], ["--shapes", "STR"], ["--batch", "NUM"], ["--workspace", "NUM"],
              ["--save-engine", "OUT"], ["--json"], ["--backend", "STR"]],
    "profile": [["MODEL"], ["--iterations", "NUM"], ["--duration", "NUM"], ["--export-profile", "OUT"]],
    "import": [["FILE"], ["--profile", "FILE"], ["--model", "MODEL"], ["--batch", "NUM"], ["-o", "OUT"]],
    "render": [["MODEL"], ["-o", "OUT"], ["--stage", "STR"], ["--plan", "FILE"], ["--focus", "STR"],
               ["--radius", "NUM"], ["--match", "STR"], ["--compact"], ["--title", "STR"], ["--target", "TARGET"]],
    "figures": [["--out", "OUTDIR"], ["--format", "STR"]],
    "calibrate": [["--layer-info", "FILE"], ["--profile", "FILE"], ["--device", "DEVICE"], ["--model", "MODEL"],
                  ["--batch", "NUM"], ["--precision", "PREC"], ["--efficiency", "FILE"], ["-o", "OUT"]],
    "execute": [["MODEL"], ["--plan", "FILE"], ["--device", "STR"], ["--iterations", "NUM"], ["--unfused"]],
}
NUMS = ("0", "-1", "1", "3", "1e9", "99999999999999999999", "nan", "0x10", " 1", "1.5", "", "+2", "٣")
STRS = ("", "-", "--", "x", "all", "plan", "original", "Conv_0", "(", "[", "a{100000}", "\u00e9\U0001F600", "a" * 5000,
        "\n", "png,svg", "png,bogus", "input.1:1x3x224x224", "--help", "-v", "%s%n")
MODEL_NAMES = ("googlenet", "inception3a", "resnet18", "bogus", "", "inception-chain-0", "inception-chain-1",
               "inception-chain--5", "inception-chain-1e3", "inception-chain-99999999999", "inception-chain-x",
               "INCEPTION3A", "inception-chain-" + "9" * 50)


def gen_argv(rng: random.Random, base: Base) -> Case:
    files: dict[str, Any] = {"inception3a.onnx": ("base", "inception3a"),
                             "layers.json": base.texts["names_only.layers.json"].encode(),
                             "profile.json": base.texts["quoted_names.profile.json"].encode(),
                             "e.toml": base.texts["inception3a-holds.toml"].encode(),
                             "eff.json": base.texts["eff.json"].encode()}
    pools = {
        "MODEL": ("inception3a.onnx", "missing.onnx", "layers.json", "e.toml", ".", "", "-", "/dev/zero"),
        "FILE": ("layers.json", "profile.json", "e.toml", "eff.json", "inception3a.onnx", "missing.json", ".", ""),
        "OUT": ("out.json", "out.dot", "out.svg", "out.txt", "sub/none/out.json", ".", "out", "-"),
        "OUTDIR": ("figs", ".", "inception3a.onnx"),
        "NUM": NUMS, "STR": STRS, "TARGET": (*TARGETS, "trt9", ""), "PREC": (*PRECISIONS, "fp64"),
        "DEVICE": (*DEVICES, "h100", "", "cpu"), "NAME": MODEL_NAMES,
    }
    argv: list[str] = []
    r = rng.random()
    if r < 0.05:
        argv = rng.choice([[], ["-v"], ["--verbose"], ["-v", "-v"], ["--bogus"], ["-x"], ["--version", "predict"],
                           ["predict"], ["models"], ["help"], ["--"], ["-"], [""]])
    else:
        cmd = rng.choice(COMMANDS)
        if rng.random() < 0.1:
            argv.append("-v")
        argv.append(cmd)
        for _ in range(rng.randint(0, 5)):
            spec = rng.choice(FLAGS[cmd])
            for tok in spec:
                argv.append(rng.choice(pools[tok]) if tok in pools else tok)
        if rng.random() < 0.15:
            argv.insert(rng.randrange(1, len(argv) + 1), rng.choice(["--bogus", "-Z", "--batch=", "--json=x", "-o"]))
    # the campaign must never write outside its folder
    argv = [a for a in argv if not a.startswith("/") or a == "/dev/zero"]
    outputs = [a for a in argv if a.startswith("out") or a.startswith("figs")]
    return Case("argv", argv, files, outputs)


OUTPUT_COMMANDS = ("predict", "calibrate", "import", "render", "models", "diff-json", "diff-dot", "figures")


def gen_output(rng: random.Random, base: Base) -> Case:
    files: dict[str, Any] = {"inception3a.onnx": ("base", "inception3a")}
    cmd = rng.choice(OUTPUT_COMMANDS)
    ext = {"render": rng.choice([".dot", ".svg"]), "models": ".onnx", "diff-dot": ".dot"}.get(cmd, ".json")
    target_kind = rng.choice(["new", "existing", "chardev", "stdout", "fifo", "dangling", "dangling-dir",
                              "symlink", "input", "input-spelled", "input-hardlink", "input-symlink", "dir",
                              "nofolder", "rodir", "fulldisk", "fulldisk"])
    out = "out" + ext
    case = Case("output", [], files, [], note=target_kind)
    inputs_for_cmd: list[str]
    if cmd == "predict":
        files["eff.json"] = base.texts["eff.json"].encode()
        argv = ["predict", "inception3a.onnx", "--device", "a100-80gb-pcie", "--efficiency", "eff.json", "--json", out]
        inputs_for_cmd = ["inception3a.onnx", "eff.json"]
    elif cmd == "calibrate":
        files["layers.json"] = base.texts["trt11.layers.json"].encode()
        files["profile.json"] = base.texts["quoted_names.profile.json"].encode()
        argv = ["calibrate", "--layer-info", "layers.json", "--profile", "profile.json", "--device",
                "a100-80gb-pcie", "-o", out]
        inputs_for_cmd = ["layers.json", "profile.json"]
    elif cmd == "import":
        files["layers.json"] = base.texts["trt11.layers.json"].encode()
        files["profile.json"] = base.texts["quoted_names.profile.json"].encode()
        argv = ["import", "layers.json", "--profile", "profile.json", "-o", out]
        inputs_for_cmd = ["layers.json", "profile.json"]
    elif cmd == "render":
        argv = ["render", "inception3a.onnx", "-o", out, *rng.choice([[], ["--stage", "all"]])]
        inputs_for_cmd = ["inception3a.onnx"]
    elif cmd == "models":
        argv = ["models", "export", "inception3a", "-o", out]
        inputs_for_cmd = []
    elif cmd.startswith("diff"):
        files["resnet18.onnx"] = ("base", "resnet18")
        files["layers.json"] = base.texts["trt11.layers.json"].encode()
        argv = ["diff", "resnet18.onnx", "--layer-info", "layers.json", "--json" if cmd == "diff-json" else "-o", out]
        inputs_for_cmd = ["resnet18.onnx", "layers.json"]
    else:
        out = "figs"
        argv = ["figures", "--out", out, "--format", rng.choice(["png", "svg", "png,svg", "pdf"])]
        inputs_for_cmd = []
        target_kind = rng.choice(["new", "fulldisk", "fulldisk", "rodir", "dir"])
        case.note = target_kind
    if target_kind.startswith("input") and not inputs_for_cmd:
        target_kind = "existing"
        case.note = target_kind
    if target_kind.startswith("input"):
        victim = rng.choice(inputs_for_cmd)
        if target_kind == "input":
            argv[argv.index(out)] = victim
            out = victim
        elif target_kind == "input-spelled":
            argv[argv.index(out)] = "./" + victim
            out = victim
        else:
            files[out] = ("hardlink", victim) if target_kind == "input-hardlink" else ("symlink", victim)
    elif target_kind == "existing":
        files[out] = b"old contents\n"
    elif target_kind == "chardev":
        files[out] = ("chardev",)
    elif target_kind == "stdout":
        files[out] = ("symlink", "/proc/self/fd/1")
    elif target_kind == "fifo":
        files[out] = ("fifo",)
    elif target_kind == "dangling":
        files[out] = ("symlink", "missing-target" + ext)
    elif target_kind == "dangling-dir":
        files[out] = ("symlink", "nowhere/missing" + ext)
    elif target_kind == "symlink":
        files["real" + ext] = b"old contents\n"
        files[out] = ("symlink", "real" + ext)
    elif target_kind == "dir":
        files[out] = ("dir",)
    elif target_kind == "nofolder":
        new = "none/" + out
        argv[argv.index(out)] = new
        out = new
    elif target_kind == "rodir":
        files["ro"] = ("rodir",)
        new = "ro/" + out
        argv[argv.index(out)] = new
        out = new
    elif target_kind == "fulldisk":
        case.fsize = rng.choice([1, 100, 2000, 20000, 100000])
    case.argv = argv
    case.outputs = [out]
    case.targets = [n for n in files if n not in inputs_for_cmd and n != "inception3a.onnx"]
    if cmd == "render" and "all" in argv:
        case.outputs.append(out.replace(ext, "-*" + ext))
    if cmd == "figures":
        case.outputs.append(out + "/*")
    return case


GENERATORS: dict[str, Callable[[random.Random, Base], Case]] = {
    "onnx": gen_onnx, "layer_json": gen_layer_json, "profile": gen_profile, "plan_json": gen_plan_json,
    "efficiency": gen_efficiency, "toml": gen_toml, "argv": gen_argv, "output": gen_output,
}


# ---------------------------------------------------------------------------------------
# Running a case


@dataclasses.dataclass
class Result:
    code: int | None
    signal: int | None
    timed_out: bool
    seconds: float
    stdout: bytes
    stderr: bytes
    fifo_data: dict[str, bytes]
    hang_stack: str = ""


def materialize(case: Case, folder: Path, base: Base) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o777)
    for name, spec in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, bytes):
            path.write_bytes(spec)
            os.chmod(path, 0o644)
            continue
        what = spec[0]
        if what == "base":
            os.link(base.models[spec[1]], path)
        elif what == "symlink":
            os.symlink(spec[1], path)
        elif what == "hardlink":
            os.link(folder / spec[1], path)
        elif what == "fifo":
            os.mkfifo(path, 0o666)
        elif what == "chardev":
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        elif what == "sparse":
            with open(path, "wb") as f:
                f.truncate(spec[1])
        elif what == "devzero":
            os.symlink("/dev/zero", path)
        elif what == "dir":
            path.mkdir()
        elif what == "rodir":
            path.mkdir()
            subprocess.run(["chattr", "+i", str(path)], check=True)
        else:
            raise ValueError(spec)


def snapshot(folder: Path, case: Case) -> dict[str, tuple[Any, ...]]:
    """What each input looks like: its type, inode, size, mtime and (for small files) hash."""
    snap: dict[str, tuple[Any, ...]] = {}
    for name in case.files:
        p = folder / name
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            snap[name] = ("missing",)
            continue
        digest = ""
        if stat.S_ISREG(st.st_mode) and st.st_size < (8 << 20) and st.st_blocks > 0:
            digest = _sha(p.read_bytes())
        target = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ""
        snap[name] = (stat.S_IFMT(st.st_mode), st.st_ino, st.st_size, st.st_mtime_ns, digest, target)
    return snap


def _child_limits(case: Case, mem_bytes: int, timeout: float) -> None:
    os.setpgid(0, 0)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, hard))
    resource.setrlimit(resource.RLIMIT_CPU, (int(timeout) + 5, int(timeout) + 10))
    if case.fsize is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, case.fsize))


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


class Runner:
    """Runs cases in forked children of this process (or as subprocesses)."""

    def __init__(self, mode: str = "fork", timeout: float = 20.0, mem_mb: int = 2048) -> None:
        self.mode = mode
        self.timeout = timeout
        self.mem_mb = mem_mb
        if mode == "fork":
            import fusionlab.cli  # noqa: F401  (imported once, inherited by every child)

            for name in ("inspect", "predict", "render", "diff", "check", "import_", "calibrate", "models",
                         "figures", "passes"):
                __import__(f"fusionlab.cli.{name}")

    def mem_limit(self) -> int:
        extra = self.mem_mb << 20
        return (_vm_size() + extra) if self.mode == "fork" else extra + (1 << 30)

    def run(self, case: Case, folder: Path, debug: bool = False) -> Result:
        argv = (["--debug"] if debug else []) + case.argv
        fifos = {}
        for name, spec in case.files.items():
            if not isinstance(spec, bytes) and spec[0] == "fifo":
                fifos[name] = os.open(folder / name, os.O_RDONLY | os.O_NONBLOCK)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        mem = self.mem_limit()
        sys.stdout.flush()
        sys.stderr.flush()
        t0 = time.perf_counter()
        if self.mode == "fork":
            pid = os.fork()
            if pid == 0:  # the child
                code = 3
                try:
                    os.close(out_r)
                    os.close(err_r)
                    for fd in fifos.values():
                        os.close(fd)
                    devnull = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(devnull, 0)
                    os.dup2(out_w, 1)
                    os.dup2(err_w, 2)
                    # fresh text streams on fds 1 and 2 (pytest's capture replaces sys.stdout/err)
                    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
                    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                                  errors="backslashreplace", line_buffering=True)
                    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
                    os.chdir(folder)
                    _child_limits(case, mem, self.timeout)
                    import faulthandler
                    import logging

                    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=False)
                    logging.root.handlers.clear()
                    sys.argv = ["fusionlab", *argv]
                    from fusionlab.cli import main

                    try:
                        rc = main(argv)
                        code = rc if isinstance(rc, int) else 0
                    except SystemExit as exc:
                        c = exc.code
                        if c is None:
                            code = 0
                        elif isinstance(c, int):
                            code = c
                        else:
                            print(c, file=sys.stderr)
                            code = 1
                    sys.stdout.flush()
                    sys.stderr.flush()
                except BaseException:
                    with contextlib.suppress(BaseException):
                        traceback.print_exc()
                        sys.stderr.flush()
                    code = 97  # escaped main(): a traceback
                os._exit(code & 0xFF)
            os.close(out_w)
            os.close(err_w)
            proc = None
        else:
            env = dict(os.environ, PYTHONPATH=str(ROOT))

            def pre() -> None:
                _child_limits(case, mem, self.timeout)

            proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "fusionlab", *argv], cwd=folder,
                                    stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, preexec_fn=pre, env=env)
            os.close(out_w)
            os.close(err_w)
            pid = proc.pid
        bufs = {out_r: bytearray(), err_r: bytearray()}
        fifo_bufs = {fd: bytearray() for fd in fifos.values()}
        open_fds = {out_r, err_r, *fifo_bufs}
        status: int | None = None
        timed_out = False
        hang_stack = ""
        mark, kill_at = 0, float("inf")
        deadline = t0 + self.timeout
        while True:
            if status is None:
                wpid, st = os.waitpid(pid, os.WNOHANG)
                if wpid:
                    status = st
            pipes_open = out_r in open_fds or err_r in open_fds
            if status is not None and not pipes_open:
                break
            now = time.perf_counter()
            if status is None and now > deadline and not timed_out:
                # dump the child's Python stack (faulthandler), read it for a second, then kill
                timed_out = True
                mark = len(bufs[err_r])
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGUSR1)
                kill_at = now + 1.0
            if timed_out and status is None and now > kill_at:
                hang_stack = bytes(bufs[err_r][mark:]).decode("utf-8", "replace")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                kill_at = float("inf")
            if status is not None and now > deadline + 5:
                break  # a grandchild holds the pipes
            ready, _, _ = select.select(list(open_fds), [], [], 0.05)
            idle_fifo = False
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    if fd in fifo_bufs:
                        idle_fifo = True  # no writer (yet): poll it again, without spinning
                        continue
                    open_fds.discard(fd)
                    continue
                buf = bufs.get(fd, fifo_bufs.get(fd))
                assert buf is not None
                if len(buf) < OUTPUT_CAP:
                    buf.extend(chunk[: OUTPUT_CAP - len(buf)])
            if idle_fifo:
                time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        # drain what is left in the FIFOs, then close everything
        for fd, buf in fifo_bufs.items():
            with contextlib.suppress(OSError):
                while chunk := os.read(fd, 65536):
                    if len(buf) < OUTPUT_CAP:
                        buf.extend(chunk)
            os.close(fd)
        for fd in (out_r, err_r):
            os.close(fd)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        if timed_out and not hang_stack:
            hang_stack = bytes(bufs[err_r][mark:]).decode("utf-8", "replace")
        if status is None:
            status = os.waitpid(pid, 0)[1]
        exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        names = {fd: name for name, fd in fifos.items()}
        return Result(exit_code, sig, timed_out, elapsed, bytes(bufs[out_r]), bytes(bufs[err_r]),
                      {names[fd]: bytes(b) for fd, b in fifo_bufs.items()}, hang_stack)


# ---------------------------------------------------------------------------------------
# Judging a result


def validate_output(path: Path) -> str | None:
    """None when the file is whole; else why not ('partial: ...' or 'invalid: ...')."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"partial: unreadable ({exc.strerror})"
    return validate_bytes(data, path.suffix.lower())


def _reject_constant(token: str) -> Any:
    raise ValueError(token)


def validate_bytes(data: bytes, suffix: str) -> str | None:
    if suffix == ".json":
        try:
            json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except ValueError as exc:
            if str(exc) in ("NaN", "Infinity", "-Infinity"):
                return f"invalid: JSON with {exc}"
            return "partial: not valid JSON"
        return None
    if suffix in (".dot", ".gv"):
        text = data.decode("utf-8", "replace").rstrip()
        return None if text.endswith("}") and "graph" in text[:200] else "partial: DOT not closed"
    if suffix == ".svg":
        import xml.etree.ElementTree as ET

        try:
            ET.fromstring(data)
        except ET.ParseError:
            return "partial: SVG not valid XML"
        return None
    if suffix == ".png":
        return None if data.startswith(b"\x89PNG") and data[-12:].find(b"IEND") >= 0 else "partial: PNG truncated"
    if suffix == ".pdf":
        return None if data.startswith(b"%PDF") and b"%%EOF" in data[-1024:] else "partial: PDF truncated"
    if suffix == ".onnx":
        import onnx

        try:
            onnx.load_from_string(data)
        except Exception:
            return "partial: ONNX does not parse"
        return None if data else "partial: empty ONNX"
    return None


FRAME = re.compile(r'File "([^"]*fusionlab[^"]*)", line (\d+), in (\S+)')
FAULT_FRAME = re.compile(r'File "([^"]*fusionlab[^"]*)", line (\d+) in (\S+)')


def innermost_frame(tb: str, fault: bool = False) -> str:
    """``module.py:function`` of the innermost fusionlab frame of a traceback."""
    pattern = FAULT_FRAME if fault else FRAME
    frames = [m for m in pattern.finditer(tb) if "/cli/__init__.py" not in m.group(1) or True]
    frames = [m for m in frames if "fuzz_campaign" not in m.group(1)]
    if not frames:
        return "?"
    m = frames[0] if fault else frames[-1]  # faulthandler prints the innermost first
    path = m.group(1)
    rel = path[path.rfind("fusionlab/"):]
    return f"{rel}:{m.group(3)}"


def exception_type(tb: str) -> str:
    for line in reversed(tb.strip().splitlines()):
        m = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Overflow|Iteration)?)(:|$)", line)
        if m and not line.startswith(" "):
            return m.group(1).split(".")[-1]
    return "?"


@dataclasses.dataclass
class Verdict:
    outcome: str  # ok, clean, unclear, internal, timeout
    problems: list[str]  # signatures of contract breaches (beyond the outcome)
    signature: str | None  # dedup key of the failure (None: no failure)
    detail: str


def judge(case: Case, folder: Path, res: Result, before: dict[str, tuple[Any, ...]],
          debug_tb: str | None) -> Verdict:
    err = res.stderr.decode("utf-8", "replace")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    cmd = case.command()
    problems: list[str] = []
    detail = lines[-1][:300] if lines else ""
    if res.timed_out:
        outcome = "timeout"
        where = innermost_frame(res.hang_stack, fault=True) if res.hang_stack else "?"
        sig = f"timeout | {cmd} | {where}"
    elif res.code is None:
        outcome = "internal"
        sig = f"signal {signal.Signals(res.signal).name if res.signal else '?'} | {cmd}"
        if res.signal == signal.SIGXCPU:
            outcome = "timeout"
            sig = f"timeout (cpu) | {cmd}"
        detail = err[-300:]
    elif res.code == 3 or res.code == 97 or TRACEBACK in err or res.code not in (0, 1, 2):
        outcome = "internal"
        tb = debug_tb if debug_tb and TRACEBACK in debug_tb else err
        if TRACEBACK in tb:
            sig = f"{exception_type(tb)} | {innermost_frame(tb)}"
        else:
            m = re.search(r"internal error: (\w+)", err)
            sig = f"{m.group(1) if m else 'exit ' + str(res.code)} | {cmd} (no traceback)"
    elif res.code == 2:
        one = len(lines) == 1 and lines[0].startswith("fusionlab") and len(err.strip().splitlines()) == 1
        if one:
            outcome = "clean"
            sig = None
            about_argument = re.match(r"fusionlab: (error: )?(-|argument )", lines[0]) is not None
            about_machine = " is not installed" in lines[0]  # e.g. Graphviz's dot: no file is at fault
            if case.culprit and not about_argument and not about_machine and not _names_any_file(case, lines[0]):
                what = lines[0].removeprefix("fusionlab: error: ").split(":")[0]
                problems.append(f"unnamed | {cmd} | '{_shape_of_message(what)}: ...' names no file")
        else:
            outcome = "unclear"
            first = lines[0] if lines else "(nothing on stderr)"
            sig = f"unclear | {cmd} | {_shape_of_message(first)} ({len(lines)} lines)"
    else:
        outcome = "ok"
        sig = None
    # inputs never modified
    after = snapshot(folder, case)
    for name, b in before.items():
        if name in case.targets:
            continue
        if after.get(name) != b:
            problems.append(f"modified | {cmd} | {case.note or name}")
            break
    # outputs
    for out in case.outputs:
        problems.extend(_judge_output(case, folder, out, res, cmd))
    # leftover temporary files
    for p in folder.rglob(".*.tmp"):
        problems.append(f"partial | {cmd} | temporary file left ({p.name.split('.')[1]}...)")
        break
    if sig is None and problems:
        sig = problems[0]
    return Verdict(outcome, problems, sig, detail)


def _names_any_file(case: Case, line: str) -> bool:
    """Whether an error names one of the case's files (or an argument that is a path)."""
    names = [n for n in case.files if "/" not in n] + [a for a in case.argv if "/" in a]
    if any(n in line for n in names):
        return True
    head = line.removeprefix("fusionlab: error: ").split(": ")[0]
    return "/" in head or re.search(r"\.[A-Za-z]\w*$", head) is not None  # another path, e.g. external data


def _shape_of_message(line: str) -> str:
    """A message with its variable parts masked, so that equal causes deduplicate."""
    s = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", line)
    s = re.sub(r"\d+(\.\d+)?", "N", s)
    s = re.sub(r"\S+\.(json|toml|onnx|txt|dot|svg|png)\b", "FILE", s)
    return s[:160]


def _judge_output(case: Case, folder: Path, out: str, res: Result, cmd: str) -> list[str]:
    problems: list[str] = []
    if "*" in out:
        for p in sorted(folder.glob(out)):
            if p.is_file():
                why = validate_output(p)
                if why:
                    problems.append(f"{why.split(':')[0]} | {cmd} | {why.split(': ', 1)[1]} ({case.note})")
        return problems
    if out in case.files and out not in case.targets:
        return problems  # the output is one of the inputs: judged as modified or not
    spec: Any = case.files.get(out)
    kind = spec[0] if isinstance(spec, tuple) else ("existing" if spec is not None else None)
    path = folder / out
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    want = {"chardev": stat.S_IFCHR, "fifo": stat.S_IFIFO, "symlink": stat.S_IFLNK, "dir": stat.S_IFDIR}
    if kind in want and (st is None or stat.S_IFMT(st.st_mode) != want[kind]):
        what = {"chardev": "character device", "fifo": "FIFO", "dir": "folder"}.get(str(kind), "")
        if kind == "symlink":
            what = "/dev/stdout" if spec[1] == "/proc/self/fd/1" else (
                "symlink to an input" if spec[1] in case.files else
                "symlink to a file" if (folder / spec[1]).exists() else "dangling symlink")
        problems.append(f"replaced | {cmd} | {what} replaced by a regular file")
        return problems
    if kind == "fifo":
        writes_here = not ("--stage" in case.argv and "all" in case.argv)  # render --stage all: OUT-NN-*.ext
        if res.code == 0 and writes_here:
            why = validate_bytes(res.fifo_data.get(out, b""), Path(out).suffix.lower())
            if why:
                problems.append(f"{why.split(':')[0]} | {cmd} | through a FIFO: {why.split(': ', 1)[1]}")
        return problems
    if kind in ("chardev", "dir", "hardlink") or (kind == "symlink" and (spec[1] == "/proc/self/fd/1"
                                                                          or (spec[1] in case.files
                                                                          and spec[1] not in case.targets))):
        return problems  # nothing to validate here (an input behind it is judged as modified or not)
    if st is None:
        return problems
    if stat.S_ISLNK(st.st_mode):
        if not path.exists():
            return problems  # still dangling: nothing written
        path = path.resolve()
        st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        return problems
    if kind in ("existing", "symlink") and path.read_bytes() == b"old contents\n":
        return problems  # the old file, untouched
    why = validate_output(path)
    if why:
        problems.append(f"{why.split(':')[0]} | {cmd} | {why.split(': ', 1)[1]} ({case.note or 'output'})")
    return problems


# ---------------------------------------------------------------------------------------
# The campaign


COLUMNS = ("cases", "ok", "clean", "unclear", "internal", "timeout", "modified", "partial", "invalid", "replaced",
           "unnamed")


def run_one(runner: Runner, base: Base, case: Case, folder: Path) -> tuple[Verdict, float]:
    """Run a case (and, for an internal error, once more with --debug for the traceback)."""
    materialize(case, folder, base)
    before = snapshot(folder, case)
    res = runner.run(case, folder)
    debug_tb = None
    if not res.timed_out and (res.code in (3, 97) or res.code is None) and runner.mode == "fork":
        dbg = folder.with_name(folder.name + "-debug")
        materialize(case, dbg, base)
        debug_tb = runner.run(case, dbg, debug=True).stderr.decode("utf-8", "replace")
        _rmtree(dbg)
    v = judge(case, folder, res, before, debug_tb)
    v.detail = v.detail or f"exit {res.code}"
    return v, res.seconds


def _rmtree(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        subprocess.run(["chattr", "-R", "-i", str(folder)], check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def save_repro(case: Case, folder: Path, base: Base, verdict: Verdict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    setup: list[str] = []
    for name, spec in case.files.items():
        if isinstance(spec, bytes):
            if len(spec) <= (2 << 20):
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(spec)
            else:
                setup.append(f"# {name}: {len(spec)} bytes (not saved); regenerate with the campaign's seed")
            continue
        what = spec[0]
        if what == "base":
            setup.append(f"fusionlab models export {spec[1]} -o {name} --batch 1")
        elif what == "symlink":
            setup.append(f"ln -sfn {spec[1]!s} {name}")
        elif what == "hardlink":
            setup.append(f"ln -f {spec[1]} {name}")
        elif what == "fifo":
            setup.append(f"mkfifo {name}  # and read it: cat {name} &")
        elif what == "chardev":
            setup.append(f"mknod {name} c 1 3")
        elif what == "sparse":
            setup.append(f"truncate -s {spec[1]} {name}")
        elif what == "devzero":
            setup.append(f"ln -sfn /dev/zero {name}")
        elif what in ("dir", "rodir"):
            setup.append(f"mkdir -p {name}" + (f" && chattr +i {name}" if what == "rodir" else ""))
    prefix = ""
    if case.fsize is not None:
        prefix = f"(ulimit -f {max(1, case.fsize // 512)}; trap '' XFSZ; "
    import shlex

    cmdline = "fusionlab " + " ".join(shlex.quote(a) for a in case.argv)
    script = "#!/bin/sh\n# " + (verdict.signature or "").replace("\n", " ") + "\n# " + case.note + "\n" + \
        "\n".join(setup) + "\n" + prefix + cmdline + (")" if case.fsize is not None else "") + "\n"
    (folder / "repro.sh").write_text(script)


def campaign(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(args.mode, args.timeout, args.mem_mb)

    def run_cli(argv: list[str]) -> int:
        from fusionlab.cli import main

        with contextlib.redirect_stdout(open(os.devnull, "w")):
            return main(argv)

    base = Base(out / "base", run_cli)
    kinds = args.kinds.split(",") if args.kinds else list(KINDS)
    rng = random.Random(args.seed)
    table: dict[str, Counter[str]] = defaultdict(Counter)  # counts; 'seconds' sums floats
    failures: dict[str, dict[str, Any]] = {}
    work = Path(tempfile.mkdtemp(prefix="fuzz-", dir=args.tmp))
    t_start = time.perf_counter()
    slowest: list[tuple[float, int, str, str, str]] = []
    for i in range(args.cases):
        kind = kinds[i % len(kinds)] if args.round_robin else rng.choice(kinds)
        case_seed = rng.randrange(2**32)
        folder = work / f"c{i}"
        try:
            case = GENERATORS[kind](random.Random(case_seed), base)
            v, seconds = run_one(runner, base, case, folder)
        except Exception as exc:  # the harness itself
            print(f"harness error on case {i} ({kind}, seed {case_seed}): {exc!r}", file=sys.stderr)
            traceback.print_exc()
            shutil.rmtree(folder, ignore_errors=True)
            continue
        row = table[kind]
        row["cases"] += 1
        row["seconds"] += seconds  # type: ignore[assignment]  # a Counter holds the float sum too
        slowest.append((seconds, i, kind, case.note, " ".join(case.argv)[:100]))
        slowest.sort(reverse=True)
        del slowest[10:]
        row[v.outcome] += 1
        flags = {p.split(" | ")[0] for p in v.problems}
        for f in flags:
            row[f] += 1
        sigs = ([v.signature] if v.signature and v.outcome in ("internal", "timeout", "unclear") else []) + v.problems
        for sig in dict.fromkeys(sigs):
            entry = failures.setdefault(sig, {"signature": sig, "count": 0, "kinds": Counter(), "examples": []})
            entry["count"] += 1
            entry["kinds"][kind] += 1
            if len(entry["examples"]) < 3:
                rid = f"f{len(failures):03d}-{len(entry['examples'])}"
                entry["examples"].append({"case": i, "seed": case_seed, "kind": kind, "argv": case.argv,
                                          "note": case.note, "stderr_last": v.detail, "repro": f"repro/{rid}"})
                save_repro(case, out / "repro" / rid, base, dataclasses.replace(v, signature=sig))
        _rmtree(folder)
        if args.progress and (i + 1) % args.progress == 0:
            rate = (i + 1) / (time.perf_counter() - t_start)
            print(f"[{i + 1}/{args.cases}] {rate:.1f} cases/s, {len(failures)} distinct failures", file=sys.stderr,
                  flush=True)
        if i % 200 == 0:
            base.check_intact()
    shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - t_start
    report = {"cases": args.cases, "seed": args.seed, "timeout_s": args.timeout, "mode": args.mode,
              "seconds": round(elapsed, 1), "slowest": slowest,
              "table": {k: {c: round(n, 1) if isinstance(n, float) else n for c, n in v.items()}
                        for k, v in table.items()},
              "failures": sorted(({**f, "kinds": dict(f["kinds"])} for f in failures.values()),
                                 key=lambda f: -f["count"])}
    (out / "failures.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def print_table(report: dict[str, Any]) -> None:
    table = report["table"]
    widths = [max(len(c), 6) for c in COLUMNS]
    print("kind        " + "  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    total: Counter[str] = Counter()
    for kind in [*KINDS, *sorted(set(table) - set(KINDS))]:
        if kind not in table:
            continue
        row = table[kind]
        total.update(row)
        print(f"{kind:<12}" + "  ".join(str(row.get(c, 0)).rjust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    print(f"{'total':<12}" + "  ".join(str(total.get(c, 0)).rjust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    print("\nseconds per kind: " + ", ".join(f"{k} {table[k].get('seconds', 0):.0f}" for k in table))
    print("slowest cases: " + "; ".join(f"#{i} {k} {t:.1f}s ({note})" for t, i, k, note, _ in report["slowest"][:5]))
    print(f"\n{len(report['failures'])} distinct failures in {report['seconds']} s "
          f"({report['cases'] / max(report['seconds'], 1e-9):.1f} cases/s):")
    for f in report["failures"]:
        print(f"  {f['count']:5d}  {f['signature']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per case (a hang beyond it is a failure)")
    ap.add_argument("--mem-mb", type=int, default=2048, help="address space a case may add (RLIMIT_AS)")
    ap.add_argument("--kinds", default="", help=f"comma-separated subset of {','.join(KINDS)}")
    ap.add_argument("--mode", choices=("fork", "subprocess"), default="fork")
    ap.add_argument("--out", default="fuzz-out", help="folder for failures.json and reproducers")
    ap.add_argument("--tmp", default=None, help="where the cases' folders go (default: the system's)")
    ap.add_argument("--round-robin", action="store_true", help="take the kinds in turn instead of at random")
    ap.add_argument("--progress", type=int, default=100, help="print progress every N cases (0: never)")
    args = ap.parse_args(argv)
    unknown = set(filter(None, args.kinds.split(","))) - set(KINDS)
    if unknown:
        ap.error(f"unknown kinds {sorted(unknown)}")
    report = campaign(args)
    print_table(report)
    bad = sum(report["table"][k].get(c, 0) for k in report["table"]
              for c in ("internal", "timeout", "modified", "partial", "invalid", "replaced", "unclear"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
