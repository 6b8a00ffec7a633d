"""Preprocessing: records -> synchronized windows -> ECG RR series + EEG DE maps -> store.

One subject is the unit of work (and of atomic writes): workers compute a subject's windows
and return arrays; the parent process alone writes the store, so HDF5 needs no locking.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, replace
from functools import partial

import numpy as np

from maan import config as C
from maan.datasets.record import Record, SubjectSource
from maan.errors import InvalidInputError, InvalidSignalError, MaanError
from maan.features import ecg as ecg_features
from maan.config import DE_METHODS, DEFAULT_DE_METHOD, LAYOUTS, MODALITIES
from maan.features.eeg import de_subwindows
from maan.preprocessing.parallel import run_parallel
from maan.preprocessing.store import FeatureStoreWriter, SubjectFeatures, file_fingerprint
from maan.features.windows import finite_runs, run_of_window, samples_per, window_starts

log = logging.getLogger("maan")

RECORDINGS = "recordings"  # the labelled-recordings dataset (maan.datasets.recordings)
EEGMAT = "eegmat"  # PhysioNet eegmat, read as recordings with known labels (maan.datasets.eegmat)
MAHNOB = "mahnob"  # MAHNOB-HCI (maan.datasets.mahnob)
_RESAMPLED = (RECORDINGS, EEGMAT)  # read with MNE and resampled to one rate (fs)
# reader option -> (flag, the datasets it applies to)
_READER_OPTIONS = {"labels": ("--labels", (RECORDINGS,)), "ecg_channel": ("--ecg-channel", (RECORDINGS, MAHNOB)),
                   "exclude": ("--exclude", (RECORDINGS,)), "fs": ("--fs", _RESAMPLED)}


@dataclass(frozen=True)
class PreprocessConfig:
    """Every parameter that changes the stored features (its hash guards resumes)."""

    dataset: str
    window_seconds: float = C.WINDOW_SECONDS
    step_seconds: float = C.STEP_SECONDS
    subwindow_seconds: float = C.SUBWINDOW_SECONDS
    bands: tuple = tuple((name, lo, hi) for name, (lo, hi) in C.BANDS.items())
    rr_length: int = C.RR_LENGTH
    rpeak_method: str = ecg_features.DEFAULT_RPEAK_METHOD
    de_method: str = DEFAULT_DE_METHOD
    layout: str = "channels"
    threshold: float | None = None  # None: the dataset's default (C.LABEL_THRESHOLDS); recordings, eegmat: 0/1 as is
    targets: tuple | None = None  # None: arousal, valence; recordings: the table's label columns; eegmat: task
    # --- reader options (see maan.datasets.recordings; _READER_OPTIONS says which dataset takes which) ---
    # The labels table (default DATA/labels.csv). Its path is not hashed: its columns are the
    # targets (hashed) and its content is fingerprinted as an input of every subject.
    labels: str | None = None
    ecg_channel: str | None = None  # None: the single channel typed or named ECG (mahnob: the best lead)
    exclude: tuple = ()  # EEG-typed channels that are not EEG (eegmat: "EEG A2-A1")
    fs: float | None = None  # recordings, eegmat: common rate both modalities are resampled to; None: 128 Hz
    # False: a window is kept when at least one modality is valid (its modality_mask says which);
    # True: only windows with both (a dead lead then drops its windows)
    require_all_modalities: bool = False

    def __post_init__(self):
        if self.targets is None and self.dataset != RECORDINGS:
            from maan.datasets.eegmat import TARGET

            object.__setattr__(self, "targets", (TARGET,) if self.dataset == EEGMAT else C.TARGETS)
        elif self.targets is not None:
            object.__setattr__(self, "targets", tuple(self.targets))
        exclude = (self.exclude,) if isinstance(self.exclude, str) else tuple(self.exclude or ())
        object.__setattr__(self, "exclude", exclude)
        if self.labels is not None:
            object.__setattr__(self, "labels", os.fspath(self.labels))
        misplaced: dict[tuple, list] = {}  # the datasets an option applies to -> options given
        for name, (flag, datasets) in _READER_OPTIONS.items():
            if getattr(self, name) and self.dataset not in datasets:
                misplaced.setdefault(datasets, []).append(flag)
        if misplaced:
            raise MaanError("; ".join(f"{', '.join(flags)} only appl{'y' if len(flags) > 1 else 'ies'} to --dataset "
                                      f"{' and '.join(datasets)}" for datasets, flags in misplaced.items())
                            + f" (not {self.dataset})")
        if self.dataset == MAHNOB and self.ecg_channel is not None and self.ecg_channel not in C.MAHNOB_ECG_CHANNELS:
            raise MaanError(f"--ecg-channel for --dataset {MAHNOB} is one of {', '.join(C.MAHNOB_ECG_CHANNELS)}; "
                            f"got {self.ecg_channel!r}")
        C.check_seconds("window_seconds (--window)", self.window_seconds)
        C.check_seconds("step_seconds (--step)", self.step_seconds)
        C.check_seconds("subwindow_seconds (--subwindow)", self.subwindow_seconds)
        if self.subwindow_seconds > self.window_seconds:
            raise MaanError(f"subwindow_seconds (--subwindow) must be <= the window ({self.window_seconds:g} s); "
                            f"got {self.subwindow_seconds:g}")
        C.check_number("threshold (--threshold)", self.threshold, optional=True)
        C.check_number("rr_length", self.rr_length, 1, 4096, integer=True)
        C.check_number("fs (--fs)", self.fs, 1, C.MAX_FS, optional=True)
        if self.fs is not None:
            top = max(hi for _, _, hi in self.bands)
            if not self.fs > 2 * top:
                raise MaanError(f"--fs {self.fs:g} Hz is too low: the EEG bands reach {top:g} Hz, "
                                f"so the rate must exceed {2 * top:g} Hz")
            for what, seconds in (("window (--window)", self.window_seconds),
                                  ("sub-window (--subwindow)", self.subwindow_seconds)):
                samples_per(seconds, self.fs, f"{what} at --fs")
        if self.de_method not in DE_METHODS:
            raise MaanError(f"unknown DE method {self.de_method!r}; choose one of {', '.join(DE_METHODS)}")
        if str(self.rpeak_method).lower() not in ecg_features.RPEAK_METHODS:
            raise MaanError(f"unknown R-peak method {self.rpeak_method!r}; choose one of "
                            f"{', '.join(ecg_features.RPEAK_METHODS)}")
        if not isinstance(self.require_all_modalities, bool):
            raise MaanError(f"require_all_modalities (--require-all-modalities) must be true or false; "
                            f"got {self.require_all_modalities!r}")
        if self.layout not in LAYOUTS:
            raise MaanError(f"unknown layout {self.layout!r}; choose one of {', '.join(LAYOUTS)}")
        ratio = self.window_seconds / self.subwindow_seconds
        if abs(ratio - round(ratio)) > 1e-9:
            raise MaanError("the window length must be a whole number of sub-windows")

    @property
    def label_threshold(self) -> float | None:
        """label = rating > this; None: the (recordings) target columns are 0/1 labels already."""
        if self.threshold is not None:
            return float(self.threshold)
        if self.dataset in _RESAMPLED:
            return None
        return C.LABEL_THRESHOLDS.get(self.dataset, 5.0)

    @property
    def sample_rate(self) -> float | None:
        """The rate recordings are resampled to (None for datasets read at their own rates)."""
        if self.dataset not in _RESAMPLED:
            return None
        from maan.datasets.recordings import DEFAULT_FS

        return float(self.fs) if self.fs is not None else DEFAULT_FS

    def reader_options(self) -> dict:
        """Keyword options for the dataset's reader (READERS[dataset]): recordings, eegmat and mahnob take some."""
        if self.dataset == EEGMAT:
            return {"fs": self.sample_rate}
        if self.dataset == MAHNOB:
            return {"ecg_channel": self.ecg_channel, "rpeak_method": self.rpeak_method}
        if self.dataset != RECORDINGS:
            return {}
        return {"labels": self.labels, "ecg_channel": self.ecg_channel, "exclude": self.exclude,
                "fs": self.sample_rate, "threshold": self.threshold, "targets": self.targets}

    @property
    def band_dict(self) -> dict:
        return {name: (lo, hi) for name, lo, hi in self.bands}

    @property
    def n_subwindows(self) -> int:
        return int(round(self.window_seconds / self.subwindow_seconds))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["bands"] = [list(b) for b in self.bands]
        out["targets"] = None if self.targets is None else list(self.targets)
        out["threshold"] = self.label_threshold
        del out["labels"]  # see the field: the table is fingerprinted, its columns are the targets
        if self.dataset == RECORDINGS:
            out["exclude"] = sorted(self.exclude)
        else:  # absent, so that stores of the other datasets keep their config hash
            del out["exclude"]
        if self.dataset not in _READER_OPTIONS["ecg_channel"][1]:
            del out["ecg_channel"]
        if self.dataset in _RESAMPLED:
            out["fs"] = self.sample_rate
        else:
            del out["fs"]
        return out


@dataclass
class TrialFeatures:
    ecg: np.ndarray  # (n, 1, rr_length); zeros where the window's ECG is invalid
    eeg: np.ndarray  # (n, bands, channels, subwindows); zeros where the window's EEG is invalid
    window_start: np.ndarray  # (n,) seconds
    modality_mask: np.ndarray  # (n, 2) bool: valid ECG, valid EEG (MODALITIES order)
    dropped: dict[str, int] = field(default_factory=dict)  # windows not kept, by reason
    partial: dict[str, int] = field(default_factory=dict)  # kept windows missing a modality, by its reason


def _count(reasons: np.ndarray) -> dict[str, int]:
    names, counts = np.unique(reasons[reasons != ""], return_counts=True)
    return {str(k): int(v) for k, v in zip(names, counts)}


def ecg_rr_windows(ecg, fs: float, starts: np.ndarray, window_samples: int, config: PreprocessConfig):
    """RR series and drop reasons for windows of a multi-lead ECG (channels, samples).

    Leads are tried in order; the next lead is used only for windows the previous one could
    not serve (flat, absent, NaN, no beats), so a dead electrode does not cost the trial.
    """
    n = len(starts)
    rr = np.zeros((n, config.rr_length), dtype=np.float32)
    reasons = np.full(n, "nan", dtype=object)
    for lead in np.atleast_2d(ecg):
        todo = reasons != ""
        if not todo.any():
            break
        runs = finite_runs(np.isfinite(lead))
        run_index = run_of_window(starts, window_samples, runs)
        for r, (a, b) in enumerate(runs):
            mine = todo & (run_index == r)
            if not mine.any():
                continue
            try:
                peaks = ecg_features.detect_rpeaks(lead[a:b], fs, method=config.rpeak_method) + a
            except InvalidSignalError:
                reasons[mine & (reasons == "nan")] = "ecg_no_beats"
                continue
            lead_rr, valid, why = ecg_features.rr_windows(
                peaks, fs, starts[mine], window_samples, length=config.rr_length
            )
            idx = np.flatnonzero(mine)
            rr[idx[valid]] = lead_rr[valid]
            reasons[idx[valid]] = ""
            still_bad = idx[~valid]
            reasons[still_bad] = np.asarray(why, dtype=object)[~valid]
    return rr, reasons


# A channel whose range within a window is below this fraction of the trial's median range is
# flat (dead electrode, clipped amplifier): its DE would be log(~0). So is one whose range is
# below FLAT_ABSOLUTE_RANGE µV (under any EEG amplifier's resolution), which catches a recording
# whose every channel is flat.
FLAT_RELATIVE_RANGE = 1e-4
FLAT_ABSOLUTE_RANGE = 1e-3


def flat_channel_windows(x: np.ndarray, starts: np.ndarray, window_samples: int) -> np.ndarray:
    """True for windows where any channel of ``x`` (channels, samples, in µV) is flat."""
    if len(starts) == 0:
        return np.zeros(0, dtype=bool)
    if np.all(np.diff(starts) == window_samples):  # the default step == window: a view, no copy
        pieces = x[:, starts[0]:starts[0] + len(starts) * window_samples].reshape(x.shape[0], len(starts), -1)
    else:
        pieces = x[:, starts[:, None] + np.arange(window_samples)[None, :]]
    span = pieces.max(axis=-1) - pieces.min(axis=-1)  # (channels, windows)
    reference = np.median(span)
    return (span <= max(FLAT_RELATIVE_RANGE * reference, FLAT_ABSOLUTE_RANGE)).any(axis=0)


def eeg_de_windows(eeg, fs: float, starts: np.ndarray, window_samples: int, config: PreprocessConfig):
    """DE maps (n, bands, channels, subwindows) and drop reasons for windows of one trial."""
    n = len(starts)
    sub = samples_per(config.subwindow_seconds, fs, "sub-window (--subwindow)")
    out = np.zeros((n, len(config.bands), eeg.shape[0], config.n_subwindows), dtype=np.float32)
    reasons = np.full(n, "nan", dtype=object)
    # infinity and values beyond float32 (the DE's working precision) are as unusable as NaN;
    # their windows are counted apart ("eeg_not_finite") so that corrupt files are told from gaps
    usable = (np.abs(eeg) <= np.finfo(np.float32).max).all(axis=0)  # False for NaN and inf too
    runs = finite_runs(usable)
    if not usable.all():
        overflow = np.concatenate([[0], np.cumsum(~np.isnan(eeg).any(axis=0) & ~usable)])
        hit = overflow[np.minimum(starts + window_samples, eeg.shape[1])] > overflow[np.minimum(starts, eeg.shape[1])]
        reasons[hit] = "eeg_not_finite"
    run_index = run_of_window(starts, window_samples, runs)
    for r, (a, b) in enumerate(runs):
        mine = np.flatnonzero(run_index == r)
        if len(mine) == 0:
            continue
        out[mine] = de_subwindows(eeg[:, a:b], fs, starts[mine] - a, window_samples, sub,
                                  bands=config.band_dict, method=config.de_method)
        reasons[mine] = ""
        flat = flat_channel_windows(eeg, starts[mine], window_samples)
        reasons[mine[flat]] = "eeg_flat"
    # garbage is dropped and counted, never zero-filled: a non-finite DE (values that overflow)
    # or one far outside any EEG (corrupt samples, a wrong unit)
    low, high = C.DE_RANGE_NATS
    computed = reasons == ""
    per_window = tuple(range(1, out.ndim))
    finite = np.isfinite(out).all(axis=per_window)
    with np.errstate(invalid="ignore"):
        in_range = ((out >= low) & (out <= high)).all(axis=per_window)
    reasons[computed & ~finite] = "eeg_not_finite"
    reasons[computed & finite & ~in_range] = "eeg_out_of_range"
    out[reasons != ""] = 0.0  # masked out (the window's EEG is invalid), never read as signal
    return out, reasons


@dataclass
class TrialWindows:
    """Every window of one trial, valid or not (``reasons[i] == ""`` for a complete window)."""

    ecg: np.ndarray  # (n, 1, rr_length); zeros where ECG is invalid
    eeg: np.ndarray  # (n, bands, channels, subwindows) or (n, planes, H, W) for the grid layout
    window_start: np.ndarray  # (n,) seconds
    reasons: np.ndarray  # (n,) object: "" or what is wrong with the window (nan, ecg_*, eeg_*)
    ecg_reasons: np.ndarray  # (n,) object: "" or why the window's ECG is invalid (ecg_nan, ecg_no_beats, ...)
    eeg_reasons: np.ndarray  # (n,) object: "" or why its EEG is invalid (eeg_nan, eeg_flat, ...)

    @property
    def modality_mask(self) -> np.ndarray:
        """(n, 2) bool: the window's ECG is valid, its EEG is valid (MODALITIES order)."""
        return np.stack([self.ecg_reasons == "", self.eeg_reasons == ""], axis=1).astype(bool)

    @property
    def flags(self) -> np.ndarray:
        """(n,) object: "" for a complete window, the missing modality's reason for a window with
        one valid modality, else what is wrong with the window (``reasons``)."""
        mask = self.modality_mask
        missing = np.where(~mask[:, 0], self.ecg_reasons, self.eeg_reasons)
        return np.where(mask.all(axis=1), "", np.where(mask.any(axis=1), missing, self.reasons)).astype(object)


#: Lowest ECG rate (Hz): R-peak detection needs its 6-15 Hz QRS band below the Nyquist rate.
MIN_ECG_FS = 2 * ecg_features.DETECTION_BAND_HZ[1]


def _check_rates(record: Record, config: PreprocessConfig) -> None:
    """The sampling rates a file states, checked before any window is cut (a corrupt rate field
    would otherwise make every trial empty or fail deep inside a filter)."""
    top = max(hi for _, _, hi in config.bands)
    for name, signal, low in (("EEG", record.eeg, 2 * top), ("ECG", record.ecg, MIN_ECG_FS)):
        if not low < signal.fs <= C.MAX_FS:
            raise InvalidInputError(record.source or None,
                                    f"trial {record.trial}: {name} sampling rate {signal.fs:g} Hz is outside "
                                    f"({low:g}, {C.MAX_FS:g}] Hz (the {name} bands need more than {low:g} Hz)")


def trial_windows(record: Record, config: PreprocessConfig) -> TrialWindows:
    """All windows of one trial with the reason each invalid one would be dropped for
    (:func:`extract_trial` keeps the valid ones; ``maan predict`` flags the others)."""
    _check_rates(record, config)
    duration = min(record.ecg.duration, record.eeg.duration)
    starts_s = window_starts(duration, config.window_seconds, config.step_seconds)
    ecg_w = samples_per(config.window_seconds, record.ecg.fs, "window (--window)")
    eeg_w = samples_per(config.window_seconds, record.eeg.fs, "window (--window)")
    ecg_starts = np.round(starts_s * record.ecg.fs).astype(np.int64)
    eeg_starts = np.round(starts_s * record.eeg.fs).astype(np.int64)
    rr, ecg_reasons = ecg_rr_windows(record.ecg.data, record.ecg.fs, ecg_starts, ecg_w, config)
    de, eeg_reasons = eeg_de_windows(record.eeg.data, record.eeg.fs, eeg_starts, eeg_w, config)
    # NaN in either modality is reported as "nan"; otherwise the EEG reason, then the ECG one.
    reasons = np.where(eeg_reasons != "", eeg_reasons, ecg_reasons)
    reasons = np.where((ecg_reasons == "nan") & (eeg_reasons == ""), "nan", reasons).astype(object)
    if config.layout == "grid":
        de = to_topographic_grid(de, record.eeg.channels)
    # per modality, every reason names its modality ("nan" alone is ambiguous)
    ecg_reasons = np.where(ecg_reasons == "nan", "ecg_nan", ecg_reasons).astype(object)
    eeg_reasons = np.where(eeg_reasons == "nan", "eeg_nan", eeg_reasons).astype(object)
    return TrialWindows(ecg=rr[:, None, :], eeg=de, window_start=starts_s, reasons=reasons,
                        ecg_reasons=ecg_reasons, eeg_reasons=eeg_reasons)


def extract_trial(record: Record, config: PreprocessConfig) -> TrialFeatures:
    """Windows of one trial with at least one valid modality (both with
    ``config.require_all_modalities``); windows not kept are counted by reason, kept windows
    that miss a modality by that modality's reason."""
    w = trial_windows(record, config)
    mask = w.modality_mask
    keep = mask.all(axis=1) if config.require_all_modalities else mask.any(axis=1)
    missing = np.where(~mask[:, 0], w.ecg_reasons, np.where(~mask[:, 1], w.eeg_reasons, ""))
    return TrialFeatures(ecg=w.ecg[keep], eeg=w.eeg[keep], window_start=w.window_start[keep],
                         modality_mask=mask[keep], dropped=_count(w.reasons[~keep]),
                         partial=_count(missing[keep].astype(object)))


def to_topographic_grid(de: np.ndarray, channels) -> np.ndarray:
    """(n, bands, channels, sub) -> (n, bands*sub, H, W) on the 10-20 grid of config.TOPO_POSITIONS."""
    missing = [c for c in channels if c not in C.TOPO_POSITIONS]
    if missing:
        raise MaanError(f"no topographic position for channel(s) {', '.join(missing)}; use --layout channels")
    n, n_bands, _, n_sub = de.shape
    grid = np.zeros((n, n_bands, n_sub, *C.TOPO_GRID_SIZE), dtype=de.dtype)
    for i, name in enumerate(channels):
        row, col = C.TOPO_POSITIONS[name]
        grid[:, :, :, row, col] = de[:, :, i, :]
    return grid.reshape(n, n_bands * n_sub, *C.TOPO_GRID_SIZE)


def _trial_problem(record: Record, features: TrialFeatures) -> str | None:
    """A whole-trial defect that makes the input file bad (not just some windows)."""
    if features.window_start.size:
        return None
    if not np.isfinite(record.eeg.data).any() or not np.isfinite(record.ecg.data).any():
        return "all samples are NaN"
    if features.dropped.get("ecg_no_beats", 0) and set(features.dropped) <= {"ecg_no_beats", "nan"}:
        return "ECG has no detectable beats (flat or absent lead)"
    if features.dropped.get("eeg_flat", 0) and set(features.dropped) <= {"eeg_flat", "nan"}:
        return "EEG is flat"
    garbage = {"eeg_not_finite", "eeg_out_of_range"}
    if set(features.dropped) & garbage and set(features.dropped) <= garbage | {"eeg_flat", "nan"}:
        return "EEG values overflow or lie outside any EEG range (corrupt file or wrong unit)"
    return None


def extract_subject(source: SubjectSource, config: PreprocessConfig, skip_invalid: bool = False):
    """Read one subject and compute all its windows (raises InvalidInputError on bad input).

    Returns ``(SubjectFeatures, meta)`` where meta holds the channel and rating names, and the
    input files skipped as invalid (``invalid_inputs``: sources that skip a bad trial file).
    """
    skipped = []
    if skip_invalid and source.load_skipping is not None:
        records, skipped = source.load_skipping()
    else:
        records = source.load()
    ecg, eeg, mask, trial, start, ratings = [], [], [], [], [], []
    labels: dict[str, list] = {t: [] for t in config.targets}
    dropped: dict[str, int] = {}
    partial: dict[str, int] = {}
    partial_trials = []  # trials whose kept windows all miss one modality (a dead lead)
    invalid_trials = []
    short_trials = []  # shorter than one window: no window, listed in the manifest
    rating_names = None
    for record in records:
        features = extract_trial(record, config)
        problem = _trial_problem(record, features)
        if problem:
            if not skip_invalid:
                raise InvalidInputError(record.source or source.path,
                                        f"trial {record.trial}: {problem} (pass --skip-invalid to drop it and continue)")
            invalid_trials.append({"trial": record.trial, "reason": problem})
        n = len(features.window_start)
        duration = min(record.ecg.duration, record.eeg.duration)
        if duration < config.window_seconds:
            log.warning("%s: trial %s is shorter than one window (%.1f s < %g s); skipped",
                        record.source or source.path, record.trial, duration, config.window_seconds)
            short_trials.append({"trial": record.trial, "seconds": round(float(duration), 3)})
        for reason, count in features.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
        if n == 0:
            continue
        rating_names = rating_names or list(record.ratings)
        values = {t: record.ratings.get(t, np.nan) for t in config.targets}
        # a rating beyond float32 (the store's type) is as unusable as a missing one
        with np.errstate(over="ignore", invalid="ignore"):
            usable = all(np.isfinite(v) and abs(v) <= np.finfo(np.float32).max for v in values.values())
        if not usable:
            dropped["missing_rating"] = dropped.get("missing_rating", 0) + n
            continue
        for reason, count in features.partial.items():
            partial[reason] = partial.get(reason, 0) + count
        for axis, modality in enumerate(MODALITIES):
            if not features.modality_mask[:, axis].any():
                reasons = {r: c for r, c in features.partial.items() if r.startswith(modality)}
                partial_trials.append({"trial": record.trial, "missing": modality,
                                       "reason": max(reasons, key=reasons.get) if reasons else "", "windows": n})
                log.info("%s: trial %s has no valid %s (%s); its %d windows are kept with %s only",
                         record.source or source.path, record.trial, modality.upper(),
                         partial_trials[-1]["reason"], n, MODALITIES[1 - axis].upper())
        threshold = config.label_threshold
        for t, v in values.items():
            labels[t].append(np.full(n, int(v) if threshold is None else int(v > threshold), dtype=np.int8))
        ecg.append(features.ecg)
        eeg.append(features.eeg)
        mask.append(features.modality_mask)
        trial.append(np.full(n, record.trial, dtype=np.int32))
        start.append(features.window_start)
        with np.errstate(over="ignore"):  # a non-target rating beyond float32 is stored as infinity
            row = np.array([record.ratings[k] for k in rating_names], dtype=np.float32)
        ratings.append(np.tile(row, (n, 1)))

    def cat(parts, empty):
        return np.concatenate(parts) if parts else empty

    return SubjectFeatures(
        subject=source.subject,
        ecg=cat(ecg, np.zeros((0, 1, config.rr_length), np.float32)),
        eeg=cat(eeg, np.zeros((0,), np.float32)),
        modality_mask=cat(mask, np.zeros((0, len(MODALITIES)), bool)),
        trial=cat(trial, np.zeros(0, np.int32)),
        window_start=cat(start, np.zeros(0)),
        ratings=cat(ratings, np.zeros((0, len(rating_names or [])), np.float32)),
        labels={t: cat(v, np.zeros(0, np.int8)) for t, v in labels.items()},
        dropped=dropped,
        partial=partial,
        partial_trials=partial_trials,
        invalid_trials=invalid_trials,
        short_trials=short_trials,
        inputs=_fingerprints(source, records),
        signal_seconds=sum(min(r.ecg.duration, r.eeg.duration) for r in records),
    ), {"rating_names": rating_names or [],
        "eeg_channels": list(records[0].eeg.channels) if records else [],
        "ecg_channels": list(records[0].ecg.channels) if records else [],
        "invalid_inputs": [{"path": str(path), "reason": reason} for path, reason in skipped]}


def _fingerprints(source: SubjectSource, records) -> list[dict]:
    """The subject's source file, then every other file its trials were read from (recordings:
    the labels table, then each recording), so that a change to any of them redoes the subject."""
    others = dict.fromkeys(r.source for r in records if r.source and r.source != source.path)
    return [file_fingerprint(source.path)] + [file_fingerprint(p) for p in others if os.path.isfile(p)]


# -- datasets -------------------------------------------------------------------------------
def list_subjects(dataset: str, data, config: PreprocessConfig | None = None) -> list[SubjectSource]:
    """The dataset's subjects; ``config`` supplies the reader's options (recordings, eegmat)."""
    from maan.datasets import READERS

    if dataset not in READERS:
        raise MaanError(f"unknown dataset {dataset!r}; choose one of {', '.join(READERS)}")
    options = config.reader_options() if config is not None else {}
    return READERS[dataset](data, **options) if options else READERS[dataset](data)


def _versions() -> dict:
    from maan.preprocessing.io import package_versions

    return package_versions(("maan", "numpy", "scipy", "neurokit2", "h5py", "mne"))


# Worker state, inherited through fork: SubjectSource.load may be a closure that cannot be pickled.
_SOURCES: list[SubjectSource] = []


def _work(index: int, config: PreprocessConfig, skip_invalid: bool):
    try:
        return "ok", extract_subject(_SOURCES[index], config, skip_invalid)
    except InvalidInputError as exc:
        return "invalid", (exc.path or _SOURCES[index].path, exc.reason)


def preprocess(dataset: str, data, out, config: PreprocessConfig | None = None, jobs: int = 1,
               skip_invalid: bool = False, overwrite: bool = False, progress: bool = True) -> dict:
    """Build (or resume) the feature store ``out`` from ``data``; returns the manifest.

    Finished subjects are skipped on a rerun; a changed configuration raises
    ConfigMismatchError unless ``overwrite``. A bad input file raises InvalidInputError
    (subjects already stored are kept) unless ``skip_invalid``, which lists it in the manifest.
    """
    from tqdm.auto import tqdm

    global _SOURCES
    C.check_number("jobs (--jobs)", jobs, 1, integer=True)
    config = config or PreprocessConfig(dataset=dataset)
    if config.dataset != dataset:
        raise MaanError(f"config is for dataset {config.dataset!r}, not {dataset!r}")
    sources = list_subjects(dataset, data, config)
    if config.targets is None:  # recordings: the label columns of the table
        config = replace(config, targets=tuple(getattr(sources, "targets", ()) or C.TARGETS))
    from maan.datasets.synthetic import is_synthetic

    # Conservative: one synthetic file marks the whole store synthetic.
    synthetic = any(is_synthetic(s.path) for s in sources) or is_synthetic(data)
    writer = FeatureStoreWriter(out, config.to_dict(), {
        "dataset": dataset, "synthetic": synthetic, "data": str(data), "targets": list(config.targets),
        "ecg_shape": [1, config.rr_length], "versions": _versions(),
        **({"labels": str(sources.labels)} if getattr(sources, "labels", None) else {}),
        **({"subject_info": sources.subject_info} if getattr(sources, "subject_info", None) else {}),
        **({"unrated_sessions": sources.unrated_sessions} if hasattr(sources, "unrated_sessions") else {}),
    }, overwrite=overwrite)
    todo = [i for i, s in enumerate(sources) if not writer.is_done(s.subject)]
    bar = tqdm(total=len(sources), initial=len(sources) - len(todo), unit="subject",
               desc=f"preprocess {dataset}", disable=not progress)
    _SOURCES = sources

    def accept(index: int, status: str, payload) -> None:
        if status == "invalid":
            path, reason = payload
            if not skip_invalid:
                raise InvalidInputError(path, reason)
            log.warning("skipping %s: %s", path, reason)
            writer.record_invalid(str(path), reason)
        else:
            features, meta = payload
            for entry in meta.pop("invalid_inputs", ()):
                log.warning("skipping %s: %s", entry["path"], entry["reason"])
                writer.record_invalid(entry["path"], entry["reason"])
            if features.eeg.ndim > 1:
                writer.manifest["eeg_shape"] = list(features.eeg.shape[1:])
            for key, value in meta.items():
                if value:
                    writer.manifest.setdefault(key, value)
            writer.write_subject(features)
        bar.update(1)

    try:
        run_parallel(partial(_work, config=config, skip_invalid=skip_invalid), todo, jobs,
                     lambda k, result: accept(todo[k], *result), describe=lambda k: sources[todo[k]].path)
    finally:
        bar.close()
        _SOURCES = []
    if writer.manifest["windows"] == 0:
        raise InvalidInputError(data, "no valid windows in any subject (all trials empty, NaN, flat or without beats)")
    return writer.manifest
