"""``pcseg prepare``: synthetic end to end, the raw readers through the CLI, failures and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pcseg.cli.main import main
from pcseg.data.scene import open_dataset


@pytest.fixture(scope="module")
def synthetic_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_synthetic") / "synthetic"
    assert main(["prepare", "synthetic", "--out", str(out), "--scenes", "2", "--seed", "1", "--workers", "1", "--no-progress"]) == 0
    return out


def test_synthetic_layout_and_resume(synthetic_out, capsys):
    for folder in ("raw_scannet/scans", "raw_scannet/splits", "raw_s3dis/Area_1", "raw_s3dis/Area_5", "scannet/scenes", "s3dis/scenes"):
        assert (synthetic_out / folder).is_dir(), folder
    assert (synthetic_out / "raw_scannet" / "scannetv2-labels.combined.tsv").is_file()
    assert open_dataset(synthetic_out / "scannet").split("train") == ["synth0000_00"]
    # a second run reuses every room and every prepared scene
    assert main(["prepare", "synthetic", "--out", str(synthetic_out), "--scenes", "2", "--seed", "1", "--workers", "1",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "generated 0 room(s), reused 2" in out and "prepared 0, already done 2" in out


def test_prepare_scannet_and_s3dis_from_raw(synthetic_out, tmp_path):
    raw = synthetic_out / "raw_scannet"
    assert main(["prepare", "scannet", "--raw", str(raw), "--out", str(tmp_path / "sc"), "--splits", str(raw / "splits"),
                 "--workers", "1", "--no-progress"]) == 0
    ours, ref = open_dataset(tmp_path / "sc"), open_dataset(synthetic_out / "scannet")
    for name in ref.split("train") + ref.split("val"):
        np.testing.assert_array_equal(ours.load(name).segment, ref.load(name).segment)
    assert main(["prepare", "s3dis", "--raw", str(synthetic_out / "raw_s3dis"), "--out", str(tmp_path / "s3"), "--val-area", "1",
                 "--workers", "1", "--no-progress"]) == 0
    s3 = open_dataset(tmp_path / "s3")
    assert all(n.startswith("Area_1_") for n in s3.split("val")) and s3.info["val_area"] == 1


def test_failed_scene_gives_exit_1_and_keeps_the_others(synthetic_out, tmp_path, capsys):
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(synthetic_out / "raw_scannet", raw)
    segs = raw / "scans" / "synth0001_00" / "synth0001_00_vh_clean_2.0.010000.segs.json"
    data = json.loads(segs.read_text())
    segs.write_text(json.dumps({"segIndices": data["segIndices"][:-5]}))
    code = main(["prepare", "scannet", "--raw", str(raw), "--out", str(tmp_path / "out"), "--splits", str(raw / "splits"),
                 "--workers", "1", "--no-progress"])
    assert code == 1
    out = capsys.readouterr().out
    assert "1 scene(s) FAILED" in out and "segs.json: has" in out and "but the mesh has" in out
    ds = open_dataset(tmp_path / "out")
    assert ds.split("train") == ["synth0000_00"] and ds.split("val") == []  # the good scene is there, the bad one absent


def test_missing_raw_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["prepare", "s3dis", "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "raw S3DIS folder does not exist" in err


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "synthetic", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--out", "--scenes", "--seed", "--workers", "--overwrite"):
        assert option in out


def test_cli_modules_import_nothing_heavy():
    code = ("import sys, pcseg.cli.prepare, pcseg.cli.labels\n"
            "print(sorted(m for m in ('torch', 'numpy', 'plyfile', 'scipy') if m in sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
