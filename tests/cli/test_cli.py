"""The CLI as a user meets it: --help everywhere, and bad input = one line on stderr, exit 2."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from maan.cli import build_parser, main
from maan.datasets import synth_cohort

SUBCOMMANDS = ["synth", "preprocess", "demo"]


@pytest.fixture(scope="session")
def cohort(tmp_path_factory):
    """Three small synthetic AMIGOS-format subjects (short trials)."""
    folder = tmp_path_factory.mktemp("amigos")
    synth_cohort("amigos", folder, n_subjects=3, seed=7, short_seconds=(20.0, 30.0), long_seconds=(40.0, 50.0))
    return folder


def copy_cohort(cohort, tmp_path, subjects=("P01", "P02", "P03")):
    folder = tmp_path / "data"
    folder.mkdir()
    for s in subjects:
        shutil.copy(cohort / f"Data_Preprocessed_{s}.mat", folder)
    for marker in cohort.glob("*.json"):
        shutil.copy(marker, folder)
    return folder


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", [[]] + [[c] for c in SUBCOMMANDS])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(command + ["--help"])
    assert exit_info.value.code == 0
    assert "usage: maan" in capsys.readouterr().out


def test_preprocess_synthetic_cohort_counts_are_exact(cohort, tmp_path, capsys):
    code, out, _ = run(["preprocess", "--dataset", "amigos", "--data", str(cohort), "--out", str(tmp_path / "f"),
                        "--jobs", "2", "-q"], capsys)
    assert code == 0
    assert "SYNTHETIC" in out
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert manifest["synthetic"] is True
    # Every whole 10-s window of every non-empty trial is either kept or dropped with a reason.
    expected = 0
    for mat in sorted(cohort.glob("Data_Preprocessed_P*.mat")):
        for cell in scipy.io.loadmat(mat)["joined_data"][0]:
            expected += cell.shape[0] // 1280 if cell.size else 0
    assert manifest["windows"] + sum(manifest["dropped"].values()) == expected
    assert manifest["windows"] > 0 and manifest["dropped"].get("nan", 0) > 0


def test_rerun_resumes_and_skips_finished_subjects(cohort, tmp_path, capsys):
    data = copy_cohort(cohort, tmp_path)
    out = tmp_path / "f"
    args = ["preprocess", "--dataset", "amigos", "--data", str(data), "--out", str(out), "--jobs", "1", "-q"]
    (data / "Data_Preprocessed_P03.mat").write_bytes((cohort / "Data_Preprocessed_P03.mat").read_bytes()[:5000])
    code, _, err = run(args, capsys)
    assert code == 2
    line = one_line_error(err)
    assert "Data_Preprocessed_P03.mat" in line
    stored = {p.name: p.stat().st_mtime_ns for p in (out / "subjects").glob("*.h5")}
    assert set(stored) == {"P01.h5", "P02.h5"}  # finished subjects are kept
    code, _, _ = run(args + ["--skip-invalid"], capsys)
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["invalid_inputs"][0]["path"].endswith("Data_Preprocessed_P03.mat")
    assert {p.name: p.stat().st_mtime_ns for p in (out / "subjects").glob("*.h5")} == stored  # not redone
    code, _, err = run(args[:-1] + ["--window", "5", "-q"], capsys)
    assert code == 2 and "another configuration" in one_line_error(err)


def bad_mat_files(cohort, folder):
    good = scipy.io.loadmat(cohort / "Data_Preprocessed_P01.mat")
    yield "not a MAT", lambda p: p.write_text("hello, I am a text file\n")
    yield "truncated", lambda p: p.write_bytes((cohort / "Data_Preprocessed_P01.mat").read_bytes()[:3000])
    yield "no joined_data", lambda p: scipy.io.savemat(p, {"labels_selfassessment": good["labels_selfassessment"]})

    def wrong_columns(p):
        cells = good["joined_data"].copy()
        cells[0, 0] = cells[0, 0][:, :15]
        scipy.io.savemat(p, {**{k: v for k, v in good.items() if not k.startswith("__")}, "joined_data": cells})
    yield "wrong column count", wrong_columns

    def all_nan_trial(p):
        cells = good["joined_data"].copy()
        cells[0, 1] = np.full_like(cells[0, 1], np.nan)
        scipy.io.savemat(p, {**{k: v for k, v in good.items() if not k.startswith("__")}, "joined_data": cells})
    yield "all-NaN trial", all_nan_trial

    def flat_ecg(p):
        cells = good["joined_data"].copy()
        cells[0, 2] = cells[0, 2].copy()
        cells[0, 2][:, 14:16] = 0.0
        scipy.io.savemat(p, {**{k: v for k, v in good.items() if not k.startswith("__")}, "joined_data": cells})
    yield "ECG without beats", flat_ecg


def test_bad_files_give_one_line_naming_the_file(cohort, tmp_path, capsys):
    for i, (what, make) in enumerate(bad_mat_files(cohort, tmp_path)):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        bad = folder / "Data_Preprocessed_P01.mat"
        make(bad)
        code, _, err = run(["preprocess", "--dataset", "amigos", "--data", str(folder),
                            "--out", str(tmp_path / f"out{i}"), "-q"], capsys)
        assert code == 2, what
        line = one_line_error(err)
        assert str(bad) in line, (what, line)


def test_bad_folders_and_options(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for argv, needle in [
        (["preprocess", "--dataset", "amigos", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")], "missing"),
        (["preprocess", "--dataset", "amigos", "--data", str(empty), "--out", str(tmp_path / "o")], "empty"),
        (["preprocess", "--dataset", "dreamer", "--data", str(empty), "--out", str(tmp_path / "o")], "empty"),
    ]:
        code, _, err = run(argv, capsys)
        assert code == 2
        assert needle in one_line_error(err)


def test_unknown_dataset_is_one_line_exit_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "maan", "preprocess", "--dataset", "deap", "--data", str(tmp_path),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "invalid choice: 'deap'" in proc.stderr
