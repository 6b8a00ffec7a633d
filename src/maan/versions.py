"""Package versions recorded with every store, checkpoint and result (reproducibility)."""
from __future__ import annotations

import platform
from importlib import metadata


def package_versions(names) -> dict:
    """``{"python": ..., name: version}`` for each installed package of ``names``."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "maan":  # a source checkout on PYTHONPATH, not pip-installed
                from . import __version__

                out[name] = __version__
    return out
