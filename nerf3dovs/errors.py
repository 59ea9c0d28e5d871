"""One-line user errors for nerf3dovs.

nerf3dovs may import only ``pcseg.foundation`` and ``pcseg.metrics`` from pcseg (contracts, "data flows
one way"), so it carries its own small error types with the same message format as pcseg's
``DataError`` (``path: problem``): the ``ns-*`` and ``pcseg-ovs-export`` commands print them as one line.
"""

from __future__ import annotations

from pathlib import Path


class OvsError(Exception):
    """Base class for errors a user can cause and fix (bad data folder, bad option)."""


class OvsDataError(OvsError):
    """A file of a 3D-OVS scene is missing, malformed or inconsistent.

    Args:
        path: the offending file or folder.
        problem: what is wrong, in words a user can act on.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OvsConfigError(OvsError):
    """An option value is missing, inconsistent or out of range."""
