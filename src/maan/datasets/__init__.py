"""Readers (AMIGOS, DREAMER, MAHNOB-HCI, eegmat, labelled recordings read with MNE) and
format-faithful synthetic cohorts, all yielding ``Record``s; ``fetch_eegmat`` downloads
PhysioNet's eegmat."""
from __future__ import annotations

from pathlib import Path

from maan.datasets.record import Record, Signal, SubjectSource


def _amigos(data):
    from maan.datasets.amigos import list_amigos_subjects

    return list_amigos_subjects(data)


def _dreamer(data):
    from maan.datasets.dreamer import list_dreamer_subjects

    return list_dreamer_subjects(data)


def _mahnob(data, **options):
    """Options: ecg_channel, rpeak_method (see maan.datasets.mahnob)."""
    from maan.datasets.mahnob import list_mahnob_subjects

    return list_mahnob_subjects(data, **options)


def _recordings(data, **options):
    """Options: labels, ecg_channel, exclude, fs, threshold, targets (see maan.datasets.recordings)."""
    from maan.datasets.recordings import list_recordings_subjects

    return list_recordings_subjects(data, **options)


def _eegmat(data, **options):
    """Options: fs (see maan.datasets.eegmat)."""
    from maan.datasets.eegmat import list_eegmat_subjects

    return list_eegmat_subjects(data, **options)


# dataset name -> function(data path, **reader options) -> list[SubjectSource]
# (recordings, eegmat and mahnob take options; PreprocessConfig.reader_options() supplies them)
READERS = {"amigos": _amigos, "dreamer": _dreamer, "mahnob": _mahnob, "eegmat": _eegmat, "recordings": _recordings}
SYNTH_FORMATS = ("amigos", "dreamer", "mahnob")


def synth_cohort(format: str, out, n_subjects: int, seed: int = 0, **kwargs):
    """Write a synthetic cohort in the named dataset's file format, marked as synthetic.

    The folder holds only the files the real dataset has; each carries the synthetic tag and its
    ground truth inside (:func:`maan.datasets.synthetic.read_truth`), so every store, table and
    figure built from it says synthetic, and peers' readers read the folder unchanged.
    """
    from maan.config import check_number
    from maan.errors import MaanError
    if format == "mahnob":
        from maan.datasets.synthetic_mahnob import synth
    else:
        from maan.datasets.synthetic import synth
    if format not in SYNTH_FORMATS:
        raise MaanError(f"unknown format {format!r}; choose one of {', '.join(SYNTH_FORMATS)}")
    check_number("--subjects", n_subjects, 1, integer=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return synth(out, n_subjects=n_subjects, seed=seed, **kwargs) if format == "mahnob" else \
        synth(format, out, n_subjects=n_subjects, seed=seed, **kwargs)


def __getattr__(name):
    # fetch_eegmat is imported on first use (pooch and requests only when it runs)
    if name == "fetch_eegmat":
        from maan.datasets.fetch import fetch_eegmat

        return fetch_eegmat
    raise AttributeError(f"module 'maan.datasets' has no attribute {name!r}")


__all__ = ["Record", "Signal", "SubjectSource", "READERS", "synth_cohort", "fetch_eegmat"]
