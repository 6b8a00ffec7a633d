"""maan stream --dashboard in a real browser (Debian's headless Chromium driven by Selenium).

``maan play`` replays a real eegmat recording (looping) as an LSL stream; ``maan stream
--dashboard --port 0`` predicts on it with a checkpoint trained in the test (tests/inference/conftest.py's
1-epoch fixture) and says its URL on stderr. The page must show the probability and heart rate
of each new prediction, equal to /api/latest; when the player is killed it must say
"reconnecting", and when a player comes back it must resume by itself; closing the page does not
stop the stream; Ctrl-C (SIGINT) stops
the stream and the server (exit status as maan stream's, no traceback, the port free again).

Needs chromium and chromedriver on PATH (.ci/run installs Debian's where apt-get is there); on a
machine without them, or without selenium, the browser test skips and says so.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import pytest

from tests.conftest import run_cli, shared_file

FILE = "Subject00_2.edf"


def headless_chromium():
    """A headless Chromium WebDriver, or a clean skip saying what is missing (as on a machine
    where no browser can be installed)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no headless browser: chromium and chromedriver are not on PATH (Debian: apt-get install "
                    "chromium chromium-driver; .ci/run does so where apt-get is available as root)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(driver))  # both given: nothing is downloaded


@pytest.fixture
def chromium():
    driver = headless_chromium()
    yield driver
    driver.quit()


class _Process:
    """A ``maan`` subprocess whose stderr lines are collected by a thread."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, "-m", "maan", *args], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.lines, self.lock = [], threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            with self.lock:
                self.lines.append(line)

    def stderr(self) -> str:
        with self.lock:
            return "".join(self.lines)

    def event(self, name: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stderr().splitlines():
                if line.startswith("{") and json.loads(line).get("event") == name:
                    return json.loads(line)
            assert self.proc.poll() is None, f"maan exited with {self.proc.returncode}:\n{self.stderr()}"
            time.sleep(0.05)
        raise AssertionError(f"no {name!r} event within {timeout} s:\n{self.stderr()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _api(url: str, path: str):
    with urllib.request.urlopen(url.rstrip("/") + path, timeout=10) as response:
        return json.loads(response.read())


def _until(driver, what, condition, timeout):
    """What the page shows (:func:`_shown`) once ``condition`` holds on it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = _shown(driver)
        if condition(shown):
            return shown
        time.sleep(0.1)
    raise AssertionError(f"timed out ({timeout} s) waiting for {what}; the page shows {_shown(driver)}")


def _shown(driver) -> dict:
    """What the page shows now: the record's time, probability, heart rate, state, flags."""
    return driver.execute_script(
        "const t = (id) => document.getElementById(id).textContent;"
        "return {time: document.body.dataset.recordTime || null, prob: t('prob-task'), hr: t('hr'),"
        " state: t('status'), flags: t('flags'), modalities: t('modalities')};")


@pytest.mark.slow
def test_the_page_follows_the_stream_and_survives_a_dropout(chromium, trained):  # no browser: skip first
    ckpt_path, _ = trained
    path = shared_file("eegmat", FILE)
    name = f"maan-dash-{uuid.uuid4().hex}"
    players = [_Process("play", str(path), "--name", name, "-q")]
    stream = _Process("stream", "--checkpoint", str(ckpt_path), "--source", name, "--dashboard", "--port", "0",
                      "--step", "1", "--timeout", "1")
    try:
        url = stream.event("dashboard", 60)["url"]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        chromium.get(url)
        assert "maan live" in chromium.title and name in chromium.find_element("id", "source").text
        assert chromium.find_element("id", "training-data").text == "RECORDINGS"  # the checkpoint's data

        # predictions arrive: the page shows each one, equal to /api/latest
        seen = []
        for _ in range(4):
            previous = seen[-1]["time"] if seen else None
            shown = _until(chromium, "a new prediction", lambda s: s["time"] not in (None, previous), 30)
            latest = _api(url, "/api/latest")
            if str(latest["time"]) != shown["time"]:  # a newer one arrived in between: compare that one
                shown = _until(chromium, "the page to catch up", lambda s: s["time"] == str(latest["time"]), 5)
            assert shown["prob"] == f"{latest['prob_task']:.3f}" and shown["hr"] == f"{latest['heart_rate_bpm']:.1f}"
            assert shown["state"] == "connected" and shown["modalities"] == "ECG + EEG", shown
            seen.append(shown)
        assert len({s["prob"] for s in seen}) > 1 and len({s["hr"] for s in seen}) > 1, seen
        # the window's details are drawn: beats, band power, fusion attention
        details = chromium.execute_script(
            "const d = Bokeh.documents[0], g = (n) => d.get_model_by_name(n).data;"
            "return {beats: g('beats').t.length, power: Array.from(g('bands').power),"
            " attention: Array.from(g('attention').weight), prob: g('prob').x.length};")
        hr = float(seen[-1]["hr"])
        assert abs(details["beats"] - hr * 10 / 60) <= 2, details  # beats of a 10-s window
        assert all(p > 0 for p in details["power"]) and len(details["power"]) == 4, details
        assert all(0 < a < 1 for a in details["attention"]), details
        assert details["prob"] >= 4
        assert chromium.execute_script("return window.maanLatencies.length") >= 4

        # the stream drops out: the page says so, then resumes by itself
        players.pop().stop()
        shown = _until(chromium, "'reconnecting'", lambda s: s["state"] == "reconnecting", 20)
        assert "reconnecting" in shown["flags"]
        last = shown["time"]
        players.append(_Process("play", str(path), "--name", name, "-q"))
        _until(chromium, "a prediction after the dropout", lambda s: s["time"] != last and s["state"] == "connected", 40)

        # closing the page does not stop the stream
        chromium.get("about:blank")
        before = _api(url, "/api/latest")["time"]
        deadline = time.monotonic() + 10
        while _api(url, "/api/latest")["time"] == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _api(url, "/api/latest")["time"] > before and stream.proc.poll() is None

        # Ctrl-C stops the stream and the server: the exit status of maan stream, the port freed
        stream.proc.send_signal(signal.SIGINT)
        assert stream.proc.wait(20) == 0, stream.stderr()
        assert "Traceback" not in stream.stderr()
        with socket.socket() as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
    finally:
        stream.stop()
        for p in players:
            p.stop()


@pytest.mark.slow
def test_a_port_in_use_is_one_line_and_exit_2(trained, capsys):
    ckpt_path, _ = trained
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, out, err = run_cli(["stream", "--checkpoint", str(ckpt_path), "--source", "none", "--dashboard",
                                  "--port", str(port)], capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"maan stream: error: dashboard port 127.0.0.1:{port} is in use "
                                        "(another maan stream --dashboard? pick another --port)"]


@pytest.mark.slow
def test_an_exposed_host_needs_a_token(trained, capsys):
    ckpt_path, _ = trained
    code, _, err = run_cli(["stream", "--checkpoint", str(ckpt_path), "--source", "none", "--dashboard",
                            "--host", "0.0.0.0"], capsys)
    assert code == 2 and err.strip() == ("maan stream: error: --host 0.0.0.0 exposes the dashboard beyond this "
                                         "machine: give --token too")


def test_headless_chromium_skips_with_the_reason_when_absent(monkeypatch):
    """Where no browser is installed the browser test skips, saying what is missing."""
    pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    monkeypatch.setenv("PATH", os.devnull)
    with pytest.raises(pytest.skip.Exception, match="chromium and chromedriver are not on PATH"):
        headless_chromium()
