"""Kubo's RPC API over plain HTTP (aiohttp): the calls the storage adapter needs.

Not ipfshttpclient: its last release refuses every Kubo from 0.8 on. Every call is
`POST /api/v0/<command>?arg=...`; failures are split into `KuboUnavailableError` (no answer:
down, refused, timed out; worth retrying as is) and `KuboError` (the node answered no).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from hfspider.ipfs.cid import cid_bytes

DEFAULT_API = "127.0.0.1:5001"
API_ENV = "IPFS_API"
_MULTIADDR = re.compile(r"^/(?:ip4|ip6|dns|dns4|dns6)/([^/]+)/tcp/(\d+)(?:/http)?/?$")


class KuboError(RuntimeError):
    """The node answered with an error (its own message is kept)."""

    def __init__(self, command: str, message: str, status: int | None = None) -> None:
        super().__init__(f"kubo {command}: {message}")
        self.command = command
        self.message = message
        self.status = status


class KuboUnavailableError(KuboError):
    """No usable answer: node down, connection refused or reset, timeout."""


def api_url(address: str | None = None) -> str:
    """Base URL from `host:port`, a URL, or a multiaddr; empty means $IPFS_API, then 5001."""
    address = address or os.environ.get(API_ENV) or DEFAULT_API
    match = _MULTIADDR.match(address)
    if match:
        host, port = match.groups()
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"
    if "://" in address:
        return address.rstrip("/")
    if not re.fullmatch(r"[\w.\-]+:\d+|\[[0-9a-fA-F:]+\]:\d+", address):
        raise ValueError(f"IPFS_API {address!r} is not host:port, a URL or a multiaddr")
    return f"http://{address}"


def auth_header(secret: str | None) -> str | None:
    """Kubo's API.Authorizations secret format: `basic:user:password` or `bearer:token`."""
    if not secret:
        return None
    kind, _, value = secret.partition(":")
    if kind == "basic" and ":" in value:
        return "Basic " + base64.b64encode(value.encode()).decode()
    if kind == "bearer" and value:
        return f"Bearer {value}"
    raise ValueError("IPFS_API_AUTH must be 'basic:user:password' or 'bearer:token'")


class KuboClient:
    """One aiohttp session to one Kubo node. Use as `async with KuboClient(...) as kubo:`."""

    def __init__(
        self,
        api: str | None = None,
        *,
        auth: str | None = None,
        timeout: float = 30.0,
        transfer_timeout: float = 3600.0,
    ) -> None:
        self.base_url = api_url(api)
        self._headers = {"Authorization": header} if (header := auth_header(auth)) else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # Imports and cats move whole files: bound the silence between reads, not the total.
        self._transfer_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_read=transfer_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KuboClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    async def _call(
        self,
        command: str,
        *args: str,
        data: Any = None,
        transfer: bool = False,
        **options: str | int | bool,
    ) -> list[Any]:
        """POST a command; returns its JSON values (Kubo streams one per line)."""
        body = await self._request(command, args, options, data, transfer)
        text = body.decode("utf-8", "replace")
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            raise KuboError(command, f"not JSON: {text[:200]!r}") from None

    async def _request(
        self,
        command: str,
        args: tuple[str, ...],
        options: dict[str, str | int | bool],
        data: Any,
        transfer: bool,
    ) -> bytes:
        params = [("arg", arg) for arg in args]
        params += [
            (k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in options.items()
        ]
        url = f"{self.base_url}/api/v0/{command}"
        timeout = self._transfer_timeout if transfer else self._timeout
        try:
            async with self._http().post(url, params=params, data=data, timeout=timeout) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise self._error(command, resp.status, body)
                return body
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            raise KuboUnavailableError(command, f"{type(exc).__name__}: {exc}") from None

    def _error(self, command: str, status: int, body: bytes) -> KuboError:
        try:
            message = json.loads(body)["Message"]
        except (ValueError, KeyError, TypeError):
            message = body.decode("utf-8", "replace")[:500] or f"HTTP {status}"
        if status in (502, 503, 504):
            return KuboUnavailableError(command, message, status)
        return KuboError(command, message, status)

    async def version(self) -> dict[str, Any]:
        return (await self._call("version"))[0]

    async def add(self, data: bytes, *, name: str = "file", **options: str | int | bool) -> str:
        """`ipfs add` of one file (options are add's flags, e.g. only-hash=True)."""
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type="application/octet-stream")
        events = await self._call("add", data=form, transfer=True, **options)
        return events[-1]["Hash"]

    async def dag_import(self, car_path: str | os.PathLike[str]) -> dict[str, int]:
        """`ipfs dag import` of a CAR, streamed from disk; pins nothing (see pin_add).

        Kubo re-hashes every block and refuses the whole CAR on a mismatch.
        """
        with open(car_path, "rb") as car:
            writer = aiohttp.MultipartWriter("form-data")
            part = writer.append(car, {"Content-Type": "application/vnd.ipld.car"})
            part.set_content_disposition("form-data", name="file", filename=Path(car_path).name)
            events = await self._call(
                "dag/import",
                data=writer,
                transfer=True,
                **{"pin-roots": False, "stats": True, "fast-provide-root": False},
            )
        stats = next((e["Stats"] for e in events if "Stats" in e), None)
        if stats is None:
            raise KuboError("dag/import", f"no stats in the answer: {events!r}")
        return {"blocks": stats["BlockCount"], "bytes": stats["BlockBytesCount"]}

    async def pin_add(self, cid: str) -> None:
        """Pin recursively; Kubo answers only once every block under `cid` is local."""
        events = await self._call("pin/add", cid, transfer=True, recursive=True)
        pinned = {cid_bytes(p) for e in events for p in e.get("Pins") or []}
        if cid_bytes(cid) not in pinned:
            raise KuboError("pin/add", f"{cid} missing from the answer {events!r}")

    async def pin_ls(self, cid: str) -> bool:
        """Whether `cid` is pinned recursively (the node's own confirmation)."""
        try:
            events = await self._call("pin/ls", cid, type="recursive")
        except KuboError as exc:
            if isinstance(exc, KuboUnavailableError) or "not pinned" not in exc.message:
                raise
            return False
        keys = {cid_bytes(k) for e in events for k in e.get("Keys") or {}}
        return cid_bytes(cid) in keys

    async def block_stat(self, cid: str) -> int | None:
        """Size of a block the node has locally, None when it does not have it."""
        try:
            events = await self._call("block/stat", cid, offline=True)
        except KuboError as exc:
            if isinstance(exc, KuboUnavailableError) or "not found" not in exc.message:
                raise
            return None
        return int(events[0]["Size"])

    async def cat(self, path: str) -> AsyncIterator[bytes]:
        """The bytes of a UnixFS file (`<cid>` or `<cid>/sub/path`), streamed."""
        url = f"{self.base_url}/api/v0/cat"
        try:
            async with self._http().post(
                url, params=[("arg", path)], timeout=self._transfer_timeout
            ) as resp:
                if resp.status != 200:
                    raise self._error("cat", resp.status, await resp.read())
                expected = resp.headers.get("X-Content-Length")
                received = 0
                async for chunk in resp.content.iter_chunked(1 << 20):
                    received += len(chunk)
                    yield chunk
                if expected is not None and received != int(expected):
                    raise KuboError("cat", f"{path}: got {received} of {expected} bytes")
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            raise KuboUnavailableError("cat", f"{type(exc).__name__}: {exc}") from None
