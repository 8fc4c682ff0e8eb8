"""The documentation figures: which model, target and stage each one draws, and its title.

``fusionlab figures`` writes every figure of :data:`FIGURES` as DOT (always) and as the
image formats asked for. Everything is built from the zoo's deterministic models, so the
DOT files are the same bytes on every run (the tests compare four of them, and the
ResNet-18 plan, with golden files).

>>> [f.name for f in FIGURES][:2]
['inception3a-1-original', 'inception3a-2-vertical']
>>> dot = figure_dot(FIGURES[0])
>>> dot.startswith("digraph fusionlab {") and "Concat" in dot
True
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fusionlab import zoo
from fusionlab.errors import FusionlabError
from fusionlab.fusion.predictor import ORIGINAL, predict
from fusionlab.ir.graph import Graph, load
from fusionlab.render.dot import graph_to_dot, plan_to_dot, stage_title
from fusionlab.render.graphviz import dot_program, render_file

log = logging.getLogger(__name__)

IMAGE_FORMATS = ("png", "svg", "pdf")


@dataclass(frozen=True)
class Figure:
    """One documentation figure."""

    name: str
    """File stem: ``<name>.dot``, ``<name>.png`` ..."""
    model: str
    """Zoo model name."""
    target: str
    stage: str
    """``original``, a pass name of the target (the plan after it), or ``plan`` (the last)."""
    title: str
    caption: str
    """One sentence for the README (alt text)."""
    batch: int = 1
    members: bool = True
    """Draw each layer's ops inside it (False: one box per layer)."""


FIGURES: tuple[Figure, ...] = (
    Figure(
        "inception3a-1-original", "inception3a", "classic", ORIGINAL,
        "Before fusion: the Inception (3a) block is 20 operations, each its own layer",
        "GoogLeNet's Inception (3a) block before any fusion: four branches of convolution, "
        "batch normalization and ReLU, joined by a Concat.",
    ),
    Figure(
        "inception3a-2-vertical", "inception3a", "classic", "fuse_conv_activation",
        "After vertical fusion: each Conv+BN+ReLU is one CBR layer",
        "Vertical fusion: every convolution absorbs its batch normalization and ReLU, so each "
        "branch step is one CBR layer (8 layers instead of 20 operations).",
    ),
    Figure(
        "inception3a-3-horizontal", "inception3a", "classic", "merge_siblings",
        "After horizontal merge: the three 1x1 CBRs that read the input are one wide layer",
        "Horizontal fusion: the three 1x1 CBR layers that read the same input become one "
        "wider layer (6 layers).",
    ),
    Figure(
        "inception3a-4-concat", "inception3a", "classic", "eliminate_concat",
        "After concat elimination: layers write straight into one output buffer",
        "Concat elimination: no Concat layer is left; each branch writes its channel slice "
        "of the output buffer, and the merged layer's 1x1 output is copied into its slice.",
    ),
    Figure(
        "googlenet-trt10", "googlenet", "trt10", "plan",
        "GoogLeNet as TensorRT 10 is predicted to build it",
        "The whole GoogLeNet predicted for TensorRT 10: one box per engine layer.",
        members=False,
    ),
    Figure(
        "resnet18-trt8", "resnet18", "trt8", "plan",
        "ResNet-18 as TensorRT 8 is predicted to build it",
        "ResNet-18 predicted for TensorRT 8: Conv+ReLU and Conv+Add+ReLU layers (compare the "
        "recorded A100 engines in records).",
        members=False,
    ),
)
"""Every documentation figure, in README order."""


def _graph(model: str, batch: int, cache: dict[tuple[str, int], Graph]) -> Graph:
    if (model, batch) not in cache:
        cache[(model, batch)] = load(zoo.build(model, batch), batch=batch, name=model)
    return cache[(model, batch)]


def figure_dot(figure: Figure, cache: dict[tuple[str, int], Graph] | None = None) -> str:
    """The DOT text of ``figure`` (deterministic)."""
    graph = _graph(figure.model, figure.batch, {} if cache is None else cache)
    prediction = predict(graph, figure.target)
    names = [s.name for s in prediction.stages]
    stage = names[-1] if figure.stage == "plan" else figure.stage
    if stage not in names:
        raise FusionlabError(f"figure {figure.name}: target {figure.target} has no stage {stage!r}")
    index = names.index(stage)
    _, subtitle = stage_title(prediction, index, final=figure.stage == "plan")
    if index == 0:
        return graph_to_dot(graph, title=figure.title, subtitle=subtitle)
    return plan_to_dot(prediction.stages[index].plan, graph, title=figure.title,
                       subtitle=subtitle, members=figure.members)


def parse_formats(text: str) -> tuple[str, ...]:
    """``"png,svg"`` -> ``("png", "svg")``; FusionlabError for an unknown format.

    >>> parse_formats("svg, png,svg")
    ('svg', 'png')
    """
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in (*IMAGE_FORMATS, "dot")]
    if unknown:
        raise FusionlabError(
            f"--format: unknown format {unknown[0]!r} (choose from {', '.join(IMAGE_FORMATS)}, dot)"
        )
    return tuple(f for f in formats if f != "dot")


def write_figures(
    out: str | os.PathLike[str],
    formats: Sequence[str] = ("png", "svg"),
    figures: Sequence[Figure] = FIGURES,
) -> tuple[list[Path], bool]:
    """Write every figure's ``.dot`` and, when Graphviz's ``dot`` is installed, its images.

    Returns the files written and whether the images could be drawn (False: ``dot`` is
    missing and only the DOT files were written).
    """
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FusionlabError(f"{folder}: cannot create the folder ({exc.strerror or exc})") from exc
    drawable = dot_program() is not None
    cache: dict[tuple[str, int], Graph] = {}
    written: list[Path] = []
    for figure in figures:
        dot = figure_dot(figure, cache)
        written.append(render_file(dot, folder / f"{figure.name}.dot"))
        if drawable:
            for fmt in formats:
                log.info("drawing %s.%s", figure.name, fmt)
                written.append(render_file(dot, folder / f"{figure.name}.{fmt}"))
    return written, drawable
