"""ScanNet v2 raw reader (the layout of the official download).

```
<raw>/scans/<scene>/<scene>_vh_clean_2.ply                 mesh vertices: x y z red green blue (+ faces)
                    <scene>_vh_clean_2.0.010000.segs.json  {"segIndices": [segment id per vertex]}
                    <scene>.aggregation.json               {"segGroups": [{"objectId", "label", "segments"}]}
<raw>/scans_test/<scene>/<scene>_vh_clean_2.ply            test scenes: no labels
<raw>/scannetv2-labels.combined.tsv                        raw_category -> nyu40id
```
Labels: raw category (aggregation ``label``) -> NYU40 id (tsv) -> the 20 benchmark classes
(``scannet20``; anything else -> -1). Instance id = the group's ``objectId`` (-1 = not in any group).
The vertex order of ``_vh_clean_2.ply`` is kept, so published index files (CPCM percentage files,
ScanNet limited-annotation ``points*`` files) index the prepared arrays directly.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcseg.data.classes import IGNORE_INDEX, SCANNET20_NYU40_IDS, nyu40_to_scannet20
from pcseg.data.rawio import check_coordinates, ply_coord_color, read_json, read_ply_vertices
from pcseg.data.scene import Scene
from pcseg.utils.errors import DataError

LABEL_TSV = "scannetv2-labels.combined.tsv"
SPLIT_FILES = {"train": "scannetv2_train.txt", "val": "scannetv2_val.txt", "test": "scannetv2_test.txt"}


@dataclass(frozen=True)
class ScanNetSceneFiles:
    """Where one raw ScanNet scene lives; ``labelled`` is False for ``scans_test`` scenes."""

    name: str
    folder: Path
    labelled: bool

    @property
    def ply(self) -> Path:
        return self.folder / f"{self.name}_vh_clean_2.ply"

    @property
    def segs(self) -> Path:
        return self.folder / f"{self.name}_vh_clean_2.0.010000.segs.json"

    @property
    def aggregation(self) -> Path:
        # ScanNet v2 names it <scene>.aggregation.json; some mirrors keep the v1 name.
        primary = self.folder / f"{self.name}.aggregation.json"
        legacy = self.folder / f"{self.name}_vh_clean.aggregation.json"
        return legacy if not primary.exists() and legacy.exists() else primary


def find_scenes(raw: str | Path) -> dict[str, ScanNetSceneFiles]:
    """All scene folders under ``<raw>/scans`` (labelled) and ``<raw>/scans_test`` (unlabelled)."""
    raw = Path(raw)
    if not raw.is_dir():
        raise DataError(raw, "raw ScanNet folder does not exist")
    found: dict[str, ScanNetSceneFiles] = {}
    for sub, labelled in (("scans", True), ("scans_test", False)):
        folder = raw / sub
        if folder.is_dir():
            for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
                found[d.name] = ScanNetSceneFiles(d.name, d, labelled)
    if not found:
        raise DataError(raw, "no scene folders found under scans/ or scans_test/")
    return found


def read_label_tsv(path: str | Path) -> dict[str, int]:
    """``scannetv2-labels.combined.tsv`` -> {raw_category: nyu40 id}.

    Columns are found by header name (``raw_category``, ``nyu40id``); files without a header use the
    official positions (1 and 4).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "label map not found (it ships with ScanNet; pass --label-map FILE)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"unreadable label map ({exc})") from None
    rows = list(csv.reader(text.splitlines(), delimiter="\t"))
    if not rows:
        raise DataError(path, "empty label map")
    header = [h.strip() for h in rows[0]]
    if "raw_category" in header and "nyu40id" in header:
        raw_col, nyu_col, start = header.index("raw_category"), header.index("nyu40id"), 1
    else:
        raw_col, nyu_col, start = 1, 4, 0
    mapping: dict[str, int] = {}
    for lineno, row in enumerate(rows[start:], start=start + 1):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) <= max(raw_col, nyu_col):
            raise DataError(path, f"expected at least {max(raw_col, nyu_col) + 1} tab-separated columns, got {len(row)}", line=lineno)
        value = row[nyu_col].strip()
        try:
            nyu = int(value) if value else 0
        except ValueError:
            raise DataError(path, f"nyu40id {value!r} is not an integer", line=lineno) from None
        if not 0 <= nyu <= 40:
            raise DataError(path, f"nyu40id {nyu} is outside 0..40", line=lineno)
        mapping[row[raw_col].strip()] = nyu
    if not mapping:
        raise DataError(path, "label map has no rows")
    return mapping


def read_segment_indices(path: str | Path, num_vertices: int) -> np.ndarray:
    """The over-segmentation: (N,) int64 segment id per mesh vertex."""
    data = read_json(path)
    seg = data.get("segIndices") if isinstance(data, dict) else None
    if not isinstance(seg, list):
        raise DataError(path, "no 'segIndices' list")
    try:
        arr = np.asarray(seg, dtype=np.int64)
    except (ValueError, TypeError, OverflowError):
        raise DataError(path, "'segIndices' must be a flat list of integers") from None
    if arr.ndim != 1:
        raise DataError(path, "'segIndices' must be a flat list of integers")
    if arr.shape[0] != num_vertices:
        raise DataError(path, f"has {arr.shape[0]} segment indices but the mesh has {num_vertices} vertices")
    return arr


def read_aggregation(path: str | Path) -> list[tuple[int, str, np.ndarray]]:
    """The annotated objects: list of (object id, raw category, segment ids), in file order."""
    data = read_json(path)
    groups = data.get("segGroups") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        raise DataError(path, "no 'segGroups' list")
    out = []
    for i, g in enumerate(groups):
        if not isinstance(g, dict) or "label" not in g or "segments" not in g:
            raise DataError(path, f"segGroups[{i}] lacks 'label' or 'segments'")
        obj = g.get("objectId", g.get("id", i))
        try:
            obj = int(obj)
            segs = np.asarray(g["segments"], dtype=np.int64).reshape(-1)
        except (ValueError, TypeError, OverflowError):
            raise DataError(path, f"segGroups[{i}] has a non-integer objectId or segment id") from None
        if obj < 0:
            raise DataError(path, f"segGroups[{i}] has a negative objectId {obj}")
        out.append((obj, str(g["label"]), segs))
    return out


def vertex_labels(
    seg_indices: np.ndarray, groups: list[tuple[int, str, np.ndarray]], label_map: dict[str, int], where: str | Path
) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex NYU40 id (0 = unannotated) and instance id (-1 = none).

    A segment listed by several groups (it happens in ScanNet) takes the last group, as the official
    export scripts do.
    """
    n = seg_indices.shape[0]
    nyu = np.zeros(n, dtype=np.int64)
    inst = np.full(n, IGNORE_INDEX, dtype=np.int64)
    if not groups:
        return nyu, inst
    unknown = sorted({label for _, label, _ in groups if label not in label_map})
    if unknown:
        raise DataError(where, f"raw categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown[:5]))} not in the label map")
    group_nyu = np.array([label_map[label] for _, label, _ in groups], dtype=np.int64)
    group_obj = np.array([obj for obj, _, _ in groups], dtype=np.int64)
    seg_ids = np.concatenate([s for _, _, s in groups])
    seg_group = np.repeat(np.arange(len(groups)), [len(s) for _, _, s in groups])
    if seg_ids.size == 0:
        return nyu, inst
    # Last group wins: reverse, then keep the first occurrence of each segment id.
    seg_ids, seg_group = seg_ids[::-1], seg_group[::-1]
    uniq, first = np.unique(seg_ids, return_index=True)
    owner = seg_group[first]
    # Map every vertex's segment id to its owning group (if any) through a sorted lookup.
    pos = np.clip(np.searchsorted(uniq, seg_indices), 0, max(len(uniq) - 1, 0))
    hit = uniq[pos] == seg_indices
    g = owner[pos[hit]]
    nyu[hit] = group_nyu[g]
    inst[hit] = group_obj[g]
    return nyu, inst


def read_scene(files: ScanNetSceneFiles, label_map: dict[str, int] | None) -> Scene:
    """Read one raw scene into a :class:`Scene` (labels only when ``files.labelled``)."""
    vertices = read_ply_vertices(files.ply)
    coord, color = ply_coord_color(files.ply, vertices)
    check_coordinates(files.ply, coord)
    if color is None:
        raise DataError(files.ply, "PLY vertices have no red/green/blue colour")
    meta: dict = {"source_files": [str(files.ply)], "dataset": "scannet"}
    if not files.labelled:
        return Scene(files.name, coord, color, None, None, meta)
    if label_map is None:
        raise DataError(files.folder, "labelled scene but no label map was given")
    seg_indices = read_segment_indices(files.segs, coord.shape[0])
    groups = read_aggregation(files.aggregation)
    nyu, inst = vertex_labels(seg_indices, groups, label_map, files.aggregation)
    segment = nyu40_to_scannet20(nyu)
    meta["source_files"] += [str(files.segs), str(files.aggregation)]
    meta.update(
        num_objects=len(groups),
        num_unannotated=int((nyu == 0).sum()),
        num_outside_benchmark=int(((nyu > 0) & ~np.isin(nyu, SCANNET20_NYU40_IDS)).sum()),
    )
    return Scene(files.name, coord, color, segment.astype(np.int32), inst.astype(np.int32), meta)


def read_split_lists(folder: str | Path) -> dict[str, list[str]]:
    """Split lists from a folder holding ``scannetv2_<split>.txt`` (or ``<split>.txt``) files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "split folder does not exist")
    splits: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.txt")):
        split = path.stem[len("scannetv2_"):] if path.stem.startswith("scannetv2_") else path.stem
        names = [s.strip() for s in path.read_text().splitlines() if s.strip()]
        if len(set(names)) != len(names):
            raise DataError(path, "a scene is listed twice")
        splits[split] = names
    if not splits:
        raise DataError(folder, "no split lists (*.txt) found")
    return splits


def official_splits() -> dict[str, list[str]]:
    """The ScanNet v2 benchmark splits shipped with pcseg (1201 train / 312 val / 100 test)."""
    from pcseg.paths import RESOURCES_DIR

    return read_split_lists(RESOURCES_DIR / "scannet")


def prepare_scannet(
    raw: str | Path, out: str | Path, splits_dir: str | Path | None = None, label_map_path: str | Path | None = None,
    workers: int = 1, overwrite: bool = False, progress: bool = True, name: str = "scannet", **info,
):
    """Prepare a raw ScanNet folder into ``out`` (docs/contracts.md §1). Returns a PrepareReport.

    Args:
        raw: folder with ``scans/`` (and optionally ``scans_test/``) and the label tsv.
        out: prepared dataset folder.
        splits_dir: folder of split lists; default: the official lists shipped with pcseg.
        label_map_path: the label tsv; default ``<raw>/scannetv2-labels.combined.tsv``.
        workers: worker processes.
        overwrite: re-prepare scenes that are already complete.
        name: dataset name written to dataset.json.
    """
    from pcseg.data.classes import SCANNET20
    from pcseg.data.prepare import SceneJob, finish_dataset, prepare_scenes

    raw, out = Path(raw), Path(out)
    scenes = find_scenes(raw)
    splits = read_split_lists(splits_dir) if splits_dir is not None else official_splits()
    needs_labels = any(f.labelled for f in scenes.values())
    label_map = read_label_tsv(label_map_path or raw / LABEL_TSV) if needs_labels else None
    listed = [s for names in splits.values() for s in names]
    jobs = [SceneJob(s, read_scene, (scenes[s], label_map if scenes[s].labelled else None))
            for s in dict.fromkeys(listed) if s in scenes]
    report = prepare_scenes(out, jobs, workers=workers, overwrite=overwrite, progress=progress, desc=f"prepare {name}")
    report.missing = {split: [s for s in names if s not in scenes] for split, names in splits.items()}
    unlisted = sorted(set(scenes) - set(listed))
    if unlisted:
        report.warnings.append(f"{len(unlisted)} scene folder(s) are in no split list and were not prepared (e.g. {unlisted[0]})")
    finish_dataset(out, name, SCANNET20, splits, report, source=str(raw.resolve()),
                   label_map=str(Path(label_map_path or raw / LABEL_TSV).resolve()) if needs_labels else None,
                   splits_source=str(Path(splits_dir).resolve()) if splits_dir is not None else "pcseg/resources/scannet", **info)
    return report
