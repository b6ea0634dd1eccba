"""How answers leave the emulator: JSON with the Hub's ETag, errors, redirects, byte ranges,
and streamed bodies whose bytes are counted as the client's TCP stack acknowledges them.

`send` streams any byte source (file, or a JSON body hit by a fault) and applies body faults:
`reset` writes part of the body, then resets the connection (TCP RST); `truncate` writes part,
then closes cleanly; `corrupt` flips one byte. It records in the request's `Context` how many
body bytes were sent: a body written to its end counts whole; one cut short (the client went
away or was killed, a `reset` or `truncate` fault) counts what the client's kernel acknowledged
(`AckCounter`), not what was handed to our socket, part of which can still sit in our send
buffer: a killed client is charged exactly what reached it. With a `rate`, a `Pacer` spaces
the writes so that the body leaves no faster than a link of that rate would carry it.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hfspider.hubsim.content import CHUNK_SIZE, ByteSource
from hfspider.hubsim.ratelimit import Verdict
from hfspider.hubsim.wire import JSON_TYPE, TEXT_TYPE, HubError, dumps, json_etag

CONTEXT = "hubsim.context"
DRAIN_WAIT = 2.0  # seconds a faulted body waits for the client to acknowledge what it got
ACK_POLL = 0.001
TCP_INFO_SIZE = 192
TCPI_BYTES_ACKED = 120  # offset of tcpi_bytes_acked (u64) in struct tcp_info, Linux >= 4.1
TCP_CLOSE = 7  # tcpi_state (the first byte) of a connection that was reset
PACE_QUANTUM = 0.005  # seconds of a paced body per write: ~200 wake-ups/s, bursts of 5 ms
PACE_MIN_CHUNK = 64 << 10


@dataclass(slots=True)
class Context:
    """What the pipeline learns about one request, for its answer and its log entry."""

    start: float
    origin: str  # api | cdn
    bucket: str | None  # api | resolvers | pages; None on the CDN and admin routes
    auth: bool  # an Authorization header was sent
    user: str | None  # the valid token's user
    tier: str
    identity: str | None  # rate-limit identity: user or anon:<ip>
    key: str  # the request line, which fault decisions are keyed on
    verdict: Verdict | None = None
    fault: str | None = None
    bytes: int = 0

    @property
    def scope(self) -> str:
        return self.bucket or self.origin


def context(request: web.Request) -> Context:
    return request[CONTEXT]


def header_safe(text: str) -> str:
    """A header value from any text: ASCII only, no line breaks (no header injection)."""
    return (
        text.encode("ascii", "backslashreplace").decode().replace("\r", "\\r").replace("\n", "\\n")
    )


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    body = data if isinstance(data, bytes) else dumps(data)
    out = {"Content-Type": JSON_TYPE, "ETag": json_etag(body)}
    out.update(headers or {})
    return web.Response(body=body, status=status, headers=out)


def error_response(error: HubError) -> web.Response:
    headers = {"X-Error-Message": header_safe(error.message), **error.headers}
    if error.code:
        headers["X-Error-Code"] = error.code
    if error.text:
        body = error.message.encode()
        headers.update({"Content-Type": TEXT_TYPE, "ETag": json_etag(body)})
        return web.Response(body=body, status=error.status, headers=headers)
    return json_response({"error": error.message}, error.status, headers)


def redirect_response(
    status: int, location: str, headers: dict[str, str] | None = None
) -> web.Response:
    """A 302/307 with the Hub's plain-text body naming the target."""
    reason = "Found" if status == 302 else "Temporary Redirect"
    out = {"Location": location, "Content-Type": TEXT_TYPE, "Vary": "Origin, Accept"}
    out.update(headers or {})
    return web.Response(
        body=f"{reason}. Redirecting to {location}".encode(), status=status, headers=out
    )


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of a single `bytes=` range; None to send everything (absent, unparsable
    or several ranges, which a server may ignore); HubError 416 when unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, sep, last = header[6:].strip().partition("-")
    try:
        if not sep:
            return None
        if first == "":
            suffix = int(last)
            if suffix <= 0 or size == 0:
                raise _unsatisfiable(size)
            return max(0, size - suffix), size
        start = int(first)
        end = size if last == "" else min(size, int(last) + 1)
        if start < 0 or (last != "" and int(last) < start):
            return None
    except ValueError:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> HubError:
    return HubError(
        416,
        "Requested Range Not Satisfiable",
        headers={"Content-Range": f"bytes */{size}"},
        text=True,
    )


class AckCounter:
    """Body bytes of one answer that the client's TCP stack acknowledged (Linux `TCP_INFO`).

    `tcpi_bytes_acked` counts every byte of the connection the peer acknowledged, earlier
    answers on a kept-alive connection and this one's headers included; so the body starts
    at what the connection had been given before it: acknowledged + still unacknowledged in
    the kernel (`SIOCOUTQ`) + still queued in the transport, read right after the headers.
    A duplicate of the socket keeps those counters readable after the transport let its own
    go (a client reset or a kill): they then hold what the client got, and stop moving.
    """

    def __init__(self, transport: asyncio.BaseTransport | None) -> None:
        self._transport = transport
        own = transport.get_extra_info("socket") if transport is not None else None
        self._sock = socket.fromfd(own.fileno(), own.family, own.type) if own else None
        self._start = self._acked() + self._unacked() + self._queued()

    def _info(self) -> bytes:
        assert self._sock is not None
        return self._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE)

    def _acked(self) -> int:
        if self._sock is None:
            return 0
        return struct.unpack_from("Q", self._info(), TCPI_BYTES_ACKED)[0]

    def _unacked(self) -> int:
        if self._sock is None:
            return 0
        out = fcntl.ioctl(self._sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        return struct.unpack("i", out)[0]

    def _queued(self) -> int:
        transport = self._transport
        if transport is None or transport.is_closing():
            return 0
        return transport.get_write_buffer_size()  # type: ignore[attr-defined]

    def body(self) -> int:
        """Body bytes acknowledged so far."""
        return max(0, self._acked() - self._start)

    async def settle(self, wait: float) -> int:
        """Body bytes acknowledged once everything handed over is, or after `wait` seconds."""
        deadline = time.monotonic() + wait
        while (self._queued() or self._unacked()) and time.monotonic() < deadline:
            if self._sock is None or self._info()[0] == TCP_CLOSE:
                break  # reset: nothing more will be acknowledged
            await asyncio.sleep(ACK_POLL)
        return self.body()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Pacer:
    """A token bucket of `rate` bytes/s holding at most one write (`chunk`), full at the start.

    A write takes its bytes first (the bucket may go into debt) and then sleeps until the debt
    is paid: one timer per write, no polling, so a capped download costs the emulator no CPU
    beyond its bytes. Sleeping late refills the bucket (up to one write), so timer lateness
    does not add up over a download; a stalled client does not earn a burst beyond one write,
    as a link does not give back time it stood idle.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.chunk = int(min(CHUNK_SIZE, max(PACE_MIN_CHUNK, rate * PACE_QUANTUM)))
        self._tokens = float(self.chunk)
        self._stamp = time.monotonic()

    async def take(self, size: int) -> None:
        """Wait until `size` more bytes may leave."""
        now = time.monotonic()
        self._tokens = min(self.chunk, self._tokens + (now - self._stamp) * self.rate) - size
        self._stamp = now
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / self.rate)


async def send(
    request: web.Request,
    status: int,
    headers: dict[str, str],
    source: ByteSource,
    start: int,
    end: int,
    fault: str | None,
    cut: int,
    rate: float = 0.0,
) -> web.StreamResponse:
    """Stream bytes [start, end) of `source`; `fault` strikes at body offset `cut`; a `rate`
    (bytes/s, 0: unlimited) paces the body."""
    ctx = context(request)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start
    await response.prepare(request)
    if request.method == "HEAD" or end <= start:
        await response.write_eof()
        return response
    ctx.fault = ctx.fault or fault
    transport = request.transport
    acks = AckCounter(transport)  # right after the headers went to the transport
    strike = start + cut if fault else end
    pacer = Pacer(rate) if rate > 0 else None
    try:
        position = start
        for chunk in source.chunks(start, end, pacer.chunk if pacer else CHUNK_SIZE):
            if pacer is not None:
                await pacer.take(len(chunk))
            if position + len(chunk) > strike:
                if fault == "corrupt":
                    flipped = bytearray(chunk)
                    flipped[strike - position] ^= 0xFF
                    chunk, strike = bytes(flipped), end
                else:
                    await response.write(chunk[: strike - position])
                    ctx.bytes = await acks.settle(DRAIN_WAIT)
                    _break_off(transport, fault)
                    return response
            await response.write(chunk)
            position += len(chunk)
        await response.write_eof()
        ctx.bytes = end - start  # all of it left: charged whole, its tail may be on its way
    except ConnectionError:
        ctx.bytes = acks.body()  # the client went away: its kernel acknowledged this much
    finally:
        acks.close()
    return response


def _break_off(transport: asyncio.Transport | None, fault: str | None) -> None:
    """End a faulted body once the client has what was written: RST, or a clean close."""
    if transport is None or transport.is_closing():
        return
    if fault == "reset":
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
