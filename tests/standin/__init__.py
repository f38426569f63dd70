"""A small kube-apiserver stand-in for tests: HTTP on 127.0.0.1, driven by the real kubernetes
client, answering as the real kube-apiserver recorded in tests/fixtures/kube-apiserver/ does.

    from tests.standin import ApiServerStandIn

    with ApiServerStandIn() as api:
        api.load_fixture_lists()
        v1 = kubernetes.client.CoreV1Api(api.api_client())
"""

from tests.standin.server import (
    DEFAULT_WATCH_TIMEOUT_SECONDS,
    FIXTURES_DIR,
    ApiServerStandIn,
    Event,
    RecordedRequest,
    make_api_client,
)

__all__ = [
    "DEFAULT_WATCH_TIMEOUT_SECONDS",
    "FIXTURES_DIR",
    "ApiServerStandIn",
    "Event",
    "RecordedRequest",
    "make_api_client",
]
