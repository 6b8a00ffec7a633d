"""Shared test fixtures: paths to the real recordings in ../shared/data (skipped when absent).

Tests marked ``gpu`` need a CUDA device. They are left out (deselected) unless pytest is given
``--gpu`` (``make test-gpu``, on a machine with a GPU), where a missing device fails them.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import maan

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(*parts: str) -> Path:
    """A file in ../shared/data, or a clean skip saying what is missing (as on a user's clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real recording {path} is not present (../shared/data ships with the project's CI only)")
    return path


def shared_eegmat(subjects) -> Path:
    """The shared eegmat folder, after checking (or cleanly skipping on) both recordings of each subject."""
    for subject in subjects:
        for part in (1, 2):
            shared_file("eegmat", f"{subject}_{part}.edf")
    return shared_file("eegmat")


def pytest_addoption(parser):
    parser.addoption("--gpu", action="store_true",
                     help="also run the tests marked gpu (they need a CUDA device; left out otherwise)")
    parser.addoption("--fuzz-long", action="store_true",
                     help="tests/test_fuzz.py: 20x the examples, random seeds and shrinking (local runs; CI "
                          "runs a fixed seed and a few examples)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--gpu"):
        return
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu:
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]


# -- a small synthetic AMIGOS-format cohort, preprocessed once per test session -------------
N_SUBJECTS = 6


@pytest.fixture(scope="session")
def cohort_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("amigos-synth")
    maan.synth_cohort("amigos", folder, n_subjects=N_SUBJECTS, seed=11, short_seconds=(20, 40), long_seconds=(60, 90))
    return folder


@pytest.fixture(scope="session")
def store(cohort_data, tmp_path_factory):
    """Path of the feature store (about 400 windows of 6 subjects)."""
    out = tmp_path_factory.mktemp("features") / "store"
    maan.preprocess("amigos", cohort_data, out, progress=False)
    return out


@pytest.fixture(scope="session")
def features(store):
    return maan.load_features(store)


def run_cli(argv, capsys):
    """Run ``maan ARGV`` in-process: exit status, stdout, stderr."""
    from maan.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    """The single stderr line (progress-bar refreshes aside), checked to hold no traceback."""
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]
