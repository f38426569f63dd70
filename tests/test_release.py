"""Release hygiene: one version everywhere it is stated, the license named where tools look.

The version's one source is ``app.__version__``; the package (setuptools' dynamic version), the
image tag (`make image`), the chart's appVersion (the image tag it deploys by default) and the
newest CHANGELOG release must all say the same.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

from app import __version__

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "placement-extender"


def make(target: str) -> str:
    done = subprocess.run(["make", "-s", "--no-print-directory", target], cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def test_one_version_everywhere() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    assert importlib.metadata.version("placement-extender") == __version__, "pip install -e ."
    assert chart["appVersion"] == __version__
    assert make("version") == __version__
    assert make("image-ref") == f"placement-extender:{__version__}"
    # The Dockerfile takes the version from the build (make image), never its own copy.
    assert __version__ not in (ROOT / "deploy" / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "app.__version__"}


def test_changelog_opens_with_this_version() -> None:
    """Keep a Changelog: an Unreleased section, then the newest release with its date."""
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", text, re.M)
    assert releases, "no release heading like '## [0.1.0] - 2026-12-06'"
    assert releases[0][0] == __version__
    assert text.index("## [Unreleased]") < text.index(f"## [{__version__}]")


def test_the_license_is_apache_2_and_named_where_tools_look() -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    assert importlib.metadata.metadata("placement-extender")["License-Expression"] == "Apache-2.0"
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["annotations"]["artifacthub.io/license"] == "Apache-2.0"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in dockerfile
