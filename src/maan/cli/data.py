"""The ``synth``, ``preprocess`` and ``demo`` subcommands of ``maan``: data in, feature store out.

``maan.cli`` registers them with ``add_commands(sub, _Parser)``; each handler takes the parsed
arguments and returns an exit status; user errors are raised as MaanError (one stderr line,
exit 2, by the CLI).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def default_jobs() -> int:
    """Parallel workers by default: the CPU count, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


def _add_preprocess_options(p: argparse.ArgumentParser) -> None:
    from maan import config as C
    from maan.config import DE_METHODS, DEFAULT_DE_METHOD, LAYOUTS

    g = p.add_argument_group("windows and features")
    g.add_argument("--window", type=float, default=C.WINDOW_SECONDS, metavar="S",
                   help="window length in seconds (default: %(default)s, as in the paper)")
    g.add_argument("--step", type=float, default=C.STEP_SECONDS, metavar="S",
                   help="step between window starts in seconds (default: %(default)s)")
    g.add_argument("--subwindow", type=float, default=C.SUBWINDOW_SECONDS, metavar="S",
                   help="DE sub-window in seconds: each window is a channels x sub-windows map (default: %(default)s)")
    g.add_argument("--rpeak-method", default=None, metavar="NAME",
                   help="R-peak detector, a NeuroKit2 method name (default: maan's, the most robust on noisy ECG)")
    g.add_argument("--de-method", choices=DE_METHODS, default=DEFAULT_DE_METHOD,
                   help="band-pass estimator for differential entropy (default: %(default)s)")
    g.add_argument("--layout", choices=LAYOUTS, default="channels",
                   help="EEG map layout: bands x channels x sub-windows, or a 9x9 topographic grid (default: %(default)s)")
    g.add_argument("--threshold", type=float, default=None,
                   help="label = rating > threshold (default: 5 on AMIGOS' and MAHNOB-HCI's 1-9, 3 on DREAMER's 1-5; "
                        "recordings: none, the label columns must be 0/1; eegmat: task is 0/1)")

    g = p.add_argument_group("recordings (--dataset recordings: any file MNE reads, one trial per file)")
    g.add_argument("--labels", default=None, metavar="CSV",
                   help="labels table with columns file (relative to --data), subject, then one column per "
                        "target, 0/1 or ratings with --threshold (default: DATA/labels.csv)")
    g.add_argument("--ecg-channel", default=None, metavar="NAME",
                   help="ECG channel (default: the single channel whose MNE type or name says ECG; "
                        "--dataset mahnob: EXG1, EXG2 or EXG3, default the lead with the best beat quality "
                        "per session)")
    g.add_argument("--exclude", nargs="+", action="extend", default=None, metavar="NAME",
                   help="EEG-typed channels that are not EEG, e.g. a reference (default: none)")
    g.add_argument("--fs", type=float, default=None, metavar="HZ",
                   help="rate both modalities are resampled to with MNE (recordings, eegmat; default: 128)")


def _preprocess_config(dataset: str, args):
    from maan.preprocessing.pipeline import PreprocessConfig

    kwargs = dict(dataset=dataset, window_seconds=args.window, step_seconds=args.step,
                  subwindow_seconds=args.subwindow, de_method=args.de_method, layout=args.layout,
                  threshold=args.threshold, require_all_modalities=args.require_all_modalities)
    # recordings-only options, passed only when given (PreprocessConfig refuses them elsewhere)
    for name in ("labels", "ecg_channel", "exclude", "fs"):
        if getattr(args, name, None) is not None:
            kwargs[name] = tuple(args.exclude) if name == "exclude" else getattr(args, name)
    if args.rpeak_method:
        kwargs["rpeak_method"] = args.rpeak_method
    return PreprocessConfig(**kwargs)


def _summary(manifest: dict, out) -> str:
    kind = "SYNTHETIC data" if manifest.get("synthetic") else "data"
    dropped = ", ".join(f"{k}: {v}" for k, v in manifest.get("dropped", {}).items()) or "none"
    lines = [
        f"Features of {manifest.get('n_subjects', 0)} subjects ({manifest.get('dataset')}, {kind}) in {out}",
        f"  windows kept: {manifest.get('windows', 0)}; dropped: {dropped}",
        *([f"  windows kept with one modality: {manifest['partial_windows']} ("
           + ", ".join(f"{k}: {v}" for k, v in manifest.get("partial", {}).items()) + ")"]
          if manifest.get("partial_windows") else []),
        f"  ECG input shape {tuple(manifest.get('ecg_shape', ()))}, EEG input shape {tuple(manifest.get('eeg_shape', ()))}",
    ]
    if manifest.get("unrated_sessions"):
        lines.append(f"  sessions without ratings (neutral clips), skipped: {manifest['unrated_sessions']}")
    if manifest.get("invalid_inputs"):
        lines.append(f"  skipped invalid inputs: {len(manifest['invalid_inputs'])} (listed in manifest.json)")
    return "\n".join(lines)


def _label_balance(out) -> str:
    from maan.preprocessing.store import load_features

    features = load_features(out)
    parts = []
    for target, values in features.labels.items():
        if len(values):
            parts.append(f"{target}: {values.mean():.0%} high")
    return "  class balance: " + ("; ".join(parts) if parts else "n/a")


def _check_real_data(folder) -> Path:
    """The eegmat folder the user named, or a MaanError before any work is done."""
    from maan.errors import MaanError
    from maan.evaluation.realdata import subjects

    folder = Path(folder)
    if not folder.is_dir():
        raise MaanError(f"--real-data {folder}: no such folder")
    if not subjects(folder):
        raise MaanError(f"--real-data {folder}: no SubjectNN_1.edf / SubjectNN_2.edf pairs (eegmat recordings)")
    return folder


# -- commands -------------------------------------------------------------------------------
def cmd_synth(args) -> int:
    from maan.datasets import synth_cohort

    kwargs = {}
    if args.short_seconds:
        kwargs["short_seconds"] = tuple(args.short_seconds)
    if args.long_seconds:
        kwargs["long_seconds"] = tuple(args.long_seconds)
    synth_cohort(args.format, args.out, n_subjects=args.subjects, seed=args.seed, **kwargs)
    print(f"Wrote a SYNTHETIC {args.format}-format cohort of {args.subjects} subjects (seed {args.seed}) to {args.out}")
    return 0


def cmd_preprocess(args) -> int:
    from maan.preprocessing.pipeline import preprocess

    manifest = preprocess(args.dataset, args.data, args.out, _preprocess_config(args.dataset, args),
                          jobs=args.jobs, skip_invalid=args.skip_invalid, overwrite=args.overwrite,
                          progress=not args.quiet)
    print(_summary(manifest, args.out))
    print(_label_balance(args.out))
    return 0


def cmd_demo(args) -> int:
    from maan.datasets import synth_cohort
    from maan.datasets.synthetic import DEMO_AMIGOS_SECONDS, cohort_written
    from maan.evaluation.cv import DEMO_PRESET, run_reproduce
    from maan.preprocessing.pipeline import PreprocessConfig, preprocess

    real_data = _check_real_data(args.real_data) if args.real_data is not None else None
    root = Path(args.out)
    data = root / "synthetic-amigos"
    if not cohort_written(data, "amigos", args.subjects, args.seed, **DEMO_AMIGOS_SECONDS):
        print(f"[1/3] writing a small SYNTHETIC AMIGOS-format cohort to {data}")
        synth_cohort("amigos", data, n_subjects=args.subjects, seed=args.seed, **DEMO_AMIGOS_SECONDS)
    else:
        print(f"[1/3] reusing the synthetic cohort in {data}")
    features = root / "features"
    print(f"[2/3] preprocessing into {features}")
    manifest = preprocess("amigos", data, features, PreprocessConfig(dataset="amigos"), jobs=args.jobs,
                          progress=not args.quiet, overwrite=True)
    print(_summary(manifest, features))
    print(_label_balance(features))
    preset = DEMO_PRESET
    print(f"[3/3] Table 1: base vs proposed x arousal, valence x 3 protocols "
          f"({preset['folds']}-fold, demo size; `maan reproduce` runs the paper's 10 folds)")
    # the demo's folder is its own: a run with the same settings resumes, one with other settings is replaced
    run_reproduce(data, "amigos", root, features=features, jobs=args.jobs, seed=args.seed,
                  progress=not args.quiet, overwrite=True, **preset)
    from maan.cli.report import figures_and_report

    figures_and_report(root)
    print("All numbers above are on SYNTHETIC data (maan synth), not AMIGOS.")
    if real_data is None:
        print("Real recordings: add --real-data DIR (an eegmat folder of SubjectNN_1.edf / SubjectNN_2.edf) "
              "to cross-validate on them too.")
        return 0
    from maan.evaluation.realdata import demo_real_data

    section = demo_real_data(real_data, root / "real-eegmat", progress=not args.quiet, overwrite=True)
    if section:
        print(section)
    return 0


def add_commands(sub, parser_class=argparse.ArgumentParser) -> None:
    """Register synth, preprocess and demo on an argparse subparsers object."""
    p = sub.add_parser("synth", help="write a format-faithful synthetic cohort (AMIGOS, DREAMER or MAHNOB-HCI files)",
                       description="Write a synthetic cohort in the AMIGOS (Data_Preprocessed_PXX.mat), DREAMER "
                       "(DREAMER.mat) or MAHNOB-HCI (Sessions/<id>/session.xml + BDF) layout whose labels are "
                       "carried by the physiology. Always labelled synthetic.")
    p.add_argument("--format", required=True, choices=("amigos", "dreamer", "mahnob"), help="file format to write")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--subjects", type=int, default=4, metavar="N", help="number of subjects (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default: %(default)s)")
    p.add_argument("--short-seconds", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="duration range of short-video trials (AMIGOS default 50 150; DREAMER stimuli; "
                        "MAHNOB-HCI clips, default 35 117)")
    p.add_argument("--long-seconds", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="duration range of AMIGOS long-video trials (default 840 1440)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("preprocess", help="read a dataset into a resumable feature store",
                       description="Cut synchronized windows, compute RR series (ECG) and differential-entropy "
                       "maps (EEG), and store them with labels. Reruns resume; finished subjects are kept.")
    p.add_argument("--dataset", required=True, choices=("amigos", "dreamer", "mahnob", "eegmat", "recordings"),
                   help="input dataset format (eegmat: PhysioNet's, as `maan fetch eegmat` writes it; "
                        "recordings: EDF/BDF/FIF/BrainVision... with a --labels table)")
    p.add_argument("--data", required=True, metavar="DIR",
                   help="AMIGOS: folder of Data_Preprocessed_PXX.mat/.zip; DREAMER: DREAMER.mat or its folder; "
                        "MAHNOB-HCI: the folder holding Sessions/ (or Sessions/ itself); "
                        "eegmat: folder of SubjectNN_1.edf / SubjectNN_2.edf; "
                        "recordings: the folder the labels' file column is relative to")
    p.add_argument("--out", required=True, metavar="FEATURES", help="feature store folder")
    p.add_argument("--jobs", type=int, default=default_jobs(),
                   help="subjects processed in parallel (default: %(default)s)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip (and list in the manifest) bad files/trials instead of stopping")
    p.add_argument("--overwrite", action="store_true", help="rebuild a store made with another configuration")
    p.add_argument("--require-all-modalities", action="store_true",
                   help="keep only windows with valid ECG and EEG (default: also windows with one valid modality, "
                        "marked in the store's modality mask)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_preprocess_options(p)
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser("demo", help="run the whole pipeline on a small synthetic cohort",
                       description="Synthetic AMIGOS-format cohort -> preprocess -> Table 1 -> figures and report. "
                       "Results are labelled synthetic. With --real-data, also a subject-held-out check on real "
                       "eegmat recordings (PhysioNet \"EEG During Mental Arithmetic Tasks\", rest vs arithmetic).")
    p.add_argument("--out", default="demo-output", metavar="DIR", help="working folder (default: %(default)s)")
    p.add_argument("--subjects", type=int, default=8, metavar="N", help="synthetic subjects (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=default_jobs(), help="parallel subjects (default: %(default)s)")
    p.add_argument("--real-data", default=None, metavar="DIR",
                   help="eegmat folder of SubjectNN_1.edf (rest) / SubjectNN_2.edf (arithmetic) pairs: adds a "
                        "real-data section (default: none)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)
