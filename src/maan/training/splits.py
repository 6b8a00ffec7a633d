"""Cross-validation protocols (outer folds) and the inner validation split, via scikit-learn.

=================  ==========================================================  ======================
protocol           what is held out together                                   scikit-learn
=================  ==========================================================  ======================
``segment-kfold``  single windows, stratified on the label (the paper's 10-fold) ``StratifiedKFold``
``trial-kfold``    all windows of a trial (subject, trial) go to one side       ``StratifiedGroupKFold``
``subject-kfold``  all windows of a subject go to one side                       ``StratifiedGroupKFold``
``loso``           one subject per fold (leave-one-subject-out)                  ``LeaveOneGroupOut``
=================  ==========================================================  ======================

Every protocol shuffles with ``seed`` (``loso`` has nothing to shuffle), so the same seed gives
the same folds. ``subject-kfold`` uses ``min(folds, n_subjects)`` folds; ``loso`` one per subject.

The inner validation split (early stopping) is taken from the training indices only and
follows the grouping of the protocol: held-out trials for ``trial-kfold``, held-out subjects
for ``subject-kfold``/``loso``, single windows for ``segment-kfold``. A training fold with fewer
than ``MIN_INNER_GROUPS`` groups (e.g. loso on 3 subjects) holds out single windows instead:
holding out one of two subjects would leave one to fit on.
"""
from __future__ import annotations

import numpy as np

from maan.errors import MaanError

PROTOCOLS = ("segment-kfold", "trial-kfold", "subject-kfold", "loso")
#: The inner validation split holds out whole groups only when the training fold has at least
#: this many; with 2 it would fit on one subject (measured in benchmarks/tiny_cohorts.py;
#: docs/decisions.md, "Single-class subjects and the inner split").
MIN_INNER_GROUPS = 3
DEFAULT_PROTOCOL = "segment-kfold"


def groups_for(protocol: str, subject: np.ndarray, trial: np.ndarray) -> np.ndarray | None:
    """The group label of each window under ``protocol`` (None for segment-kfold)."""
    if protocol == "segment-kfold":
        return None
    if protocol == "trial-kfold":
        # trial numbers restart at 1 for every subject: the group is (subject, trial)
        return np.char.add(np.char.add(np.asarray(subject).astype(str), "/"), np.asarray(trial).astype(str))
    if protocol in ("subject-kfold", "loso"):
        return np.asarray(subject).astype(str)
    raise MaanError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def n_folds_for(protocol: str, folds: int, subject: np.ndarray) -> int:
    """The number of folds ``protocol`` actually uses for ``folds`` requested."""
    n_subjects = len(np.unique(subject))
    if protocol == "loso":
        return n_subjects
    if protocol == "subject-kfold":
        return min(folds, n_subjects)
    return folds


def make_splits(protocol: str, y, subject, trial, folds: int = 10, seed: int = 0
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Outer folds: a list of (train indices, test indices), sorted index arrays."""
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y)
    n = len(y)
    groups = groups_for(protocol, subject, trial)
    if folds < 2 and protocol != "loso":
        raise MaanError(f"--folds must be at least 2, got {folds}")
    k = n_folds_for(protocol, folds, subject)
    if k < 2:
        raise MaanError(f"{protocol} needs at least 2 subjects, the store has {len(np.unique(subject))}")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise MaanError(f"the target has a single class ({classes.tolist()}) in all {n} windows; nothing to learn")
    x = np.zeros((n, 1))
    if protocol == "segment-kfold":
        if counts.min() < k:
            raise MaanError(f"segment-kfold with {k} folds needs at least {k} windows of each class, "
                            f"the minority class has {counts.min()}")
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(x, y)
    elif protocol == "loso":
        splits = LeaveOneGroupOut().split(x, y, groups)
    else:
        n_groups = len(np.unique(groups))
        if n_groups < k:
            raise MaanError(f"{protocol} with {k} folds needs at least {k} groups, the store has {n_groups}")
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(x, y, groups)
    out = []
    for train, test in splits:
        out.append((np.sort(train), np.sort(test)))
    return out


def inner_split(protocol: str, train_idx: np.ndarray, y, subject, trial, fraction: float = 0.1,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split training indices into (fit, validation) for early stopping, never touching test.

    Roughly ``fraction`` of the training windows (or of its groups) go to validation, grouped
    like ``protocol``; stratified on the label where the groups allow. Falls back to a
    window-level split when there are fewer than ``MIN_INNER_GROUPS`` groups.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit, ShuffleSplit

    train_idx = np.asarray(train_idx)
    if not 0.0 < fraction < 1.0:
        raise MaanError(f"validation fraction must be in (0, 1), got {fraction}")
    y_train = np.asarray(y)[train_idx]
    x = np.zeros((len(train_idx), 1))
    groups = groups_for(protocol, subject, trial)
    if groups is not None:
        g_train = groups[train_idx]
        n_groups = len(np.unique(g_train))
        k = min(max(2, int(round(1.0 / fraction))), n_groups)
        if n_groups >= MIN_INNER_GROUPS:
            fit, val = next(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(x, y_train, g_train))
            if len(np.unique(y_train[fit])) == 2 or len(np.unique(y_train)) < 2:
                return np.sort(train_idx[fit]), np.sort(train_idx[val])
    n_val = max(1, int(round(fraction * len(train_idx))))
    _, counts = np.unique(y_train, return_counts=True)
    if len(counts) == 2 and counts.min() >= 2 and n_val >= 2:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    else:
        splitter = ShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    fit, val = next(splitter.split(x, y_train))
    return np.sort(train_idx[fit]), np.sort(train_idx[val])


def class_balance(y) -> dict:
    """Count and fraction of high (1) and low (0) windows."""
    y = np.asarray(y).astype(int)
    n = int(len(y))
    pos = int(y.sum())
    return {"n": n, "high": pos, "low": n - pos, "high_fraction": (pos / n) if n else None}
