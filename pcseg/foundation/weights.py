"""Where pretrained weights come from, and the error that says what to fetch when they are missing.

Resolution order for a named encoder (``build_encoder``):

1. an explicit ``checkpoint`` path (config key ``checkpoint``);
2. a file named ``<encoder name>.<ext>`` in the local weights folder (``$PCSEG_WEIGHTS_DIR``, default
   ``~/.cache/pcseg/weights``), ext one of ``.safetensors .bin .pt .pth``;
3. the library's own hub download (Hugging Face; honours ``HF_HUB_OFFLINE=1`` and the HF cache).

If all three fail, ``WeightsUnavailableError`` names the file to download, from where, and where to
put it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from pcseg.utils.errors import DataError, MissingDependencyError

CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class WeightsUnavailableError(MissingDependencyError):
    """Pretrained weights could not be found locally nor downloaded."""

    def __init__(self, message: str):
        # MissingDependencyError formats its own sentence; we want ours verbatim (still one line).
        Exception.__init__(self, message)


@dataclass(frozen=True)
class WeightsSource:
    """Where a named encoder's weights can be downloaded by hand.

    Attributes:
        hf_repo: Hugging Face repository id.
        hf_filename: the file to take from that repository.
        url: an alternative direct URL (original release), or "".
    """

    hf_repo: str
    hf_filename: str
    url: str = ""

    def hint(self) -> str:
        where = f"https://huggingface.co/{self.hf_repo}/resolve/main/{self.hf_filename}"
        if self.url:
            where += f" (or the original release {self.url})"
        return where


def default_weights_dir() -> Path:
    """``$PCSEG_WEIGHTS_DIR`` or ``~/.cache/pcseg/weights``."""
    env = os.environ.get("PCSEG_WEIGHTS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pcseg" / "weights"


def find_local_weights(name: str, weights_dir: str | Path | None = None) -> Path | None:
    """The file ``<weights_dir>/<name>.<ext>`` if one exists (first of CHECKPOINT_SUFFIXES)."""
    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    for suffix in CHECKPOINT_SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def check_checkpoint_path(path: str | Path) -> Path:
    """Validate a user-given checkpoint path (exists, is a file, known suffix)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(path, "checkpoint file not found")
    if not path.is_file():
        raise DataError(path, "checkpoint must be a file, not a folder")
    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise DataError(path, f"unsupported checkpoint type {path.suffix!r}; expected one of {CHECKPOINT_SUFFIXES}")
    return path


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """sha256 of a file's content (memoised per process on path, size and mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    memo_key = (str(path), st.st_size, st.st_mtime_ns)
    if memo_key not in _FILE_DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        _FILE_DIGESTS[memo_key] = h.hexdigest()
    return _FILE_DIGESTS[memo_key]


def hub_offline() -> bool:
    """True when the Hugging Face hub is switched off by environment (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def unavailable(name: str, source: WeightsSource, reason: str, weights_dir: str | Path | None = None) -> WeightsUnavailableError:
    """Build the one-line error for weights that are neither local nor downloadable."""
    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    offline = " (HF_HUB_OFFLINE is set)" if hub_offline() else ""
    return WeightsUnavailableError(
        f"pretrained weights for encoder {name!r} are not available offline{offline}. "
        f"Download {source.hint()} on a machine with internet, then either save it as "
        f"{folder / (name + Path(source.hf_filename).suffix)} or pass its path as checkpoint=... "
        f"(config key `checkpoint`). [hub lookup: {reason}]"
    )
