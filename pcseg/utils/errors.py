"""User-facing errors: one line that names the file and the problem.

Library code raises these instead of letting a traceback from deep inside numpy/plyfile/torch reach
the user; the CLI prints ``str(err)`` and exits non-zero.
"""

from __future__ import annotations

from pathlib import Path


class PcsegError(Exception):
    """Base class for errors that the CLI reports as one line (no traceback)."""


class ConfigError(PcsegError):
    """A configuration value is missing, inconsistent or out of range."""


class DataError(PcsegError):
    """A data file is malformed or inconsistent.

    Args:
        path: the offending file (or folder).
        problem: what is wrong, in words a user can act on.
        line: 1-based line number for text files, if known.
    """

    def __init__(self, path: str | Path, problem: str, line: int | None = None):
        self.path = Path(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")


class MissingDependencyError(PcsegError, ImportError):
    """An optional library is not installed; the message says how to get it."""

    def __init__(self, package: str, purpose: str, install_hint: str):
        super().__init__(f"{package} is required for {purpose} but is not installed. {install_hint}")
