"""Compare R-peak detectors on MIT-BIH record 100: as recorded and with ventricular ectopy.

Two suites (``--suite``):

* ``noise``: the record as recorded, clean, noisy (0 / -6 dB SNR), inverted. For each detector this reports sensitivity (Se), positive predictivity (PPV) and F1 against the
expert beat annotations (150 ms tolerance, one-to-one matching), at the native 360 Hz and after
resampling to 128 Hz (AMIGOS' rate), the median timing error of matched beats, and the speed in
seconds per hour of ECG at 128 Hz.
* ``ectopy``: ventricular beats inserted into the record with
  ``maan.datasets.ectopy.insert_ventricular_beats`` (isolated at 5 / 15 / 30 % burden, bigeminy,
  couplets), shaped by the record's one annotated ``V`` beat (``template``) or by the parametric
  model (``model``); clean, inverted, at 0 and -6 dB SNR; at 128 and 500 Hz; one insertion and
  noise seed per ``--seeds`` entry. The noise is computed on the original record and added, so
  the SNR is that of the sinus record (noise belongs to the electrodes, not to the rhythm).
  Reported per detector: the worst F1 over all cases (and which), the worst clean, 0 dB and
  -6 dB F1, the worst sensitivity for the ventricular beats alone on clean cases, the mean F1.

Two pipelines:

* ``maan``:   ``maan.features.ecg.detect_rpeaks(ecg, fs, method)`` (robust z-score, 8-20 Hz
  band-pass, polarity correction, NeuroKit2 detector, apex refinement);
* ``native``: NeuroKit2 as documented: ``nk.ecg_clean(method=m)`` (its default cleaning where the
  method has none) then ``nk.ecg_findpeaks(method=m)``; no polarity correction. ``native
  neurokit`` is NeuroKit2's default pipeline (``ecg_clean`` + ``ecg_peaks``).

Noise: ``maan.features.ecg.add_ecg_noise`` (baseline wander + bursty EMG + electrode motion,
see its docstring), added at 360 Hz, then resampled with the signal. Fixed seeds (``--seeds``);
the noisy numbers are the mean over seeds, ``min`` the worst seed.

Examples (the commands used for docs/benchmarks.md, "ECG R-peak detection")::

    .venv/bin/python benchmarks/rpeaks.py --suite ectopy
    .venv/bin/python benchmarks/rpeaks.py --suite noise

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

from maan.datasets.ectopy import (  # noqa: E402
    VENTRICULAR_PATTERNS,
    EctopicECG,
    insert_ventricular_beats,
    ventricular_template,
)
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


def load_record(path: Path, with_ventricular: bool = False):
    """(signal of lead MLII, fs, annotated beats[, annotated V beats])."""
    import wfdb

    rec = wfdb.rdrecord(str(path))
    ann = wfdb.rdann(str(path), "atr")
    lead = rec.sig_name.index("MLII") if "MLII" in rec.sig_name else 0
    ref = np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym in BEAT_SYMBOLS], dtype=np.int64)
    out = rec.p_signal[:, lead].astype(np.float64), float(rec.fs), ref
    if with_ventricular:
        out += (np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym == "V"], dtype=np.int64),)
    return out


def resample(x, fs, fs0):
    """Polyphase resampling from ``fs0`` to ``fs`` (identity when equal)."""
    if fs == fs0:
        return np.asarray(x)
    from fractions import Fraction

    fr = Fraction(int(fs), int(fs0)).limit_denominator(1000)
    return sps.resample_poly(x, fr.numerator, fr.denominator)


def ectopy_cases(x, fs0, ref, v_beats, rates=(128.0, 500.0), snrs=(0.0, -6.0), seeds=(1, 2, 3),
                 patterns=tuple(VENTRICULAR_PATTERNS), weights=None):
    """Yield (name, fs, signal, truth, is_ventricular) for the ectopy suite (see module docstring)."""
    kw = {} if weights is None else {"weights": weights}
    template = ventricular_template(x, fs0, int(v_beats[0])) if v_beats.size else None
    shapes = (("template", template), ("model", None)) if template is not None else (("model", None),)
    for seed in seeds:
        noise = {snr: add_ecg_noise(x, fs0, snr, seed=seed, **kw) - x for snr in snrs}
        for pattern in ("none",) + tuple(patterns):
            for shape, tpl in shapes[:1] if pattern == "none" else shapes:
                if pattern == "none":  # the record as recorded
                    out = EctopicECG(x, ref, np.isin(ref, v_beats))
                    shape = "recorded"
                else:
                    out = insert_ventricular_beats(x, fs0, ref, pattern, seed=seed, template=tpl,
                                                   template_fs=fs0)
                conds = {"clean": out.ecg, "inv": -out.ecg}
                conds.update({f"{snr:g}dB": out.ecg + n for snr, n in noise.items()})
                for fs in rates:
                    truth = np.round(out.rpeaks * fs / fs0).astype(np.int64)
                    for cond, sig in conds.items():
                        yield (f"{pattern}/{shape}/{cond}/{fs:g}Hz/seed{seed}", fs, resample(sig, fs, fs0),
                               truth, out.is_ventricular)


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
        rs = lambda s, fs=fs: resample(s, fs, fs0)  # noqa: E731
        r = ref if fs == fs0 else np.round(ref * fs / fs0).astype(np.int64)
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
    ap.add_argument("--suite", choices=("noise", "ectopy", "both"), default="both")
    ap.add_argument("--pipeline", choices=("maan", "native", "both"), default="both")
    ap.add_argument("--rates", default=None,
                    help="sampling rates to test (Hz; default 360,128 for noise, 128,500 for ectopy)")
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
    x, fs0, ref, v_beats = load_record(args.data, with_ventricular=True)
    snrs = [float(s) for s in args.snr.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    pipelines = ("maan", "native") if args.pipeline == "both" else (args.pipeline,)
    weights = tuple(float(w) for w in args.weights.split(",")) if args.weights else None
    # warm-up (imports, numba/pywt initialisation) so the first method is not charged for it
    run_one("maan", "neurokit", x[: int(60 * fs0)], fs0)
    if args.suite in ("ectopy", "both"):
        rates = [float(r) for r in (args.rates or "128,500").split(",")]
        run_ectopy(args, x, fs0, ref, v_beats, rates, snrs, seeds, methods, pipelines, weights)
    if args.suite in ("noise", "both"):
        rates = [float(r) for r in (args.rates or "360,128").split(",")]
        run_noise(args, x, fs0, ref, rates, snrs, seeds, methods, pipelines, weights)


def too_slow(pipeline, method, x, fs0, max_speed):
    """'' or why ``method`` is skipped: it crashes, or is slower than ``max_speed`` s/h at 128 Hz."""
    if max_speed <= 0:
        return "", float("nan")
    import neurokit2  # noqa: F401  (its import is not the detector's time)

    sig = resample(x[: int(300 * fs0)], 128.0, fs0)
    _, dt, err = run_one(pipeline, method, sig, 128.0)
    speed = dt / (300 / 3600)
    if not err and speed > max_speed:
        err = f"skipped: {speed:.1f} s/h > {max_speed:g}"
    return err, speed


def run_ectopy(args, x, fs0, ref, v_beats, rates, snrs, seeds, methods, pipelines, weights):
    """The ectopy suite: one worst-case row per pipeline and method."""
    cases = list(ectopy_cases(x, fs0, ref, v_beats, rates, snrs, seeds, weights=weights))
    hours = x.size / fs0 / 3600
    head = ["pipeline", "method", "worst F1", "worst case", "clean F1 min", "clean V Se min",
            "0dB F1 min", "-6dB F1 min", "mean F1", "s/h @128"]
    rows = []
    for pipeline in pipelines:
        for method in methods:
            if pipeline == "native" and method == "consensus":
                continue
            err, speed = too_slow(pipeline, method, x, fs0, args.max_speed)
            if err:
                print(f"# {pipeline} {method}: {err}", file=sys.stderr, flush=True)
                rows.append([pipeline, method] + ["n/a"] * (len(head) - 3) + [err[:60]])
                continue
            f1, v_se, times = {}, {}, []
            for name, fs, sig, truth, is_v in cases:
                peaks, dt, err = run_one(pipeline, method, sig, fs)
                if peaks is None:
                    break
                if fs == 128:
                    times.append(dt / hours)
                f1[name] = 100 * score(peaks, truth, fs)[2]
                v_se[name] = 100 * score(peaks, truth[is_v], fs)[0]
            if err:
                rows.append([pipeline, method] + ["n/a"] * (len(head) - 3) + [err[:60]])
                continue
            worst = min(f1, key=f1.get)

            def lowest(tag, d=f1):
                return f"{min(v for k, v in d.items() if f'/{tag}/' in k):.2f}"

            clean_v = min(v for k, v in v_se.items() if "/clean/" in k or "/inv/" in k)
            clean_f1 = min(v for k, v in f1.items() if "/clean/" in k or "/inv/" in k)
            rows.append([pipeline, method, f"{f1[worst]:.2f}", worst, f"{clean_f1:.2f}", f"{clean_v:.1f}"]
                        + [lowest(f"{snr:g}dB") for snr in snrs]
                        + [f"{np.mean(list(f1.values())):.2f}", f"{np.mean(times):.3f}"])
            print(f"# done ectopy {pipeline} {method}", file=sys.stderr, flush=True)
    head[6:8] = [f"{snr:g}dB F1 min" for snr in snrs]
    print("| " + " | ".join(head) + " |")
    print("|---|---|--:|---|" + "|".join(["--:"] * (len(head) - 4)) + "|")
    rows.sort(key=lambda r: -float(r[2]) if r[2] != "n/a" else 1e9)
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nMIT-BIH {args.data.name} with inserted ventricular beats: {len(cases)} cases "
          f"(as recorded, and {len(VENTRICULAR_PATTERNS)} patterns x template/model x clean/inv/"
          f"{'/'.join(f'{s:g} dB' for s in snrs)} x {'/'.join(f'{r:g}' for r in rates)} Hz x seeds {seeds}), "
          f"{hours * 60:.1f} min each; nproc {os.cpu_count()}\n", flush=True)


def run_noise(args, x, fs0, ref, rates, snrs, seeds, methods, pipelines, weights):
    """The noise suite: the record as recorded, one row per pipeline, method and rate."""
    cases = build_conditions(x, fs0, ref, rates, snrs, seeds, weights)
    hours = x.size / fs0 / 3600

    rows = []
    for pipeline in pipelines:
        for method in methods:
            if pipeline == "native" and method == "consensus":
                continue
            res = {}
            times = []
            err, speed = too_slow(pipeline, method, x, fs0, args.max_speed)
            if err:
                rows.append((pipeline, method, {}, speed, err))
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
