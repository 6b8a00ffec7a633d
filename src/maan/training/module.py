"""The LightningModule, the training hyperparameters and one training run (``fit_module``).

Optimiser AdamW (lr 1e-3, weight decay 1e-4), cross-entropy with optional class weights,
early stopping on the inner validation loss (patience 5, at least 5 and at most 30 epochs by
default), and the weights of the best validation epoch (from ``min_epochs`` on) restored at the
end (kept in memory: Lightning's own checkpointing is off; the CV loop writes its own per-fold
checkpoints atomically).

Small stores: the batch size defaults to ``"auto"`` (:func:`resolve_batch_size`), at most 64
but small enough for about 16 optimisation steps per epoch, because a 60-window real-data fold
trained at batch 64 takes one step per epoch and never leaves the majority class. For the same
reason the best-validation weights are only taken from ``min_epochs`` on: on a tiny validation
set the untrained epoch-0 network often has the lowest loss.

With ``--normalize subject`` training also uses mixup (``mixup="auto"``, :func:`mixup_alpha`), and
chooses the ECG part of the model's input skip from the training labels (``rr_skip="auto"``,
:func:`resolve_rr_skip`).

``accelerator`` / ``devices`` / ``strategy`` / ``num_nodes`` go to ``lightning.Trainer``
unchanged, so ``--accelerator gpu --devices 4 --strategy ddp`` trains with DDP. Test-set
prediction runs in-process on the (rank-0) CPU copy of the model, so it is identical whatever
strategy trained it.
"""
from __future__ import annotations

import copy
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.loggers import CSVLogger

from maan.models import build_model
from maan.models.maan import DEFAULT_RR_SKIP, balance_rule
from maan.training.baselines import rr_statistics

BALANCE_MODES = ("weights", "sampler", "none")
#: ``batch_size="auto"``: the largest batch up to MAX_AUTO_BATCH that still gives about
#: MIN_STEPS_PER_EPOCH optimisation steps per epoch, and never below MIN_AUTO_BATCH.
MAX_AUTO_BATCH, MIN_AUTO_BATCH, MIN_STEPS_PER_EPOCH = 64, 8, 16


def resolve_batch_size(batch_size: int | str, n_fit: int) -> int:
    """The batch size of a run: an int as given, ``"auto"`` scaled to the number of fit windows."""
    if batch_size == "auto":
        return int(np.clip(n_fit // MIN_STEPS_PER_EPOCH, MIN_AUTO_BATCH, MAX_AUTO_BATCH))
    return int(batch_size)


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (what ``--epochs`` etc. set)."""

    epochs: int = 30
    patience: int = 5
    min_epochs: int = 5
    batch_size: int | str = "auto"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    input_noise: float = 0.0  # std of Gaussian noise added to the normalised training inputs
    mixup: float | str = "auto"  # alpha of mixup's Beta(alpha, alpha) weights, 0 off; see mixup_alpha
    balance: str = "weights"  # class weights in the loss, a balanced sampler, or none
    accelerator: str = "auto"
    devices: str | int = 1
    strategy: str = "auto"
    num_nodes: int = 1
    deterministic: bool = True
    model_kwargs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def result_keys(self) -> dict:
        """The hyperparameters that change results (not where or how fast they are computed)."""
        d = self.to_dict()
        for key in ("accelerator", "devices", "strategy", "num_nodes"):
            d.pop(key)
        return d


def class_weights(y: np.ndarray) -> list[float]:
    """Balanced weights n / (2 n_c) of classes 0 and 1 (1.0 for an absent class)."""
    y = np.asarray(y).astype(int)
    n = len(y)
    out = []
    for c in (0, 1):
        n_c = int((y == c).sum())
        out.append(n / (2.0 * n_c) if n_c else 1.0)
    return out


class EmotionModule(L.LightningModule):
    """A network of :func:`maan.models.build_model` trained as a low/high classifier."""

    def __init__(self, model_name: str = "maan", ecg_shape=(1, 32), eeg_shape=(4, 14, 10),
                 model_kwargs: dict | None = None, lr: float = 1e-3, weight_decay: float = 1e-4,
                 class_weights: list[float] | None = None, input_noise: float = 0.0,
                 mixup: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(model_name, tuple(ecg_shape), tuple(eeg_shape), n_classes=2,
                                 **(model_kwargs or {}))
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("loss_weights", weights, persistent=False)

    def forward(self, x_ecg, x_eeg):
        return self.model(x_ecg, x_eeg)

    def _loss(self, batch):
        x_ecg, x_eeg, y = batch
        logits = self(x_ecg, x_eeg)
        return F.cross_entropy(logits, y, weight=self.loss_weights), logits, y

    def _mixup_loss(self, batch):
        """Mixup (Zhang et al. 2018): one weight per batch from Beta(alpha, alpha), the batch mixed
        with a permutation of itself, the loss mixed the same way (class weights kept). Inputs are
        standardised features, where the RR series' zero padding is the subject's mean interval, so
        mixing padded series stays inside the feature space."""
        x_ecg, x_eeg, y = batch
        alpha = self.hparams.mixup
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        perm = torch.randperm(len(y), device=y.device)
        logits = self(lam * x_ecg + (1 - lam) * x_ecg[perm], lam * x_eeg + (1 - lam) * x_eeg[perm])
        loss = (lam * F.cross_entropy(logits, y, weight=self.loss_weights)
                + (1 - lam) * F.cross_entropy(logits, y[perm], weight=self.loss_weights))
        predicted = logits.argmax(dim=1)
        # accuracy against the mixed labels, weighted as the loss is (a mixed window has no single label)
        acc = lam * (predicted == y).float().mean() + (1 - lam) * (predicted == y[perm]).float().mean()
        return loss, acc, len(y)

    def training_step(self, batch, batch_idx):
        if self.hparams.input_noise > 0:
            # augmentation: inputs are standardised features, so the std is in units of their spread
            x_ecg, x_eeg, y = batch
            noise = self.hparams.input_noise
            batch = (x_ecg + noise * torch.randn_like(x_ecg), x_eeg + noise * torch.randn_like(x_eeg), y)
        if self.hparams.mixup > 0:
            loss, acc, n = self._mixup_loss(batch)
        else:
            loss, logits, y = self._loss(batch)
            acc, n = (logits.argmax(dim=1) == y).float().mean(), len(y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        # Accuracy in train mode (dropout on, batch statistics, mixed windows with mixup), averaged
        # over the epoch's batches.
        self.log("train_acc", acc, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, logits, y = self._loss(batch)
        acc = (logits.argmax(dim=1) == y).float().mean()
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log("val_acc", acc, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)

    def predict_step(self, batch, batch_idx):
        return torch.softmax(self(batch[0], batch[1]), dim=1)[:, 1]

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)


class BestWeights(Callback):
    """Keeps the state_dict of the epoch with the lowest ``val_loss`` and restores it at the end.

    Epochs before ``min_epochs`` are not candidates (the last of them is, so there is always one).
    """

    def __init__(self, monitor: str = "val_loss", min_epochs: int = 1):
        self.monitor = monitor
        self.min_epochs = max(1, int(min_epochs))
        self.best = float("inf")
        self.best_epoch = -1
        self.state = None
        self.epochs_run = 0

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        self.epochs_run = trainer.current_epoch + 1
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or self.epochs_run < self.min_epochs:
            return
        value = float(value)
        if value < self.best:
            self.best, self.best_epoch = value, trainer.current_epoch
            self.state = copy.deepcopy({k: v.detach().cpu() for k, v in pl_module.state_dict().items()})

    def on_fit_end(self, trainer, pl_module):
        if self.state is not None:
            pl_module.load_state_dict(self.state)


class WarmEarlyStopping(EarlyStopping):
    """EarlyStopping that starts counting at ``min_epochs``, the first epoch BestWeights may keep.

    Lightning's own EarlyStopping counts from epoch 0 and only defers the stop to ``min_epochs``,
    so a run whose epoch 0 had the lowest validation loss would stop right at ``min_epochs``.
    """

    def __init__(self, *args, min_epochs: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_epochs = max(1, int(min_epochs))

    def _run_early_stopping_check(self, trainer) -> None:
        if trainer.current_epoch + 1 < self.min_epochs:
            return
        super()._run_early_stopping_check(trainer)


def quiet_lightning() -> None:
    """Silence Lightning's per-fit banners (GPU available..., dataloader worker hints)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed", "lightning.pytorch.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*The number of training batches.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*isinstance.*treespec.*")


@dataclass
class FitResult:
    module: EmotionModule
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    seconds: float
    is_global_zero: bool = True
    batch_size: int = 0


#: ``mixup="auto"``: the alpha with ``--normalize subject`` (off with training-fold statistics)
AUTO_MIXUP_ALPHA = 1.0


def mixup_alpha(setting: float | str, normalize: str) -> float:
    """The mixup alpha of a run: a number as given; ``"auto"`` is AUTO_MIXUP_ALPHA with
    per-subject normalisation and 0 (off) with training-fold statistics.

    Measured with ``--normalize subject`` only (docs/performance.md, "Mixup"): on the demo cohort
    it gained 2-6 points of valence balanced accuracy and on eegmat-sized cohorts it was level;
    the paper's Table 1 (``--normalize train``) keeps the paper's training.
    """
    if setting == "auto":
        return AUTO_MIXUP_ALPHA if normalize == "subject" else 0.0
    return float(setting)


def modality_balance(normalize: str, model_kwargs: dict | None = None) -> str | bool:
    """The ``balance_modalities`` rule training builds the two-modality models with (``False``,
    ``"raise"`` or ``"split"``): as set in ``model_kwargs``, else ``"raise"`` with per-subject
    normalisation only.

    With training-fold statistics every subject keeps its own offsets (eegmat's resting heart
    rates differ by 30 bpm), and an ECG block that moves the logits faster learns them: at AMIGOS
    scale under ``--normalize train`` the balance cost 3.3 points of arousal balanced accuracy,
    under ``--normalize subject`` it gained 0.6-1.0 (docs/performance.md, "Balancing the modalities").
    """
    model_kwargs = model_kwargs or {}
    if "balance_modalities" in model_kwargs:
        return balance_rule(model_kwargs["balance_modalities"])
    return "raise" if normalize == "subject" else False


#: ``rr_skip="auto"`` (training's default): the ECG part of the input skip is RR_SKIP_WHEN_HEART_RATE_CARRIES
#: ("beats") when the training windows show heart rate carrying the target in every subject alike, with a
#: large effect, and the mean over the padded series otherwise (:func:`resolve_rr_skip`)
RR_SKIP_AUTO = "auto"
RR_SKIP_WHEN_HEART_RATE_CARRIES = "beats"
#: the mean over the training subjects of the Fisher z of the within-subject correlation between the
#: window's mean standardised RR interval and the label, at or above which heart rate "carries" the
#: target: atanh(0.5), Cohen's "large" correlation. Synthetic cohorts: arousal 0.51-1.44, valence
#: 0.00-0.48 (docs/performance.md, "Heart rate where it carries the target")
HEART_RATE_EFFECT_THRESHOLD = float(np.arctanh(0.5))
_MIN_SUBJECT_WINDOWS = 4


def heart_rate_effect(ecg: np.ndarray, y, subject) -> float:
    """How strongly, and how alike in every subject, the window's heart rate goes with the label.

    ``ecg`` (windows, channels, length): zero-embedded RR series (the first channel is used); ``y``
    binary labels; ``subject`` the windows' subjects. Per subject with both classes and at least 4
    windows with beats, the Pearson correlation r between the window's mean RR interval (over its
    beats) and the label, as Fisher's z = atanh(r); returns their mean over those subjects (0 when
    there is none). Opposite signs in different subjects cancel; the sign says the direction (a
    negative value: shorter RR intervals, i.e. a faster heart, with the label 1). Per-subject
    correlations do not depend on each subject's own offset and scale, so this is the same on raw
    and on per-subject standardised series.
    """
    ecg = np.asarray(ecg, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    subject = np.asarray(subject).astype(str)
    if ecg.ndim != 3 or len(ecg) != len(y) or len(y) != len(subject):
        raise ValueError(f"heart_rate_effect needs ecg (windows, channels, length) and one label and subject per "
                         f"window; got {ecg.shape}, {y.shape}, {subject.shape}")
    stats = rr_statistics(ecg[:, :1])  # the baselines' per-window mean over the beats (column 0) and beat count (6)
    mean_rr = np.where(stats[:, 6] > 0, stats[:, 0], np.nan)
    zs = []
    for s in np.unique(subject):
        rows = (subject == s) & np.isfinite(mean_rr)
        if rows.sum() < _MIN_SUBJECT_WINDOWS or len(np.unique(y[rows])) < 2 or np.std(mean_rr[rows]) == 0:
            continue
        r = np.corrcoef(mean_rr[rows], y[rows])[0, 1]
        zs.append(float(np.arctanh(np.clip(r, -0.999, 0.999))))
    return float(np.mean(zs)) if zs else 0.0


def resolve_rr_skip(setting: str, normalize: str, ecg=None, y=None, subject=None) -> str:
    """The ECG part of the input skip a training run builds its model with.

    A concrete choice (maan.models.maan.RR_SKIPS) is returned as given. ``"auto"``: with
    ``--normalize subject``, ``"beats"`` (the mean of the standardised RR series over the beats and
    the beat fraction: heart rate undiluted) when :func:`heart_rate_effect` of the training windows
    reaches HEART_RATE_EFFECT_THRESHOLD in absolute value, else ``"padded"``; with training-fold
    statistics always ``"padded"`` (the paper's Table 1 path is unchanged).

    Why: on eegmat-sized cohorts an undiluted heart-rate input is what lets the fused model follow
    heart rate where the subjects' EEG responses differ (arousal +0.09 on the reversed-EEG cohort),
    but where heart rate does not carry the target it fits chance associations of 2-3 training
    subjects (valence -0.01 to -0.02) and the raw beat fraction tells the classifier who the
    subject is (demo cohort valence -0.02): docs/performance.md, "Heart rate where it carries the
    target". The training labels say which case a run is in.
    """
    if setting != RR_SKIP_AUTO:
        return setting
    if normalize != "subject" or ecg is None:
        return DEFAULT_RR_SKIP
    effect = heart_rate_effect(ecg, y, subject)
    return RR_SKIP_WHEN_HEART_RATE_CARRIES if abs(effect) >= HEART_RATE_EFFECT_THRESHOLD else DEFAULT_RR_SKIP


def fit_module(datamodule, model_name: str, config: TrainConfig, seed: int, log_dir=None, log_name="fit",
               progress: bool = False) -> FitResult:
    """Seed, build the module, train it with early stopping; the best-validation weights are kept."""
    quiet_lightning()
    L.seed_everything(seed, workers=True, verbose=False)
    datamodule.setup("fit")
    weights = class_weights(datamodule.y_fit) if config.balance == "weights" else None
    model_kwargs = dict(config.model_kwargs)
    if datamodule.normalizer.layout == "grid":  # the model's input skip pools each band's planes
        model_kwargs.setdefault("grid_bands", datamodule.normalizer.n_bands)
    model_kwargs["balance_modalities"] = modality_balance(datamodule.normalizer.mode, model_kwargs)
    train_idx = datamodule.train_idx  # the training labels decide "auto" (never a test window's)
    model_kwargs["rr_skip"] = resolve_rr_skip(model_kwargs.get("rr_skip", RR_SKIP_AUTO), datamodule.normalizer.mode,
                                              datamodule.ecg_n[train_idx], datamodule.y[train_idx],
                                              datamodule.subject[train_idx])
    module = EmotionModule(model_name, datamodule.ecg_shape, datamodule.eeg_shape, model_kwargs,
                           config.lr, config.weight_decay, weights, config.input_noise,
                           mixup_alpha(config.mixup, datamodule.normalizer.mode))
    batch_size = datamodule.batch_size  # resolved by the datamodule ("auto" -> from its fit windows)
    min_epochs = min(config.min_epochs, config.epochs)
    best = BestWeights(min_epochs=min_epochs)
    callbacks = [WarmEarlyStopping("val_loss", patience=config.patience, mode="min", min_epochs=min_epochs), best]
    logger = CSVLogger(str(log_dir), name=log_name, version="") if log_dir is not None else False
    n_batches = max(1, len(datamodule.y_fit) // batch_size)
    trainer = L.Trainer(
        max_epochs=config.epochs, min_epochs=min_epochs, accelerator=config.accelerator, devices=config.devices,
        strategy=config.strategy, num_nodes=config.num_nodes, logger=logger, callbacks=callbacks,
        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=progress,
        # CPU kernels are deterministic; on GPUs a few ops have no deterministic kernel: warn only
        deterministic=(True if config.accelerator == "cpu" else "warn") if config.deterministic else False,
        log_every_n_steps=min(50, n_batches),
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    seconds = time.perf_counter() - start
    module = module.cpu().eval()
    return FitResult(module, best.epochs_run, best.best_epoch, best.best, seconds, trainer.is_global_zero,
                     batch_size)


@torch.no_grad()
def predict_proba(module: torch.nn.Module, ecg: np.ndarray, eeg: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """P(high) for normalised windows, in eval mode on the CPU."""
    model = module.cpu().eval()
    out = []
    for start in range(0, len(ecg), batch_size):
        x_ecg = torch.from_numpy(np.ascontiguousarray(ecg[start:start + batch_size]))
        x_eeg = torch.from_numpy(np.ascontiguousarray(eeg[start:start + batch_size]))
        out.append(torch.softmax(model(x_ecg, x_eeg), dim=1)[:, 1].numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)
