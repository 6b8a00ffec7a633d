import numpy as np
import pytest
from sklearn import metrics as skm

from maan.evaluation.metrics import binary_metrics, summarize
from maan.training.splits import class_balance
from maan.evaluation.report import format_cv_summary, format_table1


def test_metrics_equal_scikit_learns():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    pred = (score >= 0.5).astype(int)
    m = binary_metrics(y, pred, score)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert m["acc"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["sen"] == pytest.approx(skm.recall_score(y, pred)) == pytest.approx(tp / (tp + fn))
    assert m["spe"] == pytest.approx(tn / (tn + fp))
    assert m["ppr"] == pytest.approx(skm.precision_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert m["confusion"] == [[tn, fp], [fn, tp]]


def test_fixed_predictions_by_hand():
    m = binary_metrics([1, 1, 1, 0, 0], [1, 0, 1, 1, 0], [0.9, 0.4, 0.8, 0.6, 0.1])
    assert (m["acc"], m["sen"], m["spe"], m["ppr"]) == pytest.approx((0.6, 2 / 3, 0.5, 2 / 3))
    assert m["auc"] == pytest.approx(5 / 6)


def test_degenerate_folds():
    m = binary_metrics([1, 1, 1], [1, 1, 0], [0.9, 0.8, 0.2])
    assert m["auc"] is None and m["sen"] == pytest.approx(2 / 3)
    m = binary_metrics([0, 1, 0], [0, 0, 0])
    assert m["ppr"] == 0.0 and m["auc"] is None


def test_summarize_mean_std_and_skips_undefined():
    folds = [{"acc": 0.8, "auc": 0.9, "confusion": [[1, 0], [0, 1]]},
             {"acc": 0.6, "auc": None, "confusion": [[2, 1], [0, 0]]}]
    s = summarize(folds)
    assert s["acc"] == {"mean": pytest.approx(0.7), "std": pytest.approx(0.1), "n_folds": 2}
    assert s["auc"]["mean"] == pytest.approx(0.9) and s["auc"]["n_folds"] == 1
    assert s["confusion"] == [[3, 1], [0, 1]]
    assert class_balance([1, 1, 0, 1]) == {"n": 4, "high": 3, "low": 1, "high_fraction": 0.75}


def _run(target, protocol, synthetic=True):
    stat = {"mean": 0.8, "std": 0.05}
    models = {m: {"metrics": {k: stat for k in ("acc", "sen", "spe", "ppr", "f1", "balanced_accuracy", "auc")},
                  "per_fold": []} for m in ("base", "maan", "majority", "logistic")}
    return {"dataset": "amigos", "synthetic": synthetic, "data_label": "SYNTHETIC (maan synth, not AMIGOS)",
            "target": target, "protocol": protocol, "folds": 5, "seed": 0, "normalize": "train",
            "n_windows": 100, "n_subjects": 4, "class_balance": {"high_fraction": 0.6}, "models": models}


def test_table1_layout_and_label():
    runs = [_run(t, p) for p in ("segment-kfold", "trial-kfold") for t in ("arousal", "valence")]
    text = format_table1({"synthetic": True, "data_label": runs[0]["data_label"], "runs": runs,
                          "training": {"epochs": 30, "patience": 5, "batch_size": 64, "lr": 0.001}})
    assert text.startswith("# Table 1: classification performance — SYNTHETIC (maan synth, not AMIGOS)")
    assert "| Classifier | Arousal ACC | Arousal SEN & SPE | Arousal PPR | Valence ACC |" in text
    assert text.count("| majority (baseline) |") == 2 and text.count("| logistic (baseline) |") == 2
    assert "| (b-1) Proposed model | 80.0 ± 5.0 | 80.0 ± 5.0 / 80.0 ± 5.0 | 80.0 ± 5.0 |" in text
    assert "| (b-1) Proposed model, paper | 91.68 |" in text  # for reference
    assert "majority" in format_cv_summary(runs[0])
    assert "batch 64, AdamW lr 0.001." in text


def test_table1_states_the_batch_and_learning_rate_the_fits_used():
    run = _run("arousal", "segment-kfold")
    run["models"]["maan"]["per_fold"] = [{"batch_size": 256, "lr": 0.002}, {"batch_size": 256, "lr": 0.002}]
    text = format_table1({"synthetic": True, "runs": [run],
                          "training": {"epochs": 30, "patience": 5, "batch_size": "auto", "lr": "auto"}})
    assert "batch auto (~16 steps per epoch, 8-256, here 256)" in text
    assert "AdamW lr auto (0.001 up to batch 64, x sqrt(batch / 64) above, here 0.002)" in text


def test_metrics_by_kind_of_window_and_pooled_over_folds():
    from maan.config import modality_kind
    from maan.evaluation.metrics import metrics_by_modalities, pool_by_modalities

    kinds = modality_kind(np.array([[1, 1], [1, 1], [0, 1], [0, 1], [1, 0]], bool))
    assert kinds.tolist() == ["ecg+eeg", "ecg+eeg", "eeg", "eeg", "ecg"]
    y, score = np.array([1, 0, 1, 0, 1]), np.array([0.9, 0.2, 0.4, 0.1, 0.8])
    fold = metrics_by_modalities(y, score, kinds)
    assert {k: fold[k]["n"] for k in fold} == {"all": 5, "ecg+eeg": 2, "eeg": 2, "ecg": 1}
    assert fold["ecg+eeg"]["acc"] == 1.0 and fold["eeg"]["acc"] == 0.5 and fold["all"]["acc"] == 0.8
    other = metrics_by_modalities(np.array([0, 0]), np.array([0.7, 0.3]), np.array(["eeg", "eeg"]))
    pooled = pool_by_modalities([fold, other])
    assert pooled["eeg"]["n"] == 4 and pooled["eeg"]["folds"] == 2 and pooled["ecg"]["folds"] == 1
    assert pooled["eeg"]["confusion"] == [[2, 1], [1, 0]]  # TN: 0.1 and 0.3; FP: 0.7; FN: 0.4
    assert pooled["eeg"]["acc"] == 0.5 and pooled["eeg"]["balanced_accuracy"] == pytest.approx((2 / 3 + 0) / 2)
