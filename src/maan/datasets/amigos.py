"""Reader of the AMIGOS preprocessed release (``Data_Preprocessed_PXX.mat`` / ``.zip``).

Each participant file holds ``joined_data`` (1x20 cell; each N x 17 double at 128 Hz: 14 EEG
AF3..AF4, ECG Right, ECG Left, GSR) and ``labels_selfassessment`` (1x20 cell of 1x12:
arousal, valence, dominance, liking, familiarity, neutral, disgust, happiness, surprise,
anger, fear, sadness); ``labels_ext_annotation`` and ``VideoIDs`` are not needed here.
Trials 1-16 are the short videos, 17-20 the long ones; participants who missed the long-video
session have empty (0x0) cells, which are skipped with a warning on the ``maan`` logger.

Trials whose arousal or valence rating is missing (empty cell or NaN) are skipped with a
warning too. Each trial starts with ``AMIGOS_BASELINE_SECONDS`` of pre-stimulus baseline; the reader keeps
it (the Record holds the cell as released). NaN stretches are kept as NaN. A trial whose data
are all NaN is returned as a Record whose data are all NaN (the pipeline counts and drops it);
the reader does not raise for it.
"""
from __future__ import annotations

import functools
import io
import logging
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from maan import config
from maan.datasets.record import Record, Signal, SubjectSource, is_real_dtype
from maan.datasets.matfile import load_mat, variable_names
from maan.errors import InvalidInputError

log = logging.getLogger("maan")

AMIGOS_BASELINE_SECONDS = 5.0  # pre-stimulus baseline at the start of every joined_data trial
_N_COLUMNS = len(config.AMIGOS_COLUMNS)  # 17
_N_EEG = len(config.AMIGOS_EEG_CHANNELS)  # 14
_FILE_RE = re.compile(r"Data_Preprocessed_P(\d+)\.(mat|zip)", re.IGNORECASE)


def _subject_id(path: Path) -> str:
    m = _FILE_RE.fullmatch(path.name)
    return f"P{int(m.group(1)):02d}" if m else path.stem


def _load_mat(path: Path) -> dict:
    """loadmat of a .mat, or of the .mat inside a distributed .zip (read in memory)."""
    try:
        if path.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(path) as zf:
                    members = [i for i in zf.infolist()
                               if i.filename.lower().endswith(".mat") and not i.is_dir()
                               and not os.path.basename(i.filename).startswith("._")]
                    if not members:
                        raise InvalidInputError(path, "zip archive holds no .mat file")
                    # prefer the member named like the archive
                    members.sort(key=lambda i: (os.path.basename(i.filename).lower()
                                                != path.with_suffix(".mat").name.lower(), i.filename))
                    blob = zf.read(members[0])
            except zipfile.BadZipFile as e:
                raise InvalidInputError(path, f"not a readable zip archive ({e})") from None
            return load_mat(io.BytesIO(blob), path)
        return load_mat(str(path), path)
    except FileNotFoundError:
        raise InvalidInputError(path, "file not found") from None


def _cells(path: Path, mat: dict, name: str) -> list:
    if name not in mat:
        raise InvalidInputError(path, f"no variable {name!r} (found: {variable_names(mat)})")
    arr = mat[name]
    if not isinstance(arr, np.ndarray) or arr.dtype != object:
        raise InvalidInputError(path, f"{name!r} is not a cell array")
    if arr.size != config.AMIGOS_N_TRIALS or (arr.ndim == 2 and min(arr.shape) != 1):
        raise InvalidInputError(path, f"{name!r} has shape {arr.shape}, "
                                      f"expected 1x{config.AMIGOS_N_TRIALS} cells")
    return list(arr.ravel())


def read_amigos_subject(path: str | os.PathLike) -> list[Record]:
    """Read one participant file (.mat or .zip) into Records (trial = 1-based cell index).

    Raises InvalidInputError naming the file for unreadable/truncated/non-MAT input, missing
    variables, a wrong cell count, a wrong column count (!= 17) or malformed ratings.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(path, "file not found" if not path.exists() else "not a file")
    mat = _load_mat(path)
    data_cells = _cells(path, mat, "joined_data")
    label_cells = _cells(path, mat, "labels_selfassessment")
    subject = _subject_id(path)
    records: list[Record] = []
    empty: list[int] = []
    unlabelled: list[int] = []
    for t, (cell, labels) in enumerate(zip(data_cells, label_cells), start=1):
        if not isinstance(cell, np.ndarray) or cell.size == 0:
            empty.append(t)
            continue
        if cell.ndim != 2 or cell.shape[1] != _N_COLUMNS:
            raise InvalidInputError(path, f"trial {t}: joined_data cell has shape {cell.shape}, "
                                          f"expected samples x {_N_COLUMNS} columns")
        if not is_real_dtype(cell.dtype):
            raise InvalidInputError(path, f"trial {t}: joined_data is not real-valued numbers ({cell.dtype})")
        if not isinstance(labels, np.ndarray) or labels.size == 0:
            unlabelled.append(t)
            continue
        if not is_real_dtype(labels.dtype) or labels.size != len(config.AMIGOS_RATINGS):
            raise InvalidInputError(path, f"trial {t}: labels_selfassessment has shape {labels.shape}, "
                                          f"expected 1x{len(config.AMIGOS_RATINGS)} real numbers")
        ratings = {name: float(v) for name, v in zip(config.AMIGOS_RATINGS, labels.ravel())}
        if any(np.isnan(ratings[k]) for k in config.TARGETS):
            unlabelled.append(t)  # a NaN target would silently become a "low" label downstream
            continue
        data = np.ascontiguousarray(cell.T, dtype=np.float64)  # (17, samples)
        records.append(Record(
            subject=subject,
            trial=t,
            ecg=Signal(data[_N_EEG:_N_EEG + 2], config.AMIGOS_FS, tuple(config.AMIGOS_ECG_CHANNELS)),
            eeg=Signal(data[:_N_EEG], config.AMIGOS_FS, tuple(config.AMIGOS_EEG_CHANNELS)),
            ratings=ratings,
            source=str(path),
        ))
    if empty:
        log.warning("%s: trial%s %s ha%s no data (empty cell); skipped", path,
                    "s" if len(empty) > 1 else "", ", ".join(map(str, empty)),
                    "ve" if len(empty) > 1 else "s")
    if unlabelled:
        log.warning("%s: trial%s %s ha%s data but no arousal/valence self-assessment; skipped", path,
                    "s" if len(unlabelled) > 1 else "", ", ".join(map(str, unlabelled)),
                    "ve" if len(unlabelled) > 1 else "s")
    return records


def _candidates(folder: Path) -> list[Path]:
    found = [p for p in folder.iterdir() if p.is_file() and _FILE_RE.fullmatch(p.name)]
    # the distributed layout unpacks to one sub-folder per participant
    for sub in folder.iterdir():
        if sub.is_dir():
            try:
                found += [p for p in sub.iterdir() if p.is_file() and _FILE_RE.fullmatch(p.name)]
            except OSError:
                continue
    return found


def list_amigos_subjects(folder: str | os.PathLike) -> list[SubjectSource]:
    """Participants found in ``folder`` (``Data_Preprocessed_PXX.mat`` or ``.zip``, directly or
    one sub-folder deep), sorted by participant number; ids "P01", "P02", ... When both a .mat
    and a .zip exist for a participant the .mat is used. Nothing is read until ``load()``.
    Raises InvalidInputError for a missing folder or one without participant files."""
    folder = Path(folder)
    if not folder.exists():
        raise InvalidInputError(folder, "folder not found")
    if folder.is_file():
        if _FILE_RE.fullmatch(folder.name):
            files = [folder]
        else:
            raise InvalidInputError(folder, "not a folder of Data_Preprocessed_PXX.mat files")
    else:
        files = _candidates(folder)
    best: dict[int, Path] = {}
    for p in files:
        num = int(_FILE_RE.fullmatch(p.name).group(1))
        cur = best.get(num)
        # prefer .mat over .zip, then the shallower path
        key = (p.suffix.lower() != ".mat", len(p.parts), str(p))
        if cur is None or key < (cur.suffix.lower() != ".mat", len(cur.parts), str(cur)):
            best[num] = p
    if not best:
        raise InvalidInputError(folder, "no Data_Preprocessed_PXX.mat or .zip files")
    return [SubjectSource(subject=f"P{num:02d}", path=str(p),
                          load=functools.partial(read_amigos_subject, p))
            for num, p in sorted(best.items())]
