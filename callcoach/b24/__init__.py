"""Async Bitrix24 REST client: knows nothing about calls or the web app."""

from .auth import PortalCredentials, TokenRefresher, TokenSink, derive_oauth_url
from .client import B24Client, B24Response, BatchResult, RequestHook
from .errors import (
    ERROR_CLASSES,
    AccessDenied,
    B24Error,
    B24TransportError,
    DownloadFailed,
    DownloadTooLarge,
    ExpiredToken,
    ForbiddenDownload,
    InsufficientScope,
    InternalServerError,
    InvalidGrant,
    MethodConfirmWaiting,
    MethodNotFound,
    NoAuthFound,
    NotFound,
    OperationTimeLimit,
    PortalDeleted,
    QueryLimitExceeded,
)
from .events import EventParseError, parse_event_body, tokens_equal
from .query import php_query
from .throttle import LeakyBucket

__all__ = [
    "ERROR_CLASSES",
    "AccessDenied",
    "B24Client",
    "B24Error",
    "B24Response",
    "B24TransportError",
    "BatchResult",
    "DownloadFailed",
    "DownloadTooLarge",
    "EventParseError",
    "ExpiredToken",
    "ForbiddenDownload",
    "InsufficientScope",
    "InternalServerError",
    "InvalidGrant",
    "LeakyBucket",
    "MethodConfirmWaiting",
    "MethodNotFound",
    "NoAuthFound",
    "NotFound",
    "OperationTimeLimit",
    "PortalCredentials",
    "PortalDeleted",
    "QueryLimitExceeded",
    "RequestHook",
    "TokenRefresher",
    "TokenSink",
    "derive_oauth_url",
    "parse_event_body",
    "php_query",
    "tokens_equal",
]
