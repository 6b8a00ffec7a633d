"""Recordings reader (any file MNE reads + a labels table): round trips on small files written
with MNE, the store they make, and every bad input as one line naming the file or column."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

mne = pytest.importorskip("mne")

from maan import load_features, preprocess  # noqa: E402
from maan.cli import main  # noqa: E402
from maan.datasets import READERS  # noqa: E402
from maan.datasets.recordings import DEFAULT_FS, list_recordings_subjects, read_labels  # noqa: E402
from maan.errors import InvalidInputError, MaanError  # noqa: E402
from maan.preprocessing.pipeline import PreprocessConfig  # noqa: E402

EEG = ("Fz", "Cz", "Pz", "Oz")
FS = 256.0
SECONDS = 25.0  # 2 windows of 10 s
EEG_UV = 20.0  # amplitude of the EEG test sine, in µV
EEG_HZ = 10.0


def ecg_mv(seconds, fs, heart_rate, seed):
    import neurokit2 as nk

    x = nk.ecg_simulate(duration=int(np.ceil(seconds)) + 1, sampling_rate=int(fs), heart_rate=heart_rate,
                        method="simple", noise=0.01, random_state=seed)
    return x[: int(round(seconds * fs))]


def write_raw(path, eeg=EEG, ecg=("ECG",), ecg_type="ecg", extra=(), fs=FS, seconds=SECONDS, heart_rate=70,
              seed=0, bad_span=None):
    """A small recording in volts (as MNE holds it): EEG = sine + noise, ECG simulated."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    names = list(eeg) + list(ecg) + [name for name, _ in extra]
    types = ["eeg"] * len(eeg) + [ecg_type] * len(ecg) + [kind for _, kind in extra]
    rows = [EEG_UV * 1e-6 * np.sin(2 * np.pi * EEG_HZ * t + i) + 2e-6 * rng.standard_normal(n) for i in range(len(eeg))]
    rows += [ecg_mv(seconds, fs, heart_rate, seed + i) * 1e-3 for i in range(len(ecg))]
    rows += [1e-6 * rng.standard_normal(n) for _ in extra]
    raw = mne.io.RawArray(np.array(rows), mne.create_info(names, fs, types), verbose="error")
    if bad_span is not None:
        raw.set_annotations(mne.Annotations([bad_span[0]], [bad_span[1] - bad_span[0]], ["BAD_movement"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.save(path, overwrite=True, verbose="error")
    return path


def write_labels(path, rows, header=("file", "subject", "task")):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


@pytest.fixture
def cohort(tmp_path):
    """Two subjects, a rest (task 0) and a faster-heart task (task 1) recording each."""
    data = tmp_path / "data"
    rows = []
    for s, subject in enumerate(("A", "B")):
        for task, hr in ((0, 65), (1, 95)):
            name = f"{subject}/{subject}_{task}_raw.fif"
            write_raw(data / name, heart_rate=hr, seed=10 * s + task)
            rows.append((name, subject, task))
    labels = write_labels(tmp_path / "labels.csv", rows)
    return data, labels


def one_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- reader ------------------------------------------------------------------------------------
def test_round_trip_units_rate_and_trials(cohort):
    data, labels = cohort
    sources = list_recordings_subjects(data, labels)
    assert [s.subject for s in sources] == ["A", "B"]
    assert sources.targets == ("task",) and sources.eeg_channels == EEG
    assert all(s.path == str(labels) for s in sources)
    records = sources[0].load()
    assert [r.trial for r in records] == [1, 2]
    assert [r.ratings for r in records] == [{"task": 0.0}, {"task": 1.0}]
    assert records[0].source == str(data / "A" / "A_0_raw.fif")
    for r in records:
        assert r.subject == "A"
        assert r.eeg.fs == r.ecg.fs == DEFAULT_FS == 128.0
        assert r.eeg.channels == EEG and r.ecg.channels == ("ECG",)
        assert r.eeg.data.shape == (4, int(SECONDS * 128)) and r.ecg.data.shape == (1, int(SECONDS * 128))
        assert r.eeg.data.dtype == np.float64 and r.eeg.data.flags["C_CONTIGUOUS"]
        # volts -> µV: the 20 µV sine keeps its amplitude through resampling
        spectrum = np.abs(np.fft.rfft(r.eeg.data[0])) * 2 / r.eeg.data.shape[1]
        assert spectrum[int(EEG_HZ * SECONDS)] == pytest.approx(EEG_UV, rel=0.05)
        written = ecg_mv(SECONDS, FS, (65, 95)[r.trial - 1], r.trial - 1)  # in mV, before saving as V
        assert np.ptp(r.ecg.data) == pytest.approx(np.ptp(written), rel=0.25)
    # the samples are MNE's own resampling, scaled
    raw = mne.io.read_raw(data / "A" / "A_0_raw.fif", preload=True, verbose="error").resample(128, verbose="error")
    np.testing.assert_allclose(records[0].eeg.data, raw.get_data(picks=list(EEG)) * 1e6)
    np.testing.assert_allclose(records[0].ecg.data, raw.get_data(picks=["ECG"]) * 1e3)


def test_edf_like_types_channel_order_exclude_and_fs(tmp_path):
    """EDF has no channel types: MNE types every channel EEG, so the ECG is found by name, and a
    reference channel is dropped with exclude. EEG rows follow the first file's order."""
    data = tmp_path / "d"
    write_raw(data / "one_raw.fif", ecg=("ECG ECG",), ecg_type="eeg", extra=[("EEG A2-A1", "eeg")])
    write_raw(data / "two_raw.fif", eeg=EEG[::-1], ecg=("ECG ECG",), ecg_type="eeg",
              extra=[("EEG A2-A1", "eeg")], fs=500.0, seed=3)
    labels = write_labels(tmp_path / "l.csv", [("one_raw.fif", "S1", 0), ("two_raw.fif", "S1", 1)])
    sources = list_recordings_subjects(data, labels, exclude=("EEG A2-A1",), fs=200)
    assert sources.eeg_channels == EEG
    one, two = sources[0].load()
    assert one.ecg.channels == ("ECG ECG",) and one.eeg.channels == two.eeg.channels == EEG
    assert one.eeg.fs == two.eeg.fs == 200.0 and two.eeg.data.shape == (4, int(SECONDS * 200))
    raw = mne.io.read_raw(data / "two_raw.fif", preload=True, verbose="error").resample(200, verbose="error")
    np.testing.assert_allclose(two.eeg.data, raw.get_data(picks=list(EEG)) * 1e6)
    # without --exclude the reference is one more EEG channel
    assert list_recordings_subjects(data, labels).eeg_channels == EEG + ("EEG A2-A1",)


def test_bad_annotations_become_nan(tmp_path):
    write_raw(tmp_path / "d" / "x_raw.fif", bad_span=(12.0, 14.0))
    labels = write_labels(tmp_path / "l.csv", [("x_raw.fif", "S1", 1)])
    (record,) = list_recordings_subjects(tmp_path / "d", labels)[0].load()
    nan = ~np.isfinite(record.eeg.data[0])
    assert nan.sum() == pytest.approx(2 * 128, abs=2) and np.isnan(record.ecg.data[0, 13 * 128])
    assert nan[: 12 * 128 - 1].sum() == 0


def test_labels_default_location_and_thresholded_ratings(tmp_path):
    data = tmp_path / "d"
    write_raw(data / "x_raw.fif")
    write_raw(data / "y_raw.fif", seed=1)
    write_labels(data / "labels.csv", [("x_raw.fif", "S1", 2, 0), ("y_raw.fif", "S1", 8, "")],
                 header=("file", "subject", "arousal", "task"))
    with pytest.raises(InvalidInputError, match=r"column 'arousal' is not binary 0/1 .*--threshold"):
        list_recordings_subjects(data)  # labels default to DATA/labels.csv
    sources = list_recordings_subjects(data, threshold=5)
    assert sources.targets == ("arousal", "task")
    assert [r.ratings["arousal"] for r in sources[0].load()] == [2.0, 8.0]
    assert list_recordings_subjects(data, targets=["task"]).targets == ("task",)
    table = read_labels(data / "labels.csv", data, targets=["task"])
    assert np.isnan(table.rows[1].values["task"])


# -- bad inputs --------------------------------------------------------------------------------
@pytest.mark.parametrize("case, match", [
    ("missing_file", r"gone_raw\.fif: recording not found \(listed in .*l\.csv, line 3\)"),
    ("no_subject_column", r"l\.csv: no column 'subject'"),
    ("non_binary", r"l\.csv: column 'task' is not binary 0/1 \(also holds 2\)"),
    ("not_a_number", r"l\.csv: line 2: column 'task' holds 'yes', not a number"),
    ("unreadable", r"junk\.edf: not a recording MNE can read"),
    ("no_ecg", r"noecg_raw\.fif: no ECG channel .*--ecg-channel"),
    ("two_ecg", r"twoecg_raw\.fif: several ECG channels \(ECG1, ECG2\); choose one with --ecg-channel"),
    ("mismatch", r"other_raw\.fif: EEG channels differ from ok_raw\.fif: missing Pz, Oz; extra T7"),
    ("bad_subject", r"l\.csv: line 2: subject 'a/b' is not a usable id"),
])
def test_bad_inputs_name_the_file_or_column(tmp_path, case, match):
    data = tmp_path / "d"
    write_raw(data / "ok_raw.fif")
    rows = [("ok_raw.fif", "S1", 0)]
    header = ("file", "subject", "task")
    if case == "missing_file":
        rows.append(("gone_raw.fif", "S1", 1))
    elif case == "no_subject_column":
        header = ("file", "who", "task")
    elif case == "non_binary":
        rows.append(("ok_raw.fif".replace("ok", "ok2"), "S1", 2))
        write_raw(data / "ok2_raw.fif")
    elif case == "not_a_number":
        rows = [("ok_raw.fif", "S1", "yes")]
    elif case == "unreadable":
        (data / "junk.edf").write_bytes(b"0       not an EDF header at all")
        rows.append(("junk.edf", "S2", 1))
    elif case == "no_ecg":
        write_raw(data / "noecg_raw.fif", ecg=())
        rows.append(("noecg_raw.fif", "S2", 1))
    elif case == "two_ecg":
        write_raw(data / "twoecg_raw.fif", ecg=("ECG1", "ECG2"))
        rows.append(("twoecg_raw.fif", "S2", 1))
    elif case == "mismatch":
        write_raw(data / "other_raw.fif", eeg=("Fz", "Cz", "T7"))
        rows.append(("other_raw.fif", "S2", 1))
    elif case == "bad_subject":
        rows = [("ok_raw.fif", "a/b", 0)]
    labels = write_labels(tmp_path / "l.csv", rows, header)
    with pytest.raises(InvalidInputError, match=match):
        list_recordings_subjects(data, labels)


def test_ecg_channel_option_resolves_several_and_names_an_absent_one(tmp_path):
    data = tmp_path / "d"
    write_raw(data / "x_raw.fif", ecg=("ECG1", "ECG2"))
    labels = write_labels(tmp_path / "l.csv", [("x_raw.fif", "S1", 0)])
    sources = list_recordings_subjects(data, labels, ecg_channel="ECG2")
    (record,) = sources[0].load()
    assert record.ecg.channels == ("ECG2",) and record.eeg.channels == EEG  # ECG1 is not EEG either
    with pytest.raises(InvalidInputError, match=r"x_raw\.fif: no channel 'ECG3' \(--ecg-channel\); ECG-like channels: ECG1, ECG2"):
        list_recordings_subjects(data, labels, ecg_channel="ECG3")
    with pytest.raises(InvalidInputError, match=r"x_raw\.fif: no channel 'EEG A2-A1' to --exclude"):
        list_recordings_subjects(data, labels, ecg_channel="ECG1", exclude=("EEG A2-A1",))


def test_unknown_target_column(cohort):
    data, labels = cohort
    with pytest.raises(InvalidInputError, match=r"labels\.csv: unknown column 'valence' \(label columns: task\)"):
        list_recordings_subjects(data, labels, targets=("valence",))


def test_recordings_options_only_for_recordings():
    with pytest.raises(MaanError, match="--labels, --exclude only apply to --dataset recordings"):
        PreprocessConfig(dataset="amigos", labels="l.csv", exclude=("X",))
    with pytest.raises(MaanError, match="--fs 60 Hz is too low"):
        PreprocessConfig(dataset="recordings", fs=60)


# -- the store ---------------------------------------------------------------------------------
def test_preprocess_store_targets_shapes_and_inputs(cohort, tmp_path):
    data, labels = cohort
    config = PreprocessConfig(dataset="recordings", labels=str(labels))
    manifest = preprocess("recordings", data, tmp_path / "f", config, progress=False)
    assert manifest["targets"] == ["task"] and manifest["config"]["targets"] == ["task"]
    assert manifest["config"]["fs"] == 128.0 and manifest["config"]["threshold"] is None
    assert manifest["eeg_shape"] == [4, 4, 10] and manifest["eeg_channels"] == list(EEG)
    assert manifest["windows"] == 8 and manifest["dropped"] == {}
    inputs = [fp["path"] for fp in manifest["subjects"]["A"]["inputs"]]
    assert inputs == [str(labels), str(data / "A" / "A_0_raw.fif"), str(data / "A" / "A_1_raw.fif")]
    features = load_features(tmp_path / "f")
    assert features.eeg.shape == (8, 4, 4, 10) and features.ecg.shape == (8, 1, 32)
    np.testing.assert_array_equal(features.task, [0, 0, 1, 1, 0, 0, 1, 1])
    np.testing.assert_array_equal(features.trial, [1, 1, 2, 2, 1, 1, 2, 2])
    assert list(features.labels) == ["task"]
    rr = features.ecg[:, 0]
    hr = np.array([60 / np.median(r[r > 0]) for r in rr])
    assert np.all(np.abs(hr[features.task == 0] - 65) < 4) and np.all(np.abs(hr[features.task == 1] - 95) < 5)


def test_cli_round_trip_resume_and_config_guard(cohort, tmp_path, capsys, monkeypatch):
    data, labels = cohort
    out = tmp_path / "f"
    args = ["preprocess", "--dataset", "recordings", "--data", str(data), "--labels", str(labels),
            "--out", str(out), "--jobs", "1", "-q"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "EEG input shape (4, 4, 10)" in printed and "task: 50% high" in printed
    loads = []
    original = READERS["recordings"]

    def counting(data, **options):
        sources = original(data, **options)
        for s in sources:
            s.load = (lambda f, name: (lambda: loads.append(name) or f()))(s.load, s.subject)
        return sources

    monkeypatch.setitem(READERS, "recordings", counting)
    assert main(args) == 0 and loads == []  # resumed: nothing redone
    os.utime(data / "B" / "B_1_raw.fif", (1, 1))
    assert main(args) == 0 and loads == ["B"]  # a changed recording redoes its subject only
    capsys.readouterr()
    assert main(args + ["--fs", "256"]) == 2
    assert "differs in: fs" in one_line(capsys)
    assert json.loads((out / "manifest.json").read_text())["config"]["fs"] == 128.0


@pytest.mark.parametrize("extra, match", [
    (["--threshold", "0.5", "--ecg-channel", "ECG9"], "no channel 'ECG9' (--ecg-channel)"),
    (["--exclude", "Nope"], "no channel 'Nope' to --exclude"),
])
def test_cli_bad_options_are_one_line(cohort, tmp_path, capsys, extra, match):
    data, labels = cohort
    code = main(["preprocess", "--dataset", "recordings", "--data", str(data), "--labels", str(labels),
                 "--out", str(tmp_path / "f"), "-q", *extra])
    assert code == 2 and match in one_line(capsys)


def test_cli_bad_tables_are_one_line(cohort, tmp_path, capsys):
    data, _ = cohort
    for rows, header, match in [
        ([("A/A_0_raw.fif", "A", 3)], ("file", "subject", "task"), "column 'task' is not binary"),
        ([("A/nope.fif", "A", 1)], ("file", "subject", "task"), "nope.fif: recording not found"),
        ([("A/A_0_raw.fif", 1)], ("file", "task"), "no column 'subject'"),
    ]:
        labels = write_labels(tmp_path / "bad.csv", rows, header)
        code = main(["preprocess", "--dataset", "recordings", "--data", str(data), "--labels", str(labels),
                     "--out", str(tmp_path / "f"), "-q"])
        assert code == 2 and match in one_line(capsys)
    code = main(["preprocess", "--dataset", "amigos", "--data", str(data), "--labels", str(labels),
                 "--out", str(tmp_path / "g"), "-q"])
    assert code == 2 and "--labels only applies to --dataset recordings" in one_line(capsys)


def test_edf_round_trip_when_edfio_is_installed(tmp_path):
    pytest.importorskip("edfio")
    src = write_raw(tmp_path / "x_raw.fif", ecg=("ECG ECG",), ecg_type="eeg")
    raw = mne.io.read_raw(src, preload=True, verbose="error")
    (tmp_path / "d").mkdir()
    mne.export.export_raw(tmp_path / "d" / "x.edf", raw, fmt="edf", verbose="error")
    labels = write_labels(tmp_path / "l.csv", [("x.edf", "S1", 1)])
    (record,) = list_recordings_subjects(tmp_path / "d", labels)[0].load()
    assert record.ecg.channels == ("ECG ECG",) and record.eeg.channels == EEG
    spectrum = np.abs(np.fft.rfft(record.eeg.data[0])) * 2 / record.eeg.data.shape[1]
    assert spectrum[int(EEG_HZ * SECONDS)] == pytest.approx(EEG_UV, rel=0.05)


def test_brainvision_round_trip_when_pybv_is_installed(tmp_path):
    pytest.importorskip("pybv")
    src = write_raw(tmp_path / "x_raw.fif")
    raw = mne.io.read_raw(src, preload=True, verbose="error")
    (tmp_path / "d").mkdir()
    mne.export.export_raw(tmp_path / "d" / "x.vhdr", raw, fmt="brainvision", verbose="error")
    labels = write_labels(tmp_path / "l.csv", [("x.vhdr", "S1", 1)])
    (record,) = list_recordings_subjects(tmp_path / "d", labels, ecg_channel="ECG")[0].load()
    assert record.eeg.channels == EEG and record.eeg.data.shape == (4, int(SECONDS * 128))


def test_a_truncated_edf_is_an_error_never_silence(tmp_path, capsys):
    """MNE reads a cut EDF with a warning only; maan refuses it, naming the file (preprocess and predict)."""
    pytest.importorskip("edfio")
    src = write_raw(tmp_path / "x_raw.fif", ecg=("ECG ECG",), ecg_type="eeg", seconds=60.0)
    raw = mne.io.read_raw(src, preload=True, verbose="error")
    data = tmp_path / "d"
    data.mkdir()
    mne.export.export_raw(data / "x.edf", raw, fmt="edf", verbose="error")
    edf = data / "x.edf"
    edf.write_bytes(edf.read_bytes()[: int(edf.stat().st_size * 0.6)])
    labels = write_labels(tmp_path / "l.csv", [("x.edf", "S1", 1)])
    with pytest.raises(InvalidInputError, match="x.edf: truncated recording"):
        list_recordings_subjects(data, labels)
    code = main(["preprocess", "--dataset", "recordings", "--data", str(data), "--labels", str(labels),
                 "--out", str(tmp_path / "f"), "-q"])
    assert code == 2 and "x.edf: truncated recording" in one_line(capsys)
