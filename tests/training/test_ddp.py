"""` --devices 2` is a flag: two CPU processes (gloo) train the folds of `maan cv` together.

There is no GPU on CI, so DDP is exercised on the CPU; the code path (Lightning's launcher
re-running the command per rank, rank 0 alone writing results) is the one used on GPUs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_cv_with_ddp_on_two_cpu_processes(store, tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "ddp.toml"
    config.write_text('patience = 1\nmin_epochs = 1\nstrategy = "ddp"\n')
    cmd = [sys.executable, "-m", "maan", "cv", "--features", str(store), "--target", "arousal", "--model", "base",
           "--protocol", "segment-kfold", "--folds", "2", "--epochs", "2", "--config", str(config),
           "--accelerator", "cpu", "--devices", "2", "--out", str(out), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    results = json.loads((out / "results.json").read_text())
    per_fold = results["models"]["base"]["per_fold"]
    assert [f["fold"] for f in per_fold] == [0, 1]
    assert results["training"]["strategy"] == "ddp" and results["training"]["devices"] == 2
    for fold in per_fold:
        assert 0.0 <= fold["balanced_accuracy"] <= 1.0
        assert (out / fold["checkpoint"]).is_file()
    # two ranks share each epoch: every rank takes about half the optimisation steps of one process
    import csv
    import math

    fold = per_fold[0]
    rows = list(csv.DictReader((out / "logs" / "fold-00" / "base" / "metrics.csv").open()))
    steps_first_epoch = int(rows[0]["step"]) + 1
    one_process = math.ceil(fold["n_fit"] / fold["batch_size"])
    assert steps_first_epoch <= math.ceil(one_process / 2) + 1 < one_process
