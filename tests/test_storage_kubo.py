"""The Kubo RPC client against the real daemon (with API auth), plus address and auth parsing."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from hfspider.ipfs import PRESETS, FileBlockstore, FileImporter, cid_bytes, write_car_file
from hfspider.storage.kubo import (
    KuboClient,
    KuboError,
    KuboUnavailableError,
    api_url,
    auth_header,
)
from tests.fixtures.ipfs_data import chacha20
from tests.fixtures.kubo import AUTH_PASSWORD, AUTH_USER, KuboDaemon

AUTH = f"basic:{AUTH_USER}:{AUTH_PASSWORD}"


def client(kubo: KuboDaemon, **kwargs: object) -> KuboClient:
    return KuboClient(kubo.api, auth=AUTH, **kwargs)  # type: ignore[arg-type]


def make_car(path: Path, size: int, seed: str) -> tuple[str, str]:
    """A CAR of one file; returns (root CID, sha256 of the file)."""
    with FileBlockstore(path.with_suffix(".spool")) as store:
        importer = FileImporter(PRESETS["unixfs-v1-2025"], store, sha256=True)
        for piece in chacha20(seed, size):
            importer.update(piece)
        imported = importer.finish()
        write_car_file(path, [cid_bytes(imported.cid)], store)
    assert imported.sha256 is not None
    return imported.cid, imported.sha256


def test_version_and_add(kubo: KuboDaemon) -> None:
    async def run() -> tuple[dict, str]:
        async with client(kubo) as rpc:
            return await rpc.version(), await rpc.add(b"hello world", **{"only-hash": True})

    version, cid = asyncio.run(run())
    assert version["Version"] == kubo.rpc_json("version")["Version"]
    assert cid == kubo.add({"f": [b"hello world"]}, **{"only-hash": "true"})


def test_import_pin_confirm_and_cat(kubo: KuboDaemon, tmp_path: Path) -> None:
    root, sha256 = make_car(tmp_path / "a.car", 5_000_000, "client-import")

    async def run() -> tuple[bool, dict, bool, int | None, bytes]:
        async with client(kubo) as rpc:
            before = await rpc.pin_ls(root)
            stats = await rpc.dag_import(tmp_path / "a.car")
            await rpc.pin_add(root)
            after = await rpc.pin_ls(root)
            size = await rpc.block_stat(root)
            data = b"".join([chunk async for chunk in rpc.cat(root)])
            return before, stats, after, size, data

    before, stats, after, size, data = asyncio.run(run())
    assert before is False and after is True
    assert stats["blocks"] == 6  # 5 leaves of 1 MiB and the root
    assert size == len(kubo.rpc("block/get", root))
    assert hashlib.sha256(data).hexdigest() == sha256
    assert kubo.rpc_json("pin/ls", root, type="recursive")["Keys"][root]["Type"] == "recursive"


def test_dag_import_streams_from_disk(kubo: KuboDaemon, tmp_path: Path) -> None:
    """A 64 MB CAR goes to the node without being loaded: Python's peak stays far below."""
    make_car(tmp_path / "big.car", 64 << 20, "client-stream")

    async def run() -> dict:
        async with client(kubo) as rpc:
            return await rpc.dag_import(tmp_path / "big.car")

    tracemalloc.start()
    try:
        stats = asyncio.run(run())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats["blocks"] == 65  # 64 leaves of 1 MiB and the root
    assert peak < 16 << 20


def test_absent_things(kubo: KuboDaemon) -> None:
    absent = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"

    async def run() -> tuple[bool, int | None]:
        async with client(kubo) as rpc:
            return await rpc.pin_ls(absent), await rpc.block_stat(absent)

    assert asyncio.run(run()) == (False, None)


def test_missing_auth_is_a_clear_error(kubo: KuboDaemon) -> None:
    async def run() -> None:
        async with KuboClient(kubo.api) as rpc:
            await rpc.version()

    with pytest.raises(KuboError) as error:
        asyncio.run(run())
    assert not isinstance(error.value, KuboUnavailableError)
    assert error.value.status in (401, 403)


def test_node_down_is_unavailable(kubo: KuboDaemon) -> None:
    kubo.stop()

    async def run() -> None:
        async with client(kubo) as rpc:
            await rpc.version()

    with pytest.raises(KuboUnavailableError):
        asyncio.run(run())


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_timeout_is_unavailable(silent_server: str) -> None:
    async def run() -> None:
        async with KuboClient(silent_server, timeout=0.5) as rpc:
            await rpc.version()

    with pytest.raises(KuboUnavailableError, match="Timeout"):
        asyncio.run(run())


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("127.0.0.1:5001", "http://127.0.0.1:5001"),
        ("http://node.local:5001/", "http://node.local:5001"),
        ("/ip4/10.0.0.2/tcp/5002", "http://10.0.0.2:5002"),
        ("/dns4/kubo/tcp/5001/http", "http://kubo:5001"),
        ("/ip6/::1/tcp/5001", "http://[::1]:5001"),
    ],
)
def test_api_addresses(address: str, url: str) -> None:
    assert api_url(address) == url


def test_api_address_from_env_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IPFS_API", raising=False)
    assert api_url("") == "http://127.0.0.1:5001"
    monkeypatch.setenv("IPFS_API", "/ip4/127.0.0.1/tcp/5999")
    assert api_url(None) == "http://127.0.0.1:5999"
    with pytest.raises(ValueError, match="not host:port"):
        api_url("no port here")


def test_auth_secrets() -> None:
    assert auth_header("basic:u:p w") == "Basic dTpwIHc="
    assert auth_header("bearer:tok") == "Bearer tok"
    assert auth_header("") is None
    with pytest.raises(ValueError, match="IPFS_API_AUTH"):
        auth_header("u:p")
