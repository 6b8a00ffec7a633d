"""Compare R-peak detectors on MIT-BIH record 100: clean, noisy (0 / -6 dB SNR), inverted.

For each detector this reports sensitivity (Se), positive predictivity (PPV) and F1 against the
expert beat annotations (150 ms tolerance, one-to-one matching), at the native 360 Hz and after
resampling to 128 Hz (AMIGOS' rate), the median timing error of matched beats, and the speed in
seconds per hour of ECG at 128 Hz. Two pipelines:

* ``maan``:   ``maan.features.ecg.detect_rpeaks(ecg, fs, method)`` (robust z-score, 8-20 Hz
  band-pass, polarity correction, NeuroKit2 detector, apex refinement);
* ``native``: NeuroKit2 as documented: ``nk.ecg_clean(method=m)`` (its default cleaning where the
  method has none) then ``nk.ecg_findpeaks(method=m)``; no polarity correction.

Noise: ``maan.features.ecg.add_ecg_noise`` (baseline wander + bursty EMG + electrode motion,
see its docstring), added at 360 Hz, then resampled with the signal. Fixed seeds (``--seeds``);
the noisy numbers are the mean over seeds, ``min`` the worst seed.

Example (the command used for docs/benchmarks.md, "ECG R-peak detection")::

    PYTHONPATH=src .venv/bin/python benchmarks/rpeaks.py --pipeline both

Needs ``wfdb``; ``emrich2023`` needs the optional ``ts2vg`` package (skipped if missing).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import signal as sps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from maan.errors import InvalidSignalError  # noqa: E402
from maan.features.ecg import add_ecg_noise, detect_rpeaks  # noqa: E402

BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")
ALL_METHODS = (
    "consensus", "neurokit", "pantompkins1985", "hamilton2002", "christov2004", "gamboa2008",
    "elgendi2010", "engzeemod2012", "manikandan2012", "khamis2016", "kalidas2017", "nabian2018",
    "rodrigues2021", "emrich2023", "promac",
)
NK_CLEAN = {"neurokit", "pantompkins1985", "hamilton2002", "gamboa2008", "elgendi2010",
            "engzeemod2012", "emrich2023", "christov2004", "kalidas2017"}
DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "mitdb" / "100"


def load_record(path: Path):
    import wfdb

    rec = wfdb.rdrecord(str(path))
    ann = wfdb.rdann(str(path), "atr")
    lead = rec.sig_name.index("MLII") if "MLII" in rec.sig_name else 0
    ref = np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym in BEAT_SYMBOLS], dtype=np.int64)
    return rec.p_signal[:, lead].astype(np.float64), float(rec.fs), ref


def score(det, ref, fs, tol_s=0.15):
    """One-to-one matching within tolerance: returns (Se, PPV, F1, median |error| in ms)."""
    det = np.unique(np.asarray(det, dtype=np.int64))
    tol = tol_s * fs
    used = np.zeros(det.size, bool)
    errs = []
    pos = np.searchsorted(det, ref)
    for r, k in zip(ref, pos):
        best, bd = -1, tol + 1
        for c in (k - 1, k, k + 1):
            if 0 <= c < det.size and not used[c] and abs(det[c] - r) <= tol and abs(det[c] - r) < bd:
                best, bd = c, abs(det[c] - r)
        if best >= 0:
            used[best] = True
            errs.append(bd)
    tp = len(errs)
    se = tp / max(ref.size, 1)
    ppv = tp / max(det.size, 1)
    f1 = 2 * tp / max(ref.size + det.size, 1)
    err_ms = float(np.median(errs) / fs * 1000) if errs else float("nan")
    return se, ppv, f1, err_ms


def run_native(x, fs, method):
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = nk.ecg_clean(x, sampling_rate=fs, method=method if method in NK_CLEAN else "neurokit")
        found = nk.ecg_findpeaks(clean, sampling_rate=fs, method=method)["ECG_R_Peaks"]
        return np.asarray(found, dtype=np.int64)


def run_one(pipeline, method, x, fs):
    t0 = time.perf_counter()
    try:
        if pipeline == "maan":
            peaks = detect_rpeaks(x, fs, method=method)
        else:
            peaks = run_native(x, fs, method)
    except InvalidSignalError:
        peaks = np.zeros(0, np.int64)
    except Exception as exc:  # a detector crashing is a result too
        return None, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
    return peaks, time.perf_counter() - t0, ""


def build_conditions(x, fs0, ref, rates, snrs, seeds, weights=None):
    """Yield (rate, condition name, seed, signal, reference) for every test case."""
    cases = []
    kw = {} if weights is None else {"weights": weights}
    noisy = {(snr, seed): add_ecg_noise(x, fs0, snr, seed=seed, **kw) for snr in snrs for seed in seeds}
    for fs in rates:
        if fs == fs0:
            rs = lambda s: s  # noqa: E731
            r = ref
        else:
            from fractions import Fraction

            fr = Fraction(int(fs), int(fs0)).limit_denominator(1000)
            rs = lambda s, fr=fr: sps.resample_poly(s, fr.numerator, fr.denominator)  # noqa: E731
            r = np.round(ref * fs / fs0).astype(np.int64)
        cases.append((fs, "clean", 0, rs(x), r))
        cases.append((fs, "inv", 0, rs(-x), r))
        for (snr, seed), xn in noisy.items():
            cases.append((fs, f"{snr:g}dB", seed, rs(xn), r))
            if snr == min(snrs):
                cases.append((fs, f"{snr:g}dB-inv", seed, rs(-xn), r))
    return cases


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="MIT-BIH record path without extension (default: ../shared/data/mitdb/100)")
    ap.add_argument("--methods", default=",".join(ALL_METHODS),
                    help="comma-separated detector names (default: all)")
    ap.add_argument("--pipeline", choices=("maan", "native", "both"), default="both")
    ap.add_argument("--rates", default="360,128", help="sampling rates to test (Hz)")
    ap.add_argument("--snr", default="0,-6", help="SNRs in dB")
    ap.add_argument("--seeds", default="1,2,3", help="noise seeds")
    ap.add_argument("--weights", default=None,
                    help="noise power shares baseline,EMG,motion (default: the model's 0.4,0.4,0.2)")
    ap.add_argument("--max-speed", type=float, default=3.0,
                    help="skip detectors slower than this many s per hour of 128-Hz ECG, probed on "
                         "the first 5 min (default 3; 0 = no limit)")
    args = ap.parse_args(argv)

    if not args.data.with_suffix(".dat").exists():
        ap.error(f"{args.data}.dat not found; pass --data PATH_WITHOUT_EXTENSION")
    x, fs0, ref = load_record(args.data)
    rates = [float(r) for r in args.rates.split(",")]
    snrs = [float(s) for s in args.snr.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    pipelines = ("maan", "native") if args.pipeline == "both" else (args.pipeline,)
    weights = tuple(float(w) for w in args.weights.split(",")) if args.weights else None
    cases = build_conditions(x, fs0, ref, rates, snrs, seeds, weights)
    hours = x.size / fs0 / 3600

    # warm-up (imports, numba/pywt initialisation) so the first method is not charged for it
    run_one("maan", "neurokit", cases[0][3][: int(60 * cases[0][0])], cases[0][0])

    rows = []
    for pipeline in pipelines:
        for method in methods:
            if pipeline == "native" and method == "consensus":
                continue
            res = {}
            times = []
            err = ""
            probe = [c for c in cases if c[0] == 128 and c[1] == "clean"]
            if args.max_speed > 0 and probe:
                sig = probe[0][3][: int(300 * 128)]
                _, dt, err = run_one(pipeline, method, sig, 128.0)
                if not err and dt / (300 / 3600) > args.max_speed:
                    err = f"skipped: {dt / (300 / 3600):.1f} s/h > {args.max_speed:g}"
                if err:
                    rows.append((pipeline, method, {}, dt / (300 / 3600), err))
                    print(f"# {pipeline} {method}: {err}", file=sys.stderr, flush=True)
                    continue
            for fs, cond, seed, sig, r in cases:
                peaks, dt, err = run_one(pipeline, method, sig, fs)
                if peaks is None:
                    break
                if fs == 128:
                    times.append(dt / hours)
                res.setdefault((fs, cond), []).append(score(peaks, r, fs))
            rows.append((pipeline, method, res, float(np.mean(times)) if times else float("nan"), err))
            print(f"# done {pipeline} {method} {err}", file=sys.stderr, flush=True)

    worst = f"{min(snrs):g}dB"
    other = [f"{s:g}dB" for s in snrs if s != min(snrs)]
    head = (["pipeline", "method", "fs", "clean Se", "clean PPV", "inv F1"]
            + [f"{o} F1" for o in other]
            + [f"{worst} Se", f"{worst} PPV", f"{worst} F1", f"{worst} F1 min", f"{worst} inv F1",
               "err ms", "s/h @128"])
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] * 3 + ["--:"] * (len(head) - 3)) + "|")

    def pct(v):
        return f"{100 * v:.2f}"

    for pipeline, method, res, speed, err in rows:
        if not res:
            print(f"| {pipeline} | {method} | - | " + " | ".join(["n/a"] * (len(head) - 4))
                  + f" | {err[:70]} |")
            continue
        for fs in rates:
            def get(cond, k, agg=np.mean):
                v = res.get((fs, cond))
                return pct(agg([t[k] for t in v])) if v else "-"

            cells = [pipeline, method, f"{fs:g}", get("clean", 0), get("clean", 1), get("inv", 2)]
            cells += [get(o, 2) for o in other]
            cells += [get(worst, 0), get(worst, 1), get(worst, 2), get(worst, 2, np.min),
                      get(f"{worst}-inv", 2)]
            v = res.get((fs, "clean"))
            cells.append(f"{v[0][3]:.1f}" if v else "-")
            cells.append(f"{speed:.3f}" + (f" ({err[:50]})" if err else ""))
            print("| " + " | ".join(cells) + " |")
    print(f"\nMIT-BIH {args.data.name}: {ref.size} beats, {hours * 60:.1f} min; seeds {seeds}; "
          f"noise weights {weights or 'default'}; nproc {os.cpu_count()}", flush=True)


if __name__ == "__main__":
    main()
