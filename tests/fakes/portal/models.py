"""The fake portal's records (users, departments, calls, bots), its errors, and the helpers
that read filters and PHP forms the way Bitrix24 does."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

PAGE = 50
MSK = timezone(timedelta(hours=3))
MAX_BOT_MESSAGE = 20_000
# what nginx answers for a missing file: the body a download without the right headers may get
NGINX_404 = (
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    "<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class FakeError(Exception):
    def __init__(self, code: str, description: str = "", status: int = 400) -> None:
        super().__init__(code)
        self.code, self.description, self.status = code, description, status


@dataclass
class FakeUser:
    id: int
    name: str
    last_name: str = ""
    department_ids: list[int] = field(default_factory=list)
    is_admin: bool = False

    def row(self) -> dict[str, Any]:
        return {
            "ID": str(self.id),
            "ACTIVE": True,
            "NAME": self.name,
            "LAST_NAME": self.last_name,
            "EMAIL": f"user{self.id}@example.test",
            "UF_DEPARTMENT": list(self.department_ids),
            "IS_ONLINE": "N",
            "USER_TYPE": "employee",
        }


@dataclass
class FakeDepartment:
    id: int
    name: str
    head_user_id: int | None = None
    parent: int | None = None

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"ID": str(self.id), "NAME": self.name, "SORT": 500}
        if self.parent is not None:
            row["PARENT"] = str(self.parent)
        if self.head_user_id is not None:
            row["UF_HEAD"] = str(self.head_user_id)
        return row


@dataclass
class FakeCall:
    id: int
    call_id: str
    user_id: int
    duration: int
    failed_code: int
    call_type: int
    start_date: datetime
    phone_number: str
    recording: bytes | None
    record_after_polls: int
    crm_activity_id: int | None
    bindings: list[tuple[int, int]]
    crm_entity_type: str | None
    crm_entity_id: int | None
    record_file_id: int | None = None
    polls: int = 0

    def row(self) -> dict[str, Any]:
        visible = self.record_file_id is not None and self.polls > self.record_after_polls
        s = lambda v: None if v is None else str(v)  # noqa: E731  Bitrix sends numbers as text
        return {
            "ID": str(self.id),
            "CALL_ID": self.call_id,
            "CALL_TYPE": str(self.call_type),
            "PORTAL_USER_ID": str(self.user_id),
            "PORTAL_NUMBER": "reg123",
            "PHONE_NUMBER": self.phone_number,
            "CALL_START_DATE": self.start_date.isoformat(),
            "CALL_DURATION": str(self.duration),
            "CALL_FAILED_CODE": str(self.failed_code),
            "CALL_FAILED_REASON": "Success call" if self.failed_code == 200 else "Failed",
            "RECORD_FILE_ID": s(self.record_file_id) if visible else None,
            "RECORD_DURATION": str(self.duration) if visible else None,
            "CALL_RECORD_URL": "",
            "CRM_ENTITY_TYPE": self.crm_entity_type,
            "CRM_ENTITY_ID": s(self.crm_entity_id),
            "CRM_ACTIVITY_ID": s(self.crm_activity_id),
            "COST": "0.0000",
            "COST_CURRENCY": "RUR",
            "CALL_VOTE": None,
            "CALL_CATEGORY": "external" if self.call_type != 5 else "info",
        }


@dataclass
class FakeBot:
    id: int
    code: str
    name: str
    event_mode: str
    webhook_url: str | None
    fields: dict[str, Any]
    commands: dict[str, int] = field(default_factory=dict)
    queue: list[dict[str, Any]] = field(default_factory=list)
    acked: int = 0

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "type": self.fields.get("type", "bot"),
            "isHidden": False,
            "isSupportOpenline": False,
            "isReactionsEnabled": True,
            "backgroundId": None,
            "language": "ru",
            "moduleId": "rest",
            "appId": "local.callcoach",
            "eventMode": self.event_mode,
            "countMessage": 0,
            "countCommand": len(self.commands),
            "countChat": 0,
            "countUser": 0,
        }


def php_form(data: Mapping[str, Any]) -> str:
    """``http_build_query`` as PHP does it: brackets escaped, true → 1, null dropped."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}[{k}]" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif isinstance(value, bool):
            pairs.append((prefix, "1" if value else "0"))
        else:
            pairs.append((prefix, str(value)))

    walk("", data)
    return urlencode(pairs)


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _sort_key(value: Any) -> tuple[int, int, str]:
    number = _int(value)
    return (0, number, "") if number is not None else (1, 0, str(value or ""))


def _row_key(key: str, row: Mapping[str, Any]) -> tuple[int, int, str]:
    return _sort_key(row.get(key))


def _parse_dt(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value).replace(" ", "T"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=MSK)


_OP_RE = re.compile(r"^(>=|<=|><|!=|!@|>|<|=|!|@|%)?(.+)$")


def _match_filter(row: Mapping[str, Any], flt: Mapping[str, Any]) -> bool:
    """Bitrix filter keys: ``FIELD``, ``>FIELD``, ``>=FIELD``, ``<=FIELD``, ``><FIELD`` [a, b], ``!FIELD``."""
    for raw_key, expected in flt.items():
        m = _OP_RE.match(str(raw_key))
        assert m
        op, key = m.group(1) or "=", m.group(2)
        actual = row.get(key, row.get(key.upper()))
        if op == "><":
            lo, hi = (list(expected.values()) if isinstance(expected, dict) else list(expected))[:2]
            if not (_cmp(actual, lo) >= 0 and _cmp(actual, hi) <= 0):
                return False
            continue
        if op in ("=", "!", "!=", "@", "!@"):
            options = (
                expected
                if isinstance(expected, (list, tuple))
                else (list(expected.values()) if isinstance(expected, dict) else [expected])
            )
            hit = any(_cmp(actual, o) == 0 for o in options)
            if hit != (op in ("=", "@")):
                return False
            continue
        if op == "%":
            if str(expected).lower() not in str(actual or "").lower():
                return False
            continue
        c = _cmp(actual, expected)
        if c is None or not {">": c > 0, "<": c < 0, ">=": c >= 0, "<=": c <= 0}[op]:
            return False
    return True


def _cmp(a: Any, b: Any) -> Any:
    if a is None:
        return None
    if isinstance(a, list):  # UF_DEPARTMENT contains
        return 0 if any(_cmp(x, b) == 0 for x in a) else 1
    ia, ib = _int(a), _int(b)
    if (
        ia is not None
        and ib is not None
        and re.fullmatch(r"-?\d+", str(a))
        and re.fullmatch(r"-?\d+", str(b))
    ):
        return (ia > ib) - (ia < ib)
    da, db = _parse_dt(a), _parse_dt(b)
    if da is not None and db is not None and "-" in str(a) and "-" in str(b):
        return (da > db) - (da < db)
    sa, sb = str(a), str(b)
    return (sa > sb) - (sa < sb)


@dataclass
class _Failure:
    code: str
    status: int
    times: int
    description: str
    reset_in: float


@dataclass
class _Page:
    items: list[dict[str, Any]]
    extra: dict[str, Any]
