"""`pcseg viz` through the CLI dispatcher."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pcseg.cli.main import main
from pcseg.data.classes import SCANNET20
from pcseg.data.predictions import write_prediction_ply


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["viz", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--data", "--scene", "--pred", "--labels", "--uncertainty", "--color", "--png", "--width",
                   "--height", "--view", "--point-size", "--max-height", "--class-map", "--backend", "1 R  rgb", "6 L  labelled"):
        assert option in out, option


def test_png_of_a_scene_with_prediction(tmp_path, capsys, room_dataset, room_scene, room_prediction,
                                        count_palette_pixels):
    pytest.importorskip("open3d")
    pred, unc = room_prediction
    ply = write_prediction_ply(tmp_path / "p.ply", room_scene.coord, pred, SCANNET20, uncertainty=unc)
    out_png = tmp_path / "img" / "err.png"
    rc = main(["viz", "--data", str(room_dataset), "--scene", "room0", "--pred", str(ply), "--color", "error",
               "--png", str(out_png), "--width", "320", "--height", "240", "--view", "top"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "colourings: rgb, gt, pred, error, uncertainty" in out and "renderer open3d" in out
    assert "correct" in out and "% of labelled" in out
    image = np.asarray(Image.open(out_png).convert("RGB"))
    assert image.shape == (240, 320, 3)
    assert (image == (170, 170, 170)).all(-1).sum() > 1000 and (image == (230, 25, 25)).all(-1).sum() > 50


def test_png_of_a_prediction_file(tmp_path, capsys, room_scene, room_prediction, count_palette_pixels):
    pytest.importorskip("open3d")
    pred, _ = room_prediction
    ply = write_prediction_ply(tmp_path / "p.ply", room_scene.coord, pred, SCANNET20, scene="room0")
    rc = main(["viz", str(ply), "--png", str(tmp_path / "p.png"), "--width", "320", "--height", "240"])
    assert rc == 0
    assert "[pred] prediction" in capsys.readouterr().out
    counts = count_palette_pixels(np.asarray(Image.open(tmp_path / "p.png").convert("RGB")), SCANNET20.palette)
    # the prediction's coherent mistakes (table half read as desk, chair seat as sofa) are visible
    assert counts[SCANNET20.index("desk")] > 50 and counts[SCANNET20.index("sofa")] > 20
    assert counts[SCANNET20.index("table")] > 50


def test_errors_are_one_line_and_exit_2(tmp_path, capsys, room_dataset):
    assert main(["viz", str(tmp_path / "nope.ply"), "--png", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pcseg viz: error:") and "does not exist" in err and err.count("\n") == 1
    assert main(["viz", str(room_dataset / "scenes" / "room0"), "--color", "error", "--png", "x.png"]) == 2
    assert "--color error: needs a prediction" in capsys.readouterr().err
    assert main(["viz", str(room_dataset / "scenes" / "room0"), "--width", "5"]) == 2
    assert not (tmp_path / "x.png").exists()


def test_max_height_cuts_every_array_alike():
    from pcseg.viz.modes import VizData

    z = np.array([0.5, 1.0, 2.4, 2.6, 3.0], dtype=np.float32)  # lowest point at 0.5 m
    coord = np.stack([np.arange(5), np.zeros(5), z], 1).astype(np.float32)
    data = VizData("room", coord, SCANNET20, rgb=np.arange(15, dtype=np.uint8).reshape(5, 3),
                   gt=np.array([1, 2, 3, 4, 5]), pred=np.array([1, 2, 0, 4, -1]),
                   uncertainty=np.linspace(0, 1, 5), selected=np.array([True, False, True, False, True]))
    cut = data.below_height(2.0)  # keeps z <= 2.5
    assert cut.num_points == 3 and data.num_points == 5
    np.testing.assert_array_equal(cut.gt, [1, 2, 3])
    np.testing.assert_array_equal(cut.pred, [1, 2, 0])
    np.testing.assert_array_equal(cut.rgb, data.rgb[:3])
    np.testing.assert_array_equal(cut.selected, [True, False, True])
    np.testing.assert_allclose(cut.uncertainty, [0.0, 0.25, 0.5])
    assert "2 m" in cut.sources["cut"]


def test_max_height_must_leave_points(tmp_path, capsys, room_dataset):
    rc = main(["viz", "--data", str(room_dataset), "--scene", "room0", "--max-height", "-1", "--png",
               str(tmp_path / "x.png")])
    assert rc == 2 and "--max-height must be positive" in capsys.readouterr().err
