"""Model side of ovs-nerf: TensoRF-VM field, feature head, selection volume, losses, schedule."""
