"""Prediction: the passes (one rule each), the plan algebra they share, the targets that
compose them, and the predictor that runs a target's passes over a graph.
"""
