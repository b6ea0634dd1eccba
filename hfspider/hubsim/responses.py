"""How answers leave the emulator: JSON with the Hub's ETag, errors, redirects, byte ranges,
and streamed bodies whose bytes are counted as they reach the socket.

`send` streams any byte source (file, or a JSON body hit by a fault) and applies body faults:
`reset` writes part of the body, then resets the connection (TCP RST); `truncate` writes part,
then closes cleanly; `corrupt` flips one byte. It records in the request's `Context` how many
body bytes left the process: bytes handed to the transport minus what the transport still held
when the client went away, so a client killed mid-download is charged what it was sent.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hfspider.hubsim.content import ByteSource
from hfspider.hubsim.ratelimit import Verdict
from hfspider.hubsim.wire import JSON_TYPE, TEXT_TYPE, HubError, dumps, json_etag

CONTEXT = "hubsim.context"
DRAIN_WAIT = 2.0  # seconds a reset waits for the written part to reach the socket


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


async def send(
    request: web.Request,
    status: int,
    headers: dict[str, str],
    source: ByteSource,
    start: int,
    end: int,
    fault: str | None,
    cut: int,
) -> web.StreamResponse:
    """Stream bytes [start, end) of `source`; `fault` strikes at body offset `cut`."""
    ctx = context(request)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start
    await response.prepare(request)
    if request.method == "HEAD" or end <= start:
        await response.write_eof()
        return response
    ctx.fault = ctx.fault or fault
    transport = request.transport
    strike = start + cut if fault else end
    handed = confirmed = 0
    try:
        position = start
        for chunk in source.chunks(start, end):
            stop = False
            if position + len(chunk) > strike:
                if fault == "corrupt":
                    flipped = bytearray(chunk)
                    flipped[strike - position] ^= 0xFF
                    chunk, strike = bytes(flipped), end
                else:
                    chunk, stop = chunk[: strike - position], True
            await response.write(chunk)
            handed += len(chunk)
            position += len(chunk)
            confirmed = handed - (transport.get_write_buffer_size() if transport else 0)
            if stop:
                confirmed = await _break_off(transport, fault, handed)
                ctx.bytes = confirmed
                return response
        await response.write_eof()
        confirmed = handed
    except ConnectionError:
        pass  # the client went away: `confirmed` is what reached the socket
    ctx.bytes = confirmed
    return response


async def _break_off(transport: asyncio.Transport | None, fault: str | None, handed: int) -> int:
    """End a faulted body: RST after the written part reached the socket, or a clean close."""
    if transport is None or transport.is_closing():
        return handed
    deadline = time.monotonic() + DRAIN_WAIT
    while transport.get_write_buffer_size() and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    sent = handed - transport.get_write_buffer_size()
    if fault == "reset":
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    return sent
