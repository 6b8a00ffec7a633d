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
``modality_mask`` bool         (n, 2) the windows' valid modalities (ECG, EEG)
================  ===========  ================================================================

"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from maan.errors import MaanError
from maan.preprocessing.io import atomic_write_bytes

SUFFIX = ".predictions.npz"
KEYS = ("test_idx", "y_true", "score", "representation", "a_ecg", "a_eeg", "modality_mask")


def predictions_path(fold_dir, model: str) -> Path:
    return Path(fold_dir) / f"{model}{SUFFIX}"


def model_details(model, ecg: np.ndarray, eeg: np.ndarray, mask: np.ndarray | None = None,
                  batch_size: int = 1024) -> dict:
    """P(high), representation and attention masks of normalised windows (eval mode, CPU);
    ``mask`` (n, 2): the windows' valid modalities."""
    import torch

    model = model.cpu().eval()
    mask = np.ones((len(ecg), 2), np.float32) if mask is None else np.asarray(mask, dtype=np.float32)
    parts: dict[str, list] = {"score": [], "representation": [], "a_ecg": [], "a_eeg": []}
    with torch.no_grad():
        for start in range(0, len(ecg), batch_size):
            x_ecg = torch.from_numpy(np.ascontiguousarray(ecg[start:start + batch_size]))
            x_eeg = torch.from_numpy(np.ascontiguousarray(eeg[start:start + batch_size]))
            m = torch.from_numpy(np.ascontiguousarray(mask[start:start + batch_size]))
            out = model.forward_with_details(x_ecg, x_eeg, m)
            parts["score"].append(torch.softmax(out.logits, dim=1)[:, 1].numpy())
            parts["representation"].append(out.representation.numpy())
            if out.a_ecg is not None:
                parts["a_ecg"].append(out.a_ecg.numpy())
            if out.a_eeg is not None:
                parts["a_eeg"].append(out.a_eeg.numpy())
    return {k: np.concatenate(v).astype(np.float32) for k, v in parts.items() if v}


def save_predictions(path, *, test_idx, y_true, score, details: dict, modality_mask=None) -> Path:
    """Write the .npz atomically (``details`` from :func:`model_details`; its score is not used)."""
    arrays = {"test_idx": np.asarray(test_idx, dtype=np.int64), "y_true": np.asarray(y_true, dtype=np.int8),
              "score": np.asarray(score, dtype=np.float32)}
    if modality_mask is not None:
        arrays["modality_mask"] = np.asarray(modality_mask, dtype=bool)
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


def run_predictions(run_dir, result: dict, models) -> dict:
    """{model: [per-fold predictions dict]} of one CV run (``result`` = its results.json)."""
    run_dir = Path(run_dir)
    out: dict[str, list] = {}
    for model in models:
        per_fold = []
        for k in range(int(result["folds"])):
            path = predictions_path(run_dir / "folds" / f"fold-{k:02d}", model)
            pred = load_predictions(path)
            if pred is None:
                raise MaanError(f"{path}: missing or unreadable test predictions; rerun the same `maan cv` command "
                                "with --overwrite to rebuild the run")
            per_fold.append(pred)
        out[model] = per_fold
    return out
