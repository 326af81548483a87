"""Typed Bitrix24 errors: one class per error code the app reacts to differently.

``error_from_response`` maps the portal's ``{error, error_description}`` body (plus the HTTP status)
to a class from ``ERROR_CLASSES``; unknown codes become a plain ``B24Error``. Descriptions are
redacted of anything that looks like a token before they are stored, because exception text ends
up in logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SECRET_RE = re.compile(
    r"(?i)((?:access_token|refresh_token|auth|client_secret|application_token|token)[\"'=:\s]+)"
    r"[\"']?[A-Za-z0-9._|\-]{6,}"
)


def redact(text: str) -> str:
    """Replace values that follow token-ish names with ``***`` (best effort, for log text)."""
    return _SECRET_RE.sub(r"\1***", text)


class B24Error(Exception):
    """An error answered by Bitrix24 (or met on the way to it)."""

    def __init__(self, code: str, description: str = "", status: int | None = None) -> None:
        self.code = code
        self.description = redact(description or "")
        self.status = status
        super().__init__(f"{code}: {self.description}" if self.description else code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r})"


class ExpiredToken(B24Error):
    """401 ``expired_token``: refresh and retry once."""


class InvalidGrant(B24Error):
    """The refresh token is no longer accepted: the app must be re-installed on the portal."""


class QueryLimitExceeded(B24Error):
    """503/429 ``QUERY_LIMIT_EXCEEDED``: the portal's leaky bucket is full."""


class OperationTimeLimit(B24Error):
    """429 ``OPERATION_TIME_LIMIT``: the method used up its operating time; wait for the reset."""

    def __init__(
        self, code: str, description: str = "", status: int | None = None, reset_at: float | None = None
    ) -> None:
        super().__init__(code, description, status)
        self.reset_at = reset_at


class AccessDenied(B24Error):
    """403 ``ACCESS_DENIED``."""


class InsufficientScope(B24Error):
    """403 ``insufficient_scope``: the app lacks a scope; re-install with it."""


class NoAuthFound(B24Error):
    """401 ``NO_AUTH_FOUND``: wrong or missing token / webhook secret."""


class MethodNotFound(B24Error):
    """404 ``ERROR_METHOD_NOT_FOUND``."""


class NotFound(B24Error):
    """An entity does not exist (``ERROR_NOT_FOUND``, ``NOT_FOUND``, ``BOT_NOT_FOUND``...)."""


class PortalDeleted(B24Error):
    """``PORTAL_DELETED``: the portal is gone; stop working for it."""


class MethodConfirmWaiting(B24Error):
    """``METHOD_CONFIRM_WAITING``: an admin has not approved the method yet."""


class InternalServerError(B24Error):
    """500 ``INTERNAL_SERVER_ERROR`` (or an unexplained 5xx)."""


class B24TransportError(B24Error):
    """Timeout, refused connection, broken or non-JSON answer: the request may or may not have run."""


class ForbiddenDownload(B24Error):
    """A download URL points at a host that is not allowed."""


class DownloadTooLarge(B24Error):
    """A download is over the size cap."""


class DownloadFailed(B24Error):
    """A download answered a non-200 status."""


class NotAudio(B24Error):
    """A download answered a page or text, not a recording: it is never analysed."""


class ValidationFailed(B24Error):
    """``ERROR_CORE``: the portal's core refused the parameters ("CALL_ID should be set", an
    invalid field). The same request fails the same way again: never retried."""


ERROR_CLASSES: Mapping[str, type[B24Error]] = {
    "expired_token": ExpiredToken,
    "invalid_grant": InvalidGrant,
    "invalid_token": NoAuthFound,
    "QUERY_LIMIT_EXCEEDED": QueryLimitExceeded,
    "OPERATION_TIME_LIMIT": OperationTimeLimit,
    "ACCESS_DENIED": AccessDenied,
    "insufficient_scope": InsufficientScope,
    "NO_AUTH_FOUND": NoAuthFound,
    "ERROR_METHOD_NOT_FOUND": MethodNotFound,
    "ERROR_NOT_FOUND": NotFound,
    "NOT_FOUND": NotFound,
    "BOT_NOT_FOUND": NotFound,
    "PORTAL_DELETED": PortalDeleted,
    "METHOD_CONFIRM_WAITING": MethodConfirmWaiting,
    "INTERNAL_SERVER_ERROR": InternalServerError,
    "ERROR_CORE": ValidationFailed,
}


def error_from_response(status: int | None, body: Mapping[str, Any]) -> B24Error:
    """Build the typed error for an error body ``{error, error_description[, time]}``."""
    code = str(body.get("error") or "UNKNOWN_ERROR")
    description = str(body.get("error_description") or "")
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        cls = (
            InternalServerError
            if status is not None and status >= 500 and code == "UNKNOWN_ERROR"
            else B24Error
        )
    if cls is OperationTimeLimit:
        time_block = body.get("time") if isinstance(body.get("time"), Mapping) else {}
        reset = time_block.get("operating_reset_at") if time_block else None
        try:
            reset_at = float(reset) if reset is not None else None
        except (TypeError, ValueError):
            reset_at = None
        return OperationTimeLimit(code, description, status, reset_at=reset_at)
    return cls(code, description, status)
