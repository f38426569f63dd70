"""The load-test generator (loadtest/generate.py) and the floor's replies.

Covers: determinism by seed; the cluster file loads as `kubectl get nodes,pods -A -o yaml`
output with the counts asked; every payload is a different pod; candidate windows rotate;
bodies have kube-scheduler's recorded top-level shape; bind bodies and pending pods match the
bodies; the byte index k6 reads by; the floor answers the recorded requests in the reply shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from app.wire.quantity import quantity_to_int
from loadtest import floor
from loadtest import generate as g

FIXTURES = Path(__file__).parent / "fixtures" / "kube-scheduler"
NODES, PODS, K = 40, 90, 12


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return g.make_cluster(NODES, PODS, seed=7)


def _payloads(cluster: dict[str, Any], mode: str = "names", **kw: Any) -> g.Payloads:
    args: dict[str, Any] = {"mode": mode, "candidates": K, "count": 30, "seed": 3, **kw}
    return g.make_payloads(cluster, **args)


def _recorded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def test_the_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    for run in ("a", "b"):
        c = g.make_cluster(NODES, PODS, seed=7)
        g.write_cluster(c, tmp_path / run / "cluster.yaml")
        g.write_payloads(_payloads(c), tmp_path / run / "payloads")
    for rel in [
        "cluster.yaml",
        *(f"payloads/{f}" for f in sorted(p.name for p in (tmp_path / "a" / "payloads").iterdir())),
    ]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_another_seed_gives_another_cluster_and_other_pods(cluster: dict[str, Any]) -> None:
    other = g.make_cluster(NODES, PODS, seed=8)
    assert msgspec.json.encode(other) != msgspec.json.encode(cluster)
    a, b = _payloads(cluster, seed=3), _payloads(cluster, seed=4)
    assert {p["metadata"]["uid"] for p in a.pods}.isdisjoint(p["metadata"]["uid"] for p in b.pods)


def test_the_cluster_file_loads_like_kubectl_output_with_the_counts_asked(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "cluster.yaml"
    g.write_cluster(cluster, path)
    doc = yaml.safe_load(path.read_text())
    assert doc["kind"] == "List" and doc["apiVersion"] == "v1"
    kinds = [(i["apiVersion"], i["kind"]) for i in doc["items"]]
    assert kinds.count(("v1", "Node")) == NODES
    assert kinds.count(("v1", "Pod")) == PODS
    assert g.load_cluster(path) == doc
    node = g.cluster_nodes(doc)[0]
    assert {"name", "uid", "resourceVersion", "labels"} <= set(node["metadata"])
    for q in (*node["status"]["allocatable"].values(), *node["status"]["capacity"].values()):
        assert isinstance(q, str)
    names = {n["metadata"]["name"] for n in g.cluster_nodes(doc)}
    for pod in g.cluster_pods(doc):
        assert pod["spec"]["nodeName"] in names
        assert pod["status"]["phase"] == "Running"


def test_the_cluster_mixes_gpu_types_pools_and_spot_nodes() -> None:
    nodes = g.cluster_nodes(g.make_cluster(400, 10, seed=1))
    labels = [n["metadata"]["labels"] for n in nodes]
    products = {lab.get(g.GFD_PRODUCT_LABEL) for lab in labels} - {None}
    assert products == {"Tesla-T4", "NVIDIA-A10G", "NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3"}
    assert any(g.P + "gpu-type" in lab for lab in labels)
    assert any(lab.get("karpenter.sh/capacity-type") == "spot" for lab in labels)
    assert {lab[g.P + "pool"] for lab in labels} >= {"default", "batch", "web", "gpu"}
    assert any(lab.get(g.P + "pool-only") == "true" for lab in labels)
    assert all(g.P + "pool-priority" in lab for lab in labels)
    assert sum(1 for n in nodes if g.GPU in n["status"]["allocatable"]) > 40


def test_running_pods_fill_nodes_partially_never_beyond_allocatable(
    cluster: dict[str, Any],
) -> None:
    used: dict[str, list[int]] = {}
    for pod in g.cluster_pods(cluster):
        u = used.setdefault(pod["spec"]["nodeName"], [0, 0, 0])
        for i, v in enumerate(g._pod_requests(pod)):
            u[i] += v
    for node in g.cluster_nodes(cluster):
        a = node["status"]["allocatable"]
        cpu, mem, gpu = used.get(node["metadata"]["name"], [0, 0, 0])
        assert cpu <= quantity_to_int("cpu", a["cpu"])
        assert mem <= quantity_to_int("memory", a["memory"])
        assert gpu <= quantity_to_int(g.GPU, a.get(g.GPU, "0"))


def test_every_payload_is_a_different_pod(cluster: dict[str, Any]) -> None:
    pl = _payloads(cluster)
    metas = [p["metadata"] for p in pl.pods]
    for key in ("name", "uid"):
        assert len({m[key] for m in metas}) == len(metas)
    cids = [m["annotations"][g.P + "container-id"] for m in metas]
    assert len(set(cids)) == len(cids)
    running = {p["metadata"]["name"] for p in g.cluster_pods(cluster)}
    assert running.isdisjoint(m["name"] for m in metas)
    assert len(set(pl.bodies)) == len(pl.bodies)


def test_payload_pods_vary_in_kind_and_annotations(cluster: dict[str, Any]) -> None:
    pods = _payloads(cluster, count=200).pods
    anns = [p["metadata"]["annotations"] for p in pods]
    gpus = [g._pod_requests(p)[2] for p in pods]
    assert any(gpus) and not all(gpus)
    assert any(g.P + "gpu-types" in a for a in anns)
    assert any(a.get(g.P + "gpu-types") == "any" for a in anns)
    assert any(g.P + "pool" in a for a in anns)
    assert any(a.get(g.P + "preemptible") == "true" for a in anns)
    assert any(g.P + "gpu-memory" in a for a in anns)
    inits = [p["spec"].get("initContainers", []) for p in pods]
    assert any(any(c.get("restartPolicy") == "Always" for c in i) for i in inits)  # sidecar
    assert any(any("restartPolicy" not in c for c in i) for i in inits)  # plain init
    assert {p["status"]["qosClass"] for p in pods} >= {"Burstable", "BestEffort"}


def test_repeat_shapes_makes_replicas_that_are_still_different_pods(
    cluster: dict[str, Any],
) -> None:
    pods = _payloads(cluster, count=60, repeat_shapes=0.8).pods
    cids = [p["metadata"]["annotations"][g.P + "container-id"] for p in pods]
    assert len(set(cids)) < len(cids)
    assert len({p["metadata"]["uid"] for p in pods}) == len(pods)


def test_candidate_windows_are_contiguous_rotating_and_locally_shuffled(
    cluster: dict[str, Any],
) -> None:
    order = [n["metadata"]["name"] for n in g.cluster_nodes(cluster)]
    pos = {n: i for i, n in enumerate(order)}
    windows = _payloads(cluster).windows
    starts = []
    for w in windows:
        got = {pos[n] for n in w}
        assert len(w) == len(got) == K
        # K consecutive positions of the node list (wrapping), in some nearby order
        start = next(s for s in got if {(s + i) % NODES for i in range(K)} == got)
        starts.append(start)
    assert len(set(starts)) > len(windows) // 2, "the start offset does not rotate"
    assert any(
        [pos[n] for n in w] != [(s + i) % NODES for i in range(K)]
        for w, s in zip(windows, starts, strict=True)
    ), "never shuffled"


def test_names_mode_bodies_have_the_recorded_top_level_shape(cluster: dict[str, Any]) -> None:
    recorded = _recorded("nodecache-filter-cpu-worker.json")["request"]
    for body, win in zip(_payloads(cluster).bodies, _payloads(cluster).windows, strict=True):
        args = json.loads(body)
        assert list(args) == list(recorded) == ["Pod", "Nodes", "NodeNames"]
        assert args["Nodes"] is None
        assert args["NodeNames"] == win
        _assert_pod_like_recorded(args["Pod"], recorded["Pod"])


def test_full_mode_bodies_embed_v1_nodes_with_managed_fields(cluster: dict[str, Any]) -> None:
    recorded = _recorded("fullnodes-filter-cpu-worker.json")["request"]
    pl = _payloads(cluster, mode="full", count=5)
    for body, win in zip(pl.bodies, pl.windows, strict=True):
        args = json.loads(body)
        assert list(args) == list(recorded)
        assert args["NodeNames"] is None
        assert list(args["Nodes"]) == ["metadata", "items"] and args["Nodes"]["metadata"] == {}
        items = args["Nodes"]["items"]
        assert [i["metadata"]["name"] for i in items] == win
        rec_node = recorded["Nodes"]["items"][0]
        for item in items:
            assert set(item) == set(rec_node) == {"metadata", "spec", "status"}
            assert list(item["metadata"])[:4] == [
                "name",
                "uid",
                "resourceVersion",
                "creationTimestamp",
            ]
            assert item["metadata"]["managedFields"]
            assert 2000 < len(json.dumps(item, separators=(",", ":"))) < 6000


def _assert_pod_like_recorded(pod: dict[str, Any], recorded: dict[str, Any]) -> None:
    assert list(pod) == list(recorded) == ["metadata", "spec", "status"]
    assert list(pod["metadata"]) == list(recorded["metadata"])  # Go field order
    assert "nodeName" not in pod["spec"]
    assert pod["status"]["phase"] == "Pending"
    optional = {"initContainers"}
    assert set(pod["spec"]) - optional == set(recorded["spec"]) - optional
    for c in pod["spec"]["containers"]:
        assert set(c) == set(recorded["spec"]["containers"][0])
    applied = json.loads(pod["metadata"]["annotations"][g.LAST_APPLIED])
    assert applied["metadata"]["name"] == pod["metadata"]["name"]


def test_payload_directory_holds_bind_bodies_pending_pods_and_a_byte_index(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    pl = _payloads(cluster)
    out = g.write_payloads(pl, tmp_path / "p")
    data = (out / "filter.jsonl").read_bytes()
    index = json.loads((out / "filter.idx.json").read_text())
    assert [data[o : o + n] for o, n in index] == pl.bodies
    binds = [json.loads(x) for x in (out / "bind.jsonl").read_text().splitlines()]
    rec = _recorded("nodecache-bind-cpu-worker.json")["request"]
    pending = json.loads((out / "pending.json").read_text())
    assert pending["kind"] == "List" and len(pending["items"]) == len(binds) == 30
    for b, pod, win in zip(binds, pending["items"], pl.windows, strict=True):
        assert list(b) == list(rec)
        assert (b["PodName"], b["PodNamespace"], b["PodUID"]) == (
            pod["metadata"]["name"],
            pod["metadata"]["namespace"],
            pod["metadata"]["uid"],
        )
        assert b["Node"] in win
        assert pod["kind"] == "Pod" and "nodeName" not in pod["spec"]
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["mode"], meta["candidates"], meta["count"]) == ("names", K, 30)


def test_bodies_file_outputs_are_jsonl_or_a_json_array(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    pl = _payloads(cluster, count=4)
    g.write_payloads(pl, tmp_path / "b.jsonl")
    g.write_payloads(pl, tmp_path / "b.json")
    lines = (tmp_path / "b.jsonl").read_bytes().splitlines()
    assert lines == pl.bodies
    assert json.loads((tmp_path / "b.json").read_text()) == [json.loads(b) for b in pl.bodies]
    assert (tmp_path / "b.idx.json").exists()


def test_asking_for_more_candidates_than_nodes_is_an_error(cluster: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="candidates"):
        _payloads(cluster, candidates=NODES + 1)


@pytest.mark.parametrize("typed", [False, True])
def test_the_floor_answers_recorded_requests_in_the_reply_shapes(
    typed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(floor, "TYPED", typed)
    names = _recorded("nodecache-filter-gpu-worker.json")["request"]
    body = json.dumps(names).encode()
    reply = json.loads(floor.filter_reply(body))
    assert reply == {
        "NodeNames": names["NodeNames"],
        "FailedNodes": {},
        "FailedAndUnresolvableNodes": {},
        "Error": "",
    }
    assert json.loads(floor.prioritize_reply(body)) == [
        {"Host": n, "Score": 0} for n in names["NodeNames"]
    ]
    full = _recorded("fullnodes-filter-gpu-worker.json")["request"]
    body = json.dumps(full).encode()
    reply = json.loads(floor.filter_reply(body))
    assert reply["NodeNames"] is None and reply["Error"] == ""
    assert reply["Nodes"]["items"] == full["Nodes"]["items"]
    hosts = [h["Host"] for h in json.loads(floor.prioritize_reply(body))]
    assert hosts == [n["metadata"]["name"] for n in full["Nodes"]["items"]]
    bind = _recorded("nodecache-bind-gpu-worker.json")["request"]
    assert json.loads(floor.bind_reply(json.dumps(bind).encode())) == {"Error": ""}


@pytest.mark.parametrize("pod_kind", ["cpu", "gpu"])
def test_a_pod_kind_makes_every_payload_pod_of_that_kind(
    cluster: dict[str, Any], pod_kind: str
) -> None:
    pods = _payloads(cluster, count=60, pod_kind=pod_kind).pods
    gpus = [g._pod_requests(p)[2] for p in pods]
    if pod_kind == "gpu":
        assert all(gpus)
    else:
        assert not any(gpus)
        assert all(p["status"]["qosClass"] != "BestEffort" for p in pods)
        assert all(g.P + "gpu-types" not in p["metadata"]["annotations"] for p in pods)


def test_an_unknown_pod_kind_is_refused_by_name(cluster: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="pod_kind must be one of mixed, cpu, gpu"):
        _payloads(cluster, pod_kind="tpu")
