"""A small closed-loop HTTP/1.1 load generator (asyncio, keep-alive, raw sockets).

Each connection sends a request, waits for the whole response, records the latency and
sends the next, until a request count or a time limit is reached (both bounded). It
only ever connects to 127.0.0.1. Requests are pre-encoded bytes, so the client spends
little CPU per request and the server is what is measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
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
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    reader, writer = conn
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


def gunicorn_stats(port: int) -> dict[int, list[str]]:
    """pid -> the fields of ``/proc/<pid>/stat`` after the command name, for the gunicorn
    master and workers bound to ``port`` (found by the bind address in their command line)."""
    needle = f"127.0.0.1:{port}\0".encode()  # argv entries end with NUL
    found: dict[int, list[str]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle not in f.read():
                    continue
            with open(f"/proc/{pid}/stat") as f:
                found[int(pid)] = f.read().rpartition(")")[2].split()
        except OSError:
            continue
    return found


def worker_pids(port: int) -> list[int]:
    """The worker processes of the gunicorn bound to ``port``: children of its master."""
    found = gunicorn_stats(port)
    return sorted(pid for pid, stat in found.items() if int(stat[1]) in found)  # stat[1]: ppid


def _owners(port: int) -> dict[int, int]:
    """client port -> pid of the server process holding the accepted socket (``ss``)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    owners = {}
    for line in out.splitlines():
        parts = line.split()
        m = re.search(r"pid=(\d+)", line)
        if len(parts) >= 4 and m:
            owners[int(parts[3].rpartition(":")[2])] = int(m.group(1))
    return owners


async def _balanced(port: int, conns: list, tries: int = 60) -> tuple[list, bool]:
    """Re-open connections until the server's workers hold equal shares (within one).

    A burst of new connections to an idle server is mostly accepted by whichever worker
    wakes first: a round of a fraction of a second then measures one worker, not the
    server. Both sides of a paired benchmark are spread the same way."""
    pids = worker_pids(port)
    if len(pids) < 2 or not shutil.which("ss"):
        return conns, False
    for _ in range(tries):
        owners = _owners(port)
        by_pid: dict[int, list[int]] = {pid: [] for pid in pids}
        pending = False
        for i, (_r, w) in enumerate(conns):
            pid = owners.get(w.get_extra_info("sockname")[1])
            if pid in by_pid:
                by_pid[pid].append(i)
            else:
                pending = True  # not accepted yet
        if pending:
            await asyncio.sleep(0.005)
            continue
        most = max(by_pid.values(), key=len)
        if len(most) - min(len(v) for v in by_pid.values()) <= 1:
            return conns, True
        i = most[-1]
        conns[i][1].close()
        conns[i] = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.002)
    return conns, False


def run(
    port: int,
    next_request: Callable[[int], bytes],
    *,
    requests: int = 5000,
    seconds: float = 20.0,
    connections: int = 16,
    check: Callable[[int, bytes], None] | None = None,
    recycle: int = 0,
    balance: bool = True,
) -> Result:
    """Send up to ``requests`` requests (at most ``seconds``) over ``connections`` sockets.

    With ``balance`` the sockets are first spread evenly over the server's worker
    processes (see ``_balanced``); the clock starts after that. Each socket is replaced
    after ``recycle`` requests (0: never).
    """

    async def main() -> Result:
        counter = [0]
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
        if balance:
            conns, _even = await _balanced(port, conns)
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(
            *[
                _worker(
                    port, next_request, counter, requests, deadline, latencies, statuses, check, recycle, conn
                )
                for conn in conns
            ]
        )
        return Result(len(latencies), time.perf_counter() - start, latencies, statuses)

    return asyncio.run(main())
