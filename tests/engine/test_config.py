import pytest

from pcseg.engine.config import compose_config, list_experiments
from pcseg.utils.errors import ConfigError


def test_every_experiment_composes():
    names = list_experiments()
    assert "supervised_synthetic" in names
    for name in names:
        cfg = compose_config(name)
        assert cfg.name == name, f"experiment {name} must set name: {name}"
        for key in ("data", "model", "method", "optim", "trainer"):
            assert key in cfg


def test_overrides_apply_and_unknown_experiment_is_a_clear_error():
    cfg = compose_config("supervised_synthetic", ["trainer.epochs=3", "seed=7"])
    assert cfg.trainer.epochs == 3 and cfg.seed == 7
    with pytest.raises(ConfigError, match="unknown experiment 'nope'"):
        compose_config("nope")
    with pytest.raises(ConfigError, match="cannot compose"):
        compose_config("supervised_synthetic", ["trainer.not_a_key=1"])


def test_cpcm_paper_optimiser_defaults():
    cfg = compose_config("supervised_scannet")
    assert (cfg.optim.momentum, cfg.optim.dampening, cfg.optim.weight_decay) == (0.9, 0.1, 0.001)
    assert cfg.optim.schedule.name == "poly" and cfg.optim.schedule.power == 0.9
    assert cfg.data.voxel_size == 0.02 and cfg.trainer.epochs == 180
    assert compose_config("supervised_s3dis").data.voxel_size == 0.05


def test_resume_auto_continues_only_when_a_checkpoint_exists(tmp_path):
    from pcseg.engine.trainer import resume_requested
    from pcseg.utils.errors import ConfigError

    last = tmp_path / "last.pt"
    assert resume_requested("auto", last) is False
    assert resume_requested(False, last) is False and resume_requested(True, last) is True
    last.write_bytes(b"x")
    assert resume_requested("auto", last) is True and resume_requested("AUTO", last) is True
    with pytest.raises(ConfigError, match="resume must be true, false or auto"):
        resume_requested("sometimes", last)
