"""Synthetic cohorts: public layout, determinism, markers and physiology."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.io
import scipy.signal

from maan import config
from maan.datasets import synthetic as S
from maan.errors import InvalidInputError, MaanError

SHORT = (8.0, 12.0)
LONG = (15.0, 20.0)
FS = config.AMIGOS_FS


@pytest.fixture(scope="module")
def amigos(tmp_path_factory):
    out = tmp_path_factory.mktemp("amigos")
    paths = S.synth_amigos(out, n_subjects=4, seed=3, short_seconds=SHORT, long_seconds=LONG)
    return out, paths


@pytest.fixture(scope="module")
def dreamer(tmp_path_factory):
    out = tmp_path_factory.mktemp("dreamer")
    path = S.synth_dreamer(out, n_subjects=2, seed=3, stimulus_seconds=(6.0, 9.0), baseline_seconds=4.0)
    return out, path


# --- AMIGOS layout ---------------------------------------------------------------------------
def test_amigos_files_and_variables(amigos):
    out, paths = amigos
    assert [p.name for p in paths] == [f"Data_Preprocessed_P{i:02d}.mat" for i in range(1, 5)]
    for p in paths:
        m = scipy.io.loadmat(p)
        assert m["__header__"].startswith(b"MATLAB 5.0 MAT-file")
        assert sorted(k for k in m if not k.startswith("__")) == [
            "VideoIDs", "joined_data", "labels_ext_annotation", "labels_selfassessment", S.TRUTH_VARIABLE]
        for name in ("VideoIDs", "joined_data", "labels_ext_annotation", "labels_selfassessment"):
            assert m[name].shape == (1, 20) and m[name].dtype == object
        ids = [str(np.asarray(c).reshape(-1)[0]) for c in m["VideoIDs"][0]]
        assert ids == list(S.AMIGOS_SHORT_VIDEO_IDS + S.AMIGOS_LONG_VIDEO_IDS)
        assert np.hstack(m["VideoIDs"][0]).tolist() == ids  # how public scripts read it


def test_amigos_cells(amigos):
    out, paths = amigos
    for p in paths:
        m = scipy.io.loadmat(p)
        for t in range(20):
            data = m["joined_data"][0, t]
            lab = m["labels_selfassessment"][0, t]
            ext = m["labels_ext_annotation"][0, t]
            assert data.dtype == lab.dtype == ext.dtype == np.float64
            if data.size == 0:
                assert t >= 16 and data.shape == lab.shape == ext.shape == (0, 0)
                continue
            n, cols = data.shape
            assert cols == 17
            lo, hi = SHORT if t < 16 else LONG
            assert lo + S.AMIGOS_BASELINE_SECONDS <= n / FS <= hi + S.AMIGOS_BASELINE_SECONDS + 1 / FS
            assert lab.shape == (1, 12)
            assert np.all((lab[0, :5] >= 1) & (lab[0, :5] <= 9))
            assert set(np.unique(lab[0, 5:])) <= {0.0, 1.0}
            n_seg = math.ceil((n / FS - S.AMIGOS_BASELINE_SECONDS) / S.AMIGOS_EXT_SEGMENT_SECONDS)
            assert ext.shape == (n_seg, 3)
            assert np.array_equal(ext[:, 0], np.arange(1, n_seg + 1))
            assert np.all(np.abs(ext[:, 1:]) <= 1)
            # physiological amplitudes: EEG tens of uV, ECG R waves ~1 mV, GSR a few uS
            ok = ~np.isnan(data).any(axis=1)
            eeg = data[ok][:, :14]
            if eeg.size:
                assert 3 < np.nanstd(eeg) < 60
            ecg = data[ok][:, 14]
            if ecg.size:
                assert 0.4 < np.percentile(ecg, 99.5) - np.median(ecg) < 4


def test_amigos_empty_long_cells_and_nan_stretches(amigos):
    out, paths = amigos
    truth = S.read_truth(out)
    missing = [s for s, v in truth["subjects"].items() if v["missing_long_videos"]]
    assert len(missing) >= 1
    stretches = 0
    for p in paths:
        sid = "P" + p.stem[-2:]
        m = scipy.io.loadmat(p)
        empties = [t for t in range(20) if m["joined_data"][0, t].size == 0]
        assert empties == ([16, 17, 18, 19] if sid in missing else [])
        for tr in truth["subjects"][sid]["trials"]:
            for st in tr.get("nan_stretches", []):
                stretches += 1
                data = m["joined_data"][0, tr["trial"] - 1]
                a = int(round(st["start_s"] * FS))
                b = a + int(round(st["seconds"] * FS))
                cols = {"all": slice(0, 17), "physio": slice(14, 17), "eeg": slice(0, 14)}[st["columns"]]
                assert np.isnan(data[a:b, cols]).all()
                assert not np.isnan(data[:a, cols]).all()
    assert stretches >= 1


def test_amigos_rng_streams_independent_of_cohort_size(tmp_path):
    """Subject k's physiology is drawn from its own stream: P01 is the same in cohorts of any size."""
    S.synth_amigos(tmp_path / "a", n_subjects=1, seed=9, short_seconds=SHORT, long_seconds=LONG,
                   nan_fraction=0, missing_long_fraction=0)
    S.synth_amigos(tmp_path / "b", n_subjects=3, seed=9, short_seconds=SHORT, long_seconds=LONG,
                   nan_fraction=0, missing_long_fraction=0)
    a = scipy.io.loadmat(tmp_path / "a" / "Data_Preprocessed_P01.mat")
    b = scipy.io.loadmat(tmp_path / "b" / "Data_Preprocessed_P01.mat")
    for t in range(20):
        assert np.array_equal(a["joined_data"][0, t], b["joined_data"][0, t])


# --- DREAMER layout --------------------------------------------------------------------------
def test_dreamer_layout(dreamer):
    out, path = dreamer
    assert path.name == "DREAMER.mat"
    m = scipy.io.loadmat(path)
    assert sorted(k for k in m if not k.startswith("__")) == ["DREAMER", S.TRUTH_VARIABLE]
    top = m["DREAMER"]
    assert top.shape == (1, 1)
    assert top.dtype.names == ("Data", "EEG_SamplingRate", "ECG_SamplingRate", "EEG_Electrodes",
                               "noOfSubjects", "noOfVideoSequences", "Disclaimer", "Provider",
                               "Version", "Acknowledgement")
    t = top[0, 0]
    assert t["EEG_SamplingRate"][0, 0] == 128 and t["ECG_SamplingRate"][0, 0] == 256
    assert [str(c[0]) for c in t["EEG_Electrodes"][0]] == list(config.DREAMER_EEG_CHANNELS)
    assert t["noOfSubjects"][0, 0] == 2 and t["noOfVideoSequences"][0, 0] == 18
    data = t["Data"]
    assert data.shape == (1, 2) and data.dtype == object  # a 1xN cell of 1x1 structs
    for s in range(2):
        subj = data[0, s]
        assert subj.shape == (1, 1)
        assert subj.dtype.names == ("Age", "Gender", "EEG", "ECG", "ScoreValence", "ScoreArousal",
                                    "ScoreDominance")
        for score in ("ScoreValence", "ScoreArousal", "ScoreDominance"):
            v = subj[score][0, 0]
            assert v.shape == (18, 1) and v.dtype == np.float64
            assert np.all(np.isin(v, [1, 2, 3, 4, 5]))
        for mod, n_ch, fs in (("EEG", 14, 128), ("ECG", 2, 256)):
            for part, (lo, hi) in (("stimuli", (6.0, 9.0)), ("baseline", (4.0, 4.0))):
                cells = subj[mod][0, 0][part][0, 0]
                assert cells.shape == (18, 1) and cells.dtype == object
                for c in cells[:, 0]:
                    assert c.dtype == np.float64 and c.shape[1] == n_ch
                    assert lo * fs - 1 <= c.shape[0] <= hi * fs + 1
        eeg = subj["EEG"][0, 0]["stimuli"][0, 0]
        ecg = subj["ECG"][0, 0]["stimuli"][0, 0]
        for k in range(18):
            assert ecg[k, 0].shape[0] == 2 * eeg[k, 0].shape[0]
            # raw Emotiv EEG: ~4200 uV DC offset, fluctuations of tens of uV
            assert 3900 < np.median(eeg[k, 0]) < 4500
    # the indexing public readers (e.g. TorchEEG's DREAMERDataset) use
    assert len(m["DREAMER"][0, 0]["Data"][0]) == 2
    assert len(m["DREAMER"][0, 0]["Data"][0, 0]["EEG"][0, 0]["stimuli"][0, 0]) == 18
    x = m["DREAMER"][0, 0]["Data"][0, 1]["EEG"][0, 0]["stimuli"][0, 0][4, 0]
    assert x.ndim == 2 and x.shape[1] == 14
    assert m["DREAMER"][0, 0]["Data"][0, 1]["ScoreArousal"][0, 0][4, 0] in (1, 2, 3, 4, 5)
    sq = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["DREAMER"]
    assert sq.Data[1].EEG.stimuli[4].shape == x.shape


# --- determinism, markers, entry point -------------------------------------------------------
def test_deterministic_bytes(tmp_path):
    kw = dict(n_subjects=2, short_seconds=SHORT, long_seconds=LONG)
    a = S.synth_amigos(tmp_path / "a", seed=5, **kw)
    b = S.synth_amigos(tmp_path / "b", seed=5, **kw)
    c = S.synth_amigos(tmp_path / "c", seed=6, **kw)
    for x, y, z in zip(a, b, c):
        assert x.read_bytes() == y.read_bytes()
        assert x.read_bytes() != z.read_bytes()
    assert S.read_truth(tmp_path / "a") == S.read_truth(tmp_path / "b") != S.read_truth(tmp_path / "c")
    kw = dict(n_subjects=1, stimulus_seconds=(3.0, 4.0), baseline_seconds=2.0)
    d1 = S.synth_dreamer(tmp_path / "d1", seed=5, **kw)
    d2 = S.synth_dreamer(tmp_path / "d2", seed=5, **kw)
    d3 = S.synth_dreamer(tmp_path / "d3", seed=6, **kw)
    assert d1.read_bytes() == d2.read_bytes() != d3.read_bytes()


def test_synthetic_markers(amigos, dreamer, tmp_path):
    for out, files in (amigos, (dreamer[0], [dreamer[1]])):
        assert S.is_synthetic(out)
        for f in files:
            assert S.is_synthetic(f)
            assert S.SYNTHETIC_TAG.encode() in scipy.io.loadmat(f)["__header__"]
        marker = S.read_truth(out)
        assert marker["synthetic"] is True and marker["seed"] == 3
    plain = tmp_path / "Data_Preprocessed_P01.mat"
    scipy.io.savemat(plain, {"x": np.zeros(3)})
    assert not S.is_synthetic(plain) and not S.is_synthetic(tmp_path)
    assert not S.is_synthetic(tmp_path / "missing.mat")
    assert S.read_truth(tmp_path) is None and S.read_truth(plain) is None


def test_synthetic_folder_holds_only_the_datasets_files(tmp_path):
    """Peers' readers (TorchEEG's AMIGOSDataset) parse every file name of the folder: a synthetic
    cohort holds the data files and nothing else, and its truth travels inside them."""
    from maan.datasets import synth_cohort

    synth_cohort("amigos", tmp_path / "a", n_subjects=2, seed=4, short_seconds=SHORT, long_seconds=LONG)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "Data_Preprocessed_P01.mat", "Data_Preprocessed_P02.mat"]
    synth_cohort("dreamer", tmp_path / "d", n_subjects=1, seed=4, short_seconds=(3, 4), baseline_seconds=2)
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["DREAMER.mat"]
    # the variables a reader of the real release loads are untouched; the truth is one more
    names = {n for n, *_ in scipy.io.whosmat(tmp_path / "a" / "Data_Preprocessed_P01.mat")}
    assert names == {"VideoIDs", "joined_data", "labels_ext_annotation", "labels_selfassessment", S.TRUTH_VARIABLE}
    truth = S.read_truth(tmp_path / "a")
    assert sorted(truth["subjects"]) == ["P01", "P02"] and truth["format"] == "amigos"
    assert S.read_truth(tmp_path / "a" / "Data_Preprocessed_P02.mat")["subjects"].keys() == {"P02"}
    assert S.cohort_written(tmp_path / "a", "amigos", 2, 4, short_seconds=SHORT)
    assert not S.cohort_written(tmp_path / "a", "amigos", 3, 4)
    assert not S.cohort_written(tmp_path / "a", "amigos", 2, 5)
    assert not S.cohort_written(tmp_path / "a", "amigos", 2, 4, short_seconds=(1.0, 2.0))
    assert not S.cohort_written(tmp_path / "d", "amigos", 1, 4)
    assert not S.cohort_written(tmp_path / "missing", "amigos", 2, 4)


def test_synth_entry_point(tmp_path):
    paths = S.synth("amigos", tmp_path / "a", 2, 1, short_seconds=SHORT, long_seconds=LONG)
    assert [p.name for p in paths] == ["Data_Preprocessed_P01.mat", "Data_Preprocessed_P02.mat"]
    paths = S.synth("DREAMER", tmp_path / "d", 1, 1, stimulus_seconds=(3, 4), baseline_seconds=2,
                    short_seconds=None)
    assert [p.name for p in paths] == ["DREAMER.mat"]
    # the CLI's --short-seconds sets the DREAMER clip durations
    S.synth("dreamer", tmp_path / "d2", 1, 1, short_seconds=(3, 4), baseline_seconds=2)
    marker = S.read_truth(tmp_path / "d2")
    assert all(3 <= f["seconds"] <= 4 for f in marker["films"])
    with pytest.raises(MaanError, match="unknown synthetic format"):
        S.synth("deap", tmp_path / "x", 1)
    with pytest.raises(MaanError, match="not valid for --format dreamer"):
        S.synth("dreamer", tmp_path / "x", 1, long_seconds=(1, 2))
    with pytest.raises(MaanError, match="seed"):
        S.synth("amigos", tmp_path / "x", 1, seed=-1)
    with pytest.raises(MaanError, match="short_seconds"):
        S.synth("amigos", tmp_path / "x", 1, short_seconds=(5, 2))
    with pytest.raises(MaanError):
        S.synth("amigos", tmp_path / "x", 0)


def test_output_folder_safety(tmp_path):
    foreign = tmp_path / "real"
    foreign.mkdir()
    (foreign / "Data_Preprocessed_P01.mat").write_bytes(b"not ours")
    with pytest.raises(InvalidInputError, match="not written by maan synth"):
        S.synth_amigos(foreign, n_subjects=1, short_seconds=SHORT, long_seconds=LONG)
    assert (foreign / "Data_Preprocessed_P01.mat").read_bytes() == b"not ours"
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(InvalidInputError):
        S.synth_amigos(afile, n_subjects=1)
    # a folder of files written by `maan synth` counts as ours
    (foreign / "Data_Preprocessed_P01.mat").unlink()
    S.synth_amigos(foreign, n_subjects=1, short_seconds=SHORT, long_seconds=LONG)
    S.synth_amigos(foreign, n_subjects=1, short_seconds=SHORT, long_seconds=LONG)
    assert S.is_synthetic(foreign / "Data_Preprocessed_P01.mat")
    # re-generating into our own folder replaces the previous cohort entirely
    out = tmp_path / "ours"
    S.synth_amigos(out, n_subjects=3, short_seconds=SHORT, long_seconds=LONG)
    S.synth_amigos(out, n_subjects=2, short_seconds=SHORT, long_seconds=LONG)
    assert sorted(p.name for p in out.glob("Data_Preprocessed_P*")) == [
        "Data_Preprocessed_P01.mat", "Data_Preprocessed_P02.mat"]


# --- physiology --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def physio_table(tmp_path_factory):
    """Per-trial measurements of a small cohort, via a standard R-peak detector and Welch PSD."""
    out = tmp_path_factory.mktemp("physio")
    paths = S.synth_amigos(out, n_subjects=6, seed=11, short_seconds=(30.0, 40.0),
                           long_seconds=(30.0, 40.0), nan_fraction=0.0)
    return _measure_trials(paths)


def _measure_trials(paths):
    """Rows of subject, arousal, valence, heart rate, ln RMSSD, posterior alpha, beta/gamma, asymmetry."""
    import neurokit2 as nk

    ch = list(config.AMIGOS_EEG_CHANNELS)
    post = [ch.index(c) for c in ("O1", "O2", "P7", "P8")]
    right = [ch.index(c) for c in ("F4", "AF4", "F8")]
    left = [ch.index(c) for c in ("F3", "AF3", "F7")]
    rows = []
    for si, p in enumerate(paths):
        m = scipy.io.loadmat(p)
        for t in range(20):
            d = m["joined_data"][0, t]
            if d.size == 0:
                continue
            d = d[int(S.AMIGOS_BASELINE_SECONDS * FS):].T
            _, info = nk.ecg_peaks(d[14], sampling_rate=int(FS))
            rr = np.diff(info["ECG_R_Peaks"]) / FS
            rr = rr[(rr > config.RR_MIN_SECONDS) & (rr < config.RR_MAX_SECONDS)]
            f, pxx = scipy.signal.welch(d[:14], fs=FS, nperseg=256)
            alpha = np.log(pxx[:, (f >= 8) & (f < 14)].mean(axis=1))
            fast = np.log(pxx[:, (f >= 14) & (f < 45)].mean(axis=1))
            lab = m["labels_selfassessment"][0, t][0]
            rows.append([si, lab[0], lab[1], 60.0 / rr.mean(),
                         np.log(np.sqrt(np.mean(np.diff(rr) ** 2))), alpha[post].mean(),
                         fast.mean(), alpha[right].mean() - alpha[left].mean()])
    return np.array(rows)


def _within_corr(table, i, j):
    z = table.copy()
    for s in np.unique(z[:, 0]):
        z[z[:, 0] == s, 1:] -= z[z[:, 0] == s, 1:].mean(axis=0)
    return np.corrcoef(z[:, i], z[:, j])[0, 1]


def test_physiology_follows_ratings(physio_table):
    tab = physio_table
    AROUSAL, VALENCE, HR, LNRMSSD, ALPHA, FAST, ASYM = range(1, 8)
    assert np.isfinite(tab).all()
    assert 40 < tab[:, HR].min() and tab[:, HR].max() < 150
    assert np.corrcoef(tab[:, AROUSAL], tab[:, HR])[0, 1] > 0.1  # across the whole cohort
    assert _within_corr(tab, AROUSAL, HR) > 0.5  # heart rate up with arousal
    assert _within_corr(tab, AROUSAL, LNRMSSD) < -0.3  # HRV down with arousal
    assert _within_corr(tab, AROUSAL, ALPHA) < -0.4  # alpha down with arousal
    assert _within_corr(tab, AROUSAL, FAST) > 0.3  # beta/gamma up with arousal
    assert _within_corr(tab, VALENCE, ASYM) > 0.4  # right-minus-left frontal alpha with valence


def test_reversed_eeg_subjects_keep_their_heart_rate_and_reverse_alpha_and_beta(tmp_path):
    kw = dict(n_subjects=6, seed=11, short_seconds=(30.0, 40.0), long_seconds=(30.0, 40.0), nan_fraction=0.0)
    paths = S.synth_amigos(tmp_path / "r", reversed_eeg_fraction=0.5, **kw)
    truth = S.read_truth(tmp_path / "r")
    assert truth["parameters"]["reversed_eeg_fraction"] == 0.5
    flags = np.array([truth["subjects"][f"P{k + 1:02d}"]["eeg_arousal_reversed"] for k in range(6)])
    assert flags.sum() == 3
    # every other participant is the subject of the default cohort (physio_table's), value for value
    default = S.synth_amigos(tmp_path / "d", **kw)
    for k in range(6):
        ours, theirs = scipy.io.loadmat(paths[k]), scipy.io.loadmat(default[k])
        same_data = all(np.array_equal(a, b, equal_nan=True)
                        for a, b in zip(ours["joined_data"].ravel(), theirs["joined_data"].ravel()))
        assert same_data is not bool(flags[k])
        gains = truth["subjects"][f"P{k + 1:02d}"]["physiology"]
        assert (gains["alpha_arousal_gain"] < 0 and gains["fast_arousal_gain"] < 0) is bool(flags[k])
        assert gains["hr_gain_bpm"] > 0
    tab = _measure_trials(paths)
    rev, same = tab[flags[tab[:, 0].astype(int)]], tab[~flags[tab[:, 0].astype(int)]]
    AROUSAL, HR, ALPHA, FAST = 1, 3, 5, 6
    assert _within_corr(rev, AROUSAL, HR) > 0.5 and _within_corr(same, AROUSAL, HR) > 0.5  # heart rate up in both
    assert _within_corr(rev, AROUSAL, ALPHA) > 0.3 and _within_corr(same, AROUSAL, ALPHA) < -0.3
    assert _within_corr(rev, AROUSAL, FAST) < -0.2 and _within_corr(same, AROUSAL, FAST) > 0.2
    with pytest.raises(MaanError, match="reversed_eeg_fraction"):
        S.synth_amigos(tmp_path / "x", reversed_eeg_fraction=1.5, **kw)
    assert not (tmp_path / "x").exists()  # refused before anything is written


def test_subject_held_out_is_harder(physio_table):
    """Trial-level arousal classification: subject-mixed CV clearly beats leave-subjects-out."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tab = physio_table
    groups = tab[:, 0]
    onehot = (groups[:, None] == np.unique(groups)[None, :]).astype(float)  # lets the model learn baselines
    x = np.column_stack([tab[:, 3:], onehot])
    y = tab[:, 1] > config.LABEL_THRESHOLDS["amigos"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    mixed = cross_val_score(model, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0)).mean()
    held = cross_val_score(model, x, y, cv=GroupKFold(3), groups=groups).mean()
    assert mixed > 0.7
    assert mixed - held > 0.05
