"""Reading loosely typed numbers: Bitrix24's REST rows and form-encoded events carry numbers as
strings, and empty fields as "" or null. A leaf: it imports nothing of callcoach, so the REST
client, storage, the flow and the bot all read numbers the same way without importing each other."""

from __future__ import annotations

from typing import Any


def as_int(value: Any) -> int | None:
    """``"17"`` → 17; ``None``, ``""`` or anything unparsable → None."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def as_float(value: Any) -> float | None:
    """``"40.5"`` → 40.5; ``None``, ``""`` or anything unparsable → None."""
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
