"""The fault suite runs on the e2e control plane (tests/e2e/conftest.py) and skips, or fails
under ``CI=true``, the same way when ``KUBEBUILDER_ASSETS`` is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.conftest import (  # noqa: F401  (fixtures and the log-keeping hook, re-used)
    ASSETS,
    SKIP_REASON,
    control_plane,
    pytest_runtest_makereport,
    scenario,
)

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if ASSETS is not None or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(skip)
