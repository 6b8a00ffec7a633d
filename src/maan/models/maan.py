"""The modality-aware attention network (MAAN, paper 2.2) and its ablations.

``MAAN`` = ECG U-Net branch + EEG U-Net branch + modality-aware fusion attention +
classifier. ``BaseModel`` is the same network with the fusion attention removed (the pooled
branch features are simply concatenated), so "base vs proposed" ablates exactly one
component. ``modalities=("ecg",)`` / ``("eeg",)`` give the single-modality variants.

Reading of paper 2.2 (the text gives no layer sizes; these choices are ours):

* F_ecg (batch, C_ecg, time) is max-pooled over time, F_eeg (batch, C_eeg, H, W) over its
  two spatial axes, giving one vector per modality.
* The vectors are concatenated to (batch, C_ecg + C_eeg) and a first 1x1 convolution (over
  the joint vector as channels, so every output sees both modalities) + SiLU produces a
  joint score vector of the same length, which is split at C_ecg into an ECG part and an
  EEG part.
* A per-modality 1x1 convolution and a sigmoid turn each part into the channel mask
  A_ecg (batch, C_ecg) / A_eeg (batch, C_eeg), in (0, 1).
* Each mask rescales its modality's feature map channel-wise (broadcast over time /
  space). The weighted ECG map is averaged over time, the weighted EEG map over its last
  axis (sub-windows) only, keeping one value per electrode row and channel: a global pool
  would erase the left/right electrode differences that carry valence (frontal alpha
  asymmetry; measured: valence accuracy at chance with a global pool). The concatenation is
  the fused representation (the one plotted with t-SNE).
* Ours, not the paper's (``input_skip``, on by default): the classifier sees the fused
  representation *and* each branch's input pooled the way its output is (the zero-embedded,
  standardised RR series averaged over time; the DE map averaged over its sub-windows, one
  value per band and electrode, or per band and grid cell for the topographic grid given
  ``grid_bands``), a skip connection around the two U-Nets. On eegmat-sized cohorts (~50
  training windows) the U-Nets alone stay 0.05-0.08 below the logistic baseline on window
  means (RR statistics + mean DE); with the skip that evidence is there from the first epoch
  and the gap is 0.02 (docs/performance.md, "eegmat-sized synthetic cohorts").
* Also ours (``spatial_skip``, on by default with the skip): the EEG part of the skip also
  carries each band's spatial pattern, the pooled DE z-scored across electrodes within the
  window (not on the topographic grid, whose empty cells would dominate it). Per-subject
  standardised DE is dominated by one common mode (electrodes correlate ~0.8 in the alpha
  band; the first eigenvalue of the pooled DE's covariance is ~65x the median), so gradient
  descent with early stopping learns the left/right contrasts that carry valence last, and on
  small stores not at all (valence at chance subject-held-out). The z-scored pattern puts
  those contrasts at unit scale (docs/performance.md, "The spatial skip").
* Also ours (``balance_modalities``; training turns it on with ``--normalize subject``,
  maan.training.module.modality_balance): the smaller modality's block of the classifier input
  (its pooled branch output and its part of the skip) is multiplied by d_max / d_m, d_m the
  block's size and d_max the larger block's, so that the two blocks move the logits equally
  fast while the larger one keeps the scale it has without the balance. AdamW moves every
  weight by about the learning rate per step whatever the size of its gradient, so a block of d
  inputs moves the logits about d times as fast as a single input; on eegmat the EEG block has
  304 inputs and the ECG block 9, and the jointly trained network fitted its two training
  subjects with EEG features that do not transfer before it learned heart rate, ending below
  both of its single-modality ablations (the known failure of joint multimodal training).
  ``balance_modalities="split"`` is the first rule (checkpoint format 4): both blocks scaled
  to half the input, D / (2 d_m), which also halves the EEG block and slowed valence.
  Measured in docs/performance.md, "Balancing the modalities".
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from maan.config import AMIGOS_EEG_CHANNELS, BANDS, RR_LENGTH, SUBWINDOW_SECONDS, WINDOW_SECONDS
from maan.models.unet import UNet

MODALITIES = ("ecg", "eeg")
FUSIONS = ("attention", "concat")
MODEL_NAMES = ("maan", "base", "ecg-only", "eeg-only")

# What the feature store writes for AMIGOS: an RR series and a (band, electrode,
# sub-window) differential-entropy map.
DEFAULT_ECG_SHAPE = (1, RR_LENGTH)
DEFAULT_EEG_SHAPE = (len(BANDS), len(AMIGOS_EEG_CHANNELS),
                     int(round(WINDOW_SECONDS / SUBWINDOW_SECONDS)))

# Chosen so that a 2-core CPU trains >= 2,000 windows/s and answers one window in < 5 ms
# p99; wider or deeper U-Nets miss the training goal (docs/performance-model.md).
DEFAULT_WIDTH = 8
DEFAULT_DEPTH = 2
#: the classifier also sees the pooled inputs (module docstring); since 2026-11-26
DEFAULT_INPUT_SKIP = True
#: ... and the EEG's per-window spatial pattern (module docstring); since 2026-11-26
DEFAULT_SPATIAL_SKIP = True
#: what the ECG part of the input skip carries per ECG channel: "padded" (the mean over the
#: zero-padded series), "beats" (the mean over the beats and the fraction of entries that are
#: beats) or "beat-mean" (the mean over the beats only; an option). The model's own default is
#: "padded"; training's default, "auto", picks "beats" or "padded" from the training labels
#: (maan.training.module.resolve_rr_skip; docs/performance.md, "Heart rate where it carries the target")
RR_SKIPS = ("padded", "beats", "beat-mean")
DEFAULT_RR_SKIP = "padded"
#: the rules of ``balance_modalities``: "raise" (``True``) and "split" (checkpoint format 4)
BALANCE_RULES = ("raise", "split")
#: floor of the across-electrode standard deviation in the spatial skip (flat windows)
_SPATIAL_STD_FLOOR = 1e-3


@dataclass
class ModelOutput:
    """Everything one forward pass produces.

    ``representation`` is the fused, learned vector (batch, n_features); with ``input_skip``
    the classifier sees it concatenated with the pooled inputs (and, with ``spatial_skip``,
    the EEG's per-window spatial pattern);
    ``a_ecg`` / ``a_eeg`` are the fusion-attention channel masks (batch, channels), or
    ``None`` for a model without fusion attention.
    """

    logits: torch.Tensor
    representation: torch.Tensor
    a_ecg: torch.Tensor | None = None
    a_eeg: torch.Tensor | None = None


class ModalityAwareAttention(nn.Module):
    """Fusion attention of paper 2.2: joint channel masks for the ECG and EEG maps."""

    def __init__(self, ecg_channels: int, eeg_channels: int):
        super().__init__()
        self.ecg_channels = ecg_channels
        self.eeg_channels = eeg_channels
        joint = ecg_channels + eeg_channels
        self.joint_conv = nn.Conv1d(joint, joint, kernel_size=1)
        # Not ReLU: the pooled vectors are nearly alike across windows at initialisation, so
        # a ReLU unit that starts negative stays negative for every window and never learns
        # (a quarter of the joint units, measured); SiLU always passes a gradient.
        self.joint_activation = nn.SiLU()
        self.ecg_score = nn.Conv1d(ecg_channels, ecg_channels, kernel_size=1)
        self.eeg_score = nn.Conv1d(eeg_channels, eeg_channels, kernel_size=1)

    def masks(self, f_ecg: torch.Tensor, f_eeg: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """A_ecg (batch, C_ecg) and A_eeg (batch, C_eeg), each in (0, 1)."""
        pooled_ecg = f_ecg.amax(dim=-1)
        pooled_eeg = f_eeg.amax(dim=(-2, -1))
        joint = torch.cat([pooled_ecg, pooled_eeg], dim=1).unsqueeze(-1)
        joint = self.joint_activation(self.joint_conv(joint))
        ecg_part, eeg_part = torch.split(joint, [self.ecg_channels, self.eeg_channels], dim=1)
        a_ecg = torch.sigmoid(self.ecg_score(ecg_part)).squeeze(-1)
        a_eeg = torch.sigmoid(self.eeg_score(eeg_part)).squeeze(-1)
        return a_ecg, a_eeg

    def forward(self, f_ecg: torch.Tensor, f_eeg: torch.Tensor):
        """Return the weighted maps and the masks: (F_ecg', F_eeg', A_ecg, A_eeg)."""
        a_ecg, a_eeg = self.masks(f_ecg, f_eeg)
        return f_ecg * a_ecg[:, :, None], f_eeg * a_eeg[:, :, None, None], a_ecg, a_eeg


def _shape(name: str, shape, rank: int) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"{name} must be a tuple of {rank} sizes, got {shape!r}") from None
    if len(shape) != rank or min(shape) < 1:
        layout = "(channels, length)" if rank == 2 else "(bands, height, width)"
        raise ValueError(f"{name} must be {layout} with positive sizes, got {shape}")
    return shape


class MAAN(nn.Module):
    """Modality-aware attention network: two U-Net branches, fusion attention, classifier.

    Args:
        ecg_shape: per-window ECG input (channels, length), e.g. ``(1, RR_LENGTH)``.
        eeg_shape: per-window EEG input (channels, height, width), e.g. (bands,
            electrodes, sub-windows) or (bands*sub-windows, 9, 9) for the topographic grid.
        n_classes: classifier outputs (2 for low/high arousal or valence).
        modalities: ``("ecg", "eeg")`` or one of them for the single-modality ablation; the
            unused input may be ``None`` in ``forward``.
        fusion: "attention" (the paper's model) or "concat" (the base model); ``None``
            means "attention" for two modalities and no fusion for one.
        width, depth: channels of the first U-Net level (doubled per level) and number of
            poolings, for both branches; ``ecg_widths`` / ``eeg_widths`` override the
            per-level channels of one branch (their last entry is the bottleneck).
        n_units, kernel_size, activation, se, attention_gates: see :class:`UNet`.
        classifier_hidden, dropout: the two-layer classifier on the representation.
        input_skip: the classifier also sees the pooled inputs (module docstring); ``False``
            gives the paper's classifier input, and rebuilds checkpoints written before it.
        spatial_skip: with ``input_skip``, the EEG part of the skip also holds each band's
            pooled DE z-scored across electrodes within the window (module docstring);
            ``False`` rebuilds checkpoints written before it. No effect without
            ``input_skip``, without the EEG branch, or on the topographic grid (``grid_bands``).
        balance_modalities: for the two-modality models, ``True`` or ``"raise"`` scales the
            smaller modality's block of the classifier input by d_max / d_m; ``"split"`` (the
            rule of checkpoint format 4) scales each block by D / (2 d_m); ``False`` leaves
            them (module docstring). No effect on a single-modality model.
        rr_skip: with ``input_skip``, what the ECG part of the skip holds per ECG channel:
            ``"padded"`` (default; checkpoints before format 6) the mean over the zero-padded
            RR series, ``"beats"`` the mean over the beats and the beat fraction
            (:func:`rr_summary`; what training's ``"auto"`` picks where the training labels
            show heart rate carrying the target: maan.training.module.resolve_rr_skip),
            ``"beat-mean"`` the mean over the beats only (the fraction is the subject's raw
            heart-rate level, which per-subject standardisation does not reach).
        grid_bands: for the topographic-grid EEG input (bands*sub-windows, 9, 9), its number
            of bands (planes are band-major), so that the skip averages each band's
            sub-window planes; ``None``: the EEG input is (bands, electrodes, sub-windows).

    ``forward(x_ecg, x_eeg)`` returns logits (batch, n_classes); ``forward_with_details``
    also returns the representation and the masks; ``representation`` only the former.
    ``config`` holds the constructor arguments, to rebuild the model from a checkpoint.
    """

    def __init__(self, ecg_shape: Sequence[int] | None = DEFAULT_ECG_SHAPE,
                 eeg_shape: Sequence[int] | None = DEFAULT_EEG_SHAPE, n_classes: int = 2, *,
                 modalities: Sequence[str] = MODALITIES, fusion: str | None = None,
                 width: int = DEFAULT_WIDTH, depth: int = DEFAULT_DEPTH,
                 ecg_widths: Sequence[int] | None = None,
                 eeg_widths: Sequence[int] | None = None, n_units: int = 2,
                 kernel_size: int = 3, activation: str = "relu", se: str = "scse",
                 attention_gates: bool = True, classifier_hidden: int = 32,
                 dropout: float = 0.25, input_skip: bool = DEFAULT_INPUT_SKIP,
                 spatial_skip: bool = DEFAULT_SPATIAL_SKIP, grid_bands: int | None = None,
                 balance_modalities: bool | str = False, rr_skip: str = DEFAULT_RR_SKIP):
        super().__init__()
        modalities = tuple(modalities)
        if not modalities or len(set(modalities)) != len(modalities) or any(
                m not in MODALITIES for m in modalities):
            raise ValueError(
                f"modalities must be ('ecg', 'eeg'), ('ecg',) or ('eeg',), got {modalities}"
            )
        modalities = tuple(m for m in MODALITIES if m in modalities)
        if fusion is None:
            fusion = "attention" if len(modalities) == 2 else "concat"
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS} (or None), got {fusion!r}")
        if fusion == "attention" and len(modalities) < 2:
            raise ValueError(
                "fusion attention needs both modalities; pass fusion='concat' (or None) "
                f"for the single-modality model {modalities}"
            )
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        if width < 1 or depth < 0:
            raise ValueError(f"width must be >= 1 and depth >= 0, got {width}, {depth}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if rr_skip not in RR_SKIPS:
            raise ValueError(f"rr_skip must be one of {RR_SKIPS}, got {rr_skip!r}")

        default_widths = tuple(width * 2 ** level for level in range(depth + 1))
        unet_options = dict(n_units=n_units, kernel_size=kernel_size, activation=activation,
                            se=se, attention_gates=attention_gates)
        self.modalities = modalities
        self.fusion = fusion
        self.n_classes = n_classes
        self.ecg_shape = self.eeg_shape = None
        self.ecg_branch = self.eeg_branch = None
        if "ecg" in modalities:
            if ecg_shape is None:
                raise ValueError("ecg_shape is required when 'ecg' is among the modalities")
            self.ecg_shape = _shape("ecg_shape", ecg_shape, 2)
            self.ecg_branch = UNet(1, self.ecg_shape[0], self.ecg_shape[1:],
                                   ecg_widths or default_widths, **unet_options)
        if "eeg" in modalities:
            if eeg_shape is None:
                raise ValueError("eeg_shape is required when 'eeg' is among the modalities")
            self.eeg_shape = _shape("eeg_shape", eeg_shape, 3)
            self.eeg_branch = UNet(2, self.eeg_shape[0], self.eeg_shape[1:],
                                   eeg_widths or default_widths, **unet_options)
        self.fusion_attention = ModalityAwareAttention(
            self.ecg_branch.out_channels, self.eeg_branch.out_channels
        ) if fusion == "attention" else None

        # EEG keeps its electrode axis (pooled over sub-windows only): valence lives in
        # left/right differences (frontal alpha asymmetry) that a global pool would erase.
        self.representation_size = (
            (self.ecg_branch.out_channels if self.ecg_branch else 0)
            + (self.eeg_branch.out_channels * self.eeg_shape[1] if self.eeg_branch else 0)
        )
        self.input_skip = bool(input_skip)
        # not on the topographic grid: most of its cells hold no electrode (always 0), and a
        # z-score across them would measure the common level instead of removing it
        self.spatial_skip = (bool(spatial_skip) and self.input_skip and "eeg" in modalities
                             and grid_bands is None)
        self.grid_bands = None if grid_bands is None else int(grid_bands)
        if self.grid_bands is not None and self.eeg_shape is not None and (
                self.grid_bands < 1 or self.eeg_shape[0] % self.grid_bands):
            raise ValueError(f"grid_bands={grid_bands} does not divide the {self.eeg_shape[0]} planes of "
                             "the grid EEG input")
        # the inputs pooled over sub-windows as the branch outputs are: one value per ECG
        # channel; per (band, electrode), or per (band, grid cell) for the grid
        eeg_skip = 0
        if self.eeg_shape is not None:
            eeg_skip = (self.grid_bands * self.eeg_shape[1] * self.eeg_shape[2] if self.grid_bands
                        else self.eeg_shape[0] * self.eeg_shape[1])
        if self.spatial_skip:  # the pooled DE and its z-scored spatial pattern
            eeg_skip *= 2
        self.rr_skip = rr_skip if self.input_skip and "ecg" in modalities else DEFAULT_RR_SKIP
        ecg_skip = (self.ecg_shape[0] * (2 if self.rr_skip == "beats" else 1)) if self.ecg_branch else 0
        self.skip_size = (ecg_skip + (eeg_skip if self.eeg_branch else 0)) if self.input_skip else 0
        # sizes of each modality's block of the classifier input, and the block scales
        ecg_block = ((self.ecg_branch.out_channels + (ecg_skip if self.input_skip else 0))
                     if self.ecg_branch else 0)
        eeg_block = self.representation_size + self.skip_size - ecg_block
        rule = balance_rule(balance_modalities)
        self.balance_modalities = rule if len(modalities) == 2 else False
        self.ecg_scale, self.eeg_scale = block_scales(self.balance_modalities, ecg_block, eeg_block)
        self.classifier = nn.Sequential(
            nn.Linear(self.representation_size + self.skip_size, classifier_hidden), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(classifier_hidden, n_classes),
        )
        self.config = dict(
            ecg_shape=self.ecg_shape, eeg_shape=self.eeg_shape, n_classes=n_classes,
            modalities=modalities, fusion=fusion, width=width, depth=depth,
            ecg_widths=None if ecg_widths is None else tuple(ecg_widths),
            eeg_widths=None if eeg_widths is None else tuple(eeg_widths),
            classifier_hidden=classifier_hidden, dropout=dropout, input_skip=self.input_skip,
            spatial_skip=self.spatial_skip, grid_bands=self.grid_bands,
            balance_modalities=self.balance_modalities, rr_skip=self.rr_skip, **unet_options,
        )

    def _check_input(self, name: str, x, shape) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape:
            raise ValueError(
                f"{name} must have shape (batch, {', '.join(map(str, shape))}) as the model "
                f"was built for, got {tuple(x.shape)}"
            )
        return x

    def forward_with_details(self, x_ecg: torch.Tensor | None,
                             x_eeg: torch.Tensor | None) -> ModelOutput:
        """Logits, representation and (for the attention model) the masks."""
        pooled, a_ecg, a_eeg = [], None, None
        f_ecg = f_eeg = None
        if self.ecg_branch is not None:
            f_ecg = self.ecg_branch(self._check_input("x_ecg", x_ecg, self.ecg_shape))
        if self.eeg_branch is not None:
            f_eeg = self.eeg_branch(self._check_input("x_eeg", x_eeg, self.eeg_shape))
        if f_ecg is not None and f_eeg is not None and f_ecg.shape[0] != f_eeg.shape[0]:
            raise ValueError(
                f"x_ecg and x_eeg must hold the same windows, got batch sizes "
                f"{f_ecg.shape[0]} and {f_eeg.shape[0]}"
            )
        if self.fusion_attention is not None:
            f_ecg, f_eeg, a_ecg, a_eeg = self.fusion_attention(f_ecg, f_eeg)
        if f_ecg is not None:
            pooled.append(f_ecg.mean(dim=-1))
        if f_eeg is not None:
            pooled.append(f_eeg.mean(dim=-1).flatten(1))
        representation = torch.cat(pooled, dim=1) if len(pooled) > 1 else pooled[0]
        # the classifier's input: the representation, then the skip; each part scaled by its
        # modality's block scale (1 unless balance_modalities)
        scales = ([self.ecg_scale] if f_ecg is not None else []) + ([self.eeg_scale] if f_eeg is not None else [])
        parts = list(zip(pooled, scales))
        if self.input_skip:
            if f_ecg is not None:
                parts.append((_RR_SKIP_FUNCTIONS[self.rr_skip](x_ecg), self.ecg_scale))
            if f_eeg is not None:
                if self.grid_bands:  # planes are (band, sub-window): average each band's planes
                    n, planes, h, w = x_eeg.shape
                    de = x_eeg.reshape(n, self.grid_bands, planes // self.grid_bands, h, w).mean(dim=2).flatten(2)
                else:
                    de = x_eeg.mean(dim=-1)  # (batch, band, electrode)
                parts.append((de.flatten(1), self.eeg_scale))
                if self.spatial_skip:
                    parts.append((spatial_pattern(de).flatten(1), self.eeg_scale))
        features = torch.cat([part * scale if scale != 1.0 else part for part, scale in parts], dim=1)
        return ModelOutput(self.classifier(features), representation, a_ecg, a_eeg)

    def forward(self, x_ecg: torch.Tensor | None, x_eeg: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Logits (batch, n_classes)."""
        return self.forward_with_details(x_ecg, x_eeg).logits

    def representation(self, x_ecg: torch.Tensor | None, x_eeg: torch.Tensor | None = None
                       ) -> torch.Tensor:
        """The fused, learned vector (batch, representation_size), for t-SNE (no pooled inputs)."""
        return self.forward_with_details(x_ecg, x_eeg).representation


def balance_rule(value) -> str | bool:
    """``balance_modalities`` as a rule name: ``False`` (off), ``"raise"`` (``True``) or ``"split"``."""
    if isinstance(value, str):
        if value in ("off", "on"):
            return "raise" if value == "on" else False
        if value in BALANCE_RULES:
            return value
    elif value is None or value in (False, True):  # bools, numpy bools, 0 and 1
        return "raise" if value else False
    raise ValueError(f"balance_modalities must be True, False or one of {', '.join(BALANCE_RULES)}; "
                     f"got {value!r}")


def block_scales(rule, ecg_block: int, eeg_block: int) -> tuple[float, float]:
    """The (ECG, EEG) scales of the classifier input's two blocks under a balance rule."""
    if not rule or not ecg_block or not eeg_block:
        return 1.0, 1.0
    if rule == "split":  # each block carries half of the total
        total = ecg_block + eeg_block
        return total / (2 * ecg_block), total / (2 * eeg_block)
    largest = max(ecg_block, eeg_block)  # "raise": the smaller block up to the larger one's total
    return largest / ecg_block, largest / eeg_block


def rr_summary(rr: torch.Tensor) -> torch.Tensor:
    """Per channel, the mean of a zero-embedded RR series over its beats and its beat fraction.

    ``rr`` (batch, channels, length), standardised so that padding is exactly 0: returns (batch,
    2 * channels), the means (0 for a window without beats) then the fractions of non-zero
    entries. The mean over the padded series mixes the two (it is their product).
    """
    beats = (rr != 0).to(rr.dtype)
    count = beats.sum(dim=-1)
    mean = rr.sum(dim=-1) / count.clamp(min=1.0)
    return torch.cat([mean, count / rr.shape[-1]], dim=1)


def _rr_beat_mean(rr: torch.Tensor) -> torch.Tensor:
    return rr_summary(rr)[:, :rr.shape[1]]


_RR_SKIP_FUNCTIONS = {"padded": lambda rr: rr.mean(dim=-1), "beats": rr_summary, "beat-mean": _rr_beat_mean}


def spatial_pattern(de: torch.Tensor) -> torch.Tensor:
    """Each window's and band's values z-scored across the last (electrode) axis.

    ``de`` (batch, bands, electrodes); a flat band (spread below a floor) gives ~0, not inf.
    """
    centred = de - de.mean(dim=-1, keepdim=True)
    spread = centred.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp(min=_SPATIAL_STD_FLOOR)
    return centred / spread


class BaseModel(MAAN):
    """The paper's base model: MAAN without the fusion attention (plain concatenation).

    Same arguments as :class:`MAAN` except ``fusion``; with the same seed and arguments its
    parameters are MAAN's minus ``fusion_attention.*``.
    """

    def __init__(self, ecg_shape: Sequence[int] | None = DEFAULT_ECG_SHAPE,
                 eeg_shape: Sequence[int] | None = DEFAULT_EEG_SHAPE, n_classes: int = 2,
                 **kwargs):
        if "fusion" in kwargs:
            raise TypeError("BaseModel has no fusion attention; use MAAN(fusion=...) instead")
        super().__init__(ecg_shape, eeg_shape, n_classes, fusion="concat", **kwargs)


def build_model(name: str, ecg_shape: Sequence[int] | None = DEFAULT_ECG_SHAPE,
                eeg_shape: Sequence[int] | None = DEFAULT_EEG_SHAPE, **kwargs) -> MAAN:
    """Build a model by name: "maan", "base", "ecg-only" or "eeg-only".

    ``kwargs`` go to :class:`MAAN` (n_classes, width, depth, ...).
    """
    if name == "maan":
        return MAAN(ecg_shape, eeg_shape, fusion="attention", **kwargs)
    if name == "base":
        return BaseModel(ecg_shape, eeg_shape, **kwargs)
    if name == "ecg-only":
        return MAAN(ecg_shape, None, modalities=("ecg",), **kwargs)
    if name == "eeg-only":
        return MAAN(None, eeg_shape, modalities=("eeg",), **kwargs)
    raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
