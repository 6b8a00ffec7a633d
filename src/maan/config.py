"""One definition of every constant shared by the pipeline stages.

Readers, synthetic cohorts, feature extraction, the store and the models all import
from here, so band edges, channel order and window length exist exactly once.
"""
from __future__ import annotations

# --- windows (paper 4.1: synchronized 10-s ECG/EEG segments) -----------------------
WINDOW_SECONDS = 10.0
STEP_SECONDS = 10.0
# DE is computed on sub-windows so that each window is a 2-D (channel x time) map per band.
SUBWINDOW_SECONDS = 1.0
# Bounds of every time span a user sets (window, step, sub-window, stimulus length): a shorter
# span is about one sample at the rates maan reads, a longer one than a day is a wrong unit.
MIN_SPAN_SECONDS = 0.01
MAX_SPAN_SECONDS = 86400.0
# Highest sampling rate (Hz) accepted from an option or a file; above it the value is corrupt.
MAX_FS = 100_000.0

# --- ECG (paper 3.2) ------------------------------------------------------------------
# RR intervals of one window, zero-embedded to this fixed length. 32 intervals in 10 s is
# 192 bpm, above any plausible resting/affective heart rate; more intervals are truncated.
RR_LENGTH = 32
# A window needs at least this many R-peaks (i.e. MIN_BEATS - 1 RR intervals) to be valid.
MIN_BEATS = 4
# Physiological RR range in seconds (30-200 bpm); intervals outside are artefacts.
RR_MIN_SECONDS = 0.3
RR_MAX_SECONDS = 2.0

# --- EEG (paper 3.3) ------------------------------------------------------------------
BANDS: dict[str, tuple[float, float]] = {
    "theta": (4.0, 8.0),
    "alpha": (8.0, 14.0),
    "beta": (14.0, 31.0),
    "gamma": (31.0, 45.0),
}

# Differential entropy (nats) of any real EEG band signal in µV lies far inside this range
# (band standard deviations of about 0.003 µV to 40 mV); a window with a DE outside is corrupt
# data or a wrong unit, and is dropped as "eeg_out_of_range".
DE_RANGE_NATS = (-5.0, 12.0)
# Band-pass estimators for DE (see maan.features.eeg) and EEG map layouts in the store.
DE_METHODS = ("fft", "butter")
DEFAULT_DE_METHOD = "fft"
LAYOUTS = ("channels", "grid")

# --- AMIGOS (preprocessed release) ----------------------------------------------------
AMIGOS_FS = 128.0
AMIGOS_EEG_CHANNELS = (
    "AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4",
)
AMIGOS_ECG_CHANNELS = ("ECG Right", "ECG Left")
AMIGOS_COLUMNS = AMIGOS_EEG_CHANNELS + AMIGOS_ECG_CHANNELS + ("GSR",)
AMIGOS_RATINGS = (
    "arousal", "valence", "dominance", "liking", "familiarity", "neutral",
    "disgust", "happiness", "surprise", "anger", "fear", "sadness",
)
AMIGOS_N_TRIALS = 20
AMIGOS_N_SHORT_TRIALS = 16

# --- DREAMER --------------------------------------------------------------------------
DREAMER_EEG_FS = 128.0
DREAMER_ECG_FS = 256.0
DREAMER_EEG_CHANNELS = AMIGOS_EEG_CHANNELS  # both use the Emotiv EPOC 14-channel montage
DREAMER_ECG_CHANNELS = ("ECG1", "ECG2")
DREAMER_N_TRIALS = 18
DREAMER_RATINGS = ("valence", "arousal", "dominance")

# --- MAHNOB-HCI (emotion elicitation, Sessions/<id>/Part_*_emotion.bdf + session.xml) ---------
MAHNOB_FS = 256.0  # every channel of the distributed BDF files
# the Biosemi 32-channel montage, in file order (channels 1-32)
MAHNOB_EEG_CHANNELS = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1", "Oz", "Pz",
    "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4", "O2",
)
# ECG electrodes: upper right chest, upper left chest, left abdomen
MAHNOB_ECG_CHANNELS = ("EXG1", "EXG2", "EXG3")
# the other channels of a file, in file order after the ECG (EXG4-8 are unused and absent)
MAHNOB_OTHER_CHANNELS = ("GSR1", "GSR2", "Erg1", "Erg2", "Resp", "Temp", "Status")
MAHNOB_CHANNELS = MAHNOB_EEG_CHANNELS + MAHNOB_ECG_CHANNELS + ("EXG4", "EXG5", "EXG6", "EXG7", "EXG8") \
    + MAHNOB_OTHER_CHANNELS
MAHNOB_STIM_CHANNEL = "Status"
# self-assessments: session.xml attribute -> rating name (1-9, as AMIGOS's)
MAHNOB_RATINGS = {"feltArsl": "arousal", "feltVlnc": "valence", "feltCtrl": "dominance",
                  "feltPred": "predictability", "feltEmo": "emotion"}
MAHNOB_N_TRIALS = 20

# --- labels ---------------------------------------------------------------------------
TARGETS = ("arousal", "valence")
#: the modalities, in the order of every modality mask's axis (n_windows, 2)
MODALITIES = ("ecg", "eeg")


def modality_kind(mask) -> "np.ndarray":
    """Per window, the modalities its mask (n, 2) marks valid: "ecg+eeg", "ecg", "eeg" or ""."""
    import numpy as np

    mask = np.asarray(mask, dtype=bool).reshape(-1, len(MODALITIES))
    names = np.array(["", "eeg", "ecg", "ecg+eeg"], dtype=object)
    return names[mask[:, 0].astype(int) * 2 + mask[:, 1].astype(int)]
# high = rating > threshold
LABEL_THRESHOLDS = {"amigos": 5.0, "dreamer": 3.0, "mahnob": 5.0}

# 10-20 positions of the 14 Emotiv channels and the other Biosemi-32 (DEAP/MAHNOB) channels on a
# 9x9 grid (row, col), for the optional topographic layout (positions as used by the
# DEAP/AMIGOS grid-CNN literature).
TOPO_GRID_SIZE = (9, 9)
TOPO_POSITIONS = {
    "AF3": (1, 3), "AF4": (1, 5), "F7": (2, 0), "F3": (2, 2), "F4": (2, 6), "F8": (2, 8),
    "FC5": (3, 1), "FC6": (3, 7), "T7": (4, 0), "T8": (4, 8), "P7": (6, 0), "P8": (6, 8),
    "O1": (8, 3), "O2": (8, 5),
    "Fp1": (0, 3), "Fp2": (0, 5), "Fz": (2, 4), "FC1": (3, 3), "FC2": (3, 5), "C3": (4, 2), "Cz": (4, 4),
    "C4": (4, 6), "CP5": (5, 1), "CP1": (5, 3), "CP2": (5, 5), "CP6": (5, 7), "P3": (6, 2), "Pz": (6, 4),
    "P4": (6, 6), "PO3": (7, 3), "PO4": (7, 5), "Oz": (8, 4),
}


# --- parameter validation (the public boundary: configs, API functions, CLI options) ---------
def check_number(name: str, value, low=None, high=None, *, integer: bool = False, strict: bool = False,
                 optional: bool = False):
    """``value`` if it is a finite number (an integer if ``integer``) ``>= low`` (``> low`` if
    ``strict``) and ``<= high``; otherwise a MaanError naming the parameter, what is allowed and
    the value given. ``None`` passes when ``optional``. NaN and infinity never pass."""
    import math
    import numbers

    from maan.errors import MaanError

    if value is None and optional:
        return None
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low is None or (value > low if strict else value >= low)) and (high is None or value <= high)
    if not ok:
        def show(v):
            return str(v) if isinstance(v, int) else f"{v:g}"

        bounds = [f"{'>' if strict else '>='} {show(low)}" if low is not None else "",
                  f"<= {show(high)}" if high is not None else ""]
        allowed = " and ".join(b for b in bounds if b)
        raise MaanError(f"{name} must be {'an integer' if integer else 'a finite number'}"
                        f"{' ' + allowed if allowed else ''}; got {value!r}")
    return value


def check_seconds(name: str, value, *, optional: bool = False):
    """A time span in seconds within [MIN_SPAN_SECONDS, MAX_SPAN_SECONDS] (check_number)."""
    return check_number(name, value, MIN_SPAN_SECONDS, MAX_SPAN_SECONDS, optional=optional)
