import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import fft as sp_fft

from maan import differential_entropy
from maan.config import BANDS
from maan.errors import InvalidSignalError
from maan.features.eeg import _butter_sos, _zero_phase_gain, de_subwindows

FS = 128.0
HALF_LOG_2PIE = 0.5 * np.log(2 * np.pi * np.e)


def band_limited_noise(rng, n, fs, low, high, sigma, channels=1):
    """Gaussian noise whose spectrum is flat inside (low, high) and zero outside, variance sigma^2."""
    spectrum = rng.standard_normal((channels, n // 2 + 1)) + 1j * rng.standard_normal((channels, n // 2 + 1))
    freqs = sp_fft.rfftfreq(n, 1 / fs)
    spectrum[:, (freqs <= low) | (freqs >= high)] = 0
    x = sp_fft.irfft(spectrum, n=n, axis=-1)
    x /= x.std(axis=-1, keepdims=True)
    return sigma * x


@settings(max_examples=25, deadline=None)
@given(sigma=st.floats(1e-3, 1e3), seed=st.integers(0, 2**16))
def test_de_of_band_limited_gaussian_noise_is_half_log_2pi_e_sigma2(sigma, seed):
    rng = np.random.default_rng(seed)
    # Noise well inside the alpha band (8-14 Hz), where the zero-phase Butterworth gain is ~1.
    x = band_limited_noise(rng, 60 * 128, FS, 9.5, 12.5, sigma)
    expected = 0.5 * np.log(2 * np.pi * np.e * sigma**2)
    for method in ("fft", "butter"):
        de = differential_entropy(x, FS, bands={"alpha": BANDS["alpha"]}, method=method)
        assert de.shape == (1, 1)
        assert de[0, 0] == pytest.approx(expected, abs=0.02)


def test_de_is_shift_by_log_scale():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 14, 1280))
    de1 = differential_entropy(x, FS)
    de2 = differential_entropy(7.0 * x, FS)
    np.testing.assert_allclose(de2 - de1, np.log(7.0), atol=2e-6)  # float32 spectra: ~1e-7 relative power
    assert de1.shape == (3, len(BANDS), 14)


def test_de_of_a_sinusoid_in_band_is_its_power():
    t = np.arange(30 * 128) / FS
    amplitude = 20.0  # microvolts
    x = amplitude * np.sin(2 * np.pi * 10.0 * t)  # alpha
    de = differential_entropy(x[None, :], FS)
    names = list(BANDS)
    assert de[names.index("alpha"), 0] == pytest.approx(HALF_LOG_2PIE + 0.5 * np.log(amplitude**2 / 2), abs=0.02)
    # Other bands see almost nothing of it.
    assert de[names.index("gamma"), 0] < de[names.index("alpha"), 0] - 5


def test_fft_gain_is_the_butterworth_filtfilt_response():
    from scipy import signal

    for low, high in BANDS.values():
        n = 4097
        freqs = sp_fft.rfftfreq(n, 1 / FS)
        _, response = signal.sosfreqz(_butter_sos(low, high, FS), worN=freqs, fs=FS)
        np.testing.assert_allclose(_zero_phase_gain(low, high, FS, n), np.abs(response) ** 2, atol=1e-12)


def test_subwindows_equal_per_window_reference_in_the_interior():
    """Filtering the trial once (fft) equals sosfiltfilt of the trial, window by window."""
    rng = np.random.default_rng(2)
    x = np.cumsum(rng.standard_normal((14, 128 * 60)), axis=1) * 0.1 + rng.standard_normal((14, 128 * 60))
    starts = np.arange(0, 128 * 50 + 1, 1280)
    fast = de_subwindows(x, FS, starts, 1280, 128, method="fft")
    ref = de_subwindows(x, FS, starts, 1280, 128, method="butter")
    assert fast.shape == (len(starts), 4, 14, 10)
    np.testing.assert_allclose(fast[1:-1], ref[1:-1], atol=1e-5)
    # Trial edges: both pad by reflection but start their recursions differently.
    assert np.abs(fast - ref).max() < 0.15


def test_subwindows_with_gaps_between_windows():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 128 * 40))
    starts = np.array([0, 128 * 15, 128 * 27])
    out = de_subwindows(x, FS, starts, 1280, 128)
    whole = de_subwindows(x, FS, np.arange(0, 128 * 30 + 1, 128), 1280, 128)
    np.testing.assert_allclose(out[1], whole[15], atol=1e-6)


def test_eeg_de_on_real_19_channel_recording():
    """Spectral DE agrees with the Butterworth reference on real EEG (eegmat, 19 channels)."""
    mne = pytest.importorskip("mne")
    from tests.conftest import shared_file
    from scipy import signal

    raw = mne.io.read_raw_edf(shared_file("eegmat", "Subject00_1.edf"), preload=True, verbose="error")
    picks = [c for c in raw.ch_names if c.startswith("EEG") and c != "EEG A2-A1"]
    assert len(picks) == 19
    data = raw.get_data(picks=picks) * 1e6  # volts -> microvolts
    fs = raw.info["sfreq"]
    eeg = signal.resample_poly(data, 32, 125, axis=-1)  # 500 -> 128 Hz
    starts = np.arange(0, eeg.shape[1] - 1280 + 1, 1280)
    fast = de_subwindows(eeg, FS, starts, 1280, 128, method="fft")
    ref = de_subwindows(eeg, FS, starts, 1280, 128, method="butter")
    assert np.isfinite(fast).all() and fs == 500
    assert np.abs(fast[1:-1] - ref[1:-1]).max() < 1e-4
    assert np.abs(fast - ref).mean() < 0.01
    whole = differential_entropy(eeg[:, :1280 * 10].reshape(19, 10, 1280).transpose(1, 0, 2), FS)
    assert whole.shape == (10, 4, 19) and np.isfinite(whole).all()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="channels, samples"):
        differential_entropy(np.zeros(100), FS)
    with pytest.raises(InvalidSignalError, match="NaN"):
        differential_entropy(np.full((2, 100), np.nan), FS)
    with pytest.raises(ValueError, match="fs/2"):
        differential_entropy(np.ones((2, 100)), 64.0, bands={"gamma": (31, 45)})
    with pytest.raises(ValueError, match="unknown DE method"):
        differential_entropy(np.ones((2, 100)), FS, method="wavelet")


def test_window_de_is_the_variance_of_the_circularly_filtered_window():
    """Known answer: Parseval's band power equals filtering with the same gain and taking np.var."""
    from maan.features.eeg import band_power

    rng = np.random.default_rng(4)
    for n in (1280, 1001):  # even and odd lengths (the Nyquist bin)
        x = rng.standard_normal((3, 5, n)) * 10 + 3.0
        spectrum = sp_fft.rfft(x, axis=-1)
        for b, (low, high) in enumerate(BANDS.values()):
            filtered = sp_fft.irfft(spectrum * np.sqrt(_zero_phase_gain(low, high, FS, n)), n=n, axis=-1)
            np.testing.assert_allclose(band_power(x, FS)[:, b], filtered.var(axis=-1), rtol=2e-5)
    de = differential_entropy(x, FS)
    np.testing.assert_allclose(de, HALF_LOG_2PIE + 0.5 * np.log(band_power(x, FS)), rtol=1e-12)


def test_window_de_agrees_with_the_butterworth_reference_on_real_eeg():
    mne = pytest.importorskip("mne")
    from tests.conftest import shared_file
    from scipy import signal

    raw = mne.io.read_raw_edf(shared_file("eegmat", "Subject01_1.edf"), preload=True, verbose="error")
    picks = [c for c in raw.ch_names if c.startswith("EEG") and c != "EEG A2-A1"]
    eeg = signal.resample_poly(raw.get_data(picks=picks) * 1e6, 32, 125, axis=-1)
    windows = eeg[:, :1280 * 18].reshape(19, 18, 1280).transpose(1, 0, 2)
    fast, ref = differential_entropy(windows, FS), differential_entropy(windows, FS, method="butter")
    # circular vs reflected ends: they differ at the window's ends, most in theta (slowest decay)
    for b in range(len(BANDS)):  # the same ordering of windows and channels, band by band
        assert np.corrcoef(fast[:, b].ravel(), ref[:, b].ravel())[0, 1] > 0.98
    assert np.abs(fast - ref).mean() < 0.1
