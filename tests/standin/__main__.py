"""Run the API-server stand-in as a process (for the load tests):

    python -m tests.standin --port 6443 [--host 127.0.0.1] [--load cluster.yaml --load pods.json]

Each ``--load`` file is a ``kind: List`` (YAML or JSON) of v1 Nodes and Pods, added in file
order before serving. Prints one ``ready`` line, then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.standin.server import ApiServerStandIn

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_items(path: Path) -> list[dict[str, Any]]:
    """The items of a ``kind: List`` file (JSON if it parses as JSON, else YAML)."""
    text = path.read_text()
    try:
        doc = json.loads(text)
    except ValueError:
        doc = yaml.load(text, Loader=_Loader)  # the C or pure-Python SafeLoader
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ValueError(f"{path}: not a kind: List with items")
    return doc["items"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.standin", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--load", action="append", default=[], type=Path, metavar="FILE")
    args = ap.parse_args(argv)

    # block the stop signals before any thread starts, then wait for one in the main thread
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    api = ApiServerStandIn(host=args.host, port=args.port)
    counts = {"Node": 0, "Pod": 0}
    try:
        for path in args.load:
            for item in load_items(path):
                kind = item.get("kind")
                if kind not in counts:
                    raise ValueError(f"{path}: kind {kind!r} is neither Node nor Pod")
                (api.add_node if kind == "Node" else api.add_pod)(item)
                counts[kind] += 1
        api.start()
    except (OSError, ValueError) as exc:
        print(f"tests.standin: {exc}", file=sys.stderr)
        return 1
    print(f"tests.standin: ready at {api.base_url} ({counts['Node']} nodes, {counts['Pod']} pods)",
          flush=True)
    try:
        signal.sigwait(stop)
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
