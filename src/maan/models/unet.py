"""Intra-modality network (paper 2.1): a U-Net of conv units with squeeze-excitation.

The same class serves the ECG branch (``dims=1``: input (channels, length)) and the EEG
branch (``dims=2``: input (bands, electrodes, sub-windows) or a topographic grid). The
output is a feature map with ``widths[0]`` channels at the input's resolution.

Sizes that are not multiples of ``2**depth`` (14 electrodes, 9x9 grids) are handled with
ceil-mode pooling and by cropping each upsampled map to its skip connection's size, so no
padding is fed to the network.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from maan.errors import MaanError
from maan.models.blocks import (
    AttentionGate,
    ConvBlock,
    conv_transpose_layer,
    max_pool_layer,
)


class InputTooSmallError(MaanError, ValueError):
    """A spatial/temporal input dimension is below what the U-Net's depth supports."""


def minimum_input_size(depth: int) -> int:
    """Smallest size per dimension for ``depth`` poolings: 2**depth, so that every cell of
    the bottleneck summarises at least one distinct input position per pooling step."""
    return 2 ** depth


def level_sizes(input_size: Sequence[int], depth: int) -> list[tuple[int, ...]]:
    """Spatial size at each level, from the input (level 0) to the bottleneck (``depth``)."""
    sizes = [tuple(int(s) for s in input_size)]
    for _ in range(depth):
        sizes.append(tuple(math.ceil(s / 2) for s in sizes[-1]))
    return sizes


class UNet(nn.Module):
    """U-Net encoder / bottleneck / decoder with skip connections (Ronneberger et al.).

    Args:
        dims: 1 for sequences (ECG), 2 for maps (EEG).
        in_channels: input channels (1 for the RR series, the number of bands for EEG).
        input_size: length (1-D) or (height, width) (2-D) of the input; fixed at
            construction so that a too-small input fails here with a clear message.
        widths: channels per level, from the first encoder level to the bottleneck;
            ``len(widths) - 1`` is the depth (number of poolings).
        n_units: conv units per block; kernel_size, activation: of every conv unit.
        se: squeeze-excitation after every block: "scse" (default), "se" or "none".
        attention_gates: gate every skip connection with an :class:`AttentionGate`.
    """

    def __init__(self, dims: int, in_channels: int, input_size: int | Sequence[int],
                 widths: Sequence[int] = (8, 16, 32), *, n_units: int = 2,
                 kernel_size: int = 3, activation: str = "relu", se: str = "scse",
                 se_reduction: int = 4, attention_gates: bool = True):
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 (ECG) or 2 (EEG), got {dims!r}")
        input_size = (input_size,) if isinstance(input_size, int) else tuple(input_size)
        if len(input_size) != dims:
            raise ValueError(f"a {dims}-D U-Net needs {dims} input size(s), got {input_size}")
        widths = tuple(int(w) for w in widths)
        if len(widths) < 1 or min(widths) < 1:
            raise ValueError(f"widths must be one or more positive channel counts, got {widths}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        depth = len(widths) - 1
        minimum = minimum_input_size(depth)
        if min(input_size) < minimum:
            largest_depth = max(0, int(math.floor(math.log2(max(1, min(input_size))))))
            raise InputTooSmallError(
                f"input size {input_size} is too small for a U-Net of depth {depth}: every "
                f"dimension must be at least {minimum} (2**depth); use depth <= "
                f"{largest_depth} or a larger input"
            )
        self.dims = dims
        self.in_channels = in_channels
        self.input_size = input_size
        self.widths = widths
        self.depth = depth
        self.sizes = level_sizes(input_size, depth)
        block = dict(n_units=n_units, kernel_size=kernel_size, activation=activation, se=se,
                     se_reduction=se_reduction)

        self.encoder = nn.ModuleList()
        channels = in_channels
        for width in widths:
            self.encoder.append(ConvBlock(dims, channels, width, **block))
            channels = width
        self.pool = max_pool_layer(dims)
        # decoder[i] brings level i+1 back to level i (built deepest first in forward).
        self.upsample = nn.ModuleList(
            conv_transpose_layer(dims, widths[i + 1], widths[i]) for i in range(depth)
        )
        self.gates = nn.ModuleList(
            AttentionGate(dims, widths[i], widths[i]) for i in range(depth)
        ) if attention_gates else None
        self.decoder = nn.ModuleList(
            ConvBlock(dims, 2 * widths[i], widths[i], **block) for i in range(depth)
        )

    @property
    def out_channels(self) -> int:
        return self.widths[0]

    def _crop(self, x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        # Upsampling doubles ceil(n/2), which overshoots odd sizes by one.
        if self.dims == 1:
            return x[:, :, : size[0]]
        return x[:, :, : size[0], : size[1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels,) + self.input_size
        if x.dim() != self.dims + 2 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"U-Net expects input of shape (batch, {', '.join(map(str, expected))}), "
                f"got {tuple(x.shape)}"
            )
        skips = []
        for level, block in enumerate(self.encoder):
            if level > 0:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        x = skips.pop()  # the bottleneck
        for level in reversed(range(self.depth)):
            skip = skips[level]
            x = self._crop(self.upsample[level](x), self.sizes[level])
            if self.gates is not None:
                skip = self.gates[level](skip, x)
            x = self.decoder[level](torch.cat([x, skip], dim=1))
        return x
