"""Reading MATLAB files with one mapping of scipy's many failure modes to InvalidInputError."""
from __future__ import annotations

import os

import scipy.io

from maan.errors import InvalidInputError


def load_mat(source, path: str | os.PathLike, **kwargs) -> dict:
    """``scipy.io.loadmat(source)``; any failure becomes InvalidInputError naming ``path``.

    ``source`` is a file name or a file-like object (e.g. a .mat read from a zip), ``path`` the
    file the user knows about.
    """
    try:
        return scipy.io.loadmat(source, **kwargs)
    except FileNotFoundError:
        raise InvalidInputError(path, "file not found") from None
    except NotImplementedError as e:  # MATLAB v7.3 (HDF5)
        raise InvalidInputError(path, f"unsupported MAT version ({e}); re-save it with save(..., '-v7')") from None
    except MemoryError:  # a corrupt header can declare an array larger than memory
        raise InvalidInputError(path, "not enough memory to read it (corrupt, or larger than this machine's "
                                      "memory)") from None
    except Exception as e:  # truncated, not a MAT file, corrupt stream ...
        raise InvalidInputError(path, f"not a readable MAT file ({type(e).__name__}: {e})") from None


def variable_names(mat: dict, most: int = 8) -> str:
    """The variables of a loaded MAT file for an error message: printable names only, at most
    ``most`` (a corrupt header can make scipy read megabytes of binary "names")."""
    names = sorted(k for k in mat if isinstance(k, str) and not k.startswith("__"))
    shown = [n for n in names if n.isprintable() and len(n) <= 63][:most]
    hidden = len(names) - len(shown)
    return ", ".join(shown + ([f"{hidden} unreadable or more"] if hidden else [])) or "none"
