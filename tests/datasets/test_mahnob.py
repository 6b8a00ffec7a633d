"""MAHNOB-HCI reader: synthetic sessions read back, lead choice, bad input, peers' reading."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import maan
from maan import config
from maan.cli import main
from maan.datasets.mahnob import list_mahnob_subjects, read_mahnob_session, read_session_xml
from maan.datasets.synthetic import is_synthetic
from maan.datasets.synthetic_mahnob import _write_bdf, synth_mahnob
from maan.errors import InvalidInputError, MaanError
from maan.features.ecg import MIN_QRS_NOISE_RATIO, detect_rpeaks, lead_quality
from maan.preprocessing.pipeline import PreprocessConfig

N_TRIALS = 6  # rated sessions per participant
N_NEUTRAL = 1  # unrated (neutral-clip) sessions per participant


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Two participants, six rated 21-26-s clips and one neutral session each, 3-s baselines."""
    out = tmp_path_factory.mktemp("mahnob")
    synth_mahnob(out, n_subjects=2, seed=5, clip_seconds=(21.0, 26.0), baseline_seconds=3.0,
                 n_trials=N_TRIALS, neutral_sessions=N_NEUTRAL)
    return out


@pytest.fixture(scope="module")
def records(cohort):
    return {s.subject: s.load() for s in list_mahnob_subjects(cohort)}


def _sessions(cohort, kind="S"):
    return sorted((f for f in (cohort / "Sessions").glob(f"*/Part_*_{kind}_*.bdf")),
                  key=lambda f: int(f.parent.name))


def _raw(bdf):
    import mne

    return mne.io.read_raw_bdf(bdf, preload=True, verbose="error")


def _rewrite(bdf, change):
    """Rewrite a BDF with ``change(names, data_uV)`` applied (data as MNE reads it, in µV)."""
    raw = _raw(bdf)
    data = raw.get_data() * 1e6
    status = raw.ch_names.index("Status")
    data[status] = raw.get_data(picks="Status")[0]  # MNE reads the Status channel as is
    change(raw.ch_names, data)
    _write_bdf(bdf, data, "maan-synthetic test")


def _copy(cohort, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(cohort, folder)
    return folder


def test_layout_channels_and_synthetic_tag(cohort):
    assert sorted(p.name for p in cohort.iterdir()) == ["Sessions"]  # only the dataset's files
    folders = list((cohort / "Sessions").iterdir())
    assert len(folders) == 2 * (N_TRIALS + N_NEUTRAL)
    assert all(sorted(f.name for f in d.iterdir())[-1] == "session.xml" and len(list(d.iterdir())) == 2
               for d in folders)
    bdf = _sessions(cohort)[0]
    raw = _raw(bdf)
    assert tuple(raw.ch_names) == config.MAHNOB_CHANNELS and len(raw.ch_names) == 47
    assert raw.info["sfreq"] == config.MAHNOB_FS
    assert b"maan-synthetic" in bdf.read_bytes()[88:168]  # the recording-identification field
    for path in (cohort, cohort / "Sessions", bdf.parent, bdf, bdf.parent / "session.xml"):
        assert is_synthetic(path), path


def test_peers_read_the_sessions_as_torcheeg_libeer_and_eegain_do(cohort):
    """The way TorchEEG/LibEER parse session.xml (xmltodict's '@' attributes, or EEGain's
    ElementTree) and cut the BDF (first 32 channels, between the first two Status events)."""
    import mne

    for folder in sorted((cohort / "Sessions").iterdir(), key=lambda d: int(d.name)):
        try:
            import xmltodict

            info = xmltodict.parse((folder / "session.xml").read_text())["session"]
            attrib = {k[1:]: v for k, v in info.items() if k.startswith("@")}
            subject = info["subject"]["@id"]
        except ImportError:
            root = ET.fromstring((folder / "session.xml").read_text())
            attrib, subject = root.attrib, root.find("subject").attrib["id"]
        assert attrib["sessionId"] == folder.name and subject in ("1", "2")
        bdf = next(folder.glob("*.bdf"))
        assert bdf.name.startswith(f"Part_{subject}_")
        if "feltArsl" not in attrib:  # peers skip these
            assert attrib["isStim"] == "0" and "_N_" in bdf.name
            continue
        assert int(attrib["feltArsl"]) in range(1, 10) and int(attrib["feltVlnc"]) in range(1, 10)
        raw = mne.io.read_raw_bdf(bdf, preload=True, stim_channel="Status", verbose="error")
        events = mne.find_events(raw, stim_channel="Status", verbose="error")
        assert len(events) == 2
        assert abs((events[1, 0] - events[0, 0]) / raw.info["sfreq"] - float(attrib["cutLenSec"])) < 1 / 256
        assert tuple(raw.ch_names[:32]) == config.MAHNOB_EEG_CHANNELS


def test_records_ratings_trials_and_rates(cohort, records):
    assert list(records) == ["P01", "P02"]
    for subject, recs in records.items():
        assert [r.trial for r in recs] == list(range(1, N_TRIALS + 1))
        participant = str(int(subject[1:]))
        for record, bdf in zip(recs, [b for b in _sessions(cohort) if b.name.startswith(f"Part_{participant}_")]):
            assert record.source == str(bdf)
            root = ET.parse(bdf.parent / "session.xml").getroot()
            assert record.ratings["arousal"] == float(root.get("feltArsl"))
            assert record.ratings["valence"] == float(root.get("feltVlnc"))
            assert set(record.ratings) == set(config.MAHNOB_RATINGS.values())
            assert record.eeg.fs == record.ecg.fs == 128.0
            assert record.eeg.channels == config.MAHNOB_EEG_CHANNELS
            assert len(record.ecg.channels) == 1 and record.ecg.channels[0] in config.MAHNOB_ECG_CHANNELS
            # µV EEG (with the electrodes' DC offsets), mV ECG
            assert 200.0 > np.median(np.std(record.eeg.data, axis=1)) > 1.0
            assert 0.1 < np.ptp(record.ecg.data) < 50.0


def test_the_clip_lies_between_the_status_pulses(cohort, tmp_path):
    """Samples before the onset pulse and from the offset pulse on are left out, exactly."""
    import mne

    bdf = _sessions(_copy(cohort, tmp_path))[2]
    events = mne.find_events(_raw(bdf), stim_channel="Status", verbose="error")
    onset, offset = events[:2, 0]

    def mark(names, data):  # Fp1: +500 µV inside the clip, -500 µV outside
        data[0] = -500.0
        data[0, onset:offset] = 500.0

    _rewrite(bdf, mark)
    record = read_mahnob_session(bdf, "P01", 1, {"arousal": 5.0, "valence": 5.0})
    assert record.eeg.data.shape[1] == round((offset - onset) / 2)  # 256 -> 128 Hz
    fp1 = record.eeg.data[0]
    assert np.allclose(fp1[3:-3], 500.0, atol=5.0)  # (the resampler's edges aside)
    assert fp1.mean() > 450.0


def test_neutral_sessions_are_skipped_and_counted(cohort, caplog):
    with caplog.at_level(logging.INFO, logger="maan"):
        sources = list_mahnob_subjects(cohort / "Sessions")  # --data may be Sessions/ itself
    assert sources.unrated_sessions == 2 * N_NEUTRAL
    assert "2 sessions without arousal/valence ratings" in caplog.text
    assert [s.subject for s in sources] == ["P01", "P02"]
    participant, ratings = read_session_xml(_sessions(cohort, "N")[0].parent / "session.xml")
    assert participant == "1" and ratings == {}


def test_the_ecg_lead_is_chosen_by_beat_quality(cohort, tmp_path, records):
    bdf = _sessions(_copy(cohort, tmp_path))[0]
    first = records["P01"][0]
    chosen = first.ecg.channels[0]
    assert lead_quality(first.ecg.data[0], 128.0) >= MIN_QRS_NOISE_RATIO
    rng = np.random.default_rng(0)

    def noise_only(names, data):  # the chosen electrode came off: noise around its offset
        row = names.index(chosen)
        data[row] = data[row].mean() + rng.normal(0.0, 30.0, data.shape[1])

    _rewrite(bdf, noise_only)
    again = read_mahnob_session(bdf, "P01", 1, first.ratings)
    assert again.ecg.channels[0] != chosen
    assert len(detect_rpeaks(again.ecg.data[0], 128.0)) > 10
    named = read_mahnob_session(bdf, "P01", 1, first.ratings, ecg_channel=chosen)
    assert named.ecg.channels == (chosen,)
    assert lead_quality(named.ecg.data[0], 128.0) < MIN_QRS_NOISE_RATIO
    assert np.array_equal(named.eeg.data, again.eeg.data)


def test_ecg_channel_option_is_checked_once_and_reaches_the_reader(cohort, tmp_path, capsys):
    assert PreprocessConfig(dataset="mahnob", ecg_channel="EXG2").reader_options() == {
        "ecg_channel": "EXG2", "rpeak_method": "neurokit"}
    assert PreprocessConfig(dataset="mahnob").to_dict()["ecg_channel"] is None
    with pytest.raises(MaanError, match="EXG1, EXG2, EXG3"):
        PreprocessConfig(dataset="mahnob", ecg_channel="GSR1")
    with pytest.raises(MaanError, match="only applies to --dataset recordings"):
        PreprocessConfig(dataset="amigos", ecg_channel="EXG2")
    out = tmp_path / "f"
    code = main(["preprocess", "--dataset", "mahnob", "--data", str(cohort), "--out", str(out), "--jobs", "1",
                 "--ecg-channel", "EXG2", "-q"])
    text = capsys.readouterr().out
    assert code == 0 and "SYNTHETIC" in text and "neutral clips), skipped: 2" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["ecg_channel"] == "EXG2" and manifest["ecg_channels"] == ["EXG2"]
    assert manifest["synthetic"] is True and manifest["unrated_sessions"] == 2
    assert manifest["config"]["threshold"] == 5.0 and manifest["targets"] == list(config.TARGETS)
    # every whole 10-s window of the clips is kept; labels are rating > 5
    features = maan.load_features(out)
    assert manifest["windows"] == len(features.trial) == 2 * N_TRIALS * 2
    arousal = features.ratings[:, manifest["rating_names"].index("arousal")]
    assert np.array_equal(features.labels["arousal"], (arousal > 5).astype(np.int8))


def _one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_sessions_name_their_file_and_are_skipped_one_by_one(cohort, tmp_path, capsys):
    data = _copy(cohort, tmp_path)
    sessions = _sessions(data)
    missing_bdf, truncated, malformed, no_xml, no_pulse = sessions[1], sessions[2], sessions[3], sessions[7], sessions[8]
    missing_bdf.unlink()
    truncated.write_bytes(truncated.read_bytes()[:-20000])
    (malformed.parent / "session.xml").write_text("<session feltArsl='3'><subject id='1'>")
    (no_xml.parent / "session.xml").unlink()
    _rewrite(no_pulse, lambda names, d: d.__setitem__(names.index("Status"), 0.0))
    with pytest.raises(InvalidInputError, match="truncated") as err:
        read_mahnob_session(truncated, "P01", 1, {})
    assert err.value.path == str(truncated) or Path(err.value.path) == truncated
    with pytest.raises(InvalidInputError, match="0 pulse"):
        read_mahnob_session(no_pulse, "P02", 1, {})
    with pytest.raises(InvalidInputError, match="not well-formed"):
        read_session_xml(malformed.parent / "session.xml")
    with pytest.raises(InvalidInputError, match="file not found"):
        read_session_xml(no_xml.parent / "session.xml")

    out = tmp_path / "f"
    args = ["preprocess", "--dataset", "mahnob", "--data", str(data), "--out", str(out), "--jobs", "1", "-q"]
    assert main(args) == 2
    assert str(missing_bdf.parent) in _one_line(capsys.readouterr().err)  # P01's first bad session
    assert main(args + ["--skip-invalid"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {Path(e["path"]) for e in manifest["invalid_inputs"]}
    assert listed == {missing_bdf.parent, truncated, malformed.parent / "session.xml",
                      no_xml.parent / "session.xml", no_pulse}
    # the participants' other sessions are kept: P01 lost 3 of its 6 clips, P02 2
    windows = {s: e["windows"] for s, e in manifest["subjects"].items()}
    assert windows == {"P01": 3 * 2, "P02": 4 * 2}


def test_folders_that_are_not_mahnob(tmp_path):
    with pytest.raises(InvalidInputError, match="folder not found"):
        list_mahnob_subjects(tmp_path / "absent")
    (tmp_path / "Sessions" / "12").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match="no MAHNOB-HCI sessions"):
        list_mahnob_subjects(tmp_path)
    # a session whose participant cannot be told is a source of its own that fails when read
    (tmp_path / "Sessions" / "12" / "session.xml").write_text("<session feltArsl='5' feltVlnc='5'/>")
    (source,) = list_mahnob_subjects(tmp_path)
    with pytest.raises(InvalidInputError, match="subject id"):
        source.load()
    (tmp_path / "Sessions" / "12" / "session.xml").write_text(
        "<session feltArsl='11' feltVlnc='5'><subject id='3'/></session>")
    with pytest.raises(InvalidInputError, match="not a rating 1-9"):
        list_mahnob_subjects(tmp_path)[0].load()


def test_physiology_carries_the_arousal_label(records):
    """Within a participant, clips rated more arousing have a faster heart (each participant's
    own mean removed: their resting rates and rating habits differ)."""
    from maan.features.ecg import heart_rate

    arousal, hr = [], []
    for recs in records.values():
        a = np.array([r.ratings["arousal"] for r in recs])
        h = np.array([heart_rate(detect_rpeaks(r.ecg.data[0], r.ecg.fs), r.ecg.fs) for r in recs])
        arousal.append(a - a.mean())
        hr.append(h - h.mean())
    r = np.corrcoef(np.concatenate(arousal), np.concatenate(hr))[0, 1]
    assert r > 0.5, r


@pytest.mark.slow
def test_synth_preprocess_cv_report_end_to_end(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(maan.__file__).resolve().parents[1]))

    def cli(*argv):
        proc = subprocess.run([sys.executable, "-m", "maan", *map(str, argv)], capture_output=True, text=True,
                              env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    data, features, run = tmp_path / "mahnob", tmp_path / "features", tmp_path / "run"
    assert "SYNTHETIC" in cli("synth", "--format", "mahnob", "--out", data, "--subjects", 2,
                              "--short-seconds", 20, 24)
    assert "SYNTHETIC" in cli("preprocess", "--dataset", "mahnob", "--data", data, "--out", features,
                              "--jobs", 2, "-q")
    cli("cv", "--features", features, "--out", run, "--folds", 2, "--epochs", 1, "--protocol", "subject-kfold",
        "--accelerator", "cpu", "-q")
    cli("report", run, "--out", tmp_path / "report.html")
    assert json.loads((run / "results.json").read_text())["synthetic"] is True
    assert "SYNTHETIC" in (tmp_path / "report.html").read_text().upper()
