"""PHP ``http_build_query`` encoding, for ``batch`` command strings (``a[b][0]=x``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    if value is None:  # http_build_query drops nulls
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(f"{prefix}[{key}]" if prefix else str(key), item)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _flatten(f"{prefix}[{index}]", item)
    elif isinstance(value, bool):
        yield prefix, "1" if value else "0"
    else:
        yield prefix, str(value)


def php_query(params: Mapping[str, Any]) -> str:
    """Encode nested params the way PHP's ``http_build_query`` does (RFC 3986-ish escaping).

    ``$result[...]`` batch references are kept readable (``$``, brackets unescaped in values), the
    portal substitutes them before parsing.
    """
    pairs = list(_flatten("", params))
    return urlencode(pairs, safe="[]$")
