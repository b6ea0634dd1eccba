"""The storage adapter against the real Kubo daemon: down at start, killed mid-import,
failing pins, a killed crawl process, corrupted CARs and CID mismatches.

Faults the daemon cannot make on demand (a failing pin, a slow import) come from a small
HTTP proxy in front of it; everything else is the daemon itself. Pins are checked with the
fixture's own RPC helper, not with the code under test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from hfspider.ipfs import PRESETS, FileBlockstore, build_snapshot
from hfspider.storage import ImportQueue, KuboClient, KuboStorage, StorageError
from hfspider.storage.queue import FAILED, PENDING, STORED
from tests.fixtures.ipfs_data import synthetic_model
from tests.fixtures.kubo import AUTH_PASSWORD, AUTH_USER, KuboDaemon

AUTH = f"basic:{AUTH_USER}:{AUTH_PASSWORD}"
PARAMS = PRESETS["unixfs-v1-2025"]


def make_models(tmp_path: Path, prefix: str, count: int, big: int = 0) -> list[dict]:
    """Snapshot CARs of `count` synthetic models: [{model_id, car, roots}]."""
    jobs = []
    for index in range(count):
        model_id = f"{prefix}/model-{index}"
        with FileBlockstore(tmp_path / "spool") as store:
            record, files, _ = synthetic_model(model_id, PARAMS, store, big=big)
            snapshot = build_snapshot(record, files, PARAMS, store)
            car = tmp_path / "car" / f"{prefix}-{index}.car"
            snapshot.write_car(car, store)
        jobs.append(
            {"model_id": model_id, "car": str(car), "roots": [snapshot.dir_cid, snapshot.cid]}
        )
    return jobs


def storage_for(api: str, queue_path: Path, **kwargs: object) -> KuboStorage:
    client = KuboClient(api, auth=AUTH, timeout=5)
    return KuboStorage(
        client, ImportQueue(queue_path), retry_delay=0.05, max_retry_delay=0.5, **kwargs
    )  # type: ignore[arg-type]


def pinned(kubo: KuboDaemon, cid: str) -> bool:
    answer = kubo.rpc_json("pin/ls", type="recursive")
    return cid in answer["Keys"]


def assert_all_stored_once(kubo: KuboDaemon, storage: KuboStorage, jobs: list[dict]) -> None:
    assert storage.queue.counts() == {PENDING: 0, STORED: len(jobs), FAILED: 0}
    for job in jobs:
        for root in job["roots"]:
            assert pinned(kubo, root), f"{job['model_id']}: {root} not pinned"


class FaultProxy:
    """Forwards /api/v0 calls to Kubo; can fail or delay a command a number of times."""

    def __init__(self, target: str) -> None:
        self.target = f"http://{target}"
        self.fail: Counter[str] = Counter()
        self.delay: dict[str, float] = {}
        self.calls: Counter[str] = Counter()
        self.loop = asyncio.new_event_loop()
        self.api = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application(client_max_size=1 << 30)
        app.router.add_post("/api/v0/{command:.+}", self._handle)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.api = f"127.0.0.1:{port}"
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    async def _handle(self, request: web.Request) -> web.Response:
        command = request.match_info["command"]
        self.calls[command] += 1
        await asyncio.sleep(self.delay.get(command, 0))
        if self.fail[command] > 0:
            self.fail[command] -= 1
            return web.json_response(
                {"Message": f"injected {command} failure", "Code": 0, "Type": "error"}, status=500
            )
        headers = {
            k: v for k, v in request.headers.items() if k in ("Content-Type", "Authorization")
        }
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.target}/api/v0/{command}",
                params=request.query,
                data=await request.read(),
                headers=headers,
            ) as answer:
                return web.Response(
                    body=await answer.read(), status=answer.status, content_type="application/json"
                )


def test_node_down_at_start(kubo: KuboDaemon, tmp_path: Path) -> None:
    jobs = make_models(tmp_path, "down-at-start", 3)
    kubo.stop()
    storage = storage_for(kubo.api, tmp_path / "queue.sqlite")
    for job in jobs:
        assert storage.submit(job["model_id"], job["car"], job["roots"])

    async def run() -> tuple[int, int]:
        stored_while_down = await storage.process_due()
        pending_while_down = storage.queue.counts()[PENDING]
        await asyncio.to_thread(kubo.start)
        await storage.drain(timeout=60)
        await storage.client.close()
        return stored_while_down, pending_while_down

    assert asyncio.run(run()) == (0, 3)
    assert_all_stored_once(kubo, storage, jobs)


def test_node_killed_mid_import_and_restarted(kubo: KuboDaemon, tmp_path: Path) -> None:
    jobs = make_models(tmp_path, "killed-node", 5, big=4 << 20)
    with FaultProxy(kubo.api) as proxy:
        proxy.delay["dag/import"] = 0.3  # a window to kill the node in
        storage = storage_for(proxy.api, tmp_path / "queue.sqlite")
        for job in jobs:
            storage.submit(job["model_id"], job["car"], job["roots"])

        async def run() -> int:
            drain = asyncio.create_task(storage.drain(timeout=120))
            while storage.queue.counts()[STORED] < 2:
                await asyncio.sleep(0.02)
            stored_before_kill = storage.queue.counts()[STORED]
            kubo.kill()
            await asyncio.sleep(1.0)
            await asyncio.to_thread(kubo.start)
            await drain
            await storage.client.close()
            return stored_before_kill

        stored_before_kill = asyncio.run(run())
    assert stored_before_kill < len(jobs), "the node was not killed mid-way"
    assert_all_stored_once(kubo, storage, jobs)
    assert proxy.calls["dag/import"] > len(jobs)  # some imports were cut and redone


def test_pin_failures_are_retried(kubo: KuboDaemon, tmp_path: Path) -> None:
    jobs = make_models(tmp_path, "pin-fails", 2)
    crawler = get_crawler(settings_dict={"IPFS_PUSH": True})
    with FaultProxy(kubo.api) as proxy:
        proxy.fail["pin/add"] = 3
        storage = storage_for(proxy.api, tmp_path / "queue.sqlite", stats=crawler.stats)
        for job in jobs:
            storage.submit(job["model_id"], job["car"], job["roots"])

        async def drain() -> None:
            await storage.drain(timeout=60)
            await storage.client.close()

        asyncio.run(drain())
    assert_all_stored_once(kubo, storage, jobs)
    stats = crawler.stats.get_stats()
    assert stats["hfspider/ipfs/retries"] == 3
    assert stats["hfspider/ipfs/stored"] == stats["hfspider/ipfs/queued"] == 2


def test_cid_mismatch_and_corruption_are_refused_at_submit(
    kubo: KuboDaemon, tmp_path: Path
) -> None:
    (job,) = make_models(tmp_path, "mismatch", 1)
    storage = storage_for(kubo.api, tmp_path / "queue.sqlite")
    with pytest.raises(StorageError, match=r"^mismatch/model-0: CID mismatch"):
        storage.submit(job["model_id"], job["car"], job["roots"][::-1])
    raw = bytearray(Path(job["car"]).read_bytes())
    raw[-10] ^= 0xFF
    Path(job["car"]).write_bytes(raw)
    with pytest.raises(StorageError, match=r"^mismatch/model-0: bad CAR .*does not match its CID"):
        storage.submit(job["model_id"], job["car"], job["roots"])
    assert storage.queue.counts() == {PENDING: 0, STORED: 0, FAILED: 0}


def test_car_corrupted_after_queueing_fails_with_the_model_id(
    kubo: KuboDaemon, tmp_path: Path
) -> None:
    (job,) = make_models(tmp_path, "rotten", 1, big=2 << 20)
    storage = storage_for(kubo.api, tmp_path / "queue.sqlite")
    storage.submit(job["model_id"], job["car"], job["roots"])
    raw = bytearray(Path(job["car"]).read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside the weights file's blocks
    Path(job["car"]).write_bytes(raw)

    async def drain() -> dict:
        counts = await storage.drain(timeout=30)
        await storage.client.close()
        return counts

    assert asyncio.run(drain()) == {PENDING: 0, STORED: 0, FAILED: 1}
    (entry,) = storage.queue.entries(FAILED)
    assert entry.last_error.startswith("rotten/model-0: ")  # type: ignore[union-attr]
    assert "corrupted CAR" in entry.last_error  # type: ignore[operator]
    assert not pinned(kubo, job["roots"][1])


CHILD = """
import asyncio, json, sys
from hfspider.storage import ImportQueue, KuboClient, KuboStorage
api, auth, queue, jobs = sys.argv[1], sys.argv[2], sys.argv[3], json.load(open(sys.argv[4]))
storage = KuboStorage(KuboClient(api, auth=auth), ImportQueue(queue), retry_delay=0.05)
for job in jobs:
    storage.submit(job["model_id"], job["car"], job["roots"], key=job["model_id"])
asyncio.run(storage.drain())
"""


def test_crawl_process_killed_and_rerun(kubo: KuboDaemon, tmp_path: Path) -> None:
    """kill -9 of the process pushing CARs, then the same command again: all stored, once."""
    jobs = make_models(tmp_path, "killed-crawl", 6, big=2 << 20)
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    queue_path = tmp_path / "queue.sqlite"
    with FaultProxy(kubo.api) as proxy:
        proxy.delay["pin/add"] = 0.2
        argv = [
            sys.executable,
            "-c",
            CHILD,
            proxy.api,
            AUTH,
            str(queue_path),
            str(tmp_path / "jobs.json"),
        ]
        child = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": os.getcwd()})
        watcher = ImportQueue(queue_path) if _wait_for(queue_path) else None
        assert watcher is not None
        deadline = time.monotonic() + 60
        while watcher.counts()[STORED] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
        before = {e.key: e for e in watcher.entries(STORED)}
        assert 2 <= len(before) < len(jobs), "the crawl was not killed mid-way"
        rerun = subprocess.run(argv, env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=120)
        assert rerun.returncode == 0
    after = {e.key: e for e in watcher.entries(STORED)}
    assert sorted(after) == sorted(job["model_id"] for job in jobs)
    for key, entry in before.items():
        assert after[key] == entry  # stored before the kill: not touched again
    for job in jobs:
        assert all(pinned(kubo, root) for root in job["roots"])


def _wait_for(path: Path) -> bool:
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.exists()


def test_not_configured_without_push() -> None:
    with pytest.raises(NotConfigured):
        KuboStorage.from_crawler(get_crawler(settings_dict={"IPFS_PUSH": False}))


def test_from_crawler_reads_the_settings(tmp_path: Path) -> None:
    from hfspider.config import load_settings

    settings = {**load_settings(), "IPFS_PUSH": True, "OUTPUT_DIR": str(tmp_path)}
    settings.update(IPFS_API="/ip4/127.0.0.1/tcp/5999", IPFS_API_AUTH="bearer:t")
    storage = KuboStorage.from_crawler(get_crawler(settings_dict=settings))
    assert storage.client.base_url == "http://127.0.0.1:5999"
    assert storage.queue.path == tmp_path / "ipfs-queue.sqlite"
    assert storage.max_attempts == settings["IPFS_MAX_ATTEMPTS"]
    asyncio.run(storage.close())
