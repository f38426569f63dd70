"""The API-server stand-in in its own process, so a benchmark measures only the extender's side.

    python -m bench.standin_proc [--generate NODES PODS SEED [--pending K]] [--load FILE]...

``--generate`` builds a realistic cluster with ``loadtest.generate.make_cluster`` (cached as JSON
under the temp directory, keyed by the generator's source, since 100,000 pods take ~40 s to
build); ``--pending K`` turns the last K generated pods into unbound Pending pods. ``--load``
adds the items of a ``kind: List`` JSON file. Everything is bulk-loaded (no watch events), then
the process prints one JSON line ``{"url": ..., "nodes": N, "pods": P}`` and serves until its
standard input closes (the parent exited or is done) or it gets SIGTERM.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec

import loadtest.generate
from tests.standin import ApiServerStandIn

CACHE_DIR = Path(tempfile.gettempdir()) / "placement-extender-bench"


def _cache_path(nodes: int, pods: int, seed: int) -> Path:
    source = Path(loadtest.generate.__file__).read_bytes()
    digest = hashlib.sha1(source).hexdigest()[:12]
    return CACHE_DIR / f"cluster-{nodes}-{pods}-{seed}-{digest}.json"


def generated_items(nodes: int, pods: int, seed: int) -> list[dict[str, Any]]:
    """The items of ``make_cluster(nodes, pods, seed)``, from the cache when it has them."""
    path = _cache_path(nodes, pods, seed)
    if path.exists():
        items: list[dict[str, Any]] = msgspec.json.decode(path.read_bytes())
        return items
    items = loadtest.generate.make_cluster(nodes, pods, seed)["items"]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_bytes(msgspec.json.encode(items))
    partial.replace(path)
    return items


def make_pending(pod: dict[str, Any]) -> dict[str, Any]:
    """``pod`` as it looks before scheduling: no node, phase Pending, no container statuses."""
    spec = {k: v for k, v in pod["spec"].items() if k != "nodeName"}
    status = {"phase": "Pending", "qosClass": pod.get("status", {}).get("qosClass", "BestEffort")}
    return {**pod, "spec": spec, "status": status}


def _items(args: argparse.Namespace) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if args.generate:
        items = generated_items(*args.generate)
        if args.pending:
            cut = len(items) - args.pending
            items[cut:] = [make_pending(p) for p in items[cut:]]
    for path in args.load:
        items += msgspec.json.decode(path.read_bytes())["items"]
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.standin_proc", description=__doc__)
    parser.add_argument("--generate", nargs=3, type=int, metavar=("NODES", "PODS", "SEED"))
    parser.add_argument("--pending", type=int, default=0)
    parser.add_argument("--load", action="append", default=[], type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    items = _items(args)
    kinds = [item.get("kind") for item in items]
    api = ApiServerStandIn()
    api.load_objects(items)
    del items
    api.start()
    ready = {"url": api.base_url, "nodes": kinds.count("Node"), "pods": kinds.count("Pod")}
    print(json.dumps(ready), flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
