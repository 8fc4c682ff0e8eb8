"""CUDA for the TensorRT backend: device buffers, streams, events and CUDA graphs.

Two implementations of one small interface, :class:`CudaRuntime`:

- :class:`CudaPython` — NVIDIA's cuda-python runtime bindings (``cuda.bindings.runtime``,
  or ``cuda.cudart`` before cuda-python 12.6), which TensorRT's own Python samples use
  since they left pycuda (samples/python/common_runtime.py: ``cudaMalloc``,
  ``cudaMallocHost``, ``cudaMemcpyAsync``, ``cudaStreamCreate``, every call returning an
  error code first);
- :class:`PyCuda` — pycuda, on request (``--pycuda``); it offers no CUDA graphs here.

The CUDA modules are imported only by :func:`open_cuda`; a missing module or GPU is a
:class:`FusionlabError` that names what to install or which device is needed.
"""

from __future__ import annotations

import ctypes
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusionlab.dtypes import DTYPES, itemsize
from fusionlab.errors import FusionlabError, missing_extra

log = logging.getLogger(__name__)

GPU_NEEDED = "an NVIDIA GPU with a working CUDA driver"


class CudaRuntime(ABC):
    """Streams, events, device and pinned host memory, graph capture."""

    kind: str = ""

    @abstractmethod
    def device_name(self) -> str: ...

    @abstractmethod
    def create_stream(self) -> Any: ...

    @abstractmethod
    def stream_handle(self, stream: Any) -> int:
        """The stream as the integer TensorRT's ``execute_async_v3`` takes."""

    @abstractmethod
    def malloc(self, nbytes: int) -> int: ...

    @abstractmethod
    def host_buffer(self, nbytes: int) -> np.ndarray:
        """Page-locked host memory as a uint8 array."""

    @abstractmethod
    def copy_to_device(self, dst: int, src: np.ndarray, stream: Any) -> None: ...

    @abstractmethod
    def copy_to_host(self, dst: np.ndarray, src: int, stream: Any) -> None: ...

    @abstractmethod
    def create_event(self) -> Any: ...

    @abstractmethod
    def record(self, event: Any, stream: Any) -> None: ...

    @abstractmethod
    def elapsed_ms(self, start: Any, end: Any) -> float: ...

    @abstractmethod
    def synchronize_event(self, event: Any) -> None: ...

    @abstractmethod
    def synchronize(self, stream: Any) -> None: ...

    def begin_capture(self, stream: Any) -> None:
        raise FusionlabError(f"CUDA graphs need the cuda-python bindings, not {self.kind}")

    def end_capture(self, stream: Any) -> Any:
        raise FusionlabError(f"CUDA graphs need the cuda-python bindings, not {self.kind}")

    def launch(self, graph: Any, stream: Any) -> None:
        raise FusionlabError(f"CUDA graphs need the cuda-python bindings, not {self.kind}")

    @abstractmethod
    def close(self) -> None:
        """Free everything this runtime allocated."""


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python before 12.6
        except ImportError:
            raise missing_extra("cuda-python", "tensorrt", "running TensorRT engines") from None
    return cudart


class CudaPython(CudaRuntime):
    """cuda-python's runtime API (``cudart``)."""

    kind = "cuda-python"

    def __init__(self, device: int = 0) -> None:
        self.rt = _cudart()
        err, count = self.rt.cudaGetDeviceCount()
        if err != self.rt.cudaError_t.cudaSuccess or count < 1:
            reason = self._name(err) if err != self.rt.cudaError_t.cudaSuccess else "no device"
            raise FusionlabError(f"running TensorRT engines needs {GPU_NEEDED} (CUDA: {reason})")
        if device >= count:
            raise FusionlabError(f"CUDA device {device} does not exist ({count} found)")
        self._call(self.rt.cudaSetDevice(device), "cudaSetDevice")
        self.device = device
        self._device_ptrs: list[int] = []
        self._host_ptrs: list[int] = []
        self._streams: list[Any] = []
        self._events: list[Any] = []
        self._graphs: list[tuple[Any, Any]] = []

    def _name(self, err: Any) -> str:
        return str(getattr(err, "name", err))

    def _call(self, result: Any, what: str) -> Any:
        """Check a cuda-python result tuple ``(err, *values)``; return the value(s)."""
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self.rt.cudaError_t.cudaSuccess:
            raise FusionlabError(f"CUDA error in {what}: {self._name(err)}")
        return values[0] if len(values) == 1 else tuple(values)

    def device_name(self) -> str:
        props = self._call(self.rt.cudaGetDeviceProperties(self.device), "cudaGetDeviceProperties")
        name = props.name
        return (name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)).rstrip(
            "\x00"
        )

    def create_stream(self) -> Any:
        flags = self.rt.cudaStreamNonBlocking
        stream = self._call(self.rt.cudaStreamCreateWithFlags(flags), "cudaStreamCreateWithFlags")
        self._streams.append(stream)
        return stream

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def malloc(self, nbytes: int) -> int:
        ptr = int(self._call(self.rt.cudaMalloc(max(nbytes, 1)), "cudaMalloc"))
        self._device_ptrs.append(ptr)
        return ptr

    def host_buffer(self, nbytes: int) -> np.ndarray:
        ptr = int(self._call(self.rt.cudaMallocHost(max(nbytes, 1)), "cudaMallocHost"))
        self._host_ptrs.append(ptr)
        array = np.ctypeslib.as_array(
            ctypes.cast(ptr, ctypes.POINTER(ctypes.c_uint8)), (max(nbytes, 1),)
        )
        return array[:nbytes]

    def copy_to_device(self, dst: int, src: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call(
            self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream),
            "cudaMemcpyAsync",
        )

    def copy_to_host(self, dst: np.ndarray, src: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call(
            self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream),
            "cudaMemcpyAsync",
        )

    def create_event(self) -> Any:
        event = self._call(self.rt.cudaEventCreate(), "cudaEventCreate")
        self._events.append(event)
        return event

    def record(self, event: Any, stream: Any) -> None:
        self._call(self.rt.cudaEventRecord(event, stream), "cudaEventRecord")

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._call(self.rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def synchronize_event(self, event: Any) -> None:
        self._call(self.rt.cudaEventSynchronize(event), "cudaEventSynchronize")

    def synchronize(self, stream: Any) -> None:
        self._call(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def begin_capture(self, stream: Any) -> None:
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
        self._call(self.rt.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")

    def end_capture(self, stream: Any) -> Any:
        graph = self._call(self.rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        executable = self._call(self.rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        self._graphs.append((graph, executable))
        return executable

    def launch(self, graph: Any, stream: Any) -> None:
        self._call(self.rt.cudaGraphLaunch(graph, stream), "cudaGraphLaunch")

    def close(self) -> None:
        rt = self.rt
        for graph, executable in self._graphs:
            rt.cudaGraphExecDestroy(executable)
            rt.cudaGraphDestroy(graph)
        for event in self._events:
            rt.cudaEventDestroy(event)
        for stream in self._streams:
            rt.cudaStreamDestroy(stream)
        for ptr in self._device_ptrs:
            rt.cudaFree(ptr)
        for ptr in self._host_ptrs:
            rt.cudaFreeHost(ptr)
        self._graphs, self._events, self._streams = [], [], []
        self._device_ptrs, self._host_ptrs = [], []


class PyCuda(CudaRuntime):
    """pycuda's driver API, in the device's primary context (the one TensorRT uses)."""

    kind = "pycuda"

    def __init__(self, device: int = 0) -> None:
        try:
            import pycuda.driver as drv
        except ImportError:
            raise missing_extra("pycuda", "pycuda", "--pycuda") from None
        try:
            drv.init()
            count = drv.Device.count()
        except drv.Error as exc:
            raise FusionlabError(
                f"running TensorRT engines needs {GPU_NEEDED} (pycuda: {exc})"
            ) from None
        if device >= count:
            raise FusionlabError(f"running TensorRT engines needs {GPU_NEEDED} ({count} found)")
        self.drv = drv
        self.dev = drv.Device(device)
        self.context = self.dev.retain_primary_context()
        self.context.push()
        self._allocations: list[Any] = []

    def device_name(self) -> str:
        return str(self.dev.name())

    def create_stream(self) -> Any:
        return self.drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def malloc(self, nbytes: int) -> int:
        allocation = self.drv.mem_alloc(max(nbytes, 1))
        self._allocations.append(allocation)
        return int(allocation)

    def host_buffer(self, nbytes: int) -> np.ndarray:
        array: np.ndarray = self.drv.pagelocked_empty(nbytes, np.uint8)
        return array

    def copy_to_device(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self.drv.memcpy_htod_async(dst, src, stream)

    def copy_to_host(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self.drv.memcpy_dtoh_async(dst, src, stream)

    def create_event(self) -> Any:
        return self.drv.Event()

    def record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(end.time_since(start))

    def synchronize_event(self, event: Any) -> None:
        event.synchronize()

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def close(self) -> None:
        for allocation in self._allocations:
            allocation.free()
        self._allocations = []
        self.context.pop()


def open_cuda(pycuda: bool = False, device: int = 0) -> CudaRuntime:
    """The CUDA runtime to run engines with: cuda-python, or pycuda when asked."""
    return PyCuda(device) if pycuda else CudaPython(device)


@dataclass
class IOBuffer:
    """One engine input or output: pinned host memory and device memory of its size."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    """numpy dtype name (``bfloat16`` and ``float8_e4m3fn`` are stored as raw bytes)."""
    is_input: bool
    host: np.ndarray = field(repr=False)
    device: int = 0

    @property
    def nbytes(self) -> int:
        return int(self.host.nbytes)


FILLABLE = frozenset({d.numpy for d in DTYPES if d.word not in ("fp4", "int4")})
"""numpy dtype names of the buffers :func:`fill_random` can fill (whole bytes per element)."""


def tensor_bytes(name: str, shape: tuple[int, ...], dtype: str) -> int:
    """Bytes of a tensor in a linear format (the formats fusionlab builds with).

    >>> tensor_bytes("x", (8, 3, 224, 224), "float16")
    2408448
    """
    if any(d < 0 for d in shape):
        raise FusionlabError(f"tensor {name!r} has an unresolved shape {list(shape)}")
    if dtype not in FILLABLE:
        raise FusionlabError(f"tensor {name!r} has a data type fusionlab cannot fill ({dtype})")
    return int(np.prod(shape, dtype=np.int64)) * itemsize(dtype)


def allocate(
    cuda: CudaRuntime, name: str, shape: tuple[int, ...], dtype: str, is_input: bool
) -> IOBuffer:
    """Pinned host and device memory for a tensor of ``shape`` and ``dtype``."""
    nbytes = tensor_bytes(name, shape, dtype)
    host = cuda.host_buffer(nbytes)
    return IOBuffer(name, shape, dtype, is_input, host, cuda.malloc(nbytes))


def fill_random(buffer: IOBuffer, rng: np.random.Generator) -> None:
    """Random input values, as trtexec uses when no input file is given.

    Floats uniform in [-1, 1]; integers in [0, 4) (safe as indices); booleans 0/1.
    """
    n = int(np.prod(buffer.shape, dtype=np.int64))
    if buffer.dtype in ("float32", "float16"):
        values = rng.uniform(-1.0, 1.0, n).astype(buffer.dtype)
    elif buffer.dtype == "bfloat16":
        from fusionlab.backends.tensorrt_precision import to_bfloat16_bits

        values = to_bfloat16_bits(rng.uniform(-1.0, 1.0, n).astype(np.float32))
    elif buffer.dtype in ("int8", "uint8", "int32", "int64"):
        values = rng.integers(0, 4, n).astype(buffer.dtype)
    else:  # bool, fp8: bytes 0/1 (an fp8 byte of 1 is a tiny positive value)
        values = rng.integers(0, 2, n).astype(np.uint8)
    buffer.host[:] = np.frombuffer(values.tobytes(), dtype=np.uint8)
