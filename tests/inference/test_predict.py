"""maan predict on real recordings (../shared/data/eegmat) with a checkpoint trained in the test."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from maan.errors import ConfigMismatchError, InvalidInputError, MaanError
from tests.conftest import shared_file

def eegmat_file(name: str):
    return shared_file("eegmat", name)


def _cli(argv) -> int:
    """The commands as maan.cli registers them (live_commands.add_commands on its _Parser)."""
    from maan.cli import _Parser
    from maan.cli.live import add_commands

    parser = _Parser(prog="maan")
    add_commands(parser.add_subparsers(dest="command", parser_class=_Parser), _Parser)
    args = parser.parse_args(argv)
    return args.func(args)


def test_predict_repeats_training_preprocessing_exactly(trained):
    from maan.inference.predict import predict
    from maan.training.checkpoint import load_checkpoint

    ckpt_path, features = trained
    ckpt = load_checkpoint(ckpt_path)
    files = [str(eegmat_file(f"Subject00_{p}.edf")) for p in (1, 2)]
    result = predict(ckpt_path, files)
    mine = features.subject == "Subject00"
    assert len(result) == mine.sum() == 24 and not any(result.flags)
    np.testing.assert_array_equal(result.window_start, features.window_start[mine])
    np.testing.assert_array_equal(result.window_end, features.window_start[mine] + 10.0)
    assert result.file == [files[0]] * 18 + [files[1]] * 6
    np.testing.assert_allclose(result.prob["task"], ckpt.predict_proba(features.ecg[mine], features.eeg[mine]),
                               atol=1e-6)
    assert set(np.unique(result.pred["task"])) <= {0, 1}
    np.testing.assert_array_equal(result.pred["task"], (result.prob["task"] >= 0.5).astype(int))
    # heart rate from the same RR series: rest ~76 bpm, arithmetic ~100 bpm for subject 00
    assert 70 < np.median(result.heart_rate_bpm[:18]) < 82 and 92 < np.median(result.heart_rate_bpm[18:]) < 106


def test_cli_writes_the_csv_and_flags_windows_without_ecg(trained, tmp_path, capsys):
    ckpt_path, _ = trained
    out = tmp_path / "preds.csv"
    bad = str(eegmat_file("Subject02_1.edf"))  # disconnected ECG lead: every window flagged
    good = str(eegmat_file("Subject03_2.edf"))
    assert _cli(["predict", "--checkpoint", str(ckpt_path), "--input", bad, good, "--out", str(out), "--step", "5"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["file", "window_start", "window_end", "prob_task", "pred_task", "heart_rate_bpm",
                             "modalities", "flags"]
    first = [r for r in rows if r["file"] == bad]
    second = [r for r in rows if r["file"] == good]
    assert len(first) == 35 and len(second) == 11  # (182 - 10) / 5 + 1, (62 - 10) / 5 + 1
    # the dead ECG lead: predicted from the EEG, flagged with the ECG's reason
    assert all(r["flags"] == "ecg_no_beats" and r["modalities"] == "eeg" and 0 <= float(r["prob_task"]) <= 1
               and r["pred_task"] in ("0", "1") and r["heart_rate_bpm"] == "" for r in first)
    assert all(r["flags"] == "" and r["modalities"] == "ecg+eeg" and 0 <= float(r["prob_task"]) <= 1
               and r["pred_task"] in ("0", "1") for r in second)
    assert [float(r["window_start"]) for r in second[:3]] == [0.0, 5.0, 10.0]
    assert "46 windows from 2 file(s), 35 with one valid modality, 0 not predicted" in capsys.readouterr().err


def test_missing_channels_are_named(trained):
    import mne

    from maan.inference.predict import predict

    ckpt_path, _ = trained
    raw = mne.io.read_raw(eegmat_file("Subject00_2.edf"), verbose="error")
    raw.drop_channels(["EEG Fz", "EEG O2"])
    with pytest.raises(InvalidInputError, match=r"missing channel\(s\) EEG O2, EEG Fz"):
        predict(ckpt_path, raw)
    raw = mne.io.read_raw(eegmat_file("Subject00_2.edf"), verbose="error").drop_channels(["ECG ECG"])
    with pytest.raises(InvalidInputError, match=r"missing channel\(s\) ECG ECG"):
        predict(ckpt_path, raw)


def test_one_checkpoint_per_target(trained, tmp_path):
    """Several checkpoints give one prob_/pred_ column pair each; the same target twice is refused."""
    from maan.inference.predict import predict

    ckpt_path, _ = trained
    other = tmp_path / "other.pt"
    shutil.copy(ckpt_path, other)
    meta = json.loads(ckpt_path.with_suffix(".json").read_text())
    meta["target"] = "arithmetic"
    other.with_suffix(".json").write_text(json.dumps(meta))
    result = predict([ckpt_path, other], eegmat_file("Subject03_2.edf"))
    assert result.targets == ("task", "arithmetic")
    assert list(result.rows()[0]) == ["file", "window_start", "window_end", "prob_task", "prob_arithmetic",
                                      "pred_task", "pred_arithmetic", "heart_rate_bpm", "modalities", "flags"]
    np.testing.assert_array_equal(result.prob["task"], result.prob["arithmetic"])
    with pytest.raises(MaanError, match="several checkpoints predict task"):
        predict([ckpt_path, ckpt_path], eegmat_file("Subject03_2.edf"))
    meta["store"]["config"]["fs"] = 256.0
    other.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ConfigMismatchError, match="differs in: fs"):
        predict([ckpt_path, other], eegmat_file("Subject03_2.edf"))


def test_subject_normalisation_standardises_each_file_with_its_own_windows(trained):
    """--normalize subject checkpoints: transductive per file, as in training (labels unused)."""
    from maan.inference.predict import Predictor, predict
    from maan.training.checkpoint import load_checkpoint
    from maan.features.normalize import Normalizer

    ckpt_path, features = trained
    ckpt = load_checkpoint(ckpt_path)
    ckpt.normalizer = Normalizer("subject", ckpt.normalizer.layout, ckpt.normalizer.n_bands)
    predictor = Predictor([ckpt])
    assert predictor.normalize == {"task": "subject"}
    result = predict(predictor, eegmat_file("Subject03_1.edf"))
    rows = (features.subject == "Subject03") & (features.trial == 1)
    expected = ckpt.predict_proba(features.ecg[rows], features.eeg[rows], np.full(rows.sum(), "file"))
    np.testing.assert_allclose(result.prob["task"], expected, atol=1e-6)


def test_normalize_with_other_recordings_of_the_subject(trained, tmp_path, capsys):
    """A task-only file standardised with the subject's rest + task windows, not with its own."""
    from maan.inference.predict import Predictor, predict
    from maan.training.checkpoint import load_checkpoint
    from maan.features.normalize import Normalizer

    ckpt_path, features = trained
    ckpt = load_checkpoint(ckpt_path)
    ckpt.normalizer = Normalizer("subject", ckpt.normalizer.layout, ckpt.normalizer.n_bands)
    predictor = Predictor([ckpt])
    both = [eegmat_file("Subject03_1.edf"), eegmat_file("Subject03_2.edf")]
    result = predict(predictor, eegmat_file("Subject03_2.edf"), normalize_with=both)
    rows = features.subject == "Subject03"
    expected = ckpt.predict_proba(features.ecg[rows], features.eeg[rows], np.full(rows.sum(), "s"))
    task = features.trial[rows] == 2
    np.testing.assert_allclose(result.prob["task"], expected[task], atol=1e-6)
    alone = predict(predictor, eegmat_file("Subject03_2.edf"))
    # the statistics did change (a 1-epoch model moves little, but well above the 1e-6 agreement above)
    assert np.abs(alone.prob["task"] - result.prob["task"]).max() > 1e-5
    with pytest.raises(InvalidInputError, match="recording not found"):
        predict(predictor, eegmat_file("Subject03_2.edf"), normalize_with=tmp_path / "missing.edf")
    # a train-normalised checkpoint ignores it (and the CLI says so)
    plain = predict(ckpt_path, eegmat_file("Subject03_2.edf"), normalize_with=both)
    np.testing.assert_allclose(plain.prob["task"], predict(ckpt_path, eegmat_file("Subject03_2.edf")).prob["task"])
    code = _cli(["predict", "--checkpoint", str(ckpt_path), "--input", str(eegmat_file("Subject03_2.edf")),
                 "--normalize-with", str(both[0]), "--out", str(tmp_path / "p.csv")])
    assert code == 0 and "--normalize-with is ignored" in capsys.readouterr().err


def test_per_window_mode_cuts_windows_before_resampling(trained):
    """Per-window mode (what maan stream computes) keeps the windows and flags of whole-file mode;
    explicit starts give the same numbers as the step grid."""
    from maan.inference.predict import predict

    ckpt_path, _ = trained
    path = eegmat_file("Subject03_2.edf")
    whole = predict(ckpt_path, path, step=4)
    alone = predict(ckpt_path, path, step=4, per_window=True)
    np.testing.assert_array_equal(whole.window_start, alone.window_start)
    # R-peak detection on 10 s alone can miss or misplace a beat at a window edge, so a window
    # may be flagged in one mode and not in the other; most agree, and so do their heart rates
    same = np.array(whole.flags) == np.array(alone.flags)
    assert same.mean() >= 0.8
    both = same & (np.array(whole.flags) == "")
    np.testing.assert_allclose(whole.heart_rate_bpm[both], alone.heart_rate_bpm[both], rtol=0.05)
    explicit = predict(ckpt_path, path, window_starts=alone.window_start[[1, 3]])
    # the same windows in a batch of another size: equal up to float32 round-off of the batched kernels
    np.testing.assert_allclose(explicit.prob["task"], alone.prob["task"][[1, 3]], rtol=1e-6, atol=1e-7)
    with pytest.raises(MaanError, match="outside the recording"):
        predict(ckpt_path, path, window_starts=[55.0])


@pytest.mark.parametrize("command", ["predict", "stream", "play"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        _cli([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: maan " + command in capsys.readouterr().out


def test_unknown_checkpoint_and_input_are_one_line_errors(trained, tmp_path):
    from maan.inference.predict import predict

    ckpt_path, _ = trained
    with pytest.raises(InvalidInputError, match="checkpoint file not found"):
        predict(tmp_path / "nope.pt", eegmat_file("Subject03_2.edf"))
    with pytest.raises(InvalidInputError, match="recording not found"):
        predict(ckpt_path, tmp_path / "missing.edf")

