"""A small kube-apiserver stand-in for tests: HTTP on 127.0.0.1, driven by the real kubernetes
client, answering as the real kube-apiserver recorded in tests/fixtures/kube-apiserver/ does.

It is kept for what only it can do: fault injection (a status or a hang on the next matching
call), paused and resumed watches, compaction on demand. It is slow (70–135 ms a call at 30 in
flight, where the real API server answers a Binding in ~17 ms): behaviour through a real
kube-scheduler and every figure of record come from the real control plane (tests/controlplane,
tests/e2e, ``make bench-cluster``, ``make bench-bind`` with ``KUBEBUILDER_ASSETS``).

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
