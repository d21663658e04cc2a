"""An httpx transport that sends over aiohttp: httpx's API and error types, aiohttp's C-speed HTTP/1.1.

httpx's own transport (httpcore + the pure-Python h11 parser) costs ~1.3-1.8 ms of CPU per request on a
2-core machine; this one ~0.4 ms (bench/client.py), and a bot's throughput is bound by that cost. The
`httpx-aiohttp` package does the same job, but maps a dropped connection to `ConnectTimeout` ("never
sent"), which would let a create be sent twice. Here each aiohttp failure maps to the httpx error that says
truthfully whether the request can have reached the server:

- not sent: `ConnectError` (refused, DNS, TLS handshake), `ConnectTimeout`;
- sent, no answer: `ReadTimeout`, `RemoteProtocolError` (the server closed the connection or answered
  garbage), `ReadError` (reset, or a truncated body).

Bodies are read whole: the Chatwoot API answers small JSON documents, and httpx decodes the
Content-Encoding as it would for its own transport.
"""

from __future__ import annotations

import aiohttp
import httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=AiohttpTransport(max_connections=8))`; one aiohttp session per transport."""

    def __init__(self, *, max_connections: int = 8, keepalive_expiry: float = 30.0) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop, as aiohttp requires.
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=self._keepalive_expiry)
        # No cookies: an API client sends its token, and a session cookie would only carry state between calls.
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     auto_decompress=False, skip_auto_headers=("User-Agent",))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        phases = [timeout.get(phase) for phase in ("pool", "connect", "write", "read")]
        # aiohttp has no write timeout: the whole exchange is bounded by the sum of httpx's phases instead
        total = None if None in phases else sum(phases)
        try:
            async with self._session.request(
                request.method,
                str(request.url),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                data=await request.aread() or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=total, connect=timeout.get("pool"),
                                              sock_connect=timeout.get("connect"), sock_read=timeout.get("read")),
            ) as answer:
                content = await answer.read()
                # httpx would keep cookies and send them back; an API client authenticates with its token
                headers = [(k, v) for k, v in answer.raw_headers if k.lower() != b"set-cookie"]
                status = answer.status
                reason = answer.reason
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(_describe(exc), request=request) from exc
        except aiohttp.SocketTimeoutError as exc:
            raise httpx.ReadTimeout(_describe(exc), request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(_describe(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientResponseError) as exc:
            raise httpx.RemoteProtocolError(_describe(exc), request=request) from exc
        except aiohttp.InvalidURL as exc:
            raise httpx.UnsupportedProtocol(_describe(exc), request=request) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            # ClientOSError (reset), ClientPayloadError (truncated body), and anything newer: sent, no answer.
            raise httpx.ReadError(_describe(exc), request=request) from exc
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": (reason or "").encode("latin-1")}
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content), request=request,
                              extensions=extensions)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _describe(error: BaseException) -> str:
    """The error's kind and text; aiohttp's texts name the host and port, never headers or bodies."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
