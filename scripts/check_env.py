"""Verify that the environment built by scripts/setup.sh imports and works (exit 1 with reasons if not)."""

from __future__ import annotations

import collections
import collections.abc
import importlib
import importlib.metadata
import os
import sys

failures: list[str] = []


def check(name: str, fn) -> None:
    try:
        detail = fn()
        print(f"  ok   {name}{': ' + detail if detail else ''}")
    except Exception as exc:  # noqa: BLE001 - report every failure, then exit non-zero
        failures.append(f"{name}: {type(exc).__name__}: {exc}")
        print(f"  FAIL {name}: {type(exc).__name__}: {exc}")


def _torch() -> str:
    import torch

    assert torch.__version__.startswith("2.14.1"), torch.__version__
    return f"{torch.__version__}, cuda available={torch.cuda.is_available()}"


def _minkowski() -> str:
    # MinkowskiEngine 0.5.4 still does `from collections import Sequence` (removed in Python 3.10).
    for name in ("Sequence", "Mapping", "Iterable"):
        setattr(collections, name, getattr(collections.abc, name))
    import MinkowskiEngine as ME
    import torch

    coords = torch.tensor([[0, 0, 0, 0], [0, 0, 0, 1]], dtype=torch.int32)
    x = ME.SparseTensor(torch.ones(2, 1), coordinates=coords)
    conv = ME.MinkowskiConvolution(1, 1, kernel_size=3, dimension=3)
    assert conv(x).F.shape == (2, 1)
    return ME.__version__


check("torch", _torch)
check("torchvision", lambda: importlib.import_module("torchvision").__version__)


def _numpy() -> str:
    import numpy as np

    assert int(np.__version__.split(".")[0]) < 2, f"numpy {np.__version__}; nerfstudio 1.1.5 needs numpy<2"
    return np.__version__


check("numpy<2", _numpy)
for mod in ("pcseg", "hydra", "plyfile", "tqdm", "tensorboard", "open3d", "open_clip", "timm", "pytest"):
    check(mod, lambda mod=mod: getattr(importlib.import_module(mod), "__version__", ""))
if os.environ.get("PCSEG_SKIP_NERF", "0") != "1":
    check("nerfstudio", lambda: importlib.metadata.version("nerfstudio"))
if os.environ.get("PCSEG_ME_BUILD", "auto") != "skip":
    check("MinkowskiEngine", _minkowski)

if failures:
    print("environment check failed:\n  " + "\n  ".join(failures), file=sys.stderr)
    sys.exit(1)
