"""Synthetic MAHNOB-HCI sessions: determinism, cohort-size independence, options, folder safety."""
from __future__ import annotations

import hashlib

import pytest

from maan.datasets import synth_cohort
from maan.datasets.synthetic import is_synthetic
from maan.datasets.synthetic_mahnob import synth, synth_mahnob
from maan.errors import InvalidInputError, MaanError

TINY = {"clip_seconds": (5.0, 6.0), "baseline_seconds": 1.0, "n_trials": 2, "neutral_sessions": 1}


def _digests(folder):
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def test_deterministic_and_independent_of_cohort_size(tmp_path):
    one = synth_mahnob(tmp_path / "a", n_subjects=1, seed=3, **TINY)
    two = synth_mahnob(tmp_path / "b", n_subjects=2, seed=3, **TINY)
    again = synth_mahnob(tmp_path / "c", n_subjects=2, seed=3, **TINY)
    other = synth_mahnob(tmp_path / "d", n_subjects=1, seed=4, **TINY)
    assert [p.name for p in one] == ["Part_1_N_Trial1_emotion.bdf", "Part_1_S_Trial1_emotion.bdf",
                                     "Part_1_S_Trial2_emotion.bdf"]
    assert len(two) == 6 and two[3].name == "Part_2_N_Trial1_emotion.bdf"
    b, c = _digests(tmp_path / "b"), _digests(tmp_path / "c")
    assert b == c
    a = _digests(tmp_path / "a")
    assert a == {k: v for k, v in b.items() if k in a}  # participant 1 does not depend on participant 2
    assert _digests(tmp_path / "d") != a and len(other) == 3


def test_options_and_output_folder(tmp_path):
    with pytest.raises(MaanError, match="long_seconds"):
        synth(tmp_path / "x", 1, long_seconds=(10.0, 20.0))
    with pytest.raises(MaanError, match="neutral_sessions"):
        synth_mahnob(tmp_path / "x", 1, clip_seconds=(5.0, 6.0), n_trials=2, neutral_sessions=3)
    with pytest.raises(MaanError, match="clip_seconds"):
        synth_mahnob(tmp_path / "x", 1, clip_seconds=(6.0, 5.0))
    # the CLI's --short-seconds is the clip range; a rerun replaces an earlier synthetic cohort
    out = tmp_path / "cohort"
    synth_cohort("mahnob", out, n_subjects=1, seed=0, short_seconds=(5.0, 6.0))
    assert len(list((out / "Sessions").iterdir())) == 22  # 20 rated clips, 2 neutral
    synth(out, 1, 1, **TINY)
    assert len(list((out / "Sessions").iterdir())) == 3 and is_synthetic(out)
    # sessions that maan did not write are never removed
    real = tmp_path / "real"
    (real / "Sessions" / "2").mkdir(parents=True)
    (real / "Sessions" / "2" / "session.xml").write_text("<session/>")
    with pytest.raises(InvalidInputError, match="not written by maan synth"):
        synth_mahnob(real, 1, **TINY)
    assert (real / "Sessions" / "2" / "session.xml").is_file() and not is_synthetic(real)
