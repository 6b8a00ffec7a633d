"""Format-faithful synthetic AMIGOS and DREAMER cohorts.

The files written here follow the public layouts exactly, so the real readers
(:mod:`maan.datasets.amigos`, :mod:`maan.datasets.dreamer`) and third-party code (e.g. TorchEEG's
``AMIGOSDataset`` / ``DREAMERDataset``) read them unchanged:

* AMIGOS (preprocessed release): one ``Data_Preprocessed_PXX.mat`` per participant (MAT v5)
  holding ``VideoIDs`` (1x20 cell of char), ``joined_data`` (1x20 cell, each N x 17 double at
  128 Hz: 14 EEG, ECG Right, ECG Left, GSR), ``labels_ext_annotation`` (1x20 cell, each
  n_segments x 3 double: segment number, valence, arousal per 20-s segment) and
  ``labels_selfassessment`` (1x20 cell, each 1x12 double). Each trial starts with 5 s of
  pre-stimulus baseline (``AMIGOS_BASELINE_SECONDS``), as in the release. Some participants
  have no long-video trials (cells 17-20 are 0x0 double in ``joined_data``,
  ``labels_selfassessment`` and ``labels_ext_annotation``) and some trials hold NaN stretches.
* DREAMER: one ``DREAMER.mat`` with the 1x1 struct ``DREAMER`` (fields ``Data`` (1xN cell of
  1x1 structs with ``Age``, ``Gender``, ``EEG``, ``ECG``, ``ScoreValence``, ``ScoreArousal``,
  ``ScoreDominance``), ``EEG_SamplingRate``, ``ECG_SamplingRate``, ``EEG_Electrodes``,
  ``noOfSubjects``, ``noOfVideoSequences``, ``Disclaimer``, ``Provider``, ``Version``,
  ``Acknowledgement``). ``EEG``/``ECG`` are 1x1 structs with ``baseline`` and ``stimuli``
  (18x1 cells of samples x channels double; EEG 14 ch at 128 Hz, ECG 2 ch at 256 Hz).
  Scores are integers 1-5 stored as 18x1 double.

Units (a documented choice; the releases do not state them reliably): EEG in microvolts
(tens of uV; DREAMER EEG additionally carries the raw Emotiv DC offset of ~4200 uV, a slow
drift and eye blinks, AMIGOS EEG is 4-45 Hz band-passed and common-average referenced like
the preprocessed release), ECG in millivolts (R wave ~1 mV), GSR in microsiemens.

Physiology (per trial, driven by the trial's ratings through a noisy latent state with
per-subject baselines and gains, so subject-held-out evaluation is clearly harder than
subject-mixed):

* arousal -> heart rate up, heart-rate variability (LF and respiratory HF modulation) down,
  EEG beta/gamma amplitude up, alpha amplitude down, more skin-conductance responses;
* valence -> frontal alpha asymmetry (right-frontal F4/AF4/F8 alpha up and left-frontal
  F3/AF3/F7 alpha down with higher valence).

ECG: a PQRST template (sum of Gaussians, QT scaled with RR, beat-to-beat amplitude
variation, respiratory modulation) placed at beat times of an integral-pulse-frequency-
modulation heart-rate model (LF + respiratory HF + VLF modulation), occasional premature
ventricular beats, baseline wander and noise. EEG: FFT-shaped 1/f background mixed across
neighbouring electrodes plus alpha and beta/gamma band-limited oscillations whose amplitude
envelopes follow the latent state. Everything is vectorised; a full-scale AMIGOS participant
(about 1.6 h of 17-channel signal) takes about a second.

Every file carries the tag ``maan-synthetic`` in its MAT header text and one more variable,
``maan_synthetic`` (a JSON text: the generator's parameters and the per-trial ground truth of the
file's subjects; :func:`read_truth`), so results on these cohorts can always be labelled
synthetic (:func:`is_synthetic`). The output folder holds only the files the real dataset has:
third-party readers that parse every file name in it read it unchanged.
Output is deterministic for a seed (byte-identical files), and subject ``k``'s signals do not
depend on how many subjects the cohort has.
"""
from __future__ import annotations

import json
import math
import os
import re
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.fft as sfft
import scipy.io
from scipy.signal import lfilter

from maan import config
from maan.errors import InvalidInputError, MaanError

# --- constants of the public layouts that config.py does not hold ----------------------------
AMIGOS_SHORT_VIDEO_IDS = (
    "4", "5", "9", "10", "13", "18", "19", "20", "23", "30", "31", "34", "36", "58", "80", "138",
)
AMIGOS_LONG_VIDEO_IDS = ("N1", "P1", "B1", "U1")
AMIGOS_BASELINE_SECONDS = 5.0  # every joined_data trial starts with 5 s of pre-stimulus baseline
AMIGOS_EXT_SEGMENT_SECONDS = 20.0  # external annotations: one row per 20-s segment
AMIGOS_N_SUBJECTS = 40
AMIGOS_FILE_TEMPLATE = "Data_Preprocessed_P{:02d}.mat"
DREAMER_N_SUBJECTS = 23
DREAMER_BASELINE_SECONDS = 61.0
DREAMER_FILE_NAME = "DREAMER.mat"
# Mean self-ratings of the 18 DREAMER film clips (DREAMER paper, Table of stimuli).
DREAMER_VIDEO_VALENCE = (3.17, 3.04, 4.57, 2.04, 3.22, 2.70, 4.52, 1.35, 1.39,
                         2.17, 3.96, 3.96, 4.39, 2.35, 2.48, 3.65, 1.52, 2.65)
DREAMER_VIDEO_AROUSAL = (2.26, 3.00, 3.83, 4.26, 3.70, 3.83, 3.17, 3.96, 3.00,
                         3.30, 1.96, 2.61, 3.70, 2.22, 3.09, 3.35, 3.00, 3.91)

SYNTHETIC_TAG = "maan-synthetic"
# MAT variable of every synthetic file: JSON text of the generator's parameters and the ground
# truth of the file's subjects (peers' readers load their variables by name and never see it)
TRUTH_VARIABLE = "maan_synthetic"
GENERATOR_VERSION = 1

DEFAULT_AMIGOS_SHORT_SECONDS = (50.0, 150.0)
DEFAULT_AMIGOS_LONG_SECONDS = (840.0, 1440.0)
#: the shorter trials of ``maan demo``'s cohort (and of benchmarks/small_data.py's demo cases)
DEMO_AMIGOS_SECONDS = {"short_seconds": (30.0, 60.0), "long_seconds": (120.0, 180.0)}
DEFAULT_DREAMER_STIMULUS_SECONDS = (65.0, 393.0)

_CTRL_FS = 8.0  # sampling rate (Hz) of the slow control signals (state, HR, envelopes)
_EEG = config.AMIGOS_EEG_CHANNELS
_LEFT_FRONTAL = ("F3", "AF3", "F7")
_RIGHT_FRONTAL = ("F4", "AF4", "F8")
_MAT_HEADER_BYTES = 116
# Subjects use the rating scale differently (bias); their physiology follows the rating relative
# to their own anchor, which is a main reason subject-held-out evaluation is harder.
_ANCHOR = 0.8


# ============================================================================================
# Small signal helpers
# ============================================================================================
def _ar1(rng: np.random.Generator, n: int, tau_s: float, sd: float, shape: tuple = ()) -> np.ndarray:
    """Stationary AR(1) (Ornstein-Uhlenbeck) process on the control grid, last axis time."""
    a = math.exp(-1.0 / (_CTRL_FS * tau_s))
    e = rng.standard_normal(shape + (n,))
    e[..., 1:] *= math.sqrt(1.0 - a * a)
    return sd * lfilter([1.0], [1.0, -a], e, axis=-1)


def _narrowband(rng: np.random.Generator, n: int, f0: float, r: float = 0.985) -> np.ndarray:
    """Unit-variance narrow-band noise around ``f0`` Hz on the control grid (resonant AR(2))."""
    w = 2 * math.pi * f0 / _CTRL_FS
    burn = 400
    x = lfilter([1.0], [1.0, -2 * r * math.cos(w), r * r], rng.standard_normal(n + burn))[burn:]
    return x / (x.std() + 1e-12)


def _upsample(ctrl: np.ndarray, n: int, fs: float) -> np.ndarray:
    """Linear interpolation of a control-rate signal (..., n_ctrl) to ``n`` samples at ``fs``."""
    pos = np.arange(n) * (_CTRL_FS / fs)
    i0 = pos.astype(np.int64)
    frac = pos - i0
    return ctrl[..., i0] * (1.0 - frac) + ctrl[..., i0 + 1] * frac


def _n_ctrl(n: int, fs: float) -> int:
    return int(math.ceil(n / fs * _CTRL_FS)) + 3


def _shaped_noise(rng: np.random.Generator, k: int, n: int, fs: float,
                  shape_fn, f_lo: float, f_hi: float) -> np.ndarray:
    """``k`` independent unit-RMS real signals of length ``n`` whose amplitude spectrum is
    ``shape_fn(f)`` on [f_lo, f_hi] and zero elsewhere (built directly in the FFT domain)."""
    n_out = n
    n = sfft.next_fast_len(n, real=True)  # arbitrary trial lengths can make the FFT slow
    nb = n // 2 + 1
    df = fs / n
    i0 = max(1, int(math.ceil(f_lo / df)))
    i1 = min(nb - 1, int(math.floor(f_hi / df)) + 1)
    if i1 <= i0:
        return np.zeros((k, n_out))
    amp = shape_fn(np.arange(i0, i1) * df)
    z = rng.standard_normal((k, i1 - i0, 2)).view(np.complex128)[..., 0]
    spec = np.zeros((k, nb), dtype=np.complex128)
    spec[:, i0:i1] = z * amp
    x = sfft.irfft(spec, n, axis=-1, workers=-1)[:, :n_out]
    x *= n / (2.0 * math.sqrt(float(np.sum(amp * amp))))
    return x


def _taper(f: np.ndarray, lo: float, hi: float, width: float = 1.0) -> np.ndarray:
    """Raised-cosine band-pass mask (pass band [lo, hi], transition ``width`` Hz)."""
    m = np.ones_like(f)
    rise = (f >= lo - width) & (f < lo)
    m[rise] = 0.5 - 0.5 * np.cos(np.pi * (f[rise] - lo + width) / width)
    fall = (f > hi) & (f <= hi + width)
    m[fall] = 0.5 + 0.5 * np.cos(np.pi * (f[fall] - hi) / width)
    m[(f < lo - width) | (f > hi + width)] = 0.0
    return m


# ============================================================================================
# Subject physiology
# ============================================================================================
@dataclass
class _Physio:
    hr0: float  # resting heart rate (bpm)
    hr_gain: float  # bpm per unit of the arousal state
    hrv_lf: float  # LF (~0.1 Hz) heart-rate modulation depth (fraction)
    hrv_hf: float  # respiratory (HF) modulation depth (fraction)
    hrv_gain: float  # log-decrease of both modulations per unit arousal
    resp_hz: float
    r_amp: float  # R-wave amplitude (mV)
    lead_gain: np.ndarray  # (2, 5): P Q R S T amplitude of each ECG lead
    pvc_rate: float  # premature ventricular beats per beat
    ecg_noise: float  # mV
    chi: float  # EEG aperiodic exponent
    bg_uv: np.ndarray  # (14,) RMS of the 1/f background (uV)
    alpha_uv: np.ndarray  # (14,) RMS of alpha at neutral state
    alpha_hz: float
    fast_uv: np.ndarray  # (14,) RMS of beta/gamma at neutral state
    theta_rel: float
    alpha_ar: float  # log-amplitude decrease of alpha per unit arousal
    fast_ar: float  # log-amplitude increase of beta/gamma per unit arousal
    asym: float  # frontal alpha asymmetry (log-amplitude per unit valence, right minus left)
    env_sd: float  # band-envelope fluctuation (log-amplitude SD)
    mixing: np.ndarray  # (14, 14) volume-conduction mixing of the background
    gsr0: float  # tonic skin conductance (uS)
    scr_rate: float  # skin-conductance responses per second at neutral state
    bias_arousal: float  # the subject's rating bias
    bias_valence: float
    # frontal-asymmetry side of each EEG channel (+0.5 right frontal, -0.5 left, 0 elsewhere);
    # None: the 14-channel AMIGOS/DREAMER montage's
    asym_side: np.ndarray | None = None

    def summary(self) -> dict:
        return {
            "resting_hr_bpm": round(self.hr0, 3), "hr_gain_bpm": round(self.hr_gain, 3),
            "hrv_gain": round(self.hrv_gain, 3), "alpha_hz": round(self.alpha_hz, 3),
            "alpha_arousal_gain": round(self.alpha_ar, 3), "fast_arousal_gain": round(self.fast_ar, 3),
            "frontal_asymmetry_gain": round(self.asym, 3), "pvc_rate": round(self.pvc_rate, 5),
        }


def _mixing_matrix(channels=_EEG) -> np.ndarray:
    pos = np.array([config.TOPO_POSITIONS[c] for c in channels], dtype=float)
    d2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    m = np.exp(-d2 / (2 * 1.6 ** 2))
    return m / np.linalg.norm(m, axis=1, keepdims=True)


# relative alpha amplitude (occipito-parietal maximum) and eye-blink weight (frontal) per electrode
_ALPHA_WEIGHT = {"O1": 1.0, "O2": 1.0, "P7": 0.85, "P8": 0.85, "T7": 0.5, "T8": 0.5, "FC5": 0.45, "FC6": 0.45,
                 "Oz": 1.0, "PO3": 0.95, "PO4": 0.95, "P3": 0.85, "P4": 0.85, "Pz": 0.8}
_BLINK_WEIGHT = {"AF3": 1.0, "AF4": 1.0, "F7": 0.6, "F8": 0.6, "F3": 0.5, "F4": 0.5, "FC5": 0.2, "FC6": 0.2,
                 "Fp1": 1.6, "Fp2": 1.6, "Fz": 0.5, "FC1": 0.25, "FC2": 0.25}


def _topography(channels):
    """Alpha, beta/gamma, frontal-asymmetry and blink weights of an EEG montage (channel names)."""
    alpha = np.array([_ALPHA_WEIGHT.get(c, 0.4) for c in channels])
    fast = np.array([1.3 if c in ("T7", "T8", "F7", "F8") else 1.0 for c in channels])
    asym = np.array([0.5 if c in _RIGHT_FRONTAL else -0.5 if c in _LEFT_FRONTAL else 0.0 for c in channels])
    blink = np.array([_BLINK_WEIGHT.get(c, 0.05) for c in channels])
    return alpha, fast, asym, blink


_MIXING = _mixing_matrix()
_ALPHA_TOPO, _FAST_TOPO, _ASYM_SIDE, _BLINK_W = _topography(_EEG)
_AMIGOS_LEADS = np.array([[0.12, -0.10, 1.00, -0.25, 0.30],   # "ECG Right" / ECG1 (lead-II-like)
                          [0.08, -0.05, 0.65, -0.35, 0.20]])  # "ECG Left" / ECG2 (lead-III-like)


def _draw_physio(rng: np.random.Generator, channels=_EEG, leads: np.ndarray = _AMIGOS_LEADS) -> _Physio:
    """One subject's physiology for an EEG montage (channel names) and ECG leads (rows of P Q R
    S T amplitudes); the defaults are AMIGOS/DREAMER's 14 channels and two leads."""
    k = len(channels)
    if tuple(channels) == _EEG:
        alpha_topo, fast_topo, asym_side, mixing = _ALPHA_TOPO, _FAST_TOPO, None, _MIXING
    else:
        alpha_topo, fast_topo, asym_side, _ = _topography(channels)
        mixing = _mixing_matrix(channels)
    base_leads = leads
    return _Physio(
        hr0=float(np.clip(rng.normal(72.0, 9.0), 52.0, 100.0)),
        hr_gain=float(np.clip(rng.normal(4.0, 2.0), 0.5, 9.0)),
        hrv_lf=float(rng.uniform(0.025, 0.05)),
        hrv_hf=float(rng.uniform(0.02, 0.05)),
        hrv_gain=float(np.clip(rng.normal(0.3, 0.1), 0.05, 0.6)),
        resp_hz=float(rng.uniform(0.2, 0.33)),
        r_amp=float(rng.uniform(0.8, 1.8)),
        lead_gain=base_leads * rng.lognormal(0.0, 0.15, base_leads.shape),
        pvc_rate=0.0 if rng.random() < 0.5 else float(rng.uniform(0.0005, 0.004)),
        ecg_noise=float(rng.uniform(0.008, 0.025)),
        chi=float(rng.uniform(1.4, 2.2)),
        bg_uv=rng.lognormal(math.log(9.0), 0.3) * rng.lognormal(0.0, 0.3, k),
        alpha_uv=rng.lognormal(math.log(10.0), 0.4) * alpha_topo * rng.lognormal(0.0, 0.3, k),
        alpha_hz=float(np.clip(rng.normal(10.0, 0.8), 8.5, 12.0)),
        fast_uv=rng.lognormal(math.log(2.5), 0.35) * fast_topo * rng.lognormal(0.0, 0.3, k),
        theta_rel=float(rng.uniform(0.5, 2.0)),
        alpha_ar=float(np.clip(rng.normal(0.25, 0.12), 0.0, 0.6)),
        fast_ar=float(np.clip(rng.normal(0.2, 0.1), 0.0, 0.5)),
        asym=float(np.clip(rng.normal(0.4, 0.12), 0.1, 0.7)),
        env_sd=float(rng.uniform(0.25, 0.4)),
        mixing=mixing,
        gsr0=float(rng.uniform(2.0, 12.0)),
        scr_rate=float(rng.uniform(1.0, 4.0) / 60.0),
        bias_arousal=float(rng.normal(0.0, 0.9)),
        bias_valence=float(rng.normal(0.0, 0.9)),
        asym_side=asym_side,
    )


def _state(rng: np.random.Generator, n_ctrl: int, z: float, onset_s: float = 0.0,
           offset_s: float | None = None) -> np.ndarray:
    """Latent affective state of one trial on the control grid: the trial's level (switched on
    at ``onset_s`` and, if given, off at ``offset_s``) plus a slow fluctuation."""
    t = np.arange(n_ctrl) / _CTRL_FS
    ramp = 1.0 if onset_s <= 0 else 1.0 / (1.0 + np.exp(-(t - onset_s) / 1.0))
    if offset_s is not None:
        ramp = ramp / (1.0 + np.exp((t - offset_s) / 1.0))
    return ramp * z + _ar1(rng, n_ctrl, tau_s=20.0, sd=0.2)


# ============================================================================================
# Signals
# ============================================================================================
# Gaussian PQRST waves: centre (s, relative to R), width (s); T centre/width scale with sqrt(RR).
_WAVE_MU = np.array([-0.17, -0.028, 0.0, 0.028, 0.27])
_WAVE_SD = np.array([0.022, 0.009, 0.011, 0.010, 0.045])
_PVC_MU = np.array([0.0, 0.0, 0.0, 0.06, 0.33])
_PVC_SD = np.array([0.02, 0.02, 0.028, 0.025, 0.06])
_PVC_AMP = np.array([0.0, 0.0, 1.3, 2.0, -1.3])  # multipliers of the lead's normal P Q R S T
_RESP_WANDER = (1.0, 0.7, 1.2)  # respiratory baseline wander of each lead (relative)


def _ecg(rng: np.random.Generator, p: _Physio, a_ctrl: np.ndarray, n: int, fs: float,
         line_hz: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ECG (one row per lead of ``p.lead_gain``: two for AMIGOS/DREAMER) in mV and the R-peak
    times (s) of one trial."""
    n_ctrl = a_ctrl.shape[-1]
    t_ctrl = np.arange(n_ctrl) / _CTRL_FS
    hr = np.clip(p.hr0 + p.hr_gain * a_ctrl, 40.0, 170.0)
    hrv = np.exp(-p.hrv_gain * a_ctrl)
    resp_phase = (2 * np.pi * np.cumsum(p.resp_hz * (1.0 + 0.06 * a_ctrl)) / _CTRL_FS
                  + rng.uniform(0, 2 * np.pi))
    mod = hrv * (p.hrv_hf * np.sin(resp_phase) + p.hrv_lf * _narrowband(rng, n_ctrl, 0.1))
    mod += _ar1(rng, n_ctrl, tau_s=40.0, sd=0.012)
    rate = hr / 60.0 * (1.0 + mod)
    phase = np.cumsum(rate) / _CTRL_FS + rng.uniform(0.0, 1.0)
    k = np.arange(math.ceil(phase[0]), math.floor(phase[-1]) + 1)
    tb = np.interp(k, phase, t_ctrl) + rng.normal(0.0, 0.003, k.size)
    tb.sort()
    nb = tb.size
    rr = np.diff(tb, prepend=tb[0] - 60.0 / p.hr0) if nb else tb
    # premature ventricular beats: early, wide QRS, no P, inverted T, compensatory pause
    pvc = rng.random(nb) < p.pvc_rate
    if nb:
        pvc[0] = pvc[-1] = False
    if pvc.any():
        idx = np.flatnonzero(pvc)
        shift = rng.uniform(0.25, 0.35, idx.size) * rr[idx]
        tb[idx] -= shift
        rr[idx] -= shift
    # per-beat wave parameters (nb, 5)
    sq = np.sqrt(np.clip(rr, 0.3, 2.0) / 0.85)
    mu = np.broadcast_to(_WAVE_MU, (nb, 5)).copy()
    sd = np.broadcast_to(_WAVE_SD, (nb, 5)).copy()
    mu[:, 4] *= sq
    sd[:, 4] *= sq
    amp = 1.0 + rng.normal(0.0, 0.04, (nb, 5))
    amp[:, 2] += 0.07 * np.sin(np.interp(tb, t_ctrl, resp_phase))  # respiratory R modulation
    if pvc.any():
        mu[pvc] = _PVC_MU
        sd[pvc] = _PVC_SD
        amp[pvc] = _PVC_AMP
    w0, w1 = int(round(0.3 * fs)), int(round(0.65 * fs))
    centre = np.rint(tb * fs).astype(np.int64)
    idx = centre[:, None] + np.arange(-w0, w1)[None, :]  # (nb, W)
    rel = idx / fs - tb[:, None]
    g = np.exp(-0.5 * ((rel[:, :, None] - mu[:, None, :]) / sd[:, None, :]) ** 2)  # (nb, W, 5)
    g *= amp[:, None, :]
    vals = np.einsum("bwj,lj->lbw", g, p.lead_gain) * p.r_amp  # (2, nb, W)
    valid = (idx >= 0) & (idx < n)
    flat = idx[valid]
    n_leads = p.lead_gain.shape[0]
    ecg = np.empty((n_leads, n))
    for lead in range(n_leads):
        ecg[lead] = np.bincount(flat, weights=vals[lead][valid], minlength=n)[:n]
    # baseline wander (respiration + slow drift), noise, optional mains interference
    wander = (0.03 * np.sin(resp_phase)[None, :] * np.array(_RESP_WANDER[:n_leads])[:, None]
              + _ar1(rng, n_ctrl, tau_s=4.0, sd=0.06, shape=(n_leads,)))
    ecg += _upsample(wander, n, fs)
    ecg += rng.normal(0.0, p.ecg_noise, (n_leads, n))
    if line_hz is not None and line_hz < fs / 2:
        t = np.arange(n) / fs
        ecg += 0.01 * np.sin(2 * np.pi * line_hz * t + rng.uniform(0, 2 * np.pi, (n_leads, 1)))
    inside = tb[(tb >= 0) & (tb < n / fs)]
    return ecg, inside


def _eeg(rng: np.random.Generator, p: _Physio, a_ctrl: np.ndarray, v_ctrl: np.ndarray,
         n: int, fs: float, band: tuple[float, float]) -> np.ndarray:
    """EEG (channels, n) in uV of one trial, in the montage order ``p`` was drawn for (the 14
    channels of config.AMIGOS_EEG_CHANNELS by default)."""
    lo, hi = band
    chi, theta = p.chi, p.theta_rel
    k = p.bg_uv.size
    asym_side = _ASYM_SIDE if p.asym_side is None else p.asym_side

    def bg_shape(f):
        return ((f + 1.0) ** (-chi / 2.0) * (1.0 + theta * np.exp(-0.5 * ((f - 6.0) / 1.5) ** 2))
                * _taper(f, lo, hi))

    src = _shaped_noise(rng, k, n, fs, bg_shape, lo - 1.0, hi + 1.0)
    # (BLAS threading costs more than it saves on short trials)
    bg = np.einsum("ij,jk->ik", p.mixing, src) if n < 65536 else p.mixing @ src
    bg *= p.bg_uv[:, None]
    fa = p.alpha_hz
    src = _shaped_noise(rng, k + 1, n, fs, lambda f: np.exp(-0.5 * ((f - fa) / 1.0) ** 2), fa - 4.0, fa + 4.0)
    alpha = 0.6 * src[:1] + 0.8 * src[1:]
    fast = _shaped_noise(rng, k, n, fs,
                         lambda f: (1.0 + 1.5 * np.exp(-0.5 * ((f - 20.0) / 4.0) ** 2)) / f
                         * _taper(f, 14.0, min(45.0, hi), 2.0),
                         12.0, min(47.0, hi + 1.0))
    n_ctrl = a_ctrl.shape[-1]
    sd = p.env_sd
    env_a = (np.log(p.alpha_uv)[:, None] - p.alpha_ar * a_ctrl[None, :]
             + p.asym * asym_side[:, None] * v_ctrl[None, :]
             + _ar1(rng, n_ctrl, 3.0, sd) + _ar1(rng, n_ctrl, 2.0, 0.6 * sd, (k,)))
    env_f = (np.log(p.fast_uv)[:, None] + p.fast_ar * a_ctrl[None, :]
             + _ar1(rng, n_ctrl, 3.0, sd) + _ar1(rng, n_ctrl, 2.0, 0.6 * sd, (k,)))
    # normalise the log-normal envelopes so that their mean amplitude is the nominal RMS
    corr = -0.5 * (sd * sd * 1.36)
    env = _upsample(np.exp(np.concatenate([env_a, env_f]) + corr), n, fs)
    alpha *= env[:k]
    fast *= env[k:]
    bg += alpha
    bg += fast
    return bg


def _gsr(rng: np.random.Generator, p: _Physio, a_ctrl: np.ndarray, n: int, fs: float) -> np.ndarray:
    """Skin conductance (uS): drifting tonic level plus phasic responses (rate up with arousal)."""
    n_ctrl = a_ctrl.shape[-1]
    dur = n / fs
    tonic = p.gsr0 * np.exp(0.08 * a_ctrl + _ar1(rng, n_ctrl, 60.0, 0.1))
    rate = p.scr_rate * np.exp(0.6 * a_ctrl)
    rmax = float(rate.max())
    cand = np.sort(rng.uniform(0.0, dur, rng.poisson(rmax * dur)))
    keep = rng.random(cand.size) < np.interp(cand, np.arange(n_ctrl) / _CTRL_FS, rate) / rmax
    ev = cand[keep]
    out = _upsample(tonic, n, fs)
    if ev.size:
        w = int(12 * fs)
        tt = np.arange(w) / fs
        shape = (1.0 - np.exp(-tt / 0.75)) * np.exp(-tt / 2.0)
        shape /= shape.max()
        start = np.rint(ev * fs).astype(np.int64)
        idx = start[:, None] + np.arange(w)[None, :]
        vals = rng.lognormal(np.log(0.15), 0.5, ev.size)[:, None] * shape[None, :]
        valid = idx < n
        out += np.bincount(idx[valid], weights=vals[valid], minlength=n)[:n]
    out += rng.normal(0.0, 0.005, n)
    return out


def _blinks(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """Eye-blink waveform (n,) in uV (to be weighted onto frontal channels)."""
    dur = n / fs
    t = np.sort(rng.uniform(0.0, dur, rng.poisson(dur * 15.0 / 60.0)))
    out = np.zeros(n)
    if t.size:
        w = int(0.4 * fs)
        centre = np.rint(t * fs).astype(np.int64)
        idx = centre[:, None] + np.arange(-w, w)[None, :]
        rel = idx / fs - t[:, None]
        vals = rng.uniform(60.0, 140.0, (t.size, 1)) * np.exp(-0.5 * (rel / 0.07) ** 2)
        valid = (idx >= 0) & (idx < n)
        out += np.bincount(idx[valid], weights=vals[valid], minlength=n)[:n]
    return out


# ============================================================================================
# Writing MAT files
# ============================================================================================
def _cell(items, shape) -> np.ndarray:
    c = np.empty(shape, dtype=object)
    for i, item in enumerate(items):
        c.flat[i] = item
    return c


def _empty() -> np.ndarray:
    return np.zeros((0, 0), dtype=np.float64)


def _write_mat(path: Path, mdict: dict, header: str, compress: bool) -> None:
    """savemat with a deterministic header text carrying the synthetic tag."""
    text = f"MATLAB 5.0 MAT-file, Platform: {header}"
    raw = text.encode("ascii")[:_MAT_HEADER_BYTES].ljust(_MAT_HEADER_BYTES, b" ")
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as fh:
            scipy.io.savemat(fh, mdict, format="5", do_compression=compress, oned_as="row")
            fh.seek(0)
            fh.write(raw)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _prepare_out_dir(out_dir: Path, own_pattern: re.Pattern) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(out_dir, "output path exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = [f for f in out_dir.iterdir() if own_pattern.fullmatch(f.name)]
    foreign = [f for f in stale if not f.name.endswith(".part") and not is_synthetic(f)]
    if foreign:
        raise InvalidInputError(out_dir, f"folder already holds {foreign[0].name} not written by "
                                         "maan synth; choose an empty folder")
    for f in stale:  # a previous synthetic cohort: replace it entirely
        f.unlink()


def _truth_text(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _subject_rng(seed: int, fmt: int, k: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(fmt, k, stream)))


def _check_range(name: str, rng_s) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in rng_s)
    except (TypeError, ValueError):
        raise MaanError(f"{name} must be a (min, max) pair of seconds, got {rng_s!r}") from None
    from maan.config import MAX_SPAN_SECONDS

    if not (0 < lo <= hi <= MAX_SPAN_SECONDS):
        raise MaanError(f"{name} must satisfy 0 < min <= max <= {MAX_SPAN_SECONDS:g} s, got {rng_s!r}")
    return lo, hi


def _check_seed(seed) -> int:
    from maan.config import check_number

    return int(check_number("seed", seed, 0, 2**32 - 1, integer=True))


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _pick(rng: np.random.Generator, n: int, fraction: float) -> set[int]:
    if fraction <= 0 or n < 1:
        return set()
    k = min(n, max(1, int(round(fraction * n))))
    return {int(i) for i in rng.choice(n, size=k, replace=False)}


# ============================================================================================
# AMIGOS
# ============================================================================================
_AMIGOS_QUADRANTS = ((1, 1), (1, -1), (-1, 1), (-1, -1))  # (arousal, valence) sign: HAHV HALV LAHV LALV


def _amigos_ratings(rng: np.random.Generator, a: float, v: float) -> np.ndarray:
    r = rng.random(8)
    dominance = float(np.clip(5 + 0.4 * (v - 5) + rng.normal(0, 1.3), 1, 9))
    liking = float(np.clip(5 + 0.7 * (v - 5) + rng.normal(0, 1.2), 1, 9))
    familiarity = float(np.clip(rng.normal(3.5, 2.0), 1, 9))
    happiness = v > 6 and a > 4.5 and r[0] > 0.1
    sadness = v < 4 and a < 5.5 and r[1] > 0.1
    fear = v < 4.5 and a > 6 and r[2] > 0.3
    anger = v < 4 and a > 5.5 and r[3] < 0.5
    disgust = v < 4 and r[4] < 0.4
    surprise = a > 6.5 and r[5] < 0.4
    neutral = (abs(v - 5) < 1.2 and abs(a - 5) < 1.2) or not (happiness or sadness or fear or anger
                                                              or disgust or surprise)
    vals = [a, v, dominance, liking, familiarity, neutral, disgust, happiness, surprise, anger,
            fear, sadness]
    return np.array([vals], dtype=np.float64)


def _amigos_subject(seed: int, k: int, videos: list[dict], missing_long: bool,
                    nan_plan: bool, reversed_eeg: bool = False) -> tuple[dict, dict]:
    """Variables of ``Data_Preprocessed_P{k+1:02d}.mat`` and the subject's ground truth."""
    rng = _subject_rng(seed, 0, k)
    p = _draw_physio(rng)
    if reversed_eeg:  # the same subject, with alpha up and beta/gamma down as arousal rises
        p = replace(p, alpha_ar=-p.alpha_ar, fast_ar=-p.fast_ar)
    fs = config.AMIGOS_FS
    joined, selfass, ext, truth_trials = [], [], [], []
    for t, video in enumerate(videos):
        trial_rng = _subject_rng(seed, 0, k, 10 + t)
        if missing_long and t >= config.AMIGOS_N_SHORT_TRIALS:
            joined.append(_empty())
            selfass.append(_empty())
            ext.append(_empty())
            truth_trials.append({"trial": t + 1, "video": video["id"], "empty": True})
            continue
        ra = float(np.clip(video["arousal"] + p.bias_arousal + trial_rng.normal(0, 1.0), 1, 9))
        rv = float(np.clip(video["valence"] + p.bias_valence + trial_rng.normal(0, 1.0), 1, 9))
        # physiology follows the rating relative to the subject's own anchor of the scale
        za = (ra - 5.0 - _ANCHOR * p.bias_arousal) / 2.0 + trial_rng.normal(0, 0.3)
        zv = (rv - 5.0 - _ANCHOR * p.bias_valence) / 2.0 + trial_rng.normal(0, 0.3)
        n = video["samples"]
        n_ctrl = _n_ctrl(n, fs)
        a_ctrl = _state(trial_rng, n_ctrl, za, AMIGOS_BASELINE_SECONDS)
        v_ctrl = _state(trial_rng, n_ctrl, zv, AMIGOS_BASELINE_SECONDS)
        data = np.empty((17, n))  # (channels, samples); written as its F-ordered transpose
        eeg = _eeg(trial_rng, p, a_ctrl, v_ctrl, n, fs, (4.0, 45.0))
        eeg -= eeg.mean(axis=0, keepdims=True)  # common average reference, as in the release
        data[:14] = eeg
        ecg, beats = _ecg(trial_rng, p, a_ctrl, n, fs)
        data[14:16] = ecg
        data[16] = _gsr(trial_rng, p, a_ctrl, n, fs)
        stim = beats[beats >= AMIGOS_BASELINE_SECONDS]
        mean_hr = 60.0 / float(np.mean(np.diff(stim))) if stim.size > 2 else float("nan")
        # external annotations: one row per 20-s segment of the stimulus, values in [-1, 1]
        n_seg = max(1, math.ceil((n / fs - AMIGOS_BASELINE_SECONDS) / AMIGOS_EXT_SEGMENT_SECONDS))
        seg = np.minimum(((np.arange(n_ctrl) / _CTRL_FS - AMIGOS_BASELINE_SECONDS)
                          // AMIGOS_EXT_SEGMENT_SECONDS).astype(int), n_seg - 1)
        inside = seg >= 0
        cnt = np.maximum(np.bincount(seg[inside], minlength=n_seg), 1)
        seg_a = np.bincount(seg[inside], weights=a_ctrl[inside], minlength=n_seg) / cnt
        seg_v = np.bincount(seg[inside], weights=v_ctrl[inside], minlength=n_seg) / cnt
        ann = np.empty((n_seg, 3))
        ann[:, 0] = np.arange(1, n_seg + 1)
        ann[:, 1] = np.clip(0.45 * seg_v + trial_rng.normal(0, 0.1, n_seg), -1, 1)
        ann[:, 2] = np.clip(0.45 * seg_a + trial_rng.normal(0, 0.1, n_seg), -1, 1)
        joined.append(data)
        selfass.append(_amigos_ratings(trial_rng, ra, rv))
        ext.append(ann)
        truth_trials.append({
            "trial": t + 1, "video": video["id"], "empty": False, "arousal": ra, "valence": rv,
            "arousal_state": za, "valence_state": zv, "mean_hr_bpm": _finite(mean_hr),
            "n_beats": int(beats.size), "nan_stretches": [],
        })
    if nan_plan:  # NaN stretches (sensor drop-outs) in 1-3 trials
        nrng = _subject_rng(seed, 0, k, 1)
        present = [i for i, d in enumerate(joined) if d.size]
        for _ in range(int(nrng.integers(1, 4))):
            t = int(nrng.choice(present))
            n = joined[t].shape[1]
            length = int(min(n // 2, nrng.uniform(2.0, 20.0) * fs))
            first = int(AMIGOS_BASELINE_SECONDS * fs)
            start = int(nrng.integers(first, max(n - length, first + 1)))
            kind = str(nrng.choice(["all", "physio", "eeg"], p=[0.4, 0.4, 0.2]))
            rows = {"all": slice(0, 17), "physio": slice(14, 17), "eeg": slice(0, 14)}[kind]
            joined[t][rows, start:start + length] = np.nan
            truth_trials[t]["nan_stretches"].append(
                {"start_s": start / fs, "seconds": length / fs, "columns": kind})
    mdict = {
        "VideoIDs": _cell([v["id"] for v in videos], (1, config.AMIGOS_N_TRIALS)),
        "joined_data": _cell([d.T if d.size else d for d in joined], (1, config.AMIGOS_N_TRIALS)),
        "labels_ext_annotation": _cell(ext, (1, config.AMIGOS_N_TRIALS)),
        "labels_selfassessment": _cell(selfass, (1, config.AMIGOS_N_TRIALS)),
    }
    truth = {"missing_long_videos": missing_long, "eeg_arousal_reversed": reversed_eeg, "physiology": p.summary(),
             "trials": truth_trials}
    return mdict, truth


def synth_amigos(out_dir: str | os.PathLike, n_subjects: int = AMIGOS_N_SUBJECTS, seed: int = 0,
                 short_seconds: tuple[float, float] = DEFAULT_AMIGOS_SHORT_SECONDS,
                 long_seconds: tuple[float, float] = DEFAULT_AMIGOS_LONG_SECONDS,
                 missing_long_fraction: float = 3 / 40, nan_fraction: float = 0.25,
                 compress: bool = False, reversed_eeg_fraction: float = 0.0) -> list[Path]:
    """Write a synthetic AMIGOS preprocessed cohort; returns the ``Data_Preprocessed_PXX.mat``
    paths (P01..PNN) in order.

    ``short_seconds`` / ``long_seconds``: range of the stimulus durations of the 16 short and
    4 long videos (one duration per video, shared by all participants; each trial holds an
    extra 5-s baseline). ``missing_long_fraction`` of the participants (at least one when the
    cohort has 2 or more) have empty long-video cells; ``nan_fraction`` of them (at least one)
    have NaN stretches. ``compress`` writes zlib-compressed MAT v5 (slower, smaller).

    ``reversed_eeg_fraction`` of the participants (0 by default) have their EEG arousal response
    reversed: alpha rises and beta/gamma falls with arousal, while their heart rate still rises.
    Real subjects differ more than the default cohort's; this is a cohort in which the EEG's
    arousal pattern does not transfer from one subject to another and heart rate does (what
    benchmarks/tiny_cohorts.py ``--reversed-eeg`` measures). Every other signal of a participant
    is the same as with 0.
    """
    n_subjects = int(n_subjects)
    if not 1 <= n_subjects <= 999:
        raise MaanError(f"AMIGOS synthetic cohorts hold 1-999 subjects, got {n_subjects}")
    seed = _check_seed(seed)
    short = _check_range("short_seconds", short_seconds)
    long = _check_range("long_seconds", long_seconds)
    reversed_fraction = float(reversed_eeg_fraction)
    if not 0.0 <= reversed_fraction <= 1.0:  # checked before anything is written
        raise MaanError(f"reversed_eeg_fraction must be between 0 and 1, got {reversed_eeg_fraction!r}")
    out = Path(out_dir)
    _prepare_out_dir(out, re.compile(r"Data_Preprocessed_P\d+\.(mat|zip)(\.part)?", re.I))
    fs = config.AMIGOS_FS
    crng = _subject_rng(seed, 0, 0, 99)  # cohort-level stream
    n_short, n_long = config.AMIGOS_N_SHORT_TRIALS, config.AMIGOS_N_TRIALS - config.AMIGOS_N_SHORT_TRIALS
    quads = [_AMIGOS_QUADRANTS[i % 4] for i in range(n_short)] + list(_AMIGOS_QUADRANTS[:n_long])
    videos = []
    for i, vid in enumerate(AMIGOS_SHORT_VIDEO_IDS + AMIGOS_LONG_VIDEO_IDS):
        lo, hi = short if i < n_short else long
        dur = crng.uniform(lo, hi) + AMIGOS_BASELINE_SECONDS
        sa, sv = quads[i]
        videos.append({"id": vid, "samples": int(round(dur * fs)),
                       "arousal": 5.0 + sa * crng.uniform(1.2, 2.6),
                       "valence": 5.0 + sv * crng.uniform(1.2, 2.6)})
    missing = _pick(crng, n_subjects, missing_long_fraction) if n_subjects >= 2 else set()
    nan_subjects = _pick(crng, n_subjects, nan_fraction)
    # a stream of its own, so that the cohort-level draws above do not move
    reversed_subjects = _pick(_subject_rng(seed, 0, 0, 98), n_subjects, reversed_fraction)
    cohort = {
        "synthetic": True, "tag": SYNTHETIC_TAG, "format": "amigos", "seed": seed,
        "generator": f"maan.datasets.synthetic v{GENERATOR_VERSION}",
        "parameters": {"n_subjects": n_subjects, "short_seconds": list(short),
                       "long_seconds": list(long), "missing_long_fraction": missing_long_fraction,
                       "nan_fraction": nan_fraction, "compress": compress,
                       "reversed_eeg_fraction": reversed_fraction},
        "videos": [{"id": v["id"], "seconds": v["samples"] / fs} for v in videos],
    }
    paths = []
    for k in range(n_subjects):
        name = AMIGOS_FILE_TEMPLATE.format(k + 1)
        mdict, tr = _amigos_subject(seed, k, videos, k in missing, k in nan_subjects, k in reversed_subjects)
        mdict[TRUTH_VARIABLE] = _truth_text({**cohort, "subjects": {f"P{k + 1:02d}": tr}})
        path = out / name
        _write_mat(path, mdict, f"{SYNTHETIC_TAG} amigos seed={seed} subject=P{k + 1:02d}, "
                                f"Created on: maan.datasets.synthetic v{GENERATOR_VERSION}", compress)
        del mdict
        paths.append(path)
    return paths


# ============================================================================================
# DREAMER
# ============================================================================================
def _dreamer_subject(seed: int, k: int, films: list[dict], baseline_s: float) -> tuple[np.ndarray, dict]:
    rng = _subject_rng(seed, 1, k)
    p = _draw_physio(rng)
    fs_e, fs_c = config.DREAMER_EEG_FS, config.DREAMER_ECG_FS
    dc = rng.uniform(4000.0, 4400.0, (14, 1))  # raw Emotiv DC offsets (uV)
    line_hz = 50.0
    eeg_b, eeg_s, ecg_b, ecg_s, sv, sa, sd, truth_trials = [], [], [], [], [], [], [], []

    def record(trng, z_a, z_v, n_e):
        n_c = 2 * n_e
        n_ctrl = _n_ctrl(n_e, fs_e)
        a_ctrl = _state(trng, n_ctrl, z_a)
        v_ctrl = _state(trng, n_ctrl, z_v)
        eeg = _eeg(trng, p, a_ctrl, v_ctrl, n_e, fs_e, (0.5, 45.0))
        eeg += _BLINK_W[:, None] * _blinks(trng, n_e, fs_e)[None, :]
        eeg += dc + _upsample(_ar1(trng, n_ctrl, 30.0, 15.0, (14,)), n_e, fs_e)
        ecg, beats = _ecg(trng, p, a_ctrl, n_c, fs_c, line_hz)
        return eeg, ecg, beats

    for t, film in enumerate(films):
        trng = _subject_rng(seed, 1, k, 10 + t)
        ra = int(np.clip(np.rint(film["arousal"] + p.bias_arousal * 0.5 + trng.normal(0, 0.9)), 1, 5))
        rv = int(np.clip(np.rint(film["valence"] + p.bias_valence * 0.5 + trng.normal(0, 0.9)), 1, 5))
        rd = int(np.clip(np.rint(3 + 0.3 * (rv - 3) + trng.normal(0, 1.0)), 1, 5))
        za = (ra - 3.0 - _ANCHOR * 0.5 * p.bias_arousal) + trng.normal(0, 0.3)
        zv = (rv - 3.0 - _ANCHOR * 0.5 * p.bias_valence) + trng.normal(0, 0.3)
        eb, cb, _ = record(trng, 0.0, 0.0, int(round(baseline_s * fs_e)))
        es, cs, beats = record(trng, za, zv, film["samples"])
        eeg_b.append(eb.T)
        ecg_b.append(cb.T)
        eeg_s.append(es.T)
        ecg_s.append(cs.T)
        sv.append(rv)
        sa.append(ra)
        sd.append(rd)
        mean_hr = 60.0 / float(np.mean(np.diff(beats))) if beats.size > 2 else float("nan")
        truth_trials.append({"trial": t + 1, "arousal": ra, "valence": rv, "dominance": rd,
                             "arousal_state": za, "valence_state": zv, "mean_hr_bpm": _finite(mean_hr),
                             "n_beats": int(beats.size)})
    n_t = len(films)
    mod = np.empty((1, 1), dtype=[("baseline", object), ("stimuli", object)])
    eeg_struct, ecg_struct = mod.copy(), mod.copy()
    eeg_struct[0, 0] = (_cell(eeg_b, (n_t, 1)), _cell(eeg_s, (n_t, 1)))
    ecg_struct[0, 0] = (_cell(ecg_b, (n_t, 1)), _cell(ecg_s, (n_t, 1)))
    subj = np.empty((1, 1), dtype=[(f, object) for f in
                                   ("Age", "Gender", "EEG", "ECG", "ScoreValence", "ScoreArousal",
                                    "ScoreDominance")])
    subj[0, 0] = (str(int(rng.integers(22, 34))), "male" if rng.random() < 0.6 else "female",
                  eeg_struct, ecg_struct,
                  np.array(sv, dtype=np.float64).reshape(n_t, 1),
                  np.array(sa, dtype=np.float64).reshape(n_t, 1),
                  np.array(sd, dtype=np.float64).reshape(n_t, 1))
    return subj, {"physiology": p.summary(), "trials": truth_trials}


def synth_dreamer(out_dir: str | os.PathLike, n_subjects: int = DREAMER_N_SUBJECTS, seed: int = 0,
                  stimulus_seconds: tuple[float, float] = DEFAULT_DREAMER_STIMULUS_SECONDS,
                  baseline_seconds: float = DREAMER_BASELINE_SECONDS,
                  compress: bool = False) -> Path:
    """Write a synthetic ``DREAMER.mat`` (subjects S01..SNN, 18 film clips each); returns its path.

    ``stimulus_seconds``: range of the 18 clip durations (one per clip, shared by all subjects);
    ``baseline_seconds``: length of each pre-clip baseline (61 s in the release). The whole
    cohort is held in memory before writing (about 2 GB at full scale).
    """
    n_subjects = int(n_subjects)
    if not 1 <= n_subjects <= 999:
        raise MaanError(f"DREAMER synthetic cohorts hold 1-999 subjects, got {n_subjects}")
    seed = _check_seed(seed)
    lo, hi = _check_range("stimulus_seconds", stimulus_seconds)
    baseline_seconds = float(baseline_seconds)
    if not 0 < baseline_seconds < 1e5:
        raise MaanError(f"baseline_seconds must be positive, got {baseline_seconds!r}")
    out = Path(out_dir)
    _prepare_out_dir(out, re.compile(r"DREAMER\.mat(\.part)?", re.I))
    fs_e = config.DREAMER_EEG_FS
    crng = _subject_rng(seed, 1, 0, 99)
    films = [{"samples": int(round(crng.uniform(lo, hi) * fs_e)),
              "valence": DREAMER_VIDEO_VALENCE[i], "arousal": DREAMER_VIDEO_AROUSAL[i]}
             for i in range(config.DREAMER_N_TRIALS)]
    subjects, truth = [], {}
    for k in range(n_subjects):
        s, tr = _dreamer_subject(seed, k, films, baseline_seconds)
        subjects.append(s)
        truth[f"S{k + 1:02d}"] = tr
    top = np.empty((1, 1), dtype=[(f, object) for f in
                                  ("Data", "EEG_SamplingRate", "ECG_SamplingRate", "EEG_Electrodes",
                                   "noOfSubjects", "noOfVideoSequences", "Disclaimer", "Provider",
                                   "Version", "Acknowledgement")])
    top[0, 0] = (
        _cell(subjects, (1, n_subjects)),
        np.array([[fs_e]]), np.array([[config.DREAMER_ECG_FS]]),
        _cell(list(config.DREAMER_EEG_CHANNELS), (1, 14)),
        np.array([[float(n_subjects)]]), np.array([[float(config.DREAMER_N_TRIALS)]]),
        "SYNTHETIC data generated by maan (maan.datasets.synthetic); not the DREAMER database.",
        "maan synthetic cohort generator", f"{SYNTHETIC_TAG} v{GENERATOR_VERSION} seed={seed}",
        "Layout follows the public DREAMER release (Katsigiannis & Ramzan, 2018).",
    )
    truth = _truth_text({
        "synthetic": True, "tag": SYNTHETIC_TAG, "format": "dreamer", "seed": seed,
        "generator": f"maan.datasets.synthetic v{GENERATOR_VERSION}",
        "parameters": {"n_subjects": n_subjects, "stimulus_seconds": [lo, hi],
                       "baseline_seconds": baseline_seconds, "compress": compress},
        "films": [{"trial": i + 1, "seconds": f["samples"] / fs_e} for i, f in enumerate(films)],
        "subjects": truth,
    })
    path = out / DREAMER_FILE_NAME
    _write_mat(path, {"DREAMER": top, TRUTH_VARIABLE: truth},
               f"{SYNTHETIC_TAG} dreamer seed={seed}, Created on: maan.datasets.synthetic v{GENERATOR_VERSION}",
               compress)
    del top, subjects
    return path


# ============================================================================================
# Entry points
# ============================================================================================
FORMATS = ("amigos", "dreamer")  # MAHNOB-HCI: maan.datasets.synthetic_mahnob


def synth(format: str, out_dir: str | os.PathLike, n_subjects: int | None = None, seed: int = 0,
          **kw) -> list[Path]:
    """CLI-friendly dispatcher: write a synthetic cohort of ``format`` ("amigos" or "dreamer")
    into ``out_dir``; returns the written data files. ``n_subjects`` defaults to the published
    cohort size (40 / 23); ``kw`` goes to :func:`synth_amigos` / :func:`synth_dreamer`
    (``short_seconds``, ``long_seconds`` / ``stimulus_seconds``, ``baseline_seconds``, ...).
    For DREAMER, ``short_seconds`` is accepted as an alias of ``stimulus_seconds``. MAHNOB-HCI:
    :func:`maan.datasets.synthetic_mahnob.synth`."""
    fmt = str(format).lower()
    kw = {k: v for k, v in kw.items() if v is not None}
    if fmt == "amigos":
        bad = set(kw) - {"short_seconds", "long_seconds", "missing_long_fraction", "nan_fraction", "compress",
                         "reversed_eeg_fraction"}
        if bad:
            raise MaanError(f"options not valid for --format amigos: {', '.join(sorted(bad))}")
        return synth_amigos(out_dir, AMIGOS_N_SUBJECTS if n_subjects is None else n_subjects, seed, **kw)
    if fmt == "dreamer":
        if "short_seconds" in kw and "stimulus_seconds" not in kw:  # the CLI's --short-seconds
            kw["stimulus_seconds"] = kw.pop("short_seconds")
        bad = set(kw) - {"stimulus_seconds", "baseline_seconds", "compress"}
        if bad:
            raise MaanError(f"options not valid for --format dreamer: {', '.join(sorted(bad))}")
        return [synth_dreamer(out_dir, DREAMER_N_SUBJECTS if n_subjects is None else n_subjects, seed, **kw)]
    raise MaanError(f"unknown synthetic format {format!r} (choose from {', '.join(FORMATS)})")


def _header_bytes(path: Path) -> bytes:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.filename.lower().endswith(".mat"):
                    with zf.open(info) as fh:
                        return fh.read(_MAT_HEADER_BYTES)
        return b""
    with open(path, "rb") as fh:
        return fh.read(_MAT_HEADER_BYTES)


def _data_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in (".mat", ".zip") and f.is_file())


#: Bytes of a BDF/EDF header up to the end of its recording-identification field.
_BDF_ID_BYTES = 168


def _first_bdf(folder: Path) -> Path | None:
    """The first BDF of a MAHNOB session folder, of a ``Sessions`` folder, or of the folder that
    holds ``Sessions`` (None when there is none)."""
    for level in (folder, folder / "Sessions"):
        if not level.is_dir():
            continue
        found = sorted(level.glob("*.bdf"))
        if found:
            return found[0]
        for session in sorted(d for d in level.iterdir() if d.is_dir()):
            found = sorted(session.glob("*.bdf"))
            if found:
                return found[0]
    return None


def _bdf_is_synthetic(path: Path) -> bool:
    with open(path, "rb") as fh:
        return SYNTHETIC_TAG.encode() in fh.read(_BDF_ID_BYTES)[88:]


def is_synthetic(path: str | os.PathLike) -> bool:
    """True when ``path`` was written by maan's synthetic generators: a MAT/zip file whose
    header text carries ``maan-synthetic``, a BDF file whose recording identification carries
    it, a MAHNOB session.xml beside such a BDF, or a folder whose (first) MAT file or (MAHNOB: a
    session folder, ``Sessions`` or its parent) BDF file is synthetic."""
    p = Path(path)
    try:
        if p.is_dir():
            files = _data_files(p)
            if files:
                return SYNTHETIC_TAG.encode() in _header_bytes(files[0])
            bdf = _first_bdf(p)
            return bdf is not None and _bdf_is_synthetic(bdf)
        if p.is_file():
            if p.suffix.lower() == ".bdf":
                return _bdf_is_synthetic(p)
            if p.suffix.lower() == ".xml":
                bdf = _first_bdf(p.parent)
                return bdf is not None and _bdf_is_synthetic(bdf)
            return SYNTHETIC_TAG.encode() in _header_bytes(p)
    except (OSError, zipfile.BadZipFile):
        return False
    return False


def read_truth(path: str | os.PathLike) -> dict | None:
    """The generator's parameters and ground truth of a synthetic cohort (a folder or one file),
    or None when ``path`` holds no synthetic MAT file.

    ``subjects`` maps each subject id to its truth (the ratings, latent states, mean heart rate
    and NaN stretches of every trial), merged over the folder's files; the other keys (format,
    seed, parameters, videos or films) are the cohort's. A synthetic file whose truth cannot be
    read is an InvalidInputError naming it.
    """
    from maan.datasets.matfile import load_mat

    p = Path(path)
    files = _data_files(p) if p.is_dir() else [p]
    truth = None
    for f in files:
        if f.suffix.lower() != ".mat" or not is_synthetic(f):
            continue
        mat = load_mat(str(f), f, variable_names=[TRUTH_VARIABLE])
        try:
            part = json.loads(str(np.asarray(mat[TRUTH_VARIABLE]).ravel()[0]))
        except (KeyError, IndexError, ValueError):
            raise InvalidInputError(f, f"synthetic file without a readable {TRUTH_VARIABLE!r} variable") from None
        if truth is None:
            truth = part
        else:
            truth["subjects"].update(part["subjects"])
    return truth


def cohort_written(folder: str | os.PathLike, format: str, n_subjects: int, seed: int, **options) -> bool:
    """True when ``folder`` holds the synthetic cohort these arguments would write (same format,
    size, seed and the given generator options), so a caller may reuse it instead of writing it."""
    try:
        truth = read_truth(folder) if Path(folder).is_dir() else None
    except InvalidInputError:
        return False
    if not truth or truth.get("format") != format or truth.get("seed") != seed:
        return False
    params = truth.get("parameters", {})
    wanted = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    return (params.get("n_subjects") == n_subjects and len(truth.get("subjects", {})) == n_subjects
            and all(params.get(k) == v for k, v in wanted.items()))
