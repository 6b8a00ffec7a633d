"""The dashboard's server without a browser: ring bounds, the API, the token, nothing but the
page, its assets and the API, the port. A real server on an ephemeral loopback port; a stand-in
predictor (the page needs only targets, bands and the checkpoints' training data)."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from types import SimpleNamespace

import pytest

from maan.errors import MaanError
from maan.inference.dashboard import Board, Dashboard
from tests.conftest import run_cli

BANDS = (("theta", 4.0, 8.0), ("alpha", 8.0, 14.0), ("beta", 14.0, 31.0), ("gamma", 31.0, 45.0))


def _predictor(targets=("arousal", "valence")):
    meta = {"store": {"dataset": "amigos", "synthetic": True}}
    return SimpleNamespace(targets=tuple(targets), config=SimpleNamespace(bands=BANDS),
                           checkpoints=[SimpleNamespace(meta=meta)])


def _row(t, p=0.25, hr=70.0):
    return {"time": t, "window_start": t - 10, "window_end": t, "latency_s": 0.01, "prob_arousal": p,
            "prob_valence": None, "pred_arousal": int(p >= 0.5), "pred_valence": None, "heart_rate_bpm": hr,
            "modalities": "ecg+eeg", "flags": []}


@pytest.fixture
def dashboard():
    started = []

    def start(**kwargs):
        kwargs.setdefault("step", 1.0)
        board = Dashboard(_predictor(), kwargs.pop("source", "demo-stream"), ["runs/model.pt"], port=0, **kwargs)
        started.append(board.start())
        return board

    yield start
    for board in started:
        board.stop()


@pytest.fixture(scope="module")
def shared():
    """One plain dashboard for the tests that need no particular settings (building the page's
    Bokeh figures is the slow part of a start)."""
    board = Dashboard(_predictor(), "demo-stream", ["runs/model.pt"], step=1.0, port=0).start()
    yield board
    board.stop()


@pytest.fixture
def plain(shared):
    with shared.board.lock:
        shared.board.records.clear()
    return shared


def _get(board, path, headers=None, host=None):
    """(status, body bytes) of GET path, sent exactly as written (no client-side normalisation)."""
    conn = http.client.HTTPConnection(board.host, board.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_the_ring_keeps_the_last_minutes_and_at_most_one_record_per_step():
    board = Board(step=1.0, history_minutes=5 / 60)  # 5 s
    assert board.records.maxlen == 6
    now = time.time()
    for i in range(30):
        board.add_record(_row(now - 29 + i))
    assert [r["time"] for r in board.records] == [now - 5 + i for i in range(6)]
    board = Board(step=0.5, history_minutes=5 / 60)
    for t in (now - 30, now - 20, now - 4, now):  # the old ones fall out by time, not by count
        board.add_record(_row(t))
    assert [r["time"] for r in board.records] == [now - 4, now]
    assert [r["time"] for r in board.history(2.0)] == [now]


def test_latest_and_history(plain):
    board = plain
    assert _get(board, "/api/latest")[0] == 204  # nothing yet
    now = time.time()
    rows = [_row(now - 3 + i, p=0.1 * i) for i in range(4)]
    for row in rows:
        board.board.add_record(row)
    status, body = _get(board, "/api/latest")
    assert status == 200 and json.loads(body) == rows[-1]
    status, body = _get(board, "/api/history?seconds=1.5")
    assert status == 200 and json.loads(body) == rows[-2:]
    assert json.loads(_get(board, "/api/history?seconds=1e9")[1]) == rows  # at most the ring
    for bad in ("", "?seconds=", "?seconds=abc", "?seconds=-1", "?seconds=0", "?seconds=nan", "?seconds=inf"):
        status, body = _get(board, "/api/history" + bad)
        assert status == 400 and b"seconds must be a number > 0" in body, bad


def test_the_page_names_its_data_and_loads_only_local_assets(dashboard):
    board = dashboard(source="eeg<script>")
    status, body = _get(board, "/")
    page = body.decode()
    assert status == 200 and "SYNTHETIC (maan synth, not AMIGOS)" in page and "runs/model.pt" in page
    assert "eeg&lt;script&gt;" in page and "eeg<script>" not in page
    assert "http://" not in page and "https://" not in page  # no CDN: works offline
    for asset in ("bokeh.min.js", "dashboard.js", "dashboard.css"):
        assert f'"/assets/{asset}"' in page
        status, body = _get(board, f"/assets/{asset}")
        assert status == 200 and len(body) > 500


@pytest.mark.parametrize("path", [
    "/etc/passwd", "/assets/../../../../etc/passwd", "/assets/..%2f..%2f..%2fpyproject.toml",
    "/assets/%2e%2e/dashboard.py", "/assets/dashboard.py", "/assets/index.html", "/assets/", "/assets",
    "/static/js/bokeh.min.js", "/api", "/api/other", "/dashboard_static/dashboard.js", "//etc/passwd"])
def test_nothing_else_is_served(plain, path):
    board = plain
    status, body = _get(board, path)
    assert status == 404, (path, status, body[:200])


def test_a_foreign_host_header_is_refused_on_loopback(plain):
    board = plain
    assert _get(board, "/api/history?seconds=5", host="attacker.example")[0] == 400
    assert _get(board, "/api/history?seconds=5", host=f"localhost:{board.port}")[0] == 200


def test_the_token_is_checked_on_every_request(dashboard):
    board = dashboard(token="s3cret&x")
    assert board.url.endswith("/?token=s3cret%26x")
    for path in ("/", "/assets/dashboard.js", "/api/latest", "/api/history?seconds=5", "/api/events",
                 "/etc/passwd"):
        sep = "&" if "?" in path else "?"
        assert _get(board, path)[0] == 401, path
        assert _get(board, f"{path}{sep}token=wrong")[0] == 401, path
        assert _get(board, path, headers={"Authorization": "Bearer wrong"})[0] == 401, path
    assert _get(board, "/?token=s3cret%26x")[0] == 200
    assert _get(board, "/api/history?seconds=5", headers={"Authorization": "Bearer s3cret&x"})[0] == 200
    status, body = _get(board, "/?token=s3cret%26x")
    assert "/assets/dashboard.js?token=s3cret%26x" in body.decode()  # the page passes it on


def test_an_exposed_host_needs_a_token():
    with pytest.raises(MaanError, match="--host 192.0.2.1 exposes the dashboard.*--token"):
        Dashboard(_predictor(), "s", ["m.pt"], step=1.0, host="192.0.2.1", port=0)


def test_a_port_in_use_is_one_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(MaanError, match=f"dashboard port 127.0.0.1:{port} is in use"):
            Dashboard(_predictor(), "s", ["m.pt"], step=1.0, port=port).start()


def test_events_reach_an_open_page_and_stop_ends_them_and_frees_the_port(dashboard):
    board = dashboard()
    conn = http.client.HTTPConnection(board.host, board.port, timeout=10)
    conn.request("GET", "/api/events")
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    lines, ended = [], threading.Event()

    def read():
        for line in response:
            lines.append(line.decode())
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    time.sleep(0.3)
    board.board.set_status("reconnecting", "no sample for 1 s; reconnecting")
    board.board.add_record(_row(time.time(), p=0.75), {"ecg": None, "bands": None, "attention": None})
    deadline = time.monotonic() + 5
    while sum("event: prediction" in x for x in lines) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    text = "".join(lines)
    assert '"state": "reconnecting"' in text and '"prob_arousal": 0.75' in text
    port = board.port
    board.stop()
    assert ended.wait(5), "stop() must end the open event streams"
    conn.close()
    with socket.socket() as again:  # the port is free again
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_without_the_extra_it_says_what_to_install(monkeypatch):
    import sys

    from maan.inference.dashboard import require

    monkeypatch.setitem(sys.modules, "bokeh", None)  # import bokeh raises ImportError
    with pytest.raises(MaanError, match=r"--dashboard needs bokeh: pip install 'maan\[dashboard\]'"):
        require()


def test_dashboard_options_need_dashboard(capsys):
    code, _, err = run_cli(["stream", "--checkpoint", "m.pt", "--source", "s", "--port", "9000"], capsys)
    assert code == 2 and err.strip() == "maan stream: error: --port, --host and --token apply to --dashboard only"


def test_a_failure_in_the_window_details_never_stops_the_stream():
    board = Dashboard(_predictor(), "s", ["m.pt"], step=1.0, port=0)  # not started: the feeding only
    live = SimpleNamespace(last_inputs={"record": SimpleNamespace(ecg=None)}, on_prediction=None, on_event=None)
    board.attach(live)
    assert live.on_prediction == board.on_prediction and live.on_event == board.on_event
    live.on_event({"event": "dropout", "reason": "no sample for 1 s; reconnecting"})
    assert board.board.status == {"state": "reconnecting", "reason": "no sample for 1 s; reconnecting"}
    row = _row(time.time())
    live.on_prediction(row, None)
    assert board.board.latest() == row and board.board.details["error"].startswith("AttributeError")
    assert board.board.status == {"state": "connected", "reason": ""}
