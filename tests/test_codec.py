"""Decoding kube-scheduler bodies: Go field names, case-insensitive keys, clear 400s."""

import json

import pytest

from app.wire.codec import BadRequest, decode_binding_args, decode_extender_args
from tests.builders import recorded


def test_decodes_recorded_names_mode_request() -> None:
    args = decode_extender_args(
        json.dumps(recorded("nodecache-filter-cpu-worker")["request"]).encode()
    )
    assert args.Pod is not None and args.Pod.metadata.name == "cpu-worker-1"
    assert args.Nodes is None
    assert args.NodeNames == ["cpu-a", "cpu-b", "gpu-a10g-1", "gpu-t4-1", "gpu-h100-1"]


def test_decodes_recorded_full_nodes_request_keeping_items_raw() -> None:
    request = recorded("fullnodes-filter-gpu-worker")["request"]
    args = decode_extender_args(json.dumps(request).encode())
    assert args.NodeNames is None
    assert args.Nodes is not None and args.Nodes.items is not None
    assert [json.loads(bytes(raw)) for raw in args.Nodes.items] == request["Nodes"]["items"]


def test_keys_match_case_insensitively_like_go() -> None:
    args = decode_extender_args(b'{"pod": {"metadata": {"name": "p"}}, "nodenames": ["a", "b"]}')
    assert args.Pod is not None and args.Pod.metadata.name == "p"
    assert args.NodeNames == ["a", "b"]
    binding = decode_binding_args(
        b'{"podname": "p", "PODNAMESPACE": "ns", "poduid": "u", "node": "n"}'
    )
    assert (binding.PodName, binding.PodNamespace, binding.PodUID, binding.Node) == (
        "p",
        "ns",
        "u",
        "n",
    )


def test_exact_spelling_wins_over_other_case() -> None:
    args = decode_extender_args(b'{"nodenames": ["x"], "NodeNames": ["a"], "Pod": {}}')
    assert args.NodeNames == ["a"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{}", "no Pod"),
        (b'{"Pod": null, "NodeNames": []}', "no Pod"),
        (b'{"Pod": 5}', "does not match ExtenderArgs"),
        (b'{"Pod": {}, "NodeNames": [1]}', "NodeNames"),
    ],
)
def test_bad_bodies_are_bad_requests_with_a_message(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        decode_extender_args(body)


def test_bind_without_node_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="Node"):
        decode_binding_args(b'{"PodName": "p", "PodNamespace": "ns"}')
