"""Typed exceptions. The CLI turns every MaanError into one line on stderr and exit 2."""
from __future__ import annotations

import os


class MaanError(Exception):
    """Base class of every error the user can fix (bad input, bad configuration)."""


class InvalidInputError(MaanError, ValueError):
    """An input file (or folder) is unusable; ``path`` names it and ``reason`` says why."""

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class ConfigMismatchError(MaanError):
    """An existing output was built with another configuration."""


class InvalidSignalError(MaanError, ValueError):
    """A signal cannot be processed (flat, all-NaN, no detectable beats...)."""
