import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maan.features.normalize import standardize_by_group
from maan.training.baselines import (LOGISTIC_BASELINES, baseline_features, hr_band_features, logistic_baseline,
                                     rr_statistics, window_features)


def _windows(rr_per_window, n_bands=4, n_channels=3, length=32, de=None):
    ecg = np.zeros((len(rr_per_window), 1, length), np.float32)
    for i, rr in enumerate(rr_per_window):
        ecg[i, 0, :len(rr)] = rr
    if de is None:
        de = np.zeros((len(rr_per_window), n_bands, n_channels, 10), np.float32)
    return ecg, de


def test_hr_band_features_are_heart_rate_and_the_electrode_mean_of_each_band():
    de = np.zeros((2, 4, 3, 10), np.float32)
    de[:, 1, :, :] = np.array([1.0, 2.0, 6.0])[None, :, None]  # band 1: electrodes 1, 2, 6 -> mean 3
    de[1, 3] = -2.0
    ecg, de = _windows([[0.75] * 12, [0.5, 0.5, 0.5]], de=de)
    x = hr_band_features(ecg, de)
    assert x.shape == (2, 5)
    np.testing.assert_allclose(x[:, 0], [80.0, 120.0], rtol=1e-5)  # 60 / mean RR
    np.testing.assert_allclose(x[:, 1:], [[0, 3, 0, 0], [0, 3, 0, -2]], atol=1e-6)
    np.testing.assert_allclose(x[:, 0], rr_statistics(ecg)[:, 5])


def test_hr_band_features_on_the_grid_average_only_cells_with_an_electrode():
    grid = np.zeros((3, 4 * 2, 9, 9), np.float32)  # 4 bands x 2 sub-windows, band-major planes
    grid[:, 0:2, 0, 4] = 2.0
    grid[:, 0:2, 8, 4] = 4.0
    grid[:, 2:4, 0, 4] = 1.0  # band 1 has the same 2 electrodes
    ecg, _ = _windows([[1.0] * 5] * 3)
    x = hr_band_features(ecg, grid, layout="grid", n_bands=4)
    np.testing.assert_allclose(x[0], [60.0, 3.0, 0.5, 0.0, 0.0])


@settings(max_examples=25, deadline=None)
@given(st.floats(0.3, 1.5), st.integers(1, 30))
def test_heart_rate_is_60_over_the_mean_rr_for_any_beat_count(rr, beats):
    ecg, de = _windows([[rr] * beats])
    assert hr_band_features(ecg, de)[0, 0] == pytest.approx(60.0 / rr, rel=1e-5)


def test_window_without_beats_has_heart_rate_zero_not_nan():
    ecg, de = _windows([[], [0.8] * 4])
    x = hr_band_features(ecg, de)
    assert x[0, 0] == 0.0 and np.isfinite(x).all()


def test_baseline_features_names_each_logistic_baseline():
    ecg, de = _windows([[0.8] * 10] * 4, n_channels=14)
    assert baseline_features("logistic", ecg, de).shape == window_features(ecg, de).shape == (4, 7 + 4 * 14)
    assert baseline_features("hr-band", ecg, de).shape == (4, 5)
    assert set(LOGISTIC_BASELINES) == {"logistic", "hr-band"}
    with pytest.raises(ValueError, match="choose one of"):
        baseline_features("svm", ecg, de)


def _hr_only_cohort(seed):
    # 4 subjects x 24 windows, each with its own resting heart rate (per-subject offsets) and
    # 19 electrodes of pure noise (eegmat has 19): the label raises HR by ~9% within every
    # subject, as in eegmat
    rng = np.random.default_rng(seed)
    rows, y, subject = [], [], []
    for s in range(4):
        base = rng.uniform(0.6, 1.0)
        for w in range(24):
            high = int(w < 8)
            rows.append(np.full(12, base * (0.92 if high else 1.0) * rng.normal(1, 0.03)))
            y.append(high)
            subject.append(f"s{s}")
    ecg, _ = _windows(rows)
    return ecg, rng.normal(size=(len(y), 4, 19, 10)).astype(np.float32), np.array(y), np.array(subject)


def test_hr_band_beats_the_per_electrode_logistic_when_only_heart_rate_carries_the_label():
    accuracy = {name: [] for name in LOGISTIC_BASELINES}
    for seed in range(5):
        ecg, de, y, subject = _hr_only_cohort(seed)
        for name in LOGISTIC_BASELINES:
            x = baseline_features(name, ecg, de)
            pred = np.empty_like(y)
            for s in np.unique(subject):  # leave one subject out, per-subject standardised
                test, train = np.flatnonzero(subject == s), np.flatnonzero(subject != s)
                pred[test] = logistic_baseline(x, y, train, test, "subject", subject)[0]
            accuracy[name].append(np.mean(pred == y))
    hr_band, logistic = np.mean(accuracy["hr-band"]), np.mean(accuracy["logistic"])
    assert hr_band >= 0.9
    assert hr_band > logistic + 0.02, accuracy


def test_a_missing_modality_is_imputed_with_the_training_mean():
    """Known answer: the regression on imputed features equals one fitted on features where the
    missing entries were replaced by hand with the mean of the training windows that have them."""
    from maan.training.baselines import present_features

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1 + 4))  # hr-band: heart rate, then 4 band powers
    y = (x[:, 1] + 0.5 * rng.normal(size=40) > 0).astype(int)
    mask = np.ones((40, 2), bool)
    mask[::5, 0] = False  # windows without ECG
    mask[1::7, 1] = False  # windows without EEG
    present = present_features("hr-band", x, mask)
    assert present[:, 0].tolist() == mask[:, 0].tolist() and (present[:, 1:] == mask[:, 1:]).all()
    train, test = np.arange(30), np.arange(30, 40)
    garbage = np.where(present, x, 1e6)  # whatever is stored for a missing modality is never read
    by_hand = x.copy()
    for j in range(x.shape[1]):
        seen = present[train, j]
        by_hand[~present[:, j], j] = x[train][seen, j].mean()
    assert np.allclose(logistic_baseline(garbage, y, train, test, present=present)[1],
                       logistic_baseline(by_hand, y, train, test)[1])
    # per subject: a missing entry is the subject's mean, 0 after standardisation
    subject = np.repeat(["a", "b"], 20)
    assert np.allclose(logistic_baseline(garbage, y, train, test, "subject", subject, present=present)[1],
                       logistic_baseline(standardize_by_group(x, subject, present), y, train, test)[1])
