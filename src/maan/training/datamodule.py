"""LightningDataModule over the windows of a feature store, for one fold.

It holds the fold's index sets (fit = training minus validation, validation, test), fits the
:class:`~maan.features.normalize.Normalizer` on the training fold only (fit + validation
windows; ``subject`` mode: per subject, labels unused) and serves normalised in-memory
tensors with each window's modality mask (batches are ``(ecg, eeg, mask, y)``; a missing
modality's inputs are 0). ``balance="sampler"`` draws training batches with a class-balanced
``WeightedRandomSampler``; otherwise batches are shuffled with a seeded generator.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

import lightning as L

from maan.training.module import resolve_batch_size
from maan.features.normalize import DEFAULT_NORMALIZE, Normalizer, full_mask, layout_of


class WindowDataModule(L.LightningDataModule):
    def __init__(self, ecg: np.ndarray, eeg: np.ndarray, y: np.ndarray, subject: np.ndarray,
                 fit_idx, val_idx, test_idx=None, normalize: str = DEFAULT_NORMALIZE,
                 layout: str = "channels", n_bands: int = 4, batch_size: int | str = "auto",
                 balance: str = "weights", seed: int = 0, normalizer: Normalizer | None = None,
                 modality_mask: np.ndarray | None = None):
        super().__init__()
        self.ecg, self.eeg = ecg, eeg
        self.mask = full_mask(len(ecg)) if modality_mask is None else np.asarray(modality_mask, dtype=bool)
        self.y = np.asarray(y).astype(np.int64)
        self.subject = np.asarray(subject)
        self.fit_idx = np.asarray(fit_idx)
        self.val_idx = np.asarray(val_idx)
        self.test_idx = None if test_idx is None else np.asarray(test_idx)
        # "auto" is resolved here from the number of fit windows (see maan.training.module)
        self.batch_size = resolve_batch_size(batch_size, len(self.fit_idx))
        self.balance, self.seed = balance, seed
        self.normalizer = normalizer or Normalizer(normalize, layout, n_bands)
        self.ecg_shape = tuple(ecg.shape[1:])
        self.eeg_shape = tuple(eeg.shape[1:])
        self._ready = False

    @classmethod
    def from_features(cls, features, target: str, fit_idx, val_idx, test_idx=None, **kwargs):
        layout, n_bands = layout_of(features.manifest)
        return cls(features.ecg, features.eeg, features.labels[target], features.subject, fit_idx, val_idx,
                   test_idx, layout=layout, n_bands=n_bands, modality_mask=features.modality_mask, **kwargs)

    @property
    def train_idx(self) -> np.ndarray:
        return np.sort(np.concatenate([self.fit_idx, self.val_idx]))

    @property
    def y_fit(self) -> np.ndarray:
        return self.y[self.fit_idx]

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        norm = self.normalizer
        if norm.mode == "train" and norm.global_stats is None:
            norm.fit(self.ecg, self.eeg, self.subject, self.train_idx, mask=self.mask)
        elif norm.mode == "subject":
            rows = np.concatenate([self.train_idx] + ([self.test_idx] if self.test_idx is not None else []))
            missing = np.setdiff1d(np.unique(self.subject[rows]), list(norm.subject_stats))
            if len(missing):
                mask = np.isin(self.subject, missing)
                norm.fit(self.ecg[mask], self.eeg[mask], self.subject[mask], mask=self.mask[mask])
        self.ecg_n, self.eeg_n = norm.transform(self.ecg, self.eeg, self.subject, mask=self.mask)
        self.mask_f = self.mask.astype(np.float32)
        self._ready = True

    def _dataset(self, idx) -> TensorDataset:
        return TensorDataset(torch.from_numpy(self.ecg_n[idx]), torch.from_numpy(self.eeg_n[idx]),
                             torch.from_numpy(self.mask_f[idx]), torch.from_numpy(self.y[idx]))

    def train_dataloader(self):
        data = self._dataset(self.fit_idx)
        generator = torch.Generator().manual_seed(self.seed)
        # BatchNorm cannot train on a last batch of one window (per rank: DDP gives each a share)
        trainer = getattr(self, "trainer", None)
        world = max(1, int(getattr(trainer, "world_size", 1) or 1)) if trainer is not None else 1
        per_rank = -(-len(self.fit_idx) // world)
        drop_last = per_rank % self.batch_size == 1
        if self.balance == "sampler":
            y = self.y_fit
            counts = np.bincount(y, minlength=2).astype(np.float64)
            weights = 1.0 / np.maximum(counts[y], 1)
            sampler = WeightedRandomSampler(torch.from_numpy(weights), num_samples=len(y), replacement=True,
                                            generator=generator)
            return DataLoader(data, batch_size=self.batch_size, sampler=sampler, drop_last=drop_last)
        return DataLoader(data, batch_size=self.batch_size, shuffle=True, generator=generator, drop_last=drop_last)

    def val_dataloader(self):
        return DataLoader(self._dataset(self.val_idx), batch_size=max(self.batch_size, 256))

    def test_dataloader(self):
        return DataLoader(self._dataset(self.test_idx), batch_size=max(self.batch_size, 256))

    predict_dataloader = test_dataloader

    def test_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Normalised (ecg, eeg, modality mask, y) of the test windows."""
        self.setup()
        i = self.test_idx
        return self.ecg_n[i], self.eeg_n[i], self.mask[i], self.y[i]
