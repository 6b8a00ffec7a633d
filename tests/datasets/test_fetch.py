"""``maan fetch eegmat`` and ``maan.datasets.fetch_eegmat`` against a local HTTP server.

The server (127.0.0.1, a port the OS picks) serves the real eegmat files of ../shared/data
(subjects 0-3) through symlinks, with a SHA256SUMS.txt the tests write; it counts requests, and
can stall a file part-way or serve a damaged copy. No test needs the internet.
"""
from __future__ import annotations

import functools
import hashlib
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import maan
from maan.cli import build_parser, main
from maan.datasets.fetch import EEGMAT
from maan.errors import MaanError
from tests.conftest import one_line_error, shared_file
from tests.conftest import run_cli as run

SERVED = [f"Subject{s:02d}_{k}.edf" for s in range(4) for k in (1, 2)] + ["subject-info.csv"]
MAAN_SRC = str(Path(maan.__file__).resolve().parents[1])


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def shared_hashes():
    """``{name: sha256}`` of the shared eegmat files (the truth the downloads are checked against)."""
    folder = shared_file("eegmat")
    for name in SERVED:
        shared_file("eegmat", name)
    return {name: sha256(folder / name) for name in SERVED}


@pytest.fixture
def mirror(tmp_path, shared_hashes):
    """A folder laid out as PhysioNet's eegmat/1.0.0/: symlinks to the shared files and SHA256SUMS.txt."""
    root = tmp_path / "mirror"
    root.mkdir()
    for name in SERVED:
        (root / name).symlink_to(shared_file("eegmat", name))
    write_sums(root, shared_hashes)
    return root


def write_sums(root: Path, hashes: dict) -> None:
    (root / "SHA256SUMS.txt").write_text("".join(f"{h} {name}\n" for name, h in sorted(hashes.items())))


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 serving ``root``; records each request's path.

    ``stall[name] = n``: send the headers of ``name`` (full length) and its first ``n`` bytes,
    set ``stalled``, then hang until ``release`` is set.
    """

    def __init__(self, root: Path):
        self.requests: list[str] = []
        self.stall: dict[str, int] = {}
        self.stalled = threading.Event()
        self.release = threading.Event()
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                name = self.path.lstrip("/")
                if name in server.stall:
                    data = (root / name).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:server.stall[name]])
                    self.wfile.flush()
                    server.stalled.set()
                    server.release.wait(60)
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def serve():
    """``serve(root)`` -> a running Server; every one is stopped after the test."""
    servers = []

    def start(root):
        servers.append(Server(root))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()




def fetch_argv(out, url, *extra):
    return ["fetch", "eegmat", "--out", str(out), "--base-url", url, *extra]


def assert_verified(out: Path, names, hashes) -> None:
    for name in names:
        assert sha256(out / name) == hashes[name], name


def listing(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()}


# -- fetching -------------------------------------------------------------------------------
def test_api_fetches_every_listed_subject(mirror, serve, shared_hashes, tmp_path):
    server = serve(mirror)
    out = tmp_path / "eegmat"
    folder = maan.datasets.fetch_eegmat(out, base_url=server.url, progress=False)
    assert folder == out
    # no --subjects: every subject SHA256SUMS.txt lists (0-3 here), the checksums and the README
    assert listing(out) == set(SERVED) | {"SHA256SUMS.txt", "README"}
    assert_verified(out, SERVED, shared_hashes)
    assert sorted(server.requests) == sorted(["/SHA256SUMS.txt"] + [f"/{n}" for n in SERVED])
    assert server.requests[0] == "/SHA256SUMS.txt"
    readme = (out / "README").read_text()
    assert "Open Data Commons Attribution License v1.0" in readme
    assert "Zyma I" in readme and "Data 4(1):14, 2019" in readme and "Circulation 101(23):e215-e220" in readme
    assert f"Source: {EEGMAT.base_url} (fetched from {server.url})" in readme
    umask = os.umask(0)
    os.umask(umask)
    for name in listing(out):  # as readable as any file the user writes (pooch's temporary files are 0600)
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name


def test_cli_subset_prints_licence_once_and_next_command(mirror, serve, shared_hashes, tmp_path, capsys):
    server = serve(mirror)
    out = tmp_path / "eegmat"
    code, stdout, stderr = run(fetch_argv(out, server.url, "--subjects", "1,3", "-q"), capsys)
    assert code == 0, stderr
    assert stderr == ""
    wanted = ["Subject01_1.edf", "Subject01_2.edf", "Subject03_1.edf", "Subject03_2.edf", "subject-info.csv"]
    assert listing(out) == set(wanted) | {"SHA256SUMS.txt", "README"}
    assert_verified(out, wanted, shared_hashes)
    assert stdout.count("Open Data Commons Attribution License v1.0") == 1
    assert stdout.count("Zyma I") == 1
    assert "subjects 1,3" in stdout and "fetched 6 file(s)" in stdout
    assert f"Next: maan preprocess --dataset eegmat --data {out} --out features/eegmat" in stdout


def test_progress_bar_is_shown_unless_quiet(mirror, serve, tmp_path, capsys):
    server = serve(mirror)
    code, _, stderr = run(fetch_argv(tmp_path / "a", server.url, "--subjects", "0"), capsys)
    assert code == 0
    assert "fetch eegmat" in stderr and "%|" in stderr


def test_rerun_downloads_nothing_and_a_larger_subset_only_the_new_files(mirror, serve, tmp_path, capsys):
    server = serve(mirror)
    out = tmp_path / "eegmat"
    assert run(fetch_argv(out, server.url, "--subjects", "1", "-q"), capsys)[0] == 0
    server.requests.clear()
    code, stdout, _ = run(fetch_argv(out, server.url, "--subjects", "1", "-q"), capsys)
    assert code == 0
    assert server.requests == []  # SHA256SUMS.txt is kept: a complete folder needs no network
    assert "fetched 0 file(s)" in stdout and "already present and verified: 3 file(s)" in stdout
    code, stdout, _ = run(fetch_argv(out, server.url, "--subjects", "1-2", "-q"), capsys)
    assert code == 0
    assert server.requests == ["/Subject02_1.edf", "/Subject02_2.edf"]
    assert "already present and verified: 3 file(s)" in stdout


def test_rerun_replaces_a_damaged_local_file(mirror, serve, shared_hashes, tmp_path, capsys):
    server = serve(mirror)
    out = tmp_path / "eegmat"
    assert run(fetch_argv(out, server.url, "--subjects", "2", "-q"), capsys)[0] == 0
    damaged = out / "Subject02_2.edf"
    damaged.write_bytes(damaged.read_bytes()[:1000])  # e.g. truncated by a copy
    server.requests.clear()
    code, stdout, _ = run(fetch_argv(out, server.url, "--subjects", "2", "-q"), capsys)
    assert code == 0
    assert server.requests == ["/Subject02_2.edf"]
    assert "replaced (hash differed from the checksums): Subject02_2.edf" in stdout
    assert_verified(out, ["Subject02_2.edf"], shared_hashes)


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
def test_interrupted_download_never_sits_under_its_name_and_a_rerun_completes(
        sig, mirror, serve, shared_hashes, tmp_path, capsys):
    server = serve(mirror)
    server.stall["Subject01_1.edf"] = 300_000  # of 3.8 MB, then the server hangs
    out = tmp_path / "eegmat"
    argv = fetch_argv(out, server.url, "--subjects", "0-1", "-q")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([MAAN_SRC, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "maan", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert server.stalled.wait(60), "the download never reached the stalled file"
        partial = out / ".partial"
        deadline = time.monotonic() + 30
        while not any(p.stat().st_size > 0 for p in partial.glob("*")):  # bytes on disk, mid-file
            assert time.monotonic() < deadline, "no partial bytes written"
            time.sleep(0.05)
        proc.send_signal(getattr(signal, sig))
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    server.release.set()
    assert not (out / "Subject01_1.edf").exists()
    assert_verified(out, ["subject-info.csv", "Subject00_1.edf", "Subject00_2.edf"], shared_hashes)
    if sig == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
        assert any(p.stat().st_size > 0 for p in (out / ".partial").iterdir())  # left where it cannot mislead
    else:
        assert proc.returncode == 130
        assert "interrupted; finished work is kept, rerun to resume" in one_line_error(stderr)
        assert not (out / ".partial").exists()

    server.stall.clear()
    server.requests.clear()
    code, stdout, stderr = run(argv, capsys)
    assert code == 0, stderr
    assert server.requests == ["/Subject01_1.edf", "/Subject01_2.edf"]
    assert_verified(out, [f"Subject0{s}_{k}.edf" for s in (0, 1) for k in (1, 2)], shared_hashes)
    assert listing(out) == {"SHA256SUMS.txt", "README", "subject-info.csv",
                            "Subject00_1.edf", "Subject00_2.edf", "Subject01_1.edf", "Subject01_2.edf"}


# -- failures: one line, exit 2 -------------------------------------------------------------
def test_corrupted_file_on_the_server_is_refused_and_removed(mirror, serve, tmp_path, capsys):
    bad = mirror / "Subject01_2.edf"
    data = bytearray(bad.read_bytes())
    data[5000] ^= 0xFF
    bad.unlink()
    bad.write_bytes(bytes(data))
    server = serve(mirror)
    out = tmp_path / "eegmat"
    code, _, stderr = run(fetch_argv(out, server.url, "--subjects", "1"), capsys)  # with progress bars
    assert code == 2
    line = one_line_error(stderr)
    assert line.startswith("maan fetch: error: Subject01_2.edf")
    assert "SHA-256 differs" in line and "removed" in line
    assert not (out / "Subject01_2.edf").exists()
    assert not (out / ".partial").exists()
    assert (out / "Subject01_1.edf").exists()  # what was verified before is kept


def test_no_server_names_the_url(tmp_path, capsys):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/eegmat/"
    code, _, stderr = run(fetch_argv(tmp_path / "eegmat", url, "-q"), capsys)
    assert code == 2
    line = one_line_error(stderr)
    assert f"{url}SHA256SUMS.txt: cannot connect" in line and "refused" in line.lower()
    assert not (tmp_path / "eegmat").exists()  # no empty folder left behind


def test_connection_lost_mid_file_names_the_url(mirror, serve, tmp_path, capsys):
    server = serve(mirror)
    server.stall["Subject00_1.edf"] = 100_000
    server.release.set()  # the server sends 100 kB of the announced 3.8 MB, then closes
    out = tmp_path / "eegmat"
    code, _, stderr = run(fetch_argv(out, server.url, "--subjects", "0", "-q"), capsys)
    assert code == 2
    line = one_line_error(stderr)
    assert line == f"maan fetch: error: {server.url}Subject00_1.edf: connection lost during the download"
    assert not (out / "Subject00_1.edf").exists() and not (out / ".partial").exists()


def test_server_that_stops_answering_names_the_url(mirror, serve, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("maan.datasets.fetch.TIMEOUT", 0.5)
    server = serve(mirror)
    server.stall["Subject00_2.edf"] = 100_000  # then silence, connection open
    out = tmp_path / "eegmat"
    code, _, stderr = run(fetch_argv(out, server.url, "--subjects", "0", "-q"), capsys)
    assert code == 2
    line = one_line_error(stderr)
    assert line == f"maan fetch: error: {server.url}Subject00_2.edf: no answer from the server for 0.5 s (timed out)"
    assert not (out / "Subject00_2.edf").exists() and (out / "Subject00_1.edf").exists()


def test_http_404_names_the_url(mirror, serve, tmp_path, capsys):
    (mirror / "Subject02_2.edf").unlink()  # listed in SHA256SUMS.txt, missing on the server
    server = serve(mirror)
    out = tmp_path / "eegmat"
    code, _, stderr = run(fetch_argv(out, server.url, "--subjects", "2", "-q"), capsys)
    assert code == 2
    assert one_line_error(stderr) == f"maan fetch: error: {server.url}Subject02_2.edf: HTTP 404 File not found"
    assert not (out / "Subject02_2.edf").exists()


def test_missing_checksums_is_a_404_on_them(mirror, serve, tmp_path, capsys):
    (mirror / "SHA256SUMS.txt").unlink()
    server = serve(mirror)
    code, _, stderr = run(fetch_argv(tmp_path / "eegmat", server.url, "-q"), capsys)
    assert code == 2
    assert f"{server.url}SHA256SUMS.txt: HTTP 404" in one_line_error(stderr)
    assert server.requests == ["/SHA256SUMS.txt"]


def test_a_page_that_is_not_checksums_is_refused_and_not_kept(mirror, serve, tmp_path, capsys):
    (mirror / "SHA256SUMS.txt").write_text("<html><body>Not here</body></html>\n")
    server = serve(mirror)
    out = tmp_path / "eegmat"
    code, _, stderr = run(fetch_argv(out, server.url, "-q"), capsys)
    assert code == 2
    line = one_line_error(stderr)
    assert f"{server.url}SHA256SUMS.txt: line 1 is not '<sha256 hex> <file name>'" in line
    assert not (out / "SHA256SUMS.txt").exists()
    assert server.requests == ["/SHA256SUMS.txt"]


def test_subject_not_in_checksums_is_a_clear_error(mirror, serve, tmp_path, capsys):
    server = serve(mirror)
    out = tmp_path / "eegmat"
    code, _, stderr = run(fetch_argv(out, server.url, "--subjects", "3-4", "-q"), capsys)
    assert code == 2
    line = one_line_error(stderr)
    assert f"{server.url}SHA256SUMS.txt does not list Subject04_1.edf, Subject04_2.edf" in line
    assert "lists subject(s) 0-3" in line
    assert server.requests == ["/SHA256SUMS.txt"]  # nothing else fetched


def test_file_not_in_checksums_is_an_error(mirror, serve, shared_hashes, tmp_path, capsys):
    write_sums(mirror, {k: v for k, v in shared_hashes.items() if k != "subject-info.csv"})
    server = serve(mirror)
    code, _, stderr = run(fetch_argv(tmp_path / "eegmat", server.url, "-q"), capsys)
    assert code == 2
    assert f"{server.url}SHA256SUMS.txt does not list subject-info.csv" in one_line_error(stderr)


@pytest.mark.parametrize("value", ["0-40", "36", "x", "5-3", "1,,2", ""])
def test_bad_subjects_is_one_line_exit_2(value, tmp_path, capsys):
    out = tmp_path / "eegmat"
    code, _, stderr = run(fetch_argv(out, "http://127.0.0.1:9/", "--subjects", value, "-q"), capsys)
    assert code == 2
    line = one_line_error(stderr)
    assert "--subjects" in line and "0-35" in line and f"got {value!r}" in line
    assert not out.exists()


@pytest.mark.parametrize("url", ["ftp://example.org/eegmat/", "physionet.org/files/eegmat/1.0.0/", ""])
def test_bad_base_url_is_one_line_exit_2(url, tmp_path, capsys):
    code, _, stderr = run(fetch_argv(tmp_path / "eegmat", url, "-q"), capsys)
    assert code == 2
    assert "--base-url" in one_line_error(stderr) and "http://" in stderr


def test_api_checks_its_parameters(tmp_path):
    with pytest.raises(MaanError, match=r"--subjects: expected subject numbers in 0-35.*got \[0, 36\]"):
        maan.datasets.fetch_eegmat(tmp_path / "x", subjects=[0, 36], progress=False)
    with pytest.raises(MaanError, match="--subjects.*got 2.5"):
        maan.datasets.fetch_eegmat(tmp_path / "x", subjects=2.5, progress=False)
    (tmp_path / "file").write_text("")
    with pytest.raises(MaanError, match="must be a folder"):
        maan.datasets.fetch_eegmat(tmp_path / "file", base_url="http://127.0.0.1:9/", progress=False)
    assert not (tmp_path / "x").exists()


def test_subject_lists_are_parsed_as_documented():
    from maan.datasets.fetch import format_subjects, parse_subjects

    assert parse_subjects("0-3,7", EEGMAT.subjects) == [0, 1, 2, 3, 7]
    assert parse_subjects("0,3,5", EEGMAT.subjects) == [0, 3, 5]
    assert parse_subjects("9-9", EEGMAT.subjects) == [9]
    assert parse_subjects(range(36), EEGMAT.subjects) == list(range(36))
    assert parse_subjects(None, EEGMAT.subjects) is None
    assert format_subjects([7, 0, 1, 2, 3, 9, 10]) == "0-3,7,9-10"


def test_fetch_help_fits_on_one_screen(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    for argv in (["fetch", "--help"], ["fetch", "eegmat", "--help"]):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(argv)
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert len(text.splitlines()) <= 30, text
        assert "eegmat" in text and "--subjects" in text and "--base-url" in text


def test_the_command_line_does_not_import_pooch_until_a_fetch_runs():
    code = ("import sys; from maan.cli import build_parser; build_parser(); import maan.datasets; "
            "assert 'pooch' not in sys.modules and 'requests' not in sys.modules, 'imported early'")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([MAAN_SRC, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


@pytest.mark.slow
def test_readme_real_data_quickstart_against_a_local_server(mirror, serve, tmp_path, capsys, monkeypatch):
    """The README's three lines (fetch, preprocess --dataset eegmat, cv) with the server as the mirror."""
    import json

    server = serve(mirror)
    monkeypatch.chdir(tmp_path)
    assert main(["fetch", "eegmat", "--out", "data/eegmat", "--base-url", server.url, "-q"]) == 0
    assert main(["preprocess", "--dataset", "eegmat", "--data", "data/eegmat", "--out", "features/eegmat", "-q"]) == 0
    assert main(["cv", "--features", "features/eegmat", "--target", "task", "--protocol", "loso",
                 "--recipe", "cross-subject", "--out", "runs/eegmat", "--epochs", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "Next: maan preprocess --dataset eegmat" in out and "Features of 4 subjects (eegmat, data)" in out
    results = json.loads(Path("runs/eegmat/results.json").read_text())
    assert results["dataset"] == "eegmat" and results["n_subjects"] == results["folds"] == 4
    assert not results["synthetic"] and results["n_windows"] == 96
    manifest = json.loads(Path("features/eegmat/manifest.json").read_text())
    assert manifest["subject_info"]["Subject00"]["Count quality"] == 0
