"""Windows with one valid modality on real eegmat: accuracy on complete and on partial windows.

eegmat's Subject02_1 (rest) has a dead ECG lead: by default its 18 windows are kept with EEG
only. This runs the subject-held-out CV of ``maan demo``'s real-data section (loso, recipe
cross-subject, 30 epochs) with maan, the single-modality models and the baselines, on two
stores of the same recordings:

* ``partial`` (the default): windows with at least one valid modality;
* ``complete only`` (``--require-all-modalities``, and ``--skip-invalid`` for Subject02_1):
  what maan kept before partial windows existed.

and prints, per seed, the balanced accuracy of every model on all test windows pooled over the
folds, on the complete windows and on the EEG-only windows (a kind of window holding one class,
here the rest windows, gives that class's recall). The complete windows are the same 78 in both
stores, so their column compares the two directly. A single-modality model has no input on the
windows without its modality: n/a there.

Example (the command used for docs/model.md, "Windows that miss a modality")::

    .venv/bin/python benchmarks/partial_modalities.py --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import machine  # noqa: E402

MODELS = ("maan", "ecg-only", "eeg-only")
ROWS = ("maan", "ecg-only", "eeg-only", "hr-band", "logistic", "majority")


def run(data: Path, out: Path, seed: int, require_all: bool) -> dict:
    from maan.evaluation.cv import run_cv
    from maan.evaluation.realdata import REAL_DATA_PRESET, TARGET, preprocess_eegmat

    manifest = preprocess_eegmat(data, out / "features", require_all_modalities=require_all)
    return run_cv(out / "features", TARGET, out / f"cv-{seed}", models=MODELS, protocol="loso",
                  folds=manifest["n_subjects"], seed=seed, recipe="cross-subject", config=dict(REAL_DATA_PRESET),
                  progress=False, log=None)


def cell(result: dict, model: str, kind: str) -> str:
    value = result["models"][model]["by_modalities"].get(kind, {}).get("balanced_accuracy")
    return "n/a" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "eegmat")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    print("| seed | model | partial: all | partial: complete | partial: EEG only | complete only: complete |")
    print("|--:|---|--:|--:|--:|--:|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            partial = run(args.data, Path(tmp) / "partial", seed, require_all=False)
            complete = run(args.data, Path(tmp) / "complete", seed, require_all=True)
            counts = partial["modality_windows"]
            for model in ROWS:
                print(f"| {seed} | {model} | {cell(partial, model, 'all')} | {cell(partial, model, 'ecg+eeg')} | "
                      f"{cell(partial, model, 'eeg')} | {cell(complete, model, 'ecg+eeg')} |", flush=True)
    print(f"\nwindows: {counts}; complete-only store: {complete['n_windows']} windows")


if __name__ == "__main__":
    main()
