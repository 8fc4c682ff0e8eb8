"""The cost model: a roofline per layer over a device table (:mod:`~fusionlab.cost.devices`)
with efficiency factors that ``fusionlab calibrate`` fits (:mod:`~fusionlab.cost.model`).
"""
