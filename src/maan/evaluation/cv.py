"""Cross-validation (``run_cv``), the paper's Table 1 (``run_reproduce``) and ``evaluate_model``.

A CV run folder ``RUN/`` holds::

    run.json                      what was asked (target, protocol, folds, seed, recipe,
                                  hyperparameters, store fingerprint, fold fingerprint)
    folds/fold-KK/baselines.json  majority, logistic and hr-band metrics of fold KK
    folds/fold-KK/MODEL.pt|.json  the fold's checkpoint (state_dict + configuration)
    folds/fold-KK/MODEL.predictions.npz  test windows: store indices, labels, P(high), representation
                                  and attention masks (maan.evaluation.predictions; before the result)
    folds/fold-KK/MODEL.result.json  the fold's test metrics, on all windows and on each kind of
                                  window (``by_modalities``: ecg+eeg, ecg, eeg), with counts
                                  (written after the checkpoint)
    logs/fold-KK/MODEL/metrics.csv   Lightning's CSV log (train/val loss and accuracy per epoch)
    results.json                  everything above, summarised (mean ± std over folds)

Every file is written atomically, so an interrupted run leaves only finished folds and a rerun
(same command) continues at the first unfinished (fold, model); a rerun with a different
configuration is refused (``ConfigMismatchError``) unless ``overwrite``.

Each (fold, model) is seeded with ``seed + fold`` (weights, batch order, inner validation
split), so a resumed run gives the same numbers as an uninterrupted one.

Windows that miss a modality (the store's modality mask) are trained on and tested like the
others. A single-modality model learns from the windows holding its modality; on a test window
without it, it has no input and predicts the training majority (score: the training prior), as
the majority baseline does (``n_without_input`` counts them; its metrics of that kind of window
are not reported).
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
from maan.config import modality_kind
from maan.evaluation.metrics import binary_metrics, metrics_by_modalities, pool_by_modalities, summarize
from maan.features.normalize import Normalizer, informative_train_idx, layout_of
from maan.preprocessing.io import atomic_write_json, config_hash, package_versions
from maan.models import has_input, model_modalities
from maan.training.baselines import (BASELINES, LOGISTIC_BASELINES, baseline_features, logistic_baseline,
                                     majority_baseline, present_features)
from maan.training.checkpoint import load_checkpoint, save_checkpoint, versions
from maan.training.module import TrainConfig
from maan.training.recipes import Recipe
from maan.training.splits import DEFAULT_PROTOCOL, MIN_INNER_GROUPS, PROTOCOLS, class_balance, groups_for, inner_split, make_splits
from maan.training.train import as_config, check_run, check_target, data_label, left_out_message, load_store

RUN_FORMAT = "maan-cv-run"
#: one number for the whole run-folder format; a change bumps it
RUN_VERSION = 1
REPRODUCE_PROTOCOLS = ("segment-kfold", "trial-kfold", "subject-kfold")
REPRODUCE_MODELS = ("base", "maan")
REPRODUCE_TARGETS = ("arousal", "valence")

#: The ``maan demo`` preset: ``run_reproduce(data, "amigos", out, **DEMO_PRESET)``: 3 folds per
#: protocol, at most 8 epochs (patience 3), so that the demo's Table 1 takes minutes on 2 CPU
#: cores. Not the paper's protocol (10 folds).
DEMO_PRESET = {"folds": 3, "config": {"epochs": 8, "patience": 3}}


def _rank_zero() -> bool:
    try:
        from lightning.fabric.utilities.rank_zero import rank_zero_only

        return getattr(rank_zero_only, "rank", 0) == 0
    except ImportError:  # pragma: no cover
        return True


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


def _spec_differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{key}: {a!r} -> {b!r}" if not isinstance(a, (dict, list)) else key)
    return out


def _prepare_run_dir(out: Path, spec: dict, overwrite: bool) -> None:
    run_json = out / "run.json"
    if run_json.exists() and not overwrite:
        try:
            old = json.loads(run_json.read_text())
        except ValueError as exc:
            raise InvalidInputError(run_json, f"corrupt run description ({exc}); use --overwrite or another --out") from exc
        if not isinstance(old, dict) or old.get("format") != RUN_FORMAT or old.get("format_version") != RUN_VERSION:
            raise ConfigMismatchError(f"{out}: holds no run of this maan (format {RUN_FORMAT} version {RUN_VERSION}); "
                                      "use another --out, or --overwrite to discard it")
        if old.get("spec") != spec:
            changed = _spec_differences(old.get("spec") or {}, spec)
            raise ConfigMismatchError(
                f"{out}: holds a run with another configuration (differs in: {'; '.join(changed)}); pass the same "
                "options to resume it, use another --out, or --overwrite to discard it")
        return
    if out.exists():
        for part in ("folds", "logs"):
            shutil.rmtree(out / part, ignore_errors=True)
        (out / "results.json").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_json, {"format": RUN_FORMAT, "format_version": RUN_VERSION, "spec": spec})


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


_METRIC_KEYS = ("acc", "sen", "spe")
_RESULT_KEYS = ("n_train", "n_fit", "n_val", "n_test", "epochs", "best_epoch", "seconds", "checkpoint",
                "by_modalities")
_BASELINE_KEYS = ("n_train", "n_test", "train_balance", "test_balance", "by_modalities", *BASELINES)


def _has_metrics(record) -> bool:
    return isinstance(record, dict) and all(isinstance(record.get(k), (int, float)) for k in _METRIC_KEYS)


def _fold_file(path: Path, kind: str, log=None):
    """A fold's finished result (``kind``: "baselines" or "result"), or None when it is missing
    or broken; a broken file is removed, and said so, so that the fold is computed again."""
    if not path.exists():
        return None
    record = _read_json(path)
    if kind == "baselines":
        ok = isinstance(record, dict) and all(k in record for k in _BASELINE_KEYS) and all(
            _has_metrics(record[b]) for b in BASELINES)
    else:
        ok = isinstance(record, dict) and _has_metrics(record.get("metrics")) and all(k in record for k in _RESULT_KEYS)
    if ok:
        return record
    _say(log, f"  {path}: unreadable or incomplete; computing it again")
    path.unlink(missing_ok=True)
    return None


def _say(log, message: str) -> None:
    if log is not None:
        log(message)


def run_cv(features, target: str, out, models=("maan",), protocol: str = DEFAULT_PROTOCOL, folds: int = 10,
           seed: int = 0, recipe: str | Recipe = "paper", config: TrainConfig | dict | None = None,
           progress: bool = True, log=print, overwrite: bool = False, fold: int | None = None,
           jobs: int = 1) -> dict:
    """Cross-validate ``models`` (plus the majority, logistic and hr-band baselines) on one target.

    ``features`` is a store path or a loaded :class:`~maan.preprocessing.store.Features`. Writes
    ``out/results.json`` (returned as a dict; ``{}`` on a non-zero DDP rank). Rerunning the
    same call after an interruption continues at the next unfinished (fold, model).

    ``fold`` (1-based) runs that fold only (its baselines and every model) and returns
    ``{"fold": fold, "models": {model: result}}`` without writing results.json: independent
    processes (a cluster's job array) can each run a fold into the same ``out``, in any order,
    and the call without ``fold`` then runs what is missing and collects. ``jobs`` > 1 runs the
    unfinished fits in that many worker processes, one thread each (CPU only). Every fit is
    seeded and single-threaded whichever way it runs, so neither changes a result.
    """
    from tqdm.auto import tqdm

    from maan import config as C

    config = as_config(config)
    models = tuple(dict.fromkeys(models))
    recipe = check_run(models, protocol, recipe, seed)
    C.check_number("jobs (--jobs)", jobs, 1, integer=True)
    if jobs > 1 and not cpu_fits(config):
        raise MaanError(f"--jobs runs independent fits on the CPU; with --accelerator {config.accelerator} "
                        f"--devices {config.devices} use --jobs 1 (got --jobs {jobs})")
    normalize = recipe.normalize
    features, features_path = load_store(features)
    y = check_target(features, target)
    out = Path(out)
    splits = make_splits(protocol, y, features.subject, features.trial, folds, seed)
    C.check_number("fold (--fold)", fold, 1, len(splits), integer=True, optional=True)
    if fold is not None and overwrite:
        raise MaanError("--overwrite with one fold would discard the folds other processes computed; "
                        "start the run over without --fold (or remove its folder), then run the folds")
    selected = range(len(splits)) if fold is None else [fold - 1]
    spec = {"target": target, "protocol": protocol, "folds_requested": int(folds), "folds": len(splits),
            "seed": int(seed), "recipe": dataclasses.asdict(recipe), "training": config.result_keys(),
            "store": _store_fingerprint(features), "fold_fingerprint": _fold_fingerprint(splits)}
    # --normalize subject: single-class subjects are left out of training (informative_train_idx)
    fold_train = [informative_train_idx(train_idx, y, features.subject, normalize) for train_idx, _ in splits]
    rank_zero = _rank_zero()
    if rank_zero:
        _prepare_run_dir(out, spec, overwrite)
    layout, n_bands = layout_of(features.manifest)
    label = data_label(features.manifest)
    _say(log, f"cv {target} | {protocol} | {len(splits)} folds | recipe {recipe.name} | {', '.join(models)} + "
              f"baselines | {label}")
    balance = class_balance(y)
    _say(log, f"  class balance ({target}): {balance['high']} high / {balance['low']} low "
              f"({balance['high_fraction']:.0%} high) in {balance['n']} windows"
              f"; loss uses {'class weights' if config.balance == 'weights' else config.balance + ' balancing'}")

    subject_normalizer = None
    if normalize == "subject":  # transductive: every subject's own windows, labels unused
        subject_normalizer = Normalizer("subject", layout, n_bands).fit(features.ecg, features.eeg, features.subject,
                                                                        mask=features.modality_mask)
    pooled = None

    def fold_dir(k):
        return out / "folds" / f"fold-{k:02d}"

    # decided once, before any training, so that every DDP rank walks the same list
    todo = [(k, m) for k in selected for m in models
            if _fold_file(fold_dir(k) / f"{m}.result.json", "result", log if rank_zero else None) is None]
    bar = tqdm(total=len(selected) * len(models), initial=len(selected) * len(models) - len(todo), unit="fit",
               desc=f"cv {target} {protocol}" + (f" fold {fold}" if fold else ""), disable=not (progress and rank_zero))
    start = time.perf_counter()
    announced: set[str] = set()
    finished: dict[tuple, dict] = {}

    def report(k, name, result):
        finished[k, name] = result
        if result is not None and log is not None:
            m = result["metrics"]
            (log if bar.disable else bar.write)(f"  fold {k + 1}/{len(splits)} {name}: acc {m['acc']:.3f} sen {m['sen']:.3f} "
                                                f"spe {m['spe']:.3f} ({result['epochs']} epochs, {result['seconds']:.1f} s)")
        bar.update(1)

    try:
        for k in selected:
            fold_idx, test_idx = splits[k]
            fdir = fold_dir(k)
            train_idx, left_out = fold_train[k]
            if set(left_out) - announced:
                announced.update(left_out)
                _say(log, "  " + left_out_message(target, left_out))
            if rank_zero and _fold_file(fdir / "baselines.json", "baselines", log) is None:
                if pooled is None:
                    pooled = {b: baseline_features(b, features.ecg, features.eeg, layout, n_bands)
                              for b in LOGISTIC_BASELINES}
                    present = {b: present_features(b, pooled[b], features.modality_mask) for b in LOGISTIC_BASELINES}
                kinds = modality_kind(features.modality_mask[test_idx])
                y_train, y_test = y[train_idx], y[test_idx]
                record = {"fold": k, "n_train": int(len(train_idx)), "n_test": int(len(test_idx)),
                          "train_balance": class_balance(y_train), "test_balance": class_balance(y_test),
                          "left_out_subjects": left_out}
                pred, score = majority_baseline(y[fold_idx], len(test_idx))  # no normalisation: every window
                record["majority"] = binary_metrics(y_test, pred, score)
                record["by_modalities"] = {"majority": metrics_by_modalities(y_test, score, kinds)}
                for b in LOGISTIC_BASELINES:
                    pred, score = logistic_baseline(pooled[b], y, train_idx, test_idx, normalize, features.subject,
                                                    seed, present[b])
                    record[b] = binary_metrics(y_test, pred, score)
                    record["by_modalities"][b] = metrics_by_modalities(y_test, score, kinds)
                atomic_write_json(fdir / "baselines.json", record)

        def fit(item):
            k, name = item
            return _train_fold(features, y, target, name, k, fold_train[k][0], splits[k][1], protocol, seed, recipe,
                               config, subject_normalizer, layout, n_bands, out, fold_dir(k),
                               log=log if jobs == 1 else None)

        if jobs > 1 and len(todo) > 1:
            from maan.preprocessing.parallel import run_parallel

            _FIT[:] = [fit]  # inherited by the forked workers (a closure cannot be pickled)
            try:
                run_parallel(_fit_in_worker, todo, jobs, lambda i, result: report(*todo[i], result),
                             describe=lambda i: f"fold {todo[i][0] + 1} {todo[i][1]}")
            finally:
                _FIT.clear()
        else:
            for item in todo:
                report(*item, _single_threaded(fit, item))
    finally:
        bar.close()
    if not rank_zero:
        return {}
    if fold is not None:
        return {"fold": fold, "folds": len(splits), "run_dir": str(out),
                "models": {m: finished.get((fold - 1, m)) or _fold_file(fold_dir(fold - 1) / f"{m}.result.json", "result")
                           for m in models}}
    results = collect_cv(out, features, features_path, target, models, protocol, len(splits), seed, recipe,
                         config, folds_requested=folds)
    results["seconds_this_call"] = round(time.perf_counter() - start, 2)
    atomic_write_json(out / "results.json", results)
    return results


# Worker state, inherited through fork: the fit closure of the run_cv call that fans out.
_FIT: list = []


def cpu_fits(config: TrainConfig) -> bool:
    """Whether ``config`` trains on one CPU device (what fits in worker processes need)."""
    if str(config.devices) not in ("1", "auto"):
        return False
    if config.accelerator == "auto":
        import torch

        return not torch.cuda.is_available()
    return config.accelerator == "cpu"


def _single_threaded(fn, *args):
    """``fn(*args)`` with one intra-op thread: a fit computes the same numbers in a worker
    process (one thread each) as in the calling process, and small kernels lose nothing."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


def _fit_in_worker(item):
    return _single_threaded(_FIT[0], item)


def _train_fold(features, y, target, name, k, train_idx, test_idx, protocol, seed, recipe, config,
                subject_normalizer, layout, n_bands, out, fdir, log=None):
    from maan.training.datamodule import WindowDataModule
    from maan.training.module import fit_module, predict_proba
    from maan.evaluation.predictions import model_details, predictions_path, save_predictions

    fold_seed = seed + k
    modalities = model_modalities(name)
    mask = features.modality_mask
    usable = has_input(modalities, mask)  # a single-modality model learns from the windows with its modality
    train_idx, left_out = informative_train_idx(train_idx[usable[train_idx]], y, features.subject,
                                                recipe.normalize, present=usable)
    if left_out:
        _say(log, f"  fold {k + 1} {name}: " + left_out_message(target, left_out))
    if len(train_idx) == 0:
        raise MaanError(f"fold {k + 1}: no training window holds {' or '.join(m.upper() for m in modalities)}; "
                        f"the {name} model has nothing to learn from")
    fit_idx, val_idx = inner_split(protocol, train_idx, y, features.subject, features.trial,
                                   config.val_fraction, fold_seed)
    normalizer = subject_normalizer if subject_normalizer is not None else Normalizer("train", layout, n_bands)
    dm = WindowDataModule(features.ecg, features.eeg, y, features.subject, fit_idx, val_idx, test_idx,
                          batch_size=config.batch_size, balance=config.balance, seed=fold_seed,
                          normalizer=normalizer, modality_mask=mask)
    choices = []  # the recipe's data-dependent choices of this fold, logged with the fold's result
    if _rank_zero():
        shutil.rmtree(out / "logs" / f"fold-{k:02d}" / name, ignore_errors=True)  # an interrupted fit's logs
    fit = fit_module(dm, name, config, fold_seed, recipe, log_dir=out / "logs", log_name=f"fold-{k:02d}/{name}",
                     log=choices.append)
    if not fit.is_global_zero:
        return None
    ecg_t, eeg_t, mask_t, y_t = dm.test_arrays()
    usable = has_input(modalities, mask_t)
    score = np.full(len(y_t), float(y[train_idx].mean()))  # no input: the training prior (see the module)
    score[usable] = predict_proba(fit.module, ecg_t[usable], eeg_t[usable], mask_t[usable])
    metrics = binary_metrics(y_t, (score >= 0.5).astype(int), score)
    training = {**config.to_dict(), "recipe": recipe.name, "seed": fold_seed, "fold": k, "protocol": protocol, "n_fit": int(len(fit_idx)),
                "n_val": int(len(val_idx)), "epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch,
                "batch_size_used": fit.batch_size, "lr_used": fit.lr, "train_balance": class_balance(y[train_idx])}
    save_checkpoint(fdir / f"{name}.pt", fit.module.model, model_name=name, ecg_shape=dm.ecg_shape, eeg_shape=dm.eeg_shape, target=target, normalizer=dm.normalizer,
                    manifest=features.manifest, training=training)
    # test predictions, representation and masks for ROC / t-SNE / attention figures; before the
    # result file, which marks the (fold, model) finished
    save_predictions(predictions_path(fdir, name), test_idx=test_idx, y_true=y_t, score=score,
                     details=model_details(fit.module.model, ecg_t, eeg_t, mask_t), modality_mask=mask_t)
    result = {"fold": k, "model": name, "metrics": metrics, "n_train": int(len(train_idx)),
              "n_fit": int(len(fit_idx)), "n_val": int(len(val_idx)), "n_test": int(len(test_idx)),
              "epochs": fit.epochs_run, "best_epoch": fit.best_epoch, "batch_size": fit.batch_size, "lr": fit.lr,
              "best_val_loss": None if not np.isfinite(fit.best_val_loss) else round(fit.best_val_loss, 6),
              "seconds": round(fit.seconds, 3), "checkpoint": f"folds/fold-{k:02d}/{name}.pt",
              "by_modalities": {kind: m for kind, m in metrics_by_modalities(y_t, score, modality_kind(mask_t)).items()
                                # no metrics on the kind of window a single-modality model has no input for
                                if kind == "all" or set(kind.split("+")) & set(modalities)},
              "n_without_input": int((~usable).sum())}
    if fit.module.model.input_skip and fit.module.model.ecg_branch is not None:
        result["rr_skip"] = fit.module.model.rr_skip  # what the recipe built this fold's model with
    if choices:
        result["recipe_log"] = choices
        _say(log, f"  fold {k + 1} {name}: " + "; ".join(choices))
    atomic_write_json(fdir / f"{name}.result.json", result)
    return result


def _entry(per_fold: list[dict]) -> dict:
    """A model's summary: metrics over folds, pooled metrics per kind of window, the folds."""
    return {"metrics": summarize(per_fold), "by_modalities": pool_by_modalities([f.get("by_modalities") for f in per_fold]),
            "per_fold": per_fold}


def _kind_counts(mask) -> dict:
    """{kind: windows} of a store's modality mask ("ecg+eeg", "ecg", "eeg")."""
    names, counts = np.unique(modality_kind(mask).astype(str), return_counts=True)
    return {str(k): int(v) for k, v in zip(names, counts)}


def _training_record(config: TrainConfig, recipe: Recipe) -> dict:
    """The training settings for results.json: the configuration and the recipe."""
    return {**config.to_dict(), "recipe": recipe.name, "normalize": recipe.normalize, "mixup": recipe.mixup,
            "balance_modalities": recipe.balance_modalities, "rr_skip": recipe.rr_skip}


def collect_cv(out, features, features_path, target, models, protocol, n_folds, seed, recipe: Recipe, config,
               folds_requested=None) -> dict:
    """results.json of a CV run from its per-fold files."""
    out = Path(out)
    per_model: dict[str, list] = {m: [] for m in (*models, *BASELINES)}
    balances = []
    for k in range(n_folds):
        fdir = out / "folds" / f"fold-{k:02d}"
        base = _fold_file(fdir / "baselines.json", "baselines")
        if base is None:
            raise MaanError(f"{fdir}: baseline results missing; rerun the same command to finish the run")
        balances.append({"fold": k, "train": base["train_balance"], "test": base["test_balance"],
                         "left_out_subjects": base.get("left_out_subjects", [])})
        for b in BASELINES:
            per_model[b].append({"fold": k, **base[b], "n_train": base["n_train"], "n_test": base["n_test"],
                                 "by_modalities": base.get("by_modalities", {}).get(b, {})})
        for m in models:
            r = _fold_file(fdir / f"{m}.result.json", "result")
            if r is None:
                raise MaanError(f"{fdir}: results of {m} missing; rerun the same command to finish the run")
            per_model[m].append({"fold": k, **r["metrics"], **{key: r[key] for key in (
                "n_train", "n_fit", "n_val", "n_test", "epochs", "best_epoch", "seconds", "checkpoint")},
                "batch_size": r.get("batch_size"), "lr": r.get("lr"), **{key: r[key] for key in (
                    "rr_skip", "recipe_log", "by_modalities", "n_without_input") if key in r}})
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
        "recipe": recipe.name,
        "normalize": recipe.normalize,
        "versions": versions(),
        "features": features_path,
        "n_windows": int(len(features)),
        "n_subjects": int(len(np.unique(features.subject))),
        "class_balance": {**class_balance(y), "per_fold": balances},
        "training": _training_record(config, recipe),
        "modality_windows": _kind_counts(features.modality_mask),
        "models": {m: _entry(per_model[m]) for m in per_model},
        "training_seconds": round(sum(f.get("seconds", 0.0) for m in models for f in per_model[m]), 2),
    }


# -- reproduce --------------------------------------------------------------------------------
def run_reproduce(data, dataset: str, out, *, features=None, protocols=REPRODUCE_PROTOCOLS,
                  targets=REPRODUCE_TARGETS, models=REPRODUCE_MODELS, folds: int = 10, seed: int = 0,
                  recipe: str | Recipe = "paper", config: TrainConfig | dict | None = None, jobs: int = 1,
                  progress: bool = True, log=print, overwrite: bool = False, print_table: bool = True,
                  fit: int | None = None) -> dict:
    """The paper's Table 1: base and proposed x ``targets`` x ``protocols`` on the same folds.

    Preprocesses ``data`` into ``features`` (default ``out/features``; resumable, skipped when
    ``data`` is None and the store exists), runs :func:`run_cv` per (protocol, target) into
    ``out/PROTOCOL/TARGET/`` and writes ``out/results.json`` (``{"runs": [...]}``) and
    ``out/table1.md``. An interrupted call resumes at the next unfinished fold.

    ``fit`` (1-based, of :func:`reproduce_fits`) runs that one fit only and returns
    ``{"fit": ..., "protocol", "target", "fold", "model", "result"}`` (a job array's task); the
    call without it runs what is missing and writes the table. ``jobs``: processes for the
    preprocessing and, when training on the CPU, for the fits (see :func:`run_cv`).
    """
    from maan.evaluation.report import format_table1, write_table1
    from maan.preprocessing.store import load_features

    config = as_config(config)
    out = Path(out)
    store = Path(features) if features is not None else out / "features"
    protocols = tuple(dict.fromkeys(protocols))
    for p in protocols:
        recipe = check_run(models, p, recipe, seed)
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
    if fit is not None:
        units = reproduce_fits(feats, protocols, targets, models, folds, seed)
        from maan import config as C

        C.check_number("fit (--fit)", fit, 1, len(units), integer=True)
        protocol, target, k, model = units[fit - 1]
        done = run_cv(feats, target, out / protocol / target, models=(model,), protocol=protocol, folds=folds,
                      seed=seed, recipe=recipe, config=config, progress=progress, log=log, overwrite=overwrite,
                      fold=k)
        return {"fit": fit, "fits": len(units), "protocol": protocol, "target": target, "fold": k, "model": model,
                "result": done.get("models", {}).get(model)}
    runs = []
    for protocol in protocols:
        for target in targets:
            result = run_cv(feats, target, out / protocol / target, models=models, protocol=protocol, folds=folds,
                            seed=seed, recipe=recipe, config=config, progress=progress, log=log,
                            overwrite=overwrite, jobs=jobs if cpu_fits(config) else 1)
            result["features"] = str(store)
            result["run_dir"] = str(out / protocol / target)
            runs.append(result)
    if not _rank_zero():  # DDP: only rank 0 reports
        return {}
    summary = {"dataset": feats.dataset, "synthetic": feats.synthetic, "data_label": data_label(feats.manifest),
               "features": str(store), "protocols": list(protocols), "targets": list(targets),
               "models": list(models), "folds": int(folds), "seed": int(seed), "recipe": recipe.name,
               "normalize": recipe.normalize, "training": _training_record(config, recipe),
               "versions": versions(),
               "seconds_this_call": round(time.perf_counter() - start, 2), "runs": runs}
    atomic_write_json(out / "results.json", summary)
    write_table1(summary, out / "table1.md")
    if print_table and log is not None:
        log(format_table1(summary))
        log(f"\nTable: {out / 'table1.md'}\nAll numbers: {out / 'results.json'}\nPer-fold checkpoints and logs: "
            f"{out}/<protocol>/<target>/")
    return summary


def reproduce_fits(features, protocols=REPRODUCE_PROTOCOLS, targets=REPRODUCE_TARGETS, models=REPRODUCE_MODELS,
                   folds: int = 10, seed: int = 0) -> list[tuple[str, str, int, str]]:
    """Every fit of a reproduce run, in the order ``--fit K`` numbers them (from 1):
    ``(protocol, target, fold (1-based), model)``."""
    units = []
    for protocol in protocols:
        for target in targets:
            y = check_target(features, target)
            n = len(make_splits(protocol, y, features.subject, features.trial, folds, seed))
            units += [(protocol, target, k, m) for k in range(1, n + 1) for m in models]
    return units


# -- a checkpoint on a store ---------------------------------------------------------------
def evaluate_model(checkpoint, features, target: str | None = None) -> dict:
    """Metrics of a checkpoint on every window of a store (plus the training-prior majority line)."""
    ckpt = load_checkpoint(checkpoint)
    features, features_path = load_store(features)
    ckpt.check_store(features.manifest)
    target = target or ckpt.target
    y = check_target(features, target)
    score = ckpt.predict_proba(features.ecg, features.eeg, features.subject, features.modality_mask)
    usable = np.isfinite(score)  # a single-modality model has no input on windows without its modality
    if not usable.any():
        raise MaanError(f"{ckpt.path}: the {ckpt.model_name} model has no input in this store (no window holds "
                        f"{' or '.join(m.upper() for m in ckpt.modalities)})")
    y, kinds = y[usable], modality_kind(features.modality_mask[usable])
    score = score[usable]
    metrics = binary_metrics(y, (score >= 0.5).astype(int), score)
    prior = ckpt.meta.get("training", {}).get("train_balance", {}).get("high_fraction")
    majority = None
    if prior is not None:
        pred = np.full(len(y), int(prior >= 0.5))
        majority = binary_metrics(y, pred, np.full(len(y), prior))
    return {"checkpoint": str(ckpt.path), "model": ckpt.model_name, "trained_on": ckpt.meta["store"],
            "dataset": features.dataset, "synthetic": features.synthetic, "data_label": data_label(features.manifest),
            "features": features_path, "target": target, "class_balance": class_balance(y),
            "normalize": ckpt.normalizer.mode, "metrics": metrics, "majority": majority,
            "by_modalities": metrics_by_modalities(y, score, kinds), "n_without_input": int((~usable).sum()),
            "versions": versions()}
