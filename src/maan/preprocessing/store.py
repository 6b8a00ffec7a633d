"""The feature store: one HDF5 file per subject plus ``manifest.json``.

Layout of ``OUT/``::

    manifest.json          config, shapes, counts (kept, partial and dropped with reasons), inputs, versions
    subjects/<id>.h5       ecg (n, 1, RR_LENGTH), eeg (n, ...), modality_mask (n, 2) uint8 (valid
                           ECG, valid EEG), trial, window_start, ratings (n, R), labels/<target> (n,) int8

A kept window has at least one valid modality; the other one's features are zeros that the
mask marks as missing (``partial`` counts such windows by reason, ``partial_trials`` lists
trials whose whole recording misses a modality, e.g. a dead ECG lead).

Each subject file is written to a temporary name and renamed into place, then the manifest is
rewritten the same way, so an interrupted run leaves only whole subjects and a rerun resumes.

Integrity lives here, in one place: the manifest records each subject file's size and SHA-256.
A rerun skips a subject only when its file still matches them (and its inputs are unchanged);
a truncated, modified or missing file, or an unreadable manifest, is rebuilt with a warning
that says so. Opening a store (:func:`load_features`) checks the same hashes and the shapes
(every dataset of a subject has the same rows, the shapes the manifest states), so a broken
store is one error naming the file, never a traceback later.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maan.config import MODALITIES
from maan.errors import ConfigMismatchError, InvalidInputError
from maan.preprocessing.io import atomic_write_json, config_hash, temp_beside, writing

MANIFEST = "manifest.json"
SUBJECT_DIR = "subjects"
STORE_FORMAT = "maan-features"
STORE_VERSION = 3  # 3: windows with one valid modality are kept, with a per-window modality mask
#: Datasets of every subject file, aligned on axis 0 (plus one ``labels/<target>`` per target).
SUBJECT_DATASETS = ("ecg", "eeg", "modality_mask", "trial", "window_start", "ratings")

REBUILD_HINT = "rerun `maan preprocess` with the same options to rebuild it"

log = logging.getLogger(__name__)


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_fingerprint(path) -> dict:
    """Size, mtime and sha256 of an input file (the hash goes into the manifest)."""
    path = Path(path)
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime": stat.st_mtime, "sha256": _sha256(path)}


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
    modality_mask: np.ndarray | None = None  # (n, 2) bool; None: every window complete
    dropped: dict[str, int] = field(default_factory=dict)
    partial: dict[str, int] = field(default_factory=dict)  # kept windows missing a modality, by reason
    partial_trials: list[dict] = field(default_factory=list)  # trials without one modality at all
    invalid_trials: list[dict] = field(default_factory=list)
    short_trials: list[dict] = field(default_factory=list)  # shorter than one window
    inputs: list[dict] = field(default_factory=list)
    signal_seconds: float = 0.0  # duration of all trials read (kept or not)


def _subject_file_problem(store: Path, entry) -> str | None:
    """Why a manifest entry's subject file cannot be trusted, or None (size and SHA-256 match)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        return "malformed manifest entry"
    file = store / entry["file"]
    if not file.is_file():
        return "file is missing"
    if entry.get("sha256") is None or file.stat().st_size != entry.get("size") or _sha256(file) != entry["sha256"]:
        return f"file does not match its size and SHA-256 in {MANIFEST} (truncated or modified)"
    return None


def _read_json_dict(path: Path) -> dict:
    """A JSON object from ``path``; ValueError (with the reason) if it is not one."""
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text: {exc.reason}") from None
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


class FeatureStoreWriter:
    """Creates or resumes a store at ``out`` for one configuration.

    ``overwrite`` discards whatever the folder's store holds, in any state. Without it, a store
    of another configuration is refused (ConfigMismatchError); an unreadable manifest is
    rebuilt from scratch and a broken subject file is redone, each with a warning.
    """

    def __init__(self, out, config: dict, meta: dict, overwrite: bool = False):
        self.out = Path(out)
        self.config = config
        self.hash = config_hash(config)
        manifest_path = self.out / MANIFEST
        if self.out.exists() and not self.out.is_dir():
            raise InvalidInputError(self.out, "output path exists and is not a folder")
        existing = None
        if overwrite:
            self._discard()
        elif manifest_path.exists():
            # rebuilt only when it is unreadable, or maan's and malformed; another program's
            # manifest (or another store version) is never deleted without --overwrite
            try:
                existing = _read_json_dict(manifest_path)
            except ValueError as exc:
                broken = f"unreadable ({exc})"
            else:
                ours, version = existing.get("format") == STORE_FORMAT, existing.get("format_version")
                if not ours or (isinstance(version, int) and version != STORE_VERSION):
                    what = f"format version {existing.get('format_version')!r}" if ours else "not a feature store's"
                    raise ConfigMismatchError(f"{manifest_path}: {what} manifest (this maan writes version "
                                              f"{STORE_VERSION}); pass --overwrite to replace it or choose another --out")
                problem = _manifest_problem(existing)
                broken = f"malformed ({problem})" if problem else None
            if broken:
                if not (self.out / SUBJECT_DIR).is_dir():  # nothing of a store beside it: not ours to delete
                    raise InvalidInputError(manifest_path, f"{broken}; choose another --out, or pass --overwrite "
                                                           "to replace it")
                log.warning("%s is %s: rebuilding the store", manifest_path, broken)
                existing = None
                self._discard()
        if existing is not None and existing.get("config_hash") != self.hash:
            old = existing.get("config", {}) if isinstance(existing.get("config"), dict) else {}
            changed = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            raise ConfigMismatchError(
                f"{self.out}: existing features were built with another configuration "
                f"(differs in: {', '.join(changed) or 'format'}); pass --overwrite to rebuild or choose another --out"
            )
        if existing is not None and not self._verified(existing):
            existing = None
            self._discard()
        self.manifest = existing or {
            "format": STORE_FORMAT,
            "format_version": STORE_VERSION,
            "config": config,
            "config_hash": self.hash,
            "subjects": {},
            "invalid_inputs": [],
        }
        self._saved = json.loads(json.dumps(existing)) if existing is not None else None
        self.manifest.update(meta)
        if not (self.out / SUBJECT_DIR).is_dir():
            (self.out / SUBJECT_DIR).mkdir(parents=True, exist_ok=True)
        self._refresh_totals()
        self._save()

    def _verified(self, manifest: dict) -> bool:
        """Check every stored subject as :func:`load_features` would: a broken subject file is
        dropped from ``manifest`` (rebuilt), a store that does not line up is False (rebuilt)."""
        for subject, entry in list(manifest["subjects"].items()):
            problem = _subject_file_problem(self.out, entry)
            if problem:
                log.warning("%s: %s: rebuilding subject %s", self.out / entry["file"], problem, subject)
                del manifest["subjects"][subject]
                continue
            try:
                _read_subject(self.out, subject, entry, manifest, manifest.get("targets", []), hashed=True)
            except _DoesNotLineUp as exc:
                log.warning("%s: %s (does not line up): rebuilding the store", exc.path, exc.detail)
                return False
            except InvalidInputError as exc:
                log.warning("%s: rebuilding subject %s", exc.reason.split("; ")[0], subject)
                del manifest["subjects"][subject]
        return True

    def _discard(self) -> None:
        """Remove the store's own files (manifest, subject files, temporary files); other files
        in the folder are left alone."""
        (self.out / MANIFEST).unlink(missing_ok=True)
        subjects = self.out / SUBJECT_DIR
        for pattern, folder in (("*.h5", subjects), (".*.tmp", subjects), (f".{MANIFEST}.*.tmp", self.out)):
            for file in folder.glob(pattern) if folder.is_dir() else ():
                file.unlink(missing_ok=True)

    # -- resume -------------------------------------------------------------------------
    def is_done(self, subject: str) -> bool:
        """True when the subject is stored (its file was verified when the store was opened)
        and its input files are unchanged."""
        entry = self.manifest["subjects"].get(subject)
        return entry is not None and (self.out / entry["file"]).is_file() and all(
            _same_file(fp) for fp in entry.get("inputs", []))

    # -- writes -------------------------------------------------------------------------
    def write_subject(self, features: SubjectFeatures) -> None:
        import h5py

        rel = f"{SUBJECT_DIR}/{features.subject}.h5"
        target = self.out / rel
        fd, tmp = temp_beside(target)
        os.close(fd)
        try:
            with writing(target), h5py.File(tmp, "w") as h5:
                h5.attrs["subject"] = features.subject
                h5.create_dataset("ecg", data=features.ecg.astype(np.float32))
                h5.create_dataset("eeg", data=features.eeg.astype(np.float32))
                mask = features.modality_mask
                if mask is None:
                    mask = np.ones((len(features.trial), len(MODALITIES)), bool)
                h5.create_dataset("modality_mask", data=np.asarray(mask, dtype=np.uint8))
                h5.create_dataset("trial", data=features.trial.astype(np.int32))
                h5.create_dataset("window_start", data=features.window_start.astype(np.float64))
                h5.create_dataset("ratings", data=features.ratings.astype(np.float32))
                group = h5.create_group("labels")
                for name, values in features.labels.items():
                    group.create_dataset(name, data=values.astype(np.int8))
            with writing(target):
                os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.manifest["subjects"][features.subject] = {
            "file": rel,
            "size": target.stat().st_size,
            "sha256": _sha256(target),
            "windows": int(len(features.trial)),
            "signal_seconds": round(float(features.signal_seconds), 3),
            "dropped": dict(features.dropped),
            "partial": dict(features.partial),
            "partial_trials": features.partial_trials,
            "invalid_trials": features.invalid_trials,
            "short_trials": features.short_trials,
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
        totals: dict[str, dict[str, int]] = {"dropped": {}, "partial": {}}
        for entry in subjects.values():
            for key, counts in totals.items():
                for reason, count in entry.get(key, {}).items():
                    counts[reason] = counts.get(reason, 0) + count
        self.manifest["windows"] = int(sum(e["windows"] for e in subjects.values()))
        self.manifest["dropped"] = dict(sorted(totals["dropped"].items()))
        self.manifest["partial"] = dict(sorted(totals["partial"].items()))
        self.manifest["partial_windows"] = int(sum(totals["partial"].values()))
        self.manifest["n_subjects"] = len(subjects)
        self.manifest["signal_hours"] = round(sum(e.get("signal_seconds", 0) for e in subjects.values()) / 3600, 4)

    def _save(self) -> None:
        # unchanged content is not rewritten: a complete store may be read-only
        current = json.loads(json.dumps(self.manifest))
        if current != self._saved:
            atomic_write_json(self.out / MANIFEST, self.manifest)
            self._saved = current


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
    modality_mask: np.ndarray = None  # (n, 2) bool: valid ECG, valid EEG (MODALITIES order)

    def __post_init__(self):
        if self.modality_mask is None:
            self.modality_mask = np.ones((len(self.trial), len(MODALITIES)), bool)

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
    """The store's manifest, checked for the fields the readers use (one error naming it)."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise InvalidInputError(path, "no such feature store (run `maan preprocess` first)")
    if not manifest_path.exists():
        raise InvalidInputError(path, f"not a feature store: {MANIFEST} is missing")
    try:
        manifest = _read_json_dict(manifest_path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(manifest_path, f"corrupt manifest ({exc}); {REBUILD_HINT}") from None
    if manifest.get("format") != STORE_FORMAT:
        raise InvalidInputError(manifest_path, f"not a {STORE_FORMAT} manifest")
    if manifest.get("format_version") != STORE_VERSION:
        raise InvalidInputError(manifest_path, f"feature store format version {manifest.get('format_version')!r} "
                                               f"is not supported (this maan reads {STORE_VERSION}); "
                                               "rerun `maan preprocess --overwrite`")
    problem = _manifest_problem(manifest)
    if problem:
        raise InvalidInputError(manifest_path, f"corrupt manifest ({problem}); {REBUILD_HINT}")
    return manifest


def _is_shape(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)


def _manifest_problem(manifest: dict) -> str | None:
    if manifest.get("format_version") != STORE_VERSION:
        return "no format version"
    subjects = manifest.get("subjects")
    if not isinstance(subjects, dict):
        return "'subjects' is not a table"
    targets = manifest.get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
        return "'targets' is not a list of names"
    has_windows = any(isinstance(e, dict) and e.get("windows") for e in subjects.values())
    if has_windows and not (_is_shape(manifest.get("ecg_shape")) and _is_shape(manifest.get("eeg_shape"))):
        return "'ecg_shape' / 'eeg_shape' are not shapes"
    if not isinstance(manifest.get("rating_names", []), list):
        return "'rating_names' is not a list"
    invalid = manifest.get("invalid_inputs", [])
    if not isinstance(invalid, list) or not all(isinstance(e, dict) and "path" in e for e in invalid):
        return "'invalid_inputs' is not a list of files"
    for subject, entry in subjects.items():
        file = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(file, str) or Path(file).is_absolute() or ".." in Path(file).parts \
                or not file.startswith(f"{SUBJECT_DIR}/"):
            return f"subject {subject!r} has no file inside {SUBJECT_DIR}/"
        windows = entry.get("windows")
        if not isinstance(windows, int) or isinstance(windows, bool) or windows < 0:
            return f"subject {subject!r} has no window count"
        for key in ("dropped", "partial"):
            counts = entry.get(key, {})
            if not isinstance(counts, dict) or not all(isinstance(v, int) for v in counts.values()):
                return f"subject {subject!r} has no {key} counts"
        if not isinstance(entry.get("signal_seconds", 0), (int, float)):
            return f"subject {subject!r} has no duration"
        inputs = entry.get("inputs", [])
        if not isinstance(inputs, list) or not all(
                isinstance(fp, dict) and isinstance(fp.get("path"), str) and {"size", "mtime"} <= set(fp) for fp in inputs):
            return f"subject {subject!r} has no input fingerprints"
    return None


class _DoesNotLineUp(InvalidInputError):
    """A subject file that matches its hash disagrees with the manifest: the store is broken."""


def _read_subject(path: Path, subject: str, entry: dict, manifest: dict, targets, hashed: bool = False) -> dict:
    """The arrays of one subject file, checked against the manifest (hash, rows, shapes, values).

    A file that does not match its size and SHA-256 raises InvalidInputError naming the file
    (that subject is rebuilt); a file that matches them but disagrees with the manifest raises
    ``_DoesNotLineUp`` naming the manifest (the whole store is rebuilt).
    """
    import h5py

    file = path / entry["file"]
    problem = None if hashed else _subject_file_problem(path, entry)
    if problem:
        raise InvalidInputError(file, f"{problem}; {REBUILD_HINT}")
    out = {}

    def mismatch(reason):
        exc = _DoesNotLineUp(path / MANIFEST, f"{entry['file']}: {reason} (the store does not line up); "
                                              "rerun `maan preprocess` with the same options to rebuild the store")
        exc.detail = f"{entry['file']}: {reason}"
        return exc

    try:
        with h5py.File(file, "r") as h5:
            for key in SUBJECT_DATASETS:
                out[key] = np.asarray(h5[key][...])
            for target in targets:
                out[f"labels/{target}"] = np.asarray(h5["labels"][target][...])
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(file, f"unreadable subject file ({exc}); {REBUILD_HINT}") from None
    n = entry["windows"]
    expected = {"ecg": tuple(manifest.get("ecg_shape", ())), "eeg": tuple(manifest.get("eeg_shape", ())),
                "ratings": (len(manifest.get("rating_names", [])),), "modality_mask": (len(MODALITIES),)}
    for key, values in out.items():
        shape = (n, *expected[key]) if key in expected else (n,)
        if values.shape != shape and not (n == 0 and values.shape[:1] == (0,)):
            raise mismatch(f"'{key}' has shape {values.shape}, the manifest says {shape}")
        if values.dtype.kind not in "biuf":
            raise mismatch(f"'{key}' holds {values.dtype} values, not numbers")
        if key != "ratings" and values.dtype.kind == "f" and not np.all(np.isfinite(values)):  # a rating may be NaN
            raise mismatch(f"'{key}' holds values that are not finite numbers")
        if key.startswith("labels/") and not np.isin(values, (0, 1)).all():
            raise mismatch(f"'{key}' holds labels other than 0 and 1")
        if key == "modality_mask" and not (np.isin(values, (0, 1)).all() and values.any(axis=1).all()):
            raise mismatch("'modality_mask' holds values other than 0 and 1, or a window with no modality")
    return out


def load_features(path) -> Features:
    """Load every subject of a store into memory, in subject order.

    Every subject file is checked against the manifest (size and SHA-256, rows and shapes,
    finite values, 0/1 labels); a problem is one InvalidInputError naming the file.
    """
    path = Path(path)
    manifest = read_manifest(path)
    targets = list(manifest.get("targets", []))
    parts: dict[str, list] = {k: [] for k in (*SUBJECT_DATASETS, "subject")}
    labels: dict[str, list] = {t: [] for t in targets}
    for subject in sorted(manifest["subjects"]):
        entry = manifest["subjects"][subject]
        arrays = _read_subject(path, subject, entry, manifest, targets)
        for key in SUBJECT_DATASETS:
            parts[key].append(arrays[key])
        for target in targets:
            labels[target].append(arrays[f"labels/{target}"])
        parts["subject"].append(np.full(entry["windows"], subject))
    ecg_shape = tuple(manifest.get("ecg_shape", (1, 0)))
    eeg_shape = tuple(manifest.get("eeg_shape", (0,)))
    n_ratings = len(manifest.get("rating_names", []))

    def cat(key, empty_shape, dtype):
        return np.concatenate(parts[key]).astype(dtype, copy=False) if parts[key] else np.zeros((0, *empty_shape), dtype=dtype)

    return Features(
        ecg=cat("ecg", ecg_shape, np.float32),
        eeg=cat("eeg", eeg_shape, np.float32),
        subject=cat("subject", (), str),
        trial=cat("trial", (), np.int32),
        window_start=cat("window_start", (), np.float64),
        ratings=cat("ratings", (n_ratings,), np.float32),
        modality_mask=cat("modality_mask", (len(MODALITIES),), bool),
        labels={t: (np.concatenate(v).astype(np.int8) if v else np.zeros(0, np.int8)) for t, v in labels.items()},
        manifest=manifest,
    )
