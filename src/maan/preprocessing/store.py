"""The feature store: one HDF5 file per subject plus ``manifest.json``.

Layout of ``OUT/``::

    manifest.json          config, shapes, counts (kept, dropped with reasons), inputs, versions
    subjects/<id>.h5       ecg (n, 1, RR_LENGTH), eeg (n, ...), trial, window_start,
                           ratings (n, R), labels/<target> (n,) int8

Each subject file is written to a temporary name and renamed into place, then the manifest is
rewritten the same way, so an interrupted run leaves only whole subjects and a rerun resumes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maan.errors import ConfigMismatchError, InvalidInputError
from maan.preprocessing.io import atomic_write_bytes, atomic_write_json, config_hash, temp_beside

MANIFEST = "manifest.json"
SUBJECT_DIR = "subjects"
STORE_FORMAT = "maan-features"
STORE_VERSION = 1


def file_fingerprint(path) -> dict:
    """Size, mtime and sha256 of an input file (the hash goes into the manifest)."""
    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return {"path": str(path), "size": stat.st_size, "mtime": stat.st_mtime, "sha256": digest.hexdigest()}


def _same_file(fingerprint: dict) -> bool:
    try:
        stat = Path(fingerprint["path"]).stat()
    except OSError:
        return False
    return stat.st_size == fingerprint["size"] and stat.st_mtime == fingerprint["mtime"]


@dataclass
class SubjectFeatures:
    """All kept windows of one subject, aligned on axis 0."""

    subject: str
    ecg: np.ndarray
    eeg: np.ndarray
    trial: np.ndarray
    window_start: np.ndarray
    ratings: np.ndarray
    labels: dict[str, np.ndarray]
    dropped: dict[str, int] = field(default_factory=dict)
    invalid_trials: list[dict] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)
    signal_seconds: float = 0.0  # duration of all trials read (kept or not)


class FeatureStoreWriter:
    """Creates or resumes a store at ``out`` for one configuration."""

    def __init__(self, out, config: dict, meta: dict, overwrite: bool = False):
        self.out = Path(out)
        self.config = config
        self.hash = config_hash(config)
        manifest_path = self.out / MANIFEST
        if self.out.exists() and not self.out.is_dir():
            raise InvalidInputError(self.out, "output path exists and is not a folder")
        existing = None
        if manifest_path.exists():
            try:
                existing = json.loads(manifest_path.read_text())
            except (OSError, ValueError) as exc:
                raise InvalidInputError(manifest_path, f"unreadable manifest ({exc}); delete the folder or use --overwrite") from exc
        if existing is not None and existing.get("config_hash") != self.hash:
            if not overwrite:
                old = existing.get("config", {})
                changed = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
                raise ConfigMismatchError(
                    f"{self.out}: existing features were built with another configuration "
                    f"(differs in: {', '.join(changed) or 'format'}); pass --overwrite to rebuild or choose another --out"
                )
            existing = None
        if existing is None and self.out.exists() and overwrite:
            (self.out / MANIFEST).unlink(missing_ok=True)
            shutil.rmtree(self.out / SUBJECT_DIR, ignore_errors=True)
        self.manifest = existing or {
            "format": STORE_FORMAT,
            "format_version": STORE_VERSION,
            "config": config,
            "config_hash": self.hash,
            "subjects": {},
            "invalid_inputs": [],
        }
        self.manifest.update(meta)
        (self.out / SUBJECT_DIR).mkdir(parents=True, exist_ok=True)
        self._refresh_totals()
        self._save()

    # -- resume -------------------------------------------------------------------------
    def is_done(self, subject: str) -> bool:
        entry = self.manifest["subjects"].get(subject)
        if not entry or not (self.out / entry["file"]).exists():
            return False
        return all(_same_file(fp) for fp in entry.get("inputs", []))

    # -- writes -------------------------------------------------------------------------
    def write_subject(self, features: SubjectFeatures) -> None:
        import h5py

        rel = f"{SUBJECT_DIR}/{features.subject}.h5"
        target = self.out / rel
        fd, tmp = temp_beside(target)
        os.close(fd)
        try:
            with h5py.File(tmp, "w") as h5:
                h5.attrs["subject"] = features.subject
                h5.create_dataset("ecg", data=features.ecg.astype(np.float32))
                h5.create_dataset("eeg", data=features.eeg.astype(np.float32))
                h5.create_dataset("trial", data=features.trial.astype(np.int32))
                h5.create_dataset("window_start", data=features.window_start.astype(np.float64))
                h5.create_dataset("ratings", data=features.ratings.astype(np.float32))
                group = h5.create_group("labels")
                for name, values in features.labels.items():
                    group.create_dataset(name, data=values.astype(np.int8))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.manifest["subjects"][features.subject] = {
            "file": rel,
            "windows": int(len(features.trial)),
            "signal_seconds": round(float(features.signal_seconds), 3),
            "dropped": dict(features.dropped),
            "invalid_trials": features.invalid_trials,
            "inputs": features.inputs,
        }
        self._refresh_totals()
        self._save()

    def record_invalid(self, path: str, reason: str) -> None:
        entries = [e for e in self.manifest["invalid_inputs"] if e["path"] != path]
        entries.append({"path": path, "reason": reason})
        self.manifest["invalid_inputs"] = entries
        self._save()

    def _refresh_totals(self) -> None:
        subjects = self.manifest["subjects"]
        dropped: dict[str, int] = {}
        for entry in subjects.values():
            for reason, count in entry["dropped"].items():
                dropped[reason] = dropped.get(reason, 0) + count
        self.manifest["windows"] = int(sum(e["windows"] for e in subjects.values()))
        self.manifest["dropped"] = dict(sorted(dropped.items()))
        self.manifest["n_subjects"] = len(subjects)
        self.manifest["signal_hours"] = round(sum(e.get("signal_seconds", 0) for e in subjects.values()) / 3600, 4)

    def _save(self) -> None:
        atomic_write_json(self.out / MANIFEST, self.manifest)


@dataclass
class Features:
    """Windows of a store, aligned on axis 0. ``labels`` holds every target (0/1)."""

    ecg: np.ndarray
    eeg: np.ndarray
    subject: np.ndarray
    trial: np.ndarray
    window_start: np.ndarray
    ratings: np.ndarray
    labels: dict[str, np.ndarray]
    manifest: dict

    def __getattr__(self, name):
        labels = self.__dict__.get("labels", {})
        if name in labels:
            return labels[name]
        raise AttributeError(name)

    def __len__(self) -> int:
        return len(self.trial)

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest.get("synthetic", False))

    @property
    def dataset(self) -> str:
        return str(self.manifest.get("dataset", "unknown"))


def read_manifest(path) -> dict:
    path = Path(path)
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise InvalidInputError(path, "no such feature store (run `maan preprocess` first)")
    if not manifest_path.exists():
        raise InvalidInputError(path, f"not a feature store: {MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise InvalidInputError(manifest_path, f"corrupt manifest ({exc})") from exc
    if manifest.get("format") != STORE_FORMAT:
        raise InvalidInputError(manifest_path, f"not a {STORE_FORMAT} manifest")
    return manifest


def load_features(path) -> Features:
    """Load every subject of a store into memory, in subject order."""
    import h5py

    path = Path(path)
    manifest = read_manifest(path)
    parts: dict[str, list] = {k: [] for k in ("ecg", "eeg", "subject", "trial", "window_start", "ratings")}
    labels: dict[str, list] = {t: [] for t in manifest.get("targets", [])}
    for subject in sorted(manifest["subjects"]):
        file = path / manifest["subjects"][subject]["file"]
        try:
            with h5py.File(file, "r") as h5:
                n = h5["trial"].shape[0]
                for key in ("ecg", "eeg", "trial", "window_start", "ratings"):
                    parts[key].append(h5[key][...])
                for target in labels:
                    labels[target].append(h5["labels"][target][...])
        except (OSError, KeyError) as exc:
            raise InvalidInputError(file, f"unreadable subject file ({exc}); rerun `maan preprocess` to rebuild it") from exc
        parts["subject"].append(np.full(n, subject))
    ecg_shape = tuple(manifest.get("ecg_shape", (1, 0)))
    eeg_shape = tuple(manifest.get("eeg_shape", (0,)))
    n_ratings = len(manifest.get("rating_names", []))

    def cat(key, empty_shape, dtype):
        return np.concatenate(parts[key]) if parts[key] else np.zeros((0, *empty_shape), dtype=dtype)

    return Features(
        ecg=cat("ecg", ecg_shape, np.float32),
        eeg=cat("eeg", eeg_shape, np.float32),
        subject=cat("subject", (), str),
        trial=cat("trial", (), np.int32),
        window_start=cat("window_start", (), np.float64),
        ratings=cat("ratings", (n_ratings,), np.float32),
        labels={t: (np.concatenate(v) if v else np.zeros(0, np.int8)) for t, v in labels.items()},
        manifest=manifest,
    )
