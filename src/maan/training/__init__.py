"""Training with PyTorch Lightning (imported lazily: torch is heavy).

``train_model``, ``TrainConfig``, ``EmotionModule``, ``WindowDataModule``, ``make_splits``,
``load_checkpoint`` and ``save_checkpoint``.
"""
from __future__ import annotations

_EXPORTS = {
    "train_model": "train", "make_splits": "splits", "inner_split": "splits", "PROTOCOLS": "splits",
    "TrainConfig": "module", "EmotionModule": "module", "WindowDataModule": "datamodule",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
