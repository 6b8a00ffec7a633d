"""Real-data check on eegmat (PhysioNet "EEG During Mental Arithmetic Tasks", EEG + ECG).

Each subject has a rest recording ``SubjectNN_1.edf`` and a mental-arithmetic recording
``SubjectNN_2.edf``; the target ``task`` is 1 for ``_2``. The recordings are read as the
``eegmat`` dataset (:mod:`maan.datasets.eegmat`; files whose ECG lead is unusable keep their EEG
windows), then cross-validated subject-held-out (one subject per fold, ``loso``) with the
cross-subject recipe, next to the majority, logistic and hr-band baselines on the same folds.
With a handful of subjects the numbers are noisy: they are reported, not asserted.

Command-line equivalent (DATA: an eegmat folder, e.g. from ``maan fetch eegmat --out DATA``)::

    maan preprocess --dataset eegmat --data DATA --skip-invalid --out features
    maan cv --features features --target task --protocol loso --recipe cross-subject --out cv-task
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from maan.datasets.eegmat import TARGET, eegmat_files
from maan.errors import MaanError

#: training settings of the real-data run in ``maan demo`` (and docs/model.md)
REAL_DATA_PRESET = {"epochs": 30, "patience": 5}


def subjects(data) -> list[str]:
    """Subjects with both the rest (_1) and the task (_2) recording, sorted."""
    found: dict[str, set] = {}
    for _, subject, task in eegmat_files(data):
        found.setdefault(subject, set()).add(task)
    return sorted(s for s, tasks in found.items() if tasks == {0, 1})


def preprocess_eegmat(data, out, jobs: int = 2, progress: bool = False, overwrite: bool = False, **config) -> dict:
    """The eegmat store ``out`` (built or resumed; unreadable files skipped and listed); returns
    its manifest. ``config``: more PreprocessConfig fields."""
    from maan.preprocessing.pipeline import EEGMAT, PreprocessConfig, preprocess

    return preprocess(EEGMAT, data, out, PreprocessConfig(dataset=EEGMAT, **config), jobs=jobs, skip_invalid=True,
                      overwrite=overwrite, progress=progress)


def run_eegmat_cv(data, out, *, models=("maan",), recipe: str = "cross-subject", config=None, seed: int = 0,
                  jobs: int = 2, progress: bool = False, log=None, overwrite: bool = False) -> dict:
    """Preprocess eegmat into ``out/features`` and run the subject-held-out CV into ``out/cv-task``."""
    from maan.evaluation.cv import run_cv

    out = Path(out)
    manifest = preprocess_eegmat(data, out / "features", jobs=jobs, progress=progress, overwrite=overwrite)
    return run_cv(out / "features", TARGET, out / "cv-task", models=models, protocol="loso",
                  folds=manifest["n_subjects"], seed=seed, recipe=recipe,
                  config=dict(REAL_DATA_PRESET if config is None else config),
                  progress=progress, log=log, overwrite=overwrite)


def pooled_balanced_accuracy(per_fold: list[dict]) -> float | None:
    """Balanced accuracy of all held-out windows together (confusion matrices summed over folds)."""
    cm = np.zeros((2, 2), dtype=np.int64)
    for fold in per_fold:
        cm += np.asarray(fold["confusion"], dtype=np.int64)
    recalls = [cm[i, i] / cm[i].sum() for i in (0, 1) if cm[i].sum()]
    return float(np.mean(recalls)) if len(recalls) == 2 else None


def format_real_data(results: dict, subject_names=None) -> str:
    """The printable section: per held-out subject balanced accuracy of every model and baseline.

    Rows are named by ``subject_names``, else by the held-out subjects read from the run's feature
    store (``results["features"]``), else "fold N" when that store is gone.
    """
    models = list(results["models"])
    names = subject_names or _stored_fold_subjects(results) or [f"fold {k + 1}" for k in range(results["folds"])]
    width = max(len(n) for n in names + ["pooled windows", "mean over subjects"]) + 2
    lines = [
        "REAL DATA (eegmat: EEG + ECG, rest vs mental arithmetic; target task = 1 for the _2 recording)",
        f"  {results['n_subjects']} subjects, {results['n_windows']} windows "
        f"({results['class_balance']['high_fraction']:.0%} task), subject-held-out (loso), "
        f"recipe {results['recipe']}, {results['training']['epochs']} epochs max",
        "  balanced accuracy of the held-out subject (a subject with a single class left: that class's recall)",
        "  " + "subject".ljust(width) + "".join(m.rjust(10) for m in models),
    ]
    for k, name in enumerate(names):
        cells = []
        for m in models:
            v = results["models"][m]["per_fold"][k].get("balanced_accuracy")
            cells.append(("n/a" if v is None else f"{v:.2f}").rjust(10))
        lines.append("  " + name.ljust(width) + "".join(cells))
    mean = [results["models"][m]["metrics"].get("balanced_accuracy", {}) for m in models]
    lines.append("  " + "mean over subjects".ljust(width) + "".join(
        (f"{x['mean']:.2f}" if x and x.get("mean") is not None else "n/a").rjust(10) for x in mean))
    pooled = [pooled_balanced_accuracy(results["models"][m]["per_fold"]) for m in models]
    lines.append("  " + "pooled windows".ljust(width) + "".join(
        ("n/a" if v is None else f"{v:.2f}").rjust(10) for v in pooled))
    lines += format_by_modalities(results, width)
    left_out = sorted({s for fold in results["class_balance"].get("per_fold", [])
                       for s in fold.get("left_out_subjects", [])})
    if left_out:
        lines.append(f"  left out of training (a single class, which per-subject standardisation cannot use): "
                     f"{', '.join(left_out)}")
    choices = [f.get("rr_skip") for f in results["models"].get("maan", {}).get("per_fold", [])]
    if any(choices):  # what the recipe chose from each fold's training labels
        lines.append("  maan's ECG skip per fold (chosen from the training labels): " + ", ".join(str(c) for c in choices))
    lines.append(f"  {results['n_subjects']} subjects: noisy, not a benchmark (hr-band: logistic regression on the "
                 "mean heart rate and mean log band power; docs/model.md has the seed-to-seed spread)")
    return "\n".join(lines)


def format_by_modalities(results: dict, width: int = 20) -> list[str]:
    """Lines of pooled balanced accuracy per kind of window (complete, ECG only, EEG only) for
    every model of a CV result; none when every window is complete."""
    counts = results.get("modality_windows", {})
    if set(counts) <= {"ecg+eeg"}:
        return []
    models = list(results["models"])
    lines = ["  by kind of window (all folds pooled; a kind holding one class: that class's recall)"]
    for kind in ("ecg+eeg", "ecg", "eeg"):
        if kind not in counts:
            continue
        label = {"ecg+eeg": "complete", "ecg": "ECG only", "eeg": "EEG only"}[kind] + f" ({counts[kind]})"
        cells = []
        for m in models:
            v = results["models"][m].get("by_modalities", {}).get(kind, {}).get("balanced_accuracy")
            cells.append(("n/a" if v is None else f"{v:.2f}").rjust(10))
        lines.append("  " + label.ljust(width) + "".join(cells))
    return lines


def _stored_fold_subjects(results: dict) -> list[str] | None:
    try:
        return fold_subjects(results["features"], results["folds"])
    except (MaanError, KeyError, TypeError, OSError):  # a moved, deleted or in-memory store: "fold N"
        return None


def fold_subjects(features_dir, n_folds: int) -> list[str]:
    """The held-out subject of each loso fold (fold order of maan.training.splits)."""
    from maan.preprocessing.store import load_features
    from maan.training.splits import make_splits

    f = load_features(features_dir)
    y = np.asarray(f.labels[TARGET]).astype(int)
    splits = make_splits("loso", y, f.subject, f.trial, n_folds, 0)
    return [",".join(sorted({str(s) for s in f.subject[test]})) for _, test in splits]


def demo_real_data(data_dir, out_dir, progress: bool = True, config=None, overwrite: bool = False) -> str:
    """``maan demo``'s real-data section: the eegmat CV on the folder ``data_dir``."""
    data = Path(data_dir)
    if not data.is_dir() or not subjects(data):
        raise MaanError(f"{data}: not an eegmat folder (no SubjectNN_1.edf / SubjectNN_2.edf pairs)")
    out = Path(out_dir)
    results = run_eegmat_cv(data, out, config=config, progress=progress, log=None, overwrite=overwrite)
    return format_real_data(results) + f"\n  (results: {out / 'cv-task' / 'results.json'})"
