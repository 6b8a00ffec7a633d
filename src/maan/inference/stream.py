"""Live prediction from an LSL stream (``maan stream``) and recording replay (``maan play``).

``maan play FILE --name NAME`` replays any recording MNE reads as an LSL stream with mne-lsl's
:class:`~mne_lsl.player.PlayerLSL` (in SI units, as MNE holds it), for demos and tests.

``maan stream --checkpoint C --source NAME`` connects to the LSL stream NAME with mne-lsl's
:class:`~mne_lsl.stream.StreamLSL`, whose ring buffer holds one window plus a margin
(``window + 2 * step`` seconds) at the stream's rate, so memory stays bounded however long it
runs. Every ``--step`` seconds *of received data* it takes the most recent window, preprocesses
it exactly as ``maan predict --per-window`` does (the recordings reader's channel picking, unit
conversion and MNE resampling to the checkpoint's rate, then the pipeline's windows: see
:mod:`maan.inference.predict`) and prints one JSON line::

    {"time": <unix time of the prediction>, "window_start": <LSL time>, "window_end": <LSL time>,
     "latency_s": <LSL now - window_end>, "prob_<target>": P(high) or null, "pred_<target>": 0/1 or null,
     "heart_rate_bpm": ... or null, "modalities": "ecg+eeg" | "eeg" | "ecg" | "", "flags": [...]}

``window_start``/``window_end`` are LSL timestamps (``mne_lsl.lsl.local_clock`` domain) of the
window's first sample and of the end of its last sample. A window whose ECG or EEG is invalid
(NaN, no valid beats or implausible RR intervals; a flat EEG channel: an electrode pulled off)
is predicted from the modality that is valid: ``modalities`` names it and ``flags`` the other's
reason (the pipeline's reasons). A window with neither is flagged and not predicted (null
probabilities, empty ``modalities``). ``--csv FILE`` also appends each prediction to a CSV file.

Units: the stream's values are scaled to SI with each channel's ``unit_mul`` from the stream
description (mne-lsl's player streams volts with ``unit_mul`` 0; a device streaming µV declares
``unit_mul`` -6), then to µV/mV as the reader does.

``--dashboard`` also serves a live page of the predictions and an API on 127.0.0.1
(:mod:`maan.inference.dashboard`, fed by ``on_prediction``/``on_event``).

Dropouts: when no sample arrives for ``--timeout`` seconds the stream is reported on stderr
(one JSON line with ``"event"``), disconnected, and reconnected as soon as a stream of that name
appears again; the buffer is refilled (one whole window) before the next prediction, so no
window mixes data from before and after a dropout. Ctrl-C disconnects and exits with status 0.

``subject`` normalisation (checkpoints trained with ``--normalize subject``) standardises
with the valid windows seen so far in this session (at most ``--reference`` of them); until
``--min-reference`` windows have been seen, windows are flagged ``normalization_warmup`` and
not predicted. ``train`` checkpoints use their stored statistics from the first window.
"""
from __future__ import annotations

import csv
import json
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

from maan.config import check_number, modality_kind
from maan.errors import InvalidInputError, MaanError
from maan.inference.predict import Predictor, heart_rate_bpm, THRESHOLD

DEFAULT_STEP = 2.0
DEFAULT_TIMEOUT = 5.0
DEFAULT_REFERENCE = 90  # 3 minutes of 2-s steps
DEFAULT_MIN_REFERENCE = 15  # 30 s of 2-s steps
ACQUISITION_DELAY = 0.005  # s between mne-lsl's pulls from the inlet (adds at most this to the latency)
POLL = 0.005  # s between checks for new samples


def _mne_lsl():
    try:
        import mne_lsl  # noqa: F401
        from mne_lsl.lsl import local_clock
        from mne_lsl.player import PlayerLSL
        from mne_lsl.stream import StreamLSL
    except ImportError:  # pragma: no cover - a dependency of maan
        raise MaanError("live streaming needs mne-lsl: pip install mne-lsl") from None
    return PlayerLSL, StreamLSL, local_clock


# -- play --------------------------------------------------------------------------------------
def play(path, name: str, *, chunk_size: int = 10, repeat=float("inf"), log=None):
    """Start replaying ``path`` as the LSL stream ``name``; returns the started PlayerLSL
    (call ``.stop()``). ``repeat``: how many times the file is played (inf: loop)."""
    from maan.datasets.recordings import open_recording

    PlayerLSL, _, _ = _mne_lsl()
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(path, "recording not found")
    raw = open_recording(path, preload=True)
    check_number("--chunk-size", chunk_size, 1, integer=True)
    if repeat not in (None, float("inf")):
        check_number("--repeat", repeat, 1)
    n_repeat = np.inf if repeat in (None, float("inf")) else int(repeat)
    player = PlayerLSL(raw, chunk_size=int(chunk_size), n_repeat=n_repeat, name=name, source_id=name,
                       annotations=False)
    player.start()
    if log is not None:
        log(f"playing {path} as LSL stream {name!r}: {len(raw.ch_names)} channels at {raw.info['sfreq']:g} Hz, "
            f"{raw.n_times / raw.info['sfreq']:.1f} s, {'looping' if n_repeat == np.inf else f'{n_repeat} time(s)'}")
    return player


def run_play(path, name: str, *, chunk_size: int = 10, repeat=float("inf"), log=print) -> int:
    """``maan play``: replay until the file has been played ``repeat`` times or Ctrl-C."""
    player = play(path, name, chunk_size=chunk_size, repeat=repeat, log=log)
    duration = player.info["sfreq"] and player._raw.n_times / player.info["sfreq"]  # noqa: SLF001
    deadline = None if repeat in (None, float("inf")) else time.monotonic() + duration * int(repeat) + 1.0
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        player.stop()
    if log is not None:
        log(f"stopped {name!r}")
    return 0


# -- stream ------------------------------------------------------------------------------------
class LiveStream:
    """Predictions on the most recent window of an LSL stream every ``step`` seconds of data.

    ``run(max_predictions=None, max_seconds=None)`` loops until Ctrl-C (or the limits) and
    returns 0. ``on_prediction(row, window)`` (optional) gets every printed row and the window's
    samples (channels x samples, SI units, EEG channels then ECG, at the stream's rate); then
    ``last_inputs`` holds that window's preprocessed record and model inputs (for the dashboard).
    ``on_event(event)`` (optional) gets every event printed on stderr (connected, dropout...).
    """

    def __init__(self, checkpoints, source: str, *, step: float = DEFAULT_STEP, timeout: float = DEFAULT_TIMEOUT,
                 csv_path=None, out=None, err=None, reference: int = DEFAULT_REFERENCE,
                 min_reference: int = DEFAULT_MIN_REFERENCE, on_prediction=None, connect_timeout: float = 10.0,
                 on_event=None):
        self.predictor = checkpoints if isinstance(checkpoints, Predictor) else Predictor(checkpoints)
        check_number("--step", step, 0, strict=True)
        check_number("--timeout", timeout, 0, strict=True)
        check_number("--connect-timeout", connect_timeout, 0, strict=True)
        check_number("--reference", reference, 1, integer=True)
        check_number("--min-reference", min_reference, 1, integer=True)
        self.source = source
        self.step = float(step)
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.csv_path = None if csv_path is None else Path(csv_path)
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.on_prediction = on_prediction
        self.on_event = on_event
        self.last_inputs: dict = {}
        self.min_reference = int(min_reference)
        self.reference = deque(maxlen=max(int(reference), 1))  # (ecg, eeg, mask) of windows seen (subject mode)
        self.subject_mode = any(m == "subject" for m in self.predictor.normalize.values())
        self.window_seconds = self.predictor.window_seconds
        self.bufsize = self.window_seconds + 2 * self.step
        self.stream = None
        self.n_predictions = 0
        self.latencies: list = []

    # -- reporting -----------------------------------------------------------------------------
    def _event(self, event: str, **extra) -> None:
        record = {"event": event, "source": self.source, "time": round(time.time(), 3), **extra}
        print(json.dumps(record), file=self.err, flush=True)
        if self.on_event is not None:
            self.on_event(record)

    def _columns(self) -> list:
        t = self.predictor.targets
        return (["time", "window_start", "window_end", "latency_s"] + [f"prob_{x}" for x in t]
                + [f"pred_{x}" for x in t] + ["heart_rate_bpm", "modalities", "flags"])

    def _write_csv(self, row: dict) -> None:
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        with open(self.csv_path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._columns(), lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerow({k: ("" if row.get(k) is None else ";".join(row[k]) if k == "flags" else row[k])
                             for k in self._columns()})

    # -- connection ----------------------------------------------------------------------------
    def _connect(self) -> None:
        _, StreamLSL, _ = _mne_lsl()
        stream = StreamLSL(bufsize=self.bufsize, name=self.source)
        stream.connect(timeout=self.connect_timeout, acquisition_delay=ACQUISITION_DELAY)
        try:
            names = list(stream.ch_names)
            ecg, eeg = self.predictor.channels(names, stream.get_channel_types(), f"LSL stream {self.source!r}")
        except Exception:
            stream.disconnect()
            raise
        self.picks = [names.index(c) for c in (*eeg, ecg)]
        self.ecg_channel, self.eeg_channels = ecg, eeg
        self.sfreq = float(stream.info["sfreq"])
        if not self.sfreq > 0:
            stream.disconnect()
            raise MaanError(f"LSL stream {self.source!r} has an irregular rate; maan stream needs a regular one")
        unit_mul = np.array([stream.info["chs"][i].get("unit_mul", 0) for i in self.picks], dtype=np.float64)
        self.scale = (10.0 ** unit_mul)[:, None]
        self.window_samples = int(round(self.window_seconds * self.sfreq))
        self.step_samples = max(int(round(self.step * self.sfreq)), 1)
        import mne

        self.info = mne.create_info([names[i] for i in self.picks], self.sfreq,
                                    ["eeg"] * len(eeg) + ["ecg"], verbose="error")
        self.stream = stream
        if not getattr(self, "_warm", False):  # imports and first-call costs, before the first window
            rng = np.random.default_rng(0)
            try:
                self.predict_window(rng.normal(0, 1e-5, (len(self.picks), self.window_samples)),
                                    np.arange(1, self.window_samples + 1) / self.sfreq)
            except Exception:  # noqa: BLE001 - a warm-up only
                pass
            self.reference.clear()
            self._warm = True

    def _connect_retrying(self, first: bool) -> None:
        while True:
            try:
                self._connect()
                self._event("connected" if first else "reconnected", sfreq=self.sfreq,
                            channels=len(self.picks), buffer_s=self.bufsize)
                return
            except RuntimeError as exc:  # mne-lsl: no stream of that name within the timeout
                if first:
                    raise MaanError(f"no LSL stream named {self.source!r} found within {self.connect_timeout:g} s "
                                    f"({str(exc).splitlines()[0] if str(exc) else 'timeout'})") from None
                self._event("waiting", reason="stream not found; retrying")

    def _disconnect(self) -> None:
        if self.stream is not None:
            try:
                self.stream.disconnect()
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.stream = None

    # -- one prediction ------------------------------------------------------------------------
    def predict_window(self, data: np.ndarray, timestamps: np.ndarray) -> dict:
        """The JSON row of one window (channels x samples in the stream's units)."""
        import mne

        _, _, local_clock = _mne_lsl()
        window = np.asarray(data, dtype=np.float64) * self.scale
        raw = mne.io.RawArray(window, self.info, verbose="error")
        record = self.predictor.record(raw, where=f"LSL stream {self.source!r}", copy=False)
        w = self.predictor.windows(record, self.window_seconds)
        reason = str(w.flags[0]) if len(w.reasons) else "nan"
        mask = w.modality_mask[:1] if len(w.reasons) else np.zeros((1, 2), bool)
        flags = [reason] if reason else []
        kind = str(modality_kind(mask)[0])
        targets = self.predictor.targets
        probs = {t: None for t in targets}
        usable = bool(mask.any())
        ref = None
        if usable and self.subject_mode:
            self.reference.append((w.ecg[0], w.eeg[0], mask[0]))
            if len(self.reference) < self.min_reference:
                flags.append("normalization_warmup")
                usable = False
        if usable:
            if self.subject_mode:
                ref = tuple(np.stack([r[i] for r in self.reference]) for i in range(3))
            p = self.predictor.probabilities(w.ecg[:1], w.eeg[:1], mask, reference=ref)
            probs = {t: None if not np.isfinite(p[t][0]) else float(p[t][0]) for t in targets}
        hr = float(heart_rate_bpm(w.ecg[:1])[0]) if len(w.ecg) else float("nan")
        end = float(timestamps[-1]) + 1.0 / self.sfreq
        row = {"time": round(time.time(), 3), "window_start": round(float(timestamps[0]), 4),
               "window_end": round(end, 4), "latency_s": None}
        row.update({f"prob_{t}": None if probs[t] is None else round(probs[t], 6) for t in targets})
        row.update({f"pred_{t}": None if probs[t] is None else int(probs[t] >= THRESHOLD) for t in targets})
        row["heart_rate_bpm"] = None if not np.isfinite(hr) else round(hr, 2)
        row["modalities"] = kind
        row["flags"] = flags
        row["latency_s"] = round(local_clock() - end, 4)
        self.last_inputs = {"record": record, "ecg": w.ecg[:1], "eeg": w.eeg[:1], "mask": mask,
                            "reference": ref, "predicted": usable}
        return row

    def _emit(self, row: dict, window: np.ndarray) -> None:
        print(json.dumps(row), file=self.out, flush=True)
        self.latencies.append(row["latency_s"])
        if self.csv_path is not None:
            self._write_csv(row)
        if self.on_prediction is not None:
            self.on_prediction(row, window)
        self.n_predictions += 1

    # -- loop ----------------------------------------------------------------------------------
    def run(self, max_predictions: int | None = None, max_seconds: float | None = None) -> int:
        check_number("--count", max_predictions, 1, integer=True, optional=True)
        check_number("--duration", max_seconds, 0, strict=True, optional=True)
        started = time.monotonic()
        try:
            self._connect_retrying(first=True)
            last_data, seen = time.monotonic(), 0
            while True:
                if max_predictions is not None and self.n_predictions >= max_predictions:
                    break
                if max_seconds is not None and time.monotonic() - started > max_seconds:
                    break
                try:
                    new = self.stream.n_new_samples if self.stream.connected else None
                except Exception:  # noqa: BLE001 - mne-lsl resets a broken stream
                    new = None
                if new is None:  # the acquisition thread lost the stream
                    self._event("dropout", reason="stream lost; reconnecting")
                    self._disconnect()
                    self._connect_retrying(first=False)
                    last_data, seen = time.monotonic(), 0
                    continue
                if new > seen:  # the counter only resets when the buffer is read
                    last_data = time.monotonic()
                seen = new
                if new >= self.step_samples:
                    seen = 0
                    data, ts = self.stream.get_data(winsize=self.window_samples / self.sfreq, picks=self.picks)
                    data, ts = np.array(data, dtype=np.float64), np.array(ts)
                    # zero timestamps: the ring buffer does not hold a whole window yet
                    if data.shape[1] == self.window_samples and ts[0] > 0:
                        row = self.predict_window(data, ts)
                        self._emit(row, data * self.scale)
                    continue
                if time.monotonic() - last_data > self.timeout:
                    self._event("dropout", reason=f"no sample for {self.timeout:g} s; reconnecting")
                    self._disconnect()
                    self._connect_retrying(first=False)
                    last_data, seen = time.monotonic(), 0
                    continue
                time.sleep(POLL)
        except KeyboardInterrupt:
            self._event("stopped", reason="interrupted", predictions=self.n_predictions)
        finally:
            self._disconnect()
        return 0
