"""The TensorRT backend's CUDA layer (cuda-python) on a real GPU; skipped without one."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from fusionlab.backends.tensorrt_cuda import (
    CudaRuntime,
    allocate,
    fill_random,
    open_cuda,
    tensor_bytes,
)
from fusionlab.errors import FusionlabError


@pytest.fixture
def cuda() -> Iterator[CudaRuntime]:
    try:
        runtime = open_cuda()
    except FusionlabError as exc:
        pytest.skip(f"needs cuda-python and a CUDA GPU: {exc}")
    yield runtime
    runtime.close()


@pytest.mark.gpu
def test_copies_round_trip_and_events_time_them(cuda: CudaRuntime) -> None:
    assert cuda.device_name()
    stream = cuda.create_stream()
    assert cuda.stream_handle(stream) != 0
    buffer = allocate(cuda, "x", (64, 3, 32, 32), "float32", is_input=True)
    assert buffer.nbytes == 64 * 3 * 32 * 32 * 4
    fill_random(buffer, np.random.default_rng(0))
    values = buffer.host.view(np.float32)
    assert values.min() >= -1.0 and values.max() <= 1.0 and values.std() > 0.1
    back = cuda.host_buffer(buffer.nbytes)
    start, end = cuda.create_event(), cuda.create_event()
    cuda.record(start, stream)
    cuda.copy_to_device(buffer.device, buffer.host, stream)
    cuda.copy_to_host(back, buffer.device, stream)
    cuda.record(end, stream)
    cuda.synchronize_event(end)
    assert np.array_equal(back, buffer.host)
    assert cuda.elapsed_ms(start, end) > 0.0


@pytest.mark.gpu
def test_a_captured_graph_replays_the_copies(cuda: CudaRuntime) -> None:
    stream = cuda.create_stream()
    buffer = allocate(cuda, "x", (1024,), "int32", is_input=True)
    back = cuda.host_buffer(buffer.nbytes)
    cuda.begin_capture(stream)
    cuda.copy_to_device(buffer.device, buffer.host, stream)
    cuda.copy_to_host(back, buffer.device, stream)
    graph = cuda.end_capture(stream)
    for seed in (1, 2):
        fill_random(buffer, np.random.default_rng(seed))
        cuda.launch(graph, stream)
        cuda.synchronize(stream)
        assert np.array_equal(back, buffer.host)


def test_unresolved_shapes_and_unknown_types_are_refused() -> None:
    with pytest.raises(FusionlabError, match="unresolved shape"):
        tensor_bytes("x", (-1, 3), "float32")
    with pytest.raises(FusionlabError, match="cannot fill"):
        tensor_bytes("x", (1, 3), "complex64")
