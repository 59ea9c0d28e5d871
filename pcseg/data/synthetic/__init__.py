"""Synthetic indoor rooms with exact ground truth, written in the raw ScanNet and S3DIS layouts.

``pcseg prepare synthetic`` uses :func:`pcseg.data.synthetic.generate.generate_dataset`; the room
model lives in :mod:`.room` (layout in :mod:`.layout`, furniture in :mod:`.objects`, shapes in
:mod:`.primitives`, colours in :mod:`.materials`) and the raw-format writers in :mod:`.writers`.
"""
