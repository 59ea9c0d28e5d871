"""ovs-nerf and ovs3d-data are found through nerfstudio's plugin entry points."""

from __future__ import annotations

import pytest

pytest.importorskip("nerfstudio")


def test_discover_methods_lists_ovs_nerf():
    from nerfstudio.plugins.registry import discover_methods

    methods, descriptions = discover_methods()
    assert "ovs-nerf" in methods
    config = methods["ovs-nerf"]
    assert config.method_name == "ovs-nerf"
    assert "3D-OVS" in descriptions["ovs-nerf"]
    # every parameter group of the model has an optimizer entry (nerfstudio raises otherwise)
    from nerf3dovs.model.schedule import GROUPS

    assert set(config.optimizers) == set(GROUPS)
    assert config.max_num_iterations == config.pipeline.model.recon_iters + config.pipeline.model.seg_iters


def test_discover_dataparsers_lists_ovs3d_data():
    from nerfstudio.plugins.registry_dataparser import discover_dataparsers

    from nerf3dovs.data.dataparser import Ovs3DDataParserConfig

    parsers, _ = discover_dataparsers()
    assert isinstance(parsers["ovs3d-data"], Ovs3DDataParserConfig)


def test_paper_defaults():
    """The defaults are the 3D-OVS values the issue lists."""
    from nerf3dovs.data.datamanager import OvsDataManagerConfig
    from nerf3dovs.model.ovs_model import OvsModelConfig

    m = OvsModelConfig()
    assert (m.dino_pos_weight, m.dino_neg_weight, m.relevancy_weight, m.fda_temperature, m.dino_shift) == (200, 0.2, 1, 0.2, 0.7)
    assert (m.recon_iters, m.seg_iters, m.joint_start_iter) == (30000, 15000, 5000)
    assert (m.lr_grid, m.lr_network, m.lr_joint_grid, m.lr_joint_network, m.lr_decay_ratio) == (0.02, 1e-4, 5e-3, 5e-5, 0.1)
    assert (m.rda_normalize_feature, m.selection_softmax, m.feature_activation) == (False, "after_accumulation", "none")
    d = OvsDataManagerConfig()
    assert (d.fda_patches, d.fda_patch_rays, d.relevancy_normalization) == (8, 32, "minmax")
