"""Real-data check on ../shared/data/eegmat (4 subjects, rest `_1` 182 s and arithmetic `_2` 62 s,
EDF+ at 500 Hz, 19 EEG + `EEG A2-A1` + `ECG ECG`), read as the eegmat dataset (and, once, as a
labelled recordings dataset, which must give the same features).

Decisions recorded here:
- Subject02_1.edf has a disconnected ECG lead (noise only): its 18 windows are kept with EEG
  only (modality mask [0, 1]), counted as partial ``ecg_no_beats`` and the trial is listed in
  the manifest's ``partial_trials``. With --require-all-modalities preprocessing stops on it
  with one line naming the file. So every subject keeps exactly 18 + 6 windows.
- Every other window is kept: the default R-peak detector finds every beat of the other
  subjects' ECG (with ``rodrigues2021`` Subject01's arithmetic recording lost one window to a
  missed beat, ``ecg_rr_out_of_range``).
"""
from __future__ import annotations

import numpy as np
import pytest

from maan import load_features, preprocess
from maan.errors import InvalidInputError
from maan.preprocessing.pipeline import PreprocessConfig
from tests.conftest import shared_eegmat

SUBJECTS = ("Subject00", "Subject01", "Subject02", "Subject03")
REST_WINDOWS, TASK_WINDOWS = 18, 6  # 182 s and 62 s in 10-s windows
EEG_CHANNELS = ["EEG Fp1", "EEG Fp2", "EEG F3", "EEG F4", "EEG F7", "EEG F8", "EEG T3", "EEG T4", "EEG C3",
                "EEG C4", "EEG T5", "EEG T6", "EEG P3", "EEG P4", "EEG O1", "EEG O2", "EEG Fz", "EEG Cz", "EEG Pz"]
# (kept rest windows, kept task windows, partial windows by reason) per subject
EXPECTED = {
    "Subject00": (18, 6, {}),
    "Subject01": (18, 6, {}),
    "Subject02": (18, 6, {"ecg_no_beats": 18}),
    "Subject03": (18, 6, {}),
}


@pytest.fixture(scope="module")
def eegmat(tmp_path_factory):
    return shared_eegmat(SUBJECTS), tmp_path_factory.mktemp("eegmat")


@pytest.fixture(scope="module")
def store(eegmat):
    data, root = eegmat
    manifest = preprocess("eegmat", data, root / "features", PreprocessConfig(dataset="eegmat"), jobs=2,
                          progress=False)
    return manifest, load_features(root / "features")


def test_strict_mode_stops_on_the_disconnected_ecg_lead(eegmat, tmp_path):
    data, _ = eegmat
    with pytest.raises(InvalidInputError, match=r"Subject02_1\.edf: trial 1: ECG has no detectable beats"):
        preprocess("eegmat", data, tmp_path / "strict", PreprocessConfig(dataset="eegmat", require_all_modalities=True),
                   progress=False)


def test_the_same_files_as_labelled_recordings_give_the_same_features(eegmat, store, tmp_path):
    data, _ = eegmat
    _, features = store
    labels = tmp_path / "labels.csv"
    labels.write_text("file,subject,task\nSubject00_1.edf,Subject00,0\nSubject00_2.edf,Subject00,1\n")
    preprocess("recordings", data, tmp_path / "f", PreprocessConfig(
        dataset="recordings", labels=str(labels), exclude=("EEG A2-A1",)), progress=False)
    theirs, mine = load_features(tmp_path / "f"), features.subject == "Subject00"
    np.testing.assert_array_equal(theirs.eeg, features.eeg[mine])
    np.testing.assert_array_equal(theirs.ecg, features.ecg[mine])
    np.testing.assert_array_equal(theirs.task, features.task[mine])


def test_window_counts_and_drops_are_exact(store):
    manifest, features = store
    assert manifest["targets"] == ["task"] and list(features.labels) == ["task"]
    assert manifest["config"]["fs"] == 128.0 and manifest["config"]["threshold"] is None
    # subject-info.csv is metadata: Subject00's count quality is 0 (bad), the others' 1
    assert {s: i["Count quality"] for s, i in manifest["subject_info"].items()} == {
        "Subject00": 0, "Subject01": 1, "Subject02": 1, "Subject03": 1}
    assert manifest["subject_info"]["Subject01"]["Number of subtractions"] == 29.35
    for subject, (rest, task, partial) in EXPECTED.items():
        entry = manifest["subjects"][subject]
        assert entry["dropped"] == {} and entry["partial"] == partial, subject
        assert entry["windows"] == REST_WINDOWS + TASK_WINDOWS
        mine = features.subject == subject
        assert (mine & (features.task == 0)).sum() == rest, subject
        assert (mine & (features.task == 1)).sum() == task, subject
        np.testing.assert_array_equal(features.trial[mine], 1 + features.task[mine])
        assert [fp["path"].rsplit("/", 1)[-1] for fp in entry["inputs"]] == [f"{subject}_1.edf", f"{subject}_2.edf"]
    assert manifest["subjects"]["Subject02"]["invalid_trials"] == []
    assert manifest["subjects"]["Subject02"]["partial_trials"] == [
        {"trial": 1, "missing": "ecg", "reason": "ecg_no_beats", "windows": 18}]
    assert manifest["windows"] == sum(r + t for r, t, _ in EXPECTED.values()) == 96
    assert manifest["partial"] == {"ecg_no_beats": 18} and manifest["partial_windows"] == 18
    dead = (features.subject == "Subject02") & (features.task == 0)
    np.testing.assert_array_equal(features.modality_mask, np.column_stack([~dead, np.ones(96, bool)]))
    assert not features.ecg[dead].any()  # no beats: nothing stored as if it were an RR series


def test_shapes_come_from_the_recordings(store):
    manifest, features = store
    assert manifest["eeg_channels"] == EEG_CHANNELS and manifest["ecg_channels"] == ["ECG ECG"]
    assert manifest["eeg_shape"] == [4, 19, 10] and features.eeg.shape == (96, 4, 19, 10)
    assert features.ecg.shape == (96, 1, 32)
    # EEG in µV (as AMIGOS/DREAMER): DE of a few-µV band signal is around 0-5 nats, not log(1e-6)
    assert np.all(np.isfinite(features.eeg)) and -2 < np.median(features.eeg) < 6


def _median_hr(rr_windows) -> float:
    rr = rr_windows[:, 0]
    return float(np.median([60.0 / np.median(r[r > 0]) for r in rr]))


def test_heart_rate_rises_during_arithmetic_for_subject00(store):
    _, features = store
    mine = features.subject == "Subject00"
    rest = _median_hr(features.ecg[mine & (features.task == 0)])
    task = _median_hr(features.ecg[mine & (features.task == 1)])
    # NeuroKit2's default detector gives 76 bpm at rest and 100 bpm in the task (shared/data/README.md)
    assert rest == pytest.approx(76, abs=4) and task == pytest.approx(100, abs=5)
    assert task - rest > 15
