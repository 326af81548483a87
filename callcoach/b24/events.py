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

import functools
import hmac
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 16
MAX_FIELDS = 10_000

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")


class EventParseError(ValueError):
    """An event body could not be parsed; ``reason`` says why (safe to log: no values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _split_key(key: str) -> tuple[str, ...]:
    """``data[FILES][0][ID]`` → ``("data", "FILES", "0", "ID")``; ``a[]`` → ``("a", "")``."""
    match = _KEY_RE.match(key)
    if match is None:
        raise EventParseError(f"malformed key {key[:60]!r}")
    parts = (match.group(1), *_PART_RE.findall(match.group(2)))
    if len(parts) > MAX_DEPTH:
        raise EventParseError("keys nested too deep")
    return parts


# Every call end of every portal carries the same twenty-odd keys (``data%5BCALL_ID%5D``...), and
# decoding and splitting them was a third of the intake's parsing time; their parts are kept.
# Only short keys are: a forged body's long ones must not fill memory. (A key that fails to
# parse raises, and an exception is never cached.)
_CACHED_KEY = 120


@functools.lru_cache(maxsize=2048)
def _form_key(raw: str) -> tuple[str, ...]:
    return _split_key(unquote_plus(raw))


def _form_key_parts(raw: str) -> tuple[str, ...]:
    return _form_key(raw) if len(raw) <= _CACHED_KEY else _split_key(unquote_plus(raw))


def unflatten(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest PHP-style key/value pairs; conflicting keys (``a=1`` and ``a[b]=2``) are an error."""
    return _nest((_split_key(key), value) for key, value in pairs)


def _nest(items: Iterable[tuple[tuple[str, ...], str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for parts, value in items:
        node = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if part == "":  # a[] appends: give it the next free index
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                if isinstance(node.get(part), dict):
                    raise EventParseError(f"key {_joined(parts)[:60]!r} is both a value and a group")
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise EventParseError(f"key {_joined(parts)[:60]!r} is both a value and a group")
                node = child
    # the top level is always the body's fields, even when their names are all numbers ("0=")
    return {k: _listify(v) for k, v in root.items()}


def _joined(parts: tuple[str, ...]) -> str:
    """The key as it was sent (decoded), for an error message."""
    return parts[0] + "".join(f"[{p}]" for p in parts[1:])


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
    # urllib's parse_qsl(keep_blank_values=True, strict_parsing=True), with the keys' parts
    # cached: the same fields, the same '+' and %-decoding (invalid UTF-8 in an escape becomes
    # U+FFFD, as there), the same refusal of a field without '='
    fields = text.split("&") if text else []
    if len(fields) > MAX_FIELDS:
        raise EventParseError("malformed form body: Max number of fields exceeded")
    items = []
    for field in fields:
        raw, sep, value = field.partition("=")
        if not sep:
            raise EventParseError(f"malformed form body: bad query field: {field[:60]!r}")
        value = unquote_plus(value) if "%" in value or "+" in value else value
        items.append((_form_key_parts(raw), value))
    return _nest(items)


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
