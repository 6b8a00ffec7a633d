"""Reading MATLAB files with one mapping of scipy's many failure modes to InvalidInputError.

SciPy's MAT v5 reader trusts the sizes a file declares and can crash the process (a
segmentation fault, not an exception) on some corrupt files. :func:`check_mat5` walks the
element tags first, without reading the data, and refuses an uncompressed array whose declared
sizes do not fit (hand-written because SciPy offers no such check; compressed elements are
left to zlib's integrity check). The fuzz suite measures it (``tests/test_fuzz.py``).
"""
from __future__ import annotations

import io
import mmap
import os
import struct

import numpy as np
import scipy.io

from maan.errors import InvalidInputError


def load_mat(source, path: str | os.PathLike, **kwargs) -> dict:
    """``scipy.io.loadmat(source)``; any failure becomes InvalidInputError naming ``path``.

    ``source`` is a file name or a file-like object (e.g. a .mat read from a zip), ``path`` the
    file the user knows about.
    """
    try:
        _check_source(source)
    except MatStructureError as exc:
        raise InvalidInputError(path, f"not a readable MAT file (corrupt: {exc})") from None
    except OSError:
        pass  # a missing or unreadable file: loadmat says so below
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


def _check_source(source) -> None:
    if isinstance(source, io.BytesIO):
        check_mat5(source.getbuffer())
        return
    with open(source, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            check_mat5(view)


_MI_MATRIX, _MI_COMPRESSED = 14, 15
_ITEMSIZE = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_NUMERIC_CLASSES = set(range(6, 16))


class MatStructureError(ValueError):
    """A MAT v5 element whose declared sizes do not fit the file."""


def _tag(buf, off, end, order):
    if off + 8 > end:
        raise MatStructureError(f"element tag at byte {off} runs past its container")
    first, second = struct.unpack_from(order + "II", buf, off)
    if first >> 16:  # small data element: type in the low, size in the high 16 bits
        mdtype, nbytes = first & 0xFFFF, first >> 16
        if nbytes > 4:
            raise MatStructureError(f"small element at byte {off} claims {nbytes} bytes")
        return mdtype, nbytes, off + 4, off + 8
    mdtype, nbytes = first, second
    data = off + 8
    if data + nbytes > end:
        raise MatStructureError(f"element at byte {off} claims {nbytes} bytes, past its container")
    return mdtype, nbytes, data, data + nbytes + (-nbytes % 8 if mdtype != _MI_COMPRESSED else 0)


def check_matrix(buf, start, end, order, depth=0):
    if start == end:
        return
    if depth > 32:
        raise MatStructureError("arrays nested too deeply")
    mdtype, nbytes, data, off = _tag(buf, start, end, order)
    if mdtype != 6 or nbytes != 8:
        raise MatStructureError(f"array at byte {start} has no array flags")
    flags = struct.unpack_from(order + "I", buf, data)[0]
    klass, is_complex = flags & 0xFF, bool(flags & 0x0800)
    mdtype, nbytes, data, off = _tag(buf, off, end, order)
    if mdtype != 5 or nbytes % 4 or nbytes < 8:
        raise MatStructureError(f"array at byte {start} has no dimensions")
    dims = struct.unpack_from(order + f"{nbytes // 4}i", buf, data)
    if min(dims) < 0:
        raise MatStructureError(f"array at byte {start} has negative dimensions {dims}")
    count = int(np.prod(dims, dtype=np.float64))
    _, _, _, off = _tag(buf, off, end, order)  # name
    if klass == 1:  # cell
        children = count
    elif klass == 2:  # struct
        mdtype, nbytes, data, off = _tag(buf, off, end, order)
        length = struct.unpack_from(order + "i", buf, data)[0] if nbytes == 4 else 0
        mdtype, nbytes, data, off = _tag(buf, off, end, order)
        if length <= 0 or nbytes % length:
            raise MatStructureError(f"struct at byte {start} has malformed field names")
        children = count * (nbytes // length)
    elif klass in _NUMERIC_CLASSES:
        for _ in range(2 if is_complex else 1):
            mdtype, nbytes, data, off = _tag(buf, off, end, order)
            if mdtype not in _ITEMSIZE or nbytes != count * _ITEMSIZE[mdtype]:
                raise MatStructureError(f"array at byte {start}: {nbytes} data bytes for {dims}")
        return
    elif klass == 4:  # char: one data element of the declared size (UTF-8 may be longer)
        mdtype, nbytes, data, off = _tag(buf, off, end, order)
        if mdtype not in _ITEMSIZE or nbytes < count * (_ITEMSIZE[mdtype] if mdtype != 16 else 1) or (
                mdtype != 16 and nbytes != count * _ITEMSIZE[mdtype]):
            raise MatStructureError(f"text at byte {start}: {nbytes} data bytes for {dims}")
        return
    else:  # sparse, objects, functions: left to SciPy
        return
    if children > (end - off) // 8:
        raise MatStructureError(f"array at byte {start} declares {children} elements, more than fit")
    for _ in range(children):
        mdtype, nbytes, data, off = _tag(buf, off, end, order)
        if mdtype != _MI_MATRIX:
            raise MatStructureError(f"element at byte {data - 8} of a cell/struct is not an array")
        check_matrix(buf, data, data + nbytes, order, depth + 1)


def check_mat5(buf) -> None:
    if len(buf) < 128:
        return  # not v5: SciPy reports it
    order = {b"IM": "<", b"MI": ">"}.get(bytes(buf[126:128]))
    if order is None or struct.unpack_from(order + "H", buf, 124)[0] != 0x0100:
        if bytes(buf[:10]) == b"MATLAB 5.0":  # a v5 file whose version or byte order is damaged
            raise MatStructureError("the MAT v5 header's version or byte order is damaged")
        return  # not v5: SciPy reads or refuses it
    off, end = 128, len(buf)
    while off < end:
        mdtype, nbytes, data, nxt = _tag(buf, off, end, order)
        if mdtype == _MI_MATRIX:
            check_matrix(buf, data, data + nbytes, order)
        off = nxt
