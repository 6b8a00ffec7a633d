"""ECG stage (paper 3.2): normalise, detect R-peaks, RR-interval series per window.

Pipeline for one continuous trial segment (detection runs once per segment, not per window):

1. :func:`normalize_ecg` - robust z-score (median / IQR); a flat or all-NaN signal raises
   :class:`~maan.errors.InvalidSignalError`. Missing samples (NaN) are set to the median (0).
2. Detection band-pass: zero-phase Butterworth, order 2, :data:`DETECTION_BAND_HZ` (6-15 Hz).
   It removes baseline wander, electrode-motion drift, T waves and most muscle noise before any
   detector sees the signal, and keeps the lower-frequency energy of wide (ventricular) QRS
   complexes; the band was chosen on the ectopy benchmark's worst case (``docs/benchmarks.md``).
3. Polarity: the band-passed signal is cut in 2-s blocks; in each block the sample of largest
   magnitude is taken; if the median of those signed values is negative the signal is inverted
   (the same rule as NeuroKit2's ``ecg_invert``, but on blocks instead of a sliding window, which
   needs O(n) instead of O(n x window) memory).
4. Detection with NeuroKit2's ``ecg_findpeaks``: by default ``neurokit`` (the best worst case
   in the benchmark, ectopic beats included); any other NeuroKit2 method, or the ``"consensus"`` of
   :data:`CONSENSUS_METHODS` (a beat is kept where at least 2 of the 3 detectors agree within
   :data:`CONSENSUS_TOLERANCE_SECONDS`; compared in ``docs/benchmarks.md``).
5. Refinement: each detection moves to the maximum of the polarity-corrected band-passed signal
   within +/- :data:`REFINE_SECONDS`, so all methods report the R-wave apex (energy-envelope
   detectors such as Pan-Tompkins otherwise report a point up to ~100 ms late), then peaks closer
   than :data:`MIN_PEAK_DISTANCE_SECONDS` are merged, and detections below
   :data:`MIN_RELATIVE_R_AMPLITUDE` of the median R amplitude are dropped.
6. Absent ECG: if the median R amplitude is less than :data:`MIN_QRS_NOISE_RATIO` times the
   robust noise level, both measured in :data:`PRESENCE_BAND_HZ` (8-20 Hz, where a sinus QRS
   stands out most from T waves and noise), the segment holds no ECG and InvalidSignalError is
   raised.

:func:`rr_windows` turns the peaks into fixed-length, zero-embedded RR-interval (HRV) series per
analysis window, vectorised with ``np.searchsorted``.

The default method (:data:`DEFAULT_RPEAK_METHOD`) and band were chosen by the worst case over
MIT-BIH record 100 as recorded and with ventricular ectopic beats inserted
(:mod:`maan.datasets.ectopy`: isolated, bigeminy, couplets), clean, inverted and with realistic
noise at 0 and -6 dB SNR, at 128 and 500 Hz: see ``benchmarks/rpeaks.py`` and
``docs/benchmarks.md``. Detectors whose adaptive threshold follows the narrow sinus QRS
(``rodrigues2021``, ``kalidas2017``) miss most wide ventricular beats.
"""
from __future__ import annotations

import warnings
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from scipy import signal as sps

from maan.config import MIN_BEATS, RR_LENGTH, RR_MAX_SECONDS, RR_MIN_SECONDS
from maan.errors import InvalidSignalError

__all__ = [
    "DEFAULT_RPEAK_METHOD",
    "RPEAK_METHODS",
    "CONSENSUS_METHODS",
    "DETECTION_BAND_HZ",
    "PRESENCE_BAND_HZ",
    "ECG_WINDOW_REASONS",
    "normalize_ecg",
    "detect_rpeaks",
    "lead_quality",
    "rr_windows",
    "RRWindows",
    "heart_rate",
    "add_ecg_noise",
]

# --- constants local to the ECG stage (candidates for maan.config) ---------------------
#: Default R-peak detector, chosen by its worst case over ectopy and noise (benchmarks/rpeaks.py,
#: docs/benchmarks.md, "ECG R-peak detection").
DEFAULT_RPEAK_METHOD = "neurokit"
#: Detectors voting in the ``"consensus"`` method (all fast, all in NeuroKit2's core deps).
CONSENSUS_METHODS = ("neurokit", "kalidas2017", "pantompkins1985")
#: NeuroKit2 ``ecg_findpeaks`` methods accepted by :func:`detect_rpeaks` (plus "consensus").
#: ``emrich2023`` needs the optional ``ts2vg`` package; ``promac`` runs ~10 detectors (slow).
RPEAK_METHODS = (
    "consensus",
    "neurokit",
    "pantompkins1985",
    "hamilton2002",
    "christov2004",
    "gamboa2008",
    "elgendi2010",
    "engzeemod2012",
    "manikandan2012",
    "khamis2016",
    "kalidas2017",
    "nabian2018",
    "rodrigues2021",
    "emrich2023",
    "promac",
)
#: Detection band-pass (Hz): the QRS band, wide complexes included. Upper edge capped at 0.45 fs.
DETECTION_BAND_HZ = (6.0, 15.0)
#: Detections of different detectors closer than this are the same beat (consensus vote).
CONSENSUS_TOLERANCE_SECONDS = 0.1
#: Half-width of the search window that moves a detection to the R-wave apex.
REFINE_SECONDS = 0.1
#: Peaks closer than this after refinement are one beat (200 ms = 300 bpm, refractory period).
MIN_PEAK_DISTANCE_SECONDS = 0.2
#: Shortest segment detect_rpeaks accepts (the detectors need a few beats to set thresholds).
MIN_ECG_SECONDS = 2.0
#: Minimum QRS-band peak-to-noise ratio of a segment: median amplitude in
#: :data:`PRESENCE_BAND_HZ` at the detected R-peaks over the robust (MAD) level of that band.
#: Chosen between real leads and noise-only leads (docs/benchmarks.md, "ECG present or not").
MIN_QRS_NOISE_RATIO = 5.0
#: Band (Hz) of the absent-ECG check: narrower and higher than the detection band, so that
#: T waves and baseline residue do not count as noise level.
PRESENCE_BAND_HZ = (8.0, 20.0)
#: Detections whose QRS-band amplitude is below this fraction of the median R amplitude of the
#: segment are dropped (start-up transients of adaptive thresholds, P/T waves in quiet stretches).
MIN_RELATIVE_R_AMPLITUDE = 0.15
#: Block length of the polarity check.
POLARITY_BLOCK_SECONDS = 2.0

#: Reasons :func:`rr_windows` gives for dropped windows ("" = valid window).
ECG_WINDOW_REASONS = ("ecg_no_beats", "ecg_rr_out_of_range")


# --- normalisation -----------------------------------------------------------------------
def normalize_ecg(ecg) -> np.ndarray:
    """Robust z-score of a 1-D ECG: ``(x - median) / (IQR / 1.349)``.

    The IQR of a normal distribution is 1.349 sigma, so Gaussian noise gets unit scale; the
    sparse R-waves do not influence the scale. Where the IQR is zero but the signal is not
    constant (a mostly constant trace with spikes) the standard deviation is used instead.
    NaN samples stay NaN. Raises InvalidSignalError for an empty, all-NaN or flat signal.
    """
    x = np.asarray(ecg, dtype=np.float64)
    if x.ndim != 1:
        raise InvalidSignalError(
            f"ECG must be a 1-D array of samples, got shape {x.shape}; pass one lead, e.g. ecg[0]"
        )
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        raise InvalidSignalError(
            "ECG is empty or contains no finite samples (all NaN/inf); the lead is absent"
        )
    q25, med, q75 = np.percentile(finite, [25.0, 50.0, 75.0])
    scale = (q75 - q25) / 1.349
    if not scale > 0:
        with np.errstate(over="ignore", invalid="ignore"):
            scale = float(np.std(finite))
    if not np.isfinite(scale):
        raise InvalidSignalError("ECG values overflow (corrupt file or wrong unit)")
    tiny = 1e-12 * max(1.0, abs(float(med)))
    if scale <= tiny:
        raise InvalidSignalError(
            "ECG is flat (constant signal): the electrode is disconnected or the lead is absent"
        )
    out = (x - med) / scale
    out[~np.isfinite(x)] = np.nan
    return out


# --- R-peak detection -------------------------------------------------------------------
def _validate(ecg, fs) -> tuple[np.ndarray, float]:
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise InvalidSignalError(f"sampling rate fs must be a positive number in Hz, got {fs!r}")
    if not np.isfinite(fs) or fs <= 0:
        raise InvalidSignalError(f"sampling rate fs must be a positive number in Hz, got {fs!r}")
    x = np.asarray(ecg, dtype=np.float64)
    if x.ndim != 1:
        raise InvalidSignalError(
            f"ECG must be a 1-D array of samples, got shape {x.shape}; pass one lead, e.g. ecg[0]"
        )
    if x.size < MIN_ECG_SECONDS * fs:
        raise InvalidSignalError(
            f"ECG too short for R-peak detection: {x.size} samples ({x.size / fs:.2f} s at "
            f"{fs:g} Hz), need at least {MIN_ECG_SECONDS:g} s; detect on the whole trial, not per window"
        )
    return x, fs


def _bandpass(x: np.ndarray, fs: float, band=DETECTION_BAND_HZ) -> np.ndarray:
    lo, hi = band
    hi = min(hi, 0.45 * fs)
    if lo >= hi:
        raise InvalidSignalError(
            f"sampling rate {fs:g} Hz is too low for R-peak detection (QRS band {band[0]:g}-"
            f"{band[1]:g} Hz needs fs > {lo / 0.45:.0f} Hz)"
        )
    return sps.sosfiltfilt(_bandpass_sos(float(lo), float(hi), float(fs)), x)


@lru_cache(maxsize=64)
def _bandpass_sos(lo: float, hi: float, fs: float) -> np.ndarray:
    # designed once per rate: the design costs as much as filtering a minute of ECG
    return sps.butter(2, [lo, hi], btype="bandpass", fs=fs, output="sos")


def _is_inverted(y: np.ndarray, fs: float) -> bool:
    """Median of the signed block extremes < 0 (see module docstring, step 3)."""
    block = max(1, int(round(POLARITY_BLOCK_SECONDS * fs)))
    n = (y.size // block) * block
    if n == 0:
        blocks = y[None, :]
    else:
        blocks = y[:n].reshape(-1, block)
    idx = np.argmax(np.abs(blocks), axis=1)
    vals = blocks[np.arange(blocks.shape[0]), idx]
    return bool(np.median(vals) < 0)


def _nk_findpeaks(y: np.ndarray, fs: float, method: str) -> np.ndarray:
    if method in ("rodrigues2021", "neurokit"):
        peaks = _rodrigues2021(y, fs) if method == "rodrigues2021" else _neurokit(y, fs)
        return np.sort(peaks[(peaks >= 0) & (peaks < y.size)])
    import neurokit2 as nk  # imported lazily: heavy (pandas, matplotlib)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            info = nk.ecg_findpeaks(y, sampling_rate=fs, method=method)
        except (IndexError, ValueError, ZeroDivisionError, FloatingPointError) as exc:
            if "module is required" in str(exc):  # e.g. emrich2023 needs the optional ts2vg
                raise InvalidSignalError(
                    f"R-peak method {method!r} needs an optional package: {exc}"
                ) from exc
            # NeuroKit's detectors raise these on signals without beats (pure noise, too short).
            return np.zeros(0, dtype=np.int64)
    peaks = np.asarray(info["ECG_R_Peaks"], dtype=np.float64)
    peaks = peaks[np.isfinite(peaks)].astype(np.int64)
    return np.sort(peaks[(peaks >= 0) & (peaks < y.size)])


def _neurokit(signal: np.ndarray, fs: float, smoothwindow: float = 0.1, avgwindow: float = 0.75,
              gradthreshweight: float = 1.5, minlenweight: float = 0.4, mindelay: float = 0.3) -> np.ndarray:
    """NeuroKit2's ``neurokit`` detector (its defaults), same output, vectorised over the QRS regions.

    NeuroKit2 calls ``scipy.signal.find_peaks`` with prominences once per QRS region (per beat),
    which was most of the R-peak stage's time. A region with exactly one strict local maximum
    inside it and no two equal neighbouring samples has that maximum as its peak whatever the
    prominences, so those regions are found with cumulative sums; the others (several maxima,
    plateaus) still go through ``find_peaks``. Results are identical (checked in the tests against
    ``nk.ecg_findpeaks(method="neurokit")``); the speed-up is measured in ``benchmarks/rpeaks.py``.
    """
    x = np.asarray(signal, dtype=np.float64)
    smooth_size, average_size = int(np.rint(smoothwindow * fs)), int(np.rint(avgwindow * fs))
    if x.size < max(3, smooth_size, average_size) or min(smooth_size, average_size) < 1:
        return np.zeros(0, dtype=np.int64)  # where NeuroKit2 refuses the smoothing
    smooth = ndimage.uniform_filter1d(np.abs(np.gradient(x)), smooth_size, mode="nearest")
    average = ndimage.uniform_filter1d(smooth, average_size, mode="nearest")
    qrs = smooth > gradthreshweight * average
    beg = np.flatnonzero(~qrs[:-1] & qrs[1:])
    if beg.size == 0:
        return np.zeros(0, dtype=np.int64)
    end = np.flatnonzero(qrs[:-1] & ~qrs[1:])
    end = end[end > beg[0]]
    n = min(beg.size, end.size)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    beg, end = beg[:n], end[:n]
    long_enough = (end - beg) >= np.mean(end - beg) * minlenweight
    beg, end = beg[long_enough], end[long_enough]
    step = np.diff(x)
    strict_max = np.zeros(x.size, dtype=bool)
    strict_max[1:-1] = (step[:-1] > 0) & (step[1:] < 0)
    n_max = np.concatenate([[0], np.cumsum(strict_max)])
    n_flat = np.concatenate([[0], np.cumsum(step == 0)])
    # find_peaks sees x[beg:end]: its maxima can lie at beg + 1 ... end - 2
    count = n_max[end - 1] - n_max[beg + 1]
    plateau = n_flat[end - 1] - n_flat[beg] > 0
    peaks = np.full(beg.size, -1, dtype=np.int64)
    single = (count == 1) & ~plateau
    maxima = np.flatnonzero(strict_max)
    peaks[single] = maxima[np.searchsorted(maxima, beg[single] + 1)]
    for i in np.flatnonzero(~single & ((count > 0) | plateau)):
        local, props = sps.find_peaks(x[beg[i]:end[i]], prominence=(None, None))
        if local.size:
            peaks[i] = beg[i] + local[np.argmax(props["prominences"])]
    min_delay = int(np.rint(fs * mindelay))
    peaks = peaks[peaks >= 0]
    if peaks.size == 0 or (peaks[0] > min_delay and np.all(np.diff(peaks) > min_delay)):
        return peaks  # no peak too close to the one kept before it (the usual case)
    kept, last = [], 0
    for p in peaks.tolist():  # greedy: each peak against the last one kept
        if p - last > min_delay:
            kept.append(p)
            last = p
    return np.asarray(kept, dtype=np.int64)


def _rodrigues2021(signal: np.ndarray, fs: float) -> np.ndarray:
    """NeuroKit2's ``rodrigues2021`` detector, same output, vectorised per beat (not per sample).

    NeuroKit2 0.2.13 runs the detector's state machine one sample at a time in Python; this
    version runs the same three states with numpy slices (state 3's decaying threshold uses
    ``np.cumprod``, i.e. the same sequence of float multiplications, so results are identical;
    checked in the tests against ``nk.ecg_findpeaks(method="rodrigues2021")``); the speed-up is
    measured in ``benchmarks/rpeaks.py``.
    """
    x = np.asarray(signal, dtype=np.float64)
    N = int(np.clip(np.round(3 * fs / 128), 2, None))
    Nd = N - 1
    Pth = (0.7 * fs) / 128 + 2.7
    Rmin = 0.26
    if x.size <= Nd + 1:
        return np.zeros(0, dtype=np.int64)
    diff = x[Nd:] - x[:-Nd]
    squar = np.square(diff[1:] - diff[:-1])
    proc = sps.lfilter(np.ones(N), [1], squar)
    tf = proc.size
    decay = np.exp(-Pth / fs)
    chunk = max(16, int(2 * fs))
    rpeaks = []
    i = 1
    ramp_total = 0.0
    rpeakpos = 0
    while i < tf:
        # state 1: maximum over [i, tf1) (first occurrence, strictly positive)
        tf1 = np.round(i + Rmin * fs)
        end = int(min(np.ceil(tf1), tf))
        rpeakamp = 0.0
        if end > i:
            k = int(np.argmax(proc[i:end]))
            if proc[i + k] > 0:
                rpeakamp = proc[i + k]
                rpeakpos = i + k + 1
            i = end
        ramp_total = (19 / 20) * ramp_total + (1 / 20) * rpeakamp
        rpeaks.append(rpeakpos)
        # state 2: waiting state (as in NeuroKit2: 0.2 * 2 - d samples, i.e. usually none)
        tf2 = i + np.round(0.2 * 2 - (tf1 - rpeakpos))
        if i <= tf2:
            i = int(np.floor(tf2)) + 1
        # state 3: exponentially decreasing threshold until the signal crosses it
        thr = ramp_total
        while i < tf:
            L = min(chunk, tf - i)
            seq = np.empty(L)
            seq[0] = thr
            seq[1:] = decay
            thr_seq = np.cumprod(seq)
            hit = np.flatnonzero(proc[i:i + L] >= thr_seq)
            if hit.size:
                i += int(hit[0])
                break
            thr = thr_seq[-1] * decay
            i += L
    return np.asarray(rpeaks, dtype=np.int64)


def _consensus(y: np.ndarray, fs: float, methods=CONSENSUS_METHODS, min_votes=None) -> np.ndarray:
    """Beats found by at least ``min_votes`` (default: majority) detectors within tolerance."""
    if min_votes is None:
        min_votes = len(methods) // 2 + 1
    found = [_refine(_nk_findpeaks(y, fs, m), y, fs) for m in methods]
    allp = np.concatenate([p for p in found] + [np.zeros(0, np.int64)])
    if allp.size == 0:
        return allp
    who = np.concatenate([np.full(p.size, i) for i, p in enumerate(found)] + [np.zeros(0, int)])
    order = np.argsort(allp, kind="stable")
    allp, who = allp[order], who[order]
    tol = CONSENSUS_TOLERANCE_SECONDS * fs
    new_cluster = np.concatenate([[True], np.diff(allp) > tol])
    cid = np.cumsum(new_cluster) - 1
    ncl = cid[-1] + 1
    # distinct detectors per cluster: count unique (cluster, detector) pairs
    pair = np.unique(cid * len(methods) + who)
    votes = np.bincount(pair // len(methods), minlength=ncl)
    # position: the member with the highest QRS-band amplitude (after refinement the members
    # mostly coincide; where they do not, the apex wins over an off-beat detection)
    order = np.lexsort((-y[allp], cid))
    first = order[np.flatnonzero(np.concatenate([[True], np.diff(cid[order]) > 0]))]
    return np.unique(allp[first][votes >= min_votes])


def _refine(peaks: np.ndarray, y: np.ndarray, fs: float) -> np.ndarray:
    """Move each peak to the maximum of ``y`` within +/- REFINE_SECONDS, then de-duplicate."""
    if peaks.size == 0:
        return peaks.astype(np.int64)
    w = max(1, int(round(REFINE_SECONDS * fs)))
    offs = np.arange(-w, w + 1)
    idx = np.clip(peaks[:, None] + offs[None, :], 0, y.size - 1)
    best = idx[np.arange(idx.shape[0]), np.argmax(y[idx], axis=1)]
    best = np.unique(best)
    return _merge_close(best, y, int(round(MIN_PEAK_DISTANCE_SECONDS * fs)))


def _merge_close(peaks: np.ndarray, y: np.ndarray, min_dist: int) -> np.ndarray:
    """Of peaks closer than ``min_dist`` keep the higher one (greedy, left to right)."""
    if peaks.size < 2 or not np.any(np.diff(peaks) < min_dist):
        return peaks
    keep = [peaks[0]]
    for p in peaks[1:]:  # rare path (only runs when a conflict exists)
        if p - keep[-1] < min_dist:
            if y[p] > y[keep[-1]]:
                keep[-1] = p
        else:
            keep.append(p)
    return np.asarray(keep, dtype=np.int64)


def detect_rpeaks(ecg, fs, method: str = DEFAULT_RPEAK_METHOD) -> np.ndarray:
    """R-peak sample indices (sorted, int64) of one continuous 1-D ECG segment.

    Parameters
    ----------
    ecg : array-like, shape (n_samples,)
        One ECG lead in any unit; NaN samples (gaps) are allowed and produce no beats.
    fs : float
        Sampling rate in Hz (> 0; at least ~34 Hz for the 6-15 Hz QRS band).
    method : str
        Any NeuroKit2 ``ecg_findpeaks`` method name (see :data:`RPEAK_METHODS`), default
        ``"neurokit"`` (smoothed absolute gradient against its moving average; the best worst
        case, ectopic beats included, in docs/benchmarks.md), or
        ``"consensus"`` (majority vote of neurokit, kalidas2017 and pantompkins1985).

    Inverted polarity is detected and corrected. Raises InvalidSignalError for a flat, all-NaN or
    too short signal, a bad ``fs`` or shape, an unknown method, or when no beat is found.
    Run it once per continuous trial segment (not per 10-s window) and then use
    :func:`rr_windows`.
    """
    x, fs = _validate(ecg, fs)
    method = _check_method(method)
    peaks, ratio = _peaks_and_ratio(x, fs, method)
    if peaks.size == 0:
        raise InvalidSignalError(
            f"no R-peaks detected in {x.size / fs:.1f} s of ECG (method {method!r}): the lead "
            "holds no ECG (noise only, disconnected electrode?)"
        )
    if not ratio >= MIN_QRS_NOISE_RATIO:
        raise InvalidSignalError(
            f"no ECG beats distinguishable from noise in {x.size / fs:.1f} s of ECG (QRS-band "
            f"peak/noise ratio {ratio:.1f} < {MIN_QRS_NOISE_RATIO:g}): the lead holds noise "
            "only (disconnected electrode?)"
        )
    return peaks.astype(np.int64)


def lead_quality(ecg, fs, method: str = DEFAULT_RPEAK_METHOD) -> float:
    """Beat quality of one ECG lead: the QRS-band peak/noise ratio by which
    :func:`detect_rpeaks` accepts or refuses a segment (``MIN_QRS_NOISE_RATIO``).

    Parameters
    ----------
    ecg : array-like, shape (n_samples,)
        One ECG lead in any unit; NaN samples are allowed.
    fs : float
        Sampling rate in Hz.
    method : str
        R-peak detector, as for :func:`detect_rpeaks`.

    Returns
    -------
    float
        The ratio (higher is better; a lead below ``MIN_QRS_NOISE_RATIO`` holds no usable ECG),
        0.0 for a lead without any detected beat or that is flat, all-NaN or too short.
    """
    method = _check_method(method)
    try:
        x, fs = _validate(ecg, fs)
        peaks, ratio = _peaks_and_ratio(x, fs, method)
    except InvalidSignalError:  # flat, all-NaN or too short: no beat at all
        return 0.0
    return float(ratio) if peaks.size else 0.0


def _check_method(method) -> str:
    if not isinstance(method, str) or method.lower() not in RPEAK_METHODS:
        raise InvalidSignalError(
            f"unknown R-peak method {method!r}; use one of {', '.join(RPEAK_METHODS)}"
        )
    return method.lower()


def _peaks_and_ratio(x: np.ndarray, fs: float, method: str) -> tuple[np.ndarray, float]:
    """R-peaks of a validated segment and their QRS-band peak/noise ratio (0 without peaks)."""
    z = normalize_ecg(x)
    z = np.where(np.isfinite(z), z, 0.0)
    y = _bandpass(z, fs)
    inverted = _is_inverted(y, fs)
    if inverted:
        y = -y
    if method == "consensus":
        peaks = _consensus(y, fs)
    else:
        peaks = _refine(_nk_findpeaks(y, fs, method), y, fs)
    if peaks.size:
        peaks = peaks[y[peaks] >= MIN_RELATIVE_R_AMPLITUDE * np.median(y[peaks])]
    if peaks.size == 0:
        return peaks, 0.0
    y_presence = _bandpass(z, fs, PRESENCE_BAND_HZ)
    return peaks, qrs_noise_ratio(-y_presence if inverted else y_presence, peaks)


def qrs_noise_ratio(y: np.ndarray, peaks: np.ndarray) -> float:
    """Median of ``y`` at ``peaks`` over 1.4826 * MAD(y) (``y``: polarity-corrected, band-passed)."""
    if peaks.size == 0:
        return 0.0
    level = 1.4826 * float(np.median(np.abs(y - np.median(y))))
    if not level > 0:
        return float("inf")
    return float(np.median(y[peaks]) / level)


# --- RR series per window ---------------------------------------------------------------
class RRWindows(NamedTuple):
    """Result of :func:`rr_windows` (a 3-tuple: ``rr, valid, reasons = rr_windows(...)``)."""

    rr: np.ndarray  # (n_windows, length) float64, seconds, zero-embedded
    valid: np.ndarray  # (n_windows,) bool
    reasons: np.ndarray  # (n_windows,) object: "" or one of ECG_WINDOW_REASONS


def rr_windows(
    rpeaks,
    fs,
    starts,
    window_samples: int,
    length: int = RR_LENGTH,
    *,
    return_reasons: bool = True,
):
    """Zero-embedded RR-interval (HRV) series of fixed-length windows (paper 3.2).

    Parameters
    ----------
    rpeaks : array of int
        Sorted R-peak sample indices of the segment (from :func:`detect_rpeaks`).
    fs : float
        Sampling rate (Hz) of the indices.
    starts : array of int
        First sample of each window; window ``k`` covers ``[starts[k], starts[k] + window_samples)``.
    window_samples : int
        Window length in samples (e.g. ``WINDOW_SECONDS * fs``).
    length : int
        Length of each RR series: intervals are right-padded with zeros / truncated to ``length``.
    return_reasons : bool
        True (default): return the named 3-tuple :class:`RRWindows` ``(rr, valid, reasons)``;
        False: return the 2-tuple ``(rr, valid)``.

    Returns
    -------
    RRWindows (rr, valid, reasons), a named 3-tuple (``(rr, valid)`` if not return_reasons):
    rr : float64 array (n_windows, length)
        RR intervals in seconds between consecutive R-peaks that both lie inside the window,
        in time order, followed by zeros. Filled for invalid windows too.
    valid : bool array (n_windows,)
        At least ``MIN_BEATS`` peaks in the window and every interval within
        ``[RR_MIN_SECONDS, RR_MAX_SECONDS]`` (all intervals count, also truncated ones).
    reasons : object array of str (n_windows,)
        ``""`` for a valid window, else ``"ecg_no_beats"`` (fewer than MIN_BEATS peaks) or
        ``"ecg_rr_out_of_range"`` (an interval outside the physiological range).
    """
    fs = float(fs)
    if not np.isfinite(fs) or fs <= 0:
        raise InvalidSignalError(f"sampling rate fs must be a positive number in Hz, got {fs!r}")
    if int(window_samples) <= 0:
        raise InvalidSignalError(f"window_samples must be a positive integer, got {window_samples!r}")
    if int(length) <= 0:
        raise InvalidSignalError(f"length must be a positive integer, got {length!r}")
    window_samples, length = int(window_samples), int(length)
    p = np.asarray(rpeaks, dtype=np.int64).ravel()
    if p.size > 1 and np.any(np.diff(p) < 0):
        p = np.sort(p)
    s = np.asarray(starts, dtype=np.int64).ravel()
    n_win = s.size

    lo = np.searchsorted(p, s, side="left")  # first peak >= start
    hi = np.searchsorted(p, s + window_samples, side="left")  # first peak >= end
    n_peaks = hi - lo
    n_rr = np.maximum(n_peaks - 1, 0)

    d = np.diff(p) / fs  # interval j: between peak j and j+1
    rr = np.zeros((n_win, length), dtype=np.float64)
    if d.size:
        k = np.arange(length)
        idx = lo[:, None] + k[None, :]
        take = k[None, :] < n_rr[:, None]
        rr[take] = d[idx[take]]
        bad = (d < RR_MIN_SECONDS) | (d > RR_MAX_SECONDS)
        cbad = np.concatenate([[0], np.cumsum(bad)])
        n_bad = np.where(n_rr > 0, cbad[np.minimum(lo + n_rr, d.size)] - cbad[np.minimum(lo, d.size)], 0)
    else:
        n_bad = np.zeros(n_win, dtype=np.int64)

    enough = n_peaks >= MIN_BEATS
    in_range = n_bad == 0
    valid = enough & in_range
    if not return_reasons:
        return rr, valid
    reasons = np.full(n_win, "", dtype=object)
    reasons[~enough] = "ecg_no_beats"
    reasons[enough & ~in_range] = "ecg_rr_out_of_range"
    return RRWindows(rr, valid, reasons)


def heart_rate(rpeaks, fs) -> float:
    """Median heart rate in bpm from R-peak indices (NaN when fewer than 2 peaks)."""
    p = np.sort(np.asarray(rpeaks, dtype=np.float64).ravel())
    if p.size < 2:
        return float("nan")
    return float(60.0 / np.median(np.diff(p) / float(fs)))


# --- noise model (benchmarks and tests) ---------------------------------------------------
#: Share of the noise power per component: baseline wander, muscle (EMG), electrode motion.
NOISE_WEIGHTS = (0.4, 0.4, 0.2)


def add_ecg_noise(ecg, fs, snr_db: float, seed: int = 0, weights=NOISE_WEIGHTS) -> np.ndarray:
    """Return ``ecg`` plus realistic noise scaled to ``snr_db`` (stand-in for MIT-BIH NSTDB).

    SNR = 10 log10(var(ecg) / mean(noise**2)). The noise is the sum of three components, each
    normalised to unit power and weighted by ``weights`` (power shares, default 40/40/20 %):

    * baseline wander: 5 sinusoids with random frequencies in 0.05-0.5 Hz, amplitudes and phases,
      plus a detrended random walk (half its amplitude);
    * muscle (EMG): Gaussian noise band-passed 20-100 Hz (Butterworth order 4, upper edge
      capped at 0.45 fs), with a bursty envelope: base level 0.5, and one 0.5-3 s burst at 1.5
      per 10 s on average at random times, smoothed by a 2 Hz low-pass;
    * electrode motion: one event per 15 s on average at random times: a baseline step of random
      amplitude N(0, 1) decaying exponentially (tau 0.2-1 s), plus a 0.5-s damped oscillation
      (1-10 Hz, tau 0.15 s) at half that amplitude.

    Deterministic for a given ``seed``.
    """
    x = np.asarray(ecg, dtype=np.float64)
    fs = float(fs)
    n = x.size
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs

    bw = np.zeros(n)
    for f in rng.uniform(0.05, 0.5, 5):
        bw += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    rw = sps.detrend(np.cumsum(rng.standard_normal(n)))
    bw = bw / (bw.std() or 1.0) + 0.5 * rw / (rw.std() or 1.0)

    hi = min(100.0, 0.45 * fs)
    emg = sps.sosfiltfilt(sps.butter(4, [20.0, hi], btype="bandpass", fs=fs, output="sos"),
                          rng.standard_normal(n))
    env = np.full(n, 0.5)
    n_bursts = int(n / fs / 10)
    for s0, dur in zip(rng.integers(0, n, n_bursts), rng.uniform(0.5, 3.0, n_bursts)):
        env[s0:s0 + int(dur * fs)] = 1.5
    env = sps.sosfiltfilt(sps.butter(2, 2.0, fs=fs, output="sos"), env)
    emg *= env

    em = np.zeros(n)
    for s0 in rng.integers(0, n, max(1, int(n / fs / 15))):
        amp = rng.normal(0.0, 1.0)
        tau = rng.uniform(0.2, 1.0)
        L = min(n - s0, int(5 * tau * fs))
        em[s0:s0 + L] += amp * np.exp(-np.arange(L) / fs / tau)
        f = rng.uniform(1.0, 10.0)
        L2 = min(n - s0, int(0.5 * fs))
        tt = np.arange(L2) / fs
        em[s0:s0 + L2] += 0.5 * amp * np.sin(2 * np.pi * f * tt) * np.exp(-tt / 0.15)

    noise = np.zeros(n)
    for w, c in zip(weights, (bw, emg, em)):
        p = np.mean(c**2)
        if p > 0:
            noise += np.sqrt(w) * c / np.sqrt(p)
    p_noise = np.mean(noise**2)
    p_sig = np.var(x)
    if p_noise > 0:
        noise *= np.sqrt(p_sig / 10 ** (snr_db / 10) / p_noise)
    return x + noise
