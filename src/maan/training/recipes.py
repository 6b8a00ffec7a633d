"""The two training recipes: ``paper`` (the paper's training, Table 1) and ``cross-subject``.

A recipe fixes how features are standardised and what the training adds to the architecture,
so that these choices come as one named design rather than as coupled switches:

``paper``
    Statistics from the training folds only; plain cross-entropy; the model as built by default
    (no modality balance, the padded-mean ECG skip). What the paper's protocols assume.
``cross-subject``
    Every subject standardised on its own windows (transductive, labels unused), which removes
    each person's baseline heart rate and EEG level; mixup; the modality balance; and the ECG
    part of the input skip chosen from the training labels (:func:`choose_rr_skip`), once per
    training run and logged. For subjects the model never saw.

docs/model.md measures each part.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maan.errors import MaanError
from maan.training.baselines import rr_statistics


@dataclass(frozen=True)
class Recipe:
    """A named training recipe (see the module docstring).

    ``normalize`` "train" or "subject"; ``mixup`` the alpha of mixup's Beta(alpha, alpha)
    weights (0: off); ``balance_modalities`` the model's modality balance; ``rr_skip`` the
    model's ECG skip, or "heart-rate" to choose it from the training labels.
    """

    name: str
    normalize: str
    mixup: float
    balance_modalities: bool
    rr_skip: str

    def model_kwargs(self, ecg=None, y=None, subject=None, log=None) -> dict:
        """The architecture options this recipe trains with, given the training windows."""
        rr_skip = self.rr_skip
        if rr_skip == "heart-rate":
            rr_skip = choose_rr_skip(ecg, y, subject, log=log)
        return {"balance_modalities": self.balance_modalities, "rr_skip": rr_skip}


PAPER = Recipe("paper", normalize="train", mixup=0.0, balance_modalities=False, rr_skip="padded")
CROSS_SUBJECT = Recipe("cross-subject", normalize="subject", mixup=1.0, balance_modalities=True,
                       rr_skip="heart-rate")
RECIPES = {r.name: r for r in (PAPER, CROSS_SUBJECT)}
DEFAULT_RECIPE = "paper"


def get_recipe(recipe: str | Recipe) -> Recipe:
    """A recipe by name (or as given); a clear error naming the choices otherwise."""
    if isinstance(recipe, Recipe):
        return recipe
    if recipe not in RECIPES:
        raise MaanError(f"recipe must be one of {', '.join(RECIPES)}; got {recipe!r}")
    return RECIPES[recipe]


#: the mean within-subject Fisher z (window heart rate vs label) at or above which heart rate
#: carries the target: atanh(0.5), Cohen's "large" correlation
HEART_RATE_EFFECT_THRESHOLD = float(np.arctanh(0.5))
_MIN_SUBJECT_WINDOWS = 4


def heart_rate_effect(ecg: np.ndarray, y, subject) -> float:
    """How strongly, and how alike in every subject, the window's heart rate goes with the label.

    ``ecg`` (windows, channels, length): zero-embedded RR series (the first channel is used); ``y``
    binary labels; ``subject`` the windows' subjects. Per subject with both classes and at least 4
    windows with beats, the Pearson correlation r between the window's mean RR interval (over its
    beats) and the label, as Fisher's z = atanh(r); returns their mean over those subjects (0 when
    there is none). Opposite signs in different subjects cancel. Per-subject correlations do not
    depend on a subject's own offset and scale, so raw and standardised series give the same value.

    Examples
    --------
    >>> rr = np.zeros((8, 1, 32)); rr[:, 0, :10] = np.repeat([1.0, 0.8], 4)[:, None]
    >>> round(heart_rate_effect(rr, [0, 0, 0, 0, 1, 1, 1, 1], ["a"] * 8), 2)  # faster heart, label 1
    -3.8
    """
    ecg = np.asarray(ecg, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    subject = np.asarray(subject).astype(str)
    if ecg.ndim != 3 or len(ecg) != len(y) or len(y) != len(subject):
        raise ValueError(f"heart_rate_effect needs ecg (windows, channels, length) and one label and subject per "
                         f"window; got {ecg.shape}, {y.shape}, {subject.shape}")
    stats = rr_statistics(ecg[:, :1])  # the per-window mean over the beats (column 0) and beat count (6)
    mean_rr = np.where(stats[:, 6] > 0, stats[:, 0], np.nan)
    zs = []
    for s in np.unique(subject):
        rows = (subject == s) & np.isfinite(mean_rr)
        if rows.sum() < _MIN_SUBJECT_WINDOWS or len(np.unique(y[rows])) < 2 or np.std(mean_rr[rows]) == 0:
            continue
        r = np.corrcoef(mean_rr[rows], y[rows])[0, 1]
        zs.append(float(np.arctanh(np.clip(r, -0.999, 0.999))))
    return float(np.mean(zs)) if zs else 0.0


def choose_rr_skip(ecg, y, subject, log=None) -> str:
    """The cross-subject recipe's ECG skip: "beats" where the training windows show heart rate
    carrying the target (|:func:`heart_rate_effect`| >= HEART_RATE_EFFECT_THRESHOLD), else "padded".

    Why: with few training subjects an undiluted heart-rate input lets the fused model follow
    heart rate where the subjects' EEG responses differ, but where heart rate does not carry the
    target it fits chance associations; the training labels say which case a run is in. Only
    training windows may be passed (never a test window). ``log`` receives one line.
    """
    effect = heart_rate_effect(ecg, y, subject)
    choice = "beats" if abs(effect) >= HEART_RATE_EFFECT_THRESHOLD else "padded"
    if log is not None:
        log(f"heart-rate effect of the training windows {effect:+.2f} (threshold "
            f"±{HEART_RATE_EFFECT_THRESHOLD:.2f}): ECG skip {choice}")
    return choice
