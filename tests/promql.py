"""What the dashboard and the alert rules ask of Prometheus, read with a real PromQL parser.

``promql-parser`` (Python bindings of the Rust port of Prometheus's parser) turns each expression
into its syntax tree; from it come the metrics and labels an expression names, and the operands
that must each return data when the extender has served traffic. Also: where the promtool and
prometheus binaries are, skipping (or failing, in CI) when they are not installed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import promql_parser as pp
import pytest

COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
SET_OPERATORS = {"and", "or", "unless"}
ABSENCE = {"absent", "absent_over_time"}

# Grafana's variables, as the test's Prometheus sees them: one namespace, any replica, and
# ranges wide enough for the traffic the test sends.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "5m",
    "$namespace": "placement-system",
    "$pod": ".*",
}


def require_binary(name: str) -> str:
    """The path of ``name``; skip the test with one line when it is missing (fail under CI)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed (Debian: apt-get install -y prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class Names:
    """The metrics an expression selects (with the labels its matchers name) and the labels
    it groups or matches by."""

    selectors: list[tuple[str, set[str]]] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)


def names(expr: str) -> Names:
    """Every metric and label that ``expr`` names."""
    found = Names()
    for node in _walk(pp.parse(expr)):
        if isinstance(node, pp.VectorSelector):
            labels = {m.name for m in node.matchers.matchers}
            found.selectors.append((node.name or "", labels))
        elif isinstance(node, pp.AggregateExpr) and node.modifier is not None:
            found.grouping.update(node.modifier.labels)
        elif isinstance(node, pp.BinaryExpr) and node.modifier is not None:
            modifier = node.modifier
            if modifier.matching is not None:
                found.grouping.update(modifier.matching.labels)
            found.grouping.update(modifier.group_labels or ())
    return found


def operands(expr: str) -> list[str]:
    """The parts of ``expr`` that must each return data once the extender has served traffic:
    a comparison or set operation is split into its sides (its result may rightly be empty:
    the alert does not fire), ``absent(x)`` stands for ``x``, literals are dropped."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, pp.ParenExpr):
            visit(node.expr)
        elif isinstance(node, pp.BinaryExpr) and _splits(node):
            visit(node.lhs)
            visit(node.rhs)
        elif isinstance(node, pp.Call) and node.func.name in ABSENCE:
            visit(node.args[0])
        elif not isinstance(node, pp.NumberLiteral | pp.StringLiteral):
            found.append(str(node))

    visit(pp.parse(expr))
    return found


def substitute(expr: str) -> str:
    """Replace Grafana's variables by values the test's Prometheus can evaluate."""
    for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(variable, value)
    return expr


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, expr)`` for every panel target of the dashboard."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]


def variable_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """``(variable, metric selector, label)`` of every ``label_values(selector, label)``."""
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"]
        assert query.startswith("label_values(") and query.endswith(")"), query
        selector, _, label = query.removeprefix("label_values(")[:-1].rpartition(",")
        yield variable["name"], selector.strip(), label.strip()


def load_dashboard(text: str) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(text)
    return dashboard


def _splits(node: Any) -> bool:
    op = str(node.op)
    if op in SET_OPERATORS:
        return True
    return op in COMPARISONS and not (node.modifier is not None and node.modifier.return_bool)


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, pp.MatrixSelector):
        yield from _walk(node.vector_selector)
    elif isinstance(node, pp.AggregateExpr):
        yield from _walk(node.expr)
        if node.param is not None:
            yield from _walk(node.param)
    elif isinstance(node, pp.BinaryExpr):
        yield from _walk(node.lhs)
        yield from _walk(node.rhs)
    elif isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        yield from _walk(node.expr)
    elif isinstance(node, pp.Call):
        for arg in node.args:
            yield from _walk(arg)
