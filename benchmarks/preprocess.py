"""Preprocessing benchmark (issue 3, section 7): whole pipeline and DE throughput.

Writes (once, cached) an AMIGOS-scale synthetic cohort, then in one run measures:
* the whole pipeline (read -> windows -> ECG -> EEG -> store) in a child process: wall time,
  hours of signal per second and peak resident memory of the whole process tree;
* DE throughput in 10-s 14-channel windows per second: TorchEEG's BandDifferentialEntropy
  applied per window (the common practice; the anchor), maan's per-window
  ``differential_entropy``, and maan's pipeline path (each continuous trial filtered once),
  with both estimators. Ratios are against the anchor in the same run.

    python benchmarks/preprocess.py                 # 40 subjects, full scale
    python benchmarks/preprocess.py --subjects 2    # smoke run
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TreeMemorySampler, machine  # noqa: E402


def ensure_cohort(folder: Path, subjects: int, seed: int) -> float:
    from maan.datasets import synth_cohort
    from maan.datasets.synthetic import cohort_written

    if cohort_written(folder, "amigos", subjects, seed):
        return 0.0
    start = time.perf_counter()
    synth_cohort("amigos", folder, n_subjects=subjects, seed=seed)
    return time.perf_counter() - start


def run_pipeline(data: Path, jobs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "features"
        cmd = [sys.executable, "-m", "maan", "preprocess", "--dataset", "amigos", "--data", str(data),
               "--out", str(out), "--jobs", str(jobs), "--quiet"]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with TreeMemorySampler(proc.pid) as memory:
            stdout, stderr = proc.communicate()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"preprocess failed: {stderr.strip()}")
        manifest = json.loads((out / "manifest.json").read_text())
    return {"wall_s": wall, "peak_mib": memory.peak_kib / 1024, "hours": manifest["signal_hours"],
            "windows": manifest["windows"], "dropped": manifest["dropped"], "subjects": manifest["n_subjects"]}


def de_throughput(data: Path, n_windows: int, with_torcheeg: bool) -> dict:
    from maan.config import BANDS
    from maan.datasets.amigos import list_amigos_subjects
    from maan.features.eeg import de_subwindows, differential_entropy

    # Long (14-24 min) trials of the first subjects: the real mix is dominated by them.
    segments = []
    for source in list_amigos_subjects(data):
        for record in source.load():
            eeg = record.eeg.data
            if np.isfinite(eeg).all():
                segments.append(eeg)
        if sum(s.shape[1] // 1280 for s in segments) >= n_windows:
            break
    windows = np.concatenate([s[:, : s.shape[1] // 1280 * 1280].reshape(14, -1, 1280).transpose(1, 0, 2)
                              for s in segments])[:n_windows]
    n = len(windows)
    results = {}

    def timed(name, fn, count):
        fn()  # warm-up (caches, imports)
        start = time.perf_counter()
        fn()
        results[name] = count / (time.perf_counter() - start)

    if with_torcheeg:
        from torcheeg.transforms import BandDifferentialEntropy

        transform = BandDifferentialEntropy(sampling_rate=128, band_dict={k: list(v) for k, v in BANDS.items()})
        subset = windows[: min(n, 200)]
        timed("TorchEEG BandDifferentialEntropy, per window", lambda: [transform(eeg=w) for w in subset], len(subset))
    timed("maan differential_entropy, per window (fft)", lambda: differential_entropy(windows, 128.0), n)

    def continuous(method):
        total = 0
        for seg in segments:
            starts = np.arange(0, seg.shape[1] - 1280 + 1, 1280)
            de_subwindows(seg, 128.0, starts, 1280, 128, method=method)
            total += len(starts)
        return total

    n_cont = sum((s.shape[1] - 1280) // 1280 + 1 for s in segments)
    timed("maan pipeline path, trial filtered once (fft, default)", lambda: continuous("fft"), n_cont)
    timed("maan pipeline path, trial filtered once (butter sosfiltfilt)", lambda: continuous("butter"), n_cont)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--workdir", default=str(Path(__file__).resolve().parent / ".cache"),
                        help="where the synthetic cohort is cached (default: benchmarks/.cache)")
    parser.add_argument("--de-windows", type=int, default=600, help="windows for the DE throughput test")
    parser.add_argument("--no-torcheeg", action="store_true", help="skip the TorchEEG anchor")
    parser.add_argument("--skip-pipeline", action="store_true", help="only the DE throughput")
    args = parser.parse_args()

    data = Path(args.workdir) / f"amigos-{args.subjects}-seed{args.seed}"
    synth_s = ensure_cohort(data, args.subjects, args.seed)
    print(f"machine: {machine()}")
    if synth_s:
        print(f"synthetic cohort written in {synth_s:.1f} s to {data}")
    if not args.skip_pipeline:
        r = run_pipeline(data, args.jobs)
        print(f"\n| pipeline ({r['subjects']} subjects, jobs={args.jobs}) | value |\n|---|---|")
        print(f"| signal | {r['hours']:.1f} h of 17-channel 128-Hz signal |")
        print(f"| wall time | {r['wall_s']:.1f} s |")
        print(f"| throughput | {r['hours'] / r['wall_s'] * 3600:.0f} s of signal per s ({r['hours'] / r['wall_s']:.2f} h/s) |")
        print(f"| peak memory (process tree) | {r['peak_mib']:.0f} MiB |")
        print(f"| windows kept / dropped | {r['windows']} / {sum(r['dropped'].values())} {r['dropped']} |")
    de = de_throughput(data, args.de_windows, not args.no_torcheeg)
    anchor = de.get("TorchEEG BandDifferentialEntropy, per window")
    print("\n| DE estimator (10-s, 14-channel windows) | windows/s | vs TorchEEG |\n|---|---|---|")
    for name, rate in de.items():
        ratio = f"{rate / anchor:.1f}x" if anchor else "n/a"
        print(f"| {name} | {rate:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
