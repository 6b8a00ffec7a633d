"""Training on a GPU: ``make test-gpu`` (``pytest --gpu -m gpu``) on a machine with one.

Without ``--gpu`` these tests are left out (CI has no GPU); with it, a missing device fails them.

What a user with a GPU relies on: the model computes on the GPU what it computes on the CPU,
``maan cv --accelerator gpu`` trains there, and the checkpoint it writes loads
(``weights_only``) on the CPU and predicts what the run recorded for the fold's test windows.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _cuda():
    assert torch.cuda.is_available(), "the gpu tests need a CUDA device that torch can see (torch.cuda.is_available())"


def test_the_model_computes_the_same_on_the_gpu(features):
    from maan.models import build_model
    from maan.features.normalize import Normalizer

    ecg, eeg = Normalizer("train").fit(features.ecg, features.eeg, features.subject).transform(
        features.ecg, features.eeg, features.subject)
    x_ecg, x_eeg = torch.from_numpy(ecg[:256]), torch.from_numpy(eeg[:256])
    torch.manual_seed(0)
    model = build_model("maan", x_ecg.shape[1:], x_eeg.shape[1:]).eval()
    with torch.no_grad():
        cpu = torch.softmax(model(x_ecg, x_eeg), dim=1)
        gpu = torch.softmax(model.cuda()(x_ecg.cuda(), x_eeg.cuda()), dim=1).cpu()
    # cuDNN may run the convolutions in TF32 on Ampere and later: agreement to ~1e-3, not 1e-7
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), atol=2e-3)


@pytest.mark.slow
def test_cv_on_the_gpu_writes_checkpoints_that_predict_the_same_on_the_cpu(store, features, tmp_path):
    from maan.evaluation.predictions import load_predictions, predictions_path
    from maan.training.checkpoint import load_checkpoint

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "maan", "cv", "--features", str(store), "--target", "arousal", "--model", "maan",
           "--protocol", "segment-kfold", "--folds", "2", "--epochs", "3", "--patience", "1", "--min-epochs", "1",
           "--accelerator", "gpu", "--out", str(out), "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["training"]["accelerator"] == "gpu"
    for fold in results["models"]["maan"]["per_fold"]:
        recorded = load_predictions(predictions_path(out / "folds" / f"fold-{fold['fold']:02d}", "maan"))
        idx = recorded["test_idx"]
        checkpoint = load_checkpoint(out / fold["checkpoint"])
        assert next(checkpoint.model.parameters()).device.type == "cpu"
        score = checkpoint.predict_proba(features.ecg[idx], features.eeg[idx], np.asarray(features.subject)[idx])
        np.testing.assert_allclose(score, recorded["score"], atol=1e-5)
