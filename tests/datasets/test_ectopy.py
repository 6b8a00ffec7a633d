"""Inserted ventricular ectopic beats: truth, burden, timing, shape (maan.datasets.ectopy)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maan.datasets.ectopy import (
    AMPLITUDE,
    PREMATURITY,
    QRS_SECONDS,
    VENTRICULAR_PATTERNS,
    insert_ventricular_beats,
    parametric_ventricular_beat,
    ventricular_template,
)

FS = 360.0


def sinus(n_beats=200, rr=0.8, fs=FS, seed=0):
    """A sinus-like ECG: narrow unit R waves (20 ms) on slightly varying RR intervals."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rr * (1 + 0.03 * rng.standard_normal(n_beats)))
    peaks = np.round(times * fs).astype(np.int64)
    t = np.arange(peaks[-1] + int(fs)) / fs
    x = np.zeros_like(t)
    for p in peaks:
        sl = slice(max(p - 20, 0), p + 21)
        x[sl] += np.exp(-0.5 * ((t[sl] - p / fs) / 0.008) ** 2)
    return x, peaks


@pytest.mark.parametrize("pattern", list(VENTRICULAR_PATTERNS))
def test_burden_truth_and_compensatory_pause(pattern):
    x, peaks = sinus()
    out = insert_ventricular_beats(x, FS, peaks, pattern, seed=3)
    share, run = VENTRICULAR_PATTERNS[pattern]
    assert out.rpeaks.size == peaks.size and np.all(np.diff(out.rpeaks) > 0)
    assert abs(out.is_ventricular.mean() - share) < 0.03
    # sinus beats keep their place (compensatory pause); every ventricular beat is premature
    np.testing.assert_array_equal(out.rpeaks[~out.is_ventricular], peaks[~out.is_ventricular])
    v = np.flatnonzero(out.is_ventricular)
    rr = np.diff(peaks).mean()
    early = (peaks[v] - out.rpeaks[v]) / rr
    assert np.all(early >= PREMATURITY[0] - 0.05)
    # runs have the pattern's length: no two runs touch
    starts = v[np.r_[True, np.diff(v) > 1]]
    lengths = np.diff(np.r_[np.flatnonzero(np.r_[True, np.diff(v) > 1]), v.size])
    assert set(lengths) == {run} and starts.min() >= 2


def test_ventricular_beats_are_wide_and_sized_relative_to_sinus():
    x, peaks = sinus()
    out = insert_ventricular_beats(x, FS, peaks, "isolated-30", seed=1)
    for p in out.rpeaks[out.is_ventricular]:
        seg = out.ecg[p - int(0.15 * FS): p + int(0.15 * FS)]
        peak = np.abs(out.ecg[p])
        assert AMPLITUDE[0] * 0.9 <= peak <= AMPLITUDE[1] * 1.1
        wide = np.abs(seg) >= 0.5 * peak  # half-height width: far wider than the 20-ms sinus R
        assert wide.sum() / FS > 0.03
    # the sinus P-QRS-T that a ventricular beat replaces is gone
    for p in peaks[out.is_ventricular]:
        assert np.abs(out.ecg[p - 3: p + 4]).max() < 0.5 * np.abs(out.ecg).max()


def test_deterministic_per_seed_and_different_across_seeds():
    x, peaks = sinus()
    a = insert_ventricular_beats(x, FS, peaks, "couplets", seed=5)
    b = insert_ventricular_beats(x, FS, peaks, "couplets", seed=5)
    c = insert_ventricular_beats(x, FS, peaks, "couplets", seed=6)
    np.testing.assert_array_equal(a.ecg, b.ecg)
    assert not np.array_equal(a.rpeaks, c.rpeaks)


def test_template_is_cut_at_its_extremum_and_used_stretched():
    x, peaks = sinus()
    beat = int(peaks[50])
    tpl = ventricular_template(x, FS, beat)
    apex = int(round(0.25 * FS))
    assert np.argmax(np.abs(tpl)) == apex and tpl[0] == 0 and tpl[-1] == 0
    out = insert_ventricular_beats(x, FS, peaks, "bigeminy", seed=0, template=tpl, template_fs=FS)
    assert abs(out.is_ventricular.mean() - 0.5) < 0.03


@settings(max_examples=25, deadline=None)
@given(st.floats(*QRS_SECONDS), st.integers(0, 2**31 - 1), st.sampled_from([128.0, 360.0, 500.0]))
def test_parametric_beat_has_unit_extremum_at_the_apex(qrs, seed, fs):
    beat = parametric_ventricular_beat(fs, qrs, np.random.default_rng(seed))
    assert beat.size == int(round(0.25 * fs)) + int(round(0.5 * fs))
    assert np.isclose(np.abs(beat).max(), 1.0)
    # the truth marks 0.25 s; the Q and S lobes may move the extremum by a few milliseconds
    assert abs(int(np.argmax(np.abs(beat))) - int(round(0.25 * fs))) / fs <= 0.006


def test_unknown_pattern_is_refused():
    x, peaks = sinus(20)
    with pytest.raises(ValueError, match="pattern must be one of"):
        insert_ventricular_beats(x, FS, peaks, "trigeminy")
