"""Reader of the DREAMER database (``DREAMER.mat``).

Layout: the 1x1 struct ``DREAMER`` with ``Data`` (1x23 cell of 1x1 structs; a struct array is
accepted too), ``EEG_SamplingRate`` (128), ``ECG_SamplingRate`` (256), ``EEG_Electrodes``
(1x14 cell), ``noOfSubjects``, ``noOfVideoSequences``, ... Each ``Data{s}`` holds ``EEG`` and
``ECG`` (1x1 structs with ``baseline`` and ``stimuli``: 18x1 cells of samples x channels;
EEG 14 channels, ECG 2 channels) and ``ScoreValence``, ``ScoreArousal``, ``ScoreDominance``
(18x1, integers 1-5).

The whole file is loaded once per process (cached on path, size and modification time), so
listing and loading 23 subjects read it once. Records hold the 18 stimulus recordings; the
61-s pre-clip baselines are available through :func:`read_dreamer_baselines`.
"""
from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maan import config
from maan.datasets.record import Record, Signal, SubjectSource, is_real_dtype
from maan.datasets.matfile import load_mat, variable_names
from maan.errors import InvalidInputError

log = logging.getLogger("maan")

DREAMER_FILE_NAME = "DREAMER.mat"
_N_EEG = len(config.DREAMER_EEG_CHANNELS)
_N_ECG = len(config.DREAMER_ECG_CHANNELS)
_SCORES = {"valence": "ScoreValence", "arousal": "ScoreArousal", "dominance": "ScoreDominance"}


@dataclass(frozen=True)
class _Dreamer:
    path: Path
    subjects: tuple  # one 1x1 struct (np.void) per subject
    eeg_fs: float
    ecg_fs: float
    eeg_order: tuple[int, ...]  # column index in the file of each config.DREAMER_EEG_CHANNELS


def _struct(value, path: Path, what: str) -> np.void:
    """The single element of a MATLAB 1x1 struct as loaded by loadmat (or a cell holding one)."""
    v = value
    for _ in range(3):  # unwrap (1,1) object cells around the struct
        if isinstance(v, np.ndarray) and v.dtype == object and v.size == 1:
            v = v.reshape(-1)[0]
        else:
            break
    if isinstance(v, np.ndarray) and v.dtype.names is not None and v.size == 1:
        v = v.reshape(-1)[0]
    if not isinstance(v, np.void) or v.dtype.names is None:
        raise InvalidInputError(path, f"{what} is not a MATLAB struct")
    return v


def _field(s: np.void, name: str, path: Path, what: str):
    if name not in s.dtype.names:
        raise InvalidInputError(path, f"{what} has no field {name!r} (fields: {', '.join(s.dtype.names)})")
    return s[name]


def _scalar(value, default: float, path: Path, what: str) -> float:
    if value is None:
        return default
    try:
        v = float(np.asarray(value, dtype=np.float64).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise InvalidInputError(path, f"{what} is not a number") from None
    if not np.isfinite(v) or v <= 0:
        raise InvalidInputError(path, f"{what} is {v}, expected a positive number")
    return v


def _strings(value) -> list[str]:
    out = []
    for item in np.asarray(value, dtype=object).reshape(-1):
        arr = np.asarray(item).reshape(-1)
        out.append(str(arr[0]) if arr.size else "")
    return out


@functools.lru_cache(maxsize=1)
def _load_cached(path_str: str, mtime_ns: int, size: int) -> _Dreamer:
    path = Path(path_str)
    mat = load_mat(path_str, path, verify_compressed_data_integrity=False)
    if "DREAMER" not in mat:
        raise InvalidInputError(path, f"no variable 'DREAMER' (found: {variable_names(mat)})")
    top = _struct(mat["DREAMER"], path, "'DREAMER'")
    data = np.asarray(_field(top, "Data", path, "'DREAMER'"))
    if data.dtype == object:
        subjects = tuple(_struct(c, path, f"DREAMER.Data{{{i + 1}}}") for i, c in enumerate(data.reshape(-1)))
    elif data.dtype.names is not None:
        subjects = tuple(data.reshape(-1))
    else:
        raise InvalidInputError(path, "DREAMER.Data is neither a cell nor a struct array")
    if not subjects:
        raise InvalidInputError(path, "DREAMER.Data holds no subjects")
    names = top.dtype.names
    eeg_fs = _scalar(top["EEG_SamplingRate"] if "EEG_SamplingRate" in names else None,
                     config.DREAMER_EEG_FS, path, "DREAMER.EEG_SamplingRate")
    ecg_fs = _scalar(top["ECG_SamplingRate"] if "ECG_SamplingRate" in names else None,
                     config.DREAMER_ECG_FS, path, "DREAMER.ECG_SamplingRate")
    order = tuple(range(_N_EEG))
    if "EEG_Electrodes" in names:
        electrodes = [e.strip().upper() for e in _strings(top["EEG_Electrodes"])]
        wanted = [c.upper() for c in config.DREAMER_EEG_CHANNELS]
        if sorted(electrodes) != sorted(wanted):
            raise InvalidInputError(path, f"DREAMER.EEG_Electrodes {electrodes} are not the 14 "
                                          "Emotiv channels")
        order = tuple(electrodes.index(c) for c in wanted)
    return _Dreamer(path, subjects, eeg_fs, ecg_fs, order)


def _resolve(path_or_folder: str | os.PathLike) -> Path:
    p = Path(path_or_folder)
    if p.is_dir():
        hits = [c for c in p.iterdir() if c.is_file() and c.name.lower() == DREAMER_FILE_NAME.lower()]
        if not hits:
            raise InvalidInputError(p, f"folder holds no {DREAMER_FILE_NAME}")
        return sorted(hits)[0]
    if not p.exists():
        raise InvalidInputError(p, "file or folder not found")
    return p


def _load(path_or_folder: str | os.PathLike) -> _Dreamer:
    path = _resolve(path_or_folder)
    st = path.stat()
    return _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)


def clear_cache() -> None:
    """Forget the cached DREAMER.mat (frees its memory)."""
    _load_cached.cache_clear()


def _subject_index(d: _Dreamer, subject: str | int) -> int:
    if isinstance(subject, str):
        s = subject.strip().upper()
        num = int(s[1:]) if s.startswith("S") and s[1:].isdigit() else None
    else:
        num = int(subject)
    if num is None or not 1 <= num <= len(d.subjects):
        raise InvalidInputError(d.path, f"no subject {subject!r} (file holds S01..S{len(d.subjects):02d})")
    return num - 1


def _cells(s: np.void, modality: str, part: str, path: Path, who: str) -> list:
    mod = _struct(_field(s, modality, path, who), path, f"{who}.{modality}")
    cells = np.asarray(_field(mod, part, path, f"{who}.{modality}"))
    if cells.dtype != object:
        raise InvalidInputError(path, f"{who}.{modality}.{part} is not a cell array")
    cells = cells.reshape(-1)
    if cells.size != config.DREAMER_N_TRIALS:
        raise InvalidInputError(path, f"{who}.{modality}.{part} has {cells.size} cells, "
                                      f"expected {config.DREAMER_N_TRIALS}")
    return list(cells)


def _matrix(cell, n_ch: int, path: Path, what: str) -> np.ndarray | None:
    if not isinstance(cell, np.ndarray) or cell.size == 0:
        return None
    if cell.ndim != 2 or cell.shape[1] != n_ch or not is_real_dtype(cell.dtype):
        raise InvalidInputError(path, f"{what} has shape {cell.shape} ({cell.dtype}), "
                                      f"expected samples x {n_ch} real numbers")
    return np.array(cell.T, dtype=np.float64, order="C")  # a copy: the cached file stays intact


def _signals(d: _Dreamer, idx: int, part: str) -> tuple[list, list, str]:
    s = d.subjects[idx]
    who = f"DREAMER.Data{{{idx + 1}}}"
    return (_cells(s, "EEG", part, d.path, who), _cells(s, "ECG", part, d.path, who), who)


def read_dreamer_subject(path_or_folder: str | os.PathLike, subject: str | int) -> list[Record]:
    """Records of one subject ("S05" or its 1-based number 5): 18 stimuli, EEG 14 ch (config
    order) at EEG_SamplingRate, ECG 2 ch at ECG_SamplingRate, ratings valence/arousal/dominance.
    Stimuli with an empty EEG/ECG cell or a NaN arousal/valence score are skipped with a warning;
    malformed content raises InvalidInputError."""
    d = _load(path_or_folder)
    idx = _subject_index(d, subject)
    eeg_cells, ecg_cells, who = _signals(d, idx, "stimuli")
    s = d.subjects[idx]
    scores = {}
    for key, field in _SCORES.items():
        v = np.asarray(_field(s, field, d.path, who))
        if not is_real_dtype(v.dtype) or v.size != config.DREAMER_N_TRIALS:
            raise InvalidInputError(d.path, f"{who}.{field} has shape {v.shape}, expected "
                                            f"{config.DREAMER_N_TRIALS} real numbers")
        scores[key] = v.reshape(-1).astype(np.float64)
    sid = f"S{idx + 1:02d}"
    records, skipped = [], []
    for t in range(config.DREAMER_N_TRIALS):
        eeg = _matrix(eeg_cells[t], _N_EEG, d.path, f"{who}.EEG.stimuli{{{t + 1}}}")
        ecg = _matrix(ecg_cells[t], _N_ECG, d.path, f"{who}.ECG.stimuli{{{t + 1}}}")
        if eeg is None or ecg is None or any(np.isnan(scores[k][t]) for k in config.TARGETS):
            skipped.append(t + 1)
            continue
        records.append(Record(
            subject=sid,
            trial=t + 1,
            ecg=Signal(ecg, d.ecg_fs, tuple(config.DREAMER_ECG_CHANNELS)),
            eeg=Signal(eeg[list(d.eeg_order)] if d.eeg_order != tuple(range(_N_EEG)) else eeg,
                       d.eeg_fs, tuple(config.DREAMER_EEG_CHANNELS)),
            ratings={k: float(v[t]) for k, v in scores.items()},
            source=str(d.path),
        ))
    if skipped:
        log.warning("%s: subject %s: stimulus %s without EEG/ECG data or arousal/valence score; "
                    "skipped", d.path, sid,
                    ", ".join(map(str, skipped)))
    return records


def read_dreamer_baselines(path_or_folder: str | os.PathLike,
                           subject: str | int) -> dict[int, tuple[Signal, Signal]]:
    """The pre-clip baseline recordings of one subject: {trial: (ecg, eeg)} (empty cells left out)."""
    d = _load(path_or_folder)
    idx = _subject_index(d, subject)
    eeg_cells, ecg_cells, who = _signals(d, idx, "baseline")
    out = {}
    for t in range(config.DREAMER_N_TRIALS):
        eeg = _matrix(eeg_cells[t], _N_EEG, d.path, f"{who}.EEG.baseline{{{t + 1}}}")
        ecg = _matrix(ecg_cells[t], _N_ECG, d.path, f"{who}.ECG.baseline{{{t + 1}}}")
        if eeg is None or ecg is None:
            continue
        out[t + 1] = (Signal(ecg, d.ecg_fs, tuple(config.DREAMER_ECG_CHANNELS)),
                      Signal(eeg[list(d.eeg_order)], d.eeg_fs, tuple(config.DREAMER_EEG_CHANNELS)))
    return out


def list_dreamer_subjects(path_or_folder: str | os.PathLike) -> list[SubjectSource]:
    """Subjects S01..SNN of a DREAMER.mat (the file itself or a folder holding it). Loads and
    caches the file once; raises InvalidInputError for a missing/unreadable/malformed file."""
    d = _load(path_or_folder)
    return [SubjectSource(subject=f"S{i + 1:02d}", path=str(d.path),
                          load=functools.partial(read_dreamer_subject, d.path, i + 1))
            for i in range(len(d.subjects))]
