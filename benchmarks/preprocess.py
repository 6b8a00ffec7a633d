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
    python benchmarks/preprocess.py --dataset mahnob --subjects 30   # MAHNOB-HCI-sized

``--dataset mahnob`` writes a MAHNOB-HCI-sized synthetic ``Sessions`` folder (20 rated clips of
the released lengths, 35-117 s, plus 30-s baselines and 2 neutral sessions per participant,
47-channel 256-Hz BDF files) and measures the whole pipeline plus CPU time per window and
where it goes (BDF read, resampling, ECG lead choice, R-peaks, DE, store: CPU time of two
participants in this process). The DE throughput test is AMIGOS's only.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TreeMemorySampler, machine  # noqa: E402


def ensure_cohort(folder: Path, subjects: int, seed: int, dataset: str = "amigos") -> float:
    from maan.datasets import synth_cohort
    from maan.datasets.synthetic import cohort_written

    if dataset == "mahnob":
        from maan.config import MAHNOB_N_TRIALS
        from maan.datasets.synthetic_mahnob import DEFAULT_MAHNOB_NEUTRAL_SESSIONS

        sessions = folder / "Sessions"
        expected = subjects * (MAHNOB_N_TRIALS + DEFAULT_MAHNOB_NEUTRAL_SESSIONS)
        if sessions.is_dir() and sum(1 for _ in sessions.iterdir()) == expected:
            return 0.0
    elif cohort_written(folder, "amigos", subjects, seed):
        return 0.0
    start = time.perf_counter()
    synth_cohort(dataset, folder, n_subjects=subjects, seed=seed)
    return time.perf_counter() - start


def run_pipeline(data: Path, jobs: int, dataset: str = "amigos") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "features"
        cmd = [sys.executable, "-m", "maan", "preprocess", "--dataset", dataset, "--data", str(data),
               "--out", str(out), "--jobs", str(jobs), "--quiet"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with TreeMemorySampler(proc.pid) as memory:
            stdout, stderr = proc.communicate()
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"preprocess failed: {stderr.strip()}")
        manifest = json.loads((out / "manifest.json").read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "peak_mib": memory.peak_kib / 1024, "hours": manifest["signal_hours"],
            "windows": manifest["windows"], "dropped": manifest["dropped"], "subjects": manifest["n_subjects"],
            "command": " ".join(["maan", *cmd[3:]])}


def _stages(dataset: str = "mahnob"):
    """(stage, owner, attribute) of the functions whose CPU time makes up each stage of the
    dataset's pipeline (none calls another)."""
    import mne

    from maan.datasets import amigos, recordings
    from maan.features import ecg
    from maan.preprocessing import pipeline, store

    if dataset == "amigos":
        return (
            ("read the .mat file (checked, SciPy)", amigos, "_load_mat"),
            ("R-peaks and RR windows (both leads judged, the better one used)", pipeline, "ecg_rr_windows"),
            ("DE maps (14 channels x 4 bands x 10 sub-windows)", pipeline, "eeg_de_windows"),
            ("input fingerprint (SHA-256 of the file, for resumes)", pipeline, "_fingerprints"),
            ("store (HDF5 write, manifest)", store.FeatureStoreWriter, "write_subject"),
        )
    return (
        ("BDF read (MNE: header, Status events, samples)", recordings, "open_recording"),
        ("BDF read (MNE: header, Status events, samples)", mne, "find_events"),
        ("BDF read (MNE: header, Status events, samples)", mne.io.BaseRaw, "load_data"),
        ("resample 256 -> 128 Hz (MNE)", mne.io.BaseRaw, "resample"),
        ("ECG lead choice (beat quality of EXG1-EXG3)", ecg, "lead_quality"),
        ("R-peaks and RR windows (chosen lead)", pipeline, "ecg_rr_windows"),
        ("DE maps (32 channels x 4 bands x 10 sub-windows)", pipeline, "eeg_de_windows"),
        ("store (HDF5 write, manifest)", store.FeatureStoreWriter, "write_subject"),
    )


def stage_seconds(data: Path, subjects: int, dataset: str = "mahnob") -> tuple[dict, float, int]:
    """CPU seconds per stage, total CPU seconds and windows of ``subjects`` participants,
    in this process (each stage's functions wrapped with a CPU-time counter)."""
    from maan.preprocessing.pipeline import PreprocessConfig, extract_subject, list_subjects
    from maan.preprocessing.store import FeatureStoreWriter

    import h5py  # noqa: F401  (imports are paid once per worker: not a stage's time)
    import neurokit2  # noqa: F401

    seconds: dict[str, float] = {}
    originals = []

    def counted(stage, fn):
        def wrapper(*args, **kwargs):
            begin = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[stage] = seconds.get(stage, 0.0) + time.process_time() - begin
        return wrapper

    for stage, owner, name in _stages(dataset):
        originals.append((owner, name, getattr(owner, name)))
        setattr(owner, name, counted(stage, originals[-1][2]))
    config = PreprocessConfig(dataset=dataset)
    windows = 0
    try:
        sources = list_subjects(dataset, data, config)[:subjects]
        with tempfile.TemporaryDirectory() as tmp:
            writer = FeatureStoreWriter(Path(tmp) / "f", config.to_dict(), {"dataset": dataset})
            start = time.process_time()
            for source in sources:
                features, _ = extract_subject(source, config)
                writer.write_subject(features)
                windows += len(features.trial)
            total = time.process_time() - start
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    return seconds, total, windows


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


def torcheeg_amigos(data: Path, subjects: int) -> tuple[float, int]:
    """CPU seconds and windows of TorchEEG's ``AMIGOSDataset`` (10-s windows, no overlap,
    ``BandDifferentialEntropy``; its default 16 short-video trials, EEG only) on the first
    ``subjects`` files of the cohort, in this process (``num_worker=0``)."""
    from torcheeg import transforms
    from torcheeg.datasets import AMIGOSDataset

    from maan.config import BANDS

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "amigos"
        root.mkdir()
        for path in sorted(data.glob("Data_Preprocessed_P*.mat"))[:subjects]:
            (root / path.name).symlink_to(path.resolve())
        start = time.process_time()
        dataset = AMIGOSDataset(root_path=str(root), io_path=str(Path(tmp) / "io"), chunk_size=1280, overlap=0,
                                num_worker=0, verbose=False,
                                offline_transform=transforms.BandDifferentialEntropy(
                                    sampling_rate=128, band_dict={k: list(v) for k, v in BANDS.items()}),
                                label_transform=transforms.Select("arousal"))
        return time.process_time() - start, len(dataset)


def end_to_end(data: Path, subjects: int, with_torcheeg: bool) -> None:
    seconds, total, windows = stage_seconds(data, subjects, "amigos")
    maan_ms = 1000 * total / windows
    print(f"\n| end to end, {subjects} subjects, one process | CPU ms per window | vs TorchEEG |\n|---|---|---|")
    anchor_ms = None
    if with_torcheeg:
        t_s, t_windows = torcheeg_amigos(data, subjects)
        anchor_ms = 1000 * t_s / t_windows
        print(f"| TorchEEG AMIGOSDataset + BandDifferentialEntropy (16 trials, EEG only, {t_windows} windows) | "
              f"{anchor_ms:.1f} | 1.0x |")
    ratio = f"{anchor_ms / maan_ms:.1f}x" if anchor_ms else "n/a"
    print(f"| maan preprocess (20 trials, ECG and EEG, {windows} windows) | {maan_ms:.2f} | {ratio} |")
    print("\n| where maan's CPU time goes | ms per window | share |\n|---|---|---|")
    for stage, s in seconds.items():
        print(f"| {stage} | {1000 * s / windows:.2f} | {s / total:.0%} |")
    rest = total - sum(seconds.values())
    print(f"| other (windows, checks, bookkeeping) | {1000 * rest / windows:.2f} | {rest / total:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("amigos", "mahnob"), default="amigos",
                        help="cohort format (default: %(default)s)")
    parser.add_argument("--subjects", type=int, default=None, help="default: 40 (amigos), 30 (mahnob)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--workdir", default=str(Path(__file__).resolve().parent / ".cache"),
                        help="where the synthetic cohort is cached (default: benchmarks/.cache)")
    parser.add_argument("--de-windows", type=int, default=600, help="windows for the DE throughput test")
    parser.add_argument("--no-torcheeg", action="store_true", help="skip the TorchEEG anchor")
    parser.add_argument("--skip-pipeline", action="store_true", help="only the DE throughput")
    parser.add_argument("--e2e-subjects", type=int, default=3,
                        help="subjects of the one-process end-to-end comparison (default: %(default)s)")
    args = parser.parse_args()

    subjects = args.subjects or (30 if args.dataset == "mahnob" else 40)
    data = Path(args.workdir) / f"{args.dataset}-{subjects}-seed{args.seed}"
    synth_s = ensure_cohort(data, subjects, args.seed, args.dataset)
    print(f"machine: {machine()}")
    if synth_s:
        print(f"synthetic cohort written in {synth_s:.1f} s to {data}")
    if args.dataset == "mahnob":
        return mahnob_main(data, args)
    if not args.skip_pipeline:
        r = run_pipeline(data, args.jobs)
        print(f"\n| pipeline ({r['subjects']} subjects, jobs={args.jobs}) | value |\n|---|---|")
        print(f"| signal | {r['hours']:.1f} h of 17-channel 128-Hz signal |")
        print(f"| wall time | {r['wall_s']:.1f} s |")
        print(f"| throughput | {r['hours'] / r['wall_s'] * 3600:.0f} s of signal per s ({r['hours'] / r['wall_s']:.2f} h/s) |")
        print(f"| peak memory (process tree) | {r['peak_mib']:.0f} MiB |")
        print(f"| windows kept / dropped | {r['windows']} / {sum(r['dropped'].values())} {r['dropped']} |")
        end_to_end(data, args.e2e_subjects, not args.no_torcheeg)
    de = de_throughput(data, args.de_windows, not args.no_torcheeg)
    anchor = de.get("TorchEEG BandDifferentialEntropy, per window")
    print("\n| DE estimator (10-s, 14-channel windows) | windows/s | vs TorchEEG |\n|---|---|---|")
    for name, rate in de.items():
        ratio = f"{rate / anchor:.1f}x" if anchor else "n/a"
        print(f"| {name} | {rate:.0f} | {ratio} |")


def mahnob_main(data: Path, args) -> None:
    if not args.skip_pipeline:
        r = run_pipeline(data, args.jobs, "mahnob")
        print(f"\ncommand: {r['command']}")
        print(f"\n| pipeline ({r['subjects']} participants, jobs={args.jobs}) | value |\n|---|---|")
        print(f"| clips | {r['hours']:.2f} h of 32 EEG + 3 ECG channels (stimulus segments) |")
        print(f"| wall time | {r['wall_s']:.1f} s |")
        print(f"| windows kept / dropped | {r['windows']} / {sum(r['dropped'].values())} {r['dropped']} |")
        print(f"| windows per second (wall) | {r['windows'] / r['wall_s']:.1f} |")
        print(f"| CPU per window (all processes) | {1000 * r['cpu_s'] / r['windows']:.1f} ms |")
        print(f"| peak memory (process tree) | {r['peak_mib']:.0f} MiB |")
    seconds, total, windows = stage_seconds(data, 2)
    print(f"\n| where the CPU time goes (2 participants, one process: {1000 * total / windows:.1f} ms per window) "
          f"| ms per window | share |\n|---|---|---|")
    for stage, s in seconds.items():
        print(f"| {stage} | {1000 * s / windows:.1f} | {s / total:.0%} |")
    rest = total - sum(seconds.values())
    print(f"| other (session.xml, windows, bookkeeping) | {1000 * rest / windows:.1f} | {rest / total:.0%} |")


if __name__ == "__main__":
    main()
