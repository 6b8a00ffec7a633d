"""Versions recorded with stores, checkpoints and results."""
from __future__ import annotations

from importlib import metadata

import pytest

import maan
from maan.preprocessing import io as versions


def test_installed_packages_are_recorded_and_missing_ones_left_out():
    out = versions.package_versions(["numpy", "no-such-package-maan-test"])
    assert out["numpy"] == metadata.version("numpy") and "python" in out
    assert "no-such-package-maan-test" not in out


def test_maan_run_from_a_source_checkout_still_records_its_version(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(versions.metadata, "version", not_installed)
    assert versions.package_versions(["maan", "torch"]) == {"python": versions.platform.python_version(),
                                                             "maan": maan.__version__}


def test_write_errors_name_the_destination_in_one_line(tmp_path, monkeypatch, capsys):
    """A full disk while a temporary file is written: the error names the user's path (not the
    temporary name, not an HDF5 dump), in one line, exit 2, and no temporary file is left."""
    import errno
    import os

    from maan.cli import main
    from maan.preprocessing import io

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        io.atomic_write_json(tmp_path / "m.json", {"x": 1})
    assert info.value.filename == str(tmp_path / "m.json") and info.value.strerror == "No space left on device"
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    hdf5_like = OSError("Can't synchronously write data (file write failed: time = now\n, filename = "
                        "'/x/.P01.h5.abc.tmp', errno = 28, error message = 'No space left on device')")
    with pytest.raises(OSError) as info:
        with io.writing(tmp_path / "P01.h5"):
            raise hdf5_like
    assert info.value.filename == str(tmp_path / "P01.h5") and info.value.strerror == "No space left on device"

    def failing(args):
        raise OSError("first line of a library's message\nsecond line")

    monkeypatch.setattr("maan.cli.data.cmd_preprocess", failing)
    code = main(["preprocess", "--dataset", "amigos", "--data", str(tmp_path), "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 2 and err == "maan preprocess: error: first line of a library's message\n"
