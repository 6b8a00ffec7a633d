"""The ``predict``, ``stream`` and ``play`` subcommands of ``maan``: checkpoints on new recordings.

``maan.cli`` registers them with ``add_commands(sub, _Parser)``; each handler takes the parsed
arguments and returns an exit status; user errors are raised as MaanError (one stderr line,
exit 2, by the CLI).
"""
from __future__ import annotations

import argparse
import math
import sys

from maan.errors import MaanError


def _step(value: str) -> float:
    try:
        step = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not (step > 0 and math.isfinite(step)):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {value!r}")
    return step


def cmd_predict(args) -> int:
    from maan.inference.predict import Predictor, describe, predict

    predictor = Predictor(args.checkpoint)
    if not args.quiet:
        print(describe(predictor), file=sys.stderr)
    if args.normalize_with and "subject" not in predictor.normalize.values() and not args.quiet:
        print("maan predict: note: --normalize-with is ignored, the checkpoints use their training "
              "statistics (--recipe paper)", file=sys.stderr)
    result = predict(predictor, args.input, step=args.step, per_window=args.per_window,
                     normalize_with=args.normalize_with or None)
    partial = sum(1 for m in result.modalities if m in ("ecg", "eeg"))
    unpredicted = sum(1 for i in range(len(result)) if any(math.isnan(result.prob[t][i]) for t in result.targets))
    if args.out:
        result.to_csv(args.out)
    else:
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=result.columns, lineterminator="\n")
        writer.writeheader()
        for row in result.rows():
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    if not args.quiet:
        print(f"{len(result)} windows from {len(args.input)} file(s), {partial} with one valid modality, "
              f"{unpredicted} not predicted"
              + (f"; predictions: {args.out}" if args.out else ""), file=sys.stderr)
    return 0


def cmd_stream(args) -> int:
    from maan.inference.stream import LiveStream

    if not args.dashboard and (args.port is not None or args.host is not None or args.token is not None):
        raise MaanError("--port, --host and --token apply to --dashboard only")
    live = LiveStream(args.checkpoint, args.source, step=args.step, timeout=args.timeout, csv_path=args.csv,
                      reference=args.reference, min_reference=args.min_reference,
                      connect_timeout=args.connect_timeout)
    if not args.dashboard:
        return live.run(max_predictions=args.count, max_seconds=args.duration)
    from maan.inference import dashboard as dash

    dash.require()
    host = args.host or dash.DEFAULT_HOST
    board = dash.Dashboard(live.predictor, args.source, args.checkpoint, step=args.step, host=host,
                           port=dash.DEFAULT_PORT if args.port is None else args.port, token=args.token)
    if not dash.is_loopback(host):
        print(f"maan stream: warning: the dashboard on {host} is reachable beyond this machine; every request "
              "needs the token", file=sys.stderr)
    board.start()
    try:
        board.attach(live)
        live._event("dashboard", url=board.url)  # noqa: SLF001 - the stream's own stderr event line
        return live.run(max_predictions=args.count, max_seconds=args.duration)
    finally:
        board.stop()


def cmd_play(args) -> int:
    from pathlib import Path

    from maan.inference.stream import run_play

    name = args.name or Path(args.file).stem
    log = (lambda msg: print(msg, file=sys.stderr)) if not args.quiet else None
    return run_play(args.file, name, chunk_size=args.chunk_size, repeat=args.repeat, log=log)


def add_commands(sub, parser_class=argparse.ArgumentParser) -> None:
    """Register predict, stream and play on an argparse subparsers object."""
    from maan.inference.stream import DEFAULT_MIN_REFERENCE, DEFAULT_REFERENCE, DEFAULT_STEP, DEFAULT_TIMEOUT
    from maan.inference.dashboard import DEFAULT_PORT  # importable without the dashboard extra

    p = sub.add_parser("predict", help="per-window predictions of checkpoints on recordings",
                       description="Apply checkpoints (one per target, from train or cv) to recordings MNE reads "
                       "(EDF, BDF, FIF, BrainVision...): the checkpoint's preprocessing (rate, channels, bands, "
                       "window, normalisation) is repeated exactly. Writes one row per window: file, window "
                       "start/end (s), prob_<target>, pred_<target>, heart_rate_bpm, modalities, flags (a window whose "
                       "ECG or EEG is invalid is predicted from the other and flagged; with neither, it is not "
                       "predicted). Checkpoints trained with "
                       "--recipe cross-subject standardise each file with its own windows (transductive).")
    p.add_argument("--checkpoint", required=True, action="append", metavar="PT",
                   help="NAME.pt (with NAME.json) or its folder; repeat for several targets")
    p.add_argument("--input", required=True, nargs="+", metavar="FILE", help="recording(s)")
    p.add_argument("--out", default=None, metavar="CSV", help="output CSV (default: print to stdout)")
    p.add_argument("--step", type=_step, default=None, metavar="S",
                   help="seconds between window starts (default: the training store's step)")
    p.add_argument("--per-window", action="store_true",
                   help="resample and filter every window alone, as maan stream does (default: the whole "
                        "file at once, as maan preprocess does)")
    p.add_argument("--normalize-with", nargs="+", default=None, metavar="FILE",
                   help="checkpoints trained with --recipe cross-subject: standardise every input with the valid "
                        "windows of these recordings of the same subject (e.g. its rest and task recordings "
                        "together) instead of each input's own windows; needed when an input holds one "
                        "condition only")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("stream", help="live predictions from an LSL stream, one JSON line per step",
                       description="Connect to an LSL stream (mne-lsl) holding the checkpoint's ECG and EEG "
                       "channels and, every --step seconds of data, predict on the most recent window; print one "
                       "JSON line per prediction (time, window_start, window_end in LSL time, latency_s, "
                       "prob_<target>, pred_<target>, heart_rate_bpm, modalities, flags). Bounded memory (a ring buffer of "
                       "one window plus a margin); a stream that stops is reported on stderr and reconnected; "
                       "Ctrl-C exits cleanly.")
    p.add_argument("--checkpoint", required=True, action="append", metavar="PT",
                   help="NAME.pt (with NAME.json) or its folder; repeat for several targets")
    p.add_argument("--source", required=True, metavar="NAME", help="LSL stream name (e.g. from maan play --name)")
    p.add_argument("--step", type=_step, default=DEFAULT_STEP, metavar="S",
                   help="seconds of data between predictions (default: %(default)s)")
    p.add_argument("--csv", default=None, metavar="FILE", help="also append every prediction to this CSV file")
    p.add_argument("--timeout", type=_step, default=DEFAULT_TIMEOUT, metavar="S",
                   help="seconds without data before the stream is reported and reconnected (default: %(default)s)")
    p.add_argument("--connect-timeout", type=_step, default=10.0, metavar="S",
                   help="seconds to wait for the stream at start (default: %(default)s)")
    p.add_argument("--reference", type=int, default=DEFAULT_REFERENCE, metavar="N",
                   help="--recipe cross-subject checkpoints: standardise with the last N valid windows "
                        "(default: %(default)s)")
    p.add_argument("--min-reference", type=int, default=DEFAULT_MIN_REFERENCE, metavar="N",
                   help="--recipe cross-subject checkpoints: windows seen before the first prediction "
                        "(default: %(default)s)")
    p.add_argument("--count", type=int, default=None, metavar="N", help="stop after N predictions")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--dashboard", action="store_true",
                   help="also serve a live page at http://127.0.0.1:PORT/ and its API (/api/latest, "
                        "/api/history?seconds=N); needs pip install 'maan[dashboard]'")
    p.add_argument("--port", type=int, default=None, metavar="PORT",
                   help=f"dashboard port (default: {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--host", default=None, metavar="ADDR",
                   help="dashboard address (default: 127.0.0.1, this machine only); another needs --token")
    p.add_argument("--token", default=None, metavar="SECRET", help="dashboard: every request must carry "
                   "?token=SECRET or 'Authorization: Bearer SECRET'")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("play", help="replay a recording as an LSL stream (for demos and tests)",
                       description="Replay any recording MNE reads as an LSL stream with mne-lsl's player, in real "
                       "time, in SI units; stops after --repeat plays or on Ctrl-C.")
    p.add_argument("file", metavar="FILE", help="recording (EDF, BDF, FIF, BrainVision...)")
    p.add_argument("--name", default=None, metavar="NAME", help="LSL stream name (default: the file's stem)")
    p.add_argument("--chunk-size", type=int, default=10, metavar="N",
                   help="samples pushed at once (default: %(default)s)")
    p.add_argument("--repeat", type=float, default=float("inf"), metavar="N",
                   help="times the file is played (default: loop until Ctrl-C)")
    p.add_argument("-q", "--quiet", action="store_true", help="no start/stop messages")
    p.set_defaults(func=cmd_play)
