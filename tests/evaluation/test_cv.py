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

    # a different configuration in the same folder is refused, naming the setting
    with pytest.raises(ConfigMismatchError, match="seed"):
        run_cv(store, "arousal", run_dir, models=("maan",), folds=3, seed=1, config=TINY, progress=False, log=None)
    with pytest.raises(ConfigMismatchError, match=r"training\.lr: 0\.001 -> 0\.01"):
        run_cv(store, "arousal", run_dir, models=("maan",), folds=3, config={**TINY, "lr": 0.01}, progress=False,
               log=None)


def test_a_run_written_before_min_epochs_and_input_noise_still_resumes(store, tmp_path, monkeypatch):
    old_config = {**TINY, "batch_size": 64, "min_epochs": 0}
    run_dir = tmp_path / "old"
    run_cv(store, "arousal", run_dir, models=("base",), folds=2, config=old_config, progress=False, log=None)
    # the run description as the earlier version wrote it: no min_epochs, no input_noise
    run_json = json.loads((run_dir / "run.json").read_text())
    for key in ("min_epochs", "input_noise", "mixup"):
        del run_json["spec"]["training"][key]
    (run_dir / "run.json").write_text(json.dumps(run_json))
    monkeypatch.setattr(cvmod, "_train_fold", lambda *a, **k: pytest.fail("a finished fold was trained again"))
    res = run_cv(store, "arousal", run_dir, models=("base",), folds=2, config=old_config, progress=False, log=None)
    assert len(res["models"]["base"]["per_fold"]) == 2
    # today's defaults are another configuration, and the message says which settings differ
    with pytest.raises(ConfigMismatchError, match=r"training\.batch_size: 64 -> 'auto'.*training\.min_epochs: 0 -> 5"):
        run_cv(store, "arousal", run_dir, models=("base",), folds=2, config=TINY, progress=False, log=None)


def test_a_run_of_the_model_without_input_skip_resumes_only_without_it(store, tmp_path, monkeypatch):
    run_dir = tmp_path / "old"
    plain = {**TINY, "model_kwargs": {"input_skip": False}}
    run_cv(store, "arousal", run_dir, models=("base",), folds=2, config=plain, progress=False, log=None)
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["spec"]["input_skip"] is False and run_json["spec"]["training"]["model_kwargs"] == {}
    del run_json["spec"]["input_skip"]  # as written before the model had input_skip
    (run_dir / "run.json").write_text(json.dumps(run_json))
    with pytest.raises(ConfigMismatchError, match=r"input_skip: False -> True.*--no-input-skip resumes it"):
        run_cv(store, "arousal", run_dir, models=("base",), folds=2, config=TINY, progress=False, log=None)
    monkeypatch.setattr(cvmod, "_train_fold", lambda *a, **k: pytest.fail("a finished fold was trained again"))
    res = run_cv(store, "arousal", run_dir, models=("base",), folds=2, config=plain, progress=False, log=None)
    assert res["training"]["input_skip"] is False
    # today's default: the key is in run.json and results.json; asking for it explicitly is the same run
    monkeypatch.undo()
    res = run_cv(store, "arousal", tmp_path / "new", models=("base",), folds=2, config=TINY, progress=False, log=None)
    assert json.loads((tmp_path / "new" / "run.json").read_text())["spec"]["input_skip"] is True
    assert res["training"]["input_skip"] is True
    monkeypatch.setattr(cvmod, "_train_fold", lambda *a, **k: pytest.fail("a finished fold was trained again"))
    run_cv(store, "arousal", tmp_path / "new", models=("base",), folds=2,
           config={**TINY, "model_kwargs": {"input_skip": True}}, progress=False, log=None)


def test_a_run_without_the_spatial_skip_resumes_only_without_it(store, tmp_path, monkeypatch):
    run_dir = tmp_path / "old"
    pooled = {**TINY, "model_kwargs": {"spatial_skip": False}}
    res = run_cv(store, "arousal", run_dir, models=("base",), folds=2, config=pooled, progress=False, log=None)
    assert res["training"]["input_skip"] is True and res["training"]["spatial_skip"] is False
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["spec"]["spatial_skip"] is False and run_json["spec"]["training"]["model_kwargs"] == {}
    del run_json["spec"]["spatial_skip"]  # as written before the model had spatial_skip
    (run_dir / "run.json").write_text(json.dumps(run_json))
    with pytest.raises(ConfigMismatchError, match=r"spatial_skip: False -> True.*--no-spatial-skip resumes it"):
        run_cv(store, "arousal", run_dir, models=("base",), folds=2, config=TINY, progress=False, log=None)
    monkeypatch.setattr(cvmod, "_train_fold", lambda *a, **k: pytest.fail("a finished fold was trained again"))
    run_cv(store, "arousal", run_dir, models=("base",), folds=2, config=pooled, progress=False, log=None)


def test_a_subject_normalised_run_written_before_the_modality_balance_resumes_only_without_it(
        store, tmp_path, monkeypatch):
    run_dir = tmp_path / "old"
    unbalanced = {**TINY, "model_kwargs": {"balance_modalities": False}}
    kw = dict(models=("base",), folds=2, normalize="subject", progress=False, log=None)
    res = run_cv(store, "arousal", run_dir, config=unbalanced, **kw)
    assert res["training"]["balance_modalities"] is False and res["training"]["spatial_skip"] is True
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["spec"]["balance_modalities"] is False and run_json["spec"]["training"]["model_kwargs"] == {}
    del run_json["spec"]["balance_modalities"]  # as written before the model had it
    (run_dir / "run.json").write_text(json.dumps(run_json))
    with pytest.raises(ConfigMismatchError,
                       match=r"balance_modalities: False -> 'raise'.*--modality-balance off resumes it"):
        run_cv(store, "arousal", run_dir, config=TINY, **kw)
    monkeypatch.setattr(cvmod, "_train_fold", lambda *a, **k: pytest.fail("a finished fold was trained again"))
    run_cv(store, "arousal", run_dir, config=unbalanced, **kw)
    checkpoint = json.loads((run_dir / "folds" / "fold-00" / "base.json").read_text())
    assert checkpoint["model"]["kwargs"]["balance_modalities"] is False
    # today's default with per-subject statistics trains the balanced model, and its checkpoint says so
    monkeypatch.undo()
    res = run_cv(store, "arousal", tmp_path / "new", config=TINY, **kw)
    assert res["training"]["balance_modalities"] == "raise"
    checkpoint = json.loads((tmp_path / "new" / "folds" / "fold-00" / "base.json").read_text())
    assert checkpoint["model"]["kwargs"]["balance_modalities"] == "raise"


def test_a_run_of_the_first_balance_rule_resumes_with_modality_balance_split(store, tmp_path, monkeypatch):
    run_dir = tmp_path / "split"
    split = {**TINY, "model_kwargs": {"balance_modalities": "split"}}
    kw = dict(models=("base",), folds=2, normalize="subject", progress=False, log=None)
    assert run_cv(store, "arousal", run_dir, config=split, **kw)["training"]["balance_modalities"] == "split"
    run_json = json.loads((run_dir / "run.json").read_text())
    run_json["spec"]["balance_modalities"] = True  # as written when the balance had one rule
    (run_dir / "run.json").write_text(json.dumps(run_json))
    monkeypatch.setattr(cvmod, "_train_fold", lambda *a, **k: pytest.fail("a finished fold was trained again"))
    with pytest.raises(ConfigMismatchError,
                       match=r"balance_modalities: 'split' -> 'raise'.*--modality-balance split resumes it"):
        run_cv(store, "arousal", run_dir, config=TINY, **kw)
    run_cv(store, "arousal", run_dir, config=split, **kw)


def test_an_unknown_modality_balance_rule_is_a_clear_error(tmp_path):
    with pytest.raises(MaanError, match="balance_modalities must be"):
        run_cv(tmp_path / "no-store", "arousal", tmp_path / "out",
               config={**TINY, "model_kwargs": {"balance_modalities": "equal"}}, progress=False, log=None)


def test_the_run_records_the_modality_balance_of_two_modality_models():
    from maan.training.module import TrainConfig

    assert cvmod._balance_modalities(TrainConfig(), ("maan",), "subject") == "raise"
    assert cvmod._balance_modalities(TrainConfig(), ("maan",), "train") is False  # auto: per-subject only
    assert cvmod._balance_modalities(TrainConfig(), ("ecg-only", "eeg-only"), "subject") is False
    assert cvmod._balance_modalities(TrainConfig(model_kwargs={"balance_modalities": False}), ("base",),
                                     "subject") is False
    assert cvmod._balance_modalities(TrainConfig(model_kwargs={"balance_modalities": True}), ("maan",),
                                     "train") == "raise"
    assert cvmod._balance_modalities(TrainConfig(model_kwargs={"balance_modalities": "split"}), ("maan",),
                                     "subject") == "split"


def test_the_run_records_the_spatial_skip_its_models_have():
    from maan.training.module import TrainConfig

    assert cvmod._spatial_skip(TrainConfig(), ("maan", "base")) is True
    assert cvmod._spatial_skip(TrainConfig(), ("ecg-only",)) is False  # no EEG branch
    assert cvmod._spatial_skip(TrainConfig(), ("maan",), {"config": {"layout": "grid"}}) is False
    assert cvmod._spatial_skip(TrainConfig(model_kwargs={"input_skip": False}), ("maan",)) is False


def test_a_run_written_before_the_hr_band_baseline_gets_it_on_resume(store, tmp_path, monkeypatch):
    run_dir = tmp_path / "old"
    ref = run_cv(store, "arousal", run_dir, models=("base",), folds=2, config=TINY, progress=False, log=None)
    for k in range(2):  # the fold files as the earlier version wrote them
        path = run_dir / "folds" / f"fold-{k:02d}" / "baselines.json"
        record = json.loads(path.read_text())
        del record["hr-band"]
        path.write_text(json.dumps(record))
    monkeypatch.setattr(cvmod, "_train_fold", lambda *a, **k: pytest.fail("a finished fold was trained again"))
    res = run_cv(store, "arousal", run_dir, models=("base",), folds=2, config=TINY, progress=False, log=None)
    assert res["models"]["hr-band"]["metrics"] == ref["models"]["hr-band"]["metrics"]
    assert res["models"]["logistic"]["metrics"] == ref["models"]["logistic"]["metrics"]


def test_majority_baseline_predicts_the_training_majority(features, tmp_path):
    res = run_cv(features, "arousal", tmp_path / "r", models=("base",), protocol="subject-kfold", folds=3,
                 config=TINY, normalize="subject", progress=False, log=None)
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

    from maan.evaluation.cv import train_model

    arousal = np.asarray(features.labels["arousal"]).copy()
    one_class = sorted(set(features.subject))[0]
    arousal[features.subject == one_class] = 1
    feats = dataclasses.replace(features, labels={**features.labels, "arousal": arousal})
    n_one = int((features.subject == one_class).sum())
    res = run_cv(feats, "arousal", tmp_path / "r", models=("base",), protocol="loso", config=TINY,
                 normalize="subject", progress=False, log=None)
    for k, (fold, balance) in enumerate(zip(res["models"]["base"]["per_fold"], res["class_balance"]["per_fold"])):
        tested = k == 0  # loso holds the subjects out in sorted order
        assert (fold["n_test"] == n_one) if tested else True
        assert balance["left_out_subjects"] == ([] if tested else [one_class])
        assert fold["n_train"] == len(arousal) - fold["n_test"] - (0 if tested else n_one)
    spec = json.loads((tmp_path / "r" / "run.json").read_text())["spec"]
    assert spec["single_class_subjects"] == "left out of training"  # a run from before the rule is not resumed
    assert "inner_split" not in spec  # 4-5 training subjects per fold: the inner split is unchanged
    logistic = res["models"]["logistic"]["per_fold"]
    assert [f["n_train"] for f in logistic] == [f["n_train"] for f in res["models"]["base"]["per_fold"]]
    # train normalisation has nothing to leave out
    res = run_cv(feats, "arousal", tmp_path / "t", models=("base",), protocol="loso", folds=2, config=TINY,
                 normalize="train", progress=False, log=None)
    assert all(b["left_out_subjects"] == [] for b in res["class_balance"]["per_fold"])
    assert "single_class_subjects" not in json.loads((tmp_path / "t" / "run.json").read_text())["spec"]
    trained = train_model(feats, "arousal", tmp_path / "m", model="base", normalize="subject", config=TINY,
                          progress=False, log=None)
    assert trained["left_out_subjects"] == [one_class]


def test_run_json_names_the_small_fold_rules_only_where_they_change_a_fold(features, tmp_path):
    import dataclasses

    import numpy as np

    # subject normalisation with nothing to leave out: a run folder from before the rules resumes
    res = run_cv(features, "arousal", tmp_path / "s", models=("base",), protocol="subject-kfold", folds=3,
                 config=TINY, normalize="subject", progress=False, log=None)
    spec = json.loads((tmp_path / "s" / "run.json").read_text())["spec"]
    assert "single_class_subjects" not in spec and "inner_split" not in spec
    assert all(b["left_out_subjects"] == [] for b in res["class_balance"]["per_fold"])
    # 3 subjects, loso: 2 training subjects per fold, so the inner split holds out windows
    keep = np.isin(features.subject, sorted(set(features.subject))[:3])
    small = dataclasses.replace(
        features, ecg=features.ecg[keep], eeg=features.eeg[keep], subject=features.subject[keep],
        trial=features.trial[keep], window_start=features.window_start[keep], ratings=features.ratings[keep],
        labels={k: v[keep] for k, v in features.labels.items()})
    res = run_cv(small, "arousal", tmp_path / "l", models=("base",), protocol="loso", config=TINY,
                 progress=False, log=None)
    spec = json.loads((tmp_path / "l" / "run.json").read_text())["spec"]
    assert spec["inner_split"] == "single windows below 3 groups"
    for fold in res["models"]["base"]["per_fold"]:
        assert fold["n_val"] == round(0.1 * fold["n_train"])  # 10 % of the windows, not a whole subject


@pytest.mark.parametrize("command", ["cv", "train", "reproduce"])
def test_no_input_skip_option_reaches_the_model_kwargs(command):
    from maan.cli import build_parser
    from maan.cli.train import _config

    base = {"cv": ["cv", "--features", "f", "--target", "arousal", "--out", "o"],
            "train": ["train", "--features", "f", "--target", "arousal", "--out", "o"],
            "reproduce": ["reproduce", "--dataset", "amigos", "--out", "o"]}[command]
    assert _config(build_parser().parse_args(base)).model_kwargs == {}
    assert _config(build_parser().parse_args(base + ["--no-input-skip", "--depth", "1"])).model_kwargs == {
        "depth": 1, "input_skip": False}
    assert _config(build_parser().parse_args(base + ["--no-spatial-skip"])).model_kwargs == {"spatial_skip": False}
    assert _config(build_parser().parse_args(base + ["--modality-balance", "off"])).model_kwargs == {
        "balance_modalities": False}
    assert _config(build_parser().parse_args(base + ["--modality-balance", "on"])).model_kwargs == {
        "balance_modalities": "raise"}
    assert _config(build_parser().parse_args(base + ["--modality-balance", "split"])).model_kwargs == {
        "balance_modalities": "split"}
    assert _config(build_parser().parse_args(base + ["--rr-skip", "padded"])).model_kwargs == {"rr_skip": "padded"}


def test_a_negative_mixup_alpha_is_one_line_and_exit_2(store, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(["cv", "--features", str(store), "--target", "arousal", "--mixup", "-1",
                 "--out", str(tmp_path / "x")], capsys)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "--mixup" in err
    with pytest.raises(MaanError, match="mixup"):  # the Python API says the same
        run_cv(store, "arousal", tmp_path / "y", config={**TINY, "mixup": -1.0}, progress=False, log=None)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_mixup_auto_is_on_with_subject_statistics_only_and_recorded_resolved(store, tmp_path):
    from maan.training.module import AUTO_MIXUP_ALPHA, mixup_alpha

    assert mixup_alpha("auto", "subject") == AUTO_MIXUP_ALPHA > 0 and mixup_alpha("auto", "train") == 0.0
    assert mixup_alpha(0.4, "train") == 0.4
    run_cv(store, "arousal", tmp_path / "s", models=("base",), protocol="subject-kfold", folds=2,
           normalize="subject", config=TINY, progress=False, log=None)
    spec = json.loads((tmp_path / "s" / "run.json").read_text())["spec"]
    assert spec["training"]["mixup"] == AUTO_MIXUP_ALPHA
    # a subject-normalised run written before mixup (no key: it trained without) resumes with --mixup 0
    run_json = json.loads((tmp_path / "s" / "run.json").read_text())
    del run_json["spec"]["training"]["mixup"]
    (tmp_path / "s" / "run.json").write_text(json.dumps(run_json))
    kw = dict(models=("base",), protocol="subject-kfold", folds=2, normalize="subject", progress=False, log=None)
    with pytest.raises(ConfigMismatchError, match=r"training\.mixup: 0\.0 -> 1\.0.*--mixup 0 resumes it"):
        run_cv(store, "arousal", tmp_path / "s", config=TINY, **kw)
    assert run_cv(store, "arousal", tmp_path / "s", config={**TINY, "mixup": 0}, **kw)["training"]["mixup"] == 0.0


def test_the_rr_skip_is_recorded_and_a_run_written_before_it_resumes_with_rr_skip_padded(store, tmp_path):
    kw = dict(models=("base",), protocol="subject-kfold", folds=2, progress=False, log=None)
    res = run_cv(store, "arousal", tmp_path / "r", config={**TINY, "model_kwargs": {"rr_skip": "beats"}}, **kw)
    spec = json.loads((tmp_path / "r" / "run.json").read_text())["spec"]
    assert spec["rr_skip"] == "beats" == res["training"]["rr_skip"]
    assert "rr_skip" not in spec["training"]["model_kwargs"]
    # a run written before the choice existed (no key: the padded mean) resumes with --rr-skip padded
    run_json = json.loads((tmp_path / "r" / "run.json").read_text())
    del run_json["spec"]["rr_skip"]
    (tmp_path / "r" / "run.json").write_text(json.dumps(run_json))
    with pytest.raises(ConfigMismatchError, match=r"rr_skip: 'padded' -> 'beats'.*--rr-skip padded resumes it"):
        run_cv(store, "arousal", tmp_path / "r", config={**TINY, "model_kwargs": {"rr_skip": "beats"}}, **kw)
    resumed = run_cv(store, "arousal", tmp_path / "r", config={**TINY, "model_kwargs": {"rr_skip": "padded"}}, **kw)
    assert resumed["training"]["rr_skip"] == "padded"
    # and the other way round: a beats run asked to resume with the default names the option that resumes it
    run_cv(store, "arousal", tmp_path / "b", config={**TINY, "model_kwargs": {"rr_skip": "beats"}}, **kw)
    with pytest.raises(ConfigMismatchError, match=r"rr_skip: 'beats' -> 'padded'.*--rr-skip beats resumes it"):
        run_cv(store, "arousal", tmp_path / "b", config=TINY, **kw)
    with pytest.raises(MaanError, match="unknown rr_skip 'median'; choose one of auto, padded, beats, beat-mean"):
        run_cv(store, "arousal", tmp_path / "m", config={**TINY, "model_kwargs": {"rr_skip": "median"}}, **kw)
    # the default, "auto", is the padded mean with training-fold statistics, and recorded as such (so
    # runs written before it resume); with --normalize subject it is recorded as "auto" and each
    # fold's result names what it resolved to
    res = run_cv(store, "arousal", tmp_path / "t", config=TINY, **kw)
    assert res["training"]["rr_skip"] == "padded"
    assert {f["rr_skip"] for f in res["models"]["base"]["per_fold"]} == {"padded"}
    res = run_cv(store, "arousal", tmp_path / "a", config=TINY, **{**kw, "normalize": "subject"})
    assert res["training"]["rr_skip"] == "auto"
    assert {f["rr_skip"] for f in res["models"]["base"]["per_fold"]} <= {"padded", "beats"}
    # an EEG-only run has no ECG skip: nothing recorded, and an old one resumes as it is
    run_cv(store, "arousal", tmp_path / "e", config=TINY, **{**kw, "models": ("eeg-only",)})
    run_json = json.loads((tmp_path / "e" / "run.json").read_text())
    assert run_json["spec"]["rr_skip"] is None
    del run_json["spec"]["rr_skip"]
    (tmp_path / "e" / "run.json").write_text(json.dumps(run_json))
    run_cv(store, "arousal", tmp_path / "e", config=TINY, **{**kw, "models": ("eeg-only",)})
