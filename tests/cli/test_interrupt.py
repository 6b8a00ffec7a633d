"""Interruption suite (issue #28): Ctrl-C and SIGKILL at a fixed schedule of moments.

``maan preprocess --jobs 2``, ``maan cv`` and ``maan train`` run as subprocesses in their own
session; the signal goes to the whole process group, as a terminal's Ctrl-C does (it reaches
every worker). The contract checked at each point:

* SIGINT: exit status 130 (or 0 when the command had already finished), exactly one stderr line
  "interrupted; finished work is kept, rerun to resume", no traceback (workers included), no
  hang, and no process of the group left running afterwards;
* SIGKILL: nothing half-written that breaks the resume;
* then the rerun of the same command exits 0 and gives exactly the results of an uninterrupted
  run (features: every array; cv: the metrics of every model per fold; train: the weights and
  model.json), timing fields aside.

Delays are fractions of the duration of one uninterrupted run measured here first, so the
schedule covers start-up, work and the end on slow and fast machines alike. Every wait has a
timeout; running past it is a hang, and the process group is killed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import maan

pytestmark = pytest.mark.slow

MESSAGE = "interrupted; finished work is kept, rerun to resume"
TIMEOUT = 120.0  # seconds any one command may take before it counts as a hang
GROUP_EXIT_TIMEOUT = 15.0  # seconds the workers get to go once the main process has exited
TIMING_KEYS = frozenset({"seconds", "seconds_this_call", "training_seconds"})
# One intra-op thread: the machine running the suite is small and shared, and thread
# oversubscription makes training ten times slower. Every run (reference, interrupted, rerun)
# uses the same setting, so the results are comparable bit for bit.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# (signal, fraction of an uninterrupted run's duration); fixed, not random. A run's duration
# varies by a fifth or so from one run to the next on a busy machine, so the last points stay
# below 1: a signal after the end is allowed (exit 0) but checks less.
# preprocess: importing (0.15), workers busy and nothing saved yet (0.6, 0.7), the first subjects
# saved while the others run (0.8, 0.85), the last subjects and the manifest (0.92).
PREPROCESS_SCHEDULE = [("SIGINT", 0.15), ("SIGINT", 0.7), ("SIGINT", 0.85), ("SIGINT", 0.92),
                       ("SIGKILL", 0.6), ("SIGKILL", 0.8)]
# cv and train spend about half their time importing torch and Lightning (Ctrl-C there takes the
# path checked with preprocess), so their points are late: in the folds / the training and at
# the end (fold files, results.json, the checkpoint).
CV_SCHEDULE = [("SIGINT", 0.6), ("SIGINT", 0.8), ("SIGKILL", 0.7)]
TRAIN_SCHEDULE = [("SIGINT", 0.75), ("SIGKILL", 0.85)]
# Ctrl-C right after Enter: while Python imports maan's command line and builds the parser.
START_UP_DELAY = 0.1


def _ids(schedule):
    return [f"{name}@{fraction:.2f}" for name, fraction in schedule]


# -- running a command, signalling its process group --------------------------------------------
@dataclass
class Outcome:
    argv: list
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    signalled: bool  # the signal was sent while the command still ran

    def describe(self) -> str:
        return (f"maan {' '.join(self.argv)}\nexit status {self.returncode} after {self.seconds:.1f} s"
                f"{' (signal sent)' if self.signalled else ''}\n--- stderr ---\n{self.stderr[-4000:]}"
                f"\n--- stdout ---\n{self.stdout[-1500:]}")


def _group_alive(pgid: int) -> list[int]:
    """PIDs of the live (not zombie) processes of process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: any member, zombies included
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    alive = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            alive.append(int(entry.name))
    return alive


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def run_maan(argv, cwd, signum: int | None = None, delay: float | None = None) -> Outcome:
    """Run ``python -m maan ARGV`` in a new session; send ``signum`` to its process group after
    ``delay`` seconds unless it has finished by then. A hang or a worker left behind fails the
    test (after killing the group)."""
    argv = [str(a) for a in argv]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "maan", *argv], cwd=cwd, env=ENV, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, text=True, start_new_session=True)
        pgid = proc.pid  # start_new_session: the child leads its own group
        signalled = hung = False
        try:
            if signum is not None:
                try:
                    proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    _killpg(pgid, signum)
                    signalled = True
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                hung = True
        finally:
            if proc.poll() is None:
                _killpg(pgid, signal.SIGKILL)
                proc.wait()
        seconds = time.monotonic() - start
        deadline = time.monotonic() + GROUP_EXIT_TIMEOUT
        left = _group_alive(pgid)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = _group_alive(pgid)
        if left:
            _killpg(pgid, signal.SIGKILL)
        out.seek(0)
        err.seek(0)
        outcome = Outcome(argv, proc.returncode, out.read(), err.read(), seconds, signalled)
    if hung:
        pytest.fail(f"hang: no exit within {TIMEOUT:.0f} s (process group killed)\n{outcome.describe()}")
    if left:
        pytest.fail(f"processes {left} of the group still ran {GROUP_EXIT_TIMEOUT:.0f} s after the command "
                    f"exited (killed)\n{outcome.describe()}")
    return outcome


def check_finished(outcome: Outcome) -> None:
    assert outcome.returncode == 0, f"expected exit status 0\n{outcome.describe()}"
    assert "Traceback" not in outcome.stderr + outcome.stdout, f"traceback\n{outcome.describe()}"
    assert MESSAGE not in outcome.stderr, f"interruption message without an interruption\n{outcome.describe()}"


def check_interrupted(outcome: Outcome, signum: int) -> None:
    """The interrupted run's own contract (the rerun is checked separately)."""
    if signum == signal.SIGKILL:
        assert outcome.returncode in (0, -signal.SIGKILL), outcome.describe()
        return
    assert "Traceback" not in outcome.stderr + outcome.stdout, f"traceback after Ctrl-C\n{outcome.describe()}"
    assert outcome.returncode in (0, 130), f"Ctrl-C must end with exit status 130\n{outcome.describe()}"
    lines = [line for line in outcome.stderr.splitlines() if MESSAGE in line]
    expected = 1 if outcome.returncode == 130 else 0
    assert len(lines) == expected, (f"expected {expected} line(s) with {MESSAGE!r} on stderr, got "
                                    f"{len(lines)}\n{outcome.describe()}")


def interrupt_then_rerun(argv, cwd, signal_name: str, delay: float) -> Outcome:
    signum = getattr(signal, signal_name)
    interrupted = run_maan(argv, cwd, signum, delay)
    print(f"maan {argv[0]}: {signal_name} after {delay:.2f} s: exit status {interrupted.returncode} "
          f"after {interrupted.seconds:.2f} s{'' if interrupted.signalled else ' (finished before the signal)'}")
    check_interrupted(interrupted, signum)
    rerun = run_maan(argv, cwd)
    check_finished(rerun)
    return rerun


# -- the three commands and what "the same results" means for each ------------------------------
def preprocess_argv(data: Path, out: Path) -> list:
    return ["preprocess", "--dataset", "amigos", "--data", data, "--out", out, "--jobs", "2", "-q"]


def cv_argv(store: Path, out: Path) -> list:
    return ["cv", "--features", store, "--target", "arousal", "--out", out, "--folds", "2", "--epochs", "2",
            "--protocol", "segment-kfold", "--seed", "0", "--accelerator", "cpu", "-q"]


def train_argv(store: Path, out: Path) -> list:
    return ["train", "--features", store, "--target", "arousal", "--out", out, "--epochs", "2",
            "--seed", "0", "--accelerator", "cpu", "-q"]


def feature_arrays(path: Path) -> dict:
    features = maan.load_features(path)
    arrays = {name: getattr(features, name) for name in ("ecg", "eeg", "subject", "trial", "window_start")}
    arrays.update({f"labels/{target}": labels for target, labels in features.labels.items()})
    return arrays


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def cv_metrics(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    return {name: without_timing(model) for name, model in results["models"].items()}


def train_outputs(out: Path) -> tuple[dict, dict]:
    import torch

    meta = without_timing(json.loads((out / "model.json").read_text()))
    meta.pop("weights_sha256", None)  # the weights are compared themselves
    state = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    return meta, {k: v.numpy() for k, v in state.items()}


def assert_same_arrays(got: dict, expected: dict, what: str) -> None:
    assert sorted(got) == sorted(expected), f"{what}: different keys"
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{what}: {key} differs")


@dataclass
class Reference:
    seconds: float
    results: object


# -- references: one uninterrupted run of each command (its duration sets the schedule) ---------
@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interrupt-cohort")
    maan.synth_cohort("amigos", folder, n_subjects=4, seed=11, short_seconds=(20, 40), long_seconds=(60, 90))
    return folder


@pytest.fixture(scope="module")
def preprocessed(cohort, tmp_path_factory):
    """The uninterrupted store (also the input of cv and train) and its duration."""
    out = tmp_path_factory.mktemp("interrupt-reference") / "store"
    outcome = run_maan(preprocess_argv(cohort, out), out.parent)
    check_finished(outcome)
    return out, Reference(outcome.seconds, feature_arrays(out))


@pytest.fixture(scope="module")
def cv_reference(preprocessed, tmp_path_factory):
    store, _ = preprocessed
    out = tmp_path_factory.mktemp("interrupt-cv-reference") / "run"
    outcome = run_maan(cv_argv(store, out), out.parent)
    check_finished(outcome)
    return Reference(outcome.seconds, cv_metrics(out))


@pytest.fixture(scope="module")
def train_reference(preprocessed, tmp_path_factory):
    store, _ = preprocessed
    out = tmp_path_factory.mktemp("interrupt-train-reference") / "model"
    outcome = run_maan(train_argv(store, out), out.parent)
    check_finished(outcome)
    return Reference(outcome.seconds, train_outputs(out))


# -- the suite -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("signal_name", "fraction"), PREPROCESS_SCHEDULE, ids=_ids(PREPROCESS_SCHEDULE))
def test_preprocess_jobs2_interrupted_then_rerun(cohort, preprocessed, tmp_path, signal_name, fraction):
    _, reference = preprocessed
    out = tmp_path / "store"
    interrupt_then_rerun(preprocess_argv(cohort, out), tmp_path, signal_name, fraction * reference.seconds)
    assert_same_arrays(feature_arrays(out), reference.results, "features after the rerun")


def test_preprocess_ctrl_c_at_start_up(cohort, preprocessed, tmp_path):
    """Ctrl-C while the command line is still starting (imports, parser) obeys the same contract."""
    _, reference = preprocessed
    out = tmp_path / "store"
    interrupt_then_rerun(preprocess_argv(cohort, out), tmp_path, "SIGINT", START_UP_DELAY)
    assert_same_arrays(feature_arrays(out), reference.results, "features after the rerun")


@pytest.mark.parametrize(("signal_name", "fraction"), CV_SCHEDULE, ids=_ids(CV_SCHEDULE))
def test_cv_interrupted_then_rerun(preprocessed, cv_reference, tmp_path, signal_name, fraction):
    store, _ = preprocessed
    out = tmp_path / "run"
    interrupt_then_rerun(cv_argv(store, out), tmp_path, signal_name, fraction * cv_reference.seconds)
    got = cv_metrics(out)
    assert sorted(got) == sorted(cv_reference.results), "cv after the rerun: different models"
    for name, expected in cv_reference.results.items():
        assert got[name]["per_fold"] == expected["per_fold"], f"cv after the rerun: per-fold metrics of {name} differ"
        assert got[name] == expected, f"cv after the rerun: metrics of {name} differ"


@pytest.mark.parametrize(("signal_name", "fraction"), TRAIN_SCHEDULE, ids=_ids(TRAIN_SCHEDULE))
def test_train_interrupted_then_rerun(preprocessed, train_reference, tmp_path, signal_name, fraction):
    store, _ = preprocessed
    out = tmp_path / "model"
    interrupt_then_rerun(train_argv(store, out), tmp_path, signal_name, fraction * train_reference.seconds)
    meta, weights = train_outputs(out)
    expected_meta, expected_weights = train_reference.results
    assert meta == expected_meta, "train after the rerun: model.json differs"
    assert_same_arrays(weights, expected_weights, "train after the rerun: weights")
