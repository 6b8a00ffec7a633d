"""Reader of PhysioNet eegmat, "EEG During Mental Arithmetic Tasks" (``--dataset eegmat``).

The folder holds, per subject ``NN`` (00-35 in the release), ``SubjectNN_1.edf`` (rest, about
3 min) and ``SubjectNN_2.edf`` (serial subtraction, 1 min): EDF+, 500 Hz, 19 EEG channels of the
10-20 system, the ear reference ``EEG A2-A1`` and one ECG lead ``ECG ECG``; and
``subject-info.csv`` (age, gender, recording year, number of subtractions, count quality).
``maan fetch eegmat`` downloads it.

What the reader does
    Every ``SubjectNN_1.edf`` / ``SubjectNN_2.edf`` is one trial of subject ``SubjectNN``
    (trial 1 rest, trial 2 arithmetic); the one target is ``task`` = 1 for ``_2``. The files are
    read as ``--dataset recordings`` reads them (:mod:`maan.datasets.recordings`: MNE, EEG in µV,
    ECG in mV, both resampled to ``fs``, 128 Hz by default), with ``EEG A2-A1`` left out of the
    EEG (a reference, not a scalp site). A subject with one of the two files is read with that
    one (its windows are one class).
Metadata
    ``subject-info.csv``, when present, is kept in the store's manifest (``subject_info``: each
    subject's row, ``Count quality`` 0 = bad / 1 = good among it); it is not a feature.

Source: Zyma I, Tukaev S, Seleznov I, Kiyono K, Popov A, Chernykh M, Shpenkov O.
Electroencephalograms during Mental Arithmetic Task Performance. Data 4(1):14, 2019; PhysioNet
(Goldberger et al., Circulation 101(23):e215-e220, 2000). Licence: Open Data Commons Attribution
License v1.0.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from maan.datasets.recordings import DEFAULT_FS, LabelRow, RecordingSources, sources_from_rows
from maan.errors import InvalidInputError

TARGET = "task"
#: the ear-reference channel, typed EEG in the EDF files
EXCLUDE = ("EEG A2-A1",)
INFO_FILE = "subject-info.csv"
FILE_PATTERN = re.compile(r"(Subject\d+)_([12])\.edf", re.IGNORECASE)


def eegmat_files(data) -> list[tuple[Path, str, int]]:
    """``(file, subject, task)`` of every eegmat recording in ``data``, by subject then task."""
    found = []
    for path in Path(data).iterdir():
        m = FILE_PATTERN.fullmatch(path.name)
        if m and path.is_file():
            found.append((path, m.group(1)[0].upper() + m.group(1)[1:], int(m.group(2)) - 1))
    return sorted(found, key=lambda f: (f[1], f[2]))


def read_subject_info(path) -> dict[str, dict]:
    """``subject-info.csv`` as ``{subject: {column: value}}`` (numbers as numbers); an
    unreadable table is an InvalidInputError naming it."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInputError(path, f"not a readable CSV file ({exc})") from None
    if not rows or "Subject" not in rows[0]:
        raise InvalidInputError(path, "no 'Subject' column (expected the eegmat subject-info.csv)")

    def value(text):
        text = (text or "").strip()
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() else number

    return {row["Subject"].strip(): {k.strip(): value(v) for k, v in row.items() if k and k != "Subject"}
            for row in rows if row.get("Subject")}


def list_eegmat_subjects(data, fs: float | None = None) -> RecordingSources:
    """Subjects of an eegmat folder, sorted; each file's header is read (not its samples).

    Raises InvalidInputError for a missing folder, one without ``SubjectNN_1.edf`` /
    ``SubjectNN_2.edf`` files, or a file MNE cannot read (naming it).
    """
    data = Path(data)
    if not data.is_dir():
        raise InvalidInputError(data, "folder not found" if not data.exists() else
                                "not a folder (--data is the folder of SubjectNN_1.edf / SubjectNN_2.edf files)")
    files = eegmat_files(data)
    if not files:
        raise InvalidInputError(data, "no SubjectNN_1.edf / SubjectNN_2.edf files (PhysioNet eegmat; "
                                      "`maan fetch eegmat --out DIR` downloads them)")
    rows = [LabelRow(path, subject, {TARGET: float(task)}, line=0) for path, subject, task in files]
    sources = sources_from_rows(rows, exclude=EXCLUDE, fs=DEFAULT_FS if fs is None else float(fs))
    sources.targets = (TARGET,)
    info = data / INFO_FILE
    if info.is_file():
        table = read_subject_info(info)
        sources.subject_info = {s.subject: table[s.subject] for s in sources if s.subject in table}
    return sources
