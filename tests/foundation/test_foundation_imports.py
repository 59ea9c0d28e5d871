"""pcseg.foundation stays a leaf: no nerfstudio, no MinkowskiEngine, no other pcseg package."""

from __future__ import annotations

import json
import subprocess
import sys

MODULES = [
    "pcseg.foundation",
    "pcseg.foundation.cache",
    "pcseg.foundation.images",
    "pcseg.foundation.interface",
    "pcseg.foundation.lifting",
    "pcseg.foundation.oracle",
    "pcseg.foundation.pyramid",
    "pcseg.foundation.registry",
    "pcseg.foundation.relevancy",
    "pcseg.foundation.resize",
    "pcseg.foundation.weights",
    "pcseg.foundation.clip_openclip",
    "pcseg.foundation.dino_timm",
]


def test_foundation_imports_only_leaf_modules():
    code = (
        "import importlib, json, sys\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    pcseg_mods = {m for m in loaded if m == "pcseg" or m.startswith("pcseg.")}
    foreign = {m for m in pcseg_mods if not m.startswith(("pcseg.foundation", "pcseg.utils")) and m != "pcseg"}
    assert not foreign, f"pcseg.foundation pulls in {sorted(foreign)}"
    for heavy in ("nerfstudio", "MinkowskiEngine", "open3d"):
        assert heavy not in loaded
    # the model libraries are imported only when a real model is built
    assert "open_clip" not in loaded and "timm" not in loaded
