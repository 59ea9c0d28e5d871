"""Child process for Open3D's Filament OffscreenRenderer: ``python -m pcseg.viz.offscreen_worker JOB.npz OUT.npy``.

Run in its own process because Filament aborts the process when it finds no usable GPU driver, and
because the legacy Visualizer cannot create windows in a process where Filament has started.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m pcseg.viz.offscreen_worker JOB.npz OUT.npy", file=sys.stderr)
        return 2
    from pcseg.viz.render import load_request, offscreen_render_in_this_process

    scene, camera = load_request(Path(argv[0]))
    image = offscreen_render_in_this_process(scene, camera)
    np.save(argv[1], image)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
