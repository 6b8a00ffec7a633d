"""Synchronized windows shared by both modalities.

Windows are defined in seconds (start at each trial's first sample, fixed step, trailing
remainder dropped) and converted to each modality's sample grid, so ECG at 256 Hz and EEG at
128 Hz cover the identical time span.
"""
from __future__ import annotations

import numpy as np

from maan.config import check_seconds
from maan.errors import MaanError


def samples_per(seconds: float, fs: float, what: str = "window") -> int:
    """``seconds * fs`` as an int; refuses spans that do not fall on the sample grid."""
    n = seconds * fs
    if not np.isfinite(n) or n < 1 or abs(n - round(n)) > 1e-6:
        raise MaanError(
            f"a {seconds:g}-s {what} is {n:g} samples at {fs:g} Hz; choose a length that is a whole, "
            "positive number of samples"
        )
    return int(round(n))


def window_starts(duration: float, window_seconds: float, step_seconds: float) -> np.ndarray:
    """Start times (s) of every whole window that fits in ``duration`` seconds."""
    check_seconds("window (--window)", window_seconds)
    check_seconds("step (--step)", step_seconds)
    if not duration >= window_seconds:
        return np.zeros(0)
    # The epsilon keeps a window that ends exactly on the last sample despite rounding.
    n = int(np.floor((duration - window_seconds) / step_seconds + 1e-9)) + 1
    return np.arange(n) * step_seconds


def finite_runs(finite: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``(start, stop)`` sample ranges where ``finite`` (1-D bool) is True."""
    finite = np.asarray(finite, dtype=bool)
    edges = np.diff(np.concatenate(([0], finite.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def run_of_window(starts: np.ndarray, window_samples: int, runs: list[tuple[int, int]]) -> np.ndarray:
    """Index into ``runs`` of the run that wholly contains each window, or -1 (window touches NaN)."""
    starts = np.asarray(starts, dtype=np.int64)
    out = np.full(len(starts), -1, dtype=np.int64)
    for i, (a, b) in enumerate(runs):
        out[(starts >= a) & (starts + window_samples <= b)] = i
    return out
