"""Per-window predictions of trained checkpoints on recordings (``maan predict``, ``maan.inference.predict``).

A checkpoint (``NAME.pt`` + ``NAME.json``) is one model for one target; several checkpoints
(one per target) are applied together and must share one preprocessing configuration. The
checkpoint's JSON carries the training store's preprocessing configuration (rate, bands,
window, sub-window, R-peak and DE methods, layout), its EEG channels (in order) and ECG choice,
and its normalisation statistics, so prediction repeats training's preprocessing with the very
same code: the recordings reader's channel picking, unit conversion and MNE resampling
(:func:`maan.datasets.recordings.record_from_raw`), then the pipeline's windows
(:func:`maan.preprocessing.pipeline.trial_windows`, which :func:`~maan.preprocessing.pipeline.extract_trial`
uses too).

Windows
    Whole-file mode (default): the recording is resampled and band-filtered as one continuous
    trial, exactly as ``maan preprocess`` does, and cut into windows of the training length
    every ``step`` seconds (default: the training store's step). Per-window mode
    (``per_window=True``, ``--per-window``): every window is cut from the recording at its own
    rate first and then resampled and filtered alone, exactly as ``maan stream`` does with its
    ring buffer; the two modes differ slightly at window edges (filter and resampling
    transients), which is why the live test compares ``maan stream`` with per-window mode.
Windows that miss a modality
    A window's ECG is invalid with NaN (``BAD_`` annotations), no usable beats or implausible RR
    intervals; its EEG with NaN or a flat, non-finite or out-of-range channel. A window with one
    valid modality is predicted from it: ``modalities`` says which are valid, i.e. what a
    two-modality checkpoint used (``ecg+eeg``, ``eeg``, ``ecg``), and ``flags`` names what is
    wrong with the other (the pipeline's reasons:
    ``ecg_nan``, ``ecg_no_beats``, ``ecg_rr_out_of_range``, ``eeg_nan``, ``eeg_flat``,
    ``eeg_not_finite``, ``eeg_out_of_range``). A window with neither is not predicted: its
    ``modalities`` is empty, its probabilities NaN (empty in the CSV), its predicted class -1
    (empty in the CSV). A single-modality checkpoint (``ecg-only``/``eeg-only``) predicts only
    windows that hold its modality.
Normalisation
    ``train`` checkpoints use the statistics stored in the checkpoint. ``subject`` checkpoints
    (trained with ``--recipe cross-subject``) standardise each recording with the statistics of
    its own valid windows (transductive, as in training; labels are never used): every input
    file counts as one subject, so give a recording long enough to describe the subject (a few
    minutes) and expect the first predictions of a short file to be less reliable. A file that
    holds one condition only (a task recording without its rest) needs ``normalize_with``
    (``--normalize-with``): other recordings of the subject that span its conditions.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from maan.config import check_number, modality_kind
from maan.errors import ConfigMismatchError, InvalidInputError, MaanError

#: preprocessing settings that must agree between checkpoints applied together
_SHARED_KEYS = ("window_seconds", "subwindow_seconds", "bands", "rr_length", "rpeak_method", "de_method",
                "layout", "fs", "ecg_channel", "exclude")
THRESHOLD = 0.5  # predicted class = P(high) >= THRESHOLD, as in cv and evaluate


def _load(checkpoints) -> list:
    from maan.training.checkpoint import Checkpoint, load_checkpoint

    if isinstance(checkpoints, (str, os.PathLike, Checkpoint)):
        checkpoints = [checkpoints]
    out = [c if isinstance(c, Checkpoint) else load_checkpoint(c) for c in checkpoints]
    if not out:
        raise MaanError("no checkpoint given")
    return out


def heart_rate_bpm(rr: np.ndarray) -> np.ndarray:
    """Mean heart rate (bpm) of zero-embedded RR series (n, 1, L) in seconds; NaN without beats."""
    rr = np.asarray(rr, dtype=np.float64).reshape(len(rr), -1)
    mask = rr > 0
    count = mask.sum(axis=1)
    mean = np.where(count > 0, (rr * mask).sum(axis=1) / np.maximum(count, 1), np.nan)
    return 60.0 / mean


class Predictor:
    """One or more checkpoints (one per target) and the preprocessing they share.

    ``record(raw)`` -> Record, ``windows(record)`` -> TrialWindows, ``probabilities(ecg, eeg)``
    -> {target: P(high)}: the building blocks of :func:`predict` and of ``maan stream``.
    """

    def __init__(self, checkpoints):
        from maan.datasets.recordings import DEFAULT_FS
        from maan.preprocessing.pipeline import RECORDINGS, PreprocessConfig

        self.checkpoints = _load(checkpoints)
        first = self.checkpoints[0]
        targets = [c.target for c in self.checkpoints]
        repeated = sorted({t for t in targets if targets.count(t) > 1})
        if repeated:
            raise MaanError(f"several checkpoints predict {', '.join(repeated)}; give one checkpoint per target")
        self.targets = tuple(targets)
        store = first.meta.get("store", {})
        config = dict(store.get("config") or {})
        for other in self.checkpoints[1:]:
            theirs = other.meta.get("store", {})
            changed = [k for k in _SHARED_KEYS if (theirs.get("config") or {}).get(k) != config.get(k)]
            if list(theirs.get("eeg_channels") or []) != list(store.get("eeg_channels") or []):
                changed.append("eeg_channels")
            if changed:
                raise ConfigMismatchError(f"{other.path}: preprocessed differently from {first.path} (differs in: "
                                          f"{', '.join(changed)}); checkpoints applied together must share it")
        self.eeg_channels = tuple(store.get("eeg_channels") or ())
        if not self.eeg_channels:
            raise InvalidInputError(first.path, "the checkpoint does not name its EEG channels; retrain it with "
                                                "this version of maan")
        try:
            bands = tuple(tuple(b) for b in config["bands"])
            self.config = PreprocessConfig(
                dataset=RECORDINGS, window_seconds=float(config["window_seconds"]),
                step_seconds=float(config.get("step_seconds", config["window_seconds"])),
                subwindow_seconds=float(config["subwindow_seconds"]), bands=bands,
                rr_length=int(config["rr_length"]), rpeak_method=config["rpeak_method"],
                de_method=config["de_method"], layout=config.get("layout", "channels"),
                ecg_channel=config.get("ecg_channel"), exclude=tuple(config.get("exclude") or ()),
                fs=float(config.get("fs") or DEFAULT_FS))
        except (KeyError, TypeError, ValueError, MaanError) as exc:
            raise InvalidInputError(first.path.with_suffix(".json"),
                                    f"unusable preprocessing configuration ({exc})") from None
        ecg_names = store.get("ecg_channels") or []
        # the training rule: the configured ECG channel, else the single ECG-typed/named channel
        self.ecg_channel = self.config.ecg_channel
        self.trained_ecg_channel = ecg_names[0] if ecg_names else None
        self.fs = float(self.config.sample_rate)
        self.window_seconds = self.config.window_seconds
        self.normalize = {c.target: c.normalizer.mode for c in self.checkpoints}

    # -- preprocessing -------------------------------------------------------------------
    def channels(self, names, types, where) -> tuple[str, tuple]:
        """(ECG channel, EEG channels) of a recording; a missing channel is an InvalidInputError
        naming every missing one."""
        from maan.datasets.recordings import pick_channels

        missing = [c for c in self.eeg_channels if c not in names]
        ecg = self.ecg_channel
        if ecg is None:
            try:
                ecg, _ = pick_channels(names, types, where, None, ())
            except InvalidInputError:
                ecg = None
                if self.trained_ecg_channel and self.trained_ecg_channel in names:
                    ecg = self.trained_ecg_channel
                elif self.trained_ecg_channel:
                    missing.append(self.trained_ecg_channel)
                else:
                    missing.append("an ECG channel")
        elif ecg not in names:
            missing.append(ecg)
        if missing:
            raise InvalidInputError(where, f"missing channel(s) {', '.join(missing)} that the checkpoint was "
                                           f"trained on (the recording has: {', '.join(names)})")
        return ecg, self.eeg_channels

    def record(self, raw, where: str = "<raw>", copy: bool = True):
        """The Record of an MNE Raw, preprocessed like the training store (a copy unless ``copy=False``)."""
        from maan.datasets.recordings import record_from_raw

        ecg, eeg = self.channels(list(raw.ch_names), raw.get_channel_types(), where)
        return record_from_raw(raw, eeg, ecg, self.fs, source=where, copy=copy)

    def windows(self, record, step: float | None = None):
        from maan.preprocessing.pipeline import trial_windows

        config = self.config if step is None else replace(self.config, step_seconds=float(step))
        return trial_windows(record, config)

    # -- scoring -------------------------------------------------------------------------
    def probabilities(self, ecg, eeg, mask=None, reference=None) -> dict:
        """{target: P(high)} of raw windows whose valid modalities ``mask`` (n, 2) marks (None:
        all valid); NaN where a checkpoint has no input (:func:`~maan.models.has_input`).
        ``subject`` checkpoints standardise with ``reference`` = (ecg, eeg, mask) windows of the
        same subject (default: the windows given)."""
        from maan.models import has_input
        from maan.training.module import predict_proba

        mask = np.ones((len(ecg), 2), bool) if mask is None else np.asarray(mask, dtype=bool)
        out = {}
        for ckpt in self.checkpoints:
            score = np.full(len(ecg), np.nan)
            usable = has_input(ckpt.modalities, mask)
            out[ckpt.target] = score
            if not usable.any():
                continue
            ecg_n, eeg_n = self._normalized(ckpt, ecg, eeg, mask, reference)
            score[usable] = predict_proba(ckpt.model, ecg_n[usable], eeg_n[usable], mask[usable])
        return out

    @staticmethod
    def _normalized(ckpt, ecg, eeg, mask, reference):
        from maan.features.normalize import Stats

        norm = ckpt.normalizer
        if norm.mode == "train":
            return norm.transform(ecg, eeg, mask=mask)
        ref_ecg, ref_eeg, ref_mask = reference if reference is not None else (ecg, eeg, mask)
        stats = Stats.fit(np.asarray(ref_ecg), np.asarray(ref_eeg), norm.layout, norm.n_bands,
                          np.asarray(ref_mask, dtype=bool))
        return stats.apply(ecg, eeg, norm.layout, norm.n_bands, mask)

    def attention(self, ecg, eeg, mask=None, reference=None) -> dict:
        """{target: (n, 2) mean fusion-attention weight (0-1) of the ECG and EEG channel masks}
        for the same inputs as :meth:`probabilities`; NaN for a modality the window misses and
        for checkpoints without fusion attention (base, single-modality models)."""
        import torch

        from maan.models import has_input

        mask = np.ones((len(ecg), 2), bool) if mask is None else np.asarray(mask, dtype=bool)
        out = {}
        for ckpt in self.checkpoints:
            weights = np.full((len(ecg), 2), np.nan)
            out[ckpt.target] = weights
            usable = has_input(ckpt.modalities, mask)
            if getattr(ckpt.model, "fusion_attention", None) is None or not usable.any():
                continue
            ecg_n, eeg_n = self._normalized(ckpt, ecg, eeg, mask, reference)
            model = ckpt.model.cpu().eval()
            with torch.no_grad():
                details = model.forward_with_details(
                    torch.from_numpy(np.ascontiguousarray(ecg_n[usable], dtype=np.float32)),
                    torch.from_numpy(np.ascontiguousarray(eeg_n[usable], dtype=np.float32)),
                    torch.from_numpy(mask[usable].astype(np.float32)))
            weights[usable] = np.stack([details.a_ecg.mean(dim=1).numpy(), details.a_eeg.mean(dim=1).numpy()], 1)
            weights[~mask] = np.nan  # a missing modality's mask describes no signal
        return out


@dataclass
class Predictions:
    """Per-window predictions of one or more recordings (rows aligned on the window axis)."""

    targets: tuple
    file: list = field(default_factory=list)  # (n,) input name per window
    window_start: np.ndarray = field(default_factory=lambda: np.zeros(0))  # seconds from the file's start
    window_end: np.ndarray = field(default_factory=lambda: np.zeros(0))
    prob: dict = field(default_factory=dict)  # target -> (n,) P(high); NaN where the checkpoint has no input
    pred: dict = field(default_factory=dict)  # target -> (n,) 0/1; -1 where the checkpoint has no input
    heart_rate_bpm: np.ndarray = field(default_factory=lambda: np.zeros(0))  # NaN without valid ECG
    modalities: list = field(default_factory=list)  # (n,) "ecg+eeg", "eeg", "ecg" or "" (neither valid)
    flags: list = field(default_factory=list)  # (n,) "" or what is wrong with the window

    def __len__(self) -> int:
        return len(self.file)

    @property
    def columns(self) -> list:
        return (["file", "window_start", "window_end"] + [f"prob_{t}" for t in self.targets]
                + [f"pred_{t}" for t in self.targets] + ["heart_rate_bpm", "modalities", "flags"])

    def rows(self) -> list[dict]:
        """One dict per window (None for undefined values), keys as :attr:`columns`."""
        def num(x, digits=6):
            return None if not np.isfinite(x) else round(float(x), digits)

        out = []
        for i in range(len(self)):
            row = {"file": self.file[i], "window_start": num(self.window_start[i]),
                   "window_end": num(self.window_end[i])}
            row.update({f"prob_{t}": num(self.prob[t][i]) for t in self.targets})
            row.update({f"pred_{t}": None if self.pred[t][i] < 0 else int(self.pred[t][i]) for t in self.targets})
            row["heart_rate_bpm"] = num(self.heart_rate_bpm[i], 2)
            row["modalities"] = self.modalities[i]
            row["flags"] = self.flags[i]
            out.append(row)
        return out

    def to_csv(self, path) -> Path:
        from maan.preprocessing.io import atomic_write_bytes
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        path = Path(path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
        return path


def _window_raw(raw, start: int, n: int):
    """Samples ``start:start+n`` of ``raw`` (at its own rate) as a new Raw, annotations kept."""
    sfreq = raw.info["sfreq"]
    piece = raw.copy().crop(tmin=start / sfreq, tmax=(start + n) / sfreq, include_tmax=False, verbose="error")
    if piece.n_times != n:  # float rounding of the crop times: slice exactly instead
        piece = raw.copy().crop(tmin=start / sfreq, tmax=(start + n - 1) / sfreq, verbose="error")
    return piece


def _open_input(item):
    """(Raw, name) of a path or an MNE Raw."""
    from maan.datasets.recordings import open_recording

    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.exists():
            raise InvalidInputError(path, "recording not found")
        return open_recording(path, preload=False), str(item)
    if hasattr(item, "ch_names") and hasattr(item, "get_data"):
        names = [f for f in (getattr(item, "filenames", None) or []) if f]
        return item.copy(), str(names[0]) if names else "<raw>"
    raise TypeError(f"expected a recording path or an mne.io.Raw, got {type(item).__name__}")


def _file_windows(predictor: Predictor, raw, name: str, step, per_window: bool, starts):
    """(TrialWindows-like arrays) of one input: ecg, eeg, window_start, reasons, modality mask."""
    from maan.features.windows import window_starts

    if starts is None and not per_window:
        record = predictor.record(raw, where=name, copy=False)
        w = predictor.windows(record, step)
        return w.ecg, w.eeg, w.window_start, w.flags, w.modality_mask
    # per-window: cut each window at the recording's rate, then preprocess it alone
    predictor.channels(list(raw.ch_names), raw.get_channel_types(), name)  # clear error before any work
    sfreq = float(raw.info["sfreq"])
    n = int(round(predictor.window_seconds * sfreq))
    if starts is None:
        starts = window_starts(raw.n_times / sfreq, predictor.window_seconds,
                               predictor.config.step_seconds if step is None else float(step))
    starts = np.asarray(starts, dtype=np.float64)
    idx = np.round(starts * sfreq).astype(np.int64)
    bad = (idx < 0) | (idx + n > raw.n_times)
    if bad.any():
        raise MaanError(f"{name}: window start {starts[bad][0]:g} s is outside the recording "
                        f"({raw.n_times / sfreq:g} s, windows of {predictor.window_seconds:g} s)")
    raw.load_data(verbose="error")
    ecg, eeg, reasons, masks = [], [], [], []
    for a in idx:
        record = predictor.record(_window_raw(raw, int(a), n), where=name, copy=False)
        w = predictor.windows(record, predictor.window_seconds)
        ecg.append(w.ecg[:1])
        eeg.append(w.eeg[:1])
        reasons.append(w.flags[0] if len(w.reasons) else "nan")
        masks.append(w.modality_mask[:1] if len(w.reasons) else np.zeros((1, 2), bool))
        if not len(w.reasons):  # no window came out: an all-invalid row keeps the arrays aligned
            ecg[-1] = np.zeros((1, *w.ecg.shape[1:]), np.float32)
            eeg[-1] = np.zeros((1, *w.eeg.shape[1:]), np.float32)
    if not len(idx):
        shape = predictor.checkpoints[0].meta["eeg_shape"]
        return (np.zeros((0, 1, predictor.config.rr_length), np.float32), np.zeros((0, *shape), np.float32),
                starts, np.zeros(0, object), np.zeros((0, 2), bool))
    return (np.concatenate(ecg), np.concatenate(eeg), idx / sfreq, np.asarray(reasons, dtype=object),
            np.concatenate(masks))


def _reference_windows(predictor: Predictor, normalize_with) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ecg, eeg, mask) of the windows (with a valid modality) of the recordings given as ``normalize_with``."""
    items = normalize_with if isinstance(normalize_with, (list, tuple)) else [normalize_with]
    ecg, eeg, masks, names = [], [], [], []
    for item in items:
        raw, name = _open_input(item)
        e, g, _, _, mask = _file_windows(predictor, raw, name, None, False, None)
        valid = mask.any(axis=1)
        ecg.append(e[valid])
        eeg.append(g[valid])
        masks.append(mask[valid])
        names.append(name)
    ecg, eeg, mask = np.concatenate(ecg), np.concatenate(eeg), np.concatenate(masks)
    if not len(ecg):
        raise MaanError(f"{', '.join(names)}: no valid window to normalise with (--normalize-with)")
    return ecg, eeg, mask


def predict(checkpoints, raw_or_path, *, step: float | None = None, per_window: bool = False,
            window_starts=None, normalize_with=None) -> Predictions:
    """Per-window P(high) of every checkpoint's target on one or more recordings.

    ``checkpoints``: a checkpoint path (``NAME.pt``/``NAME.json``/folder), a loaded
    :class:`~maan.training.checkpoint.Checkpoint`, or a list of them (one per target).
    ``raw_or_path``: a recording path (anything ``mne.io.read_raw`` opens), an ``mne.io.Raw``,
    or a list of them. ``step``: seconds between window starts (default: the training store's).
    ``per_window``: preprocess every window alone, as ``maan stream`` does. ``window_starts``:
    explicit window starts in seconds (per-window mode; one input only). ``normalize_with``:
    recording(s) of the same subject whose valid windows give the standardisation statistics of
    ``subject``-normalised checkpoints for every input, instead of each input's own windows
    (a file holding one condition only, standardised on itself, loses what sets that condition
    apart). Ignored by ``train``-normalised checkpoints.
    """
    predictor = checkpoints if isinstance(checkpoints, Predictor) else Predictor(checkpoints)
    inputs = raw_or_path if isinstance(raw_or_path, (list, tuple)) else [raw_or_path]
    if window_starts is not None and len(inputs) != 1:
        raise MaanError("window_starts applies to a single recording")
    check_number("--step", step, 0, strict=True, optional=True)
    reference = None
    if normalize_with is not None and "subject" in predictor.normalize.values():
        reference = _reference_windows(predictor, normalize_with)
    result = Predictions(targets=predictor.targets)
    files, starts_all, hr_all, flags_all, kinds_all = [], [], [], [], []
    probs = {t: [] for t in predictor.targets}
    for item in inputs:
        raw, name = _open_input(item)
        ecg, eeg, starts, reasons, mask = _file_windows(predictor, raw, name, step, per_window, window_starts)
        p = predictor.probabilities(ecg, eeg, mask, reference=reference)
        for t in predictor.targets:
            probs[t].append(p[t])
        hr = heart_rate_bpm(ecg)  # NaN where the ECG of the window is invalid (its RR series is all zero)
        files += [name] * len(starts)
        starts_all.append(np.asarray(starts, dtype=np.float64))
        hr_all.append(hr)
        kinds_all += [str(k) for k in modality_kind(mask)]
        flags_all += [str(r) for r in reasons]
    cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0))
    result.file = files
    result.window_start = cat(starts_all)
    result.window_end = result.window_start + predictor.window_seconds
    result.prob = {t: cat(v) for t, v in probs.items()}
    result.pred = {t: np.where(np.isfinite(v), (np.nan_to_num(v) >= THRESHOLD).astype(int), -1)
                   for t, v in result.prob.items()}
    result.heart_rate_bpm = cat(hr_all)
    result.modalities = kinds_all
    result.flags = flags_all
    return result


def describe(predictor: Predictor) -> str:
    """One line on what the checkpoints expect (for the CLI)."""
    c = predictor.config
    norm = ", ".join(f"{t}: {m}" for t, m in predictor.normalize.items())
    return (f"{len(predictor.checkpoints)} checkpoint(s) ({', '.join(predictor.targets)}); {c.window_seconds:g}-s "
            f"windows at {predictor.fs:g} Hz, {len(predictor.eeg_channels)} EEG channels, ECG "
            f"{predictor.ecg_channel or predictor.trained_ecg_channel or '(auto)'}; normalisation {norm}")


__all__ = ["predict", "Predictor", "Predictions", "heart_rate_bpm"]
