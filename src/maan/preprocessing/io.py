"""Atomic file writes and the provenance recorded with every store, checkpoint and result.

Every output is written to a temporary file beside its destination and renamed into place, so
an interrupted run never leaves a half-written file.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path


def package_versions(names) -> dict:
    """``{"python": ..., name: version}`` for each installed package of ``names``."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "maan":  # a source checkout on PYTHONPATH, not pip-installed
                from maan import __version__

                out[name] = __version__
    return out


@contextmanager
def writing(path):
    """An OSError raised while writing ``path`` (through a temporary file beside it) names
    ``path`` and says why in one line, not the temporary name or an HDF5 error dump."""
    try:
        yield
    except OSError as exc:
        if exc.filename == os.fspath(path):
            raise
        text = str(exc)
        code = exc.errno or next((int(m) for m in re.findall(r"errno = (\d+)", text)), None)
        if code:
            reason = os.strerror(code)
        else:
            reason = exc.strerror or (text.splitlines()[0] if text else type(exc).__name__)
        raise OSError(code, reason, os.fspath(path)) from None


def temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file next to ``path`` with the permissions a plain open() would give.

    mkstemp creates files 0600; outputs (stores, reports) should be as readable as any file.
    """
    with writing(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    try:
        with writing(path):
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
