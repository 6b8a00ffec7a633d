"""The ``train``, ``evaluate``, ``cv`` and ``reproduce`` subcommands of ``maan``.

``maan.cli`` registers them with ``add_commands(sub, _Parser)``; each handler takes the parsed
arguments and returns an exit status; user errors are raised as MaanError (one stderr line,
exit 2, by the CLI).
"""
from __future__ import annotations

import argparse
import os

from maan.training.splits import DEFAULT_PROTOCOL, PROTOCOLS

TRAINABLE = ("maan", "base", "ecg-only", "eeg-only")
#: "auto" + maan.models.maan.RR_SKIPS, spelled out so that --help does not import torch (a test keeps them equal)
RR_SKIP_CHOICES = ("auto", "padded", "beats", "beat-mean")
_DEFAULTS = dict(epochs=30, patience=5, min_epochs=5, batch_size="auto", lr=1e-3, weight_decay=1e-4,
                 val_fraction=0.1, input_noise=0.0, mixup="auto")


def _auto_or_number(kind, minimum, what: str):
    """An argparse type: the word ``auto``, or a ``kind`` number >= ``minimum``."""
    def parse(value: str):
        if value == "auto":
            return value
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected 'auto' or {what}, got {value!r}") from None
        if not number >= minimum:
            raise argparse.ArgumentTypeError(f"expected 'auto' or {what}, got {value!r}")
        return number
    return parse


_batch_size = _auto_or_number(int, 2, "an integer >= 2")
_mixup = _auto_or_number(float, 0.0, "a number >= 0")


def _devices(value: str):
    return int(value) if value.lstrip("-").isdigit() else value


def _add_training_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=_DEFAULTS["epochs"],
                   help="maximum epochs; early stopping usually ends sooner (default: %(default)s)")
    g.add_argument("--patience", type=int, default=_DEFAULTS["patience"],
                   help="early-stopping patience in epochs on the inner validation loss (default: %(default)s)")
    g.add_argument("--min-epochs", type=int, default=_DEFAULTS["min_epochs"],
                   help="train at least this many epochs; earlier epochs are never restored as the best "
                        "(default: %(default)s)")
    g.add_argument("--batch-size", type=_batch_size, default=_DEFAULTS["batch_size"],
                   help="an integer, or auto: up to 64 but small enough for ~16 steps per epoch on small "
                        "stores, at least 8 (default: %(default)s)")
    g.add_argument("--input-noise", type=float, default=_DEFAULTS["input_noise"],
                   help="std of Gaussian noise added to the standardised training inputs, an augmentation "
                        "(default: %(default)s)")
    g.add_argument("--mixup", type=_mixup, default=_DEFAULTS["mixup"], metavar="ALPHA",
                   help="mixup augmentation: train on convex combinations of window pairs and of their labels, "
                        "weights drawn from Beta(ALPHA, ALPHA); 0 turns it off; auto: 1.0 with --normalize "
                        "subject, off with --normalize train (default: %(default)s)")
    g.add_argument("--lr", type=float, default=_DEFAULTS["lr"], help="AdamW learning rate (default: %(default)s)")
    g.add_argument("--weight-decay", type=float, default=_DEFAULTS["weight_decay"],
                   help="AdamW weight decay (default: %(default)s)")
    g.add_argument("--val-fraction", type=float, default=_DEFAULTS["val_fraction"],
                   help="share of the training folds held out for early stopping, grouped like the protocol "
                        "(single windows when fewer than 3 subjects/trials are left to hold out) "
                        "(default: %(default)s)")
    g.add_argument("--balance", choices=("weights", "sampler", "none"), default="weights",
                   help="class imbalance: weighted loss, class-balanced sampler, or nothing (default: %(default)s)")
    g.add_argument("--normalize", choices=("train", "subject"), default="train",
                   help="feature statistics from the training folds only, or per subject from its own windows "
                        "(transductive, labels unused; a training subject whose windows are all one class is "
                        "then left out of training) (default: %(default)s)")
    g.add_argument("--width", type=int, default=None,
                   help="first U-Net level width of both branches (default: the model's, see docs)")
    g.add_argument("--depth", type=int, default=None, help="U-Net depth (default: the model's)")
    g.add_argument("--no-input-skip", dest="input_skip", action="store_false",
                   help="the classifier sees the fused U-Net features only, as in the paper (default: it also "
                        "sees the pooled inputs, which helps on small stores; see docs/performance.md)")
    g.add_argument("--no-spatial-skip", dest="spatial_skip", action="store_false",
                   help="the input skip carries the pooled EEG only, not also its per-window spatial pattern "
                        "(default: it does, which helps valence; see docs/performance.md)")
    g.add_argument("--rr-skip", choices=RR_SKIP_CHOICES, default=None,
                   help="what the input skip carries of the ECG. auto (the default): with --normalize subject, "
                        "beats when the training windows show heart rate going with the target alike in every "
                        "subject with a large effect (mean within-subject correlation, as Fisher z, at least "
                        "atanh 0.5), else padded; with --normalize train, padded. padded: the mean over the "
                        "zero-padded RR series; beats: the mean of the standardised RR intervals over the "
                        "window's beats plus the beat fraction; beat-mean: that mean alone (each fold's result "
                        "names the choice; docs/performance.md, \"Heart rate where it carries the target\")")
    g.add_argument("--modality-balance", choices=("auto", "on", "off", "split"), default="auto",
                   help="scale the small ECG block of the classifier input up so that it moves the logits as "
                        "fast as the large EEG block; auto: on with --normalize subject, off with train; split: "
                        "the first rule (both blocks to half the input), to resume run folders written with it "
                        "(default: %(default)s; see docs/performance.md)")
    g.add_argument("--seed", type=int, default=0, help="random seed of folds, weights and batches (default: %(default)s)")
    h = p.add_argument_group("hardware (passed to lightning.Trainer)")
    h.add_argument("--accelerator", default="auto", help="cpu, gpu, mps, auto... (default: %(default)s)")
    h.add_argument("--devices", type=_devices, default=1,
                   help="number of devices or a list like 0,1 (default: %(default)s)")
    h.add_argument("--strategy", default="auto", help="e.g. ddp for several GPUs or nodes (default: %(default)s)")
    h.add_argument("--num-nodes", type=int, default=1, help="nodes for multi-node DDP (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _config(args):
    from maan.training.module import TrainConfig

    model_kwargs = {k: v for k, v in (("width", args.width), ("depth", args.depth)) if v is not None}
    if not args.input_skip:
        model_kwargs["input_skip"] = False
    if not args.spatial_skip:
        model_kwargs["spatial_skip"] = False
    if args.rr_skip is not None:
        model_kwargs["rr_skip"] = args.rr_skip
    if args.modality_balance != "auto":
        from maan.models.maan import balance_rule

        model_kwargs["balance_modalities"] = balance_rule(args.modality_balance)  # "on" is "raise"
    return TrainConfig(epochs=args.epochs, patience=args.patience, min_epochs=args.min_epochs,
                       batch_size=args.batch_size, input_noise=args.input_noise, mixup=args.mixup, lr=args.lr,
                       weight_decay=args.weight_decay, val_fraction=args.val_fraction, balance=args.balance,
                       accelerator=args.accelerator, devices=args.devices, strategy=args.strategy,
                       num_nodes=args.num_nodes, model_kwargs=model_kwargs)


def cmd_train(args) -> int:
    from maan.evaluation.cv import train_model

    info = train_model(args.features, args.target, args.out, model=args.model, seed=args.seed,
                       normalize=args.normalize, config=_config(args), val_split=args.val_split,
                       progress=not args.quiet)
    if info:
        print(f"Trained {args.model} on {args.target}: {info['epochs_run']} epochs (best {info['best_epoch'] + 1}), "
              f"best validation loss {info['best_val_loss']:.4f}, {info['seconds']:.1f} s")
        print(f"Checkpoint: {info['checkpoint']} (+ {os.path.basename(info['config'])}); "
              f"Lightning CSV log under {os.path.join(args.out, 'logs')}")
    return 0


def cmd_evaluate(args) -> int:
    from maan.evaluation.report import format_metrics
    from maan.preprocessing.io import atomic_write_json
    from maan.evaluation.cv import evaluate_model

    result = evaluate_model(args.checkpoint, args.features, args.target)
    b = result["class_balance"]
    print(f"{result['model']} on {result['target']} | {result['data_label']} | {b['n']} windows, "
          f"{b['high_fraction']:.0%} high | normalize {result['normalize']}")
    print(f"  model:    {format_metrics(result['metrics'])}")
    if result["majority"]:
        print(f"  majority: {format_metrics(result['majority'])}  (training class prior)")
    if args.out:
        atomic_write_json(args.out, result)
        print(f"Results: {args.out}")
    return 0


def cmd_cv(args) -> int:
    from maan.evaluation.report import format_cv_summary
    from maan.evaluation.cv import run_cv

    result = run_cv(args.features, args.target, args.out, models=args.model, protocol=args.protocol,
                    folds=args.folds, seed=args.seed, normalize=args.normalize, config=_config(args),
                    progress=not args.quiet, overwrite=args.overwrite)
    if result:
        print(format_cv_summary(result))
        print(f"Results: {os.path.join(args.out, 'results.json')}; checkpoints and logs: "
              f"{os.path.join(args.out, 'folds')}, {os.path.join(args.out, 'logs')}")
    return 0


def cmd_reproduce(args) -> int:
    from maan.errors import MaanError
    from maan.evaluation.cv import run_reproduce

    if args.data is None and args.features is None:
        raise MaanError("pass --data (the dataset to preprocess) or --features (an existing store)")
    run_reproduce(args.data, args.dataset, args.out, features=args.features, protocols=args.protocols,
                  targets=args.targets, models=args.models, folds=args.folds, seed=args.seed,
                  normalize=args.normalize, config=_config(args), jobs=args.jobs, progress=not args.quiet,
                  overwrite=args.overwrite)
    from maan.evaluation.cv import _rank_zero

    if _rank_zero():  # DDP: the other ranks only trained
        from maan.cli.report import figures_and_report

        figures_and_report(args.out)
    return 0


def add_commands(sub, parser_class=argparse.ArgumentParser) -> None:
    """Register train, evaluate, cv and reproduce on an argparse subparsers object."""
    jobs_default = max(1, min(os.cpu_count() or 1, 8))
    protocol_help = ("segment-kfold: stratified k-fold over windows (the paper's); trial-kfold: no trial on both "
                     "sides; subject-kfold: no subject on both sides (min(folds, subjects) folds); loso: one subject "
                     "per fold")

    p = sub.add_parser("train", help="train one model on a feature store and save a checkpoint",
                       description="Train on every window of a store (early stopping on an inner validation split) "
                       "and write OUT/model.pt (state_dict) + OUT/model.json (configuration, normalisation).")
    p.add_argument("--features", required=True, metavar="FEATURES", help="feature store (from maan preprocess)")
    p.add_argument("--target", default="arousal", help="label to learn (default: %(default)s)")
    p.add_argument("--model", choices=TRAINABLE, default="maan", help="default: %(default)s")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for the checkpoint and logs")
    p.add_argument("--val-split", choices=PROTOCOLS[:3], default=DEFAULT_PROTOCOL,
                   help="grouping of the validation windows (default: %(default)s)")
    _add_training_options(p)
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
                       "command to continue an interrupted run. " + protocol_help + ".")
    p.add_argument("--features", required=True, metavar="FEATURES", help="feature store")
    p.add_argument("--target", default="arousal", help="label to learn, e.g. arousal, valence (default: %(default)s)")
    p.add_argument("--model", nargs="+", choices=TRAINABLE, default=["maan"],
                   help="model(s) to train on the same folds (default: maan)")
    p.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL, help="default: %(default)s")
    p.add_argument("--folds", type=int, default=10, help="number of folds (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder")
    p.add_argument("--overwrite", action="store_true", help="discard a run in RUN made with another configuration")
    _add_training_options(p)
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser("reproduce", help="the paper's Table 1: base and proposed x arousal and valence x protocols",
                       description="Preprocess (if needed), then cross-validate base and proposed models on arousal "
                       "and valence under each protocol, with baselines; writes RUN/table1.md (paper layout) and "
                       "RUN/results.json. Resumable. " + protocol_help + ".")
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
    p.add_argument("--jobs", type=int, default=jobs_default, help="parallel subjects when preprocessing (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="discard runs in RUN made with another configuration")
    _add_training_options(p)
    p.set_defaults(func=cmd_reproduce)

