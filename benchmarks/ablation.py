"""Ablation of the model's parts on real eegmat (subject-held-out): each mechanism off in turn.

    python benchmarks/ablation.py --data ../shared/data/eegmat --seeds 0,1,2,3,4 --out runs/ablation
    python benchmarks/ablation.py --features demo-output/features --seeds 0,1,2 --out runs/ablation-synth

With ``--features`` (a store of ``maan demo``'s SYNTHETIC cohort) each variant is cross-validated
subject-held-out (subject-kfold, 3 folds, the demo's epochs) on arousal and valence instead.

Variants are built from the public API: a Recipe with one field changed, or a TrainConfig with
one model option. Prints one Markdown row per variant: mean over subjects and pooled balanced
accuracy of maan, mean (± std) over seeds, with hr-band from the same runs.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from maan.evaluation.realdata import REAL_DATA_PRESET, pooled_balanced_accuracy, run_eegmat_cv
from maan.training.recipes import CROSS_SUBJECT, PAPER

VARIANTS = {
    "cross-subject recipe (default for unseen subjects)": (CROSS_SUBJECT, {}),
    "  without the modality balance": (dataclasses.replace(CROSS_SUBJECT, balance_modalities=False), {}),
    "  without mixup": (dataclasses.replace(CROSS_SUBJECT, mixup=0.0), {}),
    "  ECG skip always padded (no heart-rate rule)": (dataclasses.replace(CROSS_SUBJECT, rr_skip="padded"), {}),
    "  without the input skip (the paper's classifier input)": (CROSS_SUBJECT, {"input_skip": False}),
    "paper recipe": (PAPER, {}),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="eegmat folder")
    p.add_argument("--features", help="a synthetic store instead (maan demo's)")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", default="0")
    p.add_argument("--only", default=None, help="comma-separated variant numbers (0-based)")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = list(VARIANTS.items())
    if args.only:
        chosen = [chosen[int(i)] for i in args.only.split(",")]
    if args.features:
        return synthetic(args, chosen, seeds)
    print("| variant | maan, mean over subjects | maan, pooled | hr-band, mean / pooled |\n|---|---|---|---|")
    for k, (name, (recipe, model_kwargs)) in enumerate(chosen):
        means, pooled, hr = [], [], []
        for seed in seeds:
            config = {**REAL_DATA_PRESET, "model_kwargs": model_kwargs}
            res = run_eegmat_cv(args.data, Path(args.out) / f"v{k}-s{seed}", recipe=recipe, config=config, seed=seed,
                                overwrite=True)
            means.append(res["models"]["maan"]["metrics"]["balanced_accuracy"]["mean"])
            pooled.append(pooled_balanced_accuracy(res["models"]["maan"]["per_fold"]))
            hr.append((res["models"]["hr-band"]["metrics"]["balanced_accuracy"]["mean"],
                       pooled_balanced_accuracy(res["models"]["hr-band"]["per_fold"])))
        hr = np.mean(hr, axis=0)
        print(f"| {name} | {np.mean(means):.3f} ± {np.std(means):.3f} | {np.mean(pooled):.3f} ± {np.std(pooled):.3f} "
              f"| {hr[0]:.3f} / {hr[1]:.3f} |", flush=True)


def synthetic(args, chosen, seeds) -> None:
    from maan.evaluation.cv import DEMO_PRESET, run_cv

    print("| variant | maan arousal BA | maan valence BA | hr-band arousal / valence |\n|---|---|---|---|")
    for k, (name, (recipe, model_kwargs)) in enumerate(chosen):
        cells, hr = [], []
        for target in ("arousal", "valence"):
            scores, base = [], []
            for seed in seeds:
                config = {**DEMO_PRESET["config"], "model_kwargs": model_kwargs}
                res = run_cv(args.features, target, Path(args.out) / f"v{k}-{target}-s{seed}", protocol="subject-kfold",
                             folds=3, seed=seed, recipe=recipe, config=config, progress=False, log=None, overwrite=True)
                scores.append(res["models"]["maan"]["metrics"]["balanced_accuracy"]["mean"])
                base.append(res["models"]["hr-band"]["metrics"]["balanced_accuracy"]["mean"])
            cells.append(f"{np.mean(scores):.3f} ± {np.std(scores):.3f}")
            hr.append(f"{np.mean(base):.3f}")
        print(f"| {name} | {cells[0]} | {cells[1]} | {' / '.join(hr)} |", flush=True)


if __name__ == "__main__":
    main()
