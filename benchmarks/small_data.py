"""Training settings on small stores: balanced accuracy of maan next to the logistic baseline.

Not a speed benchmark: it records how training defaults behave where data is scarce, which is
where they break (a real-data LOSO fold fits ~50 windows). Cases, all on the same folds as the
baselines:

- ``eegmat``: the real recordings in ../shared/data/eegmat (skipped when absent), task, LOSO,
  ``--normalize subject``;
- ``demo-*``: the ``maan demo`` synthetic cohort (8 subjects, ~1,000 windows), valence
  trial-kfold and arousal / valence subject-kfold, 3 folds.

Each configuration is a JSON object of ``TrainConfig`` overrides, run on every case::

    python benchmarks/small_data.py '{"batch_size": 64, "min_epochs": 0}' '{}' '{"input_noise": 0.3}'

While choosing a setting, ``--synthetic-only`` leaves the eegmat case out: settings chosen on
its 4 test folds would be tuned to them. ``--demo-normalize subject`` runs the demo cases with
per-subject statistics, ``--seeds 0,1,2`` averages each case over seeds (folds and training)::

    python benchmarks/small_data.py --synthetic-only --demo-normalize subject --seeds 0,1,2 \
        '{"model_kwargs": {"input_skip": false}}' '{}'
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data"
#: the synthetic cohort of the demo cases (as ``maan demo`` writes it by default)
DEMO_COHORT = {"n_subjects": 8, "seed": 0}
DEMO_CASES = (("demo-valence-trial", "valence", "trial-kfold"), ("demo-arousal-subject", "arousal", "subject-kfold"),
              ("demo-valence-subject", "valence", "subject-kfold"))


def stores(work: Path, progress: bool) -> dict:
    import maan
    from maan.datasets.synthetic import DEMO_AMIGOS_SECONDS, cohort_written
    from maan.evaluation.realdata import preprocess_eegmat, subjects
    from maan.preprocessing.pipeline import PreprocessConfig, preprocess

    out = {}
    demo = work / "demo-cohort"
    if not cohort_written(demo, "amigos", **DEMO_COHORT, **DEMO_AMIGOS_SECONDS):
        maan.synth_cohort("amigos", demo, **DEMO_COHORT, **DEMO_AMIGOS_SECONDS)
    preprocess("amigos", demo, work / "demo-features", PreprocessConfig(dataset="amigos"), jobs=2, progress=progress)
    out["demo"] = work / "demo-features"
    data = SHARED / "eegmat"
    if data.is_dir() and subjects(data):
        preprocess_eegmat(data, work / "eegmat-features", progress=progress)
        out["eegmat"] = work / "eegmat-features"
    return out


def run_config(overrides: dict, paths: dict, work: Path, demo_normalize: str = "train", seeds=(0,)) -> dict:
    from maan.evaluation.realdata import pooled_balanced_accuracy
    from maan.evaluation.cv import run_cv

    config = {"accelerator": "cpu", **overrides}
    cases = []
    if "eegmat" in paths:
        cases.append(("eegmat", paths["eegmat"], "task", "loso", 4, "subject"))
    cases += [(name, paths["demo"], target, protocol, 3, demo_normalize) for name, target, protocol in DEMO_CASES]
    row = {}
    for name, store, target, protocol, folds, normalize in cases:
        runs = [run_cv(store, target, work / "runs" / name, models=("maan",), protocol=protocol, folds=folds,
                       seed=seed, recipe={"train": "paper", "subject": "cross-subject"}[normalize], config=config, progress=False, log=None, overwrite=True)
                for seed in seeds]
        row[name] = {m: {"mean_ba": float(np.mean([r["models"][m]["metrics"]["balanced_accuracy"]["mean"]
                                                   for r in runs])),
                         "pooled_ba": float(np.mean([pooled_balanced_accuracy(r["models"][m]["per_fold"])
                                                     for r in runs])),
                         "mean_ba_per_seed": [r["models"][m]["metrics"]["balanced_accuracy"]["mean"] for r in runs]}
                     for m in ("maan", "logistic", "majority")}
        row[name]["epochs"] = [f["epochs"] for f in runs[-1]["models"]["maan"]["per_fold"]]
        row[name]["batch_size"] = [f.get("batch_size") for f in runs[-1]["models"]["maan"]["per_fold"]]
    return row


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="*", default=["{}"], help="JSON TrainConfig overrides, one per configuration "
                   "(default: '{}', maan's defaults)")
    p.add_argument("--work", default=str(HERE / ".cache" / "small_data"), metavar="DIR")
    p.add_argument("--synthetic-only", action="store_true",
                   help="leave out the eegmat case (choose settings without looking at the real test folds)")
    p.add_argument("--demo-normalize", choices=("train", "subject"), default="train",
                   help="feature statistics of the demo cases (default: %(default)s; eegmat always per subject)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, each case averaged over them (default: 0)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the figures as JSON")
    args = p.parse_args(argv)
    seeds = [int(v) for v in args.seeds.split(",")]
    work = Path(args.work)
    paths = stores(work, progress=False)
    if args.synthetic_only:
        paths.pop("eegmat", None)
    print(f"machine: {machine()}")
    results = []
    for text in args.configs:
        overrides = json.loads(text)
        start = time.perf_counter()
        row = run_config(overrides, paths, work, args.demo_normalize, seeds)
        seconds = time.perf_counter() - start
        results.append({"config": overrides, "seconds": round(seconds, 1), "cases": row})
        print(f"\nconfig {json.dumps(overrides)}  ({seconds:.0f} s)")
        print(f"  {'case':22s}" + "".join(f"{m:>13s}" for m in ("maan", "logistic", "majority"))
              + "  epochs / batch per fold")
        for name, r in row.items():
            cells = "".join(f"{_fmt(r[m]['mean_ba']):>7s}/{_fmt(r[m]['pooled_ba']):<5s}"
                            for m in ("maan", "logistic", "majority"))
            print(f"  {name:22s} {cells}  {r['epochs']} / {r['batch_size']}")
            if len(seeds) > 1:
                print(f"  {'':22s} maan per seed {seeds}: " + " ".join(_fmt(v) for v in r["maan"]["mean_ba_per_seed"]))
    print("\ncells: balanced accuracy, mean over folds / pooled over all held-out windows"
          + (f", averaged over seeds {seeds}" if len(seeds) > 1 else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
