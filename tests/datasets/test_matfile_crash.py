"""MAT files that crash SciPy's MAT v5 reader (a segmentation fault in ``scipy.io.matlab._mio5_utils``)
unless :func:`maan.datasets.matfile.check_mat5` refuses them first.

What the crash hunter found (truncations, bit flips and overwritten bytes of the fuzz suite's
synthetic AMIGOS/DREAMER files, each read in a subprocess): one kind of crash, an array whose class
byte is turned into mxSPARSE (a cell 1 -> 5, a text 4 -> 5, one bit). SciPy then reads the elements
that follow as the sparse row indices and column starts, and dereferences the dtype it has for
their type: none for miMATRIX (14), a NULL pointer. The synthetic cases below rebuild those files
(a synthetic file written here plus the exact byte edit); the compressed one puts the same edit
inside a ``miCOMPRESSED`` variable. The crafted cases pin the other holes the check closes, each a
file that SciPy crashes on: an array hidden in the declared size of the one before it (SciPy reads
the next array where the previous one's contents end), a variable whose size is not a multiple of 8
(SciPy reads the next variable unpadded), and arrays inside function handles and objects (which
the check once left to SciPy) and opaque values (which it refused outright, valid ones included).

Every file is read by maan's reader in a child interpreter, so that a regression fails the test
(the child dies of a signal) instead of killing pytest.
"""
from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse

import maan
from maan.datasets.matfile import MatStructureError, check_mat5

# -- the synthetic files of tests/test_fuzz.py (same parameters) ----------------------------------
AMIGOS_FILE = "Data_Preprocessed_P01.mat"
DREAMER_FILE = "DREAMER.mat"


def _synth(kind: str, folder: Path, compress: bool = False) -> Path:
    if kind == "amigos":
        maan.synth_cohort("amigos", folder, n_subjects=1, seed=3, short_seconds=(6, 7), long_seconds=(6, 7),
                          nan_fraction=0.0, missing_long_fraction=0.0, compress=compress)
        return folder / AMIGOS_FILE
    maan.synth_cohort("dreamer", folder, n_subjects=1, seed=3, short_seconds=(10.5, 11.5), baseline_seconds=1.0,
                      compress=compress)
    return folder / DREAMER_FILE


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("matfile-crash")
    return {(kind, compress): _synth(kind, root / f"{kind}-{'zlib' if compress else 'plain'}", compress)
            for kind in ("amigos", "dreamer") for compress in (False, True)}


def _edit(data: bytes, edits) -> bytes:
    """``data`` with the byte at each offset changed from ``before`` to ``after`` (the layout of the
    synthetic file is checked, so that a change of the generator fails here, not silently)."""
    buf = bytearray(data)
    for offset, before, after in edits:
        assert buf[offset] == before, (
            f"byte {offset} of the synthetic file is {buf[offset]}, expected {before}: its layout changed, "
            "update the edit")
        buf[offset] = after
    return bytes(buf)


def _edit_compressed(data: bytes, edits) -> bytes:
    """``data`` (a MAT file whose first variable is miCOMPRESSED) with ``edits`` applied to the
    inflated variable, recompressed (so that zlib's own checks pass)."""
    mdtype, nbytes = struct.unpack_from("<II", data, 128)
    assert mdtype == 15, "the synthetic compressed file does not start with a miCOMPRESSED variable"
    inner = _edit(zlib.decompress(data[136:136 + nbytes]), edits)
    packed = zlib.compress(inner)
    return data[:128] + struct.pack("<II", 15, len(packed)) + packed + data[136 + nbytes:]


# -- a tiny MAT v5 writer for the crafted files ---------------------------------------------------
def _element(mdtype: int, payload: bytes = b"") -> bytes:
    return struct.pack("<II", mdtype, len(payload)) + payload + bytes(-len(payload) % 8)


def _array(klass: int, dims, name: bytes, *parts: bytes) -> bytes:
    body = (_element(6, struct.pack("<II", klass, 0)) + _element(5, struct.pack(f"<{len(dims)}i", *dims))
            + _element(1, name) + b"".join(parts))
    return struct.pack("<II", 14, len(body)) + body


def _resized(array: bytes, extra: int) -> bytes:
    """``array`` whose tag declares ``extra`` bytes more than its contents."""
    return struct.pack("<II", 14, len(array) - 8 + extra) + array[8:]


def _text(text: bytes, mdtype: int = 16) -> bytes:
    return _array(4, (1, len(text)), b"", _element(mdtype, text))


def _double(*values: float) -> bytes:
    return _array(6, (1, len(values)), b"", _element(9, struct.pack(f"<{len(values)}d", *values)))


def _cell(children, name: bytes = b"c") -> bytes:
    return _array(1, (1, len(children)), name, *children)


def _mat(*variables: bytes) -> bytes:
    return (b"MATLAB 5.0 MAT-file, crafted by tests/datasets/test_matfile_crash.py".ljust(116, b" ") + bytes(8)
            + struct.pack("<H", 0x0100) + b"IM" + b"".join(variables))


#: a text whose data element says miMATRIX: SciPy's reader has no dtype for it (a NULL pointer)
BAD_TEXT = _text(b"\0\0", mdtype=14)


def _opaque(*parts: bytes) -> bytes:
    body = _element(6, struct.pack("<II", 17, 0)) + b"".join(parts)
    return struct.pack("<II", 14, len(body)) + body


CRAFTED = {
    # a cell whose first array declares BAD_TEXT's 64 bytes more than it holds: SciPy reads BAD_TEXT as
    # the second array
    "array-hidden-in-the-one-before": (
        lambda: _mat(_cell([_resized(_double(1.0), len(BAD_TEXT)) + BAD_TEXT, _text(b"ok")])),
        "claims 120 bytes but its contents take 56"),
    # a variable of 4 bytes more than its contents: SciPy reads the next one there, unpadded (4 trailing
    # bytes make the padded reading of the old check come out at the end of the file)
    "variable-size-not-a-multiple-of-8": (
        lambda: _mat(_resized(_cell([_text(b"ok")], b"v"), 4) + bytes(4), BAD_TEXT, bytes(4)),
        "text at byte 260: 2 data bytes of type 14"),
    "function-handle-workspace": (lambda: _mat(_array(16, (1, 1), b"f", BAD_TEXT)),
                                  "text at byte 192: 2 data bytes of type 14"),
    "object-field": (lambda: _mat(_array(3, (1, 1), b"o", _element(1, b"cls"), struct.pack("<HHI", 5, 4, 8),
                                         _element(1, b"x".ljust(8, b"\0")), BAD_TEXT)),
                     "text at byte 232: 2 data bytes of type 14"),
    "opaque-value": (lambda: _mat(_opaque(_element(1, b"op"), _element(1, b"MCOS"), _element(1, b"cls"),
                                          BAD_TEXT)),
                     "text at byte 208: 2 data bytes of type 14"),
    "sparse-indices-of-another-type": (
        lambda: _mat(_array(5, (2, 2), b"s", _element(14), _element(5, struct.pack("<3i", 0, 0, 0)), _element(9))),
        "sparse array at byte 136: row indices of type 14"),
}

#: (reader, compressed, byte edits (offset, before, after), the reason expected in the error)
SYNTHETIC = {
    # VideoIDs, a cell of texts, made sparse: its first text's array tag read as row indices
    "amigos-cell-as-sparse": ("amigos", False, [(144, 1, 5)], "sparse array at byte 136: row indices of type 14"),
    # the first text of VideoIDs made sparse: its UTF-8 data, then the next text's array tag, read as
    # row indices and column starts (found by the hunter as bit 0 of byte 312 among 4 bit flips)
    "amigos-text-as-sparse": ("amigos", False, [(312, 4, 5)], "sparse array at byte 304: row indices of type 16"),
    "dreamer-cell-as-sparse": ("dreamer", False, [(408, 1, 5)], "sparse array at byte 400: row indices of type 14"),
    "dreamer-text-as-sparse": ("dreamer", False, [(632, 4, 5)], "sparse array at byte 624: row indices of type 16"),
    # the same edit as amigos-cell-as-sparse inside a zlib-compressed variable
    "amigos-compressed-cell-as-sparse": (
        "amigos", True, [(16, 1, 5)],
        "sparse array at byte 8 of the compressed element at byte 128: row indices of type 14"),
}

_READ = """
import json, sys
from maan.errors import InvalidInputError
from maan.datasets import amigos, dreamer, matfile
for name, reader, path in json.loads(sys.argv[1]):
    try:
        if reader == "amigos":
            amigos.read_amigos_subject(path)
        elif reader == "dreamer":
            dreamer.list_dreamer_subjects(path)
        else:
            matfile.load_mat(path, path)
        result = "read"
    except InvalidInputError as exc:
        result = "InvalidInputError: " + str(exc)
    except BaseException as exc:
        result = f"{type(exc).__name__}: {exc}"
    print(json.dumps([name, result]), flush=True)
"""


def _read_in_child(cases) -> dict:
    """{name: what maan's reader did} for ``cases`` [(name, reader, path)], read in a child
    interpreter; a case whose child died says so (with the signal)."""
    cases = [[name, reader, str(path)] for name, reader, path in cases]
    proc = subprocess.run([sys.executable, "-c", _READ, json.dumps(cases)], capture_output=True, text=True,
                          timeout=300)
    results = dict(json.loads(line) for line in proc.stdout.splitlines() if line.startswith("["))
    if proc.returncode != 0:
        died = next(name for name, _, _ in cases if name not in results)
        results[died] = f"the reader's process ended with status {proc.returncode}: {proc.stderr[-2000:]}"
        rest = [c for c in cases if c[0] not in results]
        if rest:  # the others, each where a crash cannot hide them
            for case in rest:
                results.update(_read_in_child([case]))
    return results


@pytest.fixture(scope="module")
def results(synthetic, tmp_path_factory):
    """What maan's reader does with every case (and with the intact synthetic files)."""
    root = tmp_path_factory.mktemp("matfile-crash-cases")
    cases = []
    for (kind, compress), path in synthetic.items():
        cases.append((f"intact-{kind}-{'zlib' if compress else 'plain'}", kind, path))
    for name, (kind, compress, edits, _) in SYNTHETIC.items():
        source = synthetic[(kind, compress)]
        data = (_edit_compressed if compress else _edit)(source.read_bytes(), edits)
        folder = root / name
        folder.mkdir()
        (folder / source.name).write_bytes(data)
        cases.append((name, kind, folder / source.name))
    for name, (build, _) in CRAFTED.items():
        path = root / f"{name}.mat"
        path.write_bytes(build())
        cases.append((name, "mat", path))
    return _read_in_child(cases)


@pytest.mark.parametrize("name", ["intact-amigos-plain", "intact-amigos-zlib", "intact-dreamer-plain",
                                  "intact-dreamer-zlib"])
def test_intact_synthetic_files_read(results, name):
    assert results[name] == "read"


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_crash_refused(results, name):
    reason = SYNTHETIC[name][3]
    result = results[name]
    assert result.startswith("InvalidInputError: ") and reason in result and "\n" not in result, result


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_crash_refused(results, name):
    reason = CRAFTED[name][1]
    result = results[name]
    assert result.startswith("InvalidInputError: ") and reason in result and "\n" not in result, result


# -- the check itself (in-process: it never hands these files to SciPy) ----------------------------
def _sparse_file(rows: list[int], starts: list[int], shape=(3, 2)) -> bytes:
    return _mat(_array(5, shape, b"s", _element(5, struct.pack(f"<{len(rows)}i", *rows)),
                       _element(5, struct.pack(f"<{len(starts)}i", *starts)),
                       _element(9, struct.pack(f"<{len(rows)}d", *[1.0] * len(rows)))))


@pytest.mark.parametrize(("rows", "starts", "reason"), [
    ([0, 7], [0, 1, 2], "row index out of range"),
    ([0, -1], [0, 1, 2], "row index out of range"),
    ([0, 1], [0, 2, 1], "column starts not ascending"),
    ([0, 1], [1, 1, 2], "column starts not ascending"),
    ([0, 1], [0, 1], "2 column starts for 2 columns"),
    ([0], [0, 1, 2], "2 values but 1 row indices"),
])
def test_sparse_indices_checked(rows, starts, reason):
    with pytest.raises(MatStructureError, match=reason):
        check_mat5(_sparse_file(rows, starts))
    assert check_mat5(_sparse_file([0, 2], [0, 1, 2])) is None


def test_compressed_variable_corrupt_or_short():
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"x": np.arange(1000.0)}, do_compression=True)
    data = buf.getvalue()
    nbytes = struct.unpack_from("<I", data, 132)[0]
    garbled = bytearray(data)
    garbled[150] ^= 0xFF
    with pytest.raises(MatStructureError, match="compressed element at byte 128"):
        check_mat5(bytes(garbled))
    short = zlib.compress(zlib.decompress(data[136:136 + nbytes])[:100])
    with pytest.raises(MatStructureError, match="ends inside the array"):
        check_mat5(data[:128] + struct.pack("<II", 15, len(short)) + short)


def test_nesting_depth_limited():
    array = _text(b"x")
    for _ in range(40):
        array = _cell([array], b"")
    with pytest.raises(MatStructureError, match="nested too deeply"):
        check_mat5(_mat(array))


def _savemat_variants():
    s = np.empty((1, 2), dtype=[("a", object), ("bb", object)])
    s[0, 0] = (np.ones((2, 3)), "hi")
    s[0, 1] = (np.zeros((0, 0)), np.array([[1 + 2j]]))
    cell = np.empty((2, 2), dtype=object)
    cell[0, 0], cell[0, 1], cell[1, 0], cell[1, 1] = "x", np.arange(5), s, np.empty((0, 0), object)
    rng = np.random.default_rng(0)
    return {
        "numeric": {"a": rng.standard_normal((5, 7)), "b": np.arange(10, dtype=np.int8), "c": np.uint64(7),
                    "e": (rng.standard_normal((3, 3)) + 1j).astype(np.complex64), "f": np.zeros((0, 3)),
                    "g": rng.standard_normal((2, 3, 4)), "h": np.array([True, False])},
        "text": {"t": "hello", "u": np.array(["ab", "cd"]), "v": "\u00fcn\u00efcode \u2713", "w": ""},
        "sparse": {"s": scipy.sparse.random(20, 30, density=0.1, random_state=1, format="csc"),
                   "z": scipy.sparse.csc_matrix((5, 0)), "l": scipy.sparse.csc_matrix(np.eye(4) > 0),
                   "c": scipy.sparse.csc_matrix(np.eye(3) * (1 + 2j))},
        "struct": {"s": s, "e": np.empty((0, 0), dtype=[("a", object)]), "m": {"x": 1, "y": {"z": "deep"}}},
        "cell": {"c": cell, "e": np.empty((0, 3), object)},
    }


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("kind", ["numeric", "text", "sparse", "struct", "cell"])
def test_valid_files_pass(kind, compress):
    buf = io.BytesIO()
    scipy.io.savemat(buf, _savemat_variants()[kind], do_compression=compress)
    check_mat5(buf.getvalue())
    assert scipy.io.loadmat(io.BytesIO(buf.getvalue()))


def test_scipy_test_files_pass():
    """Every MAT file of SciPy's own test suite that SciPy reads (written by MATLAB 5 to 8 on several
    platforms: objects, function handles, opaque values, sparse, big-endian) passes the check."""
    folder = Path(scipy.io.matlab.__file__).parent / "tests" / "data"
    files = sorted(folder.glob("*.mat"))
    assert files, f"SciPy's test data is not installed ({folder}); the pip wheels ship it"
    read = 0
    for path in files:
        data = path.read_bytes()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scipy.io.loadmat(io.BytesIO(data))
        except Exception:  # noqa: BLE001 - a file SciPy refuses may be refused by the check too
            continue
        check_mat5(data)
        read += 1
    assert read > 50
