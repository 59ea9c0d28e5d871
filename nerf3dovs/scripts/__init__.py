"""Command-line tools of nerf3dovs (pcseg-ovs-export)."""
