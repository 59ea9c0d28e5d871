"""Checkpoints: one writer (atomic), one reader with clear errors.

A checkpoint is a dict: ``model`` (state_dict, backend-independent), ``optimizer``, ``method`` (extra
state such as an EMA teacher), ``scaler``, ``epoch``, ``batch_in_epoch``, ``iteration``,
``best_metric``, ``config`` (plain dict), ``format_version``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pcseg.utils.atomic import atomic_torch_save
from pcseg.utils.errors import DataError

FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    atomic_torch_save({**state, "format_version": FORMAT_VERSION}, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise DataError(path, f"not a readable pcseg checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise DataError(path, "not a pcseg checkpoint (no 'model' entry)")
    if state.get("format_version") != FORMAT_VERSION:
        raise DataError(path, f"checkpoint format {state.get('format_version')!r}, this pcseg reads {FORMAT_VERSION}")
    return state


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DistributedDataParallel (or the module itself)."""
    return model.module if hasattr(model, "module") and isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def load_model_weights(model: torch.nn.Module, state: dict[str, Any], path: str | Path) -> None:
    """Load ``state['model']`` into ``model`` with a one-line error on mismatch."""
    missing, unexpected = unwrap(model).load_state_dict(state["model"], strict=False)
    if missing or unexpected:
        raise DataError(
            path,
            f"weights do not fit this model (missing {len(missing)}: {missing[:3]}, unexpected {len(unexpected)}: "
            f"{unexpected[:3]}); was it trained with another model/width/class count?",
        )
