"""Data side of ovs-nerf: LLFF/3D-OVS parsing, the image dataset, ray sampling, the datamanager."""
