"""The aiohttp transport under httpx, against raw loopback servers that misbehave in each way a network can.

What matters is the mapping: a failure before the request left must read as "not sent" (the client may
send it again), and every failure after it as "sent, no answer" (a create is never sent twice).
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from botkit.chatwoot import ChatwootClient, ChatwootUnreachable, DeliveryUnknown
from botkit.transport import AiohttpTransport

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(reply: Reply) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A loopback server that reads each request's head and body, records it, then runs `reply`."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                seen.append(head + await reader.readexactly(length))
                await reply(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", seen


def answer(status: str, body: bytes, *extra: str) -> Reply:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = [f"HTTP/1.1 {status}", "Content-Type: application/json", f"Content-Length: {len(body)}", *extra]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
    return reply


async def close_without_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    raise ConnectionError  # the server closes the connection after reading the request


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
    raise ConnectionError


async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\": 1")
    await writer.drain()
    raise ConnectionError


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"this is not HTTP\r\n\r\n")
    await writer.drain()
    raise ConnectionError


async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client(base_url: str, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, transport=AiohttpTransport(), timeout=timeout)


async def test_an_answer_comes_back_whole_with_its_status_headers_and_body():
    async with raw_server(answer("201 Created", b'{"id": 7}', "X-Request-Id: abc")) as (url, seen):
        async with client(url) as http:
            response = await http.post("/api/v1/x", json={"content": "hi"}, headers={"api_access_token": "t0k"})
    assert response.status_code == 201 and response.reason_phrase == "Created"
    assert response.json() == {"id": 7} and response.headers["x-request-id"] == "abc"
    assert b"api_access_token: t0k" in seen[0] and seen[0].endswith(b'{"content":"hi"}')
    assert seen[0].startswith(b"POST /api/v1/x HTTP/1.1")


async def test_a_gzip_answer_is_decoded_once():
    body = gzip.compress(b'{"ok": true}')
    async with raw_server(answer("200 OK", body, "Content-Encoding: gzip")) as (url, _):
        async with client(url) as http:
            assert (await http.get("/")).json() == {"ok": True}


async def test_cookies_a_server_sets_are_not_sent_back():
    async with raw_server(answer("200 OK", b"{}", "Set-Cookie: session=abc; Path=/")) as (url, seen):
        async with client(url) as http:
            await http.get("/")
            await http.get("/")
    assert len(seen) == 2 and b"cookie" not in seen[1].lower()


async def test_connections_are_kept_alive():
    async with raw_server(answer("200 OK", b"{}")) as (url, seen):
        async with client(url) as http:
            for _ in range(3):
                await http.get("/")
    assert len(seen) == 3  # all three on one connection: the server loop read them in turn


async def test_nothing_listening_is_a_connect_error():
    async with client(f"http://127.0.0.1:{free_port()}") as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


@pytest.mark.parametrize(("reply", "error"), [
    (close_without_answer, httpx.RemoteProtocolError),
    (reset, httpx.ReadError),
    (truncated, httpx.ReadError),
    (garbage, httpx.RemoteProtocolError),
    (never, httpx.ReadTimeout),
])
async def test_failures_after_sending_never_read_as_not_sent(reply, error):
    async with raw_server(reply) as (url, seen):
        async with client(url, timeout=0.5) as http:
            with pytest.raises(error) as caught:
                await http.post("/", json={})
    assert len(seen) == 1
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


@pytest.mark.parametrize("reply", [close_without_answer, reset, truncated, garbage])
async def test_a_message_whose_connection_fails_after_sending_is_sent_once(reply):
    async with raw_server(reply) as (url, seen):
        async with ChatwootClient(url, "t0ken", backoff_base=0.01, backoff_cap=0.02, deadline=2) as chatwoot:
            with pytest.raises(DeliveryUnknown) as caught:
                await chatwoot.send_message(1, 2, "once")
    assert len(seen) == 1
    assert "t0ken" not in str(caught.value)


async def test_an_idempotent_call_is_retried_after_a_dropped_connection():
    async with raw_server(close_without_answer) as (url, seen):
        async with ChatwootClient(url, "t0ken", backoff_base=0.01, backoff_cap=0.02, deadline=0.5) as chatwoot:
            with pytest.raises(ChatwootUnreachable):
                await chatwoot.toggle_status(1, 2, "open")
    assert len(seen) > 1


async def test_a_server_that_never_reads_the_body_cannot_hang_the_request():
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the head, then nothing: the socket buffers fill, the write blocks
        await asyncio.sleep(3600)

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    async with server, client(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", timeout=0.3) as http:
        with pytest.raises(httpx.TransportError) as caught:
            # httpx's four timeouts together bound it (1.2 s); wait_for only turns a hang into a failure
            await asyncio.wait_for(http.post("/", content=b"x" * 16_000_000), 30)
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
