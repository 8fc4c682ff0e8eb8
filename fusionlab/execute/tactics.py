"""Tactic selection: time a layer's candidate realisations and keep the fastest.

TensorRT builds an engine by timing every tactic (kernel) that can run a layer and keeping
the fastest; the fused executor does the same for the layers that have more than one
realisation (:class:`~fusionlab.execute.program.Tactic`), once, in the first run
(:meth:`~fusionlab.execute.program.Program.prepare`), on that run's tensors.

How a candidate is timed, on CUDA: two warm-up calls (cuDNN's own autotuning and Triton's
compilation happen there; a candidate that raises is dropped), then ``rounds`` rounds in
which each candidate runs ``reps`` times back to back between two CUDA events. Before each
timed batch the GPU is kept busy by ``torch.cuda._sleep`` long enough for the host to queue
the whole batch, so the events measure GPU time with no host launch gaps (as inside a CUDA
graph), not Python's launch overhead. A candidate's time is the median over the rounds of its
mean time per call; the candidates are timed in a rotating order, interleaved.

On the CPU no timing is done: the first candidate (the PyTorch realisation) is kept.

This module imports torch.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from fusionlab.execute.program import Step, Tensors

log = logging.getLogger(__name__)

REPS = 10
ROUNDS = 3
SLEEP_CYCLES_PER_S = 2.0e9
"""GPU cycles per second assumed to size ``torch.cuda._sleep`` (about the H100/H200 clock;
sleeping longer than needed costs only time)."""


def time_candidates(runs: Sequence[Callable[[Tensors], None]], env: Tensors, *,
                    reps: int = REPS, rounds: int = ROUNDS,
                    skip: Sequence[bool] = ()) -> list[float | None]:
    """Median GPU time per call (ms) of each candidate on ``env``; None for one that failed
    (or that ``skip`` leaves out).

    Each call runs on a shallow copy of ``env`` (its outputs are dropped); the warm-up calls
    run on ``env`` itself, so buffers they allocate (Concat buffers) are there for the rest.
    """
    ok: list[bool] = []
    host_s = 0.0
    for k, run in enumerate(runs):
        if k < len(skip) and skip[k]:
            ok.append(False)
            continue
        try:
            run(env)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            run(dict(env))
            host_s = max(host_s, time.perf_counter() - t0)
            torch.cuda.synchronize()
            ok.append(True)
        except Exception as exc:  # cuDNN, cuBLAS and Triton fail in many ways: drop it
            first = " ".join(str(exc).split())[:160]
            log.info("tactic candidate failed: %s: %s", type(exc).__name__, first)
            torch.cuda.synchronize()
            ok.append(False)
    live = [i for i, good in enumerate(ok) if good]
    if not live:
        return [None] * len(runs)
    cycles = int(max(host_s * reps * 1.5 + 100e-6, 200e-6) * SLEEP_CYCLES_PER_S)
    per: dict[int, list[float]] = {i: [] for i in live}
    for r in range(rounds):
        order = live[r % len(live):] + live[:r % len(live)]
        marks: list[tuple[int, torch.cuda.Event, torch.cuda.Event]] = []
        for i in order:
            local = dict(env)
            start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call,unused-ignore]
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call,unused-ignore]
            torch.cuda._sleep(cycles)  # type: ignore[no-untyped-call,unused-ignore]
            start.record()
            for _ in range(reps):
                runs[i](local)
            end.record()
            marks.append((i, start, end))
        torch.cuda.synchronize()
        for i, start, end in marks:
            per[i].append(start.elapsed_time(end) / reps)
    return [statistics.median(per[i]) if i in per else None for i in range(len(runs))]


def choose(step: Step, env: Tensors, device: torch.device) -> None:
    """Give ``step`` its tactic: the fastest candidate on CUDA, the first elsewhere."""
    cands = step.tactics
    if not cands:
        return
    if device.type != "cuda" or len(cands) == 1:
        best = 0
    else:
        times = time_candidates([c.run for c in cands], env, skip=[c.fallback for c in cands])
        if all(t is None for t, c in zip(times, cands, strict=True) if not c.fallback):
            times = time_candidates([c.run for c in cands], env,
                                    skip=[not c.fallback for c in cands])
        timed = [(t, i) for i, t in enumerate(times) if t is not None]
        if not timed:
            best = 0  # every candidate failed: let the step's own run name the error
        else:
            best = min(timed)[1]
            step.tactic_ms = {cands[i].name: t for t, i in timed}
            failed = [cands[i].name for i, t in enumerate(times)
                      if t is None and not cands[i].fallback]
            table = ", ".join(f"{cands[i].name} {t * 1000:.1f} us" for t, i in timed)
            if failed:
                table += "; failed: " + ", ".join(failed)
            cands[best].path = cands[best].path + f" [tactic {cands[best].name!r}, timed: {table}]"
    chosen = cands[best]
    step.run = chosen.run
    step.path = chosen.path if chosen.describe is None else chosen.describe() + chosen.path
    step.tactics = [chosen]
