"""The gateway's worker HTTP clients map failures onto 'try another replica' and 'timed out'."""

from __future__ import annotations

import asyncio
import socket

import pytest
from tests.gateway_fakes import CrashingWorker, FakeWorker, HostTransport, ServerThread, free_port

from hadis_gateway.worker_client import (
    HttpWorkerClient,
    HttpxWorkerClient,
    WorkerClient,
    WorkerTimeout,
    WorkerUnreachable,
)

BODY = b'{"requestId":"r1","prompt":"a cat","variant":"light","deadlineUnixS":9e9}'


def http_client() -> WorkerClient:
    return HttpWorkerClient(max_connections=4, connect_timeout_s=1.0)


def test_http_client_answers_and_maps_failures() -> None:
    worker = ServerThread(FakeWorker("l0", "light").app()).start()
    crashing = CrashingWorker()
    silent = socket.socket()  # listens (the kernel completes connections) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()

    async def run() -> None:
        client = http_client()
        try:
            status, body = await client.post(f"{worker.url}/v1/generate", BODY, 5.0)
            assert status == 200 and b'"requestId":"r1"' in body
            status, _ = await client.post(f"{worker.url}/nowhere", BODY, 5.0)
            assert status == 404
            with pytest.raises(WorkerUnreachable):
                await client.post(f"http://127.0.0.1:{free_port()}/v1/generate", BODY, 5.0)
            with pytest.raises(WorkerUnreachable):
                await client.post(f"{crashing.url}/v1/generate", BODY, 5.0)
            port = silent.getsockname()[1]
            with pytest.raises(WorkerTimeout):
                await client.post(f"http://127.0.0.1:{port}/v1/generate", BODY, 0.3)
        finally:
            await client.aclose()

    try:
        asyncio.run(run())
    finally:
        worker.stop()
        crashing.close()
        silent.close()


def test_httpx_client_over_a_transport() -> None:
    async def run() -> None:
        transport = HostTransport({"l0": FakeWorker("l0", "light").app()})
        client = HttpxWorkerClient(max_connections=4, connect_timeout_s=1.0, transport=transport)
        try:
            status, body = await client.post("http://l0/v1/generate", BODY, 5.0)
            assert status == 200 and b'"requestId":"r1"' in body
            with pytest.raises(WorkerUnreachable):
                await client.post("http://gone/v1/generate", BODY, 5.0)
        finally:
            await client.aclose()

    asyncio.run(run())


class ScriptedServer:
    """A raw HTTP server answering each request with the next scripted bytes (then closing if asked)."""

    def __init__(self, answers: list[tuple[bytes, bool]]) -> None:
        self.answers = answers
        self.connections = 0
        self.requests = 0

    async def start(self) -> int:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.server = server
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while self.answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            self.requests += 1
            answer, close = self.answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if close:
                break
        writer.close()


def test_http_client_reads_chunked_bodies_honours_close_and_survives_stale_connections() -> None:
    ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    closing = b"HTTP/1.1 503 Busy\r\nconnection: close\r\ncontent-length: 1\r\n\r\nx"

    async def run() -> None:
        script = ScriptedServer([(ok, False), (chunked, False), (closing, True), (ok, True), (ok, False)])
        port = await script.start()
        url = f"http://127.0.0.1:{port}/v1/generate"
        client = HttpWorkerClient(max_connections=2, connect_timeout_s=1.0)
        try:
            assert await client.post(url, BODY, 5.0) == (200, b"hi")
            assert await client.post(url, BODY, 5.0) == (200, b"abcde")  # same connection
            assert script.connections == 1
            assert await client.post(url, BODY, 5.0) == (503, b"x")  # and the client closes it
            assert await client.post(url, BODY, 5.0) == (200, b"hi")  # new connection, server closes
            await asyncio.sleep(0.05)
            # the server closed the idle connection: the client notices or retries on a new one
            assert await client.post(url, BODY, 5.0) == (200, b"hi")
            assert script.requests == 5 and script.connections == 3
        finally:
            await client.aclose()
            script.server.close()

    asyncio.run(run())


def test_http_client_bounds_requests_in_flight() -> None:
    async def run() -> None:
        active = peak = 0

        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal active, peak
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.02)
                active -= 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        client = HttpWorkerClient(max_connections=3, connect_timeout_s=1.0)
        try:
            answers = await asyncio.gather(*(client.post(url, BODY, 5.0) for _ in range(12)))
            assert answers == [(200, b"")] * 12 and peak == 3
        finally:
            await client.aclose()
            server.close()

    asyncio.run(run())
