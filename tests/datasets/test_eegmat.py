"""The eegmat reader (``--dataset eegmat``) on a folder built from ../shared/data/eegmat."""
from __future__ import annotations

import os

import pytest

from maan.cli import main
from maan.datasets.eegmat import eegmat_files, list_eegmat_subjects, read_subject_info
from maan.errors import InvalidInputError
from tests.conftest import shared_file


def one_line(capsys):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def folder(tmp_path):
    """Subject00 (both files), Subject03 (the rest file only), subject-info.csv and other files."""
    data = tmp_path / "eegmat"
    data.mkdir()
    for name in ("Subject00_1.edf", "Subject00_2.edf", "Subject03_1.edf", "subject-info.csv"):
        os.symlink(shared_file("eegmat", name), data / name)
    (data / "README").write_text("not a recording\n")
    (data / "Subject09_3.edf").write_text("not an eegmat name\n")
    return data


def test_files_subjects_labels_and_metadata(folder):
    assert [(p.name, s, t) for p, s, t in eegmat_files(folder)] == [
        ("Subject00_1.edf", "Subject00", 0), ("Subject00_2.edf", "Subject00", 1), ("Subject03_1.edf", "Subject03", 0)]
    sources = list_eegmat_subjects(folder)
    assert [s.subject for s in sources] == ["Subject00", "Subject03"]
    assert sources.targets == ("task",) and "EEG A2-A1" not in sources.eeg_channels
    assert len(sources.eeg_channels) == 19
    assert sources.subject_info == {
        "Subject00": {"Age": 21, "Gender": "F", "Recording year": 2011, "Number of subtractions": 9.7,
                      "Count quality": 0},
        "Subject03": {"Age": 17, "Gender": "F", "Recording year": 2010, "Number of subtractions": 31,
                      "Count quality": 1}}
    records = sources[0].load()
    assert [(r.trial, r.ratings) for r in records] == [(1, {"task": 0.0}), (2, {"task": 1.0})]
    assert records[0].eeg.fs == records[0].ecg.fs == 128.0 and records[0].ecg.channels == ("ECG ECG",)
    assert list_eegmat_subjects(folder, fs=256.0)[1].load()[0].eeg.fs == 256.0


def test_subject_info_is_optional_and_checked(folder):
    (folder / "subject-info.csv").unlink()
    assert list_eegmat_subjects(folder).subject_info == {}
    (folder / "subject-info.csv").write_text("Name,Age\nx,3\n")
    with pytest.raises(InvalidInputError, match="subject-info.csv: no 'Subject' column"):
        list_eegmat_subjects(folder)
    assert read_subject_info(shared_file("eegmat", "subject-info.csv"))["Subject01"]["Count quality"] == 1


def test_bad_folders_name_the_file(folder, tmp_path):
    with pytest.raises(InvalidInputError, match="missing: folder not found"):
        list_eegmat_subjects(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="no SubjectNN_1.edf / SubjectNN_2.edf files .*maan fetch eegmat"):
        list_eegmat_subjects(tmp_path)
    (folder / "Subject00_2.edf").unlink()
    (folder / "Subject00_2.edf").write_bytes(b"0       truncated")
    with pytest.raises(InvalidInputError, match="Subject00_2.edf: not a recording MNE can read"):
        list_eegmat_subjects(folder)


def test_cli_preprocess_eegmat(folder, tmp_path, capsys):
    (folder / "Subject03_1.edf").unlink()
    code = main(["preprocess", "--dataset", "eegmat", "--data", str(folder), "--out", str(tmp_path / "f"), "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "Features of 1 subjects (eegmat, data)" in out and "windows kept: 24" in out
    assert "task: 25% high" in out
    for extra, match in ((["--labels", "x.csv"], "--labels only applies to --dataset recordings (not eegmat)"),
                         (["--exclude", "EEG Cz"], "--exclude only applies to --dataset recordings"),
                         (["--fs", "20"], "--fs 20 Hz is too low")):
        code = main(["preprocess", "--dataset", "eegmat", "--data", str(folder), "--out", str(tmp_path / "g"),
                     "-q", *extra])
        assert code == 2 and match in one_line(capsys)
    code = main(["preprocess", "--dataset", "eegmat", "--data", str(tmp_path / "g"), "--out", str(tmp_path / "h"),
                 "-q"])
    assert code == 2 and "folder not found" in one_line(capsys)
