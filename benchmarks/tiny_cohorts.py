"""Training settings on eegmat-sized synthetic cohorts: maan next to the logistic baseline.

The real-data check (eegmat) has 4 subjects of ~24 windows; choosing defaults on it would tune
to its 4 test folds. This benchmark draws cohorts of the same shape from the ``maan demo``
synthetic cohort (benchmarks/small_data.py builds it): ``--subjects`` subjects x ``--windows``
random windows (default 24, as eegmat), ``--draws`` different draws, leave-one-subject-out
with ``--normalize subject``, for arousal and valence. Each configuration is a JSON object of ``TrainConfig`` overrides plus two
keys of its own:

* ``"inner"``: ``"auto"`` (maan's rule, maan.training.splits.inner_split), ``"grouped"`` (hold out
  whole subjects whenever there are 2 or more, as before MIN_INNER_GROUPS) or ``"windows"``;
* ``"model"``: ``maan`` (default), ``base``, ``ecg-only`` or ``eeg-only``.

``--reversed-eeg F`` draws from a cohort like the demo's in which a fraction F of the subjects
have their EEG arousal response reversed (``maan.datasets.synthetic.synth_amigos(...,
reversed_eeg_fraction=F)``; their heart rate still rises with arousal): real subjects differ
more than the default cohort's, and there the EEG's arousal pattern does not transfer between
subjects while heart rate does. The cohort is built in the work folder when missing.

Example (the figures in docs/benchmarks.md, "Small cohorts (cross-subject recipe)")::

    python benchmarks/tiny_cohorts.py --subjects 3 '{"inner": "grouped"}' '{"inner": "windows"}'
    python benchmarks/tiny_cohorts.py --subjects 4 '{}' '{"input_noise": 0.3}' '{"model_kwargs": {"depth": 1}}'
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

HERE = Path(__file__).resolve().parent
WINDOWS_PER_SUBJECT = 24


def draws(features, n_subjects: int, n_draws: int, seed: int = 0,
          windows: int = WINDOWS_PER_SUBJECT) -> list[np.ndarray]:
    """Window indices of ``n_draws`` cohorts of ``n_subjects`` x ``windows`` windows."""
    rng = np.random.default_rng(seed)
    subject = np.asarray(features.subject)
    names = np.unique(subject)
    out = []
    for _ in range(n_draws):
        pick = rng.choice(names, n_subjects, replace=False)
        out.append(np.sort(np.concatenate([rng.choice(np.flatnonzero(subject == s), windows,
                                                      replace=False) for s in pick])))
    return out


def reversed_eeg_store(work: Path, fraction: float) -> Path:
    """The store of the demo-like cohort (8 subjects, seed 0, the demo's trial lengths) with a
    fraction of the subjects' EEG arousal response reversed; built in ``work`` when missing."""
    from small_data import DEMO_COHORT

    import maan
    from maan.datasets.synthetic import DEMO_AMIGOS_SECONDS, cohort_written
    from maan.preprocessing.pipeline import PreprocessConfig, preprocess

    cohort, store = work / f"reversed-eeg-{fraction:g}-cohort", work / f"reversed-eeg-{fraction:g}-features"
    if not (store / "manifest.json").exists():
        options = dict(**DEMO_AMIGOS_SECONDS, reversed_eeg_fraction=fraction)
        if not cohort_written(cohort, "amigos", **DEMO_COHORT, **options):
            maan.synth_cohort("amigos", cohort, **DEMO_COHORT, **options)
        preprocess("amigos", cohort, store, PreprocessConfig(dataset="amigos"), jobs=2, progress=False)
    return store


def inner(rule: str, train_idx, y, subject, trial, config, seed):
    from sklearn.model_selection import StratifiedGroupKFold

    from maan.training.splits import inner_split

    if rule == "auto":
        return inner_split("loso", train_idx, y, subject, trial, config.val_fraction, seed)
    groups = np.asarray(subject)[train_idx]
    k = min(10, len(np.unique(groups)))
    if rule == "windows" or k < 2:
        return inner_split("segment-kfold", train_idx, y, subject, trial, config.val_fraction, seed)
    fit, val = next(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(
        np.zeros(len(train_idx)), y[train_idx], groups))
    return np.sort(train_idx[fit]), np.sort(train_idx[val])


def run_cohort(features, idx, target: str, overrides: dict, seed: int = 0) -> dict:
    """Pooled balanced accuracy of maan and the logistic baseline, LOSO on the windows ``idx``."""
    from sklearn.metrics import balanced_accuracy_score

    from maan.training.baselines import hr_band_features, logistic_baseline, present_features, window_features
    from maan.training.datamodule import WindowDataModule
    from maan.training.module import TrainConfig, fit_module, predict_proba
    from maan.features.normalize import Normalizer, informative_train_idx, layout_of
    from maan.training.splits import make_splits

    overrides = dict(overrides)
    rule, model = overrides.pop("inner", "auto"), overrides.pop("model", "maan")
    config = TrainConfig(**{"accelerator": "cpu", **overrides})
    layout, n_bands = layout_of(features.manifest)
    ecg, eeg, mask = features.ecg[idx], features.eeg[idx], features.modality_mask[idx]
    subject, trial = np.asarray(features.subject)[idx], np.asarray(features.trial)[idx]
    y = np.asarray(features.labels[target])[idx].astype(int)
    pooled = window_features(ecg, eeg, layout, n_bands)
    hr_band = hr_band_features(ecg, eeg, layout, n_bands)
    present = {"logistic": present_features("logistic", pooled, mask), "hr-band": present_features("hr-band", hr_band, mask)}
    truth, preds = [], {"maan": [], "logistic": [], "hr-band": []}
    for k, (train_idx, test_idx) in enumerate(make_splits("loso", y, subject, trial, 0, seed)):
        train_idx, _ = informative_train_idx(train_idx, y, subject, "subject")
        fit_idx, val_idx = inner(rule, train_idx, y, subject, trial, config, seed + k)
        dm = WindowDataModule(ecg, eeg, y, subject, fit_idx, val_idx, test_idx, batch_size=config.batch_size,
                              balance=config.balance, seed=seed + k, normalizer=Normalizer("subject", layout, n_bands),
                              modality_mask=mask)
        fit = fit_module(dm, model, config, seed + k, "cross-subject")
        ecg_t, eeg_t, mask_t, y_t = dm.test_arrays()
        preds["maan"].append((predict_proba(fit.module, ecg_t, eeg_t, mask_t) >= 0.5).astype(int))
        preds["logistic"].append(logistic_baseline(pooled, y, train_idx, test_idx, "subject", subject, seed,
                                                   present["logistic"])[0])
        preds["hr-band"].append(logistic_baseline(hr_band, y, train_idx, test_idx, "subject", subject, seed,
                                                  present["hr-band"])[0])
        truth.append(y_t)
    y_all = np.concatenate(truth)
    return {m: float(balanced_accuracy_score(y_all, np.concatenate(p))) for m, p in preds.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="*", default=["{}"], help="JSON overrides, one per configuration")
    p.add_argument("--subjects", type=int, default=4, help="subjects per drawn cohort (default 4, as eegmat)")
    p.add_argument("--windows", type=int, default=WINDOWS_PER_SUBJECT,
                   help=f"windows per subject (default {WINDOWS_PER_SUBJECT}, as eegmat)")
    p.add_argument("--draws", type=int, default=6, help="cohorts drawn (default 6)")
    p.add_argument("--draw-seed", type=int, default=None,
                   help="seed of the draws (default: the number of subjects); another seed gives fresh cohorts")
    p.add_argument("--work", default=str(HERE / ".cache" / "small_data"), metavar="DIR",
                   help="small_data.py's work folder (the demo cohort's store is built there if missing)")
    p.add_argument("--reversed-eeg", type=float, default=0.0, metavar="F",
                   help="draw from a demo-like cohort in which a fraction F of the subjects have their EEG "
                        "arousal response reversed (default 0: the demo cohort itself)")
    args = p.parse_args(argv)
    from small_data import stores

    import maan

    if not 0.0 <= args.reversed_eeg <= 1.0:
        p.error("--reversed-eeg must be between 0 and 1")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    if args.reversed_eeg > 0:
        store = reversed_eeg_store(Path(args.work), args.reversed_eeg)
    else:
        store = Path(args.work) / "demo-features"
        if not (store / "manifest.json").exists():
            stores(Path(args.work), progress=False)
    features = maan.load_features(store)
    draw_seed = args.subjects if args.draw_seed is None else args.draw_seed
    counts = np.unique(np.asarray(features.subject), return_counts=True)[1]
    if not 1 <= args.windows <= counts.min():
        p.error(f"--windows must be 1 to {counts.min()} (the fewest windows of a subject in {store})")
    cohorts = draws(features, args.subjects, args.draws, seed=draw_seed, windows=args.windows)
    print(f"machine: {machine()}")
    print(f"store: {store}")
    print(f"{args.draws} draws (seed {draw_seed}) of {args.subjects} synthetic subjects x {args.windows} windows, loso, "
          "--normalize subject; pooled balanced accuracy (arousal, valence per draw)")
    for text in args.configs:
        start = time.perf_counter()
        rows = [run_cohort(features, idx, target, json.loads(text)) for idx in cohorts
                for target in ("arousal", "valence")]
        mean = {m: np.mean([r[m] for r in rows]) for m in ("maan", "logistic", "hr-band")}
        by_target = {t: np.mean([r["maan"] for r in rows[i::2]]) for i, t in enumerate(("arousal", "valence"))}
        print(f"\nconfig {text}  ({time.perf_counter() - start:.0f} s): mean maan {mean['maan']:.3f} "
              f"(arousal {by_target['arousal']:.3f}, valence {by_target['valence']:.3f}), "
              f"logistic {mean['logistic']:.3f}, hr-band {mean['hr-band']:.3f}")
        for m in ("maan", "logistic", "hr-band"):
            print(f"  {m:9s}" + " ".join(f"{r[m]:.2f}" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
