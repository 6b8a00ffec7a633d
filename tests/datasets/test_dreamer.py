"""DREAMER reader: round-trips of a synthetic DREAMER.mat and bad input."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.io

from maan import config
from maan.datasets import dreamer as D
from maan.datasets import synthetic as S
from maan.datasets.record import Record
from maan.errors import InvalidInputError


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("dreamer")
    path = S.synth_dreamer(out, n_subjects=3, seed=2, stimulus_seconds=(5.0, 8.0), baseline_seconds=3.0)
    return out, path


@pytest.fixture(autouse=True)
def _fresh_cache():
    D.clear_cache()
    yield
    D.clear_cache()


def _variant(src, dst, edit):
    """Copy a DREAMER.mat through loadmat/savemat, letting ``edit`` change the loaded struct."""
    m = scipy.io.loadmat(src)
    edit(m["DREAMER"])
    scipy.io.savemat(dst, {"DREAMER": m["DREAMER"]})
    return dst


def test_list_from_file_or_folder(cohort):
    out, path = cohort
    for arg in (out, path, str(path)):
        subjects = D.list_dreamer_subjects(arg)
        assert [s.subject for s in subjects] == ["S01", "S02", "S03"]
        assert {s.path for s in subjects} == {str(path.resolve())}


def test_round_trip(cohort):
    out, path = cohort
    raw = scipy.io.loadmat(path)["DREAMER"][0, 0]["Data"]
    for k, src in enumerate(D.list_dreamer_subjects(out)):
        records = src.load()
        assert [r.trial for r in records] == list(range(1, 19))
        subj = raw[0, k]
        for r in records:
            assert isinstance(r, Record) and r.subject == src.subject
            t = r.trial - 1
            eeg = subj["EEG"][0, 0]["stimuli"][0, 0][t, 0]
            ecg = subj["ECG"][0, 0]["stimuli"][0, 0][t, 0]
            assert r.eeg.channels == config.DREAMER_EEG_CHANNELS
            assert r.ecg.channels == config.DREAMER_ECG_CHANNELS
            assert r.eeg.fs == config.DREAMER_EEG_FS == 128
            assert r.ecg.fs == config.DREAMER_ECG_FS == 256
            assert r.eeg.data.shape == (14, eeg.shape[0]) and r.ecg.data.shape == (2, ecg.shape[0])
            assert r.eeg.data.dtype == r.ecg.data.dtype == np.float64
            np.testing.assert_array_equal(r.eeg.data, eeg.T)
            np.testing.assert_array_equal(r.ecg.data, ecg.T)
            assert r.ratings == {
                "valence": subj["ScoreValence"][0, 0][t, 0],
                "arousal": subj["ScoreArousal"][0, 0][t, 0],
                "dominance": subj["ScoreDominance"][0, 0][t, 0],
            }
            assert set(r.ratings.values()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_file_loaded_once(cohort):
    out, path = cohort
    for src in D.list_dreamer_subjects(out):
        src.load()
    D.read_dreamer_subject(path, "S02")
    info = D._load_cached.cache_info()
    assert info.misses == 1 and info.hits >= 4


def test_records_do_not_alias_cache(cohort):
    out, path = cohort
    first = D.read_dreamer_subject(path, 1)
    first[0].eeg.data[:] = 0.0  # a pipeline filtering in place must not corrupt the cache
    again = D.read_dreamer_subject(path, 1)
    assert np.abs(again[0].eeg.data).max() > 0


def test_subject_lookup_and_baselines(cohort):
    out, path = cohort
    a = D.read_dreamer_subject(out, "S03")
    b = D.read_dreamer_subject(out, 3)
    np.testing.assert_array_equal(a[5].ecg.data, b[5].ecg.data)
    with pytest.raises(InvalidInputError, match="no subject"):
        D.read_dreamer_subject(out, "S04")
    base = D.read_dreamer_baselines(out, "S01")
    assert sorted(base) == list(range(1, 19))
    ecg, eeg = base[1]
    assert ecg.data.shape == (2, 3 * 256) and eeg.data.shape == (14, 3 * 128)
    assert ecg.fs == 256 and eeg.fs == 128


def test_reordered_electrodes_are_put_in_montage_order(cohort, tmp_path):
    out, path = cohort
    perm = np.arange(14)[::-1]

    def edit(top):
        el = top[0, 0]["EEG_Electrodes"]
        top[0, 0]["EEG_Electrodes"] = el[:, perm]
        for cell in top[0, 0]["Data"][0]:
            stim = cell["EEG"][0, 0]["stimuli"][0, 0]
            for t in range(18):
                stim[t, 0] = np.asfortranarray(stim[t, 0][:, perm])

    dst = _variant(path, tmp_path / "DREAMER.mat", edit)
    a = D.read_dreamer_subject(dst, 1)
    b = D.read_dreamer_subject(path, 1)
    np.testing.assert_array_equal(a[0].eeg.data, b[0].eeg.data)


def test_empty_stimulus_skipped(cohort, tmp_path, caplog):
    out, path = cohort

    def edit(top):
        top[0, 0]["Data"][0, 1]["ECG"][0, 0]["stimuli"][0, 0][6, 0] = np.zeros((0, 0))

    dst = _variant(path, tmp_path / "DREAMER.mat", edit)
    with caplog.at_level(logging.WARNING, logger="maan"):
        records = D.read_dreamer_subject(dst, "S02")
    assert [r.trial for r in records] == [t for t in range(1, 19) if t != 7]
    assert any("S02" in m and "7" in m for m in caplog.messages)


def test_struct_array_data_accepted(cohort, tmp_path):
    """DREAMER.Data as a 1xN struct array (instead of the released 1xN cell) reads the same."""
    out, path = cohort

    def edit(top):
        cells = list(top[0, 0]["Data"][0])
        arr = np.concatenate(cells, axis=1)
        holder = np.empty((1, 1), dtype=object)
        holder[0, 0] = arr
        top["Data"] = holder

    dst = _variant(path, tmp_path / "DREAMER.mat", edit)
    assert scipy.io.loadmat(dst)["DREAMER"][0, 0]["Data"].dtype.names is not None
    a = D.read_dreamer_subject(dst, 2)
    b = D.read_dreamer_subject(path, 2)
    assert [r.ratings for r in a] == [r.ratings for r in b]
    np.testing.assert_array_equal(a[-1].ecg.data, b[-1].ecg.data)


# --- bad input -------------------------------------------------------------------------------
def _expect_invalid(arg, path, match=None):
    with pytest.raises(InvalidInputError, match=match) as info:
        for src in D.list_dreamer_subjects(arg):
            src.load()
    assert str(path) in str(info.value)


def test_missing_file_and_folder(tmp_path):
    _expect_invalid(tmp_path / "DREAMER.mat", tmp_path / "DREAMER.mat", "not found")
    _expect_invalid(tmp_path / "nope", tmp_path / "nope", "not found")
    _expect_invalid(tmp_path, tmp_path, "no DREAMER.mat")


def test_not_a_mat_file(cohort, tmp_path):
    path = tmp_path / "DREAMER.mat"
    path.write_text("valence,arousal\n1,2\n")
    _expect_invalid(path, path, "not a readable MAT file")
    blob = cohort[1].read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    _expect_invalid(tmp_path, path, "not a readable MAT file")


def test_wrong_variables(tmp_path):
    path = tmp_path / "DREAMER.mat"
    scipy.io.savemat(path, {"joined_data": np.zeros((3, 3))})
    _expect_invalid(path, path, "no variable 'DREAMER'")
    scipy.io.savemat(path, {"DREAMER": {"Version": "1"}})
    _expect_invalid(path, path, "no field 'Data'")
    scipy.io.savemat(path, {"DREAMER": np.zeros((2, 2))})
    _expect_invalid(path, path, "not a MATLAB struct")


def test_wrong_channel_count(cohort, tmp_path):
    out, path = cohort

    def edit(top):
        stim = top[0, 0]["Data"][0, 2]["EEG"][0, 0]["stimuli"][0, 0]
        stim[3, 0] = stim[3, 0][:, :13]

    dst = _variant(path, tmp_path / "DREAMER.mat", edit)
    _expect_invalid(dst, dst, r"Data\{3\}.EEG.stimuli\{4\}.*14")


def test_wrong_stimulus_count(cohort, tmp_path):
    out, path = cohort

    def edit(top):
        eeg = top[0, 0]["Data"][0, 0]["EEG"][0, 0]
        eeg["stimuli"][0, 0] = eeg["stimuli"][0, 0][:17]

    dst = _variant(path, tmp_path / "DREAMER.mat", edit)
    _expect_invalid(dst, dst, "17 cells, expected 18")
