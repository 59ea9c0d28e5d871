"""Where things live: the config folder, the repository root, the shipped resources."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
RESOURCES_DIR = PACKAGE_DIR / "resources"


def repo_root() -> Path | None:
    """The source checkout holding this package (None for a plain wheel install)."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "configs").is_dir() else None


def config_dir() -> Path:
    """The hydra config folder: ``$PCSEG_CONFIG_DIR`` or ``<repo>/configs``."""
    env = os.environ.get("PCSEG_CONFIG_DIR")
    if env:
        return Path(env).resolve()
    root = repo_root()
    if root is None:
        raise FileNotFoundError("cannot find pcseg's configs/ folder: set PCSEG_CONFIG_DIR")
    return root / "configs"


def default_data_root() -> Path:
    """Default folder for datasets: ``$PCSEG_DATA_ROOT`` or ``<repo>/data``."""
    env = os.environ.get("PCSEG_DATA_ROOT")
    if env:
        return Path(env).resolve()
    root = repo_root()
    return (root / "data") if root is not None else Path.cwd() / "data"
