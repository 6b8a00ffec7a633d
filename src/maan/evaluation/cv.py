"""Cross-validation (``run_cv``), the paper's Table 1 (``run_reproduce``), and single-model
``train_model`` / ``evaluate_model``.

A CV run folder ``RUN/`` holds::

    run.json                      what was asked (target, protocol, folds, seed, normalisation,
                                  hyperparameters, store fingerprint, fold fingerprint)
    folds/fold-KK/baselines.json  majority, logistic and hr-band metrics of fold KK
    folds/fold-KK/MODEL.pt|.json  the fold's checkpoint (state_dict + configuration)
    folds/fold-KK/MODEL.predictions.npz  test windows: store indices, labels, P(high), representation
                                  and attention masks (maan.evaluation.predictions; before the result)
    folds/fold-KK/MODEL.result.json  the fold's test metrics (written after the checkpoint)
    logs/fold-KK/MODEL/metrics.csv   Lightning's CSV log (train/val loss and accuracy per epoch)
    results.json                  everything above, summarised (mean ± std over folds)

Every file is written atomically, so an interrupted run leaves only finished folds and a rerun
(same command) continues at the first unfinished (fold, model); a rerun with a different
configuration is refused (``ConfigMismatchError``) unless ``overwrite``.

Each (fold, model) is seeded with ``seed + fold`` (weights, batch order, inner validation
split), so a resumed run gives the same numbers as an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

from maan.errors import ConfigMismatchError, InvalidInputError, MaanError
from maan.evaluation.metrics import binary_metrics, class_balance, summarize
from maan.preprocessing.io import atomic_write_json, config_hash
from maan.models import DEFAULT_INPUT_SKIP, DEFAULT_SPATIAL_SKIP, MODEL_NAMES
from maan.models.maan import RR_SKIPS, balance_rule
from maan.training.baselines import BASELINES, LOGISTIC_BASELINES, baseline_features, logistic_baseline, majority_baseline
from maan.training.checkpoint import load_checkpoint, save_checkpoint, versions
from maan.training.module import RR_SKIP_AUTO, TrainConfig, mixup_alpha, modality_balance, resolve_rr_skip
from maan.features.normalize import DEFAULT_NORMALIZE, NORMALIZE_MODES, Normalizer, informative_train_idx, layout_of
from maan.training.splits import DEFAULT_PROTOCOL, MIN_INNER_GROUPS, PROTOCOLS, groups_for, inner_split, make_splits

RUN_FORMAT = "maan-cv-run"
TRAINABLE = ("maan", "base", "ecg-only", "eeg-only")
REPRODUCE_PROTOCOLS = ("segment-kfold", "trial-kfold", "subject-kfold")
REPRODUCE_MODELS = ("base", "maan")
REPRODUCE_TARGETS = ("arousal", "valence")

#: The ``maan demo`` preset: ``run_reproduce(data, "amigos", out, **DEMO_PRESET)``. 3 folds per
#: protocol, at most 8 epochs (patience 3), automatic batch size: on 8 small synthetic subjects
#: (~1,000 windows) all three protocols x base/proposed x arousal/valence train in about
#: 2-3 minutes on 2 CPU cores (docs/performance-training.md). Not the paper's protocol (10 folds).
DEMO_PRESET = {"folds": 3, "config": {"epochs": 8, "patience": 3}}


def _rank_zero() -> bool:
    try:
        from lightning.fabric.utilities.rank_zero import rank_zero_only

        return getattr(rank_zero_only, "rank", 0) == 0
    except ImportError:  # pragma: no cover
        return True


def data_label(manifest: dict) -> str:
    """What the numbers came from: "SYNTHETIC (maan synth, not AMIGOS)" or the dataset name."""
    dataset = str(manifest.get("dataset", "unknown"))
    if manifest.get("synthetic"):
        return f"SYNTHETIC (maan synth, not {dataset.upper()})"
    return dataset.upper()


def _as_config(config) -> TrainConfig:
    if config is None:
        return TrainConfig()
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, dict):
        try:
            return TrainConfig(**config)
        except TypeError as exc:
            raise MaanError(f"bad training configuration: {exc}") from exc
    raise TypeError(f"config must be a TrainConfig or dict, got {type(config).__name__}")


def _resolved(config: TrainConfig, normalize: str) -> TrainConfig:
    """``config`` with its "auto" settings that depend on the normalisation resolved, so that run
    descriptions and checkpoints record what was trained."""
    return dataclasses.replace(config, mixup=mixup_alpha(config.mixup, normalize))


def _load(features):
    from maan.preprocessing.store import load_features

    if isinstance(features, (str, Path)):
        return load_features(features), str(features)
    return features, None


def _check_target(features, target: str) -> np.ndarray:
    if target not in features.labels:
        raise MaanError(f"target {target!r} is not in the store; it has: {', '.join(features.labels) or 'none'}")
    if len(features) == 0:
        raise MaanError("the feature store holds no windows")
    return np.asarray(features.labels[target]).astype(int)


def _validate(models, protocol, normalize, config: TrainConfig):
    for m in models:
        if m not in TRAINABLE:
            raise MaanError(f"unknown model {m!r}; choose from {', '.join(TRAINABLE)}")
    if protocol not in PROTOCOLS:
        raise MaanError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if normalize not in NORMALIZE_MODES:
        raise MaanError(f"unknown normalisation {normalize!r}; choose one of {', '.join(NORMALIZE_MODES)}")
    batch_ok = config.batch_size == "auto" or (isinstance(config.batch_size, int) and config.batch_size >= 2)
    if config.epochs < 1 or not batch_ok or config.patience < 0 or config.lr <= 0 or config.min_epochs < 0:
        raise MaanError("epochs must be >= 1, batch size 'auto' or >= 2, patience >= 0, min epochs >= 0 and lr > 0")
    if config.input_noise < 0:
        raise MaanError("input noise must be >= 0")
    if config.mixup != "auto" and (isinstance(config.mixup, (str, bool)) or not config.mixup >= 0):
        raise MaanError(f"mixup must be 'auto' or an alpha >= 0 (0 turns mixup off), got {config.mixup!r}")
    if config.balance not in ("weights", "sampler", "none"):
        raise MaanError(f"unknown class balancing {config.balance!r}; choose weights, sampler or none")
    try:
        balance_rule(config.model_kwargs.get("balance_modalities", False))
    except ValueError as exc:
        raise MaanError(str(exc)) from exc
    rr_skip_choices = (RR_SKIP_AUTO, *RR_SKIPS)
    if config.model_kwargs.get("rr_skip", RR_SKIP_AUTO) not in rr_skip_choices:
        raise MaanError(f"unknown rr_skip {config.model_kwargs['rr_skip']!r}; choose one of {', '.join(rr_skip_choices)}")


def _fold_fingerprint(splits) -> str:
    digest = hashlib.sha256()
    for _, test in splits:
        digest.update(np.asarray(test, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]


def _store_fingerprint(features) -> dict:
    m = features.manifest
    return {"config_hash": m.get("config_hash") or config_hash(m.get("config", {})), "windows": int(len(features)),
            "subjects": int(len(np.unique(features.subject)))}


#: training settings added after the first release, with the values that reproduce the earlier
#: behaviour, so that a run folder written before them still resumes
_LEGACY_TRAINING = {"min_epochs": 0, "input_noise": 0.0, "mixup": 0.0}


def _spec_differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{key}: {a!r} -> {b!r}" if not isinstance(a, (dict, list)) else key)
    return out


#: (run spec key, the option that turns it off) for the model options that became defaults
_DEFAULT_OFF_FLAGS = (("input_skip", "--no-input-skip"), ("spatial_skip", "--no-spatial-skip"),
                      ("balance_modalities", "--modality-balance off"))


def _prepare_run_dir(out: Path, spec: dict, overwrite: bool) -> None:
    run_json = out / "run.json"
    if run_json.exists():
        try:
            old = json.loads(run_json.read_text())
        except ValueError as exc:
            raise InvalidInputError(run_json, f"corrupt run description ({exc}); use --overwrite or another --out") from exc
        old_spec = old.get("spec", {})
        if isinstance(old_spec.get("training"), dict):
            old_spec = {**old_spec, "training": {**_LEGACY_TRAINING, **old_spec["training"]}}
            old_spec.setdefault("input_skip", False)  # written before the model had it
            old_spec.setdefault("spatial_skip", False)  # likewise
            old_spec.setdefault("balance_modalities", False)  # likewise
        if old_spec.get("balance_modalities") is True:  # written when the balance had one rule
            old_spec = {**old_spec, "balance_modalities": "split"}
        if isinstance(old_spec.get("training"), dict):
            # written before the model had the choice: the padded mean, wherever the run has an ECG skip
            old_spec.setdefault("rr_skip", "padded" if spec.get("rr_skip") else None)
        if old.get("format") != RUN_FORMAT or old_spec != spec:
            if not overwrite:
                changed = _spec_differences(old_spec, spec)
                # a run of a model written before one of today's defaults: the flags that turn them off
                flags = [flag for key, flag in _DEFAULT_OFF_FLAGS
                         if old_spec.get(key) is False and spec.get(key) not in (False, None)]
                if old_spec.get("balance_modalities") == "split" and spec.get("balance_modalities") != "split":
                    flags.append("--modality-balance split")
                if old_spec.get("rr_skip") and spec.get("rr_skip") and old_spec["rr_skip"] != spec["rr_skip"]:
                    flags.append(f"--rr-skip {old_spec['rr_skip']}")
                if old_spec.get("training", {}).get("mixup") == 0.0 and spec.get("training", {}).get("mixup"):
                    flags.append("--mixup 0")
                if "--no-input-skip" in flags and "--no-spatial-skip" in flags:  # the first implies the second
                    flags.remove("--no-spatial-skip")
                hint = f" (a run of the model as it was then: {' '.join(flags)} resumes it)" if flags else ""
                raise ConfigMismatchError(
                    f"{out}: holds a run with another configuration (differs in: {'; '.join(changed) or 'format'})"
                    f"{hint}; pass the same options to resume it, use another --out, or --overwrite to discard it")
            shutil.rmtree(out / "folds", ignore_errors=True)
            shutil.rmtree(out / "logs", ignore_errors=True)
            (out / "results.json").unlink(missing_ok=True)
        else:
            return
    elif overwrite and out.exists():
        shutil.rmtree(out / "folds", ignore_errors=True)
        shutil.rmtree(out / "logs", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_json, {"format": RUN_FORMAT, "spec": spec})


def _left_out_message(target: str, subjects) -> str:
    return (f"left out of training (every window one class of {target}, which --normalize subject cannot tell "
            f"apart): {', '.join(subjects)}")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _say(log, message: str) -> None:
    if log is not None:
        log(message)


def run_cv(features, target: str, out, models=("maan",), protocol: str = DEFAULT_PROTOCOL, folds: int = 10,
           seed: int = 0, normalize: str = DEFAULT_NORMALIZE, config: TrainConfig | dict | None = None,
           progress: bool = True, log=print, overwrite: bool = False) -> dict:
    """Cross-validate ``models`` (plus the majority, logistic and hr-band baselines) on one target.

    ``features`` is a store path or a loaded :class:`~maan.preprocessing.store.Features`. Writes
    ``out/results.json`` (returned as a dict; ``{}`` on a non-zero DDP rank). Rerunning the
    same call after an interruption continues at the next unfinished (fold, model).
    """
    from tqdm.auto import tqdm

    config = _as_config(config)
    models = tuple(dict.fromkeys(models))
    _validate(models, protocol, normalize, config)
    config = _resolved(config, normalize)
    features, features_path = _load(features)
    y = _check_target(features, target)
    out = Path(out)
    splits = make_splits(protocol, y, features.subject, features.trial, folds, seed)
    training = config.result_keys()
    # the model's input and spatial skips (on or off) and modality balance rule are top-level keys
    # (absent from runs written before them)
    input_skip, spatial_skip = _input_skip(config), _spatial_skip(config, models, features.manifest)
    balance_modalities = _balance_modalities(config, models, normalize)
    rr_skip = _rr_skip(config, models, normalize)
    training["model_kwargs"] = {k: v for k, v in training["model_kwargs"].items()
                                if k not in _RECORDED_MODEL_KWARGS}
    spec = {"target": target, "protocol": protocol, "folds_requested": int(folds), "folds": len(splits),
            "seed": int(seed), "normalize": normalize, "training": training, "input_skip": input_skip,
            "spatial_skip": spatial_skip, "balance_modalities": balance_modalities, "rr_skip": rr_skip,
            "store": _store_fingerprint(features), "fold_fingerprint": _fold_fingerprint(splits)}
    # --normalize subject: single-class subjects are left out of training (informative_train_idx)
    fold_train = [informative_train_idx(train_idx, y, features.subject, normalize) for train_idx, _ in splits]
    # rules added on 2026-11-26, named in the spec only where they change a fold, so that runs
    # written before them resume unless they would now train differently
    if any(left_out for _, left_out in fold_train):
        spec["single_class_subjects"] = "left out of training"
    groups = groups_for(protocol, features.subject, features.trial)
    if groups is not None and any(2 <= len(np.unique(groups[t])) < MIN_INNER_GROUPS for t, _ in fold_train):
        spec["inner_split"] = f"single windows below {MIN_INNER_GROUPS} groups"
    rank_zero = _rank_zero()
    if rank_zero:
        _prepare_run_dir(out, spec, overwrite)
    layout, n_bands = layout_of(features.manifest)
    label = data_label(features.manifest)
    _say(log, f"cv {target} | {protocol} | {len(splits)} folds | {', '.join(models)} + baselines | {label}")
    balance = class_balance(y)
    _say(log, f"  class balance ({target}): {balance['high']} high / {balance['low']} low "
              f"({balance['high_fraction']:.0%} high) in {balance['n']} windows"
              f"; loss uses {'class weights' if config.balance == 'weights' else config.balance + ' balancing'}")

    subject_normalizer = None
    if normalize == "subject":  # transductive: every subject's own windows, labels unused
        subject_normalizer = Normalizer("subject", layout, n_bands).fit(features.ecg, features.eeg, features.subject)
    pooled = None

    def fold_dir(k):
        return out / "folds" / f"fold-{k:02d}"

    # decided once, before any training, so that every DDP rank walks the same list
    todo = [(k, m) for k in range(len(splits)) for m in models
            if not (fold_dir(k) / f"{m}.result.json").exists()]
    bar = tqdm(total=len(splits) * len(models), initial=len(splits) * len(models) - len(todo), unit="fit",
               desc=f"cv {target} {protocol}", disable=not (progress and rank_zero))
    start = time.perf_counter()
    announced: set[str] = set()
    try:
        for k, (fold_idx, test_idx) in enumerate(splits):
            fdir = fold_dir(k)
            train_idx, left_out = fold_train[k]
            if set(left_out) - announced:
                announced.update(left_out)
                _say(log, "  " + _left_out_message(target, left_out))
            done = _read_json(fdir / "baselines.json") if rank_zero else None
            # a run written before a baseline was added gets it on resume (baselines are cheap)
            if rank_zero and (done is None or any(b not in done for b in BASELINES)):
                if pooled is None:
                    pooled = {b: baseline_features(b, features.ecg, features.eeg, layout, n_bands)
                              for b in LOGISTIC_BASELINES}
                y_train, y_test = y[train_idx], y[test_idx]
                record = {"fold": k, "n_train": int(len(train_idx)), "n_test": int(len(test_idx)),
                          "train_balance": class_balance(y_train), "test_balance": class_balance(y_test),
                          "left_out_subjects": left_out}
                pred, score = majority_baseline(y[fold_idx], len(test_idx))  # no normalisation: every window
                record["majority"] = binary_metrics(y_test, pred, score)
                for b in LOGISTIC_BASELINES:
                    pred, score = logistic_baseline(pooled[b], y, train_idx, test_idx, normalize, features.subject,
                                                    seed)
                    record[b] = binary_metrics(y_test, pred, score)
                atomic_write_json(fdir / "baselines.json", record)
            for name in models:
                if (k, name) not in todo:
                    continue
                result = _train_fold(features, y, target, name, k, train_idx, test_idx, protocol, seed, normalize,
                                     config, subject_normalizer, layout, n_bands, out, fdir, progress=False)
                if result is not None and log is not None:
                    m = result["metrics"]
                    (log if bar.disable else bar.write)(f"  fold {k + 1}/{len(splits)} {name}: acc {m['acc']:.3f} sen {m['sen']:.3f} "
                              f"spe {m['spe']:.3f} ({result['epochs']} epochs, {result['seconds']:.1f} s)")
                bar.update(1)
    finally:
        bar.close()
    if not rank_zero:
        return {}
    results = collect_cv(out, features, features_path, target, models, protocol, len(splits), seed, normalize,
                         config, folds_requested=folds)
    results["seconds_this_call"] = round(time.perf_counter() - start, 2)
    atomic_write_json(out / "results.json", results)
    return results


def _train_fold(features, y, target, name, k, train_idx, test_idx, protocol, seed, normalize, config,
                subject_normalizer, layout, n_bands, out, fdir, progress=False):
    from maan.training.datamodule import WindowDataModule
    from maan.training.module import fit_module, predict_proba
    from maan.evaluation.predictions import model_details, predictions_path, save_predictions

    fold_seed = seed + k
    fit_idx, val_idx = inner_split(protocol, train_idx, y, features.subject, features.trial,
                                   config.val_fraction, fold_seed)
    normalizer = subject_normalizer if subject_normalizer is not None else Normalizer("train", layout, n_bands)
    dm = WindowDataModule(features.ecg, features.eeg, y, features.subject, fit_idx, val_idx, test_idx,
                          batch_size=config.batch_size, balance=config.balance, seed=fold_seed,
                          normalizer=normalizer)
    fit = fit_module(dm, name, config, fold_seed, log_dir=out / "logs", log_name=f"fold-{k:02d}/{name}",
                     progress=progress)
    if not fit.is_global_zero:
        return None
    ecg_t, eeg_t, y_t = dm.test_arrays()
    score = predict_proba(fit.module, ecg_t, eeg_t)
    metrics = binary_metrics(y_t, (score >= 0.5).astype(int), score)
    training = {**config.to_dict(), "seed": fold_seed, "fold": k, "protocol": protocol, "n_fit": int(len(fit_idx)),
                "n_val": int(len(val_idx)), "epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch,
                "batch_size_used": fit.batch_size, "train_balance": class_balance(y[train_idx])}
    save_checkpoint(fdir / f"{name}.pt", fit.module.model, model_name=name, model_kwargs=config.model_kwargs,
                    ecg_shape=dm.ecg_shape, eeg_shape=dm.eeg_shape, target=target, normalizer=dm.normalizer,
                    manifest=features.manifest, training=training)
    # test predictions, representation and masks for ROC / t-SNE / attention figures; before the
    # result file, which marks the (fold, model) finished
    save_predictions(predictions_path(fdir, name), test_idx=test_idx, y_true=y_t, score=score,
                     details=model_details(fit.module.model, ecg_t, eeg_t))
    result = {"fold": k, "model": name, "metrics": metrics, "n_train": int(len(train_idx)),
              "n_fit": int(len(fit_idx)), "n_val": int(len(val_idx)), "n_test": int(len(test_idx)),
              "epochs": fit.epochs_run, "best_epoch": fit.best_epoch, "batch_size": fit.batch_size,
              "best_val_loss": None if not np.isfinite(fit.best_val_loss) else round(fit.best_val_loss, 6),
              "seconds": round(fit.seconds, 3), "checkpoint": f"folds/fold-{k:02d}/{name}.pt"}
    if getattr(fit.module.model, "input_skip", False) and getattr(fit.module.model, "ecg_branch", None) is not None:
        result["rr_skip"] = fit.module.model.rr_skip  # "auto" resolved for this fold
    atomic_write_json(fdir / f"{name}.result.json", result)
    return result


def _entry(per_fold: list[dict]) -> dict:
    return {"metrics": summarize(per_fold), "per_fold": per_fold}


def _input_skip(config: TrainConfig) -> bool:
    """Whether the model of this run has the input skip (the model's default unless set)."""
    return bool(config.model_kwargs.get("input_skip", DEFAULT_INPUT_SKIP))


def _spatial_skip(config: TrainConfig, models=MODEL_NAMES, manifest: dict | None = None) -> bool:
    """Whether the run's models carry the EEG's spatial pattern in their input skip: as the model
    builds it, never without the input skip, the EEG branch or on the grid layout."""
    if manifest is not None and layout_of(manifest)[0] == "grid":
        return False
    return (_input_skip(config) and any(m != "ecg-only" for m in models)
            and bool(config.model_kwargs.get("spatial_skip", DEFAULT_SPATIAL_SKIP)))


def _balance_modalities(config: TrainConfig, models=MODEL_NAMES, normalize: str = DEFAULT_NORMALIZE) -> str | bool:
    """The rule by which the run's two-modality models scale each modality's block of the classifier
    input (False: none)."""
    if not any(m in ("maan", "base") for m in models):
        return False
    return modality_balance(normalize, config.model_kwargs)


def _rr_skip(config: TrainConfig, models=MODEL_NAMES, normalize: str = DEFAULT_NORMALIZE) -> str | None:
    """What the ECG part of the run's input skip carries ("auto", "padded", "beats", "beat-mean"); None
    when no model of the run has it (no input skip, or no ECG branch). With ``--normalize subject``
    "auto" is resolved per fold and model from the training windows
    (maan.training.module.resolve_rr_skip; each fold's result names the choice); with training-fold
    statistics it is always "padded" and recorded as such, so run folders written before "auto"
    resume unchanged."""
    if not _input_skip(config) or not any(m != "eeg-only" for m in models):
        return None
    setting = config.model_kwargs.get("rr_skip", RR_SKIP_AUTO)
    return resolve_rr_skip(setting, normalize) if normalize != "subject" else setting


#: model options recorded as top-level keys of the run, not among the training's model_kwargs
_RECORDED_MODEL_KWARGS = ("input_skip", "spatial_skip", "balance_modalities", "rr_skip")


def _training_record(config: TrainConfig, models=MODEL_NAMES, manifest: dict | None = None,
                     normalize: str = DEFAULT_NORMALIZE) -> dict:
    """The training settings for results.json, with whether the models had the input and spatial skips
    and the modality balance."""
    return {**config.to_dict(), "input_skip": _input_skip(config),
            "spatial_skip": _spatial_skip(config, models, manifest),
            "balance_modalities": _balance_modalities(config, models, normalize),
            "rr_skip": _rr_skip(config, models, normalize)}


def collect_cv(out, features, features_path, target, models, protocol, n_folds, seed, normalize, config,
               folds_requested=None) -> dict:
    """results.json of a CV run from its per-fold files."""
    out = Path(out)
    per_model: dict[str, list] = {m: [] for m in (*models, *BASELINES)}
    balances = []
    for k in range(n_folds):
        fdir = out / "folds" / f"fold-{k:02d}"
        base = _read_json(fdir / "baselines.json")
        if base is None:
            raise MaanError(f"{fdir}: baseline results missing; rerun the same command to finish the run")
        balances.append({"fold": k, "train": base["train_balance"], "test": base["test_balance"],
                         "left_out_subjects": base.get("left_out_subjects", [])})
        for b in BASELINES:
            per_model[b].append({"fold": k, **base[b], "n_train": base["n_train"], "n_test": base["n_test"]})
        for m in models:
            r = _read_json(fdir / f"{m}.result.json")
            if r is None:
                raise MaanError(f"{fdir}: results of {m} missing; rerun the same command to finish the run")
            per_model[m].append({"fold": k, **r["metrics"], **{key: r[key] for key in (
                "n_train", "n_fit", "n_val", "n_test", "epochs", "best_epoch", "seconds", "checkpoint")},
                "batch_size": r.get("batch_size"), **({"rr_skip": r["rr_skip"]} if "rr_skip" in r else {})})
    y = np.asarray(features.labels[target]).astype(int)
    manifest = features.manifest
    return {
        "dataset": features.dataset,
        "synthetic": features.synthetic,
        "data_label": data_label(manifest),
        "target": target,
        "protocol": protocol,
        "folds": int(n_folds),
        "folds_requested": int(folds_requested or n_folds),
        "seed": int(seed),
        "normalize": normalize,
        "versions": versions(),
        "features": features_path,
        "n_windows": int(len(features)),
        "n_subjects": int(len(np.unique(features.subject))),
        "class_balance": {**class_balance(y), "per_fold": balances},
        "training": _training_record(config, models, features.manifest, normalize),
        "models": {m: _entry(per_model[m]) for m in per_model},
        "training_seconds": round(sum(f.get("seconds", 0.0) for m in models for f in per_model[m]), 2),
    }


# -- reproduce --------------------------------------------------------------------------------
def run_reproduce(data, dataset: str, out, *, features=None, protocols=REPRODUCE_PROTOCOLS,
                  targets=REPRODUCE_TARGETS, models=REPRODUCE_MODELS, folds: int = 10, seed: int = 0,
                  normalize: str = DEFAULT_NORMALIZE, config: TrainConfig | dict | None = None, jobs: int = 1,
                  progress: bool = True, log=print, overwrite: bool = False, print_table: bool = True) -> dict:
    """The paper's Table 1: base and proposed x ``targets`` x ``protocols`` on the same folds.

    Preprocesses ``data`` into ``features`` (default ``out/features``; resumable, skipped when
    ``data`` is None and the store exists), runs :func:`run_cv` per (protocol, target) into
    ``out/PROTOCOL/TARGET/`` and writes ``out/results.json`` (``{"runs": [...]}``) and
    ``out/table1.md``. An interrupted call resumes at the next unfinished fold.
    """
    from maan.evaluation.report import format_table1, write_table1
    from maan.preprocessing.store import load_features

    config = _as_config(config)
    out = Path(out)
    store = Path(features) if features is not None else out / "features"
    protocols = tuple(dict.fromkeys(protocols))
    for p in protocols:
        if p not in PROTOCOLS:
            raise MaanError(f"unknown protocol {p!r}; choose from {', '.join(PROTOCOLS)}")
    start = time.perf_counter()
    if data is not None:
        from maan.preprocessing.pipeline import preprocess

        _say(log, f"preprocessing {data} into {store}")
        preprocess(dataset, data, store, jobs=jobs, progress=progress)
    elif not (store / "manifest.json").exists():
        raise MaanError(f"{store}: no feature store; pass --data to build it")
    feats = load_features(store)
    if feats.dataset != dataset:
        raise ConfigMismatchError(f"{store}: holds {feats.dataset} features, not {dataset}")
    runs = []
    for protocol in protocols:
        for target in targets:
            result = run_cv(feats, target, out / protocol / target, models=models, protocol=protocol, folds=folds,
                            seed=seed, normalize=normalize, config=config, progress=progress, log=log,
                            overwrite=overwrite)
            result["features"] = str(store)
            result["run_dir"] = str(out / protocol / target)
            runs.append(result)
    if not _rank_zero():  # DDP: only rank 0 reports
        return {}
    summary = {"dataset": feats.dataset, "synthetic": feats.synthetic, "data_label": data_label(feats.manifest),
               "features": str(store), "protocols": list(protocols), "targets": list(targets),
               "models": list(models), "folds": int(folds), "seed": int(seed), "normalize": normalize,
               "training": _training_record(config, models, feats.manifest, normalize),
               "versions": versions(),
               "seconds_this_call": round(time.perf_counter() - start, 2), "runs": runs}
    atomic_write_json(out / "results.json", summary)
    write_table1(summary, out / "table1.md")
    if print_table and log is not None:
        log(format_table1(summary))
        log(f"\nTable: {out / 'table1.md'}\nAll numbers: {out / 'results.json'}\nPer-fold checkpoints and logs: "
            f"{out}/<protocol>/<target>/")
    return summary


# -- single model: train on a whole store, evaluate a checkpoint on a store ------------------
def train_model(features, target: str, out, model: str = "maan", seed: int = 0,
                normalize: str = DEFAULT_NORMALIZE, config: TrainConfig | dict | None = None,
                val_split: str = DEFAULT_PROTOCOL, progress: bool = True, log=print) -> dict:
    """Train one model on every window of a store (early stopping on an inner validation split
    grouped like ``val_split``) and write ``out/model.pt`` + ``out/model.json``."""
    from maan.training.datamodule import WindowDataModule
    from maan.training.module import fit_module

    config = _as_config(config)
    _validate((model,), val_split, normalize, config)
    config = _resolved(config, normalize)
    features, _ = _load(features)
    y = _check_target(features, target)
    if len(np.unique(y)) < 2:
        raise MaanError(f"the target {target!r} has a single class in this store; nothing to learn")
    layout, n_bands = layout_of(features.manifest)
    out = Path(out)
    all_idx, left_out = informative_train_idx(np.arange(len(y)), y, features.subject, normalize)
    if left_out:
        _say(log, _left_out_message(target, left_out))
    fit_idx, val_idx = inner_split(val_split, all_idx, y, features.subject, features.trial, config.val_fraction, seed)
    dm = WindowDataModule(features.ecg, features.eeg, y, features.subject, fit_idx, val_idx, None,
                          normalize=normalize, layout=layout, n_bands=n_bands, batch_size=config.batch_size,
                          balance=config.balance, seed=seed)
    balance = class_balance(y[all_idx])
    _say(log, f"train {model} on {target} | {len(fit_idx)} fit / {len(val_idx)} validation windows | "
              f"{balance['high_fraction']:.0%} high | {data_label(features.manifest)}")
    fit = fit_module(dm, model, config, seed, log_dir=out / "logs", log_name=model, progress=progress)
    if not fit.is_global_zero:
        return {}
    training = {**config.to_dict(), "seed": seed, "val_split": val_split, "n_fit": int(len(fit_idx)),
                "n_val": int(len(val_idx)), "epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch,
                "best_val_loss": float(fit.best_val_loss), "seconds": round(fit.seconds, 3),
                "batch_size_used": fit.batch_size, "left_out_subjects": left_out,
                "train_balance": balance, "rr_skip": getattr(fit.module.model, "rr_skip", None)}
    path = save_checkpoint(out / "model.pt", fit.module.model, model_name=model, model_kwargs=config.model_kwargs,
                           ecg_shape=dm.ecg_shape, eeg_shape=dm.eeg_shape, target=target, normalizer=dm.normalizer,
                           manifest=features.manifest, training=training)
    return {"checkpoint": str(path), "config": str(path.with_suffix(".json")), **training}


def evaluate_model(checkpoint, features, target: str | None = None) -> dict:
    """Metrics of a checkpoint on every window of a store (plus the training-prior majority line)."""
    ckpt = load_checkpoint(checkpoint)
    features, features_path = _load(features)
    ckpt.check_store(features.manifest)
    target = target or ckpt.target
    y = _check_target(features, target)
    score = ckpt.predict_proba(features.ecg, features.eeg, features.subject)
    metrics = binary_metrics(y, (score >= 0.5).astype(int), score)
    prior = ckpt.meta.get("training", {}).get("train_balance", {}).get("high_fraction")
    majority = None
    if prior is not None:
        pred = np.full(len(y), int(prior >= 0.5))
        majority = binary_metrics(y, pred, np.full(len(y), prior))
    return {"checkpoint": str(ckpt.path), "model": ckpt.model_name, "trained_on": ckpt.meta["store"],
            "dataset": features.dataset, "synthetic": features.synthetic, "data_label": data_label(features.manifest),
            "features": features_path, "target": target, "class_balance": class_balance(y),
            "normalize": ckpt.normalizer.mode, "metrics": metrics, "majority": majority, "versions": versions()}
