"""Size and speed of the MAAN and base models on this machine (not a timed test).

For every (model, width, depth) it prints one markdown row: parameters, forward FLOPs per
window (torch.utils.flop_counter: convolutions and matmuls, one multiply-add = 2 FLOPs),
training throughput (windows/s for forward + backward + Adam step at --batch-size) and
single-window inference latency (p50/p99, eval mode, torch.inference_mode; optionally
also ONNX Runtime).

    python benchmarks/model.py                      # the defaults
    python benchmarks/model.py --widths 8 16 --depths 2 3 --onnx
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode

from maan.models import (
    DEFAULT_DEPTH,
    DEFAULT_ECG_SHAPE,
    DEFAULT_EEG_SHAPE,
    DEFAULT_WIDTH,
    build_model,
)

TRAINING_GOAL = 2000.0  # windows/s, default size, CPU
LATENCY_GOAL_MS = 5.0  # p99, one window, CPU


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["maan", "base"],
                        choices=["maan", "base", "ecg-only", "eeg-only"])
    parser.add_argument("--widths", nargs="+", type=int, default=[DEFAULT_WIDTH],
                        help=f"first-level U-Net widths to measure (default {DEFAULT_WIDTH})")
    parser.add_argument("--depths", nargs="+", type=int, default=[DEFAULT_DEPTH],
                        help=f"U-Net depths to measure (default {DEFAULT_DEPTH})")
    parser.add_argument("--ecg-shape", nargs=2, type=int, default=list(DEFAULT_ECG_SHAPE),
                        metavar=("CHANNELS", "LENGTH"))
    parser.add_argument("--eeg-shape", nargs=3, type=int, default=list(DEFAULT_EEG_SHAPE),
                        metavar=("CHANNELS", "HEIGHT", "WIDTH"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=30,
                        help="timed training steps per repeat (default 30)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="training repeats; the median is reported (default 5)")
    parser.add_argument("--latency-calls", type=int, default=2000,
                        help="timed single-window calls (default 2000)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--onnx", action="store_true",
                        help="also time single-window inference with ONNX Runtime")
    return parser.parse_args(argv)


def machine_description() -> str:
    return (f"{cpu_model()}, nproc={os.cpu_count()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}, "
            f"CUDA available: {torch.cuda.is_available()} (all figures CPU)")


def load_average() -> str:
    try:
        return " / ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "unavailable"


def make_inputs(batch, ecg_shape, eeg_shape):
    return torch.randn(batch, *ecg_shape), torch.randn(batch, *eeg_shape)


def forward_flops_per_window(model, ecg_shape, eeg_shape, batch) -> float:
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*make_inputs(batch, ecg_shape, eeg_shape))
    return counter.get_total_flops() / batch


def training_throughput(model, ecg_shape, eeg_shape, batch, steps, repeats) -> float:
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_ecg, x_eeg = make_inputs(batch, ecg_shape, eeg_shape)
    labels = torch.randint(0, 2, (batch,))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x_ecg, x_eeg), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(10):
        step()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - start))
    return statistics.median(rates)


def latency_percentiles(call, calls) -> tuple[float, float]:
    for _ in range(100):
        call()
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def torch_latency(model, ecg_shape, eeg_shape, calls):
    model.eval()
    x_ecg, x_eeg = make_inputs(1, ecg_shape, eeg_shape)

    def call():
        with torch.inference_mode():
            model(x_ecg, x_eeg)

    return latency_percentiles(call, calls)


def onnx_latency(model, ecg_shape, eeg_shape, calls):
    import onnxruntime

    from maan.models import export_onnx

    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(model, Path(folder) / "model.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(path), options,
                                               providers=["CPUExecutionProvider"])
    x_ecg, x_eeg = make_inputs(1, ecg_shape, eeg_shape)
    feeds = {name: x.numpy() for name, x in (("ecg", x_ecg), ("eeg", x_eeg))
             if name in model.modalities}
    if model.mask_inputs:  # a two-modality graph also takes the modality mask
        feeds["mask"] = torch.ones(1, 2).numpy()
    return latency_percentiles(lambda: session.run(None, feeds), calls)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ecg_shape, eeg_shape = tuple(args.ecg_shape), tuple(args.eeg_shape)
    print(f"Machine: {machine_description()}")
    print(f"Load average (1/5/15 min) before: {load_average()}")
    print(f"Inputs per window: ECG {ecg_shape}, EEG {eeg_shape}; training batch "
          f"{args.batch_size}; goals: >= {TRAINING_GOAL:.0f} windows/s training, "
          f"< {LATENCY_GOAL_MS:.0f} ms p99 one-window inference\n")
    header = ["model", "width", "depth", "parameters", "forward MFLOPs/window",
              "train windows/s", "latency p50 ms", "latency p99 ms"]
    if args.onnx:
        header += ["ORT p50 ms", "ORT p99 ms"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for depth in args.depths:
        for width in args.widths:
            for name in args.models:
                torch.manual_seed(0)
                model = build_model(name, ecg_shape, eeg_shape, width=width, depth=depth)
                n_params = sum(p.numel() for p in model.parameters())
                flops = forward_flops_per_window(model, ecg_shape, eeg_shape, args.batch_size)
                rate = training_throughput(model, ecg_shape, eeg_shape, args.batch_size,
                                           args.train_steps, args.repeats)
                p50, p99 = torch_latency(model, ecg_shape, eeg_shape, args.latency_calls)
                row = [name, str(width), str(depth), f"{n_params:,}", f"{flops / 1e6:.2f}",
                       f"{rate:,.0f}", f"{p50:.2f}", f"{p99:.2f}"]
                if args.onnx:
                    ort50, ort99 = onnx_latency(model, ecg_shape, eeg_shape,
                                                args.latency_calls)
                    row += [f"{ort50:.2f}", f"{ort99:.2f}"]
                print("| " + " | ".join(row) + " |", flush=True)
    # Other processes on a small machine distort these figures; the load says how much.
    print(f"\nLoad average (1/5/15 min) after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
