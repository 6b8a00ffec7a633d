"""Training-loop details: the automatic batch size, the restored epoch, input-noise augmentation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from maan.training.module import (
    MAX_AUTO_BATCH, MIN_AUTO_BATCH, MIN_STEPS_PER_EPOCH, BestWeights, EmotionModule, TrainConfig,
    fit_module, resolve_batch_size, resolve_lr,
)


def test_auto_batch_size_known_answers():
    assert resolve_batch_size("auto", 50) == MIN_AUTO_BATCH  # a real-data LOSO fold: 6 steps, not 1
    assert resolve_batch_size("auto", 600) == 600 // MIN_STEPS_PER_EPOCH
    assert resolve_batch_size("auto", 16_862) == MAX_AUTO_BATCH == 256  # an AMIGOS-scale fold
    assert resolve_batch_size(32, 50) == 32


def test_learning_rate_is_auto_or_a_positive_number():
    from maan.errors import MaanError

    assert TrainConfig(lr="auto").validate().lr == "auto"
    assert TrainConfig(lr=0.01).validate().lr == 0.01
    for bad in ("fast", 0, -1e-3):
        with pytest.raises(MaanError, match=r"lr must be"):
            TrainConfig(lr=bad).validate()


def test_auto_learning_rate_known_answers():
    assert resolve_lr("auto", 8) == resolve_lr("auto", 64) == 1e-3  # small stores: as before batch 256
    assert resolve_lr("auto", 256) == pytest.approx(2e-3)  # square-root scaling above batch 64
    assert resolve_lr("auto", 1024) == pytest.approx(4e-3)
    assert resolve_lr(0.01, 256) == 0.01  # a number is used as given


@given(st.integers(min_value=2, max_value=4096), st.integers(min_value=2, max_value=4096))
def test_auto_learning_rate_grows_with_the_batch(a, b):
    small, large = sorted((a, b))
    assert 1e-3 <= resolve_lr("auto", small) <= resolve_lr("auto", large)


@given(st.integers(min_value=2, max_value=10**6))
def test_auto_batch_size_bounds_and_steps(n_fit):
    size = resolve_batch_size("auto", n_fit)
    assert MIN_AUTO_BATCH <= size <= MAX_AUTO_BATCH
    if MIN_AUTO_BATCH < size < MAX_AUTO_BATCH:
        assert n_fit // size >= MIN_STEPS_PER_EPOCH


class _Trainer:
    sanity_checking = False

    def __init__(self, epoch, loss):
        self.current_epoch = epoch
        self.callback_metrics = {"val_loss": torch.tensor(loss)}


def test_best_weights_ignores_epochs_before_min_epochs():
    module = torch.nn.Linear(2, 1)
    best = BestWeights(min_epochs=3)
    for epoch, loss in enumerate([0.1, 0.2, 0.4, 0.5, 0.7]):
        with torch.no_grad():
            module.weight.fill_(epoch)
        best.on_validation_end(_Trainer(epoch, loss), module)
    # epochs 0 and 1 had lower losses but come before min_epochs; epoch 2 (the 3rd) is the first candidate
    assert best.best_epoch == 2 and best.epochs_run == 5
    best.on_fit_end(None, module)
    assert float(module.weight.detach()[0, 0]) == 2.0


def _tiny_datamodule(n=40, seed=0):
    from maan.training.datamodule import WindowDataModule

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    ecg = rng.normal(size=(n, 1, 32)).astype(np.float32) + y[:, None, None]
    eeg = rng.normal(size=(n, 4, 14, 10)).astype(np.float32)
    subject = np.repeat(np.arange(4), n // 4)
    idx = np.arange(n)
    return WindowDataModule(ecg, eeg, y, subject, idx[:32], idx[32:], idx[32:], batch_size="auto")


def test_fit_uses_the_auto_batch_size_and_runs_min_epochs():
    dm = _tiny_datamodule()
    config = TrainConfig(epochs=8, patience=0, min_epochs=4, accelerator="cpu")
    fit = fit_module(dm, "base", config, seed=0)
    assert fit.batch_size == resolve_batch_size("auto", 32) == dm.batch_size
    assert fit.lr == resolve_lr("auto", fit.batch_size) == fit.module.hparams.lr
    # patience 0 would stop after the first epoch without improvement; min_epochs keeps it going
    assert fit.epochs_run >= 4
    assert fit.best_epoch >= 3


def test_early_stopping_counts_patience_from_min_epochs():
    from maan.training.module import WarmEarlyStopping

    class Trainer:
        def __init__(self, epoch, loss):
            self.current_epoch = epoch
            self.callback_metrics = {"val_loss": torch.tensor(loss)}
            self.should_stop = False
            self.global_rank = 0
            self.fast_dev_run = False
            self.sanity_checking = False

        class strategy:
            @staticmethod
            def reduce_boolean_decision(decision, all=True):
                return decision

    stopper = WarmEarlyStopping("val_loss", patience=2, mode="min", min_epochs=4)
    stopped_at = None
    # epoch 0 is the lowest; later losses only rise: patience must count from epoch 4 (index 3)
    for epoch, loss in enumerate([0.1, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]):
        trainer = Trainer(epoch, loss)
        stopper._run_early_stopping_check(trainer)
        if trainer.should_stop:
            stopped_at = epoch
            break
    assert stopped_at == 5  # best candidate epoch 3, then two epochs without improvement


def test_input_noise_changes_training_only():
    torch.manual_seed(0)
    module = EmotionModule("base", (1, 32), (4, 14, 10), input_noise=1.0)
    x_ecg, x_eeg = torch.zeros(8, 1, 32), torch.zeros(8, 4, 14, 10)
    y = torch.zeros(8, dtype=torch.long)
    module.log = lambda *a, **k: None
    module.eval()
    clean = module._loss((x_ecg, x_eeg, torch.ones(len(y), 2), y))[0]
    torch.manual_seed(1)
    noisy = module.training_step((x_ecg, x_eeg, torch.ones(len(y), 2), y), 0)
    assert not torch.isclose(clean, noisy)
    quiet = EmotionModule("base", (1, 32), (4, 14, 10), input_noise=0.0).eval()
    quiet.load_state_dict(module.state_dict())
    quiet.log = lambda *a, **k: None
    assert torch.isclose(quiet.training_step((x_ecg, x_eeg, torch.ones(len(y), 2), y), 0), clean)
    # validation sees the inputs as they are
    logged = {}
    module.log = lambda name, value, **k: logged.setdefault(name, value)
    module.validation_step((x_ecg, x_eeg, torch.ones(len(y), 2), y), 0)
    assert torch.isclose(logged["val_loss"], clean)


def test_grid_layout_model_pools_each_band_and_round_trips_through_a_checkpoint(tmp_path):
    from maan.training.checkpoint import load_checkpoint, save_checkpoint
    from maan.training.datamodule import WindowDataModule
    from maan.features.normalize import Normalizer

    rng = np.random.default_rng(0)
    n = 24
    y = np.arange(n) % 2
    ecg = rng.normal(size=(n, 1, 32)).astype(np.float32)
    eeg = rng.normal(size=(n, 4 * 10, 9, 9)).astype(np.float32)  # (bands*sub-windows, 9, 9)
    idx = np.arange(n)
    dm = WindowDataModule(ecg, eeg, y, np.zeros(n), idx[:20], idx[20:], idx[20:],
                          normalizer=Normalizer("train", layout="grid", n_bands=4))
    fit = fit_module(dm, "maan", TrainConfig(epochs=1, min_epochs=1, accelerator="cpu"), seed=0)
    model = fit.module.model
    assert model.grid_bands == 4 and model.skip_size == 1 + 4 * 81
    path = save_checkpoint(tmp_path / "grid.pt", model, model_name="maan", ecg_shape=(1, 32),
                           eeg_shape=(40, 9, 9), target="arousal", normalizer=dm.normalizer,
                           manifest={"targets": ["arousal"]})
    ck = load_checkpoint(path)
    assert ck.model.grid_bands == 4
    np.testing.assert_allclose(ck.predict_proba(ecg, eeg), fit.module.model.eval()(
        *map(torch.from_numpy, dm.normalizer.transform(ecg, eeg))).softmax(1)[:, 1].detach().numpy(), rtol=1e-5,
        atol=1e-6)


def _quiet(module):
    module.log = lambda *a, **k: None
    return module


def test_mixup_loss_is_the_mixed_cross_entropy():
    torch.manual_seed(0)
    module = _quiet(EmotionModule("base", (1, 32), (4, 14, 10), class_weights=[0.7, 1.8], mixup=0.4)).eval()
    logged = {}
    module.log = lambda name, value, **k: logged.__setitem__(name, float(value))
    x_ecg, x_eeg = torch.randn(6, 1, 32), torch.randn(6, 4, 14, 10)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    torch.manual_seed(3)
    loss = module.training_step((x_ecg, x_eeg, torch.ones(len(y), 2), y), 0)
    # the same draws by hand: the weight, then the permutation
    torch.manual_seed(3)
    lam = float(torch.distributions.Beta(0.4, 0.4).sample())
    perm = torch.randperm(6)
    logits = module(lam * x_ecg + (1 - lam) * x_ecg[perm], lam * x_eeg + (1 - lam) * x_eeg[perm])
    weight = torch.tensor([0.7, 1.8])
    expected = (lam * torch.nn.functional.cross_entropy(logits, y, weight=weight)
                + (1 - lam) * torch.nn.functional.cross_entropy(logits, y[perm], weight=weight))
    assert 0.0 < lam < 1.0 and not torch.equal(perm, torch.arange(6))
    assert torch.isclose(loss, expected)
    assert not torch.isclose(loss, module._loss((x_ecg, x_eeg, torch.ones(len(y), 2), y))[0])
    # the logged training accuracy is against the mixed labels, weighted like the loss
    predicted = logits.argmax(1)
    mixed_acc = lam * (predicted == y).float().mean() + (1 - lam) * (predicted == y[perm]).float().mean()
    assert logged["train_acc"] == pytest.approx(float(mixed_acc)) and logged["train_loss"] == pytest.approx(float(loss))


@settings(max_examples=20, deadline=None)
@given(alpha=st.floats(0.05, 5.0), label=st.integers(0, 1), seed=st.integers(0, 2**16))
def test_mixup_of_identical_windows_changes_nothing(alpha, label, seed):
    # mixing a window with itself (same inputs, same label) is the window: the loss is unchanged
    torch.manual_seed(0)
    module = _quiet(EmotionModule("base", (1, 32), (4, 14, 10), mixup=alpha)).eval()
    x_ecg, x_eeg = torch.randn(1, 1, 32).expand(5, 1, 32), torch.randn(1, 4, 14, 10).expand(5, 4, 14, 10)
    y = torch.full((5,), label)
    torch.manual_seed(seed)
    mixed = module.training_step((x_ecg, x_eeg, torch.ones(len(y), 2), y), 0)
    assert torch.isclose(mixed, module._loss((x_ecg, x_eeg, torch.ones(len(y), 2), y))[0], atol=1e-6)


# --- rr_skip="auto": heart_rate_effect and resolve_rr_skip ---------------------------------------

def _rr_windows(mean_rr, beats: int = 10, length: int = 32) -> np.ndarray:
    """Zero-embedded RR series (windows, 1, length) whose mean over the beats is ``mean_rr``."""
    ecg = np.zeros((len(mean_rr), 1, length), np.float32)
    ecg[:, 0, :beats] = np.asarray(mean_rr, np.float32)[:, None]
    return ecg


def test_heart_rate_effect_known_answer():
    from maan.training.recipes import heart_rate_effect

    # subject a: mean RR 1, 2, 3, 4 with labels 0, 0, 1, 1 -> r = 0.8944; subject b: r = -0.8944
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1])
    r = np.corrcoef(x, y)[0, 1]
    assert r == pytest.approx(0.894427, abs=1e-6)
    ecg = _rr_windows(np.concatenate([x, x]))
    assert heart_rate_effect(ecg[:4], y, ["a"] * 4) == pytest.approx(np.arctanh(r))
    # opposite directions in two subjects cancel
    assert heart_rate_effect(ecg, np.concatenate([y, 1 - y]), ["a"] * 4 + ["b"] * 4) == pytest.approx(0.0, abs=1e-12)
    # the mean over subjects of their Fisher z
    y2 = np.array([0, 1, 0, 1])
    r2 = np.corrcoef(x, y2)[0, 1]
    assert heart_rate_effect(ecg, np.concatenate([y, y2]), ["a"] * 4 + ["b"] * 4) == pytest.approx(
        (np.arctanh(r) + np.arctanh(r2)) / 2)


def test_heart_rate_effect_ignores_single_class_subjects_and_windows_without_beats():
    from maan.training.recipes import heart_rate_effect

    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1])
    ecg = _rr_windows(np.concatenate([x, x, [9.0]]))
    ecg[-1] = 0.0  # no beats: not a heart rate of 0
    subject = ["a"] * 4 + ["b"] * 4 + ["a"]
    labels = np.concatenate([y, [1, 1, 1, 1], [0]])  # subject b has one class only
    assert heart_rate_effect(ecg, labels, subject) == pytest.approx(np.arctanh(np.corrcoef(x, y)[0, 1]))
    assert heart_rate_effect(ecg[4:8], labels[4:8], subject[4:8]) == 0.0  # nobody with both classes
    with pytest.raises(ValueError, match="one label and subject per window"):
        heart_rate_effect(ecg, labels[:3], subject)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(0.2, 5.0), st.floats(-3.0, 3.0)), min_size=2, max_size=2),
       st.integers(0, 2**31 - 1))
def test_heart_rate_effect_does_not_depend_on_each_subjects_offset_and_scale(affine, seed):
    """What per-subject standardisation changes (each subject's RR offset and scale) leaves it alone."""
    from maan.training.recipes import heart_rate_effect

    rng = np.random.default_rng(seed)
    n = 12
    subject = np.repeat(["a", "b"], n)
    y = np.tile(np.arange(n) % 2, 2)
    ecg = _rr_windows(0.8 + 0.05 * rng.normal(size=2 * n) - 0.03 * y).astype(np.float64)
    moved = ecg.copy()
    for k, (scale, offset) in enumerate(affine):
        rows = slice(k * n, (k + 1) * n)
        moved[rows] = np.where(ecg[rows] != 0, ecg[rows] * scale + offset + 10.0, 0.0)  # stays non-zero
    assert heart_rate_effect(moved, y, subject) == pytest.approx(heart_rate_effect(ecg, y, subject), abs=1e-6)


def test_resolve_rr_skip():
    from maan.training.recipes import CROSS_SUBJECT, HEART_RATE_EFFECT_THRESHOLD, PAPER, choose_rr_skip

    assert HEART_RATE_EFFECT_THRESHOLD == pytest.approx(0.5493, abs=1e-4)
    x, subject = np.array([1.0, 2.0, 3.0, 4.0] * 2), ["a"] * 4 + ["b"] * 4
    ecg = _rr_windows(x)
    strong, none = np.array([0, 0, 1, 1] * 2), np.array([0, 1, 1, 0] * 2)  # |r| = 0.89 and 0
    lines = []
    assert choose_rr_skip(ecg, strong, subject, log=lines.append) == "beats"
    assert "ECG skip beats" in lines[0]  # the one logged step
    assert choose_rr_skip(ecg, 1 - strong, subject) == "beats"  # the direction does not matter
    assert choose_rr_skip(ecg, none, subject) == "padded"
    assert CROSS_SUBJECT.model_kwargs(ecg, strong, subject)["rr_skip"] == "beats"
    assert PAPER.model_kwargs(ecg, strong, subject) == {"balance_modalities": False, "rr_skip": "padded"}


@pytest.mark.parametrize("labels_follow_heart_rate, expected", [(True, "beats"), (False, "padded")])
def test_fit_resolves_rr_skip_auto_from_the_training_windows(labels_follow_heart_rate, expected):
    from maan.training.datamodule import WindowDataModule
    from maan.features.normalize import Normalizer

    rng = np.random.default_rng(0)
    n = 48
    y = np.arange(n) % 2
    hr_label = y if labels_follow_heart_rate else rng.permutation(y)
    ecg = _rr_windows(0.8 - 0.1 * hr_label + 0.01 * rng.normal(size=n))
    eeg = rng.normal(size=(n, 4, 14, 10)).astype(np.float32)
    subject = np.repeat(np.arange(3), n // 3)
    idx = np.arange(n)
    dm = WindowDataModule(ecg, eeg, y, subject, idx[:40], idx[40:44], idx[44:],
                          normalizer=Normalizer("subject"))
    fit = fit_module(dm, "maan", TrainConfig(epochs=1, min_epochs=1, accelerator="cpu"), seed=0,
                     recipe="cross-subject")
    assert fit.module.model.rr_skip == expected


def test_modality_dropout_drops_one_modality_of_complete_windows_in_training_only():
    torch.manual_seed(0)
    module = _quiet(EmotionModule("maan", (1, 32), (4, 14, 10), modality_dropout=1.0))
    seen = []
    original = module.model.forward

    def spy(x_ecg, x_eeg, mask=None):
        seen.append((x_ecg.clone(), x_eeg.clone(), mask.clone()))
        return original(x_ecg, x_eeg, mask)

    module.model.forward = spy
    x_ecg, x_eeg = torch.randn(64, 1, 32), torch.randn(64, 4, 14, 10)
    mask = torch.ones(64, 2)
    mask[:4, 0] = 0.0  # windows that miss their ECG in the store stay as they are
    y = torch.randint(0, 2, (64,))
    module.training_step((x_ecg, x_eeg, mask, y), 0)
    got_ecg, got_eeg, got = seen[-1]
    assert torch.equal(got[:4], mask[:4])
    assert torch.equal(got[4:].sum(dim=1), torch.ones(60))  # p = 1: exactly one modality left
    assert 10 < int((got[4:, 0] == 0).sum()) < 50  # ECG or EEG, equally likely
    assert not got_ecg[got[:, 0] == 0].any() and not got_eeg[got[:, 1] == 0].any()  # zeroed, as a dead lead
    torch.testing.assert_close(got_eeg[got[:, 1] == 1], x_eeg[got[:, 1] == 1])
    module.validation_step((x_ecg, x_eeg, mask, y), 0)  # validation sees the windows as they are
    assert torch.equal(seen[-1][2], mask)
    single = _quiet(EmotionModule("ecg-only", (1, 32), (4, 14, 10), modality_dropout=1.0))
    batch = (x_ecg, x_eeg, torch.ones(64, 2), y)
    assert single._drop_modalities(batch) is batch  # one modality: nothing to drop


def test_mixup_pairs_windows_that_hold_the_same_modalities():
    from maan.training.module import _permutation_within

    torch.manual_seed(0)
    mask = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    for _ in range(20):
        perm = _permutation_within(mask, "cpu")
        assert sorted(perm.tolist()) == list(range(7)) and torch.equal(mask[perm], mask)
