"""The snapshot: incremental updates, reservation accounting, and the file source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
import yaml

from app.config import load_settings
from app.state.file_source import SnapshotFileError, load_snapshot
from app.state.ledger import NodeLedger, Reservation, format_ledger, parse_ledger
from app.state.records import node_facts, pod_facts
from app.state.snapshot import NodeParsing, Snapshot
from app.wire.types import Node, Pod
from tests.builders import FIXTURES, lease, node, pod, snapshot_of

CPU, MEMORY, STORAGE, PODS, GPU = range(5)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def facts(obj: dict[str, Any], snapshot: Snapshot) -> Any:
    parsing = snapshot.parsing
    if obj["kind"] == "Node":
        return node_facts(
            msgspec.convert(obj, Node), parsing.keys, parsing.gpu_resource, parsing.gpu_aliases
        )
    return pod_facts(msgspec.convert(obj, Pod))


def ledger(node_name: str, *entries: tuple[str, dict[str, int], float]) -> dict[str, Any]:
    """The node's ledger Lease holding ``entries`` (pod uid, requests, expiry)."""
    return lease(
        node_name,
        [
            Reservation(uid, f"default/{uid}", tuple(sorted(r.items())), exp)
            for uid, r, exp in entries
        ],
    )


def test_pod_add_modify_delete_update_only_their_node() -> None:
    snapshot = snapshot_of([node("a", cpu="8"), node("b", cpu="8")])
    version = snapshot.version
    snapshot.set_pod(facts(pod("x", node_name="a", cpu="2", phase="Running"), snapshot))
    assert snapshot.free("a")[CPU] == 6000 and snapshot.free("b")[CPU] == 8000
    assert snapshot.version > version
    snapshot.set_pod(facts(pod("x", node_name="a", cpu="3", phase="Running"), snapshot))
    assert snapshot.free("a")[CPU] == 5000
    snapshot.set_pod(facts(pod("x", node_name="a", cpu="3", phase="Succeeded"), snapshot))
    assert snapshot.free("a")[CPU] == 8000
    snapshot.set_pod(facts(pod("y", node_name="b", cpu="1", phase="Running"), snapshot))
    snapshot.delete_pod("uid-default-y")
    assert snapshot.free("b")[CPU] == 8000 and snapshot.free("b")[PODS] == 110


def test_pod_seen_before_its_node_is_counted_when_the_node_arrives() -> None:
    snapshot = snapshot_of([])
    snapshot.set_pod(facts(pod("x", node_name="late", cpu="2", phase="Running"), snapshot))
    snapshot.set_node(facts(node("late", cpu="4"), snapshot))
    assert snapshot.free("late")[CPU] == 2000


def test_node_delete_and_readd_reuses_rows_and_keeps_pods() -> None:
    snapshot = snapshot_of(
        [node("a"), node("b")], [pod("x", node_name="a", cpu="1", phase="Running")]
    )
    row = snapshot.table.rows["a"]
    snapshot.delete_node("a")
    assert "a" not in snapshot.nodes and not snapshot.table.known[row]
    snapshot.set_node(facts(node("c"), snapshot))
    assert snapshot.table.rows["c"] == row  # reused
    snapshot.set_node(facts(node("a", cpu="4"), snapshot))
    assert snapshot.free("a")[CPU] == 3000


def test_table_grows_past_its_initial_capacity() -> None:
    snapshot = snapshot_of([node(f"n{i}", cpu=str(i + 1)) for i in range(300)])
    assert snapshot.free("n299")[CPU] == 300_000
    assert snapshot.free("n0")[CPU] == 1000


def test_live_reservation_counts_until_its_pod_is_seen_bound() -> None:
    clock = Clock()
    held = ledger("a", ("pod-1", {"cpu": 3000, "pods": 1}, clock.now + 60))
    snapshot = snapshot_of([node("a", cpu="8")], clock=clock, leases=[held])
    assert snapshot.free("a")[CPU] == 5000
    snapshot.set_pod(
        facts(pod("p1", uid="pod-1", node_name="a", cpu="3", phase="Pending"), snapshot)
    )
    assert snapshot.free("a")[CPU] == 5000  # now counted as the pod, not twice
    assert snapshot.free("a")[PODS] == 109
    snapshot.set_pod(facts(pod("p1", uid="pod-1", cpu="3", phase="Pending"), snapshot))
    assert snapshot.free("a")[CPU] == 5000  # unbound again: the unexpired entry holds once more


def test_a_deleted_pods_reservation_holds_nothing() -> None:
    """A deleted pod can never be bound (a Binding carries its UID): its unexpired ledger entry
    frees its capacity at once instead of at expiry."""
    clock = Clock()
    held = ledger("a", ("pod-1", {"cpu": 3000, "pods": 1}, clock.now + 60))
    snapshot = snapshot_of([node("a", cpu="8")], clock=clock, leases=[held])
    snapshot.set_pod(facts(pod("p1", uid="pod-1", cpu="3", phase="Pending"), snapshot))
    assert snapshot.free("a")[CPU] == 5000
    snapshot.delete_pod("pod-1")
    assert snapshot.free("a")[CPU] == 8000
    assert snapshot.accounted("pod-1")


def test_expired_reservations_stop_counting() -> None:
    clock = Clock()
    held = ledger(
        "a", ("old", {"cpu": 1000}, clock.now + 5), ("new", {"cpu": 2000}, clock.now + 60)
    )
    snapshot = snapshot_of([node("a", cpu="8")], clock=clock, leases=[held])
    assert snapshot.free("a")[CPU] == 5000
    clock.now += 10
    snapshot.refresh()
    assert snapshot.free("a")[CPU] == 6000
    clock.now += 100
    snapshot.refresh()
    assert snapshot.free("a")[CPU] == 8000


def test_unreadable_ledger_is_a_node_problem_until_it_is_readable_again() -> None:
    snapshot = snapshot_of([node("a")], leases=[lease("a", text="{broken")])
    assert snapshot.nodes["a"].problems and not snapshot.table.valid[snapshot.table.rows["a"]]
    snapshot.set_ledger(NodeLedger("a", "2"))
    assert not snapshot.nodes["a"].problems and snapshot.table.valid[snapshot.table.rows["a"]]


def test_a_ledger_arriving_before_its_node_counts_once_the_node_does() -> None:
    clock = Clock()
    snapshot = snapshot_of(
        [], clock=clock, leases=[ledger("a", ("p", {"cpu": 3000}, clock.now + 60))]
    )
    snapshot.set_node(facts(node("a", cpu="8"), snapshot))
    assert snapshot.free("a")[CPU] == 5000
    snapshot.delete_ledger("a")
    assert snapshot.free("a")[CPU] == 8000


def test_ledger_round_trips() -> None:
    entries = (Reservation("u1", "ns/p", (("cpu", 1500), ("nvidia.com/gpu", 1)), 1234.5),)
    assert parse_ledger(format_ledger(entries)) == entries
    assert parse_ledger(None) == () and parse_ledger("") == ()


def test_replace_nodes_and_pods_drops_the_missing_ones() -> None:
    snapshot = snapshot_of(
        [node("a"), node("b")], [pod("x", node_name="a", cpu="1", phase="Running")]
    )
    snapshot.replace_nodes([facts(node("b"), snapshot), facts(node("c"), snapshot)])
    assert sorted(snapshot.nodes) == ["b", "c"]
    snapshot.replace_pods([])
    assert not snapshot.pods


def load(path: Path) -> Snapshot:
    snapshot = Snapshot(NodeParsing.from_settings(load_settings()))
    load_snapshot(path, snapshot)
    return snapshot


def test_loads_kubectl_list_output(tmp_path: Path) -> None:
    nodes = json.loads((FIXTURES / "kube-apiserver" / "list-nodes.json").read_text())
    pods = json.loads((FIXTURES / "kube-apiserver" / "list-pods.json").read_text())
    items = [{"kind": "Node", "apiVersion": "v1", **n} for n in nodes["items"]]
    items += [{"kind": "Pod", "apiVersion": "v1", **p} for p in pods["items"]]
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    snapshot = load(path)
    assert sorted(snapshot.nodes) == ["cpu-a", "cpu-b", "gpu-a10g-1", "gpu-h100-1", "gpu-t4-1"]
    assert len(snapshot.pods) == 6
    assert snapshot.nodes["gpu-h100-1"].gpu_type == "H100"
    assert snapshot.nodes["cpu-b"].preemptible


def test_loads_typed_lists_and_multiple_documents(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    node_list = {"kind": "NodeList", "items": [{k: v for k, v in node("a").items() if k != "kind"}]}
    path.write_text(
        yaml.safe_dump(node_list) + "---\n" + yaml.safe_dump(pod("x", node_name="a", cpu="1"))
    )
    snapshot = load(path)
    assert list(snapshot.nodes) == ["a"] and len(snapshot.pods) == 1


def test_json_files_take_the_fast_path_and_give_the_same_snapshot(tmp_path: Path) -> None:
    demo = Path(__file__).parent.parent / "examples" / "demo-cluster.yaml"
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(yaml.safe_load(demo.read_text())))
    from_json, from_yaml = load(path), load(demo)
    assert from_json.nodes == from_yaml.nodes and from_json.pods == from_yaml.pods
    path.write_text("{broken")
    with pytest.raises(SnapshotFileError, match="cannot read snapshot"):
        load(path)


def test_demo_cluster_loads() -> None:
    snapshot = load(Path(__file__).parent.parent / "examples" / "demo-cluster.yaml")
    assert len(snapshot.nodes) >= 20
    assert {f.gpu_type for f in snapshot.nodes.values()} >= {"T4", "A10G", "A100-80", "H100"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [unclosed", "cannot read snapshot"),
        ("kind: List\nitems: []\n", "holds no Node objects"),
        (
            yaml.safe_dump(node("a")) + "---\n" + yaml.safe_dump(pod("x", cpu="lots")),
            "Pod x.*'lots'",
        ),
    ],
)
def test_bad_snapshot_files_give_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(SnapshotFileError, match=message):
        load(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotFileError, match="cannot read snapshot"):
        load(tmp_path / "nope.yaml")


def test_free_is_allocatable_minus_usage_minus_reservations() -> None:
    clock = Clock()
    snapshot = snapshot_of(
        [node("g", gpus=4)],
        [pod("x", node_name="g", gpus=2, phase="Running")],
        clock=clock,
        leases=[ledger("g", ("r", {"nvidia.com/gpu": 1}, clock.now + 60))],
    )
    assert snapshot.free("g")[GPU] == 1
    assert np.array_equal(snapshot.usage("g"), snapshot.table.used[:, snapshot.table.rows["g"]])


def test_a_fork_changes_without_touching_the_original() -> None:
    clock = Clock()
    original = snapshot_of(
        [node("g", gpus=4), node("c")],
        [pod("x", node_name="g", gpus=2, phase="Running"), pod("r", uid="r")],
        clock=clock,
        leases=[ledger("g", ("r", {"nvidia.com/gpu": 1}, clock.now + 60))],
    )
    version, free_g, free_c = original.version, original.free("g"), original.free("c")
    fork = original.fork()
    fork.set_pod(pod_facts(msgspec.convert(pod("y", node_name="c", cpu="3"), Pod)))
    fork.set_pod(pod_facts(msgspec.convert(pod("r", uid="r", node_name="g", gpus=1), Pod)))
    fork.delete_pod("uid-default-x")
    fork.delete_node("c")
    assert fork.free("g")[GPU] == 3 and "c" not in fork.nodes and fork.is_bound("r")
    assert fork.is_gone("uid-default-x")
    assert original.version == version and set(original.nodes) == {"g", "c"}
    assert np.array_equal(original.free("g"), free_g) and original.free("g")[GPU] == 1
    assert np.array_equal(original.free("c"), free_c)
    assert not original.is_bound("r") and not original.is_gone("uid-default-x")
    assert original.pod_named("default", "y") is None
