"""The LightningModule, the training hyperparameters and one training run (``fit_module``).

Optimiser AdamW (weight decay 1e-4), cross-entropy with optional class weights,
early stopping on the inner validation loss (patience 5, at least 5 and at most 30 epochs by
default), and the weights of the best validation epoch (from ``min_epochs`` on) restored at the
end (kept in memory: Lightning's own checkpointing is off; the CV loop writes its own per-fold
checkpoints atomically).

Batch size and learning rate default to ``"auto"``. The batch (:func:`resolve_batch_size`) is
at most 256 but small enough for about 16 optimisation steps per epoch, because a 60-window
real-data fold trained at batch 64 takes one step per epoch and never leaves the majority
class. The learning rate (:func:`resolve_lr`) is 1e-3 up to batch 64 and grows with the square
root of the batch above it (2e-3 at 256), the scaling rule for Adam that keeps a large-batch
run's accuracy (docs/decisions.md). Large stores thus take a quarter of the optimisation
steps of batch 64, and a small model's step on a CPU is mostly fixed per-call cost.
For the same reason as the batch rule the best-validation weights are only taken from
``min_epochs`` on: on a tiny validation set the untrained epoch-0 network often has the lowest loss.

What a run adds to this (standardisation, mixup, the model's modality balance and ECG skip)
comes from its recipe (maan.training.recipes).

Modality dropout (``modality_dropout``, two-modality models): each complete training window
loses one of its modalities (ECG or EEG, equally likely) with this probability, its inputs
zeroed and its mask cleared as a dead lead's are, so that each branch learns to carry the
decision alone and a window with one valid modality is predicted from it. Windows that miss a
modality in the store are trained on as they are.

``accelerator`` / ``devices`` / ``strategy`` / ``num_nodes`` go to ``lightning.Trainer``
unchanged, so ``--accelerator gpu --devices 4 --strategy ddp`` trains with DDP. Test-set
prediction runs in-process on the (rank-0) CPU copy of the model, so it is identical whatever
strategy trained it.
"""
from __future__ import annotations

import copy
import logging
import signal
import time
import warnings
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
from torch.nn import functional as F

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.loggers import CSVLogger

from maan.config import check_number
from maan.errors import MaanError
from maan.models import build_model
from maan.models.maan import check_model_kwargs
from maan.training.recipes import Recipe, get_recipe

BALANCE_MODES = ("weights", "sampler", "none")
#: the architecture options a configuration may set (maan.models.MAAN's arguments; the recipe
#: sets balance_modalities and rr_skip, the store's layout grid_bands)
MODEL_OPTIONS = {"width", "depth", "input_skip"}
#: ``batch_size="auto"``: the largest batch up to MAX_AUTO_BATCH that still gives about
#: MIN_STEPS_PER_EPOCH optimisation steps per epoch, and never below MIN_AUTO_BATCH.
MAX_AUTO_BATCH, MIN_AUTO_BATCH, MIN_STEPS_PER_EPOCH = 256, 8, 16
#: ``lr="auto"``: BASE_LR up to batch BASE_LR_BATCH, times sqrt(batch / BASE_LR_BATCH) above it.
BASE_LR, BASE_LR_BATCH = 1e-3, 64


def resolve_batch_size(batch_size: int | str, n_fit: int) -> int:
    """The batch size of a run: an int as given, ``"auto"`` scaled to the number of fit windows."""
    if batch_size == "auto":
        return int(np.clip(n_fit // MIN_STEPS_PER_EPOCH, MIN_AUTO_BATCH, MAX_AUTO_BATCH))
    return int(batch_size)


def resolve_lr(lr: float | str, batch_size: int) -> float:
    """The learning rate of a run: a number as given, ``"auto"`` from the batch size used.

    >>> resolve_lr("auto", 32), resolve_lr("auto", 256), resolve_lr(0.01, 256)
    (0.001, 0.002, 0.01)
    """
    if lr == "auto":
        return BASE_LR * float(np.sqrt(max(int(batch_size), BASE_LR_BATCH) / BASE_LR_BATCH))
    return float(lr)


#: Lightning accelerators accepted by TrainConfig (``auto`` picks a GPU when there is one).
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu", "hpu")


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (what ``--epochs`` etc. set)."""

    epochs: int = 30
    patience: int = 5
    min_epochs: int = 5
    batch_size: int | str = "auto"
    lr: float | str = "auto"
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    input_noise: float = 0.0  # std of Gaussian noise added to the normalised training inputs
    modality_dropout: float = 0.25  # P(a complete training window loses one modality); see above
    balance: str = "weights"  # class weights in the loss, a balanced sampler, or none
    accelerator: str = "auto"
    devices: str | int = 1
    strategy: str = "auto"
    num_nodes: int = 1
    deterministic: bool = True
    model_kwargs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_file(cls, path, **overrides) -> "TrainConfig":
        """A configuration from a TOML file whose keys are this class's fields (``[model_kwargs]``
        a table); ``overrides`` that are not None replace the file's values."""
        import tomllib

        values = {}
        if path is not None:
            try:
                with open(path, "rb") as handle:
                    values = tomllib.load(handle)
            except OSError as exc:
                raise MaanError(f"{path}: cannot read the configuration file ({exc.strerror or exc})") from exc
            except tomllib.TOMLDecodeError as exc:
                raise MaanError(f"{path}: not a valid TOML file ({exc})") from exc
            unknown = sorted(set(values) - {f.name for f in fields(cls)})
            if unknown:
                raise MaanError(f"{path}: unknown key(s) {', '.join(unknown)}; the keys are TrainConfig's fields: "
                                f"{', '.join(f.name for f in fields(cls))}")
            try:  # the file's values that are used, on their own first, so that an error names the file
                cls(**{k: v for k, v in values.items() if overrides.get(k) is None}).validate()
            except MaanError as exc:
                raise MaanError(f"{path}: {exc}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).validate()

    def validate(self) -> "TrainConfig":
        """Check every field once; a MaanError names the parameter, the allowed values and the value."""
        def bad(name, allowed):
            raise MaanError(f"{name} must be {allowed}; got {getattr(self, name)!r}")

        def number(name, low, *, integer=False, strict=False, high=None):
            check_number(name, getattr(self, name), low, high, integer=integer, strict=strict)

        number("epochs", 1, integer=True)
        number("patience", 0, integer=True)
        number("min_epochs", 0, integer=True)
        if self.batch_size != "auto":
            number("batch_size", 2, integer=True)
        if isinstance(self.lr, str) and self.lr != "auto":
            bad("lr", "'auto' (scaled with the batch size) or a number > 0")
        if self.lr != "auto":
            number("lr", 0, strict=True)
        number("weight_decay", 0)
        number("val_fraction", 0, strict=True, high=0.9)
        number("input_noise", 0)
        number("modality_dropout", 0, high=1)
        number("num_nodes", 1, integer=True)
        devices = self.devices
        if not (devices in ("auto", -1) or (isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1)
                or (isinstance(devices, str) and devices.replace(",", "").strip().isdigit())):
            bad("devices", "a number of devices >= 1, -1 or 'auto' (all), or a list like '0,1'")
        if not isinstance(self.accelerator, str) or self.accelerator.lower() not in ACCELERATORS:
            bad("accelerator", f"one of {', '.join(ACCELERATORS)}")
        if self.accelerator.lower() in ("gpu", "cuda") and not torch.cuda.is_available():
            raise MaanError(f"accelerator {self.accelerator!r} was asked for, but PyTorch sees no CUDA GPU "
                            "(torch.cuda.is_available() is False); use --accelerator cpu or auto")
        if self.balance not in BALANCE_MODES:
            bad("balance", f"one of {', '.join(BALANCE_MODES)}")
        if not isinstance(self.model_kwargs, dict) or not set(self.model_kwargs) <= MODEL_OPTIONS:
            bad("model_kwargs", f"a table of {', '.join(sorted(MODEL_OPTIONS))}")
        check_model_kwargs(self.model_kwargs)
        return self

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
                 mixup: float = 0.0, modality_dropout: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(model_name, tuple(ecg_shape), tuple(eeg_shape), n_classes=2,
                                 **(model_kwargs or {}))
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("loss_weights", weights, persistent=False)

    def forward(self, x_ecg, x_eeg, mask=None):
        if x_eeg.dim() == 4:  # channels-last: the layout oneDNN's 2-D convolutions run fastest in
            x_eeg = x_eeg.contiguous(memory_format=torch.channels_last)
        return self.model(x_ecg, x_eeg, mask)

    def on_fit_start(self):
        self.model.to(memory_format=torch.channels_last)  # 4-D weights only; see forward

    def on_fit_end(self):
        self.model.to(memory_format=torch.contiguous_format)  # checkpoints and exports as usual

    def _loss(self, batch):
        x_ecg, x_eeg, mask, y = batch
        logits = self(x_ecg, x_eeg, mask)
        return F.cross_entropy(logits, y, weight=self.loss_weights), logits, y

    def _drop_modalities(self, batch):
        """Modality dropout (see the module docstring); two-modality models only."""
        x_ecg, x_eeg, mask, y = batch
        p = self.hparams.modality_dropout
        if p <= 0 or not self.model.mask_inputs:
            return batch
        complete = mask.min(dim=1).values > 0
        drop = complete & (torch.rand(len(y), device=y.device) < p)
        which = torch.randint(0, 2, (len(y),), device=y.device)
        mask = mask.clone()
        rows = torch.nonzero(drop).flatten()
        mask[rows, which[rows]] = 0.0
        return _masked(x_ecg, x_eeg, mask) + (mask, y)

    def _mixup_loss(self, batch):
        """Mixup (Zhang et al. 2018): one weight per batch from Beta(alpha, alpha), the batch mixed
        with a permutation of itself, the loss mixed the same way (class weights kept). Inputs are
        standardised features, where the RR series' zero padding is the subject's mean interval, so
        mixing padded series stays inside the feature space. Each window is mixed with one that
        holds the same modalities."""
        x_ecg, x_eeg, mask, y = batch
        alpha = self.hparams.mixup
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        perm = _permutation_within(mask, y.device)
        logits = self(lam * x_ecg + (1 - lam) * x_ecg[perm], lam * x_eeg + (1 - lam) * x_eeg[perm], mask)
        loss = (lam * F.cross_entropy(logits, y, weight=self.loss_weights)
                + (1 - lam) * F.cross_entropy(logits, y[perm], weight=self.loss_weights))
        predicted = logits.argmax(dim=1)
        # accuracy against the mixed labels, weighted as the loss is (a mixed window has no single label)
        acc = lam * (predicted == y).float().mean() + (1 - lam) * (predicted == y[perm]).float().mean()
        return loss, acc, len(y)

    def training_step(self, batch, batch_idx):
        batch = self._drop_modalities(batch)
        if self.hparams.input_noise > 0:
            # augmentation: inputs are standardised features, so the std is in units of their spread
            x_ecg, x_eeg, mask, y = batch
            noise = self.hparams.input_noise
            batch = _masked(x_ecg + noise * torch.randn_like(x_ecg), x_eeg + noise * torch.randn_like(x_eeg),
                            mask) + (mask, y)
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
        return torch.softmax(self(batch[0], batch[1], batch[2]), dim=1)[:, 1]

    def configure_optimizers(self):
        # fused: one kernel for every parameter tensor instead of a loop over them, the largest
        # per-step cost after the convolutions for a model of many small tensors (benchmarks/training.py)
        fused = self.device.type in ("cpu", "cuda")
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay,
                                 fused=fused or None)


def _permutation_within(mask, device) -> torch.Tensor:
    """A random permutation of the batch that pairs each window with one holding the same
    modalities (mixup never mixes a window with a partner that lacks one of its modalities)."""
    kinds = mask[:, 0] * 2 + mask[:, 1]
    if bool((kinds == kinds[0]).all()):
        return torch.randperm(len(mask), device=device)
    perm = torch.arange(len(mask), device=device)
    for kind in torch.unique(kinds):
        rows = torch.nonzero(kinds == kind).flatten()
        perm[rows] = rows[torch.randperm(len(rows), device=device)]
    return perm


def _masked(x_ecg, x_eeg, mask) -> tuple:
    """The inputs with each window's missing modalities zeroed."""
    return (x_ecg * mask[:, 0].view(-1, *[1] * (x_ecg.ndim - 1)),
            x_eeg * mask[:, 1].view(-1, *[1] * (x_eeg.ndim - 1)))


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
    lr: float = 0.0


def fit_module(datamodule, model_name: str, config: TrainConfig, seed: int, recipe: str | Recipe = "paper",
               log_dir=None, log_name="fit", progress: bool = False, log=None) -> FitResult:
    """Seed, build the module as the recipe says, train it with early stopping; the best-validation
    weights are kept. The recipe's choices that depend on data see the training windows only."""
    quiet_lightning()
    recipe = get_recipe(recipe)
    L.seed_everything(seed, workers=True, verbose=False)
    datamodule.setup("fit")
    weights = class_weights(datamodule.y_fit) if config.balance == "weights" else None
    model_kwargs = dict(config.model_kwargs)
    if datamodule.normalizer.layout == "grid":  # the model's input skip pools each band's planes
        model_kwargs["grid_bands"] = datamodule.normalizer.n_bands
    train_idx = datamodule.train_idx
    model_kwargs.update(recipe.model_kwargs(datamodule.ecg_n[train_idx], datamodule.y[train_idx],
                                            datamodule.subject[train_idx], log=log))
    batch_size = datamodule.batch_size  # resolved by the datamodule ("auto" -> from its fit windows)
    lr = resolve_lr(config.lr, batch_size)
    module = EmotionModule(model_name, datamodule.ecg_shape, datamodule.eeg_shape, model_kwargs,
                           lr, config.weight_decay, weights, config.input_noise, recipe.mixup,
                           config.modality_dropout)
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
    previous = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, datamodule=datamodule)
    except SystemExit:
        # Lightning turns Ctrl-C into sys.exit(1) after its shutdown: give the caller the
        # interruption back (exit 130, "finished work is kept") and Ctrl-C its handler.
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    seconds = time.perf_counter() - start
    module = module.cpu().eval()
    return FitResult(module, best.epochs_run, best.best_epoch, best.best, seconds, trainer.is_global_zero,
                     batch_size, lr)


@torch.no_grad()
def predict_proba(module: torch.nn.Module, ecg: np.ndarray, eeg: np.ndarray, mask: np.ndarray | None = None,
                  batch_size: int = 1024) -> np.ndarray:
    """P(high) for normalised windows, in eval mode on the CPU; ``mask`` (n, 2): valid modalities."""
    model = module.cpu().eval()
    mask = np.ones((len(ecg), 2), np.float32) if mask is None else np.asarray(mask, dtype=np.float32)
    out = []
    for start in range(0, len(ecg), batch_size):
        x_ecg = torch.from_numpy(np.ascontiguousarray(ecg[start:start + batch_size]))
        x_eeg = torch.from_numpy(np.ascontiguousarray(eeg[start:start + batch_size]))
        m = torch.from_numpy(np.ascontiguousarray(mask[start:start + batch_size]))
        out.append(torch.softmax(model(x_ecg, x_eeg, m), dim=1)[:, 1].numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)
