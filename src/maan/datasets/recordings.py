"""Reader of recordings in any format MNE reads, labelled by a table (``--dataset recordings``).

The data are a folder of recordings (EDF/EDF+, BDF, FIF, BrainVision ``.vhdr``, ... anything
``mne.io.read_raw`` opens) and a labels table, a CSV file with the columns

``file``
    the recording, relative to the data folder (or absolute);
``subject``
    the subject id (the unit of the store and of subject-held-out splits);
one column per target
    binary 0/1 (e.g. ``task``), or ratings binarised with ``threshold`` (label = value >
    threshold). An empty cell is a missing rating: the file's windows are dropped and counted
    (``missing_rating``).

Each row (file) is one trial; a subject's trials are numbered 1, 2, ... in table order. Every
column other than ``file`` and ``subject`` is a label column; the targets of the store are the
label columns (all of them unless the caller names some), and a Record's ``ratings`` hold the
raw values of every label column.

Channels
    ECG is the channel named by ``ecg_channel``, or by default the single channel whose MNE type
    is ``ecg`` or whose name says ECG/EKG (several or none is an error). EEG is every channel of
    MNE type ``eeg`` minus the ECG channel, minus any other channel whose name says ECG/EKG
    (EDF has no channel types, so MNE types every EDF channel ``eeg``), minus ``exclude``.
    Channels MNE marks bad are kept (a file's ``bads`` would otherwise change the channel set).
    Every file must have the same EEG channel set (EEG rows follow the first file's order); a
    mismatch, a missing file, and the ECG choice are checked on the file headers when the
    subjects are listed, before anything is computed.
Units
    MNE returns volts; EEG is converted to µV (as AMIGOS and DREAMER store it, so DE values are
    comparable across datasets) and ECG to mV (R-peak detection normalises its input, so the
    ECG scale does not matter).
Rate
    Both modalities are resampled with MNE (``Raw.resample``) to one rate ``fs`` (default
    :data:`DEFAULT_FS` = 128 Hz, the AMIGOS/DREAMER EEG rate), so everything after the reader is
    the AMIGOS/DREAMER code path.
Annotations
    Spans annotated ``BAD_...`` (MNE's convention) become NaN, which the pipeline drops and
    counts per window (``nan``).
"""
from __future__ import annotations

import csv
import functools
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maan.datasets.record import Record, Signal, SubjectSource
from maan.errors import InvalidInputError, MaanError

#: Default common rate (Hz) both modalities are resampled to.
DEFAULT_FS = 128.0
#: Name of the labels table looked for in the data folder when none is given.
DEFAULT_LABELS_NAME = "labels.csv"
#: MNE returns SI units (V): EEG to µV, ECG to mV.
EEG_SCALE = 1e6
ECG_SCALE = 1e3
FILE_COLUMN = "file"
SUBJECT_COLUMN = "subject"
_ECG_NAME = re.compile(r"ecg|ekg", re.IGNORECASE)
_SAFE_SUBJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _mne():
    try:
        import mne
    except ImportError:  # pragma: no cover - mne ships with the test extra
        raise MaanError("--dataset recordings reads files with MNE-Python: pip install mne") from None
    return mne


# -- the labels table ------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelRow:
    file: Path  # resolved against the data folder
    subject: str
    values: dict  # label column -> float (NaN where the cell is empty)
    line: int  # line number in the CSV file (for messages)


@dataclass(frozen=True)
class LabelsTable:
    path: Path
    rows: tuple  # LabelRow, in file order
    columns: tuple  # label columns (every column but file and subject), in file order
    targets: tuple  # the label columns used as targets


def read_labels(labels, data, threshold: float | None = None, targets=None) -> LabelsTable:
    """Read and validate the labels table; every problem is one InvalidInputError naming the
    labels file and the column (or the recording) at fault.

    ``targets`` (default: every label column) must be label columns; without ``threshold``
    their values must be 0 or 1.
    """
    labels, data = Path(labels), Path(data)
    if not labels.is_file():
        raise InvalidInputError(labels, "labels file not found" if not labels.exists() else "not a file")
    try:
        with open(labels, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            body = [(i, row) for i, row in enumerate(reader, start=2) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInputError(labels, f"not a readable CSV file ({exc})") from None
    if not header:
        raise InvalidInputError(labels, "empty labels file (expected a header: file,subject,<target>...)")
    header = [h.strip() for h in header]
    for required in (FILE_COLUMN, SUBJECT_COLUMN):
        if required not in header:
            raise InvalidInputError(labels, f"no column {required!r} (columns: {', '.join(header)}; "
                                            f"expected file,subject,<target>...)")
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated or "" in header:
        raise InvalidInputError(labels, f"column names must be unique and non-empty "
                                        f"(repeated: {', '.join(duplicated) or 'an empty name'})")
    columns = tuple(h for h in header if h not in (FILE_COLUMN, SUBJECT_COLUMN))
    if not columns:
        raise InvalidInputError(labels, "no label column (expected file,subject,<target>...)")
    if targets is None:
        targets = columns
    targets = tuple(targets)
    for t in targets:
        if t not in columns:
            raise InvalidInputError(labels, f"unknown column {t!r} (label columns: {', '.join(columns)})")
    if not body:
        raise InvalidInputError(labels, "no rows (one row per recording expected)")

    rows, seen = [], {}
    index = {h: i for i, h in enumerate(header)}
    for line, row in body:
        if len(row) != len(header):
            raise InvalidInputError(labels, f"line {line}: {len(row)} cells, expected {len(header)}")
        name = row[index[FILE_COLUMN]].strip()
        subject = row[index[SUBJECT_COLUMN]].strip()
        if not name:
            raise InvalidInputError(labels, f"line {line}: empty 'file'")
        if not _SAFE_SUBJECT.fullmatch(subject):
            raise InvalidInputError(labels, f"line {line}: subject {subject!r} is not a usable id "
                                            "(letters, digits, '.', '_', '-')")
        path = Path(name) if Path(name).is_absolute() else data / name
        if not path.is_file():
            raise InvalidInputError(path, f"recording not found (listed in {labels}, line {line})")
        if path in seen:
            raise InvalidInputError(labels, f"line {line}: {name} is listed twice (first on line {seen[path]})")
        seen[path] = line
        values = {}
        for column in columns:
            cell = row[index[column]].strip()
            try:
                value = float(cell) if cell else math.nan
            except ValueError:
                raise InvalidInputError(labels, f"line {line}: column {column!r} holds {cell!r}, not a number") from None
            if math.isinf(value):
                raise InvalidInputError(labels, f"line {line}: column {column!r} holds {cell!r}")
            values[column] = value
        rows.append(LabelRow(path, subject, values, line))
    if threshold is None:
        for t in targets:
            found = {r.values[t] for r in rows if not math.isnan(r.values[t])}
            other = sorted(found - {0.0, 1.0})
            if other:
                shown = ", ".join(f"{v:g}" for v in other[:5]) + (", ..." if len(other) > 5 else "")
                raise InvalidInputError(labels, f"column {t!r} is not binary 0/1 (also holds {shown}); "
                                                "pass --threshold to binarise ratings (label = value > threshold)")
    return LabelsTable(labels, tuple(rows), columns, targets)


# -- channels --------------------------------------------------------------------------------
def _says_ecg(name: str, kind: str) -> bool:
    return kind == "ecg" or bool(_ECG_NAME.search(name))


def pick_channels(names, types, path, ecg_channel: str | None = None, exclude=()) -> tuple[str, tuple]:
    """The ECG channel name and the EEG channel names (file order) of one recording."""
    names, types = list(names), list(types)
    if ecg_channel is not None:
        if ecg_channel not in names:
            candidates = [n for n, k in zip(names, types) if _says_ecg(n, k)]
            hint = f"ECG-like channels: {', '.join(candidates)}" if candidates else f"channels: {', '.join(names)}"
            raise InvalidInputError(path, f"no channel {ecg_channel!r} (--ecg-channel); {hint}")
        ecg = ecg_channel
    else:
        candidates = [n for n, k in zip(names, types) if _says_ecg(n, k)]
        if not candidates:
            raise InvalidInputError(path, "no ECG channel (none of MNE type 'ecg' or named ECG/EKG); "
                                          "name it with --ecg-channel")
        if len(candidates) > 1:
            raise InvalidInputError(path, f"several ECG channels ({', '.join(candidates)}); "
                                          "choose one with --ecg-channel")
        ecg = candidates[0]
    exclude = set(exclude)
    eeg = tuple(n for n, k in zip(names, types)
                if k == "eeg" and n != ecg and not _says_ecg(n, k) and n not in exclude)
    if not eeg:
        raise InvalidInputError(path, "no EEG channel (none of MNE type 'eeg' left after excluding ECG and --exclude)")
    return ecg, eeg


#: MNE warns, and reads on, when an EDF/BDF file holds fewer data records than its header says.
_TRUNCATED = re.compile(r"does not match the file size", re.IGNORECASE)


def open_recording(path: Path, preload: bool):
    """A recording as MNE reads it; an unreadable or truncated file is an InvalidInputError naming it.

    MNE reads a truncated EDF/BDF file (fewer data records than its header announces) with a
    warning only; here that is an error, so that a cut recording is never used silently.
    """
    mne = _mne()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = mne.io.read_raw(path, preload=preload, verbose="warning")
    except MemoryError:
        raise
    except Exception as exc:  # unsupported extension, truncated or corrupt file ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(path, f"not a recording MNE can read ({type(exc).__name__}: {reason})") from None
    if any(_TRUNCATED.search(str(w.message)) for w in caught):
        raise InvalidInputError(path, "truncated recording: the number of data records in its header does not "
                                      "match the file size (cut, or still being written)")
    return raw


def read_recording(path, subject: str, trial: int, ratings: dict, eeg_channels, ecg_channel: str,
                   fs: float = DEFAULT_FS) -> Record:
    """One recording as a Record: EEG (µV) in ``eeg_channels`` order and the ECG lead (mV),
    both resampled with MNE to ``fs``; ``BAD_`` annotated spans are NaN."""
    path = Path(path)
    raw = open_recording(path, preload=False)
    return record_from_raw(raw, eeg_channels, ecg_channel, fs, subject=subject, trial=trial, ratings=ratings,
                           source=str(path))


def record_from_raw(raw, eeg_channels, ecg_channel, fs: float = DEFAULT_FS, *, subject: str = "",
                    trial: int = 1, ratings: dict | None = None, source: str | None = None, copy: bool = False
                    ) -> Record:
    """A Record from an MNE Raw (the reader's channel picking, units and resampling).

    ``ecg_channel`` is one channel name, or a sequence of names (several ECG leads, rows in
    that order). ``raw`` is modified (picked, loaded, resampled) unless ``copy``. A missing
    channel raises InvalidInputError naming every missing one. Used by the reader, the MAHNOB-HCI
    reader, ``maan predict`` and ``maan stream``, so prediction repeats training's preprocessing
    exactly.
    """
    where = source or "<raw>"
    names = list(raw.ch_names)
    ecg_channels = (ecg_channel,) if isinstance(ecg_channel, str) else tuple(ecg_channel)
    missing = [c for c in (*eeg_channels, *ecg_channels) if c not in names]
    if missing:
        raise InvalidInputError(where, f"missing channel(s) {', '.join(missing)}")
    if copy:
        raw = raw.copy()
    raw.pick([*eeg_channels, *ecg_channels])
    try:
        raw.load_data(verbose="error")
        if abs(raw.info["sfreq"] - fs) > 1e-9:
            raw.resample(fs, verbose="error")
        data = raw.get_data(reject_by_annotation="NaN", verbose="error")
    except MemoryError:
        raise
    except Exception as exc:
        raise InvalidInputError(where, f"MNE could not read the samples ({type(exc).__name__}: {exc})") from None
    data = np.asarray(data, dtype=np.float64)
    n = len(eeg_channels)
    return Record(
        subject=subject,
        trial=trial,
        ecg=Signal(np.ascontiguousarray(data[n:] * ECG_SCALE), float(fs), ecg_channels),
        eeg=Signal(np.ascontiguousarray(data[:n] * EEG_SCALE), float(fs), tuple(eeg_channels)),
        ratings=dict(ratings or {}),
        source="" if source is None else str(source),
    )


def _load_subject(rows, eeg_channels, ecg_by_file, fs) -> list[Record]:
    return [read_recording(r.file, r.subject, trial, r.values, eeg_channels, ecg_by_file[r.file], fs)
            for trial, r in enumerate(rows, start=1)]


class RecordingSources(list):
    """The SubjectSources of a recordings folder, plus what the store needs from the table."""

    targets: tuple = ()
    eeg_channels: tuple = ()
    labels: str = ""
    subject_info: dict = {}  # subject -> descriptive columns (eegmat's subject-info.csv)


def list_recordings_subjects(data, labels=None, ecg_channel: str | None = None, exclude=(),
                             fs: float | None = None, threshold: float | None = None,
                             targets=None) -> RecordingSources:
    """Subjects of a labelled recordings folder, in order of first appearance in the table.

    Reads the table and every file's header (not its samples): a missing or unreadable file,
    a bad table, an ambiguous/absent ECG channel, an unknown ``exclude`` name or a different
    EEG channel set raises InvalidInputError naming the file. ``load()`` reads a subject's
    recordings. The returned list carries ``targets`` and ``eeg_channels``.
    """
    data = Path(data)
    if not data.exists():
        raise InvalidInputError(data, "folder not found")
    if not data.is_dir():
        raise InvalidInputError(data, "not a folder (--data is the folder the labels' file column is relative to)")
    labels = Path(labels) if labels is not None else data / DEFAULT_LABELS_NAME
    if not labels.exists() and not labels.is_absolute() and (data / labels).is_file():
        labels = data / labels
    fs = DEFAULT_FS if fs is None else float(fs)
    table = read_labels(labels, data, threshold=threshold, targets=targets)
    sources = sources_from_rows(table.rows, ecg_channel, exclude, fs, source=str(table.path))
    sources.targets = table.targets
    sources.labels = str(table.path)
    return sources


def sources_from_rows(rows, ecg_channel: str | None = None, exclude=(), fs: float = DEFAULT_FS,
                      source: str | None = None) -> RecordingSources:
    """SubjectSources of labelled recordings (``LabelRow``s), in order of first appearance.

    Reads every file's header (not its samples): an unreadable file, an ambiguous/absent ECG
    channel, an unknown ``exclude`` name or a different EEG channel set raises
    InvalidInputError naming the file. A source's ``path`` is ``source`` (the labels table) or,
    without one, the subject's first recording.
    """
    reference = None  # (file, EEG channel tuple) of the first recording
    ecg_by_file = {}
    for row in rows:
        raw = open_recording(row.file, preload=False)
        names, types = raw.ch_names, raw.get_channel_types()
        if reference is None:
            unknown = [x for x in exclude if x not in names]
            if unknown:
                raise InvalidInputError(row.file, f"no channel {', '.join(map(repr, unknown))} to --exclude "
                                                  f"(channels: {', '.join(names)})")
        ecg, eeg = pick_channels(names, types, row.file, ecg_channel, exclude)
        ecg_by_file[row.file] = ecg
        if reference is None:
            reference = (row.file, eeg)
            continue
        ref_file, ref_eeg = reference
        if set(eeg) != set(ref_eeg):
            missing = [c for c in ref_eeg if c not in eeg]
            extra = [c for c in eeg if c not in ref_eeg]
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                    ([f"extra {', '.join(extra)}"] if extra else [])
            raise InvalidInputError(row.file, f"EEG channels differ from {ref_file.name}: {'; '.join(parts)} "
                                              "(every file of a store needs the same EEG channels; see --exclude)")
    eeg_channels = reference[1]

    by_subject: dict[str, list] = {}
    for row in rows:
        by_subject.setdefault(row.subject, []).append(row)
    sources = RecordingSources(
        SubjectSource(subject=subject, path=source or str(rows[0].file),
                      load=functools.partial(_load_subject, tuple(rows), eeg_channels, ecg_by_file, fs))
        for subject, rows in by_subject.items()
    )
    sources.eeg_channels = eeg_channels
    return sources
