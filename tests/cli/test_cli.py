"""The CLI as a user meets it: --help everywhere, and bad input = one line on stderr, exit 2."""
import argparse
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from maan.cli import build_parser, main
from maan.datasets import synth_cohort
from tests.conftest import one_line_error
from tests.conftest import run_cli as run

SUBCOMMANDS = ["synth", "preprocess", "demo", "fetch", "train", "evaluate", "cv", "reproduce", "figures", "report",
               "predict", "stream", "play"]
#: the most options (-h not counted) a person can hold in their head, per training command
MAX_OPTIONS = {"train": 14, "cv": 16, "reproduce": 18}


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
        argv = ["preprocess", "--dataset", "amigos", "--data", str(folder), "--out", str(tmp_path / f"out{i}"), "-q"]
        if what == "ECG without beats":  # a partial recording (EEG only) unless both modalities are required
            code, out, _ = run(argv, capsys)
            assert code == 0 and "windows kept with one modality" in out, what
            manifest = json.loads((tmp_path / f"out{i}" / "manifest.json").read_text())
            assert manifest["subjects"]["P01"]["partial_trials"][0]["missing"] == "ecg"
            argv = argv + ["--require-all-modalities", "--overwrite"]
        code, _, err = run(argv, capsys)
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


# -- options a person can hold in their head; --config for the rest ----------------------------
def subparsers() -> dict:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def test_every_command_is_registered():
    assert sorted(subparsers()) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize("command", sorted(MAX_OPTIONS))
def test_training_commands_have_few_options(command):
    options = [a for a in subparsers()[command]._actions if not isinstance(a, argparse._HelpAction)]
    assert len(options) <= MAX_OPTIONS[command], [a.option_strings or a.dest for a in options]
    names = {s for a in options for s in a.option_strings}
    assert {"--recipe", "--config", "--epochs", "--seed", "--accelerator", "--devices", "-q"} <= names


def test_train_help_fits_on_one_screen(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    assert len(text.splitlines()) <= 40, text
    assert "performance.md" not in text


def test_help_defaults_are_train_configs():
    from maan.cli.train import HELP_DEFAULTS
    from maan.training.module import TrainConfig

    assert HELP_DEFAULTS == {k: getattr(TrainConfig(), k) for k in HELP_DEFAULTS}


@pytest.mark.parametrize("option", [["--normalize", "subject"], ["--mixup", "0"], ["--modality-balance", "off"],
                                    ["--rr-skip", "beats"], ["--no-input-skip"], ["--no-spatial-skip"],
                                    ["--patience", "2"], ["--lr", "0.01"], ["--width", "8"], ["--strategy", "ddp"]])
def test_removed_options_are_one_line_exit_2(option, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cv", "--features", "f", "--out", "o", *option])
    assert exc.value.code == 2
    assert "unrecognized arguments" in one_line_error(capsys.readouterr().err)


def test_an_unknown_recipe_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--features", "f", "--out", str(tmp_path / "o"), "--recipe", "bogus"])
    assert exc.value.code == 2
    line = one_line_error(capsys.readouterr().err)
    assert "bogus" in line and "paper" in line and "cross-subject" in line
    assert not (tmp_path / "o").exists()


@pytest.fixture
def captured(monkeypatch):
    """run_cv / train_model / run_reproduce replaced by stubs that keep their keyword arguments."""
    import maan.cli.report
    import maan.evaluation.cv
    import maan.training.train

    import inspect

    calls = {}

    def stub(name, module, attr):
        signature = inspect.signature(getattr(module, attr))

        def record(*args, **kwargs):
            signature.bind(*args, **kwargs)  # the CLI calls the real function's signature
            calls[name] = kwargs
            return {}
        monkeypatch.setattr(module, attr, record)

    stub("cv", maan.evaluation.cv, "run_cv")
    stub("reproduce", maan.evaluation.cv, "run_reproduce")
    stub("train", maan.training.train, "train_model")
    monkeypatch.setattr(maan.cli.report, "figures_and_report", lambda *a, **k: None)
    return calls


COMMAND_LINES = {"train": ["train", "--features", "f", "--out", "o"],
                 "cv": ["cv", "--features", "f", "--out", "o"],
                 "reproduce": ["reproduce", "--dataset", "amigos", "--features", "f", "--out", "o"]}


@pytest.mark.parametrize("command", sorted(COMMAND_LINES))
def test_config_file_values_reach_train_config_and_options_override_them(command, captured, tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text('epochs = 7\npatience = 2\nlr = 0.01\nbalance = "sampler"\n[model_kwargs]\nwidth = 8\n')
    code, _, err = run(COMMAND_LINES[command] + ["--config", str(config), "--recipe", "cross-subject"], capsys)
    assert code == 0, err
    kwargs = captured[command]
    assert kwargs["recipe"] == "cross-subject"
    cfg = kwargs["config"]
    assert (cfg.epochs, cfg.patience, cfg.lr, cfg.balance, cfg.model_kwargs) == (7, 2, 0.01, "sampler", {"width": 8})
    assert cfg.accelerator == "auto" and cfg.devices == 1  # unset options do not override

    code, _, err = run(COMMAND_LINES[command] + ["--config", str(config), "--epochs", "3", "--accelerator", "cpu",
                                                 "--devices", "2", "--seed", "4"], capsys)
    assert code == 0, err
    kwargs = captured[command]
    cfg = kwargs["config"]
    assert (cfg.epochs, cfg.patience, cfg.accelerator, cfg.devices) == (3, 2, "cpu", 2)
    assert kwargs["seed"] == 4 and kwargs["recipe"] == "paper"

    code, _, err = run(COMMAND_LINES[command] + ["--epochs", "3"], capsys)  # no file: TrainConfig's defaults
    assert code == 0, err
    cfg = captured[command]["config"]
    assert (cfg.epochs, cfg.patience, cfg.lr) == (3, 5, "auto")


@pytest.mark.parametrize("content, needles", [
    ("epochs = 3\nmixup = 1.0\n", ("config.toml", "mixup")),      # an unknown key (mixup is a recipe's now)
    ("patience = 2\nnormalize = 'subject'\n", ("config.toml", "normalize")),
    ("epochs = 0\n", ("config.toml", "epochs", "0")),                # a bad value names the file and parameter
    ("balance = 'loud'\n", ("config.toml", "balance", "loud", "weights")),
    ("lr = 'fast'\n", ("config.toml", "lr", "fast", "auto")),
    ("epochs = \n", ("config.toml",)),                                # not TOML
])
def test_a_bad_config_file_is_one_line_exit_2(content, needles, tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text(content)
    for command in sorted(COMMAND_LINES):
        argv = [str(tmp_path / "o") if a == "o" else a for a in COMMAND_LINES[command]]
        code, _, err = run(argv + ["--config", str(config)], capsys)
        assert code == 2, (command, err)
        line = one_line_error(err)
        assert all(n in line for n in needles), line
        assert not (tmp_path / "o").exists()


def test_a_missing_config_file_is_one_line_exit_2(tmp_path, capsys):
    code, _, err = run(["cv", "--features", "f", "--out", str(tmp_path / "o"),
                        "--config", str(tmp_path / "nope.toml")], capsys)
    assert code == 2 and "nope.toml" in one_line_error(err)


# -- maan demo --real-data ----------------------------------------------------------------------
def test_demo_real_data_must_be_an_eegmat_folder(tmp_path, capsys):
    not_eegmat = tmp_path / "not-eegmat"
    not_eegmat.mkdir()
    (not_eegmat / "Subject00_1.edf").write_bytes(b"")  # a rest recording without its task pair
    for folder in ("/nope", str(not_eegmat)):
        code, out, err = run(["demo", "--out", str(tmp_path / "demo"), "--real-data", folder], capsys)
        assert code == 2
        line = one_line_error(err)
        assert folder in line and "--real-data" in line
        assert not (tmp_path / "demo").exists()  # refused before any work


def test_demo_finds_no_data_by_itself():
    import inspect

    import maan.cli.data

    source = inspect.getsource(maan.cli.data)
    assert "__file__" not in source and "shared" not in source


def test_an_error_caused_by_ctrl_c_is_the_interruption(monkeypatch, capsys):
    """Ctrl-C inside an extension module's import can surface as another exception (ImportError
    "initialization failed"); after Ctrl-C it is reported as the interruption: one line, exit 130."""
    import os
    import signal

    import maan.cli.data

    def import_interrupted(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, through maan's handler
        except KeyboardInterrupt:
            raise ImportError("initialization failed") from None

    monkeypatch.setattr(maan.cli.data, "cmd_synth", import_interrupted)
    code = main(["synth", "--format", "amigos", "--out", "x"])
    assert code == 130
    assert capsys.readouterr().err == "maan: interrupted; finished work is kept, rerun to resume\n"

    def plain_bug(args):
        raise ImportError("a real bug")

    monkeypatch.setattr(maan.cli.data, "cmd_synth", plain_bug)
    with pytest.raises(ImportError, match="a real bug"):
        main(["synth", "--format", "amigos", "--out", "x"])


def test_ctrl_c_where_python_cannot_raise_is_delivered_again(capsys, monkeypatch):
    """A KeyboardInterrupt raised in a callback Python ignores (an import-lock or weakref
    callback) is not printed as a traceback and lost: it is raised again in the code that follows."""
    import time
    import types

    import maan.cli as cli

    def command(argv):
        sys.unraisablehook(types.SimpleNamespace(exc_type=KeyboardInterrupt, exc_value=KeyboardInterrupt(),
                                                 exc_traceback=None, err_msg=None, object=None))
        time.sleep(5)  # the interruption is raised here
        return 0

    monkeypatch.setattr(cli, "_main", command)
    assert cli.main(["anything"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted" in err
