"""Fuzz suite (issue #28): corrupt every input maan reads, and give every numeric option odd values.

Inputs: AMIGOS and DREAMER ``.mat`` files, EDF recordings, the labels CSV, the feature store
(``manifest.json``, ``subjects/*.h5``), cv run folders and checkpoints (``NAME.pt`` + ``NAME.json``),
corrupted by truncation, bit flips, overwritten header fields and semantic changes (NaN, infinity,
values beyond float32, wrong dtypes and shapes, missing variables, fields and datasets, misaligned
rows). Options: every numeric option of every command, given NaN, infinity, 0, -0, -1, 1e308,
1e-308 and random values.

The property of every case, run in-process (``maan.cli.main``):

* exit 0, and then what was written is sound (a store's features are finite, aligned, in range:
  RR intervals in [0, 3] s, differential entropy within ``maan.config.DE_RANGE_NATS``; a
  prediction or a metric is a finite probability), or
* exit 2 with exactly one non-empty line on stderr that names the corrupted file (or a folder
  holding it) or the option;
* never an exception escaping ``main`` (a traceback), never another exit status, never a hang
  (each case runs under an alarm of ``CASE_TIMEOUT`` seconds, and ``faulthandler`` ends the
  process if even that cannot interrupt it), never a file left half-written (``.NAME.XXXX.tmp``
  or ``NAME.part`` beside the outputs);
* a store, once ``maan preprocess`` is rerun on it, is repaired (or the rerun says to pass
  ``--overwrite``, which repairs it); a message that says "rerun" is not repeated by the rerun.

Each case also runs under an address-space limit of the current size + ``MEMORY_HEADROOM`` (on
Linux), so that an option value that makes maan allocate without bound fails fast (as a
MemoryError escaping ``main``) instead of taking the machine down.

Bounded for CI: a fixed seed (``derandomize``), a few examples per test, no shrinking; the whole
file takes a few minutes on 2 cores. ``pytest tests/test_fuzz.py --fuzz-long`` runs 20x the
examples with random seeds (and shrinks failures to a minimal case). The expensive artefacts (a
small synthetic AMIGOS and DREAMER cohort, six short EDF recordings, their store, a 1-epoch
checkpoint and a 2-fold cv run) are made once per module; every example corrupts a copy.

Values of an option that are valid but make a long run (a huge ``--epochs``, a tiny ``--step``)
are not drawn: the random draws of such options stay among invalid values or short runs.
``stream`` and ``play`` are never started: ``stream`` options are only given values that its checks
(which run before any connection) must refuse, ``play`` options only values the parser refuses.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import faulthandler
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.io

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, example, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import maan  # noqa: E402
from maan import config as C  # noqa: E402

# -- budget -------------------------------------------------------------------------------------
#: seconds one case may run before it counts as a hang
CASE_TIMEOUT = 60
#: --fuzz-long multiplies every test's number of examples by this
LONG_FACTOR = 20
#: address space a case may add to the process before an allocation fails (MemoryError)
MEMORY_HEADROOM = 6 << 30
DE_LOW, DE_HIGH = getattr(C, "DE_RANGE_NATS", (-5.0, 12.0))
RR_MAX = 3.0  # seconds; RR series are zero-padded, so [0, RR_MAX]
HALF_WRITTEN = re.compile(r"(^\..+\.tmp$)|(\.tmp$)|(\.part$)")
#: the values every numeric option is given
SPECIAL = ("nan", "inf", "-inf", "0", "-1", "1e308", "-0", "1e-308")
#: odd spellings a user or a script may pass
ODD = ("1e309", "-1e309", "0x10", "", "1_0", "\u0661\u0662", "NaN", "+inf", "infinity", "5.", ".5", "1e-400",
       "9" * 400, "3.5", "2")


def fuzz(pytestconfig, n: int):
    """Hypothesis settings of a test: ``n`` examples, fixed seed, no shrinking; --fuzz-long: 20x
    the examples, random seeds, shrinking."""
    long = pytestconfig.getoption("--fuzz-long", default=False)
    phases = (Phase.explicit, Phase.reuse, Phase.generate) + ((Phase.target, Phase.shrink) if long else ())
    return settings(max_examples=n * (LONG_FACTOR if long else 1), deadline=None, derandomize=not long,
                    database=None if not long else settings.default.database, phases=phases,
                    print_blob=long, report_multiple_bugs=False,
                    suppress_health_check=list(HealthCheck))


# -- running maan in-process ---------------------------------------------------------------------
class CaseTimeout(BaseException):
    """Raised by the alarm inside a case that runs too long (a BaseException, so that no
    ``except Exception`` in maan can swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    if not hasattr(signal, "setitimer"):  # pragma: no cover - not POSIX
        yield
        return

    def on_alarm(signum, frame):
        raise CaseTimeout(f"no result within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    # the backstop: a hang inside C code that the alarm cannot interrupt ends the run with stacks
    faulthandler.dump_traceback_later(seconds + 60, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


@contextlib.contextmanager
def memory_limit(headroom: int):
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as handle:
            size = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):  # pragma: no cover - not Linux
        yield
        return
    limit = size + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft < limit:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@dataclass
class Outcome:
    argv: list
    code: object  # int exit status, or None when an exception escaped / the case timed out
    out: str
    err: str
    error: str = ""  # the escaped exception's traceback
    timed_out: bool = False

    @property
    def command(self) -> str:
        return "maan " + " ".join(_quote(a) for a in self.argv)

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def describe(self) -> str:
        if self.timed_out:
            return f"`{self.command}` did not finish within {CASE_TIMEOUT} s (hang)"
        if self.error:
            last = self.error.strip().splitlines()[-1]
            return f"`{self.command}` raised {last} (traceback escaped main):\n{self.error}"
        err = self.err if len(self.err) <= 2000 else self.err[:2000] + f"... ({len(self.err)} characters)"
        return f"`{self.command}` exited {self.code}; stderr: {err!r}"


def _quote(arg: str) -> str:
    return arg if arg and re.fullmatch(r"[\w./=:+-]+", arg) else repr(arg)


def run_maan(argv, timeout: float = CASE_TIMEOUT) -> Outcome:
    """``maan ARGV`` in-process, under the alarm and the memory limit: what it exited with, printed,
    or raised."""
    from maan.cli import main

    argv = [str(a) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    result = Outcome(argv, None, "", "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            with memory_limit(MEMORY_HEADROOM), time_limit(timeout):
                try:
                    result.code = main(argv)
                except SystemExit as exc:  # argparse: usage errors, --help
                    result.code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except CaseTimeout:
        result.timed_out = True
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - the very thing this suite looks for
        result.error = traceback.format_exc()
    result.out, result.err = out.getvalue(), err.getvalue()
    return result


def check_outcome(case: str, outcome: Outcome, names, *, ok: bool = True, must_fail: bool = False) -> bool:
    """Exit 0 (if ``ok``) or exit 2 with one stderr line naming one of ``names``; True for exit 0."""
    head = f"{case}\n  "
    assert not outcome.timed_out, head + outcome.describe()
    assert not outcome.error, head + outcome.describe()
    assert outcome.code in (0, 2), head + outcome.describe() + " (expected exit 0 or 2)"
    if outcome.code == 0:
        assert ok and not must_fail, head + outcome.describe() + " (expected exit 2 with one line)"
        return True
    assert "Traceback" not in outcome.err, head + outcome.describe()
    n_lines = len(outcome.lines)
    assert n_lines == 1, head + outcome.describe() + f" (expected one line, got {n_lines})"
    names = [str(n) for n in names if n]
    named = any(n in outcome.lines[0] for n in names)
    assert named, head + outcome.describe() + f" (the line names none of {names})"
    return False


def half_written(*folders) -> list[str]:
    found = []
    for folder in folders:
        folder = Path(folder)
        if folder.is_dir():
            found += [str(p) for p in folder.rglob("*") if HALF_WRITTEN.search(p.name)]
    return found


def check_no_half_written(case: str, *folders) -> None:
    left = half_written(*folders)
    assert not left, f"{case}\n  half-written file(s) left: {left}"


def check_features(case: str, store, *, manifest: bool = False) -> None:
    """The store loads, its arrays are aligned, finite and in range, its labels 0/1 (and, with
    ``manifest``, its counts agree with its files)."""
    try:
        f = maan.load_features(store)
    except maan.MaanError as exc:
        raise AssertionError(f"{case}\n  the store {store} does not load after exit 0: {exc}") from None
    n = len(f.trial)
    lengths = {"ecg": len(f.ecg), "eeg": len(f.eeg), "subject": len(f.subject), "window_start": len(f.window_start),
               **{f"labels/{t}": len(v) for t, v in f.labels.items()}}
    assert all(v == n for v in lengths.values()), f"{case}\n  misaligned store {store}: {lengths} (trial: {n})"
    ecg, eeg = np.asarray(f.ecg, dtype=np.float64), np.asarray(f.eeg, dtype=np.float64)
    assert np.isfinite(ecg).all(), f"{case}\n  non-finite RR values in {store}"
    assert ((ecg >= 0) & (ecg <= RR_MAX)).all(), (
        f"{case}\n  RR values outside [0, {RR_MAX}] s in {store}: {ecg.min():g} .. {ecg.max():g}")
    assert np.isfinite(eeg).all(), f"{case}\n  non-finite DE values in {store}"
    assert ((eeg >= DE_LOW) & (eeg <= DE_HIGH)).all(), (
        f"{case}\n  DE values outside {DE_LOW, DE_HIGH} nats in {store}: {eeg.min():g} .. {eeg.max():g}")
    assert np.isfinite(np.asarray(f.window_start, dtype=np.float64)).all(), f"{case}\n  non-finite window starts"
    for target, values in f.labels.items():
        assert set(np.unique(values).tolist()) <= {0, 1}, f"{case}\n  labels {target} not 0/1 in {store}"
    if manifest:
        m = f.manifest
        assert m.get("windows") == n, f"{case}\n  manifest says {m.get('windows')} windows, the files hold {n}"
        assert m.get("n_subjects") == len(np.unique(f.subject)) or n == 0, (
            f"{case}\n  manifest says {m.get('n_subjects')} subjects, the files hold {len(np.unique(f.subject))}")


def check_preprocess(case: str, outcome: Outcome, store, names) -> None:
    if check_outcome(case, outcome, [*names, store]):
        check_features(case, store, manifest=True)
    check_no_half_written(case, store)


@contextlib.contextmanager
def case_dir(root: Path):
    """A fresh folder for one example, removed afterwards unless the example failed."""
    path = Path(tempfile.mkdtemp(dir=root))
    try:
        yield path
    except BaseException:
        note(f"case folder kept: {path}")
        raise
    shutil.rmtree(path, ignore_errors=True)


# -- byte-level corruption -----------------------------------------------------------------------
def byte_corruption(header: int = 4096):
    """A truncation, bit flips, an overwritten range or a zeroed range of a file. An offset is a
    byte number below ``header`` (where the structure lives) or a fraction of the file's length."""
    offset = st.one_of(st.integers(0, header - 1), st.floats(0, 1, exclude_max=True))
    return st.one_of(
        st.tuples(st.just("truncate"), offset),
        st.tuples(st.just("bitflip"), st.lists(st.tuples(offset, st.integers(0, 7)), min_size=1, max_size=8)),
        st.tuples(st.just("overwrite"), offset, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("zero"), offset, st.integers(1, 4096)),
        st.tuples(st.just("empty")),
    )


def _at(offset, size: int) -> int:
    if isinstance(offset, float):
        return int(offset * size)
    return min(offset, max(size - 1, 0))


def corrupt_bytes(data: bytes, corruption) -> bytes:
    kind, size = corruption[0], len(data)
    if kind == "truncate":
        return data[:_at(corruption[1], size)]
    if kind == "empty" or not size:
        return b""
    buf = bytearray(data)
    if kind == "bitflip":
        for offset, bit in corruption[1]:
            buf[_at(offset, size)] ^= 1 << bit
    elif kind == "overwrite":
        offset, blob = _at(corruption[1], size), corruption[2]
        buf[offset:offset + len(blob)] = blob
    elif kind == "zero":
        offset, n = _at(corruption[1], size), corruption[2]
        buf[offset:offset + n] = bytes(len(buf[offset:offset + n]))
    return bytes(buf)


def corrupt_file(path: Path, corruption) -> None:
    path.write_bytes(corrupt_bytes(path.read_bytes(), corruption))


# -- JSON corruption -----------------------------------------------------------------------------
JSON_VALUES = (None, True, 0, -1, 1e308, float("nan"), float("inf"), float("-inf"), 10**30, "", "x", [], {}, [1, 2],
               {"a": 1}, "../../../../etc/passwd")


def json_paths(obj, prefix=(), depth: int = 6) -> list[tuple]:
    """Every key path of a JSON document (at most the first 3 items of a list), leaves included."""
    out = []
    if depth == 0:
        return out
    if isinstance(obj, dict):
        items = list(obj.items())
    elif isinstance(obj, list):
        items = list(enumerate(obj))[:3]
    else:
        return out
    for key, value in items:
        out.append(prefix + (key,))
        out += json_paths(value, prefix + (key,), depth - 1)
    return out


def json_mutation(doc):
    """("delete", path) or ("set", path, value) on one key path of ``doc``."""
    paths = json_paths(doc)
    path = st.sampled_from(paths)
    return st.one_of(st.tuples(st.just("delete"), path),
                     st.tuples(st.just("set"), path, st.sampled_from(JSON_VALUES)))


def mutate_json(doc, mutation):
    doc = copy.deepcopy(doc)
    path = mutation[1]
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if mutation[0] == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = mutation[2]
    return doc


def json_corruption(doc):
    """Bytes-level or key-level corruption of a JSON file."""
    return st.one_of(st.tuples(st.just("bytes"), byte_corruption(header=256)),
                     st.tuples(st.just("json"), json_mutation(doc)))


def corrupt_json_file(path: Path, corruption) -> None:
    if corruption[0] == "bytes":
        corrupt_file(path, corruption[1])
    else:
        doc = json.loads(path.read_text())
        path.write_text(json.dumps(mutate_json(doc, corruption[1]), indent=1))


# -- the artefacts, made once --------------------------------------------------------------------
EEG_NAMES = ("Fz", "Cz", "Pz", "Oz")
REC_FS = 128.0
REC_SECONDS = 40.0  # 4 windows of 10 s
REC_SUBJECTS = 3


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Torch on one thread: tiny models, a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def amigos(root):
    """One short synthetic AMIGOS participant (20 trials of 11-12 s, no NaN, no empty cell)."""
    folder = root / "amigos"
    maan.synth_cohort("amigos", folder, n_subjects=1, seed=3, short_seconds=(6, 7), long_seconds=(6, 7),
                      nan_fraction=0.0, missing_long_fraction=0.0)
    path = folder / "Data_Preprocessed_P01.mat"
    check_preprocess("the intact AMIGOS file", run_maan(
        ["preprocess", "--dataset", "amigos", "--data", folder, "--out", root / "amigos-store", "--jobs", "1", "-q"]),
        root / "amigos-store", [path.name])
    return path


@pytest.fixture(scope="module")
def dreamer(root):
    """One short synthetic DREAMER subject (18 stimuli of 10.5-11.5 s, 1-s baselines)."""
    folder = root / "dreamer"
    maan.synth_cohort("dreamer", folder, n_subjects=1, seed=3, short_seconds=(10.5, 11.5), baseline_seconds=1.0)
    path = folder / "DREAMER.mat"
    check_preprocess("the intact DREAMER file", run_maan(
        ["preprocess", "--dataset", "dreamer", "--data", folder, "--out", root / "dreamer-store", "--jobs", "1",
         "-q"]), root / "dreamer-store", [path.name])
    return path


def write_edf(path: Path, heart_rate: float, seed: int, alpha_hz: float) -> None:
    import mne
    import neurokit2 as nk

    rng = np.random.default_rng(seed)
    n = int(REC_SECONDS * REC_FS)
    t = np.arange(n) / REC_FS
    eeg = [20e-6 * np.sin(2 * np.pi * alpha_hz * t + i) + 3e-6 * rng.standard_normal(n) for i in range(len(EEG_NAMES))]
    ecg = nk.ecg_simulate(duration=int(REC_SECONDS) + 1, sampling_rate=int(REC_FS), heart_rate=heart_rate,
                          method="simple", noise=0.01, random_state=seed)[:n] * 1e-3
    info = mne.create_info([*EEG_NAMES, "ECG"], REC_FS, ["eeg"] * len(EEG_NAMES) + ["ecg"])
    raw = mne.io.RawArray(np.array(eeg + [ecg]), info, verbose="error")
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")


@pytest.fixture(scope="module")
def recordings(root):
    """Six 40-s EDF recordings (3 subjects, task 0 at rest / 1 with a faster heart) and labels.csv."""
    pytest.importorskip("edfio")
    folder = root / "recordings"
    folder.mkdir()
    rows = []
    for s in range(REC_SUBJECTS):
        for task, hr, alpha in ((0, 62, 10.0), (1, 96, 20.0)):
            name = f"S{s}_{task}.edf"
            write_edf(folder / name, hr, 10 * s + task, alpha)
            rows.append(f"{name},S{s},{task}")
    (folder / "labels.csv").write_text("file,subject,task\n" + "\n".join(rows) + "\n")
    return folder


def preprocess_recordings_argv(data, out, *extra):
    return ["preprocess", "--dataset", "recordings", "--data", data, "--out", out, "--jobs", "1", "-q", *extra]


@pytest.fixture(scope="module")
def store(root, recordings):
    out = root / "store"
    check_preprocess("the intact recordings", run_maan(preprocess_recordings_argv(recordings, out)), out, [])
    return out


def train_argv(features, out, *extra):
    return ["train", "--features", features, "--target", "task", "--out", out, "-q", "--accelerator", "cpu", *extra]


def cv_argv(features, out, *extra):
    return ["cv", "--features", features, "--target", "task", "--out", out, "--folds", "2", "-q", "--accelerator",
            "cpu", *extra]


@pytest.fixture(scope="module")
def model(root, store):
    """A 1-epoch checkpoint trained on the recordings store: model.pt + model.json."""
    out = root / "model"
    check_outcome("training the fixture checkpoint", run_maan(train_argv(store, out, "--epochs", "1")), [], ok=True)
    return out / "model.pt"


@pytest.fixture(scope="module")
def cv_run(root, store):
    """A finished 2-fold, 1-epoch cv run folder with its figures."""
    out = root / "cv-run"
    check_outcome("the fixture cv run", run_maan(cv_argv(store, out, "--epochs", "1")), [], ok=True)
    check_outcome("the fixture figures", run_maan(["figures", out, "--format", "png"]), [], ok=True)
    return out


def copy_data(src_file: Path, dest: Path) -> Path:
    """A copy of ``src_file``'s folder (the data file and its synthetic markers) in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in src_file.parent.iterdir():
        if f.is_file():
            shutil.copy(f, dest / f.name)
    return dest / src_file.name


# == (1) AMIGOS and DREAMER .mat files ============================================================
def test_amigos_mat_bytes(pytestconfig, amigos, root):
    """Truncations, bit flips and overwritten bytes of an AMIGOS participant file."""
    @fuzz(pytestconfig, 15)
    @given(corruption=byte_corruption(), skip_invalid=st.booleans())
    def case(corruption, skip_invalid):
        with case_dir(root) as d:
            path = copy_data(amigos, d / "data")
            corrupt_file(path, corruption)
            out = d / "store"
            argv = ["preprocess", "--dataset", "amigos", "--data", path.parent, "--out", out, "--jobs", "1", "-q"]
            argv += ["--skip-invalid"] if skip_invalid else []
            check_preprocess(f"AMIGOS file {path.name} corrupted: {corruption}", run_maan(argv), out,
                             [path.name, path.parent])

    case()


#: what a MATLAB variable, a cell or a field is replaced with
VALUE_KINDS = ("nan", "inf", "-inf", "1e39", "1e308", "complex", "string", "empty", "int8", "bool", "scalar",
               "transposed", "columns-1", "columns+1", "1-D", "3-D", "nested-cell", "struct")
#: in-place damage of part of a numeric array
PART_KINDS = ("nan", "inf", "-inf", "1e39", "-1e39", "1e308", "0", "1e-308")


def replacement(kind: str, like):
    """A value of kind ``kind`` in place of the array ``like`` (a cell or a variable)."""
    numeric = isinstance(like, np.ndarray) and np.issubdtype(like.dtype, np.number)
    a = np.asarray(like) if numeric else np.zeros((3, 4))
    if a.ndim != 2 or a.size == 0:
        a = np.atleast_2d(np.asarray(a, dtype=np.float64)) if a.size else np.zeros((3, 4))
    value = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "1e39": 1e39, "1e308": 1e308}
    if kind in value:
        return np.full(a.shape, value[kind])
    if kind == "complex":
        return a.astype(np.complex128) * (1 + 1j)
    if kind == "string":
        return np.array(["not a number"])
    if kind == "empty":
        return np.zeros((0, 0))
    if kind == "int8":
        return np.clip(a, -128, 127).astype(np.int8)
    if kind == "bool":
        return a > np.median(a)
    if kind == "scalar":
        return np.array([[1.0]])
    if kind == "transposed":
        return a.T.copy()
    if kind == "columns-1":
        return a[:, :-1].copy() if a.shape[1] > 1 else np.zeros((a.shape[0], 0))
    if kind == "columns+1":
        return np.hstack([a, a[:, :1]])
    if kind == "1-D":
        return a.ravel()
    if kind == "3-D":
        return a[None, :, :].repeat(2, axis=0)
    if kind == "nested-cell":
        cell = np.empty((1, 1), dtype=object)
        cell[0, 0] = a
        return cell
    if kind == "struct":
        s = np.empty((1, 1), dtype=[("x", object)])
        s[0, 0] = (a,)
        return s
    raise ValueError(kind)


def damage_part(a: np.ndarray, kind: str, start: float, length: float, column: int | None) -> np.ndarray:
    """``a`` (samples x channels) with rows [start, start+length) (fractions) of one column (or all)
    set to the value of ``kind``."""
    a = np.array(a, dtype=np.float64)
    n = a.shape[0]
    lo = int(start * n)
    hi = max(lo + 1, int((start + length) * n))
    cols = slice(None) if column is None else column % a.shape[1]
    a[lo:hi, cols] = float(kind)
    return a


def part_damage():
    return st.tuples(st.sampled_from(PART_KINDS), st.floats(0, 0.99), st.floats(0, 1),
                     st.one_of(st.none(), st.integers(0, 16)))


def amigos_mutation():
    trial = st.integers(0, C.AMIGOS_N_TRIALS - 1)
    variables = st.sampled_from(("joined_data", "labels_selfassessment", "VideoIDs", "labels_ext_annotation"))
    return st.one_of(
        st.tuples(st.just("drop-variable"), variables),
        st.tuples(st.just("replace-variable"), variables, st.sampled_from(VALUE_KINDS)),
        st.tuples(st.just("cells"), variables, st.integers(1, 40)),  # a cell array of another length
        st.tuples(st.just("cell"), st.sampled_from(("joined_data", "labels_selfassessment")), trial,
                  st.sampled_from(VALUE_KINDS)),
        st.tuples(st.just("part"), trial, part_damage()),
        st.tuples(st.just("rating"), trial, st.sampled_from(C.AMIGOS_RATINGS[:4]),
                  st.sampled_from(("nan", "inf", "-inf", "1e39", "-1e39", "1e308", "0", "-1", "100"))),
    )


def mutate_amigos(mat: dict, mutation) -> dict:
    mat = {k: v for k, v in mat.items() if not k.startswith("__")}
    kind = mutation[0]
    if kind == "drop-variable":
        mat.pop(mutation[1], None)
    elif kind == "replace-variable":
        mat[mutation[1]] = replacement(mutation[2], mat.get(mutation[1]))
    elif kind == "cells":
        old = mat[mutation[1]].ravel()
        cells = np.empty((1, mutation[2]), dtype=object)
        for i in range(mutation[2]):
            cells[0, i] = old[i % len(old)]
        mat[mutation[1]] = cells
    elif kind == "cell":
        cells = mat[mutation[1]].copy()
        flat = cells.reshape(-1)
        flat[mutation[2]] = replacement(mutation[3], flat[mutation[2]])
        mat[mutation[1]] = cells
    elif kind == "part":
        cells = mat["joined_data"].copy()
        flat = cells.reshape(-1)
        flat[mutation[1]] = damage_part(flat[mutation[1]], *mutation[2])
        mat["joined_data"] = cells
    elif kind == "rating":
        cells = mat["labels_selfassessment"].copy()
        flat = cells.reshape(-1)
        labels = np.array(flat[mutation[1]], dtype=np.float64)
        labels.reshape(-1)[C.AMIGOS_RATINGS.index(mutation[2])] = float(mutation[3])
        flat[mutation[1]] = labels
        mat["labels_selfassessment"] = cells
    return mat


@pytest.fixture(scope="module")
def amigos_mat(amigos):
    return scipy.io.loadmat(amigos)


def test_amigos_mat_semantic(pytestconfig, amigos, amigos_mat, root):
    """Variables missing or replaced, cells of the wrong dtype/shape, NaN/inf/1e39 samples and ratings."""

    @fuzz(pytestconfig, 20)
    @given(mutation=amigos_mutation(), skip_invalid=st.booleans())
    def case(mutation, skip_invalid):
        with case_dir(root) as d:
            path = copy_data(amigos, d / "data")
            scipy.io.savemat(path, mutate_amigos(amigos_mat, mutation), format="5", oned_as="row")
            out = d / "store"
            argv = ["preprocess", "--dataset", "amigos", "--data", path.parent, "--out", out, "--jobs", "1", "-q"]
            argv += ["--skip-invalid"] if skip_invalid else []
            check_preprocess(f"AMIGOS file {path.name} rewritten with {mutation}", run_maan(argv), out,
                             [path.name, path.parent])

    case()


def test_dreamer_mat_bytes(pytestconfig, dreamer, root):
    """Truncations, bit flips and overwritten bytes of DREAMER.mat."""
    @fuzz(pytestconfig, 10)
    @example(corruption=("zero", 0, 16))  # no MAT header: scipy reads a v4 file of garbage names
    @given(corruption=byte_corruption())
    def case(corruption):
        with case_dir(root) as d:
            path = copy_data(dreamer, d / "data")
            corrupt_file(path, corruption)
            out = d / "store"
            argv = ["preprocess", "--dataset", "dreamer", "--data", path.parent, "--out", out, "--jobs", "1", "-q"]
            check_preprocess(f"DREAMER.mat corrupted: {corruption}", run_maan(argv), out, [path.name, path.parent])

    case()


def _field_set(struct: np.ndarray, name: str, value) -> np.ndarray:
    """A copy of the 1x1 MATLAB struct ``struct`` with field ``name`` set (added if absent, removed
    if ``value`` is DROP)."""
    names = [n for n in struct.dtype.names if not (n == name and value is DROP)]
    if value is not DROP and name not in names:
        names.append(name)
    out = np.empty(struct.shape, dtype=[(n, object) for n in names])
    for n in names:
        out[n] = struct[n] if n != name else np.array([[None]], dtype=object)
    if value is not DROP:
        out[name][0, 0] = value
    return out


DROP = object()
DREAMER_TOP = ("Data", "EEG_SamplingRate", "ECG_SamplingRate", "EEG_Electrodes")
DREAMER_SUBJECT = ("EEG", "ECG", "ScoreValence", "ScoreArousal", "ScoreDominance")


def dreamer_mutation():
    trial = st.integers(0, C.DREAMER_N_TRIALS - 1)
    rates = ("nan", "inf", "-inf", "0", "-1", "1e39", "1e308", "1e-308", "0.5", "3")
    return st.one_of(
        st.tuples(st.just("top-drop"), st.sampled_from(DREAMER_TOP)),
        st.tuples(st.just("top-replace"), st.sampled_from(DREAMER_TOP), st.sampled_from(VALUE_KINDS)),
        st.tuples(st.just("rate"), st.sampled_from(("EEG_SamplingRate", "ECG_SamplingRate")), st.sampled_from(rates)),
        st.tuples(st.just("electrodes"), st.sampled_from(("shuffled", "renamed", "short", "numbers", "duplicate"))),
        st.tuples(st.just("subject-drop"), st.sampled_from(DREAMER_SUBJECT)),
        st.tuples(st.just("subject-replace"), st.sampled_from(DREAMER_SUBJECT), st.sampled_from(VALUE_KINDS)),
        st.tuples(st.just("stimulus"), st.sampled_from(("EEG", "ECG")), trial, st.sampled_from(VALUE_KINDS)),
        st.tuples(st.just("stimuli-count"), st.sampled_from(("EEG", "ECG")), st.integers(0, 30)),
        st.tuples(st.just("part"), st.sampled_from(("EEG", "ECG")), trial, part_damage()),
        st.tuples(st.just("score"), st.sampled_from(("ScoreValence", "ScoreArousal")), trial,
                  st.sampled_from(("nan", "inf", "-inf", "1e39", "1e308", "0", "-1", "100"))),
    )


def mutate_dreamer(mat: dict, mutation) -> dict:
    top = copy.deepcopy(mat["DREAMER"])
    kind = mutation[0]
    if kind == "top-drop":
        top = _field_set(top, mutation[1], DROP)
    elif kind == "top-replace":
        top = _field_set(top, mutation[1], replacement(mutation[2], top[mutation[1]][0, 0]))
    elif kind == "rate":
        top = _field_set(top, mutation[1], np.array([[float(mutation[2])]]))
    elif kind == "electrodes":
        names = list(C.DREAMER_EEG_CHANNELS)
        change = mutation[1]
        if change == "shuffled":
            names = names[::-1]
        elif change == "renamed":
            names[3] = "XX"
        elif change == "short":
            names = names[:-1]
        elif change == "duplicate":
            names[1] = names[0]
        cells = np.empty((1, len(names)), dtype=object)
        for i, n in enumerate(names):
            cells[0, i] = np.array([i + 0.5]) if change == "numbers" else np.array([n])
        top = _field_set(top, "EEG_Electrodes", cells)
    else:
        data = top["Data"][0, 0]
        subject = data.reshape(-1)[0]
        if kind == "subject-drop":
            subject = _field_set(subject, mutation[1], DROP)
        elif kind == "subject-replace":
            subject = _field_set(subject, mutation[1], replacement(mutation[2], subject[mutation[1]][0, 0]))
        elif kind in ("stimulus", "stimuli-count", "part"):
            modality = subject[mutation[1]][0, 0]
            stimuli = modality["stimuli"][0, 0].copy()
            if kind == "stimulus":
                stimuli.reshape(-1)[mutation[2]] = replacement(mutation[3], stimuli.reshape(-1)[mutation[2]])
            elif kind == "part":
                stimuli.reshape(-1)[mutation[2]] = damage_part(stimuli.reshape(-1)[mutation[2]], *mutation[3])
            else:
                old = stimuli.reshape(-1)
                stimuli = np.empty((mutation[2], 1), dtype=object)
                for i in range(mutation[2]):
                    stimuli[i, 0] = old[i % len(old)]
            modality = _field_set(modality, "stimuli", stimuli)
            subject = _field_set(subject, mutation[1], modality)
        elif kind == "score":
            scores = np.array(subject[mutation[1]][0, 0], dtype=np.float64)
            scores.reshape(-1)[mutation[2]] = float(mutation[3])
            subject = _field_set(subject, mutation[1], scores)
        data = data.copy()
        data.reshape(-1)[0] = subject
        top = _field_set(top, "Data", data)
    return {"DREAMER": top}


@pytest.fixture(scope="module")
def dreamer_mat(dreamer):
    return scipy.io.loadmat(dreamer)


def test_dreamer_mat_semantic(pytestconfig, dreamer, dreamer_mat, root):
    """Fields missing or replaced, odd sampling rates and electrodes, damaged stimuli and scores."""

    @fuzz(pytestconfig, 20)
    @example(mutation=("top-drop", "EEG_SamplingRate"))  # a field the reader has a default for
    @example(mutation=("rate", "EEG_SamplingRate", "3"))  # positive, but below the EEG bands' Nyquist rate
    @given(mutation=dreamer_mutation())
    def case(mutation):
        with case_dir(root) as d:
            path = copy_data(dreamer, d / "data")
            scipy.io.savemat(path, mutate_dreamer(dreamer_mat, mutation), format="5", oned_as="row")
            out = d / "store"
            argv = ["preprocess", "--dataset", "dreamer", "--data", path.parent, "--out", out, "--jobs", "1", "-q"]
            check_preprocess(f"DREAMER.mat rewritten with {mutation}", run_maan(argv), out, [path.name, path.parent])

    case()


# == (2) EDF recordings ============================================================================
EDF_FIELDS = (("version", 0, 8), ("startdate", 168, 8), ("starttime", 176, 8), ("header_bytes", 184, 8),
              ("reserved", 192, 44), ("n_records", 236, 8), ("record_duration", 244, 8), ("n_signals", 252, 4))
EDF_SIGNAL_FIELDS = (("label", 16), ("transducer", 80), ("physical_dimension", 8), ("physical_min", 8),
                     ("physical_max", 8), ("digital_min", 8), ("digital_max", 8), ("prefiltering", 80),
                     ("n_samples", 8), ("reserved", 32))
EDF_VALUES = ("nan", "inf", "-inf", "0", "-1", "1e39", "1e308", "99999999", "-9999999", "abc", "", "1.5", "0.001",
              "+", "EDF+D", "ECG", "Fz")


def edf_field_offset(data: bytes, field, signal: int) -> tuple[int, int]:
    """(offset, width) of a header field (a signal's field: of signal number ``signal``)."""
    for name, offset, width in EDF_FIELDS:
        if name == field:
            return offset, width
    ns = int(data[252:256].decode("ascii", "replace").strip() or 0)
    offset = 256
    for name, width in EDF_SIGNAL_FIELDS:
        if name == field:
            return offset + width * (signal % max(ns, 1)), width
        offset += width * ns
    raise ValueError(field)


def edf_corruption():
    fields = [f[0] for f in EDF_FIELDS] + [f[0] for f in EDF_SIGNAL_FIELDS]
    return st.one_of(
        st.tuples(st.just("bytes"), byte_corruption(header=256 * 7)),
        st.tuples(st.just("field"), st.sampled_from(fields), st.integers(0, 6), st.sampled_from(EDF_VALUES)),
    )


def corrupt_edf(path: Path, corruption) -> None:
    if corruption[0] == "bytes":
        corrupt_file(path, corruption[1])
        return
    data = bytearray(path.read_bytes())
    offset, width = edf_field_offset(bytes(data), corruption[1], corruption[2])
    data[offset:offset + width] = corruption[3].encode("ascii")[:width].ljust(width)
    path.write_bytes(bytes(data))


def test_edf_corruption(pytestconfig, recordings, root):
    """Truncated EDF files, bit flips and nonsense in header fields and samples (--dataset recordings)."""
    files = sorted(p.name for p in recordings.glob("*.edf"))
    size = (recordings / files[0]).stat().st_size

    @fuzz(pytestconfig, 20)
    @example(corruption=("bytes", ("truncate", size - 100)), which=0, skip_invalid=False)  # a truncated last record
    @example(corruption=("field", "physical_min", 4, "0"), which=0, skip_invalid=False)
    @given(corruption=edf_corruption(), which=st.integers(0, len(files) - 1), skip_invalid=st.booleans())
    def case(corruption, which, skip_invalid):
        with case_dir(root) as d:
            data = d / "data"
            shutil.copytree(recordings, data)
            path = data / files[which]
            corrupt_edf(path, corruption)
            out = d / "store"
            argv = preprocess_recordings_argv(data, out, *(["--skip-invalid"] if skip_invalid else []))
            check_preprocess(f"EDF {path.name} corrupted: {corruption}", run_maan(argv), out,
                             [path.name, data, "labels.csv"])

    case()


# == (3) the labels CSV ============================================================================
LABEL_CELLS = ("0", "1", "", "nan", "NaN", "inf", "-inf", "1e308", "-1e308", "-1", "2", "abc", "0.5", " 1 ", "1e-308",
               "0x1", "\u0661", "1e39", "+1", "True")
FILE_CELLS = ("missing.edf", "", ".", "labels.csv", "../S0_0.edf", "S0_0.edf", "S 0.edf", "/nonexistent/x.edf",
              "S1_1.edf")
SUBJECT_CELLS = ("", "a b", "../x", "\u00fc", "S0", "x" * 300, "-", ".hidden", "S1")


def labels_corruption(n_rows: int):
    row = st.integers(0, n_rows - 1)
    mutation = st.one_of(
        st.tuples(st.just("cell"), row, st.just(0), st.sampled_from(FILE_CELLS)),
        st.tuples(st.just("cell"), row, st.just(1), st.sampled_from(SUBJECT_CELLS)),
        st.tuples(st.just("cell"), row, st.just(2), st.sampled_from(LABEL_CELLS)),
        st.tuples(st.just("drop-cell"), row),
        st.tuples(st.just("extra-cell"), row),
        st.tuples(st.just("duplicate-row"), row),
        st.tuples(st.just("drop-column"), st.integers(0, 2)),
        st.tuples(st.just("rename-column"), st.integers(0, 2),
                  st.sampled_from(("", "file", "subject", "task ", "Task", "x", "task"))),
        st.tuples(st.just("header-only")),
        st.tuples(st.just("empty")),
        st.tuples(st.just("bom")),
        st.tuples(st.just("invalid-utf8")),
        st.tuples(st.just("semicolons")),
    )
    return st.one_of(
        st.tuples(st.just("random-bytes"), st.binary(max_size=300)),
        st.tuples(st.just("table"), st.lists(mutation, min_size=1, max_size=3)),
    )


def labels_content(rows: list[list[str]], corruption) -> bytes:
    if corruption[0] == "random-bytes":
        return corruption[1]
    header = ["file", "subject", "task"]
    rows = [list(r) for r in rows]
    prefix, suffix, sep = b"", b"", ","
    for m in corruption[1]:
        kind = m[0]
        if kind == "cell" and m[1] < len(rows) and m[2] < len(rows[m[1]]):
            rows[m[1]][m[2]] = m[3]
        elif kind == "drop-cell" and m[1] < len(rows) and rows[m[1]]:
            rows[m[1]].pop()
        elif kind == "extra-cell" and m[1] < len(rows):
            rows[m[1]].append("1")
        elif kind == "duplicate-row" and m[1] < len(rows):
            rows.append(list(rows[m[1]]))
        elif kind == "drop-column" and m[1] < len(header):
            header.pop(m[1])
            rows = [r[:m[1]] + r[m[1] + 1:] for r in rows]
        elif kind == "rename-column" and m[1] < len(header):
            header[m[1]] = m[2]
        elif kind == "header-only":
            rows = []
        elif kind == "empty":
            header, rows = None, []
        elif kind == "bom":
            prefix = b"\xef\xbb\xbf"
        elif kind == "invalid-utf8":
            suffix = b"\xff\xfe\x00bad"
        elif kind == "semicolons":
            sep = ";"
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return prefix + buffer.getvalue().encode("utf-8") + suffix


def test_labels_csv(pytestconfig, recordings, root):
    """Random bytes, missing or renamed columns, NaN/inf/non-numeric cells, bad rows in labels.csv."""
    rows = [r for r in csv.reader((recordings / "labels.csv").read_text().splitlines()[1:])]

    @fuzz(pytestconfig, 30)
    @example(corruption=("table", [("cell", 0, 2, "nan")]), threshold=None)
    @example(corruption=("table", [("cell", 1, 2, "inf")]), threshold="0.5")
    @given(corruption=labels_corruption(len(rows)), threshold=st.sampled_from((None, "0.5", "-1")))
    def case(corruption, threshold):
        with case_dir(root) as d:
            labels = d / "labels.csv"
            labels.write_bytes(labels_content(rows, corruption))
            out = d / "store"
            argv = preprocess_recordings_argv(recordings, out, "--labels", labels,
                                              *(["--threshold", threshold] if threshold else []))
            check_preprocess(f"labels.csv corrupted: {corruption} (--threshold {threshold})", run_maan(argv), out,
                             [labels.name, labels.parent, recordings])

    case()


# == (4) the feature store ========================================================================
H5_DATASETS = ("ecg", "eeg", "trial", "window_start", "ratings", "labels/task", "labels")
H5_OPS = ("drop", "shorten", "no-rows", "nan", "inf", "-inf", "1e30", "-1e30", "negative", "label-7", "label--1",
          "string", "scalar", "reshape", "float")


def store_corruption(subjects: list[str], manifest: dict):
    subject = st.sampled_from(subjects)
    return st.one_of(
        st.tuples(st.just("manifest"), json_corruption(manifest)),
        st.tuples(st.just("h5-bytes"), subject, byte_corruption(header=4096)),
        st.tuples(st.just("h5-delete"), subject),
        # rehash: the manifest's size and SHA-256 are updated to the damaged file, as a store written
        # by a faulty or foreign writer would have them, so that the damage reaches the reader
        st.tuples(st.just("h5"), subject, st.sampled_from(H5_DATASETS), st.sampled_from(H5_OPS), st.integers(0, 10**6),
                  st.booleans()),
    )


def mutate_h5(path: Path, name: str, op: str, where: int, rehash: bool = False) -> None:
    import h5py

    with h5py.File(path, "r+") as h5:
        if name not in h5:
            return
        node = h5[name]
        if op == "drop" or isinstance(node, h5py.Group):
            del h5[name]
            if op != "drop":
                h5.create_dataset(name, data=np.zeros(3))
            return
        data = node[...]
        del h5[name]
        if op == "shorten":
            data = data[:-1]
        elif op == "no-rows":
            data = data[:0]
        elif op in ("nan", "inf", "-inf", "1e30", "-1e30", "negative"):
            data = np.array(data, dtype=np.float64)
            if data.size:
                data.reshape(-1)[where % data.size] = -0.5 if op == "negative" else float(op)
        elif op in ("label-7", "label--1"):
            data = np.array(data)
            if data.size:
                data.reshape(-1)[where % data.size] = 7 if op == "label-7" else -1
        elif op == "string":
            data = np.array([b"not a number"] * max(1, len(data)))
        elif op == "scalar":
            data = np.float64(1.0)
        elif op == "reshape":
            data = data.reshape(len(data), -1) if data.ndim > 1 else data[:, None].repeat(2, axis=1)
        elif op == "float":
            data = np.asarray(data, dtype=np.float64) + 0.5
        h5.create_dataset(name, data=data)
    if rehash:
        import hashlib

        manifest_path = path.parent.parent / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        entry = manifest["subjects"][path.stem]
        entry["size"] = path.stat().st_size
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest_path.write_text(json.dumps(manifest, indent=1))


def corrupt_store(store: Path, corruption) -> Path:
    """Apply ``corruption``; returns the file it damaged."""
    kind = corruption[0]
    if kind == "manifest":
        path = store / "manifest.json"
        corrupt_json_file(path, corruption[1])
        return path
    path = store / "subjects" / f"{corruption[1]}.h5"
    if kind == "h5-bytes":
        corrupt_file(path, corruption[2])
    elif kind == "h5-delete":
        path.unlink()
    else:
        mutate_h5(path, *corruption[2:])
    return path


def check_repair(case: str, store: Path, data: Path, names) -> None:
    """``maan preprocess`` rerun on a damaged store: exit 0 and a sound store, or exit 2 saying to
    pass --overwrite, which then repairs it."""
    outcome = run_maan(preprocess_recordings_argv(data, store))
    if not check_outcome(case + "; rerun of maan preprocess", outcome, names):
        assert "--overwrite" in outcome.lines[0], (
            f"{case}\n  the rerun of maan preprocess neither repaired the store nor said how: {outcome.describe()}")
        outcome = run_maan(preprocess_recordings_argv(data, store, "--overwrite"))
        check_outcome(case + "; maan preprocess --overwrite", outcome, names, ok=True)
        assert outcome.code == 0, f"{case}\n  --overwrite did not repair the store: {outcome.describe()}"
    check_features(case + "; after the rerun of maan preprocess", store, manifest=True)
    check_no_half_written(case, store)


def test_store_corruption(pytestconfig, store, model, recordings, root):
    """A damaged manifest or subject file: train, cv and evaluate exit 2 with one line (or 0 on a
    store that is still sound), and a rerun of maan preprocess repairs the store."""
    subjects = sorted(p.stem for p in (store / "subjects").glob("*.h5"))
    manifest = json.loads((store / "manifest.json").read_text())

    @fuzz(pytestconfig, 20)
    @example(corruption=("h5", subjects[0], "eeg", "shorten", 0, True), consumer="train")  # eeg misaligned
    @example(corruption=("h5", subjects[0], "ecg", "nan", 3, True), consumer="evaluate")
    @given(corruption=store_corruption(subjects, manifest), consumer=st.sampled_from(("evaluate", "train", "cv")))
    def case(corruption, consumer):
        with case_dir(root) as d:
            copy_store = d / "store"
            shutil.copytree(store, copy_store)
            damaged = corrupt_store(copy_store, corruption)
            what = f"store file {damaged.relative_to(copy_store)} corrupted: {corruption}"
            names = [copy_store, damaged.name, "--target", "target"]
            if consumer == "evaluate":
                argv = ["evaluate", "--checkpoint", model, "--features", copy_store, "--out", d / "eval.json"]
            elif consumer == "train":
                argv = train_argv(copy_store, d / "model", "--epochs", "1")
            else:
                argv = cv_argv(copy_store, d / "run", "--epochs", "1")
            outcome = run_maan(argv)
            if check_outcome(f"{what}; maan {consumer}", outcome, names):
                check_features(f"{what}; maan {consumer} exited 0, so the store must be sound", copy_store)
            check_no_half_written(what, d)
            check_repair(what, copy_store, recordings, names)
            again = run_maan(argv)
            check_outcome(f"{what}; maan {consumer} after the repair", again, names, ok=True)
            assert again.code == 0, f"{what}\n  maan {consumer} fails on the repaired store: {again.describe()}"

    case()


# == (5) run folders ==============================================================================
RUN_FILES = ("run.json", "results.json", "folds/fold-00/baselines.json", "folds/fold-00/maan.result.json",
             "folds/fold-01/maan.json", "folds/fold-01/maan.pt", "folds/fold-00/maan.predictions.npz",
             "logs/fold-00/maan/metrics.csv", "figures/metrics.json")


def run_corruption(run: Path):
    docs = {name: json.loads((run / name).read_text()) for name in RUN_FILES if name.endswith(".json")}
    json_files = st.sampled_from(sorted(docs))
    return st.one_of(
        st.tuples(st.just("bytes"), st.sampled_from(RUN_FILES), byte_corruption(header=2048)),
        st.tuples(st.just("delete"), st.sampled_from(RUN_FILES + ("folds/fold-01", "folds", "logs", "figures"))),
        json_files.flatmap(lambda name: st.tuples(st.just("json"), st.just(name), json_mutation(docs[name]))),
    )


def corrupt_run(run: Path, corruption) -> Path:
    path = run / corruption[1]
    if corruption[0] == "bytes":
        corrupt_file(path, corruption[2])
    elif corruption[0] == "delete":
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    else:
        path.write_text(json.dumps(mutate_json(json.loads(path.read_text()), corruption[2]), indent=1))
    return path


def check_results(case: str, path: Path) -> None:
    """results.json of a cv run: every model's per-fold metrics are finite and in [0, 1]."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AssertionError(f"{case}\n  maan cv exited 0 but {path} is unreadable: {exc}") from None
    for name, entry in results["models"].items():
        for fold in entry["per_fold"]:
            for key in ("acc", "sen", "spe", "f1"):
                value = fold.get(key)
                assert value is None or (math.isfinite(value) and 0 <= value <= 1), (
                    f"{case}\n  {path}: {name} fold {fold.get('fold')} {key} = {value!r}")


def test_run_folder_corruption(pytestconfig, cv_run, store, root):
    """A damaged cv run folder: the same maan cv rerun exits 0 (redoing what is broken) or 2 with one
    line, never telling to rerun when the rerun cannot help; figures and report exit 0 or 2."""

    @fuzz(pytestconfig, 15)
    @example(corruption=("bytes", "folds/fold-00/maan.result.json", ("truncate", 10)), consumer="cv")
    @given(corruption=run_corruption(cv_run), consumer=st.sampled_from(("cv", "figures", "report")))
    def case(corruption, consumer):
        with case_dir(root) as d:
            run = d / "run"
            shutil.copytree(cv_run, run)
            damaged = corrupt_run(run, corruption)
            what = f"run folder {corruption[1]} corrupted: {corruption}"
            names = [run, damaged.name, store]
            if consumer == "cv":
                argv = cv_argv(store, run, "--epochs", "1")
            elif consumer == "figures":
                argv = ["figures", run, "--out", d / "figures", "--format", "png", "--max-points", "50"]
            else:
                argv = ["report", run, "--out", d / "report.html"]
            outcome = run_maan(argv)
            ok = check_outcome(f"{what}; maan {consumer}", outcome, names)
            check_no_half_written(what, d)
            if consumer == "cv" and ok:
                check_results(f"{what}; maan cv", run / "results.json")
            if consumer == "cv" and not ok and "rerun" in outcome.lines[0]:
                again = run_maan(argv)
                check_outcome(f"{what}; maan cv rerun as told", again, names)
                assert again.code == 0 or again.lines != outcome.lines, (
                    f"{what}\n  maan cv says to rerun, and the rerun fails the same way: {again.describe()}")

    case()


# == (6) checkpoints ===============================================================================
def checkpoint_corruption(meta: dict):
    return st.one_of(
        st.tuples(st.just("pt-bytes"), byte_corruption(header=2048), st.booleans()),
        st.tuples(st.just("pt-object"), st.sampled_from(("dict-of-ints", "list", "wrong-shapes", "extra-key",
                                                         "missing-key", "nan-weights", "pickled-object")),
                  st.booleans()),
        st.tuples(st.just("pt-delete")),
        st.tuples(st.just("json"), json_corruption(meta)),
        st.tuples(st.just("json-delete")),
    )


class _Pickled:
    """An object torch.load(weights_only=True) must refuse."""


def corrupt_checkpoint(pt: Path, corruption) -> Path:
    """Apply ``corruption`` to pt (+ its .json); returns the file damaged. ``fix_hash``: the .json's
    SHA-256 is updated to the new weights, so the damage reaches the weights loader."""
    import hashlib

    import torch

    js = pt.with_suffix(".json")
    kind = corruption[0]
    if kind in ("pt-bytes", "pt-object"):
        if kind == "pt-bytes":
            corrupt_file(pt, corruption[1])
        else:
            state = torch.load(pt, weights_only=True)
            first = next(iter(state))
            which = corruption[1]
            if which == "dict-of-ints":
                state = {k: 1 for k in state}
            elif which == "list":
                state = list(state.values())
            elif which == "wrong-shapes":
                state = {k: torch.zeros(3, 3) for k in state}
            elif which == "extra-key":
                state["extra.weight"] = torch.zeros(1)
            elif which == "missing-key":
                del state[first]
            elif which == "nan-weights":
                state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}
            elif which == "pickled-object":
                state = {first: _Pickled()}
            torch.save(state, pt)
        if corruption[2]:
            meta = json.loads(js.read_text())
            meta["weights_sha256"] = hashlib.sha256(pt.read_bytes()).hexdigest()
            js.write_text(json.dumps(meta, indent=1))
        return pt
    if kind == "pt-delete":
        pt.unlink()
        return pt
    if kind == "json-delete":
        js.unlink()
        return js
    corrupt_json_file(js, corruption[1])
    return js


def check_predictions(case: str, path: Path) -> None:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, f"{case}\n  maan predict exited 0 but wrote no window to {path}"
    for row in rows:
        for key, value in row.items():
            if key.startswith("prob_") and not row["flags"]:
                assert value and math.isfinite(float(value)) and 0 <= float(value) <= 1, (
                    f"{case}\n  unflagged window with {key} = {value!r} in {path}: {row}")
            if key.startswith("pred_") and not row["flags"]:
                assert value in ("0", "1"), f"{case}\n  unflagged window with {key} = {value!r} in {path}: {row}"


def check_evaluation(case: str, path: Path) -> None:
    result = json.loads(path.read_text())
    for key in ("acc", "sen", "spe", "auc"):
        value = result["metrics"].get(key)
        assert value is not None and math.isfinite(value) and 0 <= value <= 1, (
            f"{case}\n  maan evaluate exited 0 with metric {key} = {value!r}")


def test_checkpoint_corruption(pytestconfig, model, store, recordings, root):
    """Damaged weights (.pt) or configuration (.json): predict and evaluate exit 2 naming the file,
    or 0 with finite probabilities when the damage does not matter."""
    meta = json.loads(model.with_suffix(".json").read_text())
    recording = recordings / "S0_0.edf"

    @fuzz(pytestconfig, 30)
    @example(corruption=("json", ("json", ("set", ("normalizer", "stats", "ecg_std"), float("nan")))),
             consumer="predict")
    @example(corruption=("json", ("json", ("set", ("normalizer", "stats", "ecg_mean"), float("inf")))),
             consumer="evaluate")
    @example(corruption=("pt-object", "nan-weights", True), consumer="predict")  # a diverged training run
    @given(corruption=checkpoint_corruption(meta), consumer=st.sampled_from(("predict", "evaluate")))
    def case(corruption, consumer):
        with case_dir(root) as d:
            pt = d / "ckpt" / "model.pt"
            pt.parent.mkdir()
            shutil.copy(model, pt)
            shutil.copy(model.with_suffix(".json"), pt.with_suffix(".json"))
            damaged = corrupt_checkpoint(pt, corruption)
            what = f"checkpoint {damaged.name} corrupted: {corruption}"
            out = d / "out"
            out.mkdir()
            if consumer == "predict":
                argv = ["predict", "--checkpoint", pt, "--input", recording, "--out", out / "p.csv", "-q"]
            else:
                argv = ["evaluate", "--checkpoint", pt, "--features", store, "--out", out / "e.json"]
            # weights that no longer match their .json's SHA-256, or a missing file, must be refused
            changed = not pt.exists() or pt.read_bytes() != model.read_bytes()
            must_fail = corruption[0] in ("pt-delete", "json-delete") or (
                corruption[0] in ("pt-bytes", "pt-object") and changed and not corruption[2])
            outcome = run_maan(argv)
            if check_outcome(f"{what}; maan {consumer}", outcome, [damaged.name, pt.parent], must_fail=must_fail):
                if consumer == "predict":
                    check_predictions(what, out / "p.csv")
                else:
                    check_evaluation(what, out / "e.json")
            check_no_half_written(what, d)

    case()


# == (7) numeric options ============================================================================
def as_number(text: str):
    """The float of ``text`` as argparse's ``float`` reads it, or None."""
    try:
        return float(text)
    except ValueError:
        return None


def as_int(text: str):
    try:
        return int(text)
    except ValueError:
        return None


def invalid_positive(text: str) -> bool:  # float > 0 and finite
    v = as_number(text)
    return v is None or not math.isfinite(v) or v <= 0


def invalid_finite(text: str) -> bool:
    v = as_number(text)
    return v is None or not math.isfinite(v)


def invalid_int(low: int, high: int | None = None):
    def check(text: str) -> bool:
        v = as_int(text)
        return v is None or v < low or (high is not None and v > high)
    check.integer = True
    return check


def invalid_repeat(text: str) -> bool:  # play --repeat: a number >= 1, or inf (loop)
    v = as_number(text)
    return v is None or math.isnan(v) or v < 1


SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class Option:
    """A numeric option of a command. ``argv(ctx, d, flag_value_args)`` builds the command line;
    ``invalid(text)``: the value must be refused naming the option; ``values``: the random draws
    (kept among invalid values or short runs where a valid value would make a long run);
    ``related``: other names an error about this option may use."""

    command: str
    flag: str
    invalid: object
    values: object
    related: tuple = ()
    run: str = "always"  # "invalid-only": run only values the checks must refuse (stream); "parse-only" (play)
    nargs2: int | None = None  # for nargs=2 options: the position fuzzed (0 or 1), the other is valid
    extra: tuple = ()  # values tried besides SPECIAL, every run

    @property
    def integer(self) -> bool:
        return getattr(self.invalid, "integer", False)

    @property
    def id(self) -> str:
        return f"{self.command}{self.flag}" + ("" if self.nargs2 is None else f"[{self.nargs2}]")


def floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False).map(repr)


def ints(lo, hi):
    return st.integers(lo, hi).map(str)


ODD_VALUES = st.sampled_from(ODD)
OPTIONS = (
    Option("preprocess", "--window", invalid_positive, floats(-20, 40) | ODD_VALUES, ("--subwindow", "window")),
    Option("preprocess", "--step", invalid_positive, floats(0.5, 40) | floats(-40, 0) | ODD_VALUES, ("step",)),
    Option("preprocess", "--subwindow", invalid_positive, floats(-2, 12) | ODD_VALUES, ("--window", "sub-window"),
           extra=("0.2",)),  # 50 sub-windows of 25.6 samples
    Option("preprocess", "--threshold", invalid_finite, floats(-1e6, 1e6) | ODD_VALUES),
    Option("preprocess", "--fs", invalid_positive, floats(-1e3, 2e3) | ODD_VALUES, extra=("1695.5",)),
    Option("preprocess", "--jobs", invalid_int(1), ints(-10, 4) | ODD_VALUES),
    Option("train", "--epochs", invalid_int(1), ints(-10**12, 0) | st.just("1") | ODD_VALUES.filter(
        lambda v: as_int(v) is None or as_int(v) <= 2)),
    Option("train", "--seed", invalid_int(0, SEED_MAX), ints(-10**12, 10**12) | ODD_VALUES),
    Option("cv", "--epochs", invalid_int(1), ints(-10**12, 0) | st.just("1") | ODD_VALUES.filter(
        lambda v: as_int(v) is None or as_int(v) <= 2)),
    Option("cv", "--seed", invalid_int(0, SEED_MAX), ints(-10**12, 10**12) | ODD_VALUES),
    Option("cv", "--folds", invalid_int(2), ints(-10**6, 4) | ints(10**3, 10**30) | ODD_VALUES),
    Option("predict", "--step", invalid_positive, floats(0.5, 100) | floats(-100, 0) | ODD_VALUES),
    Option("figures", "--fold", invalid_int(1), ints(-10**6, 10**6) | ODD_VALUES),
    Option("figures", "--max-points", invalid_int(1), ints(-10**6, 10**6) | ODD_VALUES, ("max_points",)),
    Option("figures", "--seed", invalid_int(0, SEED_MAX), ints(-10**12, 10**12) | ODD_VALUES),
    Option("report", "--fold", invalid_int(1), ints(-10**6, 10**6) | ODD_VALUES),
    Option("report", "--max-points", invalid_int(1), ints(-10**6, 10**6) | ODD_VALUES, ("max_points",)),
    Option("report", "--seed", invalid_int(0, SEED_MAX), ints(-10**12, 10**12) | ODD_VALUES),
    Option("synth", "--subjects", invalid_int(1, 999), ints(-10, 2) | ints(1000, 10**30) | ODD_VALUES),
    Option("synth", "--seed", invalid_int(0, SEED_MAX), ints(-10**12, 10**12) | ODD_VALUES),
    Option("synth", "--short-seconds", invalid_positive, floats(-50, 7) | ODD_VALUES.filter(
        lambda v: invalid_positive(v) or as_number(v) <= 7), ("short_seconds", "short-seconds"), nargs2=0),
    Option("synth", "--short-seconds", invalid_positive, floats(-50, 30) | ODD_VALUES.filter(
        lambda v: invalid_positive(v) or as_number(v) <= 30), ("short_seconds", "short-seconds"), nargs2=1),
    Option("synth", "--long-seconds", invalid_positive, floats(-50, 7) | ODD_VALUES.filter(
        lambda v: invalid_positive(v) or as_number(v) <= 7), ("long_seconds", "long-seconds"), nargs2=0),
    Option("synth", "--long-seconds", invalid_positive, floats(-50, 30) | ODD_VALUES.filter(
        lambda v: invalid_positive(v) or as_number(v) <= 30), ("long_seconds", "long-seconds"), nargs2=1),
    Option("stream", "--step", invalid_positive, floats(-10, 0) | ODD_VALUES, run="invalid-only"),
    Option("stream", "--timeout", invalid_positive, floats(-10, 0) | ODD_VALUES, run="invalid-only"),
    Option("stream", "--connect-timeout", invalid_positive, floats(-10, 0) | ODD_VALUES, run="invalid-only"),
    Option("stream", "--reference", invalid_int(1), ints(-10, 0) | ODD_VALUES, run="invalid-only"),
    Option("stream", "--min-reference", invalid_int(1), ints(-10, 0) | ODD_VALUES, run="invalid-only"),
    Option("stream", "--count", invalid_int(1), ints(-10, 0) | ODD_VALUES, run="invalid-only"),
    Option("stream", "--duration", invalid_positive, floats(-10, 0) | ODD_VALUES, run="invalid-only"),
    Option("play", "--chunk-size", invalid_int(1), ints(-10, 0) | ODD_VALUES, run="parse-only"),
    Option("play", "--repeat", invalid_repeat, floats(-10, 0.99) | ODD_VALUES, run="parse-only"),
)
#: options that need a trained checkpoint / a cv run / the recordings
NEEDS = {"train": ("store",), "cv": ("store",), "predict": ("model", "recordings"), "figures": ("cv_run",),
         "report": ("cv_run",), "stream": ("model",), "preprocess": ("recordings",), "synth": (),
         "play": ("recordings",)}


def option_argv(option: Option, value: str, d: Path, ctx: dict) -> tuple[list, list, list]:
    """(argv, names an error may use, output folders) of one option value."""
    flag = [f"{option.flag}={value}"]
    if option.nargs2 is not None:
        pair = ["6", "7"] if option.nargs2 == 0 else ["6", value]
        pair[option.nargs2] = value
        flag = [option.flag, *pair]
    if option.command == "preprocess":
        data = ctx["recordings"]
        labels = d / "labels.csv"
        labels.write_text(f"file,subject,task\n{data / 'S0_0.edf'},S0,0\n{data / 'S1_1.edf'},S1,1\n")
        out = d / "store"
        return (preprocess_recordings_argv(data, out, "--labels", labels, *flag), [out, data, labels.name], [out])
    if option.command == "train":
        extra = [] if option.flag == "--epochs" else ["--epochs", "1"]
        return train_argv(ctx["store"], d / "model", *flag, *extra), [ctx["store"]], [d]
    if option.command == "cv":
        argv = ["cv", "--features", ctx["store"], "--target", "task", "--out", d / "run", "-q", "--accelerator", "cpu"]
        argv += [] if option.flag == "--epochs" else ["--epochs", "1"]
        argv += [] if option.flag == "--folds" else ["--folds", "2"]
        return argv + flag, [ctx["store"], d / "run"], [d]
    if option.command == "predict":
        return (["predict", "--checkpoint", ctx["model"], "--input", ctx["recordings"] / "S0_0.edf", "--out",
                 d / "p.csv", "-q", *flag], [], [d])
    if option.command == "figures":
        return ["figures", ctx["cv_run"], "--out", d / "figures", "--format", "png", *flag], [ctx["cv_run"]], [d]
    if option.command == "report":
        run = d / "run"
        shutil.copytree(ctx["cv_run"], run, ignore=shutil.ignore_patterns("figures"))  # the report makes them
        return ["report", run, "--out", d / "report.html", *flag], [run], [d]
    if option.command == "synth":
        extra = []
        if option.flag != "--short-seconds":
            extra += ["--short-seconds", "6", "7"]
        if option.flag != "--long-seconds":
            extra += ["--long-seconds", "6", "7"]
        if option.flag != "--subjects":
            extra += ["--subjects", "1"]
        return ["synth", "--format", "amigos", "--out", d / "synth", *extra, *flag], [d / "synth"], [d]
    if option.command == "stream":
        extra = [] if option.flag == "--connect-timeout" else ["--connect-timeout", "1"]
        return (["stream", "--checkpoint", ctx["model"], "--source", "maan-fuzz-no-such-stream", *extra, *flag],
                ["maan-fuzz-no-such-stream"], [d])
    if option.command == "play":
        return ["play", ctx["recordings"] / "S0_0.edf", "-q", *flag], [], [d]
    raise ValueError(option.command)


def parses(argv) -> bool:
    from maan.cli import build_parser

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args([str(a) for a in argv])
        except SystemExit:
            return False
    return True


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.id)
def test_numeric_option(pytestconfig, request, option, root):
    """One numeric option given NaN, infinity, 0, -0, -1, 1e308, 1e-308, odd spellings and random
    values: exit 0 (with sound outputs) or exit 2 with one line naming the option; a value outside
    the option's domain must be refused naming it."""
    ctx = {name: request.getfixturevalue(name) for name in NEEDS[option.command]}
    bare = option.flag.lstrip("-")
    names = [option.flag, bare, bare.replace("-", "_"), *option.related]

    # "-0" is "0" to int(): tried on float options only
    values = [v for v in SPECIAL if not (option.integer and v == "-0")] + list(option.extra)
    n = 3 if option.command in ("figures", "report", "cv", "train") else 5

    def body(value):
        with case_dir(root) as d:
            argv, paths, outputs = option_argv(option, value, d, ctx)
            case = f"maan {option.command} {option.flag} {value!r}"
            invalid = option.invalid(value)
            if option.run != "always" and not (option.run == "invalid-only" and invalid):
                if parses(argv):
                    return  # a valid stream/play would start streaming: not run
            outcome = run_maan(argv)
            okay = check_outcome(case, outcome, names + ([] if invalid else paths), ok=not invalid)
            if okay and option.command == "preprocess":
                check_features(case, argv[argv.index("--out") + 1], manifest=True)
            if okay and option.command == "predict":
                check_predictions(case, d / "p.csv")
            check_no_half_written(case, *outputs)

    case = given(value=option.values)(body)
    for value in values:
        case = example(value=value)(case)
    fuzz(pytestconfig, n)(case)()
