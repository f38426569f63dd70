"""Readiness of the snapshot source: ready once every kind has been listed, not while re-listing."""

from __future__ import annotations

from collections.abc import Callable


class Readiness:
    """Tracks which kinds are still (re)loading; ready when none is."""

    def __init__(self, *kinds: str) -> None:
        self._pending: set[str] = set(kinds)
        self.listeners: list[Callable[[bool], None]] = []
        """Called with the new readiness after every loading/loaded call."""

    def loading(self, kind: str) -> None:
        self._pending.add(kind)
        self._notify()

    def loaded(self, kind: str) -> None:
        self._pending.discard(kind)
        self._notify()

    def _notify(self) -> None:
        for listener in list(self.listeners):  # a listener may remove itself
            listener(self.ready)

    @property
    def ready(self) -> bool:
        return not self._pending

    @property
    def reason(self) -> str:
        return "ready" if self.ready else f"loading {', '.join(sorted(self._pending))}"
