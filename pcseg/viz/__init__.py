"""Viewing scenes and predictions: the `pcseg viz` window and headless PNG rendering.

Reads prepared scenes (pcseg.data.scene) and prediction PLYs (pcseg.data.predictions) only. Open3D
is imported lazily, inside the functions that draw.
"""
