"""The active-learning run: rounds of train -> infer -> score/select -> annotate -> commit, resumable.

Run folder (``run_dir``, default ``outputs/<name>/<strategy>-seed<seed>``)::

    al.json                      what the run is (the settings that must not change on resume)
    config.yaml                  the composed config
    status.json                  the current round and phase (for people and for kill tests)
    labels/round_00.npz          the label set round 0 trains on (initial labels), then round_01 ...
    labels/round_00.pt (+.json)  the same set in the weak-label format (`pcseg train data.weak_labels=`)
    rounds/init/                 selection.npz, answers.npz of the initial labels (query/ for people)
    rounds/round_00/train/       the engine's run folder (checkpoints/{last,best}.pt, metrics.jsonl, ...)
    rounds/round_00/round.json   the round's metrics (written when its training is complete)
    rounds/round_00/inference/   per-scene probabilities / features (removed once the labels are committed)
    rounds/round_00/selection.npz + selection.json   the queried points in pick order, walk statistics
    rounds/round_00/answers.npz  the annotator's answers
    summary.json, summary.md     mIoU and labelled fraction after every round

Every file is written atomically and every phase is decided by which files exist, so a run killed
at any moment resumes (``resume=true``) where it stopped: training continues from its last
checkpoint, inference from the scenes not yet written, a selection once written is never recomputed
(so nobody is asked twice), answers once saved are never asked for again, and a label set is committed
exactly once.

Under ``torchrun`` (several processes) every process runs this loop: training is the engine's DDP
training, inference and scoring split the scenes over the ranks (``i % world_size == rank``, see
``pcseg.active.sharding``), and rank 0 alone decides from the files, runs the global selection walk,
asks the annotator and writes every state file; the other ranks wait for its decisions (broadcast)
and read what it wrote. The run folder must therefore be visible to all ranks (one machine, or a
shared filesystem across nodes).
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pcseg.active.annotators import Answers, QueryContext, build_annotator, write_answers_csv
from pcseg.active.labels import LabelSet, initial_selection
from pcseg.active.selection import budget_from_percent
from pcseg.active.strategies import strategy_from_config
from pcseg.utils.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, remove_stale_temporaries
from pcseg.utils.errors import ConfigError, DataError, PcsegError

FORMAT_VERSION = 1
#: settings that define the run: changing them on resume would mix two different experiments
FINGERPRINT_KEYS = ("al.strategy", "al.budget_percent", "al.budget_points", "al.init", "al.hmmu", "al.fds",
                    "al.trainer", "seed", "data.root", "data.train_split")
#: test hook: seconds to sleep inside each phase, widening the windows the kill tests aim at
DELAY_ENV = "PCSEG_AL_TEST_DELAY"


@dataclass
class ALOutcome:
    """How ``run`` ended: ``done`` (all rounds trained) or ``waiting`` (for a person's answers)."""

    status: str
    run_dir: Path
    rounds_done: int
    message: str = ""


def _select_key(cfg: DictConfig, dotted: str) -> Any:
    node = OmegaConf.select(cfg, dotted)
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def default_run_dir(cfg: DictConfig) -> Path:
    from pcseg.paths import repo_root

    base = (repo_root() or Path.cwd()) / "outputs"
    return base / str(cfg.name) / f"{cfg.al.strategy}-seed{cfg.seed}"


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _save_query(path: Path, query: dict[str, np.ndarray], scores: np.ndarray | None = None) -> None:
    """A query in pick order: flat (scene, index) pairs."""
    names = list(query)
    scene_of = np.concatenate([np.full(len(query[s]), k, np.int64) for k, s in enumerate(names)]) if names else np.zeros(0, np.int64)
    index = np.concatenate([np.asarray(query[s], np.int64) for s in names]) if names else np.zeros(0, np.int64)
    _save_npz(path, scenes=np.array(names, dtype=np.str_), scene_of=scene_of, index=index,
              score=scores if scores is not None else np.zeros(0))


def _load_query(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            names, scene_of, index = [str(s) for s in z["scenes"]], z["scene_of"], z["index"]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(path, f"unreadable selection ({exc})") from None
    return {s: index[scene_of == k].astype(np.int64) for k, s in enumerate(names)}


def _save_answers(path: Path, answers: Answers) -> None:
    names = list(answers)
    _save_npz(
        path,
        scenes=np.array(names, dtype=np.str_),
        counts=np.array([len(answers[s][0]) for s in names], np.int64),
        index=np.concatenate([answers[s][0] for s in names]).astype(np.int64) if names else np.zeros(0, np.int64),
        label=np.concatenate([answers[s][1] for s in names]).astype(np.int32) if names else np.zeros(0, np.int32),
    )


def _load_answers(path: Path) -> Answers:
    try:
        with np.load(path, allow_pickle=False) as z:
            names, counts, index, label = [str(s) for s in z["scenes"]], z["counts"], z["index"], z["label"]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(path, f"unreadable answers ({exc})") from None
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return {s: (index[a:b], label[a:b]) for s, a, b in zip(names, bounds[:-1], bounds[1:])}


class ActiveLearningRun:
    """One AL experiment over the training split of a prepared dataset.

    Args:
        cfg: composed config with an ``al`` node (configs/al/default.yaml).
        experiment: the experiment name (for messages).
        train_fn: the training entry point (``pcseg.engine.train``), replaceable in tests.
    """

    def __init__(self, cfg: DictConfig, experiment: str | None = None, train_fn: Callable[..., Any] | None = None):
        from pcseg.data.scene import open_dataset

        if cfg.get("al") is None:
            raise ConfigError(f"experiment {experiment!r} has no `al` section: active-learning experiments are the "
                              "hpal_* ones (or add `- /al: default` to the experiment's defaults)")
        self.cfg = cfg
        self.al = cfg.al
        self.experiment = experiment or str(cfg.get("name"))
        self.dir = Path(cfg.run_dir).expanduser().resolve() if cfg.get("run_dir") else default_run_dir(cfg)
        self.dataset = open_dataset(cfg.data.root)
        self.class_map = self.dataset.class_map
        self.scenes = self.dataset.split(cfg.data.train_split)
        if not self.scenes:
            raise DataError(self.dataset.root, f"split {cfg.data.train_split!r} lists no scenes")
        self.num_points = {s: self.dataset.num_points(s) for s in self.scenes}
        self.total_points = int(sum(self.num_points.values()))
        if self.al.get("budget_points") is not None:
            self.budget = int(self.al.budget_points)
        else:
            self.budget = budget_from_percent(self.total_points, float(self.al.budget_percent))
        self.rounds = int(self.al.rounds)
        if self.rounds < 1:
            raise ConfigError(f"al.rounds must be >= 1, got {self.rounds}")
        self.train_fn = train_fn
        self.delay = float(os.environ.get(DELAY_ENV, "0") or 0)
        from pcseg.engine.distributed import init_distributed

        self.dist = init_distributed(str(cfg.get("device", "auto")))

    # ------------------------------------------------------------------ several processes
    def _on_main(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on rank 0 only and give its (small, picklable) result to every rank.

        This is the one way state files are written and file-based decisions taken, so all ranks follow
        the same path through the loop. An error on rank 0 is re-raised there and reported as a
        ``PcsegError`` with the same message on the others (instead of leaving them at a barrier).
        """
        if not self.dist.enabled:
            return fn()
        from pcseg.engine.distributed import broadcast_object

        result, error, failure = None, None, None
        if self.dist.is_main:
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the other ranks heard of it
                error, failure = exc, str(exc) or type(exc).__name__
        result, failure = broadcast_object((result, failure) if self.dist.is_main else None)
        if error is not None:
            raise error
        if failure is not None:
            raise PcsegError(f"rank 0 failed: {failure}")
        return result

    # ------------------------------------------------------------------ paths
    def labels_path(self, k: int) -> Path:
        return self.dir / "labels" / f"round_{k:02d}.npz"

    def round_dir(self, k: int) -> Path:
        return self.dir / "rounds" / f"round_{k:02d}"

    @property
    def init_dir(self) -> Path:
        return self.dir / "rounds" / "init"

    def resume_hint(self) -> str:
        return f"pcseg al {self.experiment} run_dir={self.dir} resume=true"

    # ------------------------------------------------------------------ bookkeeping
    def _fingerprint(self) -> dict[str, Any]:
        fp = {k: _select_key(self.cfg, k) for k in FINGERPRINT_KEYS}
        fp["data.root"] = str(Path(str(fp["data.root"])).expanduser().resolve())
        return fp

    def _open(self, resume: bool) -> None:
        meta_path = self.dir / "al.json"
        if meta_path.is_file():
            if not resume:
                raise ConfigError(f"{self.dir} already holds an active-learning run: pass resume=true to continue "
                                  "it, or another run_dir")
            meta = json.loads(meta_path.read_text())
            changed = [k for k, v in self._fingerprint().items() if meta.get("fingerprint", {}).get(k) != v]
            if changed:
                raise ConfigError(f"{self.dir} was started with other settings for {', '.join(changed)}; resume it with "
                                  "the original values or start a new run_dir")
            for folder in [self.dir, self.dir / "labels", *sorted((self.dir / "rounds").glob("*"))]:
                remove_stale_temporaries(folder)
                remove_stale_temporaries(folder / "inference")
            return
        if resume:
            raise ConfigError(f"no active-learning run to resume in {self.dir}")
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.dir / "config.yaml", OmegaConf.to_yaml(self.cfg, resolve=True))
        atomic_write_json(meta_path, {
            "format_version": FORMAT_VERSION, "experiment": self.experiment, "fingerprint": self._fingerprint(),
            "total_points": self.total_points, "budget_per_round": self.budget, "scenes": len(self.scenes),
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        })

    def _status(self, round_index: int, phase: str, **extra: Any) -> None:
        atomic_write_json(self.dir / "status.json", {"round": round_index, "phase": phase, "time": time.time(), **extra})

    def _pause(self) -> None:
        if self.delay:
            time.sleep(self.delay)

    def _log(self, msg: str) -> None:
        if self.dist.is_main:
            print(f"pcseg al: {msg}", flush=True)

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool = False) -> ALOutcome:
        self._on_main(lambda: self._open(resume))
        self._log(f"{self.dir}: {len(self.scenes)} training scenes, {self.total_points} points, {self.rounds} round(s), "
                  f"{self.budget} points asked per round ({self.al.strategy})"
                  + (f", {self.dist.world_size} processes" if self.dist.enabled else ""))
        if not self._acquire(-1, self.init_dir, self._initial_query, LabelSet(), self.labels_path(0)):
            return self._waiting(-1)
        for k in range(self.rounds):
            labels = LabelSet.load(self.labels_path(k))  # committed by rank 0 before its broadcast: safe to read
            if self._on_main(lambda k=k: not (self.round_dir(k) / "round.json").is_file()):
                if not (k == 0 and self._on_main(lambda labels=labels: self._reuse_round0(labels))):
                    self._train_round(k, labels)
            self._on_main(self._write_summary)
            if k == self.rounds - 1:
                break
            if not self._acquire(k, self.round_dir(k), lambda k=k, labels=labels: self._round_query(k, labels),
                                 labels, self.labels_path(k + 1)):
                return self._waiting(k)
            self._on_main(lambda k=k: self._cleanup(k))
        self._on_main(lambda: self._status(self.rounds - 1, "done"))
        self._log(f"done: {self.rounds} round(s); summary in {self.dir / 'summary.md'}")
        return ALOutcome("done", self.dir, self.rounds)

    def _waiting(self, k: int) -> ALOutcome:
        folder = self.init_dir if k < 0 else self.round_dir(k)
        msg = (f"waiting for answers: label the points listed in {folder / 'query' / 'queries.csv'} "
               f"(see README.txt there), save them as {self._answers_path(folder)}, then run `{self.resume_hint()}`")
        self._on_main(lambda: self._status(k, "waiting_for_answers", query=str(folder / "query")))
        self._log(msg)
        return ALOutcome("waiting", self.dir, max(k, 0), msg)

    def _answers_path(self, folder: Path) -> Path:
        return Path(self.al.answers) if self.al.get("answers") else folder / "answers.csv"

    # ------------------------------------------------------------------ acquisition (select + annotate + commit)
    def _acquire(self, k: int, folder: Path, make_query: Callable[[], tuple[dict, np.ndarray | None]],
                 labels: LabelSet, out_path: Path) -> bool:
        """Ask for one batch of labels and commit ``labels + answers`` to ``out_path``; False while waiting.

        ``make_query`` is called on every rank (it may be collective) and must return ``(query, scores)``
        on rank 0; everything after it happens on rank 0 alone.
        """
        if self._on_main(out_path.is_file):
            return True
        sel_path = folder / "selection.npz"
        if self._on_main(lambda: folder.mkdir(parents=True, exist_ok=True) or not sel_path.is_file()):
            made = make_query()

            def write() -> None:
                query, scores = made
                self._status(k, "writing_selection")
                self._pause()
                _save_query(sel_path, query, scores)

            self._on_main(write)
        return bool(self._on_main(lambda: self._annotate_and_commit(k, folder, labels, out_path)))

    def _annotate_and_commit(self, k: int, folder: Path, labels: LabelSet, out_path: Path) -> bool:
        """Rank 0: ask the annotator for the saved selection (once) and commit the new label set."""
        query = _load_query(folder / "selection.npz")
        ans_path = folder / "answers.npz"
        if not ans_path.is_file():
            self._status(k, "annotating")
            annotator = build_annotator(str(self.al.annotator), self.class_map,
                                        self.al.get("answers") if self.al.annotator == "export" else None)
            ctx = QueryContext(self.dataset, folder, k, self.resume_hint(), probs=self._probs_loader(k))
            answers = annotator.answer(query, ctx)
            if answers is None:
                return False
            if annotator.name == "export":
                write_answers_csv(folder / "answers_imported.csv", answers, self.class_map)
            _save_answers(ans_path, answers)
            self._pause()
        answers = _load_answers(ans_path)
        new = labels.union(answers)
        self._status(k, "committing_labels")
        # the .npz is the commit marker, so it is written last
        self._export_weak_labels(new, out_path.with_suffix(".pt"), k + 1)
        self._pause()
        new.save(out_path, {"round": k + 1, "points": len(new)})
        self._log(f"round {k + 1} labels: {len(new)} points ({100.0 * len(new) / self.total_points:.4f} % of the "
                  f"training points), {len(new) - len(labels)} new")
        return True

    def _export_weak_labels(self, labels: LabelSet, path: Path, round_index: int) -> None:
        try:
            labels.save_weak_labels(path, {"sampler": f"active:{self.al.strategy}", "round": round_index,
                                           "seed": int(self.cfg.seed), "dataset": str(self.cfg.data.root),
                                           "points": len(labels)})
        except ImportError:  # the data layer's weak-label module is optional for the AL state itself
            pass

    def _initial_query(self) -> tuple[dict[str, np.ndarray], None]:
        init = self.al.init
        if init.get("file"):
            from pcseg.data import weak_labels

            loaded = weak_labels.load(init.file)
            unknown = sorted(set(loaded) - set(self.scenes))
            if unknown:
                raise DataError(init.file, f"scene(s) not in the training split: {', '.join(unknown[:3])}")
            return {s: np.unique(np.asarray(v, np.int64)) for s, v in loaded.items() if len(v)}, None
        scenes = [(s, self.num_points[s]) for s in self.scenes]
        if init.get("points_per_scene") is not None:
            return initial_selection(scenes, int(self.cfg.seed), points_per_scene=int(init.points_per_scene)), None
        return initial_selection(scenes, int(self.cfg.seed), percent=float(init.percent)), None

    def _round_query(self, k: int, labels: LabelSet) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """Inference, scoring and selection of round ``k`` (collective); the query on rank 0, None elsewhere."""
        from pcseg.active.inference import feats_path, infer_scenes, probs_path
        from pcseg.active.scoring import PoolScene, npy_loader, select_from_pool, select_from_scores
        from pcseg.active.sharding import score_pool_sharded

        strategy = strategy_from_config(self.al, int(self.cfg.seed), k)
        fds_cfg = self.al.fds
        fds = strategy.fds_default if fds_cfg.get("enabled") is None else bool(fds_cfg.enabled)
        inf_dir = self.round_dir(k) / "inference"
        needs_model = strategy.needs_probs or fds
        rank, world = self.dist.rank, self.dist.world_size
        if needs_model:
            from pcseg.engine.trainer import resolve_device

            def prepare() -> None:
                self._status(k, "inference")
                inf_dir.mkdir(parents=True, exist_ok=True)
                remove_stale_temporaries(inf_dir)  # here, before any rank starts writing its own temporaries

            self._on_main(prepare)
            infer_scenes(self._round_cfg(k), self._checkpoint(k), inf_dir, self.scenes, self.dataset.num_classes,
                         feats_dtype=str(self.al.get("feature_dtype", "float16")),
                         device=resolve_device(str(self.cfg.get("device", "auto")), self.dist),
                         progress=bool(self.cfg.trainer.get("progress", True)) and self.dist.is_main,
                         pause_s=self.delay, rank=rank, world_size=world)
            self._on_main(lambda: None)  # every rank's scenes are written
        self._on_main(lambda: self._status(k, "selecting"))
        pool = []
        for s in self.scenes:
            pool.append(PoolScene(s, npy_loader(self.dataset.scene_dir(s) / "coord.npy"),
                                  labels.mask(s, self.num_points[s]),
                                  probs=npy_loader(probs_path(inf_dir, s)) if needs_model else None,
                                  feats=npy_loader(feats_path(inf_dir, s)) if needs_model else None))
        threads = int(self.al.get("threads", 1))
        if world == 1:
            sel = select_from_pool(pool, strategy, self.budget, fds, radius=float(fds_cfg.radius),
                                   cosine=float(fds_cfg.cosine), threads=threads)
        else:
            # each rank scores its scenes; rank 0 ranks the gathered scores and walks the ranking once
            gathered = score_pool_sharded(pool, strategy, rank, world, threads=threads)
            if gathered is None:
                return None
            sel = select_from_scores(pool, *gathered, self.budget, fds, radius=float(fds_cfg.radius),
                                     cosine=float(fds_cfg.cosine))
        r = sel.result
        atomic_write_json(self.round_dir(k) / "selection.json", {
            "strategy": strategy.name, "fds": fds, "budget": self.budget, "picked": int(len(sel.point_index)),
            "visited": r.visited, "suppressed_by_fds": r.suppressed, "skipped_labelled": r.skipped_labelled,
            "scenes_with_picks": int(len(np.unique(sel.scene_index))),
        })
        if len(sel.point_index) < self.budget:
            self._log(f"round {k}: only {len(sel.point_index)} of {self.budget} points could be selected (pool exhausted)")
        # the query keeps pick order inside each scene, scenes in order of their first pick
        query: dict[str, np.ndarray] = {}
        for si in dict.fromkeys(sel.scene_index.tolist()):
            query[self.scenes[si]] = sel.point_index[sel.scene_index == si]
        scores = np.concatenate([sel.score[sel.scene_index == si] for si in dict.fromkeys(sel.scene_index.tolist())]) \
            if len(sel.score) else np.zeros(0)
        self._pause()
        return query, scores

    def _probs_loader(self, k: int):
        if k < 0:
            return None
        from pcseg.active.inference import probs_path

        folder = self.round_dir(k) / "inference"

        def load(scene: str):
            p = probs_path(folder, scene)
            return np.load(p, mmap_mode="r") if p.is_file() else None

        return load

    def _cleanup(self, k: int) -> None:
        if self.al.get("keep_inference", False):
            return
        import shutil

        shutil.rmtree(self.round_dir(k) / "inference", ignore_errors=True)

    # ------------------------------------------------------------------ training
    def _checkpoint(self, k: int) -> Path:
        ckpt_dir = self.round_dir(k) / "train" / "checkpoints"
        which = str(self.al.get("checkpoint", "best"))
        path = ckpt_dir / f"{which}.pt"
        if not path.is_file():
            raise DataError(ckpt_dir, f"round {k} has no {which}.pt checkpoint")
        return path

    def _round_cfg(self, k: int) -> DictConfig:
        cfg = OmegaConf.create(OmegaConf.to_container(self.cfg, resolve=True))
        train_dir = self.round_dir(k) / "train"
        cfg.run_dir = str(train_dir)
        cfg.resume = bool(self._on_main((train_dir / "checkpoints" / "last.pt").is_file))
        if k > 0 and bool(self.al.get("warm_start", True)):
            cfg.init_checkpoint = str(self._checkpoint(k - 1))
        cfg.data.weak_labels = None
        cfg.name = f"{self.cfg.name}/round_{k:02d}"
        if k == 0 and self.al.get("round0_epochs"):
            cfg.trainer.epochs = int(self.al.round0_epochs)
            cfg.trainer.max_iterations = None
        return cfg

    def _train_round(self, k: int, labels: LabelSet) -> None:
        self._on_main(lambda: self._status(k, "training", labelled=len(labels)))
        cfg = self._round_cfg(k)
        self._log(f"round {k}: training on {len(labels)} labelled points "
                  f"({100.0 * len(labels) / self.total_points:.4f} %){' (resuming)' if cfg.resume else ''}")
        train = self.train_fn
        if train is None:
            from pcseg.engine import train
        t0 = time.time()
        result = train(cfg, weak_labels=labels.weak_labels())
        self._on_main(lambda: self._record_round(k, labels, result, time.time() - t0))

    def _record_round(self, k: int, labels: LabelSet, result: Any, seconds: float) -> None:
        train_dir = self.round_dir(k) / "train"
        ev_path = train_dir / "eval_best.json"
        ev = json.loads(ev_path.read_text()) if ev_path.is_file() else {}
        record = {
            "round": k,
            "labelled_points": len(labels),
            "labelled_fraction": len(labels) / self.total_points,
            "labelled_percent": 100.0 * len(labels) / self.total_points,
            "best_metric": float(getattr(result, "best_metric", float("nan"))),
            "best_metric_name": str(self.cfg.trainer.get("best_metric", "")),
            "miou_point": ev.get("point", {}).get("miou"),
            "miou_voxel": ev.get("voxel", {}).get("miou"),
            "checkpoint": str(self._checkpoint(k)),
            "seconds": seconds,
            "class_histogram": labels.class_histogram(self.dataset.num_classes).tolist(),
        }
        atomic_write_json(self.round_dir(k) / "round.json", record)

    def _reuse_round0(self, labels: LabelSet) -> bool:
        """Take round 0 (training, checkpoints, metrics) from ``al.round0_from``, another run with the
        same initial labels — e.g. the same seed under another strategy, whose round 0 is identical."""
        src = self.al.get("round0_from")
        if not src:
            return False
        import shutil

        from pcseg.utils.atomic import atomic_directory

        src = Path(src).expanduser().resolve()
        src_round = src / "rounds" / "round_00"
        if not (src_round / "round.json").is_file() or not (src / "labels" / "round_00.npz").is_file():
            self._log(f"al.round0_from={src}: its round 0 is not finished; training round 0 here")
            return False
        theirs = LabelSet.load(src / "labels" / "round_00.npz")
        same = theirs.indices.keys() == labels.indices.keys() and all(
            np.array_equal(theirs.indices[s], labels.indices[s]) and np.array_equal(theirs.labels[s], labels.labels[s])
            for s in labels.indices)
        if not same:
            raise ConfigError(f"al.round0_from={src}: its initial labels differ from this run's (other seed or init?)")
        self._status(0, "copying_round0", source=str(src))
        with atomic_directory(self.round_dir(0) / "train") as tmp:
            shutil.copytree(src_round / "train", tmp, dirs_exist_ok=True)
        record = json.loads((src_round / "round.json").read_text())
        record.update(checkpoint=str(self._checkpoint(0)), copied_from=str(src_round))
        atomic_write_json(self.round_dir(0) / "round.json", record)
        self._log(f"round 0: reused from {src_round} (same initial labels)")
        return True

    def round_records(self) -> list[dict]:
        out = []
        for k in range(self.rounds):
            p = self.round_dir(k) / "round.json"
            if p.is_file():
                out.append(json.loads(p.read_text()))
        return out

    def _write_summary(self) -> None:
        records = self.round_records()
        atomic_write_json(self.dir / "summary.json", {"experiment": self.experiment, "strategy": str(self.al.strategy),
                                                      "seed": int(self.cfg.seed), "rounds": records})
        pct = lambda x: "-" if x is None else f"{100 * x:.2f}"  # noqa: E731
        lines = [f"# {self.experiment}: {self.al.strategy}, trainer {self.cfg.method.name}, seed {self.cfg.seed}", "",
                 "| round | labelled points | labelled % | mIoU point | mIoU voxel |", "|---|---|---|---|---|"]
        for r in records:
            lines.append(f"| {r['round']} | {r['labelled_points']} | {r['labelled_percent']:.4f} | "
                         f"{pct(r['miou_point'])} | {pct(r['miou_voxel'])} |")
        atomic_write_text(self.dir / "summary.md", "\n".join(lines) + "\n")
