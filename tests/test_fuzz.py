"""Hostile input: every recorded kube-scheduler request, mutated, gets exactly the answer its
class calls for — never a 5xx, never a hang — and the extender serves normally afterwards.

Each case starts from a recorded call (both modes, all verbs) and applies one mutation whose
class is known from the contract alone (the shape kube-scheduler sends, in ``ARGS``/``BINDING``):

* ``same``  — only what the extender does not read changed (unknown keys added, deleted or of any
  type, top-level keys in another case, duplicated keys, content type): the original reply.
* ``ok``    — a field it reads deleted or renamed in another case below the top: 200, no ``Error``.
* ``bad``   — not the shape kube-scheduler sends (a read field of the wrong type, a required field
  missing, not JSON: truncated, empty, NaN/Infinity, nested 100,000 deep, invalid UTF-8 or escape
  in a read string, a number out of range, not an object): 400 with ``Error``.
* ``pod``   — a pod that cannot be placed as written (bad annotation or quantity): filter 200 with
  ``Error``, prioritize 422.
* ``large`` — over ``server.max_body_bytes``: 413.

The cases run against one live extender (the API-server stand-in serving the recorded lists).
``make fuzz`` runs many more (hypothesis profile ``fuzz``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.api.server import create_app
from app.state.ledger import Reservation
from tests.builders import FIXTURES, GPU, P, lease, node, pod
from tests.live import live_runtime
from tests.standin import ApiServerStandIn

LIMIT = 1024 * 1024  # server.max_body_bytes for these cases
HUGE = 256 * 1024  # a huge string, still well under the limit
DEEP = 100_000
CASES = {"filter": 2200, "prioritize": 2200, "bind": 800, "preempt": 1000}  # per `make test`: 6,200

# ---- the shape kube-scheduler sends, as far as the extender reads it ------------------------


@dataclass(frozen=True)
class Shape:
    """A JSON value the extender reads: ``obj`` (named fields), ``map`` (any key → ``item``),
    ``list`` (of ``item``), ``str``, or ``qty`` (a quantity: string or number)."""

    kind: str
    nullable: bool = False
    fields: dict[str, Shape] = field(default_factory=dict)
    item: Shape | None = None


def obj(nullable: bool = False, **fields: Shape) -> Shape:
    return Shape("obj", nullable, fields)


STR, STR_OR_NULL, QTY, INT = Shape("str"), Shape("str", True), Shape("qty"), Shape("int")
QUANTITIES = Shape("map", True, item=QTY)
RESOURCES = obj(True, requests=QUANTITIES, limits=QUANTITIES)
CONTAINER = obj(name=STR, resources=RESOURCES, restartPolicy=STR_OR_NULL)
CONTAINERS = Shape("list", item=CONTAINER)
META = obj(
    name=STR, namespace=STR, uid=STR, resourceVersion=STR,
    labels=Shape("map", True, item=STR), annotations=Shape("map", True, item=STR),
    deletionTimestamp=STR_OR_NULL,
)  # fmt: skip
POD = obj(
    metadata=META,
    spec=obj(
        containers=CONTAINERS, initContainers=Shape("list", True, item=CONTAINER),
        overhead=QUANTITIES, resources=RESOURCES, nodeName=STR_OR_NULL,
        priority=Shape("int", True),
    ),
    status=obj(phase=STR_OR_NULL, nominatedNodeName=STR_OR_NULL),
)  # fmt: skip
NODE = obj(metadata=META, status=obj(allocatable=QUANTITIES, capacity=QUANTITIES))
ARGS = obj(
    Pod=POD,
    Nodes=obj(True, items=Shape("list", True, item=NODE)),
    NodeNames=Shape("list", True, item=STR),
)
BINDING = obj(PodName=STR, PodNamespace=STR, PodUID=STR, Node=STR)
VICTIM_POD = obj(True, metadata=obj(uid=STR))  # a victim is read for its UID only
PREEMPTION = obj(
    Pod=POD,
    NodeNameToVictims=Shape("map", True, item=obj(
        True, Pods=Shape("list", True, item=VICTIM_POD), NumPDBViolations=INT,
    )),
    NodeNameToMetaVictims=Shape("map", True, item=obj(
        True, Pods=Shape("list", True, item=obj(True, UID=STR)), NumPDBViolations=INT,
    )),
)  # fmt: skip
SHAPES = {"filter": ARGS, "prioritize": ARGS, "bind": BINDING, "preempt": PREEMPTION}
REQUIRED = {
    "filter": {"Pod"}, "prioritize": {"Pod"}, "bind": {"PodName", "PodNamespace", "Node"},
    "preempt": {"Pod"},
}  # fmt: skip

WRONG: dict[str, list[Any]] = {
    "obj": [0, "x", True, []],
    "map": [0, "x", False, [{}]],
    "list": [0, "x", True, {}],
    "str": [0, 1.5, True, [], {}],
    "qty": [True, [], {}, None],
    "int": ["1", 1.5, True, [], {}],
}

Path_ = tuple[str | int, ...]


def walk(
    value: Any, shape: Shape | None, path: Path_ = ()
) -> Iterator[tuple[Path_, Any, Shape | None]]:
    """Every value in ``value`` with its path and the shape the extender reads it as (None:
    not read)."""
    yield path, value, shape
    if isinstance(value, dict):
        for key, child in value.items():
            sub = None
            if shape is not None and shape.kind == "obj":
                sub = shape.fields.get(key)
            elif shape is not None and shape.kind == "map":
                sub = shape.item
            yield from walk(child, sub, (*path, key))
    elif isinstance(value, list):
        sub = shape.item if shape is not None and shape.kind == "list" else None
        for i, child in enumerate(value):
            yield from walk(child, sub, (*path, i))


# ---- the recorded calls and their original replies ------------------------------------------


@dataclass
class Recorded:
    name: str
    verb: str
    path: str
    doc: dict[str, Any]
    text: str
    read: list[tuple[Path_, Shape]]  # every non-root value the extender reads
    unread: list[Path_]  # every value it skips
    objects: list[Path_]  # every JSON object (duplicate keys, add unknown ones)
    reply: Any = None


def load(path: Path) -> Recorded:
    call = json.loads(path.read_text())
    doc = call["request"]
    shape = SHAPES[call["verb"]]
    read, unread, objects = [], [], []
    for where, value, sub in walk(doc, shape):
        if isinstance(value, dict) and (sub is None or sub.kind == "obj"):
            objects.append(where)
        if not where:
            continue
        if sub is None:
            unread.append(where)
        else:
            read.append((where, sub))
    return Recorded(
        path.stem, call["verb"], call["path"], doc, json.dumps(doc), read, unread, objects
    )


RECORDED = {r.name: r for r in map(load, sorted((FIXTURES / "kube-scheduler").glob("*-*-*.json")))}
assert {r.verb for r in RECORDED.values()} == set(CASES) and len(RECORDED) == 17


def by_verb(verb: str) -> list[str]:
    return sorted(n for n, r in RECORDED.items() if r.verb == verb)


# ---- building a mutated body ----------------------------------------------------------------

_stamps = itertools.count()


def parent_and_key(doc: Any, path: Path_) -> tuple[Any, str | int]:
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    return parent, path[-1]


class Body:
    """A document being mutated, rendered to bytes with raw splices (what json.dumps cannot
    write: NaN, 1e400, invalid UTF-8, duplicate keys, 100,000 levels)."""

    def __init__(self, text: str) -> None:
        self.doc: Any = json.loads(text)
        self.raw: dict[str, bytes] = {}
        self.extra_bytes = b""
        self.whole: bytes | None = None  # replaces the document altogether

    def put(self, path: Path_, value: Any) -> None:
        if not path:
            self.doc = value
            return
        parent, key = parent_and_key(self.doc, path)
        parent[key] = value

    def splice(self, path: Path_, raw: bytes) -> None:
        token = f"@@raw{len(self.raw)}@@"
        self.raw[token] = raw
        self.put(path, token)

    def delete(self, path: Path_) -> None:
        parent, key = parent_and_key(self.doc, path)
        del parent[key]

    def render(self) -> bytes:
        if self.whole is not None:
            return self.whole
        out = json.dumps(self.doc, ensure_ascii=False).encode()
        for token, raw in self.raw.items():
            out = out.replace(f'"{token}"'.encode(), raw)
        return out + self.extra_bytes


def stamp_pod(body: Body) -> None:
    """A fresh resourceVersion: the extender may reuse a pod it read at the same UID and
    resourceVersion, and a mutated pod is a different pod."""
    pod = body.doc.get("Pod")
    if isinstance(pod, dict):
        pod["metadata"]["resourceVersion"] = (
            f"fuzz-{next(_stamps):012d}"  # one length: draws must not depend on it
        )


def other_case(key: str, flips: list[bool]) -> str:
    letters = [i for i, c in enumerate(key) if c.isalpha()]
    chars = list(key)
    for i, flip in zip(letters, flips):
        if flip:
            chars[i] = chars[i].swapcase()
    if "".join(chars) == key and letters:
        chars[letters[0]] = chars[letters[0]].swapcase()
    return "".join(chars)


def rename(body: Body, path: Path_, new: str) -> None:
    parent, key = parent_and_key(body.doc, path)
    items = [(new if k == key else k, v) for k, v in parent.items()]
    parent.clear()
    parent.update(items)


def duplicate(body: Body, path: Path_, which: int, first: bool) -> bool:
    """Write one key of the object at ``path`` twice (same value). False if it has none."""
    parent = body.doc if not path else parent_and_key(body.doc, path)[0][path[-1]]
    if not parent:
        return False
    keys = list(parent)
    key = keys[which % len(keys)]
    members = [json.dumps(k) + ":" + json.dumps(v, ensure_ascii=False) for k, v in parent.items()]
    again = json.dumps(key) + ":" + json.dumps(parent[key], ensure_ascii=False)
    members.insert(0 if first else len(members), again)
    body.splice(path, ("{" + ",".join(members) + "}").encode())
    return True


BAD_ANNOTATIONS = {
    "gpu-memory": ["lots", "1.5", "-1", "", "1e3", "0x10"],
    "preemptible": ["maybe", "True", "1", "", "yes"],
    "gpu-types": ["", ",", " , ", ",,"],
}
BAD_QUANTITIES = ["two", "1.5.5", "-1", "1Qi", "", "1e", "0x10", "∞", "NaN", "1 Gi", "--1"]
NOT_JSON = [b"NaN", b"Infinity", b"-Infinity", b"nan", b"undefined", b"'x'", b"01"]
SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
ANY_VALUE = st.recursive(
    SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
CONTENT_TYPES = [
    "application/json", "text/plain", None, "application/x-www-form-urlencoded",
    "application/json; charset=latin1",
]  # fmt: skip


@dataclass
class Case:
    recorded: str
    kind: str  # the mutation
    expect: str  # same / ok / bad / pod / large
    body: bytes = field(repr=False)
    headers: dict[str, str]

    def __repr__(self) -> str:
        shown = self.body if len(self.body) < 400 else self.body[:200] + b"..." + self.body[-200:]
        return f"Case({self.recorded}, {self.kind} -> {self.expect}, {self.headers}, {shown!r})"


@st.composite
def cases(draw: st.DrawFn, verb: str) -> Case:
    rec = RECORDED[draw(st.sampled_from(by_verb(verb)))]
    body = Body(rec.text)
    stamp_pod(body)
    kinds = [
        "keep", "unread_value", "unread_delete", "unknown_key", "top_case", "duplicate",
        "read_delete", "read_case", "read_wrong_type", "not_json", "truncate", "deep",
        "bad_utf8", "bad_escape", "huge_number", "big_number", "large",
    ]  # fmt: skip
    if verb != "bind":
        kinds += ["bad_annotation", "bad_quantity"]
    kind = draw(st.sampled_from(kinds))
    expect = "same"
    index = st.integers(min_value=0)

    def pick(paths: list[Any]) -> Any:
        return paths[draw(index) % len(paths)]

    read_strings = [p for p, s in rec.read if s.kind in ("str", "qty")]
    if kind == "unread_value" and rec.unread:
        value = draw(
            st.one_of(
                ANY_VALUE.map(lambda v: ("json", v)),
                st.sampled_from([b"1e400", b"-1e400", b"1" + b"0" * 400,
                                 b"[" * 50 + b"]" * 50]).map(lambda r: ("raw", r)),
                st.just(("json", "x" * HUGE)),
            )
        )  # fmt: skip
        path = pick(rec.unread)
        body.put(path, value[1]) if value[0] == "json" else body.splice(path, value[1])
    elif kind == "unread_delete" and rec.unread:
        body.delete(pick(rec.unread))
    elif kind == "unknown_key":
        path = pick(rec.objects)
        target = body.doc if not path else parent_and_key(body.doc, path)[0][path[-1]]
        target["fuzzExtra" + draw(st.sampled_from(["", "Key", "_1"]))] = draw(ANY_VALUE)
    elif kind == "top_case":
        key = draw(st.sampled_from(sorted(body.doc)))
        rename(body, (key,), other_case(key, draw(st.lists(st.booleans(), max_size=12))))
    elif kind == "duplicate":
        duplicate(body, pick(rec.objects), draw(index), draw(st.booleans()))
    elif kind == "read_delete":
        path, _ = pick(rec.read)
        body.delete(path)
        required = len(path) == 1 and path[0] in REQUIRED[verb]
        expect = "bad" if required else "ok"
    elif kind == "read_case":
        fields = [p for p, _ in rec.read if len(p) > 1 and isinstance(p[-1], str)]
        parent_shapes = dict(rec.read)
        top = SHAPES[verb]
        fields = [p for p in fields if parent_shapes.get(p[:-1], top).kind == "obj"]
        path = pick(fields) if fields else None
        if path is not None:
            rename(
                body, path, other_case(str(path[-1]), draw(st.lists(st.booleans(), max_size=12)))
            )
            expect = "ok"
    elif kind == "read_wrong_type":
        path, shape = pick(rec.read)
        wrong = WRONG[shape.kind] + ([] if shape.nullable else [None])
        body.put(path, draw(st.sampled_from(wrong)))
        expect = "bad"
    elif kind == "not_json":
        expect = "bad"
        how = draw(st.sampled_from(["literal", "empty", "top", "trailing"]))
        if how == "literal":
            body.splice(
                pick([p for p, _ in rec.read] + rec.unread), draw(st.sampled_from(NOT_JSON))
            )
        elif how == "empty":
            body.whole = draw(st.sampled_from([b"", b" ", b"\n"]))
        elif how == "top":
            body.doc = draw(st.sampled_from([[body.doc], "x", 1, None, True, []]))
        else:
            body.extra_bytes = draw(st.sampled_from([b"x", b"{}", b",", b"]"]))
    elif kind == "truncate":
        full = body.render()
        body.whole = full[: draw(st.integers(0, len(full) - 1))]
        expect = "bad"
    elif kind == "deep":
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        where = draw(st.sampled_from([(), *[p for p, _ in rec.read], *rec.unread]))
        nested = opener * DEEP + b"1" + closer * DEEP
        if where:
            body.splice(where, nested)
        else:
            body.whole = nested
        expect = "bad"
    elif kind == "bad_utf8":
        # Read strings are checked; skipped ones only where they are echoed (full-nodes mode).
        full_nodes = rec.name.startswith("fullnodes") and verb in ("filter", "prioritize")
        raw = draw(st.sampled_from([b'"\xff\xfe"', b'"a\xc3"', b'"\xed\xa0\x80"']))
        body.splice(pick(read_strings + rec.unread if full_nodes else read_strings), raw)
        expect = "bad"
    elif kind == "bad_escape":
        body.splice(
            pick(read_strings + rec.unread), draw(st.sampled_from([b'"\\ud800x"', b'"\\x41"']))
        )
        expect = "bad"
    elif kind in ("huge_number", "big_number"):
        quantities = [p for p, s in rec.read if s.kind == "qty"]
        if quantities:
            # beyond float64 is not a number the extender can read; below, a (large) amount
            out_of_range = kind == "huge_number"
            numbers = [b"1e400", b"-1e400", b"1e999"] if out_of_range else [b"9" * 40, b"1e300"]
            body.splice(pick(quantities), draw(st.sampled_from(numbers)))
            expect = "bad" if out_of_range else "ok"
    elif kind == "large":
        body.doc["fuzzPadding"] = "x" * LIMIT
        expect = "large"
    elif kind == "bad_annotation":
        name = draw(st.sampled_from(sorted(BAD_ANNOTATIONS)))
        meta = body.doc["Pod"]["metadata"]
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            P + name: draw(st.sampled_from(BAD_ANNOTATIONS[name])),
        }
        expect = "pod"
    elif kind == "bad_quantity":
        spec = body.doc["Pod"]["spec"]
        where = draw(st.sampled_from(["requests", "overhead", "init"]))
        value = draw(st.sampled_from(BAD_QUANTITIES))
        resource = draw(st.sampled_from(["cpu", "memory", "nvidia.com/gpu", "example.com/foo"]))
        if where == "overhead":
            spec["overhead"] = {**(spec.get("overhead") or {}), resource: value}
        else:
            key = "initContainers" if where == "init" else "containers"
            added = {"name": "fuzz", "resources": {"requests": {resource: value}}}
            spec[key] = [*(spec.get(key) or []), added]
        expect = "pod"
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    headers = {} if content_type is None else {"content-type": content_type}
    return Case(rec.name, kind, expect, body.render(), headers)


# ---- running the cases ----------------------------------------------------------------------


@dataclass
class Served:
    """One live extender (recorded cluster) on its own event loop, driven in-process."""

    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        async def call() -> httpx.Response:
            async with asyncio.timeout(10):  # a hang fails the case
                return await self.client.post(path, content=body, headers=headers)

        return self.loop.run_until_complete(call())


def comparable(verb: str, reply: Any) -> Any:
    """A reply with echoed node objects reduced to their names (their unread fields may have
    been mutated)."""
    if verb == "filter" and reply.get("Nodes") is not None:
        return {**reply, "Nodes": [n["metadata"]["name"] for n in reply["Nodes"]["items"]]}
    return reply


def originals(served: Served) -> dict[str, Any]:
    replies = {}
    for rec in RECORDED.values():
        reply = served.post(rec.path, rec.text.encode(), {"content-type": "application/json"})
        assert reply.status_code == 200, (rec.name, reply.text)
        replies[rec.name] = comparable(rec.verb, reply.json())
        if rec.verb in ("filter", "bind"):
            assert reply.json()["Error"] == "", (rec.name, reply.text)
    return replies


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    loop = asyncio.new_event_loop()
    with ApiServerStandIn() as apiserver:
        apiserver.load_fixture_lists()
        preemption_cluster(apiserver)
        running = live_runtime(apiserver, server={"max_body_bytes": LIMIT})
        runtime, _, changes = loop.run_until_complete(running.__aenter__())
        try:
            loop.run_until_complete(changes.until(lambda: runtime.readiness.ready))
            transport = httpx.ASGITransport(app=create_app(runtime))
            client = httpx.AsyncClient(transport=transport, base_url="http://extender")
            server = Served(loop, client)
            for name, reply in originals(server).items():
                RECORDED[name].reply = reply
            yield server
            # healthy afterwards: every recorded call still gets its original reply
            assert originals(server) == {n: r.reply for n, r in RECORDED.items()}
            assert loop.run_until_complete(client.get("/healthz")).status_code == 200
            assert loop.run_until_complete(client.get("/readyz")).status_code == 200
            loop.run_until_complete(client.aclose())
        finally:
            loop.run_until_complete(running.__aexit__(None, None, None))
            loop.close()


def preemption_cluster(apiserver: ApiServerStandIn) -> None:
    """The recorded preemptions' nodes and victims (both recordings' UIDs: gpu-b has room for
    both), and gpu-a's ledger reservation: each recorded call keeps gpu-b and drops gpu-a."""
    apiserver.add_node(node("gpu-a", gpus=4))
    apiserver.add_node(node("gpu-b", gpus=8))
    for rec in RECORDED.values():
        if rec.verb != "preempt":
            continue
        for name, victims in (rec.doc["NodeNameToMetaVictims"] or {}).items():
            for item in victims["Pods"]:
                apiserver.add_pod(pod(f"victim-{item['UID']}", node_name=name, gpus=1,
                                      phase="Running", uid=item["UID"]))  # fmt: skip
        for name, full in (rec.doc["NodeNameToVictims"] or {}).items():
            for item in full["Pods"]:
                uid = item["metadata"]["uid"]
                apiserver.add_pod(pod(f"victim-{uid}", node_name=name, gpus=1, phase="Running",
                                      uid=uid))  # fmt: skip
    entry = Reservation("uid-holder", "default/holder", ((GPU, 2), ("pods", 1)), time.time() + 3600)
    apiserver.add_lease(lease("gpu-a", [entry]))


def check(served: Served, case: Case) -> None:
    rec = RECORDED[case.recorded]
    reply = served.post(rec.path, case.body, case.headers)
    status, verb = reply.status_code, rec.verb
    assert reply.headers["content-type"] == "application/json"
    data = reply.json()
    if case.expect in ("bad", "large"):
        assert status == (400 if case.expect == "bad" else 413), reply.text
        assert isinstance(data["Error"], str) and data["Error"]
    elif case.expect == "pod":
        assert status == (422 if verb in ("prioritize", "preempt") else 200), reply.text
        assert P in data["Error"] or "quantity" in data["Error"], reply.text
    else:
        assert status == 200, reply.text
        if verb == "prioritize":
            assert isinstance(data, list)
        elif verb == "preempt":
            assert set(data) == {"NodeNameToMetaVictims"}, reply.text
            assert isinstance(data["NodeNameToMetaVictims"], dict)
        elif verb == "filter":
            assert data["Error"] == "", reply.text
        else:
            assert isinstance(data["Error"], str)
        if case.expect == "same":
            assert comparable(verb, data) == rec.reply


# ---- the three causes of 500s seen before this suite existed (issue 10) ----------------------

HOT = ("/filter", "/prioritize", "/bind", "/preempt")


def test_deeply_nested_json_is_400_not_a_recursion_error(served: Served) -> None:
    deep = b"[" * DEEP + b"]" * DEEP
    inside_pod = b'{"Pod": {"metadata": {"x": ' + deep + b'}}, "NodeNames": []}'
    for path in HOT:
        for body in (deep, inside_pod):
            reply = served.post(path, body)
            assert reply.status_code == 400
            assert reply.json() == {"Error": "request body is not valid JSON: nested too deeply"}


def test_full_nodes_mode_node_of_the_wrong_type_is_400(served: Served) -> None:
    for name in ("fullnodes-filter-cpu-worker", "fullnodes-prioritize-cpu-worker"):
        rec = RECORDED[name]
        for wrong in ({"metadata": 3}, {"status": {"allocatable": []}}, 7):
            doc = json.loads(rec.text)
            item = doc["Nodes"]["items"][1]
            doc["Nodes"]["items"][1] = {**item, **wrong} if isinstance(wrong, dict) else wrong
            reply = served.post(rec.path, json.dumps(doc).encode())
            assert reply.status_code == 400
            assert reply.json()["Error"].startswith("a node in Nodes.items is not a v1.Node")


def test_not_json_after_a_wrong_type_is_400_not_a_late_decode_error(served: Served) -> None:
    # The typed decoder stops at the wrong type; the case-insensitive retry then met the NaN.
    for path, body in [
        ("/filter", b'{"Pod": 3, "NodeNames": NaN}'),
        ("/prioritize", b'{"pod": {}, "NodeNames": [], "x": NaN}'),
        ("/prioritize", b"NaN"),
        ("/bind", b'{"PodName": 1, "Node": Infinity}'),
        ("/filter", b'{"Pod": 3, "NodeNames": [1e400]}'),
    ]:
        reply = served.post(path, body)
        assert reply.status_code == 400, (path, body)
        assert reply.json()["Error"].startswith("request body is not valid JSON")


def test_full_nodes_keys_in_another_case_are_read(served: Served) -> None:
    """Full-nodes items are kept raw; the case-insensitive path once failed to convert them."""
    rec = RECORDED["fullnodes-filter-gpu-worker"]
    body = rec.text.replace('"Nodes":', '"nodes":').replace('"Pod":', '"POD":')
    reply = served.post(rec.path, body.encode())
    assert reply.status_code == 200
    assert comparable("filter", reply.json()) == rec.reply


def fuzz_settings(verb: str) -> settings:
    """``CASES[verb]`` cases per run, or the profile's count when higher (``make fuzz``)."""
    return settings(
        max_examples=max(CASES[verb], settings.default.max_examples),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@fuzz_settings("filter")
@given(case=cases("filter"))
def test_mutated_filter_requests_get_the_answer_of_their_class(served: Served, case: Case) -> None:
    check(served, case)


@fuzz_settings("prioritize")
@given(case=cases("prioritize"))
def test_mutated_prioritize_requests_get_the_answer_of_their_class(
    served: Served, case: Case
) -> None:
    check(served, case)


@fuzz_settings("bind")
@given(case=cases("bind"))
def test_mutated_bind_requests_get_the_answer_of_their_class(served: Served, case: Case) -> None:
    check(served, case)


@fuzz_settings("preempt")
@given(case=cases("preempt"))
def test_mutated_preempt_requests_get_the_answer_of_their_class(
    served: Served, case: Case
) -> None:
    check(served, case)


def test_recorded_preemptions_keep_gpu_b_and_drop_gpu_a(served: Served) -> None:
    for name in by_verb("preempt"):
        assert set(RECORDED[name].reply["NodeNameToMetaVictims"]) == {"gpu-b"}
