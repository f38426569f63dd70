"""The READMEs' install commands render what the READMEs show: every `helm install` in a shell
block is rendered with its release name, namespace and `--set` values (Helm's own parser), and
every kube-scheduler `extenders:` entry, `urlPrefix` and Service name the READMEs show must be
one of those renders'."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="pip install -e '.[chart]'")

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "placement-extender"
DOCS = [ROOT / "README.md", CHART / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == language]


def install_commands(text: str) -> list[list[str]]:
    """`helm install ...` commands of the shell blocks, as argument lists."""
    commands = []
    for body in blocks(text, "sh"):
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["helm", "install"]:
                commands.append(words[2:])
    return commands


def render(args: list[str]) -> tuple[list[dict[str, Any]], str]:
    """The objects and NOTES.txt of `helm install <args>`."""
    release, chart_path, *options = args
    assert (ROOT / chart_path).resolve() == CHART, chart_path
    namespace, values = "default", {}
    words = iter(options)
    for word in words:
        if word in ("-n", "--namespace"):
            namespace = next(words)
        elif word == "--set":
            values = merge(values, helm.parse_set_string(next(words)))
        else:
            assert word == "--create-namespace", f"not understood here: {word}"
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values, name=release, namespace=namespace)
    objects = [d for p, t in sorted(files.items()) if p.endswith(".yaml")
               for d in yaml.safe_load_all(t) if d]  # fmt: skip
    notes = next(t for p, t in files.items() if p.endswith("NOTES.txt"))
    return objects, notes


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def shown_entries(text: str) -> list[dict[str, Any]]:
    """The `extenders:` entries of the YAML blocks."""
    entries = []
    for body in blocks(text, "yaml"):
        for doc in yaml.safe_load_all(body):
            if isinstance(doc, dict) and "extenders" in doc:
                entries.extend(doc["extenders"])
    return entries


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_install_commands_render_what_the_readme_shows(doc: Path) -> None:
    text = doc.read_text()
    commands = install_commands(text)
    assert commands, f"{doc.name}: no helm install command"
    entries: list[dict[str, Any]] = []
    services: set[str] = set()
    for args in commands:
        objects, notes = render(args)
        services |= {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
        for o in objects:  # the chart's kube-scheduler profile
            if o["kind"] == "ConfigMap" and "extenders:" in o["data"].get("config.yaml", ""):
                entries += yaml.safe_load(o["data"]["config.yaml"])["extenders"]
        if "\nextenders:\n" in notes:  # the block NOTES.txt gives for an existing kube-scheduler
            block = notes.split("\nextenders:\n", 1)[1].split("\n\n", 1)[0]
            entries += yaml.safe_load("extenders:\n" + block)["extenders"]

    for shown in shown_entries(text):
        assert any(shown == entry for entry in entries), (
            f"{doc.name} shows an extenders entry no install command renders:\n{shown}\n"
            f"rendered: {entries}"
        )
    for url in re.findall(r'urlPrefix: "([^"]+)"', text):
        assert url in {e["urlPrefix"] for e in entries}, f"{doc.name}: urlPrefix {url}"
    for name in re.findall(r"Service `([a-z0-9.-]+)`", text):
        assert name in services, f"{doc.name}: Service {name} is not rendered ({services})"
