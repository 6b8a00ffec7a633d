import numpy as np
import pytest

from maan.errors import MaanError
from maan.training.splits import PROTOCOLS, groups_for, inner_split, make_splits


def toy(n_subjects=6, trials=8, windows=(3, 9), seed=0):
    """Windows of trials of subjects; labels constant per trial (as in AMIGOS)."""
    rng = np.random.default_rng(seed)
    subject, trial, y = [], [], []
    for s in range(n_subjects):
        for t in range(1, trials + 1):
            n = int(rng.integers(*windows))
            label = int(rng.random() < 0.6)
            subject += [f"P{s:02d}"] * n
            trial += [t] * n
            y += [label] * n
    return np.array(y), np.array(subject), np.array(trial)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_folds_partition_the_windows(protocol):
    y, subject, trial = toy()
    splits = make_splits(protocol, y, subject, trial, folds=4, seed=0)
    seen = np.concatenate([test for _, test in splits])
    assert sorted(seen) == list(range(len(y)))  # every window tested exactly once
    for train, test in splits:
        assert len(np.intersect1d(train, test)) == 0
        assert len(train) + len(test) == len(y)


@pytest.mark.parametrize("protocol,key", [("trial-kfold", "trial"), ("subject-kfold", "subject"), ("loso", "subject")])
def test_no_group_on_both_sides(protocol, key):
    y, subject, trial = toy()
    groups = groups_for(protocol, subject, trial)
    for train, test in make_splits(protocol, y, subject, trial, folds=5, seed=1):
        assert not set(groups[train]) & set(groups[test])
        if key == "subject":
            assert not set(subject[train]) & set(subject[test])
        else:  # trial numbers repeat across subjects: the pair must not be shared
            pairs = lambda idx: set(zip(subject[idx], trial[idx]))  # noqa: E731
            assert not pairs(train) & pairs(test)


def test_segment_kfold_is_stratified():
    y, subject, trial = toy()
    counts = np.bincount(y)
    for _, test in make_splits("segment-kfold", y, subject, trial, folds=10, seed=0):
        fold_counts = np.bincount(y[test], minlength=2)
        # StratifiedKFold: each class split as evenly as possible
        assert np.all(np.abs(fold_counts - counts / 10) <= 1)


def test_group_protocols_are_stratified_as_far_as_groups_allow():
    y, subject, trial = toy(n_subjects=8, trials=10)
    overall = y.mean()
    for _, test in make_splits("trial-kfold", y, subject, trial, folds=5, seed=0):
        assert abs(y[test].mean() - overall) < 0.15


def test_fold_counts_and_determinism():
    y, subject, trial = toy(n_subjects=5)
    assert len(make_splits("subject-kfold", y, subject, trial, folds=10)) == 5  # min(folds, subjects)
    assert len(make_splits("loso", y, subject, trial, folds=3)) == 5
    a = make_splits("trial-kfold", y, subject, trial, folds=4, seed=3)
    b = make_splits("trial-kfold", y, subject, trial, folds=4, seed=3)
    c = make_splits("trial-kfold", y, subject, trial, folds=4, seed=4)
    assert all(np.array_equal(x[1], z[1]) for x, z in zip(a, b))
    assert not all(np.array_equal(x[1], z[1]) for x, z in zip(a, c))


@pytest.mark.parametrize("protocol", ["segment-kfold", "trial-kfold", "subject-kfold"])
def test_inner_validation_comes_from_training_folds_only(protocol):
    y, subject, trial = toy()
    groups = groups_for(protocol, subject, trial)
    for train, test in make_splits(protocol, y, subject, trial, folds=3, seed=0):
        fit, val = inner_split(protocol, train, y, subject, trial, fraction=0.2, seed=0)
        assert set(fit) | set(val) == set(train)
        assert not set(fit) & set(val)
        assert not set(val) & set(test)
        assert len(set(y[fit])) == 2 and len(val) > 0
        if groups is not None:
            assert not set(groups[fit]) & set(groups[val])


def test_user_errors():
    y, subject, trial = toy(n_subjects=1)
    with pytest.raises(MaanError, match="at least 2 subjects"):
        make_splits("subject-kfold", y, subject, trial, folds=5)
    with pytest.raises(MaanError, match="at least 2"):
        make_splits("segment-kfold", y, subject, trial, folds=1)
    with pytest.raises(MaanError, match="single class"):
        make_splits("segment-kfold", np.zeros_like(y), subject, trial, folds=3)
    with pytest.raises(MaanError, match="unknown protocol"):
        make_splits("random", y, subject, trial)


def test_splits_on_a_real_store(features):
    for protocol in ("trial-kfold", "subject-kfold"):
        for train, test in make_splits(protocol, features.arousal, features.subject, features.trial, folds=3):
            g = groups_for(protocol, features.subject, features.trial)
            assert not set(g[train]) & set(g[test])


def test_inner_split_holds_out_windows_when_too_few_groups():
    y, subject, trial = toy(n_subjects=3)
    train = np.flatnonzero(subject != "P02")  # loso fold: 2 training subjects
    fit, val = inner_split("loso", train, y, subject, trial, fraction=0.1, seed=0)
    assert set(fit) | set(val) == set(train) and not set(fit) & set(val)
    assert set(subject[fit]) == set(subject[val]) == {"P00", "P01"}  # windows of both, not one subject each
    assert len(val) == round(0.1 * len(train))
    train = np.arange(len(y))  # 3 groups: a whole subject is held out
    fit, val = inner_split("loso", train, y, subject, trial, fraction=0.1, seed=0)
    assert len(set(subject[val])) == 1 and not set(subject[fit]) & set(subject[val])
