"""The ``train``, ``evaluate``, ``cv`` and ``reproduce`` subcommands of ``maan``.

``maan.cli`` registers them with ``add_commands(sub, _Parser)``; each handler takes the parsed
arguments and returns an exit status; user errors are raised as MaanError (one stderr line,
exit 2, by the CLI). The options here only parse types: values are validated once, by
``TrainConfig.validate`` inside ``run_cv`` / ``train_model`` / ``run_reproduce``.

The training options a run needs are on the command line (``--recipe``, ``--epochs``, ``--seed``,
the hardware); the rarer hyperparameters live in a ``--config FILE.toml`` whose keys are
``TrainConfig``'s fields (``[model_kwargs]`` for width, depth, input_skip). An option given on
the command line wins over the file.
"""
from __future__ import annotations

import argparse
import os

from maan.training.splits import DEFAULT_PROTOCOL, PROTOCOLS

TRAINABLE = ("maan", "base", "ecg-only", "eeg-only")
#: TrainConfig's defaults of the options below, spelled out so that --help does not import torch
#: (a test keeps them equal)
HELP_DEFAULTS = {"epochs": 30, "accelerator": "auto", "devices": 1}
_PROTOCOL_HELP = ("segment-kfold: stratified k-fold over windows (the paper's); trial-kfold: no trial on both "
                  "sides; subject-kfold: no subject on both sides (min(folds, subjects) folds); loso: one subject "
                  "per fold")


def _devices(value: str):
    return int(value) if value.lstrip("-").isdigit() else value


def add_training_options(p: argparse.ArgumentParser) -> None:
    """The training options shared by train, cv and reproduce."""
    from maan.training.recipes import DEFAULT_RECIPE, RECIPES

    g = p.add_argument_group("training")
    g.add_argument("--recipe", choices=tuple(RECIPES), default=DEFAULT_RECIPE,
                   help="paper: the paper's training (Table 1); cross-subject: for subjects unseen in "
                        "training, per-subject standardisation (transductive, labels unused) and what it needs; "
                        "see docs/model.md (default: %(default)s)")
    g.add_argument("--config", default=None, metavar="FILE.toml",
                   help="rare hyperparameters (lr, patience, [model_kwargs] width...), keys as "
                        "TrainConfig's fields; options given here win")
    g.add_argument("--epochs", type=int, default=None, metavar="N",
                   help=f"maximum epochs; early stopping usually ends sooner (default: {HELP_DEFAULTS['epochs']})")
    g.add_argument("--seed", type=int, default=0,
                   help="random seed of folds, weights and batches (default: %(default)s)")
    h = p.add_argument_group("hardware (passed to lightning.Trainer; strategy, num_nodes in --config)")
    h.add_argument("--accelerator", default=None, metavar="NAME",
                   help=f"cpu, gpu, mps, auto... (default: {HELP_DEFAULTS['accelerator']})")
    h.add_argument("--devices", type=_devices, default=None, metavar="N",
                   help=f"number of devices or a list like 0,1 (default: {HELP_DEFAULTS['devices']})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def train_config(args):
    """The TrainConfig of a command: --config's file (if any), overridden by the options given."""
    from maan.training.module import TrainConfig

    return TrainConfig.from_file(args.config, epochs=args.epochs, accelerator=args.accelerator,
                                 devices=args.devices)


def _rank_zero() -> bool:
    """False on the other ranks of a distributed (DDP) run, which only train."""
    try:
        from lightning.fabric.utilities.rank_zero import rank_zero_only
    except ImportError:  # pragma: no cover
        return True
    return getattr(rank_zero_only, "rank", 0) == 0


def cmd_train(args) -> int:
    from maan.training.train import train_model

    info = train_model(args.features, args.target, args.out, model=args.model, seed=args.seed,
                       recipe=args.recipe, config=train_config(args), val_split=args.val_split,
                       progress=not args.quiet)
    if info:
        print(f"Trained {args.model} on {args.target}: {info['epochs_run']} epochs (best {info['best_epoch'] + 1}), "
              f"best validation loss {info['best_val_loss']:.4f}, {info['seconds']:.1f} s")
        print(f"Checkpoint: {info['checkpoint']} (+ {os.path.basename(info['config'])}); "
              f"Lightning CSV log under {os.path.join(args.out, 'logs')}")
    return 0


def cmd_evaluate(args) -> int:
    from maan.evaluation.cv import evaluate_model
    from maan.evaluation.report import format_metrics
    from maan.preprocessing.io import atomic_write_json

    result = evaluate_model(args.checkpoint, args.features, args.target)
    b = result["class_balance"]
    setting = f"recipe {result['recipe']}" if "recipe" in result else f"normalize {result.get('normalize')}"
    print(f"{result['model']} on {result['target']} | {result['data_label']} | {b['n']} windows, "
          f"{b['high_fraction']:.0%} high | {setting}")
    print(f"  model:    {format_metrics(result['metrics'])}")
    if result["majority"]:
        print(f"  majority: {format_metrics(result['majority'])}  (training class prior)")
    kinds = [k for k in ("ecg+eeg", "ecg", "eeg") if k in result["by_modalities"]]
    if kinds != ["ecg+eeg"]:  # windows that miss a modality: each kind apart
        for kind in kinds:
            m = result["by_modalities"][kind]
            print(f"  {kind} windows ({m['n']}): {format_metrics(m)}")
    if result["n_without_input"]:
        print(f"  not predicted: {result['n_without_input']} windows without the model's modality")
    if args.out:
        atomic_write_json(args.out, result)
        print(f"Results: {args.out}")
    return 0


def cmd_cv(args) -> int:
    from maan.evaluation.cv import run_cv
    from maan.evaluation.report import format_cv_summary

    result = run_cv(args.features, args.target, args.out, models=tuple(args.model), protocol=args.protocol,
                    folds=args.folds, seed=args.seed, recipe=args.recipe, config=train_config(args),
                    progress=not args.quiet, overwrite=args.overwrite, fold=args.fold, jobs=args.jobs)
    if result and args.fold is not None:
        print(f"Fold {result['fold']}/{result['folds']} of {args.out} done ({', '.join(result['models'])}); "
              "the same command without --fold runs any missing fold and collects results.json")
    elif result:
        print(format_cv_summary(result))
        print(f"Results: {os.path.join(args.out, 'results.json')}; checkpoints and logs: "
              f"{os.path.join(args.out, 'folds')}, {os.path.join(args.out, 'logs')}")
    return 0


def cmd_reproduce(args) -> int:
    from maan.errors import MaanError
    from maan.evaluation.cv import run_reproduce

    if args.data is None and args.features is None:
        raise MaanError("pass --data (the dataset to preprocess) or --features (an existing store)")
    done = run_reproduce(args.data, args.dataset, args.out, features=args.features, protocols=tuple(args.protocols),
                         targets=tuple(args.targets), models=tuple(args.models), folds=args.folds, seed=args.seed,
                         recipe=args.recipe, config=train_config(args), jobs=args.jobs, progress=not args.quiet,
                         overwrite=args.overwrite, fit=args.fit)
    if done and args.fit is not None:
        print(f"Fit {done['fit']}/{done['fits']} done: {done['model']}, fold {done['fold']} of {done['protocol']} "
              f"{done['target']}; the same command without --fit runs any missing fit and writes the table")
    elif _rank_zero():
        from maan.cli.report import figures_and_report

        figures_and_report(args.out)
    return 0


def add_commands(sub, parser_class=argparse.ArgumentParser) -> None:
    """Register train, evaluate, cv and reproduce on an argparse subparsers object."""
    from maan.cli.data import default_jobs

    p = sub.add_parser("train", help="train one model on a feature store and save a checkpoint",
                       description="Train on every window of a store (early stopping on an inner validation split) "
                       "and write OUT/model.pt (state_dict) + OUT/model.json (configuration, normalisation).")
    p.add_argument("--features", required=True, metavar="FEATURES", help="feature store (from maan preprocess)")
    p.add_argument("--target", default="arousal", help="label to learn (default: %(default)s)")
    p.add_argument("--model", choices=TRAINABLE, default="maan", help="default: %(default)s")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for the checkpoint and logs")
    p.add_argument("--val-split", choices=PROTOCOLS[:3], default=DEFAULT_PROTOCOL,
                   help="grouping of the validation windows (default: %(default)s)")
    add_training_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a checkpoint on a feature store",
                       description="Apply a checkpoint (from train or cv) to every window of a store and print "
                       "ACC, SEN, SPE, PPR, F1, balanced accuracy, ROC-AUC and the confusion matrix.")
    p.add_argument("--checkpoint", required=True, metavar="PT", help="NAME.pt (with NAME.json) or its folder")
    p.add_argument("--features", required=True, metavar="FEATURES", help="feature store")
    p.add_argument("--target", default=None, help="label to score against (default: the checkpoint's)")
    p.add_argument("--out", default=None, metavar="JSON", help="also write the results to this JSON file")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("cv", help="cross-validate models and baselines on one target",
                       description="Cross-validate the model(s) plus the majority, logistic and hr-band baselines on "
                       "the same folds; writes RUN/results.json (mean ± std and per fold). Resumable: rerun the same "
                       "command to continue an interrupted run. " + _PROTOCOL_HELP + ".")
    p.add_argument("--features", required=True, metavar="FEATURES", help="feature store")
    p.add_argument("--target", default="arousal", help="label to learn, e.g. arousal, valence (default: %(default)s)")
    p.add_argument("--model", nargs="+", choices=TRAINABLE, default=["maan"],
                   help="model(s) to train on the same folds (default: maan)")
    p.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL, help="default: %(default)s")
    p.add_argument("--folds", type=int, default=10, help="number of folds (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder")
    p.add_argument("--overwrite", action="store_true", help="discard a run in RUN made with another configuration")
    p.add_argument("--fold", type=int, default=None, metavar="K",
                   help="run fold K only (1-based), e.g. one task of a job array; without it: run what is "
                        "missing and collect (default: every fold)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="fits in N processes of one thread each, CPU only; results unchanged (default: %(default)s)")
    add_training_options(p)
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser("reproduce", help="the paper's Table 1: base and proposed x arousal and valence x protocols",
                       description="Preprocess (if needed), then cross-validate base and proposed models on arousal "
                       "and valence under each protocol, with baselines; writes RUN/table1.md (paper layout), "
                       "RUN/results.json, figures and RUN/report.html. Resumable. " + _PROTOCOL_HELP + ".")
    p.add_argument("--data", default=None, metavar="DIR", help="dataset to preprocess (skip with --features)")
    p.add_argument("--dataset", required=True, choices=("amigos", "dreamer"), help="dataset format")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder")
    p.add_argument("--features", default=None, metavar="FEATURES",
                   help="feature store to build or reuse (default: RUN/features)")
    p.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=["segment-kfold", "trial-kfold", "subject-kfold"],
                   help="default: segment-kfold trial-kfold subject-kfold")
    p.add_argument("--targets", nargs="+", default=["arousal", "valence"], help="default: arousal valence")
    p.add_argument("--models", nargs="+", choices=TRAINABLE, default=["base", "maan"], help="default: base maan")
    p.add_argument("--folds", type=int, default=10, help="folds per protocol (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=default_jobs(),
                   help="processes for the subjects when preprocessing and, on the CPU, for the fits (one "
                        "thread each; results unchanged) (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="discard runs in RUN made with another configuration")
    p.add_argument("--fit", type=int, default=None, metavar="K",
                   help="run fit K only (1-based; protocol, target, fold, model in that order), e.g. one task of "
                        "a job array; without it: run what is missing and write the table (default: every fit)")
    add_training_options(p)
    p.set_defaults(func=cmd_reproduce)
