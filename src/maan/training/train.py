"""Train one model on every window of a feature store (``train_model``), and the checks every
training entry point shares: the public boundary where parameters are validated once."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from maan.config import check_number
from maan.errors import MaanError
from maan.features.normalize import informative_train_idx, layout_of
from maan.models import MODEL_NAMES, has_input, model_modalities
from maan.training.module import TrainConfig
from maan.training.recipes import Recipe, get_recipe
from maan.training.splits import DEFAULT_PROTOCOL, PROTOCOLS, class_balance, inner_split


def data_label(manifest: dict) -> str:
    """What the numbers came from: "SYNTHETIC (maan synth, not AMIGOS)" or the dataset name."""
    dataset = str(manifest.get("dataset", "unknown"))
    if manifest.get("synthetic"):
        return f"SYNTHETIC (maan synth, not {dataset.upper()})"
    return dataset.upper()


def as_config(config) -> TrainConfig:
    """A validated TrainConfig from None, a TrainConfig or a dict of its fields."""
    if config is None:
        config = TrainConfig()
    elif isinstance(config, dict):
        try:
            config = TrainConfig(**config)
        except TypeError as exc:
            raise MaanError(f"bad training configuration: {exc}") from exc
    elif not isinstance(config, TrainConfig):
        raise MaanError(f"config must be a TrainConfig or a dict of its fields, got {type(config).__name__}")
    return config.validate()


def check_run(models, protocol: str, recipe, seed) -> Recipe:
    """Validate the model names, the protocol and the seed; return the recipe."""
    check_number("seed", seed, 0, 2**32 - 1, integer=True)
    for m in models:
        if m not in MODEL_NAMES:
            raise MaanError(f"model must be one of {', '.join(MODEL_NAMES)}; got {m!r}")
    if protocol not in PROTOCOLS:
        raise MaanError(f"protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    return get_recipe(recipe)


def load_store(features):
    """(Features, path or None) from a store path or loaded Features."""
    from maan.preprocessing.store import load_features

    if isinstance(features, (str, Path)):
        return load_features(features), str(features)
    return features, None


def check_target(features, target: str) -> np.ndarray:
    """The store's binary labels of ``target``."""
    if target not in features.labels:
        raise MaanError(f"target {target!r} is not in the store; it has: {', '.join(features.labels) or 'none'}")
    if len(features) == 0:
        raise MaanError("the feature store holds no windows")
    return np.asarray(features.labels[target]).astype(int)


def left_out_message(target: str, subjects) -> str:
    return (f"left out of training (every window one class of {target}, which per-subject standardisation "
            f"cannot tell apart): {', '.join(subjects)}")


def train_model(features, target: str, out, model: str = "maan", seed: int = 0, recipe: str | Recipe = "paper",
                config: TrainConfig | dict | None = None, val_split: str = DEFAULT_PROTOCOL,
                progress: bool = True, log=print) -> dict:
    """Train one model on every window of a store (early stopping on an inner validation split
    grouped like ``val_split``) and write ``out/model.pt`` + ``out/model.json``."""
    from maan.training.checkpoint import save_checkpoint
    from maan.training.datamodule import WindowDataModule
    from maan.training.module import fit_module

    config = as_config(config)
    recipe = check_run((model,), val_split, recipe, seed)
    features, _ = load_store(features)
    y = check_target(features, target)
    if len(np.unique(y)) < 2:
        raise MaanError(f"the target {target!r} has a single class in this store; nothing to learn")
    say = log or (lambda _: None)
    layout, n_bands = layout_of(features.manifest)
    out = Path(out)
    # a single-modality model learns from the windows that hold its modality
    usable = has_input(model_modalities(model), features.modality_mask)
    all_idx, left_out = informative_train_idx(np.flatnonzero(usable), y, features.subject, recipe.normalize,
                                              present=usable)
    if left_out:
        say(left_out_message(target, left_out))
    fit_idx, val_idx = inner_split(val_split, all_idx, y, features.subject, features.trial, config.val_fraction, seed)
    dm = WindowDataModule(features.ecg, features.eeg, y, features.subject, fit_idx, val_idx, None,
                          normalize=recipe.normalize, layout=layout, n_bands=n_bands, batch_size=config.batch_size,
                          balance=config.balance, seed=seed, modality_mask=features.modality_mask)
    balance = class_balance(y[all_idx])
    say(f"train {model} on {target} | recipe {recipe.name} | {len(fit_idx)} fit / {len(val_idx)} validation "
        f"windows | {balance['high_fraction']:.0%} high | {data_label(features.manifest)}")
    shutil.rmtree(out / "logs" / model, ignore_errors=True)  # an earlier or interrupted run's logs
    fit = fit_module(dm, model, config, seed, recipe, log_dir=out / "logs", log_name=model, progress=progress,
                     log=lambda line: say("  " + line))
    if not fit.is_global_zero:
        return {}
    training = {**config.to_dict(), "recipe": recipe.name, "seed": seed, "val_split": val_split,
                "n_fit": int(len(fit_idx)), "n_val": int(len(val_idx)), "epochs_run": fit.epochs_run,
                "best_epoch": fit.best_epoch, "best_val_loss": float(fit.best_val_loss),
                "seconds": round(fit.seconds, 3), "batch_size_used": fit.batch_size, "lr_used": fit.lr,
                "left_out_subjects": left_out,
                "train_balance": balance}
    path = save_checkpoint(out / "model.pt", fit.module.model, model_name=model, ecg_shape=dm.ecg_shape,
                           eeg_shape=dm.eeg_shape, target=target, normalizer=dm.normalizer,
                           manifest=features.manifest, training=training)
    return {"checkpoint": str(path), "config": str(path.with_suffix(".json")), **training}
