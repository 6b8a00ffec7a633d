"""Binary classification metrics (scikit-learn) per fold, and their mean ± std over folds.

All values are fractions in [0, 1]; "high" (label 1) is the positive class.

========================  ====================================================================
key                       definition
========================  ====================================================================
``acc``                   accuracy (TP + TN) / N
``sen``                   sensitivity = recall of the positive class, TP / (TP + FN)
``spe``                   specificity = recall of the negative class, TN / (TN + FP)
``ppr``                   precision (positive predictive rate), TP / (TP + FP); 0 when no
                          window is predicted positive
``f1``                    F1 of the positive class
``balanced_accuracy``     (SEN + SPE) / 2
``auc``                   ROC-AUC of the positive-class score; ``None`` (JSON null) when the
                          test fold holds a single class
========================  ====================================================================

``confusion`` is ``[[TN, FP], [FN, TP]]`` (rows: true 0/1, columns: predicted 0/1).
``summarize`` gives the mean and the population standard deviation (ddof=0, numpy's default)
over the folds where a metric is defined.

Windows that miss a modality: :func:`metrics_by_modalities` gives the metrics of every kind of
window (``ecg+eeg`` complete, ``ecg`` or ``eeg`` alone) besides all of them, each with its count,
and :func:`pool_by_modalities` sums them over folds (pooled confusion matrices: a kind may occur
in a single fold).
"""
from __future__ import annotations

import math

import numpy as np

METRICS = ("acc", "sen", "spe", "ppr", "f1", "balanced_accuracy", "auc")


def binary_metrics(y_true, y_pred, y_score=None) -> dict:
    """Metrics of one fold; ``y_score`` is P(high) (or any monotone score) for ROC-AUC."""
    from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                                 precision_score, recall_score, roc_auc_score)

    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    labels = [0, 1]
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    out = {
        "acc": float(accuracy_score(y_true, y_pred)),
        "sen": float(recall_score(y_true, y_pred, labels=labels, pos_label=1, zero_division=0)),
        "spe": float(recall_score(y_true, y_pred, labels=labels, pos_label=0, zero_division=0)),
        "ppr": float(precision_score(y_true, y_pred, labels=labels, pos_label=1, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, labels=labels, pos_label=1, zero_division=0)),
        "balanced_accuracy": None,
        "auc": None,
    }
    if len(np.unique(y_true)) == 2:
        out["balanced_accuracy"] = float(balanced_accuracy_score(y_true, y_pred))
        if y_score is not None:
            out["auc"] = float(roc_auc_score(y_true, np.asarray(y_score, dtype=np.float64)))
    else:  # one class only: balanced accuracy is the recall of that class
        out["balanced_accuracy"] = out["sen"] if y_true.size and y_true[0] == 1 else out["spe"]
    out["confusion"] = cm.astype(int).tolist()
    out["n"] = int(len(y_true))
    out["positives"] = int(y_true.sum())
    return out


def _clean(value):
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def summarize(per_fold: list[dict]) -> dict:
    """{metric: {"mean", "std", "n_folds"}} over the folds where the metric is defined."""
    out = {}
    for key in METRICS:
        values = [v for v in (_clean(f.get(key)) for f in per_fold) if v is not None]
        if values:
            out[key] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "n_folds": len(values)}
        else:
            out[key] = {"mean": None, "std": None, "n_folds": 0}
    confusions = [np.asarray(f["confusion"]) for f in per_fold if "confusion" in f]
    if confusions:
        out["confusion"] = np.sum(confusions, axis=0).astype(int).tolist()
    return out


def metrics_by_modalities(y_true, score, kinds) -> dict:
    """{kind: metrics} for "all" windows and each kind present ("ecg+eeg", "ecg", "eeg"; see
    :func:`maan.config.modality_kind`), predicted class = score >= 0.5."""
    y_true, score, kinds = np.asarray(y_true).astype(int), np.asarray(score, dtype=np.float64), np.asarray(kinds)
    out = {"all": binary_metrics(y_true, (score >= 0.5).astype(int), score)}
    for kind in ("ecg+eeg", "ecg", "eeg"):
        rows = kinds == kind
        if rows.any():
            out[kind] = binary_metrics(y_true[rows], (score[rows] >= 0.5).astype(int), score[rows])
    return out


def pool_by_modalities(per_fold: list[dict]) -> dict:
    """{kind: {"n", "acc", "balanced_accuracy", "confusion", "folds"}} of per-fold
    :func:`metrics_by_modalities` results, from the summed confusion matrices."""
    out = {}
    for fold in per_fold:
        for kind, m in (fold or {}).items():
            entry = out.setdefault(kind, {"confusion": np.zeros((2, 2), np.int64), "folds": 0})
            entry["confusion"] += np.asarray(m["confusion"], dtype=np.int64)
            entry["folds"] += 1
    for entry in out.values():
        cm = entry["confusion"]
        recalls = [cm[i, i] / cm[i].sum() for i in (0, 1) if cm[i].sum()]
        entry["n"] = int(cm.sum())
        entry["acc"] = float(np.trace(cm) / cm.sum()) if cm.sum() else None
        entry["balanced_accuracy"] = float(np.mean(recalls)) if recalls else None
        entry["confusion"] = cm.astype(int).tolist()
    return out
