"""Feature normalisation for the networks, fitted without looking at test data or labels.

Statistics (the lead's design, and what the checkpoint stores):

* **ECG** (RR series in seconds, zero-embedded to a fixed length): one scalar mean and
  standard deviation over the *non-zero* entries only; padding stays exactly 0 after
  normalisation, so the network still sees where the beats end.
* **EEG** (differential-entropy maps): a mean and standard deviation per (band, channel),
  i.e. per input plane position pooled over windows and over the 1-s sub-windows. For the
  ``channels`` layout (n, bands, channels, sub-windows) that is a (bands, channels, 1) array;
  for the ``grid`` layout (n, bands*sub-windows, 9, 9) a (bands, 1, 9, 9) array (grid cells
  without an electrode are constant 0 and stay 0). A standard deviation below 1e-8 counts as 1.

Missing modalities: ``mask`` (n, 2), the store's modality mask (valid ECG, valid EEG), keeps
windows without a valid EEG out of the EEG statistics (an invalid ECG has no beats, so it never
counts), and a missing modality's inputs are 0 after normalisation, whatever was stored.

Modes (``--normalize``):

* ``train`` (default): one set of statistics fitted on the training windows of the fold only
  (the inner validation windows included, the test windows never), applied to every window.
* ``subject``: every subject is standardised with the statistics of *its own* windows, test
  windows included, labels never used. This is **transductive** (it needs a batch of unlabelled
  windows of a subject before predicting for it) and is the usual remedy for inter-subject
  differences in baseline heart rate and EEG power; with ``subject-kfold``/``loso`` it means the
  held-out subject's unlabelled windows set its own offsets.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from maan.errors import MaanError

NORMALIZE_MODES = ("train", "subject")
DEFAULT_NORMALIZE = "train"
_EPS = 1e-8


def _safe_std(std):
    std = np.asarray(std, dtype=np.float64)
    return np.where(std < _EPS, 1.0, std)


def _eeg_view(eeg: np.ndarray, layout: str, n_bands: int) -> np.ndarray:
    """(n, bands, positions..., sub-windows-or-1) view used for per-(band, channel) statistics."""
    if layout == "grid":
        n, planes, h, w = eeg.shape
        if planes % n_bands:
            raise MaanError(f"grid EEG with {planes} planes is not a multiple of {n_bands} bands")
        return eeg.reshape(n, n_bands, planes // n_bands, h, w)  # axes: n, band, sub, h, w
    return eeg  # n, band, channel, sub


@dataclass
class Stats:
    """Normalisation statistics of one set of windows."""

    ecg_mean: float
    ecg_std: float
    eeg_mean: np.ndarray
    eeg_std: np.ndarray
    n_windows: int = 0

    @classmethod
    def fit(cls, ecg: np.ndarray, eeg: np.ndarray, layout: str = "channels", n_bands: int = 4,
            mask: np.ndarray | None = None) -> "Stats":
        if len(ecg) == 0:
            raise MaanError("cannot fit normalisation statistics on zero windows")
        mask = full_mask(len(ecg)) if mask is None else np.asarray(mask, dtype=bool)
        beats = ecg[mask[:, 0]]
        beats = beats[beats != 0].astype(np.float64)
        ecg_mean = float(beats.mean()) if beats.size else 0.0
        ecg_std = float(_safe_std(beats.std())) if beats.size > 1 else 1.0
        view = _eeg_view(eeg, layout, n_bands)[mask[:, 1]].astype(np.float64)
        axes = (0, 2) if layout == "grid" else (0, 3)
        if len(view):
            mean = view.mean(axis=axes, keepdims=True)[0]
            std = _safe_std(view.std(axis=axes, keepdims=True))[0]
        else:  # no valid EEG window: nothing to standardise (every EEG input is masked)
            shape = list(_eeg_view(eeg[:1], layout, n_bands).shape[1:])
            shape[axes[1] - 1] = 1
            mean, std = np.zeros(shape), np.ones(shape)
        return cls(ecg_mean, ecg_std, mean.astype(np.float32), std.astype(np.float32), int(len(ecg)))

    def apply(self, ecg: np.ndarray, eeg: np.ndarray, layout: str = "channels", n_bands: int = 4,
              mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        ecg = np.asarray(ecg, dtype=np.float32)
        ecg_out = np.where(ecg != 0, (ecg - self.ecg_mean) / self.ecg_std, 0.0).astype(np.float32)
        view = _eeg_view(np.asarray(eeg, dtype=np.float32), layout, n_bands)
        eeg_out = ((view - self.eeg_mean) / self.eeg_std).astype(np.float32).reshape(np.shape(eeg))
        if mask is not None:  # a missing modality is 0, whatever was stored for it
            mask = np.asarray(mask, dtype=bool)
            ecg_out[~mask[:, 0]] = 0.0
            eeg_out[~mask[:, 1]] = 0.0
        return ecg_out, eeg_out

    def check_shape(self, eeg_shape, layout: str = "channels", n_bands: int = 4) -> None:
        """MaanError unless the EEG statistics fit windows of ``eeg_shape`` (a checkpoint's file)."""
        view = _eeg_view(np.zeros((1, *eeg_shape), np.float32), layout, n_bands)
        expected = view.mean(axis=(0, 2) if layout == "grid" else (0, 3), keepdims=True)[0].shape
        for name in ("eeg_mean", "eeg_std"):
            if np.shape(getattr(self, name)) != expected:
                raise MaanError(f"normalisation statistics {name} have shape {np.shape(getattr(self, name))}, "
                                f"EEG windows {tuple(eeg_shape)} need {expected}")

    def to_dict(self) -> dict:
        return {"ecg_mean": self.ecg_mean, "ecg_std": self.ecg_std,
                "eeg_mean": np.asarray(self.eeg_mean).tolist(), "eeg_std": np.asarray(self.eeg_std).tolist(),
                "n_windows": self.n_windows}

    @classmethod
    def from_dict(cls, d: dict) -> "Stats":
        """Statistics saved with a checkpoint; NaN, infinity or a scale <= 0 are refused (they
        would turn every prediction into NaN)."""
        stats = cls(float(d["ecg_mean"]), float(d["ecg_std"]), np.asarray(d["eeg_mean"], dtype=np.float32),
                    np.asarray(d["eeg_std"], dtype=np.float32), int(d.get("n_windows", 0)))
        values = np.concatenate([[stats.ecg_mean, stats.ecg_std], stats.eeg_mean.ravel(), stats.eeg_std.ravel()])
        if not np.isfinite(values).all() or stats.ecg_std <= 0 or (stats.eeg_std <= 0).any():
            raise MaanError("normalisation statistics hold NaN, infinity or a scale <= 0")
        return stats


@dataclass
class Normalizer:
    """``train`` mode holds one :class:`Stats`; ``subject`` mode one per subject it has seen.

    ``fit(ecg, eeg, subject, fit_idx)`` -> ``transform(ecg, eeg, subject)``. In ``subject``
    mode ``fit_idx`` is ignored on purpose: every subject present in the arrays is fitted on
    all of its windows (transductive, labels unused); ``transform`` of a subject never fitted
    fits it on the windows given (so a checkpoint applied to a new store adapts to it).
    """

    mode: str = DEFAULT_NORMALIZE
    layout: str = "channels"
    n_bands: int = 4
    global_stats: Stats | None = None
    subject_stats: dict[str, Stats] = field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in NORMALIZE_MODES:
            raise MaanError(f"unknown normalisation {self.mode!r}; choose one of {', '.join(NORMALIZE_MODES)}")

    def fit(self, ecg, eeg, subject=None, fit_idx=None, mask=None) -> "Normalizer":
        mask = full_mask(len(ecg)) if mask is None else np.asarray(mask, dtype=bool)
        if self.mode == "train":
            idx = np.arange(len(ecg)) if fit_idx is None else np.asarray(fit_idx)
            self.global_stats = Stats.fit(ecg[idx], eeg[idx], self.layout, self.n_bands, mask[idx])
        else:
            if subject is None:
                raise MaanError("subject normalisation needs the subject of every window")
            subject = np.asarray(subject)
            for s in np.unique(subject):
                rows = subject == s
                self.subject_stats[str(s)] = Stats.fit(ecg[rows], eeg[rows], self.layout, self.n_bands, mask[rows])
        return self

    def transform(self, ecg, eeg, subject=None, mask=None) -> tuple[np.ndarray, np.ndarray]:
        """Normalised (ecg, eeg); ``mask`` (n, 2): a missing modality's inputs become 0."""
        mask = full_mask(len(ecg)) if mask is None else np.asarray(mask, dtype=bool)
        if self.mode == "train":
            if self.global_stats is None:
                raise MaanError("normaliser used before fit")
            return self.global_stats.apply(ecg, eeg, self.layout, self.n_bands, mask)
        if subject is None:
            raise MaanError("subject normalisation needs the subject of every window")
        subject = np.asarray(subject)
        ecg_out = np.empty(np.shape(ecg), np.float32)
        eeg_out = np.empty(np.shape(eeg), np.float32)
        for s in np.unique(subject):
            rows = subject == s
            stats = self.subject_stats.get(str(s))
            if stats is None:
                stats = Stats.fit(ecg[rows], eeg[rows], self.layout, self.n_bands, mask[rows])
            ecg_out[rows], eeg_out[rows] = stats.apply(ecg[rows], eeg[rows], self.layout, self.n_bands, mask[rows])
        return ecg_out, eeg_out

    def to_dict(self) -> dict:
        out = {"mode": self.mode, "layout": self.layout, "n_bands": self.n_bands}
        if self.global_stats is not None:
            out["stats"] = self.global_stats.to_dict()
        if self.subject_stats:
            out["subject_stats"] = {k: v.to_dict() for k, v in self.subject_stats.items()}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        return cls(mode=d["mode"], layout=d.get("layout", "channels"), n_bands=int(d.get("n_bands", 4)),
                   global_stats=Stats.from_dict(d["stats"]) if d.get("stats") else None,
                   subject_stats={k: Stats.from_dict(v) for k, v in d.get("subject_stats", {}).items()})

    def for_prediction(self) -> "Normalizer":
        """The normaliser a checkpoint keeps: ``subject`` mode refits on the store it is applied to."""
        if self.mode == "subject":
            return Normalizer(self.mode, self.layout, self.n_bands)
        return self


def full_mask(n: int) -> np.ndarray:
    """The modality mask (n, 2) of n complete windows."""
    return np.ones((int(n), 2), dtype=bool)


def layout_of(manifest: dict) -> tuple[str, int]:
    """(layout, number of bands) of a feature store, from its manifest."""
    config = manifest.get("config", {})
    return str(config.get("layout", "channels")), int(len(config.get("bands", [])) or 4)


def standardize_by_group(x: np.ndarray, groups: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """z-score the columns of ``x`` within each group (subject), for ``--normalize subject``.

    ``present`` (same shape as ``x``, bool): only present entries set a group's statistics, and
    absent ones become 0, the group's mean (a missing modality's features)."""
    x = np.asarray(x, dtype=np.float64)
    present = np.ones(x.shape, bool) if present is None else np.asarray(present, dtype=bool)
    out = np.zeros_like(x)
    for g in np.unique(groups):
        rows = groups == g
        values = np.where(present[rows], x[rows], np.nan)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column with no present entry in the group
            mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        z = (x[rows] - np.nan_to_num(mean)) / _safe_std(np.nan_to_num(std))
        out[rows] = np.where(present[rows], z, 0.0)
    return out


def single_class_subjects(train_idx, y, subject, present=None) -> list[str]:
    """Subjects whose windows are all training windows of one label, sorted.

    Only subjects with no window outside ``train_idx`` count: ``subject`` normalisation also
    standardises a subject on its test windows, which may hold the other class (trial-kfold).
    ``present`` (bool per window): only those windows count (a single-modality model's windows).
    Test labels are never read.
    """
    train_idx = np.asarray(train_idx)
    subject = np.asarray(subject).astype(str)
    y_train, s_train = np.asarray(y)[train_idx], subject[train_idx]
    names, n_train = np.unique(s_train, return_counts=True)
    counted = subject if present is None else subject[np.asarray(present, dtype=bool)]
    n_all = dict(zip(*np.unique(counted, return_counts=True)))
    return sorted(str(s) for s, n in zip(names, n_train)
                  if n == n_all.get(s, 0) and len(np.unique(y_train[s_train == s])) < 2)


def informative_train_idx(train_idx, y, subject, normalize: str, present=None) -> tuple[np.ndarray, list[str]]:
    """The training windows worth fitting on, and the subjects left out.

    Under ``--normalize subject`` a subject whose windows all carry one label is standardised on
    that class alone: its features are centred on the class's own mean, where the other
    subjects place the boundary between the classes, so its labels teach the opposite of what
    they say (eegmat: a subject whose rest recording has no usable ECG has ECG in its task windows
    only, so an ``ecg-only`` model, whose windows are those with ECG, given as ``present``, sees
    one class of it). Such subjects are left out of training (they are still tested where they
    are held out). This needs all of a subject's windows on the training side (``loso``,
    ``subject-kfold``, ``maan train``); ``train`` normalisation keeps every window. When leaving
    them out would leave a single class, nothing is left out.
    """
    train_idx = np.asarray(train_idx)
    if normalize != "subject":
        return train_idx, []
    dropped = single_class_subjects(train_idx, y, subject, present)
    if not dropped:
        return train_idx, []
    keep = train_idx[~np.isin(np.asarray(subject)[train_idx].astype(str), dropped)]
    if len(np.unique(np.asarray(y)[keep])) < 2:
        return train_idx, []
    return keep, dropped
