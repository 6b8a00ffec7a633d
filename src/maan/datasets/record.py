"""The one record type shared by every reader (AMIGOS, DREAMER, recordings)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


def is_real_dtype(dtype) -> bool:
    """Integer or floating values: what a signal or a rating may hold (complex numbers, text,
    objects and booleans are not; complex samples would otherwise lose their imaginary part)."""
    return bool(np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating))


@dataclass
class Signal:
    """One modality of one trial: ``data`` is (channels, samples) float64 and may hold NaN."""

    data: np.ndarray
    fs: float
    channels: tuple[str, ...]

    @property
    def duration(self) -> float:
        return self.data.shape[-1] / self.fs


@dataclass
class Record:
    """One trial of one subject: synchronized ECG and EEG plus its ratings."""

    subject: str
    trial: int  # 1-based trial number within the subject (AMIGOS 1-20, DREAMER 1-18)
    ecg: Signal
    eeg: Signal
    ratings: dict[str, float] = field(default_factory=dict)
    source: str = ""  # file the trial was read from (for error messages and the manifest)


@dataclass
class SubjectSource:
    """A subject that a reader found; ``load()`` reads its trials (may raise InvalidInputError)."""

    subject: str
    path: str
    load: Callable[[], list[Record]]
    # Readers whose files are single trials (MAHNOB-HCI sessions) can skip a bad one and go on:
    # ``load_skipping()`` returns (records, [(path, reason), ...]). None: a bad file fails the subject.
    load_skipping: Callable[[], tuple[list[Record], list[tuple[str, str]]]] | None = None
