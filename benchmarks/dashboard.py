"""`maan stream --dashboard`: latency from a prediction to its drawing in the page (p50/p99), and
the screenshot in docs/img/dashboard.png.

`maan play` replays a real eegmat recording (looping) and `maan stream --dashboard` predicts on
it, each in its own process, as a user runs them; the page is opened in Debian's headless
Chromium (Selenium). Latency = the browser's clock when the page has drawn a record (the
animation frame after its text and figures were updated) - the record's ``time`` (when the
prediction was made, just before its JSON line was printed); both clocks are this machine's.
It holds the window's details (beats, band power, attention), the server-sent event and the
drawing; ``event_to_drawn`` is the part from the server's sending of the event. The first
records (page load, history) are left out.

    python benchmarks/dashboard.py --count 120 --step 1 --screenshot docs/img/dashboard.png

Without ``--checkpoint`` a 1-epoch checkpoint is trained first on ../shared/data/eegmat
(``--dataset eegmat``, all its subjects) in ``--workdir``. Needs chromium + chromedriver
(Debian: apt-get install chromium chromium-driver) and ``pip install -e '.[test]'``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 3  # records drawn while the page loads its history


def train(data: Path, workdir: Path) -> Path:
    from maan import preprocess
    from maan.training.train import train_model

    model = workdir / "model" / "model.pt"
    if not model.exists():
        preprocess("eegmat", data, workdir / "features", jobs=2, progress=False)
        train_model(workdir / "features", "task", workdir / "model", config={"epochs": 1, "patience": 0},
                    progress=False, log=None)
    return model


def chromium(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


def small_png(src: Path, dst: Path) -> int:
    """The screenshot as a 256-colour PNG (a page of flat colours loses nothing visible)."""
    from PIL import Image

    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.open(src).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)
    return dst.stat().st_size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="default: train one (1 epoch) in --workdir")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "eegmat"))
    p.add_argument("--file", default="Subject00_1.edf", help="recording of --data to replay")
    p.add_argument("--workdir", default="runs/dashboard-benchmark")
    p.add_argument("--count", type=int, default=120, help="latencies measured (after the warm-up)")
    p.add_argument("--step", type=float, default=1.0)
    p.add_argument("--screenshot", default=None, metavar="PNG", help="also save the page here (after --count)")
    args = p.parse_args(argv)

    checkpoint = Path(args.checkpoint) if args.checkpoint else train(Path(args.data), Path(args.workdir))
    name = f"maan-dashboard-bench-{uuid.uuid4().hex[:8]}"
    maan = [sys.executable, "-m", "maan"]
    player = subprocess.Popen([*maan, "play", str(Path(args.data) / args.file), "--name", name, "-q"])
    stream = subprocess.Popen([*maan, "stream", "--checkpoint", str(checkpoint), "--source", name, "--dashboard",
                               "--port", "0", "--step", str(args.step)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    driver = None
    try:
        url = None
        for line in stream.stderr:  # the stream's stderr events; the first one names the page
            if line.startswith("{") and json.loads(line).get("event") == "dashboard":
                url = json.loads(line)["url"]
                break
        if url is None:
            raise SystemExit(f"maan stream --dashboard did not start (exit status {stream.wait()})")
        threading.Thread(target=stream.stderr.read, daemon=True).start()  # keep the pipe drained
        driver = chromium(1400, 1050)
        driver.get(url)
        deadline = time.monotonic() + 60 + 3 * (args.count + WARMUP) * args.step
        while driver.execute_script("return window.maanLatencies.length") < args.count + WARMUP:
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for predictions on the page")
            time.sleep(0.5)
        lat = np.asarray(driver.execute_script("return window.maanLatencies"), dtype=float)[WARMUP:]
        sent = np.asarray(driver.execute_script("return window.maanTransport"), dtype=float)[WARMUP:]
        out = {"records": int(lat.size), "step_s": args.step,
               "latency_p50_s": round(float(np.percentile(lat, 50)), 4),
               "latency_p99_s": round(float(np.percentile(lat, 99)), 4),
               "latency_max_s": round(float(lat.max()), 4),
               "event_to_drawn_p50_s": round(float(np.percentile(sent, 50)), 4),
               "event_to_drawn_p99_s": round(float(np.percentile(sent, 99)), 4),
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                          f"Python {platform.python_version()}, {driver.capabilities.get('browserVersion')}"}
        if args.screenshot:
            raw = Path(args.workdir) / "screenshot-full.png"
            raw.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(raw))
            out["screenshot"] = args.screenshot
            out["screenshot_bytes"] = small_png(raw, Path(args.screenshot))
        print(json.dumps(out, indent=2))
    finally:
        if driver is not None:
            driver.quit()
        for proc in (stream, player):
            proc.terminate()
            proc.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
