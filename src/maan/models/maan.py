"""The modality-aware attention network (MAAN, paper section 2) and its base model."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from maan.config import AMIGOS_EEG_CHANNELS, BANDS, MODALITIES, RR_LENGTH, SUBWINDOW_SECONDS, WINDOW_SECONDS, check_number
from maan.errors import MaanError
from maan.models.blocks import PointwiseConv1d, check_input, input_shape, rr_summary, spatial_pattern
from maan.models.unet import UNet

MODEL_NAMES = ("maan", "base", "ecg-only", "eeg-only")
#: what the ECG part of the input skip holds per ECG channel (see :class:`MAAN`)
RR_SKIPS = ("padded", "beats")

# What the feature store writes for AMIGOS: an RR series and a (band, electrode, sub-window)
# differential-entropy map.
DEFAULT_ECG_SHAPE = (1, RR_LENGTH)
DEFAULT_EEG_SHAPE = (len(BANDS), len(AMIGOS_EEG_CHANNELS), int(round(WINDOW_SECONDS / SUBWINDOW_SECONDS)))
# Small enough for a 2-core CPU to train thousands of windows per second (docs/benchmarks.md).
DEFAULT_WIDTH = 8
DEFAULT_DEPTH = 2
_CLASSIFIER_HIDDEN = 32
_DROPOUT = 0.25


@dataclass
class ModelOutput:
    """One forward pass: logits, the fused representation (for t-SNE) and the fusion-attention
    channel masks ``a_ecg`` / ``a_eeg`` (batch, channels), ``None`` without fusion attention."""

    logits: torch.Tensor
    representation: torch.Tensor
    a_ecg: torch.Tensor | None = None
    a_eeg: torch.Tensor | None = None
    mask: torch.Tensor | None = None  # (batch, 2) the modalities used (MODALITIES order)


def check_model_kwargs(kwargs: dict) -> None:
    """Bounds of the architecture options (from a config file or an untrusted checkpoint)."""
    if "width" in kwargs:
        check_number("model_kwargs.width", kwargs["width"], 1, 1024, integer=True)
    if "depth" in kwargs:
        check_number("model_kwargs.depth", kwargs["depth"], 0, 3, integer=True)  # 14 x 10 EEG maps pool to 1 x 1
    for key in ("input_skip", "balance_modalities"):
        if key in kwargs and not isinstance(kwargs[key], bool):
            raise MaanError(f"model_kwargs.{key} must be true or false; got {kwargs[key]!r}")


def has_input(modalities: Sequence[str], mask) -> "np.ndarray":
    """Per window, whether a model of ``modalities`` has an input: one of them is valid in the
    modality mask (n, 2). A single-modality model has none on a window without its modality."""
    import numpy as np

    mask = np.asarray(mask, dtype=bool).reshape(-1, len(MODALITIES))
    return mask[:, [MODALITIES.index(m) for m in modalities]].any(axis=1)


class ModalityAwareAttention(nn.Module):
    """Fusion attention of paper 2.2: joint channel masks for the ECG and EEG feature maps."""

    def __init__(self, ecg_channels: int, eeg_channels: int):
        super().__init__()
        self.ecg_channels, self.eeg_channels = ecg_channels, eeg_channels
        joint = ecg_channels + eeg_channels
        self.joint_conv = PointwiseConv1d(joint, joint, kernel_size=1)
        # SiLU, not ReLU: at initialisation the pooled vectors are nearly alike across windows,
        # so a ReLU unit that starts negative would stay negative for every window.
        self.joint_activation = nn.SiLU()
        self.ecg_score = PointwiseConv1d(ecg_channels, ecg_channels, kernel_size=1)
        self.eeg_score = PointwiseConv1d(eeg_channels, eeg_channels, kernel_size=1)

    def masks(self, f_ecg: torch.Tensor, f_eeg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A_ecg (batch, C_ecg) and A_eeg (batch, C_eeg), each in (0, 1)."""
        joint = torch.cat([f_ecg.amax(dim=-1), f_eeg.amax(dim=(-2, -1))], dim=1).unsqueeze(-1)
        ecg_part, eeg_part = torch.split(self.joint_activation(self.joint_conv(joint)),
                                         [self.ecg_channels, self.eeg_channels], dim=1)
        return torch.sigmoid(self.ecg_score(ecg_part)).squeeze(-1), torch.sigmoid(self.eeg_score(eeg_part)).squeeze(-1)

    def forward(self, f_ecg: torch.Tensor, f_eeg: torch.Tensor):
        """The weighted maps and the masks: (F_ecg', F_eeg', A_ecg, A_eeg)."""
        a_ecg, a_eeg = self.masks(f_ecg, f_eeg)
        return f_ecg * a_ecg[:, :, None], f_eeg * a_eeg[:, :, None, None], a_ecg, a_eeg


class MAAN(nn.Module):
    """Modality-aware attention network: two U-Net branches, fusion attention, classifier.

    The ECG branch is a 1-D U-Net over the window's zero-embedded RR series, the EEG branch a
    2-D U-Net over its differential-entropy map (bands as channels; electrodes x sub-windows, or
    a 9x9 topographic grid). Each feature map is max-pooled to one vector; the concatenated
    vectors pass a 1x1 convolution + SiLU whose output, split per modality, gives a sigmoid
    channel mask that rescales that modality's map (the fusion attention). The ECG map is then
    averaged over time and the EEG map over sub-windows only, keeping one value per electrode
    row and channel; their concatenation is the fused representation. A two-layer classifier
    maps it to the logits.

    A window may miss a modality (a dead lead): ``mask`` (batch, 2) marks the valid ones. A
    missing modality's feature map, its part of the fusion-attention input and its blocks of
    the classifier input are zero, and a two-modality classifier also sees the mask itself, so
    the logits come from the modality that is there (modality dropout in training,
    :class:`~maan.training.module.EmotionModule`, teaches each branch to decide alone).

    Parameters
    ----------
    ecg_shape, eeg_shape : tuple of int
        Per-window inputs: ECG (channels, length), EEG (bands, electrodes, sub-windows) or, for
        the grid layout, (bands * sub-windows, 9, 9). An unused modality's shape may be None.
    n_classes : int
        Outputs of the classifier (2: low and high).
    modalities : tuple of str
        ``("ecg", "eeg")``, or one of them for a single-modality model (no fusion attention).
    width, depth : int
        Channels of the first U-Net level (doubled per level) and number of poolings, for both
        branches.
    input_skip : bool
        The classifier also sees each branch's input pooled the way its output is, and the EEG's
        per-window spatial pattern (below). ``False`` gives the paper's classifier input.
    rr_skip : {"padded", "beats"}
        What the ECG part of the input skip holds per ECG channel: the mean over the
        zero-padded RR series, or the mean over the beats and the beat fraction
        (:func:`rr_summary`).
    balance_modalities : bool
        Scale the smaller modality's block of the classifier input by d_max / d_m (d the
        blocks' sizes), so that both move the logits equally fast. Two-modality models only.
    grid_bands : int or None
        Number of bands of a grid-layout EEG input (planes are band-major), so that the input
        skip averages each band's sub-window planes; None for the channel layout.

    Differences from the paper
    --------------------------
    The paper gives no layer sizes; the U-Net sizes above are ours. The EEG map keeps its
    electrode axis after fusion because valence lives in left/right differences (frontal
    alpha asymmetry) that a global pool erases. Three additions help where training data are
    few (tens of subjects, not thousands): the input skip puts the evidence a linear model
    sees in front of the classifier from the first epoch; the spatial pattern (each band's
    pooled DE z-scored across electrodes) puts the left/right contrasts at unit scale, which
    the common mode of per-subject standardised DE otherwise hides; and the modality balance
    keeps the many EEG inputs from outpacing the few ECG ones (AdamW moves every weight by
    about the learning rate whatever its gradient). docs/model.md measures each of them.

    References
    ----------
    Deep Multimodal Emotion Recognition using Modality Aware Attention Network (the paper this
    package implements). Ronneberger, Fischer and Brox, "U-Net", MICCAI 2015.
    """

    #: the base model is this network without the fusion attention (see :class:`BaseModel`)
    fusion_attention_enabled = True

    def __init__(self, ecg_shape: Sequence[int] | None = DEFAULT_ECG_SHAPE,
                 eeg_shape: Sequence[int] | None = DEFAULT_EEG_SHAPE, n_classes: int = 2, *,
                 modalities: Sequence[str] = MODALITIES, width: int = DEFAULT_WIDTH,
                 depth: int = DEFAULT_DEPTH, input_skip: bool = True, rr_skip: str = "padded",
                 balance_modalities: bool = False, grid_bands: int | None = None):
        super().__init__()
        modalities = tuple(modalities)
        if not modalities or len(set(modalities)) != len(modalities) or not set(modalities) <= set(MODALITIES):
            raise ValueError(f"modalities must be ('ecg', 'eeg'), ('ecg',) or ('eeg',), got {modalities}")
        if n_classes < 1 or width < 1 or depth < 0:
            raise ValueError(f"n_classes and width must be >= 1 and depth >= 0, got {n_classes}, {width}, {depth}")
        if rr_skip not in RR_SKIPS:
            raise ValueError(f"rr_skip must be one of {RR_SKIPS}, got {rr_skip!r}")
        self.modalities = tuple(m for m in MODALITIES if m in modalities)
        self.n_classes, self.input_skip = n_classes, bool(input_skip)
        self.rr_skip = rr_skip if self.input_skip and "ecg" in self.modalities else "padded"
        self.grid_bands = None if grid_bands is None else int(grid_bands)
        widths = tuple(width * 2 ** level for level in range(depth + 1))
        self.ecg_shape = input_shape("ecg_shape", ecg_shape, 2) if "ecg" in self.modalities else None
        self.eeg_shape = input_shape("eeg_shape", eeg_shape, 3) if "eeg" in self.modalities else None
        self.ecg_branch = UNet(1, self.ecg_shape[0], self.ecg_shape[1:], widths) if self.ecg_shape else None
        self.eeg_branch = UNet(2, self.eeg_shape[0], self.eeg_shape[1:], widths) if self.eeg_shape else None
        two = len(self.modalities) == 2
        self.fusion_attention = ModalityAwareAttention(self.ecg_branch.out_channels, self.eeg_branch.out_channels) \
            if two and self.fusion_attention_enabled else None
        if self.grid_bands is not None and self.eeg_shape and (self.grid_bands < 1 or self.eeg_shape[0] % self.grid_bands):
            raise ValueError(f"grid_bands={grid_bands} does not divide the {self.eeg_shape[0]} planes of the grid input")
        # the spatial pattern is not taken on the grid: most of its cells hold no electrode
        self.spatial_skip = self.input_skip and self.eeg_shape is not None and self.grid_bands is None
        ecg_out = self.ecg_branch.out_channels if self.ecg_branch else 0
        eeg_out = self.eeg_branch.out_channels * self.eeg_shape[1] if self.eeg_branch else 0
        self.representation_size = ecg_out + eeg_out
        ecg_skip = eeg_skip = 0
        if self.input_skip and self.ecg_shape:
            ecg_skip = self.ecg_shape[0] * (2 if self.rr_skip == "beats" else 1)
        if self.input_skip and self.eeg_shape:
            h, w = self.eeg_shape[1:]
            eeg_skip = self.grid_bands * h * w if self.grid_bands else self.eeg_shape[0] * h
            eeg_skip *= 2 if self.spatial_skip else 1
        self.skip_size = ecg_skip + eeg_skip
        self.balance_modalities = bool(balance_modalities) and two
        largest = max(ecg_out + ecg_skip, eeg_out + eeg_skip)
        self.ecg_scale = largest / (ecg_out + ecg_skip) if self.balance_modalities else 1.0
        self.eeg_scale = largest / (eeg_out + eeg_skip) if self.balance_modalities else 1.0
        # a two-modality classifier sees the modality mask too (which blocks are missing)
        self.mask_inputs = len(MODALITIES) if two else 0
        self.classifier = nn.Sequential(
            nn.Linear(self.representation_size + ecg_skip + eeg_skip + self.mask_inputs, _CLASSIFIER_HIDDEN), nn.ReLU(),
            nn.Dropout(_DROPOUT), nn.Linear(_CLASSIFIER_HIDDEN, n_classes))
        self.config = dict(ecg_shape=self.ecg_shape, eeg_shape=self.eeg_shape, n_classes=n_classes,
                           modalities=self.modalities, width=width, depth=depth, input_skip=self.input_skip,
                           rr_skip=self.rr_skip, balance_modalities=self.balance_modalities, grid_bands=self.grid_bands)

    def _mask(self, mask: torch.Tensor | None, n: int, like: torch.Tensor) -> torch.Tensor:
        """The (batch, 2) float mask; None: every window complete."""
        if mask is None:
            return torch.ones(n, len(MODALITIES), dtype=like.dtype, device=like.device)
        if mask.ndim != 2 or mask.shape[1] != len(MODALITIES) or mask.shape[0] != n:
            raise ValueError(f"mask must be (batch, {len(MODALITIES)}) = ({n}, {len(MODALITIES)}), "
                             f"got {tuple(mask.shape)}")
        return mask.to(dtype=like.dtype)

    def forward_with_details(self, x_ecg: torch.Tensor | None, x_eeg: torch.Tensor | None,
                             mask: torch.Tensor | None = None) -> ModelOutput:
        """Logits, representation and (for the attention model) the masks; ``mask`` (batch, 2)
        marks each window's valid modalities (None: all valid)."""
        f_ecg = self.ecg_branch(check_input("x_ecg", x_ecg, self.ecg_shape)) if self.ecg_branch else None
        f_eeg = self.eeg_branch(check_input("x_eeg", x_eeg, self.eeg_shape)) if self.eeg_branch else None
        if f_ecg is not None and f_eeg is not None and f_ecg.shape[0] != f_eeg.shape[0]:
            raise ValueError(f"x_ecg and x_eeg must hold the same windows, got batch sizes "
                             f"{f_ecg.shape[0]} and {f_eeg.shape[0]}")
        first = f_ecg if f_ecg is not None else f_eeg
        mask = self._mask(mask, first.shape[0], first)
        m_ecg, m_eeg = mask[:, 0], mask[:, 1]
        # a missing modality's map is zero before fusion: it adds nothing to the attention's input
        if f_ecg is not None:
            f_ecg = f_ecg * m_ecg[:, None, None]
        if f_eeg is not None:
            f_eeg = f_eeg * m_eeg[:, None, None, None]
        a_ecg = a_eeg = None
        if self.fusion_attention is not None:
            f_ecg, f_eeg, a_ecg, a_eeg = self.fusion_attention(f_ecg, f_eeg)
        parts = []  # (classifier input block, its modality's scale): representation, then skip
        if f_ecg is not None:
            parts.append((f_ecg.mean(dim=-1), self.ecg_scale))
        if f_eeg is not None:
            parts.append((f_eeg.mean(dim=-1).flatten(1), self.eeg_scale))
        representation = torch.cat([p for p, _ in parts], dim=1)
        if self.input_skip and f_ecg is not None:
            rr = rr_summary(x_ecg) if self.rr_skip == "beats" else x_ecg.mean(dim=-1)
            parts.append((rr * m_ecg[:, None], self.ecg_scale))
        if self.input_skip and f_eeg is not None:
            if self.grid_bands:  # planes are (band, sub-window): average each band's planes
                n, planes, h, w = x_eeg.shape
                de = x_eeg.reshape(n, self.grid_bands, planes // self.grid_bands, h, w).mean(dim=2).flatten(2)
            else:
                de = x_eeg.mean(dim=-1)  # (batch, band, electrode)
            parts.append((de.flatten(1) * m_eeg[:, None], self.eeg_scale))
            if self.spatial_skip:
                parts.append((spatial_pattern(de).flatten(1) * m_eeg[:, None], self.eeg_scale))
        if self.mask_inputs:
            parts.append((mask, 1.0))
        features = torch.cat([p * s if s != 1.0 else p for p, s in parts], dim=1)
        return ModelOutput(self.classifier(features), representation, a_ecg, a_eeg, mask)

    def forward(self, x_ecg: torch.Tensor | None, x_eeg: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, n_classes)."""
        return self.forward_with_details(x_ecg, x_eeg, mask).logits

    def representation(self, x_ecg: torch.Tensor | None, x_eeg: torch.Tensor | None = None,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
        """The fused, learned vector (batch, representation_size), for t-SNE (no pooled inputs)."""
        return self.forward_with_details(x_ecg, x_eeg, mask).representation


class BaseModel(MAAN):
    """The paper's base model: :class:`MAAN` without the fusion attention (plain concatenation).

    Same arguments as MAAN; with the same seed its parameters are MAAN's minus ``fusion_attention.*``.
    """

    fusion_attention_enabled = False


def model_modalities(name: str) -> tuple:
    """The modalities the model ``name`` (one of MODEL_NAMES) takes."""
    return (name.split("-")[0],) if name in ("ecg-only", "eeg-only") else MODALITIES


def build_model(name: str, ecg_shape: Sequence[int] | None = DEFAULT_ECG_SHAPE,
                eeg_shape: Sequence[int] | None = DEFAULT_EEG_SHAPE, **kwargs) -> MAAN:
    """Build a model by name: "maan", "base", "ecg-only" or "eeg-only"; ``kwargs`` go to :class:`MAAN`."""
    if name == "maan":
        return MAAN(ecg_shape, eeg_shape, **kwargs)
    if name == "base":
        return BaseModel(ecg_shape, eeg_shape, **kwargs)
    if name in ("ecg-only", "eeg-only"):
        kwargs.pop("balance_modalities", None)  # one modality: nothing to balance
        modality = name.split("-")[0]
        return MAAN(ecg_shape if modality == "ecg" else None, eeg_shape if modality == "eeg" else None,
                    modalities=(modality,), **kwargs)
    raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
