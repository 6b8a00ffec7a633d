"""Readers (AMIGOS, DREAMER, MAHNOB-HCI, labelled recordings read with MNE) and format-faithful
synthetic cohorts, all yielding ``Record``s."""
from __future__ import annotations

import json
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


# dataset name -> function(data path, **reader options) -> list[SubjectSource]
# (only "recordings" and "mahnob" take options; PreprocessConfig.reader_options() supplies them)
READERS = {"amigos": _amigos, "dreamer": _dreamer, "mahnob": _mahnob, "recordings": _recordings}
SYNTH_FORMATS = ("amigos", "dreamer", "mahnob")


def synth_cohort(format: str, out, n_subjects: int, seed: int = 0, **kwargs):
    """Write a synthetic cohort in the named dataset's file format, marked as synthetic.

    Besides the dataset files, ``MAAN_SYNTHETIC.json`` records that the data is synthetic, so
    every store, table and figure built from it says so.
    """
    from maan.config import check_number
    from maan.errors import MaanError
    from maan.datasets.synthetic import COHORT_MARKER_FILE, synth

    if format not in SYNTH_FORMATS:
        raise MaanError(f"unknown format {format!r}; choose one of {', '.join(SYNTH_FORMATS)}")
    check_number("--subjects", n_subjects, 1, integer=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = synth(format, out, n_subjects=n_subjects, seed=seed, **kwargs)
    marker = {"synthetic": True, "format": format, "subjects": n_subjects, "seed": seed,
              "options": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
              "note": "Synthetic cohort written by `maan synth`; not AMIGOS/DREAMER data."}
    (out / COHORT_MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
    return written


__all__ = ["Record", "Signal", "SubjectSource", "READERS", "synth_cohort"]
