"""Fixtures of the inference tests: one checkpoint trained once per session (read-only)."""
from __future__ import annotations

import pytest

from maan import load_features, preprocess
from maan.preprocessing.pipeline import PreprocessConfig
from tests.conftest import shared_eegmat

SUBJECTS = ("Subject00", "Subject03")


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A 1-epoch maan checkpoint (target task, --normalize train) on two eegmat subjects."""
    from maan.training.train import train_model

    data = shared_eegmat(SUBJECTS)
    root = tmp_path_factory.mktemp("predict")
    labels = root / "labels.csv"
    labels.write_text("file,subject,task\n" + "".join(f"{s}_{p}.edf,{s},{p - 1}\n" for s in SUBJECTS for p in (1, 2)))
    preprocess("recordings", data, root / "features", PreprocessConfig(
        dataset="recordings", labels=str(labels), exclude=("EEG A2-A1",)), jobs=2, progress=False)
    train_model(root / "features", "task", root / "model", config={"epochs": 1, "patience": 0}, progress=False,
                log=None)
    return root / "model" / "model.pt", load_features(root / "features")
