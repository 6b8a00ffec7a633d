"""RR series under ectopy: raw intervals or NeuroKit2's ``signal_fixpeaks`` (Kubios) correction?

A premature ventricular beat gives a short-long interval pair. This compares, per 10-s window
(``maan.features.ecg.rr_windows``, the series the model reads), the intervals of the beats that
``maan.features.ecg.detect_rpeaks`` finds, used raw or after ``nk.signal_fixpeaks(method="Kubios")``,
against two truths on the cases of ``benchmarks/rpeaks.py --suite ectopy``:

* ``beats``: every annotated beat, inserted ventricular beats included (the heart's real rate);
* ``sinus``: the record's original beats before insertion (what the sinus node did; a
  compensatory pause keeps the sinus beats in place, so this is the normal-to-normal series that
  heart-rate-variability measures want).

Per window: error of the mean heart rate (bpm), of RMSSD (ms) and of SDNN (ms); reported as
median and 95th percentile of the absolute error over windows valid in the truth, with the share
of those windows that ``rr_windows`` marks valid.

Example (the command used for docs/benchmarks.md, "RR series under ectopy")::

    .venv/bin/python benchmarks/rr_series.py
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from rpeaks import DEFAULT_DATA, ectopy_cases, load_record  # noqa: E402

from maan.config import WINDOW_SECONDS  # noqa: E402
from maan.errors import InvalidSignalError  # noqa: E402
from maan.features.ecg import detect_rpeaks, rr_windows  # noqa: E402


def kubios(peaks, fs):
    """``peaks`` corrected by NeuroKit2's Kubios artefact correction (iterative)."""
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, fixed = nk.signal_fixpeaks(peaks, sampling_rate=fs, iterative=True, method="Kubios")
    return np.unique(np.asarray(fixed, dtype=np.int64))


def window_stats(peaks, fs, starts, w):
    """Per window (mean HR bpm, RMSSD ms, SDNN ms, valid) from the zero-embedded RR series."""
    rr, valid, _ = rr_windows(peaks, fs, starts, w, length=64)
    out = np.full((len(starts), 3), np.nan)
    for k, row in enumerate(rr):
        iv = row[row > 0]
        if iv.size >= 2:
            out[k] = (60.0 / iv.mean(), 1000 * np.sqrt(np.mean(np.diff(iv) ** 2)), 1000 * iv.std())
    return out, valid


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="MIT-BIH record path without extension (default: ../shared/data/mitdb/100)")
    ap.add_argument("--seeds", default="1,2,3", help="insertion and noise seeds")
    ap.add_argument("--rates", default="128,500", help="sampling rates (Hz)")
    args = ap.parse_args(argv)
    if not args.data.with_suffix(".dat").exists():
        ap.error(f"{args.data}.dat not found; pass --data PATH_WITHOUT_EXTENSION")
    x, fs0, ref, v_beats = load_record(args.data, with_ventricular=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    rates = [float(r) for r in args.rates.split(",")]

    errs: dict = {}  # (group, truth, variant) -> list of per-window |error| rows
    valid_share: dict = {}
    for name, fs, sig, truth, _ in ectopy_cases(x, fs0, ref, v_beats, rates, (0.0,), seeds):
        pattern, _, cond = name.split("/")[:3]
        if cond == "inv":
            continue
        group = ("recorded" if pattern == "none" else "ectopy") + ("" if cond == "clean" else f" {cond}")
        w = int(round(WINDOW_SECONDS * fs))
        starts = np.arange(0, sig.size - w + 1, w)
        sinus = np.round(ref * fs / fs0).astype(np.int64)
        truths = {"beats": window_stats(truth, fs, starts, w), "sinus": window_stats(sinus, fs, starts, w)}
        try:
            found = detect_rpeaks(sig, fs)
        except InvalidSignalError:
            continue
        for variant, peaks in (("raw", found), ("kubios", kubios(found, fs))):
            stats, valid = window_stats(peaks, fs, starts, w)
            for tname, (tstats, tvalid) in truths.items():
                keep = tvalid & np.isfinite(stats).all(axis=1)
                errs.setdefault((group, tname, variant), []).append(np.abs(stats[keep] - tstats[keep]))
            valid_share.setdefault((group, variant), []).append(valid[truths["beats"][1]].mean())
        print(f"# done {name}", file=sys.stderr, flush=True)

    print("| cases | truth | RR series | mean HR err bpm (median / p95) | RMSSD err ms | SDNN err ms "
          "| windows valid |")
    print("|---|---|---|--:|--:|--:|--:|")
    for (group, tname, variant), rows in errs.items():
        e = np.concatenate(rows)
        cells = [f"{np.median(e[:, j]):.2f} / {np.percentile(e[:, j], 95):.2f}" for j in range(3)]
        share = 100 * np.mean(valid_share[(group, variant)])
        print(f"| {group} | {tname} | {variant} | " + " | ".join(cells) + f" | {share:.1f} % |")
    print(f"\nMIT-BIH {args.data.name}; {WINDOW_SECONDS:g}-s windows; rates {rates}; seeds {seeds}; "
          f"nproc {os.cpu_count()}")


if __name__ == "__main__":
    main()
