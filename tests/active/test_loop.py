"""The round loop's bookkeeping with a stand-in trainer: budgets, label sets, resume, waiting for people.

The real trainer is exercised end to end in tests/cli/test_al.py; here a fake training function
(which records what it was given and writes the files the engine writes) keeps the tests fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pcseg.active.labels import LabelSet
from pcseg.active.loop import ActiveLearningRun
from pcseg.engine.config import compose_config
from pcseg.utils.errors import ConfigError


class FakeTrainer:
    def __init__(self, crash_at_round: int | None = None):
        self.calls: list[dict] = []
        self.crash_at_round = crash_at_round

    def __call__(self, cfg, weak_labels=None):
        rnd = int(Path(cfg.run_dir).parent.name.split("_")[1])
        self.calls.append({"round": rnd, "resume": bool(cfg.resume), "init": cfg.init_checkpoint,
                           "epochs": int(cfg.trainer.epochs),
                           "labels": {k: v.copy() for k, v in weak_labels.items()}})
        if self.crash_at_round == rnd:
            self.crash_at_round = None
            raise KeyboardInterrupt("simulated crash during training")
        ckpt = Path(cfg.run_dir) / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)
        (ckpt / "best.pt").write_bytes(b"weights")
        (ckpt / "last.pt").write_bytes(b"weights")
        n = sum(len(v) for v in weak_labels.values())
        (Path(cfg.run_dir) / "eval_best.json").write_text(json.dumps({"point": {"miou": n / 1000}, "voxel": {"miou": n / 2000}}))

        class R:
            best_metric = n / 1000

        return R()


def config(root, run_dir, *extra):
    return compose_config("hpal_synthetic", [
        f"data.root={root}", f"run_dir={run_dir}", "al.strategy=random", "al.rounds=3", "al.budget_points=25",
        "al.init.points_per_scene=4", "trainer.progress=false", "trainer.epochs=8", *extra])


def test_budget_accounting_and_warm_start(tiny_dataset, tmp_path):
    fake = FakeTrainer()
    cfg = config(tiny_dataset, tmp_path / "run", "trainer.epochs=8", "al.round0_epochs=12")
    run = ActiveLearningRun(cfg, "hpal_synthetic", train_fn=fake)
    out = run.run()
    assert out.status == "done" and [c["round"] for c in fake.calls] == [0, 1, 2]
    sizes = [len(LabelSet.load(run.labels_path(k))) for k in range(3)]
    assert sizes == [12, 37, 62]  # 3 scenes x 4 initial points, then exactly 25 per round
    for k in range(1, 3):
        prev, cur = LabelSet.load(run.labels_path(k - 1)), LabelSet.load(run.labels_path(k))
        for s in prev.indices:
            assert np.isin(prev.indices[s], cur.indices[s]).all()  # nothing lost
        for s in cur.indices:
            assert np.unique(cur.indices[s]).size == cur.indices[s].size  # nothing twice
    # labels answered by the oracle = ground truth
    final = LabelSet.load(run.labels_path(2))
    for s in final.indices:
        np.testing.assert_array_equal(final.labels[s], run.dataset.load(s).segment[final.indices[s]])
    assert [c["epochs"] for c in fake.calls] == [12, 8, 8]  # round 0 from scratch gets its own length
    # round k trains on label set k and starts from round k-1's best checkpoint
    assert fake.calls[0]["init"] is None
    assert fake.calls[1]["init"].endswith("round_00/train/checkpoints/best.pt")
    assert sum(len(v) for v in fake.calls[2]["labels"].values()) == 62
    summary = json.loads((run.dir / "summary.json").read_text())
    assert [r["labelled_points"] for r in summary["rounds"]] == [12, 37, 62]
    assert "| 2 | 62 |" in (run.dir / "summary.md").read_text()
    assert json.loads((run.dir / "status.json").read_text())["phase"] == "done"


def test_round0_epochs(tiny_dataset, tmp_path):
    fake = FakeTrainer()
    ActiveLearningRun(config(tiny_dataset, tmp_path / "run", "al.round0_epochs=20", "al.rounds=2"), train_fn=fake).run()
    assert [c["epochs"] for c in fake.calls] == [20, 8]


def test_crash_in_training_resumes_with_the_same_labels(tiny_dataset, tmp_path):
    ref = ActiveLearningRun(config(tiny_dataset, tmp_path / "ref"), train_fn=FakeTrainer())
    ref.run()
    crashing = FakeTrainer(crash_at_round=1)
    cfg = config(tiny_dataset, tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        ActiveLearningRun(cfg, train_fn=crashing).run()
    resumed = ActiveLearningRun(config(tiny_dataset, tmp_path / "run", "resume=true"), train_fn=crashing)
    assert resumed.run(resume=True).status == "done"
    assert [c["round"] for c in crashing.calls] == [0, 1, 1, 2]  # round 0 is not trained again
    for k in range(3):
        a, b = LabelSet.load(ref.labels_path(k)), LabelSet.load(resumed.labels_path(k))
        assert a.indices.keys() == b.indices.keys()
        assert all(np.array_equal(a.indices[s], b.indices[s]) for s in a.indices)


def test_refuses_to_overwrite_or_to_resume_with_other_settings(tiny_dataset, tmp_path):
    ActiveLearningRun(config(tiny_dataset, tmp_path / "run"), train_fn=FakeTrainer()).run()
    with pytest.raises(ConfigError, match="resume=true"):
        ActiveLearningRun(config(tiny_dataset, tmp_path / "run"), train_fn=FakeTrainer()).run()
    with pytest.raises(ConfigError, match="al.budget_points"):
        ActiveLearningRun(config(tiny_dataset, tmp_path / "run", "al.budget_points=5"),
                          train_fn=FakeTrainer()).run(resume=True)
    with pytest.raises(ConfigError, match="no active-learning run"):
        ActiveLearningRun(config(tiny_dataset, tmp_path / "nothing"), train_fn=FakeTrainer()).run(resume=True)
    # more rounds later is fine: the run continues where it ended
    more = ActiveLearningRun(config(tiny_dataset, tmp_path / "run", "al.rounds=4"), train_fn=FakeTrainer())
    assert more.run(resume=True).status == "done"
    assert len(LabelSet.load(more.labels_path(3))) == 87


def test_export_annotator_waits_for_a_person(tiny_dataset, tmp_path):
    pytest.importorskip("plyfile")
    fake = FakeTrainer()
    cfg = config(tiny_dataset, tmp_path / "run", "al.annotator=export", "al.rounds=2")
    run = ActiveLearningRun(cfg, train_fn=fake)
    out = run.run()
    assert out.status == "waiting" and fake.calls == []
    qcsv = run.init_dir / "query" / "queries.csv"
    first_export = qcsv.read_text()
    rows = first_export.splitlines()
    assert len(rows) == 1 + 12

    def answer(csv_in: Path, csv_out: Path):
        lines = csv_in.read_text().splitlines()
        out_lines = [lines[0]]
        for row in lines[1:]:
            cells = row.split(",")
            cells[-1] = str(int(run.dataset.load(cells[0]).segment[int(cells[1])]))
            out_lines.append(",".join(cells))
        csv_out.write_text("\n".join(out_lines) + "\n")

    # resuming before anyone answered asks nothing new and still waits
    again = ActiveLearningRun(cfg, train_fn=fake).run(resume=True)
    assert again.status == "waiting" and qcsv.read_text() == first_export
    answer(qcsv, run.init_dir / "answers.csv")
    out = ActiveLearningRun(cfg, train_fn=fake).run(resume=True)
    assert out.status == "waiting" and [c["round"] for c in fake.calls] == [0]
    q0 = run.round_dir(0) / "query" / "queries.csv"
    assert len(q0.read_text().splitlines()) == 1 + 25
    answer(q0, run.round_dir(0) / "answers.csv")
    out = ActiveLearningRun(cfg, train_fn=fake).run(resume=True)
    assert out.status == "done" and [c["round"] for c in fake.calls] == [0, 1]
    labels = LabelSet.load(run.labels_path(1))
    assert len(labels) == 37
    for s in labels.indices:
        np.testing.assert_array_equal(labels.labels[s], run.dataset.load(s).segment[labels.indices[s]])


def test_round0_can_be_reused_from_a_run_with_the_same_initial_labels(tiny_dataset, tmp_path):
    ActiveLearningRun(config(tiny_dataset, tmp_path / "a"), train_fn=FakeTrainer()).run()
    fake = FakeTrainer()
    b = ActiveLearningRun(config(tiny_dataset, tmp_path / "b", "al.budget_points=10", f"al.round0_from={tmp_path / 'a'}",
                                 "al.round0_epochs=20"),
                          train_fn=fake)
    assert b.run().status == "done"
    assert [c["round"] for c in fake.calls] == [1, 2]  # round 0 was copied, not trained
    assert [c["epochs"] for c in fake.calls] == [8, 8]
    assert (b.round_dir(0) / "train" / "checkpoints" / "best.pt").is_file()
    assert fake.calls[0]["init"] == str(b.round_dir(0) / "train" / "checkpoints" / "best.pt")
    rec = json.loads((b.round_dir(0) / "round.json").read_text())
    assert rec["copied_from"].endswith("a/rounds/round_00") and rec["labelled_points"] == 12
    with pytest.raises(ConfigError, match="initial labels differ"):
        ActiveLearningRun(config(tiny_dataset, tmp_path / "c", "seed=5", f"al.round0_from={tmp_path / 'a'}"),
                          train_fn=FakeTrainer()).run()
