import numpy as np
import pytest

from maan.training.datamodule import WindowDataModule
from maan.features.normalize import Normalizer, Stats, standardize_by_group, informative_train_idx, single_class_subjects


def fake(n=60, seed=0, subjects=3):
    rng = np.random.default_rng(seed)
    ecg = np.zeros((n, 1, 32), np.float32)
    for i in range(n):
        k = int(rng.integers(8, 20))
        ecg[i, 0, :k] = rng.normal(0.8, 0.1, k)
    eeg = (rng.normal(0, 1, (n, 4, 14, 10)) * np.arange(1, 5)[None, :, None, None] + 3).astype(np.float32)
    subject = np.repeat([f"P{i}" for i in range(subjects)], n // subjects)
    return ecg, eeg, subject, rng.integers(0, 2, n)


def test_statistics_come_from_the_training_fold_only():
    ecg, eeg, subject, y = fake()
    fit, val, test = np.arange(0, 40), np.arange(40, 48), np.arange(48, 60)
    dm = WindowDataModule(ecg, eeg, y, subject, fit, val, test)
    dm.setup("fit")
    train = np.arange(48)
    expected = Stats.fit(ecg[train], eeg[train])
    got = dm.normalizer.global_stats
    assert got.n_windows == 48
    np.testing.assert_allclose(got.eeg_mean, expected.eeg_mean, rtol=1e-6)
    assert got.ecg_mean == pytest.approx(expected.ecg_mean)
    # wrecking the test windows changes nothing
    ecg2, eeg2 = ecg.copy(), eeg.copy()
    ecg2[test] *= 50
    eeg2[test] += 1000
    dm2 = WindowDataModule(ecg2, eeg2, y, subject, fit, val, test)
    dm2.setup("fit")
    np.testing.assert_allclose(dm2.normalizer.global_stats.eeg_std, got.eeg_std)
    assert dm2.normalizer.global_stats.ecg_std == pytest.approx(got.ecg_std)


def test_ecg_padding_stays_zero_and_beats_are_standardised():
    ecg, eeg, subject, _ = fake()
    norm = Normalizer("train").fit(ecg, eeg)
    e, g = norm.transform(ecg, eeg)
    assert np.all(e[ecg == 0] == 0)
    beats = e[ecg != 0]
    assert beats.mean() == pytest.approx(0, abs=1e-5) and beats.std() == pytest.approx(1, abs=1e-4)
    # EEG: per (band, channel) over windows and sub-windows
    np.testing.assert_allclose(g.mean(axis=(0, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(g.std(axis=(0, 3)), 1, atol=1e-3)
    assert norm.global_stats.eeg_mean.shape == (4, 14, 1)


def test_subject_mode_uses_each_subjects_own_windows_and_no_labels():
    ecg, eeg, subject, y = fake()
    eeg[subject == "P1"] += 5.0  # a subject offset
    norm = Normalizer("subject").fit(ecg, eeg, subject)
    e, g = norm.transform(ecg, eeg, subject)
    for s in np.unique(subject):
        rows = subject == s
        np.testing.assert_allclose(g[rows].mean(axis=(0, 3)), 0, atol=1e-4)
        assert e[rows][ecg[rows] != 0].mean() == pytest.approx(0, abs=1e-5)
    # labels play no part: the datamodule gives the same inputs for permuted labels
    idx = np.arange(60)
    a = WindowDataModule(ecg, eeg, y, subject, idx[:40], idx[40:50], idx[50:], normalize="subject")
    b = WindowDataModule(ecg, eeg, 1 - y, subject, idx[:40], idx[40:50], idx[50:], normalize="subject")
    a.setup(), b.setup()
    np.testing.assert_array_equal(a.eeg_n, b.eeg_n)


def test_grid_layout_and_round_trip():
    rng = np.random.default_rng(0)
    eeg = np.zeros((30, 40, 9, 9), np.float32)
    eeg[:, :, 1, 3] = rng.normal(2, 3, (30, 40))
    ecg = rng.random((30, 1, 32)).astype(np.float32)
    norm = Normalizer("train", layout="grid", n_bands=4).fit(ecg, eeg)
    _, g = norm.transform(ecg, eeg)
    assert g.shape == eeg.shape and np.all(g[:, :, 0, 0] == 0)
    band0 = g.reshape(30, 4, 10, 9, 9)[:, 0, :, 1, 3]
    assert band0.mean() == pytest.approx(0, abs=1e-5)
    again = Normalizer.from_dict(norm.to_dict())
    np.testing.assert_allclose(again.transform(ecg, eeg)[1], g)


def test_standardize_by_group():
    x = np.array([[1.0, 10], [3, 30], [100, 5], [102, 7]])
    out = standardize_by_group(x, np.array(["a", "a", "b", "b"]))
    np.testing.assert_allclose(out, [[-1, -1], [1, 1], [-1, -1], [1, 1]])


def test_single_class_subjects_are_left_out_of_training_under_subject_normalisation():
    y = np.array([0, 1, 0, 1, 1, 1, 0, 0, 1])
    subject = np.array(["a", "a", "b", "b", "c", "c", "d", "d", "d"])
    train = np.arange(8)
    # c: every window in training, one class -> left out. d: one class in training, but its
    # last window is a test window (as in trial-kfold) that its standardisation also sees -> kept
    assert single_class_subjects(train, y, subject) == ["c"]
    keep, left_out = informative_train_idx(train, y, subject, "subject")
    assert left_out == ["c"]
    np.testing.assert_array_equal(keep, [0, 1, 2, 3, 6, 7])
    # the test label of d is not read: flipping it changes nothing
    y_flipped = y.copy()
    y_flipped[8] = 0
    assert informative_train_idx(train, y_flipped, subject, "subject")[1] == ["c"]
    # train normalisation keeps every window; so does a fold that would be left with one class
    keep, left_out = informative_train_idx(train, y, subject, "train")
    assert left_out == [] and len(keep) == 8
    keep, left_out = informative_train_idx(np.array([4, 5]), y, subject, "subject")
    assert left_out == [] and len(keep) == 2


def test_a_missing_modality_sets_no_statistics_and_is_zero_after_normalisation():
    rng = np.random.default_rng(0)
    ecg = np.abs(rng.normal(0.8, 0.1, (10, 1, 32))).astype(np.float32)
    eeg = rng.normal(2.0, 0.5, (10, 4, 14, 10)).astype(np.float32)
    mask = np.ones((10, 2), bool)
    mask[:3, 1] = False  # three windows without EEG: garbage stored there
    eeg[:3] = 1e6
    mask[3:5, 0] = False
    ecg[3:5] = 0.0  # no beats
    stats = Stats.fit(ecg, eeg, mask=mask)
    np.testing.assert_allclose(stats.eeg_mean, eeg[3:].mean(axis=(0, 3), keepdims=True)[0], rtol=1e-5)
    np.testing.assert_allclose(stats.ecg_mean, ecg[ecg != 0].mean(), rtol=1e-5)
    ecg_n, eeg_n = Normalizer("train").fit(ecg, eeg, mask=mask).transform(ecg, eeg, mask=mask)
    assert not eeg_n[:3].any() and not ecg_n[3:5].any() and np.isfinite(eeg_n).all()
    assert abs(eeg_n[3:].mean()) < 1e-4  # the valid windows are centred
    # a subject without any valid EEG window: nothing to standardise, every EEG input is 0
    mask[:, 1] = False
    ecg_n, eeg_n = Normalizer("subject").fit(ecg, eeg, np.zeros(10), mask=mask).transform(ecg, eeg, np.zeros(10), mask)
    assert not eeg_n.any() and np.isfinite(ecg_n).all()
