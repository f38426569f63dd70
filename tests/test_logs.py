"""Structured logs: one JSON object per line, with each decision's fields."""

from __future__ import annotations

import json
import logging

import pytest

from app.extender import Extender
from app.logs import JsonFormatter
from app.metrics import Metrics
from app.observe import DecisionObserver
from app.wire.codec import decode_extender_args
from tests.builders import args_body, extender_of, node, pod


def test_json_formatter_writes_one_object_with_extras() -> None:
    record = logging.makeLogRecord(
        {"name": "app.commit", "levelname": "INFO", "msg": "bind", "pod": "ns/p", "node": "a"}
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "bind" and entry["level"] == "info"
    assert entry["pod"] == "ns/p" and entry["node"] == "a" and entry["time"].endswith("Z")


def test_each_filter_decision_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    base = extender_of([node("cpu-1"), node("gpu-1", gpus=1)])
    extender = Extender(base.settings, base.snapshot, DecisionObserver(Metrics()))
    with caplog.at_level(logging.DEBUG, logger="app.decisions"):
        extender.filter(decode_extender_args(args_body(pod("p", cpu="1"), ["cpu-1", "gpu-1"])))
    [record] = [r for r in caplog.records if r.getMessage() == "filter"]
    assert record.pod == "default/p" and record.kept == 1 and record.failed == 1  # type: ignore[attr-defined]
    assert record.reasons == {"GPU node reserved for GPU pods": 1}  # type: ignore[attr-defined]
