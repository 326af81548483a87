"""Parsing of event deliveries from Bitrix24.

Events arrive form-encoded with PHP ``http_build_query`` keys (``data[CALL_ID]``,
``auth[application_token]``, ``data[FILES][0][ID]``); some newer deliveries are JSON. Both become
the same nested dict.

Numeric keys: a level whose keys are exactly ``0..n-1`` (in any order) becomes a ``list``, as
``http_build_query`` produced it from a PHP list; any other numeric keys stay ``str`` dict keys
(``data[USERS][15]`` → ``{"USERS": {"15": ...}}``). ``a[]=x`` appends to a list. All scalar values
are strings in form bodies (PHP sends everything as text): cast where you read them.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any
from urllib.parse import parse_qsl

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 16

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")


class EventParseError(ValueError):
    """An event body could not be parsed; ``reason`` says why (safe to log: no values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def split_key(key: str) -> list[str]:
    """``data[FILES][0][ID]`` → ``["data", "FILES", "0", "ID"]``; ``a[]`` → ``["a", ""]``."""
    match = _KEY_RE.match(key)
    if match is None:
        raise EventParseError(f"malformed key {key[:60]!r}")
    parts = [match.group(1), *_PART_RE.findall(match.group(2))]
    if len(parts) > MAX_DEPTH:
        raise EventParseError("keys nested too deep")
    return parts


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Nest PHP-style key/value pairs; conflicting keys (``a=1`` and ``a[b]=2``) are an error."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = split_key(key)
        node = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if part == "":  # a[] appends: give it the next free index
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                if isinstance(node.get(part), dict):
                    raise EventParseError(f"key {key[:60]!r} is both a value and a group")
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise EventParseError(f"key {key[:60]!r} is both a value and a group")
                node = child
    # the top level is always the body's fields, even when their names are all numbers ("0=")
    return {k: _listify(v) for k, v in root.items()}


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        indexes = sorted(int(k) for k in converted)
        if indexes == list(range(len(indexes))):
            return [converted[str(i)] for i in indexes]
    return converted


def parse_form(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise EventParseError("body is not UTF-8") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, max_num_fields=10_000)
    except ValueError as exc:
        raise EventParseError(f"malformed form body: {str(exc)[:80]}") from None
    return unflatten(pairs)


def parse_event_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Parse a delivery (form or JSON) into a nested dict, or raise ``EventParseError``."""
    if not body or not body.strip():
        raise EventParseError("empty body")
    if len(body) > MAX_BODY_BYTES:
        raise EventParseError("body too large")
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime == "application/json" or mime.endswith("+json"):
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise EventParseError("malformed JSON") from None
        except RecursionError:  # thousands of nested brackets
            raise EventParseError("JSON nested too deep") from None
        if not isinstance(parsed, dict):
            raise EventParseError("JSON body is not an object")
        if _too_deep(parsed, MAX_DEPTH):
            raise EventParseError("JSON nested too deep")
        return parsed
    if mime in ("", "application/x-www-form-urlencoded", "text/plain"):
        return parse_form(body)
    raise EventParseError(f"unsupported content type {mime[:60]!r}")


def _too_deep(value: Any, limit: int) -> bool:
    """Deeper than ``limit`` levels (the same bound as form keys; a real event has about five)?"""
    level = [value]
    for _ in range(limit + 1):
        level = [
            child
            for node in level
            if isinstance(node, (dict, list))
            for child in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return False
    return True


def tokens_equal(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of application tokens; empty or missing never matches."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
