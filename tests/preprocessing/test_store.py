import json

import numpy as np
import pytest

from maan import load_features
from maan.errors import ConfigMismatchError, InvalidInputError
from maan.preprocessing.store import STORE_VERSION, FeatureStoreWriter, SubjectFeatures
from maan.preprocessing.io import atomic_write_json


def subject(name, n, seed=0):
    rng = np.random.default_rng(seed)
    return SubjectFeatures(
        subject=name,
        ecg=rng.random((n, 1, 32)).astype(np.float32),
        eeg=rng.random((n, 4, 14, 10)).astype(np.float32),
        trial=np.arange(n, dtype=np.int32),
        window_start=np.arange(n) * 10.0,
        ratings=rng.random((n, 2)).astype(np.float32),
        labels={"arousal": rng.integers(0, 2, n).astype(np.int8), "valence": rng.integers(0, 2, n).astype(np.int8)},
        dropped={"nan": 2},
    )


META = {"dataset": "amigos", "targets": ["arousal", "valence"], "ecg_shape": [1, 32], "eeg_shape": [4, 14, 10],
        "rating_names": ["arousal", "valence"]}


def test_round_trip_aligned_on_the_window_axis(tmp_path):
    writer = FeatureStoreWriter(tmp_path / "f", {"a": 1}, META)
    writer.write_subject(subject("P02", 3, seed=2))
    writer.write_subject(subject("P01", 5, seed=1))
    features = load_features(tmp_path / "f")
    assert len(features) == 8
    assert features.ecg.shape == (8, 1, 32) and features.eeg.shape == (8, 4, 14, 10)
    assert list(features.subject) == ["P01"] * 5 + ["P02"] * 3
    np.testing.assert_array_equal(features.arousal, np.concatenate(
        [subject("P01", 5, 1).labels["arousal"], subject("P02", 3, 2).labels["arousal"]]))
    np.testing.assert_allclose(features.eeg[:5], subject("P01", 5, 1).eeg)
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert manifest["windows"] == 8 and manifest["dropped"] == {"nan": 4}


def test_changed_config_is_refused_unless_overwrite(tmp_path):
    writer = FeatureStoreWriter(tmp_path, {"window_seconds": 10}, META)
    writer.write_subject(subject("P01", 2))
    with pytest.raises(ConfigMismatchError, match="window_seconds"):
        FeatureStoreWriter(tmp_path, {"window_seconds": 5}, META)
    fresh = FeatureStoreWriter(tmp_path, {"window_seconds": 5}, META, overwrite=True)
    assert fresh.manifest["subjects"] == {}
    assert not (tmp_path / "subjects" / "P01.h5").exists()


def test_same_config_resumes(tmp_path):
    writer = FeatureStoreWriter(tmp_path, {"x": 1}, META)
    writer.write_subject(subject("P01", 2))
    again = FeatureStoreWriter(tmp_path, {"x": 1}, META)
    assert again.is_done("P01") and not again.is_done("P02")
    (tmp_path / "subjects" / "P01.h5").unlink()
    assert not again.is_done("P01")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_json(target, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_load_errors_name_the_path(tmp_path):
    with pytest.raises(InvalidInputError, match="no such feature store"):
        load_features(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="manifest.json is missing"):
        load_features(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="corrupt manifest"):
        load_features(tmp_path)
    writer = FeatureStoreWriter(tmp_path / "s", {"x": 1}, META)
    writer.write_subject(subject("P01", 2))
    (tmp_path / "s" / "subjects" / "P01.h5").write_bytes(b"truncated")
    with pytest.raises(InvalidInputError, match="P01.h5"):
        load_features(tmp_path / "s")


def test_outputs_are_not_owner_only(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "m.json", {"ok": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644


# -- integrity: a rerun verifies what it skips, rebuilds what is broken; opening checks shapes --
def test_a_modified_subject_file_is_redone_with_a_warning(tmp_path, caplog):
    writer = FeatureStoreWriter(tmp_path, {"x": 1}, META)
    writer.write_subject(subject("P01", 3))
    writer.write_subject(subject("P02", 3))
    h5 = tmp_path / "subjects" / "P01.h5"
    h5.write_bytes(h5.read_bytes()[:-100])  # truncated
    with pytest.raises(InvalidInputError, match="P01.h5: file does not match its size and SHA-256.*rerun"):
        load_features(tmp_path)
    again = FeatureStoreWriter(tmp_path, {"x": 1}, META)
    assert not again.is_done("P01") and again.is_done("P02")
    assert "P01.h5: file does not match its size and SHA-256" in caplog.text
    assert "rebuilding subject P01" in caplog.text
    assert "P01" not in json.loads((tmp_path / "manifest.json").read_text())["subjects"]
    again.write_subject(subject("P01", 3))
    assert len(load_features(tmp_path)) == 6


def test_an_unreadable_manifest_is_rebuilt(tmp_path, caplog):
    writer = FeatureStoreWriter(tmp_path, {"x": 1}, META)
    writer.write_subject(subject("P01", 3))
    for junk in ("{not json", "[]", f'{{"format": "maan-features", "format_version": {STORE_VERSION}, "subjects": []}}',
                 '{"format": "maan-features", "subjects": {}}', "\udcff"):
        (tmp_path / "manifest.json").write_text(junk, errors="surrogateescape")
        fresh = FeatureStoreWriter(tmp_path, {"x": 1}, META)
        assert fresh.manifest["subjects"] == {} and not fresh.is_done("P01")
        assert "rebuilding the store" in caplog.text
        caplog.clear()


@pytest.mark.parametrize("manifest", ['{"name": "my web app"}', '{"format": "other-tool", "subjects": {}}',
                                      '{"format": "maan-features", "format_version": 99, "subjects": {}}'])
def test_another_programs_manifest_is_never_deleted_without_overwrite(tmp_path, manifest):
    (tmp_path / "manifest.json").write_text(manifest)
    (tmp_path / "subjects").mkdir()
    (tmp_path / "subjects" / "user.txt").write_text("mine")
    with pytest.raises(ConfigMismatchError, match="manifest.json: .*manifest.*--overwrite"):
        FeatureStoreWriter(tmp_path, {"x": 1}, META)
    assert (tmp_path / "manifest.json").read_text() == manifest
    assert (tmp_path / "subjects" / "user.txt").read_text() == "mine"
    FeatureStoreWriter(tmp_path, {"x": 1}, META, overwrite=True)  # replaces the manifest, keeps other files
    assert (tmp_path / "subjects" / "user.txt").read_text() == "mine"


@pytest.mark.parametrize("junk", ["{not json", "[]", '{"format": "other"}'])
def test_overwrite_works_whatever_the_folder_holds(tmp_path, junk):
    writer = FeatureStoreWriter(tmp_path, {"x": 1}, META)
    writer.write_subject(subject("P01", 3))
    (tmp_path / "manifest.json").write_text(junk)
    (tmp_path / "subjects" / ".P02.h5.abc.tmp").write_bytes(b"half")
    fresh = FeatureStoreWriter(tmp_path, {"x": 2}, META, overwrite=True)
    assert fresh.manifest["subjects"] == {} and list((tmp_path / "subjects").iterdir()) == []


def test_a_complete_store_is_not_rewritten(tmp_path):
    writer = FeatureStoreWriter(tmp_path, {"x": 1, "bands": (1, 2)}, META)
    writer.write_subject(subject("P01", 3))
    before = (tmp_path / "manifest.json").stat().st_mtime_ns
    again = FeatureStoreWriter(tmp_path, {"x": 1, "bands": (1, 2)}, META)
    assert again.is_done("P01")
    assert (tmp_path / "manifest.json").stat().st_mtime_ns == before


def _rewrite(h5_path, key, values):
    import h5py

    with h5py.File(h5_path, "a") as h5:
        del h5[key]
        h5.create_dataset(key, data=values)


@pytest.mark.parametrize("key, values, message", [
    ("eeg", np.zeros((2, 4, 14, 10), np.float32), "'eeg' has shape"),
    ("ecg", np.zeros((3, 1, 16), np.float32), "'ecg' has shape"),
    ("eeg", np.full((3, 4, 14, 10), np.nan, np.float32), "not finite"),
    ("labels/arousal", np.array([0, 1, 7], np.int8), "other than 0 and 1"),
])
def test_a_store_that_does_not_line_up_is_one_error(tmp_path, key, values, message):
    """The hashes pass (the manifest is made to agree); the shapes and values are still checked."""
    from maan.preprocessing.store import _sha256

    writer = FeatureStoreWriter(tmp_path, {"x": 1}, META)
    writer.write_subject(subject("P01", 3))
    h5 = tmp_path / "subjects" / "P01.h5"
    _rewrite(h5, key, values)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["subjects"]["P01"].update(size=h5.stat().st_size, sha256=_sha256(h5))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidInputError, match=f"manifest.json: subjects/P01.h5: .*{message}.*rebuild the store"):
        load_features(tmp_path)
    # a rerun rebuilds the store (with a warning), never the same error again
    assert FeatureStoreWriter(tmp_path, {"x": 1}, META).manifest["subjects"] == {}


@pytest.mark.parametrize("change, message", [
    ({"subjects": []}, "'subjects' is not a table"),
    ({"subjects": {"P01": {"file": "../../etc/passwd", "windows": 1}}}, "no file inside subjects/"),
    ({"subjects": {"P01": {"file": "subjects/P01.h5", "windows": -1}}}, "no window count"),
    ({"targets": "arousal"}, "'targets' is not a list"),
    ({"format_version": 99}, "format version 99 is not supported"),
    ({"format_version": None}, "format version None is not supported"),
])
def test_a_malformed_manifest_is_one_error_naming_it(tmp_path, change, message):
    writer = FeatureStoreWriter(tmp_path, {"x": 1}, META)
    writer.write_subject(subject("P01", 3))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest.update(change)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidInputError, match=f"manifest.json: .*{message}"):
        load_features(tmp_path)
