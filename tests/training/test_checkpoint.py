import json
import pickle

import numpy as np
import pytest
import torch

from maan.errors import ConfigMismatchError, InvalidInputError
from maan.models import build_model
from maan.training.checkpoint import load_checkpoint, save_checkpoint
from maan.features.normalize import Normalizer


def _save(tmp_path, features, name="maan"):
    torch.manual_seed(0)
    model = build_model(name, features.ecg.shape[1:], features.eeg.shape[1:], n_classes=2)
    norm = Normalizer("train").fit(features.ecg, features.eeg)
    path = save_checkpoint(tmp_path / "ck" / "model.pt", model, model_name=name,
                           ecg_shape=features.ecg.shape[1:], eeg_shape=features.eeg.shape[1:], target="arousal",
                           normalizer=norm, manifest=features.manifest, training={"epochs": 1})
    return model.eval(), norm, path


def test_round_trip_predicts_the_same(tmp_path, features):
    model, norm, path = _save(tmp_path, features)
    ck = load_checkpoint(path.parent)  # a folder works, as does the .pt or .json
    assert ck.target == "arousal" and ck.model_name == "maan"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["store"]["config"] == features.manifest["config"]
    assert meta["store"]["eeg_channels"] == features.manifest["eeg_channels"]
    assert meta["ecg_shape"] == [1, 32] and meta["normalizer"]["mode"] == "train"
    e, g = norm.transform(features.ecg[:20], features.eeg[:20])
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(e), torch.from_numpy(g)), 1)[:, 1].numpy()
    np.testing.assert_allclose(ck.predict_proba(features.ecg[:20], features.eeg[:20]), expected, rtol=1e-5, atol=1e-6)
    ck.check_store(features.manifest)


def test_weights_are_loaded_with_weights_only(tmp_path, features, monkeypatch):
    _, _, path = _save(tmp_path, features)
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_checkpoint(path)
    assert calls == [True]


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_corrupt_and_malicious_checkpoints_are_clear_errors(tmp_path, features, capsys):
    _, _, path = _save(tmp_path, features)
    meta_path = path.with_suffix(".json")
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(InvalidInputError, match="SHA-256"):
        load_checkpoint(path)
    # a pickle that runs code, with a matching hash: refused by weights_only, never executed
    evil = pickle.dumps({"x": _Evil()})
    path.write_bytes(evil)
    meta = json.loads(meta_path.read_text())
    import hashlib
    meta["weights_sha256"] = hashlib.sha256(evil).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="corrupt or unsafe"):
        load_checkpoint(path)
    assert "pwned" not in capsys.readouterr().out
    meta_path.write_text("{not json")
    with pytest.raises(InvalidInputError, match="corrupt checkpoint configuration"):
        load_checkpoint(path)
    with pytest.raises(InvalidInputError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_mismatched_weights_and_stores(tmp_path, features):
    _, _, path = _save(tmp_path, features, name="base")
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["model"]["name"] = "maan"  # base weights lack the fusion attention
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="do not fit"):
        load_checkpoint(path)
    meta["model"]["name"] = "base"
    meta_path.write_text(json.dumps(meta))
    ck = load_checkpoint(path)
    other = dict(features.manifest, eeg_shape=[40, 9, 9])
    with pytest.raises(ConfigMismatchError, match="EEG"):
        ck.check_store(other)
    other = dict(features.manifest, config=dict(features.manifest["config"], de_method="butter"))
    with pytest.raises(ConfigMismatchError, match="de_method"):
        ck.check_store(other)


def test_a_balanced_model_round_trips_through_its_checkpoint(tmp_path, features):
    torch.manual_seed(0)
    model = build_model("maan", features.ecg.shape[1:], features.eeg.shape[1:], n_classes=2,
                        balance_modalities=True).eval()
    norm = Normalizer("train").fit(features.ecg, features.eeg)
    path = save_checkpoint(tmp_path / "bal.pt", model, model_name="maan",
                           ecg_shape=features.ecg.shape[1:], eeg_shape=features.eeg.shape[1:], target="arousal",
                           normalizer=norm, manifest=features.manifest)
    assert json.loads(path.with_suffix(".json").read_text())["model"]["kwargs"]["balance_modalities"] is True
    rebuilt = load_checkpoint(path).model
    assert rebuilt.balance_modalities is True and rebuilt.ecg_scale == model.ecg_scale > 1
    x = (torch.from_numpy(features.ecg[:4]), torch.from_numpy(features.eeg[:4]))
    torch.testing.assert_close(rebuilt(*x), model(*x))


@pytest.mark.parametrize("rr_skip", ["beats", "padded"])
def test_the_rr_skip_round_trips_and_another_format_version_is_refused(tmp_path, features, rr_skip):
    torch.manual_seed(0)
    model = build_model("maan", features.ecg.shape[1:], features.eeg.shape[1:], n_classes=2, rr_skip=rr_skip).eval()
    norm = Normalizer("train").fit(features.ecg, features.eeg)
    path = save_checkpoint(tmp_path / "rr.pt", model, model_name="maan",
                           ecg_shape=features.ecg.shape[1:], eeg_shape=features.eeg.shape[1:], target="arousal",
                           normalizer=norm, manifest=features.manifest)
    x = (torch.from_numpy(features.ecg[:4]), torch.from_numpy(features.eeg[:4]))
    rebuilt = load_checkpoint(path).model
    assert rebuilt.rr_skip == rr_skip
    torch.testing.assert_close(rebuilt(*x), model(*x))
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["format_version"] = 6
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="format version 6 is not supported"):
        load_checkpoint(path)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(normalizer={"mode": "nonsense"}), "invalid checkpoint configuration"),
    (lambda m: m["model"]["kwargs"].update(width=10**6), "model_kwargs.width must be"),
    (lambda m: m.update(eeg_shape=[4, -14, 10]), "eeg_shape"),
    (lambda m: m.update(model=[]), "invalid checkpoint configuration"),
    (lambda m: m.pop("target"), "'target' or 'store' is missing"),
])
def test_a_bad_configuration_names_the_json_file(tmp_path, features, change, message):
    """Every problem of the untrusted .json (a bad normaliser, an architecture too large to
    allocate, a broken field) is one InvalidInputError naming the file; nothing is built first."""
    _, _, path = _save(tmp_path, features)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match=message) as info:
        load_checkpoint(path)
    assert info.value.path == str(meta_path)
