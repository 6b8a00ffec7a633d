import pytest
import torch

from maan.errors import MaanError
from maan.models.unet import InputTooSmallError, UNet, level_sizes, minimum_input_size


@pytest.mark.parametrize("length,depth", [(32, 2), (32, 5), (20, 2), (17, 3), (4, 0)])
def test_1d_unet_keeps_length(length, depth):
    widths = [4 * 2 ** i for i in range(depth + 1)]
    net = UNet(1, 1, length, widths)
    assert net(torch.randn(2, 1, length)).shape == (2, 4, length)


@pytest.mark.parametrize("shape,depth", [((4, 14, 10), 2), ((4, 19, 10), 3),
                                         ((40, 9, 9), 3), ((4, 14, 10), 1)])
def test_2d_unet_keeps_spatial_size_for_sizes_not_divisible_by_2_pow_depth(shape, depth):
    widths = [3 * 2 ** i for i in range(depth + 1)]
    net = UNet(2, shape[0], shape[1:], widths, se="se")
    assert net(torch.randn(3, *shape)).shape == (3, 3) + shape[1:]


def test_level_sizes_use_ceil():
    assert level_sizes((14, 9), 3) == [(14, 9), (7, 5), (4, 3), (2, 2)]


def test_too_small_input_names_the_minimum_size():
    assert minimum_input_size(4) == 16
    with pytest.raises(InputTooSmallError, match=r"at least 16.*depth <= 3") as info:
        UNet(2, 40, (9, 9), widths=(2, 4, 8, 16, 32))
    assert isinstance(info.value, MaanError) and isinstance(info.value, ValueError)


def test_wrong_input_shape_is_rejected_with_expected_shape():
    net = UNet(1, 1, 32, (4, 8))
    with pytest.raises(ValueError, match=r"\(batch, 1, 32\)"):
        net(torch.randn(2, 1, 30))


def test_without_attention_gates_has_no_gate_parameters():
    gated = UNet(1, 1, 16, (4, 8))
    plain = UNet(1, 1, 16, (4, 8), attention_gates=False)
    gated_names = {n for n, _ in gated.named_parameters()}
    plain_names = {n for n, _ in plain.named_parameters()}
    assert plain_names < gated_names
    assert all(n.startswith("gates.") for n in gated_names - plain_names)
