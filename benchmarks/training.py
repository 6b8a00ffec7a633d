"""Training throughput of cross-validation fits, this checkout against another commit (not a test).

Runs the same seeded ``run_cv`` (maan, subject-kfold, every epoch run: patience = epochs) on the
same store in child processes, one per variant, one after the other, and prints per variant the
wall time, the training windows per second of the machine (fit + validation windows x epochs,
summed over fits, over the wall time) and the mean accuracy, so that a speed-up is read at equal
accuracy. Variants: ``--baseline SRC`` (another checkout's ``src``, e.g. a git worktree of the
commit before a change) with ``--jobs 1``, then this checkout with each of ``--jobs``.

    git worktree add ../maan-before <commit>
    python benchmarks/training.py --baseline ../maan-before/src --jobs 1 2
    python benchmarks/training.py --store features/eegmat --target task --protocol loso --baseline ...
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine  # noqa: E402

SRC = HERE.parent / "src"


def child(args) -> None:
    """Run one variant (in a process whose PYTHONPATH picks the code) and print its figures."""
    from maan.evaluation.cv import run_cv

    config = {"epochs": args.epochs, "patience": args.epochs, "min_epochs": args.epochs, "accelerator": "cpu"}
    kwargs = dict(models=("maan",), protocol=args.protocol, folds=args.folds, seed=args.seed, config=config,
                  progress=False, log=None)
    if args.jobs[0] > 1:
        kwargs["jobs"] = args.jobs[0]
    start = time.perf_counter()
    result = run_cv(args.store, args.target, Path(args.out), **kwargs)
    wall = time.perf_counter() - start
    folds = result["models"]["maan"]["per_fold"]
    windows = sum((f["n_fit"] + f["n_val"]) * f["epochs"] for f in folds)
    print(json.dumps({"wall_s": wall, "windows": windows, "fit_s": sum(f["seconds"] for f in folds),
                      "acc": result["models"]["maan"]["metrics"]["acc"]["mean"],
                      "balanced_accuracy": result["models"]["maan"]["metrics"]["balanced_accuracy"]["mean"]}))


def ensure_store(work: Path) -> Path:
    import maan
    from maan.datasets.synthetic import DEMO_AMIGOS_SECONDS, cohort_written

    data, store = work / "demo-cohort", work / "demo-features"
    if not cohort_written(data, "amigos", 8, 0, **DEMO_AMIGOS_SECONDS):
        maan.synth_cohort("amigos", data, n_subjects=8, seed=0, **DEMO_AMIGOS_SECONDS)
    maan.preprocess("amigos", data, store, jobs=2, progress=False)
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=None, help="feature store (default: the demo cohort's, built in --work)")
    parser.add_argument("--target", default="arousal")
    parser.add_argument("--protocol", default="subject-kfold")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="this checkout's variants")
    parser.add_argument("--baseline", default=None, metavar="SRC", help="another checkout's src folder")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "maan-bench-training"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    if args.child:
        child(args)
        return
    work = Path(args.work)
    store = Path(args.store) if args.store else ensure_store(work)
    variants = ([("baseline", args.baseline, 1)] if args.baseline else []) + [("this", str(SRC), j) for j in args.jobs]
    print(f"machine: {machine()}\nstore: {store}; {args.protocol}, {args.folds} folds, {args.epochs} epochs, "
          f"target {args.target}\n")
    print("| code | jobs | wall s | training windows/s | vs first | mean acc | mean balanced acc |\n|---|--:|--:|--:|--:|--:|--:|")
    first = None
    for name, src, jobs in variants:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            cmd = [sys.executable, __file__, "--child", "--store", str(store), "--target", args.target,
                   "--protocol", args.protocol, "--folds", str(args.folds), "--epochs", str(args.epochs),
                   "--seed", str(args.seed), "--jobs", str(jobs), "--out", str(Path(tmp) / "run")]
            env = {**os.environ, "PYTHONPATH": src}
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{name} jobs {jobs} failed:\n{done.stderr[-2000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
        rate = r["windows"] / r["wall_s"]
        first = first or rate
        print(f"| {name} | {jobs} | {r['wall_s']:.1f} | {rate:,.0f} | {rate / first:.2f}x | {r['acc']:.3f} | "
              f"{r['balanced_accuracy']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
