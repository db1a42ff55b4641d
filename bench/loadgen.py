"""A small closed-loop HTTP/1.1 load generator (asyncio, keep-alive, raw sockets).

Each connection sends a request, waits for the whole response, records the latency and
sends the next, until a request count or a time limit is reached (both bounded). It
only ever connects to 127.0.0.1. Requests are pre-encoded bytes, so the client spends
little CPU per request and the server is what is measured.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    requests: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(p / 100 * len(data)))]

    @property
    def median(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else 0.0


def build_request(
    method: str, path: str, body: object | None = None, headers: dict[str, str] | None = None
) -> bytes:
    payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body is not None:
        if not any(k.lower() == "content-type" for k in (headers or {})):
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value.strip())
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
        return status, body
    return status, await reader.readexactly(length) if length else b""


async def _worker(
    port: int,
    next_request: Callable[[int], bytes],
    counter: list[int],
    limit: int,
    deadline: float,
    latencies: list[float],
    statuses: dict[int, int],
    check: Callable[[int, bytes], None] | None,
    recycle: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        while counter[0] < limit and time.perf_counter() < deadline:
            if recycle and sent and sent % recycle == 0:
                # A fresh connection lands on whichever worker accepts first; recycling
                # keeps one unlucky spread of connections over workers from deciding a run.
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                if counter[0] >= limit:  # the others took the rest while this one reconnected
                    break
            sent += 1
            n = counter[0]
            counter[0] += 1
            req = next_request(n)
            t0 = time.perf_counter()
            writer.write(req)
            status, body = await _read_response(reader)
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            if check is not None:
                check(status, body)
    finally:
        writer.close()


def run(
    port: int,
    next_request: Callable[[int], bytes],
    *,
    requests: int = 5000,
    seconds: float = 20.0,
    connections: int = 16,
    check: Callable[[int, bytes], None] | None = None,
    recycle: int = 50,
) -> Result:
    """Send up to ``requests`` requests (at most ``seconds``) over ``connections`` sockets.

    Each socket is replaced after ``recycle`` requests (0: never), so that connections are
    spread over the server's worker processes afresh many times in a run.
    """

    async def main() -> Result:
        counter = [0]
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(
            *[
                _worker(port, next_request, counter, requests, deadline, latencies, statuses, check, recycle)
                for _ in range(connections)
            ]
        )
        return Result(len(latencies), time.perf_counter() - start, latencies, statuses)

    return asyncio.run(main())
