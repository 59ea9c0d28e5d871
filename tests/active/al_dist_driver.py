"""Run a small HPAL active-learning loop in this process (or as one rank under torchrun), for
tests/active/test_distributed_al.py.

The round's "training" writes a real network checkpoint with weights keyed by the round (built on
rank 0, the others wait, like the engine), so inference, HMMU scoring, FDS and the selection run for
real while the weights stay identical between a 1-process and a 2-process run. Every annotator call
is recorded in ``<run_dir>/asked_rank<r>.txt``.

    python tests/active/al_dist_driver.py DATA_ROOT RUN_DIR [hydra overrides...]
    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/active/al_dist_driver.py ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def keyed_checkpoint_trainer(cfg, weak_labels=None):
    """Stand-in for ``pcseg.engine.train``: a deterministic random-init network per round."""
    from pcseg.engine import distributed as distm
    from pcseg.engine.checkpoint import save_checkpoint
    from pcseg.engine.data import feature_channels
    from pcseg.engine.trainer import build_network

    dist = distm.current()
    run_dir = Path(cfg.run_dir)
    if dist.is_main:
        round_index = int(run_dir.parent.name.split("_")[1])
        torch.manual_seed(1000 + round_index)
        model = build_network(cfg, feature_channels(cfg.data.feature_mode), 20)
        with torch.no_grad():  # a little spread in the logits, so margins and FDS have something to do
            for p in model.parameters():
                p.mul_(1.5)
        state = {"model": model.state_dict(), "feature_mode": cfg.data.feature_mode}
        save_checkpoint(run_dir / "checkpoints" / "best.pt", state)
        save_checkpoint(run_dir / "checkpoints" / "last.pt", state)
        (run_dir / "eval_best.json").write_text(json.dumps({"point": {"miou": 0.1}, "voxel": {"miou": 0.1}}))
    distm.barrier()

    class Result:
        best_metric = 0.1

    return Result()


def main() -> int:
    data_root, run_dir, *overrides = sys.argv[1:]
    import pcseg.active.loop as loop
    from pcseg.cli.al import compose_al_config
    from pcseg.engine import distributed as distm

    real_build = loop.build_annotator

    def recording_build(*args, **kwargs):
        annotator = real_build(*args, **kwargs)
        answer = annotator.answer

        def recorded(query, ctx):
            with open(Path(run_dir) / f"asked_rank{distm.current().rank}.txt", "a") as fh:
                fh.write(f"{ctx.round_index} {sum(len(v) for v in query.values())}\n")
            return answer(query, ctx)

        annotator.answer = recorded
        return annotator

    loop.build_annotator = recording_build
    cfg = compose_al_config("hpal_synthetic", [
        f"data.root={data_root}", f"run_dir={run_dir}", "data.voxel_size=0.2", "data.num_workers=0", "model.width=0.125",
        "trainer.progress=false", "al.threads=1", "al.keep_inference=true", "device=cpu", *overrides])
    try:
        outcome = loop.ActiveLearningRun(cfg, "hpal_synthetic", train_fn=keyed_checkpoint_trainer).run()
    finally:
        distm.cleanup()
    return 0 if outcome.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
