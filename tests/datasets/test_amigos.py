"""AMIGOS reader: round-trips of synthetic cohorts and bad input."""
from __future__ import annotations

import json
import logging
import shutil
import zipfile

import numpy as np
import pytest
import scipy.io

from maan import config
from maan.datasets import synthetic as S
from maan.datasets.amigos import list_amigos_subjects, read_amigos_subject
from maan.datasets.record import Record
from maan.errors import InvalidInputError

FS = config.AMIGOS_FS


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("amigos")
    paths = S.synth_amigos(out, n_subjects=3, seed=1, short_seconds=(6.0, 9.0), long_seconds=(10.0, 14.0),
                           nan_fraction=0.7)
    truth = S.read_truth(out)
    return out, paths, truth


def _valid_mdict(n_cols=17, n_cells=20, n_labels=12):
    rng = np.random.default_rng(0)
    data = np.empty((1, n_cells), dtype=object)
    labels = np.empty((1, n_cells), dtype=object)
    for t in range(n_cells):
        data[0, t] = rng.normal(size=(300, n_cols))
        labels[0, t] = rng.uniform(1, 9, size=(1, n_labels))
    return {"joined_data": data, "labels_selfassessment": labels}


def test_list_sorted_ids(cohort):
    out, paths, _ = cohort
    subjects = list_amigos_subjects(out)
    assert [s.subject for s in subjects] == ["P01", "P02", "P03"]
    assert [s.path for s in subjects] == [str(p) for p in paths]


def test_round_trip(cohort, caplog):
    out, paths, truth = cohort
    seen_empty = seen_nan = 0
    for src in list_amigos_subjects(out):
        raw = scipy.io.loadmat(src.path)
        with caplog.at_level(logging.WARNING, logger="maan"):
            caplog.clear()
            records = src.load()
        missing = truth["subjects"][src.subject]["missing_long_videos"]
        expected_trials = list(range(1, 17)) if missing else list(range(1, 21))
        assert [r.trial for r in records] == expected_trials
        if missing:
            seen_empty += 1
            assert any(src.path in m and "17, 18, 19, 20" in m for m in caplog.messages)
        else:
            assert not caplog.messages
        for r in records:
            assert isinstance(r, Record)
            assert r.subject == src.subject and r.source == src.path
            cell = raw["joined_data"][0, r.trial - 1]
            assert r.eeg.channels == config.AMIGOS_EEG_CHANNELS
            assert r.ecg.channels == config.AMIGOS_ECG_CHANNELS
            assert r.eeg.fs == r.ecg.fs == FS
            assert r.eeg.data.dtype == r.ecg.data.dtype == np.float64
            assert r.eeg.data.shape == (14, cell.shape[0]) and r.ecg.data.shape == (2, cell.shape[0])
            assert r.eeg.data.flags["C_CONTIGUOUS"]
            np.testing.assert_array_equal(r.eeg.data, cell[:, :14].T)
            np.testing.assert_array_equal(r.ecg.data[0], cell[:, 14])  # ECG Right
            np.testing.assert_array_equal(r.ecg.data[1], cell[:, 15])  # ECG Left
            lab = raw["labels_selfassessment"][0, r.trial - 1][0]
            assert list(r.ratings) == list(config.AMIGOS_RATINGS)
            assert [r.ratings[k] for k in config.AMIGOS_RATINGS] == lab.tolist()
        # NaN stretches survive the reader
        by_trial = {r.trial: r for r in records}
        for tr in truth["subjects"][src.subject]["trials"]:
            for st in tr.get("nan_stretches", []):
                seen_nan += 1
                r = by_trial[tr["trial"]]
                a = int(round(st["start_s"] * FS))
                b = a + int(round(st["seconds"] * FS))
                if st["columns"] in ("all", "eeg"):
                    assert np.isnan(r.eeg.data[:, a:b]).all()
                if st["columns"] in ("all", "physio"):
                    assert np.isnan(r.ecg.data[:, a:b]).all()
                assert not np.isnan(r.eeg.data).all()
    assert seen_empty >= 1 and seen_nan >= 1


def test_zip_and_subfolder_layouts(cohort, tmp_path):
    out, paths, _ = cohort
    # distributed archives, one per participant
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    for p in paths:
        with zipfile.ZipFile(zipped / p.with_suffix(".zip").name, "w") as zf:
            zf.write(p, arcname=f"{p.stem}/{p.name}")
    subjects = list_amigos_subjects(zipped)
    assert [s.subject for s in subjects] == ["P01", "P02", "P03"]
    assert all(s.path.endswith(".zip") for s in subjects)
    a = subjects[0].load()
    b = read_amigos_subject(paths[0])
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.eeg.data, y.eeg.data)
        assert x.ratings == y.ratings and x.source.endswith(".zip")
    assert sorted(p.suffix for p in zipped.iterdir()) == [".zip"] * 3  # nothing extracted
    # unpacked release: one sub-folder per participant; a .mat beats a .zip of the same participant
    nested = tmp_path / "nested"
    for p in paths:
        (nested / p.stem).mkdir(parents=True)
        shutil.copy(p, nested / p.stem / p.name)
    shutil.copy(zipped / "Data_Preprocessed_P02.zip", nested / "Data_Preprocessed_P02.zip")
    subjects = list_amigos_subjects(nested)
    assert [s.subject for s in subjects] == ["P01", "P02", "P03"]
    assert all(s.path.endswith(".mat") for s in subjects)


def test_nan_trial_reported_not_raised(tmp_path):
    """Choice: an all-NaN trial is returned as a Record whose data are all NaN (the pipeline counts it)."""
    md = _valid_mdict()
    md["joined_data"][0, 4] = np.full((300, 17), np.nan)
    path = tmp_path / "Data_Preprocessed_P07.mat"
    scipy.io.savemat(path, md)
    records = read_amigos_subject(path)
    assert len(records) == 20 and records[0].subject == "P07"
    assert np.isnan(records[4].eeg.data).all() and np.isnan(records[4].ecg.data).all()


def test_unlabelled_trial_skipped_with_warning(tmp_path, caplog):
    md = _valid_mdict()
    md["labels_selfassessment"][0, 2] = np.zeros((0, 0))
    path = tmp_path / "Data_Preprocessed_P01.mat"
    scipy.io.savemat(path, md)
    with caplog.at_level(logging.WARNING, logger="maan"):
        records = read_amigos_subject(path)
    assert [r.trial for r in records] == [t for t in range(1, 21) if t != 3]
    assert any("trial 3" in m and "self-assessment" in m for m in caplog.messages)
    md["labels_selfassessment"][0, 2] = np.full((1, 12), 5.0)
    md["labels_selfassessment"][0, 4][0, 1] = np.nan  # valence missing
    md["labels_selfassessment"][0, 6][0, 2] = np.nan  # dominance missing: kept
    scipy.io.savemat(path, md)
    records = read_amigos_subject(path)
    assert [r.trial for r in records] == [t for t in range(1, 21) if t != 5]
    assert np.isnan(records[5].ratings["dominance"])


# --- bad input -------------------------------------------------------------------------------
def _expect_invalid(path, match=None):
    with pytest.raises(InvalidInputError, match=match) as info:
        read_amigos_subject(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    return info.value


def test_truncated_file(cohort, tmp_path):
    blob = cohort[1][0].read_bytes()
    path = tmp_path / "Data_Preprocessed_P01.mat"
    path.write_bytes(blob[: len(blob) // 2])
    _expect_invalid(path, "not a readable MAT file")
    path.write_bytes(blob[:100])
    _expect_invalid(path, "not a readable MAT file")


def test_text_file_named_mat(tmp_path):
    path = tmp_path / "Data_Preprocessed_P01.mat"
    path.write_text("subject,trial\n1,2\n" * 50)
    _expect_invalid(path, "not a readable MAT file")
    path.write_bytes(b"")
    _expect_invalid(path)


def test_mat_without_joined_data(tmp_path):
    path = tmp_path / "Data_Preprocessed_P01.mat"
    scipy.io.savemat(path, {"labels_selfassessment": _valid_mdict()["labels_selfassessment"]})
    _expect_invalid(path, "no variable 'joined_data'")
    scipy.io.savemat(path, {"joined_data": _valid_mdict()["joined_data"]})
    _expect_invalid(path, "no variable 'labels_selfassessment'")
    scipy.io.savemat(path, {"joined_data": np.zeros((300, 17)), "labels_selfassessment": np.zeros((20, 12))})
    _expect_invalid(path, "not a cell array")


def test_wrong_column_count(tmp_path):
    path = tmp_path / "Data_Preprocessed_P01.mat"
    scipy.io.savemat(path, _valid_mdict(n_cols=16))
    _expect_invalid(path, "trial 1: .*17 columns")
    md = _valid_mdict()
    md["joined_data"][0, 5] = md["joined_data"][0, 5].T  # one transposed trial
    scipy.io.savemat(path, md)
    _expect_invalid(path, "trial 6")


def test_wrong_cell_or_label_count(tmp_path):
    path = tmp_path / "Data_Preprocessed_P01.mat"
    scipy.io.savemat(path, _valid_mdict(n_cells=19))
    _expect_invalid(path, "1x20 cells")
    scipy.io.savemat(path, _valid_mdict(n_labels=11))
    _expect_invalid(path, "labels_selfassessment")


def test_bad_zip(cohort, tmp_path):
    path = tmp_path / "Data_Preprocessed_P01.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    _expect_invalid(path, "zip")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "no mat here")
    _expect_invalid(path, "no .mat")


def test_missing_file(tmp_path):
    _expect_invalid(tmp_path / "Data_Preprocessed_P01.mat", "not found")


def test_folder_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="not found") as info:
        list_amigos_subjects(tmp_path / "nope")
    assert info.value.path == str(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="no Data_Preprocessed_PXX"):
        list_amigos_subjects(empty)
    (empty / "notes.txt").write_text("x")
    (empty / "P01.mat").write_text("x")
    with pytest.raises(InvalidInputError, match="no Data_Preprocessed_PXX"):
        list_amigos_subjects(empty)


def test_listing_is_lazy(tmp_path):
    """Listing never opens a file; a bad file only fails when its subject is loaded."""
    (tmp_path / "Data_Preprocessed_P03.mat").write_text("garbage")
    scipy.io.savemat(tmp_path / "Data_Preprocessed_P01.mat", _valid_mdict())
    subjects = list_amigos_subjects(tmp_path)
    assert [s.subject for s in subjects] == ["P01", "P03"]
    assert len(subjects[0].load()) == 20
    with pytest.raises(InvalidInputError) as info:
        subjects[1].load()
    assert info.value.path == str(tmp_path / "Data_Preprocessed_P03.mat")


def test_complex_samples_are_refused_not_cast(tmp_path):
    path = tmp_path / "Data_Preprocessed_P01.mat"
    md = _valid_mdict()
    md["joined_data"][0, 2] = md["joined_data"][0, 2] * (1 + 1j)
    scipy.io.savemat(path, md)
    _expect_invalid(path, "trial 3: joined_data is not real-valued numbers")


def test_declared_sizes_that_do_not_fit_are_refused_before_scipy_parses_them(cohort, tmp_path):
    """SciPy's MAT reader crashes the process on some corrupt files (a dimension or a size made
    larger than the data); the structure check refuses them first, naming the file."""
    import struct

    blob = bytearray(cohort[1][0].read_bytes())
    # the first array's first dimension (after its tag, flags and the dims tag): far too large
    struct.pack_into("<i", blob, 128 + 8 + 16 + 8, 10**8)
    path = tmp_path / "Data_Preprocessed_P01.mat"
    path.write_bytes(bytes(blob))
    _expect_invalid(path, "not a readable MAT file .corrupt: .*")
    blob[126:128] = b"XX"  # a v5 file whose byte-order mark is damaged
    path.write_bytes(bytes(blob))
    _expect_invalid(path, "header's version or byte order is damaged")
