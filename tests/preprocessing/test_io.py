"""Versions recorded with stores, checkpoints and results."""
from __future__ import annotations

from importlib import metadata

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
