"""Subject-held-out `maan cv --target task --normalize subject` on the real eegmat recordings.

Four subjects make the balanced accuracy noisy (docs/model.md reports it): this test only
checks that the run completes, reports balanced accuracy for maan and both baselines, and that
every fold holds out exactly one whole subject.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from maan import load_features
from tests.conftest import shared_file


FLAT_EEG = "Subject03_2.edf"  # the task recording whose EEG this test replaces by a flat line


def _eegmat_with_a_flat_eeg(folder):
    """eegmat (its Subject02_1 has a dead ECG lead) with the EEG of FLAT_EEG replaced by a constant."""
    import mne

    folder.mkdir()
    for s in range(4):
        for p in (1, 2):
            source = shared_file("eegmat", f"Subject{s:02d}_{p}.edf")
            if source.name != FLAT_EEG:
                (folder / source.name).symlink_to(source)
    raw = mne.io.read_raw_edf(shared_file("eegmat", FLAT_EEG), preload=True, verbose="error")
    raw._data[[i for i, name in enumerate(raw.ch_names) if name.startswith("EEG ")]] = 1e-6  # the ECG too is EEG-typed
    mne.export.export_raw(folder / FLAT_EEG, raw, fmt="edf", verbose="error")
    return folder


@pytest.mark.slow
def test_subject_held_out_cv_on_eegmat_reports_maan_and_baselines(tmp_path):
    from maan.evaluation.realdata import fold_subjects, format_real_data, run_eegmat_cv

    data = _eegmat_with_a_flat_eeg(tmp_path / "eegmat")
    results = run_eegmat_cv(data, tmp_path, config={"epochs": 2, "patience": 1})
    saved = json.loads((tmp_path / "cv-task" / "results.json").read_text())
    assert saved["protocol"] == "loso" and saved["normalize"] == "subject" and saved["target"] == "task"
    assert saved["folds"] == 4 and saved["n_subjects"] == 4 and saved["dataset"] == "eegmat"
    assert not saved["synthetic"]
    for model in ("maan", "majority", "logistic", "hr-band"):
        entry = saved["models"][model]
        assert 0.0 <= entry["metrics"]["balanced_accuracy"]["mean"] <= 1.0
        assert all(0.0 <= f["balanced_accuracy"] <= 1.0 for f in entry["per_fold"])
    features = load_features(tmp_path / "features")
    from maan.training.splits import make_splits

    y = np.asarray(features.labels["task"]).astype(int)
    splits = make_splits("loso", y, features.subject, features.trial, 4, 0)
    seen = []
    for train, test in splits:
        held_out = set(features.subject[test])
        assert len(held_out) == 1 and not held_out & set(features.subject[train])
        seen += held_out
    assert sorted(seen) == [f"Subject{s:02d}" for s in range(4)]
    assert fold_subjects(tmp_path / "features", 4) == [str(s) for s in seen]
    assert [f["n_test"] for f in saved["models"]["maan"]["per_fold"]] == [len(t) for _, t in splits]
    text = format_real_data(results, seen)
    assert text.startswith("REAL DATA") and "Subject02" in text and "logistic" in text
    # without names, the rows are named from the run's store; with the store gone, by fold number
    assert format_real_data(results) == text
    assert "fold 1" in format_real_data({**results, "features": str(tmp_path / "moved")})
    # Subject02's rest recording has no usable ECG and Subject03's task recording a flat EEG: their
    # windows are kept with one modality, trained on and predicted, and reported apart
    manifest = json.loads((tmp_path / "features" / "manifest.json").read_text())
    assert manifest["partial"] == {"ecg_no_beats": 18, "eeg_flat": 6} and manifest["dropped"] == {}
    assert saved["modality_windows"] == {"ecg+eeg": 72, "eeg": 18, "ecg": 6} and saved["n_windows"] == 96
    for model in ("maan", "majority", "logistic", "hr-band"):
        pooled = saved["models"][model]["by_modalities"]
        assert {k: pooled[k]["n"] for k in pooled} == {"all": 96, "ecg+eeg": 72, "eeg": 18, "ecg": 6}, model
        assert all(0.0 <= pooled[k]["balanced_accuracy"] <= 1.0 for k in pooled)
    held_out_02 = seen.index("Subject02")
    fold = saved["models"]["maan"]["per_fold"][held_out_02]["by_modalities"]
    assert fold["eeg"]["n"] == 18 and fold["ecg+eeg"]["n"] == 6 and fold["all"]["n"] == 24
    assert saved["models"]["maan"]["per_fold"][held_out_02]["n_without_input"] == 0
    assert "EEG only (18)" in text and "ECG only (6)" in text and "complete (72)" in text
    # every subject now has both classes, so --normalize subject leaves nobody out of training
    left_out = [b["left_out_subjects"] for b in saved["class_balance"]["per_fold"]]
    assert left_out == [[]] * 4 and "left out of training" not in text
    # heart rate separates rest from arithmetic in the training subjects of every fold (mean
    # within-subject Fisher z -1.2 to -1.9 against a threshold of 0.55), so the cross-subject recipe picks beats
    assert [f["rr_skip"] for f in saved["models"]["maan"]["per_fold"]] == ["beats"] * 4
    assert "maan's ECG skip per fold (chosen from the training labels): beats, beats, beats, beats" in text
