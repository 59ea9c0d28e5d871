"""On-disk feature cache: content-keyed, verified on read, memory-mapped.

Key = sha256 of ``{kind, model fingerprint (architecture + weights), image digest (pixel content),
params}``: renaming a folder, moving a scene or touching a file does not invalidate it; changing a
pixel, the weights or a parameter does. Layout::

    <root>/manifest.json                      index: key -> {kind, model, image, params, shape, dtype, path}
    <root>/<kind>/<key[:2]>/<key>/data.npy    the array (.npy, memory-mapped on read)
    <root>/<kind>/<key[:2]>/<key>/meta.json   key, kind, model, image, params, shape, dtype, nbytes, sha256

Each entry folder is built under a temporary name and renamed into place
(``pcseg.utils.atomic.atomic_directory``), so a crash never leaves a half entry under the real name.
On read, an entry whose ``meta.json`` is unreadable or whose ``data.npy`` is missing, truncated, of
the wrong header, or (``verify="full"``) of the wrong sha256 is logged, removed and recomputed: never
used. The manifest is an index only (updated under a file lock; ``rebuild_manifest`` recreates it
from the entries); lookups go straight to the entry folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np

from pcseg.foundation.images import image_digest
from pcseg.utils.atomic import atomic_directory, atomic_write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
Verify = Literal["full", "size"]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class CacheEntryError(Exception):
    """Internal: an entry exists but cannot be trusted."""


class FeatureCache:
    """A folder of cached feature arrays.

    Args:
        root: cache folder (created if missing).
        verify: ``"full"`` checks each entry's sha256 once per process before handing out a memory map
            (about 1.5 GB/s); ``"size"`` checks file size and .npy header only (for very large scenes;
            catches truncation but not a flipped byte).
    """

    def __init__(self, root: str | Path, verify: Verify = "full"):
        if verify not in ("full", "size"):
            raise ValueError(f"verify must be 'full' or 'size', got {verify!r}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.verify = verify
        self._verified: set[tuple[str, int, int, int]] = set()

    # ------------------------------------------------------------------ keys and paths
    @staticmethod
    def make_key(kind: str, model: str, image: str, params: dict | None = None) -> str:
        """Cache key of an entry.

        Args:
            kind: what is cached, e.g. ``"ovs_hierarchy"``, ``"lerf_level"``, ``"dense"``.
            model: the encoder's ``fingerprint`` (architecture + weights + precision).
            image: the image's content digest (``image_digest``).
            params: every parameter that changes the output.
        """
        payload = {"format": FORMAT_VERSION, "kind": kind, "model": model, "image": image, "params": params or {}}
        return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:40]

    def entry_dir(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / key

    # ------------------------------------------------------------------ reading
    def load(self, kind: str, key: str) -> np.ndarray | None:
        """The cached array as a read-only memory map, or None if absent or untrustworthy.

        An untrustworthy entry (see module docstring) is logged and removed.
        """
        folder = self.entry_dir(kind, key)
        if not folder.exists():
            return None
        try:
            return self._open_checked(folder, key)
        except CacheEntryError as err:
            log.warning("feature cache: discarding %s (%s); it will be recomputed", folder, err)
            shutil.rmtree(folder, ignore_errors=True)
            return None

    def _open_checked(self, folder: Path, key: str) -> np.ndarray:
        meta_path, data_path = folder / "meta.json", folder / "data.npy"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as err:
            raise CacheEntryError(f"meta.json unreadable: {err}") from None
        if meta.get("key") != key or meta.get("format") != FORMAT_VERSION:
            raise CacheEntryError("meta.json does not belong to this key/format")
        try:
            st = data_path.stat()
        except OSError:
            raise CacheEntryError("data.npy missing") from None
        if st.st_size != meta.get("nbytes"):
            raise CacheEntryError(f"data.npy has {st.st_size} bytes, expected {meta.get('nbytes')} (partial write?)")
        try:
            array = np.load(data_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise CacheEntryError(f"data.npy unreadable: {err}") from None
        if list(array.shape) != meta.get("shape") or str(array.dtype) != meta.get("dtype"):
            raise CacheEntryError(f"data.npy is {array.dtype}{list(array.shape)}, expected {meta.get('dtype')}{meta.get('shape')}")
        if self.verify == "full":
            stamp = (str(data_path), st.st_size, st.st_mtime_ns, st.st_ino)
            if stamp not in self._verified:
                if _sha256_file(data_path) != meta.get("sha256"):
                    raise CacheEntryError("data.npy checksum mismatch (corrupted)")
                self._verified.add(stamp)
        return array

    # ------------------------------------------------------------------ writing
    def get_or_create(
        self,
        kind: str,
        key: str,
        shape: tuple[int, ...],
        dtype,
        fill: Callable[[np.ndarray], None],
        info: dict | None = None,
    ) -> np.ndarray:
        """Return the cached array, computing it first if absent or untrustworthy.

        Args:
            kind, key: entry identity (``make_key``).
            shape, dtype: of the array ``fill`` produces.
            fill: called with a writable array (a memory map of the new file) to fill in place, so the
                result never needs to fit in RAM twice.
            info: extra JSON-able provenance stored in meta.json and the manifest (model, image, params).

        Returns:
            Read-only memory map of the entry.
        """
        cached = self.load(kind, key)
        if cached is not None:
            return cached
        folder = self.entry_dir(kind, key)
        self._remove_stale_temporaries(folder)
        with atomic_directory(folder) as tmp:
            data_path = tmp / "data.npy"
            array = np.lib.format.open_memmap(data_path, mode="w+", dtype=np.dtype(dtype), shape=tuple(shape))
            fill(array)
            array.flush()
            del array
            meta = {
                "format": FORMAT_VERSION,
                "key": key,
                "kind": kind,
                "shape": list(shape),
                "dtype": str(np.dtype(dtype)),
                "nbytes": data_path.stat().st_size,
                "sha256": _sha256_file(data_path),
                **(info or {}),
            }
            atomic_write_json(tmp / "meta.json", meta)
        self._update_manifest(key, {k: v for k, v in meta.items() if k not in ("format", "key")} | {"path": str(folder.relative_to(self.root))})
        result = self.load(kind, key)
        if result is None:  # pragma: no cover - only if the disk lies to us
            raise OSError(f"{folder}: feature cache entry unreadable right after writing")
        return result

    def put(self, kind: str, key: str, array: np.ndarray, info: dict | None = None) -> np.ndarray:
        """Store an in-memory array (replacing any entry) and return its memory map."""
        self.remove(kind, key)

        def fill(out: np.ndarray) -> None:
            out[...] = array

        return self.get_or_create(kind, key, array.shape, array.dtype, fill, info)

    @staticmethod
    def _remove_stale_temporaries(folder: Path, max_age_s: float = 3600.0) -> None:
        """Drop this entry's leftovers of crashed writes (only old ones: another process may be writing)."""
        import time

        now = time.time()
        for tmp in folder.parent.glob(f".{folder.name}.*.tmp"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > max_age_s:
                    shutil.rmtree(tmp, ignore_errors=True)

    def remove(self, kind: str, key: str) -> None:
        shutil.rmtree(self.entry_dir(kind, key), ignore_errors=True)

    # ------------------------------------------------------------------ manifest
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".manifest.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def manifest(self) -> dict:
        """The manifest: ``{"format": 1, "entries": {key: {...}}}`` (empty if missing or unreadable)."""
        path = self.root / "manifest.json"
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and isinstance(data.get("entries"), dict):
                return data
        except (OSError, ValueError):
            pass
        return {"format": FORMAT_VERSION, "entries": {}}

    def _update_manifest(self, key: str, record: dict) -> None:
        with self._locked():
            data = self.manifest()
            data["entries"][key] = record
            atomic_write_json(self.root / "manifest.json", data)

    def rebuild_manifest(self) -> dict:
        """Recreate manifest.json from the entries' meta.json files (drops entries that are gone)."""
        entries = {}
        for meta_path in sorted(self.root.glob("*/*/*/meta.json")):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue
            key = meta.get("key")
            if key:
                rel = str(meta_path.parent.relative_to(self.root))
                entries[key] = {k: v for k, v in meta.items() if k not in ("format", "key")} | {"path": rel}
        data = {"format": FORMAT_VERSION, "entries": entries}
        with self._locked():
            atomic_write_json(self.root / "manifest.json", data)
        return data


# ---------------------------------------------------------------------- convenience wrappers


def cached_ovs_hierarchy(cache: FeatureCache, image, encoder, config=None, *, progress: bool = False) -> np.ndarray:
    """``extract_ovs_hierarchy`` through the cache: (S, D, h, w) float16 read-only memory map."""
    from pcseg.foundation.images import as_image_tensor
    from pcseg.foundation.pyramid import OVSHierarchyConfig, extract_ovs_hierarchy, ovs_scales

    config = config or OVSHierarchyConfig()
    img = as_image_tensor(image)
    digest = image_digest(img)
    params = config.params()
    key = cache.make_key("ovs_hierarchy", encoder.fingerprint, digest, params)
    _, h, w = img.shape
    shape = (len(ovs_scales(h, w, config)), encoder.embed_dim, h, w)

    def fill(out: np.ndarray) -> None:
        extract_ovs_hierarchy(img, encoder, config, key=digest, out=out, progress=progress)

    info = {"model": encoder.fingerprint, "image": digest, "params": params}
    return cache.get_or_create("ovs_hierarchy", key, shape, np.float16, fill, info)


def cached_dense_features(cache: FeatureCache, image, encoder) -> np.ndarray:
    """``encoder.encode_dense`` of one image through the cache: (D, h, w) float16 read-only memory map."""
    from pcseg.foundation.images import as_image_tensor

    img = as_image_tensor(image)
    digest = image_digest(img)
    p = encoder.patch_size
    shape = (encoder.embed_dim, img.shape[1] // p, img.shape[2] // p)
    key = cache.make_key("dense", encoder.fingerprint, digest, {})

    def fill(out: np.ndarray) -> None:
        out[...] = encoder.encode_dense(img[None])[0].cpu().numpy().astype(np.float16)

    info = {"model": encoder.fingerprint, "image": digest, "params": {}}
    return cache.get_or_create("dense", key, shape, np.float16, fill, info)


def cached_lerf_pyramid(cache: FeatureCache, image, encoder, config=None, *, progress: bool = False):
    """``extract_lerf_pyramid`` through the cache: a LerfPyramid whose levels are read-only memory maps."""
    from pcseg.foundation.images import as_image_tensor
    from pcseg.foundation.pyramid import (
        LerfLevel,
        LerfPyramid,
        LerfPyramidConfig,
        extract_lerf_pyramid,
        lerf_level_geometry,
    )

    config = config or LerfPyramidConfig()
    img = as_image_tensor(image)
    digest = image_digest(img)
    _, height, width = img.shape
    params = config.params()
    computed: list[LerfLevel] = []

    def compute_all() -> list[LerfLevel]:
        if not computed:
            computed.extend(extract_lerf_pyramid(img, encoder, config, progress=progress).levels)
        return computed

    levels = []
    for index, ratio in enumerate(config.tile_ratios()):
        kernel, stride, padding, cy, cx = lerf_level_geometry(height, width, ratio, config.stride_scaler)
        key = cache.make_key("lerf_level", encoder.fingerprint, digest, params | {"level": index})
        shape = (len(cy) + 1, len(cx) + 1, encoder.embed_dim)

        def fill(out: np.ndarray, index: int = index) -> None:
            out[...] = compute_all()[index].embeddings

        info = {"model": encoder.fingerprint, "image": digest, "params": params | {"level": index}}
        emb = cache.get_or_create("lerf_level", key, shape, np.float16, fill, info)
        levels.append(LerfLevel(ratio, kernel, stride, padding, cy, cx, emb))
    return LerfPyramid(levels)
