"""A live dashboard in the browser for ``maan stream --dashboard``.

While ``maan stream`` predicts (and still prints its JSON lines), :class:`Dashboard` serves one
page at ``http://127.0.0.1:PORT/`` that updates at every prediction without a reload: each
target's probability over the last minutes with the 0.5 line, the heart rate and the ECG of the
current window with its beats, the EEG band power per band, the signal-quality flags and the
stream's state (connected, reconnecting) in plain words, the modalities each prediction used,
and the fusion attention per modality. The header names the live stream, the checkpoint(s)
and their training data (SYNTHETIC when it was).

Server: Starlette on uvicorn, in a background thread, on a socket bound before the stream
connects (a port in use is a MaanError). Plots: Bokeh figures built here and drawn in the
page by BokehJS, served from the installed bokeh package (no CDN, works offline); the page's
script (``dashboard_static/dashboard.js``) updates their data sources from server-sent events.

Routes, and nothing else (every other path is 404; no file is read from a request's path):

* ``GET /`` the page; ``GET /assets/NAME`` its script, style sheet and BokehJS;
* ``GET /api/latest`` the last prediction record (the fields of the JSON line; 204 before the
  first one); ``GET /api/history?seconds=N`` the records of the last N seconds (a JSON list,
  oldest first; at most the ring's span); ``GET /api/events`` the server-sent events the page
  listens to (``prediction``: the record and the window's details; ``status``: the stream's state).

Memory is bounded: a ring of the records of the last ``history_minutes`` (and at most one per
step), the last window's details, and at most ``QUEUE`` pending messages per open page (a slow
page loses the oldest). Bound to 127.0.0.1 by default (only this machine's users can connect; a
Host header other than the loopback names is refused, against DNS rebinding). Bound elsewhere,
every request needs the token (``?token=`` or ``Authorization: Bearer``), else 401.
"""
from __future__ import annotations

import asyncio
import errno
import hmac
import html
import ipaddress
import json
import math
import socket
import threading
import time
from collections import deque
from pathlib import Path
from string import Template

import numpy as np

from maan.errors import MaanError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
HISTORY_MINUTES = 10  # what the ring keeps and the page shows
QUEUE = 64  # pending messages per open page
KEEPALIVE_S = 1.0  # a page's event stream sends a comment this often (and notices a shutdown)
STATIC = Path(__file__).with_name("dashboard_static")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")

#: the signal-quality flags (the pipeline's reasons and the stream's own) in plain words
FLAG_WORDS = {
    "ecg_nan": "ECG: missing samples (NaN)",
    "ecg_no_beats": "ECG: no heartbeats found (electrode off?)",
    "ecg_rr_out_of_range": "ECG: implausible beat intervals",
    "eeg_nan": "EEG: missing samples (NaN)",
    "eeg_flat": "EEG: a flat channel (electrode off?)",
    "eeg_not_finite": "EEG: non-finite values",
    "eeg_out_of_range": "EEG: values out of range",
    "nan": "missing samples (NaN) in ECG and EEG",
    "normalization_warmup": "warming up: collecting the subject's first windows before predicting",
    "reconnecting": "stream lost: reconnecting",
}


def require() -> None:
    """A clear MaanError when the optional dashboard dependencies are missing."""
    missing = []
    for module in ("starlette", "uvicorn", "bokeh"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MaanError(f"--dashboard needs {', '.join(missing)}: pip install 'maan[dashboard]'")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- state ----------------------------------------------------------------------------------
class Board:
    """What the page shows: a ring of the last records, the last window's details, the
    stream's state, and the open pages' queues (fed from the stream's thread)."""

    def __init__(self, step: float, history_minutes: float = HISTORY_MINUTES):
        self.history_seconds = float(history_minutes) * 60.0
        self.records = deque(maxlen=int(math.ceil(self.history_seconds / float(step))) + 1)
        self.details: dict = {}
        self.status = {"state": "waiting", "reason": "waiting for the stream"}
        self.clients: set = set()  # (loop, queue) of each open page
        self.lock = threading.Lock()
        self.closed = False

    def add_record(self, row: dict, details: dict | None = None) -> None:
        with self.lock:
            self.records.append(dict(row))
            cutoff = row["time"] - self.history_seconds
            while self.records and self.records[0]["time"] < cutoff:
                self.records.popleft()
            self.details = details or {}
            message = _sse("prediction", {"record": row, "details": self.details, "published": time.time()})
        self._broadcast(message)

    def set_status(self, state: str, reason: str = "") -> None:
        with self.lock:
            self.status = {"state": state, "reason": reason}
            message = _sse("status", self.status)
        self._broadcast(message)

    def latest(self) -> dict | None:
        with self.lock:
            return dict(self.records[-1]) if self.records else None

    def history(self, seconds: float) -> list:
        with self.lock:
            cutoff = time.time() - seconds
            return [dict(r) for r in self.records if r["time"] >= cutoff]

    # -- pages ----------------------------------------------------------------------------
    def connect(self, loop, queue) -> None:
        with self.lock:
            self.clients.add((loop, queue))
            _put(queue, "retry: 1000\n\n")
            _put(queue, _sse("status", self.status))
            if self.records:
                _put(queue, _sse("prediction", {"record": self.records[-1], "details": self.details}))

    def disconnect(self, loop, queue) -> None:
        with self.lock:
            self.clients.discard((loop, queue))

    def close(self) -> None:
        """End every page's event stream (the pages reconnect by themselves to a new server)."""
        self.closed = True
        self._broadcast(None)

    def _broadcast(self, message) -> None:
        with self.lock:
            clients = list(self.clients)
        for loop, queue in clients:
            try:
                loop.call_soon_threadsafe(_put, queue, message)
            except RuntimeError:  # that page's loop is closed
                pass


def _put(queue, message) -> None:
    if queue.full():  # a slow page loses the oldest message, memory stays bounded
        queue.get_nowait()
    queue.put_nowait(message)


def _sse(event: str, data) -> str:
    return f"event: {event}\ndata: {json.dumps(data, allow_nan=False)}\n\n"


# -- the window's details ---------------------------------------------------------------------
def window_details(predictor, inputs: dict) -> dict:
    """What the page draws of one window, from ``LiveStream.last_inputs``: its ECG (mV) with
    the beats the checkpoint's R-peak detector finds, the EEG band power per band (µV², mean
    over channels, Welch) and the mean fusion attention per modality of every target."""
    from maan.errors import InvalidSignalError
    from maan.features.ecg import detect_rpeaks

    record = inputs.get("record")
    out = {"ecg": None, "bands": None, "attention": None}
    if record is None:
        return out
    fs = float(record.ecg.fs)
    lead = np.asarray(record.ecg.data, dtype=np.float64)
    lead = lead[0] if lead.ndim > 1 else lead
    try:
        peaks = detect_rpeaks(lead, fs, method=predictor.config.rpeak_method)
    except InvalidSignalError:
        peaks = np.zeros(0, np.int64)
    finite = np.where(np.isfinite(lead), lead, np.nan)
    out["ecg"] = {"t": _round(np.arange(len(lead)) / fs, 4), "mv": _round(finite, 4),
                  "beat_t": _round(peaks / fs, 4), "beat_mv": _round(finite[peaks], 4)}
    eeg = np.asarray(record.eeg.data, dtype=np.float64)
    if eeg.size and np.isfinite(eeg).all():
        from mne.time_frequency import psd_array_welch

        efs = float(record.eeg.fs)
        bands = predictor.config.bands
        psd, freqs = psd_array_welch(eeg, efs, fmin=min(b[1] for b in bands), fmax=max(b[2] for b in bands),
                                     n_fft=min(eeg.shape[-1], int(round(2 * efs))), verbose="error")
        df = freqs[1] - freqs[0] if len(freqs) > 1 else 1.0
        power = [float(psd[:, (freqs >= lo) & (freqs < hi)].sum(axis=-1).mean() * df) for _, lo, hi in bands]
        out["bands"] = {"band": [str(b[0]) for b in bands], "power": _round(np.asarray(power), 6)}
    if len(inputs.get("ecg", ())) and inputs.get("predicted"):
        weights = predictor.attention(inputs["ecg"], inputs["eeg"], inputs["mask"], inputs.get("reference"))
        out["attention"] = {t: _round(w[0], 4) for t, w in weights.items()}
    return out


def _round(values, digits: int) -> list:
    """Finite values rounded, the others None (JSON has no NaN)."""
    values = np.asarray(values, dtype=np.float64)
    return [None if not math.isfinite(v) else round(v, digits) for v in values.tolist()]


def data_label(predictor) -> str:
    """The training data of the checkpoints: SYNTHETIC (...) or the dataset's name."""
    labels = []
    for ckpt in predictor.checkpoints:
        store = ckpt.meta.get("store", {})
        dataset = str(store.get("dataset") or "unknown dataset")
        label = f"SYNTHETIC (maan synth, not {dataset.upper()})" if store.get("synthetic") else dataset.upper()
        if label not in labels:
            labels.append(label)
    return ", ".join(labels)


# -- the page ---------------------------------------------------------------------------------
def _figures(predictor, history_seconds: float) -> dict:
    """The page's Bokeh figures as a json_item; the page updates their named data sources."""
    from bokeh.embed import json_item
    from bokeh.layouts import gridplot
    from bokeh.models import ColumnDataSource, DataRange1d, FactorRange, Range1d, Span
    from bokeh.palettes import Category10_10
    from bokeh.plotting import figure

    targets = list(predictor.targets)
    common = dict(sizing_mode="stretch_width", height=250, toolbar_location=None)
    x_range = DataRange1d(follow="end", follow_interval=history_seconds * 1000.0, range_padding=0.02)

    prob = figure(title="P(high) per target over the last minutes (0.5: decision threshold)",
                  x_axis_type="datetime", x_range=x_range, y_range=Range1d(0, 1), **common)
    prob_src = ColumnDataSource({"x": [], **{t: [] for t in targets}}, name="prob")
    for i, t in enumerate(targets):
        prob.line("x", t, source=prob_src, color=Category10_10[i % 10], line_width=2, legend_label=f"P(high {t})")
        prob.scatter("x", t, source=prob_src, color=Category10_10[i % 10], size=4)
    prob.add_layout(Span(location=0.5, dimension="width", line_dash="dashed", line_color="gray"))
    prob.legend.location = "top_left"
    prob.legend.background_fill_alpha = 0.6
    prob.yaxis.axis_label, prob.xaxis.axis_label = "probability", "local time"

    hr = figure(title="Heart rate per window", x_axis_type="datetime", x_range=x_range, **common)
    hr_src = ColumnDataSource({"x": [], "bpm": []}, name="hr")
    hr.line("x", "bpm", source=hr_src, color="firebrick", line_width=2)
    hr.scatter("x", "bpm", source=hr_src, color="firebrick", size=4)
    hr.yaxis.axis_label, hr.xaxis.axis_label = "heart rate (bpm)", "local time"

    ecg = figure(title="ECG of the current window (\u25bc: detected beats)", **common)
    ecg_src = ColumnDataSource({"t": [], "mv": []}, name="ecg")
    beats_src = ColumnDataSource({"t": [], "mv": []}, name="beats")
    ecg.line("t", "mv", source=ecg_src, color="black", line_width=1)
    ecg.scatter("t", "mv", source=beats_src, color="firebrick", size=9, marker="inverted_triangle")
    ecg.yaxis.axis_label, ecg.xaxis.axis_label = "ECG (mV)", "time in the window (s)"

    band_names = [str(b[0]) for b in predictor.config.bands]
    bands = figure(title="EEG band power of the current window (mean over channels)", x_range=band_names,
                   y_axis_type="log", **common)
    bands_src = ColumnDataSource({"band": band_names, "power": [float("nan")] * len(band_names)}, name="bands")
    bands.vbar(x="band", top="power", bottom=1e-3, width=0.7, source=bands_src, color="steelblue")
    bands.yaxis.axis_label, bands.xaxis.axis_label = "band power (µV², log scale)", "EEG band"

    kinds = ["ECG", "EEG"]
    used = figure(title="Modalities each prediction used", x_axis_type="datetime", x_range=x_range,
                  y_range=FactorRange(*kinds), **{**common, "height": 160})
    used_src = ColumnDataSource({"x": [], "kind": []}, name="used")
    used.scatter("x", "kind", source=used_src, size=8, marker="square", color="seagreen")
    used.yaxis.axis_label, used.xaxis.axis_label = "used", "local time"

    factors = [(t, k) for t in targets for k in kinds]
    attention = figure(title="Fusion attention per modality, current window",
                       x_range=FactorRange(*factors), y_range=Range1d(0, 1), **common)
    attention_src = ColumnDataSource({"x": factors, "weight": [float("nan")] * len(factors)}, name="attention")
    attention.vbar(x="x", top="weight", width=0.7, source=attention_src, color="darkorange")
    attention.yaxis.axis_label, attention.xaxis.axis_label = "attention weight (0-1)", "target, modality"

    for fig in (prob, hr, ecg, bands, used, attention):
        fig.title.text_font_size = "13pt"
        for axis in (fig.xaxis, fig.yaxis):
            axis.axis_label_text_font_size = "11pt"
            axis.major_label_text_font_size = "10pt"
    grid = gridplot([[prob, hr], [ecg, bands], [used, attention]], sizing_mode="stretch_width",
                    toolbar_location=None)
    return json_item(grid)


def render_page(predictor, source: str, checkpoints, history_seconds: float, token: str | None) -> str:
    """The page's HTML (the metadata escaped; the figures and settings as JSON)."""
    import bokeh

    def script_json(value) -> str:  # JSON that cannot close its <script> element
        return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

    suffix = f"?token={_quote(token)}" if token else ""
    label = data_label(predictor)
    settings = {"targets": list(predictor.targets), "token": token, "history_seconds": history_seconds,
                "flag_words": FLAG_WORDS}
    cards = "".join(f'<div class="card"><div class="label">P(high {html.escape(t)})</div>'
                    f'<div class="value" id="prob-{html.escape(t)}">–</div>'
                    f'<div class="sub" id="pred-{html.escape(t)}">waiting</div></div>' for t in predictor.targets)
    page = Template((STATIC / "index.html").read_text(encoding="utf-8"))
    return page.substitute(
        source=html.escape(source), checkpoints=html.escape(", ".join(str(c) for c in checkpoints)),
        targets=html.escape(", ".join(predictor.targets)), data=html.escape(label),
        synthetic_class="synthetic" if "SYNTHETIC" in label else "real",
        cards=cards, suffix=html.escape(suffix), bokeh_version=html.escape(bokeh.__version__),
        settings=script_json(settings), figures=script_json(_figures(predictor, history_seconds)))


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _assets() -> dict:
    """The only files the server sends: name -> (path, media type)."""
    from bokeh.util.paths import bokehjs_path

    return {"bokeh.min.js": (Path(bokehjs_path()) / "js" / "bokeh.min.js", "text/javascript"),
            "dashboard.js": (STATIC / "dashboard.js", "text/javascript"),
            "dashboard.css": (STATIC / "dashboard.css", "text/css")}


# -- the server -------------------------------------------------------------------------------
def build_app(board: Board, page: str, token: str | None = None, loopback: bool = True):
    """The Starlette application: the page, its assets and the API, nothing else."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    assets = _assets()
    no_store = {"Cache-Control": "no-store"}

    async def index(request):
        return HTMLResponse(page, headers=no_store)

    async def asset(request):
        entry = assets.get(request.path_params["name"])
        if entry is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return FileResponse(entry[0], media_type=entry[1])

    async def latest(request):
        row = board.latest()
        return Response(status_code=204, headers=no_store) if row is None else JSONResponse(row, headers=no_store)

    async def history(request):
        raw = request.query_params.get("seconds")
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            seconds = float("nan")
        if not (math.isfinite(seconds) and seconds > 0):
            return JSONResponse({"detail": f"seconds must be a number > 0, got {raw!r}"}, status_code=400)
        return JSONResponse(board.history(min(seconds, board.history_seconds)), headers=no_store)

    async def events(request):
        loop, queue = asyncio.get_running_loop(), asyncio.Queue(maxsize=QUEUE)
        board.connect(loop, queue)

        async def stream():
            try:
                while not board.closed:
                    try:
                        message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                    except asyncio.TimeoutError:
                        message = ": keepalive\n\n"
                    if message is None:
                        return
                    yield message
            finally:
                board.disconnect(loop, queue)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={**no_store, "X-Accel-Buffering": "no"})

    async def not_found(request, exc):
        return JSONResponse({"detail": "not found"}, status_code=getattr(exc, "status_code", 404))

    class TokenMiddleware:
        """Every request needs the token (query ``token`` or ``Authorization: Bearer``), else 401."""

        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http" and token is not None:
                from starlette.requests import Request

                request = Request(scope)
                given = request.query_params.get("token", "")
                auth = request.headers.get("authorization", "")
                if auth.lower().startswith("bearer "):
                    given = given or auth[7:].strip()
                if not hmac.compare_digest(given.encode(), token.encode()):
                    await JSONResponse({"detail": "a valid token is needed"}, status_code=401,
                                       headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                    return
            await self.app(scope, receive, send)

    middleware = [Middleware(TokenMiddleware)]
    if loopback:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]"]))
    routes = [Route("/", index), Route("/assets/{name}", asset), Route("/api/latest", latest),
              Route("/api/history", history), Route("/api/events", events)]
    return Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found, 405: not_found})


class Dashboard:
    """The board and its server for one ``maan stream``.

    ``start()`` binds the port (MaanError when it is taken) and serves in a background thread;
    ``attach(live)`` feeds it from a :class:`~maan.inference.stream.LiveStream`; ``stop()``
    ends the pages' event streams, stops the server and releases the port.
    """

    def __init__(self, predictor, source: str, checkpoints, *, step: float, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, token: str | None = None, history_minutes: float = HISTORY_MINUTES):
        require()
        if not is_loopback(host) and not token:
            raise MaanError(f"--host {host} exposes the dashboard beyond this machine: give --token too")
        if not (isinstance(port, int) and 0 <= port <= 65535):
            raise MaanError(f"--port must be 0-65535, got {port!r}")
        self.predictor, self.source = predictor, source
        self.host, self.port, self.token = host, port, token or None
        self.board = Board(step, history_minutes)
        self.page = render_page(predictor, source, checkpoints, self.board.history_seconds, self.token)
        self.server = self.thread = self.sock = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"?token={_quote(self.token)}" if self.token else "")

    def start(self) -> "Dashboard":
        import uvicorn

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            why = "is in use (another maan stream --dashboard? pick another --port)" \
                if exc.errno == errno.EADDRINUSE else f"cannot be opened ({exc.strerror or exc})"
            raise MaanError(f"dashboard port {self.host}:{self.port} {why}") from None
        sock.listen(64)
        self.sock, self.port = sock, sock.getsockname()[1]
        app = build_app(self.board, self.page, self.token, loopback=is_loopback(self.host))
        config = uvicorn.Config(app, log_level="error", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2, ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True,
                                       name="maan-dashboard")
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            self.stop()
            raise MaanError(f"the dashboard server did not start on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        self.board.close()
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        if self.sock is not None:
            self.sock.close()
        self.server = self.thread = self.sock = None

    # -- feeding ------------------------------------------------------------------------------
    def attach(self, live) -> None:
        """Feed the board from ``live``'s predictions and events."""
        self.live = live
        live.on_prediction = self.on_prediction
        live.on_event = self.on_event

    def on_prediction(self, row: dict, window=None) -> None:
        live = getattr(self, "live", None)
        try:
            details = window_details(self.predictor, live.last_inputs) if live is not None else {}
        except Exception as exc:  # noqa: BLE001 - the page's extras must never stop the stream
            details = {"error": f"{type(exc).__name__}: {exc}"}
        if self.board.status != {"state": "connected", "reason": ""}:
            self.board.set_status("connected", "")
        self.board.add_record(row, details)

    def on_event(self, event: dict) -> None:
        kind = event.get("event")
        if kind in ("connected", "reconnected"):
            self.board.set_status("connected", "waiting for a full window")
        elif kind in ("dropout", "waiting"):
            self.board.set_status("reconnecting", str(event.get("reason", "")))
        elif kind == "stopped":
            self.board.set_status("stopped", str(event.get("reason", "")))


__all__ = ["Dashboard", "Board", "build_app", "window_details", "FLAG_WORDS", "DEFAULT_PORT"]
