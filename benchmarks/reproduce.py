"""Wall time of the full ``reproduce`` on an AMIGOS-scale synthetic cohort (not a timed test).

Writes (once, cached) a synthetic AMIGOS-format cohort, then runs ``run_reproduce`` (base and
proposed x arousal and valence x the chosen protocols, 10 folds by default) in a child process
and reports: preprocessing time, wall time of the training part, fits finished, seconds and
epochs per fit, and training throughput. With ``--time-limit`` the child is stopped after that
many seconds and the total is extrapolated from the finished fits (the run folder is
resumable: rerun with the same arguments to continue it).

    python benchmarks/reproduce.py                              # 40 subjects, segment 10-fold
    python benchmarks/reproduce.py --time-limit 1800            # measure 30 min, extrapolate
    python benchmarks/reproduce.py --subjects 4 --folds 2 --epochs 2   # smoke run
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=str(Path(__file__).resolve().parent / ".cache" / "reproduce"), metavar="DIR",
                   help="cache of the cohort, store and run folders (default: %(default)s)")
    p.add_argument("--subjects", type=int, default=40, help="synthetic subjects (default: %(default)s, as AMIGOS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--protocols", nargs="+", default=["segment-kfold"], help="default: segment-kfold")
    p.add_argument("--folds", type=int, default=10, help="default: %(default)s")
    p.add_argument("--epochs", type=int, default=30, help="default: %(default)s")
    p.add_argument("--patience", type=int, default=5, help="default: %(default)s")
    p.add_argument("--batch-size", type=lambda v: v if v == "auto" else int(v), default="auto",
                   help="an integer or auto, as maan's (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=2,
                   help="processes for preprocessing and, on the CPU, for the fits (default: %(default)s)")
    p.add_argument("--accelerator", default="cpu", help="lightning accelerator: cpu, gpu, auto (default: %(default)s)")
    p.add_argument("--features", default=None, metavar="STORE",
                   help="an existing feature store of the synthetic cohort: skip synth and preprocess (e.g. a "
                        "store carried to a GPU machine)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="stop the training after S seconds and extrapolate (default: run to the end)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the figures as JSON")
    return p.parse_args(argv)


def _child(args, run: Path, store: Path):
    from maan.evaluation.cv import run_reproduce

    run_reproduce(None, "amigos", run, features=store, protocols=args.protocols, folds=args.folds, seed=args.seed,
                  config={"epochs": args.epochs, "patience": args.patience, "batch_size": args.batch_size,
                          "accelerator": args.accelerator}, jobs=args.jobs, progress=False, log=None, print_table=False)


def main(argv=None) -> int:
    args = parse_args(argv)
    import maan
    from maan.datasets.synthetic import cohort_written

    work = Path(args.work)
    data, store, run = work / f"amigos-{args.subjects}", work / f"features-{args.subjects}", work / "run"
    if args.features:
        store = Path(args.features)
        synth_s = preprocess_s = 0.0
        windows = len(maan.load_features(store))
    else:
        t = time.perf_counter()
        if not cohort_written(data, "amigos", args.subjects, args.seed):
            maan.synth_cohort("amigos", data, n_subjects=args.subjects, seed=args.seed)
        synth_s = time.perf_counter() - t
        t = time.perf_counter()
        manifest = maan.preprocess("amigos", data, store, jobs=args.jobs, progress=False)
        preprocess_s = time.perf_counter() - t
        windows = manifest["windows"]

    n_fits = len(args.protocols) * 2 * 2 * args.folds
    t = time.perf_counter()
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(args, run, store))
    proc.start()
    proc.join(args.time_limit)
    stopped = proc.is_alive()
    if stopped:
        proc.terminate()
        proc.join()
    train_wall = time.perf_counter() - t
    if not stopped and proc.exitcode != 0:
        print(f"the training child failed (exit code {proc.exitcode}); no figures written "
              f"(an old run in {run} with other settings? delete it)", file=sys.stderr)
        return 1

    results = [json.loads(p.read_text()) for p in run.glob("*/*/folds/fold-*/*.result.json")]
    fit_s = [r["seconds"] for r in results]
    epochs = [r["epochs"] for r in results]
    windows_trained = sum(r["n_fit"] * r["epochs"] for r in results)
    done = len(results)
    # a stopped run: the wall time so far covers the finished fits plus a partial one
    estimate = train_wall if not stopped else train_wall / max(done, 1) * n_fits
    figures = {
        "machine": machine(), "subjects": args.subjects, "windows": windows, "protocols": args.protocols,
        "folds": args.folds, "accelerator": args.accelerator, "epochs_max": args.epochs, "patience": args.patience, "batch_size": args.batch_size,
        "synth_s": round(synth_s, 1), "preprocess_s": round(preprocess_s, 1), "fits_total": n_fits,
        "fits_finished": done, "stopped_at_time_limit": stopped, "training_wall_s": round(train_wall, 1),
        "fit_s_mean": round(sum(fit_s) / done, 1) if done else None, "epochs_mean": round(sum(epochs) / done, 1) if done else None,
        "train_windows_per_s": round(windows_trained / sum(fit_s)) if done else None,
        "training_wall_s_full_estimate": round(estimate, 1),
    }
    print(f"machine: {figures['machine']}")
    if args.features:
        print(f"store: {store}, {windows} windows (synth and preprocess skipped)")
    else:
        print(f"cohort: {args.subjects} synthetic AMIGOS-format subjects, {windows} windows "
              f"(synth {synth_s:.0f} s, preprocess {preprocess_s:.0f} s)")
    print("| protocols | fits | finished | wall (training) | s/fit | epochs/fit | windows/s | full run (est.) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {' '.join(args.protocols)} | {n_fits} | {done}{' (stopped)' if stopped else ''} | {train_wall:.0f} s | "
          f"{figures['fit_s_mean']} | {figures['epochs_mean']} | {figures['train_windows_per_s']} | "
          f"{estimate / 3600:.2f} h{' (extrapolated)' if stopped else ''} |")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
