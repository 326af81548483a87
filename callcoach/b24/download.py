"""Downloading a call recording from the portal: a part of ``B24Client``."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp

from .addresses import forbidden
from .errors import (
    B24TransportError,
    DownloadFailed,
    DownloadTooLarge,
    ForbiddenDownload,
    NotAudio,
)

log = logging.getLogger(__name__)


class Downloads:
    # B24Client's, set in its __init__
    _session: aiohttp.ClientSession
    _timeout: aiohttp.ClientTimeout
    user_agent: str

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        max_bytes: int,
        allowed_hosts: Collection[str],
        max_redirects: int = 5,
        referer: str | None = None,
        accept_language: str = "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7",
    ) -> int:
        """Stream ``url`` to ``dest`` (temp file in the same folder, then renamed); return its size.

        The GET carries what ``settings/how-to-call-rest-api/general-principles.md`` asks for a
        signed download link: ``User-Agent``, ``Accept: */*``, ``Accept-Language`` and
        ``Referer: https://<portal>/`` (``referer``; the link's own host by default); without
        them the portal may answer the file name and an nginx 404 page. A body that is a page or
        text rather than audio is refused (``NotAudio``) and nothing is kept.

        Every hop (redirects are followed by hand) must be http(s) on a host in ``allowed_hosts``
        (``host`` or ``host:port``), else ``ForbiddenDownload``. Over ``max_bytes`` →
        ``DownloadTooLarge`` and nothing is left behind. The URL is never logged: it is signed.
        """
        allowed = {h.lower() for h in allowed_hosts}
        headers = {
            "User-Agent": self.user_agent,
            "Accept": "*/*",
            "Accept-Language": accept_language,
            "Referer": referer or f"https://{urlsplit(url).netloc}/",
        }
        current = url
        for _hop in range(max_redirects + 1):
            parts = urlsplit(current)
            host = (parts.hostname or "").lower()
            netloc = parts.netloc.rsplit("@", 1)[-1].lower()
            if (
                parts.scheme not in ("http", "https")
                or not host
                or (host not in allowed and netloc not in allowed)
            ):
                raise ForbiddenDownload("FORBIDDEN_DOWNLOAD", f"host {host or '?'} is not allowed")
            started = time.monotonic()
            try:
                async with self._session.get(
                    current,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=self._timeout.total, sock_read=self._timeout.total
                    ),
                    headers=headers,
                ) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                        current = urljoin(current, resp.headers["Location"])
                        continue
                    if resp.status != 200:
                        raise DownloadFailed(
                            "DOWNLOAD_FAILED", f"HTTP {resp.status} from {host}", resp.status
                        )
                    declared = resp.content_length
                    if declared is not None and declared > max_bytes:
                        raise DownloadTooLarge("DOWNLOAD_TOO_LARGE", f"{declared} bytes > {max_bytes}")
                    if reason := not_audio_reason(resp.headers.get("Content-Type", ""), b""):
                        raise NotAudio("DOWNLOAD_NOT_AUDIO", reason)
                    size = await _stream_to(resp, dest, max_bytes)
            except (aiohttp.ClientError, TimeoutError) as exc:
                if refused := forbidden(exc):  # the host resolved to an address never dialled
                    raise ForbiddenDownload("FORBIDDEN_DOWNLOAD", str(refused)) from None
                raise B24TransportError("TRANSPORT", f"download from {host}: {type(exc).__name__}") from None
            log.info("b24 download host=%s bytes=%d in %.3fs", host, size, time.monotonic() - started)
            return size
        raise DownloadFailed("TOO_MANY_REDIRECTS", f"more than {max_redirects} redirects")


_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml", "application/javascript")
_PAGE_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<center", b"{", b"[")
_NOT_AUDIO_HINT = (
    " instead of the recording (an nginx 404 page? general-principles.md: the download GET needs "
    "User-Agent, Accept, Accept-Language and Referer); nothing was analysed"
)


def not_audio_reason(content_type: str, head: bytes) -> str | None:
    """Why a download is not audio (a page or text by its type or first bytes), or None."""
    kind = content_type.split(";")[0].strip().lower()
    if kind.startswith(_TEXT_TYPES):
        return f"the portal sent {kind}{_NOT_AUDIO_HINT}"
    if head.lstrip()[:16].lower().startswith(_PAGE_STARTS):
        return f"the portal sent a page or text{_NOT_AUDIO_HINT}"
    return None


async def _stream_to(resp: aiohttp.ClientResponse, dest: Path, max_bytes: int) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in resp.content.iter_chunked(64 * 1024):
                if size == 0 and (reason := not_audio_reason("", chunk)):
                    raise NotAudio("DOWNLOAD_NOT_AUDIO", reason)
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadTooLarge("DOWNLOAD_TOO_LARGE", f"more than {max_bytes} bytes")
                out.write(chunk)
        os.replace(tmp_name, dest)
    except BaseException:
        os.unlink(tmp_name)
        raise
    return size
