"""The docs check of ``make lint``: what the Markdown files promise must exist.

* every relative link and image (``[text](path#anchor)``) resolves to a file of the repository,
  and its anchor to a heading of that file (GitHub's slugs);
* every flag shown after ``placement-extender <command>`` (or ``python -m app <command>``) in
  code is in that command's ``--help``;
* every ``make <target>`` shown in code is a target of the Makefile;
* nothing points outside the repository (``../shared``, absolute paths of the build machines).

``python -m tools.check_docs`` prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = frozenset({".git", ".venv", "node_modules", ".pytest_cache", ".mypy_cache", "build"})

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
_COMMAND = re.compile(r"(?:placement-extender|python3? -m app)\s+(serve|simulate)\b([^`\n]*)")
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
_MAKE = re.compile(r"(?<![\w-])make\s+([a-z][a-z0-9-]*)")
_OUTSIDE = re.compile(r"\.\./shared|/work/|/root/")


@dataclass(frozen=True)
class Problem:
    file: str
    """Relative to the checked tree."""
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def markdown_files(root: Path = ROOT) -> list[Path]:
    """Every ``*.md`` of the repository (not in virtualenvs or caches)."""
    found = []
    for path in sorted(root.rglob("*.md")):
        if not SKIP_DIRS.intersection(path.relative_to(root).parts):
            found.append(path)
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces → ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower().strip()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def split_code(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """Per line: its number, the prose (inline code removed) and the code on it (fenced lines
    whole, inline spans one by one)."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            yield number, "", [line]
            continue
        spans = [m.group(2) for m in _INLINE_CODE.finditer(line)]
        yield number, _INLINE_CODE.sub("", line), spans


def anchors(path: Path) -> set[str]:
    """The anchors a Markdown file offers: heading slugs (numbered when repeated, as GitHub
    does) and explicit ``<a name=...>``."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    fenced = False
    for line in path.read_text().splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        match = _HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(_HTML_ANCHOR.findall(line))
    return found


def check_links(path: Path, root: Path = ROOT) -> Iterator[Problem]:
    name = str(path.relative_to(root))
    cache: dict[Path, set[str]] = {}
    for number, prose, _ in split_code(path.read_text()):
        for match in _LINK.finditer(prose):
            target = match.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                yield Problem(name, number, f"link to a missing file: {target}")
                continue
            try:
                linked.relative_to(root)
            except ValueError:
                yield Problem(name, number, f"link outside the repository: {target}")
                continue
            if anchor and linked.suffix == ".md":
                if linked not in cache:
                    cache[linked] = anchors(linked)
                if anchor not in cache[linked]:
                    yield Problem(
                        name, number, f"no heading for anchor #{anchor} in {file_part or path.name}"
                    )


def _help_texts() -> dict[str, str]:
    from app.cli import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: sub.format_help() for name, sub in commands.choices.items()}


def _make_targets(root: Path) -> set[str]:
    makefile = (root / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*)\s*:", makefile, re.M))
    for phony in re.findall(r"^\.PHONY:(.*)$", makefile, re.M):
        targets.update(phony.split())
    return targets


def check_code(
    path: Path, helps: dict[str, str], targets: set[str], root: Path = ROOT
) -> Iterator[Problem]:
    name = str(path.relative_to(root))
    for number, prose, code in split_code(path.read_text()):
        for snippet in code:
            for command, rest in _COMMAND.findall(snippet):
                for flag in _FLAG.findall(rest):
                    if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helps[command]):
                        yield Problem(name, number, f"`{command}` has no flag {flag} (--help)")
            for target in _MAKE.findall(snippet):
                if target not in targets:
                    yield Problem(name, number, f"the Makefile has no target {target}")
        for snippet in [prose, *code]:
            if _OUTSIDE.search(snippet):
                yield Problem(name, number, "refers to a path outside the repository")


def problems(root: Path = ROOT) -> list[Problem]:
    helps = _help_texts()
    targets = _make_targets(root)
    found: list[Problem] = []
    for path in markdown_files(root):
        found.extend(check_links(path, root))
        found.extend(check_code(path, helps, targets, root))
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
