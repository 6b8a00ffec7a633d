"""Checkpoints: a plain ``state_dict`` (``NAME.pt``) plus its JSON configuration (``NAME.json``).

The JSON holds everything prediction needs later: model name and keyword arguments, input
shapes, target, normalisation statistics, the feature store's preprocessing configuration
and EEG channel names, training hyperparameters, package versions, and the SHA-256 of the
``.pt`` file. Both files are written atomically (temporary file + rename), the ``.pt`` first,
so a ``.json`` only ever describes a complete weights file.

Checkpoints are untrusted input: the weights are read with ``torch.load(weights_only=True)``
(tensors only, no pickled code), the hash is checked, and every problem (missing, corrupt,
truncated, mismatched, built for other inputs) is an :class:`~maan.errors.InvalidInputError`
or :class:`~maan.errors.ConfigMismatchError` naming the file.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from maan.errors import ConfigMismatchError, InvalidInputError, MaanError
from maan.preprocessing.io import atomic_write_bytes, atomic_write_json
from maan.models import MODEL_NAMES, build_model
from maan.models.maan import check_model_kwargs
from maan.features.normalize import Normalizer

CHECKPOINT_FORMAT = "maan-checkpoint"
#: one number for the whole format; a change bumps it (after a release, with a migration in one module)
CHECKPOINT_VERSION = 2  # 2: the model takes a modality mask
# preprocessing settings that change what a network input means; a store that differs in any
# of them cannot be fed to a checkpoint
FEATURE_KEYS = ("window_seconds", "subwindow_seconds", "bands", "rr_length", "de_method", "layout")


def versions() -> dict:
    from maan.preprocessing.io import package_versions

    return package_versions(("maan", "torch", "lightning", "scikit-learn", "numpy"))


def paths(path) -> tuple[Path, Path]:
    """(weights .pt, config .json) for a checkpoint given as folder, .pt or .json path."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if path.suffix == ".json":
        return path.with_suffix(".pt"), path
    return path, path.with_suffix(".json")


def save_checkpoint(path, model: torch.nn.Module, *, model_name: str, ecg_shape, eeg_shape,
                    target: str, normalizer: Normalizer, manifest: dict, training: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write ``path`` (.pt, state_dict) and its .json; returns the .pt path."""
    pt, js = paths(path)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, buffer)
    data = buffer.getvalue()
    meta = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "weights": pt.name,
        "weights_sha256": hashlib.sha256(data).hexdigest(),
        # every constructor argument, from the model itself, so that a later change of a default
        # cannot misread it
        "model": {"name": model_name, "kwargs": _constructor_kwargs(model)},
        "ecg_shape": [int(s) for s in ecg_shape],
        "eeg_shape": [int(s) for s in eeg_shape],
        "target": target,
        "targets": list(manifest.get("targets", [target])),
        "normalizer": normalizer.for_prediction().to_dict(),
        "store": {
            "dataset": manifest.get("dataset"),
            "synthetic": bool(manifest.get("synthetic", False)),
            "config": manifest.get("config", {}),
            "eeg_channels": manifest.get("eeg_channels"),
            "ecg_channels": manifest.get("ecg_channels"),
        },
        "training": training or {},
        "versions": versions(),
    }
    meta.update(extra or {})
    atomic_write_bytes(pt, data)
    atomic_write_json(js, meta)
    return pt


def _constructor_kwargs(model) -> dict:
    """The model's constructor arguments besides its input shapes (which the checkpoint stores apart)."""
    kwargs = {k: v for k, v in model.config.items() if k not in ("ecg_shape", "eeg_shape", "modalities")}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


@dataclass
class Checkpoint:
    """A loaded checkpoint: the network (eval mode, CPU), its normaliser and configuration."""

    model: torch.nn.Module
    normalizer: Normalizer
    meta: dict
    path: Path

    @property
    def target(self) -> str:
        return self.meta["target"]

    @property
    def model_name(self) -> str:
        return self.meta["model"]["name"]

    def check_store(self, manifest: dict) -> None:
        """Raise ConfigMismatchError if a feature store's inputs differ from the training store's."""
        ecg_shape = [int(s) for s in manifest.get("ecg_shape", [])]
        eeg_shape = [int(s) for s in manifest.get("eeg_shape", [])]
        if ecg_shape != self.meta["ecg_shape"] or eeg_shape != self.meta["eeg_shape"]:
            raise ConfigMismatchError(
                f"{self.path}: the checkpoint takes ECG {tuple(self.meta['ecg_shape'])} / EEG "
                f"{tuple(self.meta['eeg_shape'])} windows, the store has {tuple(ecg_shape)} / {tuple(eeg_shape)}")
        trained = self.meta["store"].get("config", {})
        config = manifest.get("config", {})
        changed = [k for k in FEATURE_KEYS if k in trained and trained.get(k) != config.get(k)]
        channels = self.meta["store"].get("eeg_channels")
        if channels and manifest.get("eeg_channels") and list(channels) != list(manifest["eeg_channels"]):
            changed.append("eeg_channels")
        if changed:
            raise ConfigMismatchError(
                f"{self.path}: the store was preprocessed differently from the training store "
                f"(differs in: {', '.join(changed)}); preprocess it with the checkpoint's settings")

    @property
    def modalities(self) -> tuple:
        """The modalities the model takes."""
        return tuple(self.model.modalities)

    @torch.no_grad()
    def predict_proba(self, ecg: np.ndarray, eeg: np.ndarray, subject=None, mask=None) -> np.ndarray:
        """P(high) of raw (un-normalised) store windows; ``mask`` (n, 2) marks their valid
        modalities (None: all valid). NaN where the model has no input (:func:`~maan.models.has_input`)."""
        from maan.models import has_input
        from maan.training.module import predict_proba

        mask = np.ones((len(ecg), 2), bool) if mask is None else np.asarray(mask, dtype=bool)
        ecg_n, eeg_n = self.normalizer.transform(ecg, eeg, subject, mask=mask)
        score = np.full(len(ecg), np.nan)
        usable = has_input(self.modalities, mask)
        if usable.any():
            score[usable] = predict_proba(self.model, ecg_n[usable], eeg_n[usable], mask[usable])
        return score


def load_checkpoint(path) -> Checkpoint:
    pt, js = paths(path)
    for file in (js, pt):
        if not file.exists():
            raise InvalidInputError(file, "checkpoint file not found (a checkpoint is NAME.pt plus NAME.json)")
    try:
        meta = json.loads(js.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(js, f"corrupt checkpoint configuration ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise InvalidInputError(js, f"not a {CHECKPOINT_FORMAT} configuration")
    if meta.get("format_version") != CHECKPOINT_VERSION:
        raise InvalidInputError(js, f"checkpoint format version {meta.get('format_version')} is not supported "
                                    f"(this maan reads version {CHECKPOINT_VERSION}); retrain with this maan")
    data = pt.read_bytes()
    if meta.get("weights_sha256") and hashlib.sha256(data).hexdigest() != meta["weights_sha256"]:
        raise InvalidInputError(pt, "weights do not match the SHA-256 in their .json (corrupt, truncated or "
                                    "from another run)")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle is a corrupt file
        raise InvalidInputError(pt, f"corrupt or unsafe checkpoint weights ({type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InvalidInputError(pt, "checkpoint weights are not a state_dict of tensors")
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise InvalidInputError(pt, "checkpoint weights hold NaN or infinity (a training run that diverged?)")
    try:
        name = meta["model"]["name"]
        if name not in MODEL_NAMES:
            raise ValueError(f"unknown model {name!r}")
        kwargs = dict(meta["model"]["kwargs"])
        check_model_kwargs(kwargs)  # bounded before anything is allocated: the file is untrusted
        for key in ("ecg_shape", "eeg_shape"):
            shape = meta[key]
            if not isinstance(shape, list) or not all(isinstance(v, int) and 0 < v <= 4096 for v in shape):
                raise ValueError(f"{key} {shape!r} is not an input shape")
        if not isinstance(meta.get("target"), str) or not isinstance(meta.get("store"), dict) \
                or not isinstance(meta["store"].get("config", {}), dict):
            raise ValueError("'target' or 'store' is missing")
        model = build_model(name, tuple(meta["ecg_shape"]), tuple(meta["eeg_shape"]), **kwargs)
        normalizer = Normalizer.from_dict(meta["normalizer"])
        for stats in [normalizer.global_stats, *normalizer.subject_stats.values()]:
            if stats is not None:
                stats.check_shape(meta["eeg_shape"], normalizer.layout, normalizer.n_bands)
    except InvalidInputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, MaanError) as exc:
        # a MaanError here (e.g. a bad normaliser) describes the file's content: name the file
        raise InvalidInputError(js, f"invalid checkpoint configuration ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise InvalidInputError(pt, f"weights do not fit the {name!r} model described in {js.name} ({first})") from exc
    return Checkpoint(model.eval(), normalizer, meta, pt)
