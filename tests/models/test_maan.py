import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from maan.models.blocks import rr_summary, spatial_pattern
from maan.models.maan import RR_SKIPS
from maan.models import (
    DEFAULT_ECG_SHAPE,
    DEFAULT_EEG_SHAPE,
    MAAN,
    BaseModel,
    InputTooSmallError,
    build_model,
)

SMALL = dict(width=4, depth=1)


def inputs(batch, ecg_shape=DEFAULT_ECG_SHAPE, eeg_shape=DEFAULT_EEG_SHAPE, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, *ecg_shape, generator=generator),
            torch.randn(batch, *eeg_shape, generator=generator))


def test_default_shapes_come_from_config():
    from maan import config

    assert DEFAULT_ECG_SHAPE == (1, config.RR_LENGTH)
    assert DEFAULT_EEG_SHAPE == (len(config.BANDS), len(config.AMIGOS_EEG_CHANNELS), 10)


@pytest.mark.parametrize("name", ["maan", "base"])
@pytest.mark.parametrize("ecg_shape,eeg_shape", [
    ((1, 32), (4, 14, 10)), ((1, 20), (4, 19, 10)), ((2, 32), (40, 9, 9)),
])
@pytest.mark.parametrize("batch", [1, 5])
def test_logits_shape_in_eval_mode(name, ecg_shape, eeg_shape, batch):
    model = build_model(name, ecg_shape, eeg_shape, n_classes=3).eval()
    with torch.no_grad():
        logits = model(*inputs(batch, ecg_shape, eeg_shape))
    assert logits.shape == (batch, 3)
    assert torch.isfinite(logits).all()


def test_details_representation_and_masks():
    model = MAAN(**SMALL)
    out = model.forward_with_details(*inputs(6))
    assert out.logits.shape == (6, 2)
    # ECG: 4 channels pooled over time; EEG: 4 channels x 14 electrodes (pooled over sub-windows)
    assert out.representation.shape == (6, model.representation_size) == (6, 4 + 4 * 14)
    assert out.a_ecg.shape == (6, 4) and out.a_eeg.shape == (6, 4)
    for mask in (out.a_ecg, out.a_eeg):
        assert ((mask > 0) & (mask < 1)).all()
    torch.testing.assert_close(model.representation(*inputs(6)), out.representation)


def test_masks_change_the_features():
    torch.manual_seed(0)
    model = MAAN(**SMALL).eval()
    x_ecg, x_eeg = inputs(4)
    with torch.no_grad():
        with_masks = model.forward_with_details(x_ecg, x_eeg)
        attention = model.fusion_attention
        attention.masks = lambda f_ecg, f_eeg: (torch.ones(f_ecg.shape[:2]),
                                                torch.ones(f_eeg.shape[:2]))
        unit_masks = model.forward_with_details(x_ecg, x_eeg)
        unweighted = torch.cat([model.ecg_branch(x_ecg).mean(-1),
                                model.eeg_branch(x_eeg).mean(-1).flatten(1)], dim=1)
    torch.testing.assert_close(unit_masks.representation, unweighted)
    assert (with_masks.representation - unit_masks.representation).abs().max() > 1e-3
    assert not torch.allclose(with_masks.logits, unit_masks.logits)


@pytest.mark.parametrize("name", ["maan", "base", "ecg-only", "eeg-only"])
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = build_model(name, **SMALL).train()
    loss = torch.nn.functional.cross_entropy(model(*inputs(8)), torch.tensor([0, 1] * 4))
    loss.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert param.grad.abs().sum() > 0, param_name


def test_every_branch_has_parameters_in_the_attention_model():
    names = [n for n, _ in MAAN(**SMALL).named_parameters()]
    for prefix in ("ecg_branch.", "eeg_branch.", "fusion_attention.", "classifier."):
        assert any(n.startswith(prefix) for n in names), prefix


def test_same_seed_same_output_and_other_seed_other_output():
    def run(seed):
        torch.manual_seed(seed)
        model = MAAN(**SMALL).eval()
        with torch.no_grad():
            return model(*inputs(3))

    torch.testing.assert_close(run(7), run(7), rtol=0, atol=0)
    assert not torch.allclose(run(7), run(8))


def test_base_model_is_maan_without_fusion_attention():
    maan, base = MAAN(**SMALL), BaseModel(**SMALL)
    maan_params = {n: p.shape for n, p in maan.named_parameters()}
    base_params = {n: p.shape for n, p in base.named_parameters()}
    assert base.fusion_attention is None
    assert set(base_params) < set(maan_params)
    assert all(n.startswith("fusion_attention.") for n in set(maan_params) - set(base_params))
    assert all(maan_params[n] == shape for n, shape in base_params.items())
    assert base.forward_with_details(*inputs(2)).a_ecg is None
    with pytest.raises(TypeError, match="fusion"):
        BaseModel(fusion="attention")


@pytest.mark.parametrize("name,modality", [("ecg-only", "ecg"), ("eeg-only", "eeg")])
def test_single_modality_variants_ignore_the_other_input(name, modality):
    model = build_model(name, **SMALL).eval()
    x_ecg, x_eeg = inputs(3)
    args = (x_ecg, None) if modality == "ecg" else (None, x_eeg)
    out = model.forward_with_details(*args)
    assert model.modalities == (modality,) and model.fusion_attention is None
    # ECG: 4 channels; EEG: 4 channels x 14 electrodes
    assert out.logits.shape == (3, 2) and out.representation.shape == (3, 4 if modality == "ecg" else 4 * 14)
    assert out.a_ecg is None and out.a_eeg is None
    torch.testing.assert_close(model(x_ecg, x_eeg), out.logits)


def test_config_rebuilds_an_equivalent_model():
    torch.manual_seed(0)
    model = BaseModel((1, 20), (4, 19, 10), n_classes=3, **SMALL).eval()
    rebuilt = type(model)(**model.config).eval()
    rebuilt.load_state_dict(model.state_dict())
    with torch.no_grad():
        x = inputs(2, (1, 20), (4, 19, 10))
        torch.testing.assert_close(rebuilt(*x), model(*x))


def test_bad_inputs_get_errors_that_say_what_is_expected():
    model = MAAN(**SMALL)
    x_ecg, x_eeg = inputs(2)
    with pytest.raises(ValueError, match=r"x_eeg must have shape \(batch, 4, 14, 10\)"):
        model(x_ecg, x_eeg[:, :, :13])
    with pytest.raises(TypeError, match="x_ecg must be a torch.Tensor"):
        model(None, x_eeg)
    with pytest.raises(ValueError, match="batch sizes"):
        model(x_ecg, x_eeg[:1])
    with pytest.raises(ValueError, match="unknown model"):
        build_model("transformer")
    with pytest.raises(ValueError, match="modalities"):
        MAAN(modalities=("ecg", "gsr"))
    with pytest.raises(ValueError, match="eeg_shape"):
        MAAN(eeg_shape=(14, 10))


def test_too_small_eeg_map_for_depth_names_the_minimum():
    with pytest.raises(InputTooSmallError, match="at least 16"):
        MAAN(eeg_shape=(40, 9, 9), depth=4)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, (2, 3, 5), elements=st.floats(-5, 5, width=32)),
       st.floats(-10, 10), st.floats(0.125, 8))
def test_spatial_pattern_is_a_per_band_z_score_blind_to_offset_and_scale(de, offset, scale):
    de = torch.from_numpy(de)
    z = spatial_pattern(de)
    spread = (de - de.mean(-1, keepdim=True)).pow(2).mean(-1).sqrt()
    ok = spread > 0.1  # away from the floor that keeps flat bands finite (and float32 round-off)
    torch.testing.assert_close(z.mean(-1)[ok], torch.zeros_like(z.mean(-1)[ok]), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.pow(2).mean(-1)[ok], torch.ones_like(z.mean(-1)[ok]), atol=1e-3, rtol=1e-3)
    moved = spatial_pattern(de * scale + offset)  # a band's common level and gain do not matter
    torch.testing.assert_close(moved[ok], z[ok], atol=2e-3, rtol=2e-3)


def test_rr_summary_known_answer():
    rr = torch.tensor([[[1.0, -2.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0]],   # 3 beats of 8 entries
                       [[0.0] * 8]])                                  # no beats (invalid ECG)
    torch.testing.assert_close(rr_summary(rr), torch.tensor([[1.0, 3 / 8], [0.0, 0.0]]))


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, (3, 2, 16), elements=st.floats(-4, 4, width=32)), st.integers(0, 16))
def test_rr_summary_is_the_mean_over_the_beats_and_the_padded_mean_is_its_product(rr, n_beats):
    rr = torch.from_numpy(rr)
    rr[..., n_beats:] = 0.0  # zero-embedded: the beats, then padding
    summary = rr_summary(rr)
    mean, fraction = summary[:, :2], summary[:, 2:]
    beats = rr != 0
    expected = torch.where(beats.any(-1), rr.sum(-1) / beats.sum(-1).clamp(min=1), torch.zeros(()))
    torch.testing.assert_close(mean, expected)
    torch.testing.assert_close(fraction, beats.float().mean(-1))
    torch.testing.assert_close(mean * fraction, rr.mean(-1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["maan", "base", "ecg-only", "eeg-only"])
def test_rr_skip_beats_feeds_two_values_per_ecg_channel(name):
    padded = build_model(name, rr_skip="padded", **SMALL)
    beats = build_model(name, rr_skip="beats", **SMALL)
    has_ecg = name != "eeg-only"
    assert beats.skip_size - padded.skip_size == (1 if has_ecg else 0)
    assert beats.rr_skip == ("beats" if has_ecg else "padded") and padded.rr_skip == "padded"
    assert build_model(name, rr_skip="beats", input_skip=False, **SMALL).rr_skip == "padded"
    x_ecg, x_eeg = inputs(4)
    assert beats.eval()(x_ecg if has_ecg else None, None if name == "ecg-only" else x_eeg).shape == (4, 2)
    with pytest.raises(ValueError, match="rr_skip must be one of"):
        build_model(name, rr_skip="median", **SMALL)
    assert RR_SKIPS == ("padded", "beats")


def test_spatial_pattern_known_answer_and_flat_band():
    z = spatial_pattern(torch.tensor([[[1.0, 3.0], [2.0, 2.0]]]))  # band 0: +-1 around 2; band 1 flat
    torch.testing.assert_close(z, torch.tensor([[[-1.0, 1.0], [0.0, 0.0]]]))


def test_the_classifier_reads_the_pooled_inputs_and_the_spatial_pattern():
    torch.manual_seed(0)
    model = MAAN(**SMALL, balance_modalities=False).eval()
    seen = []
    model.classifier[0].register_forward_hook(lambda module, args, out: seen.append(args[0]))
    x_ecg, x_eeg = inputs(3)
    with torch.no_grad():
        out = model.forward_with_details(x_ecg, x_eeg)
    features = seen[0]
    n_de = 4 * 14
    r = model.representation_size
    torch.testing.assert_close(features[:, :r], out.representation)
    torch.testing.assert_close(features[:, r], x_ecg.mean(-1)[:, 0])
    torch.testing.assert_close(features[:, r + 1:r + 1 + n_de], x_eeg.mean(-1).flatten(1))
    torch.testing.assert_close(features[:, r + 1 + n_de:-2], spatial_pattern(x_eeg.mean(-1)).flatten(1))
    torch.testing.assert_close(features[:, -2:], torch.ones(3, 2))  # the modality mask: both valid
    assert features.shape[1] == r + model.skip_size + 2


@pytest.mark.parametrize("name", ["maan", "base"])
@pytest.mark.parametrize("input_skip", [True, False])
def test_modality_balance_raises_the_small_ecg_block_to_the_eeg_blocks_total(name, input_skip):
    model = build_model(name, input_skip=input_skip, balance_modalities=True, **SMALL)
    total = model.classifier[0].in_features
    ecg_block = model.ecg_branch.out_channels + (1 if input_skip else 0)  # branch output (+ pooled RR)
    eeg_block = total - ecg_block - model.mask_inputs  # the mask's two inputs are no modality's
    assert model.balance_modalities is True and model.config["balance_modalities"] is True
    assert model.ecg_scale * ecg_block == pytest.approx(eeg_block)
    assert model.eeg_scale == 1.0  # the larger block keeps the scale it has without the balance
    plain = build_model(name, input_skip=input_skip, **SMALL)  # off unless asked for
    assert plain.ecg_scale == plain.eeg_scale == 1.0 and plain.config["balance_modalities"] is False


@pytest.mark.parametrize("name", ["ecg-only", "eeg-only"])
def test_modality_balance_leaves_a_single_modality_model_alone(name):
    model = build_model(name, balance_modalities=True, **SMALL)
    assert model.balance_modalities is False and model.ecg_scale == model.eeg_scale == 1.0


def test_modality_balance_scales_each_modalitys_columns_of_the_classifier_input():
    # known answer: the balanced model is the unbalanced one with each modality's columns of the
    # classifier's first layer multiplied by that modality's scale; the representation is unscaled
    torch.manual_seed(0)
    balanced = MAAN(**SMALL, balance_modalities=True).eval()
    plain = MAAN(**SMALL).eval()
    plain.load_state_dict(balanced.state_dict())
    x_ecg, x_eeg = inputs(3)
    with torch.no_grad():
        torch.testing.assert_close(plain.representation(x_ecg, x_eeg), balanced.representation(x_ecg, x_eeg))
        scale = torch.full((balanced.classifier[0].in_features,), balanced.eeg_scale)
        scale[:balanced.ecg_branch.out_channels] = balanced.ecg_scale  # the ECG branch's pooled output
        scale[balanced.representation_size] = balanced.ecg_scale  # the pooled RR series of the skip
        plain.classifier[0].weight *= scale
        torch.testing.assert_close(plain(x_ecg, x_eeg), balanced(x_ecg, x_eeg))


def test_spatial_skip_part_is_blind_to_a_bands_level_and_sees_a_contrast():
    # with the classifier reading only the spatial-pattern columns, a common shift and gain of
    # one band change nothing, a small left/right contrast does
    torch.manual_seed(0)
    model = MAAN(**SMALL).eval()
    with torch.no_grad():
        model.classifier[0].weight[:, :model.representation_size + 1 + 4 * 14] = 0
    x_ecg, x_eeg = inputs(2)
    level = x_eeg.clone()
    level[:, 1] = level[:, 1] * 3.0 + 2.0  # the alpha band, every electrode and sub-window
    contrast = torch.zeros(14)
    contrast[0], contrast[13] = -0.05, 0.05  # AF3 down, AF4 up
    with torch.no_grad():
        out = model(x_ecg, x_eeg)
        torch.testing.assert_close(model(x_ecg, level), out, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(model(x_ecg, x_eeg + contrast[None, None, :, None]), out)


def test_input_skip_is_the_sub_window_mean_of_the_inputs():
    # with the classifier's first layer reading only the skip part, the logits are a function of
    # the pooled inputs: permuting the sub-windows (or the RR samples) changes nothing
    torch.manual_seed(0)
    model = MAAN(**SMALL).eval()
    with torch.no_grad():
        model.classifier[0].weight[:, :model.representation_size] = 0
    x_ecg, x_eeg = inputs(3)
    perm_t, perm_w = torch.randperm(x_ecg.shape[-1]), torch.randperm(x_eeg.shape[-1])
    with torch.no_grad():
        out = model.forward_with_details(x_ecg, x_eeg)
        permuted = model.forward_with_details(x_ecg[..., perm_t], x_eeg[..., perm_w])
        shifted = model(x_ecg, x_eeg + torch.eye(14)[3][None, None, :, None])  # one electrode's mean moves
    torch.testing.assert_close(permuted.logits, out.logits)
    assert not torch.allclose(permuted.representation, out.representation)  # the U-Nets do see the order
    assert not torch.allclose(shifted, out.logits)


def test_grid_input_skip_averages_each_bands_sub_window_planes():
    torch.manual_seed(0)
    model = MAAN((1, 32), (4 * 10, 9, 9), grid_bands=4, **SMALL).eval()
    assert model.skip_size == 1 + 4 * 81  # pooled DE per band and grid cell; no spatial pattern on the grid
    assert model.spatial_skip is False
    with torch.no_grad():
        model.classifier[0].weight[:, :model.representation_size] = 0
    x_ecg, x_eeg = inputs(2, (1, 32), (40, 9, 9))
    within_band = torch.cat([torch.randperm(10) + 10 * b for b in range(4)])  # sub-windows of one band
    across_bands = torch.randperm(40)
    with torch.no_grad():
        out = model(x_ecg, x_eeg)
        torch.testing.assert_close(model(x_ecg, x_eeg[:, within_band]), out)
        assert not torch.allclose(model(x_ecg, x_eeg[:, across_bands]), out)
        assert not torch.allclose(model(x_ecg[..., torch.randperm(32)] * 2, x_eeg), out)  # the ECG mean counts
    with pytest.raises(ValueError, match="grid_bands=3 does not divide the 40 planes"):
        MAAN((1, 32), (40, 9, 9), grid_bands=3, **SMALL)


@pytest.mark.parametrize("name", ["maan", "base"])
def test_a_missing_modality_does_not_reach_the_output(name):
    """A window whose mask marks a modality missing gets the same logits whatever that
    modality's input holds (garbage, zeros, another window's), and mask None means complete."""
    torch.manual_seed(0)
    model = build_model(name, **SMALL).eval()
    x_ecg, x_eeg = inputs(4)
    other_ecg, other_eeg = inputs(4, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(model(x_ecg, x_eeg), model(x_ecg, x_eeg, torch.ones(4, 2)))
        for mask, swapped in ((torch.tensor([[0.0, 1.0]] * 4), (other_ecg * 1e3, x_eeg)),
                              (torch.tensor([[1.0, 0.0]] * 4), (x_ecg, other_eeg - 50.0))):
            out = model.forward_with_details(x_ecg, x_eeg, mask)
            torch.testing.assert_close(out.logits, model(*swapped, mask))
            assert torch.equal(out.mask, mask)
        # and the missing modality does change the output (the mask is read, not ignored)
        assert not torch.allclose(model(x_ecg, x_eeg), model(x_ecg, x_eeg, torch.tensor([[0.0, 1.0]] * 4)))


def test_the_mask_must_match_the_batch():
    model = build_model("maan", **SMALL)
    x_ecg, x_eeg = inputs(3)
    with pytest.raises(ValueError, match="mask must be"):
        model(x_ecg, x_eeg, torch.ones(2, 2))


@pytest.mark.parametrize("name, mask, usable", [("maan", [[1, 0], [0, 1], [1, 1]], [1, 1, 1]),
                                                 ("ecg-only", [[1, 0], [0, 1], [1, 1]], [1, 0, 1]),
                                                 ("eeg-only", [[1, 0], [0, 1], [1, 1]], [0, 1, 1])])
def test_has_input(name, mask, usable):
    from maan.models import has_input, model_modalities

    np.testing.assert_array_equal(has_input(model_modalities(name), np.array(mask, bool)), np.array(usable, bool))
