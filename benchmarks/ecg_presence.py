"""QRS peak-to-noise ratio of real ECG leads and of noise-only leads (the absent-ECG check).

``maan.features.ecg.detect_rpeaks`` refuses a segment whose ratio (``qrs_noise_ratio`` in
``PRESENCE_BAND_HZ``) is under ``MIN_QRS_NOISE_RATIO``. This prints the ratio of MIT-BIH 100
(clean and with noise), of every eegmat ECG lead, and of white noise and a random walk.

Example (the command used for docs/benchmarks.md, "ECG present or not")::

    .venv/bin/python benchmarks/ecg_presence.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import maan.features.ecg as E  # noqa: E402
from rpeaks import DEFAULT_DATA, load_record  # noqa: E402


def ratio(x, fs) -> str:
    """The ratio detect_rpeaks measures (the check itself switched off)."""
    seen = {}
    original, check = E.qrs_noise_ratio, E.MIN_QRS_NOISE_RATIO
    E.qrs_noise_ratio = lambda y, p: seen.setdefault("r", original(y, p))
    E.MIN_QRS_NOISE_RATIO = 0.0
    try:
        E.detect_rpeaks(x, fs)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"refused ({exc})"
    finally:
        E.qrs_noise_ratio, E.MIN_QRS_NOISE_RATIO = original, check
    return f"{seen['r']:.1f}"


def main() -> None:
    import mne

    mne.set_log_level("ERROR")
    print(f"| lead | ratio (refused under {E.MIN_QRS_NOISE_RATIO:g}) |\n|---|--:|")
    if DEFAULT_DATA.with_suffix(".dat").exists():
        x, fs, _ = load_record(DEFAULT_DATA)
        print(f"| MIT-BIH 100 clean | {ratio(x, fs)} |")
        for snr in (0.0, -6.0, -15.0):
            print(f"| MIT-BIH 100 {snr:g} dB | {ratio(E.add_ecg_noise(x, fs, snr, seed=1), fs)} |")
    for path in sorted((ROOT / ".." / "shared" / "data" / "eegmat").glob("*.edf")):
        raw = mne.io.read_raw_edf(path, preload=True)
        print(f"| eegmat {path.stem} | {ratio(raw.get_data(picks=['ECG ECG'])[0], raw.info['sfreq'])} |")
    rng = np.random.default_rng(0)
    print(f"| white noise | {ratio(rng.standard_normal(60 * 500), 500.0)} |")
    print(f"| random walk | {ratio(np.cumsum(rng.standard_normal(60 * 500)), 500.0)} |")


if __name__ == "__main__":
    main()
