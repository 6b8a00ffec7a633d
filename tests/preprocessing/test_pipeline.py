"""Pipeline on hand-made records: exact window counts, identical spans, bad trials, resume."""
import json

import numpy as np
import pytest

from maan import load_features, preprocess
from maan.datasets import READERS
from maan.datasets.record import Record, Signal, SubjectSource
from maan.errors import ConfigMismatchError, InvalidInputError
from maan.preprocessing.pipeline import PreprocessConfig, extract_trial

EEG_CHANNELS = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4")


def ecg_signal(seconds, fs, heart_rate=70, seed=0):
    import neurokit2 as nk

    ecg = nk.ecg_simulate(duration=int(np.ceil(seconds)) + 1, sampling_rate=int(fs), heart_rate=heart_rate,
                          method="simple", noise=0.02, random_state=seed)
    return ecg[: int(round(seconds * fs))]


def make_record(seconds=65.0, ecg_fs=128.0, eeg_fs=128.0, trial=1, seed=0, arousal=7.0, valence=3.0, source="fake.mat"):
    rng = np.random.default_rng(seed)
    ecg = np.stack([ecg_signal(seconds, ecg_fs, seed=seed), -ecg_signal(seconds, ecg_fs, seed=seed + 1)])
    eeg = 10 * rng.standard_normal((14, int(seconds * eeg_fs)))
    return Record(subject="P01", trial=trial, ecg=Signal(ecg, ecg_fs, ("ECG Right", "ECG Left")),
                  eeg=Signal(eeg, eeg_fs, EEG_CHANNELS), ratings={"arousal": arousal, "valence": valence},
                  source=source)


def test_windows_cover_identical_spans_at_different_rates():
    record = make_record(seconds=65.0, ecg_fs=256.0)  # DREAMER rates
    out = extract_trial(record, PreprocessConfig(dataset="dreamer"))
    np.testing.assert_allclose(out.window_start, [0, 10, 20, 30, 40, 50])
    assert out.ecg.shape == (6, 1, 32) and out.eeg.shape == (6, 4, 14, 10)
    assert out.dropped == {}
    rr = out.ecg[0, 0]
    beats = rr[rr > 0]
    assert 60 / beats.mean() == pytest.approx(70, abs=3)


def test_nan_stretches_drop_exactly_the_windows_they_touch():
    record = make_record(seconds=62.0)
    record.eeg.data[:, int(25.5 * 128):int(26 * 128)] = np.nan  # window 2 (20-30 s)
    record.ecg.data[:, int(41 * 128):int(52 * 128)] = np.nan  # windows 4 and 5 on both leads
    out = extract_trial(record, PreprocessConfig(dataset="amigos", require_all_modalities=True))
    np.testing.assert_allclose(out.window_start, [0, 10, 30])
    assert out.dropped == {"nan": 3}
    # by default a window keeps the modality that is valid, and its mask says which
    out = extract_trial(record, PreprocessConfig(dataset="amigos"))
    np.testing.assert_allclose(out.window_start, [0, 10, 20, 30, 40, 50])
    np.testing.assert_array_equal(out.modality_mask, [[1, 1], [1, 1], [1, 0], [1, 1], [0, 1], [0, 1]])
    assert out.dropped == {} and out.partial == {"eeg_nan": 1, "ecg_nan": 2}
    assert not out.eeg[2].any() and not out.ecg[4:].any()  # a missing modality's features are zeros


def test_a_window_with_neither_modality_is_dropped():
    record = make_record(seconds=30.0)
    record.eeg.data[:, int(12 * 128):int(13 * 128)] = np.nan
    record.ecg.data[:, int(15 * 128):int(16 * 128)] = np.nan
    out = extract_trial(record, PreprocessConfig(dataset="amigos"))
    np.testing.assert_allclose(out.window_start, [0, 20])
    assert out.dropped == {"nan": 1} and out.partial == {}


def test_a_dead_ecg_lead_falls_back_to_the_other():
    record = make_record(seconds=40.0)
    record.ecg.data[0] = 0.0
    out = extract_trial(record, PreprocessConfig(dataset="amigos"))
    assert len(out.window_start) == 4 and out.dropped == {}


def test_flat_eeg_channel_is_counted():
    record = make_record(seconds=30.0)
    record.eeg.data[3, 1280:2560] = 0.0
    out = extract_trial(record, PreprocessConfig(dataset="amigos", require_all_modalities=True))
    assert out.dropped == {"eeg_flat": 1} and len(out.window_start) == 2
    out = extract_trial(record, PreprocessConfig(dataset="amigos"))
    assert out.dropped == {} and out.partial == {"eeg_flat": 1} and len(out.window_start) == 3
    np.testing.assert_array_equal(out.modality_mask[:, 1], [True, False, True])


def test_an_eeg_whose_every_channel_is_flat_is_flat():
    record = make_record(seconds=30.0)
    record.eeg.data[:, 1280:] = 1.0 + 1e-9 * np.arange(record.eeg.data.shape[1] - 1280)  # µV: a lost EEG
    out = extract_trial(record, PreprocessConfig(dataset="amigos"))
    assert out.partial == {"eeg_flat": 2} and out.modality_mask[:, 1].tolist() == [True, False, False]


def test_topographic_layout():
    out = extract_trial(make_record(seconds=20.0), PreprocessConfig(dataset="amigos", layout="grid"))
    assert out.eeg.shape == (2, 40, 9, 9)
    assert np.count_nonzero(out.eeg[0, 0]) == 14


# -- the whole pipeline through a registered fake dataset ---------------------------------------
class FakeDataset:
    """Three subjects of two trials; ``broken`` names subjects whose load raises."""

    def __init__(self, root, broken=(), bad_trial=None):
        self.root, self.broken, self.bad_trial, self.loads = root, set(broken), bad_trial, []
        self.files = {}
        for i in range(1, 4):
            path = root / f"S{i}.dat"
            path.write_bytes(bytes([i]) * 10)
            self.files[f"S{i}"] = path

    def list(self, data):
        def loader(name):
            def load():
                self.loads.append(name)
                if name in self.broken:
                    raise InvalidInputError(self.files[name], "not a MAT file")
                records = [make_record(35.0, trial=1, seed=1, arousal=8, source=str(self.files[name])),
                           make_record(25.0, trial=2, seed=2, arousal=2, valence=9, source=str(self.files[name]))]
                if name == self.bad_trial:
                    records[1].ecg.data[:] = 0.0
                for r in records:
                    r.subject = name
                return records
            return load
        return [SubjectSource(name, str(path), loader(name)) for name, path in self.files.items()]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    def make(**kw):
        dataset = FakeDataset(tmp_path, **kw)
        monkeypatch.setitem(READERS, "fake", dataset.list)
        return dataset
    return make


def test_store_counts_labels_and_manifest(fake, tmp_path):
    fake()
    manifest = preprocess("fake", tmp_path, tmp_path / "out", progress=False)
    assert manifest["windows"] == 3 * (3 + 2) and manifest["dropped"] == {}
    features = load_features(tmp_path / "out")
    assert features.ecg.shape == (15, 1, 32) and features.eeg.shape == (15, 4, 14, 10)
    np.testing.assert_array_equal(features.arousal, np.tile([1, 1, 1, 0, 0], 3))
    np.testing.assert_array_equal(features.valence, np.tile([0, 0, 0, 1, 1], 3))
    np.testing.assert_array_equal(features.trial, np.tile([1, 1, 1, 2, 2], 3))
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk["subjects"]["S1"]["inputs"][0]["sha256"]
    assert on_disk["config"]["rr_length"] == 32 and on_disk["synthetic"] is False


def test_bad_file_stops_keeps_finished_subjects_and_rerun_resumes(fake, tmp_path):
    dataset = fake(broken={"S2"})
    with pytest.raises(InvalidInputError, match="S2.dat: not a MAT file"):
        preprocess("fake", tmp_path, tmp_path / "out", progress=False)
    assert list(json.loads((tmp_path / "out" / "manifest.json").read_text())["subjects"]) == ["S1"]
    dataset.broken.clear()
    dataset.loads.clear()
    manifest = preprocess("fake", tmp_path, tmp_path / "out", progress=False)
    assert dataset.loads == ["S2", "S3"]  # S1 was not redone
    assert manifest["n_subjects"] == 3


def test_with_two_jobs_a_bad_file_keeps_the_other_subjects_finished_work(fake, tmp_path):
    """S1 and S2 run at once; S2 fails: S1's finished work (and S3's, when it had already been
    handed to a worker) is saved before the error is raised, and the rerun completes the store."""
    dataset = fake(broken={"S2"})
    with pytest.raises(InvalidInputError, match="S2.dat: not a MAT file"):
        preprocess("fake", tmp_path, tmp_path / "out", jobs=2, progress=False)
    saved = set(json.loads((tmp_path / "out" / "manifest.json").read_text())["subjects"])
    assert "S1" in saved and "S2" not in saved
    dataset.broken.clear()
    assert preprocess("fake", tmp_path, tmp_path / "out", jobs=2, progress=False)["n_subjects"] == 3


def test_skip_invalid_lists_the_file(fake, tmp_path):
    fake(broken={"S3"})
    manifest = preprocess("fake", tmp_path, tmp_path / "out", skip_invalid=True, progress=False)
    assert manifest["n_subjects"] == 2
    assert manifest["invalid_inputs"][0]["path"].endswith("S3.dat")


def test_trial_without_beats_is_bad_input_unless_skipped(fake, tmp_path):
    """With --require-all-modalities a trial without beats is a bad input (today's strict mode)."""
    fake(bad_trial="S1")
    strict = PreprocessConfig(dataset="fake", require_all_modalities=True)
    with pytest.raises(InvalidInputError, match="trial 2: ECG has no detectable beats"):
        preprocess("fake", tmp_path, tmp_path / "a", strict, progress=False)
    manifest = preprocess("fake", tmp_path, tmp_path / "b", strict, skip_invalid=True, progress=False)
    assert manifest["subjects"]["S1"]["invalid_trials"] == [{"trial": 2, "reason": "ECG has no detectable beats (flat or absent lead)"}]
    assert manifest["dropped"] == {"ecg_no_beats": 2}


def test_trial_without_beats_is_a_partial_recording(fake, tmp_path):
    """By default its windows are kept with EEG only, counted and listed in the manifest."""
    fake(bad_trial="S1")
    manifest = preprocess("fake", tmp_path, tmp_path / "b", progress=False)
    entry = manifest["subjects"]["S1"]
    assert entry["invalid_trials"] == [] and manifest["dropped"] == {}
    assert entry["partial_trials"] == [{"trial": 2, "missing": "ecg", "reason": "ecg_no_beats", "windows": 2}]
    assert manifest["partial"] == {"ecg_no_beats": 2} and manifest["partial_windows"] == 2
    features = load_features(tmp_path / "b")
    assert features.modality_mask.shape == (len(features), 2)
    partial = ~features.modality_mask[:, 0]
    assert partial.sum() == 2 and set(features.trial[partial]) == {2} and set(features.subject[partial]) == {"S1"}
    assert features.modality_mask[:, 1].all() and not features.ecg[partial].any()


def test_parallel_equals_serial(fake, tmp_path):
    fake()
    preprocess("fake", tmp_path, tmp_path / "serial", jobs=1, progress=False)
    preprocess("fake", tmp_path, tmp_path / "parallel", jobs=2, progress=False)
    a, b = load_features(tmp_path / "serial"), load_features(tmp_path / "parallel")
    np.testing.assert_array_equal(a.eeg, b.eeg)
    np.testing.assert_array_equal(a.ecg, b.ecg)


def test_changed_config_is_detected(fake, tmp_path):
    fake()
    preprocess("fake", tmp_path, tmp_path / "out", progress=False)
    with pytest.raises(ConfigMismatchError, match="subwindow_seconds"):
        preprocess("fake", tmp_path, tmp_path / "out", PreprocessConfig(dataset="fake", subwindow_seconds=2.0),
                   progress=False)


@pytest.mark.parametrize("value, reason", [(1e39, "eeg_not_finite"), (np.inf, "eeg_not_finite"),
                                           (1e12, "eeg_out_of_range")])
def test_garbage_eeg_is_dropped_and_counted_never_zero_filled(value, reason):
    """Values that overflow float32 or give a DE far outside any EEG: the windows they touch are
    dropped under their own reason (a huge spike's filter ringing may reach the next window),
    windows away from it are kept, with finite, in-range features."""
    from maan.config import DE_RANGE_NATS

    record = make_record(seconds=60.0)
    record.eeg.data[2, int(25 * 128):int(25 * 128) + 10] = value  # window 3 (20-30 s)
    out = extract_trial(record, PreprocessConfig(dataset="amigos", require_all_modalities=True))
    assert set(out.dropped) == {reason} and 1 <= out.dropped[reason] <= 3
    assert {0.0, 50.0} <= set(out.window_start) and 20.0 not in set(out.window_start)
    assert np.isfinite(out.eeg).all() and DE_RANGE_NATS[0] < out.eeg.min() and out.eeg.max() < DE_RANGE_NATS[1]
    # by default those windows keep their ECG; their EEG is masked (zeros), never garbage
    out = extract_trial(record, PreprocessConfig(dataset="amigos"))
    bad = ~out.modality_mask[:, 1]
    assert set(out.partial) == {reason} and 1 <= bad.sum() <= 3 and out.modality_mask[:, 0].all()
    assert not out.eeg[bad].any()
    good = out.eeg[~bad]
    assert np.isfinite(good).all() and DE_RANGE_NATS[0] < good.min() and good.max() < DE_RANGE_NATS[1]


def test_a_trial_shorter_than_one_window_is_listed(fake, tmp_path, monkeypatch):
    dataset = fake()
    original = dataset.list

    def with_a_short_trial(data):
        sources = original(data)
        load = sources[0].load
        sources[0].load = lambda: load() + [make_record(6.0, trial=3, source=str(dataset.files["S1"]))]
        return sources

    monkeypatch.setitem(READERS, "fake", with_a_short_trial)
    manifest = preprocess("fake", tmp_path, tmp_path / "out", progress=False)
    assert manifest["subjects"]["S1"]["short_trials"] == [{"trial": 3, "seconds": 6.0}]
    assert manifest["subjects"]["S2"]["short_trials"] == []


def test_a_worker_that_dies_is_one_error_naming_its_file_and_finished_work_is_kept(tmp_path):
    """A crash inside a library (a segfault in a MAT reader on a corrupt file) kills a worker:
    the error names the file(s) it was working on, and the other items' results are kept."""
    from maan.errors import MaanError
    from maan.preprocessing.parallel import run_parallel

    kept = []
    items = ["a.mat", "b.mat", "bad.mat"]
    with pytest.raises(MaanError, match=r"worker process died .* while working on .*bad\.mat"):
        run_parallel(_crash_on_bad, items, 2, lambda k, result: kept.append(result), describe=items.__getitem__)
    assert {"A.MAT", "B.MAT"} & set(kept)


def _crash_on_bad(item):
    import os
    import signal

    if item == "bad.mat":
        os.kill(os.getpid(), signal.SIGSEGV)
    return item.upper()
