"""``pcseg prepare synthetic``: generate rooms, write both raw layouts, prepare both with the real readers.

```
<out>/raw_scannet/scans/<scene>/...          raw ScanNet v2 layout (+ scannetv2-labels.combined.tsv,
                  splits/scannetv2_{train,val}.txt)
<out>/raw_s3dis/Area_<k>/<room>/Annotations/  raw S3DIS layout (val rooms in Area_5)
<out>/scannet/                                prepared, scannet20 (the quick-start dataset)
<out>/s3dis/                                  prepared, s3dis13
<out>/{scannet,s3dis}/labels/{0.1pct,0.01pct}.pth  class-even weak labels of the train rooms
<out>/synthetic.json                          what was generated (seed, rooms, names, splits, points)
<out>/rooms/<scene>.json                      per-room record, written last (= room done)
```
Room ``i`` depends only on (seed, i), so the dataset is the same for any number of workers and an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pcseg.data.prepare import PrepareReport, map_tasks
from pcseg.data.synthetic.layout import S3DIS_ROOM_TYPE
from pcseg.data.synthetic.room import generate_room, room_type_for
from pcseg.data.synthetic.writers import write_label_tsv, write_s3dis_room, write_scannet_scene
from pcseg.utils.atomic import atomic_write_json, atomic_write_text
from pcseg.utils.rng import numpy_rng

GENERATOR_VERSION = 1
# 96 training rooms: with the 24 of a 32-room set the CPU recipe overfits (docs/sparse.md "Training on a CPU")
DEFAULT_NUM_SCENES = 104
MAX_DEFAULT_VAL = 8  # val rooms by default: a quarter of the rooms, at most 8 (evaluation stays seconds)
TRAIN_AREAS = (1, 2, 3, 4, 6)
VAL_AREA = 5


@dataclass(frozen=True)
class RoomPlan:
    """Names and split of one synthetic room."""

    index: int
    split: str
    room_type: str
    scannet_name: str
    area: str
    s3dis_room: str

    @property
    def s3dis_scene(self) -> str:
        return f"{self.area}_{self.s3dis_room}"


def plan_rooms(num_scenes: int, num_val: int | None = None) -> list[RoomPlan]:
    """Room names and splits: the last ``num_val`` rooms are val (S3DIS Area_5).

    The default ``num_val`` is a quarter of the rooms, at most ``MAX_DEFAULT_VAL``: 32 rooms give 24 + 8, the
    default 104 give 96 + 8. Room ``i`` is the same room whatever ``num_scenes`` is; only its split can change.
    """
    if num_scenes < 1:
        raise ValueError("need at least one scene")
    num_val = min(MAX_DEFAULT_VAL, max(1, round(num_scenes / 4))) if num_val is None else num_val
    num_val = min(num_val, num_scenes - 1) if num_scenes > 1 else 0
    plans = []
    per_type: dict[tuple[str, str], int] = {}
    for i in range(num_scenes):
        split = "train" if i < num_scenes - num_val else "val"
        area = f"Area_{VAL_AREA}" if split == "val" else f"Area_{TRAIN_AREAS[i % len(TRAIN_AREAS)]}"
        rtype = room_type_for(i)
        key = (area, S3DIS_ROOM_TYPE[rtype])
        per_type[key] = per_type.get(key, 0) + 1
        plans.append(RoomPlan(i, split, rtype, f"synth{i:04d}_00", area, f"{key[1]}_{per_type[key]}"))
    return plans


def _remove_room(root: Path, scannet_name: str, area: str, s3dis_room: str) -> None:
    """Delete every file of a room (raw and prepared), so a regenerated room never mixes with stale data."""
    (root / "rooms" / f"{scannet_name}.json").unlink(missing_ok=True)
    for folder in (root / "raw_scannet" / "scans" / scannet_name, root / "raw_s3dis" / area / s3dis_room,
                   root / "scannet" / "scenes" / scannet_name, root / "s3dis" / "scenes" / f"{area}_{s3dis_room}"):
        shutil.rmtree(folder, ignore_errors=True)


def build_room(out: str, plan: dict[str, Any], seed: int) -> dict[str, Any]:
    """Worker: generate one room and write it in both raw layouts; returns its record."""
    p = RoomPlan(**plan)
    root = Path(out)
    _remove_room(root, p.scannet_name, p.area, p.s3dis_room)
    room = generate_room(p.index, seed, p.room_type)
    write_scannet_scene(root / "raw_scannet", p.scannet_name, room, numpy_rng(seed, "synthetic-segments", p.index))
    write_s3dis_room(root / "raw_s3dis", p.area, p.s3dis_room, room)
    counts = np.bincount(room.scannet20()[room.scannet20() >= 0], minlength=20)
    record = {**plan, "seed": seed, "generator_version": GENERATOR_VERSION, "num_points": room.num_points,
              "objects": [c for c, _ in room.objects], "scannet20_counts": counts.tolist()}
    atomic_write_json(root / "rooms" / f"{p.scannet_name}.json", record)
    return record


def _done(out: Path, plan: RoomPlan, seed: int) -> dict[str, Any] | None:
    path = out / "rooms" / f"{plan.scannet_name}.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    ok = (rec.get("seed") == seed and rec.get("generator_version") == GENERATOR_VERSION and rec.get("area") == plan.area
          and rec.get("s3dis_room") == plan.s3dis_room)
    if not ok and "area" in rec and "s3dis_room" in rec:
        _remove_room(out, plan.scannet_name, rec["area"], rec["s3dis_room"])  # names of the old plan
    return rec if ok else None


@dataclass
class SyntheticReport:
    generated: int
    reused: int
    failed: dict[str, str]
    scannet: PrepareReport
    s3dis: PrepareReport

    @property
    def ok(self) -> bool:
        return not self.failed and self.scannet.ok and self.s3dis.ok


def generate_dataset(out: str | Path, num_scenes: int = DEFAULT_NUM_SCENES, seed: int = 0, num_val: int | None = None, workers: int = 1,
                     progress: bool = True, overwrite: bool = False) -> SyntheticReport:
    """Generate ``num_scenes`` rooms under ``out`` and prepare them (see the module doc)."""
    from pcseg.data.s3dis import prepare_s3dis
    from pcseg.data.scannet import prepare_scannet

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plans = plan_rooms(num_scenes, num_val)
    planned = {p.scannet_name for p in plans}
    for stale in sorted((out / "rooms").glob("*.json")):  # rooms of an earlier, larger run
        if stale.stem not in planned:
            try:
                rec = json.loads(stale.read_text())
                _remove_room(out, stale.stem, rec["area"], rec["s3dis_room"])
            except (OSError, json.JSONDecodeError, KeyError):
                stale.unlink(missing_ok=True)
    records: dict[int, dict[str, Any]] = {}
    todo = []
    for p in plans:
        rec = _done(out, p, seed)
        if rec is None or overwrite:
            todo.append(p)
        else:
            records[p.index] = rec
    results = map_tasks(build_room, [(str(out), asdict(p), seed) for p in todo], workers=workers, desc="generate rooms",
                        progress=progress)
    failed = {}
    for p, (ok, value) in zip(todo, results):
        if ok:
            records[p.index] = value
        else:
            failed[p.scannet_name] = value
    good = [p for p in plans if p.index in records]

    raw_scannet = out / "raw_scannet"
    write_label_tsv(raw_scannet, [[(c, True) for c in records[p.index]["objects"]] for p in good])
    for split in ("train", "val"):
        names = [p.scannet_name for p in good if p.split == split]
        atomic_write_text(raw_scannet / "splits" / f"scannetv2_{split}.txt", "".join(f"{n}\n" for n in names))
    atomic_write_json(out / "synthetic.json", {
        "generator_version": GENERATOR_VERSION, "seed": seed, "num_scenes": num_scenes,
        "rooms": [{k: records[p.index][k] for k in ("index", "split", "room_type", "scannet_name", "area", "s3dis_room", "num_points")}
                  for p in good],
        "failed": failed,
    })
    info = {"synthetic": {"seed": seed, "num_scenes": num_scenes, "generator_version": GENERATOR_VERSION}}
    scannet = prepare_scannet(raw_scannet, out / "scannet", splits_dir=raw_scannet / "splits", workers=workers, overwrite=overwrite,
                              progress=progress, name="synthetic-scannet", **info)
    s3dis = prepare_s3dis(out / "raw_s3dis", out / "s3dis", val_area=VAL_AREA, workers=workers, overwrite=overwrite, progress=progress,
                          name="synthetic-s3dis", **info)
    if scannet.ok and s3dis.ok:
        for prepared in (out / "scannet", out / "s3dis"):
            write_standard_weak_labels(prepared, seed=seed, overwrite=overwrite or bool(todo))
    return SyntheticReport(len(todo) - len(failed), len(plans) - len(todo), failed, scannet, s3dis)


#: The weak-label files the synthetic experiments read (``data.weak_labels``): name -> class-even ratio.
STANDARD_WEAK_LABELS = {"0.1pct.pth": 1e-3, "0.01pct.pth": 1e-4}


def write_standard_weak_labels(prepared: Path, seed: int = 0, overwrite: bool = False) -> list[Path]:
    """Write ``<prepared>/labels/{0.1pct,0.01pct}.pth`` (class-even, train split) so that the
    ``cpcm_synthetic``/``sparse_synthetic``/... experiments run right after ``pcseg prepare synthetic``.
    Same as ``pcseg labels make --data <prepared> --ratio R --seed <seed>``; existing files are kept
    unless ``overwrite`` (rooms were regenerated)."""
    from pcseg.data import weak_labels as wl
    from pcseg.data.scene import open_dataset

    written = []
    dataset = open_dataset(prepared)
    for name, ratio in STANDARD_WEAK_LABELS.items():
        path = prepared / "labels" / name
        if path.is_file() and not overwrite:
            continue
        labels, meta = wl.make_weak_labels(dataset, "train", ratio=ratio, seed=seed)
        wl.save(path, labels, meta)
        written.append(path)
    return written
