"""pytest fixtures for the kube-apiserver stand-in.

tests/conftest.py belongs to the project, so these live here. Enable them with, in conftest.py:

    pytest_plugins = ["tests.standin.fixtures"]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes.client import CoreV1Api

from tests.standin import ApiServerStandIn


@pytest.fixture
def apiserver() -> Iterator[ApiServerStandIn]:
    """A started, empty kube-apiserver stand-in; stopped after the test."""
    with ApiServerStandIn() as api:
        yield api


@pytest.fixture
def recorded_apiserver(apiserver: ApiServerStandIn) -> ApiServerStandIn:
    """The stand-in seeded with the recorded lists (resourceVersion 256)."""
    apiserver.load_fixture_lists()
    return apiserver


@pytest.fixture
def core_v1(apiserver: ApiServerStandIn) -> Iterator[CoreV1Api]:
    """A CoreV1Api of the real kubernetes client, pointed at ``apiserver``."""
    with apiserver.api_client() as client:
        yield CoreV1Api(client)
