"""Fixtures of the unit tests that run a tool from the lab host's packages."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: ./lab up installs it (Debian package prometheus)")
    return path
