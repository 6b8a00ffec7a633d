"""Reader of MAHNOB-HCI, the emotion-elicitation part as distributed (``--dataset mahnob``).

Files
    ``--data`` is the folder that holds ``Sessions/``, or ``Sessions/`` itself. Each session
    folder (``Sessions/<session id>/``, ordered by that number) holds ``session.xml`` and one
    ``Part_<participant>_<S|N>_Trial<trial>_emotion.bdf``; other files there (videos, gaze
    data) are ignored, and so are folders with neither a session.xml nor such a BDF file.
``session.xml``
    The attributes of its ``<session>`` element hold the self-reports ``feltArsl`` (arousal)
    and ``feltVlnc`` (valence), integers 1-9, with ``feltCtrl`` (dominance), ``feltPred``
    (predictability) and ``feltEmo`` (an emotion keyword code) kept as further ratings; its
    ``<subject id="...">`` child names the participant (subject ``P01`` for id 1). ``isStim``,
    ``mediaFile`` and ``cutLenSec`` are not needed here.
The BDF file
    Read with MNE: every channel at 256 Hz; channels 1-32 EEG (Biosemi-32 order:
    :data:`maan.config.MAHNOB_EEG_CHANNELS`), ``EXG1``-``EXG3`` ECG (upper right chest, upper
    left chest, left abdomen), then ``GSR1``, ``Resp``, ``Temp`` and others that are not used,
    and ``Status``. The clip lies between the first two pulses of ``Status``
    (``mne.find_events``): from the first pulse's sample up to, not including, the second's.
    The 30 s of baseline before it and the recording after it are not used.
Records
    One Record per rated session: the clip's 32 EEG channels in µV and one ECG lead in mV, both
    resampled with MNE to 128 Hz (as :mod:`maan.datasets.recordings` does: the AMIGOS/DREAMER
    rate, so windows and features are AMIGOS's); ratings named as AMIGOS's (``arousal``,
    ``valence``, ...). Trials are numbered 1, 2, ... per participant in session order. EEG is
    kept as recorded (no re-referencing; band-limited features do not see the electrodes' DC
    offsets).
ECG lead
    Chosen per session among ``EXG1``-``EXG3`` by measured beat quality: the QRS-band
    peak/noise ratio by which R-peak detection accepts or refuses a lead
    (:func:`maan.features.ecg.lead_quality`), on the clip's samples; ``--ecg-channel`` names
    one lead for every session instead.
Skipped
    Sessions without ``feltArsl`` or ``feltVlnc`` (the neutral clips shown between the
    emotional ones) are skipped before their BDF is read, and counted (``unrated_sessions`` in
    the store's manifest). A session whose session.xml is missing or malformed, whose BDF file
    is missing, unreadable or truncated, lacks a channel or the two ``Status`` pulses is bad
    input: an InvalidInputError naming the file, or with ``--skip-invalid`` skipped and listed
    in the manifest's ``invalid_inputs`` while the participant's other sessions are kept.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maan import config
from maan.datasets.record import Record, Signal, SubjectSource
from maan.errors import InvalidInputError

log = logging.getLogger("maan")

SESSIONS_DIR = "Sessions"
SESSION_FILE = "session.xml"
#: Rate (Hz) both modalities are resampled to (the AMIGOS/DREAMER rate).
MAHNOB_RECORD_FS = 128.0
_BDF_RE = re.compile(r"Part_(\d+)_([SN])_Trial(\d+)_emotion\.bdf", re.IGNORECASE)
_RATING_RANGE = (1.0, 9.0)
_TARGET_ATTRIBUTES = ("feltArsl", "feltVlnc")


@dataclass
class _Session:
    folder: Path
    participant: str | None = None  # the <subject id> (or the BDF name's participant)
    ratings: dict = field(default_factory=dict)
    bdf: Path | None = None
    problem: tuple[Path, str] | None = None  # (file, reason): the session is bad input


class MahnobSources(list):
    """The SubjectSources of a MAHNOB-HCI folder, plus the number of unrated sessions skipped."""

    unrated_sessions: int = 0


def _subject_name(participant: str) -> str:
    return f"P{int(participant):02d}" if participant.isdigit() else participant


def _sessions_root(data: Path) -> Path:
    if not data.exists():
        raise InvalidInputError(data, "folder not found")
    if not data.is_dir():
        raise InvalidInputError(data, "not a folder (--data is the folder holding Sessions/, or Sessions/ itself)")
    if (data / SESSIONS_DIR).is_dir():
        return data / SESSIONS_DIR
    return data


def _session_key(folder: Path):
    return (0, int(folder.name), "") if folder.name.isdigit() else (1, 0, folder.name)


def _rating(value: str, name: str, path: Path) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidInputError(path, f"{name}={value!r} is not a number") from None
    if name in _TARGET_ATTRIBUTES and not _RATING_RANGE[0] <= number <= _RATING_RANGE[1]:
        raise InvalidInputError(path, f"{name}={value!r} is not a rating 1-9")
    if not np.isfinite(number):
        raise InvalidInputError(path, f"{name}={value!r} is not a finite number")
    return number


def read_session_xml(path: str | os.PathLike) -> tuple[str, dict]:
    """The participant id (``<subject id>``) and the ratings of one ``session.xml``.

    Ratings are named as :data:`maan.config.MAHNOB_RATINGS` says (``arousal``, ``valence``,
    ...); an unrated session (a neutral clip) has none. Raises InvalidInputError naming the
    file when it is missing, not well-formed XML, not a ``<session>``, has no participant id,
    or holds a rating that is not a number (arousal and valence: not 1-9).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(path, "file not found" if not path.exists() else "not a file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InvalidInputError(path, f"not well-formed XML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(path, f"not readable ({exc})") from None
    if root.tag != "session":
        raise InvalidInputError(path, f"root element is <{root.tag}>, expected <session>")
    subject = root.find("subject")
    participant = (subject.get("id") or "").strip() if subject is not None else ""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", participant):
        raise InvalidInputError(path, "no <subject id=...> naming the participant")
    ratings = {}
    if all(a in root.attrib for a in _TARGET_ATTRIBUTES):
        for attribute, name in config.MAHNOB_RATINGS.items():
            if attribute in root.attrib:
                ratings[name] = _rating(root.attrib[attribute].strip(), attribute, path)
    return participant, ratings


def _scan(folder: Path) -> _Session | None:
    """What one session folder holds (None for a folder that is not a session's)."""
    xml = folder / SESSION_FILE
    try:
        bdfs = sorted(f for f in folder.iterdir() if _BDF_RE.fullmatch(f.name))
    except OSError as exc:
        return _Session(folder, problem=(folder, f"not readable ({exc})"))
    if not xml.exists() and not bdfs:
        return None
    session = _Session(folder, bdf=bdfs[0] if len(bdfs) == 1 else None)
    if bdfs:
        session.participant = str(int(_BDF_RE.fullmatch(bdfs[0].name).group(1)))
    try:
        participant, session.ratings = read_session_xml(xml)
        session.participant = participant
    except InvalidInputError as exc:
        session.problem = (Path(exc.path), exc.reason)
        return session
    if session.ratings and len(bdfs) != 1:
        session.problem = (folder, "no Part_<participant>_<S|N>_Trial<n>_emotion.bdf recording" if not bdfs
                           else f"several recordings ({', '.join(b.name for b in bdfs)})")
    return session


def _picked_ecg(record: Record, ecg_channel: str | None, rpeak_method: str) -> Record:
    """The Record with its best ECG lead only (or the named one)."""
    from maan.features.ecg import lead_quality

    if ecg_channel is None and record.ecg.data.shape[0] > 1:
        quality = [lead_quality(lead, record.ecg.fs, rpeak_method) for lead in record.ecg.data]
        best = int(np.argmax(quality))  # ties: the first lead
        log.debug("%s: ECG lead %s (beat quality %s)", record.source, record.ecg.channels[best],
                  ", ".join(f"{c} {q:.1f}" for c, q in zip(record.ecg.channels, quality)))
        record.ecg = Signal(record.ecg.data[best:best + 1], record.ecg.fs, (record.ecg.channels[best],))
    return record


def read_mahnob_session(bdf: str | os.PathLike, subject: str, trial: int, ratings: dict,
                        ecg_channel: str | None = None, rpeak_method: str | None = None) -> Record:
    """The clip of one session's BDF file as a Record (EEG µV, one ECG lead mV, 128 Hz).

    ``ecg_channel`` names the ECG lead (default: the best of EXG1-EXG3 by beat quality, with
    ``rpeak_method``'s detector). Raises InvalidInputError naming the file when it is missing,
    unreadable or truncated, lacks a channel, or its ``Status`` channel does not hold the
    clip's onset and offset pulses.
    """
    import mne

    from maan.datasets.recordings import open_recording, record_from_raw
    from maan.features.ecg import DEFAULT_RPEAK_METHOD

    bdf = Path(bdf)
    if not bdf.is_file():
        raise InvalidInputError(bdf, "file not found" if not bdf.exists() else "not a file")
    raw = open_recording(bdf, preload=False)
    leads = (ecg_channel,) if ecg_channel else config.MAHNOB_ECG_CHANNELS
    missing = [c for c in (*config.MAHNOB_EEG_CHANNELS, *leads, config.MAHNOB_STIM_CHANNEL)
               if c not in raw.ch_names]
    if missing:
        raise InvalidInputError(bdf, f"missing channel(s) {', '.join(missing)} (a MAHNOB-HCI recording has "
                                     f"{len(config.MAHNOB_CHANNELS)}: 32 EEG, EXG1-EXG8, GSR1 ... Status)")
    try:
        events = mne.find_events(raw, stim_channel=config.MAHNOB_STIM_CHANNEL, shortest_event=1,
                                 verbose="error")
    except MemoryError:
        raise
    except Exception as exc:
        raise InvalidInputError(bdf, f"Status channel not readable ({type(exc).__name__}: {exc})") from None
    if len(events) < 2:
        raise InvalidInputError(bdf, f"the Status channel holds {len(events)} pulse(s); the clip's onset and "
                                     "offset are marked by two")
    onset, offset = (int(s) - raw.first_samp for s in events[:2, 0])
    fs = float(raw.info["sfreq"])
    raw.crop(tmin=onset / fs, tmax=(offset - 1) / fs, include_tmax=True, verbose="error")
    record = record_from_raw(raw, config.MAHNOB_EEG_CHANNELS, leads, MAHNOB_RECORD_FS, subject=subject,
                             trial=trial, ratings=ratings, source=str(bdf))
    return _picked_ecg(record, ecg_channel, rpeak_method or DEFAULT_RPEAK_METHOD)


def _load(sessions: tuple, subject: str, ecg_channel, rpeak_method, skip_invalid: bool = False):
    """Records of a participant's rated sessions; with ``skip_invalid`` also the bad sessions
    as (path, reason) pairs instead of raising for the first one."""
    records, skipped = [], []
    trial = 0
    for session in sessions:
        try:
            if session.problem:  # not numbered: it may be a neutral clip's session
                raise InvalidInputError(*session.problem)
            trial += 1
            records.append(read_mahnob_session(session.bdf, subject, trial, session.ratings, ecg_channel,
                                               rpeak_method))
        except InvalidInputError as exc:
            if not skip_invalid:
                raise
            skipped.append((str(exc.path), exc.reason))
    return (records, skipped) if skip_invalid else records


def _bad_session(problem):
    raise InvalidInputError(*problem)


def list_mahnob_subjects(data: str | os.PathLike, ecg_channel: str | None = None,
                         rpeak_method: str | None = None) -> MahnobSources:
    """Participants of a MAHNOB-HCI ``Sessions`` folder, sorted by participant id.

    Reads every session.xml (not the recordings): rated sessions are grouped by participant
    and numbered in session order; unrated ones are counted (``unrated_sessions``). A session
    whose participant cannot be told (its session.xml is bad and it has no BDF named
    ``Part_<participant>_...``) becomes a source of its own whose ``load()`` raises. Raises
    InvalidInputError for a missing folder or one without any session.
    """
    root = _sessions_root(Path(data))
    folders = sorted((d for d in root.iterdir() if d.is_dir()), key=_session_key)
    sessions = [s for s in map(_scan, folders) if s is not None]
    if not sessions:
        raise InvalidInputError(root, "no MAHNOB-HCI sessions (folders with session.xml and "
                                      "Part_<participant>_<S|N>_Trial<n>_emotion.bdf)")
    by_participant: dict[str, list] = {}
    orphans, unrated = [], 0
    for session in sessions:
        if session.problem is None and not session.ratings:
            unrated += 1
        elif session.participant is None:
            orphans.append(session)
        else:
            by_participant.setdefault(session.participant, []).append(session)
    if unrated:
        log.info("%s: %d session%s without arousal/valence ratings (neutral clips) skipped", root, unrated,
                 "s" if unrated > 1 else "")

    def order(participant: str):
        return (0, int(participant), "") if participant.isdigit() else (1, 0, participant)

    sources = MahnobSources()
    for participant in sorted(by_participant, key=order):
        group = tuple(by_participant[participant])
        subject = _subject_name(participant)
        first = next((s.bdf for s in group if s.bdf is not None), group[0].folder / SESSION_FILE)
        sources.append(SubjectSource(
            subject=subject, path=str(first),
            load=functools.partial(_load, group, subject, ecg_channel, rpeak_method),
            load_skipping=functools.partial(_load, group, subject, ecg_channel, rpeak_method, True)))
    for session in orphans:
        sources.append(SubjectSource(subject=f"session-{session.folder.name}", path=str(session.problem[0]),
                                     load=functools.partial(_bad_session, session.problem)))
    sources.unrated_sessions = unrated
    return sources
