"""Command line: ``placement-extender serve [--snapshot FILE | --kubeconfig PATH] ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from app.api.listen import Listeners
from app.api.server import Runtime, Source, create_app
from app.config import ConfigError, Settings, load_settings
from app.logs import configure_logging
from app.simulate import command as simulate_command
from app.sources import KINDS, FileSource, LiveSource
from app.state.readiness import Readiness

log = logging.getLogger("app")

DESCRIPTION = (
    "A kube-scheduler extender that places pods by free capacity, GPU type, pool and "
    "container-ID affinity, and commits each placement with a compare-and-swap reservation. "
    "'serve' answers kube-scheduler; 'simulate' tells where pending pods would go and what "
    "nodes to add. Run 'placement-extender COMMAND --help' for a command's options."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="placement-extender", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the extender verbs over HTTP",
        description="Serve the extender verbs (filter, prioritize, bind) to kube-scheduler, "
        "from a live API server (--kubeconfig, or in-cluster) or a fixed snapshot file.",
    )
    serve.add_argument("--config", help="YAML config file (env PLACEMENT_EXTENDER_* overrides)")
    serve.add_argument("--host", help="listen address (default from config: 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (default from config: 8888)")
    source = serve.add_mutually_exclusive_group()
    source.add_argument("--snapshot", help="serve a fixed cluster from a YAML/JSON file")
    source.add_argument("--kubeconfig", help="watch the API server named in this kubeconfig")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    simulate_command.add_arguments(
        commands.add_parser(
            "simulate",
            help="place pending pods on a snapshot; what to add",
            description="Place pending pods on a cluster snapshot with the extender's own "
            "filter and scores, one at a time in kube-scheduler's queue order: where each "
            "would go, why not, and what nodes to add.",
        )
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    server: dict[str, Any] = {}
    for name in ("host", "port", "log_level"):
        if getattr(args, name) is not None:
            server[name] = getattr(args, name)
    kube: dict[str, Any] = {"kubeconfig": args.kubeconfig} if args.kubeconfig else {}
    base = load_settings(args.config)
    overrides: dict[str, Any] = {}
    if server:
        overrides["server"] = base.server.model_copy(update=server)
    if kube:
        overrides["kube"] = base.kube.model_copy(update=kube)
    return base.model_copy(update=overrides) if overrides else base


def _source(args: argparse.Namespace, settings: Settings) -> Source:
    if args.snapshot:
        source = FileSource(args.snapshot)
        source.load(settings)  # before serving: a bad file is a one-line error
        return source
    return LiveSource.from_settings(settings)


def serve(args: argparse.Namespace) -> int:
    """Run the HTTP server until interrupted."""
    try:
        settings = _settings(args)
        source = _source(args, settings)
        listeners = Listeners(settings.server)  # reads the TLS files: a bad one is one line
    except (ConfigError, ValueError) as exc:
        print(f"placement-extender: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.server.log_level)
    runtime = Runtime(settings=settings, readiness=Readiness(*KINDS))
    app = create_app(runtime, source)
    listeners.run(app, runtime)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``placement-extender`` console script and ``python -m app``."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "simulate":
        return simulate_command.run(args)
    return 2
