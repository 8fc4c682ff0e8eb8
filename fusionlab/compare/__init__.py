"""Predicted against actual: the diff of two plans (:mod:`~fusionlab.compare.diff`) and
fusion expectations for CI (:mod:`~fusionlab.compare.expect`).
"""
