"""Who answers a round's queries.

- :class:`OracleAnnotator` reads the ground truth of the prepared dataset (experiments).
- :class:`ExportAnnotator` is for people: it writes the queried points (``queries.csv`` with scene,
  index and xyz; one prediction PLY per scene with the queried points marked ``selected`` for
  ``pcseg viz``; a README) and imports a filled-in CSV of answers. Until that CSV exists the round
  waits: ``pcseg al`` stops and ``pcseg al ... resume=true`` picks up from there.

Answers are ``scene -> (point indices, class ids)``; -1 means "asked, no usable answer".
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from pcseg.data.classes import ClassMap
from pcseg.utils.atomic import atomic_directory, atomic_write_text
from pcseg.utils.errors import ConfigError, DataError

Answers = dict[str, tuple[np.ndarray, np.ndarray]]
#: scene -> (N, C) probabilities of the current model (for the exported PLYs), or None
ProbsLoader = Callable[[str], "np.ndarray | None"]

QUERY_COLUMNS = ("scene", "index", "x", "y", "z", "predicted", "label")
IGNORE_WORDS = {"-1", "ignore", "unknown", "?"}


@dataclass
class QueryContext:
    """What an annotator may need besides the query.

    Attributes:
        dataset: the prepared dataset (``pcseg.data.scene.PreparedDataset``).
        round_dir: this round's folder in the AL run (exports go below it).
        round_index: the round whose model produced the query (-1 = initial labels).
        resume_hint: the command that continues the run once answers exist.
        probs: optional loader of the current model's point probabilities per scene.
    """

    dataset: object
    round_dir: Path
    round_index: int
    resume_hint: str = ""
    probs: ProbsLoader | None = None


class Annotator:
    """Answers a query, or returns None when the answers are not available yet."""

    name = "base"

    def answer(self, query: Mapping[str, np.ndarray], ctx: QueryContext) -> Answers | None:
        raise NotImplementedError


class OracleAnnotator(Annotator):
    """Ground truth of the prepared scenes (``segment.npy``), as HPAL's experiments use."""

    name = "oracle"

    def answer(self, query: Mapping[str, np.ndarray], ctx: QueryContext) -> Answers:
        out: Answers = {}
        for scene, idx in query.items():
            seg = ctx.dataset.load(scene, mmap=True).segment  # type: ignore[attr-defined]
            if seg is None:
                raise DataError(ctx.dataset.scene_dir(scene),  # type: ignore[attr-defined]
                                "has no ground truth (segment.npy): the oracle annotator needs labelled scenes; "
                                "use al.annotator=export to ask a person")
            idx = np.asarray(idx, dtype=np.int64)
            out[scene] = (idx, np.asarray(seg[idx], dtype=np.int32))
        return out


class ExportAnnotator(Annotator):
    """Export the queries for a person and import their CSV.

    Args:
        class_map: the dataset's classes (answers may name them or give their ids).
        answers_path: where the filled-in CSV is read from; default ``<round_dir>/answers.csv``.
    """

    name = "export"

    def __init__(self, class_map: ClassMap, answers_path: str | Path | None = None):
        self.class_map = class_map
        self.answers_path = Path(answers_path) if answers_path else None

    def query_dir(self, ctx: QueryContext) -> Path:
        return ctx.round_dir / "query"

    def default_answers_path(self, ctx: QueryContext) -> Path:
        return ctx.round_dir / "answers.csv"

    def answer(self, query: Mapping[str, np.ndarray], ctx: QueryContext) -> Answers | None:
        qdir = self.query_dir(ctx)
        if not (qdir / "queries.csv").is_file():
            export_queries(qdir, query, ctx, self.class_map, self.default_answers_path(ctx))
        path = self.answers_path or self.default_answers_path(ctx)
        if not path.is_file():
            return None
        return import_answers(path, query, self.class_map)


def build_annotator(name: str, class_map: ClassMap, answers_path: str | Path | None = None) -> Annotator:
    if name == "oracle":
        return OracleAnnotator()
    if name == "export":
        return ExportAnnotator(class_map, answers_path)
    raise ConfigError(f"al.annotator={name!r} is not one of oracle, export")


# --------------------------------------------------------------------------- export
def export_queries(qdir: Path, query: Mapping[str, np.ndarray], ctx: QueryContext, class_map: ClassMap,
                   answers_path: Path) -> None:
    """Write ``queries.csv``, ``<scene>.ply`` per queried scene and ``README.txt`` into ``qdir`` (atomically)."""
    from pcseg.data.predictions import write_prediction_ply

    with atomic_directory(qdir) as tmp:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(QUERY_COLUMNS)
        for scene, idx in query.items():
            sc = ctx.dataset.load(scene, mmap=True)  # type: ignore[attr-defined]
            idx = np.asarray(idx, dtype=np.int64)
            probs = ctx.probs(scene) if ctx.probs is not None else None
            pred = (np.asarray(probs).argmax(1).astype(np.int32) if probs is not None
                    else np.full(sc.num_points, class_map.ignore_index, dtype=np.int32))
            selected = np.zeros(sc.num_points, dtype=bool)
            selected[idx] = True
            write_prediction_ply(tmp / f"{scene}.ply", np.asarray(sc.coord), pred, class_map, selected=selected,
                                 color=np.asarray(sc.color, dtype=np.uint8), scene=scene)
            xyz = np.asarray(sc.coord[idx], dtype=np.float64)
            for i, p in zip(idx.tolist(), xyz):
                guess = class_map.names[pred[i]] if pred[i] >= 0 else ""
                writer.writerow([scene, i, f"{p[0]:.4f}", f"{p[1]:.4f}", f"{p[2]:.4f}", guess, ""])
        (tmp / "queries.csv").write_text(buf.getvalue())
        n = sum(len(v) for v in query.values())
        (tmp / "README.txt").write_text(
            f"pcseg active learning: {n} point(s) in {len(query)} scene(s) need a label.\n\n"
            f"1. Look at the points: `pcseg viz {qdir}/<scene>.ply` shows each scene coloured by the current\n"
            f"   prediction, with the queried points marked (PLY property 'selected' = 1).\n"
            f"2. Copy queries.csv to {answers_path} and fill the 'label' column of every row with a class\n"
            f"   name or id ({class_map.name}: " + ", ".join(f"{i} {c}" for i, c in enumerate(class_map.names))
            + "),\n   or -1 / ignore when the point cannot be labelled. 'predicted' is the model's guess.\n"
            f"   Only the columns scene, index and label are read; keep one row per queried point.\n"
            f"3. Continue the run: {ctx.resume_hint or 'pcseg al <experiment> resume=true'}\n"
        )


# --------------------------------------------------------------------------- import
def parse_label(value: str, class_map: ClassMap) -> int | None:
    """A class id from a CSV cell: an id, a class name (case-insensitive) or -1/ignore; None if invalid."""
    v = value.strip()
    if v.lower() in IGNORE_WORDS:
        return -1
    try:
        i = int(v)
    except ValueError:
        lowered = {n.lower(): k for k, n in enumerate(class_map.names)}
        return lowered.get(v.lower())
    return i if 0 <= i < class_map.num_classes else None


def import_answers(path: str | Path, query: Mapping[str, np.ndarray], class_map: ClassMap) -> Answers:
    """Read a person's answers and check them against the query.

    The CSV needs a header with at least ``scene``, ``index`` and ``label``; every queried point must
    appear exactly once and nothing else may.

    Raises:
        DataError: naming the file (and line) of the first problem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read the answers ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("scene", "index", "label") if c not in header]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)} in the header (need scene, index, label)", line=1)
    reader.fieldnames = header
    wanted = {s: {int(i): k for k, i in enumerate(np.asarray(idx).tolist())} for s, idx in query.items()}
    got = {s: np.full(len(v), np.iinfo(np.int32).min, dtype=np.int64) for s, v in wanted.items()}
    for line, row in enumerate(reader, start=2):
        scene, index = (row.get("scene") or "").strip(), (row.get("index") or "").strip()
        label = row.get("label") or ""
        if not scene and not index and not label.strip():
            continue  # blank line
        if scene not in wanted:
            raise DataError(path, f"scene {scene!r} was not queried in this round", line=line)
        try:
            i = int(index)
        except ValueError:
            raise DataError(path, f"index {index!r} is not an integer", line=line) from None
        pos = wanted[scene].get(i)
        if pos is None:
            raise DataError(path, f"point {i} of scene {scene} was not queried in this round", line=line)
        if got[scene][pos] != np.iinfo(np.int32).min:
            raise DataError(path, f"point {i} of scene {scene} is answered twice", line=line)
        if not label.strip():
            raise DataError(path, f"point {i} of scene {scene} has an empty label (use -1 or 'ignore' to skip it)",
                            line=line)
        cls = parse_label(label, class_map)
        if cls is None:
            raise DataError(path, f"label {label.strip()!r} is neither a class of {class_map.name} nor an id in "
                                  f"[0, {class_map.num_classes}) nor -1/ignore", line=line)
        got[scene][pos] = cls
    unanswered = [(s, int(np.asarray(query[s])[k])) for s, arr in got.items()
                  for k in np.flatnonzero(arr == np.iinfo(np.int32).min)]
    if unanswered:
        s, i = unanswered[0]
        raise DataError(path, f"{len(unanswered)} queried point(s) have no answer (first: scene {s}, index {i})")
    return {s: (np.asarray(query[s], dtype=np.int64), got[s].astype(np.int32)) for s in query}


def write_answers_csv(path: str | Path, answers: Answers, class_map: ClassMap) -> None:
    """Write answers in the import format (used to keep a copy of what was imported, and by tests)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("scene", "index", "label"))
    for scene, (idx, lab) in answers.items():
        for i, c in zip(np.asarray(idx).tolist(), np.asarray(lab).tolist()):
            w.writerow((scene, i, class_map.names[c] if c >= 0 else "ignore"))
    atomic_write_text(path, buf.getvalue())
