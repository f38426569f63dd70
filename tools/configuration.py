"""Generate ``docs/configuration.md`` from the pydantic settings model (``app.config.Settings``).

``python -m tools.configuration`` rewrites the file; ``--check`` exits 1 when it has drifted
(``tests/test_docs.py`` runs the same comparison). Every key's meaning is its attribute docstring
in ``app/config.py``; defaults are those of a default ``Settings``, nested defaults included.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "configuration.md"
ENV_PREFIX = "PLACEMENT_EXTENDER_"

INTRO = """\
# Configuration reference

Every key of the extender's configuration: its type, default, meaning, and the environment
variable that overrides it. The configuration is one YAML file passed as
`placement-extender serve --config FILE` (the Helm chart writes `config:` from its values into
that file); unknown keys are errors, and every value is validated when the process starts (a bad
one is a one-line error naming the key). An environment variable beats the file:
`PLACEMENT_EXTENDER_<SECTION>__<KEY>` (nested sections joined by `__`), with maps written as
JSON, e.g. `PLACEMENT_EXTENDER_BIND__BUDGET_SECONDS=2`.

<!-- Generated from app/config.py by `make docs` (python -m tools.configuration): do not edit.
     tests/test_docs.py fails when this file and the model disagree. -->
"""


@dataclass(frozen=True)
class Key:
    """One configuration key as the reference shows it."""

    path: str
    type: str
    default: str
    description: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.path.replace(".", "__").upper()


def _type_text(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{v}`" for v in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        parts = [_type_text(a) for a in get_args(annotation) if a is not type(None)]
        nullable = type(None) in get_args(annotation)
        return " or ".join(parts) + (" or null" if nullable else "")
    if origin is dict:
        key, value = get_args(annotation)
        return f"map of {_type_text(key)} to {_type_text(value)}"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(field: FieldInfo) -> str:
    marks = []
    for item in field.metadata:
        for attribute, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            value = getattr(item, attribute, None)
            if value is not None:
                marks.append(f"{sign} {value}")
        if isinstance(item, annotated_types.MinLen):
            marks.append("non-empty" if item.min_length == 1 else f"≥ {item.min_length} long")
    return ", ".join(marks)


def _default_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


def keys(model: BaseModel, prefix: str = "") -> Iterator[Key]:
    """The leaf keys of ``model`` (an instance holding the defaults), depth first."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from keys(value, f"{path}.")
            continue
        if not field.description:
            raise ValueError(f"{path} has no docstring in app/config.py")
        kind = _type_text(field.annotation)
        if bounds := _bounds(field):
            kind = f"{kind} ({bounds})"
        text = _markdown(field.description)
        yield Key(path, kind, _default_text(value), text)


def sections(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, str, BaseModel]]:
    """``(path, description, instance)`` of every section, depth first."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            path = f"{prefix}{name}"
            yield path, _markdown(field.description or ""), value
            yield from sections(value, f"{path}.")


def _markdown(docstring: str) -> str:
    """A docstring as one line of Markdown (reST's double backticks become single ones)."""
    return " ".join(docstring.split()).replace("``", "`")


def _table(rows: list[Key]) -> list[str]:
    lines = ["| key | type | default | meaning | environment variable |", "|---|---|---|---|---|"]
    for key in rows:
        cells = (f"`{key.path}`", key.type, f"`{key.default}`", key.description, f"`{key.env}`")
        lines.append("| " + " | ".join(c.replace("\n", " ") for c in cells) + " |")
    return lines


def render() -> str:
    """The whole reference, as ``docs/configuration.md`` holds it."""
    defaults = Settings.model_construct()
    lines = [INTRO, "## Top level", ""]
    top = [k for k in keys(defaults) if "." not in k.path]
    lines += _table(top)
    for path, description, section in sections(defaults):
        own = [k for k in keys(section, f"{path}.") if k.path.rsplit(".", 1)[0] == path]
        if not own:
            continue
        lines += ["", f"## `{path}`", ""]
        if description:
            lines += [description, ""]
        lines += _table(own)
    lines += ["", "Defaults as YAML:", "", "```yaml", _yaml(defaults).rstrip(), "```", ""]
    return "\n".join(lines)


def _yaml(defaults: Settings) -> str:
    import yaml

    return yaml.safe_dump(defaults.model_dump(mode="json"), sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/configuration.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run make docs", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
