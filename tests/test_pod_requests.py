"""Pod requests follow component-helpers' PodRequests."""

from typing import Any

import msgspec
import pytest

from app.wire.quantity import QuantityError
from app.wire.requests import pod_requests
from app.wire.types import Pod
from tests.builders import recorded


def requests_of(spec: dict[str, Any]) -> dict[str, int]:
    return pod_requests(msgspec.convert({"spec": spec}, Pod))


def container(
    name: str, restart: str | None = None, limits: Any = None, **requests: str
) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "resources": {"requests": requests}}
    if limits:
        c["resources"]["limits"] = limits
    if restart:
        c["restartPolicy"] = restart
    return c


def test_recorded_cpu_worker_takes_init_peak_and_sidecar() -> None:
    pod = msgspec.convert(recorded("nodecache-filter-cpu-worker")["request"]["Pod"], Pod)
    # containers 500m + sidecar 250m = 750m < init "fetch" 2 cpu; memory 512Mi+128Mi < 1Gi
    assert pod_requests(pod) == {"cpu": 2000, "memory": 2**30, "pods": 1}


def test_recorded_gpu_worker_and_best_effort() -> None:
    gpu = msgspec.convert(recorded("nodecache-filter-gpu-worker")["request"]["Pod"], Pod)
    assert pod_requests(gpu) == {"cpu": 4000, "memory": 16 * 2**30, "nvidia.com/gpu": 1, "pods": 1}
    idle = msgspec.convert(recorded("nodecache-filter-best-effort")["request"]["Pod"], Pod)
    assert pod_requests(idle) == {"pods": 1}


def test_containers_are_summed() -> None:
    spec = {"containers": [container("a", cpu="1"), container("b", cpu="500m", memory="1Gi")]}
    assert requests_of(spec) == {"cpu": 1500, "memory": 2**30, "pods": 1}


def test_sidecars_add_to_containers_and_to_later_init_containers() -> None:
    spec = {
        "initContainers": [
            container("sidecar", restart="Always", cpu="1"),
            container("migrate", cpu="3"),  # runs beside the sidecar: 4 at peak
        ],
        "containers": [container("main", cpu="2")],
    }
    assert requests_of(spec)["cpu"] == 4000  # max(2 + 1, 3 + 1)


def test_init_container_before_sidecar_does_not_count_it() -> None:
    spec = {
        "initContainers": [
            container("fetch", cpu="3"),
            container("sidecar", restart="Always", cpu="1"),
        ],
        "containers": [container("main", cpu="1")],
    }
    assert requests_of(spec)["cpu"] == 3000  # max(1 + 1, 3)


def test_overhead_is_added_last() -> None:
    spec = {"containers": [container("a", cpu="1")], "overhead": {"cpu": "250m", "memory": "64Mi"}}
    assert requests_of(spec) == {"cpu": 1250, "memory": 64 * 2**20, "pods": 1}


def test_limit_only_container_requests_its_limit() -> None:
    spec = {"containers": [container("a", limits={"nvidia.com/gpu": "2", "cpu": "1"}, cpu="500m")]}
    assert requests_of(spec) == {"cpu": 500, "nvidia.com/gpu": 2, "pods": 1}


def test_pod_level_resources_replace_the_container_sum() -> None:
    spec = {
        "containers": [container("a", cpu="1"), container("b", cpu="1")],
        "resources": {"requests": {"cpu": "3"}},
    }
    assert requests_of(spec)["cpu"] == 3000


def test_malformed_request_names_the_value() -> None:
    with pytest.raises(QuantityError, match="'lots'"):
        requests_of({"containers": [container("a", cpu="lots")]})
