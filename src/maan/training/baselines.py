"""Baselines run on the same folds as the networks, in every run and every table.

* ``majority``: predicts the training folds' majority class for every test window (score =
  the training prior, so its ROC-AUC is 0.5). Any model must beat this line.
* ``logistic``: scikit-learn ``LogisticRegression`` (L2, C=1, ``class_weight="balanced"``) on
  pooled window features: RR/heart-rate statistics (mean RR, SDNN, RMSSD, min and max RR,
  mean heart rate, number of RR intervals) plus the mean differential entropy of every
  (band, channel) over the window's sub-windows. Features are standardised on the training
  fold (``--normalize train``) or per subject (``--normalize subject``).
* ``hr-band``: the same logistic regression on the baseline the real-data issue (#7) defines:
  mean heart rate plus the mean log band power of each band (the DE averaged over
  electrodes; the DE of a Gaussian band signal is ½·log(2πeσ²), affine in its log power), one
  feature per band. Five features instead of ~80: on a few subjects it generalises where the
  per-electrode ``logistic`` overfits (eegmat: HR carries rest vs arithmetic).

Windows that miss a modality get the same windows as the networks: a missing modality's
features are imputed with the training windows' mean of that feature (over the windows that
have it; ``--normalize subject``: the subject's mean), so the regression decides from the
modality that is there.
"""
from __future__ import annotations

import numpy as np

from maan.features.normalize import standardize_by_group

BASELINES = ("majority", "logistic", "hr-band")
#: the baselines that are logistic regressions, and the window features of each
LOGISTIC_BASELINES = ("logistic", "hr-band")
#: how many leading columns of each logistic baseline's features come from the ECG
_ECG_COLUMNS = {"logistic": 7, "hr-band": 1}


def rr_statistics(ecg: np.ndarray) -> np.ndarray:
    """(n, 7) heart features from zero-embedded RR series (n, 1, L) in seconds."""
    rr = np.asarray(ecg, dtype=np.float64).reshape(len(ecg), -1)
    mask = rr != 0
    count = mask.sum(axis=1)
    safe = np.maximum(count, 1)
    mean = (rr * mask).sum(axis=1) / safe
    var = (((rr - mean[:, None]) ** 2) * mask).sum(axis=1) / safe
    diffs = np.diff(rr, axis=1)
    dmask = mask[:, 1:] & mask[:, :-1]
    rmssd = np.sqrt((diffs ** 2 * dmask).sum(axis=1) / np.maximum(dmask.sum(axis=1), 1))
    rr_min = np.where(mask, rr, np.inf).min(axis=1)
    rr_max = np.where(mask, rr, -np.inf).max(axis=1)
    rr_min[count == 0] = 0.0
    rr_max[count == 0] = 0.0
    hr = np.where(mean > 0, 60.0 / np.where(mean > 0, mean, 1.0), 0.0)
    return np.stack([mean, np.sqrt(var), rmssd, rr_min, rr_max, hr, count.astype(np.float64)], axis=1)


def mean_de(eeg: np.ndarray, layout: str = "channels", n_bands: int = 4) -> np.ndarray:
    """Mean DE per (band, channel) over the sub-windows, flattened: (n, bands*channels)."""
    eeg = np.asarray(eeg, dtype=np.float64)
    n = len(eeg)
    if layout == "grid":
        planes = eeg.shape[1]
        per_band = eeg.reshape(n, n_bands, planes // n_bands, -1).mean(axis=2)  # n, band, cells
        used = np.any(per_band != 0, axis=(0, 1))  # drop grid cells without an electrode
        return per_band[:, :, used].reshape(n, -1)
    return eeg.mean(axis=-1).reshape(n, -1)


def window_features(ecg, eeg, layout: str = "channels", n_bands: int = 4) -> np.ndarray:
    """The logistic baseline's input: RR statistics + mean DE per band and channel."""
    return np.concatenate([rr_statistics(ecg), mean_de(eeg, layout, n_bands)], axis=1)


def hr_band_features(ecg, eeg, layout: str = "channels", n_bands: int = 4) -> np.ndarray:
    """The ``hr-band`` baseline's input: mean heart rate + mean DE of each band, (n, 1 + bands)."""
    de = mean_de(eeg, layout, n_bands)
    band = de.reshape(len(de), n_bands, -1).mean(axis=-1)
    return np.concatenate([rr_statistics(ecg)[:, 5:6], band], axis=1)


def baseline_features(name: str, ecg, eeg, layout: str = "channels", n_bands: int = 4) -> np.ndarray:
    """Window features of the logistic baseline ``name`` (one of LOGISTIC_BASELINES)."""
    if name == "logistic":
        return window_features(ecg, eeg, layout, n_bands)
    if name == "hr-band":
        return hr_band_features(ecg, eeg, layout, n_bands)
    raise ValueError(f"unknown logistic baseline {name!r}; choose one of {LOGISTIC_BASELINES}")


def present_features(name: str, x: np.ndarray, mask) -> np.ndarray:
    """(n, features) bool: which entries of baseline ``name``'s features ``x`` come from a valid
    modality of their window (``mask`` (n, 2), valid ECG, valid EEG)."""
    mask = np.asarray(mask, dtype=bool)
    from_ecg = np.arange(x.shape[1]) < _ECG_COLUMNS[name]
    return np.where(from_ecg[None, :], mask[:, :1], mask[:, 1:])


def majority_baseline(y_train, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, scores) of the training majority class (ties -> high)."""
    y_train = np.asarray(y_train).astype(int)
    prior = float(y_train.mean()) if len(y_train) else 0.5
    label = int(prior >= 0.5)
    return np.full(n_test, label, dtype=int), np.full(n_test, prior)


def logistic_baseline(x: np.ndarray, y, train_idx, test_idx, normalize: str = "train",
                      subject=None, seed: int = 0, present=None) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, P(high)) of the logistic regression fitted on ``train_idx`` only;
    ``present`` (:func:`present_features`): entries of a missing modality are imputed."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y).astype(int)
    if normalize == "subject":
        x = standardize_by_group(x, np.asarray(subject), present)
    elif present is not None and not np.all(present):
        seen = present[train_idx]
        count = seen.sum(axis=0)
        fill = np.where(seen, x[train_idx], 0.0).sum(axis=0) / np.maximum(count, 1)  # 0 if never seen
        x = np.where(present, x, fill[None, :])
    x_train, y_train = x[train_idx], y[train_idx]
    if len(np.unique(y_train)) < 2:
        return majority_baseline(y_train, len(test_idx))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000,
                                                               random_state=seed))
    model.fit(x_train, y_train)
    score = model.predict_proba(x[test_idx])[:, 1]
    return (score >= 0.5).astype(int), score
