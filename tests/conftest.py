"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.standin import ApiServerStandIn


@pytest.fixture
def apiserver() -> Iterator[ApiServerStandIn]:
    """A started, empty kube-apiserver stand-in; stopped after the test."""
    with ApiServerStandIn() as api:
        yield api
