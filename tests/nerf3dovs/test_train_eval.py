"""A few CPU iterations through the real ns-train entry point (both stages), then ns-eval and the export.

Offline: the oracle encoders (no weights), no viewer, LPIPS never built, and nerfstudio's own checkpoint
loader with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (torch >= 2.6 defaults to weights_only loads).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("nerfstudio")
pytestmark = pytest.mark.nerfstudio


def _train_args(scene, out):
    return [
        "ovs-nerf", "--machine.device-type", "cpu", "--vis", "tensorboard", "--output-dir", str(out),
        "--experiment-name", "tiny", "--timestamp", "run", "--max-num-iterations", "8", "--steps-per-save", "100",
        "--steps-per-eval-image", "7", "--steps-per-eval-batch", "7", "--logging.steps-per-log", "4",
        "--pipeline.image-encoder", "oracle", "--pipeline.image-encoder-options", '{"embed_dim": 16}',
        "--pipeline.dense-encoder", "oracle", "--pipeline.dense-encoder-options", '{"embed_dim": 8}',
        "--pipeline.datamanager.feature-cache", str(out / "cache"), "--pipeline.datamanager.feature-view-fraction", "0.34",
        "--pipeline.datamanager.feature-downscale", "2",
        "--pipeline.datamanager.train-num-rays-per-batch", "64", "--pipeline.datamanager.feature-rays-per-batch", "64",
        "--pipeline.datamanager.eval-num-rays-per-batch", "64",
        "--pipeline.datamanager.fda-patches", "2", "--pipeline.datamanager.fda-patch-rays", "6",
        "--pipeline.datamanager.fda-ray-stride", "4",
        "--pipeline.model.recon-iters", "4", "--pipeline.model.seg-iters", "4", "--pipeline.model.joint-start-iter", "2",
        "--pipeline.model.num-samples", "24", "--pipeline.model.n-voxel-init", str(16**3),
        "--pipeline.model.n-voxel-final", str(24**3), "--pipeline.model.upsample-steps", "2",
        "--pipeline.model.alpha-mask-steps", "3", "--pipeline.model.eval-num-rays-per-chunk", "1024",
        "--data", str(scene), "ovs3d-data", "--downscale-factor", "1",
    ]


def test_train_eval_export(ovs_scene, tmp_path, monkeypatch):
    import tyro
    from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion
    from nerfstudio.scripts.eval import ComputePSNR
    from nerfstudio.scripts.train import main as ns_train

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    out = tmp_path / "outputs"
    config = tyro.cli(AnnotatedBaseConfigUnion, args=_train_args(ovs_scene, out))
    assert config.method_name == "ovs-nerf"
    ns_train(config)
    run = out / "tiny" / "ovs-nerf" / "run"
    assert (run / "config.yml").is_file()
    assert (run / "nerfstudio_models" / "step-000000007.ckpt").is_file()

    # ns-eval: mIoU / accuracy per view averaged over the annotated views, per class too
    eval_json = tmp_path / "eval.json"
    ComputePSNR(load_config=run / "config.yml", output_path=eval_json, render_output_path=tmp_path / "renders").main()
    results = json.loads(eval_json.read_text())["results"]
    classes = (ovs_scene / "segmentations" / "classes.txt").read_text().split()
    assert 0.0 <= results["miou"] <= 1.0 and 0.0 <= results["accuracy"] <= 1.0
    per_class = [k for k in results if k.startswith("iou/") and not k.endswith("_std")]
    assert len(per_class) == len(set(l.strip() for l in (ovs_scene / "segmentations" / "classes.txt").read_text().splitlines() if l.strip()))
    assert results["miou"] == pytest.approx(np.mean([results[k] for k in per_class]), abs=1e-6)
    assert any(p.name.startswith("eval_segmentation") for p in (tmp_path / "renders").iterdir())

    # pcseg-ovs-export: PNGs, 3D-OVS results, and a prediction PLY that pcseg reads
    from nerf3dovs.scripts.export import main as export_main

    exp = tmp_path / "export"
    assert export_main(["--load-config", str(run / "config.yml"), "--output-dir", str(exp), "--point-stride", "3",
                        "--min-accumulation", "0.0"]) == 0
    metrics = json.loads((exp / "metrics.json").read_text())
    assert [v["view"] for v in metrics["views"]] == [0, 3]
    assert metrics["miou"] == pytest.approx(results["miou"], abs=1e-6)  # same protocol, same renders
    assert metrics["psnr"] == pytest.approx(results["psnr"], abs=1e-3)
    for name in ("000_pred.png", "000_gt.png", "003_label.png", "003_rgb.png"):
        assert (exp / "segmentations" / name).is_file()
    assert "mIoU" in (exp / "results.txt").read_text()
    from pcseg.data.predictions import read_prediction_ply

    cloud = read_prediction_ply(exp / "table_ovs.ply")
    assert cloud.num_points > 0 and list(cloud.class_map.names) == metrics["classes"]
    assert cloud.pred.min() >= 0 and cloud.pred.max() < len(metrics["classes"])
    assert cloud.color is not None and np.isfinite(cloud.coord).all()


def test_export_help_lists_every_option(capsys):
    from nerf3dovs.scripts.export import build_parser

    text = build_parser().format_help()
    for opt in ("--load-config", "--output-dir", "--cloud-views", "--point-stride", "--min-accumulation", "--frame", "--no-cloud"):
        assert opt in text
