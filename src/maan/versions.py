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
            pass
    return out
