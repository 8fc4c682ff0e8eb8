"""Files that TensorRT and its tools write, read and written without TensorRT: engine layer
information, profiles, timing traces, performance summaries (:mod:`~fusionlab.formats.trtexec`
is the public face).
"""
