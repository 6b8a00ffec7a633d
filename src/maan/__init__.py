"""maan: ECG+EEG emotion recognition with a Modality Aware Attention Network.

The public API is imported lazily so that ``maan --help`` and the preprocessing workers do
not pay for PyTorch.
"""
from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "detect_rpeaks": ("maan.features.ecg", "detect_rpeaks"),
    "differential_entropy": ("maan.features.eeg", "differential_entropy"),
    "load_features": ("maan.preprocessing.store", "load_features"),
    "preprocess": ("maan.preprocessing.pipeline", "preprocess"),
    "predict": ("maan.inference.predict", "predict"),
    "run_cv": ("maan.evaluation.cv", "run_cv"),
    "run_reproduce": ("maan.evaluation.cv", "run_reproduce"),
    "evaluate_model": ("maan.evaluation.cv", "evaluate_model"),
    "train_model": ("maan.training.train", "train_model"),
    "TrainConfig": ("maan.training.module", "TrainConfig"),
    "load_checkpoint": ("maan.training.checkpoint", "load_checkpoint"),
    "MAAN": ("maan.models.maan", "MAAN"),
    "PreprocessConfig": ("maan.preprocessing.pipeline", "PreprocessConfig"),
    "synth_cohort": ("maan.datasets", "synth_cohort"),
    "fetch_eegmat": ("maan.datasets.fetch", "fetch_eegmat"),
    "MaanError": ("maan.errors", "MaanError"),
    "InvalidInputError": ("maan.errors", "InvalidInputError"),
    "InvalidSignalError": ("maan.errors", "InvalidSignalError"),
    "ConfigMismatchError": ("maan.errors", "ConfigMismatchError"),
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'maan' has no attribute {name!r}")


def __dir__():
    return __all__
