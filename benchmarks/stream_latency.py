"""Latency of `maan stream`: end of a window -> its printed prediction (p50/p99), and CPU.

A recording is replayed by `maan play` in a separate process (so the player's timing is not
disturbed by the predictions), `LiveStream` predicts on it in this process, and we report:

* latency_s: LSL clock at print - LSL timestamp of the end of the window (what the JSON line
  reports). mne-lsl's player stamps a chunk with the scheduled time of its last sample, so a
  chunk (chunk_size / sfreq = 20 ms here) can arrive stamped up to that much in the future;
* compute_s: time spent preprocessing + predicting one window (wall clock);
* CPU: process CPU time / wall time of the streaming process while streaming (100% = one core).

    python benchmarks/stream_latency.py --checkpoint RUN/folds/fold-00/maan.pt \
        --file ../shared/data/eegmat/Subject00_1.edf --count 60 --step 1
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import uuid

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, action="append")
    p.add_argument("--file", required=True)
    p.add_argument("--count", type=int, default=60)
    p.add_argument("--step", type=float, default=2.0)
    args = p.parse_args(argv)

    from maan.inference.stream import LiveStream

    name = f"maan-bench-{uuid.uuid4().hex[:8]}"
    player = subprocess.Popen([sys.executable, "-c", "import sys; from maan.inference.stream import run_play; "
                               "run_play(sys.argv[1], sys.argv[2], log=None)", args.file, name])
    compute = []
    try:
        time.sleep(1.0)
        live = LiveStream(args.checkpoint, name, step=args.step, out=open(os.devnull, "w"))
        original = live.predict_window

        def timed(data, ts):
            t = time.perf_counter()
            row = original(data, ts)
            compute.append(time.perf_counter() - t)
            return row

        live.predict_window = timed
        live._warm = True  # warm up explicitly below, outside the timed calls
        live._connect_retrying(first=True)
        original(np.random.default_rng(0).normal(0, 1e-5, (len(live.picks), live.window_samples)),
                 np.arange(1, live.window_samples + 1) / live.sfreq)
        live.stream.disconnect()
        compute.clear()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        live.run(max_predictions=args.count)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        player.terminate()
        player.wait(10)
    lat = np.asarray(live.latencies[1:], dtype=float)  # the first window waits for the buffer to fill
    comp = np.asarray(compute[1:])
    out = {"predictions": len(live.latencies), "step_s": args.step,
           "latency_p50_s": round(float(np.percentile(lat, 50)), 4), "latency_p99_s": round(float(np.percentile(lat, 99)), 4),
           "compute_p50_s": round(float(np.percentile(comp, 50)), 4), "compute_p99_s": round(float(np.percentile(comp, 99)), 4),
           "cpu_percent_of_one_core": round(100 * cpu / wall, 1), "wall_s": round(wall, 1),
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
