"""The model as fusionlab sees it: the ONNX graph (:mod:`~fusionlab.ir.graph`), ONNX op
families (:mod:`~fusionlab.ir.ops`) and per-node costs (:mod:`~fusionlab.ir.flops`).

This layer imports nothing of fusionlab's but :mod:`fusionlab.errors` and the helpers
beside it (``gcpause``, ``dtypes``).
"""
