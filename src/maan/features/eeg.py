"""EEG differential entropy (paper 3.3).

Differential entropy of a band-limited, Gaussian-distributed signal of variance sigma^2 is
0.5 * log(2 * pi * e * sigma^2) (nats), so DE reduces to the log of band power.

Two estimators of the band signals, both zero-phase:

* ``"fft"`` (default): each continuous segment is transformed once, multiplied in the frequency
  domain by the squared magnitude response of the same Butterworth band-pass that ``"butter"``
  runs forward-backward, and transformed back. This is what ``sosfiltfilt`` computes, minus its
  recursion: one rfft plus one irfft per band instead of two IIR passes per band, channel and
  window. Segments are reflect-padded first so the circular transform does not wrap the end of
  a trial into its start. :func:`differential_entropy` (one value per window) does not even
  transform back: by Parseval's theorem the variance of the window filtered with that response
  is its power spectrum weighted by the response, one rfft and one small matrix product for
  every band at once.
* ``"butter"``: ``scipy.signal.sosfiltfilt`` with a Butterworth band-pass of ``BUTTER_ORDER``
  per band, the usual reference. Kept as an option and as the reference in the tests.

The pipeline (:func:`de_subwindows`) filters the whole continuous segment once and takes
variances on sub-windows, never re-filtering per window. See docs/benchmarks.md for agreement
and throughput.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import fft as sp_fft
from scipy import signal as sp_signal

from maan.config import BANDS, DE_METHODS, DEFAULT_DE_METHOD
from maan.errors import InvalidSignalError

BUTTER_ORDER = 4
# Reflect padding on each side of a segment, in seconds: long enough for the Butterworth
# impulse response at the lowest band edge (4 Hz, order 4) to decay below 1e-3.
PAD_SECONDS = 1.0
_LOG_2PIE = np.log(2.0 * np.pi * np.e)


def _check_bands(bands, fs: float) -> tuple[tuple[str, float, float], ...]:
    bands = BANDS if bands is None else bands
    if not bands:
        raise ValueError("bands is empty: pass a dict like {'alpha': (8, 14)} or None for the defaults")
    checked = []
    for name, (low, high) in dict(bands).items():
        if not 0 < low < high < fs / 2:
            raise ValueError(
                f"band {name!r} = ({low}, {high}) Hz must satisfy 0 < low < high < fs/2 = {fs / 2:g}"
            )
        checked.append((str(name), float(low), float(high)))
    return tuple(checked)


@lru_cache(maxsize=64)
def _butter_sos(low: float, high: float, fs: float) -> np.ndarray:
    return sp_signal.butter(BUTTER_ORDER, (low, high), btype="bandpass", fs=fs, output="sos")


@lru_cache(maxsize=256)
def _zero_phase_gain(low: float, high: float, fs: float, n_fft: int) -> np.ndarray:
    """|H(f)|^2 of the Butterworth band-pass on the rfft grid: the response of filtfilt.

    Closed form of scipy's bilinear-transformed Butterworth band-pass (pre-warped edges),
    equal to ``abs(sosfreqz(...))**2`` to 1e-13 but ~50x cheaper, which matters because
    every trial length gives another rfft grid.
    """
    freqs = sp_fft.rfftfreq(n_fft, d=1.0 / fs)

    def warp(f):
        return np.tan(np.pi * np.asarray(f, dtype=np.float64) / fs)

    w_low, w_high = warp(low), warp(high)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = warp(freqs)
        ratio = (w * w - w_low * w_high) / (w * (w_high - w_low))
        gain = 1.0 / (1.0 + ratio ** (2 * BUTTER_ORDER))
    gain[~np.isfinite(gain)] = 0.0  # DC and Nyquist
    return gain.astype(np.float32)


def band_signals(x: np.ndarray, fs: float, bands=None, method: str = DEFAULT_DE_METHOD):
    """Yield ``(band_name, band_signal)`` for a continuous ``x`` of shape (..., samples).

    One transform of the whole segment serves every band (``"fft"``); ``"butter"`` runs
    ``sosfiltfilt`` once per band over the whole segment. With ``"fft"`` the yielded array is a
    buffer reused for the next band: reduce or copy it before advancing the generator.
    """
    if method not in DE_METHODS:
        raise ValueError(f"unknown DE method {method!r}; choose one of {DE_METHODS}")
    x = np.asarray(x, dtype=np.float64)
    checked = _check_bands(bands, fs)
    n = x.shape[-1]
    pad = min(int(round(PAD_SECONDS * fs)), n - 1)
    if method == "butter":
        for name, low, high in checked:
            yield name, sp_signal.sosfiltfilt(_butter_sos(low, high, fs), x, axis=-1, padtype="even", padlen=pad)
        return
    # Single precision halves the FFT cost; DE needs ~1e-6 relative accuracy, float32 gives 1e-7.
    x = x.astype(np.float32)
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect") if pad > 0 else x
    n_fft = sp_fft.next_fast_len(padded.shape[-1], real=True)
    spectrum = sp_fft.rfft(padded, n=n_fft, axis=-1)
    # Buffers reused across bands: fresh multi-MB arrays per band cost more in page faults than
    # the multiply itself. numpy's irfft (float32-capable since NumPy 2) writes into ``out``.
    product = np.empty_like(spectrum)
    filtered = np.empty(spectrum.shape[:-1] + (n_fft,), dtype=np.float32)
    for name, low, high in checked:
        np.multiply(spectrum, _zero_phase_gain(low, high, float(fs), n_fft), out=product)
        np.fft.irfft(product, n=n_fft, axis=-1, out=filtered)
        yield name, filtered[..., pad:pad + n]


def _de_from_variance(variance: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 0.5 * (_LOG_2PIE + np.log(variance))


def differential_entropy(eeg, fs: float, bands=None, method: str = DEFAULT_DE_METHOD) -> np.ndarray:
    """Differential entropy per band and channel, ``0.5 * log(2*pi*e*var(band signal))``.

    Parameters
    ----------
    eeg : array of shape (..., channels, samples)
        Each trailing (channels, samples) block is filtered on its own (e.g. one window).
    fs : float
        Sampling rate in Hz.
    bands : dict name -> (low, high) Hz, optional
        Defaults to ``maan.config.BANDS`` (theta 4-8, alpha 8-14, beta 14-31, gamma 31-45).
    method : {"fft", "butter"}
        Band-pass estimator (see module docstring); both are zero-phase Butterworth responses.
        ``"fft"`` filters each window circularly (:func:`band_power`), ``"butter"`` with
        reflection at its ends: they differ most in the first and last 1/low-edge seconds.

    Returns
    -------
    ndarray of shape (..., n_bands, channels), in nats.
    """
    eeg = np.asarray(eeg, dtype=np.float64)
    if eeg.ndim < 2:
        raise ValueError(f"eeg must have shape (..., channels, samples); got shape {eeg.shape}")
    if fs <= 0:
        raise ValueError(f"fs must be positive; got {fs}")
    if eeg.shape[-1] < 2:
        raise ValueError("eeg needs at least 2 samples per channel")
    if not np.isfinite(eeg).all():
        raise InvalidSignalError("eeg contains NaN or infinite values; drop or interpolate them first")
    if method == "fft":
        return _de_from_variance(band_power(eeg, fs, bands))
    out = [_de_from_variance(np.var(b, axis=-1)) for _, b in band_signals(eeg, fs, bands, method)]
    return np.stack(out, axis=-2)


@lru_cache(maxsize=64)
def _band_weights(bands: tuple, fs: float, n: int) -> np.ndarray:
    """(rfft bins, bands) weights: the zero-phase gain of each band, doubled where the one-sided
    spectrum stands for two bins, over n^2 (Parseval), so that power @ weights is the variance."""
    weights = np.stack([_zero_phase_gain(low, high, fs, n) for _, low, high in bands], axis=1).astype(np.float64)
    weights[1:(n + 1) // 2] *= 2.0  # every bin but DC and (n even) Nyquist has a mirror image
    return (weights / (float(n) * n)).astype(np.float32)


def band_power(x, fs: float, bands=None) -> np.ndarray:
    """Variance of each band signal of windows ``x`` (..., channels, samples): (..., bands, channels).

    The band signal is the window filtered (circularly) by the zero-phase Butterworth response
    of ``"fft"``; by Parseval's theorem its variance is the window's power spectrum weighted by
    that response, so nothing is transformed back. The mean (DC) has zero gain.
    """
    x = np.asarray(x)
    checked = _check_bands(bands, fs)
    spectrum = sp_fft.rfft(x.astype(np.float32, copy=False), axis=-1)  # float32: see band_signals
    power = np.square(spectrum.real) + np.square(spectrum.imag)
    variance = power @ _band_weights(checked, float(fs), x.shape[-1])  # (..., channels, bands), float32
    return np.moveaxis(np.maximum(variance, 0.0).astype(np.float64), -1, -2)


def de_subwindows(segment, fs: float, starts, window_samples: int, sub_samples: int,
                  bands=None, method: str = DEFAULT_DE_METHOD) -> np.ndarray:
    """DE maps of windows cut from one continuous, finite segment, filtering it only once.

    ``segment`` is (channels, samples); windows start at sample indices ``starts`` (relative to
    the segment), each ``window_samples`` long and split into ``window_samples // sub_samples``
    sub-windows. Returns (n_windows, n_bands, channels, n_subwindows) float32 DE maps.
    """
    segment = np.asarray(segment)
    starts = np.asarray(starts, dtype=np.int64)
    if window_samples % sub_samples:
        raise ValueError(
            f"window of {window_samples} samples is not a whole number of {sub_samples}-sample sub-windows"
        )
    n_sub = window_samples // sub_samples
    n_channels = segment.shape[0]
    checked = _check_bands(bands, fs)
    out = np.empty((len(starts), len(checked), n_channels, n_sub), dtype=np.float32)
    if len(starts) == 0:
        return out
    if starts.min() < 0 or starts.max() + window_samples > segment.shape[-1]:
        raise ValueError("a window extends beyond the segment")
    contiguous = np.all(np.diff(starts) == window_samples)
    for b, (_, filtered) in enumerate(band_signals(segment, fs, bands, method)):
        if contiguous:  # the default step == window: a view, no copy
            first = starts[0]
            pieces = filtered[:, first:first + len(starts) * window_samples]
        else:
            index = starts[:, None] + np.arange(window_samples)[None, :]
            pieces = filtered[:, index]
        pieces = pieces.reshape(n_channels, len(starts) * n_sub, sub_samples)
        mean = pieces.mean(axis=-1)
        variance = np.einsum("csk,csk->cs", pieces, pieces) / sub_samples - mean * mean
        de = _de_from_variance(np.maximum(variance, 0.0).astype(np.float64)).reshape(n_channels, len(starts), n_sub)
        out[:, b] = de.transpose(1, 0, 2)
    return out
