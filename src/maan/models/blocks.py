"""Building blocks of the intra-modality U-Nets, written once for 1-D (ECG) and 2-D (EEG).

Every block takes ``dims`` (1 or 2) and picks the matching ``Conv1d``/``Conv2d`` etc., so
the ECG and EEG branches are the same architecture and differ only in dimensionality
(paper 2.1: "2D CNN followed by batch normalization and activation layers" for EEG, the
1-D counterpart for ECG). Also the input-shape checks and the two summaries of a window's input
that the classifier sees beside the learned representation (:func:`rr_summary`, :func:`spatial_pattern`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU}
SQUEEZE_EXCITATION_KINDS = ("scse", "se", "none")
#: floor of the across-electrode standard deviation in the spatial pattern (flat windows)
_SPATIAL_STD_FLOOR = 1e-3

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}


def _check_dims(dims: int) -> int:
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 (ECG) or 2 (EEG), got {dims!r}")
    return dims


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module; ``name`` is one of ``ACTIVATIONS``."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None


class PointwiseConv1d(nn.Conv1d):
    """A 1x1 ``Conv1d`` (same parameters and state dict) computed as a matrix product over channels.

    Why: oneDNN has a fixed cost on every convolution call, forward and backward, which for the
    few-channel 1x1 convolutions of the gates and squeeze-excitation is most of their
    time; ``F.linear`` on the channels-last view does the same arithmetic without it
    (``benchmarks/model.py`` measures the training step).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.transpose(1, -1), self.weight.flatten(1), self.bias).transpose(1, -1)


class PointwiseConv2d(nn.Conv2d):
    """A 1x1 ``Conv2d`` computed as a matrix product over channels (see :class:`PointwiseConv1d`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.permute(0, 2, 3, 1), self.weight.flatten(1), self.bias).permute(0, 3, 1, 2)


_POINTWISE = {1: PointwiseConv1d, 2: PointwiseConv2d}


def conv_layer(dims: int, in_channels: int, out_channels: int, kernel_size: int = 1,
               **kwargs) -> nn.Module:
    """A ``Conv1d``/``Conv2d``; kernel size 1 gives the pointwise class (same parameters)."""
    if kernel_size == 1 and not {"stride", "padding", "dilation", "groups"} & set(kwargs):
        return _POINTWISE[_check_dims(dims)](in_channels, out_channels, 1, **kwargs)
    return _CONV[_check_dims(dims)](in_channels, out_channels, kernel_size, **kwargs)


def conv_transpose_layer(dims: int, in_channels: int, out_channels: int) -> nn.Module:
    """Learned x2 upsampling (kernel 2, stride 2), the U-Net's "up-convolution"."""
    return _CONV_TRANSPOSE[_check_dims(dims)](in_channels, out_channels, 2, stride=2)


def max_pool_layer(dims: int) -> nn.Module:
    # ceil_mode keeps odd sizes (14 EEG channels -> 7 -> 4) instead of dropping the last
    # row; the decoder crops the upsampled map back to the skip connection's size.
    return _MAX_POOL[_check_dims(dims)](kernel_size=2, stride=2, ceil_mode=True)


class ConvUnit(nn.Module):
    """Convolution -> batch norm -> activation, the paper's elementary unit.

    The convolution has no bias because batch norm's shift makes it redundant.
    Padding keeps the length (1-D) or height x width (2-D) unchanged.
    """

    def __init__(self, dims: int, in_channels: int, out_channels: int, kernel_size: int = 3,
                 activation: str = "relu"):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep the size, got {kernel_size}")
        self.conv = conv_layer(dims, in_channels, out_channels, kernel_size,
                               padding=kernel_size // 2, bias=False)
        self.norm = _BATCH_NORM[dims](out_channels)
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(x)))


class ChannelSqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al.): reweight channels from their global average.

    ``x * sigmoid(W2 silu(W1 avgpool(x)))``; the bottleneck has ``channels // reduction``
    units (at least 2). Hu et al. use ReLU in the bottleneck; at this model's small widths
    it has only 2-8 units, and the squeezed input (a channel mean) is nearly the same for
    every window, so a ReLU unit that starts negative is negative for the whole batch, gets
    no gradient and stays dead; with 2 units that switches the block off a quarter of the
    time. SiLU always passes a gradient.
    """

    def __init__(self, dims: int, channels: int, reduction: int = 4):
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction must be >= 1, got {reduction}")
        hidden = max(2, channels // reduction)
        self.squeeze_dims = tuple(range(2, 2 + _check_dims(dims)))
        self.excite = nn.Sequential(
            nn.Linear(channels, hidden), nn.SiLU(), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.excite(x.mean(dim=self.squeeze_dims))
        return weights.reshape(weights.shape + (1,) * len(self.squeeze_dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.channel_weights(x)


class SpatialSqueezeExcitation(nn.Module):
    """Spatial squeeze, channel excitation (Roy et al.'s sSE): a 1x1 convolution scores
    every position (time step, or electrode x sub-window) and rescales it."""

    def __init__(self, dims: int, channels: int):
        super().__init__()
        self.score = conv_layer(dims, channels, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.score(x))


class ConcurrentSqueezeExcitation(nn.Module):
    """scSE (Roy et al.): channel SE and spatial SE applied concurrently, outputs added."""

    def __init__(self, dims: int, channels: int, reduction: int = 4):
        super().__init__()
        self.channel = ChannelSqueezeExcitation(dims, channels, reduction)
        self.spatial = SpatialSqueezeExcitation(dims, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel(x) + self.spatial(x)


def squeeze_excitation(kind: str, dims: int, channels: int, reduction: int = 4) -> nn.Module:
    """Build the recalibration step named by ``kind``: "scse", "se" or "none"."""
    if kind == "scse":
        return ConcurrentSqueezeExcitation(dims, channels, reduction)
    if kind == "se":
        return ChannelSqueezeExcitation(dims, channels, reduction)
    if kind == "none":
        return nn.Identity()
    raise ValueError(
        f"unknown squeeze-excitation {kind!r}; choose one of {SQUEEZE_EXCITATION_KINDS}"
    )


class ConvBlock(nn.Module):
    """One U-Net level: ``n_units`` conv units followed by squeeze-excitation."""

    def __init__(self, dims: int, in_channels: int, out_channels: int, *, n_units: int = 2,
                 kernel_size: int = 3, activation: str = "relu", se: str = "scse",
                 se_reduction: int = 4):
        super().__init__()
        if n_units < 1:
            raise ValueError(f"n_units must be >= 1, got {n_units}")
        units = [ConvUnit(dims, in_channels, out_channels, kernel_size, activation)]
        units += [ConvUnit(dims, out_channels, out_channels, kernel_size, activation)
                  for _ in range(n_units - 1)]
        self.units = nn.Sequential(*units)
        self.recalibrate = squeeze_excitation(se, dims, out_channels, se_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.recalibrate(self.units(x))


class AttentionGate(nn.Module):
    """Additive attention gate on a U-Net skip connection (Oktay et al., Attention U-Net).

    Our reading of the paper's Fig. 1-(b) ("an attention mechanism to emphasize
    target-specific extraction of features"): the decoder's coarser, more task-specific
    features (the gating signal, already upsampled to the skip's size) decide which
    positions of the encoder's skip features pass through:
    ``skip * sigmoid(psi(relu(W_skip skip + W_gate gate)))``.
    """

    def __init__(self, dims: int, skip_channels: int, gate_channels: int,
                 inter_channels: int | None = None):
        super().__init__()
        inter_channels = inter_channels or max(1, skip_channels // 2)
        self.project_skip = conv_layer(dims, skip_channels, inter_channels, bias=False)
        self.project_gate = conv_layer(dims, gate_channels, inter_channels)
        self.score = conv_layer(dims, inter_channels, 1)

    def coefficients(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """Per-position weights in (0, 1), shape (batch, 1, *skip spatial dims)."""
        return torch.sigmoid(self.score(torch.relu(self.project_skip(skip)
                                                   + self.project_gate(gate))))

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return skip * self.coefficients(skip, gate)


def input_shape(name: str, shape, rank: int) -> tuple[int, ...]:
    """``shape`` as a tuple of ``rank`` positive sizes, or a ValueError naming ``name``."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"{name} must be a tuple of {rank} sizes, got {shape!r}") from None
    if len(shape) != rank or min(shape) < 1:
        layout = "(channels, length)" if rank == 2 else "(bands, height, width)"
        raise ValueError(f"{name} must be {layout} with positive sizes, got {shape}")
    return shape


def check_input(name: str, x, shape) -> torch.Tensor:
    """``x`` if it is a tensor of shape (batch, *shape), else an error saying what is expected."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"{name} must have shape (batch, {', '.join(map(str, shape))}) as the model "
                         f"was built for, got {tuple(x.shape)}")
    return x


def rr_summary(rr: torch.Tensor) -> torch.Tensor:
    """Per channel, the mean of a zero-embedded RR series over its beats and its beat fraction.

    ``rr`` (batch, channels, length), standardised so that padding is exactly 0: returns (batch,
    2 * channels), the means (0 for a window without beats) then the fractions of non-zero
    entries. The mean over the padded series mixes the two (it is their product).
    """
    beats = (rr != 0).to(rr.dtype)
    count = beats.sum(dim=-1)
    return torch.cat([rr.sum(dim=-1) / count.clamp(min=1.0), count / rr.shape[-1]], dim=1)


def spatial_pattern(de: torch.Tensor) -> torch.Tensor:
    """Each window's and band's values z-scored across the last (electrode) axis.

    ``de`` (batch, bands, electrodes); a flat band (spread below a floor) gives ~0, not inf.
    """
    centred = de - de.mean(dim=-1, keepdim=True)
    return centred / centred.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp(min=_SPATIAL_STD_FLOOR)
