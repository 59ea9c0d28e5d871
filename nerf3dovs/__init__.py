"""nerf3dovs: the 3D-OVS open-vocabulary segmentation method as a nerfstudio plugin (`ns-train ovs-nerf`)."""
