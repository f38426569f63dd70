"""The fault suite runs on the e2e control plane (tests/e2e/conftest.py) and skips, or fails
under ``CI=true``, the same way when ``KUBEBUILDER_ASSETS`` is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import (  # noqa: F401  (fixtures and the log-keeping hook, re-used)
    control_plane,
    pytest_runtest_makereport,
    scenario,
    skip_without_assets,
)

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip_without_assets(items, HERE)
