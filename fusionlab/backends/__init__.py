"""Where actual engine plans and timings come from.

``trtexec`` reads and writes the files TensorRT's tools export (engine layer information,
per-layer profiles, timing traces, performance summaries) and needs no TensorRT; the live
backend (``tensorrt``) builds and times engines and imports TensorRT only when called.
"""
