"""Shared test fixtures: paths to the real recordings in ../shared/data (skipped when absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(*parts: str) -> Path:
    """A file in ../shared/data, or a clean skip saying what is missing (as on a user's clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real recording {path} is not present (../shared/data ships with the project's CI only)")
    return path
