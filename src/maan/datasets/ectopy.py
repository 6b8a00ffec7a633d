"""Ventricular ectopic beats inserted into a real ECG: the test cases a clean record lacks.

A premature ventricular contraction (PVC) comes early (here 20-40 % of the sinus RR interval),
has a wide QRS (120-180 ms), no P wave, often the opposite polarity of the sinus beats or a
larger amplitude, a discordant T wave, and is followed by a compensatory pause: the next
sinus beat arrives on time. :func:`insert_ventricular_beats` turns chosen sinus beats of a real
annotated recording into such beats and returns the signal with the new truth, so that an
R-peak detector can be scored on ectopy with real sinus beats and real noise around it.

The ventricular waveform is either a real one (:func:`ventricular_template`, cut from an
annotated ``V`` beat, stretched to the drawn QRS width) or a parametric model
(:func:`parametric_ventricular_beat`); the benchmark runs both, so that a detector is not
tuned to the model alone.

Examples
--------
>>> import numpy as np
>>> fs = 360.0
>>> rpeaks = np.arange(1, 60) * 288          # a sinus rhythm at 75 bpm
>>> ecg = np.zeros(60 * 288)
>>> ecg[rpeaks] = 1.0
>>> out = insert_ventricular_beats(ecg, fs, rpeaks, "bigeminy", seed=0)
>>> round(float(out.is_ventricular.mean()), 1)
0.5
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import signal as sps

__all__ = ["VENTRICULAR_PATTERNS", "EctopicECG", "insert_ventricular_beats", "ventricular_template",
           "parametric_ventricular_beat"]

#: pattern -> (share of the beats that are ventricular, beats per ectopic run)
VENTRICULAR_PATTERNS = {
    "isolated-5": (0.05, 1),
    "isolated-15": (0.15, 1),
    "isolated-30": (0.30, 1),
    "bigeminy": (0.5, 1),
    "couplets": (0.2, 2),
}
PREMATURITY = (0.2, 0.4)  # share of the sinus RR interval by which the beat comes early
QRS_SECONDS = (0.12, 0.18)
AMPLITUDE = (0.8, 2.5)  # times the local sinus R amplitude
#: the preceding sinus beat's T wave is kept up to here; the next P wave starts here (s)
_KEEP_AFTER, _KEEP_BEFORE = 0.40, 0.20
_FADE_SECONDS = 0.03


class EctopicECG(NamedTuple):
    """Result of :func:`insert_ventricular_beats`."""

    ecg: np.ndarray  # the signal with the ventricular beats
    rpeaks: np.ndarray  # truth: every beat's sample index, sorted
    is_ventricular: np.ndarray  # bool per entry of ``rpeaks``


def ventricular_template(ecg, fs, beat: int, before: float = 0.25, after: float = 0.5) -> np.ndarray:
    """A real ventricular beat (QRS and T) cut around sample ``beat``, baseline removed, ends tapered.

    ``ecg`` a 1-D recording at ``fs`` Hz and ``beat`` the annotated sample of a ``V`` beat;
    returns ``before + after`` seconds of signal with the QRS extremum at ``before``.
    """
    x = np.asarray(ecg, dtype=np.float64)
    fs = float(fs)
    lo, hi = int(beat - round(0.1 * fs)), int(beat + round(0.1 * fs))
    apex = lo + int(np.argmax(np.abs(x[lo:hi] - np.median(x[lo:hi]))))
    seg = x[apex - int(round(before * fs)): apex + int(round(after * fs))].copy()
    edge = max(1, int(round(0.04 * fs)))
    a, b = seg[:edge].mean(), seg[-edge:].mean()
    seg -= np.linspace(a, b, seg.size)
    return seg * sps.windows.tukey(seg.size, 0.2)


def parametric_ventricular_beat(fs, qrs_seconds: float, rng: np.random.Generator,
                                before: float = 0.25, after: float = 0.5) -> np.ndarray:
    """A model ventricular beat: a wide QRS (Gaussian lobes) and a discordant, wide T wave.

    Unit peak deflection, extremum at ``before`` seconds; the lobe shares vary with ``rng``.
    """
    fs = float(fs)
    t = np.arange(-int(round(before * fs)), int(round(after * fs))) / fs
    s = qrs_seconds / 5.0  # +-2.5 sigma span the QRS
    q, s_wave = rng.uniform(0.0, 0.3), rng.uniform(0.1, 0.5)
    qrs = (np.exp(-0.5 * (t / s) ** 2) - q * np.exp(-0.5 * ((t + 1.4 * s) / (0.6 * s)) ** 2)
           - s_wave * np.exp(-0.5 * ((t - 1.6 * s) / (0.8 * s)) ** 2))
    t_wave = -rng.uniform(0.2, 0.45) * np.exp(-0.5 * ((t - qrs_seconds / 2 - rng.uniform(0.18, 0.25)) / 0.06) ** 2)
    beat = qrs + t_wave
    return beat / np.abs(beat).max()


def _stretch(template: np.ndarray, factor: float, apex: int) -> tuple[np.ndarray, int]:
    """Time-stretch ``template`` by ``factor`` about sample ``apex`` (linear interpolation)."""
    n = int(round(template.size * factor))
    src = np.arange(n) / factor
    return np.interp(src, np.arange(template.size), template, left=0.0, right=0.0), int(round(apex * factor))


def _qrs_width(template: np.ndarray, apex: int, fs: float) -> float:
    """Span (s) around the apex where the deflection stays above 5 % of the peak (a Gaussian lobe: +-2.5 sigma)."""
    mag = np.abs(template) >= 0.05 * np.abs(template[apex])
    lo = hi = apex
    while lo > 0 and mag[lo - 1]:
        lo -= 1
    while hi < template.size - 1 and mag[hi + 1]:
        hi += 1
    return (hi - lo + 1) / fs


def _choose_runs(n_beats: int, share: float, run: int, rng: np.random.Generator) -> list[int]:
    """First beat index of each ectopic run: ``run`` beats, sinus beats on both sides."""
    if share >= 0.5 and run == 1:  # bigeminy: every other beat
        start = int(rng.integers(2, 4))
        return list(range(start, n_beats - 2, 2))
    n_runs = int(round(share * n_beats / run))
    free = np.ones(n_beats, bool)
    free[:2] = free[-2:] = False
    chosen = []
    for k in rng.permutation(n_beats):
        if len(chosen) == n_runs:
            break
        if k + run + 1 > n_beats or not free[max(k - 1, 0):k + run + 1].all():
            continue
        chosen.append(int(k))
        free[max(k - 1, 0):k + run + 1] = False  # a sinus beat before and after each run
    return sorted(chosen)


def insert_ventricular_beats(ecg, fs, rpeaks, pattern: str, *, seed: int = 0,
                             template: np.ndarray | None = None, template_fs: float | None = None,
                             template_apex: float = 0.25) -> EctopicECG:
    """Turn sinus beats of an annotated ECG into premature ventricular beats.

    Parameters
    ----------
    ecg : array, shape (n_samples,)
        One real ECG lead (mV).
    fs : float
        Its sampling rate (Hz).
    rpeaks : array of int
        The recording's annotated beats (sorted sample indices).
    pattern : str
        One of :data:`VENTRICULAR_PATTERNS`: isolated beats at 5, 15 or 30 % burden, bigeminy
        (every other beat), or couplets (two in a row).
    seed : int
        Seeds which beats, their prematurity, width, amplitude, polarity and shape.
    template, template_fs, template_apex : optional
        A real ventricular beat (from :func:`ventricular_template`), its rate and the time (s)
        of its extremum; without it :func:`parametric_ventricular_beat` is used.

    Each chosen beat comes 20-40 % of the local RR interval early, with a QRS of 120-180 ms,
    peak deflection 0.8-2.5 times the neighbouring sinus R amplitude, random polarity, no P wave
    (the sinus P-QRS-T it replaces is removed) and a compensatory pause (the next sinus beat is
    unchanged). Deterministic for a given ``seed``.
    """
    if pattern not in VENTRICULAR_PATTERNS:
        raise ValueError(f"pattern must be one of {tuple(VENTRICULAR_PATTERNS)}, got {pattern!r}")
    x = np.asarray(ecg, dtype=np.float64).copy()
    fs = float(fs)
    r = np.asarray(rpeaks, dtype=np.int64)
    rng = np.random.default_rng(seed)
    share, run = VENTRICULAR_PATTERNS[pattern]
    fade = max(2, int(round(_FADE_SECONDS * fs)))
    if template is not None:
        tfs = float(template_fs or fs)
        base = sps.resample_poly(template, int(round(fs)), int(round(tfs))) if tfs != fs else np.asarray(template)
        base_apex = int(round(template_apex * fs))
        base_width = _qrs_width(base, base_apex, fs)
    truth = list(r)
    is_v = [False] * r.size
    new_beats = []
    for k in _choose_runs(r.size, share, run, rng):
        prev, nxt = int(r[k - 1]), int(r[k + run])
        rr = (nxt - prev) / (run + 1)
        lo = prev + int(round(min(_KEEP_AFTER * fs, 0.45 * rr)))
        hi = nxt - int(round(min(_KEEP_BEFORE * fs, 0.3 * rr)))
        if hi - lo < 4 * fade:
            continue
        # the sinus beats of the run are removed: a faded, straight baseline in their place
        ramp = np.linspace(np.median(x[lo - fade:lo + 1]), np.median(x[hi:hi + fade + 1]), hi - lo)
        w = np.zeros(hi - lo)  # weight of the original signal
        w[:fade] = np.linspace(1.0, 0.0, fade)
        w[-fade:] = np.linspace(0.0, 1.0, fade)
        x[lo:hi] = w * x[lo:hi] + (1 - w) * ramp
        local_r = np.median([x[j] - np.median(x[max(j - int(0.3 * fs), 0):j + int(0.3 * fs)])
                             for j in (prev, nxt)])
        pos = float(prev)
        for j in range(run):
            pos += (1.0 - rng.uniform(*PREMATURITY)) * rr
            qrs = rng.uniform(*QRS_SECONDS)
            if template is None:
                beat = parametric_ventricular_beat(fs, qrs, rng)
                apex = int(round(0.25 * fs))
            else:
                beat, apex = _stretch(base, qrs / base_width, base_apex)
                beat = beat / np.abs(beat[apex])
            beat = beat * rng.choice([-1.0, 1.0]) * rng.uniform(*AMPLITUDE) * local_r
            at = int(round(pos))
            s0 = at - apex
            a, b = max(s0, 0), min(s0 + beat.size, x.size)
            x[a:b] += beat[a - s0:b - s0]
            truth[k + j] = at
            is_v[k + j] = True
            new_beats.append(at)
    truth = np.asarray(truth, dtype=np.int64)
    order = np.argsort(truth, kind="stable")
    return EctopicECG(x, truth[order], np.asarray(is_v)[order])
