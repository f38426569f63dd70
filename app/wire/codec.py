"""Decode kube-scheduler request bodies and encode replies.

Decoding is typed and partial (msgspec): only the fields in :mod:`app.wire.types` are read.
Top-level keys match case-insensitively, as Go's encoding/json does: the exact Go spelling takes
the fast path, any other spelling is normalised and converted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from app.wire.types import (
    NULL,
    ExtenderArgs,
    ExtenderArgsRawNames,
    ExtenderBindingArgs,
    ExtenderPreemptionArgs,
    MetaPod,
    MetaVictims,
    Node,
)

T = TypeVar("T", ExtenderArgs, ExtenderBindingArgs, ExtenderPreemptionArgs)

_args_decoder = msgspec.json.Decoder(ExtenderArgs)
_binding_decoder = msgspec.json.Decoder(ExtenderBindingArgs)
_node_decoder = msgspec.json.Decoder(Node)
_any_decoder = msgspec.json.Decoder()
encoder = msgspec.json.Encoder()
encode = encoder.encode


class BadRequest(ValueError):
    """The body is not JSON, or not the shape kube-scheduler sends (HTTP 400)."""


def _parsed(decoder: msgspec.json.Decoder[Any], body: bytes | msgspec.Raw) -> Any:
    """``decoder.decode(body)``; malformed or too deeply nested JSON is a :class:`BadRequest`.
    A value of the wrong type (``msgspec.ValidationError``) is left to the caller."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError:
        raise  # a subclass of DecodeError: the JSON itself is fine
    except msgspec.DecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # msgspec keeps to the interpreter's recursion limit
        raise BadRequest("request body is not valid JSON: nested too deeply") from exc


def _field_names(kind: type[msgspec.Struct]) -> dict[str, str]:
    return {name.lower(): name for name in kind.__struct_fields__}


_ARG_FIELDS = _field_names(ExtenderArgs)
_BINDING_FIELDS = _field_names(ExtenderBindingArgs)


def _normalise_keys(data: Any, fields: dict[str, str]) -> Any:
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        canonical = fields.get(key.lower()) if isinstance(key, str) else None
        # An exact spelling wins over a case-insensitive one, as in Go.
        if canonical is not None and (canonical not in out or key == canonical):
            out[canonical] = value
    return out


def _decode(
    body: bytes, decoder: msgspec.json.Decoder[Any], kind: type[T], fields: dict[str, str]
) -> T:
    try:
        value: T = _parsed(decoder, body)
    except msgspec.ValidationError:
        pass  # perhaps other key spellings: normalise below
    else:
        if all(getattr(value, f) is not None for f in _REQUIRED[kind]):
            return value
    return _decode_any_case(body, decoder, kind, fields)


def _decode_any_case(
    body: bytes,
    decoder: msgspec.json.Decoder[Any],
    kind: type[T],
    fields: dict[str, str] | Callable[[Any], Any],
) -> T:
    """Decode with keys matched case-insensitively, as Go's decoder does: ``fields`` maps the
    lower-cased keys of the top level, or is a function normalising the whole document."""
    try:
        raw = _parsed(_any_decoder, body)
    except msgspec.ValidationError as exc:  # a number out of range
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise BadRequest(f"request body must be a JSON object, not {type(raw).__name__}")
    normalised = fields(raw) if callable(fields) else _normalise_keys(raw, fields)
    try:
        # re-encoded, not converted: raw fields (full-nodes ``Nodes.items``) need JSON text
        value: T = decoder.decode(encode(normalised))
        return value
    except msgspec.ValidationError as exc:
        raise BadRequest(f"request body does not match {kind.__name__}: {exc}") from exc


# Fields whose absence on the fast path may mean "spelled differently": retry case-insensitively.
_REQUIRED: dict[type[msgspec.Struct], tuple[str, ...]] = {
    ExtenderArgs: ("Pod",),
    ExtenderBindingArgs: (),
}


def decode_extender_args(body: bytes) -> ExtenderArgs:
    """Decode a filter/prioritize body; raise :class:`BadRequest` if it has no usable ``Pod``."""
    args = _decode(body, _args_decoder, ExtenderArgs, _ARG_FIELDS)
    if args.Nodes is None and args.NodeNames is None:
        args = _decode_any_case(body, _args_decoder, ExtenderArgs, _ARG_FIELDS)
    if args.Pod is None:
        raise BadRequest("request body has no Pod")
    if args.Nodes is not None and args.Nodes.items:
        _check_utf8(body)
    return args


def _check_utf8(body: bytes) -> None:
    """Full-nodes mode echoes the kept nodes' bytes back: they must be valid UTF-8 even where
    the decoder skipped them (names mode never sends skipped bytes back, so needs no check)."""
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"request body is not valid JSON: invalid UTF-8 at byte {exc.start}"
        ) from exc


def decode_binding_args(body: bytes) -> ExtenderBindingArgs:
    """Decode a bind body; raise :class:`BadRequest` if a required field is empty."""
    args = _decode(body, _binding_decoder, ExtenderBindingArgs, _BINDING_FIELDS)
    if not (args.PodName and args.PodNamespace and args.Node):
        args = _decode_any_case(body, _binding_decoder, ExtenderBindingArgs, _BINDING_FIELDS)
    missing = [f for f in ("PodName", "PodNamespace", "Node") if not getattr(args, f)]
    if missing:
        raise BadRequest(f"bind request lacks {', '.join(missing)}")
    return args


def decode_node(raw: bytes | msgspec.Raw) -> Node:
    """Decode the fields of a v1.Node the extender uses; :class:`BadRequest` if they are not
    the shape of a v1.Node (full-nodes mode: the node came in the request body)."""
    try:
        node: Node = _parsed(_node_decoder, raw)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"a node in Nodes.items is not a v1.Node: {exc}") from exc
    return node


_preemption_decoder = msgspec.json.Decoder(ExtenderPreemptionArgs)
_PREEMPTION_FIELDS = _field_names(ExtenderPreemptionArgs)
_VICTIMS_FIELDS = _field_names(MetaVictims)  # the same two names as Victims
_META_POD_FIELDS = _field_names(MetaPod)


def _normalise_preemption(data: Any) -> Any:
    """Go's decoder matches every struct's keys case-insensitively, so the victims' keys too
    (``Pods``, ``NumPDBViolations``, ``UID``); a victim pod's own keys are JSON tags, read as
    the filter reads the pod."""
    out = _normalise_keys(data, _PREEMPTION_FIELDS)
    for which in ("NodeNameToVictims", "NodeNameToMetaVictims"):
        victims = out.get(which)
        if not isinstance(victims, dict):
            continue
        for node, found in victims.items():
            if not isinstance(found, dict):
                continue
            found = victims[node] = _normalise_keys(found, _VICTIMS_FIELDS)
            pods = found.get("Pods")
            if which == "NodeNameToMetaVictims" and isinstance(pods, list):
                found["Pods"] = [_normalise_keys(p, _META_POD_FIELDS) for p in pods]
    return out


def decode_preemption_args(body: bytes) -> ExtenderPreemptionArgs:
    """Decode a preempt body; raise :class:`BadRequest` if it has no usable ``Pod`` or a field
    the extender reads has the wrong type."""
    try:
        args: ExtenderPreemptionArgs = _parsed(_preemption_decoder, body)
    except msgspec.ValidationError:
        args = _decode_any_case(
            body, _preemption_decoder, ExtenderPreemptionArgs, _normalise_preemption
        )
    if args.Pod is None:
        args = _decode_any_case(
            body, _preemption_decoder, ExtenderPreemptionArgs, _normalise_preemption
        )
    if args.Pod is None:
        raise BadRequest("request body has no Pod")
    return args


_raw_names_decoder = msgspec.json.Decoder(ExtenderArgsRawNames)
_names_decoder = msgspec.json.Decoder(list[str])


def decode_extender_args_raw_names(body: bytes) -> ExtenderArgs | ExtenderArgsRawNames:
    """Like :func:`decode_extender_args`, but a names-mode body keeps ``NodeNames`` raw (check
    it with :func:`decode_node_names` before trusting it). Any other body, or any key spelled
    another way, takes :func:`decode_extender_args` and its errors."""
    try:
        args = _raw_names_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return decode_extender_args(body)
    if args.Pod is None or (args.Nodes is None) == (args.NodeNames == NULL):
        return decode_extender_args(body)  # no Pod, neither mode, or both
    if args.Nodes is not None:
        if args.Nodes.items:
            _check_utf8(body)
        return ExtenderArgs(args.Pod, args.Nodes, None)
    return args


def decode_node_names(raw: msgspec.Raw | bytes) -> list[str]:
    """The names of a raw ``NodeNames`` array; :class:`BadRequest` as
    :func:`decode_extender_args` would say it if they are not strings or not valid JSON."""
    try:
        names: list[str] = _parsed(_names_decoder, raw)
    except msgspec.ValidationError as exc:
        where = str(exc).replace("`$", "`$.NodeNames", 1)
        raise BadRequest(f"request body does not match ExtenderArgs: {where}") from exc
    return names
