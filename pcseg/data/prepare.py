"""Turn raw datasets into the prepared format (docs/contracts.md §1), one scene per job.

The driver is the same for every dataset: it skips scenes already written, reads and writes the
others in worker processes (spawn-safe: jobs name module-level reader functions), shows a progress
bar, and never lets one bad scene lose the others' work. Failures are collected and reported at
the end; ``splits/*.txt`` list only scenes that exist on disk, so a prepared folder is always usable
and a second run retries just the failed scenes.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from pcseg.data.classes import ClassMap
from pcseg.data.scene import Scene, scene_is_complete, write_dataset_info, write_scene, write_split
from pcseg.utils.atomic import remove_stale_temporaries
from pcseg.utils.errors import PcsegError


@dataclass(frozen=True)
class SceneJob:
    """Read one scene with ``reader(*args) -> Scene`` and write it as ``name``."""

    name: str
    reader: Callable[..., Scene]
    args: tuple = ()


@dataclass
class PrepareReport:
    """Outcome of a preparation run."""

    prepared: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # split -> listed scenes not in the raw data

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"prepared {len(self.prepared)}, already done {len(self.skipped)}, failed {len(self.failed)}"]
        for split, names in sorted(self.missing.items()):
            if names:
                lines.append(f"split {split}: {len(names)} listed scene(s) not found in the raw data (e.g. {names[0]})")
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines += [f"  {w}" for w in self.warnings[:50]]
            if len(self.warnings) > 50:
                lines.append(f"  ... and {len(self.warnings) - 50} more")
        if self.failed:
            lines.append(f"{len(self.failed)} scene(s) FAILED:")
            lines += [f"  {name}: {msg}" for name, msg in sorted(self.failed.items())]
        return "\n".join(lines)


def default_workers() -> int:
    """Worker processes to use by default: the CPUs available to this process, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def _call(fn: Callable, args: tuple) -> tuple[bool, Any]:
    """Run one task; errors become a one-line message (PcsegError) or a short traceback summary."""
    try:
        return True, fn(*args)
    except PcsegError as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad scene must not stop the others
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return False, f"unexpected {type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"


def map_tasks(
    fn: Callable, task_args: Sequence[tuple], workers: int = 1, desc: str = "", progress: bool = True
) -> list[tuple[bool, Any]]:
    """Run ``fn(*args)`` for every args tuple, in worker processes if ``workers > 1``.

    Returns one ``(ok, result or error message)`` per task, in input order. A worker process that
    dies (out of memory, signal) marks the tasks it could not finish as failed instead of raising.
    ``fn`` must be a module-level function (spawned workers import it by name).
    """
    from tqdm import tqdm

    results: list[tuple[bool, Any] | None] = [None] * len(task_args)
    bar = tqdm(total=len(task_args), desc=desc, unit="scene", disable=not progress or not task_args,
               file=sys.stderr, dynamic_ncols=True)
    try:
        if workers <= 1 or len(task_args) <= 1:
            for i, args in enumerate(task_args):
                results[i] = _call(fn, args)
                bar.update(1)
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(task_args)), mp_context=ctx) as pool:
                futures = {pool.submit(_call, fn, args): i for i, args in enumerate(task_args)}
                for fut in as_completed(futures):
                    i = futures[fut]
                    try:
                        results[i] = fut.result()
                    except BrokenProcessPool:
                        results[i] = (False, "worker process died (out of memory or killed)")
                    except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
                        results[i] = (False, f"unexpected {type(exc).__name__}: {exc}")
                    bar.update(1)
    finally:
        bar.close()
    return [r if r is not None else (False, "not run") for r in results]


def _prepare_one(out_root: str, job: SceneJob) -> list[str]:
    """Worker body: read the scene, write it atomically, return its warnings."""
    scene = job.reader(*job.args)
    if scene.name != job.name:
        raise PcsegError(f"reader returned scene {scene.name!r} for job {job.name!r}")
    warnings = list(scene.meta.get("warnings", []))
    write_scene(out_root, scene)
    return warnings


def prepare_scenes(
    out_root: str | Path, jobs: Iterable[SceneJob], workers: int = 1, overwrite: bool = False,
    progress: bool = True, desc: str = "prepare",
) -> PrepareReport:
    """Prepare every job's scene under ``<out_root>/scenes`` (skipping complete ones unless ``overwrite``)."""
    out_root = Path(out_root)
    (out_root / "scenes").mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_root / "scenes")
    report = PrepareReport()
    todo: list[SceneJob] = []
    for job in jobs:
        if not overwrite and scene_is_complete(out_root / "scenes" / job.name):
            report.skipped.append(job.name)
        else:
            todo.append(job)
    results = map_tasks(_prepare_one, [(str(out_root), job) for job in todo], workers=workers, desc=desc, progress=progress)
    for job, (ok, value) in zip(todo, results):
        if ok:
            report.prepared.append(job.name)
            report.warnings.extend(value)
        else:
            report.failed[job.name] = value
    return report


def finish_dataset(
    out_root: str | Path, name: str, class_map: ClassMap, splits: dict[str, list[str]], report: PrepareReport, **info: Any
) -> dict[str, list[str]]:
    """Write ``splits/*.txt`` (only scenes present on disk, in list order) and ``dataset.json``.

    Returns the split lists as written.
    """
    out_root = Path(out_root)
    written: dict[str, list[str]] = {}
    for split, names in splits.items():
        present = [n for n in names if scene_is_complete(out_root / "scenes" / n)]
        write_split(out_root, split, present)
        written[split] = present
    counts = {split: len(names) for split, names in written.items()}
    write_dataset_info(out_root, name, class_map, split_sizes=counts, failed_scenes=sorted(report.failed), **info)
    return written
