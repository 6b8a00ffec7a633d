"""Format-faithful synthetic MAHNOB-HCI cohorts (the emotion-elicitation sessions).

The layout is the distributed one, so :mod:`maan.datasets.mahnob` and third-party readers
(TorchEEG's ``MAHNOBDataset``, LibEER's ``read_hci``, EEGain's ``MAHNOB``) read it unchanged::

    OUT/Sessions/<session id>/session.xml
    OUT/Sessions/<session id>/Part_<participant>_<S|N>_Trial<trial>_emotion.bdf

* ``session.xml``: one ``<session>`` element whose attributes are ``sessionId``,
  ``experimentType`` (``emotion``), ``isStim`` (1: an emotional clip, 0: a neutral clip),
  ``mediaFile``, ``cutLenSec`` (the clip's length in seconds) and, for the rated clips only,
  the self-reports ``feltArsl``, ``feltVlnc``, ``feltCtrl``, ``feltPred`` (integers 1-9) and
  ``feltEmo`` (an emotion keyword code); its first child is ``<subject id="<participant>"/>``.
* The BDF file (Biosemi 24-bit, 1-s data records, every channel at 256 Hz) holds the 47
  channels of :data:`maan.config.MAHNOB_CHANNELS`: 32 EEG (Biosemi-32 order), ``EXG1``-``EXG3``
  ECG (upper right chest, upper left chest, left abdomen), the unused ``EXG4``-``EXG8``,
  ``GSR1``, ``GSR2``, ``Erg1``, ``Erg2``, ``Resp``, ``Temp`` and ``Status``. The recording
  starts with ``baseline_seconds`` (30 s, as released) before the clip and ends with as many
  after it; the ``Status`` channel holds two pulses, at the clip's first sample and at the
  sample after its last (``mne.find_events`` finds them).

Units (a documented choice): EEG and ECG in microvolts with the large per-electrode DC offsets
of unreferenced Biosemi recordings (EEG tens of microvolts of activity, an R wave of about a
millivolt), ``GSR1`` skin resistance in ohms, ``Resp`` in arbitrary belt units, ``Temp`` in
degrees Celsius, the unused channels a few microvolts of noise.

Physiology follows the ratings as in :mod:`maan.datasets.synthetic` (the same generators: heart
rate and HRV, EEG alpha, beta/gamma and frontal asymmetry, skin conductance), on the 32-channel
montage; the affective state is switched on at the clip's onset and off at its end. Each
participant rates ``n_trials`` clips (the 20 of the release by default) in their own order;
the first ``neutral_sessions`` trials are preceded by a neutral-clip session without ratings,
as in the release.

Every BDF header carries ``maan-synthetic`` (:data:`maan.datasets.synthetic.SYNTHETIC_TAG`) in
its recording-identification field, so :func:`maan.datasets.synthetic.is_synthetic` recognises
a file, a session folder and the cohort folder; nothing else is written beside the dataset's
own files. Output is deterministic for a seed, and participant ``k``'s sessions do not depend
on how many participants the cohort has.
"""
from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from maan import config
from maan.datasets import synthetic as S
from maan.errors import InvalidInputError, MaanError

MAHNOB_N_SUBJECTS = 30
MAHNOB_BASELINE_SECONDS = 30.0  # recorded before the clip's onset pulse, and again after its end
DEFAULT_MAHNOB_CLIP_SECONDS = (35.0, 117.0)  # range of the released clips' lengths
DEFAULT_MAHNOB_NEUTRAL_SESSIONS = 2  # neutral-clip sessions (no ratings) per participant
SESSIONS_DIR = "Sessions"
SESSION_FILE = "session.xml"
BDF_TEMPLATE = "Part_{participant}_{kind}_Trial{trial}_emotion.bdf"

_FMT = 2  # the random-stream family of MAHNOB cohorts (AMIGOS 0, DREAMER 1)
_FS = config.MAHNOB_FS
_PULSE_SECONDS = 0.1
_STATUS_CODE = 1.0
# P Q R S T amplitudes of EXG1 (upper right chest: small, inverted), EXG2 (upper left chest),
# EXG3 (left abdomen: the largest R wave)
_LEADS = np.array([[-0.05, 0.04, -0.45, 0.12, -0.12],
                   [0.06, -0.04, 0.55, -0.30, 0.18],
                   [0.12, -0.10, 1.00, -0.25, 0.30]])
# physical ranges written to the header (Biosemi's +-262 mV for the electrodes)
_UV_RANGE = (-262144.0, 262143.0)
_OHM_RANGE = (0.0, 1.0e7)
_RESP_RANGE = (-100000.0, 100000.0)
_TEMP_RANGE = (-50.0, 100.0)
_STATUS_RANGE = (-8388608.0, 8388607.0)


def _ratings(rng: np.random.Generator, clip: dict, p) -> dict:
    """Integer 1-9 self-reports of one rated clip (subject bias and noise as for AMIGOS)."""
    def scale(x):
        return int(np.clip(np.rint(x), 1, 9))

    arousal = scale(clip["arousal"] + p.bias_arousal + rng.normal(0, 1.0))
    valence = scale(clip["valence"] + p.bias_valence + rng.normal(0, 1.0))
    control = scale(5 + 0.4 * (valence - 5) + rng.normal(0, 1.3))
    predictability = scale(rng.normal(4.5, 2.0))
    # emotion keyword codes: 0 neutral, 1 anger, 2 disgust, 3 fear, 4 joy, 5 sadness, 6 surprise,
    # 11 amusement, 12 anxiety
    if valence >= 6:
        emotion = 4 if arousal >= 5 else 11
    elif valence <= 4:
        emotion = (3 if rng.random() < 0.5 else 1) if arousal >= 6 else (5 if rng.random() < 0.6 else 2)
    else:
        emotion = 6 if arousal >= 7 else 0 if arousal <= 3 else 12
    return {"feltEmo": emotion, "feltArsl": arousal, "feltVlnc": valence, "feltCtrl": control,
            "feltPred": predictability}


def _signals(rng: np.random.Generator, p, offsets: np.ndarray, z_a: float, z_v: float,
             clip_samples: int, baseline_samples: int) -> tuple[np.ndarray, int, int]:
    """The 47 channels (rows in MAHNOB_CHANNELS order) of one session, the onset and offset samples."""
    n = baseline_samples + clip_samples + baseline_samples
    n = int(np.ceil(n / _FS) * _FS)  # whole 1-s data records
    onset, offset = baseline_samples, baseline_samples + clip_samples
    n_ctrl = S._n_ctrl(n, _FS)
    a_ctrl = S._state(rng, n_ctrl, z_a, onset / _FS, offset / _FS)
    v_ctrl = S._state(rng, n_ctrl, z_v, onset / _FS, offset / _FS)
    out = np.zeros((len(config.MAHNOB_CHANNELS), n))
    n_eeg = len(config.MAHNOB_EEG_CHANNELS)
    eeg = S._eeg(rng, p, a_ctrl, v_ctrl, n, _FS, (0.5, 70.0))
    eeg += S._topography(config.MAHNOB_EEG_CHANNELS)[3][:, None] * S._blinks(rng, n, _FS)[None, :]
    eeg += S._upsample(S._ar1(rng, n_ctrl, 30.0, 20.0, (n_eeg,)), n, _FS)  # electrode drift
    out[:n_eeg] = eeg
    ecg, _ = S._ecg(rng, p, a_ctrl, n, _FS, line_hz=50.0)
    out[n_eeg:n_eeg + 3] = ecg * 1000.0  # mV -> uV
    out[n_eeg + 3:n_eeg + 8] = rng.normal(0.0, 2.0, (5, n))  # EXG4-EXG8: not connected
    row = {name: i for i, name in enumerate(config.MAHNOB_CHANNELS)}
    out[row["GSR1"]] = 1.0e6 / S._gsr(rng, p, a_ctrl, n, _FS)  # uS -> ohm
    out[row["GSR2"]] = rng.normal(0.0, 2.0, n)
    out[row["Erg1"]] = rng.normal(0.0, 2.0, n)
    out[row["Erg2"]] = rng.normal(0.0, 2.0, n)
    t = np.arange(n) / _FS
    rate = p.resp_hz * (1.0 + 0.06 * S._upsample(a_ctrl, n, _FS))
    out[row["Resp"]] = 2000.0 * np.sin(2 * np.pi * np.cumsum(rate) / _FS + rng.uniform(0, 2 * np.pi)) \
        + S._upsample(S._ar1(rng, n_ctrl, 20.0, 300.0), n, _FS)
    out[row["Temp"]] = rng.uniform(31.0, 34.0) + 0.002 * t + S._upsample(S._ar1(rng, n_ctrl, 60.0, 0.05), n, _FS)
    out[:n_eeg + 8] += offsets[:, None]
    width = int(round(_PULSE_SECONDS * _FS))
    status = out[row["Status"]]
    status[onset:onset + width] = _STATUS_CODE
    status[offset:offset + width] = _STATUS_CODE
    return out, onset, offset


def _write_bdf(path: Path, data: np.ndarray, identification: str) -> None:
    """One BDF file with edfio (MNE reads BDF but writes it only from a Raw, without a free
    recording-identification field; edfio writes both)."""
    import edfio

    signals = []
    for name, row in zip(config.MAHNOB_CHANNELS, data):
        if name == config.MAHNOB_STIM_CHANNEL:
            unit, physical = "Boolean", _STATUS_RANGE
        elif name == "GSR1":
            unit, physical = "Ohm", _OHM_RANGE
        elif name == "Resp":
            unit, physical = "", _RESP_RANGE
        elif name == "Temp":
            unit, physical = "degC", _TEMP_RANGE
        else:
            unit, physical = "uV", _UV_RANGE
        signals.append(edfio.BdfSignal(np.clip(row, *physical), _FS, label=name, physical_dimension=unit,
                                       physical_range=physical))
    recording = edfio.Recording(additional=tuple(identification.split()))
    tmp = path.with_name(path.name + ".part")
    try:
        edfio.Bdf(signals, recording=recording).write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_session_xml(path: Path, attributes: dict, participant: int) -> None:
    root = ET.Element("session", {k: str(v) for k, v in attributes.items()})
    ET.SubElement(root, "subject", {"id": str(participant)})
    ET.indent(root)
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")


def _prepare(out: Path) -> Path:
    """``out``/Sessions, emptied when it holds an earlier synthetic cohort; refused when it holds
    anything else."""
    if out.exists() and not out.is_dir():
        raise InvalidInputError(out, "output path exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    sessions = out / SESSIONS_DIR
    if sessions.exists():
        if any(sessions.iterdir()) and not S.is_synthetic(out):
            raise InvalidInputError(sessions, "folder already holds sessions not written by maan synth; "
                                              "choose an empty folder")
        shutil.rmtree(sessions)
    partial = out / (SESSIONS_DIR + ".part")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    return partial


def synth_mahnob(out_dir: str | os.PathLike, n_subjects: int = MAHNOB_N_SUBJECTS, seed: int = 0,
                 clip_seconds: tuple[float, float] = DEFAULT_MAHNOB_CLIP_SECONDS,
                 baseline_seconds: float = MAHNOB_BASELINE_SECONDS,
                 n_trials: int = config.MAHNOB_N_TRIALS,
                 neutral_sessions: int = DEFAULT_MAHNOB_NEUTRAL_SESSIONS) -> list[Path]:
    """Write a synthetic MAHNOB-HCI ``Sessions`` folder into ``out_dir``; returns the BDF paths.

    Parameters
    ----------
    out_dir : path
        Folder that receives ``Sessions/`` (an earlier synthetic cohort there is replaced).
    n_subjects : int
        Participants (1-999), numbered 1, 2, ...
    seed : int
        Random seed; the same seed writes the same files.
    clip_seconds : (float, float)
        Range of the clip lengths (one length per clip, shared by the participants).
    baseline_seconds : float
        Recording before each clip's onset pulse and after its end (30 s in the release).
    n_trials : int
        Rated clips per participant (1-99; 20 in the release).
    neutral_sessions : int
        Neutral-clip sessions without ratings per participant (0 to ``n_trials``), each
        before one of the first rated trials.
    """
    n_subjects = int(config.check_number("n_subjects (--subjects)", n_subjects, 1, 999, integer=True))
    seed = S._check_seed(seed)
    lo, hi = S._check_range("clip_seconds (--short-seconds)", clip_seconds)
    baseline_seconds = float(config.check_number("baseline_seconds", baseline_seconds, 1.0,
                                                  config.MAX_SPAN_SECONDS))
    n_trials = int(config.check_number("n_trials", n_trials, 1, 99, integer=True))
    neutral_sessions = int(config.check_number("neutral_sessions", neutral_sessions, 0, n_trials, integer=True))
    out = Path(out_dir)
    partial = _prepare(out)
    crng = S._subject_rng(seed, _FMT, 0, 99)  # cohort-level stream: the clips
    quads = [S._AMIGOS_QUADRANTS[i % 4] for i in range(n_trials)]
    clips = [{"media": f"clip{i + 1:02d}.avi", "seconds": float(crng.uniform(lo, hi)),
              "arousal": 5.0 + sa * crng.uniform(1.2, 2.6), "valence": 5.0 + sv * crng.uniform(1.2, 2.6)}
             for i, (sa, sv) in enumerate(quads)]
    neutral_clip = {"media": "neutral.avi", "seconds": lo}
    baseline = int(round(baseline_seconds * _FS))
    per_subject = n_trials + neutral_sessions
    written = []
    for k in range(n_subjects):
        participant = k + 1
        rng = S._subject_rng(seed, _FMT, k)
        p = S._draw_physio(rng, config.MAHNOB_EEG_CHANNELS, _LEADS)
        n_offsets = len(config.MAHNOB_EEG_CHANNELS) + 8
        offsets = rng.uniform(-25000.0, 25000.0, n_offsets)  # unreferenced Biosemi DC offsets (uV)
        order = rng.permutation(n_trials)
        session_id = k * per_subject
        for t in range(1, n_trials + 1):
            kinds = ("N", "S") if t <= neutral_sessions else ("S",)
            for kind in kinds:
                session_id += 1
                srng = S._subject_rng(seed, _FMT, k, 10 + 2 * t + (kind == "S"))
                clip = clips[order[t - 1]] if kind == "S" else neutral_clip
                attributes = {"sessionId": session_id, "experimentType": "emotion",
                              "isStim": int(kind == "S"), "mediaFile": clip["media"],
                              "cutLenSec": f"{clip['seconds']:.3f}"}
                z_a = z_v = 0.0
                if kind == "S":
                    felt = _ratings(srng, clip, p)
                    attributes.update(felt)
                    # physiology follows the rating relative to the subject's own anchor of the scale
                    z_a = (felt["feltArsl"] - 5.0 - S._ANCHOR * p.bias_arousal) / 2.0 + srng.normal(0, 0.3)
                    z_v = (felt["feltVlnc"] - 5.0 - S._ANCHOR * p.bias_valence) / 2.0 + srng.normal(0, 0.3)
                data, _, _ = _signals(srng, p, offsets, z_a, z_v, int(round(clip["seconds"] * _FS)), baseline)
                folder = partial / str(session_id)
                folder.mkdir()
                bdf = folder / BDF_TEMPLATE.format(participant=participant, kind=kind, trial=t)
                _write_bdf(bdf, data, f"{S.SYNTHETIC_TAG} mahnob seed={seed} session={session_id}")
                _write_session_xml(folder / SESSION_FILE, attributes, participant)
                written.append(out / SESSIONS_DIR / str(session_id) / bdf.name)
    os.replace(partial, out / SESSIONS_DIR)
    return written


def check_options(kw: dict) -> dict:
    """The keyword options of :func:`synth_mahnob` among ``kw`` (the CLI's ``short_seconds`` is
    the clip range); anything else is a MaanError."""
    kw = dict(kw)
    if "short_seconds" in kw and "clip_seconds" not in kw:
        kw["clip_seconds"] = kw.pop("short_seconds")
    bad = set(kw) - {"clip_seconds", "baseline_seconds", "n_trials", "neutral_sessions"}
    if bad:
        raise MaanError(f"options not valid for --format mahnob: {', '.join(sorted(bad))}")
    return kw


def synth(out_dir: str | os.PathLike, n_subjects: int | None = None, seed: int = 0, **kw) -> list[Path]:
    """CLI-friendly entry point (as :func:`maan.datasets.synthetic.synth`): ``kw`` as
    :func:`check_options` accepts them (``short_seconds`` is the clip range); ``n_subjects``
    defaults to the published cohort size."""
    kw = check_options({k: v for k, v in kw.items() if v is not None})
    return synth_mahnob(out_dir, MAHNOB_N_SUBJECTS if n_subjects is None else n_subjects, seed, **kw)
