"""How a bind ends: the error kube-scheduler shows on the pod, its outcome label for metrics and
logs, and what the bind did on the way (for both)."""

from __future__ import annotations

from dataclasses import dataclass

from app.kube import ApiReply

CONFLICT = 409
NOT_FOUND = 404
SERVER_ERROR = 500
BUDGET_EXHAUSTED = "budget_exhausted"
UNKNOWN_OUTCOME = "unknown_outcome"


class BindError(Exception):
    """The bind failed; ``str()`` is the ``Error`` kube-scheduler shows on the pod."""

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome


class NotSent(BindError):
    """The budget ran out before the call was sent: nothing happened on the server."""

    def __init__(self, budget: float) -> None:
        super().__init__(f"bind budget of {budget:g}s exhausted", BUDGET_EXHAUSTED)


@dataclass
class Attempts:
    """What one bind did, for logs and metrics."""

    reservations: int = 0
    conflicts: int = 0
    binding_sent: bool = False
    reserved_ahead: bool = False
    """The node held an entry reserved ahead for the pod: nothing was written."""


def budget_spent(budget: float, attempts: Attempts | None) -> BindError:
    """The error of a bind whose budget ran out, naming the attempts it made."""
    tried = (
        f" after {attempts.reservations} reservation attempts ({attempts.conflicts} conflicts)"
        if attempts
        else ""
    )
    return BindError(f"bind budget of {budget:g}s exhausted{tried}", BUDGET_EXHAUSTED)


def api_message(doing: str, reply: ApiReply) -> str:
    status = reply.status_object()
    reason = f" ({status.reason})" if status.reason else ""
    return f"{doing}: {reply.status}{reason}: {status.message}"


def outcome_of(reply: ApiReply) -> str:
    return {NOT_FOUND: "not_found", CONFLICT: "conflict"}.get(reply.status, "api_error")
