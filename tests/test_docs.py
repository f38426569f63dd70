"""The docs that are generated or mirror the code stay true to it.

Covers: docs/configuration.md is exactly what the settings model generates, and every key has a
docstring; the metrics table of docs/operations.md names exactly the series a live extender
exports; the docs check (``make lint``) finds a broken link, a missing anchor, an unknown CLI
flag, an unknown make target and a path outside the repository, and passes on the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from app.config import Settings
from app.metrics import Metrics
from app.state.snapshot import NodeParsing, Snapshot
from tools import check_docs, configuration

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_reference_is_generated_from_the_model() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == configuration.render(), (
        "docs/configuration.md is stale: run make docs"
    )


def test_every_key_needs_a_docstring() -> None:
    class Section(BaseModel):
        model_config = ConfigDict(use_attribute_docstrings=True)

        documented: int = 1
        """Has one."""
        bare: int = Field(2, ge=0)

    with pytest.raises(ValueError, match="bare has no docstring"):
        list(configuration.keys(Section.model_construct(), ""))


def test_reference_shows_nested_defaults_and_environment_names() -> None:
    text = configuration.render()
    # GPU pods default to no affinity: the nested default, not the class default
    assert "| `scoring.gpu_pods.weights.affinity` | number (≥ 0) | `0.0` |" in text
    assert "`PLACEMENT_EXTENDER_BIND__BUDGET_SECONDS`" in text


def _documented_metrics() -> set[str]:
    text = (ROOT / "docs" / "operations.md").read_text()
    table = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(placement_extender_\w+)`", table, re.M))


def test_metrics_table_names_exactly_the_exported_series() -> None:
    metrics = Metrics()
    snapshot = Snapshot(NodeParsing.from_settings(Settings()))
    metrics.watch_source(lambda: snapshot, lambda: {"nodes_lists": 1})
    exported = set()
    for family in metrics.registry.collect():
        suffix = "_total" if family.type == "counter" else ""
        exported.add(family.name + suffix)
    assert _documented_metrics() == exported


def _tree(tmp_path: Path, text: str) -> Path:
    (tmp_path / "Makefile").write_text(".PHONY: test\ntest:\n\ttrue\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## A section\n")
    (tmp_path / "README.md").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[x](docs/missing.md)", "link to a missing file: docs/missing.md"),
        ("[x](docs/other.md#no-such)", "no heading for anchor #no-such"),
        ("[x](#nowhere)\n# Here\n", "no heading for anchor #nowhere"),
        ("`placement-extender serve --no-such-flag`", "`serve` has no flag --no-such-flag"),
        ("```sh\nplacement-extender simulate --snapshot A --plots B\n```", "has no flag --plots"),
        ("`make nothing`", "the Makefile has no target nothing"),
        ("see ../shared/k8s", "outside the repository"),
    ],
)
def test_docs_check_finds(tmp_path: Path, text: str, problem: str) -> None:
    found = check_docs.problems(_tree(tmp_path, text))
    assert any(problem in str(p) for p in found), found


def test_docs_check_accepts_what_resolves(tmp_path: Path) -> None:
    text = (
        "# Title\n\n## Run it\n\n[a](docs/other.md#a-section) [b](#run-it) "
        "[c](https://example.com/x) `placement-extender serve --port 1` `make test`\n"
        "```sh\nplacement-extender simulate --snapshot s --pods p --compare c\n```\n"
    )
    assert check_docs.problems(_tree(tmp_path, text)) == []


def test_slugs_follow_github() -> None:
    assert check_docs.slug("Install into a cluster") == "install-into-a-cluster"
    assert check_docs.slug("`bind.budget_seconds` (3 s)") == "bindbudget_seconds-3-s"
    assert check_docs.slug("Simulate: where pods go, why not") == "simulate-where-pods-go-why-not"
