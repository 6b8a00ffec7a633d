"""Reading MATLAB files with one mapping of scipy's many failure modes to InvalidInputError.

SciPy's MAT v5 reader trusts the types and sizes a file declares and can crash the process (a
segmentation fault, not an exception) on some corrupt files: a data element of a type it has no
dtype for (a sparse array whose indices are another array, say) makes its C code dereference a
missing dtype, and an array nested in a cell or struct is read where the previous one's contents
end, not where its tag says. :func:`check_mat5` first walks every variable the way SciPy reads it
(element tags, array flags, dimensions, names, field names, sparse indices; the data skipped,
``miCOMPRESSED`` variables inflated a chunk at a time) and refuses what does not fit, so that
SciPy only sees files it can read or refuse with an exception (hand-written because SciPy offers
no such check). The fuzz suite measures it (``tests/test_fuzz.py``, and
``tests/datasets/test_matfile_crash.py`` for the crashes found).
"""
from __future__ import annotations

import io
import math
import mmap
import os
import struct
import zlib

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
        with source.getbuffer() as view:
            check_mat5(view)
        return
    with open(source, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            check_mat5(view)


_MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED = 5, 6, 14, 15
#: bytes per item of each numeric data type (the types SciPy's reader has a dtype for: any other type
#: makes its C code dereference a missing dtype, a segmentation fault)
_ITEMSIZE = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_INT_DTYPE = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 12: "i8", 13: "u8"}
_CELL, _STRUCT, _OBJECT, _CHAR, _SPARSE, _FUNCTION, _OPAQUE = 1, 2, 3, 4, 5, 16, 17
_NUMERIC_CLASSES = set(range(6, 16))
_MAX_DEPTH = 32  # SciPy recurses in C: a deeper nesting could exhaust the stack
_MAX_DIMS = 32  # SciPy's limit (128 bytes of dimensions)
_CHUNK = 1 << 20  # bytes read or inflated at a time
_MAX_BLANKS = 1 << 20  # characters of a text without data (SciPy makes them blanks)


class MatStructureError(ValueError):
    """A MAT v5 element whose declared sizes or types do not fit the file."""


class _Plain:
    """The bytes of an uncompressed file (a buffer: mmap or memoryview), read forward from ``pos``."""

    def __init__(self, buf, pos: int):
        self.buf, self.pos, self.size = buf, pos, len(buf)

    def where(self, pos: int) -> str:
        return f"byte {pos}"

    def read(self, n: int) -> bytes:
        if self.pos + n > self.size:
            raise MatStructureError(f"the file ends inside the element at byte {self.pos}")
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        self.pos += n  # callers check n against the enclosing element, which fits the file


class _Inflated:
    """The decompressed contents of a ``miCOMPRESSED`` element, inflated a chunk at a time (memory
    stays bounded whatever the element declares); positions count decompressed bytes."""

    def __init__(self, buf, start: int, end: int):
        self.buf, self.src, self.src_end, self.element = buf, start + 8, end, start
        self.inflater = zlib.decompressobj()
        self.pending, self.at, self.pos = b"", 0, 0

    def where(self, pos: int) -> str:
        return f"byte {pos} of the compressed element at byte {self.element}"

    def _more(self) -> None:
        z = self.inflater
        while True:
            if z.eof:
                data = b""
            elif z.unconsumed_tail:
                data = z.unconsumed_tail
            else:
                data = bytes(self.buf[self.src:min(self.src + _CHUNK // 4, self.src_end)])
                self.src += len(data)
            try:
                out = z.decompress(data, _CHUNK) if not z.eof else b""
            except zlib.error as exc:
                raise MatStructureError(f"the compressed element at byte {self.element} is corrupt "
                                        f"(zlib: {exc})") from None
            if out:
                self.pending, self.at = self.pending[self.at:] + out, 0
                return
            if not data:
                raise MatStructureError(f"the compressed element at byte {self.element} ends inside the "
                                        f"array it holds (at {self.where(self.pos)})")

    def read(self, n: int) -> bytes:
        while len(self.pending) - self.at < n:
            self._more()
        out = self.pending[self.at:self.at + n]
        self.at += n
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        self.pos += n
        while n > len(self.pending) - self.at:
            n -= len(self.pending) - self.at
            self.pending, self.at = b"", 0
            self._more()
        self.at += n


def _fits(s, n: int, end, what: str) -> None:
    if end is not None and s.pos + n > end:
        raise MatStructureError(f"{what} at {s.where(s.pos)} runs past its container")


def _tag(s, end, order):
    """A data element's tag, as SciPy reads it: (type, byte count, the data of a small element
    or None)."""
    start = s.pos
    _fits(s, 8, end, "element tag")
    first, second = struct.unpack(order + "II", s.read(8))
    if first >> 16:  # small data element: type in the low, size in the high 16 bits, data in the tag
        nbytes = first >> 16
        if nbytes > 4:
            raise MatStructureError(f"small element at {s.where(start)} claims {nbytes} bytes")
        return first & 0xFFFF, nbytes, struct.pack(order + "I", second)[:nbytes]
    if end is not None and s.pos + second + (-second % 8) > end:
        raise MatStructureError(f"element at {s.where(start)} claims {second} bytes, past its container")
    return first, second, None


def _data(s, nbytes, small, read=True):
    """The data of the element whose tag was just read (and the padding to 8 bytes after it)."""
    if small is not None:
        return small
    if not read:
        s.skip(nbytes + (-nbytes % 8))
        return None
    out = s.read(nbytes)
    s.skip(-nbytes % 8)
    return out


def _skip_element(s, end, order):
    mdtype, nbytes, small = _tag(s, end, order)
    _data(s, nbytes, small, read=False)
    return mdtype, nbytes


def _values(s, mdtype, nbytes, small, order):
    """The integers of an element (a sparse array's indices), a chunk at a time."""
    dtype = np.dtype(_INT_DTYPE[mdtype]).newbyteorder(order)
    if small is not None:
        yield np.frombuffer(small, dtype, nbytes // dtype.itemsize)
        return
    left = nbytes - nbytes % dtype.itemsize
    while left:
        n = min(left, _CHUNK)
        yield np.frombuffer(s.read(n), dtype)
        left -= n
    s.skip(nbytes % dtype.itemsize + (-nbytes % 8))


def _child(s, end, order, depth):
    """One array inside another (a cell, a field, a function handle's workspace): SciPy reads a full
    tag that must say miMATRIX, then the array's contents, which must fill the declared size exactly
    (SciPy reads the next one where this one's contents end, not where its tag says it ends)."""
    start = s.pos
    _fits(s, 8, end, "element tag")
    mdtype, nbytes = struct.unpack(order + "II", s.read(8))
    if mdtype != _MI_MATRIX:
        raise MatStructureError(f"element at {s.where(start)} inside an array is not an array (type {mdtype})")
    if nbytes == 0:  # an empty array: SciPy reads nothing more
        return
    if end is not None and s.pos + nbytes > end:
        raise MatStructureError(f"array at {s.where(start)} claims {nbytes} bytes, past its container")
    check_matrix(s, s.pos + nbytes, order, depth + 1)
    if s.pos != start + 8 + nbytes:
        raise MatStructureError(f"array at {s.where(start)} claims {nbytes} bytes but its contents take "
                                f"{s.pos - start - 8}")


def check_matrix(s, end, order, depth=0):
    """Walk the contents of one miMATRIX element (from ``s.pos`` to ``end``, or to where the contents
    end when ``end`` is None) the way SciPy's reader will, refusing what would crash it."""
    if depth > _MAX_DEPTH:
        raise MatStructureError("arrays nested too deeply")
    start = s.pos
    mdtype, nbytes, small = _tag(s, end, order)
    if mdtype != _MI_UINT32 or nbytes != 8 or small is not None:
        raise MatStructureError(f"array at {s.where(start)} has no array flags")
    flags = struct.unpack(order + "II", _data(s, 8, None))[0]
    klass, is_complex = flags & 0xFF, bool(flags & 0x0800)
    if klass == _OPAQUE:  # three names (object, type system, class), then an array
        for _ in range(3):
            _skip_element(s, end, order)
        _child(s, end, order, depth)
        return
    mdtype, nbytes, small = _tag(s, end, order)
    if mdtype not in (_MI_INT32, _MI_UINT32) or nbytes % 4 or not 8 <= nbytes <= 4 * _MAX_DIMS:
        raise MatStructureError(f"array at {s.where(start)} has no dimensions")
    dims = struct.unpack(order + f"{nbytes // 4}i", _data(s, nbytes, small))
    if min(dims) < 0:
        raise MatStructureError(f"array at {s.where(start)} has negative dimensions {dims}")
    count = math.prod(dims)
    _skip_element(s, end, order)  # name
    if klass in _NUMERIC_CLASSES:
        for _ in range(2 if is_complex else 1):
            mdtype, nbytes, small = _tag(s, end, order)
            if mdtype not in _ITEMSIZE or nbytes != count * _ITEMSIZE[mdtype]:
                raise MatStructureError(f"array at {s.where(start)}: {nbytes} data bytes of type {mdtype} "
                                        f"for {dims}")
            _data(s, nbytes, small, read=False)
    elif klass == _CHAR:  # one data element of the declared size (UTF-8 may be longer), or none: blanks
        mdtype, nbytes, small = _tag(s, end, order)
        if nbytes == 0 and count <= _MAX_BLANKS:
            pass
        elif mdtype not in _ITEMSIZE or nbytes < count * (_ITEMSIZE[mdtype] if mdtype != 16 else 1) or (
                mdtype != 16 and nbytes != count * _ITEMSIZE[mdtype]):
            raise MatStructureError(f"text at {s.where(start)}: {nbytes} data bytes of type {mdtype} for {dims}")
        _data(s, nbytes, small, read=False)
    elif klass == _SPARSE:
        _check_sparse(s, end, order, start, dims, is_complex)
    elif klass == _CELL:
        _children(s, end, order, depth, start, count)
    elif klass in (_STRUCT, _OBJECT):
        if klass == _OBJECT:
            _skip_element(s, end, order)  # class name
        mdtype, nbytes, small = _tag(s, end, order)
        if mdtype not in (_MI_INT32, _MI_UINT32) or nbytes != 4:
            raise MatStructureError(f"struct at {s.where(start)} has no field name length")
        length = struct.unpack(order + "i", _data(s, nbytes, small))[0]
        _, nbytes = _skip_element(s, end, order)
        if length <= 0 or nbytes % length:
            raise MatStructureError(f"struct at {s.where(start)} has malformed field names")
        _children(s, end, order, depth, start, count * (nbytes // length))
    elif klass == _FUNCTION:  # a function handle: its workspace array
        _child(s, end, order, depth)
    else:  # SciPy fails on it, after reading its header only (nested, it would go on from there)
        raise MatStructureError(f"array at {s.where(start)} has unknown class {klass}")


def _children(s, end, order, depth, start, children):
    if end is not None and children > (end - s.pos) // 8:
        raise MatStructureError(f"array at {s.where(start)} declares {children} elements, more than fit")
    for _ in range(children):
        _child(s, end, order, depth)


def _check_sparse(s, end, order, start, dims, is_complex):
    """Row indices, column starts, values (real, imaginary): numeric elements whose indices make a
    valid compressed-sparse-column array of shape ``dims``."""
    if len(dims) != 2:
        raise MatStructureError(f"sparse array at {s.where(start)} has {len(dims)} dimensions")
    rows, cols = dims
    parts = []
    for what in ("row indices", "column starts"):
        mdtype, nbytes, small = _tag(s, end, order)
        if mdtype not in _INT_DTYPE:
            raise MatStructureError(f"sparse array at {s.where(start)}: {what} of type {mdtype}")
        n, last, prev = 0, None, 0
        for chunk in _values(s, mdtype, nbytes, small, order):
            if what == "row indices":
                if chunk.size and (chunk.min() < 0 or chunk.max() >= max(rows, 1)):
                    raise MatStructureError(f"sparse array at {s.where(start)}: row index out of range")
            else:
                head = chunk[:max(0, cols + 1 - n)].astype(np.int64)
                if head.size:
                    if (n == 0 and head[0] != 0) or head[0] < prev or (np.diff(head) < 0).any():
                        raise MatStructureError(f"sparse array at {s.where(start)}: column starts not ascending "
                                                "from 0")
                    prev = last = int(head[-1])
            n += chunk.size
        parts.append(n)
        if what == "column starts" and n < cols + 1:
            raise MatStructureError(f"sparse array at {s.where(start)}: {n} column starts for {cols} columns")
    nnz = last
    if nnz > parts[0]:
        raise MatStructureError(f"sparse array at {s.where(start)}: {nnz} values but {parts[0]} row indices")
    for _ in range(2 if is_complex else 1):
        mdtype, nbytes, small = _tag(s, end, order)
        if mdtype not in _ITEMSIZE or (nbytes // _ITEMSIZE[mdtype] < nnz and nbytes != nnz):
            raise MatStructureError(f"sparse array at {s.where(start)}: {nbytes} bytes of type {mdtype} for "
                                    f"{nnz} values")
        _data(s, nbytes, small, read=False)


def check_mat5(buf) -> None:
    """Refuse (MatStructureError) a MAT v5 file in ``buf`` whose elements SciPy's reader would
    misread into a crash: walks every variable the way SciPy reads it, compressed ones inflated."""
    if len(buf) < 128:
        return  # not v5: SciPy reports it
    order = {b"IM": "<", b"MI": ">"}.get(bytes(buf[126:128]))
    if order is None or struct.unpack_from(order + "H", buf, 124)[0] != 0x0100:
        if bytes(buf[:10]) == b"MATLAB 5.0":  # a v5 file whose version or byte order is damaged
            raise MatStructureError("the MAT v5 header's version or byte order is damaged")
        return  # not v5: SciPy reads or refuses it
    off, size = 128, len(buf)
    while off < size:
        if off + 8 > size:
            raise MatStructureError(f"element tag at byte {off} runs past the end of the file")
        mdtype, nbytes = struct.unpack_from(order + "II", buf, off)
        data = off + 8
        if nbytes == 0 or mdtype not in (_MI_MATRIX, _MI_COMPRESSED):
            return  # SciPy stops here with an error
        if data + nbytes > size:
            raise MatStructureError(f"element at byte {off} claims {nbytes} bytes, past the end of the file")
        if mdtype == _MI_MATRIX:
            check_matrix(_Plain(buf, data), data + nbytes, order)
        else:  # SciPy reads the array inside by its contents (whatever size its tag declares)
            s = _Inflated(buf, off, data + nbytes)
            inner, _ = struct.unpack(order + "II", s.read(8))
            if inner != _MI_MATRIX:
                return  # SciPy stops here with an error
            check_matrix(s, None, order)
        off = data + nbytes  # where SciPy reads the next variable: no padding
