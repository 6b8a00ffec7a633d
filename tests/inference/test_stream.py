"""maan play + maan stream over LSL on localhost: streamed predictions equal maan predict.

One real eegmat recording is replayed with mne-lsl's player under a unique stream name and
streamed with a checkpoint trained in the test (tests/inference/conftest.py's fixture). Every
streamed window is located in the file by its samples (the player sends the file's float64
values unchanged), and ``maan predict`` in per-window mode at that start must give the same
probability, heart rate and flags: both run the same code on the same samples, so the
tolerance (1e-5) only absorbs float32 model arithmetic. Midway the player is stopped (the
stream must report a dropout), restarted under the same name (it must reconnect), and the
last prediction raises KeyboardInterrupt in the callback (a clean exit, status 0).
"""
from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

from tests.conftest import shared_file

FILE = "Subject00_2.edf"


class _Lines:
    """A thread-safe text sink that remembers JSON event lines."""

    def __init__(self):
        self.lines, self.lock = [], threading.Lock()
        self.dropout = threading.Event()

    def write(self, text):
        with self.lock:
            self.lines.append(text)
        if '"event": "dropout"' in text:
            self.dropout.set()

    def flush(self):
        pass

    def text(self):
        with self.lock:
            return "".join(self.lines)


def _lsl_discovery_works(name: str) -> bool:
    from mne_lsl.lsl import resolve_streams

    return bool(resolve_streams(timeout=15, name=name))


@pytest.mark.slow
def test_stream_matches_predict_and_survives_a_dropout(trained):
    import mne

    from maan.inference.predict import predict
    from maan.inference.stream import LiveStream, play

    ckpt_path, _ = trained
    path = shared_file("eegmat", FILE)
    name = f"maan-test-{uuid.uuid4().hex}"
    got, out, err = [], _Lines(), _Lines()
    second_started = threading.Event()

    def on_prediction(row, window):
        got.append((row, window.copy()))
        if second_started.is_set():
            raise KeyboardInterrupt  # what Ctrl-C raises in the loop

    player = play(path, name, repeat=1)
    players = [player]
    try:
        assert _lsl_discovery_works(name), (
            "LSL stream discovery on localhost failed (no multicast/loopback route?): the player's stream "
            "was not found within 15 s")
        live = LiveStream(ckpt_path, name, step=2.0, timeout=1.0, out=out, err=err, on_prediction=on_prediction)
        status = []
        thread = threading.Thread(target=lambda: status.append(live.run(max_seconds=45)), daemon=True)
        thread.start()
        deadline = time.monotonic() + 25
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) >= 2, err.text()
        player.stop()  # the stream drops out ...
        players.remove(player)
        assert err.dropout.wait(10), err.text()
        players.append(play(path, name, repeat=1))  # ... and comes back under the same name
        second_started.set()
        thread.join(30)
        assert not thread.is_alive() and status == [0]
    finally:
        for p in players:
            try:
                p.stop()
            except RuntimeError:  # already stopped (the file ended)
                pass
    events = err.text()
    assert '"event": "connected"' in events and '"event": "reconnected"' in events
    assert '"event": "stopped"' in events  # the KeyboardInterrupt, handled
    assert len(got) >= 3 and len(out.text().strip().splitlines()) == len(got)

    raw = mne.io.read_raw(path, preload=True, verbose="error")
    sfreq = raw.info["sfreq"]
    ecg = raw.get_data(picks=["ECG ECG"])[0]
    eeg_fz = raw.get_data(picks=["EEG Fz"])[0]
    for row, window in got:
        assert set(row) == {"time", "window_start", "window_end", "latency_s", "prob_task", "pred_task",
                            "heart_rate_bpm", "modalities", "flags"}
        assert row["window_end"] - row["window_start"] == pytest.approx(10.0, abs=1e-3)
        n = window.shape[1]
        assert n == 10 * sfreq
        starts = [i for i in np.flatnonzero(ecg == window[-1, 0]) if np.array_equal(ecg[i:i + n], window[-1])]
        assert len(starts) == 1, "streamed window not found in the file"
        a = starts[0]
        np.testing.assert_array_equal(eeg_fz[a:a + n], window[16])  # EEG rows in the checkpoint's order
        expected = predict(ckpt_path, path, window_starts=[a / sfreq]).rows()[0]
        assert row["flags"] == ([expected["flags"]] if expected["flags"] else [])
        assert row["modalities"] == expected["modalities"]
        if expected["prob_task"] is None:
            assert row["prob_task"] is None
        else:
            assert row["prob_task"] == pytest.approx(expected["prob_task"], abs=1e-5)
            assert row["pred_task"] == expected["pred_task"]
        assert (row["heart_rate_bpm"] is None) == (expected["heart_rate_bpm"] is None)
        if expected["heart_rate_bpm"] is not None:
            assert row["heart_rate_bpm"] == pytest.approx(expected["heart_rate_bpm"], abs=0.01)


PULLED_AT = 8.0  # s into the file: the ECG electrode comes off and its channel holds noise from then on


@pytest.mark.slow
def test_a_pulled_ecg_electrode_is_predicted_from_the_eeg_and_flagged(trained, tmp_path):
    """Mid-stream the ECG becomes noise (no beats): windows after it are predicted from the EEG,
    say so (modalities "eeg") and are flagged with the ECG's reason; windows before it use both.
    Each one equals maan predict (per-window) at the same start."""
    import mne

    from maan.inference.predict import predict
    from maan.inference.stream import LiveStream, play

    ckpt_path, _ = trained
    raw = mne.io.read_raw(shared_file("eegmat", FILE), preload=True, verbose="error")
    sfreq = raw.info["sfreq"]
    ecg_index = raw.ch_names.index("ECG ECG")
    onset = int(PULLED_AT * sfreq)
    raw._data[ecg_index, onset:] = np.random.default_rng(0).normal(0.0, 5e-4, raw.n_times - onset)
    path = tmp_path / "pulled_raw.fif"
    raw.save(path, fmt="double", verbose="error")  # the player streams these very values
    ecg = raw.get_data(picks=["ECG ECG"])[0]
    name = f"maan-test-{uuid.uuid4().hex}"
    got = []
    player = play(path, name, repeat=1)
    try:
        assert _lsl_discovery_works(name), "LSL stream discovery on localhost failed"
        live = LiveStream(ckpt_path, name, step=2.0, timeout=5.0, out=_Lines(), err=_Lines(),
                          on_prediction=lambda row, window: got.append((row, window.copy())))
        live.run(max_predictions=9, max_seconds=60)  # windows ending at 10, 12, ... 26 s of the file
    finally:
        try:
            player.stop()
        except RuntimeError:
            pass
    n = int(10 * sfreq)
    kinds = []
    for row, window in got:
        starts = [i for i in np.flatnonzero(ecg == window[-1, 0]) if np.array_equal(ecg[i:i + n], window[-1])]
        assert len(starts) == 1, "streamed window not found in the file"
        a = starts[0]
        expected = predict(ckpt_path, path, window_starts=[a / sfreq]).rows()[0]
        assert row["modalities"] == expected["modalities"] and row["flags"] == ([expected["flags"]] if expected["flags"] else [])
        if a >= onset:  # all noise: predicted from the EEG, flagged with the ECG's reason
            assert row["modalities"] == "eeg" and row["flags"] and row["flags"][0].startswith("ecg_"), row
            assert row["heart_rate_bpm"] is None
        elif a + n <= onset:
            assert row["modalities"] == "ecg+eeg" and row["flags"] == [], row
        kinds.append(row["modalities"])
        assert 0.0 <= row["prob_task"] <= 1.0 and row["prob_task"] == pytest.approx(expected["prob_task"], abs=1e-5)
    assert "eeg" in kinds, kinds  # the stream went on after the electrode came off


def test_stream_without_a_source_is_a_clear_error(trained):
    from maan.errors import MaanError
    from maan.inference.stream import LiveStream

    ckpt_path, _ = trained
    live = LiveStream(ckpt_path, f"maan-absent-{uuid.uuid4().hex}", connect_timeout=0.5, err=_Lines())
    with pytest.raises(MaanError, match="no LSL stream named"):
        live.run(max_seconds=5)
