import pytest
import torch

from maan.models.blocks import (
    AttentionGate,
    ChannelSqueezeExcitation,
    ConcurrentSqueezeExcitation,
    ConvBlock,
    ConvUnit,
    SpatialSqueezeExcitation,
    squeeze_excitation,
)

SHAPES = {1: (3, 5, 17), 2: (3, 5, 7, 6)}


@pytest.mark.parametrize("dims", [1, 2])
def test_conv_unit_keeps_size_and_changes_channels(dims):
    x = torch.randn(SHAPES[dims])
    out = ConvUnit(dims, 5, 8)(x)
    assert out.shape == (3, 8) + x.shape[2:]
    assert (out >= 0).all()  # ReLU is the default activation


def test_conv_unit_rejects_even_kernel_and_unknown_activation():
    with pytest.raises(ValueError, match="odd"):
        ConvUnit(1, 1, 4, kernel_size=4)
    with pytest.raises(ValueError, match="unknown activation"):
        ConvUnit(1, 1, 4, activation="swishy")
    with pytest.raises(ValueError, match="dims must be 1"):
        ConvUnit(3, 1, 4)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("kind", ["scse", "se", "none"])
def test_squeeze_excitation_keeps_shape(dims, kind):
    x = torch.randn(SHAPES[dims])
    assert squeeze_excitation(kind, dims, 5)(x).shape == x.shape


@pytest.mark.parametrize("dims", [1, 2])
def test_scse_is_sum_of_channel_and_spatial_recalibration(dims):
    torch.manual_seed(0)
    x = torch.randn(SHAPES[dims])
    scse = ConcurrentSqueezeExcitation(dims, 5)
    torch.testing.assert_close(scse(x), scse.channel(x) + scse.spatial(x))
    assert isinstance(scse.channel, ChannelSqueezeExcitation)
    assert isinstance(scse.spatial, SpatialSqueezeExcitation)


def test_channel_se_scales_each_channel_by_one_factor_in_unit_interval():
    x = torch.rand(2, 4, 9) + 0.5
    se = ChannelSqueezeExcitation(1, 4, reduction=2)
    ratio = se(x) / x
    assert ((ratio > 0) & (ratio < 1)).all()
    torch.testing.assert_close(ratio, ratio[:, :, :1].expand_as(ratio))


def test_unknown_squeeze_excitation_is_rejected():
    with pytest.raises(ValueError, match="scse"):
        squeeze_excitation("cbam", 1, 4)


@pytest.mark.parametrize("dims", [1, 2])
def test_conv_block_output(dims):
    x = torch.randn(SHAPES[dims])
    assert ConvBlock(dims, 5, 6, n_units=1, se="se")(x).shape == (3, 6) + x.shape[2:]


@pytest.mark.parametrize("dims", [1, 2])
def test_attention_gate_weights_each_position_within_unit_interval(dims):
    skip, gate = torch.randn(SHAPES[dims]), torch.randn(SHAPES[dims])
    attention = AttentionGate(dims, 5, 5)
    weights = attention.coefficients(skip, gate)
    assert weights.shape == (3, 1) + skip.shape[2:]
    assert ((weights > 0) & (weights < 1)).all()
    torch.testing.assert_close(attention(skip, gate), skip * weights)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
def test_pointwise_conv_equals_the_convolution_with_the_same_weights(dims, channels_last):
    from maan.models.blocks import PointwiseConv1d, PointwiseConv2d, conv_layer

    torch.manual_seed(0)
    layer = conv_layer(dims, 6, 3)
    assert isinstance(layer, (PointwiseConv1d, PointwiseConv2d))
    reference = (torch.nn.Conv1d if dims == 1 else torch.nn.Conv2d)(6, 3, 1)
    reference.load_state_dict(layer.state_dict())  # same parameters, same state-dict keys
    x = torch.randn((5, 6, 7) if dims == 1 else (5, 6, 7, 4), requires_grad=True)
    if channels_last and dims == 2:
        x = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    out, ref = layer(x), reference(x)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    out.square().sum().backward()
    grad = layer.weight.grad.clone()
    ref.square().sum().backward()
    torch.testing.assert_close(grad, reference.weight.grad, rtol=1e-5, atol=1e-5)
    # a 1x1 convolution with a stride is an ordinary convolution
    assert type(conv_layer(dims, 6, 3, stride=2)) in (torch.nn.Conv1d, torch.nn.Conv2d)
