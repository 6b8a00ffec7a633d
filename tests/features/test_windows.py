import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from maan.errors import MaanError
from maan.features.windows import finite_runs, run_of_window, samples_per, window_starts


def test_window_starts_drop_the_trailing_remainder():
    np.testing.assert_allclose(window_starts(35.0, 10.0, 10.0), [0, 10, 20])
    np.testing.assert_allclose(window_starts(30.0, 10.0, 10.0), [0, 10, 20])
    np.testing.assert_allclose(window_starts(25.0, 10.0, 5.0), [0, 5, 10, 15])
    assert window_starts(9.99, 10.0, 10.0).size == 0


@given(st.floats(0, 5000), st.sampled_from([1.0, 2.5, 10.0]), st.sampled_from([1.0, 5.0, 10.0]))
def test_every_window_fits_and_no_further_one_would(duration, window, step):
    starts = window_starts(duration, window, step)
    assert np.all(starts + window <= duration + 1e-6)
    next_start = starts[-1] + step if len(starts) else 0.0
    assert next_start + window > duration - 1e-6


def test_identical_time_span_at_two_rates():
    starts = window_starts(60.0, 10.0, 10.0)
    ecg = np.round(starts * 256).astype(int)
    eeg = np.round(starts * 128).astype(int)
    np.testing.assert_array_equal(ecg / 256, eeg / 128)
    assert samples_per(10.0, 256) / 256 == samples_per(10.0, 128) / 128


def test_samples_per_refuses_fractional_lengths():
    with pytest.raises(MaanError, match="whole"):
        samples_per(0.3, 128)
    for seconds in (1e308, float("nan"), 1e-308):
        with pytest.raises(MaanError, match="whole, positive number of samples"):
            samples_per(seconds, 128)


@pytest.mark.parametrize("window, step", [(10.0, 1e-308), (1e308, 10.0), (10.0, float("nan")), (10.0, 0.0)])
def test_window_starts_refuses_spans_outside_the_bounds(window, step):
    """A step of 1e-308 s would ask for ~1e309 windows: refused, naming the option."""
    with pytest.raises(MaanError, match=r"(window|step) \(--(window|step)\) must be"):
        window_starts(60.0, window, step)


def test_finite_runs_and_window_membership():
    finite = np.ones(100, bool)
    finite[30:35] = False
    finite[90:] = False
    runs = finite_runs(finite)
    assert runs == [(0, 30), (35, 90)]
    idx = run_of_window(np.array([0, 10, 20, 30, 40, 80]), 10, runs)
    np.testing.assert_array_equal(idx, [0, 0, 0, -1, 1, 1])
    assert finite_runs(np.zeros(5, bool)) == []
