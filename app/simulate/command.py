"""``placement-extender simulate``: the command line of a simulation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.config import ConfigError, Settings, load_settings
from app.extender import PodError
from app.simulate.pending import PendingPod, PendingPodsError, read_pending
from app.simulate.report import as_json, as_table, comparison_table
from app.simulate.run import Simulation, simulate
from app.state.file_source import SnapshotFileError, load_snapshot
from app.state.snapshot import NodeParsing, Snapshot
from app.wire.codec import encode

REPORT_EXTRA = "pip install 'placement-extender[report]'"
BAD_INPUT = (ConfigError, SnapshotFileError, PendingPodsError, PodError)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``simulate`` subcommand's options."""
    parser.add_argument("--snapshot", required=True, help="cluster: kubectl get nodes,pods -A")
    parser.add_argument("--pods", required=True, help="pending pods: manifests or a pod list")
    parser.add_argument("--config", help="YAML config file (env PLACEMENT_EXTENDER_* overrides)")
    parser.add_argument("--compare", metavar="FILE", help="a second config, side by side")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--plot", metavar="DIR", help=f"write PNG charts here ({REPORT_EXTRA})")


def _simulate(settings: Settings, snapshot_path: str, pods: list[PendingPod]) -> Simulation:
    snapshot = Snapshot(NodeParsing.from_settings(settings))  # per config: it sets the keys
    load_snapshot(snapshot_path, snapshot)
    return simulate(settings, snapshot, pods)


def _fail(message: str) -> int:
    print(f"placement-extender simulate: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run the simulation(s), print the report, write the charts; 2 with a one-line error for
    bad input."""
    try:
        settings = load_settings(args.config)
        pods = read_pending(args.pods)
        base = _simulate(settings, args.snapshot, pods)
        other = None
        if args.compare:
            other = _simulate(load_settings(args.compare), args.snapshot, pods)
    except BAD_INPUT as exc:
        return _fail(str(exc))
    gpu = settings.gpu_resource
    if args.format == "json":
        document: dict[str, Any] = as_json(base)
        if other is not None:
            document = {"base": document, "compare": as_json(other)}
        sys.stdout.write(encode(document).decode() + "\n")
    else:
        sys.stdout.write(as_table(base, gpu))
        if other is not None:
            sys.stdout.write(f"\nwith --compare {args.compare}:\n\n" + as_table(other, gpu))
            names = (args.config or "default config", args.compare)
            sys.stdout.write("\n" + comparison_table((names[0], base), (names[1], other)))
    if args.plot:
        try:
            from app.simulate import plot  # the optional [report] extra (matplotlib)
        except ImportError as exc:
            return _fail(f"--plot needs {REPORT_EXTRA}: {exc}")
        for path in plot.write_charts(base, Path(args.plot), gpu):
            print(f"wrote {path}", file=sys.stderr)
    return 0
