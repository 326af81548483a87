"""A faithful fake Bitrix24 portal: a real aiohttp server on 127.0.0.1 with in-memory state.

Follows the official REST docs (``bitrix24/b24restdocs``; each behaviour names its page) and the
contract in ``/work/shared/docs/bitrix24-contract.md``: an OAuth server that renews only the
refresh tokens it issued (shared by several fakes with ``oauth_server=``, as oauth.bitrix.info
is), REST methods (OAuth ``/rest/{method}`` and inbound webhook ``/rest/{user}/{secret}/{method}``)
taking exactly their documented parameters (unknown keys ignored), ``batch`` with ``$result[..]``
references, the leaky-bucket limit (503 or 429 ``QUERY_LIMIT_EXCEEDED``), the documented error
codes (``ERROR_CORE``, ``ENGINE_REGISTER_ERROR_*``...), error injection, signed
``/rest/download.json`` links that answer an nginx 404 page without the download headers, both
install forms (``install``: ONAPPINSTALL; ``install_in_frame``: the install page, then
``BX24.installFinish()``, before which no event is sent), and outbound deliveries (events, bot
events) form-encoded the way PHP ``http_build_query`` does it.

Like Bitrix24, list rows carry numbers as strings (``"ID": "17"``); cast where you read them.

Counters for assertions: ``requests`` (HTTP REST requests: (method, monotonic time)), ``calls``
(every method run, batch commands included: (method, params)), ``count(method)`` (over ``calls``),
``comments``, ``bot_messages``, ``layout_blocks``, ``transcriptions``, ``bindings``,
``ai_engines``, ``refresh_count``, ``downloads``, ``refused_downloads``, ``notifications``,
``im_messages``, ``withheld_events``, ``install_finish_calls``.
"""

from tests.fakes.portal.models import NGINX_404, FakeCall, FakeError, php_form
from tests.fakes.portal.server import FakePortal

__all__ = ["NGINX_404", "FakeCall", "FakeError", "FakePortal", "php_form"]
