"""Helpers shared by the benchmarks: machine description and process-tree memory sampling."""
from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    return f"{os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}"


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("PPid:"):
                        if int(line.split()[1]) == pid:
                            out.append(int(entry.name))
                        break
            except OSError:
                continue
    return out


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemorySampler:
    """Peak of the summed resident memory of a process and all its descendants (Linux /proc)."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid, self.interval, self.peak_kib = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            pids, frontier = [self.pid], [self.pid]
            while frontier:
                kids = [c for p in frontier for c in _children(p)]
                pids += kids
                frontier = kids
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(p) for p in pids))
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
