"""Per-fold test predictions of a CV run: ``folds/fold-KK/MODEL.predictions.npz``.

``run_cv`` writes one file per (fold, model) right after the fold's checkpoint and before its
``MODEL.result.json`` (atomically), holding, for the fold's test windows:

================  ===========  ================================================================
key               dtype        meaning
================  ===========  ================================================================
``test_idx``      int64        indices of the test windows in the feature store (window axis)
``y_true``        int8         their labels (0 low, 1 high)
``score``         float32      P(high), the probability the metrics were computed from
``representation`` float32     (n, d) the fused, learned vector the classifier sees (the pooled inputs of
                               ``input_skip`` left out)
``a_ecg``         float32      (n, C_ecg) fusion-attention ECG channel mask (MAAN only)
``a_eeg``         float32      (n, C_eeg) fusion-attention EEG channel mask (MAAN only)
================  ===========  ================================================================

Runs made before these files existed are handled by :func:`recompute_predictions`: the folds
are rebuilt from the seed (``splits.make_splits`` is deterministic and checked against the
run's fold fingerprint), the checkpoint is loaded and applied to the store's test windows.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from maan.errors import ConfigMismatchError, MaanError
from maan.preprocessing.io import atomic_write_bytes

SUFFIX = ".predictions.npz"
KEYS = ("test_idx", "y_true", "score", "representation", "a_ecg", "a_eeg")


def predictions_path(fold_dir, model: str) -> Path:
    return Path(fold_dir) / f"{model}{SUFFIX}"


def model_details(model, ecg: np.ndarray, eeg: np.ndarray, batch_size: int = 1024) -> dict:
    """P(high), representation and masks of normalised windows (eval mode, CPU)."""
    import torch

    model = model.cpu().eval()
    parts: dict[str, list] = {"score": [], "representation": [], "a_ecg": [], "a_eeg": []}
    with torch.no_grad():
        for start in range(0, len(ecg), batch_size):
            x_ecg = torch.from_numpy(np.ascontiguousarray(ecg[start:start + batch_size]))
            x_eeg = torch.from_numpy(np.ascontiguousarray(eeg[start:start + batch_size]))
            out = model.forward_with_details(x_ecg, x_eeg)
            parts["score"].append(torch.softmax(out.logits, dim=1)[:, 1].numpy())
            parts["representation"].append(out.representation.numpy())
            if out.a_ecg is not None:
                parts["a_ecg"].append(out.a_ecg.numpy())
            if out.a_eeg is not None:
                parts["a_eeg"].append(out.a_eeg.numpy())
    return {k: np.concatenate(v).astype(np.float32) for k, v in parts.items() if v}


def save_predictions(path, *, test_idx, y_true, score, details: dict) -> Path:
    """Write the .npz atomically (``details`` from :func:`model_details`; its score is not used)."""
    arrays = {"test_idx": np.asarray(test_idx, dtype=np.int64), "y_true": np.asarray(y_true, dtype=np.int8),
              "score": np.asarray(score, dtype=np.float32)}
    for key in ("representation", "a_ecg", "a_eeg"):
        if key in details:
            arrays[key] = np.asarray(details[key], dtype=np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_predictions(path) -> dict | None:
    """The arrays of a predictions file, or None when it is missing or unreadable."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _run_spec(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text())["spec"]
    except (OSError, ValueError, KeyError) as exc:
        raise MaanError(f"{run_dir}: no readable run.json; is this a `maan cv` run folder?") from exc


class _Recomputer:
    """Rebuild the folds of one CV run and apply its checkpoints (loaded store shared)."""

    def __init__(self, run_dir, result: dict, features=None):
        from maan.preprocessing.store import load_features
        from maan.evaluation.cv import _fold_fingerprint, _store_fingerprint
        from maan.training.splits import make_splits

        self.run_dir = Path(run_dir)
        spec = _run_spec(self.run_dir)
        if features is None:
            path = result.get("features")
            if not path or not (Path(path) / "manifest.json").exists():
                raise MaanError(f"{self.run_dir}: predictions are missing (run made before they were saved) and "
                                f"the feature store {path!r} is not available to recompute them; pass --features")
            features = path
        if isinstance(features, (str, Path)):
            features = load_features(features)
        if _store_fingerprint(features) != spec.get("store"):
            raise ConfigMismatchError(f"{self.run_dir}: the feature store is not the one this run was trained on")
        y = np.asarray(features.labels[spec["target"]]).astype(int)
        self.splits = make_splits(spec["protocol"], y, features.subject, features.trial,
                                  spec["folds_requested"], spec["seed"])
        if _fold_fingerprint(self.splits) != spec.get("fold_fingerprint"):
            raise ConfigMismatchError(f"{self.run_dir}: the folds rebuilt from the seed differ from the run's")
        self.features, self.y = features, y
        self._subject_normalised = None

    def __call__(self, fold: int, model: str) -> dict:
        from maan.training.checkpoint import load_checkpoint

        ckpt = load_checkpoint(self.run_dir / "folds" / f"fold-{fold:02d}" / f"{model}.pt")
        test_idx = self.splits[fold][1]
        f = self.features
        if ckpt.normalizer.mode == "subject":  # as in run_cv: each subject on all of its windows
            if self._subject_normalised is None:
                self._subject_normalised = ckpt.normalizer.transform(f.ecg, f.eeg, f.subject)
            ecg, eeg = (a[test_idx] for a in self._subject_normalised)
        else:
            ecg, eeg = ckpt.normalizer.transform(f.ecg[test_idx], f.eeg[test_idx], f.subject[test_idx])
        details = model_details(ckpt.model, ecg, eeg)
        return {"test_idx": np.asarray(test_idx, np.int64), "y_true": self.y[test_idx].astype(np.int8), **details}


def run_predictions(run_dir, result: dict, models, features=None, cache: bool = True, log=None) -> dict:
    """{model: [per-fold predictions dict]} of one CV run (``result`` = its results.json).

    Missing files are recomputed from the checkpoints and the store (and, with ``cache``,
    written where ``run_cv`` would have written them).
    """
    run_dir = Path(run_dir)
    recompute = None
    out: dict[str, list] = {}
    for model in models:
        per_fold = []
        for k in range(int(result["folds"])):
            path = predictions_path(run_dir / "folds" / f"fold-{k:02d}", model)
            pred = load_predictions(path)
            if pred is None:
                if recompute is None:
                    if log is not None:
                        log(f"  {run_dir}: recomputing test predictions from checkpoints")
                    recompute = _Recomputer(run_dir, result, features)
                pred = recompute(k, model)
                if cache:
                    save_predictions(path, test_idx=pred["test_idx"], y_true=pred["y_true"], score=pred["score"],
                                     details=pred)
            per_fold.append(pred)
        out[model] = per_fold
    return out
