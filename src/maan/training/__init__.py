"""Training and cross-validation with PyTorch Lightning (imported lazily: torch is heavy).

``run_cv``, ``run_reproduce`` (and ``DEMO_PRESET``), ``train_model``, ``evaluate_model``,
``make_splits``, ``Normalizer``, ``TrainConfig``, ``load_checkpoint``; the CLI subcommands
are registered by ``maan.training.commands.add_commands``.
"""
from __future__ import annotations

_EXPORTS = {
    "run_cv": "cv", "run_reproduce": "cv", "train_model": "cv", "evaluate_model": "cv", "DEMO_PRESET": "cv",
    "data_label": "cv", "make_splits": "splits", "inner_split": "splits", "PROTOCOLS": "splits",
    "Normalizer": "normalize", "TrainConfig": "module", "EmotionModule": "module",
    "WindowDataModule": "datamodule", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
