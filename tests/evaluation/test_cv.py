import json

import pytest

from maan.errors import ConfigMismatchError, MaanError
from maan.evaluation import cv as cvmod
from maan.evaluation.cv import run_cv

from tests.conftest import run_cli

TINY = {"epochs": 2, "patience": 1, "accelerator": "cpu"}
METRIC_KEYS = {"acc", "sen", "spe", "ppr", "f1", "balanced_accuracy", "auc"}


def test_tiny_cv_end_to_end_and_resume(store, features, tmp_path, monkeypatch):
    # uninterrupted reference
    ref = run_cv(features, "arousal", tmp_path / "ref", models=("maan",), folds=3, config=TINY, progress=False, log=None)
    assert ref["dataset"] == "amigos" and ref["synthetic"] is True and ref["target"] == "arousal"
    assert ref["protocol"] == "segment-kfold" and ref["folds"] == 3 and ref["seed"] == 0 and ref["normalize"] == "train"
    assert {"torch", "lightning", "maan"} <= set(ref["versions"])
    assert set(ref["models"]) == {"maan", "majority", "logistic", "hr-band"}
    for entry in ref["models"].values():
        assert set(entry["metrics"]) >= METRIC_KEYS and len(entry["per_fold"]) == 3
        for key in METRIC_KEYS:
            assert 0.0 <= entry["metrics"][key]["mean"] <= 1.0
    assert json.loads((tmp_path / "ref" / "results.json").read_text())["models"]["maan"]["metrics"] == ref["models"]["maan"]["metrics"]
    assert (tmp_path / "ref" / "logs" / "fold-00" / "maan" / "metrics.csv").exists()

    # interrupted after the first fold...
    real = cvmod._train_fold
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args[4])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(cvmod, "_train_fold", flaky)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_cv(store, "arousal", run_dir, models=("maan",), folds=3, config=TINY, progress=False, log=None)
    assert (run_dir / "folds" / "fold-00" / "maan.result.json").exists()
    assert not (run_dir / "folds" / "fold-01" / "maan.result.json").exists()
    assert not (run_dir / "results.json").exists()
    first = (run_dir / "folds" / "fold-00" / "maan.pt").stat().st_mtime_ns

    # ... resumes at the next fold, without redoing the finished one, with the same numbers
    calls.clear()
    monkeypatch.setattr(cvmod, "_train_fold", lambda *a, **k: calls.append(a[4]) or real(*a, **k))
    res = run_cv(store, "arousal", run_dir, models=("maan",), folds=3, config=TINY, progress=False, log=None)
    assert calls == [1, 2]
    assert (run_dir / "folds" / "fold-00" / "maan.pt").stat().st_mtime_ns == first
    for a, b in zip(res["models"]["maan"]["per_fold"], ref["models"]["maan"]["per_fold"]):
        assert a["acc"] == pytest.approx(b["acc"]) and a["auc"] == pytest.approx(b["auc"])
    assert res["models"]["logistic"]["metrics"] == ref["models"]["logistic"]["metrics"]

    # a broken fold result (or baselines file) is computed again, and said so, never a dead end
    (run_dir / "folds" / "fold-01" / "maan.result.json").write_text('{"fold": 1')
    (run_dir / "folds" / "fold-02" / "baselines.json").write_text("[]")
    calls.clear()
    said = []
    res = run_cv(store, "arousal", run_dir, models=("maan",), folds=3, config=TINY, progress=False, log=said.append)
    assert calls == [1]
    assert any("fold-01/maan.result.json: unreadable or incomplete; computing it again" in s for s in said)
    assert any("fold-02/baselines.json: unreadable or incomplete" in s for s in said)
    assert res["models"]["maan"]["per_fold"][1]["acc"] == pytest.approx(ref["models"]["maan"]["per_fold"][1]["acc"])
    assert res["models"]["logistic"]["metrics"] == ref["models"]["logistic"]["metrics"]

    # a different configuration in the same folder is refused, naming the setting
    with pytest.raises(ConfigMismatchError, match="seed"):
        run_cv(store, "arousal", run_dir, models=("maan",), folds=3, seed=1, config=TINY, progress=False, log=None)
    with pytest.raises(ConfigMismatchError, match=r"training\.lr: .auto. -> 0\.01"):
        run_cv(store, "arousal", run_dir, models=("maan",), folds=3, config={**TINY, "lr": 0.01}, progress=False,
               log=None)


def test_majority_baseline_predicts_the_training_majority(features, tmp_path):
    res = run_cv(features, "arousal", tmp_path / "r", models=("base",), protocol="subject-kfold", folds=3,
                 config=TINY, recipe="cross-subject", progress=False, log=None)
    for fold in res["models"]["majority"]["per_fold"]:
        assert fold["auc"] == pytest.approx(0.5)
        assert fold["sen"] in (0.0, 1.0) and fold["spe"] == 1.0 - fold["sen"]
    assert res["normalize"] == "subject" and res["folds"] == 3


def test_cli_cv_train_evaluate(store, tmp_path, capsys):
    code, out, err = run_cli(["cv", "--features", str(store), "--target", "valence", "--model", "base",
                              "--protocol", "trial-kfold", "--folds", "2", "--epochs", "2", "--accelerator", "cpu",
                              "--out", str(tmp_path / "cv"), "-q"], capsys)
    assert code == 0, err
    assert "SYNTHETIC" in out and "logistic" in out and "majority" in out
    result = json.loads((tmp_path / "cv" / "results.json").read_text())
    assert result["target"] == "valence" and set(result["models"]) == {"base", "majority", "logistic", "hr-band"}

    code, out, err = run_cli(["train", "--features", str(store), "--out", str(tmp_path / "m"), "--epochs", "2",
                              "--accelerator", "cpu", "-q"], capsys)
    assert code == 0, err
    assert (tmp_path / "m" / "model.pt").exists() and (tmp_path / "m" / "model.json").exists()
    code, out, err = run_cli(["evaluate", "--checkpoint", str(tmp_path / "m" / "model.pt"), "--features", str(store),
                              "--out", str(tmp_path / "eval.json")], capsys)
    assert code == 0, err
    assert "ACC" in out and "majority" in out
    assert json.loads((tmp_path / "eval.json").read_text())["synthetic"] is True

    (tmp_path / "m" / "model.pt").write_bytes(b"garbage")
    code, out, err = run_cli(["evaluate", "--checkpoint", str(tmp_path / "m"), "--features", str(store)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "model.pt" in err

    code, out, err = run_cli(["cv", "--features", str(store), "--target", "nope", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "nope" in err


@pytest.mark.parametrize("command", ["train", "evaluate", "cv", "reproduce"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli([command, "--help"], capsys)
    assert exc.value.code == 0


def test_subject_normalisation_leaves_single_class_subjects_out_of_training(features, tmp_path):
    import dataclasses

    import numpy as np

    from maan.training.train import train_model

    arousal = np.asarray(features.labels["arousal"]).copy()
    one_class = sorted(set(features.subject))[0]
    arousal[features.subject == one_class] = 1
    feats = dataclasses.replace(features, labels={**features.labels, "arousal": arousal})
    n_one = int((features.subject == one_class).sum())
    res = run_cv(feats, "arousal", tmp_path / "r", models=("base",), protocol="loso", config=TINY,
                 recipe="cross-subject", progress=False, log=None)
    for k, (fold, balance) in enumerate(zip(res["models"]["base"]["per_fold"], res["class_balance"]["per_fold"])):
        tested = k == 0  # loso holds the subjects out in sorted order
        assert (fold["n_test"] == n_one) if tested else True
        assert balance["left_out_subjects"] == ([] if tested else [one_class])
        assert fold["n_train"] == len(arousal) - fold["n_test"] - (0 if tested else n_one)
    spec = json.loads((tmp_path / "r" / "run.json").read_text())["spec"]
    assert "inner_split" not in spec  # 4-5 training subjects per fold: the inner split is unchanged
    logistic = res["models"]["logistic"]["per_fold"]
    assert [f["n_train"] for f in logistic] == [f["n_train"] for f in res["models"]["base"]["per_fold"]]
    # train normalisation has nothing to leave out
    res = run_cv(feats, "arousal", tmp_path / "t", models=("base",), protocol="loso", folds=2, config=TINY,
                 progress=False, log=None)
    assert all(b["left_out_subjects"] == [] for b in res["class_balance"]["per_fold"])
    trained = train_model(feats, "arousal", tmp_path / "m", model="base", recipe="cross-subject", config=TINY,
                          progress=False, log=None)
    assert trained["left_out_subjects"] == [one_class]


def test_a_negative_mixup_alpha_is_one_line_and_exit_2(store, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(["cv", "--features", str(store), "--target", "arousal", "--mixup", "-1",
                 "--out", str(tmp_path / "x")], capsys)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "--mixup" in err
    with pytest.raises(MaanError, match="mixup"):  # the Python API says the same
        run_cv(store, "arousal", tmp_path / "y", config={**TINY, "mixup": -1.0}, progress=False, log=None)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()




def _fits(run) -> dict:
    """Everything a run computed, per (fold, model), but the time it took."""
    import numpy as np

    out = {}
    for m, entry in json.loads((run / "results.json").read_text())["models"].items():
        for f in entry["per_fold"]:
            out[f["fold"], m] = {k: v for k, v in f.items() if k != "seconds"}
            scores = run / "folds" / f"fold-{f['fold']:02d}" / f"{m}.predictions.npz"
            if scores.exists():
                out[f["fold"], m]["score"] = np.load(scores)["score"].tolist()
    return out


@pytest.mark.slow
def test_folds_in_separate_processes_in_any_order_and_parallel_fits_change_no_result(store, tmp_path, capsys):
    import subprocess
    import sys

    args = dict(models=("maan", "base"), protocol="subject-kfold", folds=3, config=TINY, progress=False, log=None)
    run_cv(store, "arousal", tmp_path / "one", **args)
    # a job array: fold 3, then fold 1, each its own process; the plain command runs fold 2 and collects
    cli = [sys.executable, "-m", "maan", "cv", "--features", str(store), "--target", "arousal", "--model", "maan",
           "base", "--protocol", "subject-kfold", "--folds", "3", "--epochs", "2", "--accelerator", "cpu",
           "--out", str(tmp_path / "array"), "-q"]
    config = tmp_path / "tiny.toml"
    config.write_text("patience = 1\n")
    for fold in ("3", "1"):
        done = subprocess.run([*cli, "--config", str(config), "--fold", fold], capture_output=True, text=True)
        assert done.returncode == 0 and f"Fold {fold}/3 of" in done.stdout, done.stderr
    assert not (tmp_path / "array" / "results.json").exists()
    assert not (tmp_path / "array" / "folds" / "fold-01").exists()
    code, out, err = run_cli([*cli[3:], "--config", str(config)], capsys)
    assert code == 0 and "fold 2/3 maan" in out and "fold 1/3" not in out and "fold 3/3" not in out, err
    run_cv(store, "arousal", tmp_path / "parallel", jobs=2, **args)
    reference = _fits(tmp_path / "one")
    assert len(reference) == 3 * 5  # 3 folds x (2 models + 3 baselines)
    assert _fits(tmp_path / "array") == reference
    assert _fits(tmp_path / "parallel") == reference


def test_fold_and_jobs_are_checked(store, tmp_path, capsys):
    base = ["cv", "--features", str(store), "--folds", "3", "--out", str(tmp_path / "x"), "-q"]
    for extra, match in ((["--fold", "4"], "fold (--fold) must be"), (["--fold", "0"], "fold (--fold) must be"),
                         (["--jobs", "0"], "jobs (--jobs) must be"),
                         (["--fold", "1", "--overwrite"], "--overwrite with one fold"),
                         (["--jobs", "2", "--devices", "2"], "--jobs runs independent fits on the CPU")):
        code, out, err = run_cli([*base, *extra], capsys)
        assert code == 2 and match in err and len(err.strip().splitlines()) == 1, (extra, err)
